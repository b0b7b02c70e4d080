"""Congestion control algorithms behind one table of C function pointers
(``gn_tcp_cc_ops_t``): ``newreno`` (RFC 5681 slow start and congestion
avoidance with byte counting, RFC 5681 eq. 4 on loss) and ``cubic``
(RFC 9438, the default: the cubic window curve W(t) = C (t - K)^3 + W_max,
the Reno-friendly estimate W_est, fast convergence, beta 0.7).

Invariants: cwnd >= 1 SMSS always, and >= 2 SMSS after a congestion
event (RFC 5681 eq. 4, RFC 9438 s.4.6); ssthresh >= 2 SMSS once set; the
functions hold no pointer besides the state they are given, so a
connection switches algorithm by re-initialising its gn_tcp_cc_t.

A new algorithm is a gn_tcp_cc_ops_t and a row in ``_OPS``.
"""
from libc.stdint cimport uint32_t
from libc.math cimport cbrt
from libc.string cimport memset, strcmp

cdef enum:
    SSTHRESH_INF = 0xffffffff

cdef double CUBIC_C = 0.4
cdef double CUBIC_BETA = 0.7
ALGORITHMS = ("cubic", "newreno")               # in GN_TCP_CC_* order


cdef uint32_t gn_tcp_initial_window(uint32_t mss) noexcept nogil:
    """RFC 6928: min(10 * MSS, max(2 * MSS, 14600))."""
    cdef uint32_t w = 14600 if 14600 > 2 * mss else 2 * mss
    return 10 * mss if 10 * mss < w else w


cdef inline void _slow_start(gn_tcp_cc_t* cc, uint32_t acked) noexcept nogil:
    """RFC 5681 eq. 2: cwnd += min(N, SMSS) per ACK, up to ssthresh."""
    cc.cwnd += acked if acked < cc.mss else cc.mss


cdef inline uint32_t _loss_ssthresh(uint32_t flight, uint32_t mss, double beta) noexcept nogil:
    cdef double s = flight * beta
    return <uint32_t>s if s > 2.0 * mss else 2 * mss


# -- NewReno (RFC 5681) --------------------------------------------------------

cdef void _reno_init(gn_tcp_cc_t* cc, uint32_t mss) noexcept nogil:
    memset(cc, 0, sizeof(gn_tcp_cc_t))
    cc.mss = mss
    cc.cwnd = gn_tcp_initial_window(mss)
    cc.ssthresh = SSTHRESH_INF
    cc.epoch_start_s = -1.0


cdef void _reno_on_ack(gn_tcp_cc_t* cc, uint32_t acked, double now_s, double srtt_s) noexcept nogil:
    if cc.cwnd < cc.ssthresh:
        _slow_start(cc, acked)
        return
    # congestion avoidance: one SMSS per cwnd of bytes acked (s.3.1, byte counting)
    cc.bytes_acked += acked
    if cc.bytes_acked >= cc.cwnd:
        cc.bytes_acked -= cc.cwnd
        cc.cwnd += cc.mss


cdef void _reno_on_congestion(gn_tcp_cc_t* cc, uint32_t flight, double now_s) noexcept nogil:
    cc.ssthresh = _loss_ssthresh(flight, cc.mss, 0.5)     # eq. 4
    cc.cwnd = cc.ssthresh
    cc.bytes_acked = 0
    cc.n_congestion += 1


cdef void _reno_on_timeout(gn_tcp_cc_t* cc, uint32_t flight, double now_s) noexcept nogil:
    cc.ssthresh = _loss_ssthresh(flight, cc.mss, 0.5)
    cc.cwnd = cc.mss                      # loss window, s.3.1
    cc.bytes_acked = 0
    cc.n_timeouts += 1


# -- CUBIC (RFC 9438) ----------------------------------------------------------

cdef double gn_cubic_window(const gn_tcp_cc_t* cc, double t) noexcept nogil:
    """W_cubic(t) = C (t - K)^3 + W_max (eq. 1), segments; t in seconds
    since the epoch started."""
    cdef double d = t - cc.k
    return CUBIC_C * d * d * d + cc.w_max


cdef void _cubic_on_ack(gn_tcp_cc_t* cc, uint32_t acked, double now_s, double srtt_s) noexcept nogil:
    cdef double cwnd, target, t, segs, alpha
    if cc.cwnd < cc.ssthresh:
        _slow_start(cc, acked)
        return
    cwnd = <double>cc.cwnd / cc.mss
    if cc.epoch_start_s < 0:
        # s.4.2: a new congestion avoidance stage
        cc.epoch_start_s = now_s
        cc.cwnd_epoch = cwnd
        cc.w_est = cwnd
        if cc.after_timeout or cc.w_max <= cwnd:
            cc.after_timeout = False      # s.4.8 (after a timeout), or above the old W_max
            cc.w_max = cwnd
            cc.k = 0.0
        else:
            cc.k = cbrt((cc.w_max - cwnd) / CUBIC_C)     # eq. 2
    segs = <double>acked / cc.mss
    # s.4.3: the Reno-friendly region (W_est grows like AIMD with alpha_cubic)
    alpha = 1.0 if cc.w_est >= cc.cwnd_prior else 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)
    cc.w_est += alpha * segs / cwnd
    t = now_s - cc.epoch_start_s
    target = gn_cubic_window(cc, t + srtt_s)             # s.4.2: W_cubic(t + RTT)
    if target < cwnd:
        target = cwnd
    elif target > 1.5 * cwnd:
        target = 1.5 * cwnd
    if gn_cubic_window(cc, t) < cc.w_est:
        cwnd = cc.w_est                                  # Reno-friendly
    else:
        cwnd += (target - cwnd) / cwnd * segs            # s.4.4 / s.4.5
    if cwnd * cc.mss > 4.0e9:
        cwnd = 4.0e9 / cc.mss
    if <uint32_t>(cwnd * cc.mss) > cc.cwnd:
        cc.cwnd = <uint32_t>(cwnd * cc.mss)


