# TCP (RFC 9293) header and options: layout, validation, option parsing
# (MSS, window scale, SACK-permitted, SACK blocks, timestamps; RFC 9293
# s.3.1, RFC 7323, RFC 2018), option writing, and the checksum with the
# IPv4 pseudo header. No graph knowledge (see graphnet/wire/tcp.pyx for the
# Python face: formatters, test helpers).
#
# Invariants:
# - gn_tcp_validate reads nothing beyond `avail` bytes and checks the data
#   offset against them before anything else reads an option.
# - gn_tcp_options_parse reads nothing beyond the `n` option bytes given:
#   every option's kind is read at i < n, its length byte only when
#   i + 1 < n, and its body only after i + length <= n was checked. A
#   length below 2 or past the end, or a known option with the wrong length
#   (RFC 9293 s.3.1: "MUST be prepared to handle an illegal option length")
#   rejects the whole segment; unknown kinds with a sane length are skipped.
# - Sequence numbers are compared modulo 2**32 (gn_seq_lt etc.).
# - Option writers never write more than GN_TCP_MAX_OPTIONS_LEN bytes and
#   pad to a multiple of 4 with NOPs (the layout Linux sends).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from graphnet.includes.byteorder cimport gn_net16, gn_net32, gn_put_net16, gn_put_net32
from graphnet.wire.inet cimport gn_inet_sum, gn_inet_checksum, gn_inet_fold

cdef enum:
    GN_TCP_HEADER_LEN = 20
    GN_TCP_MAX_HEADER_LEN = 60
    GN_TCP_MAX_OPTIONS_LEN = 40
    GN_TCP_FLAG_FIN = 0x01
    GN_TCP_FLAG_SYN = 0x02
    GN_TCP_FLAG_RST = 0x04
    GN_TCP_FLAG_PSH = 0x08
    GN_TCP_FLAG_ACK = 0x10
    GN_TCP_FLAG_URG = 0x20
    GN_TCP_FLAG_ECE = 0x40
    GN_TCP_FLAG_CWR = 0x80
    # option kinds
    GN_TCP_OPT_EOL = 0
    GN_TCP_OPT_NOP = 1
    GN_TCP_OPT_MSS = 2
    GN_TCP_OPT_WSCALE = 3
    GN_TCP_OPT_SACK_PERMITTED = 4
    GN_TCP_OPT_SACK = 5
    GN_TCP_OPT_TIMESTAMP = 8
    GN_TCP_OPT_LEN_MSS = 4
    GN_TCP_OPT_LEN_WSCALE = 3
    GN_TCP_OPT_LEN_SACK_PERMITTED = 2
    GN_TCP_OPT_LEN_TIMESTAMP = 10
    GN_TCP_MAX_SACK_BLOCKS = 4            # 2 + 4 * 8 = 34 bytes: the most that fits
    GN_TCP_MAX_WSCALE = 14                # RFC 7323 s.2.3
    GN_TCP_DEFAULT_MSS = 536              # RFC 9293 s.3.7.1 (IPv4)
    # gn_tcp_options_t.flags: which options were present
    GN_TCP_OPTF_MSS = 1
    GN_TCP_OPTF_WSCALE = 2
    GN_TCP_OPTF_SACK_PERMITTED = 4
    GN_TCP_OPTF_SACK = 8
    GN_TCP_OPTF_TIMESTAMP = 16

# gn_tcp_validate / gn_tcp_options_parse results: the wire rows of the
# tcp4-input error table (graphnet.wire.tcp.PARSE_ERRORS), in order.
cdef enum:
    GN_TCP_OK = 0
    GN_TCP_TOO_SHORT = 1                  # fewer than 20 bytes
    GN_TCP_BAD_DATA_OFFSET = 2            # data offset below 5
    GN_TCP_TRUNCATED = 3                  # data offset beyond the bytes present
    GN_TCP_BAD_OPTION_LENGTH = 4          # an option length below 2 or past the end
    GN_TCP_BAD_OPTION = 5                 # a known option with the wrong length
    GN_TCP_N_PARSE = 6

ctypedef packed struct gn_tcp_header_t:
    uint16_t src_port                     # network order, as every field
    uint16_t dst_port
    uint32_t seq
    uint32_t ack
    uint8_t data_offset                   # high nibble: header length / 4
    uint8_t flags
    uint16_t window
    uint16_t checksum
    uint16_t urgent

