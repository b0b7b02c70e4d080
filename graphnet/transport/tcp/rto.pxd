# RFC 6298 retransmission timer: SRTT/RTTVAR estimator, RTO bounds,
# exponential backoff. Times in microseconds (u32: up to ~71 minutes).
#
# Invariants: rto_us is always within [min_us, max_us]; a backed-off RTO
# stays until a new sample arrives (s.5.7 and Karn's rule: the caller
# takes samples only from segments not retransmitted, or from echoed
# timestamps, which name the transmission they time, RFC 7323 s.4).
from libc.stdint cimport uint32_t

cdef enum:
    GN_TCP_RTO_INITIAL_US = 1000000       # RFC 6298 s.2.1
    GN_TCP_RTO_MIN_US = 200000            # Linux's floor (RFC 6298 s.2.4 says 1 s; a MAY-level choice)
    GN_TCP_RTO_MAX_US = 60000000          # s.2.5: at least 60 s
    GN_TCP_CLOCK_G_US = 1000              # clock granularity G: the ms timestamp clock

ctypedef struct gn_tcp_rto_t:
    uint32_t srtt_us                      # 0 until the first sample
    uint32_t rttvar_us
    uint32_t rto_us
    uint32_t min_us
    uint32_t max_us
    uint32_t n_backoff                    # consecutive expiries since the last sample
    uint32_t n_samples


cdef inline uint32_t _rto_bound(gn_tcp_rto_t* r, unsigned long long v) noexcept nogil:
    if v < r.min_us:
        return r.min_us
    if v > r.max_us:
        return r.max_us
    return <uint32_t>v


cdef inline void gn_tcp_rto_init(gn_tcp_rto_t* r, uint32_t min_us, uint32_t max_us) noexcept nogil:
    r.srtt_us = 0
    r.rttvar_us = 0
    r.min_us = min_us if min_us else GN_TCP_RTO_MIN_US
    r.max_us = max_us if max_us else GN_TCP_RTO_MAX_US
    r.rto_us = _rto_bound(r, GN_TCP_RTO_INITIAL_US)
    r.n_backoff = 0
    r.n_samples = 0


cdef inline void gn_tcp_rto_sample(gn_tcp_rto_t* r, uint32_t rtt_us) noexcept nogil:
    """Take a measurement R (s.2.2 and s.2.3, alpha = 1/8, beta = 1/4,
    K = 4) and recompute RTO = SRTT + max(G, K * RTTVAR)."""
    cdef uint32_t diff, kvar
    if r.n_samples == 0:
        r.srtt_us = rtt_us
        r.rttvar_us = rtt_us // 2
    else:
        diff = r.srtt_us - rtt_us if r.srtt_us > rtt_us else rtt_us - r.srtt_us
        r.rttvar_us = r.rttvar_us - r.rttvar_us // 4 + diff // 4
        r.srtt_us = r.srtt_us - r.srtt_us // 8 + rtt_us // 8
    r.n_samples += 1
    r.n_backoff = 0
    kvar = 4 * r.rttvar_us
    r.rto_us = _rto_bound(r, <unsigned long long>r.srtt_us + (kvar if kvar > GN_TCP_CLOCK_G_US else GN_TCP_CLOCK_G_US))


cdef inline void gn_tcp_rto_backoff(gn_tcp_rto_t* r) noexcept nogil:
    """The timer expired: RTO = RTO * 2, within the bounds (s.5.5)."""
    r.rto_us = _rto_bound(r, <unsigned long long>r.rto_us * 2)
    r.n_backoff += 1
