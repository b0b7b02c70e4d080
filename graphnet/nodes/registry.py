"""Node discovery: node modules register through their ``NODES``; a graph
is built from the features it enables, without hand-kept lists.

A node module ends with ``NODES = (...)`` and ``FEATURE = "ip4"`` (a name,
a tuple of names, or None for a node that joins no graph by itself, such
as ``passthrough``). ``nodes("ip4-host")`` is every registered node whose
module has that feature or one it includes (``FEATURES``): adding a
protocol is writing its module, nothing else.

Where modules come from, all joining the same way:

- the packages in ``PACKAGES`` (``graphnet.nodes``, ``graphnet.transport``),
  scanned once (their modules, not subpackages' modules);
- the ``graphnet.nodes`` entry-point group: an installed package declares
  ``[project.entry-points."graphnet.nodes"] mine = "mypkg.nodes"``;
- ``add_module("mypkg.nodes")``: the startup file's ``[graph] modules``.

Features: ``ip4`` (the forwarding path: ethernet-input, ip4-input,
ip4-lookup, ip4-rewrite, ip4-frag, ip4-reassembly), ``ip4-host`` (ip4 plus
ARP, neighbours, ip4-local, ICMP, UDP), ``session`` (session-input,
session-queue, app-queue and the UDP transport's udp4-session, which
attaches to udp4-input: the feature goes with ip4-host, as
graphnet.nodes.session_host says).

Invariant: scanning imports modules and reads their ``NODES`` and
``FEATURE`` only; a module with ``NODES`` in its namespace is registered
once, in a stable order (package scan in name order, then entry points,
then added modules).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
from types import ModuleType
from typing import Iterable, Optional

log = logging.getLogger("graphnet.registry")

ENTRY_POINT_GROUP = "graphnet.nodes"
PACKAGES = ["graphnet.nodes", "graphnet.transport"]
# feature -> the features it includes
FEATURES = {"ip4": (), "ip4-host": ("ip4",), "session": ()}
# Modules not yet converted to the kit (they say no FEATURE themselves);
# removed as each is converted. See graphnet.vlib.kit for the conversion.
UNCONVERTED_FEATURES: dict = {}
# Modules not yet converted that belong to no feature (none left: app-queue,
# which graphnet.nodes.session_host adds to a graph itself, is on the kit).
UNCONVERTED_NO_FEATURE: tuple = ()

_scanned: Optional[list] = None
_added: list = []


class RegistryError(ValueError):
    """A module cannot be registered (not importable, no NODES, bad FEATURE)."""


def _check(module: ModuleType, lazy_ok: bool = False) -> ModuleType:
    # while scanning only NODES in the namespace counts (an aggregate such
    # as graphnet.nodes.ip4 makes its NODES from the registry on demand)
    if "NODES" not in vars(module) and not (lazy_ok and hasattr(module, "NODES")):
        raise RegistryError(f"module {module.__name__!r} has no NODES")
    for f in features_of(module):
        if f not in FEATURES:
            raise RegistryError(f"module {module.__name__!r}: unknown FEATURE {f!r} "
                                f"(known: {', '.join(FEATURES)})")
    return module


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise RegistryError(f"cannot import {name!r}: {e}") from None


def features_of(module: ModuleType) -> tuple:
    """The features a module declares (its FEATURE, or the transitional map)."""
    f = vars(module).get("FEATURE", UNCONVERTED_FEATURES.get(module.__name__))
    if f is None:
        return ()
    return (f,) if isinstance(f, str) else tuple(f)


def _scan() -> list:
    found = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            name = f"{pkg_name}.{info.name}"
            if name == __name__:
                continue
            m = importlib.import_module(name)
            if "NODES" in vars(m):
                found.append(_check(m))
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            found.append(_check(_import(ep.value)))
        except RegistryError as e:
            raise RegistryError(f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP!r}: {e}") from None
    return found


def modules() -> list:
    """Every registered node module, in a stable order."""
    global _scanned
    if _scanned is None:
        _scanned = _scan()
    out = list(_scanned)
    for m in _added:
        if m not in out:
            out.append(m)
    return out


def refresh() -> None:
    """Scan again at next use (new entry points, tests)."""
    global _scanned
    _scanned = None


def add_module(module) -> ModuleType:
    """Register a module (object or dotted name) with ``NODES``; the startup
    file's ``[graph] modules`` come this way. Returns the module."""
    m = _check(_import(module) if isinstance(module, str) else module, lazy_ok=True)
    if "NODES" in vars(m) and m not in _added:
        _added.append(m)
    return m


def expand(features: Iterable[str]) -> list:
    """The features and those they include, included ones first."""
    out: list = []

    def visit(f):
        if f not in FEATURES:
            raise RegistryError(f"unknown feature {f!r} (known: {', '.join(FEATURES)})")
        for g in FEATURES[f]:
            visit(g)
        if f not in out:
            out.append(f)
    for f in features:
        visit(f)
    return out


def nodes(*features: str) -> tuple:
    """The registrations of every module in one of these features (and the
    features they include), features in dependency order."""
    out, seen = [], set()
    for f in expand(features):
        for m in modules():
            if f in features_of(m) and m.__name__ not in seen:
                seen.add(m.__name__)
                out.extend(m.NODES)
    return tuple(out)


def all_nodes() -> list:
    """[(module, registration)] of every registered module's NODES."""
    return [(m, n) for m in modules() for n in m.NODES]
