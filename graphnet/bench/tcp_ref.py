"""``graphnet bench tcp-bulk | tcp-crr | tcp-lossy``: the TCP benchmarks of
issue 13, each beside the Linux kernel doing the same job kernel <-> kernel
over a veth pair between two network namespaces the bench makes and
removes (``veth_pair``).

The kernel references (measured now):

``tcp-bulk`` / ``kernel-veth``
    One stream: a sender in namespace A writes 1 MiB with each send() for
    ``--seconds`` (default 10), then closes; the receiver in B reads until
    the end of the stream. ``gbps``: bytes the receiver read, from its first
    byte to its last. ``sender_cpu``: the sender's CPU time (user + system,
    with the kernel work it does in its own context) over its wall time:
    near 1.0, the sender is what limits the stream (also in ``rx``).
``tcp-crr`` / ``kernel-veth``
    A client in A connects, sends 8 bytes, reads the 8-byte reply and
    closes, again and again for ``--seconds`` (at most MAX_CONNECTIONS);
    an echo server in B serves one connection at a time.
    ``connections_per_s``.
``tcp-lossy`` / ``kernel-veth-loss1``
    tcp-bulk with 1% of the packets entering B's veth dropped by nftables
    (``numgen random mod 100 < 1 drop`` on a netdev ingress chain: the data
    direction); ``ingress_packets`` and ``dropped`` are the rules' counters.
    veth hands over GSO super-packets (up to 64 KB), so one drop there is
    up to 45 MSS-sized segments lost at once (a burst): that is the
    kernel's reference, and graphnet's side gets the same rule on the
    TAP's kernel side.

The programs are this module run as ``python -m graphnet.bench.tcp_ref
sink|source|echo|crr ...`` inside a namespace (``ip netns exec``), their
socket loops in C (``tcp_ref_io``): plain blocking sockets, nothing of
graphnet's. Each prints ``ready`` once it listens and one JSON line at the
end; every run is bounded in time and count, and the bench ends the
programs it started by their PIDs when they overrun.

graphnet's side (``GRAPHNET``, one function per case: ``fn(opts) ->
{figure: value, ...}``, compared with the kernel row by its main figure:
``ratio``, ``against``) runs an engine with ``ip4_host`` + ``session_host``
and a TAP (vnet header, GSO both ways) into a fresh namespace
(``graphnet_tap``: kernel side ADDR_A, graphnet ADDR_B); the same programs
run in that namespace:

``tcp-bulk`` ``rx``
    the kernel's source program -> graphnet's throughput sink
    (``tcp://ADDR_B/5201``); every byte sent must arrive; ``gbps`` from the
    sink's first byte to its last; ``tcp4_established``: ``show runtime``'s
    calls, vectors and clocks per packet of that node over the run (a
    packet there is a GSO super-segment of up to 64 KB).
``tcp-bulk`` ``tx``
    graphnet's throughput source -> the kernel's sink program, which reads
    for ``--seconds`` (its deadline ends the run); ``gbps`` as the
    receiver measures it; ``tcp4_output``'s and ``tap_output``'s runtime
    figures (a packet there is a TSO super-segment of up to 64 KB where the
    TAP negotiated tso4: ``tcp`` counts them, ``tso_segs_out``).
``tcp-crr`` ``graphnet``
    the kernel's CRR client -> graphnet's echo server (``tcp://ADDR_B/5202``).
``tcp-lossy`` ``rx``
    ``rx`` with the same nftables rule on the TAP's kernel side, on its
    egress hook (the data direction towards graphnet, GSO super-packets as
    on the veth): ``egress_packets``, ``dropped``.

A function that raises NotBuilt makes its row say so plainly (``built:
false``, a note; no figures, no ratio). Needs root and, for tcp-lossy, nft (apt nftables).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from graphnet.bench.core import register

ADDR_A, ADDR_B, PREFIX = "10.239.0.1", "10.239.0.2", 24
BULK_PORT, CRR_PORT = 5201, 5202
CHUNK = 1 << 20                    # bytes per send()/recv() of the bulk programs
MAX_CONNECTIONS = 1_000_000        # per CRR run
STARTUP = 10.0                     # seconds a program may take to start listening
GRACE = 10.0                       # seconds past its run a program may take to report


class NotBuilt(RuntimeError):
    """graphnet's side of a case does not exist yet; the message says why."""


