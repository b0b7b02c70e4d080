"""Loss recovery in the connection: NewReno fast retransmit and partial
ACKs (RFC 5681 s.3.2, RFC 6582) with limited transmit (RFC 3042),
SACK-based recovery (RFC 6675), the retransmission timer (RFC 6298:
backoff, Karn, go-back-N, giving up), tail loss probes (RFC 8985 s.7),
early retransmit (RFC 5827), and transfers through a lossy, reordering,
duplicating wire that must end byte-exact."""
import random

import pytest
from scapy.layers.inet import TCP

from graphnet.transport.tcp.testing import Net
from test_tcp_conn import ISS, IRS, established, parse, seg, TS

MSS = 1400 - 12                              # the peer's MSS less the timestamp option


def send_all(c, tx, now=100):
    """Every segment the connection sends now; tx is its tx fifo (head at
    SND.UNA)."""
    out = []
    while (s := c.send_next(bytes(tx), now_ms=now)) is not None:
        out.append(parse(s))
    return out


def acked(c, tx, segment, now_ms):
    """Input an ACK and drop what it acknowledged from the tx fifo."""
    act = c.input(segment, now_ms=now_ms)
    del tx[:act.get("tx_acked", 0)]
    return act


def ack(n_segs, sack=(), ts=TS):
    opts = [("SAck", tuple(x for blk in sack for x in blk))] if sack else []
    return seg("A", IRS + 1, ISS + 1 + n_segs * MSS, win=1000, ts=ts, options=opts)


def test_newreno_fast_retransmit_and_partial_acks():
    c = established(cc="newreno", sack=False, nagle=False)
    c.set_cwnd(10 * MSS)
    data = bytes(range(256)) * 70                                 # 17920 bytes: 12.9 segments
    tx = bytearray(data)
    sent = send_all(c, tx)
    assert len(sent) == 10
    # segments 0 and 5 are lost; 1-4 arrive: four duplicate ACKs. The
    # first two send a new segment each past cwnd (RFC 3042 limited transmit)
    for i in range(2):
        acked(c, tx, ack(0), 110)
        assert [p.seq for p in send_all(c, tx)] == [ISS + 1 + (10 + i) * MSS]
    acked(c, tx, ack(0), 111)                                     # the third: fast retransmit
    f = c.fields()
    assert f["recovery"] == 1 and f["ssthresh"] == 6 * MSS and f["cwnd"] == 9 * MSS   # FlightSize 12
    rtx = send_all(c, tx)
    assert [p.seq for p in rtx] == [ISS + 1] and bytes(rtx[0].payload) == data[:MSS]
    acked(c, tx, ack(0), 112)                                     # inflation: one MSS per dup ACK
    assert c.fields()["cwnd"] == 10 * MSS
    for _ in range(4):                                            # segments 6-9 arrive
        acked(c, tx, ack(0), 113)
    assert c.fields()["cwnd"] == 14 * MSS
    new = send_all(c, tx)                                         # inflated past the flight: new data
    assert [p.seq for p in new] == [ISS + 1 + 12 * MSS]
    # the retransmission arrives: ACK up to the hole at segment 5 (partial)
    act = acked(c, tx, ack(5), 120)
    assert act["tx_acked"] == 5 * MSS
    assert c.fields()["cwnd"] == 14 * MSS - 5 * MSS + MSS          # RFC 6582 step 5: deflate, add one back
    rtx = send_all(c, tx)
    assert rtx[0].seq == ISS + 1 + 5 * MSS                        # resent at once, no timeout
    assert bytes(rtx[0].payload) == data[5 * MSS:6 * MSS]
    assert len(rtx) == 1                                          # all data is out already
    assert c.fields()["recovery"] == 1
    acked(c, tx, ack(12), 130)                                    # full ACK (recover = 12 segments)
    f = c.fields()
    # RFC 6582 step 3 option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS)
    flight = f["snd_max"] - f["snd_una"]
    assert flight == len(data) - 12 * MSS
    assert f["recovery"] == 0 and f["cwnd"] == min(6 * MSS, max(flight, MSS) + MSS)
    assert f["n_fast_retransmits"] == 1 and f["n_retransmits"] == 2


