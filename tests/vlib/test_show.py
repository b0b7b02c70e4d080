"""show runtime / errors / node / graph / dot / buffers."""
import re

import pytest

from graphnet import process_node, python_node, Sleep
from graphnet.nodes.passthrough import passthrough
from graphnet.testing import udp_packets

RUNTIME_COLUMNS = ["Name", "State", "Calls", "Vectors", "Suspends", "Clocks", "Vectors/Call", "Drops"]


@pytest.fixture
def busy(pg_capture):
    """pg -> cy-pass -> py-split -> capture | error-drop, after 600 packets."""
    @python_node("py-split", next_nodes=["capture"],
                 errors=[("too-odd", "error", "odd packet number"), ("unused", "info", "never counted")])
    def split(frame):
        for i in range(len(frame)):
            if frame.packet(i)[-1] % 2:
                frame.drop(i, "too-odd")

    t = pg_capture(passthrough("cy-pass", "py-split"), split, first="cy-pass")
    t.send_bytes(udp_packets(600), count=600)
    return t


def parse_runtime(text):
    lines = text.splitlines()
    header = lines[1]
    assert header.split() == RUNTIME_COLUMNS
    rows = {}
    for line in lines[2:]:
        m = re.match(r"^(\S+)\s+(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)$", line)
        assert m, line
        name, state, calls, vectors, suspends, clocks, vpc, drops = m.groups()
        rows[name] = dict(state=state, calls=int(calls), vectors=int(vectors), suspends=int(suspends),
                          clocks=float(clocks), vpc=float(vpc), drops=int(drops))
    return lines[0], rows


def test_runtime_matches_node_counters(busy):
    e = busy.engine
    head, rows = parse_runtime(e.show("runtime"))
    assert re.match(r"Thread 0 main: time [\d.]+s, \d+ main loops, \d+ sleeps, average vectors/node [\d.]+", head)
    counters = e.main.node_counters()
    shown = {n.name for n, c in zip(e.nodes, counters) if c["calls"] or c["vectors"]}
    assert set(rows) == shown >= {"pg-input", "cy-pass", "py-split", "capture", "error-drop"}
    for name, row in rows.items():
        c = counters[e.node_index(name)]
        assert (row["calls"], row["vectors"], row["suspends"]) == (c["calls"], c["vectors"], c["suspends"])
        assert row["vpc"] == pytest.approx(c["vectors"] / c["calls"], abs=0.006)
        per = c["clocks"] / c["vectors"] if c["vectors"] else c["clocks"] / c["calls"]   # processes: per call
        assert row["clocks"] == pytest.approx(per, rel=0.01)
    assert rows["cy-pass"]["vectors"] == 600 and rows["cy-pass"]["calls"] == 3
    assert rows["capture"]["vectors"] == 300 and rows["error-drop"]["vectors"] == 300
    assert rows["pg-input"]["state"] == "polling"
    assert rows["cy-pass"]["state"] == "active"
    # the node that dropped them, once each, as show errors counts them
    assert {n: r["drops"] for n, r in rows.items() if r["drops"]} == {"py-split": 300}
    assert e.error_count("py-split", "too-odd") == 300
    e.clear_errors()                                  # resets both
    _, rows = parse_runtime(e.show("runtime"))
    assert all(r["drops"] == 0 for r in rows.values()) and e.error_count("py-split", "too-odd") == 0


def test_runtime_all_lists_idle_nodes_and_clear(busy):
    e = busy.engine
    _, rows = parse_runtime(e.show("runtime"))
    assert "null" not in rows
    _, rows = parse_runtime(e.show("runtime", "all"))
    assert rows["null"]["calls"] == 0 and set(rows) == {n.name for n in e.nodes}
    e.clear_runtime()
    _, rows = parse_runtime(e.show("runtime"))
    assert rows == {}
    assert all(c["calls"] == c["vectors"] == c["clocks"] == 0 for c in e.main.node_counters())


def test_runtime_shows_process_suspends(engine_factory):
    @process_node("ticker")
    def ticker(engine):
        for _ in range(3):
            yield Sleep(0.005)
        engine.stop()

    e = engine_factory([ticker])
    e.run(5)
    _, rows = parse_runtime(e.show("runtime"))
    assert rows["ticker"]["suspends"] == 3 and rows["ticker"]["calls"] == 4
    assert rows["ticker"]["state"] == "done"


def test_errors_lists_counted_drops_by_reason(busy):
    e = busy.engine
    text = e.show("errors")
    lines = text.splitlines()
    assert lines[0].split() == ["Count", "Node", "Reason", "Severity"]
    rows = [re.match(r"^\s*(\d+)\s+(\S+)\s+(.+?)\s+(info|warn|error)\s*$", l).groups() for l in lines[1:]]
    assert rows == [("300", "py-split", "odd packet number", "error")]
    assert e.error_count("py-split", "too-odd") == 300
    everything = e.show("errors", "all")
    assert "never counted" in everything and "python-exception" not in everything.split()
    e.clear_errors()
    assert e.show("errors").splitlines()[1:] == []
    assert e.error_count("py-split", "too-odd") == 0


def test_error_count_unknown_symbol(busy):
    with pytest.raises(KeyError, match="has no error 'nope'"):
        busy.engine.error_count("py-split", "nope")