ctypedef struct gn_tcp_sack_block_t:
    uint32_t start                        # host order, [start, end)
    uint32_t end

ctypedef struct gn_tcp_options_t:
    uint8_t flags                         # GN_TCP_OPTF_*
    uint8_t wscale                        # clamped to GN_TCP_MAX_WSCALE
    uint8_t n_sack
    uint8_t pad
    uint16_t mss
    uint16_t pad2
    uint32_t tsval
    uint32_t tsecr
    gn_tcp_sack_block_t sack[GN_TCP_MAX_SACK_BLOCKS]


# -- sequence arithmetic (RFC 9293 s.3.4, modulo 2**32) ----------------------

cdef inline bint gn_seq_lt(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b) < 0

cdef inline bint gn_seq_leq(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b) <= 0

cdef inline bint gn_seq_gt(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b) > 0

cdef inline bint gn_seq_geq(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b) >= 0

cdef inline uint32_t gn_seq_max(uint32_t a, uint32_t b) noexcept nogil:
    return b if gn_seq_lt(a, b) else a

cdef inline uint32_t gn_seq_min(uint32_t a, uint32_t b) noexcept nogil:
    return a if gn_seq_lt(a, b) else b


# -- header accessors (host order); the 20 bytes must have been checked ------

cdef inline uint16_t gn_tcp_src_port(const uint8_t* t) noexcept nogil:
    return gn_net16(t)

cdef inline uint16_t gn_tcp_dst_port(const uint8_t* t) noexcept nogil:
    return gn_net16(t + 2)

cdef inline uint32_t gn_tcp_seq(const uint8_t* t) noexcept nogil:
    return gn_net32(t + 4)

cdef inline uint32_t gn_tcp_ack(const uint8_t* t) noexcept nogil:
    return gn_net32(t + 8)

cdef inline uint32_t gn_tcp_header_bytes(const uint8_t* t) noexcept nogil:
    return (t[12] >> 4) * 4

cdef inline uint8_t gn_tcp_flags(const uint8_t* t) noexcept nogil:
    return t[13]

cdef inline uint16_t gn_tcp_window(const uint8_t* t) noexcept nogil:
    return gn_net16(t + 14)

cdef inline uint16_t gn_tcp_checksum_field(const uint8_t* t) noexcept nogil:
    return gn_net16(t + 16)

cdef inline uint16_t gn_tcp_urgent(const uint8_t* t) noexcept nogil:
    return gn_net16(t + 18)


