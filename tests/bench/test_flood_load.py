"""Issue 9, "Load": the flood of ``graphnet bench flood`` (ICMP echo, UDP
to closed ports, ARP from random senders, fragments, all at once over a
TAP from a namespace) for about 5 s: the engine answers a control call
(``show runtime``) promptly throughout, the legitimate peer's ping keeps
being answered, RSS stays flat and the buffers come back to their
pre-flood count.
(privileged: root, /dev/net/tun, iputils ping)."""
import pytest

pytestmark = pytest.mark.privileged(tools=("ping",))


def test_mixed_flood_keeps_the_engine_responsive_and_bounded(capfd):
    from graphnet.bench.flood import flood_host, run_flood

    with flood_host() as env:
        r = run_flood(env, seconds=5.0, max_frames=5_000_000)
        eng = env["engine"]
        stats = eng.call(eng.main.loop_stats)
    assert r["frames_received"] > 10_000, r                # the flood reached graphnet
    assert r["samples"] >= 20, r
    # control calls answered within 100 ms; generous slack on a loaded
    # 2-core box for the worst sample, none near the 10 s call timeout
    assert r["latency_ms_p50"] < 100, r["latencies_ms"]
    assert r["latency_ms_max"] < 500, r["latencies_ms"]
    # the peer's pings keep being answered; many are lost before graphnet
    # sees them: the flood keeps the TAP's kernel queue full and a request
    # competes for room there, as on a saturated link (kernel_tap_drops).
    # How many get through is the kernel queue's lottery: 3 to 20 of 25 in
    # 16 runs on 2026-12-04's faster machine (about 3.3 M flood frames in
    # 5 s), with the engine's busy-poll window on or off alike; so this
    # asks for answers at all. The longest gap between answers is the same
    # lottery (up to 4.6 s of the 5 s run seen here, every request of a
    # burst dropped at the TAP's full kernel queue), so it is reported
    # (ping_longest_gap_s), not checked. That the engine itself keeps
    # answering is the control-call latency above, sampled through the
    # whole flood.
    assert r["ping_sent"] >= 20 and r["ping_received"] >= 2, r
    assert r["buffers_post"] <= r["buffers_pre"], r
    assert r["rss_change_pct"] < 10, r
    assert r["buffers_max"] <= 16384 * 0.25 + 16384 * 0.125 + 2048, r      # the held shares, and in flight
    # the bounds were what held the flood
    assert r["errors"].get("ip4-reassembly/evicted", 0) > 0, r["errors"]
    # the neighbour table stayed bounded (full: spoofed senders answered, not learned, or evicting)
    assert r["errors"].get("arp-input/table-full", 0) + r["errors"].get("ip4-neighbor/evicted", 0) > 0, r["errors"]
    assert stats["pending_frames"] == 0
    # nothing of the flood's programs on stdout: `graphnet bench all --json` (make bench) is JSON lines only
    assert capfd.readouterr().out == ""
