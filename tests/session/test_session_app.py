"""Applications and app workers: attach options, worker 0, workers added and
removed, a shared listener, detach per worker, the app freed with its last
worker, builtin callbacks batched."""
import pytest

from graphnet.session.application import SessionManager, AppOptions, parse_uri
from graphnet.session.session import SessionError, PROTOS, ip_int, parse_msgs
from graphnet.session.mock_transport import MockTransport

SRV, CLI = ip_int("10.0.0.1"), ip_int("10.0.0.2")


@pytest.fixture
def mgr():
    m = SessionManager(max_sessions=4096)
    m.transports[PROTOS["test"]] = MockTransport(m.layer)
    return m


def test_attach_makes_worker_zero_and_stores_the_name_once(mgr):
    app = mgr.attach("srv", segment_size=1 << 20, rx_fifo_size=1000)
    assert list(app.workers) == [0]
    assert app.options.rx_fifo_size == 1000
    with pytest.raises(SessionError, match="already attached"):
        mgr.attach("srv")
    assert mgr.app("srv") is app


@pytest.mark.parametrize("opts", [dict(rx_fifo_size=10), dict(scope="nowhere"), dict(segment_size=100),
                                  dict(mq_slots=6)])
def test_bad_options_refused_with_a_clear_error(mgr, opts):
    with pytest.raises(ValueError):
        mgr.attach("x", **opts)
    assert "x" not in mgr.by_name


def test_uri_parsing():
    assert parse_uri("udp://0.0.0.0/1234") == (PROTOS["udp"], 0, 1234)
    for bad in ("udp:/0.0.0.0/1", "udp://1.2.3/5", "sctp://1.2.3.4/5", "udp://1.2.3.4/70000"):
        with pytest.raises(ValueError):
            parse_uri(bad)


def test_listen_reply_is_delivered_at_once(mgr):
    app = mgr.attach("srv")
    w = app.workers[0]
    h = w.listen("test://0.0.0.0/80")
    msgs = parse_msgs(b"".join(w.mq.dequeue_batch()))
    assert [(m["event"], m["handle"], m["retval"]) for m in msgs] == [("bound", h, 0)]
    other = mgr.attach("other")
    with pytest.raises(SessionError, match="in use"):
        other.workers[0].listen("test://0.0.0.0/80")
    assert parse_msgs(b"".join(other.workers[0].mq.dequeue_batch()))[0]["retval"] == -1


def test_shared_listener_and_detach_of_one_worker(mgr):
    mt = mgr.transports[PROTOS["test"]]
    app = mgr.attach("srv")
    w0, w1 = app.workers[0], app.add_worker()
    h = w0.listen("test://0.0.0.0/80")
    assert w1.listen("test://0.0.0.0/80") == h
    conns = []
    for i in range(8):
        c = mt.new_connection(SRV, 80, CLI, 6000 + i)
        assert mt.accept(c, h) == 0
        conns.append(c)
    mgr.layer.flush()
    assert len(w0.sessions()) == 4 and len(w1.sessions()) == 4
    mine = set(w1.sessions())
    app.del_worker(1)
    assert set(w0.sessions()).isdisjoint(mine) and len(w0.sessions()) == 4
    for hh in mine:
        assert mgr.layer.session(hh)["state"] == "APP_CLOSED"   # closing; the transport finishes
    assert mgr.layer.listener_workers(h) == [w0.index]
    assert mgr.layer.lookup_listener("test", "1.1.1.1", 80) == h


def test_half_opens_are_per_worker_and_cleaned_with_it(mgr):
    mt = mgr.transports[PROTOS["test"]]
    mt.set_connect_result(1)
    app = mgr.attach("cli")
    w0, w1 = app.workers[0], app.add_worker()
    a = w0.connect("test://10.0.0.1/80")
    b = w1.connect("test://10.0.0.1/80")
    assert w0.half_opens() == [a] and w1.half_opens() == [b]
    app.del_worker(1)
    assert w0.half_opens() == [a]
    assert mgr.layer.session(b) is None


def test_app_freed_with_its_last_worker_and_segment_when_sessions_are_gone(mgr):
    mt = mgr.transports[PROTOS["test"]]
    app = mgr.attach("srv")
    w = app.workers[0]
    h = w.listen("test://0.0.0.0/80")
    c = mt.new_connection(SRV, 80, CLI, 6000)
    mt.accept(c, h)
    mgr.layer.flush()
    seg_index = app.segment_index
    app.del_worker(0)
    assert "srv" not in mgr.by_name and mgr.apps == {}
    assert seg_index in mgr.layer.segments            # a session is still closing
    mt.deleted(c)                                       # the transport finishes
    mgr.layer.run_ctrl()
    mgr.layer.flush()
    assert mgr.collect() == 0
    assert seg_index not in mgr.layer.segments
    assert mgr.layer.stats()["sessions"] == 0
    again = mgr.attach("srv")                           # the name is free again
    assert again.index != app.index


def test_vanished_worker_resets_its_sessions(mgr):
    mt = mgr.transports[PROTOS["test"]]
    app = mgr.attach("srv")
    w = app.workers[0]
    h = w.listen("test://0.0.0.0/80")
    c = mt.new_connection(SRV, 80, CLI, 6000)
    mt.accept(c, h)
    mgr.layer.flush()
    mt.clear_calls()
    app.del_worker(0, vanished=True)
    assert ("reset", c) in mt.calls()
    mt.deleted(c)                                       # the transport's reset completes
    mgr.layer.run_ctrl()
    mgr.layer.flush()
    assert mgr.layer.stats()["sessions"] == 0
    assert mgr.collect() == 0 and mgr.layer.segments == {}


def test_builtin_callback_gets_events_in_batches(mgr):
    batches = []
    mt = mgr.transports[PROTOS["test"]]
    app = mgr.attach("srv", callback=lambda data: batches.append(parse_msgs(data)))
    w = app.workers[0]
    h = w.listen("test://0.0.0.0/80")
    assert [m["event"] for m in batches.pop()] == ["bound"]
    for i in range(5):
        mt.accept(mt.new_connection(SRV, 80, CLI, 6000 + i), h)
    mgr.layer.flush()
    assert len(batches) == 1 and [m["event"] for m in batches[0]] == ["accepted"] * 5
    for m in batches[0]:                                # builtin apps are READY once told
        assert mgr.layer.session(m["handle"])["state"] == "READY"
        assert m["rmt_ip"] == CLI and m["lcl_port"] == 80
