"""The builtin apps (graphnet.apps): echo client against the echo server,
the cut-through echo pair, throughput source and sink, over UDP through
the graph (the engine's own address: ip4-lookup -> ip4-local) and over
cut-through stream sessions; started from the API, the CLI and [[app]]."""
import pytest

from graphnet.apps.echo import start_echo_server, start_echo_client, start_echo_pair
from graphnet.apps.throughput import start_sink, start_source
from graphnet.session.application import session_manager
from graphnet.testing.ip4 import HostBench
from graphnet.nodes import session_host


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"], extra_nodes=(session_host.NODES,))
    b.address("if0", "10.0.0.1/24")
    yield b
    b.check_accounting()


def run_until(bench, cond, rounds=200):
    for _ in range(rounds):
        bench.run()
        if cond():
            return
        bench.run(0.01)
    raise AssertionError(f"not done: {[a.builtin.stats() for a in session_manager(bench.engine).apps.values() if hasattr(a, 'builtin')]}")


def test_udp_echo_client_against_echo_server(bench):
    srv = start_echo_server(bench.engine, "udp://0.0.0.0/1234")
    cli = start_echo_client(bench.engine, "udp://10.0.0.1/1234", count=50, size=1300, window=8)
    run_until(bench, lambda: cli.echo.stats()["state"] == "done")
    st = cli.echo.stats()
    assert (st["mode"], st["tx_msgs"], st["rx_msgs"], st["mismatches"]) == ("dgram", 50, 50, 0)
    assert st["rx_bytes"] == 50 * 1300 and st["seconds"] > 0
    assert srv.echo.stats()["datagrams"] == 50
    assert session_manager(bench.engine).layer.stats()["sessions"] == 1      # the listener: the client closed


def test_echo_client_counts_a_corrupted_echo(bench):
    """A server that changes a byte: the client sees the mismatch."""
    from graphnet.transport.udp import pack_dgram, unpack_dgrams
    from graphnet.session.session import parse_msgs
    mgr = session_manager(bench.engine)
    srv = bench.engine.call(lambda: mgr.attach("bad-echo"))
    bench.engine.call(srv.workers[0].listen, "udp://0.0.0.0/1235")
    cli = start_echo_client(bench.engine, "udp://10.0.0.1/1235", count=2, size=100, window=2)
    bench.run()
    (ls,) = [h for h in mgr.layer.handles() if "listener" in mgr.layer.session(h)["flags"]]
    rx, tx = mgr.layer.fifo(ls, "rx"), mgr.layer.fifo(ls, "tx")
    dgrams = unpack_dgrams(rx.dequeue(rx.max_dequeue))
    assert len(dgrams) == 2
    for i, (payload, (rip, rport), (lip, _)) in enumerate(dgrams):
        tx.enqueue(pack_dgram(payload if i == 0 else b"X" + payload[1:], rip, rport, lip))
    bench.engine.call(mgr.layer.tx_schedule, ls)
    run_until(bench, lambda: cli.echo.stats()["state"] == "done")
    assert cli.echo.stats()["mismatches"] == 1
    parse_msgs(b"".join(srv.workers[0].mq.dequeue_batch()))


@pytest.mark.parametrize("rx_fifo,tx_fifo,size,count", [(64 << 10, 64 << 10, 65536, 20), (16384, 4096, 10000, 7)])
def test_cut_through_echo_pair_stream(bench, rx_fifo, tx_fifo, size, count):
    """The pair shares fifos; when the server's tx fifo cannot take what it
    read, it waits for tx room (TX events) instead of dropping."""
    srv, cli = start_echo_pair(bench.engine, "tcp://127.0.0.1/5000", count=count, size=size, window=2,
                               rx_fifo_size=rx_fifo, tx_fifo_size=tx_fifo)
    run_until(bench, lambda: cli.echo.stats()["state"] == "done")
    st = cli.echo.stats()
    assert (st["mode"], st["rx_bytes"], st["mismatches"]) == ("stream", size * count, 0)
    assert srv.echo.stats()["bytes"] == size * count
    if tx_fifo < rx_fifo:
        assert srv.echo.stats()["tx_waits"] > 0
    assert bench.take()["if0"] == []                      # nothing entered the graph
    run_until(bench, lambda: session_manager(bench.engine).layer.stats()["sessions"] == 1)   # both ends gone


