# UDP (RFC 768): layout and constants. 8 bytes are checked before any
# field is read; a checksum of 0 means "none" (IPv4 only), and a computed
# checksum of 0 is sent as 0xffff.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.includes.byteorder cimport gn_net16

cdef enum:
    GN_UDP_HEADER_LEN = 8

ctypedef packed struct gn_udp_header_t:
    uint16_t src_port                     # network order, as every field
    uint16_t dst_port
    uint16_t length                       # header + payload
    uint16_t checksum


cdef inline uint16_t gn_udp_src_port(const uint8_t* u) noexcept nogil:
    return gn_net16(u)


cdef inline uint16_t gn_udp_dst_port(const uint8_t* u) noexcept nogil:
    return gn_net16(u + 2)


cdef inline uint16_t gn_udp_length(const uint8_t* u) noexcept nogil:
    return gn_net16(u + 4)
