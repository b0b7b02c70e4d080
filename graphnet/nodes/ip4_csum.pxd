# Internet checksums over a packet that may span a buffer chain (IPv4
# payloads: ICMP, UDP, TCP). The bytes are taken from the current data of
# the first buffer onwards, following next_buffer.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16
from graphnet.vlib.buffer cimport gn_buffer_t, GN_BUFFER_F_NEXT_PRESENT, gn_buffer_current
from graphnet.vlib.main cimport gn_main_t, gn_main_buffer
from graphnet.wire.inet cimport gn_inet_sum, gn_inet_sum_swap, gn_inet_checksum, gn_ip4_pseudo_sum
from graphnet.wire.ip4 cimport GN_IP4_FRAG_OFFSET_MASK, GN_IP4_FLAG_MF, GN_IP4_PROTO_UDP, GN_IP4_PROTO_TCP


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


cdef inline void gn_ip4_fill_l4_checksum(gn_main_t* vm, gn_buffer_t* b, uint8_t* ip, uint32_t hlen,
                                         uint32_t total) noexcept nogil:
    """The UDP or TCP datagram at ip (inside b's first buffer, header of
    hlen bytes, total bytes with it) carries only a partial checksum (the
    kernel left it to offload): write the full one, computed across the
    chain. Fragments, other protocols and headers that do not fit the
    first buffer are left alone."""
    cdef uint32_t off, l4len = total - hlen, ip_off = <uint32_t>(ip - gn_buffer_current(b))
    cdef uint16_t c
    cdef bint complete
    if total < hlen or gn_net16(ip + 6) & (GN_IP4_FLAG_MF | GN_IP4_FRAG_OFFSET_MASK):
        return
    if ip[9] == GN_IP4_PROTO_UDP and l4len >= 8:
        off = 6
    elif ip[9] == GN_IP4_PROTO_TCP and l4len >= 20:
        off = 16
    else:
        return
    if b.current_length < ip_off + hlen + off + 2:
        return
    gn_put_net16(ip + hlen + off, 0)
    c = gn_inet_checksum(gn_chain_sum(vm, b, ip_off + hlen, l4len, gn_ip4_pseudo_sum(ip, ip[9], l4len), &complete))
    if ip[9] == GN_IP4_PROTO_UDP and c == 0:
        c = 0xffff
    gn_put_net16(ip + hlen + off, c)
