"""Message queue: a ring of fixed-size messages in a segment, many
producers, one consumer, signalled through an eventfd.

Invariants:
  - ``gn_mq_t`` and its ``n_slots`` slots of ``slot_size`` bytes live in a
    segment; ``head`` and ``tail`` are free-running u32; producers write
    tail only under the lock (a spinlock in the segment, valid across
    processes), the consumer alone writes head;
  - a producer takes the lock once for a whole batch, copies as many
    messages as fit, publishes tail with a release store, and writes the
    consumer's eventfd once, only if the ring was empty before the batch
    (empty -> non-empty); the consumer drains until it sees the ring empty
    after advancing head, so no message waits without a signal;
  - a producer never blocks: a full ring is answered at once with fewer
    messages enqueued than asked (counted in ``n_full``), and a lock that
    another party holds for more than GN_MQ_LOCK_SPINS tries is answered
    the same way (``n_busy``), so a process that dies holding the lock
    cannot stall the engine; the caller keeps what was not taken and
    retries later: nothing is lost;
  - positions read from the other side are clamped (tail - head > n_slots
    counts as full) and slot indices are masked with the geometry checked
    when this process opened the queue (kept in its handle, not re-read
    from the header): junk written by another process, in the positions or
    in the header, cannot make this one read or write outside the ring.
"""
import os
import select

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.includes.linux cimport write, read, close as c_close
from graphnet.includes.platform cimport (gn_atomic_load_u32, gn_atomic_fetch_add_u32, gn_atomic_store_u32, gn_spin_trylock,
                                         gn_spin_unlock)
from graphnet.session.segment cimport Segment, gn_segment_alloc, gn_segment_free, gn_segment_contains, GN_SEGMENT_KIND_MQ

MAX_SLOTS = GN_MQ_MAX_SLOTS
MAX_SLOT_SIZE = GN_MQ_MAX_SLOT_SIZE
HEADER_BYTES = sizeof(gn_mq_t)
assert sizeof(gn_mq_t) % 64 == 0


cdef inline uint8_t* _slot(gn_mq_t* mq, uint32_t n_slots, uint32_t slot_size, uint32_t pos) noexcept nogil:
    return <uint8_t*>mq + sizeof(gn_mq_t) + <uint64_t>(pos & (n_slots - 1)) * slot_size


cdef uint64_t gn_mq_bytes_for(uint32_t n_slots, uint32_t slot_size) noexcept nogil:
    return sizeof(gn_mq_t) + <uint64_t>n_slots * slot_size


cdef void gn_mq_init(gn_mq_t* mq, uint32_t n_slots, uint32_t slot_size) noexcept nogil:
    memset(mq, 0, sizeof(gn_mq_t))
    mq.n_slots = n_slots
    mq.slot_size = slot_size
    mq.magic = GN_MQ_MAGIC


cdef inline uint32_t _used(uint32_t n_slots, uint32_t head, uint32_t tail) noexcept nogil:
    cdef uint32_t n = tail - head
    return n if n <= n_slots else n_slots


cdef uint32_t gn_mq_count(gn_mq_t* mq) noexcept nogil:
    return _used(mq.n_slots, gn_atomic_load_u32(&mq.head), gn_atomic_load_u32(&mq.tail))


cdef uint32_t gn_mq_enqueue_batch(gn_mq_handle_t* h, const uint8_t* msgs, uint32_t msg_size, uint32_t n) noexcept nogil:
    """Enqueue up to n messages of msg_size (<= slot_size) bytes each, laid
    out back to back; returns how many were taken (the rest: retry later)."""
    cdef gn_mq_t* mq = h.mq
    cdef uint32_t spins = 0, tail, used, k, i
    cdef uint32_t n_slots = h.n_slots if h.n_slots else mq.n_slots
    cdef uint32_t slot_size = h.slot_size if h.slot_size else mq.slot_size
    cdef uint64_t one = 1
    cdef bint was_empty
    if n == 0 or msg_size > slot_size:
        return 0
    while not gn_spin_trylock(&mq.lock):
        spins += 1
        if spins >= GN_MQ_LOCK_SPINS:
            gn_atomic_fetch_add_u32(&mq.n_busy, 1)
            return 0
    mq.n_lock += 1
    tail = mq.tail
    used = _used(n_slots, gn_atomic_load_u32(&mq.head), tail)
    was_empty = used == 0
    k = n_slots - used
    if k > n:
        k = n
    for i in range(k):
        memcpy(_slot(mq, n_slots, slot_size, tail + i), msgs + <uint64_t>i * msg_size, msg_size)
        if msg_size < slot_size:
            memset(_slot(mq, n_slots, slot_size, tail + i) + msg_size, 0, slot_size - msg_size)
    gn_atomic_store_u32(&mq.tail, tail + k)
    mq.n_enqueued += k
    if k < n:
        mq.n_full += 1
    if was_empty and k:
        mq.n_signals += 1
    gn_spin_unlock(&mq.lock)
    if was_empty and k and h.efd >= 0:
        write(h.efd, &one, 8)
    return k


