"""``graphnet bench session-events``: rx notifications through the session
layer against a synchronous notification per enqueue.

1000 sessions (a mock transport's, one app worker with a message queue);
one round puts 8 datagrams of 64 bytes into every session's rx fifo, each
followed by a notification, then the app (C, same thread) drains its
queue and empties the fifos it is told about.

``sync-per-enqueue``
    The reference: each notification is a message enqueued at once (one
    lock acquisition, one message per datagram).
``session-layer``
    graphnet's path: a notification appends an rx event only when the
    fifo's event flag was clear (one per session per flush), and
    session-input's flush moves each worker's events in one batch under one
    lock. ``ratio``: notifications handled per second against the
    reference; ``lock_ratio``: the reference's lock acquisitions per 1000
    notifications over graphnet's.
``pps``/``ns_per_packet`` count notifications (datagrams) here.
"""
from __future__ import annotations

from typing import Iterator

from graphnet.bench.core import Clock, best_of, register

SESSIONS = 1000
PER_SESSION = 8


def _setup():
    from graphnet.session.application import SessionManager
    from graphnet.session.mock_transport import MockTransport
    from graphnet.session.session import PROTOS, ip_int
    mgr = SessionManager(max_sessions=4096)
    mt = mgr.transports[PROTOS["test"]] = MockTransport(mgr.layer)
    app = mgr.attach("bench", rx_fifo_size=4096, tx_fifo_size=64, mq_slots=16384, segment_size=16 << 20)
    w = app.workers[0]
    lh = w.listen("test://0.0.0.0/80")
    for i in range(SESSIONS):
        c = mt.new_connection(ip_int("10.0.0.1"), 80, ip_int("10.1.0.0") + i // 60000, 1024 + i % 60000)
        if mt.accept(c, lh) != 0:
            raise RuntimeError("bench setup: accept failed")
    mgr.layer.flush()
    w.mq.dequeue_batch()
    handles = w.sessions()
    for h in handles:
        mgr.layer.accept_reply(h)
    return mgr, w, handles


@register("session-events")
def bench_session_events(opts) -> Iterator[dict]:
    """1000 sessions x 8 datagrams: coalesced rx events vs one notification per enqueue."""
    from graphnet.bench.session_helper import RxRounds
    mgr, w, handles = _setup()
    rx = RxRounds(mgr.layer, handles, w.index)
    n = len(handles) * PER_SESSION
    locks: dict = {}

    def case(coalesce):
        def run():
            read = rx.run(PER_SESSION, 1, coalesce)
            want = len(handles) if coalesce else n
            if read != want:
                raise RuntimeError(f"session-events: the app read {read} messages, expected {want}")
            locks[coalesce] = rx.locks
        return run

    cases = {"sync-per-enqueue": case(False), "session-layer": case(True)}
    best, runs = best_of(cases, Clock(), opts.repeat, opts.seconds)
    per_k = {c: 1000 * locks[c == "session-layer"] / n for c in cases}
    for c in cases:
        ns = best[c] / n
        line = {"case": c, "unit": "notification", "sessions": len(handles), "per_session": PER_SESSION,
                "runs": runs[c], "pps": 1e9 / ns, "ns_per_packet": ns, "notifications_per_s": 1e9 / ns,
                "events_per_s": (len(handles) if c == "session-layer" else n) * 1e9 / best[c],
                "locks_per_1000": per_k[c]}
        if c == "session-layer":
            line.update(ratio=best["sync-per-enqueue"] / best[c], against="sync-per-enqueue",
                        lock_ratio=per_k["sync-per-enqueue"] / per_k[c])
        yield line
