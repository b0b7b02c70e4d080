# Copying packets between flat memory and buffer chains: shared by the
# device nodes (af_packet, pcap, ...). Per-packet helpers, inline, nogil.
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcpy
from graphnet.vlib.buffer cimport (gn_buffer_t, GN_BUFFER_DATA_SIZE, GN_BUFFER_F_NEXT_PRESENT, GN_INVALID_INDEX,
                                   gn_buffer_current)
from graphnet.vlib.main cimport gn_main_t, gn_main_buffer, gn_main_alloc, gn_main_free


cdef inline int gn_copy_to_chain(gn_main_t* vm, uint32_t head, const uint8_t* src, uint32_t length) noexcept nogil:
    """Copy `length` bytes into buffer `head` (current_data 0), chaining
    more buffers when they do not fit one. Returns 0, or -1 when no buffer
    was left for the tail (the tail buffers taken so far are freed; head
    is the caller's to free)."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, head)
    cdef gn_buffer_t* prev
    cdef uint32_t k, bi, first_tail = GN_INVALID_INDEX
    k = length if length < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
    b.current_data = 0
    b.current_length = k
    memcpy(b.data, src, k)
    if k == length:
        return 0
    b.total_length_not_including_first_buffer = length - k
    prev = b
    src += k
    length -= k
    while length:
        if gn_main_alloc(vm, &bi, 1) != 1:
            if first_tail != GN_INVALID_INDEX:
                gn_main_free(vm, &first_tail, 1)          # frees the whole tail chain
            gn_main_buffer(vm, head).flags &= ~GN_BUFFER_F_NEXT_PRESENT
            gn_main_buffer(vm, head).total_length_not_including_first_buffer = 0
            return -1
        if first_tail == GN_INVALID_INDEX:
            first_tail = bi
        prev.flags |= GN_BUFFER_F_NEXT_PRESENT
        prev.next_buffer = bi
        b = gn_main_buffer(vm, bi)
        k = length if length < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
        b.current_data = 0
        b.current_length = k
        memcpy(b.data, src, k)
        src += k
        length -= k
        prev = b
    return 0


cdef inline uint32_t gn_chain_length(gn_main_t* vm, uint32_t bi) noexcept nogil:
    """Bytes of a packet: current_length summed over its chain."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint32_t n = b.current_length
    while b.flags & GN_BUFFER_F_NEXT_PRESENT:
        b = gn_main_buffer(vm, b.next_buffer)
        n += b.current_length
    return n


cdef inline uint32_t gn_copy_from_chain(gn_main_t* vm, uint32_t bi, uint8_t* dst, uint32_t max_bytes) noexcept nogil:
    """Copy up to max_bytes of a packet (its chain flattened) to dst;
    returns the bytes copied."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint32_t n = 0, k
    while True:
        k = b.current_length
        if k > max_bytes - n:
            k = max_bytes - n
        memcpy(dst + n, gn_buffer_current(b), k)
        n += k
        if n == max_bytes or not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
            return n
        b = gn_main_buffer(vm, b.next_buffer)
