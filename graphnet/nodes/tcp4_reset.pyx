"""``tcp4-reset``: segments for no connection and no listener.

Answered by a RST (RFC 9293 s.3.10.7.1) unless they are one; counted
``no-connection`` (RST sent) or ``rst-ignored``.

Metadata used: current_data (the IPv4 header), current_length, chains,
the TCP opaque's connection index (set by tcp4-input). Set: nothing on
the received buffer (it is freed once its payload is copied, or dropped
with the reason); segments sent carry their addresses in the TCP opaque.
Next nodes: ``tcp4-output`` (segments sent), error-drop. Counters: the
state machine's drop and trim reasons (graphnet.transport.tcp4.STATE_ERRORS:
no-connection, listen-ack, listen-not-syn, rst-ignored, syn-sent-bad-ack,
syn-sent-no-syn, paws, out-of-window, rst-in-window, syn-in-sync, no-ack,
ack-unsent, ack-too-old, syn-rcvd-bad-ack, data-after-fin, rx-window,
challenge-limit, bad-options, oow-ack-limit) and the glue's (no-buffers,
no-conn-memory, syn-dropped, bad-cookie, accept-failed, rx-fifo); totals in
``show tcp stats``. Trace: the IPv4 and TCP headers decoded.
"""
from libc.stdint cimport uint32_t
from graphnet.vlib.buffer cimport gn_frame_t
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.transport.tcp4 cimport gn_tcp4_state_dispatch, GN_TCP4_KIND_CLOSED
from graphnet.vlib.kit import node, trace_bytes
from graphnet.transport.tcp4 import attach_node, format_ip4_tcp, StateError, STATE_ERRORS

cpdef enum Next:
    NEXT_OUTPUT, N_NEXT

NEXTS = (("output", "tcp4-output"),)


cdef uint32_t tcp4_reset_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    return gn_tcp4_state_dispatch(vm, node, frame, GN_TCP4_KIND_CLOSED)


NODES = (
    node("tcp4-reset", gn_node_fn(tcp4_reset_fn), nexts=NEXTS, Next=Next, errors=STATE_ERRORS, Error=StateError,
         setup=attach_node, trace=trace_bytes(100, format_ip4_tcp), doc=__doc__),
)
FEATURE = "session"             # with the session layer (graphnet.nodes.session_host)
