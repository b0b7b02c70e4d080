"""``graphnet ctl monitor``: a live view of a running engine, like ``top``.

Every interval it asks the engine for ``show runtime --json``, ``show
interface --json`` and ``show errors --json`` over the control socket and
prints the rates since the previous sample: per node vectors/s, calls/s,
vectors/call and clocks/vector; per interface rx/tx packets/s and drops/s;
per drop reason drops/s. On a terminal the screen is redrawn in place; into a
pipe each sample is printed after the last, separated by a blank line.

    graphnet ctl monitor [--interval S] [--count N] [--top N]

It only reads: the engine is never changed by a monitor.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

MIN_INTERVAL = 0.1


def parse_args(words: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="graphnet ctl monitor",
                                description="A live view of vectors/s, clocks/vector and drops per node "
                                            "and per interface (like top). Ctrl-C stops it.")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between samples (default 1)")
    p.add_argument("--count", type=int, default=0, metavar="N", help="stop after N samples (default: run until Ctrl-C)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="show the N busiest nodes (default 20)")
    a = p.parse_args(words)
    if a.interval < MIN_INTERVAL:
        p.error(f"--interval must be at least {MIN_INTERVAL} s")
    if a.count < 0 or a.top < 1:
        p.error("--count must be >= 0 and --top >= 1")
    return a


def _sample(ask) -> dict:
    return {"t": time.monotonic(), "runtime": ask("show runtime all --json"),
            "interfaces": ask("show interface --json"), "errors": ask("show errors --json")}


def render(prev: dict, cur: dict, top: int = 20) -> str:
    """The text of one sample: rates between `prev` and `cur` (see _sample)."""
    dt = max(1e-9, cur["t"] - prev["t"])
    before = {n["name"]: n for n in prev["runtime"]["nodes"]}
    rows = []
    for n in cur["runtime"]["nodes"]:
        p = before.get(n["name"], {"calls": 0, "vectors": 0, "clocks": 0})
        dv, dc, dk = n["vectors"] - p["vectors"], n["calls"] - p["calls"], n["clocks"] - p["clocks"]
        if dv or dc:
            rows.append((dv / dt, dc / dt, dv / dc if dc else 0.0, dk / dv if dv else 0.0, n["name"]))
    rows.sort(reverse=True)
    out = [f"graphnet monitor: engine {cur['runtime']['name']!r}, {dt:.1f} s sample, "
           f"{cur['runtime']['loops'] - prev['runtime']['loops']} loops",
           "",
           f"{'Node':<32}{'Vectors/s':>12}{'Calls/s':>12}{'Vec/Call':>10}{'Clocks/Vec':>12}"]
    out += [f"{name:<32}{vps:>12.0f}{cps:>12.0f}{vpc:>10.1f}{cpv:>12.1f}" for vps, cps, vpc, cpv, name in rows[:top]]
    if not rows:
        out.append("(no node ran)")
    before_if = {i["name"]: i for i in prev["interfaces"]}
    if cur["interfaces"]:
        out += ["", f"{'Interface':<20}{'State':<7}{'rx pkts/s':>12}{'tx pkts/s':>12}{'rx drops/s':>12}{'tx drops/s':>12}"]
        for i in cur["interfaces"]:
            p = before_if.get(i["name"], i)
            state = "up" if i["admin_up"] and i["link_up"] else "down"
            out.append(f"{i['name']:<20}{state:<7}" + "".join(
                f"{(i[k] - p[k]) / dt:>12.0f}" for k in ("rx_packets", "tx_packets", "rx_drops", "tx_drops")))
    before_err = {(e["node"], e["symbol"]): e["count"] for e in prev["errors"]}
    drops = [((e["count"] - before_err.get((e["node"], e["symbol"]), 0)) / dt, e)
             for e in cur["errors"] if e["severity"] == "error"]
    drops = [(r, e) for r, e in drops if r > 0]
    if drops:
        out += ["", f"{'Drops/s':>12}  {'Node':<28}Reason"]
        out += [f"{r:>12.0f}  {e['node']:<28}{e['reason']}" for r, e in sorted(drops, key=lambda x: -x[0])[:top]]
    return "\n".join(out)


def run(words: list, socket, timeout: float) -> int:
    from graphnet.cli.control import ControlError, send_command
    a = parse_args(words)

    def ask(line):
        ok, text = send_command(socket, line, timeout=timeout)
        if not ok:
            raise ControlError(text)
        return json.loads(text)

    tty = sys.stdout.isatty()
    prev = _sample(ask)
    n = 0
    try:
        while a.count == 0 or n < a.count:
            time.sleep(a.interval)
            cur = _sample(ask)
            text = render(prev, cur, a.top)
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
            else:
                sys.stdout.write(("\n" if n else "") + text + "\n")
            sys.stdout.flush()
            prev = cur
            n += 1
    except KeyboardInterrupt:
        pass
    return 0