cdef inline void gn_tcp_write_header(uint8_t* t, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                                     uint32_t hlen, uint8_t flags, uint16_t window) noexcept nogil:
    """Write the fixed 20 bytes (hlen: header length incl. options, a
    multiple of 4 in 20..60); checksum and urgent pointer are set to 0."""
    gn_put_net16(t, sport)
    gn_put_net16(t + 2, dport)
    gn_put_net32(t + 4, seq)
    gn_put_net32(t + 8, ack)
    t[12] = <uint8_t>((hlen // 4) << 4)
    t[13] = flags
    gn_put_net16(t + 14, window)
    gn_put_net16(t + 16, 0)
    gn_put_net16(t + 18, 0)


cdef inline uint32_t gn_tcp_validate(const uint8_t* t, uint32_t avail) noexcept nogil:
    """Check the header against the avail bytes of the segment (header +
    payload): GN_TCP_OK or the first failure (length, data offset)."""
    cdef uint32_t hlen
    if avail < GN_TCP_HEADER_LEN:
        return GN_TCP_TOO_SHORT
    hlen = gn_tcp_header_bytes(t)
    if hlen < GN_TCP_HEADER_LEN:
        return GN_TCP_BAD_DATA_OFFSET
    if hlen > avail:
        return GN_TCP_TRUNCATED
    return GN_TCP_OK


# -- options -----------------------------------------------------------------

cdef inline uint32_t gn_tcp_options_parse(const uint8_t* o, uint32_t n, gn_tcp_options_t* out) noexcept nogil:
    """Parse the n option bytes at o into out (flags cleared first).
    Returns GN_TCP_OK, GN_TCP_BAD_OPTION_LENGTH or GN_TCP_BAD_OPTION. A SACK
    option holds 1..4 blocks; more SACK blocks than fit are ignored. A
    window scale above 14 is taken as 14 (RFC 7323 s.2.3). Options are
    parsed whether or not the segment is a SYN: the state machine decides
    which it honours (MSS and window scale on SYNs only)."""
    cdef uint32_t i = 0, k, j, nb
    cdef uint8_t kind
    out.flags = 0
    out.n_sack = 0
    while i < n:
        kind = o[i]
        if kind == GN_TCP_OPT_EOL:
            break
        if kind == GN_TCP_OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            return GN_TCP_BAD_OPTION_LENGTH
        k = o[i + 1]
        if k < 2 or k > n - i:
            return GN_TCP_BAD_OPTION_LENGTH
        if kind == GN_TCP_OPT_MSS:
            if k != GN_TCP_OPT_LEN_MSS:
                return GN_TCP_BAD_OPTION
            out.flags |= GN_TCP_OPTF_MSS
            out.mss = gn_net16(o + i + 2)
        elif kind == GN_TCP_OPT_WSCALE:
            if k != GN_TCP_OPT_LEN_WSCALE:
                return GN_TCP_BAD_OPTION
            out.flags |= GN_TCP_OPTF_WSCALE
            out.wscale = o[i + 2] if o[i + 2] <= GN_TCP_MAX_WSCALE else GN_TCP_MAX_WSCALE
        elif kind == GN_TCP_OPT_SACK_PERMITTED:
            if k != GN_TCP_OPT_LEN_SACK_PERMITTED:
                return GN_TCP_BAD_OPTION
            out.flags |= GN_TCP_OPTF_SACK_PERMITTED
        elif kind == GN_TCP_OPT_TIMESTAMP:
            if k != GN_TCP_OPT_LEN_TIMESTAMP:
                return GN_TCP_BAD_OPTION
            out.flags |= GN_TCP_OPTF_TIMESTAMP
            out.tsval = gn_net32(o + i + 2)
            out.tsecr = gn_net32(o + i + 6)
        elif kind == GN_TCP_OPT_SACK:
            if k < 10 or (k - 2) % 8 != 0:
                return GN_TCP_BAD_OPTION
            out.flags |= GN_TCP_OPTF_SACK
            nb = (k - 2) // 8
            j = 0
            while j < nb and out.n_sack < GN_TCP_MAX_SACK_BLOCKS:
                out.sack[out.n_sack].start = gn_net32(o + i + 2 + 8 * j)
                out.sack[out.n_sack].end = gn_net32(o + i + 6 + 8 * j)
                out.n_sack += 1
                j += 1
        i += k
    return GN_TCP_OK


cdef inline uint32_t _put_nops_to4(uint8_t* o, uint32_t w) noexcept nogil:
    while w & 3:
        o[w] = GN_TCP_OPT_NOP
        w += 1
    return w


cdef inline uint32_t gn_tcp_options_write(uint8_t* o, const gn_tcp_options_t* opts, bint syn) noexcept nogil:
    """Write the options of opts.flags to o (room for 40 bytes); returns the
    length, a multiple of 4. On a SYN: MSS, SACK-permitted, timestamps,
    window scale (Linux's order and padding); otherwise timestamps and then
    as many SACK blocks as fit (3 with timestamps, 4 without). MSS, window
    scale and SACK-permitted are written on SYNs only."""
    cdef uint32_t w = 0, nb, j
    if syn:
        if opts.flags & GN_TCP_OPTF_MSS:
            o[0] = GN_TCP_OPT_MSS
            o[1] = GN_TCP_OPT_LEN_MSS
            gn_put_net16(o + 2, opts.mss)
            w = 4
        if opts.flags & GN_TCP_OPTF_TIMESTAMP:
            if opts.flags & GN_TCP_OPTF_SACK_PERMITTED:
                o[w] = GN_TCP_OPT_SACK_PERMITTED
                o[w + 1] = GN_TCP_OPT_LEN_SACK_PERMITTED
            else:
                o[w] = GN_TCP_OPT_NOP
                o[w + 1] = GN_TCP_OPT_NOP
            o[w + 2] = GN_TCP_OPT_TIMESTAMP
            o[w + 3] = GN_TCP_OPT_LEN_TIMESTAMP
            gn_put_net32(o + w + 4, opts.tsval)
            gn_put_net32(o + w + 8, opts.tsecr)
            w += 12
        elif opts.flags & GN_TCP_OPTF_SACK_PERMITTED:
            o[w] = GN_TCP_OPT_NOP
            o[w + 1] = GN_TCP_OPT_NOP
            o[w + 2] = GN_TCP_OPT_SACK_PERMITTED
            o[w + 3] = GN_TCP_OPT_LEN_SACK_PERMITTED
            w += 4
        if opts.flags & GN_TCP_OPTF_WSCALE:
            o[w] = GN_TCP_OPT_NOP
            o[w + 1] = GN_TCP_OPT_WSCALE
            o[w + 2] = GN_TCP_OPT_LEN_WSCALE
            o[w + 3] = opts.wscale if opts.wscale <= GN_TCP_MAX_WSCALE else GN_TCP_MAX_WSCALE
            w += 4
        return w
    if opts.flags & GN_TCP_OPTF_TIMESTAMP:
        o[0] = GN_TCP_OPT_NOP
        o[1] = GN_TCP_OPT_NOP
        o[2] = GN_TCP_OPT_TIMESTAMP
        o[3] = GN_TCP_OPT_LEN_TIMESTAMP
        gn_put_net32(o + 4, opts.tsval)
        gn_put_net32(o + 8, opts.tsecr)
        w = 12
    if opts.flags & GN_TCP_OPTF_SACK and opts.n_sack:
        nb = opts.n_sack
        if nb > (GN_TCP_MAX_OPTIONS_LEN - w - 4) // 8:
            nb = (GN_TCP_MAX_OPTIONS_LEN - w - 4) // 8
        o[w] = GN_TCP_OPT_NOP
        o[w + 1] = GN_TCP_OPT_NOP
        o[w + 2] = GN_TCP_OPT_SACK
        o[w + 3] = <uint8_t>(2 + 8 * nb)
        w += 4
        for j in range(nb):
            gn_put_net32(o + w, opts.sack[j].start)
            gn_put_net32(o + w + 4, opts.sack[j].end)
            w += 8
    return _put_nops_to4(o, w)


# -- checksum (IPv4 pseudo header, RFC 9293 s.3.1) ----------------------------

cdef inline uint64_t gn_tcp4_pseudo_sum(uint32_t src, uint32_t dst, uint32_t tcp_len) noexcept nogil:
    """Partial sum of the pseudo header: addresses in host order, protocol
    6, TCP length (header + payload). Add the segment's bytes with
    gn_inet_sum (flat) or gn_chain_sum (graphnet/nodes/ip4_csum.pxd, across
    a buffer chain) and finish with gn_inet_checksum."""
    return (<uint64_t>(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 + tcp_len)


cdef inline uint16_t gn_tcp4_checksum(uint32_t src, uint32_t dst, const uint8_t* t, uint32_t n) noexcept nogil:
    """The checksum of the flat segment t (n bytes) whose checksum field
    holds 0: the value to store there."""
    return gn_inet_checksum(gn_inet_sum(t, n, gn_tcp4_pseudo_sum(src, dst, n)))


cdef inline void gn_tcp4_set_checksum(uint32_t src, uint32_t dst, uint8_t* t, uint32_t n) noexcept nogil:
    gn_put_net16(t + 16, 0)
    gn_put_net16(t + 16, gn_tcp4_checksum(src, dst, t, n))


cdef inline void gn_tcp4_set_partial_checksum(uint32_t src, uint32_t dst, uint8_t* t, uint32_t n) noexcept nogil:
    """The checksum field of a segment whose device finishes the checksum
    (virtio-net NEEDS_CSUM: a TSO super-segment): the pseudo header's sum
    over the whole TCP length n, folded and not complemented, as Linux's
    __tcp_v4_send_check leaves it for CHECKSUM_PARTIAL (its segmentation
    then swaps n for each segment's length and adds the segment's bytes)."""
    gn_put_net16(t + 16, gn_inet_fold(gn_tcp4_pseudo_sum(src, dst, n)))


cdef inline bint gn_tcp4_checksum_ok(uint32_t src, uint32_t dst, const uint8_t* t, uint32_t n) noexcept nogil:
    """A received flat segment's checksum (field included) verifies."""
    return gn_inet_fold(gn_inet_sum(t, n, gn_tcp4_pseudo_sum(src, dst, n))) == 0xffff
