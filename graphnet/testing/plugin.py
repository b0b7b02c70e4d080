"""pytest plugin: engine fixtures with leak checks, pg -> nodes -> capture.

Register it in a conftest.py: ``pytest_plugins = ["graphnet.testing.plugin"]``.

Every engine made by ``engine_factory`` (and so by ``pg_capture``) is
stopped and closed when the test ends, then checked: all buffers back in
the pool (``buffer_stats()["in_use"] == 0``), no frame left pending
(``main.loop_stats()["pending_frames"] == 0``) and no double free. A leak
fails the test at teardown with the engine's ``show buffers`` text. Before
the close, an engine with devices (TAP, AF_PACKET, pcap) must have its
"in use by packets" back to idle (``check_packets_idle``): only buffers
waiting in ARP queues, reassembly or TAP tx retry queues may remain.

Privileged tests (markers, registered here):

- ``@pytest.mark.privileged`` / ``privileged(tun=True, tools=("ping",))``:
  the test needs root (CAP_NET_ADMIN), by default /dev/net/tun
  (``tun=False`` for AF_PACKET-only tests), and the named programs.
- ``@pytest.mark.tools("tshark")``: the test needs these programs (not root).

Namespace fixtures (each needs the ``privileged`` marker on its test;
names are unique, everything is removed after the test, also on failure):

- ``netns``, ``netns2``: a fresh network namespace (two for two).
- ``quiet_netns``: one with IPv6 off, so the kernel sends nothing unasked.
- ``veth``: ``graphnet.io.host.VethPair``, two fresh namespaces joined by
  a veth pair, both ends up (``ns_a``/``veth_a``, ``ns_b``/``veth_b``).

Use ``graphnet.testing.helpers.unique_ifname`` for TAP and veth names.

When a requirement is missing the test is skipped with the reason, except
when the suite runs as root (CI, ``.ci/run``): then a skip of a test that
carries either marker, whether from the marker's own check or from a
``pytest.skip()`` inside the test, is reported as a FAILURE naming what
was missing. So a CI run as root cannot pass with privileged tests skipped.
"""
from __future__ import annotations

import itertools
import os
import shutil
from typing import Iterable, Optional

import pytest

import graphnet
from graphnet.testing.packets import udp_packet as _udp_packet


def pytest_configure(config):
    config.addinivalue_line("markers", "privileged(tun=True, tools=()): needs root (and /dev/net/tun, and the "
                                       "named programs); skipped without them, a failure when run as root")
    config.addinivalue_line("markers", "tools(*names): needs these programs on PATH; skipped without them, "
                                       "a failure when run as root")


def _missing(item) -> list:
    """What a marked test needs and this machine lacks (empty: runnable)."""
    missing = []
    priv = item.get_closest_marker("privileged")
    tools = list(item.get_closest_marker("tools").args) if item.get_closest_marker("tools") else []
    if priv is not None:
        if os.geteuid() != 0:
            missing.append("root (CAP_NET_ADMIN)")
        if priv.kwargs.get("tun", True) and not os.path.exists("/dev/net/tun"):
            missing.append("/dev/net/tun")
        tools += list(priv.kwargs.get("tools", ()))
    missing += [t for t in tools if shutil.which(t) is None]
    return missing


def _skips_are_failures(item) -> bool:
    """Under root, a marked test must run: its skip is a failure."""
    return os.geteuid() == 0 and (item.get_closest_marker("privileged") is not None
                                  or item.get_closest_marker("tools") is not None)


def pytest_runtest_setup(item):
    missing = _missing(item)
    if missing:
        pytest.skip("needs " + ", ".join(missing))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail") and _skips_are_failures(item):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3 else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = (f"{item.nodeid}: a privileged test was skipped while the suite runs as root "
                        f"({reason}); CI must run it: install what it needs (see .ci/run)")


def _needs_privileged(request, fixture: str) -> None:
    if request.node.get_closest_marker("privileged") is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the {fixture} fixture needs @pytest.mark.privileged "
                                f"on the test (root, and a failure instead of a skip under root)")


@pytest.fixture
def netns(request):
    """A fresh network namespace (``gn-test-<8 hex>``), removed after the test."""
    _needs_privileged(request, "netns")
    from graphnet.io import host
    with host.temporary_netns("gn-test") as ns:
        yield ns