cdef inline uint32_t _dequeue(gn_mq_t* mq, uint32_t n_slots, uint32_t slot_size, uint8_t* out, uint32_t out_size,
                              uint32_t n) noexcept nogil:
    cdef uint32_t head = mq.head, used = _used(n_slots, head, gn_atomic_load_u32(&mq.tail)), i
    if out_size > slot_size:
        out_size = slot_size
    if n > used:
        n = used
    for i in range(n):
        memcpy(out + <uint64_t>i * out_size, _slot(mq, n_slots, slot_size, head + i), out_size)
    gn_atomic_store_u32(&mq.head, head + n)
    return n


cdef uint32_t gn_mq_dequeue_batch(gn_mq_t* mq, uint8_t* out, uint32_t out_size, uint32_t n) noexcept nogil:
    """Consumer: copy up to n messages (out_size bytes each, at most
    slot_size) into out; returns how many. Trusts the header's geometry:
    for a queue no other process can write, else gn_mq_dequeue_batch_h."""
    return _dequeue(mq, mq.n_slots, mq.slot_size, out, out_size, n)


cdef uint32_t gn_mq_dequeue_batch_h(gn_mq_handle_t* h, uint8_t* out, uint32_t out_size, uint32_t n) noexcept nogil:
    """As gn_mq_dequeue_batch, with the geometry checked at open (a queue
    in another process's segment: its header may have been rewritten)."""
    return _dequeue(h.mq, h.n_slots, h.slot_size, out, out_size, n)


cdef void gn_mq_clear_signal(gn_mq_handle_t* h) noexcept nogil:
    """Consumer: reset the eventfd before draining (drain after this)."""
    cdef uint64_t v
    if h.efd >= 0:
        read(h.efd, &v, 8)


