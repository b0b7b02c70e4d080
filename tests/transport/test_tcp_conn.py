"""graphnet.transport.tcp.conn: the RFC 9293 state machine, one
transition per table row (the peer's segments built by Scapy), then two
connections talking to each other through a Python model of the rx fifo:
handshakes (incl. simultaneous open), transfers with reordering, SACK
blocks, windows, and every way of closing."""
import random

import pytest
from scapy.layers.inet import TCP

from graphnet.transport.tcp import conn as tc
from graphnet.transport.tcp.testing import Net
from graphnet.wire import tcp as wt

US, PEER = (0x0A000001, 1000), (0x0A000002, 2000)
ISS, IRS = 1000, 5000
SYN_OPTS = [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None), ("WScale", 6)]


def seg(flags, seq, ack=0, win=1000, payload=b"", ts=None, options=None):
    """A segment from the peer, built by Scapy (checksum over the pseudo
    header of PEER -> US)."""
    opts = list(options or [])
    if ts is not None:
        opts.append(("Timestamp", ts))
    raw = bytes(TCP(sport=PEER[1], dport=US[1], seq=seq % 2**32, ack=ack % 2**32, flags=flags, window=win, options=opts) / payload)
    return _fix_csum(raw)


def _fix_csum(raw):
    b = bytearray(raw)
    b[16:18] = b"\0\0"
    b[16:18] = wt.checksum(PEER[0], US[0], b).to_bytes(2, "big")
    return bytes(b)


def parse(raw):
    """Our segment as Scapy reads it (and its checksum verified)."""
    assert wt.checksum_ok(US[0], PEER[0], raw)
    return TCP(raw)


def opts_of(p):
    return {k: v for k, v in p.options if k not in ("NOP", "EOL")}


# -- reaching each state through the real functions --------------------------

def syn_rcvd(**kw):
    c = tc.Connection(lcl=US, rmt=PEER, iss=ISS, ts_offset=0, **kw)
    act = c.passive_open(seg("S", IRS, options=SYN_OPTS), now_ms=10)
    assert "send-syn" in act["actions"]
    c.make_syn(now_ms=10)
    return c


def established(**kw):
    c = syn_rcvd(**kw)
    act = c.input(seg("A", IRS + 1, ISS + 1, ts=(101, 10)), now_ms=20)
    assert c.state == "ESTABLISHED" and "established" in act["actions"]
    return c


def fin_wait_1():
    c = established()
    c.app_close()
    fin = parse(c.send_next(b"", now_ms=30))
    assert fin.flags == "FA" and fin.seq == ISS + 1
    return c


def fin_wait_2():
    c = fin_wait_1()
    c.input(seg("A", IRS + 1, ISS + 2, ts=(102, 30)), now_ms=40)
    return c


def close_wait():
    c = established()
    act = c.input(seg("FA", IRS + 1, ISS + 1, ts=(102, 20)), now_ms=30)
    assert "peer-fin" in act["actions"]
    return c


def last_ack():
    c = close_wait()
    c.app_close()
    assert parse(c.send_next(b"", now_ms=40)).flags == "FA"
    return c


def closing():
    c = fin_wait_1()
    c.input(seg("FA", IRS + 1, ISS + 1, ts=(102, 30)), now_ms=40)     # their FIN crosses ours
    return c


def time_wait():
    c = fin_wait_2()
    c.input(seg("FA", IRS + 1, ISS + 2, ts=(103, 40)), now_ms=50)
    return c


def syn_sent(**kw):
    c = tc.Connection(lcl=US, rmt=PEER, iss=ISS, ts_offset=0, **kw)
    act = c.active_open(now_ms=10)
    assert act["actions"] == {"send-syn", "rtx-arm"}
    p = parse(c.make_syn(now_ms=10))
    assert p.flags == "S" and p.seq == ISS
    return c


BUILDERS = {"SYN_SENT": syn_sent, "SYN_RCVD": syn_rcvd, "ESTABLISHED": established, "FIN_WAIT_1": fin_wait_1,
            "FIN_WAIT_2": fin_wait_2, "CLOSE_WAIT": close_wait, "LAST_ACK": last_ack, "CLOSING": closing,
            "TIME_WAIT": time_wait}


