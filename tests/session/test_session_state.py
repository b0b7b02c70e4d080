"""Sessions: every state transition (table-driven, VPP's), lookups, shared
listeners, accept and connect, rx event coalescing, flush limits, a full
queue, stale events, worker removal."""
import pytest

from graphnet.session.segment import Segment
from graphnet.session.msg_queue import MessageQueue
from graphnet.session.session import SessionLayer, SessionError, PROTOS, ip_int, parse_msgs
from graphnet.session.mock_transport import MockTransport

TEST = PROTOS["test"]
SRV, CLI = ip_int("10.0.0.1"), ip_int("10.0.0.2")


class Env:
    def __init__(self, n_slots=256, seg_size=1 << 22, fifo=4096):
        self.layer = SessionLayer(max_sessions=4096)
        self.seg = Segment(seg_size, "test")
        self.si = self.layer.add_segment(self.seg)
        self.mt = MockTransport(self.layer)
        self.mq = MessageQueue.alloc(self.seg, n_slots, 64)
        self.wrk = self.layer.add_worker(0, 0, self.si, fifo, fifo, mq=self.mq)
        self.lh = self.layer.listen(self.wrk, 0, TEST, 0, 80)
        self.port = 5000

    def accept(self, notify=True):
        self.port += 1
        c = self.mt.new_connection(SRV, 80, CLI, self.port)
        assert self.mt.accept(c, self.lh, notify) == 0
        return c, self.mt.session_index(c)       # thread 0: handle == index

    def drain(self):
        """Flush to the queue and read it: the events the app got."""
        self.layer.flush()
        return [(m["event"], m["retval"]) for m in parse_msgs(b"".join(self.mq.dequeue_batch()))]

    def pending(self):
        return [e if e != "cleanup" else f"cleanup-{'s' if a else 't'}"
                for e, h, a in self.layer.pending_events(self.wrk)]


def to_state(env, state):
    """A session brought to `state` by the transitions that lead there."""
    c, h = env.accept(notify=(state != "CREATED"))
    if state in ("CREATED", "ACCEPTING"):
        return c, h
    env.layer.accept_reply(h)
    steps = {
        "READY": [],
        "TRANSPORT_CLOSING": [lambda: env.mt.closing(c)],
        "CLOSING": [lambda: env.layer.close(h)],
        "APP_CLOSED": [lambda: env.layer.close(h), env.layer.run_ctrl],
        "TRANSPORT_CLOSED": [lambda: env.mt.closing(c), lambda: env.mt.closed(c)],
        "CLOSED": [lambda: env.layer.close(h), env.layer.run_ctrl, lambda: env.mt.closed(c)],
        "TRANSPORT_DELETED": [lambda: env.mt.closing(c), lambda: env.mt.deleted(c)],
    }[state]
    for step in steps:
        step()
    assert env.layer.session(h)["state"] == state
    return c, h


EVENTS = {
    "closing": lambda env, c, h: env.mt.closing(c),
    "closed": lambda env, c, h: env.mt.closed(c),
    "reset": lambda env, c, h: env.mt.reset(c),
    "deleted": lambda env, c, h: env.mt.deleted(c),
    "app-close": lambda env, c, h: env.layer.close(h),
    "app-reset": lambda env, c, h: env.layer.reset(h),
}

