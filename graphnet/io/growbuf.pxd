# A growable byte store (realloc'd: doubled plus 64 KB until it fits), for
# the capture node's packet store and the pcap writer's record buffer.
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport realloc


cdef inline int gn_reserve(uint8_t** buf, uint64_t* cap, uint64_t used, uint64_t more) noexcept nogil:
    """Make room for `more` bytes after `used` in *buf (capacity *cap).
    Returns 0, or -1 when memory ran out (*buf and *cap unchanged)."""
    cdef uint64_t c = cap[0]
    cdef uint8_t* d
    if used + more <= c:
        return 0
    while c < used + more:
        c = c * 2 + 65536
    d = <uint8_t*>realloc(buf[0], c)
    if d == NULL:
        return -1
    buf[0] = d
    cap[0] = c
    return 0