def test_throughput_source_to_sink_cut_through(bench):
    sink = start_sink(bench.engine, "tcp://127.0.0.1/9000", scope="local", rx_fifo_size=1 << 16)
    src = start_source(bench.engine, "tcp://127.0.0.1/9000", bytes=3 << 20, scope="local", tx_fifo_size=1 << 16)
    run_until(bench, lambda: src.builtin.stats()["state"] == "done")
    run_until(bench, lambda: sink.builtin.stats()["bytes"] == 3 << 20)
    assert src.builtin.stats()["mode"] == "stream" and sink.builtin.stats()["sessions"] == 1


def test_throughput_source_to_sink_udp(bench):
    sink = start_sink(bench.engine, "udp://0.0.0.0/9001", rx_fifo_size=1 << 20)
    src = start_source(bench.engine, "udp://10.0.0.1/9001", bytes=100_000, size=1000)
    run_until(bench, lambda: src.builtin.stats()["state"] == "done")
    run_until(bench, lambda: sink.builtin.stats()["bytes"] == 100_000)
    assert sink.builtin.stats()["datagrams"] == 100 and src.builtin.stats()["datagrams"] == 100


def test_client_connect_refused_is_reported(bench):
    from graphnet.session.session import SessionError
    with pytest.raises(SessionError, match="refused"):
        start_echo_client(bench.engine, "tcp://127.0.0.1/5999", scope="local")
    assert session_manager(bench.engine).apps == {}           # nothing left attached


def test_cli_starts_the_apps(bench):
    from graphnet.cli.registry import execute, CommandError, UsageError
    assert "listening" in execute(bench.engine, "test echo server uri udp://0.0.0.0/1234")
    out = execute(bench.engine, "test echo client uri udp://10.0.0.1/1234 count 10 size 200 window 4")
    assert "connecting" in out
    run_until(bench, lambda: "done" in execute(bench.engine, "show app echo-client udp://10.0.0.1/1234"))
    text = execute(bench.engine, "show app echo-client udp://10.0.0.1/1234")
    assert "rx_msgs 10" in text and "mismatches 0" in text
    execute(bench.engine, "test echo pair uri tcp://127.0.0.1/5000 count 3 size 1000")
    execute(bench.engine, "test throughput sink uri udp://0.0.0.0/9000")
    execute(bench.engine, "test throughput source uri udp://10.0.0.1/9000 bytes 5000 size 500")
    run_until(bench, lambda: "bytes 5000" in execute(bench.engine, "show app throughput-sink udp://0.0.0.0/9000"))
    with pytest.raises(CommandError, match="count"):
        execute(bench.engine, "test echo client uri udp://10.0.0.1/1234 count 0")
    with pytest.raises(CommandError, match="unknown option"):
        execute(bench.engine, "test throughput source uri udp://10.0.0.1/9000 bites 5")
    with pytest.raises(CommandError, match="source or sink"):
        execute(bench.engine, "test throughput uri udp://10.0.0.1/9000")


def test_startup_file_starts_each_kind():
    from graphnet import config
    text = """
[ip]
enabled = true
[[app]]
type = "throughput-sink"
uri = "udp://0.0.0.0/9000"
[[app]]
type = "echo-pair"
uri = "tcp://127.0.0.1/5000"
count = 4
size = 100
[[app]]
type = "echo-client"
uri = "udp://10.9.9.9/7"
scope = "global"
"""
    cfg = config.loads(text)
    assert [a.kind for a in cfg.apps] == ["throughput-sink", "echo-pair", "echo-client"]
    eng = config.build_engine(cfg)
    try:
        names = set(session_manager(eng).by_name)
        assert {"throughput-sink udp://0.0.0.0/9000", "echo-pair-server tcp://127.0.0.1/5000",
                "echo-pair-client tcp://127.0.0.1/5000", "echo-client udp://10.9.9.9/7"} == names
    finally:
        eng.close()


def test_startup_file_refuses_an_option_the_kind_does_not_take():
    from graphnet import config
    with pytest.raises(config.ConfigError, match="count"):
        config.loads('[ip]\nenabled = true\n[[app]]\ntype = "echo-server"\nuri = "udp://0.0.0.0/1"\ncount = 3')
