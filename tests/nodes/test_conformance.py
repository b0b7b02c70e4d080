"""Conformance of every registered node (graphnet.nodes.registry) and of the
engine's own and device nodes: the rules every node follows (DESIGN.md,
project rule 6).

- an error table whose first row is ``none``, severities valid, symbols unique;
- every next name resolvable in a graph of everything registered;
- a trace formatter present (the node's own, or the engine's default
  record) that formats a record;
- kit nodes: a module docstring that lists the metadata used and set, the
  next nodes and every error row (drop reasons and counters).
"""
import re
import sys

import pytest

from graphnet.io.capture import Capture
from graphnet.io.pg import PacketGenerator
from graphnet.nodes import registry
from graphnet.vlib import show
from graphnet.vlib.node import SEVERITIES


def _registered():
    """The registry's nodes, the engine's own (error-drop, null,
    interface-output) and the pg's and capture's."""
    from graphnet.io.interface import InterfaceTable
    from graphnet.vlib import drop
    out = [(m, n) for m, n in registry.all_nodes()] + [(drop, n) for n in drop.NODES]
    for obj in (InterfaceTable(), PacketGenerator(next_node="null"), Capture()):
        out.extend((sys.modules[type(obj).__module__], n) for n in obj.nodes())
    return out


NODES = _registered()
IDS = [n.name for _, n in NODES]


@pytest.fixture(scope="module")
def everything():
    """One engine with every registered node, the pg and a capture."""
    import graphnet
    seen, nodes = set(), []
    for _, n in NODES:
        if n.name not in seen and n.name not in ("error-drop", "null", "interface-output"):
            seen.add(n.name)
            nodes.append(n)
    e = graphnet.Engine(nodes, buffers=1024).build()
    yield e
    e.close()


@pytest.mark.parametrize("module, node", NODES, ids=IDS)
def test_error_table(module, node):
    rows = node.error_table()
    assert rows[0][0] == "none"
    assert all(sev in SEVERITIES for _, sev, _ in rows)
    assert len({r[0] for r in rows}) == len(rows), "duplicate error symbol"
    assert all(isinstance(desc, str) and desc for _, _, desc in rows), "an error row without a description"


@pytest.mark.parametrize("module, node", NODES, ids=IDS)
def test_next_names_resolve(module, node, everything):
    names = everything.next_names[node.name]
    assert all(name in everything.index for name in names)
    assert len(names) >= len(node.next_nodes)


@pytest.mark.parametrize("module, node", NODES, ids=IDS)
def test_trace_formatter_formats_a_record(module, node, everything):
    if node.trace_fn is not None:
        assert node.format_trace is not None, "a trace function without a formatter"
        assert node.trace_size > 0
        text = node.format_trace(bytes(node.trace_size), everything)
    else:
        assert node.format_trace is None, "a formatter without a trace function"
        text = show.format_default_record(bytes(64 + 28), everything)
    assert isinstance(text, str) and text.strip()


KIT_MODULES = sorted({m.__name__ for m, n in NODES if n.kit})


def test_every_graphnet_node_module_is_on_the_kit_but_the_unconverted():
    ours = tuple(p + "." for p in registry.PACKAGES)          # graphnet.nodes, graphnet.transport
    old = {m.__name__ for m, n in registry.all_nodes() if not n.kit and m.__name__.startswith(ours)}
    assert old <= set(registry.UNCONVERTED_FEATURES) | set(registry.UNCONVERTED_NO_FEATURE), old


@pytest.mark.parametrize("module, node", [(m, n) for m, n in NODES if n.kit], ids=[n.name for _, n in NODES if n.kit])
def test_kit_node_docstring_lists_metadata_nexts_and_errors(module, node):
    doc = " ".join((module.__doc__ or "").split())
    assert re.search(r"Metadata used", doc), "no 'Metadata used:'"
    assert re.search(r"\bSet\b|\bsets\b", doc), "no 'Set:' (metadata set)"
    assert re.search(r"Next nodes?", doc), "no 'Next nodes:'"
    missing = [sym for sym, _, _ in node.error_table()[1:] if sym not in doc]
    assert not missing, f"error rows not described in the module docstring: {missing}"


DEVICE_TABLES = [("graphnet.io.tap_input", "graphnet.io.tap_tun", "RX_ERRORS", "RxError"),
                 ("graphnet.io.tap_output", "graphnet.io.tap_tun", "TX_ERRORS", "TxError"),
                 ("graphnet.io.af_packet_input", "graphnet.io.af_packet_socket", "INPUT_ERRORS", "RxError"),
                 ("graphnet.io.af_packet_output", "graphnet.io.af_packet_socket", "OUTPUT_ERRORS", "TxError")]


@pytest.mark.parametrize("module, enum_module, table, enum", DEVICE_TABLES, ids=[t[0] for t in DEVICE_TABLES])
def test_device_error_enums_are_the_kits_checked_ones(module, enum_module, table, enum):
    """The device nodes' C error codes are cpdef enums checked against
    their tables when the module imports: a row out of order is refused."""
    import importlib
    from graphnet.vlib.kit import check_enum
    from graphnet.vlib.node import GraphError
    rows = [r[0] for r in getattr(importlib.import_module(module), table)]
    Enum = getattr(importlib.import_module(enum_module), enum)
    assert len(Enum.__members__) == len(rows) + 1               # the rows and N_ERROR
    check_enum(module, Enum, "ERROR_", rows, "N_ERROR")
    with pytest.raises(GraphError, match="does not match its table"):
        check_enum(module, Enum, "ERROR_", rows[:1] + rows[2:3] + rows[1:2] + rows[3:], "N_ERROR")