# --- the namespaces ---------------------------------------------------------------------------

def _sh(ns: str, script: str) -> None:
    from graphnet.io import host
    r = host.run_in_netns(ns, ["sh", "-c", script], capture_output=True, text=True, timeout=10)
    if r.returncode:
        raise RuntimeError(f"in namespace {ns}: {script!r} failed: {r.stderr.strip()}")


@contextlib.contextmanager
def veth_pair(prefix: str = "gn-tref"):
    """``host.veth_pair`` addressed ADDR_A (ns_a: the sender / client side)
    and ADDR_B (ns_b: the receiver / server side), tuned for many short
    connections from one client; removed on exit, also on error or
    interrupt."""
    from graphnet.io import host
    with host.veth_pair(prefix, (f"{ADDR_A}/{PREFIX}", f"{ADDR_B}/{PREFIX}")) as p:
        _client_side(p.ns_a)
        yield p


def _client_side(ns: str) -> None:
    """Many short connections from one client in ns: TIME_WAIT ports
    reused, a wide port range."""
    _sh(ns, "echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse; "
            "echo '1024 65535' > /proc/sys/net/ipv4/ip_local_port_range")


def need_nft() -> str:
    nft = shutil.which("nft")
    if nft is None:
        raise RuntimeError("the loss needs nft: apt-get install nftables")
    return nft


@contextlib.contextmanager
def ingress_loss(ns: str, ifname: str, percent: int, hook: str = "ingress") -> Iterator[Callable[[], tuple]]:
    """Drop `percent`% of the packets entering ifname in ns (nftables,
    netdev ingress; hook="egress": of those it sends, the TAP's kernel side
    towards graphnet); yields a function returning (packets seen, dropped).
    The table goes on exit (and with the namespace anyway)."""
    from graphnet.io import host
    if not 0 < percent < 100:
        raise ValueError(f"loss {percent}%: 1..99")
    if hook not in ("ingress", "egress"):
        raise ValueError(f"hook {hook!r}: ingress or egress")
    nft = need_nft()
    table = (f"table netdev gnloss {{\n  chain {hook} {{\n"
             f"    type filter hook {hook} device \"{ifname}\" priority 0; policy accept;\n"
             f"    counter\n    numgen random mod 100 < {percent} counter drop\n  }}\n}}\n")
    r = host.run_in_netns(ns, [nft, "-f", "-"], input=table, capture_output=True, text=True, timeout=10)
    if r.returncode:
        raise RuntimeError(f"nft in {ns}: {r.stderr.strip()}")

    def counts() -> tuple:
        out = host.run_in_netns(ns, [nft, "-j", "list", "table", "netdev", "gnloss"], capture_output=True,
                                text=True, timeout=10).stdout
        found = [int(expr["counter"]["packets"]) for item in json.loads(out).get("nftables", [])
                 for expr in item.get("rule", {}).get("expr", []) if "counter" in expr]
        if len(found) != 2:
            raise RuntimeError(f"nft in {ns}: expected 2 counters in table gnloss, found {found}")
        return found[0], found[1]
    try:
        yield counts
    finally:
        host.run_in_netns(ns, [nft, "delete", "table", "netdev", "gnloss"], capture_output=True, timeout=10)


# --- the programs ------------------------------------------------------------------------------

