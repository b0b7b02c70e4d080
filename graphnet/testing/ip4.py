"""Test helpers for the IPv4 host stack: interfaces whose transmit side is
a capture, and a ``HostBench`` wiring pg -> ethernet-input -> the host
graph (graphnet.nodes.ip4_host) with them.

    bench = HostBench(engine_factory, ["if0", "if1"])
    bench.address("if0", "10.0.0.1/24")
    replies = bench.send("if0", [Ether(...)/IP(...)/ICMP()])   # what went out, any interface
    bench.check_accounting()
"""
from __future__ import annotations

import dataclasses
import itertools


class CaptureInterface:
    """A fake interface whose tx node is a capture: interface-output hands
    it what would go on the wire (the first `limit` packets are kept, the
    rest counted)."""
    kind = "capture"

    def __init__(self, engine, name, mac, mtu=1500, up=True, limit=100000):
        from graphnet.io.capture import Capture
        self.name = name
        self.mac = mac
        self.sw_if_index = engine.interfaces.add(name, self.kind, self, mac, mtu)
        engine.interfaces.set_admin_up(self.sw_if_index, up)
        self.capture = Capture(name=f"capture-tx-{name}", limit=limit)

    def nodes(self):
        (n,) = self.capture.nodes()
        return (dataclasses.replace(n, attach_to=(("interface-output", self.sw_if_index),)),)


def mac_of(i: int) -> str:
    return f"02:00:00:00:00:{i + 1:02x}"


class HostBench:
    """pg on any interface -> the IPv4 host graph -> capture interfaces.

    Interface i has MAC ``02:00:00:00:00:0<i+1>``. ``send(ifname, frames)``
    injects frames received on that interface and runs until idle; it
    returns ``{ifname: [Scapy Ether]}`` of everything sent since.
    ``before_build(engine)`` runs just before the graph is built (port
    registrations and the like)."""

    def __init__(self, engine_factory, ifnames=("if0",), extra_nodes=(), mtu=1500, before_build=None, **engine_kw):
        from graphnet.io.pg import PacketGenerator
        from graphnet.nodes import ip4_host
        self.pg = PacketGenerator(next_node="ethernet-input")
        self.engine = engine_factory([self.pg, ip4_host.NODES, *extra_nodes], **engine_kw)
        self.ifs = {}
        for i, name in enumerate(ifnames):
            self.ifs[name] = CaptureInterface(self.engine, name, mac_of(i), mtu=mtu)
        self.engine.add(list(self.ifs.values()))
        if before_build is not None:
            before_build(self.engine)
        self.engine.build()
        self.fib = ip4_host.fib(self.engine)
        self.neighbors = ip4_host.ip4_neighbors(self.engine)
        self._names = itertools.count()
        self.sent = 0

    def address(self, ifname, cidr):
        from graphnet.nodes.ip4_host import set_interface_address
        set_interface_address(self.engine, ifname, cidr)

    def inject(self, ifname, frames, **kw):
        from graphnet.io.pg import Stream
        frames = [bytes(f) for f in frames]
        self.pg.add_stream(Stream(f"s{next(self._names)}", frames, count=len(frames),
                                  sw_if_index=self.ifs[ifname].sw_if_index, fix_checksums=False, **kw))
        self.sent += len(frames)

    def run(self, seconds=None):
        if seconds is None:
            self.engine.run_until_idle()
        else:
            self.engine.run(seconds)

    def send(self, ifname, frames, **kw) -> dict:
        self.inject(ifname, frames, **kw)
        self.run()
        return self.take()

    def take(self) -> dict:
        from scapy.layers.l2 import Ether
        out = {}
        for name, iface in self.ifs.items():
            out[name] = [Ether(p) for p in iface.capture.packets()]
            iface.capture.clear()
        return out

    def out(self, ifname, frames, **kw) -> list:
        """send() and return what went out on the same interface."""
        return self.send(ifname, frames, **kw)[ifname]

    def errors(self) -> dict:
        """{(node, symbol): count} of the non-zero error rows."""
        counts = self.engine.main.error_counters()
        return {(node, sym): n for (node, sym, _sev, _desc), n in zip(self.engine.errors, counts) if n}

    def count(self, node, symbol) -> int:
        return self.engine.error_count(node, symbol)

    def held(self) -> int:
        """Buffers legitimately held: queued for ARP, or fragments waiting
        for reassembly (when the graph has ip4-reassembly)."""
        n = self.neighbors.stats()["queued"]
        if "ip4-reassembly" in self.engine.registrations:
            from graphnet.nodes.ip4_reassembly import reassembly
            n += reassembly(self.engine).stats()["buffers_held"]
        return n

    def check_accounting(self):
        """Every buffer is free or held (see held())."""
        stats = self.engine.buffer_stats()
        assert stats["in_use"] == self.held(), (stats, self.neighbors.stats())
        assert stats["double_frees"] == 0


def tap_host(engine_factory, netns, address, host_address, *, prefix="gnt"):
    """An engine with the IPv4 host graph and one TAP whose kernel side is
    in ``netns`` with ``host_address``; graphnet's own ``address`` set after
    the build (not started). Returns (engine, device). Privileged."""
    import uuid
    from graphnet.io import tap
    from graphnet.nodes import ip4_host
    eng = engine_factory([ip4_host.NODES])
    dev = tap.TapDevice(eng, f"{prefix}{uuid.uuid4().hex[:7]}", netns=netns, host_address=host_address)
    eng.add(dev)
    eng.build()
    ip4_host.set_interface_address(eng, dev.name, address)
    return eng, dev
