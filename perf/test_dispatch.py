"""Dispatch scenarios: the graphs of ``graphnet bench dispatch`` (see
graphnet/bench/dispatch.py) on the node_benchmark fixture, 64-byte packets,
full 256-vector frames."""
import pytest

from graphnet.bench.dispatch import PlainChain, _python_pass, udp4_packet
from graphnet.nodes.passthrough import chain, passthrough

from .conftest import PACKETS, REF_PACKETS, ROUNDS, run_pedantic

pytestmark = pytest.mark.benchmark(group="dispatch")


def test_pg_null(node_benchmark):
    """pg-input -> null: the packet generator's own cost (template copy into
    each buffer) and the sink's; the zero-node baseline."""
    node_benchmark([], udp4_packet(), first="null", count=PACKETS, rounds=ROUNDS, report=["pg-input", "null"],
                   fix_checksums=False)


def test_cython_chain_8(node_benchmark):
    """pg-input -> 8 pass-through Cython nodes -> null: engine cost per node
    hop (node clocks of each pass node in extra_info)."""
    nodes = chain(8, check=False)
    node_benchmark(nodes, udp4_packet(), count=PACKETS, rounds=ROUNDS, fix_checksums=False,
                   report=["pg-input"] + [n.name for n in nodes], budget_ns={n.name: 5 for n in nodes})


def test_cython_chain_8_with_python_node(node_benchmark):
    """The 8-node chain with one Python node (returns 0) in the middle:
    one GIL round trip and a FrameView per 256-packet frame."""
    names = [f"pass-{i}" for i in range(4)] + ["py-pass"] + [f"pass-{i}" for i in range(4, 8)]
    order = names + ["null"]
    nodes = [_python_pass(n, order[i + 1]) if n == "py-pass" else passthrough(n, order[i + 1], check=False)
             for i, n in enumerate(names)]
    node_benchmark(nodes, udp4_packet(), count=PACKETS, rounds=ROUNDS, fix_checksums=False,
                   report=["py-pass", "pass-0"])


def test_plain_python_chain_8(benchmark):
    """The reference: 8 plain-Python functions and a dict graph walked one
    packet at a time over prebuilt bytearray packets (REF_PACKETS of them)."""
    plain = PlainChain(8, REF_PACKETS)
    run_pedantic(benchmark, plain.run, REF_PACKETS)
    assert plain.dropped == REF_PACKETS * (benchmark.stats.stats.rounds + 1)
