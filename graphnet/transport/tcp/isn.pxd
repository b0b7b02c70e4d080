# Initial sequence numbers (RFC 6528) and per-connection timestamp offsets
# from a keyed hash of the 4-tuple: SipHash-2-4 (Aumasson & Bernstein,
# 2012), written from the paper's description.
#
# ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a
# timer ticking every 4 microseconds (RFC 6528 s.3), F the low 32 bits of
# SipHash-2-4 under a 128-bit secret. An attacker who sees one ISN learns
# nothing about another 4-tuple's; the same 4-tuple's ISNs keep increasing
# with the clock, so a new incarnation starts above an old one's sequence
# numbers (RFC 9293 s.3.4.1).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

ctypedef struct gn_tcp_secret_t:
    uint64_t k0                           # SipHash key, little-endian halves
    uint64_t k1


cdef inline uint64_t _rotl(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))


cdef inline uint64_t gn_siphash24(uint64_t k0, uint64_t k1, const uint8_t* p, uint32_t n) noexcept nogil:
    """SipHash-2-4 of the n bytes at p under the key (k0, k1) (each the
    little-endian reading of 8 key bytes)."""
    cdef uint64_t v0 = k0 ^ 0x736f6d6570736575ULL
    cdef uint64_t v1 = k1 ^ 0x646f72616e646f6dULL
    cdef uint64_t v2 = k0 ^ 0x6c7967656e657261ULL
    cdef uint64_t v3 = k1 ^ 0x7465646279746573ULL
    cdef uint64_t m, b = (<uint64_t>n) << 56
    cdef uint32_t i = 0, j, r
    while True:
        if i + 8 <= n:
            m = 0
            for j in range(8):
                m |= (<uint64_t>p[i + j]) << (8 * j)
            i += 8
        else:
            m = b
            for j in range(n - i):
                m |= (<uint64_t>p[i + j]) << (8 * j)
            i = n + 1                     # the final block is done
        v3 ^= m
        for r in range(2):
            v0 += v1; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)
            v2 += v3; v3 = _rotl(v3, 16); v3 ^= v2
            v0 += v3; v3 = _rotl(v3, 21); v3 ^= v0
            v2 += v1; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)
        v0 ^= m
        if i > n:
            break
    v2 ^= 0xff
    for r in range(4):
        v0 += v1; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)
        v2 += v3; v3 = _rotl(v3, 16); v3 ^= v2
        v0 += v3; v3 = _rotl(v3, 21); v3 ^= v0
        v2 += v1; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)
    return v0 ^ v1 ^ v2 ^ v3


cdef inline uint64_t gn_tcp_tuple_hash(const gn_tcp_secret_t* key, uint32_t lcl_ip, uint16_t lcl_port,
                                       uint32_t rmt_ip, uint16_t rmt_port, uint32_t salt,
                                       uint32_t salt2) noexcept nogil:
    """Keyed hash of a 4-tuple and two salts that separate its uses (ISN,
    timestamp offset, SYN cookie with its period and the peer's ISN)."""
    cdef uint8_t m[20]
    memcpy(m, &lcl_ip, 4)
    memcpy(m + 4, &rmt_ip, 4)
    memcpy(m + 8, &lcl_port, 2)
    memcpy(m + 10, &rmt_port, 2)
    memcpy(m + 12, &salt, 4)
    memcpy(m + 16, &salt2, 4)
    return gn_siphash24(key.k0, key.k1, m, 20)


cdef inline uint32_t gn_tcp_isn(const gn_tcp_secret_t* key, uint32_t lcl_ip, uint16_t lcl_port,
                                uint32_t rmt_ip, uint16_t rmt_port, uint64_t now_us) noexcept nogil:
    """RFC 6528 ISN for a 4-tuple at time now_us (microseconds)."""
    return <uint32_t>(now_us >> 2) + <uint32_t>gn_tcp_tuple_hash(key, lcl_ip, lcl_port, rmt_ip, rmt_port, 0, 0)


cdef inline uint32_t gn_tcp_ts_offset(const gn_tcp_secret_t* key, uint32_t lcl_ip, uint16_t lcl_port,
                                      uint32_t rmt_ip, uint16_t rmt_port) noexcept nogil:
    """A per-connection offset added to our timestamp clock (RFC 7323
    s.5.4: TSval must not reveal the host's uptime across connections)."""
    return <uint32_t>gn_tcp_tuple_hash(key, lcl_ip, lcl_port, rmt_ip, rmt_port, 1, 0)
