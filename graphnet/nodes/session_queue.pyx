"""``session-queue``: app -> engine events, and the transports' tx.

An input node, INTERRUPT mode by default (woken by the eventfd of the
engine's message queue, by a tx or control event from a builtin app, or
polled if set so). Each run:

  1. reads up to ``max_msgs`` app messages from the engine's queue: TX
     (data in my tx fifo), CLOSE, RESET, ACCEPTED_REPLY, RX_DONE, SHUTDOWN (half-close)
     (graphnet.session.app_msg: I read; the transport's push runs, so a
     stream transport can open its receive window). Each names its
     worker and session; a message whose worker is unknown, whose session
     is not that worker's, or whose type is unknown is refused (an ERROR
     event naming the type goes back to the worker) and counted;
  2. runs the programmed transport closes and resets (session.pyx);
  3. pushes tx: sessions on the tx ring, at most ``tx_budget`` per run, each
     through its transport's push_tx with at most ``max_units`` units
     (datagrams or segments); a session with data left goes to the back of
     the ring (old after new), so one busy session cannot starve the rest;
     a drained session's tx event flag is cleared (and checked again, so
     data written meanwhile is not stranded); the app's dequeue
     notification is sent when its threshold is reached. A stream
     transport (``stream_tx``: TCP keeps unacked data in the tx fifo)
     clears the event itself and is requeued only when it used all its
     units; ACKs and timers send the rest.

Transports send what they build to this node's next ``ip4-lookup``.
Metadata used: none of the buffers the transports build (they set
current_data, current_length, chains, sw_if_index[TX] = ~0 and
LOCALLY_ORIGINATED). Set: nothing. Next nodes: ``ip4-lookup`` (or
error-drop without it). Counters (error table, info): ``app-msgs`` read,
``bad-msg`` refused (warn: nothing is dropped; by reason in the rows
``bad-worker``, ``bad-session``, ``not-owner``, ``bad-type``, ``listener``), ``tx-pushed`` sessions pushed,
``tx-requeued`` sessions sent to the back with data left.

Trace (``trace add session-queue <n>``): a buffer-less record per app
message (type, session, worker, refused) and per tx push (units sent,
fifo levels) (gn_trace_event), and the packets the pushes send (interface
and IPv4 header); all take from the same count.
"""

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset
from graphnet.vlib.buffer cimport gn_frame_t, gn_buffer_t, gn_buffer_current, GN_TX
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_node_increment_error, gn_node_set_interrupt_pending
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data, gn_trace_fn, gn_trace_bytes_fill
from graphnet.session.trace cimport (gn_session_trace_t, gn_session_trace, GN_SESSION_TRACE_PUSH,
                                           GN_SESSION_TRACE_PACKET, GN_SESSION_TRACE_BYTES)
from graphnet.vlib.kit cimport GN_TRACE_BYTES_HEADER
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_max_dequeue, gn_fifo_unset_event, gn_fifo_set_event,
                                    gn_fifo_needs_deq_ntf)
from graphnet.session.msg_queue cimport gn_mq_handle_t, gn_mq_dequeue_batch, gn_mq_clear_signal, gn_mq_count, MessageQueue
from graphnet.session.session cimport (gn_session_main_t, gn_session_t, gn_session_from_handle, gn_session_run_ctrl,
                                       gn_session_handle,
                                       gn_session_close, gn_session_reset, gn_session_accept_reply,
                                       gn_session_tx_schedule, gn_session_dequeue_notify, gn_app_wrk_add_event,
                                       gn_app_wrk_get_if_valid)
from graphnet.session.app_msg cimport gn_app_msg_handle, gn_app_msg_count_refused, GN_APP_MSG_N_E
from graphnet.vlib.kit import node, trace_record
from graphnet.session.session import APP_MSG_REFUSALS

cpdef enum Next:
    NEXT_IP4_LOOKUP, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_APP_MSGS, ERROR_BAD_MSG, ERROR_TX_PUSHED, ERROR_TX_REQUEUED, ERROR_BAD_WORKER,
    ERROR_BAD_SESSION, ERROR_NOT_OWNER, ERROR_BAD_TYPE, ERROR_LISTENER, N_ERROR

