"""``graphnet bench session-idle``: the CPU an engine with 1000 idle UDP
sessions uses in interrupt mode, against the same engine with none, in
the same run (issue 12's idle target: < 1% of a core).

The engine: a null interface with 10.0.0.1/24 (a static neighbour
10.0.0.2), the IPv4 host and the session layer, every input node in
interrupt mode; ``sessions-1000``: one app with a UDP listener and 1000
connected UDP sessions to 10.0.0.2 (each with its two fifos), nothing
sent; ``no-sessions``: the same engine, no app. The engine's loop thread
runs (``engine.start()``); its CPU time (getrusage RUSAGE_THREAD, read in
the loop's own thread) over ``--seconds`` (10) of wall time is the
figure: ``cpu_percent`` of one core. ``vs_no_sessions``: the difference
in percentage points; ``ratio``: the CPU with sessions over without.
"""
from __future__ import annotations

from typing import Iterator

from graphnet.bench.core import register

SESSIONS = 1000


def _engine(sessions: int):
    from graphnet.bench.ip4 import NullInterface
    from graphnet.nodes import ip4_host, session_host
    from graphnet.session.application import session_manager
    from graphnet.session.session import ip_int
    from graphnet.vlib.engine import Engine
    eng = Engine([ip4_host.NODES, session_host.NODES], buffers=4096)
    eng.add(NullInterface(eng, "idle0", bytes.fromhex("020000000001")))
    eng.build()
    ip4_host.set_interface_address(eng, "idle0", "10.0.0.1/24")
    ip4_host.ip4_neighbors(eng).add("idle0", "10.0.0.2", "02:00:00:00:00:02", static=True)
    if sessions:
        mgr = session_manager(eng)

        def attach():
            app = mgr.attach("idle", rx_fifo_size=4096, tx_fifo_size=4096, segment_size=64 << 20)
            app.workers[0].listen("udp://0.0.0.0/9999")
            for i in range(sessions):
                app.workers[0].connect("udp://10.0.0.2/9999", i, ip_int("10.0.0.1"))
            return app
        eng.call(attach)
        eng.run_until_idle()
        n = mgr.layer.stats()["sessions"]
        if n != sessions + 1:
            raise RuntimeError(f"session-idle: {n} sessions, expected {sessions + 1}")
    return eng


@register("session-idle", seconds=10.0)
def bench_session_idle(opts) -> Iterator[dict]:
    """CPU of an engine idling in interrupt mode with 1000 UDP sessions vs none (getrusage over --seconds)."""
    from graphnet.testing.helpers import loop_cpu
    out = {}
    for name, n in (("no-sessions", 0), (f"sessions-{SESSIONS}", SESSIONS)):
        eng = _engine(n)
        try:
            eng.start()
            out[name] = loop_cpu(eng, opts.seconds)
            eng.stop()
        finally:
            eng.close()
    for name, n in (("no-sessions", 0), (f"sessions-{SESSIONS}", SESSIONS)):
        line = {"case": name, "unit": "core", "sessions": n, "seconds": opts.seconds,
                "cpu_percent": 100 * out[name]}
        if n:
            line.update(vs_no_sessions=100 * (out[name] - out["no-sessions"]), against="no-sessions",
                        ratio=out[name] / out["no-sessions"] if out["no-sessions"] else None,
                        targets={"<1% of a core": out[name] < 0.01})
        yield line
