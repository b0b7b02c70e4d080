# Internet checksums over a packet that may span a buffer chain (IPv4
# payloads: ICMP, UDP). The bytes are taken from the current data of the
# first buffer onwards, following next_buffer.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from graphnet.vlib.buffer cimport gn_buffer_t, GN_BUFFER_F_NEXT_PRESENT, gn_buffer_current
from graphnet.vlib.main cimport gn_main_t, gn_main_buffer
from graphnet.wire.inet cimport gn_inet_sum, gn_inet_sum_swap


cdef inline uint64_t gn_chain_sum(gn_main_t* vm, gn_buffer_t* b, uint32_t off, uint32_t n, uint64_t s,
                                  bint* complete) noexcept nogil:
    """Add n bytes, from offset off of b's current data (off <
    current_length) on through the chain, to the partial sum s.
    complete[0] is False when the chain ends before n bytes."""
    cdef const uint8_t* p = gn_buffer_current(b) + off
    cdef uint32_t avail = b.current_length - off, k
    cdef uint64_t part
    cdef bint odd = False
    complete[0] = True
    while True:
        k = n if n < avail else avail
        part = gn_inet_sum(p, k, 0)
        s += gn_inet_sum_swap(part) if odd else part
        if k & 1:
            odd = not odd
        n -= k
        if n == 0:
            return s
        if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
            complete[0] = False
            return s
        b = gn_main_buffer(vm, b.next_buffer)
        p = gn_buffer_current(b)
        avail = b.current_length
