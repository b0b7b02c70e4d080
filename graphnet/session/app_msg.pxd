# One app -> engine message acted on: shared by session-queue (the engine's
# queue) and app-queue (the queues of apps in other processes).
from libc.stdint cimport uint32_t
from graphnet.session.types cimport *
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_node_increment_error
from graphnet.session.trace cimport gn_session_trace
from graphnet.session.session cimport (gn_session_main_t, gn_session_t, gn_session_from_handle, gn_session_close,
                                       gn_session_reset, gn_session_shutdown, gn_session_accept_reply,
                                       gn_session_tx_schedule, gn_session_dequeue_notify, gn_app_wrk_add_event,
                                       gn_app_wrk_get_if_valid)


cdef enum:
    # why an app message was refused (0: acted on); the nodes reading app
    # queues count each in their error table, in this order
    # (graphnet.session.session.APP_MSG_REFUSALS, its rows)
    GN_APP_MSG_E_WORKER = 1            # no such worker
    GN_APP_MSG_E_SESSION = 2           # no such session (a bad or stale handle)
    GN_APP_MSG_E_NOT_OWNER = 3         # a session of another worker
    GN_APP_MSG_E_TYPE = 4              # an unknown type
    GN_APP_MSG_E_LISTENER = 5          # close, reset, shutdown or accept reply naming a listener (unlisten)
    GN_APP_MSG_N_E = 6


cdef inline uint32_t gn_app_msg_handle(gn_main_t* vm, gn_node_runtime_t* node, gn_session_main_t* sm,
                                       gn_app_msg_t* m) noexcept nogil:
    """Act on one app message; 0, or the GN_APP_MSG_E_* reason it was
    refused: unknown worker, no such session, a session that is not that
    worker's, an unknown type, or a close/reset/shutdown/accept reply
    naming a listener (the transport's close would take the listener's index for a
    connection's: another app's). Every refusal but an unknown worker
    gets the worker an ERROR event whose arg is the type. Only ``type``,
    ``wrk_index``, ``handle`` and ``retval`` are read. Traced by ``node`` (a buffer-less record: the
    message, the session's fifo levels as it found them, refused or not). RX_DONE (the app read its rx fifo) on a
    cut-through session tells the writer its fifo has room (a TX event),
    the dequeue notification it asked for; on another session it runs the
    transport's push (TCP sends its window update there). SHUTDOWN is the
    app's half-close (gn_session_shutdown)."""
    cdef gn_session_t* s
    cdef gn_session_t* peer
    cdef uint32_t why = 0
    if gn_app_wrk_get_if_valid(sm, m.wrk_index) == NULL:
        gn_session_trace(vm, node, m.type, m.handle, NULL, m.wrk_index, 1)
        return GN_APP_MSG_E_WORKER
    s = gn_session_from_handle(sm, m.handle)
    if s == NULL:
        why = GN_APP_MSG_E_SESSION
    elif s.app_wrk_index != m.wrk_index:
        why = GN_APP_MSG_E_NOT_OWNER
    elif m.type < GN_APP_MSG_TX or m.type > GN_APP_MSG_SHUTDOWN:
        why = GN_APP_MSG_E_TYPE
    elif (s.flags & GN_SESSION_F_LISTENER) and (m.type == GN_APP_MSG_CLOSE or m.type == GN_APP_MSG_RESET
                                                or m.type == GN_APP_MSG_SHUTDOWN
                                                or m.type == GN_APP_MSG_ACCEPTED_REPLY):
        why = GN_APP_MSG_E_LISTENER
    if why:
        gn_session_trace(vm, node, m.type, m.handle, NULL, m.wrk_index, 1)
        gn_app_wrk_add_event(sm, m.wrk_index, GN_EVT_ERROR, m.type, GN_NO_HANDLE if s == NULL else m.handle)
        return why
    gn_session_trace(vm, node, m.type, m.handle, s, m.wrk_index, 0)
    if m.type == GN_APP_MSG_TX:
        if s.tx_fifo != NULL:
            gn_session_tx_schedule(sm, s)
    elif m.type == GN_APP_MSG_CLOSE:
        gn_session_close(sm, s)
    elif m.type == GN_APP_MSG_RESET:
        gn_session_reset(sm, s)
    elif m.type == GN_APP_MSG_SHUTDOWN:
        gn_session_shutdown(sm, s)
    elif m.type == GN_APP_MSG_RX_DONE:
        if s.flags & GN_SESSION_F_CUT_THROUGH:
            peer = gn_session_from_handle(sm, s.peer_handle)
            if peer != NULL and peer.tx_fifo != NULL and peer.app_wrk_index != GN_SESSION_INVALID_INDEX:
                gn_session_dequeue_notify(sm, peer)
        elif s.tx_fifo != NULL:
            gn_session_tx_schedule(sm, s)      # the transport's push runs: TCP opens its window there
    else:                                      # ACCEPTED_REPLY
        gn_session_accept_reply(sm, s, m.retval)
    return 0



cdef inline void gn_app_msg_count_refused(gn_main_t* vm, gn_node_runtime_t* node, uint32_t first_error,
                                          const uint32_t* refused) noexcept nogil:
    """Add refused[GN_APP_MSG_E_*] to the node's error rows from first_error
    on (the rows of APP_MSG_REFUSALS, in order)."""
    cdef uint32_t r
    for r in range(1, GN_APP_MSG_N_E):
        if refused[r]:
            gn_node_increment_error(vm, node, first_error + r - 1, refused[r])
