"""SYN cookies (RFC 4987): the cookie SYN-ACK, validation of the final
ACK (tampering, age), the options restored from the echoed timestamp, the
connection made from it; the bounded SYN backlog under a flood."""
import random
import struct

import pytest
from scapy.layers.inet import TCP

from graphnet.transport.tcp.syncookie import Listener, mss_table
from graphnet.wire import tcp as wt

US = (0x0A000001, 80)
PEER = (0x0A000002, 40000)
KEY = bytes(range(16))
NOW = 5_000_000                                   # ms


def from_peer(flags, seq, ack=0, options=(), payload=b"", win=502, rmt=PEER):
    raw = bytearray(bytes(TCP(sport=rmt[1], dport=US[1], seq=seq, ack=ack, flags=flags, window=win,
                              options=list(options)) / payload))
    raw[16:18] = b"\0\0"
    raw[16:18] = wt.checksum(rmt[0], US[0], raw).to_bytes(2, "big")
    return bytes(raw)


def handshake(listener, syn_opts, now=NOW, isn=777):
    synack = TCP(listener.synack(PEER, from_peer("S", isn, options=syn_opts), now))
    opts = dict((k, v) for k, v in synack.options if k != "NOP")
    ack_opts = [("Timestamp", (1234, opts["Timestamp"][0]))] if "Timestamp" in opts else []
    return synack, opts, ack_opts


FULL = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None), ("WScale", 9)]


def test_cookie_synack_and_final_ack_restore_the_options():
    lst = Listener(KEY, lcl=US, wscale=7)
    synack, opts, ack_opts = handshake(lst, FULL)
    assert synack.flags == "SA" and synack.ack == 778 and synack.window == 65535
    assert opts["MSS"] == 1460 and opts["WScale"] == 7 and "SAckOK" in opts
    assert opts["Timestamp"][1] == 1000 and opts["Timestamp"][0] & 0x1f == 9 | 0x10   # wscale 9, SACK
    assert synack.seq >> 27 == (NOW >> 16) & 31 and (synack.seq >> 24) & 7 == mss_table().index(1460)
    ack = from_peer("A", 778, synack.seq + 1, ack_opts)
    assert lst.check(PEER, ack, NOW + 10) == {"mss": 1460, "wscale": 9, "sack": True, "timestamps": True}
    conn, actions, rx = lst.open(PEER, from_peer("PA", 778, synack.seq + 1, ack_opts, payload=b"GET /"), NOW + 10)
    f = conn.fields()
    assert conn.state == "ESTABLISHED" and {"established", "deliver"} <= set(actions) and rx == (0, 5, 0)
    assert f["snd_mss"] == 1460 - 12 and f["snd_wscale"] == 9 and f["rcv_wscale"] == 7
    assert f["iss"] == synack.seq and f["rcv_nxt"] == 778 + 5 and f["ts_recent"] == 1234
    assert f["snd_wnd"] == 502 << 9
    # and it talks on: an ACK from it carries our scaled window and the echo
    p = TCP(conn.make_ack(now_ms=NOW + 20, rx_space=1 << 20))
    assert p.ack == 783 and dict(p.options)["Timestamp"][1] == 1234


def test_without_timestamps_only_the_mss_survives():
    lst = Listener(KEY, lcl=US)
    synack, opts, ack_opts = handshake(lst, [("MSS", 1450), ("SAckOK", b""), ("NOP", None), ("WScale", 3)])
    assert set(opts) == {"MSS"}                                  # nothing offered that cannot be kept
    ck = lst.check(PEER, from_peer("A", 778, synack.seq + 1), NOW)
    assert ck == {"mss": 1440, "wscale": None, "sack": False, "timestamps": False}   # rounded down
    synack, _, _ = handshake(lst, [])
    assert lst.check(PEER, from_peer("A", 778, synack.seq + 1), NOW)["mss"] == 536   # RFC 9293 default


