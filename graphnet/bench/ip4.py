"""``graphnet bench ip4-forward``: the IPv4 forwarding path, and the same
pipeline in plain Python, measured side by side in one run.

Graph: ``pg-input`` (one 64-byte Ethernet/IPv4/UDP template; a random
``ip4.dst`` per packet in 1.0.0.0-223.255.255.255, checksums fixed by pg) -> ``ethernet-input`` ->
``ip4-input`` (checksum verified) -> ``ip4-lookup`` -> ``ip4-rewrite`` ->
``interface-output`` -> a null tx node per output interface. Full frames of
256 vectors, run until idle, best of several runs.

FIB: ``--routes`` (default 1 M) random prefixes with a BGP-like length mix
(mostly /24, /22-/23, some /16-/21, 2 % longer than /24), each via one of
16 neighbours (16 rewrites) on the null output interface, plus a default
route, so every packet is forwarded and destinations spread over the whole
table (cache misses included: the mtrie is about 110 MB, on huge pages).

Cases:

``graphnet``
    The graph above. Headline figures are measured rates: ``pps`` and
    ``ns_per_packet`` are wall time / packets of the best run, everything
    included (pg builds each packet: template copy, random dst, IPv4 + UDP
    checksum); ``path_ns_per_packet`` (``path_pps`` its inverse) is that
    wall time minus the wall time of ``pg-null`` measured in the same
    invocation: the forwarding path with the packet generator's own cost
    (and its frames' dispatch and freeing) taken out. ``nodes``: the
    breakdown, ns per packet of each node from its clocks (``show
    runtime``), the minimum over runs, each including the engine's work
    around its call; ``nodes_sum_ns`` is their sum after pg-input, a
    breakdown figure only (the minima come from different runs and leave
    out the loop's own time, so it is lower than any measured rate).
    ``ratio``: wall against ``plain-python``; ``path_ratio``: the measured
    path against it.
``graphnet-1-route``
    The same with only the default route: the lookup stays in cache. The
    difference with ``graphnet`` is what the table's size costs.
``graphnet-1-route-check`` (with ``--not-enabled-check``)
    ``graphnet-1-route`` with ip4-input's ip4-not-enabled check on, as in
    the host graph (the rx interface has an address, 240.0.0.1/32, which
    no packet is for): every packet pays the check and passes.
    ``check_ns`` is its ns per packet minus ``graphnet-1-route``'s, runs
    alternating in the same invocation.
``pg-null``
    The packet generator alone, same stream (template, random dst edit,
    checksums), straight into ``null``: what the graphnet cases' wall time
    spends outside the forwarding path.
``plain-python``
    The reference: the same nodes as plain-Python functions walked packet
    by packet through a dict graph, over prebuilt frames with random
    destinations (copied per packet, as pg does); the lookup walks a copy
    of the same mtrie (``array('I')``) with the same algorithm. No packet
    generation is timed, so the reference is flattered, never graphnet.

Targets (issue 4): >= 20 Mpps (<= 50 ns per packet) on one core and >= 100x
plain Python.
"""
from __future__ import annotations

import random
import ipaddress
import struct
import time
from typing import Iterator, Optional

from graphnet.io import templates
from graphnet.bench.core import Clock, best_of, register
from graphnet.io.pg import Edit, PacketGenerator, Stream
from graphnet.nodes import ip4
from graphnet.vlib import drop
from graphnet.vlib.engine import Engine
from graphnet.vlib.node import Node

DEFAULT_PACKETS = 51_200        # 200 full frames: short runs, some escape preemption
DEFAULT_REF_PACKETS = 2_000
DEFAULT_ROUTES = 1_000_000
PACKET_SIZE = 64
STREAM = "ip4-forward"
RX_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000099")
OUT_MACS = (bytes.fromhex("020000000101"),)
N_NEIGHBOURS = 16
DST_MIN, DST_MAX = 0x01000000, 0xdfffffff     # unicast space: 224/4 and up are never forwarded

# BGP-like prefix length mix (fractions of the table)
LENGTH_MIX = ((24, 0.58), (23, 0.09), (22, 0.11), (21, 0.05), (20, 0.045), (19, 0.03), (18, 0.02),
              (17, 0.012), (16, 0.02), (15, 0.003), (14, 0.002), (12, 0.002), (10, 0.001), (8, 0.001),
              (25, 0.004), (26, 0.004), (27, 0.003), (28, 0.003), (29, 0.002), (30, 0.002), (32, 0.002))

_NULL_FN = next(n.fn for n in drop.NODES if n.name == "null")