@pytest.fixture
def netns2(request):
    """A second fresh namespace, for tests that need two."""
    _needs_privileged(request, "netns2")
    from graphnet.io import host
    with host.temporary_netns("gn-test") as ns:
        yield ns


@pytest.fixture
def quiet_netns(request):
    """A fresh namespace with IPv6 off (no router solicitations, no MLD)."""
    _needs_privileged(request, "quiet_netns")
    from graphnet.testing.helpers import quiet_netns as make
    with make("gn-test") as ns:
        yield ns


@pytest.fixture
def veth(request):
    """Two fresh namespaces joined by a veth pair, both ends up:
    ``graphnet.io.host.VethPair`` (ns_a, veth_a, ns_b, veth_b)."""
    _needs_privileged(request, "veth")
    from graphnet.io import host
    with host.veth_pair("gn-test") as p:
        yield p


class LeakError(AssertionError):
    """An engine ended a test with buffers in use or frames pending."""


def check_engine_clean(engine) -> None:
    """Raise LeakError unless every buffer is free and no frame is pending.

    Call it on a stopped engine (the counts are exact only between runs)."""
    if engine.main is None:          # never built (e.g. a graph error test)
        return
    stats = engine.buffer_stats()
    loop = engine.main.loop_stats()
    problems = []
    if stats["in_use"] != 0:
        problems.append(f"{stats['in_use']} buffers leaked")
    if loop["pending_frames"] != 0:
        problems.append(f"{loop['pending_frames']} frames left pending")
    if stats["double_frees"] != 0:
        problems.append(f"{stats['double_frees']} double frees (a node freed a buffer it no longer owned)")
    if problems:
        from graphnet.vlib import show
        raise LeakError(f"engine {engine.name!r}: " + ", ".join(problems) + "\n" + show.buffers(engine))


def check_packets_idle(engine) -> None:
    """For an engine with devices, stopped after its test: raise LeakError
    unless the buffers in use by packets (``show buffers``' "Packets",
    device caches left out) are exactly those that wait in a queue (ARP,
    reassembly; TAP tx retry frames at least). The idle value of an engine
    that holds nothing is 0; a buffer a node lost would count here even
    though close() later frees the device caches."""
    if engine.main is None or not any(d is not None for d in engine.interfaces.devices):
        return
    s = engine.buffer_stats()
    explained = s["queued"] + s["tx_queued"]
    if s["in_use_packets"] < explained or (s["tx_queued"] == 0 and s["in_use_packets"] != explained):
        from graphnet.vlib import show
        raise LeakError(f"engine {engine.name!r}: {s['in_use_packets']} buffers in use by packets when idle, "
                        f"{s['queued']} of them queued (ARP, reassembly), {s['tx_queued']} tx frames queued\n"
                        + show.buffers(engine))


@pytest.fixture
def engine_factory():
    """``make(nodes=(), **engine_kwargs) -> Engine``; every engine made is
    closed and leak-checked at teardown."""
    engines = []

    def make(nodes: Iterable = (), **kw) -> graphnet.Engine:
        kw.setdefault("buffers", 4096)
        e = graphnet.Engine(nodes, **kw)
        engines.append(e)
        return e

    yield make
    errors = []
    for e in engines:
        e.stop()
        try:
            check_packets_idle(e)
        except LeakError as exc:
            errors.append(str(exc))
        e.close()
        if e.running:
            errors.append(f"engine {e.name!r} is still running after close()")
            continue
        try:
            check_engine_clean(e)
        except LeakError as exc:
            errors.append(str(exc))
    if errors:
        raise LeakError("\n".join(errors))


@pytest.fixture
def udp_packet():
    """The ``graphnet.testing.packets.udp_packet`` builder."""
    return _udp_packet


