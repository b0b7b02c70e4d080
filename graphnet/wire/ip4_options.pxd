# IPv4 options (RFC 791 s.3.1) as fragmentation sees them: which options a
# non-first fragment carries. Reads nothing beyond the n option bytes given.
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcpy

cdef enum:
    GN_IP4_OPT_EOL = 0
    GN_IP4_OPT_NOP = 1
    GN_IP4_OPT_COPIED = 0x80              # type bit: copy into every fragment


cdef inline int gn_ip4_options_for_fragments(const uint8_t* opts, uint32_t n, uint8_t* out) noexcept nogil:
    """Write to `out` (room for n + 3 bytes) the options among the n option
    bytes of a header that every fragment carries (copy flag set), padded
    with EOL to a multiple of 4. Returns the bytes written, or -1 when the
    options are malformed (a length below 2 or past the end)."""
    cdef uint32_t i = 0, w = 0, k
    cdef uint8_t t
    while i < n:
        t = opts[i]
        if t == GN_IP4_OPT_EOL:
            break
        if t == GN_IP4_OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            return -1
        k = opts[i + 1]
        if k < 2 or i + k > n:
            return -1
        if t & GN_IP4_OPT_COPIED:
            memcpy(out + w, opts + i, k)
            w += k
        i += k
    while w & 3:
        out[w] = GN_IP4_OPT_EOL
        w += 1
    return <int>w
