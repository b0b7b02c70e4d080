# Shared-memory segments: a memfd mapped with mmap, and a bounded
# offset-based allocator inside it (see segment.pyx for the invariants).
from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef enum:
    GN_SEGMENT_MAGIC = 0x676e5347        # "GSng"
    GN_SEGMENT_BLOCK_USED = 0x55534544
    GN_SEGMENT_BLOCK_FREE = 0x46524545
    GN_SEGMENT_ALIGN = 64                # every block and payload on a cache line
    GN_SEGMENT_HDR_SIZE = 128
    GN_SEGMENT_KIND_FIFO = 1
    GN_SEGMENT_KIND_MQ = 2
    GN_SEGMENT_KIND_OTHER = 3

ctypedef struct gn_segment_hdr_t:
    # At offset 0 of every segment; everything below is offsets, no pointers.
    uint32_t magic
    uint32_t lock                        # spinlock over the allocator
    uint64_t size                        # bytes mapped
    uint64_t free_head                   # first free block (sorted by offset), 0: none
    uint64_t bytes_free
    uint32_t n_used                      # blocks in use
    uint32_t n_free                      # blocks on the free list
    uint64_t n_alloc_failures
    uint64_t n_bad_frees

ctypedef struct gn_segment_block_t:
    # GN_SEGMENT_ALIGN bytes in front of every allocation.
    uint64_t size                        # the whole block, header included
    uint64_t next_free                   # next free block's offset (free blocks only)
    uint32_t magic                       # GN_SEGMENT_BLOCK_USED / _FREE
    uint32_t kind                        # GN_SEGMENT_KIND_* (what it holds, for show)
    uint8_t pad[40]

ctypedef struct gn_segment_t:
    # This process's view of a segment (never stored in shared memory).
    uint8_t* base
    uint64_t size
    int fd
    uint32_t index

cdef uint64_t gn_segment_alloc(gn_segment_t* seg, uint64_t size, uint32_t kind) noexcept nogil
cdef int gn_segment_free(gn_segment_t* seg, uint64_t offset) noexcept nogil

cdef inline void* gn_segment_ptr(gn_segment_t* seg, uint64_t offset) noexcept nogil:
    """The payload at `offset` (0 -> NULL); the caller checked the offset."""
    return NULL if offset == 0 else <void*>(seg.base + offset)

cdef inline uint64_t gn_segment_offset(gn_segment_t* seg, const void* p) noexcept nogil:
    return <uint64_t>(<const uint8_t*>p - seg.base)

cdef inline bint gn_segment_contains(gn_segment_t* seg, uint64_t offset, uint64_t n) noexcept nogil:
    """offset .. offset+n lies inside the segment's heap (bounds check for
    offsets that came from another process)."""
    return offset >= GN_SEGMENT_HDR_SIZE + GN_SEGMENT_ALIGN and offset <= seg.size and n <= seg.size - offset


cdef class Segment:
    cdef gn_segment_t seg
    cdef readonly str name
    cdef readonly bint owner             # created here (else attached to an fd)
    cdef object _fd_owner                # keeps the fd until close()
    cdef _map(self, int fd, uint64_t size)
    cdef _init_header(self)
    cdef _unmap(self)
    cdef gn_segment_t* _check(self) except NULL
