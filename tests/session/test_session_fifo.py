"""Byte fifo: against a Python model (Hypothesis), wrap-around, out-of-order
merges, all-or-nothing segments, events, dequeue notifications, zero-copy."""
import pytest
from hypothesis import given, settings, strategies as st

from graphnet.session.segment import Segment
from graphnet.session import fifo as F
from graphnet.session.fifo import Fifo


@pytest.fixture
def seg():
    s = Segment(1 << 20, "fifo-test")
    yield s
    s.close()


class Model:
    """The stream as positions: readable bytes and out-of-order bytes."""

    def __init__(self, size, base=0):
        self.size, self.head, self.tail = size, base, base
        self.data = {}                      # position -> byte, head <= pos (in order or not)

    def used(self):
        return self.tail - self.head

    def free(self):
        return self.size - self.used()

    def _collect(self):
        start = self.tail
        while self.tail in self.data:
            self.tail += 1
        return self.tail - start

    def enqueue(self, b):
        n = min(len(b), self.free())
        for i in range(n):
            self.data[self.tail + i] = b[i]
        self.tail += n
        return n + self._collect() if n else 0

    def ranges(self, data=None):
        data = self.data if data is None else data
        pos = sorted(p for p in data if p >= self.tail)
        out = []
        for p in pos:
            if out and out[-1][0] + out[-1][1] == p:
                out[-1][1] += 1
            else:
                out.append([p, 1])
        return [(p - self.tail, n) for p, n in out]

    def enqueue_with_offset(self, off, b):
        if off == 0:
            return self.enqueue(b)
        if not b:
            return 0
        if off + len(b) > self.free():
            return F.E_RANGE
        new = dict(self.data)
        for i, x in enumerate(b):
            new[self.tail + off + i] = x
        if len(self.ranges(new)) > F.MAX_OOO:
            return F.E_OOO_FULL
        self.data = new
        return 0

    def readable(self):
        return bytes(self.data[p] for p in range(self.head, self.tail))

    def dequeue(self, n):
        n = min(n, self.used())
        out = bytes(self.data.pop(self.head + i) for i in range(n))
        self.head += n
        return out

    def peek(self, off, n):
        return self.readable()[off:off + n]


ops = st.one_of(
    st.tuples(st.just("enq"), st.binary(max_size=150)),
    st.tuples(st.just("ooo"), st.integers(0, 260), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("segs"), st.lists(st.binary(max_size=60), max_size=4), st.booleans()),
    st.tuples(st.just("deq"), st.integers(0, 200)),
    st.tuples(st.just("peek"), st.integers(0, 260), st.integers(0, 100)),
    st.tuples(st.just("drop"), st.integers(0, 200)),
    st.tuples(st.just("nocopy"), st.binary(max_size=120)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=80), st.sampled_from([0, 2**32 - 100]))
def test_fifo_matches_model(seq, base):
    seg = Segment(1 << 16, "h")
    f = Fifo.alloc(seg, 256)
    f._set_position(base)
    m = Model(256, base)
    for op in seq:
        if op[0] == "enq":
            assert f.enqueue(op[1]) == m.enqueue(op[1])
        elif op[0] == "ooo":
            assert f.enqueue_with_offset(op[1], op[2]) == m.enqueue_with_offset(op[1], op[2])
        elif op[0] == "segs":
            pieces, partial = op[1], op[2]
            total = sum(map(len, pieces))
            if not partial and total > m.free():
                assert f.enqueue_segments(pieces, partial) == F.E_FULL
            else:
                assert f.enqueue_segments(pieces, partial) == (m.enqueue(b"".join(pieces)) if total else 0)
        elif op[0] == "deq":
            assert f.dequeue(op[1]) == m.dequeue(op[1])
        elif op[0] == "peek":
            assert f.peek(op[1], op[2]) == m.peek(op[1], op[2])
        elif op[0] == "drop":
            assert f.dequeue_drop(op[1]) == len(m.dequeue(op[1]))
        elif op[0] == "nocopy":
            views = f.writable()
            assert sum(len(v) for v in views) == m.free()
            b = op[1][:m.free()]
            k = 0
            for v in views:
                part = b[k:k + len(v)]
                v[:len(part)] = part
                k += len(part)
            assert f.enqueue_nocopy(len(b)) == m.enqueue(b)
        assert f.max_dequeue == m.used()
        assert f.max_enqueue == m.free()
        assert b"".join(bytes(v) for v in f.readable()) == m.readable()
        assert f.ooo_segments() == [tuple(r) for r in m.ranges()]
    seg.close()


