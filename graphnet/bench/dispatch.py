"""``graphnet bench dispatch``: the engine's cost per node hop, and the same
pipeline in plain Python, measured side by side in one run.

Every graphnet case is one engine: ``pg-input`` sends a fixed number of
64-byte Ethernet/IPv4/UDP packets (one stream, full frames of 256 vectors),
through a chain of nodes, into ``null``, run until idle. Cases:

``pg-null``
    pg-input -> null. What the generator costs (it copies the 64-byte
    template into each buffer: ``pg_ns_per_packet``) and what the sink
    costs (``null_ns_per_packet``), both from node clocks. It is also the
    zero-node baseline of ``ns_per_hop``.
``plain-python-8``
    The reference: a list of bytearray packets; 8 plain-Python functions,
    each looking at the packet (its length) and returning a next index; a
    dict-based graph walked one packet at a time; a null sink that counts.
    No packet generation is timed (the packets are built beforehand), so
    the reference is flattered, never graphnet. ``ns_per_node``: (time with
    8 functions - time with the sink only) / 8, per packet.
``cython-8``
    pg-input -> 8 ``passthrough`` Cython nodes -> null, ``check=False``:
    they read no buffer (the engine's cost per hop and nothing else; the
    kit's default passthrough reads each packet's length, about 0.7 ns
    more per node).
    ``ns_per_node``: mean clocks/vector of the 8 nodes (``show runtime``),
    in ns -- each node's clocks include the engine's work around its call
    (enqueue, frame handling, the dispatch loop). ``ns_per_hop``: (time with
    8 nodes - time of pg-null) / 8 per packet, the engine overhead per hop
    by difference. ``ratio``: packets/s against plain-python-8, whole
    pipeline (graphnet's figure includes pg generating the packets).
``python-node``
    cython-8 with one Python node (``python_node`` returning 0) inserted
    after the 4th node: 9 nodes. ``python_node_ns_per_packet`` from its
    clocks: one GIL round trip and a FrameView per frame, amortised.

``--nodes K`` changes the chain length (the 8 above).
"""
from __future__ import annotations

from typing import Iterator, Optional

from graphnet.bench.core import Clock, best_of, register
from graphnet.io import templates
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.nodes.passthrough import passthrough
from graphnet.vlib.engine import Engine
from graphnet.vlib.node import python_node

DEFAULT_PACKETS = 100_000         # a few ms a run: short runs dodge preemption on a shared VM
DEFAULT_REF_PACKETS = 2_000       # plain Python is ~100x slower: fewer packets, a run as short
PACKET_SIZE = 64
STREAM = "bench"


def udp4_packet(size: int = PACKET_SIZE) -> bytes:
    """A size-byte Ethernet/IPv4/UDP packet, 10.0.0.1:1024 -> 10.0.0.2:1024
    (graphnet.io.templates, the one bytes builder of the benches)."""
    return templates.build("udp", src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02", src="10.0.0.1",
                           dst="10.0.0.2", sport=1024, dport=1024, size=size)


def _python_pass(name: str, next_node: str):
    @python_node(name, next_nodes=[next_node])
    def py_pass(frame):
        """A Python node that sends the whole frame to next 0."""
        return 0
    return py_pass


