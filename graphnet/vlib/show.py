"""Text for the show commands, formatted as vppctl does.

Each function takes the engine (and arguments) and runs in the loop's
thread (Engine.show goes through Engine.call), so counters are consistent.
"""
from __future__ import annotations

import struct
import time

from graphnet.vlib.main import STATE_POLLING, STATE_INTERRUPT, STATE_DISABLED

_DEFAULT_TRACE = struct.Struct("<hHIIIIHH64s")
_STATE_TEXT = {STATE_POLLING: "polling", STATE_INTERRUPT: "interrupt wait", STATE_DISABLED: "disabled"}


def _tsc_hz() -> float:
    """Cycle-counter ticks per second, measured once against the clock."""
    global _TSC_HZ
    try:
        return _TSC_HZ
    except NameError:
        pass
    from graphnet.vlib.clock import cycles
    t0, c0 = time.perf_counter(), cycles()
    time.sleep(0.02)
    _TSC_HZ = (cycles() - c0) / (time.perf_counter() - t0)
    return _TSC_HZ


def node_state_text(engine, i: int, c: dict) -> str:
    n = engine.nodes[i]
    if n.type == "input":
        s = _STATE_TEXT[c["state"]]
        return s + (" (adaptive)" if c["adaptive"] else "")
    if n.type == "process":
        ps = engine.processes[i]
        if ps.done:
            return "done"
        return "time wait" if type(ps.waiting).__name__ == "Sleep" else "event wait"
    return "active"


def node_drops(engine) -> dict:
    """{node name: packets dropped}: the packets error-drop freed (or
    ip4-icmp-error consumed) under the node's ``error`` rows, counted as
    they were dropped (gn_count_drops), not from the error counters. So
    it equals the node's total of ``error`` rows in ``show errors`` exactly
    when every such row counts drops and nothing else; expected events
    (``info``) that end a packet are not drops."""
    out = {}
    for (node, _sym, sev, _desc), n in zip(engine.errors, engine.main.drop_counters()):
        if sev == "error" and n:
            out[node] = out.get(node, 0) + n
    return out


def runtime(engine, *args) -> str:
    """``show runtime [all]``: per node calls, vectors, suspends, clocks,
    and the packets it dropped (node_drops)."""
    show_all = "all" in args or "verbose" in args
    counters = engine.main.node_counters()
    drops = node_drops(engine)
    loop = engine.main.loop_stats()
    elapsed = time.monotonic() - engine.start_time
    total_v = sum(c["vectors"] for c, n in zip(counters, engine.nodes) if n.type == "internal")
    total_c = sum(c["calls"] for c, n in zip(counters, engine.nodes) if n.type == "internal")
    lines = [f"Thread 0 {engine.name}: time {elapsed:.1f}s, {loop['loops']} main loops, "
             f"{loop['sleeps']} sleeps, average vectors/node {total_v / total_c if total_c else 0:.2f}",
             f"{'Name':<32}{'State':<26}{'Calls':>14}{'Vectors':>14}{'Suspends':>11}{'Clocks':>12}{'Vectors/Call':>14}"
             f"{'Drops':>10}"]
    for i, c in enumerate(counters):
        if not show_all and c["calls"] == 0 and c["vectors"] == 0:
            continue
        per = c["clocks"] / c["vectors"] if c["vectors"] else (c["clocks"] / c["calls"] if c["calls"] else 0)
        vpc = c["vectors"] / c["calls"] if c["calls"] else 0
        lines.append(f"{engine.nodes[i].name:<32}{node_state_text(engine, i, c):<26}{c['calls']:>14}"
                     f"{c['vectors']:>14}{c['suspends']:>11}{per:>12.2e}{vpc:>14.2f}"
                     f"{drops.get(engine.nodes[i].name, 0):>10}")
    return "\n".join(lines)


def errors(engine, *args) -> str:
    """``show errors [all] [verbose]``: counters of error rows that are not
    zero; verbose adds each node's details under its rows (which ethertypes
    ethernet-input had no node for, ...)."""
    rows = error_rows(engine, "all" in args or "verbose" in args)
    wn = max([30] + [len(r["node"]) + 2 for r in rows])
    wr = max([48] + [len(r["reason"]) + 2 for r in rows])
    lines = [f"{'Count':>12}  {'Node':<{wn}}{'Reason':<{wr}}{'Severity'}"]
    details = _error_details(engine) if "verbose" in args else {}
    for r in rows:
        lines.append(f"{r['count']:>12}  {r['node']:<{wn}}{r['reason']:<{wr}}{r['severity']}")
        lines += [f"{'':>14}  {d}" for d in details.get((r["node"], r["symbol"]), ())]
    return "\n".join(lines)


def error_rows(engine, show_all: bool = False) -> list:
    """[{node, symbol, severity, reason, count}] of the rows with a count
    (show_all: every row but 'none'); what show errors prints, and its --json."""
    return [{"node": node, "symbol": sym, "severity": sev, "reason": desc, "count": n}
            for (node, sym, sev, desc), n in zip(engine.errors, engine.main.error_counters())
            if n or (show_all and sym != "none")]


