"""``graphnet bench app-idle`` runs end to end: both cases, the fields the
issue names (CPU of both processes, ratio against the 1% budget), and no
process left behind. Figures are measured, never asserted."""
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