def test_builders_reach_their_states():
    for name, build in BUILDERS.items():
        assert build().state == name


# -- one row per transition: (from, segment, to, actions that must be there, error)
TS = (200, 20)
ROWS = [
    # SYN_SENT (RFC 9293 s.3.10.7.3)
    ("SYN_SENT", seg("SA", IRS, ISS + 1, options=SYN_OPTS), "ESTABLISHED", {"established", "send-ack", "rtx-stop"}, "none"),
    ("SYN_SENT", seg("S", IRS, options=SYN_OPTS), "SYN_RCVD", {"send-syn"}, "none"),      # simultaneous open
    ("SYN_SENT", seg("RA", 0, ISS + 1), "CLOSED", {"refused", "closed"}, "none"),
    ("SYN_SENT", seg("R", 0), "SYN_SENT", {"drop"}, "rst-ignored"),                     # RST without ACK
    ("SYN_SENT", seg("SA", IRS, ISS + 5), "SYN_SENT", {"send-rst", "drop"}, "syn-sent-bad-ack"),
    ("SYN_SENT", seg("RA", 0, ISS + 5), "SYN_SENT", {"drop"}, "rst-ignored"),
    ("SYN_SENT", seg("A", IRS, ISS + 1), "SYN_SENT", {"drop"}, "syn-sent-no-syn"),
    # SYN_RCVD
    ("SYN_RCVD", seg("A", IRS + 1, ISS + 1, ts=TS), "ESTABLISHED", {"established", "rtx-stop"}, "none"),
    ("SYN_RCVD", seg("A", IRS + 1, ISS + 9, ts=TS), "SYN_RCVD", {"send-rst", "drop"}, "syn-rcvd-bad-ack"),
    ("SYN_RCVD", seg("R", IRS + 1), "CLOSED", {"forget"}, "none"),                      # back to LISTEN
    ("SYN_RCVD", seg("S", IRS, options=SYN_OPTS), "SYN_RCVD", {"send-syn"}, "none"),    # SYN again: SYN-ACK again
    ("SYN_RCVD", seg("PA", IRS + 1, ISS + 1, payload=b"hi", ts=TS), "ESTABLISHED", {"established", "deliver"}, "none"),
    # ESTABLISHED
    ("ESTABLISHED", seg("PA", IRS + 1, ISS + 1, payload=b"x" * 10, ts=TS), "ESTABLISHED", {"deliver", "delack"}, "none"),
    ("ESTABLISHED", seg("PA", IRS + 11, ISS + 1, payload=b"x" * 10, ts=TS), "ESTABLISHED", {"deliver", "send-ack"}, "none"),
    ("ESTABLISHED", seg("FA", IRS + 1, ISS + 1, ts=TS), "CLOSE_WAIT", {"peer-fin", "delack"}, "none"),
    ("ESTABLISHED", seg("R", IRS + 1), "CLOSED", {"reset", "closed"}, "none"),
    ("ESTABLISHED", seg("R", IRS + 2), "ESTABLISHED", {"challenge-ack", "send-ack", "drop"}, "rst-in-window"),
    ("ESTABLISHED", seg("R", IRS + 10 ** 6), "ESTABLISHED", {"drop"}, "rst-ignored"),
    ("ESTABLISHED", seg("S", IRS + 1), "ESTABLISHED", {"challenge-ack", "drop"}, "syn-in-sync"),
    ("ESTABLISHED", seg("S", IRS + 10 ** 6), "ESTABLISHED", {"send-ack", "drop"}, "out-of-window"),
    ("ESTABLISHED", seg("A", IRS + 10 ** 6, ISS + 1, ts=TS), "ESTABLISHED", {"send-ack", "drop"}, "out-of-window"),
    ("ESTABLISHED", seg("A", IRS + 1, ISS + 99, ts=TS), "ESTABLISHED", {"send-ack", "drop"}, "ack-unsent"),
    ("ESTABLISHED", seg("A", IRS + 1, ISS - 10 ** 8, ts=TS), "ESTABLISHED", {"challenge-ack", "drop"}, "ack-too-old"),
    ("ESTABLISHED", seg("PA", IRS + 1, ISS + 1, payload=b"x", ts=(50, 20)), "ESTABLISHED", {"send-ack", "drop"}, "paws"),
    ("ESTABLISHED", seg("P", IRS + 1, payload=b"x"), "ESTABLISHED", {"drop"}, "no-ack"),
    # FIN_WAIT_1
    ("FIN_WAIT_1", seg("A", IRS + 1, ISS + 2, ts=TS), "FIN_WAIT_2", {"rtx-stop"}, "none"),
    ("FIN_WAIT_1", seg("FA", IRS + 1, ISS + 1, ts=TS), "CLOSING", {"peer-fin", "send-ack"}, "none"),
    ("FIN_WAIT_1", seg("FA", IRS + 1, ISS + 2, ts=TS), "TIME_WAIT", {"peer-fin", "send-ack", "time-wait"}, "none"),
    ("FIN_WAIT_1", seg("PA", IRS + 1, ISS + 1, payload=b"late", ts=TS), "FIN_WAIT_1", {"deliver"}, "none"),
    # FIN_WAIT_2
    ("FIN_WAIT_2", seg("FA", IRS + 1, ISS + 2, ts=TS), "TIME_WAIT", {"time-wait", "send-ack"}, "none"),
    ("FIN_WAIT_2", seg("R", IRS + 1), "CLOSED", {"reset", "closed"}, "none"),
    # CLOSE_WAIT
    ("CLOSE_WAIT", seg("FA", IRS + 1, ISS + 1, ts=TS), "CLOSE_WAIT", {"send-ack", "drop"}, "out-of-window"),
    ("CLOSE_WAIT", seg("PA", IRS + 2, ISS + 1, payload=b"z", ts=TS), "CLOSE_WAIT", {"send-ack"}, "data-after-fin"),
    # CLOSING / LAST_ACK / TIME_WAIT
    ("CLOSING", seg("A", IRS + 2, ISS + 2, ts=TS), "TIME_WAIT", {"time-wait"}, "none"),
    ("LAST_ACK", seg("A", IRS + 2, ISS + 2, ts=TS), "CLOSED", {"closed", "rtx-stop"}, "none"),
    ("LAST_ACK", seg("R", IRS + 2), "CLOSED", {"closed"}, "none"),
    ("TIME_WAIT", seg("FA", IRS + 1, ISS + 2, ts=TS), "TIME_WAIT", {"send-ack", "drop"}, "out-of-window"),
    ("TIME_WAIT", seg("S", IRS + 2), "TIME_WAIT", {"challenge-ack"}, "syn-in-sync"),
    ("TIME_WAIT", seg("S", IRS + 2, options=SYN_OPTS), "TIME_WAIT", {"send-ack", "drop"}, "paws"),   # old TSval
]