class Program:
    """One of this module's programs in a namespace: ``ready()`` waits until
    it listens, ``result()`` for its JSON line; a program that overruns is
    killed (by its own PID) and reported as an error."""

    def __init__(self, ns: str, role: str, *args: str):
        from graphnet.io import host
        self.role = role
        self.proc = host.popen_in_netns(ns, [sys.executable, "-m", "graphnet.bench.tcp_ref", role, *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def _line(self, timeout: float) -> str:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.kill()
            raise RuntimeError(f"tcp reference {self.role}: no answer within {timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().strip().splitlines()
            raise RuntimeError(f"tcp reference {self.role} failed: {err[-1] if err else 'no output'}")
        return line

    def ready(self) -> None:
        if self._line(STARTUP).strip() != "ready":
            raise RuntimeError(f"tcp reference {self.role}: did not start")

    def result(self, timeout: float) -> dict:
        out = json.loads(self._line(timeout))
        self.proc.wait(timeout=GRACE)
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=GRACE)

    def close(self) -> None:
        self.kill()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


def kernel_bulk(seconds: float, loss_percent: int = 0, chunk: int = CHUNK) -> dict:
    """One kernel stream A -> B over veth for `seconds` (optionally with
    loss at B's ingress): {gbps, bytes, seconds, sent_bytes, [dropped]}."""
    with veth_pair() as p, contextlib.ExitStack() as stack:
        counts = stack.enter_context(ingress_loss(p.ns_b, p.veth_b, loss_percent)) if loss_percent else None
        sink = stack.enter_context(contextlib.closing(
            Program(p.ns_b, "sink", p.addr_b, str(BULK_PORT), str(seconds + GRACE), str(chunk))))
        sink.ready()
        source = stack.enter_context(contextlib.closing(
            Program(p.ns_a, "source", p.addr_b, str(BULK_PORT), str(seconds), str(chunk))))
        sent = source.result(seconds + GRACE + STARTUP)
        got = sink.result(GRACE)
        if not got["eof"] or got["bytes"] != sent["bytes"]:
            raise RuntimeError(f"tcp-bulk reference: sent {sent['bytes']} bytes, received {got['bytes']} "
                               f"(end of stream: {got['eof']})")
        out = {"gbps": got["bytes"] * 8 / got["ns"] if got["ns"] else 0.0, "bytes": got["bytes"],
               "seconds": got["ns"] / 1e9, "write_bytes": chunk, "sender_cpu": round(sent["cpu"], 3)}
        if counts is not None:
            seen, dropped = counts()
            out.update(loss_percent=loss_percent, ingress_packets=seen, dropped=dropped)
        return out


def kernel_crr(seconds: float, max_connections: int = MAX_CONNECTIONS) -> dict:
    """Kernel client A -> kernel echo server B, connect/8 B/reply/close:
    {connections_per_s, connections, seconds, errors}."""
    with veth_pair() as p, contextlib.ExitStack() as stack:
        server = stack.enter_context(contextlib.closing(
            Program(p.ns_b, "echo", p.addr_b, str(CRR_PORT), str(seconds + GRACE), str(max_connections))))
        server.ready()
        client = stack.enter_context(contextlib.closing(
            Program(p.ns_a, "crr", p.addr_b, str(CRR_PORT), str(seconds), str(max_connections))))
        c = client.result(seconds + GRACE + STARTUP)
        server.kill()                      # it waits for more until its own deadline
        if c["connections"] == 0:
            raise RuntimeError(f"tcp-crr reference: no connection completed ({c['errors']} errors)")
        return {"connections_per_s": c["connections"] / (c["ns"] / 1e9), "connections": c["connections"],
                "seconds": c["ns"] / 1e9, "errors": c["errors"]}


# --- graphnet's side: one function per case -----------------------------------------------------

TAP_BUFFERS = 32768                # the engine's buffer pool (as the TCP tests over a TAP)
FIFO = 4 << 20                     # bytes of each session fifo of the bulk apps
CRR_FIFO = 1 << 14                 # bytes of each session fifo of the CRR echo server
SOURCE_BYTES = 1 << 44             # graphnet's source: more than any run moves (the receiver's deadline ends it)


@dataclass
class GraphnetTap:
    engine: object
    ns: str             # the kernel's namespace (its programs run there)
    ifname: str         # the TAP's kernel side, in ns


@contextlib.contextmanager
def graphnet_tap(prefix: str = "gn-tref") -> Iterator[GraphnetTap]:
    """A graphnet engine (ip4_host + session_host, TCP in the graph) with a
    TAP (vnet header, offloads: GSO both ways) into a fresh namespace: the
    kernel side is ADDR_A, graphnet ADDR_B, as the veth pair's B. The
    engine is built, not started; stopped and closed, and the namespace
    removed, on exit."""
    from graphnet.io import host
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host, session_host
    from graphnet.vlib.engine import Engine
    with host.temporary_netns(f"{prefix}-g") as ns:
        eng = Engine([ip4_host.NODES, session_host.NODES], buffers=TAP_BUFFERS)
        try:
            dev = TapDevice(eng, f"gtr{ns[-8:]}t", netns=ns, host_address=f"{ADDR_A}/{PREFIX}")
            eng.add(dev)
            eng.build()
            ip4_host.set_interface_address(eng, dev.name, f"{ADDR_B}/{PREFIX}")
            host.set_link("lo", netns=ns, up=True)
            _client_side(ns)
            yield GraphnetTap(eng, ns, dev.host_name)
        finally:
            eng.close()


def node_clocks(engine, node: str) -> dict:
    """``show runtime``'s figures of one node: {calls, vectors, clocks per
    packet (vector), packets per call}."""
    counters = engine.call(engine.main.node_counters)
    i = [n.name for n in engine.nodes].index(node)
    c = counters[i]
    return {"calls": c["calls"], "vectors": c["vectors"],
            "clocks_per_packet": round(c["clocks"] / c["vectors"], 1) if c["vectors"] else None,
            "packets_per_call": round(c["vectors"] / c["calls"], 2) if c["calls"] else None}


def _clocks_per_item(engine, n: int, top: int = 8) -> dict:
    """``show runtime``'s clocks of the busiest nodes over the run, per item
    (a connection for tcp-crr): where the engine's time goes."""
    counters = engine.call(engine.main.node_counters)
    per = {node.name: c["clocks"] / n for node, c in zip(engine.nodes, counters) if c["clocks"]}
    return {k: round(v) for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:top]}


def _wait_for(pred, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def _bulk_rx(seconds: float, loss_percent: int = 0) -> dict:
    """The kernel's source program in the namespace -> graphnet's throughput
    sink (tcp://ADDR_B/BULK_PORT) for `seconds`; every byte sent must
    arrive. gbps: the sink's bytes from its first byte to its last."""
    from graphnet.apps.throughput import start_sink
    with graphnet_tap() as g, contextlib.ExitStack() as stack:
        counts = (stack.enter_context(ingress_loss(g.ns, g.ifname, loss_percent, hook="egress"))
                  if loss_percent else None)
        app = start_sink(g.engine, f"tcp://{ADDR_B}/{BULK_PORT}", rx_fifo_size=FIFO, tx_fifo_size=FIFO)
        g.engine.start()
        g.engine.clear_runtime()
        source = stack.enter_context(contextlib.closing(
            Program(g.ns, "source", ADDR_B, str(BULK_PORT), str(seconds), str(CHUNK))))
        sent = source.result(seconds + GRACE + STARTUP)
        sink = lambda: g.engine.call(app.builtin.stats)
        _wait_for(lambda: sink()["bytes"] >= sent["bytes"], GRACE)
        got = sink()
        if got["bytes"] != sent["bytes"]:
            raise RuntimeError(f"tcp-bulk rx: the kernel sent {sent['bytes']} bytes, graphnet's sink read "
                               f"{got['bytes']}")
        ns = got.get("seconds", 0.0)
        out = {"gbps": got["bytes"] * 8 / ns / 1e9 if ns else 0.0, "bytes": got["bytes"], "seconds": ns,
               "write_bytes": CHUNK, "sender_cpu": round(sent["cpu"], 3),
               "tcp4_established": node_clocks(g.engine, "tcp4-established"),
               "tcp": g.engine.call(lambda: _tcp_stats(g.engine))}
        if counts is not None:
            seen, dropped = counts()
            out.update(loss_percent=loss_percent, egress_packets=seen, dropped=dropped)
        g.engine.stop()
        return out


def _tcp_stats(engine) -> dict:
    from graphnet.transport import tcp4
    return {k: v for k, v in tcp4.transport(engine).stats().items() if v}


def graphnet_bulk_rx(opts) -> dict:
    """Kernel sender in a namespace -> graphnet's sink over a TAP with GSO."""
    return _bulk_rx(opts.seconds)


def graphnet_bulk_tx(opts) -> dict:
    """graphnet's source over a TAP -> the kernel receiver in a namespace:
    the receiver reads for `seconds` (its deadline ends the run; graphnet's
    source has more to send). gbps: the receiver's bytes from its first
    byte to its last."""
    from graphnet.apps.throughput import start_source
    with graphnet_tap() as g, contextlib.closing(
            Program(g.ns, "sink", ADDR_A, str(BULK_PORT), str(opts.seconds), str(CHUNK))) as sink:
        sink.ready()
        g.engine.start()
        g.engine.clear_runtime()
        app = start_source(g.engine, f"tcp://{ADDR_A}/{BULK_PORT}", bytes=SOURCE_BYTES,
                           rx_fifo_size=FIFO, tx_fifo_size=FIFO)
        got = sink.result(opts.seconds + GRACE + STARTUP)
        src = g.engine.call(app.builtin.stats)
        if got["bytes"] == 0:
            raise RuntimeError(f"tcp-bulk tx: the kernel's receiver read nothing (graphnet's source: {src})")
        out = {"gbps": got["bytes"] * 8 / got["ns"] if got["ns"] else 0.0, "bytes": got["bytes"],
               "seconds": got["ns"] / 1e9, "source_bytes": src["bytes"],
               "tcp4_output": node_clocks(g.engine, "tcp4-output"),
               "tap_output": node_clocks(g.engine, next(n.name for n in g.engine.nodes
                                                        if n.name.startswith("tap-output-"))),
               "tcp": g.engine.call(lambda: _tcp_stats(g.engine))}
        g.engine.stop()
        return out


def graphnet_crr(opts) -> dict:
    """The kernel CRR client over a TAP -> graphnet's echo server."""
    from graphnet.apps.echo import start_echo_server
    limit = min(opts.packets or MAX_CONNECTIONS, MAX_CONNECTIONS)
    with graphnet_tap() as g:
        app = start_echo_server(g.engine, f"tcp://{ADDR_B}/{CRR_PORT}", rx_fifo_size=CRR_FIFO,
                                tx_fifo_size=CRR_FIFO)
        g.engine.start()
        cpu0 = g.engine.call(g.engine.main.thread_cpu_ns)
        with contextlib.closing(Program(g.ns, "crr", ADDR_B, str(CRR_PORT), str(opts.seconds), str(limit))) as cl:
            c = cl.result(opts.seconds + GRACE + STARTUP)
        engine_cpu = (g.engine.call(g.engine.main.thread_cpu_ns) - cpu0) / c["ns"] if c["ns"] else None
        echoed = g.engine.call(app.echo.stats)
        if c["connections"] == 0:
            raise RuntimeError(f"tcp-crr: no connection completed ({c['errors']} errors)")
        out = {"connections_per_s": c["connections"] / (c["ns"] / 1e9), "connections": c["connections"],
               "seconds": c["ns"] / 1e9, "errors": c["errors"], "echoed_bytes": echoed["bytes"],
               "tcp": g.engine.call(lambda: _tcp_stats(g.engine)),
               # the engine loop's CPU over the client's run, as a share of a
               # core (it busy-polls between segments: docs/architecture.md)
               "engine_cpu": round(engine_cpu, 3) if engine_cpu is not None else None,
               "clocks_per_connection": _clocks_per_item(g.engine, c["connections"])}
        g.engine.stop()
        return out


def graphnet_lossy_rx(opts) -> dict:
    """tcp-bulk rx with the same 1% nftables loss on the TAP's kernel side
    (its egress: the data direction, GSO super-packets as on the veth)."""
    return _bulk_rx(opts.seconds, loss_percent=1)


# case -> (graphnet function, main figure, targets: {name: f(graphnet figure, ratio) -> bool})
GRAPHNET = {
    "tcp-bulk": {"rx": graphnet_bulk_rx, "tx": graphnet_bulk_tx},
    "tcp-crr": {"graphnet": graphnet_crr},
    "tcp-lossy": {"rx": graphnet_lossy_rx},
}
FIGURE = {"tcp-bulk": "gbps", "tcp-crr": "connections_per_s", "tcp-lossy": "gbps"}
TARGETS = {"tcp-bulk": {">=20Gbit/s": lambda v, r: v >= 20.0, ">=1.0x": lambda v, r: r >= 1.0},
           "tcp-crr": {">=1.0x": lambda v, r: r >= 1.0},
           "tcp-lossy": {">=0.8x": lambda v, r: r >= 0.8}}


def graphnet_rows(bench: str, opts, reference: dict, against: str) -> Iterator[dict]:
    """graphnet's row of each case of `bench`: measured and compared with the
    kernel reference, or said plainly to be not built."""
    figure = FIGURE[bench]
    for case, fn in GRAPHNET[bench].items():
        try:
            got = fn(opts)
        except NotBuilt as e:
            yield {"case": case, "built": False, "note": str(e), "against": against}
            continue
        ratio = got[figure] / reference[figure] if reference[figure] else 0.0
        yield {"case": case, **got, "ratio": ratio, "against": against,
               "targets": {name: ok(got[figure], ratio) for name, ok in TARGETS[bench].items()}}


def _need_root(bench: str) -> None:
    from graphnet.io import host
    if not host.is_root():
        raise RuntimeError(f"bench {bench} needs root (network namespaces, veth)")


@register("tcp-bulk", seconds=10.0)
def bench_tcp_bulk(opts) -> Iterator[dict]:
    """one TCP stream, 1 MiB writes: kernel <-> kernel over veth, kernel <-> graphnet over a TAP (rx, tx)."""
    _need_root("tcp-bulk")
    k = kernel_bulk(opts.seconds)
    yield {"case": "kernel-veth", **k}
    yield from graphnet_rows("tcp-bulk", opts, k, "kernel-veth")


@register("tcp-crr", seconds=10.0)
def bench_tcp_crr(opts) -> Iterator[dict]:
    """connect, 8 B, reply, close: kernel client -> kernel echo server over veth, -> graphnet's over a TAP."""
    _need_root("tcp-crr")
    k = kernel_crr(opts.seconds, min(opts.packets or MAX_CONNECTIONS, MAX_CONNECTIONS))
    yield {"case": "kernel-veth", **k}
    yield from graphnet_rows("tcp-crr", opts, k, "kernel-veth")


@register("tcp-lossy", seconds=10.0)
def bench_tcp_lossy(opts) -> Iterator[dict]:
    """tcp-bulk rx with 1% nftables loss on the data direction: kernel over veth, graphnet over a TAP."""
    _need_root("tcp-lossy")
    need_nft()
    k = kernel_bulk(opts.seconds, loss_percent=1)
    yield {"case": "kernel-veth-loss1", **k}
    yield from graphnet_rows("tcp-lossy", opts, k, "kernel-veth-loss1")


# --- the programs' entry point ---------------------------------------------------------------------

def _listener(addr: str, port: int, timeout_s: float) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _rcvtimeo(s, timeout_s)
    s.bind((addr, port))
    s.listen(128)
    return s


def _rcvtimeo(s: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO on a blocking socket (settimeout would make it non-blocking)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(seconds), int(seconds % 1 * 1e6)))


def _program(argv: list) -> dict:
    from graphnet.bench import tcp_ref_io as io
    p = argparse.ArgumentParser(prog="python -m graphnet.bench.tcp_ref")
    p.add_argument("role", choices=("sink", "source", "echo", "crr"))
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("n", type=int, help="sink/source: bytes per recv/send; echo/crr: most connections")
    a = p.parse_args(argv)
    if not 0 < a.seconds <= 3600 or not 0 < a.n <= 1 << 30 or not 0 < a.port < 65536:
        p.error("seconds 0..3600, n 1..2**30, port 1..65535")
    if a.role in ("sink", "echo"):
        ls = _listener(a.addr, a.port, 0.2 if a.role == "echo" else a.seconds)
        print("ready", flush=True)
        if a.role == "echo":
            n, echoed = io.echo_server(ls.fileno(), a.n, a.seconds)
            return {"connections": n, "bytes": echoed}
        conn, _ = ls.accept()
        _rcvtimeo(conn, 5.0)
        got, ns, eof = io.bulk_recv(conn.fileno(), a.n, a.seconds)
        conn.close()
        return {"bytes": got, "ns": ns, "eof": eof}
    if a.role == "source":
        s = socket.create_connection((a.addr, a.port), timeout=STARTUP)
        s.settimeout(None)
        cpu0 = time.process_time_ns()
        sent, ns = io.bulk_send(s.fileno(), a.n, a.seconds)
        cpu = time.process_time_ns() - cpu0
        s.close()
        return {"bytes": sent, "ns": ns, "cpu": cpu / ns if ns else 0.0}
    n, ns, errors = io.crr_client(struct.unpack("=I", socket.inet_aton(a.addr))[0], socket.htons(a.port),
                                  a.n, a.seconds)
    return {"connections": n, "ns": ns, "errors": errors}


if __name__ == "__main__":
    print(json.dumps(_program(sys.argv[1:])), flush=True)
