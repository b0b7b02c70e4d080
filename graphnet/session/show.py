"""The session layer's views for the CLI: data first (the ``--json``
forms), then text from the same data. ``show session``, ``show app``,
``show app workers``, ``show app segments``, ``show app attach``,
``show app mq``, ``show session-input``."""
from __future__ import annotations

from graphnet.session.application import session_manager


def has_sessions(engine) -> bool:
    """The graph has the session layer's nodes."""
    return engine is not None and "session-input" in engine.registrations


def _owners(mgr) -> dict:
    return {w.index: (app.name, w.number) for app in mgr.apps.values() for w in app.workers.values()}


def session_rows(engine, thread=None) -> list:
    """[{handle, thread, index, proto, state, flags, lcl, rmt, rx_bytes,
    tx_bytes, rx_drops, segment, rx_fifo, tx_fifo, listener, app, worker, fifo_clamped,
    fifo_tampered}] (fifo_clamped: junk head/tail the engine clamped in its fifos; fifo_tampered:
    ["rx"|"tx"] whose shared header the app rewrote),
    and for a TCP connection's session ``tcp``: its connection's fields
    (graphnet.transport.tcp4.TcpTransport.connection)"""
    if not has_sessions(engine):
        return []
    mgr = session_manager(engine)
    owners = _owners(mgr)
    rows = []
    for h in mgr.layer.handles(thread):
        s = mgr.layer.session(h)
        owner = owners.get(s["wrk"], (None, None))
        rows.append({"handle": h, "thread": s["thread"], "index": s["index"],
                     "proto": "ct" if "ct" in s["flags"] else s["proto"], "state": s["state"],
                     "flags": s["flags"], "lcl": "%s:%d" % s["lcl"] if "lcl" in s else None,
                     "rmt": "%s:%d" % s["rmt"] if "rmt" in s and "listener" not in s["flags"] else None,
                     "rx_bytes": s.get("rx_bytes", 0), "tx_bytes": s.get("tx_bytes", 0),
                     "rx_drops": s["rx_drops"], "segment": s["segment"], "rx_fifo": s["rx_fifo"],
                     "tx_fifo": s["tx_fifo"], "listener": s["listener"], "app": owner[0], "worker": owner[1],
                     "fifo_clamped": s.get("fifo_clamped", 0), "fifo_tampered": s.get("fifo_tampered", [])})
        if s["proto"] == "tcp" and "listener" not in s["flags"] and s["connection"] is not None:
            rows[-1]["tcp"] = _tcp_fields(engine, s["connection"])
    return rows


def _tcp_fields(engine, index):
    """A TCP session's connection fields (state, windows, cwnd, RTT, SACK)."""
    from graphnet.transport import tcp4
    return tcp4.transport(engine).connection(index)


def show_session(engine, verbose: bool = False, thread=None) -> str:
    rows = session_rows(engine, thread)
    if not rows:
        return "no sessions"
    lines = [f"{'handle':<12}{'proto':<6}{'state':<19}{'local':<22}{'remote':<22}{'rx/tx bytes':<14}app"]
    for r in rows:
        app = f"{r['app']} (worker {r['worker']})" if r["app"] is not None else "-"
        lines.append(f"{r['handle']:<#12x}{r['proto']:<6}{r['state']:<19}{r['lcl'] or '-':<22}{r['rmt'] or '-':<22}"
                     f"{str(r['rx_bytes']) + '/' + str(r['tx_bytes']):<14}{app}")
        if r["fifo_clamped"] or r["fifo_tampered"]:
            lines.append(f"    fifo faults: {r['fifo_clamped']} junk head/tail clamped, header rewritten "
                         f"[{', '.join(r['fifo_tampered'])}] (the engine keeps its own geometry)")
        if verbose:
            lines.append(f"    flags [{', '.join(r['flags'])}] segment {r['segment']} rx fifo {r['rx_fifo']} "
                         f"tx fifo {r['tx_fifo']} rx drops {r['rx_drops']}"
                         + (f" listener {r['listener']:#x}" if r["listener"] is not None else ""))
            if r.get("tcp"):
                from graphnet.transport.tcp4 import connection_line
                lines.append(connection_line(r["tcp"]))
    st = session_manager(engine).layer.stats()
    lines.append(f"{len(rows)} sessions; accept failures {st['accept_fail']}, fifo allocation failures "
                 f"{st['fifo_alloc_fail']}; freed fifos: {st['fifo_clamped']} junk head/tail clamped, "
                 f"{st['fifo_tampered']} headers rewritten")
    return "\n".join(lines)