def udp4_frame(dst: int, size: int = PACKET_SIZE, ttl: int = 64) -> bytes:
    """A size-byte Ethernet/IPv4/UDP frame to RX_MAC, 10.0.0.1 -> dst, with
    valid IPv4 and UDP checksums (graphnet.io.templates)."""
    return templates.build("udp", src_mac=PEER_MAC.hex(":"), dst_mac=RX_MAC.hex(":"), src="10.0.0.1",
                           dst=str(ipaddress.IPv4Address(dst)), sport=1024, dport=1024, ttl=ttl, size=size)


def random_routes(n: int, seed: int = 1) -> list:
    """n distinct (network, plen) pairs with the LENGTH_MIX distribution."""
    rnd = random.Random(seed)
    lengths = [l for l, _ in LENGTH_MIX]
    weights = [w for _, w in LENGTH_MIX]
    out: dict = {}
    while len(out) < n:
        for plen in rnd.choices(lengths, weights, k=min(65536, 2 * (n - len(out)))):
            net = rnd.getrandbits(32) & ((0xffffffff << (32 - plen)) & 0xffffffff)
            out[(net, plen)] = None
            if len(out) >= n:
                break
    return list(out)


class NullInterface:
    """An interface whose tx node frees what it is given (counted)."""
    kind = "null"

    def __init__(self, engine, name: str, mac: bytes):
        self.name = name
        self.sw_if_index = engine.interfaces.add(name, self.kind, self, mac)
        engine.interfaces.set_admin_up(self.sw_if_index, True)
        self.tx_node = f"null-tx-{name}"

    def nodes(self):
        return (Node(self.tx_node, fn=_NULL_FN, attach_to=(("interface-output", self.sw_if_index),),
                     doc="Frees every packet: the tx of a null interface."),)


def _stream(packets: int, packet_size: int, seed: int) -> Stream:
    """The benchmark's pg stream: one template, a random ip4.dst per packet."""
    return Stream(STREAM, [udp4_frame(0x0a000002, packet_size)], count=packets, sw_if_index=0,
                  edits=[Edit.field("ip4.dst", DST_MIN, DST_MAX, "random")], fix_checksums=True, seed=seed)


class PgNull:
    """pg-input (the same stream) -> null: the generator's own cost."""

    def __init__(self, packets: int, packet_size: int = PACKET_SIZE, seed: int = 12345):
        self.packets = packets
        self.pg = PacketGenerator(next_node="null")
        self.engine = Engine([self.pg], buffers=16384)
        self.engine.build()
        self.pg.add_stream(_stream(packets, packet_size, seed))
        self.engine.run_until_idle(timeout=120)        # first pass: warm caches and frames

    def run(self) -> None:
        self.pg.enable(STREAM)
        self.engine.run_until_idle(timeout=120)

    def check(self) -> None:
        sent = self.pg.stats()[STREAM]
        if sent != self.packets or self.engine.buffer_stats()["in_use"] != 0:
            raise RuntimeError(f"pg-null sent {sent} of {self.packets} packets")

    def close(self) -> None:
        self.engine.close()


class Ip4Forward:
    """An engine running the ip4-forward graph for a fixed count of packets
    per ``run()``, with the given routes."""

    NODES = ("pg-input", "ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite", "interface-output")

    def __init__(self, packets: int, routes: list, packet_size: int = PACKET_SIZE, seed: int = 12345,
                 not_enabled_check: bool = False):
        self.packets = packets
        self.pg = PacketGenerator(next_node="ethernet-input")
        self.engine = Engine([self.pg, ip4.NODES], buffers=16384)
        self.rx = NullInterface(self.engine, "in0", RX_MAC)
        self.tx = [NullInterface(self.engine, f"out{i}", mac) for i, mac in enumerate(OUT_MACS)]
        self.engine.add([self.rx, *self.tx])
        self.fib = ip4.fib(self.engine)
        t0 = time.perf_counter()
        self.fib.add_route("0.0.0.0/0", next_hop_mac=b"\x02\x00\x00\x00\xff\x01", sw_if_index=self.tx[0].sw_if_index)
        groups = [routes[k::N_NEIGHBOURS] for k in range(N_NEIGHBOURS)]
        for k, group in enumerate(groups):
            tx = self.tx[k % len(self.tx)]
            self.fib.add_routes(group, next_hop_mac=bytes([2, 0, 0, 1, k >> 8, k & 0xff]), sw_if_index=tx.sw_if_index)
        self.fib_load_s = time.perf_counter() - t0
        self.engine.build()
        if not_enabled_check:
            from graphnet.fib.ip4_address import ip4_addresses
            from graphnet.nodes.ip4_input import check_interfaces
            ip4_addresses(self.engine).add(self.rx.name, "240.0.0.1/32")   # enabled; no packet is for it
            check_interfaces(self.engine)
        self.pg.add_stream(_stream(packets, packet_size, seed))
        self.engine.run_until_idle(timeout=120)        # first pass: warm caches and frames

    def run(self) -> None:
        self.pg.enable(STREAM)
        self.engine.clear_runtime()
        self.engine.run_until_idle(timeout=120)

    def counters(self) -> dict:
        """{node: counters} of the last run, checked: every packet left on
        a tx node, no error counted, every buffer back."""
        eng = self.engine
        c = {n.name: eng.main.node_counters()[i] for i, n in enumerate(eng.nodes)}
        out = sum(c[t.tx_node]["vectors"] for t in self.tx)
        errors = sum(eng.main.error_counters())
        if out != self.packets or errors or eng.buffer_stats()["in_use"] != 0:
            raise RuntimeError(f"ip4-forward lost packets: {out} of {self.packets} sent, "
                               f"{errors} errors\n{eng.show('errors')}")
        return c

    def close(self) -> None:
        self.engine.close()