@pytest.mark.parametrize("change", ["ack+1", "port", "addr", "isn", "rst", "syn"])
def test_tampered_acks_are_rejected(change):
    lst = Listener(KEY, lcl=US)
    synack, _, ack_opts = handshake(lst, FULL)
    seq, ack, rmt, flags = 778, synack.seq + 1, PEER, "A"
    if change == "ack+1":
        ack += 1
    elif change == "port":
        rmt = (PEER[0], PEER[1] + 1)
    elif change == "addr":
        rmt = (PEER[0] + 1, PEER[1])
    elif change == "isn":
        seq += 1
    elif change == "rst":
        flags = "RA"
    elif change == "syn":
        flags = "SA"
    assert lst.check(rmt, from_peer(flags, seq, ack, ack_opts, rmt=rmt), NOW) is None
    assert lst.check(PEER, from_peer("A", 778, synack.seq + 1, ack_opts), NOW) is not None
    assert Listener(bytes(16), lcl=US).check(PEER, from_peer("A", 778, synack.seq + 1, ack_opts), NOW) is None


def test_cookie_age():
    lst = Listener(KEY, lcl=US)
    synack, _, ack_opts = handshake(lst, FULL)
    ack = from_peer("A", 778, synack.seq + 1, ack_opts)
    period = 1 << 16
    assert lst.check(PEER, ack, NOW + 2 * period) is not None
    assert lst.check(PEER, ack, NOW + 3 * period) is None                # too old
    assert lst.check(PEER, ack, NOW + 32 * period) is None               # the 5-bit counter wrapped


def test_backlog_policy():
    lst = Listener(KEY, lcl=US, backlog=3, cookies="when-full")
    assert [lst.policy() for _ in range(5)] == ["accept"] * 3 + ["cookie"] * 2
    lst.half_open_gone()
    assert lst.policy() == "accept"
    off = Listener(KEY, lcl=US, backlog=1, cookies="off")
    assert [off.policy() for _ in range(3)] == ["accept", "drop", "drop"]
    assert off.counters()["n_syn_dropped"] == 2
    assert Listener(KEY, cookies="always", backlog=10).policy() == "cookie"


def test_syn_flood_keeps_no_state_and_legitimate_connects_succeed():
    lst = Listener(KEY, lcl=US, backlog=64)
    rnd = random.Random(1)
    syn = bytearray(from_peer("S", 0, options=FULL))
    for i in range(20_000):                       # spoofed sources, never an ACK
        src = (0x0B000000 + rnd.getrandbits(16), 1024 + rnd.getrandbits(15))
        struct.pack_into("!HI", syn, 0, src[1], rnd.getrandbits(32))
        if lst.policy() == "cookie":
            lst.synack(src, syn, NOW + i // 10)
    c = lst.counters()
    assert c["n_half_open"] == 64 and c["n_cookies_sent"] == 20_000 - 64
    # a real client in the middle of it connects
    assert lst.policy() == "cookie"
    synack, _, ack_opts = handshake(lst, FULL, now=NOW + 2000)
    conn, actions, _ = lst.open(PEER, from_peer("A", 778, synack.seq + 1, ack_opts), NOW + 2010)
    assert conn.state == "ESTABLISHED" and "established" in actions


def test_the_cookie_tsval_is_not_ahead_of_the_connection_s_clock():
    """The cookie SYN-ACK's TSval carries the options in its low 5 bits; it
    must not be ahead of the TSvals the connection made from it sends
    next: the peer's PAWS drops segments whose TSval is below TS.Recent
    (a kernel client during a 100 k SYN flood discarded graphnet's data,
    acking nothing, until graphnet's clock passed the SYN-ACK's stamp, up
    to 31 ms; with its RTO, a second per connection)."""
    lst = Listener(KEY, lcl=US, wscale=7)
    for now in range(NOW, NOW + 64):                 # every phase of the 32 ms the bits span
        synack, opts, ack_opts = handshake(lst, FULL, now=now)
        conn, _, _ = lst.open(PEER, from_peer("A", 778, synack.seq + 1, ack_opts), now)
        p = TCP(conn.make_ack(now_ms=now, rx_space=1 << 20))
        ahead = (opts["Timestamp"][0] - dict(p.options)["Timestamp"][0]) & 0xffffffff
        assert ahead == 0 or ahead > 1 << 31, (now, opts["Timestamp"][0], dict(p.options)["Timestamp"][0])
        assert lst.check(PEER, from_peer("A", 778, synack.seq + 1, ack_opts), now)["wscale"] == 9
