# Internet checksum (RFC 1071) over flat bytes, in the big-endian word
# domain, 32 bits at a time; and the IPv4 pseudo header of UDP/TCP.
#
# Sums are partial (unfolded, uncomplemented) 64-bit values so pieces can be
# added: a piece that starts at an odd byte offset of the message must be
# added through gn_inet_sum_swap (RFC 1071 s.2(B): byte order swap).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16, gn_net32


cdef inline uint64_t gn_inet_sum(const uint8_t* p, uint32_t n, uint64_t s) noexcept nogil:
    """Add n bytes (big-endian 16-bit words, an odd last byte padded with
    zero) to the partial sum s."""
    while n >= 16:
        s += <uint64_t>gn_net32(p) + gn_net32(p + 4) + gn_net32(p + 8) + gn_net32(p + 12)
        p += 16
        n -= 16
    while n >= 4:
        s += gn_net32(p)
        p += 4
        n -= 4
    if n >= 2:
        s += gn_net16(p)
        p += 2
        n -= 2
    if n:
        s += <uint32_t>p[0] << 8
    return s


cdef inline uint16_t gn_inet_fold(uint64_t s) noexcept nogil:
    """Fold a partial sum to 16 bits (not complemented)."""
    s = (s & 0xffffffffU) + (s >> 32)
    s = (s & 0xffffffffU) + (s >> 32)
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return <uint16_t>s


cdef inline uint64_t gn_inet_sum_swap(uint64_t s) noexcept nogil:
    """A piece's partial sum as seen from an odd offset (bytes swapped)."""
    cdef uint16_t f = gn_inet_fold(s)
    return <uint16_t>((f << 8) | (f >> 8))


cdef inline uint16_t gn_inet_checksum(uint64_t s) noexcept nogil:
    """The value to store in a checksum field: ~fold(sum)."""
    return <uint16_t>(~gn_inet_fold(s) & 0xffff)


cdef inline uint64_t gn_ip4_pseudo_sum(const uint8_t* ip, uint8_t protocol, uint32_t l4_len) noexcept nogil:
    """Partial sum of the IPv4 pseudo header (src, dst, protocol, L4
    length) of the header at ip."""
    return <uint64_t>gn_net32(ip + 12) + gn_net32(ip + 16) + protocol + l4_len


cdef inline uint16_t gn_csum_update16(uint16_t csum, uint16_t old, uint16_t new) noexcept nogil:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changes from
    old to new: HC' = ~(~HC + ~m + m')."""
    cdef uint32_t c = (~(<uint32_t>csum)) & 0xffff
    c += (~(<uint32_t>old)) & 0xffff
    c += new
    c = (c & 0xffff) + (c >> 16)
    c = (c & 0xffff) + (c >> 16)
    return <uint16_t>(~c & 0xffff)
