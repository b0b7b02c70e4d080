"""Cut-through sessions: two apps of one engine share fifos, the events
carry both peers' queues, data never enters the graph, close and reset
reach the peer, the fifos are freed with the second session."""
import pytest

from graphnet.vlib.engine import Engine
from graphnet.nodes import session_input, session_queue
from graphnet.session.application import session_manager
from graphnet.session.session import SessionError, parse_msgs


@pytest.fixture
def pair():
    eng = Engine([session_input.NODES, session_queue.NODES])
    eng.build()
    mgr = session_manager(eng)
    srv = mgr.attach("srv", scope="local")
    cli = mgr.attach("cli", scope="local")
    srv.workers[0].listen("tcp://0.0.0.0/5000")
    srv.workers[0].mq.dequeue_batch()
    yield eng, mgr, srv.workers[0], cli.workers[0]
    eng.close()


def events(w):
    return parse_msgs(b"".join(w.mq.dequeue_batch()))


def connect(eng, mgr, s, c):
    c.connect("tcp://127.0.0.1/5000", opaque=42)
    eng.run_until_idle()
    (acc,) = events(s)
    (con,) = events(c)
    return acc, con


def test_connect_shares_fifos_and_carries_peer_queues(pair):
    eng, mgr, s, c = pair
    acc, con = connect(eng, mgr, s, c)
    assert acc["event"] == "accepted" and con["event"] == "connected" and con["retval"] == 0
    assert con["opaque"] == 42
    assert con["rx_fifo"] == acc["tx_fifo"] and con["tx_fifo"] == acc["rx_fifo"]
    assert acc["peer_mq"] == c.mq.offset and con["peer_mq"] == s.mq.offset
    assert con["segment_index"] == acc["segment_index"] == s.app.segment_index
    assert "ct" in mgr.layer.session(con["handle"])["flags"]
    from graphnet.session.show import show_session
    assert "ct " in show_session(eng)


def test_data_goes_to_the_peer_without_the_graph(pair):
    eng, mgr, s, c = pair
    acc, con = connect(eng, mgr, s, c)
    mgr.layer.accept_reply(acc["handle"])
    tx = mgr.layer.fifo(con["handle"], "tx")
    assert tx.enqueue(b"hello through shared memory") == 27
    assert tx.set_event()                       # the writer raises the peer's event once
    mgr.layer.tx_schedule(con["handle"])        # the app's tx event
    eng.run_until_idle()
    (ev,) = events(s)
    assert ev["event"] == "rx" and ev["handle"] == acc["handle"]
    rx = mgr.layer.fifo(acc["handle"], "rx")
    assert rx.dequeue(100) == b"hello through shared memory"
    rx.unset_event()
    assert eng.buffer_stats()["in_use"] == 0
    assert eng.error_count("session-queue", "tx-requeued") == 0


@pytest.mark.parametrize("how,peer_event", [("close", "disconnected"), ("reset", "reset")])
def test_close_or_reset_reaches_the_peer_and_frees_everything(pair, how, peer_event):
    eng, mgr, s, c = pair
    free0 = s.app.segment.stats()["bytes_free"]
    acc, con = connect(eng, mgr, s, c)
    mgr.layer.accept_reply(acc["handle"])
    getattr(mgr.layer, how)(con["handle"])
    eng.run_until_idle()
    assert [e["event"] for e in events(s)] == [peer_event]
    assert [e["event"] for e in events(c)] == ["cleanup", "cleanup"]
    assert mgr.layer.session(con["handle"]) is None
    mgr.layer.close(acc["handle"])             # the server answers
    eng.run_until_idle()
    assert mgr.layer.session(acc["handle"]) is None
    assert s.app.segment.stats()["bytes_free"] == free0


def test_no_local_listener_is_refused_and_global_scope_does_not_cut_through(pair):
    eng, mgr, s, c = pair
    with pytest.raises(SessionError, match="refused"):
        c.connect("tcp://127.0.0.1/5001")
    g = mgr.attach("global-client")
    with pytest.raises(SessionError, match="no transport"):
        g.workers[0].connect("tcp://127.0.0.1/5000")    # global scope: TCP, not there yet
