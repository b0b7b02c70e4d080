"""The segment manager (issue 14 item 1): an app's segments grow when a
new session's fifos do not fit, up to max_segments (then the allocation
fails and is counted), and an added segment is freed when its last fifo
is gone."""
import pytest

from graphnet.vlib.engine import Engine
from graphnet.nodes import session_input, session_queue
from graphnet.session.application import session_manager, AppOptions
from graphnet.session.session import parse_msgs, SessionError

SMALL = dict(scope="local", segment_size=64 << 10, rx_fifo_size=8 << 10, tx_fifo_size=8 << 10, mq_slots=64)


@pytest.fixture
def pair():
    eng = Engine([session_input.NODES, session_queue.NODES])
    eng.build()
    mgr = session_manager(eng)
    srv = mgr.attach("srv", max_segments=2, **SMALL)
    cli = mgr.attach("cli", **SMALL)
    srv.workers[0].listen("tcp://0.0.0.0/5000")
    yield eng, mgr, srv, cli
    eng.close()


def drain(w):
    return parse_msgs(b"".join(w.mq.dequeue_batch()))


def open_sessions(eng, srv, cli, n):
    """n cut-through connects; the accepted handles (fifos in srv's segments)."""
    out, peers = [], []
    for i in range(n):
        try:
            cli.workers[0].connect("tcp://127.0.0.1/5000", opaque=i)
        except SessionError as e:
            assert "failed (-12)" in str(e)               # ENOMEM: no room for the fifos
            continue
        eng.run_until_idle()
        out += [e["handle"] for e in drain(srv.workers[0]) if e["event"] == "accepted"]
        peers += [e["handle"] for e in drain(cli.workers[0]) if e["event"] == "connected" and e["retval"] == 0]
    return out, peers


def test_a_second_segment_is_added_when_the_first_is_full_and_freed_when_empty(pair):
    eng, mgr, srv, cli = pair
    assert len(srv.segments.segments) == 1
    handles, peers = open_sessions(eng, srv, cli, 5)
    assert len(handles) == 5
    assert len(srv.segments.segments) == 2
    segs = {mgr.layer.session(h)["segment"] for h in handles}
    assert segs == set(srv.segments.segments)          # fifos in both
    assert mgr.layer.stats()["segment_switches"] == 1
    extra = next(i for i in srv.segments.segments if i != srv.segment_index)
    # close every session: the added segment is freed, the first stays
    for h in handles:
        mgr.layer.accept_reply(h)
        mgr.layer.reset(h)
    eng.run_until_idle()
    for h in peers:
        mgr.layer.close(h)
    eng.run_until_idle()
    assert len(srv.segments.segments) == 2              # not before collect()
    assert mgr.layer.stats()["sessions"] == 1           # the listener
    mgr.collect()
    assert list(srv.segments.segments) == [srv.segment_index]
    assert extra not in mgr.layer.segments
    assert srv.segments.n_freed == 1


def test_past_max_segments_the_connect_fails_and_is_counted(pair):
    eng, mgr, srv, cli = pair
    handles, _ = open_sessions(eng, srv, cli, 12)
    assert len(srv.segments.segments) == 2               # max_segments
    assert srv.segments.n_refused >= 1
    assert mgr.layer.stats()["fifo_alloc_fail"] >= 1
    assert 5 <= len(handles) < 12
    # the engine goes on: the sessions that exist still carry data
    rx = mgr.layer.fifo(handles[0], "tx")
    assert rx.enqueue(b"x") == 1


def test_max_segments_is_checked():
    with pytest.raises(ValueError, match="max_segments"):
        AppOptions(max_segments=0).check()
    with pytest.raises(ValueError, match="max_segments"):
        AppOptions(max_segments=65).check()