@pytest.mark.parametrize("start, segment, end, actions, error", ROWS,
                         ids=[f"{r[0]}-{TCP(r[1]).sprintf('%TCP.flags%')}-{i}" for i, r in enumerate(ROWS)])
def test_transition(start, segment, end, actions, error):
    c = BUILDERS[start]()
    act = c.input(segment, now_ms=60)
    assert c.state == end
    assert actions <= act["actions"], act
    assert act["error"] == error


def test_closed_and_listen_answers():
    syn = seg("S", IRS)
    act = tc.closed_input(syn)
    assert "send-rst" in act["actions"] and act["error"] == "no-connection"
    rst = TCP(tc.rst_bytes(act, US[1], PEER[1]))
    assert rst.flags == "RA" and rst.seq == 0 and rst.ack == IRS + 1
    act = tc.closed_input(seg("PA", 7, 1234, payload=b"abc"))
    assert act["rst"] == (1234, 0, wt.RST)
    assert tc.closed_input(seg("R", 7))["actions"] == {"drop"}
    assert tc.listen_input(syn)["actions"] == {"accept-syn"}
    act = tc.listen_input(seg("A", 9, 77))
    assert act["rst"] == (77, 0, wt.RST) and act["error"] == "listen-ack"
    assert tc.listen_input(seg("R", 9))["error"] == "rst-ignored"
    assert tc.listen_input(seg("", 9))["error"] == "listen-not-syn"


