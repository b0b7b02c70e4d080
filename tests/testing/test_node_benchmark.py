"""The node_benchmark fixture (graphnet.testing.plugin) and the README's
five-line example of benchmarking one's own node."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graphnet.nodes.passthrough import chain, passthrough
from graphnet.testing.packets import udp_packet

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(node_benchmark):
    block = re.search(r"```python\n(from scapy.all import Ether, IP, UDP\n.*?)```", README.read_text(), re.S)
    assert block, "the README's node_benchmark example is gone"
    code = block.group(1)
    assert len([l for l in code.splitlines() if l.strip()]) == 5
    ns = {}
    exec(compile(code, str(README), "exec"), ns)
    ns["test_my_node"](node_benchmark)


def test_reports_every_node_of_a_chain(node_benchmark, request):
    stats = node_benchmark(chain(3), udp_packet(), count=2560, rounds=3)
    assert set(stats) == {"pass-0", "pass-1", "pass-2"}
    for s in stats.values():
        assert s["vectors_per_call"] == 256
        assert 0 < s["ns_per_packet"] < 100_000 and s["clocks_per_packet"] > 0
    info = request.getfixturevalue("benchmark").extra_info
    assert info["packets_per_round"] == 2560 and info["pass-1.vectors_per_call"] == 256


def test_budget_is_not_checked_in_the_functional_suite(node_benchmark):
    # an impossible budget: a perf run (--benchmark-only) would fail it
    stats = node_benchmark(passthrough("p", "null"), udp_packet(), count=512, rounds=2, budget_ns=0.001)
    assert stats["p"]["ns_per_packet"] > 0.001


def test_budget_fails_a_perf_run(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["graphnet.testing.plugin"]\n')
    (tmp_path / "test_budget.py").write_text(textwrap.dedent('''
        from graphnet.nodes.passthrough import passthrough
        from graphnet.testing.packets import udp_packet

        def test_slow(node_benchmark):
            node_benchmark(passthrough("p", "null"), udp_packet(), count=512, rounds=2, budget_ns=0.001)

        def test_fine(node_benchmark):
            node_benchmark(passthrough("q", "null"), udp_packet(), count=512, rounds=2, budget_ns=1e9)
    '''))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only",
                        "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "1 failed, 1 passed" in r.stdout, r.stdout + r.stderr
    assert "node budget exceeded: p: " in r.stdout and "> budget 0.001 ns" in r.stdout


def test_a_chain_that_drops_is_refused(node_benchmark):
    from graphnet import python_node

    @python_node("dropper", next_nodes=["null"], errors=[("dropped", "error", "dropped on purpose")])
    def dropper(frame):
        for i in range(len(frame)):
            frame.drop(i, "dropped")

    with pytest.raises(AssertionError, match="a benchmark must not drop"):
        node_benchmark([dropper], udp_packet(), count=256, rounds=1)
