# Congestion control as a table of C function pointers, one per algorithm
# (NewReno: RFC 5681 window arithmetic; CUBIC: RFC 9438), selected per
# connection by name (CUBIC the default). The loss *detection* and
# recovery (dup ACKs, NewReno partial ACKs, RFC 6675 SACK) live in the
# connection; an algorithm only says how the window grows on ACKs and how
# far it falls on a congestion event or a timeout. See cc.pyx.
from libc.stdint cimport uint32_t

cdef enum:
    GN_TCP_CC_CUBIC = 0                   # the default: a zeroed config selects it
    GN_TCP_CC_NEWRENO = 1
    GN_TCP_CC_N = 2

ctypedef struct gn_tcp_cc_t:
    uint32_t cwnd                         # bytes
    uint32_t ssthresh                     # bytes
    uint32_t mss                          # SMSS, bytes
    uint32_t bytes_acked                  # congestion avoidance byte counter (RFC 5681 s.3.1)
    uint32_t n_congestion                 # congestion events
    uint32_t n_timeouts
    # CUBIC (RFC 9438), in segments and seconds
    double w_max
    double k
    double cwnd_epoch
    double w_est
    double cwnd_prior
    double epoch_start_s                  # < 0: no epoch (starts on the next ACK in CA)
    bint after_timeout                    # s.4.8: K = 0, W_max = cwnd at the next epoch

ctypedef struct gn_tcp_cc_ops_t:
    const char* name
    void (*init)(gn_tcp_cc_t* cc, uint32_t mss) noexcept nogil
    # new data acked (acked bytes), outside recovery; now_s: the clock, srtt_s: smoothed RTT
    void (*on_ack)(gn_tcp_cc_t* cc, uint32_t acked, double now_s, double srtt_s) noexcept nogil
    # loss detected by duplicate ACKs or SACK: set ssthresh and the recovery cwnd
    void (*on_congestion)(gn_tcp_cc_t* cc, uint32_t flight, double now_s) noexcept nogil
    # the retransmission timer expired
    void (*on_timeout)(gn_tcp_cc_t* cc, uint32_t flight, double now_s) noexcept nogil

cdef const gn_tcp_cc_ops_t* gn_tcp_cc_ops(uint32_t algo) noexcept nogil
cdef int gn_tcp_cc_lookup(const char* name) noexcept nogil
cdef uint32_t gn_tcp_initial_window(uint32_t mss) noexcept nogil
