# Single-producer single-consumer byte fifo in a segment (see fifo.pyx).
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from graphnet.includes.platform cimport gn_atomic_load_u32, gn_atomic_store_u32, gn_atomic_exchange_u32

cdef enum:
    GN_FIFO_MAGIC = 0x6f666966         # "fifo"
    GN_FIFO_MAX_OOO = 16               # out-of-order ranges kept per fifo
    GN_FIFO_MIN_SIZE = 64
    GN_FIFO_MAX_SIZE = 1 << 30
    GN_FIFO_E_FULL = -1                # enqueue_segments(allow_partial=0): no room for all
    GN_FIFO_E_OOO_FULL = -2            # no free out-of-order slot for a new range
    GN_FIFO_E_RANGE = -3               # out-of-order data beyond the free space
    # want_deq_ntf flags (set by the producer, cleared by the consumer's notify)
    GN_FIFO_DEQ_NTF = 1                # after any dequeue
    GN_FIFO_DEQ_NTF_IF_FULL = 2        # after a dequeue from a full fifo
    GN_FIFO_DEQ_NTF_IF_EMPTY = 4       # when the fifo becomes empty
    GN_FIFO_DEQ_NTF_THRESH = 8         # when free space reaches deq_thresh

ctypedef struct gn_fifo_ooo_t:
    uint32_t start                     # free-running position of the first byte
    uint32_t length

ctypedef struct gn_fifo_shared_t:
    # The part in the segment, which the app's process can write at any
    # time: no pointers, and nothing here that the engine trusts. size,
    # segment_index and the master indices are copies for the app (the
    # engine keeps its own in gn_fifo_t); head and tail are read once into
    # a local and clamped (used <= size, positions masked).
    # line 0: set at init, read by the app
    uint32_t magic
    uint32_t size                      # capacity, a power of two (the app's copy)
    uint32_t segment_index
    uint32_t master_thread_index       # the engine's session that owns it
    uint32_t master_session_index
    uint32_t app_session_index         # the app's own index, opaque to the engine
    uint32_t flags
    uint8_t pad0[36]
    # line 1: written by the consumer only
    uint32_t head                      # free-running
    uint8_t pad1[60]
    # line 2: the producer's. The event flags sit beside tail: every
    # enqueue writes tail and every rx notify reads has_event, so one
    # header line per datagram instead of two; the consumer only clears them
    uint32_t tail                      # free-running (producer only)
    uint32_t has_event                 # 1: an event for this fifo is outstanding (atomic)
    uint32_t want_deq_ntf              # GN_FIFO_DEQ_NTF_* (producer sets, consumer clears; atomic)
    uint32_t deq_thresh                # producer only
    uint8_t pad2[48]

ctypedef struct gn_fifo_t:
    # A process's private handle on a fifo (VPP's svm_fifo split): the
    # geometry every operation uses, fixed when the fifo was made (engine)
    # or opened and checked (app), never read back from the segment; the
    # out-of-order ranges (only the producer's, so kept here), and the
    # producer's own tail: a producer never reads the shared tail back, so
    # the other side rewriting it moves nothing. 56 bytes:
    # the engine keeps a session's two inside the session (gn_session_t),
    # so the per-packet path reaches the shared header with no extra line.
    gn_fifo_shared_t* shr
    uint8_t* data                      # shr + sizeof(gn_fifo_shared_t)
    uint32_t size                      # trusted capacity, a power of two
    uint32_t segment_index             # trusted: the segment it was allocated in
    uint64_t offset                    # of shr in that segment
    uint32_t tail                      # producer: its own tail (published to shr.tail, never read back)
    uint32_t head_seen                 # producer: the consumer's head as last read (free space without
                                       # a load from the segment until it runs short)
    uint32_t n_ooo
    uint32_t n_clamped                 # head/tail read from the segment that made used > size
    gn_fifo_ooo_t* ooo                 # GN_FIFO_MAX_OOO slots, sorted by position, merged, none at
                                       # tail; NULL until the first out-of-order write (malloc'd then,
                                       # freed by gn_fifo_release) unless the owner gave storage

