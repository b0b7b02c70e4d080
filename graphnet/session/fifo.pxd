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

ctypedef struct gn_fifo_t:
    # Lives in a segment; no pointers. The data follows this header.
    # line 0: set at init, read by both
    uint32_t magic
    uint32_t size                      # capacity, a power of two
    uint32_t segment_index
    uint32_t master_thread_index       # the engine's session that owns it
    uint32_t master_session_index
    uint32_t app_session_index         # the app's own index, opaque to the engine
    uint32_t peer                      # cut-through: offset of the peer's fifo, else 0
    uint32_t flags
    uint8_t pad0[32]
    # line 1: written by the consumer only
    uint32_t head                      # free-running
    uint8_t pad1[60]
    # line 2-4: the producer's. The event flags sit beside tail (line 2):
    # every enqueue writes tail and every rx notify reads has_event, so one
    # header line per datagram instead of two; the consumer only clears them
    uint32_t tail                      # free-running (producer only)
    uint32_t has_event                 # 1: an event for this fifo is outstanding (atomic)
    uint32_t want_deq_ntf              # GN_FIFO_DEQ_NTF_* (producer sets, consumer clears; atomic)
    uint32_t deq_thresh                # producer only
    uint32_t n_ooo                     # producer only
    uint32_t pad2
    gn_fifo_ooo_t ooo[GN_FIFO_MAX_OOO] # sorted by position, merged, none at tail (producer only)
    uint8_t pad3[40]

ctypedef struct gn_fifo_slice_t:
    uint8_t* data
    uint32_t len

cdef inline uint8_t* gn_fifo_data(gn_fifo_t* f) noexcept nogil:
    return <uint8_t*>f + sizeof(gn_fifo_t)

cdef inline uint32_t gn_fifo_max_dequeue(gn_fifo_t* f) noexcept nogil:
    """Bytes readable (either side may call; clamped if the peer wrote junk)."""
    cdef uint32_t n = gn_atomic_load_u32(&f.tail) - gn_atomic_load_u32(&f.head)
    return n if n <= f.size else f.size

cdef inline uint32_t gn_fifo_max_enqueue(gn_fifo_t* f) noexcept nogil:
    return f.size - gn_fifo_max_dequeue(f)

cdef inline bint gn_fifo_set_event(gn_fifo_t* f) noexcept nogil:
    """Mark an event outstanding; true if none was (the caller sends one)."""
    return gn_atomic_exchange_u32(&f.has_event, 1) == 0

cdef inline void gn_fifo_unset_event(gn_fifo_t* f) noexcept nogil:
    gn_atomic_store_u32(&f.has_event, 0)

cdef inline bint gn_fifo_has_event(gn_fifo_t* f) noexcept nogil:
    return gn_atomic_load_u32(&f.has_event) != 0

cdef void gn_fifo_init(gn_fifo_t* f, uint32_t size) noexcept nogil
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

cdef inline uint32_t gn_fifo_used(gn_fifo_t* f, uint32_t head, uint32_t tail) noexcept nogil:
    cdef uint32_t n = tail - head
    return n if n <= f.size else f.size

cdef inline void gn_fifo_copy_in(gn_fifo_t* f, uint32_t pos, const uint8_t* src, uint32_t n) noexcept nogil:
    cdef uint32_t i = pos & (f.size - 1), first = f.size - i
    if first > n:
        first = n
    memcpy(gn_fifo_data(f) + i, src, first)
    if n > first:
        memcpy(gn_fifo_data(f), src + first, n - first)

cdef inline int gn_fifo_publish(gn_fifo_t* f, uint32_t tail, uint32_t n) noexcept nogil:
    if f.n_ooo:
        n = gn_fifo_ooo_collect(f, tail, n)
    gn_atomic_store_u32(&f.tail, tail + n)
    return <int>n

cdef inline int gn_fifo_enqueue(gn_fifo_t* f, const uint8_t* src, uint32_t n) noexcept nogil:
    """Append up to n bytes (as many as fit)."""
    cdef uint32_t tail = f.tail, free = f.size - gn_fifo_used(f, gn_atomic_load_u32(&f.head), tail)
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
    cdef uint32_t tail = f.tail, free = f.size - gn_fifo_used(f, gn_atomic_load_u32(&f.head), tail)
    cdef uint32_t i, n = 0, len
    cdef uint64_t total = 0
    if not allow_partial:
        for i in range(n_pieces):
            total += pieces[i].len
        if total > free:
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
