"""``--json`` forms of the show commands, for scripts.

Each view returns plain data (dicts, lists, numbers, strings) with the same
figures its text command prints; ``graphnet ctl show X --json`` prints it as
one line of JSON and ``graphnet ctl help show X`` shows the schema given
here. The keys are a stable interface: later versions add keys, never rename
or remove them. Views run on the loop's thread, as the text commands do.
"""
from __future__ import annotations

import platform
import threading
import time

import graphnet.cli.commands  # noqa: F401  (the commands these views attach to)
import graphnet.cli.ip4  # noqa: F401
import graphnet.cli.packet_generator  # noqa: F401
import graphnet.cli.system  # noqa: F401
from graphnet.cli.registry import UsageError, json_view


def _no_args(args, path):
    if args:
        raise UsageError(f"{path} --json takes no other arguments")


def _interface_names(engine, args, path):
    if len(args) > 1:
        raise UsageError(f"{path} takes at most one interface name")
    from graphnet.cli.commands import _interface
    if args:
        _interface(engine, args[0])
    return args or list(engine.interfaces)


@json_view("show runtime", "{thread, name, time_s, loops, sleeps, nodes: [{name, type, state, calls, "
           "vectors, suspends, clocks, clocks_per_vector, vectors_per_call, interrupts, drops}]}; nodes that "
           "never ran are left out unless 'all' is given")
def runtime_json(engine, args):
    from graphnet.vlib.show import node_state_text, node_drops
    show_all = "all" in args or "verbose" in args
    drops = node_drops(engine)
    loop = engine.main.loop_stats()
    nodes = []
    for i, c in enumerate(engine.main.node_counters()):
        if not show_all and c["calls"] == 0 and c["vectors"] == 0:
            continue
        n = engine.nodes[i]
        nodes.append({"name": n.name, "type": n.type, "state": node_state_text(engine, i, c),
                      "calls": c["calls"], "vectors": c["vectors"], "suspends": c["suspends"],
                      "clocks": c["clocks"], "interrupts": c["interrupts"],
                      "clocks_per_vector": c["clocks"] / c["vectors"] if c["vectors"] else 0.0,
                      "vectors_per_call": c["vectors"] / c["calls"] if c["calls"] else 0.0,
                      "drops": drops.get(n.name, 0)})
    return {"thread": 0, "name": engine.name, "time_s": time.monotonic() - engine.start_time,
            "loops": loop["loops"], "sleeps": loop["sleeps"], "nodes": nodes}


@json_view("show errors", "[{node, symbol, severity, reason, count}]: the rows with a count ('all': "
           "every row but 'none')")
def errors_json(engine, args):
    from graphnet.vlib.show import error_rows
    return error_rows(engine, "all" in args or "verbose" in args)


@json_view("show buffers", "{total, free_shared, cached, device_cached, in_use_packets, queued, devices: "
           "{interface: cached}, free (shared + cached), in_use (total - free), double_frees, waiters, "
           "frames_allocated, frames_free, pending_frames}")
def buffers_json(engine, args):
    _no_args(args, "show buffers")
    loop = engine.main.loop_stats()
    return dict(engine.buffer_stats(), frames_allocated=loop["frames_allocated"],
                frames_free=loop["frames_free"], pending_frames=loop["pending_frames"])


@json_view("show interface", "[{name, sw_if_index, kind, mac, mtu, admin_up, link_up, promiscuous, "
           "rx_packets, rx_bytes, tx_packets, tx_bytes, rx_drops, tx_drops, rx_errors, tx_errors, tx_retries, "
           "host_name (TAP: the kernel side's name)}]")
def interface_json(engine, args):
    return [_with_host_name(engine, engine.interfaces.info(n))
            for n in _interface_names(engine, args, "show interface")]


def _with_host_name(engine, info: dict) -> dict:
    host = getattr(engine.interfaces.devices[info["sw_if_index"]], "host_name", None)
    return info if host is None else info | {"host_name": host}


@json_view("show hardware", "[{name, sw_if_index, kind, mac, mtu, admin_up, link_up, promiscuous, rx_mode, "
           "device: {device-specific details}, host_name (TAP)}]")
def hardware_json(engine, args):
    out = []
    for name in _interface_names(engine, args, "show hardware"):
        info = engine.interfaces.info(name)
        dev = engine.interfaces.devices[info["sw_if_index"]]
        details = dev.hardware_info() if hasattr(dev, "hardware_info") else {}
        out.append({k: info[k] for k in ("name", "sw_if_index", "kind", "mac", "mtu", "admin_up", "link_up",
                                         "promiscuous")}
                   | {"rx_mode": getattr(dev, "rx_mode", None), "device": details}
                   | ({"host_name": dev.host_name} if getattr(dev, "host_name", None) is not None else {}))
    return out


