"""The internet checksum (RFC 1071): the inline helpers live in
``inet.pxd``; this module gives them to Python -- ``inet_sum`` and
``inet_checksum`` for code that builds or checks frames as bytes (packet
templates, benches, the fuzzer's output check; tests use Scapy) -- and
checks a checksum for trace text (the wire/ formatters of ICMP, UDP, TCP)."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t

IP4_HEADER_LEN = 20


def inet_sum(data, unsigned int initial=0) -> int:
    """The one's complement sum of data (big-endian 16-bit words, an odd
    last byte padded with zero) plus ``initial``, folded to 16 bits and not
    complemented: 0xffff over a message whose checksum is right; the value
    a CHECKSUM_PARTIAL field holds over a pseudo header."""
    cdef const uint8_t[:] v = data
    cdef uint64_t s = initial
    if v.shape[0]:
        s = gn_inet_sum(&v[0], <uint32_t>v.shape[0], s)
    return gn_inet_fold(s)


def inet_checksum(data, unsigned int initial=0) -> int:
    """The value to store in a checksum field: ``~inet_sum(data) & 0xffff``
    (data with the field zero, a pseudo header in front for UDP/TCP)."""
    return ~inet_sum(data, initial) & 0xffff


def checksum_state(data, need, ip=None, int protocol=0) -> str:
    """``ok`` or ``bad`` for the internet checksum of the first ``need``
    bytes of data (plus the pseudo header of the IPv4 header ``ip`` for
    UDP/TCP), or ``not checked: ...`` when data holds fewer (a trace
    record keeps only the first bytes of a packet)."""
    cdef bytes b = bytes(data)
    cdef bytes h
    cdef uint64_t s = 0
    if need > len(b):
        return f"not checked: {len(b)} of {need} bytes recorded"
    if ip is not None:
        h = bytes(ip)
        if len(h) < IP4_HEADER_LEN:
            return "not checked: no IP header"
        s = gn_ip4_pseudo_sum(<const uint8_t*>h, protocol, need)
    s = gn_inet_sum(<const uint8_t*>b, need, s)
    return "ok" if gn_inet_fold(s) == 0xffff else "bad"
