# udp4-input's per-engine state (see udp4.pyx): the next node of each
# destination port. The UDP transport releases its connected sessions'
# ports here as they close (graphnet/transport/udp.pyx).
from libc.stdint cimport uint16_t

cdef enum:
    UDP4_NEXT_UNCLAIMED = 0xffff

ctypedef struct udp4_input_t:
    uint16_t next_by_port[65536]