def test_syn_ack_negotiates_options_and_clamps_mss():
    c = tc.Connection(lcl=US, rmt=PEER, iss=ISS, mss=1200, wscale=9)
    c.passive_open(seg("S", IRS, options=[("MSS", 9000), ("SAckOK", b""), ("Timestamp", (77, 0)),
                                          ("NOP", None), ("WScale", 3)]), now_ms=5)
    p = parse(c.make_syn(now_ms=5, rx_space=1 << 20))
    assert p.flags == "SA" and p.seq == ISS and p.ack == IRS + 1 and p.window == 65535
    assert opts_of(p) == {"MSS": 1200, "SAckOK": b"", "Timestamp": (5, 77), "WScale": 9}
    f = c.fields()
    assert f["snd_mss"] == 1200 - 12 and f["snd_wscale"] == 3 and f["rcv_wscale"] == 9
    # options the peer did not offer are not used (and not answered)
    c = tc.Connection(lcl=US, rmt=PEER, iss=ISS)
    c.passive_open(seg("S", IRS), now_ms=5)
    p = parse(c.make_syn(now_ms=5))
    assert opts_of(p) == {"MSS": 1460}
    assert c.fields()["snd_mss"] == 536 and c.fields()["rcv_wscale"] == 0


def test_window_scaling_both_ways():
    c = established()                       # we offer wscale 7, the peer 6
    act = c.input(seg("A", IRS + 1, ISS + 1, win=100, ts=TS), now_ms=60)
    assert c.fields()["snd_wnd"] == 100 << 6
    p = parse(c.make_ack(now_ms=60, rx_space=1 << 20))
    assert p.window == (1 << 20) >> 7
    # advertised right edge never moves left even when the fifo fills
    p = parse(c.make_ack(now_ms=61, rx_space=0))
    assert p.window == (1 << 20) >> 7


def test_paws_accepts_newer_and_updates_ts_recent():
    c = established()
    c.input(seg("PA", IRS + 1, ISS + 1, payload=b"a", ts=(500, 20)), now_ms=60)
    assert c.fields()["ts_recent"] == 500
    p = parse(c.make_ack(now_ms=70))
    assert opts_of(p)["Timestamp"] == (70, 500)
    act = c.input(seg("PA", IRS + 2, ISS + 1, payload=b"b", ts=(499, 20)), now_ms=80)
    assert act["error"] == "paws" and c.fields()["n_paws_drops"] == 1
    # a RST is exempt from PAWS
    act = c.input(seg("R", IRS + 2, ts=(1, 0)), now_ms=90)
    assert c.state == "CLOSED" and "reset" in act["actions"]


def test_challenge_acks_rate_limited():
    c = established(challenge_acks_per_s=3)
    errors = [c.input(seg("R", IRS + 5), now_ms=100)["error"] for _ in range(5)]
    assert errors == ["rst-in-window"] * 3 + ["challenge-limit"] * 2
    assert c.input(seg("R", IRS + 5), now_ms=1100)["error"] == "rst-in-window"    # a new second
    assert c.fields()["n_challenge_acks"] == 4 and c.state == "ESTABLISHED"


def test_rtt_sample_from_timestamp_echo():
    c = established()
    c.input(seg("A", IRS + 1, ISS + 1, ts=TS), now_ms=100)
    parse(c.send_next(b"q" * 100, now_ms=100))
    act = c.input(seg("A", IRS + 1, ISS + 101, ts=(300, 100)), now_ms=137)
    assert act["rtt_ms"] == 37 and act["tx_acked"] == 100


def test_rtt_timing_without_timestamps():
    c = established(ts=False)
    parse(c.send_next(b"q" * 100, now_ms=100))
    act = c.input(seg("A", IRS + 1, ISS + 101), now_ms=125)
    assert act["rtt_ms"] == 25