cdef enum:
    MSG_BATCH = 64

NEXTS = (("ip4-lookup", ("ip4-lookup", "error-drop")),)

ERRORS = (
    ("none", "info", "no error"),
    ("app-msgs", "info", "app messages read from the engine's queue"),
    ("bad-msg", "warn", "app messages refused (all reasons: the rows after tx-requeued)"),
    ("tx-pushed", "info", "sessions pushed to their transport"),
    ("tx-requeued", "info", "sessions with data left after their push (sent to the back)"),
) + APP_MSG_REFUSALS

ctypedef struct session_queue_t:
    gn_session_main_t* sm
    gn_mq_handle_t mq                  # the engine's queue (apps -> engine)
    uint32_t max_msgs
    uint32_t tx_budget
    uint32_t max_units


cdef uint32_t _push_tx(gn_main_t* vm, gn_node_runtime_t* node, session_queue_t* q) noexcept nogil:
    cdef gn_session_main_t* sm = q.sm
    cdef uint32_t n = sm.tx_tail - sm.tx_head, i, pushed = 0, requeued = 0, sent
    cdef gn_session_t* s
    cdef gn_transport_vft_t* tp
    if n > q.tx_budget:
        n = q.tx_budget
    for i in range(n):
        s = gn_session_from_handle(sm, sm.tx_ring[sm.tx_head & (sm.tx_cap - 1)])
        sm.tx_head += 1
        if s == NULL or s.tx_fifo == NULL:
            continue
        s.flags &= ~GN_SESSION_F_TX_QUEUED
        if s.flags & GN_SESSION_F_WAIT_BUFFERS:
            continue                                 # woken by the pool, not by the ring
        if s.state > GN_SESSION_STATE_TRANSPORT_CLOSING and s.state != GN_SESSION_STATE_CLOSING:
            continue                                 # closed: nothing more goes out
        tp = &sm.transports[s.proto]
        if tp.push_tx == NULL:
            continue
        sent = tp.push_tx(tp.ctx, vm, node, s, q.max_units)
        gn_session_trace(vm, node, GN_SESSION_TRACE_PUSH, gn_session_handle(s), s, s.app_wrk_index, sent)
        if s.flags & GN_SESSION_F_CUT_THROUGH:
            pushed += 1                              # the peer reads and clears the event
            continue
        if s.flags & GN_SESSION_F_WAIT_BUFFERS:
            pushed += 1                              # back on the ring when buffers are freed
            continue
        pushed += 1
        if tp.stream_tx:
            if sent >= q.max_units:
                gn_session_tx_schedule(sm, s)        # more to send: to the back
                requeued += 1
            continue                                 # the rest goes as ACKs open the windows
        if sent and gn_fifo_needs_deq_ntf(s.tx_fifo, sent):
            gn_session_dequeue_notify(sm, s)
        if gn_fifo_max_dequeue(s.tx_fifo):
            gn_session_tx_schedule(sm, s)            # to the back: the others go first
            requeued += 1
        else:
            gn_fifo_unset_event(s.tx_fifo)
            if gn_fifo_max_dequeue(s.tx_fifo) and gn_fifo_set_event(s.tx_fifo):
                gn_session_tx_schedule(sm, s)        # written between our check and the unset
    gn_node_increment_error(vm, node, ERROR_TX_PUSHED, pushed)
    gn_node_increment_error(vm, node, ERROR_TX_REQUEUED, requeued)
    return pushed


