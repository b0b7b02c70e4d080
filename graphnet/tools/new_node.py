"""Scaffold a Cython node on the node kit: ``python -m graphnet.tools.new_node NAME``.

Writes, from the template ``graphnet/nodes/passthrough.pyx`` (the whole
anatomy of a node in under 40 lines):

- ``<dir>/<module>.pyx``: the node ``NAME`` (a pass-through with an
  ``empty`` drop reason, its checked ``Next``/``Error`` enums and tables),
  ending with its registration: ``NODES`` and ``FEATURE``;
- ``<tests>/test_<module>.py``: a pg -> NAME -> capture test of the packets
  that pass and the one that is dropped, by error name.

Registration: a module in ``graphnet/nodes/`` is discovered through its
``NODES`` and ``FEATURE`` (graphnet.vlib.registry); a module elsewhere joins
through the startup file (``[graph] modules = ["pkg.mod"]``) or an entry
point in the ``graphnet.nodes`` group (both printed at the end).

    python -m graphnet.tools.new_node my-counter                 # into graphnet/nodes, tests/nodes
    python -m graphnet.tools.new_node my-counter --dir src/mypkg --tests tests --feature ip4

Then build (``make build``, or ``cythonize -i`` for a module outside
graphnet) and run the test. An existing file is never overwritten.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import graphnet

TEMPLATE = Path(graphnet.__file__).parent / "nodes" / "passthrough.pyx"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

TEST = '''"""{name}: the scaffold's test (pg -> {name} -> capture)."""
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from {package}{module} import NODES, node_for


def test_{module}_passes_packets_and_counts_empty(pg_capture):
    t = pg_capture(node_for("{name}", "capture"), first="{name}")
    pkts = [Ether() / IP(dst="192.0.2.1") / UDP(dport=1000 + i) for i in range(5)]
    got = t.send(pkts, count=len(pkts))
    assert [bytes(p) for p in got] == [bytes(p) for p in pkts]
    assert t.engine.error_count("{name}", "empty") == 0
    assert NODES[0].name == "{name}"
'''


def module_name(name: str) -> str:
    return name.replace("-", "_")


def render_node(name: str, feature: str | None) -> str:
    """The template with its names replaced, ending with NODES/FEATURE."""
    text = TEMPLATE.read_text()
    text = text[text.index('"""', 3) + 3:].lstrip("\n")          # without the template's docstring
    mod = module_name(name)
    for old, new in (("passthrough_fn", f"{mod}_fn"), ("PASSTHROUGH_FN", f"{mod.upper()}_FN"),
                     ("hop_fn", f"{mod}_nocheck_fn"), ("HOP_FN", f"{mod.upper()}_NOCHECK_FN"),
                     ("def passthrough(", "def node_for("), ('passthrough("passthrough"', f'node_for("{name}"'),
                     ("def chain(", "def chain_of("), ("passthrough(f", "node_for(f")):
        text = text.replace(old, new)
    doc = (f'"""``{name}``: hands every packet to its next node (written by\n'
           f'graphnet.tools.new_node from the passthrough template: make it yours).\n\n'
           f'Metadata used: current_length. Set: nothing. Next nodes: ``next``.\n'
           f'Drops: ``empty`` (a zero-length packet). Trace: the default record.\n"""\n')
    return doc + text.rstrip("\n") + f"\nFEATURE = {feature!r}\n"


def render_test(name: str, package: str) -> str:
    return TEST.format(name=name, module=module_name(name), package=package + "." if package else "")


def write(path: Path, text: str) -> None:
    if path.exists():
        raise SystemExit(f"new_node: {path} exists; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")


def main(argv=None) -> int:
    root = Path(graphnet.__file__).parent
    p = argparse.ArgumentParser(prog="python -m graphnet.tools.new_node", description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring (pydoc graphnet.tools.new_node) for the details.")
    p.add_argument("name", help="node name, VPP style: lower case words joined by '-' (e.g. my-counter)")
    p.add_argument("--dir", type=Path, default=root / "nodes", help="where the module goes (default graphnet/nodes)")
    p.add_argument("--tests", type=Path, default=root.parent / "tests" / "nodes",
                   help="where its test goes (default tests/nodes, as tests mirror the package)")
    p.add_argument("--package", default=None,
                   help="the module's package for the test's import (default: graphnet.nodes for graphnet/nodes, "
                        "none elsewhere)")
    p.add_argument("--feature", default=None, help="the graphs it joins (e.g. ip4, ip4-host; default: none)")
    a = p.parse_args(argv)
    if not NAME_RE.match(a.name):
        p.error(f"node name {a.name!r}: use lower case letters and digits, words joined by '-' (my-counter)")
    package = a.package
    if package is None:
        package = "graphnet.nodes" if a.dir.resolve() == (root / "nodes").resolve() else ""
    mod = module_name(a.name)
    write(a.dir / f"{mod}.pyx", render_node(a.name, a.feature))
    write(a.tests / f"test_{mod}.py", render_test(a.name, package))
    target = f"{package}.{mod}" if package else mod
    print(f"registration: NODES and FEATURE in the module; outside graphnet/nodes add it to the startup file\n"
          f"  [graph]\n  modules = [\"{target}\"]\n"
          f"or as an entry point in your pyproject.toml:\n"
          f"  [project.entry-points.\"graphnet.nodes\"]\n  {mod} = \"{target}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
