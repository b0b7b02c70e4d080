"""Command-line benchmarks: ``graphnet bench <name>|list|all [options]``.

Each bench (see ``graphnet.bench.core``) measures a graphnet case and, in
the same run, a reference doing the same job (plain Python, heapq, ...),
and reports the ratio. Output is a table, or with ``--json`` one JSON object
per line and per measured case::

    {"bench": "dispatch", "case": "cython-8", "pps": ..., "ns_per_packet": ...,
     "ns_per_node": ..., "ratio": 65.0, "against": "plain-python-8",
     "machine": {"cpu": ..., "cpus": 2, "python": "3.11.7", "load": 0.3}, ...}

Every line has ``bench``, ``case`` and ``machine``; the packet benches'
lines ``pps`` and ``ns_per_packet`` (the TCP benches' ``gbps`` or
``connections_per_s`` instead); ``ns_per_node`` where a per-node cost
applies; a case compared with a reference has ``ratio`` (times faster) and
``against`` (the reference's case name); a case not measured because
graphnet's side does not exist yet has ``built: false`` and a ``note``,
never figures. To add a bench, write a module in this package
with a ``@register("name")`` generator: every module here is imported to
find them (``MODULES`` first, in that order, then the other ``.py``
modules by name; compiled helpers are left to the benches that use them).

``perf/`` runs the same code under pytest-benchmark; ``perf/RESULTS.md``
records figures.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import json
import sys
from pathlib import Path
from typing import Iterable

from graphnet.bench.core import BENCHES, machine, register

__all__ = ["main", "run", "register", "BENCHES", "MODULES"]

MODULES = ("graphnet.bench.dispatch", "graphnet.bench.timers")


def _load() -> dict:
    found = [f"{__name__}.{f.stem}" for f in sorted(Path(__file__).parent.glob("*.py"))
             if not f.stem.startswith("_") and f.stem != "core"]
    for m in list(MODULES) + [m for m in found if m not in MODULES]:
        try:
            importlib.import_module(m)
        except ImportError as e:        # one broken bench must not hide the others
            print(f"graphnet bench: cannot load {m}: {e}", file=sys.stderr)
    return BENCHES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphnet bench", description="Run benchmarks against in-run references.")
    p.add_argument("name", help="a bench name, 'list' or 'all'")
    p.add_argument("--json", action="store_true", help="one JSON object per line per measured case")
    p.add_argument("--packets", type=int, metavar="N", help="packets per measured run (default: per bench)")
    p.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="time budget per case: no new round of runs after S seconds (default 2; "
                        "flood: the flood's length, default 60)")
    p.add_argument("--repeat", type=int, default=100, metavar="R",
                   help="at most R runs per case, the fastest is reported (default 100)")
    p.add_argument("--nodes", type=int, metavar="K", help="dispatch: chain length (default 8)")
    p.add_argument("--ref-packets", type=int, metavar="N",
                   help="dispatch, ip4-forward: packets per plain-Python run (default min(packets, 2000))")
    p.add_argument("--routes", type=int, metavar="N", help="ip4-forward: routes in the FIB (default 1000000)")
    p.add_argument("--not-enabled-check", action="store_true",
                   help="ip4-forward: also the 1-route case with ip4-input's ip4-not-enabled check on "
                        "(case graphnet-1-route-check; check_ns: its cost per packet)")
    p.add_argument("--timers", type=int, metavar="N", help="timers: timers per run (default 100000)")
    p.add_argument("--plot", metavar="FILE", help="also draw each case beside its reference into FILE "
                                                  "(PNG, SVG or PDF by its suffix; needs matplotlib)")
    return p


def run(names: Iterable[str], opts) -> Iterable[dict]:
    """Yield the result lines of the named benches, with bench and machine.
    Closing this generator (``main`` does, also on Ctrl-C or SIGTERM)
    closes the running bench's generator at once, so its ``finally``
    blocks remove the namespaces and processes it made."""
    for name in names:
        bench_opts = argparse.Namespace(**vars(opts))
        if bench_opts.seconds is None:
            bench_opts.seconds = BENCHES[name].seconds
        with contextlib.closing(BENCHES[name].fn(bench_opts)) as lines:
            for line in lines:
                line = {k: round(v, 3) if isinstance(v, float) else v for k, v in line.items()}
                yield {"bench": name, **line, "machine": machine()}


def main(argv: list[str]) -> int:
    opts = build_parser().parse_args(argv)
    benches = _load()
    if opts.name == "list":
        for b in benches.values():
            print(f"{b.name:<14}{b.summary}")
        return 0
    names = list(benches) if opts.name == "all" else [opts.name]
    if names[0] not in benches:
        hint = difflib.get_close_matches(names[0], list(benches), n=1)
        print(f"graphnet bench: no bench named {names[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
              + f"; known: {', '.join(benches)}", file=sys.stderr)
        return 2
    counts = (opts.packets, opts.nodes, opts.ref_packets, opts.timers)
    if any(v is not None and v <= 0 for v in counts) or opts.repeat <= 0 or (
            opts.seconds is not None and opts.seconds <= 0):
        print("graphnet bench: counts, --repeat and --seconds must be positive", file=sys.stderr)
        return 2
    if opts.plot:
        from graphnet.bench.plot import PlotUnavailable
        try:
            import matplotlib  # noqa: F401  (fail before the runs, not after)
        except ImportError:
            print("graphnet bench: --plot needs matplotlib: pip install 'graphnet[plot]'", file=sys.stderr)
            return 2
    lines = []
    if opts.json:
        with contextlib.closing(run(names, opts)) as results:
            for line in results:
                print(json.dumps(line), flush=True)
                lines.append(line)
    else:
        m = machine()
        print(f"# {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, load {m['load']}", flush=True)
        print(_ROW.format("bench", "case", "Mpps", "ns/pkt", "ns/node", "ratio", "details"), flush=True)
        with contextlib.closing(run(names, opts)) as results:
            for line in results:
                print(format_line(line), flush=True)
                lines.append(line)
    if opts.plot:
        from graphnet.bench.plot import plot
        try:
            n = plot(lines, opts.plot)
        except PlotUnavailable as e:
            print(f"graphnet bench: {e}", file=sys.stderr)
            return 1
        print(f"# plotted {n} comparison{'s' if n != 1 else ''} into {opts.plot}", file=sys.stderr)
    return 0


_ROW = "{:<18}{:<16}{:>9}{:>10}{:>9}{:>8}  {}"
_MAIN_KEYS = {"bench", "case", "pps", "ns_per_packet", "ns_per_node", "ratio", "against", "machine"}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    if isinstance(v, dict):
        return ",".join(f"{k}:{'yes' if x is True else 'NO' if x is False else x}" for k, x in v.items())
    return str(v)


def format_line(line: dict) -> str:
    """One table row: the common columns, then the other fields as k=v."""
    ratio = (f"{line['ratio']:.2f}x" if line['ratio'] < 10 else f"{line['ratio']:.1f}x") if "ratio" in line else ""
    details = " ".join(f"{k}={_fmt(v)}" for k, v in line.items() if k not in _MAIN_KEYS)
    if "against" in line:
        details = f"vs {line['against']}  " + details
    node = f"{line['ns_per_node']:.2f}" if line.get("ns_per_node") is not None else ""
    mpps = f"{line['pps'] / 1e6:.3f}" if "pps" in line else ""
    ns = f"{line['ns_per_packet']:.2f}" if "ns_per_packet" in line else ""
    return _ROW.format(line["bench"], line["case"], mpps, ns, node, ratio, details)