ctypedef struct gn_fifo_slice_t:
    uint8_t* data
    uint32_t len

cdef inline uint8_t* gn_fifo_data(gn_fifo_t* f) noexcept nogil:
    return f.data

cdef inline uint32_t gn_fifo_used(gn_fifo_t* f, uint32_t head, uint32_t tail) noexcept nogil:
    """Readable bytes from head and tail as read (once) from the segment:
    at most the trusted size, a larger value (the other side wrote junk)
    counted in n_clamped."""
    cdef uint32_t n = tail - head
    if n <= f.size:
        return n
    f.n_clamped += 1
    return f.size

cdef inline uint32_t gn_fifo_max_dequeue(gn_fifo_t* f) noexcept nogil:
    """Bytes readable (either side may call; clamped if the peer wrote junk)."""
    cdef uint32_t tail = gn_atomic_load_u32(&f.shr.tail)
    return gn_fifo_used(f, gn_atomic_load_u32(&f.shr.head), tail)

cdef inline uint32_t gn_fifo_max_enqueue(gn_fifo_t* f) noexcept nogil:
    return f.size - gn_fifo_max_dequeue(f)

cdef inline bint gn_fifo_set_event(gn_fifo_t* f) noexcept nogil:
    """Mark an event outstanding; true if none was (the caller sends one)."""
    return gn_atomic_exchange_u32(&f.shr.has_event, 1) == 0

cdef inline void gn_fifo_unset_event(gn_fifo_t* f) noexcept nogil:
    """The consumer clears the flag, then looks at the fifo again. An
    exchange, not a store: a store may pass the consumer's next load of
    the tail (x86 reorders a store after a later load), so the producer
    could still see the flag set, send no event, and the consumer miss the
    bytes it enqueued: a lost wakeup. With both sides exchanging, the
    producer that reads 1 was ordered before this exchange, and its tail
    is visible to the consumer's re-check."""
    gn_atomic_exchange_u32(&f.shr.has_event, 0)

cdef inline bint gn_fifo_has_event(gn_fifo_t* f) noexcept nogil:
    return gn_atomic_load_u32(&f.shr.has_event) != 0

cdef void gn_fifo_init(gn_fifo_t* f, gn_fifo_shared_t* shr, uint32_t size, uint32_t segment_index,
                       uint64_t offset) noexcept nogil
cdef int gn_fifo_open(gn_fifo_t* f, uint8_t* base, uint64_t seg_size, uint32_t segment_index,
                      uint64_t offset) noexcept nogil
cdef bint gn_fifo_tampered(gn_fifo_t* f) noexcept nogil
cdef void gn_fifo_release(gn_fifo_t* f) noexcept nogil
cdef object gn_fifo_borrow(object segment, gn_fifo_t* f)
cdef uint64_t gn_fifo_bytes_for(uint32_t size) noexcept nogil
cdef int gn_fifo_enqueue_with_offset(gn_fifo_t* f, uint32_t offset, const uint8_t* src, uint32_t n) noexcept nogil
cdef int gn_fifo_enqueue_nocopy(gn_fifo_t* f, uint32_t n) noexcept nogil
cdef int gn_fifo_dequeue(gn_fifo_t* f, uint8_t* dst, uint32_t n) noexcept nogil
cdef int gn_fifo_peek(gn_fifo_t* f, uint32_t offset, uint8_t* dst, uint32_t n) noexcept nogil
cdef int gn_fifo_dequeue_drop(gn_fifo_t* f, uint32_t n) noexcept nogil
cdef void gn_fifo_dequeue_drop_all(gn_fifo_t* f) noexcept nogil
cdef uint32_t gn_fifo_readable(gn_fifo_t* f, gn_fifo_slice_t* out) noexcept nogil
cdef uint32_t gn_fifo_writable(gn_fifo_t* f, gn_fifo_slice_t* out) noexcept nogil
cdef void gn_fifo_want_deq_ntf(gn_fifo_t* f, uint32_t flags, uint32_t thresh) noexcept nogil
cdef bint gn_fifo_needs_deq_ntf(gn_fifo_t* f, uint32_t n_last_deq) noexcept nogil
cdef void gn_fifo_clear_deq_ntf(gn_fifo_t* f) noexcept nogil
cdef uint32_t gn_fifo_ooo_collect(gn_fifo_t* f, uint32_t tail, uint32_t n) noexcept nogil

