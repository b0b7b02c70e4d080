"""Trace records of the buffer-less session nodes (vlib's gn_trace_event):
``trace add session-input|session-queue <n>`` records events, app messages
and tx pushes with session, app worker and fifo levels; ``show trace``
lists them as events beside the packets."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet.apps.echo import start_echo_server
from graphnet.cli.registry import execute
from graphnet.nodes import session_host
from graphnet.testing.ip4 import HostBench, mac_of

PEER = "02:00:00:00:aa:01"


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"], extra_nodes=(session_host.NODES,))
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    yield b
    b.check_accounting()


def dgrams(n, size=100):
    return [Ether(src=PEER, dst=mac_of(0)) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=4000, dport=1234)
            / Raw(bytes(size)) for _ in range(n)]


def test_session_input_traces_each_event_it_flushes(bench):
    start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    bench.out("if0", dgrams(1))                         # nothing traced before trace add
    assert execute(bench.engine, "show trace") == "No packets in trace buffer"
    execute(bench.engine, "trace add session-input 2")
    bench.out("if0", dgrams(3))                         # 3 datagrams, one rx event (coalesced)
    text = execute(bench.engine, "show trace")
    assert text.count("Event ") == 1 and "Packet" not in text
    assert "session-input" in text
    assert "event rx session 0x0 to app 'echo-server udp://0.0.0.0/1234' worker 0" in text
    assert "rx fifo 348 B, tx fifo 0 B" in text         # 3 x (16-byte header + 100 bytes) readable
    bench.out("if0", dgrams(1))
    bench.out("if0", dgrams(1))                         # the count (2) is spent after this one
    assert execute(bench.engine, "show trace").count("Event ") == 2


def test_session_queue_traces_pushes_and_the_packets_they_send(bench):
    start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    execute(bench.engine, "trace add session-queue 10")
    bench.out("if0", dgrams(2, size=40))
    text = execute(bench.engine, "show trace")
    assert "tx push session 0x0: 2 sent, rx fifo 0 B, tx fifo 0 B left" in text
    assert text.count("Packet ") == 2                    # the two echoes, traced on to the interface
    assert "10.0.0.1 -> 10.0.0.2" in text or "src 10.0.0.1" in text
    import json
    groups = json.loads(execute(bench.engine, "show trace --json"))
    assert any(r["node"] == "session-queue" and "tx push" in r["text"] for g in groups for r in g)


def test_session_queue_traces_a_refused_app_message(bench):
    from graphnet.session.application import session_manager
    from graphnet.testing.helpers import app_msg
    mgr = session_manager(bench.engine)
    app = bench.engine.call(lambda: mgr.attach("a"))
    execute(bench.engine, "trace add session-queue 1")
    mgr.engine_mq.enqueue(app_msg(type=65, handle=0x77, wrk_index=app.workers[0].index))    # close of no session
    bench.run(0.05)
    bench.run()
    assert "app msg close session 0x77 from app 'a' worker 0 (index 0), refused" in execute(bench.engine, "show trace")
