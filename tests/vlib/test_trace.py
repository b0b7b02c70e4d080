"""Packet tracing: `trace add <input> N` marks the next N packets; `show
trace` lists per packet one entry per node visited, in order."""
import re

import pytest

from graphnet import python_node
from graphnet.nodes.passthrough import passthrough
from graphnet.testing import udp_packet, udp_packets
from graphnet.vlib.show import trace_packets

STAMP = r"\d\d:\d\d:\d\d:\d{6}"


def parse_trace(text):
    """[[(node name, entry text), ...] per packet] from `show trace`."""
    packets = []
    for block in re.split(r"^Packet \d+\n", text, flags=re.M)[1:]:
        entries = []
        for m in re.finditer(rf"^{STAMP}: (\S+)\n(.*?)(?=^{STAMP}: |\Z)", block, flags=re.M | re.S):
            entries.append((m.group(1), m.group(2).strip()))
        packets.append(entries)
    return packets


def dumped_bytes(entry):
    """The packet bytes of a default trace record's hex dump."""
    return bytes.fromhex("".join(m.group(1) for m in re.finditer(r"^\s*[0-9a-f]{4}: ([0-9a-f ]+)$", entry, re.M)))


@pytest.fixture
def traced(pg_capture):
    """pg-input -> cy-pass (Cython) -> py-mark (Python) -> capture."""
    @python_node("py-mark", next_nodes=["capture"])
    def mark(frame):
        return 0

    return pg_capture(passthrough("cy-pass", "py-mark"), mark, first="cy-pass")


def test_trace_known_packet(traced):
    e = traced.engine
    pkt = udp_packet(src="192.0.2.1", dst="198.51.100.7", sport=4000, dport=53, payload=b"Q" * 10)
    e.trace_add("pg-input", 1)
    traced.send([pkt], count=1)
    text = e.show("trace")
    assert text.startswith("------------------- Start of thread 0")
    pkts = parse_trace(text)
    assert len(pkts) == 1
    names = [n for n, _ in pkts[0]]
    assert names == ["pg-input", "cy-pass", "py-mark", "capture"]     # every node, in order
    pg_entry = pkts[0][0][1]
    # VPP's pg-input record: the stream, the length, the interface, the packet decoded
    assert pg_entry.startswith(f"stream stream-0, {len(bytes(pkt))} bytes, sw_if_index 0")
    assert "UDP: 192.0.2.1 -> 198.51.100.7" in pg_entry
    assert re.search(r"UDP: 4000 -> 53\n\s+length 18, checksum 0x[0-9a-f]{4} \(ok\)", pg_entry)
    # the default record of the other nodes shows the buffer and its first bytes
    for name, entry in pkts[0][1:]:
        assert f"length {len(bytes(pkt))}" in entry
        assert "0000: " + " ".join(f"{b:02x}" for b in bytes(pkt)[:16]) in entry


def test_only_n_packets_traced(traced):
    e = traced.engine
    e.trace_add("pg-input", 3)
    got = traced.send(udp_packets(20), count=20)
    assert len(got) == 20
    pkts = parse_trace(e.show("trace"))
    assert len(pkts) == 3
    assert all([n for n, _ in p] == ["pg-input", "cy-pass", "py-mark", "capture"] for p in pkts)
    # the first three packets, in order
    for k, p in enumerate(pkts):
        assert dumped_bytes(p[1][1]) == bytes(udp_packets(3)[k])
    counters = e.main.node_counters()[e.node_index("pg-input")]
    assert counters["trace_remaining"] == 0
    traced.send(udp_packets(5), count=5)                    # no more tracing without trace add
    assert len(parse_trace(e.show("trace"))) == 3


def test_trace_spans_calls_and_accumulates(traced):
    e = traced.engine
    e.trace_add("pg-input", 2)
    traced.send(udp_packets(1), count=1)
    assert len(parse_trace(e.show("trace"))) == 1
    traced.send(udp_packets(4), count=4)                    # the second traced packet
    assert len(parse_trace(e.show("trace"))) == 2
    assert e.main.node_counters()[e.node_index("pg-input")]["trace_remaining"] == 0


def test_trace_max(traced):
    e = traced.engine
    e.trace_add("pg-input", 4)
    traced.send(udp_packets(4), count=4)
    assert len(parse_trace(e.show("trace", "max", "2"))) == 2
    assert len(parse_trace(e.show("trace"))) == 4


def test_clear_trace(traced):
    e = traced.engine
    e.trace_add("pg-input", 10)
    traced.send(udp_packets(2), count=2)
    assert len(parse_trace(e.show("trace"))) == 2
    e.clear_trace()
    assert e.show("trace") == "No packets in trace buffer"
    assert e.main.loop_stats()["trace_bytes"] == 0
    # clear also cancels what was still to be traced
    assert e.main.node_counters()[e.node_index("pg-input")]["trace_remaining"] == 0
    traced.send(udp_packets(2), count=2)
    assert e.show("trace") == "No packets in trace buffer"


def test_trace_shows_the_drop(pg_capture):
    @python_node("py-drop", next_nodes=["capture"], errors=[("nope", "warn", "dropped on purpose")])
    def drop_all(frame):
        for i in range(len(frame)):
            frame.drop(i, "nope")

    t = pg_capture(drop_all, first="py-drop")
    t.engine.trace_add("pg-input", 1)
    t.send(udp_packets(3), count=3)
    (pkt,) = parse_trace(t.engine.show("trace"))
    assert [n for n, _ in pkt] == ["pg-input", "py-drop", "error-drop"]
    # regression: the record named the node and severity instead of the error
    assert "error nope (py-drop): dropped on purpose" in pkt[2][1]


def test_untraced_packets_mixed_in_one_frame(traced):
    """Traced and untraced packets share frames; only marked ones record."""
    e = traced.engine
    e.trace_add("pg-input", 1)
    traced.send(udp_packets(256), count=256)
    recs = e.main.trace_records()
    assert len(recs) == 4                                    # 1 packet x 4 nodes
    assert len({h for h, *_ in recs}) == 1
    grouped = trace_packets(e)
    assert [name for _, name, _ in grouped[0]] == ["pg-input", "cy-pass", "py-mark", "capture"]
    times = [t for t, _, _ in grouped[0]]
    assert times == sorted(times)


def test_trace_add_needs_an_input_node(traced):
    with pytest.raises(ValueError, match="trace add takes an input node"):
        traced.engine.trace_add("cy-pass", 1)
    with pytest.raises(KeyError):
        traced.engine.trace_add("no-such-node", 1)


def test_trace_buffer_full_is_reported(pg_capture):
    t = pg_capture(trace_bytes=1024)
    t.engine.trace_add("pg-input", 100)
    t.send(udp_packets(100), count=100)
    lost = t.engine.main.loop_stats()["trace_lost_records"]
    assert lost > 0
    text = t.engine.show("trace")
    assert f"({lost} trace records lost: trace buffer full)" in text
    assert len(t.capture) == 100                            # tracing never drops packets
