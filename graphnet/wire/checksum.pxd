# Internet checksum (RFC 1071) helpers, inline for per-packet use.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_read_u32, gn_write_u16, gn_net_to_host16, gn_put_net16


cdef inline uint64_t gn_csum_add(const uint8_t* p, uint32_t n, uint64_t sum) noexcept nogil:
    """Add n bytes (big-endian 16-bit words) to a running ones-complement sum.

    Sums 32-bit host-order words (any alignment), folds them to 16 bits and
    converts to network order: a ones-complement sum commutes with byte
    swapping, so this equals the word-by-word big-endian sum."""
    cdef uint64_t acc = 0
    cdef uint32_t i = 0
    while i + 4 <= n:
        acc += gn_read_u32(p + i)
        i += 4
    while acc >> 16:
        acc = (acc & 0xffff) + (acc >> 16)
    sum += gn_net_to_host16(<uint16_t>acc)
    if i + 1 < n:
        sum += (<uint32_t>p[i] << 8) | p[i + 1]
        i += 2
    if i < n:
        sum += <uint32_t>p[i] << 8
    return sum


cdef inline uint16_t gn_csum_fold(uint64_t sum) noexcept nogil:
    """Fold to 16 bits and complement: the value to store in a header."""
    while sum >> 16:
        sum = (sum & 0xffff) + (sum >> 16)
    return <uint16_t>(~sum & 0xffff)


cdef inline void gn_store_be16(uint8_t* p, uint16_t v) noexcept nogil:
    gn_put_net16(p, v)


cdef inline uint16_t gn_load_be16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline int gn_ip4_fix_checksums(uint8_t* ip, uint32_t avail) noexcept nogil:
    """Recompute the IPv4 header checksum and, for an unfragmented UDP or TCP
    payload that is all present, its L4 checksum. Returns -1 if the bytes
    are not a well-formed IPv4 header within avail."""
    cdef uint32_t ihl, total, l4_len
    cdef uint64_t sum
    cdef uint8_t proto
    cdef uint8_t* l4
    cdef uint16_t csum
    if avail < 20 or (ip[0] >> 4) != 4:
        return -1
    ihl = (ip[0] & 0x0f) * 4
    total = gn_load_be16(ip + 2)
    if ihl < 20 or ihl > avail or total < ihl or total > avail:
        return -1
    gn_write_u16(ip + 10, 0)
    gn_store_be16(ip + 10, gn_csum_fold(gn_csum_add(ip, ihl, 0)))
    if (gn_load_be16(ip + 6) & 0x3fff) != 0:      # a fragment: leave L4 alone
        return 0
    proto = ip[9]
    l4 = ip + ihl
    l4_len = total - ihl
    if proto == 17 and l4_len >= 8:
        gn_write_u16(l4 + 6, 0)
    elif proto == 6 and l4_len >= 20:
        gn_write_u16(l4 + 16, 0)
    else:
        return 0
    sum = gn_csum_add(ip + 12, 8, 0)             # pseudo header: addresses,
    sum += proto                                 # protocol and L4 length
    sum += l4_len
    sum = gn_csum_add(l4, l4_len, sum)
    csum = gn_csum_fold(sum)
    if proto == 17:
        gn_store_be16(l4 + 6, csum if csum != 0 else 0xffff)   # 0 means "none" in UDP
    else:
        gn_store_be16(l4 + 16, csum)
    return 0