def test_nagle_holds_short_segment_until_ack():
    c = established()
    first = parse(c.send_next(b"a" * 10, now_ms=30))
    assert len(first.payload) == 10
    assert c.send_next(b"a" * 20, now_ms=31) is None          # 10 unacked: the 10 new bytes wait
    c.input(seg("A", IRS + 1, ISS + 11, ts=TS), now_ms=32)
    assert len(parse(c.send_next(b"a" * 10, now_ms=33)).payload) == 10
    c = established(nagle=False)
    c.send_next(b"a" * 10, now_ms=30)
    assert len(parse(c.send_next(b"a" * 20, now_ms=31)).payload) == 10


def test_send_respects_mss_window_and_cwnd():
    c = established(nagle=False)
    c.input(seg("A", IRS + 1, ISS + 1, win=50, ts=TS), now_ms=30)   # 50 << 6 = 3200 bytes
    sizes = []
    while (s := c.send_next(b"d" * 10000, now_ms=31)) is not None:
        sizes.append(len(parse(s).payload))
    assert sizes == [1388, 1388, 424]                              # MSS 1400 - 12 (timestamps)
    c.input(seg("A", IRS + 1, ISS + 1 + 3200, win=1000, ts=TS), now_ms=40)
    c.set_cwnd(4000)
    assert sum(len(parse(s).payload) for s in iter(lambda: c.send_next(b"d" * 6800, now_ms=41), None)) == 4000


def test_pure_ack_stays_inside_a_window_the_peer_shrank():
    """A peer short of memory (Linux) drops data sent into the window it
    offered and then offers 0 at the same RCV.NXT: an ACK at SND.MAX would be
    out of its window and dropped unread, with the window update it carries,
    so the ACK goes out at the right edge the peer now offers."""
    c = established(nagle=False)
    c.input(seg("A", IRS + 1, ISS + 1, win=16, ts=TS), now_ms=30)          # 16 << 6 = 1024 bytes
    assert len(parse(c.send_next(b"d" * 5000, now_ms=31)).payload) == 1024
    assert parse(c.make_ack(now_ms=32)).seq == ISS + 1 + 1024               # SND.MAX, inside
    c.input(seg("A", IRS + 1, ISS + 1, win=0, ts=TS), now_ms=33)            # the 1024 bytes dropped
    assert c.fields()["snd_max"] == ISS + 1 + 1024
    assert parse(c.make_ack(now_ms=34)).seq == ISS + 1                      # the peer's RCV.NXT
    c.input(seg("A", IRS + 1, ISS + 1 + 512, win=0, ts=TS), now_ms=35)      # it took half after all
    assert parse(c.make_ack(now_ms=36)).seq == ISS + 1 + 512


def test_receiver_sws_avoidance_opens_the_window_a_step_at_a_time():
    """RFC 9293 s.3.8.6.2.2: the right edge moves by min(RCV.BUFF / 2, MSS)
    or more, so reads of a few bytes do not reopen slivers; it never moves
    left."""
    c = tc.Connection(lcl=US, rmt=PEER, iss=ISS, ts_offset=0, rcv_buf=4096)    # MSS 1460, wscale 7
    c.passive_open(seg("S", IRS, options=SYN_OPTS), now_ms=10)
    assert parse(c.make_syn(now_ms=10, rx_space=4096)).window == 4096
    c.input(seg("A", IRS + 1, ISS + 1, ts=(101, 10)), now_ms=20)
    c.input(seg("PA", IRS + 1, ISS + 1, payload=b"z" * 4000, ts=TS), now_ms=30, rx_space=4096)
    windows = [parse(c.make_ack(now_ms=31 + i, rx_space=space)).window << 7
               for i, space in enumerate([96, 1096, 1700, 3096, 3200])]
    # 96 left of the promise (kept, rounded up to the scale); 1000 bytes read: less than
    # a step (1460) past the edge; 1700 (1664 in the scale): past it; 3096 is not a step past
    # that new edge, 3200 is
    assert windows == [128, 128, 1664, 1664, 3200]


