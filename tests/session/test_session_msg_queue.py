"""Message queue: order, eventfd on empty -> non-empty only, full answered
and counted (nothing lost on retry), a held lock never blocks the producer,
many producers in other processes."""
import os
import select
import time

import pytest

from graphnet.session.segment import Segment
from graphnet.session.msg_queue import MessageQueue


@pytest.fixture
def seg():
    s = Segment(1 << 20, "mq-test")
    yield s
    s.close()


def readable(fd):
    p = select.poll()                          # fds may be above 1024 in a full run
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


def test_order_and_signal_only_on_empty_to_nonempty(seg):
    q = MessageQueue.alloc(seg, 8, 64)
    assert not readable(q.fd)
    assert q.enqueue(b"one")
    assert readable(q.fd)
    assert q.enqueue_batch([b"two", b"three"]) == 2
    assert q.stats()["signals"] == 1                # not for the 2nd and 3rd
    assert q.wait(0)                                # clears the eventfd
    assert not readable(q.fd)
    assert [m.rstrip(b"\0") for m in q.dequeue_batch()] == [b"one", b"two", b"three"]
    assert q.enqueue(b"four")                       # empty again -> signal again
    assert readable(q.fd) and q.stats()["signals"] == 2


def test_batch_takes_one_lock(seg):
    q = MessageQueue.alloc(seg, 64, 64)
    assert q.enqueue_batch([b"m%d" % i for i in range(50)]) == 50
    assert q.stats()["locks"] == 1


def test_full_is_answered_and_counted_and_nothing_is_lost(seg):
    q = MessageQueue.alloc(seg, 4, 64)
    msgs = [b"%d" % i for i in range(10)]
    got, pending = [], list(msgs)
    while pending:
        k = q.enqueue_batch(pending)
        pending = pending[k:]
        got += [m.rstrip(b"\0") for m in q.dequeue_batch(3)]   # a slow reader
    got += [m.rstrip(b"\0") for m in q.dequeue_batch()]
    assert got == msgs
    assert q.stats()["full"] > 0


def test_held_lock_does_not_block_the_producer(seg):
    q = MessageQueue.alloc(seg, 4, 64)
    q._hold_lock(True)                              # as if a process died holding it
    t = time.monotonic()
    assert not q.enqueue(b"x")
    assert time.monotonic() - t < 1.0
    assert q.stats()["busy"] == 1 and len(q) == 0
    q._hold_lock(False)
    assert q.enqueue(b"x")


def test_bad_arguments_and_garbage_refused(seg):
    with pytest.raises(ValueError):
        MessageQueue.alloc(seg, 3, 64)
    with pytest.raises(ValueError):
        MessageQueue.alloc(seg, 4, 12)
    q = MessageQueue.alloc(seg, 4, 64)
    with pytest.raises(ValueError):
        q.enqueue(b"x" * 65)
    with pytest.raises(ValueError):
        MessageQueue(seg, seg.alloc(256))


def test_consumer_in_another_mapping_sees_signal_and_messages(seg):
    q = MessageQueue.alloc(seg, 16, 64)
    other = Segment.attach(seg.fd)
    c = MessageQueue(other, q.offset, q.fd)          # the consumer's view
    q.enqueue(b"hello")
    assert c.wait(1)
    assert c.dequeue_batch()[0].rstrip(b"\0") == b"hello"
    c.close()
    other.close()


def test_many_producer_processes_one_consumer(seg):
    q = MessageQueue.alloc(seg, 64, 64)
    n_procs, per = 4, 500
    pids = []
    for p in range(n_procs):
        pid = os.fork()
        if pid == 0:
            try:
                i, deadline = 0, time.monotonic() + 20
                while i < per and time.monotonic() < deadline:
                    if q.enqueue(b"%d:%d" % (p, i)):
                        i += 1
            finally:
                os._exit(0)
        pids.append(pid)
    got = []
    deadline = time.monotonic() + 20
    while len(got) < n_procs * per and time.monotonic() < deadline:
        q.wait(0.05)
        got += [m.rstrip(b"\0") for m in q.dequeue_batch()]
    for pid in pids:
        os.waitpid(pid, 0)
    assert len(got) == n_procs * per
    for p in range(n_procs):                        # each producer's messages in its order
        mine = [int(m.split(b":")[1]) for m in got if m.startswith(b"%d:" % p)]
        assert mine == list(range(per))