def test_sack_recovery_retransmits_only_the_holes():
    c = established(cc="cubic", sack=True, nagle=False)
    c.set_cwnd(10 * MSS)
    tx = bytearray(bytes(range(256)) * 60)
    assert len(send_all(c, tx)) == 10
    base = ISS + 1
    blk = lambda a, b: (base + a * MSS, base + b * MSS)
    # segments 2 and 6 lost: SACKs for 3, 3-4, 3-5 (IsLost(2) after more than 2 MSS above)
    acked(c, tx, ack(2), 110)
    acked(c, tx, ack(2, [blk(3, 4)]), 111)
    acked(c, tx, ack(2, [blk(3, 5)]), 112)
    assert c.fields()["recovery"] == 0
    acked(c, tx, ack(2, [blk(3, 6)]), 113)
    f = c.fields()
    assert f["recovery"] == 2 and f["cwnd"] == f["ssthresh"] == int(8 * MSS * 0.7)    # CUBIC beta
    out = send_all(c, tx)
    assert [p.seq for p in out] == [base + 2 * MSS]               # segment 2 only: pipe limits the rest
    # 7, 8, 9 are SACKed: 6 is lost too; pipe shrinks, NextSeg picks hole 6
    acked(c, tx, ack(2, [blk(7, 10), blk(3, 6)]), 114)
    out = send_all(c, tx)
    assert out[0].seq == base + 6 * MSS
    assert all(p.seq >= base + 10 * MSS for p in out[1:])          # then new data, never SACKed bytes
    acked(c, tx, ack(10), 120)
    assert c.fields()["recovery"] == 1 - 1 and c.fields()["sack_blocks"] == []


def test_rto_backoff_karn_and_go_back_n():
    c = established(cc="newreno", sack=False, nagle=False)
    tx = b"z" * (3 * MSS)
    assert len(send_all(c, tx)) == 3
    rto0 = c.fields()["rto_us"]
    act = c.rto_expired(now_ms=1000)
    f = c.fields()
    assert {"tx-more", "rtx-arm"} <= act["actions"]
    assert f["rto_us"] == 2 * rto0 and f["cwnd"] == MSS and f["snd_nxt"] == ISS + 1
    out = send_all(c, tx, now=1000)
    assert [p.seq for p in out] == [ISS + 1]                      # one segment: the loss window
    assert f["ssthresh"] == 2 * MSS
    # the ACK of a retransmitted segment gives no RTT sample without timestamps (Karn)
    c2 = established(ts=False, nagle=False)
    send_all(c2, tx)
    c2.rto_expired(now_ms=1000)
    send_all(c2, tx, now=1000)
    act = c2.input(seg("A", IRS + 1, ISS + 1 + MSS, win=1000), now_ms=1005)
    assert "rtt_ms" not in act


def test_gives_up_after_max_retries():
    c = established(data_retries=3)
    send_all(c, b"q" * 100)
    acts = [c.rto_expired(now_ms=1000 * i)["actions"] for i in range(4)]
    assert "reset" in acts[-1] and "send-rst" in acts[-1] and c.state == "CLOSED"
    from test_tcp_conn import syn_sent, syn_rcvd
    s = syn_sent(syn_retries=2)
    acts = [s.rto_expired(now_ms=1000 * i)["actions"] for i in range(3)]
    assert acts[0] >= {"send-syn", "rtx-arm"} and {"refused", "closed"} <= acts[2]
    h = syn_rcvd(syn_retries=1)
    acts = [h.rto_expired(now_ms=1000 * i)["actions"] for i in range(2)]
    assert "forget" in acts[1] and h.state == "CLOSED"


def lossy(rnd, drop=0.05, dup=0.02, reorder=True):
    def mangle(batch):
        out = []
        for item in batch:
            r = rnd.random()
            if r < drop:
                continue
            out.append(item)
            if r > 1 - dup:
                out.append(item)
        if reorder:
            rnd.shuffle(out)
        return out
    return mangle


@pytest.mark.parametrize("cc, sack", [("cubic", True), ("cubic", False), ("newreno", True), ("newreno", False)])
@pytest.mark.parametrize("loss", [0.01, 0.05, 0.10])
def test_lossy_transfer_is_byte_exact(cc, sack, loss):
    rnd = random.Random(f"{cc}-{sack}-{loss}")
    net = Net(fifo_size=1 << 16, cc=cc, sack=sack, nagle=False)
    net.connect()
    net.mangle = lossy(rnd, drop=loss)
    blob = bytes(rnd.getrandbits(8) for _ in range(150_000))
    back = bytes(rnd.getrandbits(8) for _ in range(20_000))
    assert net.exchange(blob, back, rounds=200) == (blob, back)
    fa = net.a.c.fields()
    assert fa["n_retransmits"] > 0 and fa["n_fast_retransmits"] + fa["n_timeouts"] > 0
    if sack:
        assert net.sacks
    # and both close cleanly through the same wire
    net.act(net.a, net.a.c.app_close())
    net.run(max_expiries=50)
    net.act(net.b, net.b.c.app_close())
    net.run(max_expiries=50)
    assert net.b.c.state == "CLOSED" and net.a.c.state == "TIME_WAIT"


