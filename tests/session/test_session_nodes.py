"""session-input and session-queue in an engine: one interrupt for the
first pending worker, one batch per worker, coalesced rx events, a full
queue backed off and nothing lost, app messages (tx, close, bad ones)."""
import struct
import time

import pytest

from graphnet.vlib.engine import Engine
from graphnet.nodes import session_input, session_queue
from graphnet.session.application import session_manager
from graphnet.session.session import PROTOS, ip_int, parse_msgs
from graphnet.testing.helpers import app_msg
from graphnet.session.mock_transport import MockTransport

SRV, CLI = ip_int("10.0.0.1"), ip_int("10.0.0.2")
APP_MSG_TX, APP_MSG_CLOSE = 64, 65


@pytest.fixture
def env():
    eng = Engine([session_input.NODES, session_queue.NODES])
    eng.build()
    mgr = session_manager(eng)
    mt = mgr.transports[PROTOS["test"]] = MockTransport(mgr.layer)
    yield eng, mgr, mt
    eng.close()


def accept_n(mt, lh, n, port0=6000):
    conns = []
    for i in range(n):
        c = mt.new_connection(SRV, 80, CLI, port0 + i)
        assert mt.accept(c, lh) == 0
        conns.append(c)
    return conns


def test_one_interrupt_one_batch_per_worker(env):
    eng, mgr, mt = env
    apps = [mgr.attach(f"a{i}") for i in range(3)]
    eng.run_until_idle()
    lhs = [a.workers[0].listen(f"test://0.0.0.0/{80 + i}") for i, a in enumerate(apps)]
    for a in apps:
        a.workers[0].mq.dequeue_batch()              # the bound replies
    irq0 = mgr.layer.stats()["interrupts"]
    for i, lh in enumerate(lhs):
        for k in range(10):
            c = mt.new_connection(SRV, 80 + i, CLI, 7000 + k)
            assert mt.accept(c, lh) == 0
    assert mgr.layer.stats()["interrupts"] == irq0 + 1      # only the first pending worker raised it
    eng.run_until_idle()
    for a in apps:
        msgs = parse_msgs(b"".join(a.workers[0].mq.dequeue_batch()))
        assert [m["event"] for m in msgs] == ["accepted"] * 10
        assert a.workers[0].mq.stats()["locks"] == 2       # the bound reply, then one batch
    assert eng.error_count("session-input", "events") == 30


def test_32_datagrams_one_rx_event(env):
    eng, mgr, mt = env
    app = mgr.attach("srv")
    w = app.workers[0]
    lh = w.listen("test://0.0.0.0/80")
    (c,) = accept_n(mt, lh, 1)
    eng.run_until_idle()
    w.mq.dequeue_batch()
    for _ in range(32):
        mt.rx(c, b"d" * 100)
    eng.run_until_idle()
    msgs = parse_msgs(b"".join(w.mq.dequeue_batch()))
    assert [m["event"] for m in msgs] == ["rx"]
    assert mgr.layer.stats()["coalesced"] == 31
    from graphnet.session.show import show_session_input
    assert "rx events coalesced" in show_session_input(eng)


def test_full_queue_backs_off_and_loses_nothing(env):
    eng, mgr, mt = env
    app = mgr.attach("slow", mq_slots=4)
    w = app.workers[0]
    lh = w.listen("test://0.0.0.0/80")
    w.mq.dequeue_batch()
    fast = mgr.attach("fast").workers[0]
    lh2 = fast.listen("test://0.0.0.0/81")
    fast.mq.dequeue_batch()
    accept_n(mt, lh, 20)
    eng.run(0.05)
    assert len(w.mq) == 4
    assert eng.error_count("session-input", "queue-full") >= 1
    # the engine goes on serving the others while the slow app's queue stays full
    for i in range(5):
        c = mt.new_connection(SRV, 81, CLI, 9000 + i)
        assert mt.accept(c, lh2) == 0
    eng.run(0.05)
    assert [m["event"] for m in parse_msgs(b"".join(fast.mq.dequeue_batch()))] == ["accepted"] * 5
    assert len(w.mq) == 4
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 20 and time.monotonic() < deadline:
        got += w.mq.dequeue_batch()
        eng.run(0.01)
    assert len(got) == 20
    assert {m["event"] for m in parse_msgs(b"".join(got))} == {"accepted"}


