"""``set fault-inject`` and ``show fault-inject``: loss, corruption,
duplication, reordering and delay on an interface's rx or tx path
(graphnet.nodes.fault_inject), for tests on a kernel without netem.

    set fault-inject gn0 rx drop 5% dup 1% reorder 2% delay 10ms corrupt 0.1% seed 7
    set fault-inject gn0 tx off
    show fault-inject [--json]

The first ``set`` on an interface and direction puts the node in the graph
(it stays; ``off`` sets every rate and the delay to 0). Only the faults
named change; a bad word is a one-line error naming it.
"""
from __future__ import annotations

from graphnet.cli.commands import _interface, _value
from graphnet.cli.registry import UsageError, command, json_view

USAGE = ("set fault-inject <if> rx|tx [drop <r>%] [dup <r>%] [reorder <r>%] [corrupt <r>%] [delay <t>] "
         "[seed <n>] | set fault-inject <if> rx|tx off")


def apply(engine, interface: str, direction: str, faults: dict):
    """Attach (first time) and set one interface's faults (a dict from
    parse_faults, or {} with off=True handled by the caller). Returns the
    controller. ValueError/KeyError for bad input."""
    from graphnet.nodes.fault_inject import attach
    ctl = attach(engine, interface, direction)
    faults = dict(faults)
    seed = faults.pop("seed", None)
    ctl.set(engine.interfaces.index(interface), seed=seed, **faults)
    return ctl


@command("set fault-inject", help="drop, duplicate (dup), reorder, corrupt at rates and delay packets on an "
         "interface's rx or tx path, seeded; rates in % (0-100), delay as 10ms, 500us or 0.2s (at most 10s); "
         "'off' stops it (held packets still leave on time)", usage=USAGE)
def set_fault_inject(engine, args):
    if len(args) < 3:
        raise UsageError("give an interface, rx or tx, and faults (drop 5% ...) or off")
    sw, dev = _interface(engine, args[0])
    if args[1] not in ("rx", "tx"):
        raise UsageError(f"{args[1]!r}: use rx or tx")
    if args[1] == "rx" and not getattr(dev, "input_node", None):
        raise UsageError(f"interface {args[0]!r} has no input node to put rx faults behind")
    if args[2:] == ["off"]:
        from graphnet.nodes.fault_inject import FAULTS
        faults = {k: 0.0 for k in FAULTS + ("delay",)}
    else:
        from graphnet.nodes.fault_inject import parse_faults
        faults = _value(parse_faults, args[2:])
    _value(apply, engine, args[0], args[1], faults)
    return ""


def _rows(engine) -> list:
    from graphnet.nodes.fault_inject import controllers
    return [c.stats() for _, c in sorted(controllers(engine).items())]


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


@command("show fault-inject", help="fault-inject nodes: rates, delay, seed, packets held and counters",
         usage="show fault-inject")
def show_fault_inject(engine, args):
    if args:
        raise UsageError("show fault-inject takes no arguments")
    rows = _rows(engine)
    if not rows:
        return "no fault injection (set fault-inject <if> rx|tx drop 5% ...)"
    out = []
    for r in rows:
        rates = r["rates"]
        on = [f"{k} {_pct(rates[k])}" for k in ("drop", "duplicate", "reorder", "corrupt") if rates[k]]
        if rates["delay"]:
            on.append(f"delay {rates['delay'] * 1e3:g}ms")
        where = f"{r['interface']} {r['direction']}" if r["interface"] else f"{r['direction']} (any interface)"
        seed = f", seed {r['seed']}" if r["seed"] is not None else ""
        out.append(f"{r['node']}: {where}: {', '.join(on) or 'off'}{seed}")
        h = r["held"]
        out.append(f"  held for delay: {h['packets']} packets, {h['buffers']} of {h['max_buffers']} buffers "
                   f"(pool share {r['pool_share']:g})")
        counts = ", ".join(f"{k} {v}" for k, v in r["counters"].items() if v)
        out.append(f"  counters: {counts or 'none'}")
    return "\n".join(out)


@json_view("show fault-inject", "[{node, direction, interface, rates: {drop, corrupt, duplicate, reorder "
           "(fractions), delay (seconds)}, seed, pool_share, held: {packets, buffers, max_buffers}, counters: "
           "{dropped, corrupted, duplicated, reordered, delayed, delay-full, no-buffer}}]")
def fault_inject_json(engine, args):
    if args:
        raise UsageError("show fault-inject --json takes no other arguments")
    return _rows(engine)
