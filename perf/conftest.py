"""Shared settings of the perf suites.

The scenarios reuse ``graphnet.bench`` code, smaller and with few rounds so
``python -m pytest perf -q`` stays quick; ``graphnet bench ...`` is the
place for the recorded figures (perf/RESULTS.md). Sizes can be raised with
GRAPHNET_PERF_PACKETS, GRAPHNET_PERF_TIMERS and GRAPHNET_PERF_ROUNDS.
"""
import os

import pytest

from graphnet.bench.core import Clock

PACKETS = int(os.environ.get("GRAPHNET_PERF_PACKETS", 200_000))
REF_PACKETS = max(1, PACKETS // 20)
TIMERS = int(os.environ.get("GRAPHNET_PERF_TIMERS", 100_000))
ROUNDS = int(os.environ.get("GRAPHNET_PERF_ROUNDS", 3))


@pytest.fixture(scope="session")
def clock():
    """TSC cycles -> ns for node clocks."""
    return Clock()


def run_pedantic(benchmark, fn, per_run: int):
    """Time fn over ROUNDS rounds (one warm-up) and record ns per item."""
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info["items_per_run"] = per_run
    benchmark.extra_info["ns_per_item_min"] = benchmark.stats.stats.min * 1e9 / per_run