class PgCapture:
    """``pg-input -> nodes... -> capture``, ready to run.

    ``send(packets, **stream_kw)`` adds a stream, runs until idle and
    returns the packets captured since the last send (Scapy Ether)."""

    def __init__(self, engine, pg, capture):
        self.engine = engine
        self.pg = pg
        self.capture = capture
        self._names = itertools.count()
        self._seen = 0

    def add_stream(self, packets, name: Optional[str] = None, **kw):
        from graphnet.io.pg import Stream
        s = Stream(name or f"stream-{next(self._names)}", list(packets), **kw)
        self.pg.add_stream(s)
        return s

    def new_records(self) -> list:
        """Capture records (bytes, rx, tx) since the last call."""
        recs = self.capture.records()
        new = recs[self._seen:]
        self._seen = len(recs)
        return new

    def send(self, packets, *, timeout: float = 10.0, layer=None, **kw) -> list:
        self.add_stream(packets, **kw)
        self.engine.run_until_idle(timeout)
        if layer is None:
            from scapy.layers.l2 import Ether as layer
        return [layer(r[0]) for r in self.new_records()]

    def send_bytes(self, packets, *, timeout: float = 10.0, **kw) -> list:
        self.add_stream(packets, **kw)
        self.engine.run_until_idle(timeout)
        return [r[0] for r in self.new_records()]


@pytest.fixture
def pg_capture(engine_factory):
    """``make(*nodes, first="capture", pg_state="polling", capture_limit=100000,
    **engine_kwargs) -> PgCapture``.

    ``first`` is the node pg-input feeds; the test's own nodes should end at
    the node named ``capture``."""

    def make(*nodes, first: str = "capture", pg_state: str = "polling", pg_adaptive: bool = False,
             capture_limit: int = 100000, **kw) -> PgCapture:
        from graphnet.io.capture import Capture
        from graphnet.io.pg import PacketGenerator
        pg = PacketGenerator(next_node=first, state=pg_state, adaptive=pg_adaptive)
        cap = Capture(limit=capture_limit)
        engine = engine_factory([pg, *nodes, cap], **kw)
        engine.build()
        return PgCapture(engine, pg, cap)

    return make


# --- node-level benchmarks (pytest-benchmark) ----------------------------------------