cdef void _cubic_congestion(gn_tcp_cc_t* cc, uint32_t flight) noexcept nogil:
    cdef double cwnd = <double>cc.cwnd / cc.mss
    # s.4.7 fast convergence: release bandwidth when W_max keeps falling
    cc.w_max = cwnd * (1.0 + CUBIC_BETA) / 2.0 if cwnd < cc.w_max else cwnd
    cc.cwnd_prior = cwnd
    cc.ssthresh = _loss_ssthresh(flight, cc.mss, CUBIC_BETA)   # s.4.6
    cc.epoch_start_s = -1.0
    cc.bytes_acked = 0


cdef void _cubic_on_congestion(gn_tcp_cc_t* cc, uint32_t flight, double now_s) noexcept nogil:
    _cubic_congestion(cc, flight)
    cc.cwnd = cc.ssthresh
    cc.n_congestion += 1


cdef void _cubic_on_timeout(gn_tcp_cc_t* cc, uint32_t flight, double now_s) noexcept nogil:
    _cubic_congestion(cc, flight)
    cc.cwnd = cc.mss
    cc.after_timeout = True               # s.4.8
    cc.n_timeouts += 1


cdef gn_tcp_cc_ops_t _OPS[GN_TCP_CC_N]
_OPS[GN_TCP_CC_NEWRENO].name = b"newreno"
_OPS[GN_TCP_CC_NEWRENO].init = _reno_init
_OPS[GN_TCP_CC_NEWRENO].on_ack = _reno_on_ack
_OPS[GN_TCP_CC_NEWRENO].on_congestion = _reno_on_congestion
_OPS[GN_TCP_CC_NEWRENO].on_timeout = _reno_on_timeout
_OPS[GN_TCP_CC_CUBIC].name = b"cubic"
_OPS[GN_TCP_CC_CUBIC].init = _reno_init          # the same start: IW, slow start
_OPS[GN_TCP_CC_CUBIC].on_ack = _cubic_on_ack
_OPS[GN_TCP_CC_CUBIC].on_congestion = _cubic_on_congestion
_OPS[GN_TCP_CC_CUBIC].on_timeout = _cubic_on_timeout


cdef const gn_tcp_cc_ops_t* gn_tcp_cc_ops(uint32_t algo) noexcept nogil:
    """The table of an algorithm (GN_TCP_CC_*); CUBIC for an unknown one."""
    return &_OPS[algo] if algo < GN_TCP_CC_N else &_OPS[GN_TCP_CC_CUBIC]


cdef int gn_tcp_cc_lookup(const char* name) noexcept nogil:
    """GN_TCP_CC_* of a name, or -1."""
    cdef int i
    for i in range(GN_TCP_CC_N):
        if strcmp(_OPS[i].name, name) == 0:
            return i
    return -1


def lookup(str name) -> int:
    """The index of an algorithm by name; ValueError naming the choices."""
    cdef bytes b = name.encode()
    cdef int i = gn_tcp_cc_lookup(b)
    if i < 0:
        raise ValueError(f"unknown congestion control {name!r}: choose one of {', '.join(ALGORITHMS)}")
    return i


cdef class CongestionControl:
    """One gn_tcp_cc_t driven through its algorithm's table (tests)."""
    cdef gn_tcp_cc_t cc
    cdef const gn_tcp_cc_ops_t* ops

    def __init__(self, str name="cubic", uint32_t mss=1000):
        self.ops = gn_tcp_cc_ops(lookup(name))
        self.ops.init(&self.cc, mss)

    @property
    def name(self):
        return self.ops.name.decode()

    def state(self):
        return dict(self.cc)

    def set(self, **fields):
        """Set fields directly (tests start from a chosen state)."""
        d = dict(self.cc)
        d.update(fields)
        self.cc = d

    def on_ack(self, uint32_t acked, double now_s=0.0, double srtt_s=0.1):
        self.ops.on_ack(&self.cc, acked, now_s, srtt_s)
        return self.cc.cwnd

    def on_congestion(self, uint32_t flight, double now_s=0.0):
        self.ops.on_congestion(&self.cc, flight, now_s)
        return self.cc.cwnd

    def on_timeout(self, uint32_t flight, double now_s=0.0):
        self.ops.on_timeout(&self.cc, flight, now_s)
        return self.cc.cwnd

    def cubic_window(self, double t):
        return gn_cubic_window(&self.cc, t)
