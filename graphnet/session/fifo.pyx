"""Single-producer single-consumer byte fifo in a shared-memory segment.

A fifo is one segment block: a ``gn_fifo_t`` header (320 bytes: the
fields set at init, the consumer's head, and the producer's tail with the
event flags beside it, on separate cache lines) followed by ``size``
bytes of ring, size a power of two. It holds no pointer, so a process
that maps the segment anywhere can use it.

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
    tail and remembered as at most GN_FIFO_MAX_OOO ranges, sorted, merged
    when they overlap or touch, none starting at tail; when in-order data
    reaches a range, the range joins it and tail jumps past it. Only the
    producer touches the ranges (TCP's SACK blocks are read from them);
  - ``has_event``: the producer raises an event only when it set the flag
    from 0 (``set_event`` returns true), the consumer clears it when it has
    read; at most one event per fifo is outstanding;
  - dequeue notification: the producer asks (``want_deq_ntf`` with flags
    and a free-space threshold); the consumer, after a dequeue, asks
    ``needs_deq_ntf`` and, when true, tells the producer and clears the
    request.

Enqueue functions return the bytes by which tail advanced (which includes
out-of-order data joined), or a negative GN_FIFO_E_* code. Dequeue, peek
and drop return the bytes read or dropped.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.includes.platform cimport gn_atomic_load_u32, gn_atomic_store_u32, gn_atomic_fetch_or_u32
from graphnet.session.segment cimport Segment, gn_segment_alloc, gn_segment_free, gn_segment_contains, GN_SEGMENT_KIND_FIFO

MAX_OOO = GN_FIFO_MAX_OOO
MIN_SIZE = GN_FIFO_MIN_SIZE
MAX_SIZE = GN_FIFO_MAX_SIZE
HEADER_BYTES = sizeof(gn_fifo_t)
E_FULL = GN_FIFO_E_FULL
E_OOO_FULL = GN_FIFO_E_OOO_FULL
E_RANGE = GN_FIFO_E_RANGE
DEQ_NTF = GN_FIFO_DEQ_NTF
DEQ_NTF_IF_FULL = GN_FIFO_DEQ_NTF_IF_FULL
DEQ_NTF_IF_EMPTY = GN_FIFO_DEQ_NTF_IF_EMPTY
DEQ_NTF_THRESH = GN_FIFO_DEQ_NTF_THRESH
assert sizeof(gn_fifo_t) % 64 == 0


cdef uint64_t gn_fifo_bytes_for(uint32_t size) noexcept nogil:
    return sizeof(gn_fifo_t) + size


cdef void gn_fifo_init(gn_fifo_t* f, uint32_t size) noexcept nogil:
    """size must be a power of two in MIN_SIZE..MAX_SIZE (callers check)."""
    memset(f, 0, sizeof(gn_fifo_t))
    f.size = size
    f.magic = GN_FIFO_MAGIC


cdef inline void _copy_out(gn_fifo_t* f, uint32_t pos, uint8_t* dst, uint32_t n) noexcept nogil:
    cdef uint32_t i = pos & (f.size - 1), first = f.size - i
    if first > n:
        first = n
    memcpy(dst, gn_fifo_data(f) + i, first)
    if n > first:
        memcpy(dst + first, gn_fifo_data(f), n - first)


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
    cdef uint32_t tail = f.tail, free = f.size - gn_fifo_used(f, gn_atomic_load_u32(&f.head), tail)
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
    gn_fifo_copy_in(f, tail + offset, src, n)
    for i in range(m):
        f.ooo[i].start = tail + merged[i].start
        f.ooo[i].length = merged[i].length
    f.n_ooo = m
    return 0


cdef int gn_fifo_enqueue_nocopy(gn_fifo_t* f, uint32_t n) noexcept nogil:
    """Publish n bytes the producer wrote in place (see gn_fifo_writable)."""
    cdef uint32_t tail = f.tail, free = f.size - gn_fifo_used(f, gn_atomic_load_u32(&f.head), tail)
    if n > free:
        n = free
    if n == 0:
        return 0
    return gn_fifo_publish(f, tail, n)


cdef int gn_fifo_dequeue(gn_fifo_t* f, uint8_t* dst, uint32_t n) noexcept nogil:
    cdef uint32_t head = f.head, used = gn_fifo_used(f, head, gn_atomic_load_u32(&f.tail))
    if n > used:
        n = used
    if n:
        _copy_out(f, head, dst, n)
        gn_atomic_store_u32(&f.head, head + n)
    return <int>n


cdef int gn_fifo_peek(gn_fifo_t* f, uint32_t offset, uint8_t* dst, uint32_t n) noexcept nogil:
    """Copy up to n bytes from head + offset without consuming them."""
    cdef uint32_t head = f.head, used = gn_fifo_used(f, head, gn_atomic_load_u32(&f.tail))
    if offset >= used:
        return 0
    if n > used - offset:
        n = used - offset
    _copy_out(f, head + offset, dst, n)
    return <int>n


cdef int gn_fifo_dequeue_drop(gn_fifo_t* f, uint32_t n) noexcept nogil:
    cdef uint32_t head = f.head, used = gn_fifo_used(f, head, gn_atomic_load_u32(&f.tail))
    if n > used:
        n = used
    gn_atomic_store_u32(&f.head, head + n)
    return <int>n


cdef void gn_fifo_dequeue_drop_all(gn_fifo_t* f) noexcept nogil:
    gn_fifo_dequeue_drop(f, f.size)


cdef inline uint32_t _slices(gn_fifo_t* f, uint32_t pos, uint32_t n, gn_fifo_slice_t* out) noexcept nogil:
    cdef uint32_t i = pos & (f.size - 1), first = f.size - i
    if n == 0:
        return 0
    if first > n:
        first = n
    out[0].data = gn_fifo_data(f) + i
    out[0].len = first
    if n == first:
        return 1
    out[1].data = gn_fifo_data(f)
    out[1].len = n - first
    return 2


cdef uint32_t gn_fifo_readable(gn_fifo_t* f, gn_fifo_slice_t* out) noexcept nogil:
    """The readable bytes in place, as 0, 1 or 2 slices (two at the wrap);
    consume them with gn_fifo_dequeue_drop."""
    cdef uint32_t head = f.head
    return _slices(f, head, gn_fifo_used(f, head, gn_atomic_load_u32(&f.tail)), out)


cdef uint32_t gn_fifo_writable(gn_fifo_t* f, gn_fifo_slice_t* out) noexcept nogil:
    """The free space in place, as 0, 1 or 2 slices; publish what was
    written with gn_fifo_enqueue_nocopy."""
    cdef uint32_t tail = f.tail
    return _slices(f, tail, f.size - gn_fifo_used(f, gn_atomic_load_u32(&f.head), tail), out)


cdef void gn_fifo_want_deq_ntf(gn_fifo_t* f, uint32_t flags, uint32_t thresh) noexcept nogil:
    """Producer: ask for a notification (GN_FIFO_DEQ_NTF_* flags; thresh is
    the free space GN_FIFO_DEQ_NTF_THRESH waits for)."""
    f.deq_thresh = thresh
    gn_atomic_fetch_or_u32(&f.want_deq_ntf, flags)


cdef bint gn_fifo_needs_deq_ntf(gn_fifo_t* f, uint32_t n_last_deq) noexcept nogil:
    """Consumer, after dequeuing n_last_deq bytes: must the producer be told?"""
    cdef uint32_t w = gn_atomic_load_u32(&f.want_deq_ntf), used
    if w == 0:
        return False
    if w & GN_FIFO_DEQ_NTF:
        return True
    used = gn_fifo_max_dequeue(f)
    if (w & GN_FIFO_DEQ_NTF_IF_FULL) and used < f.size and <uint64_t>used + n_last_deq >= f.size:
        return True
    if (w & GN_FIFO_DEQ_NTF_IF_EMPTY) and used == 0:
        return True
    if (w & GN_FIFO_DEQ_NTF_THRESH) and f.size - used >= f.deq_thresh:
        return True
    return False


cdef void gn_fifo_clear_deq_ntf(gn_fifo_t* f) noexcept nogil:
    gn_atomic_store_u32(&f.want_deq_ntf, 0)


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
    opens one that exists (checked: magic, size, bounds)."""
    cdef gn_fifo_t* f
    cdef readonly Segment segment
    cdef readonly uint64_t offset

    def __cinit__(self, Segment segment, uint64_t offset):
        cdef gn_fifo_t* f
        self.segment = segment
        if segment.seg.base == NULL or not gn_segment_contains(&segment.seg, offset, sizeof(gn_fifo_t)):
            raise ValueError(f"fifo offset {offset} outside segment {segment.name!r}")
        f = <gn_fifo_t*>(segment.seg.base + offset)
        if (f.magic != GN_FIFO_MAGIC or f.size < GN_FIFO_MIN_SIZE or f.size > GN_FIFO_MAX_SIZE
                or (f.size & (f.size - 1)) or not gn_segment_contains(&segment.seg, offset, gn_fifo_bytes_for(f.size))):
            raise ValueError(f"no fifo at offset {offset} of segment {segment.name!r}")
        self.f = f
        self.offset = offset

    @staticmethod
    def alloc(Segment segment, uint64_t size):
        cdef uint32_t s = round_size(size)
        cdef uint64_t off = gn_segment_alloc(&segment.seg, gn_fifo_bytes_for(s), GN_SEGMENT_KIND_FIFO)
        if off == 0:
            raise MemoryError(f"segment {segment.name!r}: no room for a {s}-byte fifo")
        gn_fifo_init(<gn_fifo_t*>(segment.seg.base + off), s)
        (<gn_fifo_t*>(segment.seg.base + off)).segment_index = segment.seg.index
        return Fifo(segment, off)

    def free(self):
        """Give the fifo's block back to its segment (this object is then dead)."""
        self._f().magic = 0
        gn_segment_free(&self.segment.seg, self.offset)
        self.f = NULL

    cdef gn_fifo_t* _f(self) except NULL:
        if self.f == NULL:
            raise ValueError("fifo freed")
        return self.f

    def address(self):
        return <size_t>self._f()

    @property
    def size(self):
        return self._f().size

    def _set_position(self, uint32_t pos):
        """Tests only: move an empty fifo's head and tail to pos (to cross
        the u32 wrap). Refused unless the fifo is empty with no ranges."""
        cdef gn_fifo_t* f = self._f()
        if f.head != f.tail or f.n_ooo:
            raise ValueError("fifo not empty")
        f.head = f.tail = pos

    @property
    def head(self):
        return self._f().head

    @property
    def tail(self):
        return self._f().tail

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
