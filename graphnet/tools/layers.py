"""Check graphnet's layering: ``python -m graphnet.tools.layers`` (exit 1 on
a violation, with one line per offending import).

The layers, bottom up (a module may import its own layer and those below):

  0  includes, wire, paths   C externs, byte order; packet formats; runtime file places
  1  vlib                    buffers, frames, nodes, the loop (may use 0)
  2  fib, io, nodes, session, transport
                             the stack and the devices (may use 0-1 and each other)
  3  apps, bench, fuzz, testing, tools, config, graphnet (the package: the public API)
  4  cli, __main__

Besides the ranks: ``config`` does not import ``cli``; and no import
cycle between modules (a module reaching itself through its imports,
function-level imports included). Every import counts, at module level or
inside a function, ``import``/``from``/``cimport``, in .py, .pyx and .pxd.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import graphnet

LAYERS = {"includes": 0, "wire": 0, "paths": 0, "unix_socket": 0, "vlib": 1, "fib": 2, "io": 2, "nodes": 2, "session": 2, "transport": 2,
          "apps": 3, "app": 3, "bench": 3, "fuzz": 3, "testing": 3, "tools": 3, "config": 3, "__init__": 3, "cli": 4, "__main__": 4}
FORBIDDEN = {("config", "cli")}          # (importer, imported) besides the ranks

_CY_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\s+(.+)|c?import\s+([\w., ]+))", re.M)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(names: set, known: set) -> set:
    """Keep graphnet modules; ``graphnet.vlib.main.Main`` -> ``graphnet.vlib.main``."""
    out = set()
    for n in names:
        while n and n not in known:
            n = n.rpartition(".")[0]
        if n:
            out.add(n)
    return out


def imports_of(path: Path) -> set:
    """Dotted names a source file imports (absolute, as written)."""
    text = path.read_text()
    names = set()
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        return names
    for m in _CY_IMPORT.finditer(text):
        if m.group(1):
            names.add(m.group(1))
            names.update(f"{m.group(1)}.{a.strip().split()[0]}" for a in m.group(2).strip("()\\").split(",")
                         if a.strip() and a.strip()[0].isalpha())
        else:
            names.update(a.strip().split()[0] for a in m.group(3).split(",") if a.strip())
    return names


def graph(root: Path) -> dict:
    """module -> set of graphnet modules it imports."""
    files = {}
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".pyx", ".pxd") and "build" not in p.parts:
            files.setdefault(module_name(p, root), []).append(p)
    known = set(files)
    return {mod: _resolve(set().union(*(imports_of(p) for p in paths)), known) - {mod}
            for mod, paths in files.items()}


def layer_of(mod: str):
    parts = mod.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    return key, LAYERS.get(key)


def violations(root: Path | None = None) -> list:
    root = root or Path(graphnet.__file__).parent
    g = graph(root)
    out = []
    for mod, deps in sorted(g.items()):
        key, rank = layer_of(mod)
        for dep in sorted(deps):
            dkey, drank = layer_of(dep)
            if rank is None or drank is None:
                out.append(f"{mod}: {key if rank is None else dkey} is in no layer (add it to LAYERS)")
            elif drank > rank:
                out.append(f"{mod} (layer {rank}, {key}) imports {dep} (layer {drank}, {dkey}): upward")
            elif (key, dkey) in FORBIDDEN:
                out.append(f"{mod} imports {dep}: {key} must not import {dkey}")
    out.extend(f"import cycle: {' -> '.join(c)}" for c in cycles(g))
    return out


def cycles(g: dict) -> list:
    """One representative cycle per strongly connected component (Tarjan)."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return [c + [c[0]] for c in comps]


def main(argv=None) -> int:
    found = violations()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} layering violation(s); see python -m graphnet.tools.layers --help", file=sys.stderr)
        return 1
    print("layers: no upward import, no cycle")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    sys.exit(main())