def app_rows(engine, name=None) -> list:
    """[{index, name, workers, pids, scope, segments, segment_size, segment_free, fifo_faults[, builtin]}];
    pids: the processes of its workers (apps attached over the attach socket), free: of all its segments,
    fifo_faults: its live sessions' fifos with junk clamped or a rewritten header, builtin: the builtin
    app's counters"""
    if not has_sessions(engine):
        return []
    mgr = session_manager(engine)
    apps = [mgr.app(name)] if name else list(mgr.apps.values())
    faults = {}
    for r in session_rows(engine):
        if r["app"] is not None and (r["fifo_clamped"] or r["fifo_tampered"]):
            faults[r["app"]] = faults.get(r["app"], 0) + 1
    out = []
    for a in apps:
        segs = a.segments.stats()
        out.append({"index": a.index, "name": a.name, "workers": len(a.workers),
                    "pids": sorted({w.pid for w in a.workers.values() if w.pid is not None}),
                    "scope": a.options.scope, "segments": len(segs), "segment_size": a.options.segment_size,
                    "segment_free": sum(g["bytes_free"] for g in segs), "fifo_faults": faults.get(a.name, 0),
                    **({"builtin": a.builtin.stats()} if hasattr(a, "builtin") else {})})
    return out


def show_app(engine, name=None) -> str:
    rows = app_rows(engine, name)
    if not rows:
        return "no apps attached"
    lines = [f"{'index':<7}{'name':<32}{'workers':<9}{'scope':<8}{'segments':<10}{'free bytes':<12}processes"]
    for r in rows:
        lines.append(f"{r['index']:<7}{r['name']:<32}{r['workers']:<9}{r['scope']:<8}{r['segments']:<10}"
                     f"{r['segment_free']:<12}{' '.join(map(str, r['pids'])) or '(in the engine)'}")
        if r["fifo_faults"]:
            lines.append(f"       {r['fifo_faults']} sessions whose fifos the app scribbled on (see show session)")
        if "builtin" in r:
            lines.append("       " + " ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in r["builtin"].items()))
    return "\n".join(lines)


def segment_rows(engine) -> list:
    """[{app, index, name, size, bytes_free, fifos, queues, alloc_failures, first}] per app segment"""
    if not has_sessions(engine):
        return []
    mgr = session_manager(engine)
    return [{"app": a.name, **g} for a in mgr.apps.values() for g in a.segments.stats()]


def show_app_segments(engine) -> str:
    rows = segment_rows(engine)
    if not rows:
        return "no apps attached"
    lines = [f"{'app':<32}{'segment':<9}{'size':<12}{'free':<12}{'fifos':<7}{'queues':<8}alloc failures"]
    lines += [f"{r['app']:<32}{r['index']:<9}{r['size']:<12}{r['bytes_free']:<12}{r['fifos']:<7}{r['queues']:<8}"
              f"{r['alloc_failures']}" for r in rows]
    return "\n".join(lines)


def attach_info(engine) -> dict:
    """{path, group, max_clients, clients: [{pid, uid, app, workers}], attached, vanished, late_msgs,
    refused: {reason: n}}; {} when the engine serves no attach socket"""
    if not has_sessions(engine):
        return {}
    srv = getattr(session_manager(engine), "attach_server", None)
    if srv is None:
        return {}
    st = srv.stats()
    return {**{k: st[k] for k in ("path", "group", "max_clients", "attached", "vanished", "late_msgs", "refused")},
            "clients": srv.client_rows()}


def show_app_attach(engine) -> str:
    info = attach_info(engine)
    if not info:
        return "no attach socket (graphnet run serves one; [app_socket] in the startup file)"
    lines = [f"attach socket {info['path']}" + (f" (group {info['group']})" if info["group"] else "") +
             f": {len(info['clients'])} clients of at most {info['max_clients']}; {info['attached']} attached "
             f"so far, {info['vanished']} vanished (closed without detach); {info['late_msgs']} messages "
             f"left in the queues of removed workers, acted on"]
    lines.append("refused: " + ", ".join(f"{k} {v}" for k, v in info["refused"].items()))
    if info["clients"]:
        lines.append(f"{'pid':<9}{'uid':<7}{'app':<32}workers")
        lines += [f"{c['pid']:<9}{c['uid']:<7}{c['app'] or '-':<32}{' '.join(map(str, c['workers'])) or '-'}"
                  for c in info["clients"]]
    return "\n".join(lines)


def worker_rows(engine) -> list:
    """[{app, worker, index, pid, sessions, pending, queued, coalesced, delivered, full, stale, builtin}];
    pid: the worker's process (null: in the engine)"""
    if not has_sessions(engine):
        return []
    mgr = session_manager(engine)
    out = []
    for a in mgr.apps.values():
        for w in a.workers.values():
            st = w.stats()
            out.append({"app": a.name, "worker": w.number, "index": w.index, "pid": w.pid,
                        "sessions": len(w.sessions()),
                        **{k: st[k] for k in ("pending", "queued", "coalesced", "delivered", "full", "stale",
                                              "builtin")}})
    return out


def show_app_workers(engine) -> str:
    rows = worker_rows(engine)
    if not rows:
        return "no apps attached"
    lines = [f"{'app':<32}{'worker':<8}{'index':<7}{'pid':<9}{'sessions':<10}{'pending':<9}{'queued':<9}"
             f"{'coalesced':<11}{'delivered':<11}{'full':<6}stale"]
    lines += [f"{r['app']:<32}{r['worker']:<8}{r['index']:<7}{r['pid'] or '-':<9}{r['sessions']:<10}{r['pending']:<9}"
              f"{r['queued']:<9}{r['coalesced']:<11}{r['delivered']:<11}{r['full']:<6}{r['stale']}" for r in rows]
    return "\n".join(lines)


def mq_rows(engine) -> list:
    """[{app, worker, slots, queued, enqueued, full, busy, locks, signals}]; app None: the engine's queue"""
    if not has_sessions(engine):
        return []
    mgr = session_manager(engine)
    out = []
    for a in mgr.apps.values():
        for w in a.workers.values():
            if w.mq is not None and not w.stats()["builtin"]:
                out.append({"app": a.name, "worker": w.number, **w.mq.stats()})
    q = getattr(mgr, "engine_mq", None)
    if q is not None:
        out.append({"app": None, "worker": None, **q.stats()})
    return out


def show_app_mq(engine) -> str:
    lines = [f"{'app':<32}{'worker':<8}{'slots':<7}{'queued':<8}{'enqueued':<10}{'full':<6}{'busy':<6}"
             f"{'locks':<8}signals"]
    for r in mq_rows(engine):
        lines.append(f"{r['app'] or '(engine)':<32}{'-' if r['worker'] is None else r['worker']:<8}{r['slots']:<7}"
                     f"{r['queued']:<8}{r['enqueued']:<10}{r['full']:<6}{r['busy']:<6}{r['locks']:<8}{r['signals']}")
    return "\n".join(lines)


INPUT_ROWS = (("interrupts", "interrupts raised"), ("flushes", "flushes"), ("delivered", "events delivered"),
              ("coalesced", "rx events coalesced"), ("full_backoffs", "queue-full back-offs"),
              ("stale", "stale events dropped"), ("pending_workers", "workers pending"),
              ("lost_nomem", "events lost (no memory)"), ("buffer_waits", "waits for buffers"))


def input_stats(engine) -> dict:
    """{interrupts, flushes, delivered, coalesced, full_backoffs, stale, pending_workers, lost_nomem, buffer_waits}"""
    if not has_sessions(engine):
        return {}
    st = session_manager(engine).layer.stats()
    return {k: st[k] for k, _ in INPUT_ROWS}


def show_session_input(engine) -> str:
    st = input_stats(engine)
    return "\n".join(f"{text:<26}{st[k]:>14}" for k, text in INPUT_ROWS)


TRACE_RECORD = "<QIiIIB7x"          # graphnet/session/trace.pxd gn_session_trace_t
TRACE_PUSH, TRACE_PACKET = 200, 201


def format_session_trace(record: bytes, engine=None) -> str:
    """A session-input / session-queue trace record as text: the event, app
    message or tx push, its session, worker (and app) and fifo levels; a
    packet session-queue sent as interface and IPv4 header."""
    import struct
    from graphnet.session.session import EVENT_NAMES
    size = struct.calcsize(TRACE_RECORD)
    handle, wrk, arg, rx, tx, kind = struct.unpack_from(TRACE_RECORD, record.ljust(size, b"\0"))
    if kind == TRACE_PACKET:
        from graphnet.vlib.kit import format_trace_bytes
        from graphnet.wire.ip4 import format_ip4_header
        return format_trace_bytes(bytes(record), engine, format_ip4_header, "tx", size)
    who = f"worker {wrk}"
    if engine is not None and has_sessions(engine):
        owner = _owners(session_manager(engine)).get(wrk)
        if owner is not None:
            who = f"app {owner[0]!r} worker {owner[1]} (index {wrk})"
    session = "no session" if handle == (1 << 64) - 1 else f"session {handle:#x}"
    fifos = f"rx fifo {rx} B, tx fifo {tx} B"
    if kind == TRACE_PUSH:
        return f"  tx push {session}: {arg} sent, {fifos} left"
    if kind in APP_MSG_NAMES:
        return f"  app msg {APP_MSG_NAMES[kind]} {session} from {who}{', refused' if arg else ''}; {fifos}"
    name = EVENT_NAMES.get(kind, f"type {kind}")
    return f"  event {name} {session} to {who}{f', retval {arg}' if arg else ''}; {fifos}"


APP_MSG_NAMES = {64: "tx", 65: "close", 66: "reset", 67: "accepted-reply", 68: "rx-done",   # types.pxd GN_APP_MSG_*
                 69: "shutdown"}