class PlainIp4:
    """The plain-Python reference: the same five nodes as functions, walked
    one packet at a time through a dict graph; the lookup walks a copy of
    the same mtrie."""

    def __init__(self, packets: int, fib, seed: int = 12345, packet_size: int = PACKET_SIZE):
        rnd = random.Random(seed)
        self.templates = [udp4_frame(rnd.randint(DST_MIN, DST_MAX), packet_size) for _ in range(packets)]
        self.root, self.leaves = fib.mtrie_arrays()
        self.adjs = fib.adjacency_table()
        self.interfaces = {i: {"mac": RX_MAC if i == 0 else OUT_MACS[i - 1], "up": True, "mtu": 1500,
                               "promiscuous": False} for i in range(1 + len(OUT_MACS))}
        self.ethertypes = {0x0800: "ip4-input"}
        self.sent = 0
        self.dropped = 0
        self.graph = {"ethernet-input": self.ethernet_input, "ip4-input": self.ip4_input,
                      "ip4-lookup": self.ip4_lookup, "ip4-rewrite": self.ip4_rewrite,
                      "interface-output": self.interface_output}

    # each node: (packet dict) -> next node name or None (consumed)
    def ethernet_input(self, p):
        f = p["data"]
        if len(f) < 14:
            return self.drop(p)
        hw = self.interfaces.get(p["rx"])
        if hw is None or (not f[0] & 1 and f[0:6] != hw["mac"] and not hw["promiscuous"]):
            return self.drop(p)
        nxt = self.ethertypes.get((f[12] << 8) | f[13])
        if nxt is None:
            return self.drop(p)
        p["l3"] = 14
        return nxt

    def ip4_input(self, p):
        f, o = p["data"], p["l3"]
        n = len(f) - o
        if n < 20 or f[o] >> 4 != 4:
            return self.drop(p)
        hlen = (f[o] & 15) * 4
        total = (f[o + 2] << 8) | f[o + 3]
        if hlen < 20 or total < hlen or total > n:
            return self.drop(p)
        s = sum(struct.unpack_from("!%dH" % (hlen // 2), f, o))
        s = (s & 0xffff) + (s >> 16)
        s = (s & 0xffff) + (s >> 16)
        if s != 0xffff or f[o + 8] == 0 or hlen != 20:
            return self.drop(p)
        return "ip4-lookup"

    def ip4_lookup(self, p):
        f, o = p["data"], p["l3"]
        dst = int.from_bytes(f[o + 16:o + 20], "big")
        leaf = self.root[dst >> 16]
        if not leaf & 1:
            leaf = self.leaves[(leaf >> 1) * 256 + ((dst >> 8) & 255)]
            if not leaf & 1:
                leaf = self.leaves[(leaf >> 1) * 256 + (dst & 255)]
        ai = leaf >> 1
        adj = self.adjs[ai]
        if adj[0] == "ecmp":
            ai = adj[3][hash((f[o + 12:o + 20], f[o + 9])) & (len(adj[3]) - 1)]
            adj = self.adjs[ai]
        if adj[0] != "rewrite":
            return self.drop(p)
        p["adj"] = adj
        return "ip4-rewrite"

    def ip4_rewrite(self, p):
        f, o, adj = p["data"], p["l3"], p["adj"]
        if f[o + 8] <= 1:
            return self.drop(p)
        hw = self.interfaces[adj[2]]
        if ((f[o + 2] << 8) | f[o + 3]) > hw["mtu"]:
            return self.drop(p)
        f[o + 8] -= 1
        c = (~((f[o + 10] << 8) | f[o + 11]) & 0xffff) + 0xfeff
        c = (c & 0xffff) + (c >> 16)
        c = ~c & 0xffff
        f[o + 10] = c >> 8
        f[o + 11] = c & 0xff
        p["data"] = adj[1] + f[o:]
        p["tx"] = adj[2]
        return "interface-output"

    def interface_output(self, p):
        hw = self.interfaces.get(p["tx"])
        if hw is None or not hw["up"]:
            return self.drop(p)
        self.sent += 1
        return None

    def drop(self, p):
        self.dropped += 1
        return None

    def run(self) -> None:
        graph = self.graph
        for t in self.templates:
            p = {"data": bytearray(t), "rx": 0}
            nxt = "ethernet-input"
            while nxt is not None:
                nxt = graph[nxt](p)


def _ns(clock: Clock, c: dict) -> float:
    return clock.to_ns(c["clocks"] / c["vectors"]) if c["vectors"] else 0.0


class _MinClocks:
    """Runs a case and keeps, per node, the fewest clocks per packet seen
    in any run (on a shared VM some runs are preempted or share the core;
    the minimum is the node's own cost)."""

    def __init__(self, case: Ip4Forward):
        self.case = case
        self.min: dict[str, float] = {}

    def run(self) -> None:
        self.case.run()
        for name, c in self.case.counters().items():
            if c["vectors"]:
                v = c["clocks"] / c["vectors"]
                if v < self.min.get(name, float("inf")):
                    self.min[name] = v


@register("ip4-forward")
def bench_ip4_forward(opts) -> Iterator[dict]:
    """pg -> ethernet-input -> ip4-input -> ip4-lookup (1 M routes) -> ip4-rewrite -> null tx, 64 B: wall and path pps, ns/node, vs plain Python."""
    n = opts.packets or DEFAULT_PACKETS
    n_ref = getattr(opts, "ref_packets", None) or min(n, DEFAULT_REF_PACKETS)
    n_routes = getattr(opts, "routes", None)
    n_routes = DEFAULT_ROUTES if n_routes is None else n_routes
    t0 = time.perf_counter()
    routes = random_routes(n_routes)
    gen_s = time.perf_counter() - t0
    big = Ip4Forward(n, routes)
    del routes
    small = Ip4Forward(n, [])
    pg_null = PgNull(n)
    plain = PlainIp4(n_ref, big.fib)
    fib_stats = big.fib.stats()
    load_s = big.fib_load_s
    cases = {"graphnet": _MinClocks(big), "graphnet-1-route": _MinClocks(small)}
    if getattr(opts, "not_enabled_check", False):
        cases["graphnet-1-route-check"] = _MinClocks(Ip4Forward(n, [], not_enabled_check=True))
    clock = Clock()
    try:
        best, runs = best_of({**{name: mc.run for name, mc in cases.items()},
                              "pg-null": pg_null.run, "plain-python": plain.run}, clock, opts.repeat, opts.seconds)
        pg_null.check()
    finally:
        for mc in cases.values():
            mc.case.close()
        pg_null.close()
    if plain.sent != n_ref * runs["plain-python"] or plain.dropped:
        raise RuntimeError("plain-Python reference lost packets")
    ref = best["plain-python"] / n_ref
    pg_per = best["pg-null"] / n
    for name, mc in cases.items():
        per = best[name] / n
        nodes = {k: round(clock.to_ns(mc.min[k]), 2) for k in Ip4Forward.NODES}
        nodes["null-tx"] = round(clock.to_ns(mc.min["null-tx-out0"]), 2)
        path = per - pg_per                    # measured: wall minus pg alone, same invocation (<= 0: noise)
        line = {"case": name, "packets": n, "runs": runs[name], "pps": 1e9 / per, "ns_per_packet": per,
                "path_ns_per_packet": round(path, 2), "path_pps": round(1e9 / path) if path > 0 else None,
                "pg_ns_per_packet": round(pg_per, 2), "nodes": nodes,
                "nodes_sum_ns": round(sum(v for k, v in nodes.items() if k != "pg-input"), 2),
                "ratio": ref / per, "against": "plain-python",
                "path_ratio": round(ref / path, 1) if path > 0 else None}
        if name == "graphnet":
            line.update({"routes": fib_stats["routes"], "plies": fib_stats["plies"],
                         "mtrie_mb": round(fib_stats["mtrie_bytes"] / 1048576, 1),
                         "fib_load_s": round(load_s, 2), "route_gen_s": round(gen_s, 2),
                         "targets": {"wall<=50ns": per <= 50.0, "path<=50ns": path <= 50.0,
                                     "ratio>=100": ref / per >= 100, "path_ratio>=100": ref >= 100 * path}})
        else:
            line["routes"] = 1
        if name == "graphnet-1-route-check":
            line["check_ns"] = round(per - best["graphnet-1-route"] / n, 2)
            line["ratio"], line["against"] = best["graphnet-1-route"] / best[name], "graphnet-1-route"
        yield line
    yield {"case": "pg-null", "packets": n, "runs": runs["pg-null"], "pps": 1e9 / pg_per, "ns_per_packet": pg_per}
    yield {"case": "plain-python", "packets": n_ref, "runs": runs["plain-python"], "pps": 1e9 / ref,
           "ns_per_packet": ref, "routes": fib_stats["routes"]}