def test_sack_blocks_latest_first_and_limited():
    c = established()
    c.input(seg("PA", IRS + 301, ISS + 1, payload=b"x" * 100, ts=TS), now_ms=30)
    c.input(seg("PA", IRS + 101, ISS + 1, payload=b"x" * 100, ts=TS), now_ms=31)
    p = parse(c.make_ack(now_ms=32, ooo=[(100, 100), (300, 100), (600, 50), (800, 10)]))
    assert opts_of(p)["SAck"] == (IRS + 101, IRS + 201, IRS + 301, IRS + 401, IRS + 601, IRS + 651)
    c = established(ts=False)
    p = parse(c.make_ack(now_ms=32, ooo=[(1, 1), (3, 1), (5, 1), (7, 1), (9, 1)]))
    assert len(opts_of(p)["SAck"]) == 8                            # four blocks without timestamps


def test_data_trimmed_to_fifo_space_and_duplicate_acked():
    c = established()
    act = c.input(seg("PA", IRS + 1, ISS + 1, payload=b"y" * 100, ts=TS), now_ms=30, rx_space=40)
    assert act["rx"] == (0, 40, 0) and act["error"] == "rx-window"
    act = c.input(seg("PA", IRS + 1, ISS + 1, payload=b"y" * 100, ts=TS), now_ms=31)
    assert act["rx"] == (40, 60, 0)                                # the first 40 skipped
    act = c.input(seg("PA", IRS + 1, ISS + 1, payload=b"y" * 100, ts=TS), now_ms=32)
    assert act["actions"] >= {"send-ack"} and "deliver" not in act["actions"]


def test_fin_to_close_wait_ack_rides_on_the_apps_fin():
    """The FIN that moves to CLOSE_WAIT is ACKed with a delay: the app's
    FIN, sent within it, carries the ACK (one segment, not two)."""
    c = established()
    act = c.input(seg("FA", IRS + 1, ISS + 1, ts=TS), now_ms=30)
    assert c.state == "CLOSE_WAIT" and "delack" in act["actions"] and "send-ack" not in act["actions"]
    c.app_close()
    fin = parse(c.send_next(b"", now_ms=31))
    assert fin.flags == "FA" and fin.seq == ISS + 1 and fin.ack == IRS + 2     # acknowledges their FIN
    assert c.state == "LAST_ACK"
    assert "send-ack" not in c.delack_expired()["actions"]                  # nothing is owed any more


def test_fin_to_close_wait_acked_when_the_delay_ends():
    """An app that stays open: the delayed-ACK timer ACKs the FIN."""
    c = established()
    c.input(seg("FA", IRS + 1, ISS + 1, ts=TS), now_ms=30)
    assert "send-ack" in c.delack_expired()["actions"]
    ack = parse(c.make_ack(now_ms=70, rx_space=1 << 16))
    assert ack.flags == "A" and ack.ack == IRS + 2


def test_fin_with_a_gap_before_it_is_acked_at_once():
    """A FIN beyond a gap is ACKed at once (a duplicate ACK for the gap)."""
    c = established()
    act = c.input(seg("FA", IRS + 5, ISS + 1, ts=TS), now_ms=30)
    assert c.state == "ESTABLISHED" and "send-ack" in act["actions"]


def test_out_of_order_fin_taken_when_the_gap_fills():
    c = established()
    act = c.input(seg("FPA", IRS + 11, ISS + 1, payload=b"b" * 10, ts=TS), now_ms=30)
    assert act["rx"] == (0, 10, 10) and c.state == "ESTABLISHED"
    act = c.input(seg("PA", IRS + 1, ISS + 1, payload=b"a" * 10, ts=TS), now_ms=31)
    assert act["rx"] == (0, 10, 0)
    act = c.rcv_joined(10)                                         # the fifo joined the 10 ooo bytes
    assert c.state == "CLOSE_WAIT" and "peer-fin" in act["actions"]
    assert c.fields()["rcv_nxt"] == IRS + 22


def test_app_reset_and_time_wait_expiry():
    c = established()
    act = c.app_reset()
    assert act["rst"][0] == ISS + 1 and "closed" in act["actions"] and c.state == "CLOSED"
    c = time_wait()
    assert "closed" in c.time_wait_expired()["actions"] and c.state == "CLOSED"
    c = syn_sent()
    assert "send-rst" not in c.app_close()["actions"] and c.state == "CLOSED"


