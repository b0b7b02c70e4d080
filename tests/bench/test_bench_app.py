"""The app benchmarks (graphnet.bench.app) run end to end: app-idle's two
cases and the fields the issue names (CPU of both processes, ratio against
the 1% budget, no process left behind); app-ct-throughput's references and
ratios, and its C ring. Figures are measured, never asserted."""
import argparse
import os

import pytest

from graphnet.bench import app as bench_app


def test_app_idle_reports_both_processes_against_the_budget():
    before = set(os.listdir("/proc"))
    lines = list(bench_app.bench_app_idle(argparse.Namespace(seconds=0.3)))
    assert [ln["case"] for ln in lines] == ["engine-alone", "attached-idle"]
    idle = lines[1]
    assert idle["against"] == "1%-of-a-core"
    assert {"engine_cpu_percent", "app_cpu_percent", "cpu_percent", "ratio", "targets"} <= idle.keys()
    assert idle["cpu_percent"] == pytest.approx(idle["engine_cpu_percent"] + idle["app_cpu_percent"])
    assert all(v >= 0 for v in (idle["engine_cpu_percent"], idle["app_cpu_percent"], lines[0]["cpu_percent"]))
    children = {p for p in set(os.listdir("/proc")) - before if p.isdigit()
                and os.path.exists(f"/proc/{p}/stat") and open(f"/proc/{p}/stat").read().split()[3] == str(os.getpid())}
    assert not children                                      # the idle app was ended


def test_cpu_clock_of_another_process_counts_its_work():
    """The bench's clock reads a child's CPU time (all its threads)."""
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                          "while time.process_time() - t < 0.2: pass\nprint(1, flush=True)\ninput()"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()
        assert bench_app._cpu_s(p.pid) >= 0.2
    finally:
        p.communicate("\n", timeout=10)


def test_app_ct_throughput_reports_every_reference_and_its_ratios():
    """``graphnet bench app-ct-throughput`` end to end with a few writes:
    the five cases in order, each moving the bytes it was asked to, and the
    cut-through row's ratios against the Unix socket, memcpy, the C ring
    and kernel TCP, each its reference's time over the cut-through's."""
    lines = list(bench_app.bench_app_ct_throughput(argparse.Namespace(packets=64, repeat=2, seconds=0.2)))
    assert [ln["case"] for ln in lines] == ["memcpy", "ring-c", "unix", "tcp-loopback", "cut-through"]
    assert all(ln["bytes"] == 64 * bench_app.CHUNK and ln["gbps"] > 0 for ln in lines)
    by = {ln["case"]: ln for ln in lines}
    ct = by["cut-through"]
    for key, ref in (("ratio", "unix"), ("vs_memcpy", "memcpy"), ("vs_ring_c", "ring-c"), ("vs_tcp", "tcp-loopback")):
        assert ct[key] == pytest.approx(by[ref]["ns_per_packet"] / ct["ns_per_packet"])


@pytest.mark.parametrize("chunk,ring,read", [(65536, 1 << 20, 1 << 20), (4096, 8192, 1000), (1000, 1024, 4096)])
def test_ring_c_moves_every_byte_through_odd_sizes_and_wraps(chunk, ring, read):
    """ring_rounds ends (the reader took every byte) for reads that do not
    divide the writes and rings that the writes do not fill evenly."""
    from graphnet.bench.session_helper import ring_rounds
    assert ring_rounds(chunk, 500, ring, read) > 0


def test_ring_c_refuses_a_ring_that_is_not_a_power_of_two():
    from graphnet.bench.session_helper import ring_rounds
    with pytest.raises(ValueError, match="power of two"):
        ring_rounds(4096, 10, 12288, 4096)