@json_view("show graph", "[{name, type, next_nodes: [names, by arc index]}]")
def graph_json(engine, args):
    _no_args(args, "show graph")
    return [{"name": n.name, "type": n.type, "next_nodes": list(engine.next_names[n.name])}
            for n in engine.nodes]


@json_view("show node", "{name, type, index, state, calls, vectors, suspends, clocks, interrupts, "
           "mode_switches, next_nodes: [names], errors: [{symbol, severity, reason, count}], doc}")
def node_json(engine, args):
    from graphnet.vlib.show import node_state_text
    if len(args) != 1:
        raise UsageError("show node takes one node name (see 'show graph')")
    i = engine.node_index(args[0])
    n = engine.nodes[i]
    c = engine.main.node_counters()[i]
    counts = engine.main.error_counters()
    base = engine.error_base[n.name]
    return {"name": n.name, "type": n.type, "index": i, "state": node_state_text(engine, i, c),
            **{k: c[k] for k in ("calls", "vectors", "suspends", "clocks", "interrupts", "mode_switches")},
            "next_nodes": list(engine.next_names[n.name]) + ["error-drop"],
            "errors": [{"symbol": s, "severity": v, "reason": d, "count": counts[base + k]}
                       for k, (s, v, d) in enumerate(n.error_table())],
            "doc": n.doc or ""}


@json_view("show trace", "[[{time_ns, node, text}]]: per traced packet, a record per node it visited")
def trace_json(engine, args):
    from graphnet.vlib.show import trace_packets
    pkts = trace_packets(engine)
    if len(args) == 2 and args[0] == "max" and args[1].isdigit():
        pkts = pkts[:int(args[1])]
    elif args:
        raise UsageError("show trace --json takes at most 'max <n>'")
    return [[{"time_ns": t, "node": name, "text": text} for t, name, text in recs] for recs in pkts]


@json_view("show version", "{graphnet, python, cython, system, machine, engine, nodes, uptime_s}")
def version_json(engine, args):
    import graphnet
    try:
        import Cython
        cy = Cython.__version__
    except ImportError:
        cy = None
    return {"graphnet": graphnet.__version__, "python": platform.python_version(), "cython": cy,
            "system": platform.system(), "machine": platform.machine(), "engine": engine.name,
            "nodes": len(engine.nodes), "uptime_s": time.monotonic() - engine.start_time}


@json_view("show ip fib", "[{prefix, adjacency: {index, kind, ...}}]")
def ip_fib_json(engine, args):
    from graphnet.fib.ip4_fib import ip4_fib
    fib = ip4_fib(engine)
    routes = fib.routes()
    if args:
        if len(args) > 1:
            raise UsageError("show ip fib takes at most one prefix")
        routes = [(p, a) for p, a in routes if p == args[0] or p.split("/")[0] == args[0]]
    return [{"prefix": p, "adjacency": dict(fib.adjacency(a), index=a)} for p, a in routes]


@json_view("show ip neighbors", "[{interface, sw_if_index, ip, mac, state, complete, static, age, queued, probes}]")
def ip_neighbors_json(engine, args):
    _no_args(args, "show ip neighbors")
    from graphnet.nodes.ip4_host import ip4_neighbors
    return ip4_neighbors(engine).entries()


@json_view("show interface address", "{interface: [a.b.c.d/len]}")
def interface_address_json(engine, args):
    _no_args(args, "show interface address")
    from graphnet.nodes.ip4_host import ip4_addresses
    return {name: list(addrs) for name, addrs in ip4_addresses(engine).all().items()}


@json_view("show packet-generator", "[{stream, node, sent}]")
def pg_json(engine, args):
    _no_args(args, "show packet-generator")
    from graphnet.cli.packet_generator import generators
    return [{"stream": s, "node": node, "sent": sent} for node, pg in generators(engine)
            for s, sent in pg.stats().items()]


@json_view("show threads", "[{name, type, tid}]")
def threads_json(engine, args):
    _no_args(args, "show threads")
    loop = getattr(engine, "_thread", None)
    return [{"name": t.name, "tid": t.native_id,
             "type": "main loop" if t is loop else ("main" if t is threading.main_thread() else "control")}
            for t in threading.enumerate()]


@json_view("show clock", "{time, uptime_s, loops, sleeps, busy_polls, busy_poll_us, tick_ns}")
def clock_json(engine, args):
    _no_args(args, "show clock")
    loop = engine.main.loop_stats()
    return {"time": time.time(), "uptime_s": time.monotonic() - engine.start_time, "loops": loop["loops"],
            "sleeps": loop["sleeps"], "busy_polls": loop["busy_polls"], "busy_poll_us": loop["busy_poll_us"],
            "tick_ns": engine.main.tick_ns}


@json_view("show logging", "[lines, oldest first]")
def logging_json(engine, args):
    from graphnet.vlib import logring
    n = int(args[0]) if args and args[0].isdigit() else 50
    return logring.recent(n)


