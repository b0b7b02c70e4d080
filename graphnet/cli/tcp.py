"""TCP commands: ``show tcp stats``, ``show tcp connections``, ``set tcp
cc``, ``set tcp time-wait``, ``set tcp tso``, ``show tcp config`` (and
their ``--json`` forms). The data comes
from graphnet.transport.tcp4.TcpTransport; the per-connection fields also
appear under each TCP session in ``show session verbose``."""
from __future__ import annotations

from graphnet.cli.registry import CommandError, UsageError, command, json_view
from graphnet.transport.tcp4 import connection_line


def _tcp(engine, what):
    if not _has_tcp(engine):
        raise CommandError(f"{what}: TCP is not in this graph (add graphnet.nodes.session_host.NODES, or an "
                           f"[[app]] in the startup file)")
    from graphnet.transport import tcp4
    return tcp4.transport(engine)


def _has_tcp(engine) -> bool:
    return engine is not None and "tcp4-input" in engine.registrations


def _no_args(args, path):
    if args:
        raise UsageError(f"{path} takes no arguments")


@command("show tcp stats", help="TCP totals: segments (TSO super-segments apart), bytes, opens, resets, retransmits, timers",
         usage="show tcp stats")
def show_tcp_stats(engine, args):
    _no_args(args, "show tcp stats")
    st = _tcp(engine, "show tcp stats").stats()
    width = max(len(k) for k in st)
    return "\n".join(f"{k.replace('_', ' '):<{width + 2}}{v}" for k, v in st.items())


@json_view("show tcp stats", "{segs_in, segs_out, bytes_in, bytes_out, retransmits, timeouts, fast_retransmits, "
           "early_retransmits, tlp_probes, "
           "active_opens, passive_opens, established, resets_sent, resets_received, closed, time_wait_expired, "
           "delacks, window_updates, keepalive_probes, cookies_sent, no_buffers, conn_alloc_fail, unread_resets, "
           "tso_segs_out, tso_bytes_out, connections, "
           "timers_active}; {} without TCP in the graph")
def tcp_stats_json(engine, args):
    _no_args(args, "show tcp stats")
    return _tcp(engine, "show tcp stats").stats() if _has_tcp(engine) else {}


@command("show tcp connections", help="TCP connections and listeners with their state and windows",
         usage="show tcp connections")
def show_tcp_connections(engine, args):
    _no_args(args, "show tcp connections")
    t = _tcp(engine, "show tcp connections")
    lines = [f"listener {l['local']}: half-open {l['half_open']}/{l['backlog']} syns {l['syns']} "
             f"cookies {l['cookies_sent']} sent {l['cookies_ok']} ok, syns dropped {l['syn_dropped']}"
             for l in t.listeners()]
    conns = t.connections()
    for c in conns:
        lines.append(f"[{c['index']}] {c['local']} -> {c['remote']} session {c['session']}")
        lines.append(connection_line(c))
    lines.append(f"{len(conns)} connections")
    return "\n".join(lines)


@json_view("show tcp connections", "{listeners: [{index, local, half_open, backlog, syns, cookies_sent, cookies_ok, "
           "syn_dropped}], connections: [{index, state, local, remote, session, snd_una, snd_nxt, snd_max, snd_wnd, "
           "rcv_nxt, rcv_wnd, snd_mss, cc, cwnd, ssthresh, srtt_us, rttvar_us, rto_us, sack_blocks, retransmits, "
           "timeouts, fast_retransmits, early_retransmits, tlp_probes, bytes_in_flight, bytes_acked, bytes_received, options}]}; empty lists "
           "without TCP in the graph")
def tcp_connections_json(engine, args):
    _no_args(args, "show tcp connections")
    if not _has_tcp(engine):
        return {"listeners": [], "connections": []}
    t = _tcp(engine, "show tcp connections")
    return {"listeners": t.listeners(), "connections": t.connections()}


@command("set tcp cc", help="congestion control of connections opened from now on", usage="set tcp cc cubic|newreno")
def set_tcp_cc(engine, args):
    if len(args) != 1:
        raise UsageError("give one algorithm: cubic or newreno")
    try:
        _tcp(engine, "set tcp cc").configure(cc=args[0])
    except ValueError as e:
        raise UsageError(str(e)) from None
    return ""


@command("set tcp time-wait", help="how long closed connections stay in TIME_WAIT (2MSL) before they are freed",
         usage="set tcp time-wait <ms>")
def set_tcp_time_wait(engine, args):
    if len(args) != 1 or not args[0].isdigit():
        raise UsageError("give the 2MSL time in milliseconds, e.g. set tcp time-wait 60000")
    try:
        _tcp(engine, "set tcp time-wait").configure(time_wait_ms=int(args[0]))
    except ValueError as e:
        raise UsageError(str(e)) from None
    return ""


@command("set tcp tso", help="TSO super-segments out of interfaces that do TSO (on, the default), or one MSS per segment",
         usage="set tcp tso on|off")
def set_tcp_tso(engine, args):
    if len(args) != 1 or args[0] not in ("on", "off"):
        raise UsageError("give on or off, e.g. set tcp tso off (takes effect at each connection's next push)")
    _tcp(engine, "set tcp tso").configure(tso=args[0] == "on")
    return ""


@command("show tcp config", help="the TCP settings connections are made with (set tcp ...)", usage="show tcp config")
def show_tcp_config(engine, args):
    _no_args(args, "show tcp config")
    cfg = _tcp(engine, "show tcp config").config()
    width = max(len(k) for k in cfg)
    return "\n".join(f"{k.replace('_', ' '):<{width + 2}}{_on_off(v)}" for k, v in cfg.items())


def _on_off(v):
    return ("on" if v else "off") if isinstance(v, bool) else v


@json_view("show tcp config", "{cc, time_wait_ms, delack_ms, keepalive_ms, mss, nagle, tso}; {} without TCP in the graph")
def tcp_config_json(engine, args):
    _no_args(args, "show tcp config")
    return _tcp(engine, "show tcp config").config() if _has_tcp(engine) else {}