def test_isn_rfc6528():
    key = bytes(range(16))
    # SipHash-2-4 reference vectors (the paper, appendix A)
    assert tc.siphash24(key, b"") == 0x726fdb47dd0e0e31
    assert tc.siphash24(key, bytes(range(15))) == 0xa129ca6149be45e5
    a = tc.isn(key, 1, 80, 2, 40000, 0)
    assert tc.isn(key, 1, 80, 2, 40000, 4000) == (a + 1000) % 2**32          # M ticks every 4 us
    assert tc.isn(key, 1, 80, 2, 40001, 0) != a
    assert tc.isn(bytes(16), 1, 80, 2, 40000, 0) != a


# -- two connections through a model of the rx fifo -------------------------

def test_handshake_and_transfer_both_ways_with_small_windows():
    net = Net(fifo_size=4096)
    net.connect()
    rnd = random.Random(1)
    blob_a = bytes(rnd.getrandbits(8) for _ in range(100_000))
    blob_b = bytes(rnd.getrandbits(8) for _ in range(30_000))
    assert net.exchange(blob_a, blob_b) == (blob_a, blob_b)
    assert not net.a.tx and not net.b.tx


def test_reordered_segments_reassemble_with_sack():
    net = Net()
    net.connect()
    rnd = random.Random(7)
    net.mangle = lambda batch: rnd.sample(batch, len(batch))
    blob = bytes(rnd.getrandbits(8) for _ in range(50_000))
    net.a.tx += blob
    net.push(net.a)
    net.run()
    assert bytes(net.b.fifo.data) == blob and not net.a.tx
    assert net.sacks, "reordering produced no SACK block"


def test_simultaneous_open():
    net = Net()
    net.a.c.active_open(net.now)
    net.b.c.active_open(net.now)
    net.send(net.a, net.a.c.make_syn(net.now, 1 << 16))
    net.send(net.b, net.b.c.make_syn(net.now, 1 << 16))
    net.run()
    assert net.a.c.state == net.b.c.state == "ESTABLISHED"
    assert "established" in net.a.events and "established" in net.b.events


def test_orderly_close_from_one_side():
    net = Net()
    net.connect()
    net.a.tx += b"last words"
    net.act(net.a, net.a.c.app_close())
    net.run()
    assert net.a.c.state == "FIN_WAIT_2" and net.b.c.state == "CLOSE_WAIT"
    assert bytes(net.b.fifo.data) == b"last words" and "peer-fin" in net.b.events
    net.act(net.b, net.b.c.app_close())
    net.run()
    assert net.b.c.state == "CLOSED" and "closed" in net.b.events
    assert net.a.c.state == "TIME_WAIT" and "time-wait" in net.a.events


def test_simultaneous_close():
    net = Net()
    net.connect()
    net.act(net.a, net.a.c.app_close())
    net.act(net.b, net.b.c.app_close())    # both FINs are on the wire before either arrives
    net.run()
    assert net.a.c.state == net.b.c.state == "TIME_WAIT"


def test_reset_reaches_the_peer():
    net = Net()
    net.connect()
    net.act(net.a, net.a.c.app_reset())
    net.run()
    assert net.a.c.state == net.b.c.state == "CLOSED" and "reset" in net.b.events


def test_rst_to_syn_on_closed_port_refuses():
    net = Net()
    net.a.c.active_open(net.now)
    syn = net.a.c.make_syn(net.now, 1 << 16)
    act = tc.closed_input(syn)
    rst = tc.rst_bytes(act, 2000, 1000)
    act = net.a.c.input(rst, net.now)
    assert {"refused", "closed"} <= act["actions"] and net.a.c.state == "CLOSED"


# -- hostile segments: invariants hold whatever arrives --------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_SEGMENT = st.tuples(
    st.sampled_from(["A", "PA", "FA", "R", "RA", "S", "SA", "", "FPA", "UA"]),
    st.integers(-70000, 70000),           # seq relative to the connection's RCV.NXT
    st.integers(-70000, 70000),           # ack relative to its SND.UNA
    st.integers(0, 3000),                 # payload bytes
    st.integers(0, 65535),                # window
    st.one_of(st.none(), st.integers(0, 2**32 - 1)),   # TSval
    st.integers(0, 1 << 17),              # rx fifo space
)


