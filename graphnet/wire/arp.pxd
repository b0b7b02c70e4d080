# ARP for IPv4 over Ethernet (RFC 826): layout, constants, validation and
# a builder. Callers pass the bytes available; gn_arp_validate reads nothing
# beyond them.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset
from graphnet.includes.byteorder cimport gn_net16, gn_net32, gn_put_net16, gn_put_net32

cdef enum:
    GN_ARP_LEN = 28                       # Ethernet/IPv4 ARP body
    GN_ARP_HRD_ETHERNET = 1
    GN_ARP_PRO_IP4 = 0x0800
    GN_ARP_OP_REQUEST = 1
    GN_ARP_OP_REPLY = 2

# gn_arp_validate results (= arp-input error rows 1..3; keep in step with
# VALIDATE_ERRORS in arp.pyx)
cdef enum:
    GN_ARP_OK = 0
    GN_ARP_TOO_SHORT = 1                  # fewer than 28 bytes
    GN_ARP_BAD_FORMAT = 2                 # not Ethernet (1, len 6) / IPv4 (0x0800, len 4)
    GN_ARP_BAD_OPCODE = 3                 # neither request nor reply

ctypedef packed struct gn_arp_t:
    uint16_t hrd                          # network order, as every multi-byte field
    uint16_t pro
    uint8_t hln
    uint8_t pln
    uint16_t op
    uint8_t sha[6]
    uint32_t spa
    uint8_t tha[6]
    uint32_t tpa


cdef inline uint32_t gn_arp_validate(const uint8_t* a, uint32_t avail) noexcept nogil:
    if avail < GN_ARP_LEN:
        return GN_ARP_TOO_SHORT
    if gn_net16(a) != GN_ARP_HRD_ETHERNET or gn_net16(a + 2) != GN_ARP_PRO_IP4 or a[4] != 6 or a[5] != 4:
        return GN_ARP_BAD_FORMAT
    if gn_net16(a + 6) != GN_ARP_OP_REQUEST and gn_net16(a + 6) != GN_ARP_OP_REPLY:
        return GN_ARP_BAD_OPCODE
    return GN_ARP_OK


cdef inline uint16_t gn_arp_op(const uint8_t* a) noexcept nogil:
    return gn_net16(a + 6)


cdef inline const uint8_t* gn_arp_sha(const uint8_t* a) noexcept nogil:
    return a + 8


cdef inline uint32_t gn_arp_spa(const uint8_t* a) noexcept nogil:
    """Sender protocol address, host order."""
    return gn_net32(a + 14)


cdef inline const uint8_t* gn_arp_tha(const uint8_t* a) noexcept nogil:
    return a + 18


cdef inline uint32_t gn_arp_tpa(const uint8_t* a) noexcept nogil:
    """Target protocol address, host order."""
    return gn_net32(a + 24)


cdef inline void gn_arp_write(uint8_t* a, uint16_t op, const uint8_t* sha, uint32_t spa,
                              const uint8_t* tha, uint32_t tpa) noexcept nogil:
    """Write a complete 28-byte Ethernet/IPv4 ARP body (addresses in host
    order; tha NULL: zeros). a may alias sha/tha only if they are equal
    to where they are written."""
    cdef uint8_t t[6]
    if tha != NULL:
        memcpy(t, tha, 6)                 # tha may point into a itself
    else:
        memset(t, 0, 6)
    gn_put_net16(a, GN_ARP_HRD_ETHERNET)
    gn_put_net16(a + 2, GN_ARP_PRO_IP4)
    a[4] = 6
    a[5] = 4
    gn_put_net16(a + 6, op)
    if a + 8 != sha:
        memcpy(a + 8, sha, 6)
    gn_put_net32(a + 14, spa)
    memcpy(a + 18, t, 6)
    gn_put_net32(a + 24, tpa)
