"""Shared settings of the perf suites.

The scenarios reuse ``graphnet.bench`` code in short runs (about a ms for
the graphs, so some rounds escape preemption on a busy 2-vCPU VM; read the
min column) and few rounds, so ``python -m pytest perf -q`` stays quick;
``graphnet bench ...`` is the place for the recorded figures
(perf/RESULTS.md). Sizes: GRAPHNET_PERF_PACKETS, GRAPHNET_PERF_TIMERS,
GRAPHNET_PERF_ROUNDS, GRAPHNET_PERF_ROUTES. Node scenarios use the
``node_benchmark`` fixture of graphnet.testing.plugin (per node ns/packet,
clocks/packet, vectors/call in extra_info; budgets checked with
``--benchmark-only``).
"""
import os

import pytest

pytest_plugins = ["graphnet.testing.plugin"]           # node_benchmark

from graphnet.bench.core import Clock

PACKETS = int(os.environ.get("GRAPHNET_PERF_PACKETS", 50_000))
REF_PACKETS = max(1, PACKETS // 20)
TIMERS = int(os.environ.get("GRAPHNET_PERF_TIMERS", 100_000))
ROUNDS = int(os.environ.get("GRAPHNET_PERF_ROUNDS", 20))
ROUTES = int(os.environ.get("GRAPHNET_PERF_ROUTES", 100_000))
TIMER_ROUNDS = max(1, ROUNDS // 6)         # a heapq round takes ~0.4 s


@pytest.fixture(scope="session")
def clock():
    """TSC cycles -> ns for node clocks."""
    return Clock()


def run_pedantic(benchmark, fn, per_run: int, rounds: int = ROUNDS):
    """Time fn over `rounds` rounds (after one warm-up) and record the best
    ns per item (packet or timer) in extra_info."""
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["items_per_run"] = per_run
    benchmark.extra_info["ns_per_item_min"] = benchmark.stats.stats.min * 1e9 / per_run
