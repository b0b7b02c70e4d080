"""The builtin echo server: every datagram (UDP) goes back to its sender.

A builtin app: its worker gets the session layer's events as a C callback,
one batch per session-input flush, in the engine's loop. On an rx event it
moves every whole datagram from the session's rx fifo to its tx fifo (the
16-byte datagram header is kept: the reply goes to the header's peer, from
the header's local address), in one ``gn_fifo_enqueue_segments`` over the
rx fifo's readable slices, clears the rx event, and puts the session on
session-queue's tx ring. A datagram that does not fit in the tx fifo is
dropped and counted (``tx-full``). Closes and resets from the transport
are answered with a close.

    from graphnet.apps.echo import start_echo_server
    start_echo_server(engine, "udp://0.0.0.0/1234")     # CLI: test echo server uri udp://0.0.0.0/1234
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_slice_t, gn_fifo_peek, gn_fifo_max_dequeue, gn_fifo_max_enqueue,
                                    gn_fifo_readable, gn_fifo_enqueue_segments, gn_fifo_dequeue_drop,
                                    gn_fifo_unset_event, gn_fifo_set_event)
from graphnet.session.session cimport (gn_session_main_t, gn_app_wrk_t, gn_session_from_handle, gn_session_close,
                                       gn_session_tx_schedule, SessionLayer)

cdef enum:
    HDR_LEN = 16

ctypedef struct echo_t:
    gn_session_main_t* sm
    uint64_t rx_events
    uint64_t datagrams
    uint64_t bytes
    uint64_t tx_full


cdef uint32_t _echo_session(echo_t* e, gn_session_t* s) noexcept nogil:
    cdef gn_fifo_t* rx = s.rx_fifo
    cdef gn_fifo_t* tx = s.tx_fifo
    cdef gn_fifo_slice_t sl[2]
    cdef uint32_t avail, room, off = 0, take = 0, len, n = 0, k, dropped = 0
    if rx == NULL or tx == NULL:
        return 0
    avail = gn_fifo_max_dequeue(rx)
    room = gn_fifo_max_enqueue(tx)
    while off + HDR_LEN <= avail:                     # whole datagrams that fit
        gn_fifo_peek(rx, off, <uint8_t*>&len, 4)
        if len > avail - off - HDR_LEN:
            break
        if take + HDR_LEN + len > room:
            break
        take += HDR_LEN + len
        off += HDR_LEN + len
        n += 1
    if take:
        k = gn_fifo_readable(rx, sl)
        if sl[0].len >= take:                          # trim the slices to `take`
            sl[0].len = take
            k = 1
        else:
            sl[1].len = take - sl[0].len
        gn_fifo_enqueue_segments(tx, sl, k, False)
        gn_fifo_dequeue_drop(rx, take)
    while off + HDR_LEN <= avail:                      # the rest did not fit: drop whole datagrams
        gn_fifo_peek(rx, off, <uint8_t*>&len, 4)
        if len > avail - off - HDR_LEN:
            break
        off += HDR_LEN + len
        dropped += HDR_LEN + len
        e.tx_full += 1
    if dropped:
        gn_fifo_dequeue_drop(rx, dropped)
    gn_fifo_unset_event(rx)
    if take and gn_fifo_set_event(tx):
        gn_session_tx_schedule(e.sm, s)
    e.datagrams += n
    e.bytes += take - n * HDR_LEN
    return n


cdef void echo_cb(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil:
    cdef echo_t* e = <echo_t*>ctx
    cdef gn_session_t* s
    cdef uint32_t i
    for i in range(n):
        s = gn_session_from_handle(e.sm, msgs[i].handle)
        if s == NULL:
            continue
        if msgs[i].type == GN_EVT_RX:
            e.rx_events += 1
            _echo_session(e, s)
        elif msgs[i].type == GN_EVT_DISCONNECTED or msgs[i].type == GN_EVT_RESET:
            gn_session_close(e.sm, s)


cdef class EchoServer:
    """C state of one echo server app (kept alive with its app)."""
    cdef echo_t* e
    cdef readonly object app
    cdef readonly str uri

    def __cinit__(self, SessionLayer layer, str uri):
        self.e = <echo_t*>calloc(1, sizeof(echo_t))
        if self.e == NULL:
            raise MemoryError()
        self.e.sm = layer.sm
        self.uri = uri

    def __dealloc__(self):
        free(self.e)

    def callback(self):
        return (PyCapsule_New(<void*>echo_cb, "gn_wrk_cb", NULL), PyCapsule_New(<void*>self.e, NULL, NULL))

    def stats(self):
        return {"rx_events": self.e.rx_events, "datagrams": self.e.datagrams, "bytes": self.e.bytes,
                "tx_full": self.e.tx_full}


def start_echo_server(engine, uri, name=None, **options):
    """Attach a builtin echo server app listening on `uri`; returns it (its
    ``echo`` attribute has the counters). Runs in the engine's loop thread."""
    from graphnet.session.application import session_manager, parse_uri
    parse_uri(uri)                                    # a clear error before anything is made
    engine.build()

    def start():
        mgr = session_manager(engine)
        srv = EchoServer(mgr.layer, uri)
        app = mgr.attach(name or f"echo-server {uri}", callback=srv.callback(), **options)
        try:
            app.workers[0].listen(uri)
        except BaseException:
            app.detach()
            raise
        app.echo = srv
        return app
    return engine.call(start)
