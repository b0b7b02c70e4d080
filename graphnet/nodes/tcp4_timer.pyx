"""``tcp4-timer``: the TCP transport's timers and deferred sends.

An input node in INTERRUPT mode that never receives a packet. The
transport keeps its own hashed wheel (1 ms ticks) of per-connection
timers: retransmit (also the persist probe of a shut window and the
SYN / SYN-ACK retries), delayed ACK, keepalive and TIME_WAIT (2MSL); the
engine's wheel raises this node's interrupt at the next expiry. Each run
carries out the expired timers' actions (gn_tcp_rto_expired,
gn_tcp_delack_expired, gn_tcp_keepalive_expired, gn_tcp_time_wait_expired)
and the actions deferred by session-layer calls made outside any node
(connect's SYN, close's FIN, reset's RST), then schedules its next run.

Metadata used: none. Set: on segments sent, as tcp4-established. Next
nodes: ``tcp4-output``. Counters: ``events`` (info: timer expiries and
deferred actions handled); details in ``show tcp stats`` (timeouts,
delacks, keepalive_probes, time_wait_expired).
"""
from libc.stdint cimport uint32_t
from graphnet.includes.platform cimport gn_time_ns
from graphnet.vlib.buffer cimport gn_frame_t
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_node_increment_error
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.transport.tcp4 cimport gn_tcp4_main_t, gn_tcp4_out_begin, gn_tcp4_out_end, gn_tcp4_run_timers
from graphnet.vlib.kit import node
from graphnet.transport.tcp4 import attach_node

cpdef enum Next:
    NEXT_OUTPUT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_EVENTS, N_ERROR

NEXTS = (("output", "tcp4-output"),)
ERRORS = (("none", "info", "no error"), ("events", "info", "timer expiries and deferred actions handled"))


cdef uint32_t tcp4_timer_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>node.runtime_data
    cdef uint32_t n
    if tm == NULL:
        return 0
    gn_tcp4_out_begin(tm, vm, node, NEXT_OUTPUT)
    n = gn_tcp4_run_timers(tm, gn_time_ns())
    gn_tcp4_out_end(tm)
    gn_node_increment_error(vm, node, ERROR_EVENTS, n)
    return n


def _setup(engine, node_index):
    attach_node(engine, node_index).set_timer_node(node_index)


NODES = (
    node("tcp4-timer", gn_node_fn(tcp4_timer_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         type="input", state="interrupt", setup=_setup, doc=__doc__),
)
FEATURE = "session"             # with the session layer (graphnet.nodes.session_host)
