"""graphnet bench --plot: each case drawn beside its same-run reference."""
import subprocess
import sys

from graphnet.bench.plot import compared, plot


def test_compared_pairs_each_case_with_its_reference():
    lines = [{"bench": "b", "case": "ref", "pps": 1e6},
             {"bench": "b", "case": "fast", "pps": 4e6, "ratio": 4.0, "against": "ref"},
             {"bench": "c", "case": "x", "pps": 2e6, "ratio": 0.9, "against": "kernel"}]   # reference has no row
    got = compared(lines)
    assert got[0][1:5] == (4.0, "ref", 1.0, 4.0)
    assert got[1][1:5] == (0.9, "kernel", 1.0, 0.9) and got[1][5] == "x reference"


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "p.png"
    n = plot([{"bench": "b", "case": "ref", "pps": 1e6},
              {"bench": "b", "case": "fast", "pps": 4e6, "ratio": 4.0, "against": "ref"}], str(out))
    assert n == 1 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_command_plots_its_run(tmp_path):
    out = tmp_path / "timers.svg"
    r = subprocess.run([sys.executable, "-m", "graphnet", "bench", "timers", "--seconds", "0.2", "--repeat", "1",
                        "--timers", "20000", "--plot", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "plotted 1 comparison" in r.stderr and "<svg" in out.read_text()
