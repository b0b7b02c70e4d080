"""Python nodes next to Cython nodes: frames pass unchanged and in order,
zero-copy edits, exceptions become python-exception drops, frame.drop,
bad return values, invalid next indices."""
import logging

import pytest

import graphnet
from graphnet import GraphError, PythonNode, python_node
from graphnet.nodes.passthrough import passthrough
from graphnet.testing import udp_packet, udp_packets


class Recorder(PythonNode):
    """Sees every frame, remembers its packets, passes them on."""
    name = "py-rec"
    next_nodes = ["capture"]

    def __init__(self):
        self.frames = []

    def process(self, frame):
        self.frames.append([bytes(p) for p in frame.packets()])
        assert len(frame.buffer_indices) == len(frame) == len(frame.nexts)
        return 0


def test_cython_and_python_nodes_in_one_graph(pg_capture):
    rec = Recorder()
    t = pg_capture(passthrough("cy-pass", "py-rec"), rec, first="cy-pass")
    pkts = udp_packets(600)
    got = t.send_bytes(pkts, count=600)
    assert got == [bytes(p) for p in pkts]                    # unchanged, in order
    assert [len(f) for f in rec.frames] == [256, 256, 88]     # whole frames, not packets
    assert sum(rec.frames, []) == got
    e = t.engine
    c = e.main.node_counters()
    for name in ("cy-pass", "py-rec", "capture"):
        assert c[e.node_index(name)]["vectors"] == 600
        assert c[e.node_index(name)]["calls"] == 3


def test_python_node_edits_packet_in_place(pg_capture):
    @python_node("py-ttl", next_nodes=["capture"])
    def dec_ttl(frame):
        for i in range(len(frame)):
            p = frame.packet(i)                 # a writable view of the buffer itself
            p[22] -= 1                          # IPv4 TTL
            p[14 + 20 + 8:14 + 20 + 8 + 3] = b"ABC"
        return 0

    t = pg_capture(dec_ttl, first="py-ttl")
    got = t.send([udp_packet(ttl=64, payload=b"xyz-payload")] * 3, count=3)
    assert len(got) == 3
    for p in got:
        assert p["IP"].ttl == 63
        assert bytes(p["UDP"].payload) == b"ABC-payload"


def test_frame_view_accessors(pg_capture):
    seen = {}

    @python_node("py-look", next_nodes=["capture"])
    def look(frame):
        seen["len"] = len(frame)
        seen["lengths"] = [frame.length(i) for i in range(len(frame))]
        seen["rx"] = {frame.rx_sw_if_index(i) for i in range(len(frame))}
        seen["nexts"] = list(frame.nexts)
        with pytest.raises(IndexError):
            frame.packet(len(frame))
        seen["view"] = frame
        return [0] * len(frame)

    t = pg_capture(look, first="py-look")
    pkts = [udp_packet(payload=b"a" * k) for k in (1, 10, 100)]
    got = t.send_bytes(pkts, count=3, sw_if_index=7)
    assert got == [bytes(p) for p in pkts]
    assert seen["len"] == 3 and seen["lengths"] == [len(bytes(p)) for p in pkts]
    assert seen["rx"] == {7} and seen["nexts"] == [0, 0, 0]
    with pytest.raises(RuntimeError, match="only valid inside"):
        len(seen["view"])                       # a view kept after process() is dead


def test_python_node_exception_drops_frame_and_engine_runs_on(pg_capture, caplog):
    calls = []

    @python_node("py-flaky", next_nodes=["capture"])
    def flaky(frame):
        calls.append(len(frame))
        if len(calls) == 1:
            raise RuntimeError("first frame explodes")
        return 0

    t = pg_capture(flaky, first="py-flaky")
    with caplog.at_level(logging.ERROR):
        got = t.send(udp_packets(10), count=10)
    assert got == []
    assert t.engine.error_count("py-flaky", "python-exception") == 10
    assert "first frame explodes" in caplog.text
    got = t.send(udp_packets(5), count=5)       # the engine runs on
    assert len(got) == 5
    assert t.engine.error_count("py-flaky", "python-exception") == 10
    assert t.engine.error_count("error-drop", "bad-next") == 0


def test_exception_after_partial_edits_still_drops_all(pg_capture):
    @python_node("py-half", next_nodes=["capture"])
    def half(frame):
        frame.nexts[0] = 0
        frame.drop(1)
        raise ValueError("midway")

    t = pg_capture(half, first="py-half")
    assert t.send(udp_packets(4), count=4) == []
    assert t.engine.error_count("py-half", "python-exception") == 4
    assert t.engine.error_count("py-half", "none") == 0