class NodeBenchmark:
    """``node_benchmark(nodes, packets, ...)``: run a pg stream through one
    node or a small chain, timed by pytest-benchmark, and report per node
    ns/packet, clocks/packet and vectors/call.

    nodes:      registrations (Node, PythonNode, lists of them, devices);
                the last should end at ``null`` (or a tx node)
    packets:    the stream's template(s): Scapy packets or bytes
    first:      the node pg-input feeds (default: the first of ``nodes``)
    count:      packets per round (default 25,600: 100 full frames)
    edits:      pg Edits applied per packet (``Edit.field("ip4.dst", ...)``)
    setup:      ``f(engine)`` before the build (interfaces, routes, ...)
    report:     node names to report (default: every node of ``nodes``)
    budget_ns:  a number (every reported node) or ``{node: ns}``: the most
                ns/packet allowed, checked only in perf runs (``pytest
                perf/ --benchmark-only``), never in the functional suite
    rounds:     timed rounds, after one warm-up round

    pytest-benchmark's stats are the wall time of one round (``count``
    packets through the whole chain: what ``--benchmark-compare`` and the
    histograms compare between commits); ``extra_info`` (in its JSON) has
    ``packets_per_round``, ``ns_per_packet`` (the best round, per packet)
    and, per reported node, ``<node>.ns_per_packet``,
    ``<node>.clocks_per_packet`` and ``<node>.vectors_per_call`` (node
    clocks of the node's best round: on a shared machine a preempted round
    shows in the wall time stats, not in the per node figures). Returns ``{node: {ns_per_packet,
    clocks_per_packet, vectors_per_call}}``. Every packet must reach the end
    of the chain without an error counted: a benchmark of drops is refused.
    """

    def __init__(self, request, benchmark, engine_factory):
        self.request = request
        self.benchmark = benchmark
        self.engine_factory = engine_factory

    def __call__(self, nodes, packets, *, first: Optional[str] = None, count: int = 25_600, edits=(),
                 setup=None, report=None, budget_ns=None, rounds: int = 10, buffers: int = 8192,
                 fix_checksums: bool = True, sw_if_index: int = 0) -> dict:
        from graphnet.bench.core import Clock
        from graphnet.io.pg import PacketGenerator, Stream
        benchmark = self.benchmark
        nodes = list(nodes) if isinstance(nodes, (list, tuple)) else [nodes]
        names = [n.name for n in _flatten_registrations(nodes)]
        if not names and first is None:
            raise ValueError("node_benchmark: no nodes given")
        if not isinstance(packets, (list, tuple)):
            packets = [packets]
        pg = PacketGenerator(next_node=first or names[0])
        engine = self.engine_factory([pg, *nodes], buffers=buffers)
        if setup is not None:
            setup(engine)
        engine.build()
        pg.add_stream(Stream("node-benchmark", list(packets), count=count, edits=list(edits),
                             fix_checksums=fix_checksums, sw_if_index=sw_if_index))
        engine.run_until_idle(timeout=120)                     # warm-up: caches, frames, the first pass
        engine.clear_runtime()
        engine.clear_errors()

        report = list(report or names)
        best: dict = {}                   # node -> its counters in the round where it cost least per packet
        sent = [0]

        def collect():                    # after a round (untimed: pedantic's setup of the next, and at the end)
            counters = engine.main.node_counters()
            for name in report:
                c = counters[engine.index[name]]
                if c["vectors"] and (name not in best or c["clocks"] * best[name]["vectors"]
                                     < best[name]["clocks"] * c["vectors"]):
                    best[name] = c
            sent[0] += counters[engine.index[pg.name]]["vectors"]
            engine.clear_runtime()

        def one_round():
            pg.enable("node-benchmark")
            engine.run_until_idle(timeout=120)

        benchmark.pedantic(one_round, setup=collect, rounds=rounds, iterations=1, warmup_rounds=0)
        collect()
        clock = Clock()                                         # TSC ticks per ns, for node clocks
        errors = [(row[0], row[1], c) for row, c in zip(engine.errors, engine.main.error_counters())
                  if c and row[2] != "info"]
        if sent[0] != count * rounds or errors or engine.buffer_stats()["in_use"]:
            raise AssertionError(f"node_benchmark: {sent[0]} of {count * rounds} packets sent, errors {errors}; "
                                 f"a benchmark must not drop\n{engine.show('errors')}")
        out = {}
        for name in report:
            c = best.get(name)
            if c is None:
                raise AssertionError(f"node_benchmark: node {name!r} saw no packet")
            clocks = c["clocks"] / c["vectors"]
            out[name] = {"ns_per_packet": round(clock.to_ns(clocks), 2), "clocks_per_packet": round(clocks, 1),
                         "vectors_per_call": round(c["vectors"] / c["calls"], 1)}
            for k, v in out[name].items():
                benchmark.extra_info[f"{name}.{k}"] = v
        benchmark.extra_info["packets_per_round"] = count
        benchmark.extra_info["ns_per_packet"] = round(benchmark.stats.stats.min * 1e9 / count, 2)
        self._check_budget(out, budget_ns)
        return out

    def _check_budget(self, out: dict, budget_ns) -> None:
        if budget_ns is None or not self.request.config.getoption("benchmark_only", False):
            return                       # budgets are for perf runs only
        budgets = budget_ns if isinstance(budget_ns, dict) else {name: budget_ns for name in out}
        over = [f"{name}: {out[name]['ns_per_packet']} ns/packet > budget {limit} ns"
                for name, limit in budgets.items() if out[name]["ns_per_packet"] > limit]
        if over:
            pytest.fail("node budget exceeded: " + "; ".join(over), pytrace=False)


def _flatten_registrations(nodes) -> list:
    """The Node/PythonNode registrations among nodes (devices and lists expanded)."""
    from graphnet.vlib.node import Node, PythonNode
    out = []
    for n in nodes:
        if isinstance(n, PythonNode):
            out.append(n.registration())
        elif isinstance(n, Node):
            out.append(n)
        elif isinstance(n, (list, tuple)):
            out.extend(_flatten_registrations(n))
        elif hasattr(n, "nodes"):
            out.extend(_flatten_registrations(n.nodes()))
    return out


@pytest.fixture
def node_benchmark(request, benchmark, engine_factory):
    """Benchmark one node or a small chain with a pg stream (see NodeBenchmark).

        def test_my_node(node_benchmark):
            node_benchmark(my_node("my-node", "null"), Ether() / IP() / UDP(), budget_ns=50)
    """
    return NodeBenchmark(request, benchmark, engine_factory)