def test_wrap_gives_two_slices(seg):
    f = Fifo.alloc(seg, 64)
    assert f.size == 64
    f.enqueue(b"a" * 50)
    f.dequeue_drop(40)
    assert f.enqueue(b"b" * 40) == 40
    r = f.readable()
    assert [len(v) for v in r] == [24, 26]
    assert b"".join(bytes(v) for v in r) == b"a" * 10 + b"b" * 40
    w = f.writable()
    assert [len(v) for v in w] == [14]


def test_out_of_order_ranges_merge_and_join(seg):
    f = Fifo.alloc(seg, 4096)
    assert f.enqueue_with_offset(100, b"c" * 50) == 0        # [100, 150)
    assert f.enqueue_with_offset(10, b"a" * 10) == 0         # [10, 20)
    assert f.enqueue_with_offset(150, b"d" * 10) == 0        # touches: [100, 160)
    assert f.ooo_segments() == [(10, 10), (100, 60)]
    assert f.enqueue_with_offset(15, b"a" * 20) == 0         # overlap: [10, 35)
    assert f.ooo_segments() == [(10, 25), (100, 60)]
    assert f.max_dequeue == 0                                # nothing in order yet
    assert f.enqueue(b"x" * 10) == 35                        # joins [10, 35)
    assert f.ooo_segments() == [(65, 60)]
    assert f.enqueue(b"y" * 65) == 125
    assert f.ooo_segments() == []
    assert f.dequeue(200) == b"x" * 10 + b"a" * 25 + b"y" * 65 + b"c" * 50 + b"d" * 10


def test_out_of_order_slots_are_bounded(seg):
    f = Fifo.alloc(seg, 4096)
    for i in range(F.MAX_OOO):
        assert f.enqueue_with_offset(10 + 20 * i, b"z") == 0
    assert f.enqueue_with_offset(10 + 20 * F.MAX_OOO, b"z") == F.E_OOO_FULL
    assert f.enqueue_with_offset(11, b"z") == 0              # extends a range: no new slot
    assert f.enqueue_with_offset(5000, b"z") == F.E_RANGE
    assert len(f.ooo_segments()) == F.MAX_OOO


def test_segments_all_or_nothing(seg):
    f = Fifo.alloc(seg, 64)
    f.enqueue(b"q" * 40)
    assert f.enqueue_segments([b"h" * 16, b"p" * 16], allow_partial=False) == F.E_FULL
    assert f.max_dequeue == 40
    assert f.enqueue_segments([b"h" * 16, b"p" * 16], allow_partial=True) == 24
    assert f.dequeue(64)[40:] == b"h" * 16 + b"p" * 8


def test_event_flag_once_until_cleared(seg):
    f = Fifo.alloc(seg, 64)
    assert f.set_event() is True
    assert f.set_event() is False
    assert f.has_event
    f.unset_event()
    assert not f.has_event and f.set_event() is True


def test_dequeue_notification_threshold(seg):
    f = Fifo.alloc(seg, 256)
    f.enqueue(b"x" * 256)
    assert not f.needs_deq_ntf(0)                            # nobody asked
    f.want_deq_ntf(F.DEQ_NTF_THRESH, 100)
    f.dequeue_drop(50)
    assert not f.needs_deq_ntf(50)                           # 50 free < 100
    f.dequeue_drop(60)
    assert f.needs_deq_ntf(60)
    f.clear_deq_ntf()
    assert not f.needs_deq_ntf(0)


def test_dequeue_notification_if_full_and_if_empty(seg):
    f = Fifo.alloc(seg, 64)
    f.enqueue(b"x" * 64)
    f.want_deq_ntf(F.DEQ_NTF_IF_FULL)
    f.dequeue_drop(10)
    assert f.needs_deq_ntf(10)                               # it was full before
    f.clear_deq_ntf()
    f.want_deq_ntf(F.DEQ_NTF_IF_FULL)
    f.dequeue_drop(10)
    assert not f.needs_deq_ntf(10)                           # it was not
    f.clear_deq_ntf()
    f.want_deq_ntf(F.DEQ_NTF_IF_EMPTY)
    f.dequeue_drop(40)
    assert not f.needs_deq_ntf(40)                           # 4 bytes left
    f.dequeue_drop(4)
    assert f.needs_deq_ntf(4)


def test_fifo_seen_through_a_second_mapping(seg):
    other = Segment.attach(seg.fd)
    f = Fifo.alloc(seg, 1024)
    g = Fifo(other, f.offset)
    assert g.address() != f.address()
    f.enqueue(b"across mappings")
    assert g.dequeue(100) == b"across mappings"
    assert f.max_dequeue == 0
    other.close()


def test_open_refuses_garbage(seg):
    off = seg.alloc(1024)
    with pytest.raises(ValueError):
        Fifo(seg, off)
    with pytest.raises(ValueError):
        Fifo(seg, 1 << 30)


