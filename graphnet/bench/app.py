"""``graphnet bench app-ct-throughput`` and ``app-udp-rr``: applications in
their own processes (graphnet.app) against the kernel doing the same job
in the same run.

The engine runs in this process (its loop in a thread) with the attach
socket served on a temporary path; every application is a separate
Python process (``sys.executable``), started and ended here by its PID.
Each side is the same Python code over a different socket class, so the
per-call Python cost is alike and the difference is the transport.

``app-ct-throughput`` (64 KB writes, ``--packets`` of them per run,
default 4096 = 256 MB): a sink process accepts, reads into one buffer
(``recv_into``) until it has every byte, answers one byte; a source
process connects, ``sendall``\\s 64 KB writes, waits for the byte: GB/s
from its first write to the answer.
  - ``memcpy``: one C memcpy of 64 KB per write (session_helper), the
    ceiling (the issue's target: cut-through >= 50% of it);
  - ``ring-c``: the same copies through a session fifo of the same size
    between two threads of one process, in C (gn_fifo_enqueue /
    gn_fifo_dequeue spinning on head and tail; session_helper.ring_rounds:
    no Python, no events, no wakeups): what a copying ring between two
    cores reaches on this machine;
  - ``unix``: a Unix stream socket between the two processes;
  - ``tcp-loopback``: kernel TCP over 127.0.0.1;
  - ``cut-through``: a graphnet cut-through session (the two processes map
    the same fifos, 4 MB each way: ``CT_FIFO``, the apps'
    ``rx_fifo_size``/``tx_fifo_size`` attach options, whose default is
    64 KB; ``GRAPHNET_BENCH_CT_FIFO=<bytes>`` runs another size. 512 KB,
    tried on 2026-12-04 to keep the ring in the caches, measured slower
    here: 0.30-0.33 of memcpy against 0.36-0.38 with 4 MB, see
    perf/RESULTS.md). The Unix socket and TCP keep the kernel's defaults.
    ``ratio`` against ``unix`` (target >= 3x); ``vs_memcpy`` (target
    >= 0.5), ``vs_ring_c`` and ``vs_tcp`` beside it.

``app-udp-rr`` (``--packets`` round trips per run, default 20000, 64-byte
requests): one process sends a datagram and waits for the answer.
  - ``kernel-udp``: a Python echo process on a kernel UDP socket over
    loopback, the client on a kernel socket (the kernel has no echo
    service of its own here);
  - ``graphnet-udp``: the client on a graphnet UDP session, answered by
    the engine's builtin echo app (C) through the graph.
  ``ratio`` against kernel-udp (target >= 1.0), transactions per second.

``app-idle`` (``--seconds`` of wall time per case, default 10): the CPU
time (utime + stime from ``/proc/<pid>/stat``, all threads) of the engine
process (this one: its loop and the attach server) and of the app
process, per wall second, as % of one core (each process's CPU clock,
nanoseconds; utime + stime from ``/proc/<pid>/stat`` where that clock
cannot be read).
  - ``engine-alone``: the engine with its attach socket, no app attached
    (the in-run reference: what the engine costs by itself);
  - ``attached-idle``: an app process attached with a stream listener and
    one open session (cut-through to its own listener: both ends are its
    own), blocked in ``recv()`` on it. ``cpu_percent`` is engine + app;
    ``ratio`` is the issue's budget (1% of a core) over it, ``against``
    names the budget (> 1: within it); ``vs_engine_alone`` the difference
    from the reference in percentage points.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Iterator

from graphnet.bench.core import register

CHUNK = 64 << 10
# app-ct-throughput's cut-through fifos, each way (the apps' attach options)
CT_FIFO = int(os.environ.get("GRAPHNET_BENCH_CT_FIFO", 4 << 20))
SINK_BUFFER = 1 << 20            # the sink's recv_into buffer (and ring-c's read size)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_IP = "10.0.0.1"

SINK = """
    import sys, time
    kind, total, FIFO = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
    if kind == "graphnet":
        from graphnet import app
        app.attach("bench-sink", rx_fifo_size=FIFO, tx_fifo_size=FIFO, segment_size=64 << 20)
        ls = app.socket(app.AF_INET, app.SOCK_STREAM)
        ls.bind(("127.0.0.1", 5100))
    else:
        import socket
        ls = socket.socket(socket.AF_UNIX if kind == "unix" else socket.AF_INET, socket.SOCK_STREAM)
        if kind == "unix":
            ls.bind(sys.argv[3])
        else:
            ls.bind(("127.0.0.1", 0))
    ls.listen()
    print("ready", ls.getsockname()[1] if kind == "tcp" else "", flush=True)
    ls.settimeout(30)
    for line in sys.stdin:                      # one run per line from the bench
        c, _ = ls.accept()
        c.settimeout(30)
        buf = bytearray(int(sys.argv[5]))
        got = 0
        while got < total:
            n = c.recv_into(buf)
            if not n:
                raise SystemExit(f"sink: end of data after {got} of {total} bytes")
            got += n
        c.sendall(b"!")
        c.close()