def test_app_messages_tx_close_and_refused(env):
    eng, mgr, mt = env
    app = mgr.attach("srv")
    w = app.workers[0]
    lh = w.listen("test://0.0.0.0/80")
    (c1, c2) = accept_n(mt, lh, 2)
    eng.run_until_idle()
    acc = [m for m in parse_msgs(b"".join(w.mq.dequeue_batch())) if m["event"] == "accepted"]
    h1, h2 = acc[0]["handle"], acc[1]["handle"]
    mgr.layer.accept_reply(h1)
    mgr.layer.accept_reply(h2)
    mt.clear_calls()
    mgr.layer.fifo(h1, "tx").enqueue(b"payload")
    q = mgr.engine_mq
    assert q.enqueue_batch([app_msg(type=APP_MSG_TX, handle=h1, wrk_index=w.index),
                            app_msg(type=APP_MSG_CLOSE, handle=h2, wrk_index=w.index),
                            app_msg(type=99, handle=h1, wrk_index=w.index),              # unknown type
                            app_msg(type=APP_MSG_TX, handle=h1 + 1000, wrk_index=w.index)]) == 4
    eng.run(0.05)                                   # woken by the queue's eventfd
    assert mt.calls().count(("push", c1)) == 1
    assert mgr.layer.fifo(h1, "tx").max_dequeue == 0 and not mgr.layer.fifo(h1, "tx").has_event
    assert ("close", c2) in mt.calls()
    assert eng.error_count("session-queue", "bad-msg") == 2
    errs = [m for m in parse_msgs(b"".join(w.mq.dequeue_batch())) if m["event"] == "error"]
    assert sorted(m["retval"] for m in errs) == [APP_MSG_TX, 99]


def test_another_workers_session_is_refused(env):
    eng, mgr, mt = env
    a, b = mgr.attach("a"), mgr.attach("b")
    lh = a.workers[0].listen("test://0.0.0.0/80")
    (c,) = accept_n(mt, lh, 1)
    eng.run_until_idle()
    h = [m for m in parse_msgs(b"".join(a.workers[0].mq.dequeue_batch())) if m["event"] == "accepted"][0]["handle"]
    mt.clear_calls()
    mgr.engine_mq.enqueue(app_msg(type=APP_MSG_CLOSE, handle=h, wrk_index=b.workers[0].index))
    eng.run(0.05)
    assert mt.calls() == []
    assert mgr.layer.session(h)["state"] == "ACCEPTING"
    assert eng.error_count("session-queue", "bad-msg") == 1


def _one_accepted_session(env):
    """App "srv" listening on test://0.0.0.0/80 with one connection
    accepted and its accept answered, the mock transport's calls cleared:
    (worker, the transport's connection, the accepted event)."""
    eng, mgr, mt = env
    w = mgr.attach("srv").workers[0]
    lh = w.listen("test://0.0.0.0/80")
    (c1,) = accept_n(mt, lh, 1)
    eng.run_until_idle()
    (acc,) = [m for m in parse_msgs(b"".join(w.mq.dequeue_batch())) if m["event"] == "accepted"]
    mgr.layer.accept_reply(acc["handle"])
    mt.clear_calls()
    return w, c1, acc


def test_rx_done_runs_the_transports_push(env):
    """The app's "I read" (RX_DONE) puts the session on the tx ring: its
    transport's push runs (TCP sends its window update there)."""
    eng, mgr, mt = env
    w, c1, acc = _one_accepted_session(env)
    assert mgr.engine_mq.enqueue(app_msg(type=68, handle=acc["handle"], wrk_index=w.index))     # GN_APP_MSG_RX_DONE
    eng.run(0.05)
    assert mt.calls().count(("push", c1)) == 1
    assert eng.error_count("session-queue", "bad-msg") == 0


def test_queue_signal_read_once_epoll_reports_it(env):
    """session-queue reads the queue's eventfd only when epoll reported it
    (no read() per run): a message whose signal comes while the node runs
    for another reason is still handled, and the signal is read by a
    later run, so the loop does not stay awake on a readable eventfd."""
    import select
    eng, mgr, mt = env
    w, c1, acc = _one_accepted_session(env)
    q = mgr.engine_mq
    assert q.enqueue(app_msg(type=68, handle=acc["handle"], wrk_index=w.index))     # GN_APP_MSG_RX_DONE
    assert select.select([q.fd], [], [], 0)[0] == [q.fd]
    eng.set_interrupt_pending("session-queue")                       # raised without epoll
    eng.run(0.05)
    assert mt.calls().count(("push", c1)) == 1
    assert select.select([q.fd], [], [], 0)[0] == []                 # read once epoll reported it