def _seq_le(a, b):
    return (b - a) % 2**32 < 2**31


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(BUILDERS)), st.lists(_SEGMENT, min_size=1, max_size=12))
def test_random_segments_keep_the_invariants(start, segments):
    c = BUILDERS[start]()
    tx = b"t" * 4000
    now = 100
    for flags, dseq, dack, n, win, tsval, space in segments:
        f = c.fields()
        if c.state == "CLOSED":
            break
        seq = (f["rcv_nxt"] + dseq) % 2**32
        ack = (f["snd_una"] + dack) % 2**32
        ts = (tsval, 0) if tsval is not None else None
        now += 7
        act = c.input(seg(flags, seq, ack, win=win, payload=b"p" * n, ts=ts), now_ms=now, rx_space=space)
        g = c.fields()
        if "deliver" in act["actions"]:
            skip, ln, off = act["rx"]
            assert skip + ln <= n and off + ln <= space and ln > 0
        if g["state"] != 0:
            if f["state"] != 2:                                          # SYN_SENT learns it from the SYN
                assert _seq_le(f["rcv_nxt"], g["rcv_nxt"])              # never moves back
            assert _seq_le(g["snd_una"], g["snd_nxt"]) and _seq_le(g["snd_nxt"], g["snd_max"])
            assert _seq_le(f["snd_una"], g["snd_una"])
        assert act.get("tx_acked", 0) <= (g["snd_max"] - g["iss"]) % 2**32
        while (s := c.send_next(tx, now_ms=now, rx_space=space)) is not None:
            parse(s)                                                     # checksummed, well formed
        parse(c.make_ack(now_ms=now, rx_space=space))


def test_super_segments_are_whole_mss_but_for_the_tail():
    """max_seg > MSS (the egress does TSO): one segment carries up to
    max_seg bytes, cut to whole MSS by the window or max_seg; only the tail
    of the data may be short, and a window's sub-MSS remainder goes out
    apart. After a timeout the resend is one MSS (cwnd), not a super-segment."""
    c = established()
    mss = 1388                                                      # MSS 1400 - 12 (timestamps)
    c.input(seg("A", IRS + 1, ISS + 1, win=1000, ts=TS), now_ms=30)     # 64000 bytes
    c.set_cwnd(20 * mss)
    sizes = [len(parse(s).payload) for s in iter(lambda: c.send_next(b"d" * 30000, now_ms=31, max_seg=8 * mss),
                                                   None)]
    assert sizes == [8 * mss, 8 * mss, 4 * mss]                     # cwnd (20 MSS) cut the third
    c.input(seg("A", IRS + 1, ISS + 1 + 20 * mss, win=1000, ts=TS), now_ms=40)
    c.set_cwnd(100 * mss)
    rest = 30000 - 20 * mss
    out = [parse(s) for s in iter(lambda: c.send_next(b"d" * rest, now_ms=41, max_seg=8 * mss), None)]
    assert [len(p.payload) for p in out] == [rest]                  # the tail: 2240 bytes, one segment
    assert out[0].flags == "PA"
    c.rewind()                                                      # as an RTO does: go back to SND.UNA
    c.set_cwnd(mss)
    assert len(parse(c.send_next(b"d" * rest, now_ms=42, max_seg=8 * mss)).payload) == mss


def test_window_remainder_of_a_super_segment_is_not_sent_short():
    c = established(nagle=False)
    mss = 1388
    c.input(seg("A", IRS + 1, ISS + 1, win=50, ts=TS), now_ms=30)   # 3200 bytes: 2 MSS + 424
    sizes = [len(parse(s).payload) for s in iter(lambda: c.send_next(b"d" * 10000, now_ms=31, max_seg=40 * mss),
                                                   None)]
    assert sizes == [2 * mss, 424]                                  # as one MSS at a time would: 1388, 1388, 424
