# IPv4 (RFC 791): header layout, constants, validation, checksum helpers,
# the RFC 1624 incremental update for a TTL decrement and a flow hash.
#
# Invariant: gn_ip4_validate reads nothing beyond `avail` bytes and checks
# each length before the fields that depend on it. Its result codes are the
# rows of ip4-input's error table (graphnet.wire.ip4.VALIDATE_ERRORS), in
# order, so a node can store the code as its error without a mapping.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16, gn_net32, gn_put_net16, gn_read_u16, gn_read_u32, gn_write_u16

cdef enum:
    GN_IP4_HEADER_LEN = 20
    GN_IP4_MAX_HEADER_LEN = 60
    GN_IP4_PROTO_ICMP = 1
    GN_IP4_PROTO_TCP = 6
    GN_IP4_PROTO_UDP = 17
    GN_IP4_FLAG_RESERVED = 0x8000
    GN_IP4_FLAG_DF = 0x4000
    GN_IP4_FLAG_MF = 0x2000
    GN_IP4_FRAG_OFFSET_MASK = 0x1fff

# gn_ip4_validate results (= ip4-input error rows; keep in step with
# VALIDATE_ERRORS in ip4.pyx)
cdef enum:
    GN_IP4_OK = 0
    GN_IP4_TOO_SHORT = 1                  # fewer than 20 bytes
    GN_IP4_BAD_VERSION = 2                # version is not 4
    GN_IP4_BAD_IHL = 3                    # IHL below 5
    GN_IP4_BAD_LENGTH = 4                 # total length below the header length
    GN_IP4_TRUNCATED = 5                  # total length beyond the bytes present
    GN_IP4_BAD_CHECKSUM = 6
    GN_IP4_TTL_ZERO = 7
    GN_IP4_OPTIONS = 8                    # IHL above 5
    GN_IP4_N_VALIDATE = 9

ctypedef packed struct gn_ip4_header_t:
    uint8_t ver_ihl
    uint8_t tos
    uint16_t length                       # network order, as every field below
    uint16_t id
    uint16_t frag                         # flags(3) offset(13)
    uint8_t ttl
    uint8_t protocol
    uint16_t checksum
    uint32_t src
    uint32_t dst


cdef inline uint32_t gn_ip4_header_bytes(const uint8_t* ip) noexcept nogil:
    return (ip[0] & 0x0f) * 4


cdef inline uint16_t gn_ip4_total_length(const uint8_t* ip) noexcept nogil:
    return gn_net16(ip + 2)


cdef inline uint32_t gn_ip4_src(const uint8_t* ip) noexcept nogil:
    """Source address in host order."""
    return gn_net32(ip + 12)


cdef inline uint32_t gn_ip4_dst(const uint8_t* ip) noexcept nogil:
    """Destination address in host order."""
    return gn_net32(ip + 16)


cdef inline bint gn_ip4_is_fragment(const uint8_t* ip) noexcept nogil:
    """MF set or a non-zero offset: any piece of a fragmented datagram."""
    return (gn_net16(ip + 6) & (GN_IP4_FLAG_MF | GN_IP4_FRAG_OFFSET_MASK)) != 0


cdef inline uint32_t gn_ip4_sum(const uint8_t* ip, uint32_t hlen) noexcept nogil:
    """Ones-complement sum (folded to 16 bits, native byte order: RFC 1071
    s.2(B)) of a header of hlen bytes, hlen a multiple of 4."""
    cdef uint64_t s
    cdef uint32_t i
    if hlen == GN_IP4_HEADER_LEN:
        s = (<uint64_t>gn_read_u32(ip) + gn_read_u32(ip + 4) + gn_read_u32(ip + 8)
             + gn_read_u32(ip + 12) + gn_read_u32(ip + 16))
    else:
        s = 0
        i = 0
        while i < hlen:
            s += gn_read_u32(ip + i)
            i += 4
    s = (s & 0xffffffffU) + (s >> 32)
    s = (s & 0xffffffffU) + (s >> 32)
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return <uint32_t>s