# (start state, event) -> (state after the programmed control events ran and
# the app was told, or "freed"; events queued for the app; transport calls;
# tx fifo dropped)
T = {
    ("CREATED", "closing"): ("TRANSPORT_CLOSING", ["disconnected"], [], False),
    ("CREATED", "closed"): ("TRANSPORT_CLOSED", ["transport-closed"], [], False),
    ("CREATED", "reset"): ("TRANSPORT_CLOSING", ["reset"], [], False),
    ("CREATED", "deleted"): ("freed", [], [], None),                       # the app never told
    ("CREATED", "app-close"): ("APP_CLOSED", [], ["close"], False),
    ("CREATED", "app-reset"): ("APP_CLOSED", [], ["reset"], True),
    ("ACCEPTING", "closing"): ("TRANSPORT_CLOSING", [], [], False),        # waits for the accept reply
    ("ACCEPTING", "closed"): ("TRANSPORT_CLOSED", ["transport-closed"], [], False),
    ("ACCEPTING", "reset"): ("TRANSPORT_CLOSING", [], [], False),
    ("ACCEPTING", "deleted"): ("TRANSPORT_DELETED", ["cleanup-t"], [], True),
    ("ACCEPTING", "app-close"): ("APP_CLOSED", [], ["close"], False),
    ("ACCEPTING", "app-reset"): ("APP_CLOSED", [], ["reset"], True),
    ("READY", "closing"): ("TRANSPORT_CLOSING", ["disconnected"], [], False),
    ("READY", "closed"): ("TRANSPORT_CLOSED", ["disconnected", "transport-closed"], [], True),  # FIN then RST
    ("READY", "reset"): ("TRANSPORT_CLOSING", ["reset"], [], False),
    ("READY", "deleted"): ("freed", ["cleanup-t", "cleanup-s"], [], None),
    ("READY", "app-close"): ("APP_CLOSED", [], ["close"], False),
    ("READY", "app-reset"): ("APP_CLOSED", [], ["reset"], True),
    ("TRANSPORT_CLOSING", "closing"): ("TRANSPORT_CLOSING", [], [], False),
    ("TRANSPORT_CLOSING", "closed"): ("TRANSPORT_CLOSED", ["transport-closed"], [], False),
    ("TRANSPORT_CLOSING", "reset"): ("TRANSPORT_CLOSING", [], [], False),
    ("TRANSPORT_CLOSING", "deleted"): ("TRANSPORT_DELETED", ["cleanup-t"], [], True),
    ("TRANSPORT_CLOSING", "app-close"): ("APP_CLOSED", [], ["close"], False),
    ("TRANSPORT_CLOSING", "app-reset"): ("APP_CLOSED", [], ["reset"], True),
    # CLOSING: the app's close is programmed; run_ctrl runs it after the event
    ("CLOSING", "closing"): ("APP_CLOSED", [], ["close"], False),
    ("CLOSING", "closed"): ("CLOSED", ["transport-closed"], [], False),
    ("CLOSING", "reset"): ("APP_CLOSED", [], ["close"], False),
    ("CLOSING", "deleted"): ("freed", ["cleanup-t", "cleanup-s"], [], None),
    ("CLOSING", "app-close"): ("APP_CLOSED", [], ["close"], False),     # closed once
    ("CLOSING", "app-reset"): ("APP_CLOSED", [], ["close"], False),
    ("APP_CLOSED", "closing"): ("APP_CLOSED", [], [], False),
    ("APP_CLOSED", "closed"): ("CLOSED", ["transport-closed"], [], False),
    ("APP_CLOSED", "reset"): ("APP_CLOSED", [], [], False),
    ("APP_CLOSED", "deleted"): ("freed", ["cleanup-t", "cleanup-s"], [], None),   # the close programmed frees it
    ("APP_CLOSED", "app-close"): ("APP_CLOSED", [], [], False),
    ("APP_CLOSED", "app-reset"): ("APP_CLOSED", [], [], False),
    ("TRANSPORT_CLOSED", "closing"): ("TRANSPORT_CLOSED", [], [], False),
    ("TRANSPORT_CLOSED", "closed"): ("TRANSPORT_CLOSED", [], [], False),
    ("TRANSPORT_CLOSED", "reset"): ("TRANSPORT_CLOSED", [], [], False),
    ("TRANSPORT_CLOSED", "deleted"): ("TRANSPORT_DELETED", ["cleanup-t"], [], True),
    ("TRANSPORT_CLOSED", "app-close"): ("CLOSED", [], [], False),         # both sides closed
    ("TRANSPORT_CLOSED", "app-reset"): ("CLOSED", [], [], True),
    ("CLOSED", "closing"): ("CLOSED", [], [], False),
    ("CLOSED", "closed"): ("CLOSED", [], [], False),
    ("CLOSED", "reset"): ("CLOSED", [], [], False),
    ("CLOSED", "deleted"): ("freed", ["cleanup-t", "cleanup-s"], [], None),
    ("CLOSED", "app-close"): ("CLOSED", [], [], False),
    ("CLOSED", "app-reset"): ("CLOSED", [], [], False),
    ("TRANSPORT_DELETED", "closing"): ("TRANSPORT_DELETED", [], [], False),
    ("TRANSPORT_DELETED", "closed"): ("TRANSPORT_DELETED", [], [], False),
    ("TRANSPORT_DELETED", "reset"): ("TRANSPORT_DELETED", [], [], False),
    ("TRANSPORT_DELETED", "deleted"): ("TRANSPORT_DELETED", [], [], False),
    ("TRANSPORT_DELETED", "app-close"): ("freed", ["cleanup-s"], [], None),  # the app's close ends it
    ("TRANSPORT_DELETED", "app-reset"): ("freed", ["cleanup-s"], [], None),
}