def _error_details(engine) -> dict:
    """{(node, symbol): [lines]} from the nodes' error_details hooks."""
    out = {}
    for n in engine.nodes:
        if n.error_details is not None:
            for sym, lines in n.error_details(engine).items():
                out[(n.name, sym)] = list(lines)
    return out


def buffers(engine, *args) -> str:
    """``show buffers``: where the pool's buffers are (graphnet.vlib.buffer_usage):
    free on the shared list, in loop caches, in device caches (a TAP's rx
    spares), in use by packets (the leak check: back to its idle value
    when traffic stops), of which waiting in ARP queues and reassembly."""
    s = engine.buffer_stats()
    loop = engine.main.loop_stats()
    lines = [f"{'Pool':<10}{'Size':>6}{'Total':>9}{'Free':>9}{'Loop cache':>12}{'Dev cache':>11}"
             f"{'Packets':>9}{'Queued':>8}{'Dbl free':>10}{'Waiters':>9}",
             f"{'default':<10}{2048:>6}{s['total']:>9}{s['free_shared']:>9}{s['cached']:>12}{s['device_cached']:>11}"
             f"{s['in_use_packets']:>9}{s['queued']:>8}{s['double_frees']:>10}{s['waiters']:>9}"]
    if s["devices"]:
        lines.append("device caches: " + ", ".join(f"{n} {k}" for n, k in s["devices"].items()))
    lines.append(f"frames: {loop['frames_allocated']} allocated, {loop['frames_free']} free, "
                 f"{loop['pending_frames']} pending")
    return "\n".join(lines)


def format_default_record(record: bytes, engine=None) -> str:
    """The record the engine writes when a node has no trace function."""
    if len(record) < _DEFAULT_TRACE.size:
        return "  (short record) " + record.hex()
    cd, ln, flags, rx, tx, bi, err, nb, data = _DEFAULT_TRACE.unpack(record[:_DEFAULT_TRACE.size])
    def ifname(x):
        return "-" if x == 0xffffffff else str(x)
    out = [f"  buffer 0x{bi:x}: current data {cd}, length {ln}, rx {ifname(rx)}, tx {ifname(tx)}, flags 0x{flags:x}"]
    if err and engine is not None and err < len(engine.errors):
        from graphnet.vlib.kit import format_error
        out.append(f"  {format_error(engine, err)}")
    if nb:
        from graphnet.wire.ethernet import format_hex
        out.append(format_hex(data[:nb], 2))
    return "\n".join(out)


