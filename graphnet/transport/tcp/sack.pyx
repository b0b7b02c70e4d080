"""The sender's SACK scoreboard: which bytes above SND.UNA the peer has
reported (RFC 2018), and the RFC 6675 s.4 routines over it: IsLost,
SetPipe (the bytes in flight) and NextSeg (what to send next in loss
recovery). Sequence numbers are compared modulo 2**32.

Invariants: blk[0..n) is sorted, disjoint and non-adjacent, every range
inside (SND.UNA, HighData]; ``sacked`` is the sum of their lengths;
``rxt_end`` (HighRxt + 1) is never below SND.UNA. Blocks at or below
SND.UNA (D-SACK or reneging) or beyond HighData are ignored and counted.
When more than GN_TCP_SB_MAX ranges would be kept, the highest are
forgotten: the sender may resend bytes it did not need to, never skip
bytes it must send.
"""
from libc.stdint cimport uint32_t
from graphnet.wire.tcp cimport gn_tcp_sack_block_t, gn_seq_lt, gn_seq_leq, gn_seq_gt, gn_seq_geq, gn_seq_max


cdef void gn_tcp_sb_reset(gn_tcp_sb_t* sb, uint32_t una) noexcept nogil:
    """Forget every block (a retransmission timeout: RFC 2018 s.8, the
    receiver may have reneged)."""
    sb.n = 0
    sb.sacked = 0
    sb.rxt_end = una


cdef inline void _trim(gn_tcp_sb_t* sb, uint32_t una) noexcept nogil:
    cdef uint32_t i, m = 0
    for i in range(sb.n):
        if gn_seq_leq(sb.blk[i].end, una):
            continue
        sb.blk[m].start = gn_seq_max(sb.blk[i].start, una)
        sb.blk[m].end = sb.blk[i].end
        m += 1
    sb.n = m
    if gn_seq_lt(sb.rxt_end, una):
        sb.rxt_end = una


cdef inline void _insert(gn_tcp_sb_t* sb, uint32_t s, uint32_t e) noexcept nogil:
    """Add [s, e) keeping the invariants (merge what it touches)."""
    cdef uint32_t i = 0, j, k
    while i < sb.n and gn_seq_lt(sb.blk[i].end, s):
        i += 1
    j = i                                 # blk[i..j) touch [s, e)
    while j < sb.n and gn_seq_leq(sb.blk[j].start, e):
        if gn_seq_lt(sb.blk[j].start, s):
            s = sb.blk[j].start
        if gn_seq_gt(sb.blk[j].end, e):
            e = sb.blk[j].end
        j += 1
    if j == i:                            # nothing merged: make room at i
        if sb.n == GN_TCP_SB_MAX:
            if i == sb.n:
                return                    # above everything kept: forget it
            sb.n -= 1                     # forget the highest
        k = sb.n
        while k > i:
            sb.blk[k] = sb.blk[k - 1]
            k -= 1
        sb.n += 1
    else:                                 # blk[i..j) become one: close the gap
        k = j
        while k < sb.n:
            sb.blk[i + 1 + k - j] = sb.blk[k]
            k += 1
        sb.n -= j - i - 1
    sb.blk[i].start = s
    sb.blk[i].end = e


cdef uint32_t gn_tcp_sb_update(gn_tcp_sb_t* sb, uint32_t una, uint32_t high_data,
                               const gn_tcp_sack_block_t* blocks, uint32_t n) noexcept nogil:
    """SND.UNA moved to una and these SACK blocks arrived: returns the
    bytes newly SACKed."""
    cdef uint32_t i, s, e, before, total = 0
    _trim(sb, una)
    before = sb.sacked
    for i in range(n):
        s = blocks[i].start
        e = blocks[i].end
        if not gn_seq_lt(s, e) or gn_seq_leq(e, una) or gn_seq_gt(e, high_data):
            sb.n_reneged += 1
            continue
        _insert(sb, gn_seq_max(s, una), e)
    for i in range(sb.n):
        total += sb.blk[i].end - sb.blk[i].start
    sb.sacked = total
    return total - before if total > before else 0


cdef inline bint _lost_below(const gn_tcp_sb_t* sb, uint32_t i, uint32_t mss) noexcept nogil:
    """IsLost for bytes below blk[i] (and above blk[i-1]): DupThresh
    ranges above, or more than (DupThresh - 1) * SMSS bytes SACKed above."""
    cdef uint32_t k, bytes_above = 0
    if sb.n - i >= GN_TCP_DUPTHRESH:
        return True
    for k in range(i, sb.n):
        bytes_above += sb.blk[k].end - sb.blk[k].start
    return bytes_above > (GN_TCP_DUPTHRESH - 1) * mss