@pytest.mark.parametrize("start,event", sorted(T))
def test_transition(start, event):
    env = Env()
    c, h = to_state(env, start)
    env.drain()
    env.mt.clear_calls()
    fifo = env.layer.fifo(h, "tx")
    fifo.enqueue(b"unsent data")
    EVENTS[event](env, c, h)
    env.layer.run_ctrl()
    end, events, calls, tx_dropped = T[(start, event)]
    assert env.pending() == events
    assert [op for op, arg in env.mt.calls()] == calls
    if tx_dropped is not None:
        assert (fifo.max_dequeue == 0) == tx_dropped
    got = [e for e, _ in env.drain()]
    assert got == [e.split("-")[0] if e.startswith("cleanup") else e for e in events]
    s = env.layer.session(h)
    if end == "freed":
        assert s is None
        assert env.layer.stats()["sessions"] == 1                          # the listener only
        assert env.layer.lookup("test", "10.0.0.1", 80, "10.0.0.2", env.port) is None
    else:
        assert s is not None and s["state"] == end


def test_table_covers_every_state_and_event():
    starts = {s for s, _ in T}
    assert starts == {"CREATED", "ACCEPTING", "READY", "TRANSPORT_CLOSING", "CLOSING", "APP_CLOSED",
                      "TRANSPORT_CLOSED", "CLOSED", "TRANSPORT_DELETED"}
    assert len(T) == len(starts) * len(EVENTS)


# The handshake transitions (the states the table above does not start
# from: LISTENING, CONNECTING, and ACCEPTING's reply). Each row: the steps
# from a fresh half-open / accepted session / listener -> (state after, or
# "freed"; events the app got; transport calls; what the transport's
# connect notify returned).
def _connect(env, err=0):
    c = env.mt.new_connection(CLI, 40000, SRV, 9000)
    return env.mt.connected(c, env.ho, err=err)


HANDSHAKE = {
    "connected": ([lambda env: _connect(env)], "READY", [("connected", 0)], [], 0),
    "connect-failed": ([lambda env: _connect(env, -111)], "freed", [("connected", -111)], [], 0),
    "app-close, then connected": ([lambda env: env.layer.close(env.ho), lambda env: env.layer.run_ctrl(),
                                   lambda env: _connect(env)], "freed", [], [], -1),
    "app-reset, then connected": ([lambda env: env.layer.reset(env.ho), lambda env: env.layer.run_ctrl(),
                                   lambda env: _connect(env)], "freed", [], [], -1),
    "app-close, then failed": ([lambda env: env.layer.close(env.ho), lambda env: _connect(env, -111)],
                               "freed", [], [], -1),
    "accepted": ([lambda env: env.layer.accept_reply(env.h)], "READY", [], [], None),
    "refused": ([lambda env: env.layer.accept_reply(env.h, -1), lambda env: env.layer.run_ctrl()],
                "APP_CLOSED", [], [("reset", None)], None),
    "unlisten": ([lambda env: env.layer.unlisten(env.lh, env.wrk)], "freed", [], [("unlisten", None)], None),
}


@pytest.mark.parametrize("row", sorted(HANDSHAKE))
def test_handshake_transition(row):
    steps, after, told, calls, notify_ret = HANDSHAKE[row]
    env = Env()
    env.mt.set_connect_result(3)
    if row in ("accepted", "refused"):
        c, env.h = env.accept()
        env.drain()
        target = env.h
    elif row == "unlisten":
        target = env.lh
    else:
        env.ho = env.layer.connect(env.wrk, TEST, CLI, 9000, opaque=5)
        assert env.layer.session(env.ho)["state"] == "CONNECTING"
        target = env.ho
    env.mt.clear_calls()
    results = [step(env) for step in steps]
    if notify_ret is not None:
        assert results[-1] == notify_ret
        env.mt.half_open_deleted(env.ho)                 # the transport is done with the half-open
        made = [h for h in env.layer.handles() if h not in (env.lh,)]
        target = made[0] if made else target
    got = env.drain()
    assert [(e, r) for e, r in got if e != "unlisten-reply"] == told
    assert [(name, None) for name, *_ in env.mt.calls()] == calls
    if after == "freed":
        assert env.layer.session(target) is None or "half-open" not in env.layer.session(target)["flags"] and \
            target not in env.layer.handles()
        assert env.layer.stats()["sessions"] == (0 if row == "unlisten" else 1)    # the listener only
    else:
        assert env.layer.session(target)["state"] == after