cdef inline bint gn_ip4_checksum_ok(const uint8_t* ip, uint32_t hlen) noexcept nogil:
    return gn_ip4_sum(ip, hlen) == 0xffff


cdef inline void gn_ip4_set_checksum(uint8_t* ip) noexcept nogil:
    """Recompute the header checksum in place (IHL must be valid)."""
    cdef uint32_t s
    gn_write_u16(ip + 10, 0)
    s = gn_ip4_sum(ip, gn_ip4_header_bytes(ip))
    gn_write_u16(ip + 10, <uint16_t>(~s & 0xffff))


cdef inline void gn_ip4_ttl_decrement(uint8_t* ip) noexcept nogil:
    """TTL - 1 and the RFC 1624 (eqn. 3) checksum update HC' = ~(~HC + ~m + m').
    The 16-bit word holding TTL drops by 0x0100, so ~m + m' = -0x0100 =
    0xfeff in ones-complement; the result equals a recomputation (never
    0xffff for a non-zero header). TTL must be > 0."""
    cdef uint32_t c = (~(<uint32_t>gn_net16(ip + 10))) & 0xffff
    ip[8] -= 1
    c += 0xfeff
    c = (c & 0xffff) + (c >> 16)
    gn_put_net16(ip + 10, <uint16_t>(~c & 0xffff))


cdef inline uint32_t gn_ip4_validate(const uint8_t* ip, uint32_t avail, bint verify_checksum) noexcept nogil:
    """Check a received header against the avail bytes present; returns
    GN_IP4_OK or the first failure (order: length, version, IHL, total
    length, checksum, TTL, options)."""
    cdef uint32_t hlen, total
    if avail < GN_IP4_HEADER_LEN:
        return GN_IP4_TOO_SHORT
    if (ip[0] >> 4) != 4:
        return GN_IP4_BAD_VERSION
    hlen = gn_ip4_header_bytes(ip)
    if hlen < GN_IP4_HEADER_LEN:
        return GN_IP4_BAD_IHL
    total = gn_ip4_total_length(ip)
    if total < hlen:
        return GN_IP4_BAD_LENGTH
    if total > avail:                     # also covers hlen > avail
        return GN_IP4_TRUNCATED
    if verify_checksum and not gn_ip4_checksum_ok(ip, hlen):
        return GN_IP4_BAD_CHECKSUM
    if ip[8] == 0:
        return GN_IP4_TTL_ZERO
    if hlen != GN_IP4_HEADER_LEN:
        return GN_IP4_OPTIONS
    return GN_IP4_OK


cdef inline uint32_t gn_ip4_flow_hash(const uint8_t* ip, uint32_t seed) noexcept nogil:
    """Hash of (src, dst, protocol, and for unfragmented TCP/UDP the ports)
    for ECMP: every packet of a flow takes the same path, and all fragments
    of a datagram too (they hash without ports). The header must be valid
    (gn_ip4_validate == OK): the ports are read only when total length says
    they are present."""
    cdef uint32_t hlen = gn_ip4_header_bytes(ip)
    cdef uint64_t x = (<uint64_t>gn_read_u32(ip + 12) << 32) | gn_read_u32(ip + 16)
    cdef uint64_t y = <uint64_t>ip[9] | (<uint64_t>seed << 32)
    if ((ip[9] == GN_IP4_PROTO_TCP or ip[9] == GN_IP4_PROTO_UDP) and not gn_ip4_is_fragment(ip)
            and gn_ip4_total_length(ip) >= hlen + 4):
        y ^= <uint64_t>gn_read_u32(ip + hlen) << 8
    # murmur3 fmix64 over the mixed words: good avalanche, a few cycles
    x ^= y * 0x9e3779b97f4a7c15ULL
    x ^= x >> 33
    x *= 0xff51afd7ed558ccdULL
    x ^= x >> 33
    x *= 0xc4ceb9fe1a85ec53ULL
    x ^= x >> 33
    return <uint32_t>x