def test_frame_drop_with_symbol(pg_capture):
    @python_node("py-filter", next_nodes=["capture"],
                 errors=[("odd", "warn", "odd packet dropped"), ("big", "error", "too big")])
    def keep_even(frame):
        for i in range(len(frame)):
            if i % 2:
                frame.drop(i, "odd")
        return None                             # nexts filled in place

    t = pg_capture(keep_even, first="py-filter")
    pkts = udp_packets(10)
    got = t.send_bytes(pkts, count=10)
    assert got == [bytes(p) for p in pkts[0::2]]
    e = t.engine
    assert e.error_count("py-filter", "odd") == 5
    assert e.error_count("py-filter", "big") == 0
    assert e.main.node_counters()[e.node_index("error-drop")]["vectors"] == 5


def test_frame_drop_unknown_symbol_is_an_exception(pg_capture):
    @python_node("py-typo", next_nodes=["capture"])
    def typo(frame):
        frame.drop(0, "no-such-error")

    t = pg_capture(typo, first="py-typo")
    assert t.send(udp_packets(3), count=3) == []
    assert t.engine.error_count("py-typo", "python-exception") == 3


def test_wrong_length_list_is_an_exception(pg_capture):
    @python_node("py-short", next_nodes=["capture"])
    def short(frame):
        return [0] * (len(frame) - 1)

    t = pg_capture(short, first="py-short")
    assert t.send(udp_packets(7), count=7) == []
    assert t.engine.error_count("py-short", "python-exception") == 7


@pytest.mark.parametrize("result", ["capture", 1.5, object(), -1, 70000])
def test_bad_return_values_are_exceptions(pg_capture, result):
    @python_node("py-bad", next_nodes=["capture"])
    def bad(frame):
        return result

    t = pg_capture(bad, first="py-bad")
    assert t.send(udp_packets(3), count=3) == []
    assert t.engine.error_count("py-bad", "python-exception") == 3


def test_per_packet_next_list(pg_capture):
    @python_node("py-split", next_nodes=["capture", "null"])
    def split(frame):
        return [0 if frame.packet(i)[-1] % 2 == 0 else 1 for i in range(len(frame))]

    t = pg_capture(split, first="py-split")
    pkts = [udp_packet(payload=bytes([k])) for k in range(20)]
    got = t.send_bytes(pkts, count=20)
    assert got == [bytes(p) for p in pkts if bytes(p)[-1] % 2 == 0]
    e = t.engine
    assert e.main.node_counters()[e.node_index("null")]["vectors"] == 10


def test_invalid_next_index_counted_as_bad_next(pg_capture):
    @python_node("py-wild", next_nodes=["capture"])
    def wild(frame):
        # arc 0 is capture, arc 1 the implicit error-drop; 2 and 9 do not exist
        return [0, 2, 9, 1, 0][:len(frame)]

    t = pg_capture(wild, first="py-wild")
    got = t.send(udp_packets(5), count=5)
    assert len(got) == 2
    e = t.engine
    assert e.error_count("error-drop", "bad-next") == 2
    assert e.main.node_counters()[e.node_index("error-drop")]["vectors"] == 3
    # the packet sent to arc 1 on purpose carries no error: counted under row 0
    assert e.main.error_counters()[0] == 1
    assert "invalid next index" in e.show("errors")


def test_next_index_helper(pg_capture):
    t = pg_capture(passthrough("cy-pass", "capture"), first="cy-pass")
    e = t.engine
    assert e.next_index("cy-pass", "capture") == 0
    assert e.next_index("cy-pass", "error-drop") == 1
    assert e.next_index("pg-input", "cy-pass") == 0


def test_python_input_node_is_rejected():
    # regression: a Python node of type input was called with no frame and
    # crashed the process; it is now refused when the graph is assembled
    class PyInput(PythonNode):
        name = "py-in"
        type = "input"
        next_nodes = ["null"]

        def process(self, frame):
            return 0

    with pytest.raises(GraphError, match="py-in.*internal"):
        graphnet.Engine([PyInput()])


def test_python_node_needs_a_name():
    class Nameless(PythonNode):
        def process(self, frame):
            return 0

    with pytest.raises(GraphError, match="no name"):
        graphnet.Engine([Nameless()])


def test_python_node_keeps_its_own_error_rows(engine_factory):
    @python_node("py-x", next_nodes=["null"], errors=[("none", "info", "ok"), ("mine", "warn", "my error")])
    def x(frame):
        return 0

    e = engine_factory([x]).build()
    table = [row[0] for row in e.nodes[e.node_index("py-x")].error_table()]
    assert table == ["none", "mine", "python-exception"]