def test_accept_reply_after_transport_closing_tells_the_app():
    env = Env()
    c, h = to_state(env, "ACCEPTING")
    env.mt.closing(c)
    assert env.pending() == ["accepted"]
    env.layer.accept_reply(h)
    assert env.pending() == ["accepted", "disconnected"]


def test_full_close_sequence_frees_session_and_fifos():
    env = Env()
    free0 = env.seg.stats()["bytes_free"]
    c, h = to_state(env, "READY")
    env.layer.close(h)
    env.layer.run_ctrl()
    assert env.mt.calls()[-1] == ("close", c)
    env.mt.closed(c)
    env.mt.deleted(c)
    assert [e for e, _ in env.drain()] == ["accepted", "transport-closed", "cleanup", "cleanup"]
    assert env.layer.session(h) is None
    assert env.seg.stats()["bytes_free"] == free0


def test_lookup_exact_and_listener_wildcard_per_proto():
    env = Env()
    c, h = env.accept()
    assert env.layer.lookup("test", "10.0.0.1", 80, "10.0.0.2", env.port) == h
    assert env.layer.lookup("test", "10.0.0.1", 80, "10.0.0.2", env.port + 1) is None
    assert env.layer.lookup("udp", "10.0.0.1", 80, "10.0.0.2", env.port) is None
    assert env.layer.lookup_listener("test", "10.9.9.9", 80) == env.lh      # wildcard
    assert env.layer.lookup_listener("test", "10.9.9.9", 81) is None
    assert env.layer.lookup_listener("udp", "10.9.9.9", 80) is None
    exact = env.layer.listen(env.wrk, 0, TEST, ip_int("10.9.9.9"), 80)
    assert env.layer.lookup_listener("test", "10.9.9.9", 80) == exact
    assert env.layer.lookup_listener("test", "10.9.9.8", 80) == env.lh


def test_shared_listener_spreads_sessions_and_other_app_is_refused():
    env = Env()
    mq2 = MessageQueue.alloc(env.seg, 64, 64)
    w2 = env.layer.add_worker(0, 1, env.si, 4096, 4096, mq=mq2)
    assert env.layer.listen(w2, 0, TEST, 0, 80) == env.lh
    assert env.layer.listener_workers(env.lh) == [env.wrk, w2]
    wrks = [env.layer.session(env.accept()[1])["wrk"] for _ in range(6)]
    assert wrks.count(env.wrk) == 3 and wrks.count(w2) == 3
    other = env.layer.add_worker(1, 0, env.si, 4096, 4096, mq=mq2)
    with pytest.raises(SessionError, match="in use"):
        env.layer.listen(other, 1, TEST, 0, 80)
    assert env.layer.unlisten(env.lh, env.wrk) is False                 # w2 still listens
    assert env.layer.unlisten(env.lh, w2) is True
    assert env.layer.lookup_listener("test", "1.2.3.4", 80) is None
    assert ("unlisten", 0) in env.mt.calls()


def test_failed_accept_leaves_nothing_and_is_counted():
    env = Env(seg_size=1 << 16, fifo=16384)
    free0 = env.seg.stats()["bytes_free"]
    n_ok = 0
    for i in range(4):
        c = env.mt.new_connection(SRV, 80, CLI, 7000 + i)
        n_ok += env.mt.accept(c, env.lh) == 0
    assert n_ok < 4
    assert env.layer.stats()["accept_fail"] == 4 - n_ok
    assert env.layer.stats()["sessions"] == 1 + n_ok
    assert env.layer.stats()["fifo_alloc_fail"] == 4 - n_ok
    assert env.layer.lookup("test", "10.0.0.1", 80, "10.0.0.2", 7003) is None
    for h in env.layer.handles():
        if h != env.lh:
            env.mt.deleted(env.layer.session(h)["connection"])
            env.layer.close(h)                     # the app answers the cleanup
    env.layer.run_ctrl()
    env.drain()
    assert env.layer.stats()["sessions"] == 1
    assert env.seg.stats()["bytes_free"] == free0


