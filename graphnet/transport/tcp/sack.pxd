# The sender's SACK scoreboard (RFC 2018) and RFC 6675 loss recovery
# helpers: IsLost, SetPipe, NextSeg. See sack.pyx.
from libc.stdint cimport uint32_t
from graphnet.wire.tcp cimport gn_tcp_sack_block_t

cdef enum:
    GN_TCP_SB_MAX = 32                    # ranges kept; beyond, the highest are forgotten (safe: resent)
    GN_TCP_DUPTHRESH = 3                  # RFC 6675 DupThresh
    # gn_tcp_sb_next_seg results
    GN_TCP_NEXT_NONE = 0
    GN_TCP_NEXT_RTX_LOST = 1              # rule 1: a lost hole
    GN_TCP_NEXT_NEW = 2                   # rule 2: new data
    GN_TCP_NEXT_RTX = 3                   # rule 3: a hole not yet deemed lost

ctypedef struct gn_tcp_sb_t:
    uint32_t n                            # ranges in blk
    uint32_t rxt_end                      # HighRxt + 1: retransmitted up to here in this recovery
    uint32_t sacked                       # bytes SACKed above SND.UNA
    uint32_t n_reneged                    # blocks at or below SND.UNA seen (ignored)
    gn_tcp_sack_block_t blk[GN_TCP_SB_MAX]   # sorted, disjoint, not touching, above SND.UNA

cdef void gn_tcp_sb_reset(gn_tcp_sb_t* sb, uint32_t una) noexcept nogil
cdef uint32_t gn_tcp_sb_update(gn_tcp_sb_t* sb, uint32_t una, uint32_t high_data,
                               const gn_tcp_sack_block_t* blocks, uint32_t n) noexcept nogil
cdef bint gn_tcp_sb_is_lost(const gn_tcp_sb_t* sb, uint32_t seq, uint32_t mss) noexcept nogil
cdef uint32_t gn_tcp_sb_pipe(const gn_tcp_sb_t* sb, uint32_t una, uint32_t high_data, uint32_t mss) noexcept nogil
cdef uint32_t gn_tcp_sb_next_seg(gn_tcp_sb_t* sb, uint32_t una, uint32_t high_data, uint32_t mss,
                                 uint32_t max_len, bint new_data_ok, uint32_t* start,
                                 uint32_t* length) noexcept nogil
