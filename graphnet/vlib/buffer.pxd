# The buffer pool: one mmap arena of fixed-size buffers, a shared free list,
# per-loop caches over it and a FIFO queue of waiters for released buffers.
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from "gn_types.h" nogil:
    enum:
        GN_BUFFER_HEADROOM
        GN_BUFFER_DATA_SIZE
        GN_BUFFER_META_SIZE
        GN_BUFFER_OPAQUE_SIZE
        GN_FRAME_SIZE
        GN_INVALID_INDEX
        GN_BUFFER_STRIDE
        GN_BUFFER_INIT_BYTES
        GN_BUFFER_F_NEXT_PRESENT
        GN_BUFFER_F_TRACED
        GN_BUFFER_F_IS_FREE
        GN_BUFFER_F_GSO
        GN_BUFFER_F_L4_CSUM_OFFLOAD
        GN_BUFFER_F_LOCALLY_ORIGINATED
        GN_BUFFER_F_USER_0
        GN_RX
        GN_TX
        GN_FRAME_F_TRACE
    ctypedef struct gn_buffer_t:
        int16_t current_data
        uint16_t current_length
        uint32_t flags
        uint32_t next_buffer
        uint32_t total_length_not_including_first_buffer
        uint32_t sw_if_index[2]
        uint32_t trace_handle
        uint16_t error
        int16_t l2_hdr_offset
        int16_t l3_hdr_offset
        int16_t l4_hdr_offset
        uint16_t gso_size
        uint8_t opaque[64]
        uint8_t pre_data[128]
        uint8_t data[2048]
    ctypedef struct gn_frame_t:
        uint16_t n_vectors
        uint16_t flags
        uint32_t scalar[3]
        uint32_t buffers[256]
    gn_buffer_t* gn_buffer_at(uint8_t* base, uint32_t bi)
    uint8_t* gn_buffer_current(gn_buffer_t* b)


cdef struct gn_buffer_waiter_t
ctypedef void (*gn_buffer_waiter_wake_fn)(gn_buffer_waiter_t* w) noexcept nogil

cdef struct gn_buffer_waiter_t:
    # Intrusive FIFO node; queued is 1 while linked into the pool's queue.
    gn_buffer_waiter_t* prev
    gn_buffer_waiter_t* next
    uint8_t queued
    gn_buffer_waiter_wake_fn wake
    void* ctx
    uint64_t n_wakes
    uint64_t last_wake_seq

ctypedef struct gn_buffer_pool_t:
    uint8_t* base
    size_t arena_size
    uint32_t n_buffers
    uint32_t* free_list          # stack of free indices (shared part)
    uint32_t n_free              # entries in free_list
    uint32_t lock                # spinlock over free_list and the waiter queue
    uint64_t n_double_free       # frees of a buffer that was already free
    gn_buffer_waiter_t* wait_head
    gn_buffer_waiter_t* wait_tail
    uint32_t n_waiters
    uint64_t wake_seq


ctypedef struct gn_buffer_cache_t:
    # One per loop (thread). Only its owner touches it, without a lock.
    gn_buffer_pool_t* pool
    uint32_t n
    uint32_t buffers[1024]

cdef uint32_t gn_buffer_alloc(gn_buffer_cache_t* c, uint32_t* out, uint32_t n) noexcept nogil
cdef uint32_t gn_buffer_alloc_uninit(gn_buffer_cache_t* c, uint32_t* out, uint32_t n) noexcept nogil
cdef void gn_buffer_free(gn_buffer_cache_t* c, const uint32_t* bis, uint32_t n) noexcept nogil
cdef void gn_buffer_flush_cache(gn_buffer_cache_t* c) noexcept nogil
cdef void gn_buffer_waiter_add(gn_buffer_pool_t* p, gn_buffer_waiter_t* w) noexcept nogil
cdef void gn_buffer_waiter_remove(gn_buffer_pool_t* p, gn_buffer_waiter_t* w) noexcept nogil
cdef uint32_t gn_buffer_chain_length(gn_buffer_pool_t* p, uint32_t bi) noexcept nogil


cdef inline void gn_buffer_init_meta(gn_buffer_t* b) noexcept nogil:
    """The metadata of a freshly allocated buffer (GN_BUFFER_INIT_BYTES
    bytes: current_data .. gso_size)."""
    b.current_data = 0
    b.current_length = 0
    b.flags = 0
    b.next_buffer = GN_INVALID_INDEX
    b.total_length_not_including_first_buffer = 0
    b.sw_if_index[0] = GN_INVALID_INDEX
    b.sw_if_index[1] = GN_INVALID_INDEX
    b.trace_handle = GN_INVALID_INDEX
    b.error = 0
    b.l2_hdr_offset = 0
    b.l3_hdr_offset = 0
    b.l4_hdr_offset = 0
    b.gso_size = 0


cdef inline void gn_buffer_meta_template(uint64_t* out, uint32_t rx_sw_if_index) noexcept nogil:
    """out[5] (GN_BUFFER_INIT_BYTES): a fresh buffer's metadata with
    sw_if_index[RX] set. An input node that allocates uninitialised buffers
    copies it into each one it fills (memcpy of GN_BUFFER_INIT_BYTES)."""
    cdef gn_buffer_t fresh
    gn_buffer_init_meta(&fresh)
    fresh.sw_if_index[GN_RX] = rx_sw_if_index
    memcpy(out, &fresh, GN_BUFFER_INIT_BYTES)


cdef inline gn_buffer_t* gn_buf(gn_buffer_pool_t* p, uint32_t bi) noexcept nogil:
    return gn_buffer_at(p.base, bi)


cdef class BufferPool:
    cdef gn_buffer_pool_t* pool
    cdef list caches             # BufferCache objects registered for accounting
    cdef readonly object arena   # writable memoryview over the whole arena


cdef class BufferCache:
    cdef gn_buffer_cache_t* cache
    cdef readonly BufferPool pool
