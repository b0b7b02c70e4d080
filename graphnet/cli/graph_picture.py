"""Pictures of the graph: Graphviz DOT with nodes sized by their load, and
SVG through Graphviz's ``dot`` program (Debian package ``graphviz``).

``dot_source(graph, runtime)`` takes the data of ``show graph --json`` and,
when the picture is of a running engine, ``show runtime all --json``: each
node is then labelled with its vectors/s (averaged since the engine
started) and clocks/vector, and drawn wider the more vectors it handles.
Arcs are labelled with their arc index; per-arc packet counts are not kept
by the engine.
"""
from __future__ import annotations

import math
import shutil
import subprocess

SHAPES = {"input": "box", "internal": "ellipse", "process": "diamond"}


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_source(graph: list, runtime: dict | None = None) -> str:
    """DOT text for `graph` ([{name, type, next_nodes}]) and optional runtime."""
    load = {}
    if runtime is not None:
        t = max(1e-9, runtime["time_s"])
        load = {n["name"]: (n["vectors"] / t, n["clocks_per_vector"]) for n in runtime["nodes"]}
    peak = max([v for v, _ in load.values()] + [1.0])
    lines = ["digraph graphnet {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for n in graph:
        attrs = [f"shape={SHAPES.get(n['type'], 'ellipse')}"]
        label = n["name"]
        if n["name"] in load:
            vps, cpv = load[n["name"]]
            label += f"\\n{vps:,.0f} vectors/s\\n{cpv:.0f} clocks/vector"
            # width grows with the log of the load: 1 vector/s .. the busiest node
            width = 1.0 + 2.0 * math.log1p(vps) / math.log1p(peak)
            attrs.append(f"width={width:.2f}")
            if vps > 0:
                attrs.append('style=filled, fillcolor="#dbe9f6"')
        attrs.append(f"label={_quote(label)}")
        lines.append(f"  {_quote(n['name'])} [{', '.join(attrs)}];")
    for n in graph:
        for k, x in enumerate(n["next_nodes"]):
            lines.append(f"  {_quote(n['name'])} -> {_quote(x)} [label=\"{k}\"];")
    lines.append("}")
    return "\n".join(lines)


class GraphvizMissing(Exception):
    """Graphviz's dot program is not installed."""


def write_svg(dot_text: str, path: str, timeout: float = 60.0) -> None:
    """Render `dot_text` into an SVG file at `path` with Graphviz."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing("drawing SVG needs Graphviz's dot program (apt-get install graphviz)")
    r = subprocess.run([exe, "-Tsvg", "-o", str(path)], input=dot_text, text=True,
                       capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise GraphvizMissing(f"dot failed: {r.stderr.strip()[:300]}")