class Chain:
    """An engine running pg-input -> n_nodes pass-through Cython nodes ->
    null (with ``python_node``: a Python node inserted after the first
    n_nodes // 2), for a fixed count of packets per ``run()``."""

    def __init__(self, n_nodes: int, packets: int, python_node: bool = False, packet_size: int = PACKET_SIZE):
        self.packets = packets
        self.names = [f"pass-{i}" for i in range(n_nodes)]
        self.python_name = "py-pass" if python_node else None
        if python_node:
            self.names.insert(n_nodes // 2, self.python_name)
        order = self.names + ["null"]
        nodes = [_python_pass(name, order[i + 1]) if name == self.python_name
                 else passthrough(name, order[i + 1], check=False)      # reads no buffer: the engine's own cost
                 for i, name in enumerate(self.names)]
        self.pg = PacketGenerator(next_node=order[0])
        self.pg.add_stream(Stream(STREAM, [udp4_packet(packet_size)], count=packets, fix_checksums=False))
        self.engine = Engine([self.pg, nodes]).build()
        self.last: Optional[dict] = None

    def run(self) -> None:
        """One run: restart the stream and run the loop until idle."""
        self.pg.enable(STREAM)
        self.engine.clear_runtime()
        self.engine.run_until_idle(timeout=120)

    def counters(self) -> dict:
        """{node name: counters} of the last run, checked: every packet
        reached null and every buffer is back in the pool."""
        eng = self.engine
        c = {n.name: eng.main.node_counters()[i] for i, n in enumerate(eng.nodes)}
        if c["null"]["vectors"] != self.packets or eng.buffer_stats()["in_use"] != 0:
            raise RuntimeError(f"bench chain lost packets: null saw {c['null']['vectors']} of {self.packets}, "
                               f"{eng.buffer_stats()['in_use']} buffers in use")
        return c

    def close(self) -> None:
        self.engine.close()


def _make_plain_node():
    def node(pkt):
        # looks at the packet, as passthrough does (a real node decides per packet)
        return 0 if len(pkt) else 0
    return node


class PlainChain:
    """The plain-Python reference: bytearray packets walked one at a time
    through a dict graph {name: (function, next names)} of n_nodes
    functions into a null sink that counts."""

    def __init__(self, n_nodes: int, packets: int, packet_size: int = PACKET_SIZE):
        template = udp4_packet(packet_size)
        self.packets = [bytearray(template) for _ in range(packets)]
        self.dropped = 0
        names = [f"pass-{i}" for i in range(n_nodes)] + ["null"]
        self.graph = {name: (_make_plain_node(), (names[i + 1],)) for i, name in enumerate(names[:-1])}
        self.graph["null"] = (self._null, None)
        self.first = names[0]

    def _null(self, pkt):
        self.dropped += 1

    def run(self) -> None:
        graph, first = self.graph, self.first
        for pkt in self.packets:
            fn, nexts = graph[first]
            nx = fn(pkt)
            while nexts is not None:
                fn, nexts = graph[nexts[nx]]
                nx = fn(pkt)


def _clock_ns(clock: Clock, c: dict) -> float:
    return clock.to_ns(c["clocks"] / c["vectors"]) if c["vectors"] else 0.0


@register("dispatch")
def bench_dispatch(opts) -> Iterator[dict]:
    """pg -> 8 pass-through Cython nodes -> null (256 vectors/call, 64 B): ns per node hop, vs plain Python."""
    k = getattr(opts, "nodes", None) or 8
    n = opts.packets or DEFAULT_PACKETS
    n_ref = getattr(opts, "ref_packets", None) or min(n, DEFAULT_REF_PACKETS)
    base, cy, py = "pg-null", f"cython-{k}", "python-node"
    ref, ref0 = f"plain-python-{k}", "plain-python-0"
    chains = {base: Chain(0, n), cy: Chain(k, n), py: Chain(k, n, python_node=True)}
    plains = {ref0: PlainChain(0, n_ref), ref: PlainChain(k, n_ref)}
    counters: dict[str, dict] = {}

    def on_best(name):
        if name in chains:
            counters[name] = chains[name].counters()

    clock = Clock()
    cases = {name: c.run for name, c in {**chains, **plains}.items()}
    try:
        best, runs = best_of(cases, clock, opts.repeat, opts.seconds, on_best)
    finally:
        for c in chains.values():
            c.close()
    for name, p in plains.items():
        if p.dropped != len(p.packets) * runs[name]:
            raise RuntimeError("plain-Python reference lost packets")

    per_pkt = {name: best[name] / (n if name in chains else n_ref) for name in best}
    cb = counters[base]
    yield {"case": base, "nodes": 0, "packets": n, "runs": runs[base], "pps": 1e9 / per_pkt[base],
           "ns_per_packet": per_pkt[base], "pg_ns_per_packet": _clock_ns(clock, cb["pg-input"]),
           "null_ns_per_packet": _clock_ns(clock, cb["null"])}

    ref_node = (per_pkt[ref] - per_pkt[ref0]) / k
    yield {"case": ref, "nodes": k, "packets": n_ref, "runs": runs[ref], "pps": 1e9 / per_pkt[ref],
           "ns_per_packet": per_pkt[ref], "ns_per_node": ref_node}

    c8 = counters[cy]
    ns_node = sum(_clock_ns(clock, c8[name]) for name in chains[cy].names) / k
    ns_hop = (per_pkt[cy] - per_pkt[base]) / k
    ratio = per_pkt[ref] / per_pkt[cy]
    yield {"case": cy, "nodes": k, "packets": n, "runs": runs[cy], "pps": 1e9 / per_pkt[cy],
           "ns_per_packet": per_pkt[cy], "ns_per_node": ns_node, "ns_per_hop": ns_hop,
           "pg_ns_per_packet": _clock_ns(clock, c8["pg-input"]),
           "vectors_per_call": c8["pass-0"]["vectors"] / c8["pass-0"]["calls"] if k else 0.0,
           "ratio": ratio, "against": ref, "node_ratio": ref_node / ns_node if ns_node else None,
           "targets": {"ns_per_node<=5": ns_node <= 5.0, "ns_per_hop<=5": ns_hop <= 5.0, "ratio>=100": ratio >= 100}}

    cp = counters[py]
    cy_names = [name for name in chains[py].names if name != chains[py].python_name]
    yield {"case": py, "nodes": k + 1, "packets": n, "runs": runs[py], "pps": 1e9 / per_pkt[py],
           "ns_per_packet": per_pkt[py],
           "ns_per_node": sum(_clock_ns(clock, cp[name]) for name in cy_names) / k,
           "python_node_ns_per_packet": _clock_ns(clock, cp[chains[py].python_name]),
           "ratio": per_pkt[ref] / per_pkt[py], "against": ref}