def _stamp(engine, t_ns: int) -> str:
    us = max(0, (t_ns - engine.start_time_ns) // 1000)
    s, us = divmod(us, 1_000_000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{us:06d}"


TRACE_EVENT = 0x80000000      # a buffer-less record's handle bit (main.pxd gn_trace_event)


def trace_packets(engine) -> list[list[tuple]]:
    """Records grouped per traced packet (or buffer-less event):
    [[(time_ns, node name, text)...]...]."""
    return [recs for _, recs in trace_groups(engine)]


def trace_groups(engine) -> list[tuple]:
    """[(handle, [(time_ns, node name, text)...])] per traced packet and per
    buffer-less event (handle & TRACE_EVENT), packets first in handle order."""
    packets: dict[int, list] = {}
    for handle, ni, t_ns, rec in engine.main.trace_records():
        node = engine.nodes[ni]
        fmt = node.format_trace
        try:
            text = fmt(rec, engine) if fmt is not None else format_default_record(rec, engine)
        except Exception as e:  # a formatter bug must not hide the trace
            text = f"  (trace formatter failed: {e}) {rec.hex()}"
        packets.setdefault(handle, []).append((t_ns, node.name, text))
    return [(h, packets[h]) for h in sorted(packets)]


def trace(engine, *args) -> str:
    """``show trace [max N]``: per packet, a timestamped entry per node."""
    limit = None
    if len(args) >= 2 and args[0] == "max":
        limit = int(args[1])
    pkts = trace_groups(engine)
    if not pkts:
        return "No packets in trace buffer"
    out = [f"------------------- Start of thread 0 {engine.name} -------------------"]
    n_pkt = n_evt = 0
    for handle, recs in pkts[:limit] if limit else pkts:
        if handle & TRACE_EVENT:
            n_evt += 1
            out.append(f"Event {n_evt}\n")
        else:
            n_pkt += 1
            out.append(f"Packet {n_pkt}\n")
        for t_ns, name, text in recs:
            out.append(f"{_stamp(engine, t_ns)}: {name}")
            out.append(text)
        out.append("")
    lost = engine.main.loop_stats()["trace_lost_records"]
    if lost:
        out.append(f"({lost} trace records lost: trace buffer full)")
    return "\n".join(out)


def graph(engine, *args) -> str:
    """``show graph``: every node with its type and next nodes."""
    lines = [f"{'Name':<32}{'Type':<10}{'Next nodes'}"]
    for n in engine.nodes:
        nexts = ", ".join(f"[{i}] {x}" for i, x in enumerate(engine.next_names[n.name]))
        lines.append(f"{n.name:<32}{n.type:<10}{nexts or '-'}")
    return "\n".join(lines)


def node(engine, *args) -> str:
    """``show node NAME``: type, state, next nodes, error table, counters, doc."""
    if not args:
        raise ValueError("show node needs a node name")
    i = engine.node_index(args[0])
    n = engine.nodes[i]
    c = engine.main.node_counters()[i]
    counts = engine.main.error_counters()
    base = engine.error_base[n.name]
    lines = [f"node {n.name}, type {n.type}, index {i}, state {node_state_text(engine, i, c)}",
             f"  calls {c['calls']}, vectors {c['vectors']}, suspends {c['suspends']}, clocks {c['clocks']}, "
             f"interrupts {c['interrupts']}, mode switches {c['mode_switches']}",
             "  next nodes:"]
    for k, x in enumerate(engine.next_names[n.name] + ["error-drop"]):
        lines.append(f"    [{k}] {x}")
    lines.append("  errors:")
    for k, (sym, sev, desc) in enumerate(n.error_table()):
        lines.append(f"    {sym:<28}{sev:<7}{counts[base + k]:>12}  {desc}")
    if n.doc:
        lines.append("  " + n.doc.replace("\n", "\n  "))
    return "\n".join(lines)


def dot(engine, *args) -> str:
    """The graph in Graphviz DOT."""
    shapes = {"input": "box", "internal": "ellipse", "process": "diamond"}
    lines = ["digraph graphnet {", "  rankdir=LR;"]
    for n in engine.nodes:
        lines.append(f'  "{n.name}" [shape={shapes[n.type]}];')
    for n in engine.nodes:
        for k, x in enumerate(engine.next_names[n.name]):
            lines.append(f'  "{n.name}" -> "{x}" [label="{k}"];')
    lines.append("}")
    return "\n".join(lines)


def interface_state(table, info: dict) -> str:
    """up, down, or deleted (an AF_PACKET interface whose kernel interface
    was deleted: detached until it comes back)."""
    if getattr(table.devices[info["sw_if_index"]], "link_state", None) == "deleted":
        return "deleted"
    return "up" if info["admin_up"] and info["link_up"] else "down"


def interface_label(table, name) -> str:
    """The name, and the kernel side's when it differs (a TAP's host_name):
    ``tap0 (host vpp0)``."""
    host = getattr(table.devices[table.index(name)], "host_name", None)
    return name if host is None or host == name else f"{name} (host {host})"


def interfaces(engine, *args) -> str:
    """``show interface [NAME]``: state and counters of each interface."""
    table = engine.interfaces
    names = [args[0]] if args else list(table)
    labels = {n: interface_label(table, n) for n in names}
    w = max([20] + [len(x) + 2 for x in labels.values()])
    lines = [f"{'Name':<{w}}{'Idx':>4}  {'State':<8}{'MTU':>6}  {'Counter':<12}{'Count':>14}"]
    for name in names:
        info = table.info(name)
        state = interface_state(table, info)
        head = f"{labels[name]:<{w}}{info['sw_if_index']:>4}  {state:<8}{info['mtu']:>6}  "
        for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_drops", "tx_drops",
                    "rx_errors", "tx_errors", "tx_retries"):
            if info[key] or key in ("rx_packets", "tx_packets"):
                lines.append(f"{head}{key.replace('_', ' '):<12}{info[key]:>14}")
                head = " " * len(head)      # counter rows after the first line up under it
    return "\n".join(lines)


def hardware(engine, *args) -> str:
    """``show hardware [NAME]``: kind, MAC, rx mode and device details."""
    table = engine.interfaces
    names = [args[0]] if args else list(table)
    lines = []
    for name in names:
        info = table.info(name)
        dev = table.devices[info["sw_if_index"]]
        lines.append(f"{interface_label(table, name)} ({info['sw_if_index']}): {info['kind']}, "
                     f"{'up' if info['admin_up'] else 'down'}"
                     f"{'' if info['link_up'] else ' (link lost)'}")
        lines.append(f"  Ethernet address {info['mac']}, MTU {info['mtu']}, rx-mode {getattr(dev, 'rx_mode', '-')}"
                     f"{', promiscuous' if info['promiscuous'] else ''}")
        lines.append(f"  tx offloads: {' '.join(info['tx_offloads']) or 'none'} (what graphnet hands the device: "
                     f"tso4 means TCP sends super-segments out of it)")
        for k, v in (dev.hardware_info() if hasattr(dev, "hardware_info") else {}).items():
            lines.append(f"  {k}: {v}")
    return "\n".join(lines) if lines else "no interfaces"


SHOW = {"interface": interfaces, "hardware": hardware, "runtime": runtime, "errors": errors, "buffers": buffers, "trace": trace,
        "graph": graph, "node": node, "dot": dot}