cdef bint gn_tcp_sb_is_lost(const gn_tcp_sb_t* sb, uint32_t seq, uint32_t mss) noexcept nogil:
    """RFC 6675 IsLost(SeqNum) for an unSACKed seq."""
    cdef uint32_t i = 0
    while i < sb.n and gn_seq_leq(sb.blk[i].start, seq):
        i += 1
    return i < sb.n and _lost_below(sb, i, mss)


cdef uint32_t gn_tcp_sb_pipe(const gn_tcp_sb_t* sb, uint32_t una, uint32_t high_data, uint32_t mss) noexcept nogil:
    """RFC 6675 SetPipe: over the unSACKed bytes in [una, high_data), one
    for each not deemed lost plus one for each retransmitted."""
    cdef uint32_t i, cur = una, end, pipe = 0, r
    for i in range(sb.n + 1):
        end = sb.blk[i].start if i < sb.n else high_data
        if gn_seq_lt(cur, end):
            if i == sb.n or not _lost_below(sb, i, mss):
                pipe += end - cur
            if gn_seq_gt(sb.rxt_end, cur):
                r = sb.rxt_end if gn_seq_lt(sb.rxt_end, end) else end
                pipe += r - cur
        if i < sb.n:
            cur = sb.blk[i].end
    return pipe


cdef uint32_t gn_tcp_sb_next_seg(gn_tcp_sb_t* sb, uint32_t una, uint32_t high_data, uint32_t mss,
                                 uint32_t max_len, bint new_data_ok, uint32_t* start,
                                 uint32_t* length) noexcept nogil:
    """RFC 6675 NextSeg: a GN_TCP_NEXT_* kind; for a retransmission, the
    range [start, start + length) (at most max_len bytes, at least one SMSS
    allowed, inside one hole), which is then counted as retransmitted
    (HighRxt moves to it). max_len above one SMSS (a TSO super-segment,
    within cwnd - pipe) is NextSeg called max_len / SMSS times in a row on
    one hole. new_data_ok: unsent data is waiting and the receive window
    takes it."""
    cdef uint32_t i, cur = una, s, e, rule
    if max_len < mss:
        max_len = mss
    for rule in range(2):
        cur = una
        for i in range(sb.n):
            s = gn_seq_max(cur, sb.rxt_end)
            e = sb.blk[i].start
            if gn_seq_lt(s, e) and (rule == 1 or _lost_below(sb, i, mss)):
                start[0] = s
                length[0] = e - s if e - s < max_len else max_len
                sb.rxt_end = s + length[0]
                return GN_TCP_NEXT_RTX_LOST if rule == 0 else GN_TCP_NEXT_RTX
            cur = sb.blk[i].end
        if rule == 0 and new_data_ok:
            return GN_TCP_NEXT_NEW
    return GN_TCP_NEXT_NONE


cdef class Scoreboard:
    """A gn_tcp_sb_t driven from Python (tests)."""
    cdef gn_tcp_sb_t sb
    cdef public uint32_t una, high_data, mss

    def __init__(self, uint32_t una=0, uint32_t high_data=0, uint32_t mss=100):
        self.una, self.high_data, self.mss = una, high_data, mss
        gn_tcp_sb_reset(&self.sb, una)

    def update(self, blocks=(), una=None, high_data=None):
        cdef gn_tcp_sack_block_t b[8]
        cdef uint32_t n = 0
        if una is not None:
            self.una = una
        if high_data is not None:
            self.high_data = high_data
        for s, e in list(blocks)[:8]:
            b[n].start = s
            b[n].end = e
            n += 1
        return gn_tcp_sb_update(&self.sb, self.una, self.high_data, b, n)

    @property
    def blocks(self):
        return [(self.sb.blk[i].start, self.sb.blk[i].end) for i in range(self.sb.n)]

    @property
    def sacked(self):
        return self.sb.sacked

    @property
    def rxt_end(self):
        return self.sb.rxt_end

    @property
    def ignored(self):
        return self.sb.n_reneged

    def is_lost(self, uint32_t seq):
        return gn_tcp_sb_is_lost(&self.sb, seq, self.mss)

    def pipe(self):
        return gn_tcp_sb_pipe(&self.sb, self.una, self.high_data, self.mss)

    def next_seg(self, bint new_data_ok=False, uint32_t max_len=0):
        """('rtx-lost', start, len) | ('rtx', start, len) | ('new',) | None"""
        cdef uint32_t s = 0, n = 0
        k = gn_tcp_sb_next_seg(&self.sb, self.una, self.high_data, self.mss, max_len, new_data_ok, &s, &n)
        return (None, ("rtx-lost", s, n), ("new",), ("rtx", s, n))[k]

    def reset(self):
        gn_tcp_sb_reset(&self.sb, self.una)
