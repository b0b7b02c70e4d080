"""``graphnet bench udp-echo``: datagrams echoed by the session layer's
builtin UDP echo app, fed by pg in memory, beside the in-graph echo node.

Graph: ``pg-input`` (64-byte Ethernet/IPv4/UDP frames from 10.0.0.2 to
10.0.0.1) -> the IPv4 host (ethernet-input, ip4-input, ip4-lookup,
ip4-local, udp4-input) -> ... -> ip4-rewrite -> a null tx interface.

``udp4-echo-node``
    The reference: the datagrams go to port 7, where the ``udp4-echo``
    node turns each buffer around in place (no session, no copy).
``session-echo``
    The datagrams go to port 1234, a listener of the builtin echo app:
    udp4-session copies header and payload into the session's rx fifo, one
    rx event per flush reaches the app (a C callback), which moves the
    datagrams to its tx fifo; session-queue pushes them through the UDP
    transport (new buffers, headers, checksums) to ip4-lookup.
    ``ratio``: against the echo node.

Each run sends ``--packets`` datagrams (default 51 200, 200 frames) and
runs until idle; wall time of the best run; every datagram must come out.
Target (issue 12): >= 5 M datagrams/s on one core in memory.
"""
from __future__ import annotations

import time
from typing import Iterator

from graphnet.bench.core import Clock, best_of, register

DEFAULT_PACKETS = 51_200
GN_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000099")


def _frame(dport: int, size: int = 64) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    p = Ether(src=PEER_MAC, dst=GN_MAC) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=4000, dport=dport)
    return bytes(p / Raw(bytes(size - len(p))))


class UdpEcho:
    def __init__(self, packets: int):
        from graphnet.apps.echo import start_echo_server
        from graphnet.bench.ip4 import NullInterface
        from graphnet.io.pg import PacketGenerator, Stream
        from graphnet.nodes import ip4_host, session_host
        from graphnet.vlib.engine import Engine
        self.packets = packets
        self.pg = PacketGenerator(next_node="ethernet-input")
        self.engine = Engine([self.pg, ip4_host.NODES, session_host.NODES], buffers=32768)
        self.nif = NullInterface(self.engine, "in0", GN_MAC)
        self.engine.add(self.nif)
        self.engine.build()
        ip4_host.set_interface_address(self.engine, "in0", "10.0.0.1/24")
        ip4_host.ip4_neighbors(self.engine).add("in0", "10.0.0.2", PEER_MAC.hex(":"), static=True)
        self.app = start_echo_server(self.engine, "udp://0.0.0.0/1234", rx_fifo_size=8 << 20,
                                     tx_fifo_size=8 << 20, segment_size=64 << 20)
        for name, port in (("node", 7), ("session", 1234)):
            self.pg.add_stream(Stream(name, [_frame(port)], count=packets, sw_if_index=self.nif.sw_if_index))
        self.index = self.engine.index[self.nif.tx_node]
        self.engine.run_until_idle(timeout=120)        # both streams once: warm caches, fifos, frames

    def run(self, stream: str) -> None:
        before = self.engine.main.node_counters()[self.index]["vectors"]
        self.pg.enable(stream)
        self.engine.run_until_idle(timeout=120)
        out = self.engine.main.node_counters()[self.index]["vectors"] - before
        if out != self.packets:
            raise RuntimeError(f"udp-echo {stream}: {out} of {self.packets} datagrams came back\n"
                               f"{self.engine.show('errors')}")

    def close(self):
        self.engine.close()


@register("udp-echo")
def bench_udp_echo(opts) -> Iterator[dict]:
    """pg -> IPv4 host -> builtin UDP echo app (session layer) -> null tx, 64 B, vs the udp4-echo node."""
    n = opts.packets or DEFAULT_PACKETS
    case = UdpEcho(n)
    try:
        best, runs = best_of({"udp4-echo-node": lambda: case.run("node"),
                              "session-echo": lambda: case.run("session")}, Clock(), opts.repeat, opts.seconds)
    finally:
        case.close()
    for name in ("udp4-echo-node", "session-echo"):
        per = best[name] / n
        line = {"case": name, "unit": "datagram", "packets": n, "runs": runs[name], "pps": 1e9 / per,
                "ns_per_packet": per, "datagrams_per_s": 1e9 / per}
        if name == "session-echo":
            line.update(ratio=best["udp4-echo-node"] / best[name], against="udp4-echo-node",
                        targets={"5M/s": 1e9 / per >= 5e6})
        yield line
