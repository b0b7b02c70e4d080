"""UDP sessions through pg and the IPv4 host graph: the builtin echo server,
coalesced rx events, a full rx fifo, connected sessions, the CLI."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet.nodes import session_input, session_queue
from graphnet.transport import udp as udp_transport
from graphnet.apps.echo import start_echo_server
from graphnet.session.application import session_manager
from graphnet.session.session import ip_int, parse_msgs
from graphnet.transport.udp import pack_dgram, unpack_dgrams
from graphnet.testing.ip4 import HostBench, mac_of

PEER = "02:00:00:00:aa:01"
IF0 = mac_of(0)
SESSION_NODES = (session_input.NODES, session_queue.NODES, udp_transport.NODES)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"], extra_nodes=SESSION_NODES)
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    yield b
    b.check_accounting()


def dgram(payload, dport=1234, sport=4000):
    return Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=sport, dport=dport) / Raw(payload)


def test_echo_server_answers_each_datagram_byte_exact(bench):
    app = start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    payloads = [b"x", b"hello", bytes(range(256)) * 5]
    out = bench.out("if0", [dgram(p, sport=4000 + i) for i, p in enumerate(payloads)])
    assert len(out) == 3
    got = {r[UDP].dport: bytes(r[UDP].payload) for r in out}
    assert got == {4000 + i: p for i, p in enumerate(payloads)}
    for r in out:
        assert (r[IP].src, r[IP].dst, r[UDP].sport) == ("10.0.0.1", "10.0.0.2", 1234)
        q = IP(bytes(r[IP]))
        del q.chksum, q[UDP].chksum
        assert bytes(IP(bytes(q))) == bytes(r[IP])            # both checksums right
    assert app.echo.stats()["datagrams"] == 3


def test_32_datagrams_in_one_frame_make_one_rx_event(bench):
    app = start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    out = bench.out("if0", [dgram(b"%d" % i, sport=5000) for i in range(32)])
    assert sorted(bytes(r[UDP].payload) for r in out) == sorted(b"%d" % i for i in range(32))
    assert app.echo.stats()["rx_events"] == 1
    assert bench.engine.error_count("udp4-session", "enqueued") == 32
    assert session_manager(bench.engine).layer.stats()["coalesced"] == 31


def test_large_datagram_in_a_chain_is_echoed(bench):
    start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    payload = bytes(range(256)) * 20                             # 5120 bytes: fragments, reassembled
    frags = __import__("scapy.layers.inet", fromlist=["fragment"]).fragment(
        IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=4000, dport=1234) / Raw(payload), fragsize=1400)
    out = bench.out("if0", [Ether(src=PEER, dst=IF0) / f for f in frags])
    from scapy.layers.inet import defragment
    whole = defragment([r[IP] for r in out])
    assert len(whole) == 1 and bytes(whole[0][UDP].payload) == payload


def test_app_that_stops_reading_drops_and_counts(engine_factory):
    b = HostBench(engine_factory, ["if0"], extra_nodes=SESSION_NODES)
    b.address("if0", "10.0.0.1/24")
    mgr = session_manager(b.engine)
    app = b.engine.call(lambda: mgr.attach("sink", rx_fifo_size=1024))
    w = app.workers[0]
    h = b.engine.call(w.listen, "udp://0.0.0.0/1234")
    b.send("if0", [dgram(b"z" * 200, sport=6000) for _ in range(10)])
    assert b.engine.error_count("udp4-session", "enqueued") == 4     # 4 x (16 + 200) fit in 1024
    assert b.engine.error_count("udp4-session", "rx-fifo-full") == 6
    assert mgr.layer.session(h)["rx_drops"] == 6
    msgs = parse_msgs(b"".join(w.mq.dequeue_batch()))
    assert [m["event"] for m in msgs] == ["bound", "rx"]
    rx = mgr.layer.fifo(h, "rx")
    dgrams = unpack_dgrams(rx.dequeue(rx.max_dequeue))
    assert len(dgrams) == 4
    assert dgrams[0] == (b"z" * 200, (ip_int("10.0.0.2"), 6000), (ip_int("10.0.0.1"), 1234))
    b.check_accounting()


def test_unclaimed_port_still_gets_port_unreachable(bench):
    start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    (r,) = bench.out("if0", [dgram(b"x", dport=999)])
    assert r[IP].proto == 1                                      # ICMP port unreachable
    assert bench.engine.error_count("udp4-input", "no-listener") == 1


def test_connected_session_sends_and_receives(bench):
    mgr = session_manager(bench.engine)
    app = bench.engine.call(lambda: mgr.attach("client"))
    w = app.workers[0]
    bench.engine.call(w.connect, "udp://10.0.0.2/53", 7, ip_int("10.0.0.1"))
    bench.run()
    msgs = [m for m in parse_msgs(b"".join(w.mq.dequeue_batch())) if m["event"] == "connected"]
    assert len(msgs) == 1 and msgs[0]["retval"] == 0 and msgs[0]["opaque"] == 7
    h, lport = msgs[0]["handle"], msgs[0]["lcl_port"]
    assert 49152 <= lport <= 65535
    tx = mgr.layer.fifo(h, "tx")
    tx.enqueue(pack_dgram(b"query", 0, 0))
    bench.engine.call(mgr.layer.tx_schedule, h)
    bench.run()
    (q,) = bench.take()["if0"]
    assert (q[IP].dst, q[UDP].dport, q[UDP].sport, bytes(q[UDP].payload)) == ("10.0.0.2", 53, lport, b"query")
    bench.send("if0", [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=53, dport=lport)
                       / Raw(b"answer")])
    rx = mgr.layer.fifo(h, "rx")
    assert unpack_dgrams(rx.dequeue(rx.max_dequeue))[0][0] == b"answer"


def test_cli_echo_server_and_shows(bench):
    from graphnet.cli.registry import execute, CommandError
    assert "listening" in execute(bench.engine, "test echo server uri udp://0.0.0.0/1234")
    with pytest.raises(CommandError, match="already attached"):
        execute(bench.engine, "test echo server uri udp://0.0.0.0/1234")
    from graphnet.session.session import SessionError
    other = bench.engine.call(lambda: session_manager(bench.engine).attach("other"))
    with pytest.raises(SessionError, match="in use"):
        bench.engine.call(other.workers[0].listen, "udp://0.0.0.0/1234")
    with pytest.raises(CommandError, match="proto://"):
        execute(bench.engine, "test echo server uri udp:/1234")
    bench.out("if0", [dgram(b"ping")])
    text = execute(bench.engine, "show session verbose")
    assert "LISTENING" in text and "0.0.0.0:1234" in text and "echo-server udp://0.0.0.0/1234" in text
    assert "dgram" in text
    assert "echo-server udp://0.0.0.0/1234" in execute(bench.engine, "show app")
    assert "echo-server" in execute(bench.engine, "show app workers")
    assert "(engine)" in execute(bench.engine, "show app mq")
    assert "events delivered" in execute(bench.engine, "show session-input")
    import json
    rows = json.loads(execute(bench.engine, "show session --json"))
    assert [(r["proto"], r["state"], r["lcl"]) for r in rows] == [("udp", "LISTENING", "0.0.0.0:1234")]
    assert json.loads(execute(bench.engine, "show session-input --json"))["delivered"] >= 1
    with pytest.raises(CommandError, match="no session"):
        execute(bench.engine, "clear session 0x99")


def test_cli_without_session_layer_says_so(engine_factory):
    from graphnet.cli.registry import execute, CommandError
    b = HostBench(engine_factory, ["if0"])
    with pytest.raises(CommandError, match="session layer is not in this graph"):
        execute(b.engine, "show session")


def test_startup_file_app(tmp_path):
    from graphnet import config
    text = """