"""

SOURCE = """
    import sys, time
    kind, total, where, FIFO = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    chunk = memoryview(bytes(range(256)) * 256)
    if kind == "graphnet":
        from graphnet import app
        app.attach("bench-source", rx_fifo_size=FIFO, tx_fifo_size=FIFO)
        mk = lambda: app.create_connection(("127.0.0.1", 5100), timeout=30)
    else:
        import socket
        def mk():
            s = socket.socket(socket.AF_UNIX if kind == "unix" else socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(where if kind == "unix" else ("127.0.0.1", int(where)))
            return s
    for line in sys.stdin:
        s = mk()
        t0 = time.perf_counter_ns()
        for _ in range(total // len(chunk)):
            s.sendall(chunk)
        if s.recv(1) != b"!":
            raise SystemExit("source: no answer")
        print(time.perf_counter_ns() - t0, flush=True)
        s.close()
"""

ECHO = """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print("ready", s.getsockname()[1], flush=True)
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(d, a)
"""

RR = """
    import sys, time
    kind, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if kind == "graphnet":
        from graphnet import app
        app.attach("bench-rr")
        s = app.socket(app.AF_INET, app.SOCK_DGRAM)
        s.connect((sys.argv[4], port))
    else:
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
    s.settimeout(5)
    msg = bytes(64)
    for line in sys.stdin:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            s.send(msg)
            if len(s.recv(2048)) != 64:
                raise SystemExit("rr: short answer")
        print(time.perf_counter_ns() - t0, flush=True)
"""


IDLE = """
    from graphnet import app
    app.attach("bench-idle")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5101))
    ls.listen()
    c = app.create_connection(("127.0.0.1", 5101))
    a, _ = ls.accept()
    print("ready", flush=True)
    a.recv(1)                                   # nothing comes: blocked until the bench ends us
