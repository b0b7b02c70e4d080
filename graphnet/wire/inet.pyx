"""The internet checksum (RFC 1071): the inline helpers live in
``inet.pxd``; this module checks a checksum for trace text (the wire/
formatters of ICMP, UDP, TCP)."""
from libc.stdint cimport uint8_t, uint64_t

IP4_HEADER_LEN = 20


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