[ip]
enabled = true
[[app]]
type = "echo-server"
uri = "udp://0.0.0.0/1234"
rx_fifo_size = 4096
"""
    cfg = config.loads(text)
    assert cfg.apps[0].uri == "udp://0.0.0.0/1234" and cfg.apps[0].options == {"rx_fifo_size": 4096}
    eng = config.build_engine(cfg)
    try:
        mgr = session_manager(eng)
        assert list(mgr.by_name) == ["echo-server udp://0.0.0.0/1234"]
        assert mgr.app("echo-server udp://0.0.0.0/1234").options.rx_fifo_size == 4096
    finally:
        eng.close()


@pytest.mark.parametrize("body,msg", [
    ('type = "echo-server"\nuri = "udp:/1"', "uri"),
    ('type = "nope"\nuri = "udp://0.0.0.0/1"', "type"),
    ('uri = "udp://0.0.0.0/1"', "needs type and uri"),
    ('type = "echo-server"\nuri = "udp://0.0.0.0/1"\nrx_fifo_size = 1', "rx_fifo_size"),
])
def test_startup_file_bad_app_names_key_and_line(body, msg):
    from graphnet import config
    with pytest.raises(config.ConfigError, match=msg) as e:
        config.loads("[ip]\nenabled = true\n[[app]]\n" + body)
    assert "line" in str(e.value) or "app" in str(e.value)


def test_startup_file_app_needs_ip():
    from graphnet import config
    with pytest.raises(config.ConfigError, match="IPv4 host"):
        config.loads('[[app]]\ntype = "echo-server"\nuri = "udp://0.0.0.0/1"')


def test_buffer_wait_queue_64_buffers_200_sessions(engine_factory):
    """A pool of 64 buffers and 200 sessions with data to send: sessions
    that find no buffer wait in the pool's queue and are woken as buffers
    come back; every datagram goes out, in order per session."""
    b = HostBench(engine_factory, ["if0"], extra_nodes=SESSION_NODES, buffers=64)
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    mgr = session_manager(b.engine)
    app = b.engine.call(lambda: mgr.attach("sender"))
    w = app.workers[0]
    for i in range(200):
        b.engine.call(w.connect, f"udp://10.0.0.2/{9000 + i}", i, ip_int("10.0.0.1"))
    b.run()
    handles = [m["handle"] for m in parse_msgs(b"".join(w.mq.dequeue_batch())) if m["event"] == "connected"]
    assert len(handles) == 200

    def fill():
        for k, h in enumerate(handles):
            tx = mgr.layer.fifo(h, "tx")
            for j in range(3):
                tx.enqueue(pack_dgram(b"s%d-d%d" % (k, j) + b"." * 600, 0, 0))
            mgr.layer.tx_schedule(h)
    b.engine.call(fill)
    b.run()
    out = b.take()["if0"]
    assert len(out) == 600
    by_port = {}
    for r in out:
        by_port.setdefault(r[UDP].dport, []).append(bytes(r[UDP].payload).split(b".")[0])
    assert len(by_port) == 200
    for k in range(200):
        assert by_port[9000 + k] == [b"s%d-d%d" % (k, j) for j in range(3)]
    assert mgr.layer.stats()["buffer_waits"] > 0
    assert all(mgr.layer.fifo(h, "tx").max_dequeue == 0 for h in handles)
    b.check_accounting()


def test_closed_connected_session_releases_its_port(bench):
    """A closed UDP session's port goes back: udp4-input stops delivering it
    (a datagram for it gets port unreachable) and the port can be reused."""
    from graphnet.nodes.udp4 import udp_ports
    from scapy.layers.inet import ICMP
    mgr = session_manager(bench.engine)
    app = bench.engine.call(lambda: mgr.attach("client"))
    w = app.workers[0]
    bench.engine.call(w.connect, "udp://10.0.0.2/53", 0, ip_int("10.0.0.1"))
    bench.run()
    (m,) = [m for m in parse_msgs(b"".join(w.mq.dequeue_batch())) if m["event"] == "connected"]
    lport = m["lcl_port"]
    assert udp_ports(bench.engine)[lport] == "udp4-session"
    bench.engine.call(mgr.layer.close, m["handle"])
    bench.run()
    assert lport not in udp_ports(bench.engine)
    out = bench.out("if0", [dgram(b"late", dport=lport, sport=53)])
    assert len(out) == 1 and out[0][ICMP].type == 3 and out[0][ICMP].code == 3
    assert bench.count("udp4-session", "no-session") == 0
    bench.engine.call(w.connect, "udp://10.0.0.2/53", 0, ip_int("10.0.0.1"))
    bench.run()
    assert list(udp_ports(bench.engine).values()).count("udp4-session") == 1


def test_removed_worker_releases_its_connected_ports(bench):
    from graphnet.nodes.udp4 import udp_ports
    mgr = session_manager(bench.engine)
    app = bench.engine.call(lambda: mgr.attach("client"))
    for _ in range(3):
        bench.engine.call(app.workers[0].connect, "udp://10.0.0.2/53", 0, ip_int("10.0.0.1"))
    bench.run()
    assert list(udp_ports(bench.engine).values()).count("udp4-session") == 3
    bench.engine.call(app.detach)
    bench.run()
    assert "udp4-session" not in udp_ports(bench.engine).values()


def test_udp4_session_traces_the_interface_and_the_ip4_header(bench):
    """udp4-session on the kit: its trace record is the shared
    interface + IPv4 header one, decoded down to the UDP ports."""
    start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    bench.engine.trace_add("pg-input", 5)
    assert len(bench.out("if0", [dgram(b"traced", sport=4321)])) == 1
    text = bench.engine.show("trace")
    part = text[text.index("udp4-session"):]
    assert "10.0.0.2 -> 10.0.0.1" in part and "4321 -> 1234" in part, part