cdef uint32_t session_queue_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef session_queue_t* q = <session_queue_t*>node.runtime_data
    cdef gn_app_msg_t msgs[MSG_BATCH]
    cdef uint32_t k, i, n_msgs = 0, bad = 0, pushed, why
    cdef uint32_t refused[GN_APP_MSG_N_E]
    cdef gn_session_main_t* sm = q.sm
    if sm == NULL:
        return 0
    if q.mq.mq != NULL:
        if node.fd_ready:
            # Read the eventfd only when epoll reported it: a run raised
            # otherwise (a builtin app's event, polling) saves the read()
            # syscall. A signal not read yet stays readable (level-triggered),
            # so epoll reports it and a later run reads it: none is lost.
            node.fd_ready = 0
            gn_mq_clear_signal(&q.mq)
        memset(refused, 0, sizeof(refused))
        while n_msgs < q.max_msgs:
            k = gn_mq_dequeue_batch(q.mq.mq, <uint8_t*>msgs, sizeof(gn_app_msg_t), MSG_BATCH)
            if k == 0:
                break
            for i in range(k):
                why = gn_app_msg_handle(vm, node, sm, &msgs[i])
                if why:
                    bad += 1
                    refused[why] += 1
            n_msgs += k
        gn_node_increment_error(vm, node, ERROR_APP_MSGS, n_msgs)
        gn_node_increment_error(vm, node, ERROR_BAD_MSG, bad)
        gn_app_msg_count_refused(vm, node, ERROR_BAD_WORKER, refused)
    gn_session_run_ctrl(sm, 0)
    pushed = _push_tx(vm, node, q)
    node.has_more_work = sm.tx_tail != sm.tx_head or sm.pools[0].n_ctrl != 0 or (
        q.mq.mq != NULL and gn_mq_count(q.mq.mq) != 0)
    if node.has_more_work:
        gn_node_set_interrupt_pending(vm, node.node_index)
    return n_msgs + pushed


cdef uint16_t _trace_packet(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b, uint8_t* record) noexcept nogil:
    """A packet a push sent: the session record (type PACKET) and its first bytes."""
    cdef gn_session_trace_t* t = <gn_session_trace_t*>record
    memset(t, 0, sizeof(gn_session_trace_t))
    t.type = GN_SESSION_TRACE_PACKET
    t.handle = GN_NO_HANDLE
    return sizeof(gn_session_trace_t) + gn_trace_bytes_fill(record + sizeof(gn_session_trace_t), b.sw_if_index[GN_TX],
                                                             gn_buffer_current(b), b.current_length,
                                                             GN_SESSION_TRACE_BYTES)


def _format(bytes record, engine=None):
    from graphnet.session.show import format_session_trace
    return format_session_trace(record, engine)


def _setup(engine, node_index):
    cdef session_queue_t* q = <session_queue_t*>gn_node_data(engine, "session-queue")
    from graphnet.session.application import session_manager
    from graphnet.session.segment import Segment
    mgr = session_manager(engine)
    mgr.engine_segment = Segment(1 << 20, "engine-mq")
    mgr.engine_mq = MessageQueue.alloc(mgr.engine_segment, 1024, 64)
    q.sm = <gn_session_main_t*>PyCapsule_GetPointer(mgr.layer.capsule(), "gn_session_main")
    q.mq = (<gn_mq_handle_t*><size_t>mgr.engine_mq.handle_address())[0]
    q.max_msgs = 4096
    q.tx_budget = getattr(engine, "session_tx_budget", 256)
    q.max_units = getattr(engine, "session_tx_max_units", 32)
    mgr.layer.set_queue_node(node_index)
    engine.main.register_fd(node_index, mgr.engine_mq.fd)


def _teardown(engine, node_index):
    """The engine closes: its session manager's apps, queues and segments go."""
    from graphnet.session.application import session_manager, _MANAGERS
    mgr = session_manager(engine)
    engine.main.unregister_fd(node_index)
    mgr.layer.set_queue_node(0xffffffff)
    mgr.close()
    mgr.engine_mq.close()
    mgr.engine_segment.close()
    _MANAGERS.pop(engine, None)


NODES = (
    node("session-queue", gn_node_fn(session_queue_fn), type="input", state="interrupt", nexts=NEXTS, Next=Next,
         errors=ERRORS, Error=Error, data_size=sizeof(session_queue_t), setup=_setup, teardown=_teardown,
         trace=trace_record(gn_trace_fn(_trace_packet),
                            sizeof(gn_session_trace_t) + GN_TRACE_BYTES_HEADER + GN_SESSION_TRACE_BYTES, _format),
         doc=__doc__),
)
FEATURE = "session"