def parse_dot(text):
    """A strict little parser for the DOT subset show dot writes: returns
    (graph name, {node: attrs}, [(src, dst, attrs)])."""
    lines = [l.strip() for l in text.strip().splitlines()]
    m = re.fullmatch(r"digraph\s+(\w+)\s*\{", lines[0])
    assert m, lines[0]
    graph_name = m.group(1)
    assert lines[-1] == "}"
    nodes, edges = {}, []
    attr = r'\[((?:\w+=(?:"[^"]*"|\w+)(?:,\s*)?)*)\]'
    for l in lines[1:-1]:
        if re.fullmatch(r"\w+=\w+;", l):
            continue
        m = re.fullmatch(rf'"([^"]+)"\s*->\s*"([^"]+)"\s*{attr};', l)
        if m:
            edges.append((m.group(1), m.group(2), dict(re.findall(r'(\w+)="?([^",]*)"?', m.group(3)))))
            continue
        m = re.fullmatch(rf'"([^"]+)"\s*{attr};', l)
        assert m, f"not DOT: {l!r}"
        nodes[m.group(1)] = dict(re.findall(r'(\w+)="?([^",]*)"?', m.group(2)))
    return graph_name, nodes, edges


def test_dot_is_a_digraph_with_an_edge_per_arc(busy):
    e = busy.engine
    name, nodes, edges = parse_dot(e.show("dot"))
    assert name == "graphnet"
    assert set(nodes) == {n.name for n in e.nodes}
    assert nodes["pg-input"]["shape"] == "box" and nodes["cy-pass"]["shape"] == "ellipse"
    expected = [(n.name, nxt, str(k)) for n in e.nodes for k, nxt in enumerate(e.next_names[n.name])]
    assert sorted((s, d, a["label"]) for s, d, a in edges) == sorted(expected)
    assert ("pg-input", "cy-pass", "0") in [(s, d, a["label"]) for s, d, a in edges]
    assert all(d in nodes for _, d, _ in edges)


def test_show_node(busy):
    e = busy.engine
    text = e.show("node", "py-split")
    lines = text.splitlines()
    i = e.node_index("py-split")
    assert lines[0] == f"node py-split, type internal, index {i}, state active"
    assert "calls 3, vectors 600," in lines[1]
    nexts = lines[lines.index("  next nodes:") + 1:lines.index("  errors:")]
    assert [l.strip() for l in nexts] == ["[0] capture", "[1] error-drop"]
    errs = {l.split()[0]: l.split() for l in lines[lines.index("  errors:") + 1:] if l.startswith("    ")}
    assert list(errs) == ["none", "too-odd", "unused", "python-exception"]
    assert errs["too-odd"][1:3] == ["error", "300"]
    assert errs["python-exception"][1:3] == ["error", "0"]


def test_show_node_input_and_unknown(busy):
    e = busy.engine
    text = e.show("node", "pg-input")
    assert "type input" in text and "state polling" in text
    assert "[0] cy-pass" in text and "no-buffers" in text
    with pytest.raises(KeyError, match="did you mean 'py-split'"):
        e.show("node", "py-splt")
    with pytest.raises(ValueError, match="needs a node name"):
        e.show("node")


def test_show_graph(busy):
    e = busy.engine
    lines = e.show("graph").splitlines()
    assert lines[0].split() == ["Name", "Type", "Next", "nodes"]
    rows = {l.split()[0]: l for l in lines[1:]}
    assert set(rows) == {n.name for n in e.nodes}
    assert rows["cy-pass"].split()[1:] == ["internal", "[0]", "py-split"]
    assert rows["capture"].split()[1:] == ["internal", "-"]


def test_show_buffers(busy):
    e = busy.engine
    lines = e.show("buffers").splitlines()
    assert lines[0].split() == ["Pool", "Size", "Total", "Free", "Loop", "cache", "Dev", "cache", "Packets",
                                "Queued", "Dbl", "free", "Waiters"]
    vals = lines[1].split()
    s = e.buffer_stats()
    assert vals[0] == "default"
    assert [int(v) for v in vals[2:]] == [s["total"], s["free_shared"], s["cached"], s["device_cached"],
                                          s["in_use_packets"], s["queued"], s["double_frees"], s["waiters"]]
    assert s["in_use"] == 0 and s["in_use_packets"] == 0
    assert s["free_shared"] + s["cached"] + s["device_cached"] + s["in_use_packets"] == s["total"]
    assert re.match(r"frames: \d+ allocated, \d+ free, 0 pending", lines[2])


def test_show_unknown_command(busy):
    with pytest.raises(KeyError):
        busy.engine.show("nonsense")


def test_show_from_another_thread_while_running(busy):
    e = busy.engine
    e.start()
    try:
        _, rows = parse_runtime(e.show("runtime"))
        assert rows["cy-pass"]["vectors"] == 600
    finally:
        e.stop()


def test_errors_columns_stay_apart_when_a_reason_is_long(pg_capture):
    """A reason longer than the default column must not run into the severity."""
    long_reason = "a reason much longer than the forty-eight characters of the default column"

    @python_node("py-long", next_nodes=["capture"], errors=[("long", "error", long_reason)])
    def drop_all(frame):
        for i in range(len(frame)):
            frame.drop(i, "long")

    t = pg_capture(drop_all, first="py-long")
    t.send_bytes(udp_packets(3), count=3)
    line = t.engine.show("errors").splitlines()[1]
    assert re.match(rf"^\s*3\s+py-long\s+{re.escape(long_reason)}\s+error$", line), line


def test_interface_counter_rows_line_up_under_the_first(engine_factory):
    from graphnet.testing.ip4 import CaptureInterface
    e = engine_factory([])
    ifs = [CaptureInterface(e, name, f"02:00:00:00:00:0{i + 1}") for i, name in enumerate(["if0", "a-long-interface-name-x"])]
    e.add(ifs)
    e.build()
    lines = e.show("interface").splitlines()
    counter_col = lines[0].index("Counter")
    rows = [l for l in lines[1:] if l.strip()]
    assert len(rows) == 4                                   # rx and tx packets per interface
    for l in rows:
        assert l[counter_col:].split()[0] in ("rx", "tx"), (l, counter_col)
