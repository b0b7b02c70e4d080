"""Dispatch scenarios: the graphs of ``graphnet bench dispatch``
(see graphnet/bench/dispatch.py), 64-byte packets, full 256-vector frames."""
import pytest

from graphnet.bench.dispatch import Chain, PlainChain

from .conftest import PACKETS, REF_PACKETS, run_pedantic

pytestmark = pytest.mark.benchmark(group="dispatch")


def _chain_bench(benchmark, clock, chain, node_names):
    try:
        run_pedantic(benchmark, chain.run, chain.packets)
        c = chain.counters()
    finally:
        chain.close()
    for name in node_names:
        benchmark.extra_info[f"{name}_ns_per_packet"] = clock.to_ns(c[name]["clocks"] / c[name]["vectors"])
    assert c["null"]["vectors"] == chain.packets


def test_pg_null(benchmark, clock):
    """pg-input -> null: the packet generator's own cost (template copy into
    each buffer) and the sink's; the zero-node baseline."""
    _chain_bench(benchmark, clock, Chain(0, PACKETS), ["pg-input", "null"])


def test_cython_chain_8(benchmark, clock):
    """pg-input -> 8 pass-through Cython nodes -> null: engine cost per node
    hop (node clocks of each pass node in extra_info)."""
    chain = Chain(8, PACKETS)
    _chain_bench(benchmark, clock, chain, ["pg-input"] + chain.names)


def test_cython_chain_8_with_python_node(benchmark, clock):
    """The 8-node chain with one Python node (returns 0) in the middle:
    one GIL round trip and a FrameView per 256-packet frame."""
    chain = Chain(8, PACKETS, python_node=True)
    _chain_bench(benchmark, clock, chain, [chain.python_name, "pass-0"])


def test_plain_python_chain_8(benchmark):
    """The reference: 8 plain-Python functions and a dict graph walked one
    packet at a time over prebuilt bytearray packets (REF_PACKETS of them)."""
    plain = PlainChain(8, REF_PACKETS)
    run_pedantic(benchmark, plain.run, REF_PACKETS)
    assert plain.dropped == REF_PACKETS * (benchmark.stats.stats.rounds + 1)