# The producer's in-order enqueue: inline here (every transport's per-packet
# path calls it), the rest of the fifo in fifo.pyx.

cdef inline void gn_fifo_copy_in(gn_fifo_t* f, uint32_t pos, const uint8_t* src, uint32_t n) noexcept nogil:
    cdef uint32_t i = pos & (f.size - 1), first = f.size - i
    if first > n:
        first = n
    memcpy(f.data + i, src, first)
    if n > first:
        memcpy(f.data, src + first, n - first)

cdef inline uint32_t gn_fifo_free_for(gn_fifo_t* f, uint32_t need) noexcept nogil:
    """Producer: free bytes, from its own tail and the head it last saw;
    only when they are fewer than `need` is the head read again from the
    segment (once, acquire; junk that would make used > size is clamped
    and counted)."""
    cdef uint32_t free = f.size - (f.tail - f.head_seen), head, used
    if free >= need:
        return free
    head = gn_atomic_load_u32(&f.shr.head)
    used = gn_fifo_used(f, head, f.tail)
    f.head_seen = f.tail - used
    return f.size - used

cdef inline int gn_fifo_publish(gn_fifo_t* f, uint32_t tail, uint32_t n) noexcept nogil:
    if f.n_ooo:
        n = gn_fifo_ooo_collect(f, tail, n)
    f.tail = tail + n
    gn_atomic_store_u32(&f.shr.tail, tail + n)
    return <int>n

cdef inline int gn_fifo_enqueue(gn_fifo_t* f, const uint8_t* src, uint32_t n) noexcept nogil:
    """Append up to n bytes (as many as fit)."""
    cdef uint32_t tail = f.tail, free = gn_fifo_free_for(f, n)
    if n > free:
        n = free
    if n == 0:
        return 0
    gn_fifo_copy_in(f, tail, src, n)
    return gn_fifo_publish(f, tail, n)

cdef inline int gn_fifo_enqueue_segments(gn_fifo_t* f, const gn_fifo_slice_t* pieces, uint32_t n_pieces,
                                         bint allow_partial) noexcept nogil:
    """Append the pieces back to back and publish them with one tail store:
    the consumer sees all of them or none. Without allow_partial, nothing is
    written unless all fit (GN_FIFO_E_FULL)."""
    cdef uint32_t tail = f.tail, free
    cdef uint32_t i, n = 0, len
    cdef uint64_t total = 0
    for i in range(n_pieces):
        total += pieces[i].len
    free = gn_fifo_free_for(f, <uint32_t>total if total < f.size else f.size)
    if not allow_partial and total > free:
        return GN_FIFO_E_FULL
    for i in range(n_pieces):
        len = pieces[i].len
        if len > free - n:
            len = free - n
        gn_fifo_copy_in(f, tail + n, pieces[i].data, len)
        n += len
        if n == free:
            break
    if n == 0:
        return 0
    return gn_fifo_publish(f, tail, n)


from graphnet.session.segment cimport Segment

cdef class Fifo:
    # Declared here so other modules (graphnet.app.dgram: the app's datagram
    # path) reach the handle in C; see fifo.pyx for the methods.
    cdef gn_fifo_t own
    cdef gn_fifo_ooo_t own_ooo[GN_FIFO_MAX_OOO]
    cdef gn_fifo_t* f
    cdef readonly Segment segment
    cdef readonly uint64_t offset
    cdef gn_fifo_t* _f(self) except NULL
    cdef list _views(self, gn_fifo_slice_t* sl, uint32_t k)