@json_view("show memory", "{buffers: {total, free, cached, in_use}, frames_allocated, frames_free, "
           "trace_bytes, timers_active, rss_bytes, ip4_fib: {routes, adjacencies, plies, mtrie_bytes} or null}")
def memory_json(engine, args):
    from graphnet.cli.system import _rss_bytes
    _no_args(args, "show memory")
    s = engine.pool.stats()
    loop = engine.main.loop_stats()
    fib = None
    if "ip4-lookup" in engine.registrations:
        from graphnet.fib.ip4_fib import ip4_fib
        f = ip4_fib(engine)
        fib = dict(f.stats(), routes=len(f.routes()))
    return {"buffers": {k: s[k] for k in ("total", "free", "cached", "in_use")},
            "frames_allocated": loop["frames_allocated"], "frames_free": loop["frames_free"],
            "trace_bytes": loop["trace_bytes"], "timers_active": loop["timers_active"],
            "rss_bytes": _rss_bytes(), "ip4_fib": fib}


@json_view("show ip fib summary", "{prefix_length: count}")
def ip_fib_summary_json(engine, args):
    _no_args(args, "show ip fib summary")
    from graphnet.fib.ip4_fib import ip4_fib
    by_len: dict = {}
    for prefix, _adj in ip4_fib(engine).routes():
        plen = prefix.rsplit("/", 1)[1]
        by_len[plen] = by_len.get(plen, 0) + 1
    return by_len


@json_view("show interface rx-placement", "[{interface, thread, queue, rx_mode}]")
def rx_placement_json(engine, args):
    _no_args(args, "show interface rx-placement")
    out = []
    for name in engine.interfaces:
        dev = engine.interfaces.devices[engine.interfaces.info(name)["sw_if_index"]]
        out.append({"interface": name, "thread": 0, "queue": 0, "rx_mode": getattr(dev, "rx_mode", None)})
    return out


@json_view("show ip arp", "as show ip neighbors --json")
def ip_arp_json(engine, args):
    return ip_neighbors_json(engine, args)


@json_view("show hardware-interfaces", "as show hardware --json")
def hardware_interfaces_json(engine, args):
    return hardware_json(engine, args)


# --- the session layer: empty when the graph has none ------------------------------------

@json_view("show session", "[{handle, thread, index, proto, state, flags, lcl, rmt, rx_bytes, tx_bytes, rx_drops, "
           "tcp (TCP sessions: show tcp connections' fields), "
           "segment, rx_fifo, tx_fifo, listener, app, worker}]; [] without the session layer")
def session_json(engine, args):
    from graphnet.session.show import session_rows
    rest = [a for a in args if a != "verbose"]
    return session_rows(engine, int(rest[1]) if len(rest) == 2 and rest[0] == "thread" else None)


@json_view("show app", "[{index, name, workers, pids, scope, segments, segment_size, segment_free[, builtin: {counters}]}]")
def app_json(engine, args):
    from graphnet.session.show import app_rows
    return app_rows(engine, " ".join(args) or None)


@json_view("show app workers", "[{app, worker, index, pid, sessions, pending, queued, coalesced, delivered, full, "
           "stale, builtin}]")
def app_workers_json(engine, args):
    _no_args(args, "show app workers")
    from graphnet.session.show import worker_rows
    return worker_rows(engine)


@json_view("show app segments", "[{app, index, name, size, bytes_free, fifos, queues, alloc_failures, first}]")
def app_segments_json(engine, args):
    _no_args(args, "show app segments")
    from graphnet.session.show import segment_rows
    return segment_rows(engine)


@json_view("show app attach", "{path, group, max_clients, clients: [{pid, uid, app, workers}], attached, vanished, "
           "refused: {peer, busy, oversized, bad-message, secret}}; {} without an attach socket")
def app_attach_json(engine, args):
    _no_args(args, "show app attach")
    from graphnet.session.show import attach_info
    return attach_info(engine)


@json_view("show app mq", "[{app, worker, slots, slot_size, queued, enqueued, full, busy, locks, signals}]; "
           "app null: the engine's queue")
def app_mq_json(engine, args):
    _no_args(args, "show app mq")
    from graphnet.session.show import mq_rows
    return mq_rows(engine)


@json_view("show session-input", "{interrupts, flushes, delivered, coalesced, full_backoffs, stale, "
           "pending_workers, lost_nomem, buffer_waits}; {} without the session layer")
def session_input_json(engine, args):
    _no_args(args, "show session-input")
    from graphnet.session.show import input_stats
    return input_stats(engine)


@json_view("show ip limits", "{reassembly: {timeout, max_fragments, max_datagrams, pool_share, max_buffers_held}, "
           "icmp_error: {rate, burst}, udp_echo_port (null: none), neighbor: {queue_limit, queue_pool_share, "
           "max_queued_total, max_incomplete}}")
def ip_limits_json(engine, args):
    _no_args(args, "show ip limits")
    from graphnet.cli.ip4 import ip_limits
    return ip_limits(engine)