"""


class _Procs:
    """Processes started by the bench, ended by their PID."""

    def __init__(self, env):
        self.env = env
        self.procs = []

    def start(self, code, *args):
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=self.env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.communicate()
        self.procs.clear()


def _line(p, timeout_what: str) -> str:
    line = p.stdout.readline()
    if not line:
        raise RuntimeError(f"{timeout_what}: the process ended (see its error above)")
    return line


class _Engine:
    """An engine with the session layer, the builtin UDP echo on port 7,
    the attach socket on a temporary path."""

    def __init__(self):
        from graphnet.apps.echo import start_echo_server
        from graphnet.bench.ip4 import NullInterface
        from graphnet.nodes import ip4_host, session_host
        from graphnet.session.attach import AttachServer
        from graphnet.vlib.engine import Engine
        self.engine = Engine([ip4_host.NODES, session_host.NODES], buffers=8192)
        self.engine.add(NullInterface(self.engine, "in0", bytes.fromhex("020000000001")))
        self.engine.build()
        ip4_host.set_interface_address(self.engine, "in0", f"{ENGINE_IP}/24")
        start_echo_server(self.engine, "udp://0.0.0.0/7")
        self.engine.start()
        self.dir = tempfile.mkdtemp(prefix="gn-bench-app-")
        self.server = AttachServer(self.engine, os.path.join(self.dir, "app.sock")).start()
        self.env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        GRAPHNET_APP_SOCKET=self.server.path)

    def close(self):
        self.server.close()
        self.engine.close()
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


def _best(p_drive, rounds: int) -> int:
    """Ask the driving process for `rounds` runs; the best time in ns."""
    best = None
    for _ in range(rounds):
        p_drive.stdin.write("\n")
        p_drive.stdin.flush()
        ns = int(_line(p_drive, "a run"))
        best = ns if best is None else min(best, ns)
    return best


@register("app-ct-throughput", seconds=2.0)
def bench_app_ct_throughput(opts) -> Iterator[dict]:
    """Two processes over a cut-through session vs a Unix socket, kernel TCP and memcpy, 64 KB writes, GB/s."""
    from graphnet.bench.core import Clock, best_of
    from graphnet.bench.session_helper import memcpy_rounds, ring_rounds
    writes = opts.packets or 4096
    total = writes * CHUNK
    rounds = max(2, min(opts.repeat, 5))
    eng = _Engine()
    procs = _Procs(eng.env)
    results = {}
    try:
        mem, _ = best_of({"memcpy": lambda: memcpy_rounds(CHUNK, writes)}, Clock(), rounds, opts.seconds)
        results["memcpy"] = mem["memcpy"]
        results["ring-c"] = min(ring_rounds(CHUNK, writes, CT_FIFO, SINK_BUFFER) for _ in range(rounds))
        for case, kind in (("unix", "unix"), ("tcp-loopback", "tcp"), ("cut-through", "graphnet")):
            where = os.path.join(eng.dir, "bench.sock")
            sink = procs.start(SINK, kind, total, where, CT_FIFO, SINK_BUFFER)
            ready = _line(sink, f"{case} sink").split()
            if kind == "tcp":
                where = ready[1]
            src = procs.start(SOURCE, kind, total, where, CT_FIFO)
            best = None
            for _ in range(rounds):
                sink.stdin.write("\n")
                sink.stdin.flush()
                ns = _best(src, 1)
                best = ns if best is None else min(best, ns)
            results[case] = best
            procs.close()
            if kind == "unix":
                os.unlink(where)
    finally:
        procs.close()
        eng.close()
    for case in ("memcpy", "ring-c", "unix", "tcp-loopback", "cut-through"):
        ns = results[case]
        line = {"case": case, "unit": "64KB-write", "bytes": total, "pps": writes * 1e9 / ns,
                "ns_per_packet": ns / writes, "gbps": total / ns}
        if case == "cut-through":
            line.update(ratio=results["unix"] / ns, against="unix", vs_tcp=results["tcp-loopback"] / ns,
                        vs_memcpy=results["memcpy"] / ns, vs_ring_c=results["ring-c"] / ns)
        yield line


@register("app-udp-rr", seconds=2.0)
def bench_app_udp_rr(opts) -> Iterator[dict]:
    """UDP request/response from another process: graphnet session + builtin echo vs kernel UDP echo, per second."""
    n = opts.packets or 20000
    rounds = max(2, min(opts.repeat, 5))
    eng = _Engine()
    procs = _Procs(eng.env)
    results = {}
    try:
        echo = procs.start(ECHO)
        port = _line(echo, "kernel echo").split()[1]
        results["kernel-udp"] = _best(procs.start(RR, "kernel", n, port), rounds)
        procs.close()
        cpu0, wall0 = eng.engine.call(eng.engine.main.thread_cpu_ns), time.monotonic_ns()
        results["graphnet-udp"] = _best(procs.start(RR, "graphnet", n, 7, ENGINE_IP), rounds)
        engine_cpu = (eng.engine.call(eng.engine.main.thread_cpu_ns) - cpu0) / (time.monotonic_ns() - wall0)
    finally:
        procs.close()
        eng.close()
    for case in ("kernel-udp", "graphnet-udp"):
        ns = results[case]
        line = {"case": case, "unit": "transaction", "pps": n * 1e9 / ns, "ns_per_packet": ns / n}
        if case == "graphnet-udp":
            # engine_cpu: the engine loop's share of a core over the runs
            # (it busy-polls between requests: see docs/architecture.md)
            line.update(ratio=results["kernel-udp"] / ns, against="kernel-udp", engine_cpu=round(engine_cpu, 3))
        yield line


IDLE_BUDGET = 0.01               # the target: an idle attached app and engine < 1% of a core


def _cpu_s(pid: int) -> float:
    """CPU time of process pid (all its threads), in seconds: its process
    CPU clock (clock_getcpuclockid's id, nanoseconds), else utime + stime
    from /proc/<pid>/stat (clock ticks)."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2) / 1e9      # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_cpu(pids, seconds: float) -> list:
    """Each pid's CPU time per wall second over `seconds`."""
    c0 = [_cpu_s(p) for p in pids]
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = [_cpu_s(p) for p in pids]
    wall = time.monotonic() - t0
    return [(b - a) / wall for a, b in zip(c0, c1)]


@register("app-idle", seconds=10.0)
def bench_app_idle(opts) -> Iterator[dict]:
    """CPU of the engine and an attached app idle with a listener and a session vs the engine alone (< 1% of a core)."""
    eng = _Engine()
    procs = _Procs(eng.env)
    try:
        time.sleep(0.5)                                  # the engine's start settles
        (alone,) = _idle_cpu([os.getpid()], opts.seconds)
        app = procs.start(IDLE)
        _line(app, "idle app")
        time.sleep(0.5)                                  # its attach and connect settle
        engine, app_cpu = _idle_cpu([os.getpid(), app.pid], opts.seconds)
    finally:
        procs.close()
        eng.close()
    yield {"case": "engine-alone", "unit": "core", "seconds": opts.seconds, "cpu_percent": 100 * alone}
    total = engine + app_cpu
    yield {"case": "attached-idle", "unit": "core", "seconds": opts.seconds, "cpu_percent": 100 * total,
           "engine_cpu_percent": 100 * engine, "app_cpu_percent": 100 * app_cpu,
           "vs_engine_alone": 100 * (engine + app_cpu - alone),
           "ratio": IDLE_BUDGET / total if total else None, "against": "1%-of-a-core",
           "targets": {"<1% of a core": total < IDLE_BUDGET}}
