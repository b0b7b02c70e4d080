"""`<show command> --json`: every show command has one, with the figures its text prints."""
import json

import pytest

from graphnet.cli.registry import CommandError, default_registry, execute
from graphnet.testing import udp_packets

TEXT_ONLY = {("show", "graph", "dot")}          # DOT is itself a machine format


def test_every_visible_show_command_has_a_json_form_and_a_schema():
    reg = default_registry()
    missing = [c.name for c in reg.commands.values()
               if c.path[0] == "show" and not c.hidden and c.path not in TEXT_ONLY and c.json is None]
    assert missing == []
    assert "--json" in execute(None, "help show runtime") and "clocks_per_vector" in execute(None, "help show runtime")


def test_json_figures_match_the_engine(pg_capture):
    from graphnet import python_node

    @python_node("py-drop-odd", next_nodes=["capture"], errors=[("odd", "error", "odd packet")])
    def drop_odd(frame):
        for i in range(len(frame)):
            if frame.packet(i)[-1] % 2:
                frame.drop(i, "odd")

    t = pg_capture(drop_odd, first="py-drop-odd")
    t.send_bytes(udp_packets(100), count=100)
    e = t.engine
    rt = json.loads(execute(e, "show runtime --json"))
    node = next(n for n in rt["nodes"] if n["name"] == "py-drop-odd")
    assert node["vectors"] == 100 and node["calls"] >= 1
    errs = json.loads(execute(e, "show errors --json"))
    assert {"node": "py-drop-odd", "symbol": "odd", "severity": "error", "reason": "odd packet",
            "count": e.error_count("py-drop-odd", "odd")} in errs
    assert json.loads(execute(e, "show buffers --json"))["in_use"] == e.pool.stats()["in_use"]
    n = json.loads(execute(e, "show node py-drop-odd --json"))
    assert n["next_nodes"][0] == "capture" and n["errors"][1]["symbol"] == "odd"


def test_json_of_host_tables(host_engine):
    e = host_engine
    assert json.loads(execute(e, "show interface address --json")) == {"if0": ["10.0.0.1/24"]}
    fib = json.loads(execute(e, "show ip fib --json"))
    assert any(r["prefix"] == "10.0.0.1/32" for r in fib)
    assert json.loads(execute(e, "show interface if0 --json"))[0]["mac"] == "02:00:00:00:00:01"
    with pytest.raises(CommandError, match="no interface named"):
        execute(e, "show interface nope --json")
    with pytest.raises(CommandError, match="has no --json output"):
        execute(e, "show graph dot --json")
    for c in default_registry().commands.values():       # each view runs without an error
        if c.json is not None and c.path not in {("show", "node"), ("ping",)}:     # these need arguments
            json.loads(execute(e, c.name + " --json"))