def test_connect_success_and_failure_and_half_opens():
    env = Env()
    env.mt.set_connect_result(3)
    ho = env.layer.connect(env.wrk, TEST, CLI, 9000, opaque=77)
    assert env.layer.session(ho)["flags"] == ["half-open"]
    assert env.layer.session(ho)["state"] == "CONNECTING"
    c = env.mt.new_connection(CLI, 40000, SRV, 9000)
    assert env.mt.connected(c, ho) == 0
    env.mt.half_open_deleted(ho)
    assert env.layer.session(ho) is None or env.layer.session(ho)["flags"] != ["half-open"]
    msgs = parse_msgs(b"".join(env.mq.dequeue_batch())) if env.layer.flush() else []
    assert [(m["event"], m["retval"], m["opaque"]) for m in msgs] == [("connected", 0, 77)]
    h = msgs[0]["handle"]
    assert env.layer.session(h)["state"] == "READY"
    assert env.layer.lookup("test", "10.0.0.2", 40000, "10.0.0.1", 9000) == h
    ho2 = env.layer.connect(env.wrk, TEST, CLI, 9001, opaque=78)
    env.mt.connected(0, ho2, err=-111)
    env.mt.half_open_deleted(ho2)
    msgs = parse_msgs(b"".join(env.mq.dequeue_batch())) if env.layer.flush() else []
    assert [(m["event"], m["retval"], m["opaque"], m["handle"]) for m in msgs] == [("connected", -111, 78, None)]
    env.mt.set_connect_result(-1)
    with pytest.raises(SessionError):
        env.layer.connect(env.wrk, TEST, CLI, 9002)
    assert env.layer.stats()["sessions"] == 2                         # listener + the connected one


def test_rx_events_coalesce_to_one_per_session_until_the_app_reads():
    env = Env()
    c1, h1 = to_state(env, "READY")
    c2, h2 = to_state(env, "READY")
    env.drain()
    for _ in range(32):
        env.mt.rx(c1, b"x" * 10)
    env.mt.rx(c2, b"y")
    assert env.pending() == ["rx", "rx"]
    assert env.layer.worker_stats(env.wrk)["coalesced"] == 31
    assert env.drain() == [("rx", 0), ("rx", 0)]
    env.mt.rx(c1, b"more")
    assert env.pending() == []                     # the app has not read: still outstanding
    env.layer.fifo(h1, "rx").unset_event()         # the app read and cleared
    env.mt.rx(c1, b"more")
    assert env.pending() == ["rx"]


def test_flush_bound_and_full_queue_lose_nothing():
    env = Env(n_slots=4)
    conns = [to_state(env, "READY") for _ in range(10)]
    assert env.layer.flush(3) == 3                 # at most N per run
    got = [m for m in env.mq.dequeue_batch()]
    assert len(got) == 3
    delivered = 3
    rounds = 0
    while env.layer.stats()["pending_workers"] and rounds < 50:
        delivered += env.layer.flush()              # 4 slots: the rest waits
        got += env.mq.dequeue_batch()
        rounds += 1
    assert delivered == 10 and len(got) == 10
    assert env.layer.stats()["full_backoffs"] >= 1
    handles = sorted(parse_msgs(b"".join(got)), key=lambda m: m["handle"])
    assert [m["handle"] for m in handles] == sorted(h for _, h in conns)


def test_events_for_freed_sessions_are_dropped_and_counted():
    env = Env()
    c, h = to_state(env, "READY")
    env.drain()
    env.mt.rx(c, b"data")
    assert env.pending() == ["rx"]
    env.layer.transport_cleanup(h)                 # the transport failed: freed at once
    assert env.layer.session(h) is None
    assert ("cleanup", c) in env.mt.calls()
    assert env.drain() == []
    assert env.layer.stats()["stale"] == 1
    assert env.layer.worker_stats(env.wrk)["stale"] == 1


def test_worker_removal_takes_only_its_sessions_and_half_opens():
    env = Env()
    mq2 = MessageQueue.alloc(env.seg, 64, 64)
    w2 = env.layer.add_worker(0, 1, env.si, 4096, 4096, mq=mq2)
    env.layer.listen(w2, 0, TEST, 0, 80)
    mine = [to_state(env, "READY") for _ in range(4)]
    by_wrk = {h: env.layer.session(h)["wrk"] for _, h in mine}
    env.mt.set_connect_result(5)
    ho = env.layer.connect(w2, TEST, CLI, 9000)
    env.mt.clear_calls()
    env.layer.del_worker(w2)
    env.layer.run_ctrl()
    assert env.layer.session(ho) is None                               # half-open cleaned
    assert ("cleanup", 5) in env.mt.calls()
    for c, h in mine:
        s = env.layer.session(h)
        if by_wrk[h] == w2:
            assert s["state"] == "APP_CLOSED" and s["wrk"] is None     # closing, the transport finishes
            env.mt.deleted(c)
            env.layer.run_ctrl()
            assert env.layer.session(h) is None
        else:
            assert s["state"] == "READY"
