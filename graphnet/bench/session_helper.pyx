"""C loops for ``graphnet bench session-events`` (see session_events.py):
the rx notification path of the session layer against a synchronous
notification per enqueue, with an app that drains its queue and fifos in
C on both sides."""
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_enqueue, gn_fifo_dequeue_drop, gn_fifo_unset_event)
from graphnet.session.msg_queue cimport gn_mq_handle_t, gn_mq_enqueue_batch, gn_mq_dequeue_batch
from graphnet.session.session cimport (gn_session_main_t, SessionLayer, gn_session_from_handle,
                                       gn_session_enqueue_notify, gn_session_flush, gn_app_wrk_t, gn_session_handle)

cdef enum:
    DRAIN = 256


cdef uint64_t _app_drain(gn_session_main_t* sm, gn_mq_handle_t* h) noexcept nogil:
    """The app: read every message, empty the session's rx fifo, clear its event."""
    cdef gn_app_msg_t msgs[DRAIN]
    cdef uint32_t k, i
    cdef uint64_t n = 0
    cdef gn_session_t* s
    while True:
        k = gn_mq_dequeue_batch(h.mq, <uint8_t*>msgs, sizeof(gn_app_msg_t), DRAIN)
        if k == 0:
            return n
        for i in range(k):
            s = gn_session_from_handle(sm, msgs[i].handle)
            if s != NULL and msgs[i].type == GN_EVT_RX:
                gn_fifo_dequeue_drop(s.rx_fifo, 0xffffffff)
                gn_fifo_unset_event(s.rx_fifo)
        n += k


def run_rounds(SessionLayer layer, list handles, uint32_t wrk_index, uint32_t per_session, uint32_t rounds,
               bint coalesce):
    """rounds x (per_session datagrams of 64 bytes into every session's rx
    fifo, each notified), then the app drains. coalesce: the session
    layer's path (pending events, one flush); else one message-queue
    enqueue (one lock) per datagram. Returns messages the app read."""
    cdef gn_session_main_t* sm = layer.sm
    cdef gn_app_wrk_t* wrk = &sm.wrks[wrk_index]
    cdef uint8_t payload[64]
    cdef gn_app_msg_t m
    cdef uint32_t r, i, k, n = len(handles)
    cdef uint64_t read = 0
    cdef gn_session_t** ss = <gn_session_t**>NULL
    cdef list keep = handles
    ss = <gn_session_t**>PyMem_Malloc(n * sizeof(gn_session_t*))
    for i in range(n):
        ss[i] = gn_session_from_handle(sm, <uint64_t>keep[i])
    memset(payload, 7, 64)
    memset(&m, 0, sizeof(m))
    m.type = GN_EVT_RX
    with nogil:
        for r in range(rounds):
            for i in range(n):
                for k in range(per_session):
                    gn_fifo_enqueue(ss[i].rx_fifo, payload, 64)
                    if coalesce:
                        gn_session_enqueue_notify(sm, ss[i])
                    else:
                        m.handle = gn_session_handle(ss[i])
                        gn_mq_enqueue_batch(&wrk.mq, <uint8_t*>&m, sizeof(m), 1)
            if coalesce:
                while sm.n_pending:
                    gn_session_flush(sm, 0xffffffff)
            read += _app_drain(sm, &wrk.mq)
    PyMem_Free(ss)
    return read
