"""Building a graph: name resolution and the errors a user gets."""
import pytest

import graphnet
from graphnet import GraphError, Node
from graphnet.io.capture import Capture
from graphnet.io.pg import PacketGenerator
from graphnet.nodes.passthrough import PASSTHROUGH_FN, chain, passthrough


def test_builtin_nodes_always_present(engine_factory):
    e = engine_factory([]).build()
    names = [n.name for n in e.nodes]
    assert {"error-drop", "null"} <= set(names)
    assert e.node_index("error-drop") == names.index("error-drop")
    assert e.errors[e.error_base["error-drop"] + 1][:2] == ("error-drop", "bad-next")


def test_unknown_next_node_names_node_and_suggests(engine_factory):
    e = engine_factory([passthrough("ip4-input", "ip4-lokup"), passthrough("ip4-lookup", "null")])
    with pytest.raises(GraphError) as ei:
        e.build()
    msg = str(ei.value)
    assert "'ip4-input'" in msg and "'ip4-lokup'" in msg
    assert "did you mean 'ip4-lookup'" in msg
    assert e.main is None                    # nothing half-built


def test_unknown_next_node_without_close_match(engine_factory):
    e = engine_factory([passthrough("a", "zzzzzzzzzz")])
    with pytest.raises(GraphError) as ei:
        e.build()
    assert "'zzzzzzzzzz' is not in the graph" in str(ei.value)
    assert "did you mean" not in str(ei.value)


def test_graph_error_is_a_value_error():
    assert issubclass(GraphError, ValueError)


def test_duplicate_node_name():
    with pytest.raises(GraphError, match="duplicate node name 'a'"):
        graphnet.Engine([passthrough("a", "null"), passthrough("a", "null")])
    with pytest.raises(GraphError, match="duplicate node name 'null'"):
        graphnet.Engine([passthrough("null", "error-drop")])        # clashes with a builtin


def test_bad_type(engine_factory):
    e = engine_factory([Node("weird", type="output", fn=PASSTHROUGH_FN)])
    with pytest.raises(GraphError, match=r"node 'weird': type 'output' is not one of input, internal, process"):
        e.build()


def test_bad_state(engine_factory):
    e = engine_factory([Node("in", type="input", state="sleeping", fn=PASSTHROUGH_FN)])
    with pytest.raises(GraphError, match=r"node 'in': state 'sleeping' is not one of polling, interrupt, disabled"):
        e.build()


def test_bad_severity(engine_factory):
    e = engine_factory([Node("x", fn=PASSTHROUGH_FN, errors=[("oops", "fatal", "bad")])])
    with pytest.raises(GraphError, match=r"node 'x': error 'oops' has severity 'fatal'; use one of info, warn, error"):
        e.build()


def test_node_without_implementation(engine_factory):
    e = engine_factory([Node("empty")])
    with pytest.raises(GraphError, match="'empty' has neither"):
        e.build()


def test_not_a_node():
    with pytest.raises(GraphError, match="not a node registration"):
        graphnet.Engine([42])


def test_attach_to_unknown_parent(engine_factory):
    e = engine_factory([Node("child", fn=PASSTHROUGH_FN, attach_to=(("no-parent", 17),))])
    with pytest.raises(GraphError, match="'child' attaches to 'no-parent'"):
        e.build()


def test_attach_to_adds_an_arc_and_calls_parent(engine_factory):
    attached = []
    parent = Node("parent", fn=PASSTHROUGH_FN, next_nodes=("null",),
                  on_attach=lambda eng, key, nxt: attached.append((key, nxt)))
    kid = Node("kid", fn=PASSTHROUGH_FN, next_nodes=("null",), attach_to=(("parent", 17),))
    e = engine_factory([parent, kid]).build()
    assert e.next_names["parent"] == ["null", "kid"]
    assert attached == [(17, 1)]
    assert e.next_index("parent", "kid") == 1


def test_node_index_for_unknown_name(engine_factory):
    e = engine_factory([passthrough("ip4-input", "null")]).build()
    i = e.node_index("ip4-input")
    assert e.nodes[i].name == "ip4-input"
    with pytest.raises(KeyError, match="no node named 'ip4-inptu'.*did you mean 'ip4-input'"):
        e.node_index("ip4-inptu")
    with pytest.raises(KeyError, match="no node named 'qqq'"):
        e.node_index("qqq")


def test_cannot_add_after_build(engine_factory):
    e = engine_factory([]).build()
    with pytest.raises(GraphError, match="already built"):
        e.add(passthrough("late", "null"))


def test_build_is_idempotent(engine_factory):
    e = engine_factory([passthrough("a", "null")])
    m = e.build().main
    assert e.build().main is m


def test_arcs_resolve_in_order(engine_factory):
    e = engine_factory(chain(3, prefix="hop", last="null")).build()
    for i in range(3):
        nxt = f"hop-{i + 1}" if i < 2 else "null"
        assert e.next_names[f"hop-{i}"] == [nxt]
        assert e.next_index(f"hop-{i}", nxt) == 0
        assert e.next_index(f"hop-{i}", "error-drop") == 1


def test_device_objects_expand_to_nodes(engine_factory):
    pg = PacketGenerator(name="gen", next_node="sink")
    cap = Capture(name="sink")
    e = engine_factory([[pg], (cap,)]).build()   # nested iterables are flattened
    assert e.nodes[e.node_index("gen")].type == "input"
    assert e.nodes[e.node_index("sink")].type == "internal"


def test_engine_context_manager():
    with graphnet.Engine([passthrough("a", "null")], buffers=64) as e:
        assert e.main is not None
        e.run_until_idle()
    assert not e.running
    assert e.buffer_stats()["in_use"] == 0


def test_teardown_and_close_hooks_run(engine_factory):
    done = []
    n = Node("x", fn=PASSTHROUGH_FN, next_nodes=("null",), teardown=lambda eng, i: done.append(("teardown", i)))
    e = engine_factory([n]).build()
    e.on_close.append(lambda: done.append("closed"))
    e.close()
    assert done == ["closed", ("teardown", e.node_index("x"))]


def test_leak_check_catches_a_leak():
    from graphnet.testing import LeakError, check_engine_clean
    e = graphnet.Engine([], buffers=64).build()     # not engine_factory: it would fail at teardown
    held = e.main.cache.alloc(3)
    with pytest.raises(LeakError, match="3 buffers leaked"):
        check_engine_clean(e)
    e.main.cache.free(held)
    check_engine_clean(e)
    e.main.cache.free(held[:1])              # a double free is reported too
    with pytest.raises(LeakError, match="1 double frees"):
        check_engine_clean(e)
    e.close()


def test_next_alternatives_pick_the_first_present(engine_factory):
    a = passthrough("a", next_node=("missing-node", "capture"))
    b = passthrough("b", next_node=("capture", "null"))
    e = engine_factory([a, b, Capture()]).build()
    assert e.next_names["a"] == ["capture"] and e.next_names["b"] == ["capture"]
    with pytest.raises(GraphError, match="none of the next nodes 'x', 'y'"):
        engine_factory([passthrough("c", next_node=("x", "y"))]).build()
