"""Single-producer single-consumer byte fifo in a shared-memory segment.

A fifo is one segment block: a ``gn_fifo_shared_t`` header (192 bytes:
the fields set at init, the consumer's head, and the producer's tail with
the event flags beside it, on separate cache lines) followed by ``size``
bytes of ring, size a power of two. It holds no pointer, so a process
that maps the segment anywhere can use it.

Each process works on a fifo through its own private ``gn_fifo_t``
handle (VPP's split of svm_fifo into a shared and a private part): the
capacity, the data pointer, the segment and the out-of-order ranges live
there, set when the engine makes the fifo (``gn_fifo_init``) or when a
process opens one and checks it (``gn_fifo_open``), and are never read
back from the segment. An app process can write anything into the shared
header at any time; the engine only reads head, tail and the event/
notification flags from it, each once into a local, clamped to the
trusted size, positions masked: a hostile value can at worst scramble
that fifo's own bytes, never memory outside it. ``n_clamped`` counts the
junk positions seen, ``gn_fifo_tampered`` tells whether the header's
fixed fields still say what the engine wrote.

Invariants:
  - ``head`` and ``tail`` are free-running u32 positions; the consumer alone
    writes head, the producer alone writes tail; readable bytes are
    ``tail - head`` (<= size), free bytes ``size - (tail - head)``;
  - the producer writes data, then publishes tail with a release store; the
    consumer reads tail with an acquire load before reading the data (and
    the same the other way round for head), so the two sides may run in
    different threads or processes; a side that reads junk from the other
    (tail - head > size) clamps it and never reads or writes outside the
    ring;
  - out-of-order data (``enqueue_with_offset``) is written in place beyond
    tail and remembered as at most GN_FIFO_MAX_OOO ranges in the
    producer's private handle, sorted, merged when they overlap or touch,
    none starting at tail; when in-order data reaches a range, the range
    joins it and tail jumps past it (TCP's SACK blocks are read from them);
  - ``has_event``: the producer raises an event only when it set the flag
    from 0 (``set_event`` returns true), the consumer clears it when it has
    read; at most one event per fifo is outstanding;
  - dequeue notification: the producer asks (``want_deq_ntf`` with flags
    and a free-space threshold); the consumer, after a dequeue, asks
    ``needs_deq_ntf`` and, when true, tells the producer and clears the
    request. This is a store-then-load handshake on both sides (the
    producer stores its request and then reads head to see whether it must
    still sleep; the consumer stores head and then reads the request), so
    each side has a full barrier between its store and its load
    (``want_deq_ntf`` after setting the flags, ``needs_deq_ntf`` before
    reading them): without it a CPU may let the load pass the store (x86
    does), the producer see the old head and sleep while the consumer
    sees no request and tells nobody -- a lost wakeup.

A producer keeps its own tail and the head it last saw in its handle:
the enqueues read the shared head only when the space they know of runs
short, and never read the shared tail (one producer per fifo, through one
handle: a second handle opened on the same fifo must not produce too).

Enqueue functions return the bytes by which tail advanced (which includes
out-of-order data joined), or a negative GN_FIFO_E_* code. Dequeue, peek
and drop return the bytes read or dropped.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.platform cimport gn_atomic_load_u32, gn_atomic_store_u32, gn_atomic_fetch_or_u32, gn_atomic_fence
from graphnet.session.segment cimport Segment, gn_segment_alloc, gn_segment_free, gn_segment_contains, GN_SEGMENT_KIND_FIFO

MAX_OOO = GN_FIFO_MAX_OOO
MIN_SIZE = GN_FIFO_MIN_SIZE
MAX_SIZE = GN_FIFO_MAX_SIZE
HEADER_BYTES = sizeof(gn_fifo_shared_t)
E_FULL = GN_FIFO_E_FULL
E_OOO_FULL = GN_FIFO_E_OOO_FULL
E_RANGE = GN_FIFO_E_RANGE
DEQ_NTF = GN_FIFO_DEQ_NTF
DEQ_NTF_IF_FULL = GN_FIFO_DEQ_NTF_IF_FULL
DEQ_NTF_IF_EMPTY = GN_FIFO_DEQ_NTF_IF_EMPTY
DEQ_NTF_THRESH = GN_FIFO_DEQ_NTF_THRESH
assert sizeof(gn_fifo_shared_t) % 64 == 0


cdef uint64_t gn_fifo_bytes_for(uint32_t size) noexcept nogil:
    return sizeof(gn_fifo_shared_t) + size


cdef void _handle(gn_fifo_t* f, gn_fifo_shared_t* shr, uint32_t size, uint32_t segment_index,
                  uint64_t offset) noexcept nogil:
    memset(f, 0, sizeof(gn_fifo_t))
    f.shr = shr
    f.data = <uint8_t*>shr + sizeof(gn_fifo_shared_t)
    f.size = size
    f.segment_index = segment_index
    f.offset = offset


cdef void gn_fifo_init(gn_fifo_t* f, gn_fifo_shared_t* shr, uint32_t size, uint32_t segment_index,
                       uint64_t offset) noexcept nogil:
    """Make a fifo at shr (offset in segment segment_index) and its private
    handle f. size must be a power of two in MIN_SIZE..MAX_SIZE and the
    block big enough (callers check)."""
    memset(shr, 0, sizeof(gn_fifo_shared_t))
    shr.size = size
    shr.segment_index = segment_index
    shr.magic = GN_FIFO_MAGIC
    _handle(f, shr, size, segment_index, offset)


cdef int gn_fifo_open(gn_fifo_t* f, uint8_t* base, uint64_t seg_size, uint32_t segment_index,
                      uint64_t offset) noexcept nogil:
    """A private handle on the fifo at offset of a mapped segment (base,
    seg_size bytes), its header checked once (magic, size a power of two in
    range, header and ring inside the segment): -1 if it is not a fifo."""
    cdef gn_fifo_shared_t* shr
    cdef uint32_t size
    if offset > seg_size or sizeof(gn_fifo_shared_t) > seg_size - offset:
        return -1
    shr = <gn_fifo_shared_t*>(base + offset)
    size = shr.size
    if (shr.magic != GN_FIFO_MAGIC or size < GN_FIFO_MIN_SIZE or size > GN_FIFO_MAX_SIZE or (size & (size - 1))
            or gn_fifo_bytes_for(size) > seg_size - offset):
        return -1
    _handle(f, shr, size, segment_index, offset)
    f.tail = shr.tail                  # if this process produces, it goes on from here
    f.head_seen = f.tail - gn_fifo_used(f, shr.head, f.tail)
    return 0


cdef void gn_fifo_release(gn_fifo_t* f) noexcept nogil:
    """Free what the handle allocated (its out-of-order slots)."""
    if f.ooo != NULL:
        free(f.ooo)
        f.ooo = NULL
    f.n_ooo = 0


cdef bint gn_fifo_tampered(gn_fifo_t* f) noexcept nogil:
    """Do the header's fixed fields no longer say what was written at
    init (the other side scribbled on them)? Nothing reads them but the
    app; this only tells."""
    return f.shr.magic != GN_FIFO_MAGIC or f.shr.size != f.size or f.shr.segment_index != f.segment_index


cdef inline void _copy_out(gn_fifo_t* f, uint32_t pos, uint8_t* dst, uint32_t n) noexcept nogil:
    cdef uint32_t i = pos & (f.size - 1), first = f.size - i
    if first > n:
        first = n
    memcpy(dst, f.data + i, first)
    if n > first:
        memcpy(dst + first, f.data, n - first)


cdef uint32_t gn_fifo_ooo_collect(gn_fifo_t* f, uint32_t tail, uint32_t n) noexcept nogil:
    """In-order data now reaches tail + n: join the ranges it touches."""
    cdef uint32_t rel, end_rel, k = 0, i
    while k < f.n_ooo:
        rel = f.ooo[k].start - tail
        if rel > n:
            break
        end_rel = rel + f.ooo[k].length
        if end_rel > n:
            n = end_rel
        k += 1
    if k:
        for i in range(k, f.n_ooo):
            f.ooo[i - k] = f.ooo[i]
        f.n_ooo -= k
    return n


cdef int gn_fifo_enqueue_with_offset(gn_fifo_t* f, uint32_t offset, const uint8_t* src, uint32_t n) noexcept nogil:
    """Write n bytes at tail + offset (out of order). offset 0 is a plain
    enqueue. GN_FIFO_E_RANGE if they would not fit in the free space,
    GN_FIFO_E_OOO_FULL if a new range is needed and all slots are taken."""
    cdef uint32_t tail = f.tail, free = gn_fifo_free_for(f, offset + n if <uint64_t>offset + n < f.size else f.size)
    cdef gn_fifo_ooo_t merged[GN_FIFO_MAX_OOO + 1]
    cdef uint32_t i, m = 0, a, b, s, e
    cdef bint placed = False
    if offset == 0:
        return gn_fifo_enqueue(f, src, n)
    if n == 0:
        return 0
    if <uint64_t>offset + n > free:
        return GN_FIFO_E_RANGE
    a = offset
    b = offset + n
    for i in range(f.n_ooo):
        s = f.ooo[i].start - tail
        e = s + f.ooo[i].length
        if e < a:
            merged[m].start = s
            merged[m].length = e - s
            m += 1
        elif s > b:
            if not placed:
                merged[m].start = a
                merged[m].length = b - a
                m += 1
                placed = True
            merged[m].start = s
            merged[m].length = e - s
            m += 1
        else:
            if s < a:
                a = s
            if e > b:
                b = e
        if m > GN_FIFO_MAX_OOO:
            return GN_FIFO_E_OOO_FULL
    if not placed:
        merged[m].start = a
        merged[m].length = b - a
        m += 1
    if m > GN_FIFO_MAX_OOO:
        return GN_FIFO_E_OOO_FULL
    if f.ooo == NULL:
        f.ooo = <gn_fifo_ooo_t*>malloc(GN_FIFO_MAX_OOO * sizeof(gn_fifo_ooo_t))
        if f.ooo == NULL:
            return GN_FIFO_E_OOO_FULL
    gn_fifo_copy_in(f, tail + offset, src, n)
    for i in range(m):
        f.ooo[i].start = tail + merged[i].start
        f.ooo[i].length = merged[i].length
    f.n_ooo = m
    return 0


cdef int gn_fifo_enqueue_nocopy(gn_fifo_t* f, uint32_t n) noexcept nogil:
    """Publish n bytes the producer wrote in place (see gn_fifo_writable)."""
    cdef uint32_t tail = f.tail, free = gn_fifo_free_for(f, n)
    if n > free:
        n = free
    if n == 0:
        return 0
    return gn_fifo_publish(f, tail, n)


cdef int gn_fifo_dequeue(gn_fifo_t* f, uint8_t* dst, uint32_t n) noexcept nogil:
    cdef uint32_t head = f.shr.head, used = gn_fifo_used(f, head, gn_atomic_load_u32(&f.shr.tail))
    if n > used:
        n = used
    if n:
        _copy_out(f, head, dst, n)
        gn_atomic_store_u32(&f.shr.head, head + n)
    return <int>n


cdef int gn_fifo_peek(gn_fifo_t* f, uint32_t offset, uint8_t* dst, uint32_t n) noexcept nogil:
    """Copy up to n bytes from head + offset without consuming them."""
    cdef uint32_t head = f.shr.head, used = gn_fifo_used(f, head, gn_atomic_load_u32(&f.shr.tail))
    if offset >= used:
        return 0
    if n > used - offset:
        n = used - offset
    _copy_out(f, head + offset, dst, n)
    return <int>n


cdef int gn_fifo_dequeue_drop(gn_fifo_t* f, uint32_t n) noexcept nogil:
    cdef uint32_t head = f.shr.head, used = gn_fifo_used(f, head, gn_atomic_load_u32(&f.shr.tail))
    if n > used:
        n = used
    gn_atomic_store_u32(&f.shr.head, head + n)
    return <int>n


cdef void gn_fifo_dequeue_drop_all(gn_fifo_t* f) noexcept nogil:
    gn_fifo_dequeue_drop(f, f.size)


cdef inline uint32_t _slices(gn_fifo_t* f, uint32_t pos, uint32_t n, gn_fifo_slice_t* out) noexcept nogil:
    cdef uint32_t i = pos & (f.size - 1), first = f.size - i
    if n == 0:
        return 0
    if first > n:
        first = n
    out[0].data = f.data + i
    out[0].len = first
    if n == first:
        return 1
    out[1].data = f.data
    out[1].len = n - first
    return 2


cdef uint32_t gn_fifo_readable(gn_fifo_t* f, gn_fifo_slice_t* out) noexcept nogil:
    """The readable bytes in place, as 0, 1 or 2 slices (two at the wrap);
    consume them with gn_fifo_dequeue_drop."""
    cdef uint32_t head = f.shr.head
    return _slices(f, head, gn_fifo_used(f, head, gn_atomic_load_u32(&f.shr.tail)), out)


cdef uint32_t gn_fifo_writable(gn_fifo_t* f, gn_fifo_slice_t* out) noexcept nogil:
    """The free space in place, as 0, 1 or 2 slices; publish what was
    written with gn_fifo_enqueue_nocopy."""
    return _slices(f, f.tail, gn_fifo_free_for(f, f.size), out)


cdef void gn_fifo_want_deq_ntf(gn_fifo_t* f, uint32_t flags, uint32_t thresh) noexcept nogil:
    """Producer: ask for a notification (GN_FIFO_DEQ_NTF_* flags; thresh is
    the free space GN_FIFO_DEQ_NTF_THRESH waits for)."""
    f.shr.deq_thresh = thresh
    gn_atomic_fetch_or_u32(&f.shr.want_deq_ntf, flags)
    gn_atomic_fence()                  # the request is visible before the caller reads head again


cdef bint gn_fifo_needs_deq_ntf(gn_fifo_t* f, uint32_t n_last_deq) noexcept nogil:
    """Consumer, after dequeuing n_last_deq bytes: must the producer be told?
    (The head it stored is made visible before the request is read.)"""
    cdef uint32_t w, used
    gn_atomic_fence()
    w = gn_atomic_load_u32(&f.shr.want_deq_ntf)
    if w == 0:
        return False
    if w & GN_FIFO_DEQ_NTF:
        return True
    used = gn_fifo_max_dequeue(f)
    if (w & GN_FIFO_DEQ_NTF_IF_FULL) and used < f.size and <uint64_t>used + n_last_deq >= f.size:
        return True
    if (w & GN_FIFO_DEQ_NTF_IF_EMPTY) and used == 0:
        return True
    if (w & GN_FIFO_DEQ_NTF_THRESH) and f.size - used >= f.shr.deq_thresh:
        return True
    return False


cdef void gn_fifo_clear_deq_ntf(gn_fifo_t* f) noexcept nogil:
    gn_atomic_store_u32(&f.shr.want_deq_ntf, 0)


def round_size(uint64_t size):
    """The fifo size used for a request of `size` bytes (a power of two)."""
    cdef uint64_t s = GN_FIFO_MIN_SIZE
    if size > GN_FIFO_MAX_SIZE:
        raise ValueError(f"fifo size {size}: at most {GN_FIFO_MAX_SIZE} bytes")
    while s < size:
        s <<= 1
    return s


cdef class Fifo:
    """A fifo in a segment, for the control plane, tests and Python apps.

    ``Fifo.alloc(segment, size)`` makes one; ``Fifo(segment, offset)``
    opens one that exists (checked once: magic, size, bounds) with its own
    private handle; ``gn_fifo_borrow`` wraps the engine's handle of a
    session's fifo (the same out-of-order ranges and counters)."""
    def __cinit__(self, Segment segment, uint64_t offset):
        self.segment = segment
        if segment.seg.base == NULL or gn_fifo_open(&self.own, segment.seg.base, segment.seg.size,
                                                    segment.seg.index, offset) != 0:
            raise ValueError(f"no fifo at offset {offset} of segment {segment.name!r}")
        self.own.ooo = self.own_ooo
        self.f = &self.own
        self.offset = offset

    @staticmethod
    def alloc(Segment segment, uint64_t size):
        cdef uint32_t s = round_size(size)
        cdef uint64_t off = gn_segment_alloc(&segment.seg, gn_fifo_bytes_for(s), GN_SEGMENT_KIND_FIFO)
        cdef gn_fifo_t h
        if off == 0:
            raise MemoryError(f"segment {segment.name!r}: no room for a {s}-byte fifo")
        gn_fifo_init(&h, <gn_fifo_shared_t*>(segment.seg.base + off), s, segment.seg.index, off)
        return Fifo(segment, off)

    def free(self):
        """Give the fifo's block back to its segment (this object is then dead)."""
        self._f().shr.magic = 0
        gn_segment_free(&self.segment.seg, self.offset)
        self.f = NULL

    cdef gn_fifo_t* _f(self) except NULL:
        """The handle; ValueError once the fifo was freed."""
        if self.f == NULL:
            raise ValueError("fifo freed")
        return self.f

    def address(self):
        """Address of the shared header in this process."""
        return <size_t>self._f().shr

    @property
    def size(self):
        return self._f().size

    @property
    def clamped(self):
        """Times head/tail read from the segment made used > size (junk)."""
        return self._f().n_clamped

    @property
    def tampered(self):
        """True if the header's fixed fields no longer say what init wrote."""
        return gn_fifo_tampered(self._f())

    def _set_position(self, uint32_t pos):
        """Tests only: move an empty fifo's head and tail to pos (to cross
        the u32 wrap). Refused unless the fifo is empty with no ranges."""
        cdef gn_fifo_t* f = self._f()
        if f.shr.head != f.shr.tail or f.n_ooo:
            raise ValueError("fifo not empty")
        f.shr.head = f.shr.tail = f.tail = f.head_seen = pos

    @property
    def head(self):
        return self._f().shr.head

    @property
    def tail(self):
        return self._f().shr.tail

    @property
    def max_dequeue(self):
        return gn_fifo_max_dequeue(self._f())

    @property
    def max_enqueue(self):
        return gn_fifo_max_enqueue(self._f())

    def enqueue(self, const uint8_t[::1] data):
        return gn_fifo_enqueue(self._f(), &data[0] if data.shape[0] else NULL, data.shape[0])

    def enqueue_with_offset(self, uint32_t offset, const uint8_t[::1] data):
        return gn_fifo_enqueue_with_offset(self._f(), offset, &data[0] if data.shape[0] else NULL, data.shape[0])

    def enqueue_segments(self, pieces, bint allow_partial=False):
        """All pieces written back to back, published at once; E_FULL (-1)
        and nothing written if they do not all fit and not allow_partial."""
        cdef gn_fifo_slice_t sl[16]
        cdef const uint8_t[::1] mv
        keep = [bytes(p) for p in pieces]
        if len(keep) > 16:
            raise ValueError("at most 16 pieces")
        for i, p in enumerate(keep):
            mv = p
            sl[i].data = <uint8_t*>&mv[0] if len(p) else NULL
            sl[i].len = len(p)
        return gn_fifo_enqueue_segments(self._f(), sl, len(keep), allow_partial)

    def dequeue(self, uint32_t n):
        cdef bytearray out = bytearray(min(n, gn_fifo_max_dequeue(self._f())))
        cdef uint8_t[::1] mv = out
        if len(out):
            gn_fifo_dequeue(self.f, &mv[0], len(out))
        return bytes(out)

    def peek(self, uint32_t offset, uint32_t n):
        cdef uint32_t avail = gn_fifo_max_dequeue(self._f())
        cdef bytearray out = bytearray(min(n, avail - offset) if offset < avail else 0)
        cdef uint8_t[::1] mv = out
        if len(out):
            gn_fifo_peek(self.f, offset, &mv[0], len(out))
        return bytes(out)

    def enqueue_from(self, const uint8_t[::1] buf, size_t offset=0):
        """Stream send: append as much of buf[offset:] as fits, copied in C
        straight from the caller's buffer (no slice object); the bytes
        written (0 when full)."""
        cdef gn_fifo_t* f = self._f()
        cdef size_t n
        if offset >= <size_t>buf.shape[0]:
            return 0
        n = buf.shape[0] - offset
        if n > f.size:
            n = f.size
        with nogil:
            n = gn_fifo_enqueue(f, &buf[offset], <uint32_t>n)
        return n

    def dequeue_into(self, uint8_t[::1] buf, size_t offset=0, size_t n=0):
        """Stream receive: move up to n (0: all of buf[offset:]) readable
        bytes into buf[offset:], copied in C straight from the ring (both
        pieces at the wrap); the bytes read (0 when empty)."""
        cdef gn_fifo_t* f = self._f()
        cdef size_t room
        if offset >= <size_t>buf.shape[0]:
            return 0
        room = buf.shape[0] - offset
        if n == 0 or n > room:
            n = room
        if n > f.size:
            n = f.size
        with nogil:
            n = gn_fifo_dequeue(f, &buf[offset], <uint32_t>n)
        return n

    def dequeue_drop(self, uint32_t n):
        return gn_fifo_dequeue_drop(self._f(), n)

    def dequeue_drop_all(self):
        gn_fifo_dequeue_drop_all(self._f())

    def enqueue_nocopy(self, uint32_t n):
        return gn_fifo_enqueue_nocopy(self._f(), n)

    cdef list _views(self, gn_fifo_slice_t* sl, uint32_t k):
        return [<uint8_t[:sl[i].len]>sl[i].data for i in range(k)]

    def readable(self):
        """Zero-copy: memoryviews of the readable bytes (0, 1 or 2)."""
        cdef gn_fifo_slice_t sl[2]
        return self._views(sl, gn_fifo_readable(self._f(), sl))

    def writable(self):
        """Zero-copy: memoryviews of the free space (0, 1 or 2)."""
        cdef gn_fifo_slice_t sl[2]
        return self._views(sl, gn_fifo_writable(self._f(), sl))

    def ooo_segments(self):
        """``[(offset from tail, length)]`` of the out-of-order ranges."""
        cdef gn_fifo_t* f = self._f()
        return [(f.ooo[i].start - f.tail, f.ooo[i].length) for i in range(f.n_ooo)]

    @property
    def has_event(self):
        return gn_fifo_has_event(self._f())

    def set_event(self):
        """True if no event was outstanding (the caller sends one)."""
        return gn_fifo_set_event(self._f())

    def unset_event(self):
        gn_fifo_unset_event(self._f())

    def want_deq_ntf(self, uint32_t flags, uint32_t thresh=0):
        gn_fifo_want_deq_ntf(self._f(), flags, thresh)

    def needs_deq_ntf(self, uint32_t n_last_deq):
        return gn_fifo_needs_deq_ntf(self._f(), n_last_deq)

    def clear_deq_ntf(self):
        gn_fifo_clear_deq_ntf(self._f())


cdef object gn_fifo_borrow(object segment, gn_fifo_t* f):
    """A Fifo working on the engine's own handle f (tests and the CLI: the
    caller keeps the session, hence f, alive while it uses the object)."""
    cdef Fifo o = Fifo(segment, f.offset)
    o.f = f
    return o
