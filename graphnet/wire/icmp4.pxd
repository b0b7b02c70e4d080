# ICMP for IPv4 (RFC 792, RFC 1122 s.3.2.2, RFC 1812 s.4.3): layout and
# constants. Every message starts with type, code and a checksum over the
# whole ICMP message; echo and errors then have 4 more bytes (id/sequence,
# unused, or the next-hop MTU), so 8 bytes are checked before any is read.
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef enum:
    GN_ICMP4_HEADER_LEN = 8
    GN_ICMP4_ECHO_REPLY = 0
    GN_ICMP4_DEST_UNREACH = 3
    GN_ICMP4_SOURCE_QUENCH = 4
    GN_ICMP4_REDIRECT = 5
    GN_ICMP4_ECHO_REQUEST = 8
    GN_ICMP4_TIME_EXCEEDED = 11
    GN_ICMP4_PARAM_PROBLEM = 12
    GN_ICMP4_TIMESTAMP = 13
    GN_ICMP4_TIMESTAMP_REPLY = 14
    # destination unreachable codes
    GN_ICMP4_NET_UNREACH = 0
    GN_ICMP4_HOST_UNREACH = 1
    GN_ICMP4_PROTOCOL_UNREACH = 2
    GN_ICMP4_PORT_UNREACH = 3
    GN_ICMP4_FRAG_NEEDED = 4
    # time exceeded codes
    GN_ICMP4_TTL_EXCEEDED = 0
    GN_ICMP4_REASSEMBLY_EXCEEDED = 1
    # RFC 1812 4.3.2.3: an error quotes as much of the datagram as fits in 576 bytes
    GN_ICMP4_ERROR_MAX_LEN = 576

ctypedef packed struct gn_icmp4_header_t:
    uint8_t type
    uint8_t code
    uint16_t checksum                     # network order
    uint16_t id                           # echo: identifier; frag needed: unused
    uint16_t seq                          # echo: sequence; frag needed: next-hop MTU


cdef inline bint gn_icmp4_is_error(uint8_t t) noexcept nogil:
    """An ICMP error message (RFC 1122 3.2.2: never answered with an
    error). Unknown types count as errors, the safe side."""
    return not (t == GN_ICMP4_ECHO_REPLY or t == GN_ICMP4_ECHO_REQUEST or t == GN_ICMP4_TIMESTAMP
                or t == GN_ICMP4_TIMESTAMP_REPLY or t == 9 or t == 10 or t == 15 or t == 16
                or t == 17 or t == 18)
