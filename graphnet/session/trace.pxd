# The trace record of the session nodes (session-input, session-queue):
# buffer-less records of one event / app message / tx push each
# (gn_trace_event), or, for the packets session-queue sends, the record
# followed by the shared "interface + first bytes" record. Formatted by
# graphnet.session.show.format_session_trace.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.string cimport memset
from graphnet.session.types cimport gn_session_t, GN_NO_HANDLE
from graphnet.session.fifo cimport gn_fifo_max_dequeue
from libc.stdint cimport uint16_t
from graphnet.vlib.buffer cimport gn_buffer_t
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_trace_event

cdef enum:
    GN_SESSION_TRACE_PUSH = 200        # session-queue pushed a session's tx (arg: units sent)
    GN_SESSION_TRACE_PACKET = 201      # a packet session-queue sent (the bytes record follows)
    GN_SESSION_TRACE_BYTES = 64        # packet bytes kept

ctypedef struct gn_session_trace_t:
    uint64_t handle                    # the session (GN_NO_HANDLE: none)
    uint32_t wrk_index
    int32_t arg                        # event retval, refused (app message), units sent (push)
    uint32_t rx_fifo                   # bytes readable in the session's rx fifo
    uint32_t tx_fifo                   # bytes readable in its tx fifo
    uint8_t type                       # GN_EVT_*, GN_APP_MSG_*, GN_SESSION_TRACE_*
    uint8_t pad[7]


cdef inline void gn_session_trace(gn_main_t* vm, gn_node_runtime_t* node, uint8_t type, uint64_t handle,
                                  gn_session_t* s, uint32_t wrk_index, int32_t arg) noexcept nogil:
    """One buffer-less record, when the node is being traced (else one load).
    node NULL: not from a node's run (the control side acting on messages)."""
    cdef gn_session_trace_t* t
    if node == NULL:
        return
    t = <gn_session_trace_t*>gn_trace_event(vm, node, sizeof(gn_session_trace_t))
    if t == NULL:
        return
    memset(t, 0, sizeof(gn_session_trace_t))
    t.type = type
    t.handle = handle
    t.wrk_index = wrk_index
    t.arg = arg
    if s != NULL:
        t.rx_fifo = gn_fifo_max_dequeue(s.rx_fifo) if s.rx_fifo != NULL else 0
        t.tx_fifo = gn_fifo_max_dequeue(s.tx_fifo) if s.tx_fifo != NULL else 0


cdef inline uint16_t gn_session_trace_no_buffer(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                                uint8_t* record) noexcept nogil:
    """The per-buffer trace function of a node that sends no packets (its
    records are all buffer-less, gn_session_trace)."""
    return 0
