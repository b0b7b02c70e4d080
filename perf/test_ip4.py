"""ip4-forward scenarios: the graph of ``graphnet bench ip4-forward`` (see
graphnet/bench/ip4.py) on the node_benchmark fixture: pg -> ethernet-input ->
ip4-input -> ip4-lookup -> ip4-rewrite -> interface-output -> a null tx,
64-byte packets to random unicast destinations, with GRAPHNET_PERF_ROUTES
routes (bench: 1 M) and with the default route only."""
import pytest

from graphnet.bench.ip4 import (DST_MAX, DST_MIN, N_NEIGHBOURS, OUT_MACS, RX_MAC, NullInterface, random_routes,
                                udp4_frame)
from graphnet.io.pg import Edit
from graphnet.nodes import ip4

from .conftest import PACKETS, ROUNDS, ROUTES

pytestmark = pytest.mark.benchmark(group="ip4-forward")
NODES = ["ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite", "interface-output"]


def _forwarding(routes):
    def setup(engine):
        rx = NullInterface(engine, "in0", RX_MAC)
        tx = [NullInterface(engine, f"out{i}", mac) for i, mac in enumerate(OUT_MACS)]
        engine.add([rx, *tx])
        fib = ip4.fib(engine)
        fib.add_route("0.0.0.0/0", next_hop_mac=b"\x02\x00\x00\x00\xff\x01", sw_if_index=tx[0].sw_if_index)
        for k in range(N_NEIGHBOURS):
            fib.add_routes(routes[k::N_NEIGHBOURS], next_hop_mac=bytes([2, 0, 0, 1, k >> 8, k & 0xff]),
                           sw_if_index=tx[k % len(tx)].sw_if_index)
    return setup


@pytest.mark.parametrize("n_routes", [ROUTES, 0], ids=["routes", "1-route"])
def test_ip4_forward(node_benchmark, n_routes):
    """Forwarding per node; budgets (ns/packet) checked with --benchmark-only."""
    node_benchmark(ip4.NODES, udp4_frame(0x0a000002), first="ethernet-input", count=PACKETS, rounds=ROUNDS,
                   edits=[Edit.field("ip4.dst", DST_MIN, DST_MAX, "random")], setup=_forwarding(random_routes(n_routes)),
                   report=NODES, buffers=16384,
                   budget_ns={"ethernet-input": 15, "ip4-input": 15, "ip4-lookup": 50, "ip4-rewrite": 20})
