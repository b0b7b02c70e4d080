"""RFC 6298 RTO estimator, the congestion-control table (NewReno per RFC
5681, CUBIC per RFC 9438) with scripted ACK sequences, and the SACK
scoreboard's RFC 6675 routines (IsLost, SetPipe, NextSeg)."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from graphnet.transport.tcp.cc import CongestionControl, lookup
from graphnet.transport.tcp.rto import RtoEstimator
from graphnet.transport.tcp.sack import Scoreboard


# -- RTO (RFC 6298) -------------------------------------------------------------

def test_rto_first_and_later_samples_follow_rfc6298():
    r = RtoEstimator()
    assert r.state()["rto_us"] == 1_000_000                    # s.2.1
    assert r.sample(100_000) == 100_000 + 4 * 50_000           # s.2.2: SRTT = R, RTTVAR = R/2
    # s.2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|, SRTT = 7/8 SRTT + 1/8 R'
    assert r.sample(200_000) == 112_500 + 4 * 62_500
    s = r.state()
    assert (s["srtt_us"], s["rttvar_us"]) == (112_500, 62_500)


def test_rto_floor_ceiling_and_backoff():
    r = RtoEstimator(min_us=200_000, max_us=60_000_000)
    assert r.sample(1000) == 200_000                            # below the floor
    assert [r.backoff() for _ in range(3)] == [400_000, 800_000, 1_600_000]
    for _ in range(20):
        r.backoff()
    assert r.state()["rto_us"] == 60_000_000 and r.state()["n_backoff"] == 23
    r.sample(1000)                                              # a new sample ends the backoff
    assert r.state()["rto_us"] == 200_000 and r.state()["n_backoff"] == 0


# -- NewReno (RFC 5681) ---------------------------------------------------------

def test_initial_window_rfc6928():
    assert CongestionControl("newreno", mss=1000).state()["cwnd"] == 10_000
    assert CongestionControl("newreno", mss=1460).state()["cwnd"] == 14_600
    assert CongestionControl("newreno", mss=2000).state()["cwnd"] == 14_600
    assert CongestionControl("newreno", mss=9000).state()["cwnd"] == 18_000


def test_newreno_slow_start_and_congestion_avoidance():
    cc = CongestionControl("newreno", mss=1000)
    assert cc.on_ack(1000) == 11_000
    assert cc.on_ack(5000) == 12_000                            # at most one SMSS per ACK (eq. 2)
    cc.set(cwnd=10_000, ssthresh=10_000)
    for _ in range(9):
        assert cc.on_ack(1000) == 10_000
    assert cc.on_ack(1000) == 11_000                            # one SMSS per cwnd of bytes acked


def test_newreno_congestion_and_timeout():
    cc = CongestionControl("newreno", mss=1000)
    assert cc.on_congestion(flight=20_000) == 10_000 and cc.state()["ssthresh"] == 10_000   # eq. 4
    assert cc.on_congestion(flight=3000) == 2000                # never below 2 SMSS
    assert cc.on_timeout(flight=30_000) == 1000 and cc.state()["ssthresh"] == 15_000
    assert cc.state()["n_congestion"] == 2 and cc.state()["n_timeouts"] == 1


def test_lookup_names_the_choices():
    assert lookup("cubic") != lookup("newreno")
    with pytest.raises(ValueError, match="cubic, newreno"):
        lookup("vegas")


# -- CUBIC (RFC 9438) -----------------------------------------------------------

def run_rtts(cc, mss, rtt, n_rtts, t0=0.0):
    """Each RTT, one ACK of one MSS per segment of cwnd, spread over the
    RTT; returns the time and cwnd (segments) at the end of each RTT."""
    out, t = [], t0
    for _ in range(n_rtts):
        n = max(1, cc.state()["cwnd"] // mss)
        for i in range(n):
            cc.on_ack(mss, now_s=t + rtt * i / n, srtt_s=rtt)
        t += rtt
        out.append((t, cc.state()["cwnd"] / mss))
    return out


def test_cubic_window_follows_the_rfc_curve():
    mss, rtt = 1000, 0.1
    cc = CongestionControl("cubic", mss=mss)
    cc.set(cwnd=100 * mss, ssthresh=10**9)
    cc.on_congestion(flight=100 * mss, now_s=0.0)
    st_ = cc.state()
    assert st_["cwnd"] == 70 * mss and st_["w_max"] == 100.0            # beta 0.7
    k = (100 * (1 - 0.7) / 0.4) ** (1 / 3)                               # eq. 2
    trace = run_rtts(cc, mss, rtt, 80)
    assert cc.state()["k"] == pytest.approx(k)
    w_est, alpha = 70.0, 3 * 0.3 / 1.7
    reno_friendly = 0
    for t, w in trace:
        # eq. 4: W_est grows alpha_cubic per RTT, 1 once past cwnd_prior
        w_est += alpha if w_est < 100 else 1.0
        w_cubic = 0.4 * (t - k) ** 3 + 100                               # eq. 1 at the RTT's end
        reno_friendly += w_est > w_cubic
        assert w == pytest.approx(max(w_cubic, w_est), abs=1.5), (t, w, w_cubic, w_est)
    assert 0 < reno_friendly < len(trace)                                # both regions were visited
    # concave below W_max, a plateau near it at t = K, convex above
    w_at = dict((round(t, 1), w) for t, w in trace)
    assert 98 <= w_at[round(k + rtt / 2, 1)] <= 102
    assert w_at[2.0] - w_at[1.0] > w_at[4.0] - w_at[3.0]                 # concave
    assert w_at[8.0] - w_at[7.0] > w_at[6.0] - w_at[5.0]                 # convex


def test_cubic_fast_convergence():
    cc = CongestionControl("cubic", mss=1000)
    cc.set(cwnd=100_000, ssthresh=10**9, w_max=120.0)
    cc.on_congestion(flight=100_000)
    assert cc.state()["w_max"] == pytest.approx(100 * 1.7 / 2)           # s.4.7


def test_cubic_reno_friendly_region_after_timeout():
    mss = 1000
    cc = CongestionControl("cubic", mss=mss)
    cc.set(cwnd=20 * mss, ssthresh=20 * mss, after_timeout=True, cwnd_prior=50.0, w_max=50.0)
    (t, w), = run_rtts(cc, mss, 1.0, 1)
    # s.4.8: K = 0 and W_max = cwnd, so W_cubic(1 s) = 20.4 segments; the
    # Reno-friendly estimate grows by alpha_cubic = 3 * 0.3 / 1.7 per RTT
    assert cc.state()["k"] == 0.0 and cc.state()["w_max"] == 20.0
    assert w == pytest.approx(20 + 3 * 0.3 / 1.7, abs=0.05)


def test_cubic_timeout_and_slow_start():
    cc = CongestionControl("cubic", mss=1000)
    assert cc.on_timeout(flight=50_000) == 1000 and cc.state()["ssthresh"] == 35_000
    assert cc.on_ack(1000) == 2000                                        # slow start below ssthresh


# -- SACK scoreboard (RFC 2018, RFC 6675) --------------------------------------

def test_scoreboard_merges_trims_and_ignores():
    sb = Scoreboard(una=0, high_data=1000, mss=100)
    assert sb.update([(200, 300), (400, 500)]) == 200
    assert sb.update([(300, 400)]) == 100 and sb.blocks == [(200, 500)]
    assert sb.update([(0, 0), (900, 1100), (50, 40)]) == 0 and sb.ignored == 3
    sb.update([], una=250)
    assert sb.blocks == [(250, 500)] and sb.sacked == 250
    sb.update([(100, 600)])                                              # D-SACK part below una clipped
    assert sb.blocks == [(250, 600)]
    sb.update([], una=700)
    assert sb.blocks == [] and sb.sacked == 0


def test_is_lost_by_ranges_or_bytes():
    sb = Scoreboard(una=0, high_data=1000, mss=100)
    sb.update([(100, 200), (300, 400), (500, 600)])
    assert sb.is_lost(0)                                                 # three ranges above
    assert not sb.is_lost(250)                                           # two, 200 bytes: not more than 2 SMSS
    sb = Scoreboard(una=0, high_data=1000, mss=100)
    sb.update([(100, 400)])
    assert sb.is_lost(0) and not sb.is_lost(400)                         # 300 bytes above


def test_pipe_and_next_seg():
    sb = Scoreboard(una=0, high_data=1000, mss=100)
    sb.update([(100, 400)])
    assert sb.pipe() == 600                                              # [0,100) lost, [400,1000) in flight
    assert sb.next_seg() == ("rtx-lost", 0, 100)
    assert sb.pipe() == 700                                              # the retransmission is in flight
    assert sb.next_seg(new_data_ok=True) == ("new",)
    assert sb.next_seg() is None
    sb = Scoreboard(una=0, high_data=1000, mss=100)
    sb.update([(500, 600)])                                              # [0,500) not (yet) lost
    assert sb.next_seg(new_data_ok=True) == ("new",)
    assert sb.next_seg() == ("rtx", 0, 100) and sb.next_seg() == ("rtx", 100, 100)
    sb.reset()
    assert sb.blocks == [] and sb.pipe() == 1000 - 0


def test_scoreboard_bounded():
    sb = Scoreboard(una=0, high_data=10_000, mss=100)
    sb.update([(i * 100 + 10, i * 100 + 20) for i in range(0, 8)])
    for j in range(1, 10):
        sb.update([(j * 800 + i * 100 + 10, j * 800 + i * 100 + 20) for i in range(8)])
    assert len(sb.blocks) == 32 and sb.blocks[0] == (10, 20)             # the lowest are kept


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 300)),
                                                     max_size=4), max_size=8))
def test_scoreboard_matches_a_set_model_across_the_wrap(una, updates):
    high = 3000
    sb = Scoreboard(una=una, high_data=(una + high) % 2**32, mss=100)
    model = set()
    for blocks in updates:
        wire = [((una + s) % 2**32, (una + s + n) % 2**32) for s, n in blocks]
        sb.update(wire)
        for s, n in blocks:
            if s + n <= high and s + n > 0:
                model |= set(range(s, s + n))
    got = set()
    for s, e in sb.blocks:
        got |= set(range((s - una) % 2**32, (e - una) % 2**32))
    assert got == model and sb.sacked == len(model)
    rel = [((s - una) % 2**32, (e - una) % 2**32) for s, e in sb.blocks]
    assert all(a[1] < b[0] for a, b in zip(rel, rel[1:]))                # sorted, apart