cdef class MessageQueue:
    """A message queue in a segment, with this process's eventfd.

    ``MessageQueue.alloc(segment, n_slots, slot_size)`` makes one (and an
    eventfd, non-blocking); ``MessageQueue(segment, offset, efd)`` opens
    one that exists (checked: magic, sizes, bounds)."""
    def __cinit__(self, Segment segment, uint64_t offset, int efd=-1):
        cdef gn_mq_t* mq
        self.segment = segment
        self.h.efd = efd
        self.h.mq = NULL
        if segment.seg.base == NULL or not gn_segment_contains(&segment.seg, offset, sizeof(gn_mq_t)):
            raise ValueError(f"message queue offset {offset} outside segment {segment.name!r}")
        mq = <gn_mq_t*>(segment.seg.base + offset)
        if (mq.magic != GN_MQ_MAGIC or mq.n_slots == 0 or mq.n_slots > GN_MQ_MAX_SLOTS
                or (mq.n_slots & (mq.n_slots - 1)) or mq.slot_size == 0 or mq.slot_size % 8
                or mq.slot_size > GN_MQ_MAX_SLOT_SIZE
                or not gn_segment_contains(&segment.seg, offset, gn_mq_bytes_for(mq.n_slots, mq.slot_size))):
            raise ValueError(f"no message queue at offset {offset} of segment {segment.name!r}")
        self.h.mq = mq
        self.h.n_slots = mq.n_slots
        self.h.slot_size = mq.slot_size
        self.offset = offset

    @staticmethod
    def alloc(Segment segment, uint32_t n_slots=1024, uint32_t slot_size=64, bint signal=True):
        if n_slots == 0 or n_slots > GN_MQ_MAX_SLOTS or n_slots & (n_slots - 1):
            raise ValueError(f"n_slots {n_slots}: a power of two up to {GN_MQ_MAX_SLOTS}")
        if slot_size == 0 or slot_size % 8 or slot_size > GN_MQ_MAX_SLOT_SIZE:
            raise ValueError(f"slot_size {slot_size}: a multiple of 8 up to {GN_MQ_MAX_SLOT_SIZE}")
        cdef uint64_t off = gn_segment_alloc(&segment.seg, gn_mq_bytes_for(n_slots, slot_size), GN_SEGMENT_KIND_MQ)
        if off == 0:
            raise MemoryError(f"segment {segment.name!r}: no room for a {n_slots}x{slot_size} message queue")
        gn_mq_init(<gn_mq_t*>(segment.seg.base + off), n_slots, slot_size)
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) if signal else -1
        q = MessageQueue(segment, off, efd)
        q.own_fd = signal
        return q

    def free(self):
        """Close the eventfd and give the block back to the segment."""
        self._q().magic = 0
        gn_segment_free(&(<Segment>self.segment).seg, self.offset)
        self.h.mq = NULL
        self.close()

    def close(self):
        if self.own_fd and self.h.efd >= 0:
            c_close(self.h.efd)
        self.h.efd = -1

    def __dealloc__(self):
        if self.own_fd and self.h.efd >= 0:
            c_close(self.h.efd)

    cdef gn_mq_t* _q(self) except NULL:
        if self.h.mq == NULL:
            raise ValueError("message queue freed")
        return self.h.mq

    def handle_address(self):
        """Address of this process's gn_mq_handle_t (for C code here)."""
        self._q()
        return <size_t>&self.h

    @property
    def fd(self):
        return self.h.efd

    @property
    def slot_size(self):
        return self._q().slot_size

    @property
    def n_slots(self):
        return self._q().n_slots

    def __len__(self):
        return gn_mq_count(self._q())

    def enqueue_batch(self, msgs):
        """Enqueue byte strings (each at most slot_size); returns how many
        were taken, in order (the rest: the ring was full)."""
        self._q()
        cdef uint32_t size = self.h.slot_size
        cdef bytearray buf = bytearray(len(msgs) * size)
        cdef uint8_t[::1] mv
        for i, m in enumerate(msgs):
            if len(m) > size:
                raise ValueError(f"message of {len(m)} bytes: slot_size is {size}")
            buf[i * size:i * size + len(m)] = m
        if not msgs:
            return 0
        mv = buf
        return gn_mq_enqueue_batch(&self.h, &mv[0], size, len(msgs))

    def enqueue(self, msg):
        """True if taken, False if the ring was full (counted)."""
        return self.enqueue_batch([msg]) == 1

    def dequeue_batch(self, uint32_t n=0xffffffff):
        """Up to n messages (each slot_size bytes), oldest first."""
        cdef gn_mq_t* mq = self._q()
        cdef uint32_t size = self.h.slot_size
        cdef uint32_t k = min(n, gn_mq_count(mq), self.h.n_slots)
        cdef bytearray buf = bytearray(k * size)
        cdef uint8_t[::1] mv
        if k == 0:
            return []
        mv = buf
        k = gn_mq_dequeue_batch_h(&self.h, &mv[0], size, k)
        return [bytes(buf[i * size:(i + 1) * size]) for i in range(k)]

    def wait(self, timeout=None):
        """Block (Python side only) until the eventfd is signalled or the
        timeout passes; clears the signal; True if signalled."""
        if self.h.efd < 0:
            raise ValueError("this queue has no eventfd")
        p = select.poll()                      # not select(): the fd may be above 1024
        p.register(self.h.efd, select.POLLIN)
        r = p.poll(None if timeout is None else int(timeout * 1000))
        if r:
            gn_mq_clear_signal(&self.h)
        return bool(r)

    def stats(self):
        cdef gn_mq_t* mq = self._q()
        return {"slots": mq.n_slots, "slot_size": mq.slot_size, "queued": gn_mq_count(mq),
                "enqueued": mq.n_enqueued, "full": mq.n_full, "busy": mq.n_busy, "locks": mq.n_lock,
                "signals": mq.n_signals}

    def _hold_lock(self, bint held):
        """Tests only: take or release the producers' lock as another process would."""
        self._q().lock = 1 if held else 0