def test_fast_recovery_used_under_light_loss():
    """With 1% loss, SACK and an app that reads at once, most losses are
    repaired by fast retransmit, not by the timer."""
    rnd = random.Random(3)
    net = Net(fifo_size=1 << 18, sack=True, nagle=False)
    net.app_reads = True
    net.connect()
    net.mangle = lossy(rnd, drop=0.01, dup=0, reorder=False)
    blob = bytes(rnd.getrandbits(8) for _ in range(400_000))
    net.a.tx += blob
    net.push(net.a)
    net.run(max_expiries=100)
    assert net.b.received() == blob
    f = net.a.c.fields()
    assert f["n_fast_retransmits"] > f["n_timeouts"], f


def test_zero_window_probe_and_its_answer():
    from test_tcp_conn import established as est
    c = est(nagle=False)
    tx = bytearray(b"w" * 5000)
    c.input(seg("A", IRS + 1, ISS + 1, win=0, ts=TS), now_ms=100)        # the peer's window shuts
    assert send_all(c, tx) == [] and c.timer_wanted()               # persist
    act = c.rto_expired(now_ms=1000)
    assert act["actions"] == {"send-probe", "rtx-arm"}
    probe = parse(c.make_probe(now_ms=1000))
    assert probe.seq == ISS and len(probe.payload) == 0                # SND.UNA - 1: outside the window
    for i in range(20):                                                # probing never gives up
        assert "reset" not in c.rto_expired(now_ms=2000 + i)["actions"]
    # the peer answers a probe out of its window with an ACK; a reopened window lets data go
    c.input(seg("A", IRS + 1, ISS + 1, win=100, ts=TS), now_ms=3000)
    assert len(send_all(c, tx)) > 0


def test_close_during_handshake_sends_fin_once_established():
    from test_tcp_conn import syn_rcvd
    c = syn_rcvd()
    assert c.app_close()["actions"] == set() and c.state == "SYN_RCVD"
    act = c.input(seg("A", IRS + 1, ISS + 1, ts=TS), now_ms=20)
    assert "established" in act["actions"] and c.state == "FIN_WAIT_1"
    fin = parse(c.send_next(b"", now_ms=21))
    assert fin.flags == "FA" and fin.seq == ISS + 1


def test_fin_resent_after_timeout():
    from test_tcp_conn import fin_wait_1
    c = fin_wait_1()
    act = c.rto_expired(now_ms=2000)
    assert {"tx-more", "rtx-arm"} <= act["actions"]
    fin = parse(c.send_next(b"", now_ms=2000))
    assert fin.flags == "FA" and fin.seq == ISS + 1
    c.input(seg("A", IRS + 1, ISS + 2, ts=TS), now_ms=2010)
    assert c.state == "FIN_WAIT_2"


def test_delayed_ack_timer_acks_only_when_owed():
    c = established()
    act = c.input(seg("PA", IRS + 1, ISS + 1, payload=b"x" * 10, ts=TS), now_ms=30)
    assert "delack" in act["actions"]
    assert c.delack_expired()["actions"] == {"send-ack"}
    parse(c.make_ack(now_ms=40))                                   # the ACK went out
    assert c.delack_expired()["actions"] == set()


def test_keepalive_probes_then_reset():
    c = established(keepalive_probes=3)
    for _ in range(3):
        assert c.keepalive_expired()["actions"] == {"send-probe"}
    c.input(seg("A", IRS + 1, ISS + 1, ts=TS), now_ms=50)            # an answer: the count restarts
    assert c.fields()["ka_probes"] == 0
    for _ in range(3):
        c.keepalive_expired()
    act = c.keepalive_expired()
    assert {"send-rst", "reset", "closed"} <= act["actions"] and c.state == "CLOSED"


# -- RFC 8985 tail loss probes, RFC 5827 early retransmit, Karn for echoes -----

def test_tail_loss_probe_sends_one_new_segment_then_the_rto_runs():
    """The timer runs first as the PTO (2 SRTT, at least 10 ms): its expiry
    sends one new segment past cwnd, without backoff or a cwnd cut; then
    it runs as the RTO, and only one probe goes per tail."""
    c = established(cc="newreno", nagle=False)
    c.set_cwnd(2 * MSS)
    tx = bytearray(b"t" * (4 * MSS))
    assert len(send_all(c, tx)) == 2                              # cwnd-limited
    f = c.fields()
    pto = c.rtx_timeout_ms()
    assert f["srtt_us"] > 0 and pto == max(2 * f["srtt_us"], 10000) // 1000 < f["rto_us"] // 1000
    act = c.rto_expired(now_ms=100 + pto)
    assert {"tx-more", "rtx-arm"} <= act["actions"]
    g = c.fields()
    assert g["n_tlp_probes"] == 1 and g["n_timeouts"] == 0
    assert g["rto_us"] == f["rto_us"] and g["cwnd"] == 2 * MSS and g["snd_nxt"] == ISS + 1 + 2 * MSS
    probe = send_all(c, tx, now=100 + pto)
    assert [p.seq for p in probe] == [ISS + 1 + 2 * MSS] and len(probe[0].payload) == MSS
    assert c.rtx_timeout_ms() == f["rto_us"] // 1000              # the probe is out: the RTO next
    c.rto_expired(now_ms=400)
    g = c.fields()
    assert g["n_timeouts"] == 1 and g["n_tlp_probes"] == 1 and g["rto_us"] == 2 * f["rto_us"]