def test_a_rewritten_header_moves_nothing_outside_the_ring(seg):
    """The other side rewrites the shared header (size, head, tail): this
    side's handle keeps the geometry it checked at open, so the fifo
    right after in the segment is untouched, and the junk is told."""
    import struct
    f = Fifo.alloc(seg, 256)
    g = Fifo.alloc(seg, 256)                                   # the next block
    g.enqueue(b"G" * 200)
    hdr = seg.view(f.offset, 192)
    struct.pack_into("<I", hdr, 4, 1 << 15)                    # size: a ring reaching over g
    struct.pack_into("<I", hdr, 64, 300)                       # head and tail past f's ring
    struct.pack_into("<I", hdr, 128, 300)
    f.enqueue(b"F" * 256)
    assert g.dequeue(200) == b"G" * 200                        # the next fifo untouched
    assert f.size == 256 and f.tampered
    assert f.dequeue(300) == b"F" * 256                        # as much as f holds, no more
    struct.pack_into("<I", hdr, 128, f.head + (1 << 20))       # tail - head > size
    assert f.max_dequeue == 256 and f.clamped >= 1
    assert f.dequeue_drop(1 << 20) == 256                      # head moves by at most the size


def test_free_gives_the_block_back(seg):
    before = seg.stats()["bytes_free"]
    f = Fifo.alloc(seg, 1000)
    assert f.size == 1024
    f.free()
    assert seg.stats()["bytes_free"] == before


def test_two_processes_stream_through_one_fifo(seg):
    """A child process produces 4 MB in odd-sized chunks, this one consumes:
    the bytes arrive exactly, across many wraps (release/acquire ordering)."""
    import hashlib
    import os
    import random
    import time
    f = Fifo.alloc(seg, 4096)
    rng = random.Random(7)
    data = rng.randbytes(4 << 20)
    pid = os.fork()
    if pid == 0:                                    # child: producer only
        try:
            k, deadline = 0, time.monotonic() + 20
            while k < len(data) and time.monotonic() < deadline:
                k += f.enqueue(data[k:k + 1 + (k * 7919) % 3000])
        finally:
            os._exit(0)
    got = bytearray()
    deadline = time.monotonic() + 20
    while len(got) < len(data) and time.monotonic() < deadline:
        got += f.dequeue(1 + len(got) % 2500)
    os.waitpid(pid, 0)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_enqueue_from_and_dequeue_into_copy_in_c_across_the_wrap(seg):
    """The stream copies of graphnet.app.socket: from an offset of the
    caller's buffer as much as fits, into an offset of the caller's buffer
    at most n; byte-exact across the ring's end and the u32 wrap."""
    f = Fifo.alloc(seg, 256)
    f._set_position(0xffffff00 + 200)                # the ring's end and the u32 wrap close together
    src = bytes((i * 7 + 3) & 0xff for i in range(1000))
    out = bytearray(1200)
    sent = got = 0
    while got < len(src):
        free = f.max_enqueue
        n = f.enqueue_from(src, sent)
        assert n == min(len(src) - sent, free)            # as much as fitted
        sent += n
        k = f.dequeue_into(out, got, 77)                  # an odd size: pieces across the ring's end
        assert 0 < k <= 77
        got += k
    assert f.dequeue_into(out, got) == 0                  # empty
    assert bytes(out[:got]) == src
    assert f.enqueue_from(src, len(src)) == 0             # nothing past the end
    assert f.dequeue_into(out, len(out)) == 0


def test_enqueue_from_is_a_partial_write_when_the_fifo_is_full(seg):
    f = Fifo.alloc(seg, 4096)
    data = bytes(range(256)) * 20                         # 5120 bytes
    assert f.enqueue_from(data) == 4096
    assert f.enqueue_from(data, 4096) == 0                # full: nothing written
    buf = bytearray(8192)
    assert f.dequeue_into(buf, 0, 1000) == 1000
    assert f.enqueue_from(data, 4096) == 1000             # the room that was made, no more
    assert f.dequeue_into(buf, 1000) == 4096
    assert bytes(buf[:5096]) == data[:5096]


def test_dequeue_notification_is_seen_after_the_consumer_dequeues(seg):
    """The store-then-load handshake (fenced on both sides): a producer that
    asked before the consumer's dequeue is told."""
    f = Fifo.alloc(seg, 64)
    assert f.enqueue(bytes(64)) == 64
    f.want_deq_ntf(F.DEQ_NTF)
    assert f.max_enqueue == 0                            # the producer looks once more: still full, it sleeps
    assert f.dequeue_into(bytearray(10)) == 10
    assert f.needs_deq_ntf(10)                            # the consumer tells it
