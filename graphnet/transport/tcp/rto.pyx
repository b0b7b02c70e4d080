"""The RFC 6298 estimator (rto.pxd) for Python: tests and show commands."""
from libc.stdint cimport uint32_t


cdef class RtoEstimator:
    cdef gn_tcp_rto_t r

    def __init__(self, uint32_t min_us=0, uint32_t max_us=0):
        gn_tcp_rto_init(&self.r, min_us, max_us)

    def sample(self, uint32_t rtt_us):
        gn_tcp_rto_sample(&self.r, rtt_us)
        return self.r.rto_us

    def backoff(self):
        gn_tcp_rto_backoff(&self.r)
        return self.r.rto_us

    def state(self):
        return dict(self.r)
