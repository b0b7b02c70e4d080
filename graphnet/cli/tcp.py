"""TCP commands: ``show tcp stats``, ``show tcp connections``, ``set tcp
cc``, ``set tcp time-wait`` (and their ``--json`` forms). The data comes
from graphnet.transport.tcp4.TcpTransport; the per-connection fields also
appear under each TCP session in ``show session verbose``."""
from __future__ import annotations

from graphnet.cli.registry import CommandError, UsageError, command, json_view


def _tcp(engine, what):
    if engine is None or "tcp4-input" not in engine.registrations:
        raise CommandError(f"{what}: TCP is not in this graph (add graphnet.nodes.session_host.NODES, or an "
                           f"[[app]] in the startup file)")
    from graphnet.transport import tcp4
    return tcp4.transport(engine)


def _no_args(args, path):
    if args:
        raise UsageError(f"{path} takes no arguments")


def connection_line(c: dict) -> str:
    """One connection's state and windows as one indented line."""
    sacks = " ".join(f"{a}-{b}" for a, b in c["sack_blocks"]) or "none"
    return (f"    tcp {c['state']} snd_una {c['snd_una']} snd_nxt {c['snd_nxt']} rcv_nxt {c['rcv_nxt']} "
            f"snd_wnd {c['snd_wnd']} rcv_wnd {c['rcv_wnd']} cwnd {c['cwnd']} ssthresh {c['ssthresh']} "
            f"({c['cc']}) srtt {c['srtt_us'] / 1000:.1f} ms rttvar {c['rttvar_us'] / 1000:.1f} ms "
            f"rto {c['rto_us'] / 1000:.0f} ms in flight {c['bytes_in_flight']} retransmits {c['retransmits']} "
            f"timeouts {c['timeouts']} sack [{sacks}] options [{', '.join(c['options'])}]")


@command("show tcp stats", help="TCP totals: segments, bytes, opens, resets, retransmits, timers",
         usage="show tcp stats")
def show_tcp_stats(engine, args):
    _no_args(args, "show tcp stats")
    st = _tcp(engine, "show tcp stats").stats()
    width = max(len(k) for k in st)
    return "\n".join(f"{k.replace('_', ' '):<{width + 2}}{v}" for k, v in st.items())


@json_view("show tcp stats", "{segs_in, segs_out, bytes_in, bytes_out, retransmits, timeouts, fast_retransmits, "
           "active_opens, passive_opens, established, resets_sent, resets_received, closed, time_wait_expired, "
           "delacks, window_updates, keepalive_probes, cookies_sent, no_buffers, conn_alloc_fail, connections, "
           "timers_active}")
def tcp_stats_json(engine, args):
    _no_args(args, "show tcp stats")
    return _tcp(engine, "show tcp stats").stats()


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
           "timeouts, fast_retransmits, bytes_in_flight, bytes_acked, bytes_received, options}]}")
def tcp_connections_json(engine, args):
    _no_args(args, "show tcp connections")
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