def test_no_probe_without_sack_or_while_backed_off():
    c = established(sack=False, nagle=False)
    send_all(c, b"n" * MSS)
    assert c.rtx_timeout_ms() == c.fields()["rto_us"] // 1000     # RFC 8985 needs SACK
    c = established(nagle=False)
    tx = b"n" * (3 * MSS)
    send_all(c, tx)
    c.rto_expired(now_ms=300)                                     # a plain RTO: backed off
    send_all(c, tx, now=300)
    assert c.rtx_timeout_ms() == c.fields()["rto_us"] // 1000


@pytest.mark.parametrize("dsack", [False, True])
def test_tail_loss_probe_resends_the_last_segment(dsack):
    """No new data: the probe is the last segment again. When the ACK
    covering it carries no DSACK, the probe repaired a loss: cwnd is cut
    (RFC 8985 s.7.4.2); with a DSACK only an ACK was lost: no cut."""
    c = established(cc="newreno", nagle=False)
    c.set_cwnd(10 * MSS)
    tx = bytearray(b"u" * (3 * MSS))
    assert len(send_all(c, tx)) == 3
    pto = c.rtx_timeout_ms()
    c.rto_expired(now_ms=100 + pto)
    probe = send_all(c, tx, now=100 + pto)
    assert [p.seq for p in probe] == [ISS + 1 + 2 * MSS] and bytes(probe[0].payload) == bytes(tx[2 * MSS:])
    cwnd = c.fields()["cwnd"]
    sack = [(ISS + 1 + 2 * MSS, ISS + 1 + 3 * MSS)] if dsack else []
    acked(c, tx, ack(3, sack, ts=(300, 100 + pto)), 100 + pto + 5)
    f = c.fields()
    if dsack:
        assert f["cwnd"] >= cwnd and f["ssthresh"] > 10 * MSS
    else:
        assert f["ssthresh"] == 2 * MSS and f["cwnd"] < 3 * MSS   # half of 3 MSS in flight, at least 2 MSS
    assert f["n_tlp_probes"] == 1 and f["n_retransmits"] == 1 and f["recovery"] == 0


def test_early_retransmit_when_too_few_segments_are_out():
    """Two segments out, the first lost: one SACK is all there can be, and
    it starts recovery (RFC 5827); with five out, one SACK does not."""
    c = established(nagle=False)
    tx = bytearray(b"e" * (2 * MSS))
    assert len(send_all(c, tx)) == 2
    acked(c, tx, ack(0, [(ISS + 1 + MSS, ISS + 1 + 2 * MSS)]), 110)
    f = c.fields()
    assert f["recovery"] == 2 and f["n_early_retransmits"] == 1 and f["n_fast_retransmits"] == 1
    rtx = send_all(c, tx)
    assert [p.seq for p in rtx] == [ISS + 1] and bytes(rtx[0].payload) == bytes(tx[:MSS])
    c = established(nagle=False)
    tx = bytearray(b"f" * (5 * MSS))
    assert len(send_all(c, tx)) == 5
    acked(c, tx, ack(0, [(ISS + 1 + 4 * MSS, ISS + 1 + 5 * MSS)]), 110)
    assert c.fields()["recovery"] == 0 and c.fields()["n_early_retransmits"] == 0


def test_no_rtt_sample_from_an_echo_older_than_a_retransmission():
    """Karn with timestamps: after a retransmission, an ACK that echoes
    the original's TSval (the peer's TS.Recent, as a duplicate's ACK does)
    would time the RTO's wait too; no sample until an echo is at least
    the retransmission's TSval."""
    c = established(nagle=False)
    tx = bytearray(b"k" * MSS)
    send_all(c, tx, now=100)                                      # TSval 100
    c.rto_expired(now_ms=400)
    assert [p.seq for p in send_all(c, tx, now=400)] == [ISS + 1]    # TSval 400
    before = c.fields()
    acked(c, tx, ack(1, ts=(300, 100)), 410)
    f = c.fields()
    assert f["snd_una"] == ISS + 1 + MSS
    assert f["srtt_us"] == before["srtt_us"] and f["rto_us"] == before["rto_us"]   # still backed off
    tx += b"k" * MSS
    send_all(c, tx, now=420)
    acked(c, tx, ack(2, ts=(301, 420)), 425)                      # echoes a TSval after it: 5 ms
    f = c.fields()
    assert f["srtt_us"] != before["srtt_us"] and f["rto_us"] < before["rto_us"]
