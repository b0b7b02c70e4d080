"""A transport for the session layer's tests: it fills the transport table
(proto ``test``) with C functions that record each call the session layer
makes down (listen, unlisten, connect, close, reset, shutdown, cleanup,
push), and
lets a test make the calls a real transport makes up (accept, connected,
closing, closed, reset, delete). It moves no bytes. It is also the
smallest example of how a transport plugs in: fill a gn_transport_vft_t,
keep gn_transport_connection_t first in your connection struct, call the
session.pxd up-calls.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset
from graphnet.session.types cimport *
from graphnet.session.session cimport (gn_session_main_t, SessionLayer, gn_session_stream_accept,
                                       gn_session_stream_connect_notify, gn_session_half_open_delete_notify,
                                       gn_session_transport_closing_notify, gn_session_transport_closed_notify,
                                       gn_session_transport_reset_notify, gn_session_transport_delete_notify,
                                       gn_session_get_if_valid, gn_session_enqueue_notify)
from graphnet.session.fifo cimport gn_fifo_enqueue, gn_fifo_dequeue_drop

cdef enum:
    MAX_CONN = 4096
    MAX_LOG = 4096

ctypedef struct mock_t:
    gn_transport_connection_t conns[MAX_CONN]
    gn_transport_connection_t listeners[64]
    uint32_t n_conns
    uint32_t n_listeners
    uint32_t log_op[MAX_LOG]
    uint32_t log_arg[MAX_LOG]
    uint32_t n_log
    int connect_result                 # < 0: connect fails
    uint64_t last_ho

cdef enum:
    OP_LISTEN = 1
    OP_UNLISTEN = 2
    OP_CONNECT = 3
    OP_CLOSE = 4
    OP_RESET = 5
    OP_CLEANUP = 6
    OP_PUSH = 7
    OP_SHUTDOWN = 8

OP_NAMES = {OP_LISTEN: "listen", OP_UNLISTEN: "unlisten", OP_CONNECT: "connect", OP_CLOSE: "close",
            OP_RESET: "reset", OP_CLEANUP: "cleanup", OP_PUSH: "push", OP_SHUTDOWN: "shutdown"}


cdef inline void _log(mock_t* m, uint32_t op, uint32_t arg) noexcept nogil:
    if m.n_log < MAX_LOG:
        m.log_op[m.n_log] = op
        m.log_arg[m.n_log] = arg
        m.n_log += 1


cdef int _listen(void* ctx, uint32_t session_index, const gn_endpoint_t* lcl) noexcept nogil:
    cdef mock_t* m = <mock_t*>ctx
    cdef gn_transport_connection_t* l
    if m.n_listeners == 64:
        return -1
    l = &m.listeners[m.n_listeners]
    memset(l, 0, sizeof(gn_transport_connection_t))
    l.lcl = lcl[0]
    l.c_index = m.n_listeners
    l.s_index = session_index
    l.proto = GN_TRANSPORT_PROTO_TEST
    m.n_listeners += 1
    _log(m, OP_LISTEN, l.c_index)
    return l.c_index


cdef int _unlisten(void* ctx, uint32_t index) noexcept nogil:
    _log(<mock_t*>ctx, OP_UNLISTEN, index)
    return 0


cdef int _connect(void* ctx, const gn_endpoint_t* rmt, const gn_endpoint_t* lcl, uint64_t ho) noexcept nogil:
    cdef mock_t* m = <mock_t*>ctx
    _log(m, OP_CONNECT, <uint32_t>ho)
    m.last_ho = ho
    return m.connect_result


cdef void _close(void* ctx, uint32_t c, uint32_t t) noexcept nogil:
    _log(<mock_t*>ctx, OP_CLOSE, c)


cdef void _reset(void* ctx, uint32_t c, uint32_t t) noexcept nogil:
    _log(<mock_t*>ctx, OP_RESET, c)


cdef void _shutdown(void* ctx, uint32_t c, uint32_t t) noexcept nogil:
    _log(<mock_t*>ctx, OP_SHUTDOWN, c)


cdef void _cleanup(void* ctx, uint32_t c, uint32_t t) noexcept nogil:
    _log(<mock_t*>ctx, OP_CLEANUP, c)


cdef uint32_t _push(void* ctx, void* vm, void* node, gn_session_t* s, uint32_t max_units) noexcept nogil:
    """Sends (drops) everything in the tx fifo."""
    _log(<mock_t*>ctx, OP_PUSH, s.connection_index)
    return <uint32_t>gn_fifo_dequeue_drop(s.tx_fifo, 0xffffffff)


cdef gn_transport_connection_t* _get(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef mock_t* m = <mock_t*>ctx
    return &m.conns[index] if index < m.n_conns else NULL


cdef gn_transport_connection_t* _get_listener(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef mock_t* m = <mock_t*>ctx
    return &m.listeners[index] if index < m.n_listeners else NULL


cdef class MockTransport:
    """Registers itself as proto ``test`` of `layer`."""
    cdef mock_t* m
    cdef gn_session_main_t* sm
    cdef SessionLayer layer

    def __cinit__(self, SessionLayer layer, service="vc"):
        cdef gn_transport_vft_t* tp
        self.m = <mock_t*>calloc(1, sizeof(mock_t))
        if self.m == NULL:
            raise MemoryError()
        self.layer = layer
        self.sm = layer.sm
        tp = &self.sm.transports[GN_TRANSPORT_PROTO_TEST]
        memset(tp, 0, sizeof(gn_transport_vft_t))
        tp.listen = _listen
        tp.unlisten = _unlisten
        tp.connect = _connect
        tp.close = _close
        tp.reset = _reset
        tp.shutdown = _shutdown
        tp.cleanup = _cleanup
        tp.push_tx = _push
        tp.get_connection = _get
        tp.get_listener = _get_listener
        tp.get_half_open = _get
        tp.ctx = self.m
        tp.service = GN_TRANSPORT_SERVICE_DGRAM if service == "dgram" else GN_TRANSPORT_SERVICE_VC
        tp.registered = 1

    def __dealloc__(self):
        if self.sm != NULL and self.layer is not None and self.layer.sm == self.sm:
            self.sm.transports[GN_TRANSPORT_PROTO_TEST].registered = 0
        free(self.m)

    def calls(self):
        """``[(op, arg)]`` made by the session layer, oldest first."""
        return [(OP_NAMES[self.m.log_op[i]], self.m.log_arg[i]) for i in range(self.m.n_log)]

    def clear_calls(self):
        self.m.n_log = 0

    def set_connect_result(self, int r):
        self.m.connect_result = r

    def new_connection(self, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip, uint16_t rmt_port):
        cdef gn_transport_connection_t* c
        if self.m.n_conns == MAX_CONN:
            raise MemoryError("mock transport: too many connections")
        c = &self.m.conns[self.m.n_conns]
        memset(c, 0, sizeof(gn_transport_connection_t))
        c.lcl.ip = lcl_ip
        c.lcl.port = lcl_port
        c.rmt.ip = rmt_ip
        c.rmt.port = rmt_port
        c.c_index = self.m.n_conns
        c.s_index = GN_SESSION_INVALID_INDEX
        c.proto = GN_TRANSPORT_PROTO_TEST
        self.m.n_conns += 1
        return c.c_index

    def session_index(self, uint32_t c):
        return self.m.conns[c].s_index

    def accept(self, uint32_t c, uint64_t listener_handle, bint notify=True):
        return gn_session_stream_accept(self.sm, &self.m.conns[c], listener_handle, notify)

    def connected(self, uint32_t c, uint64_t ho_handle, int err=0):
        return gn_session_stream_connect_notify(self.sm, &self.m.conns[c] if err == 0 else NULL, ho_handle, err)

    def half_open_deleted(self, uint64_t ho_handle):
        gn_session_half_open_delete_notify(self.sm, ho_handle)

    def closing(self, uint32_t c):
        gn_session_transport_closing_notify(self.sm, &self.m.conns[c])

    def closed(self, uint32_t c):
        gn_session_transport_closed_notify(self.sm, &self.m.conns[c])

    def reset(self, uint32_t c):
        gn_session_transport_reset_notify(self.sm, &self.m.conns[c])

    def deleted(self, uint32_t c):
        gn_session_transport_delete_notify(self.sm, &self.m.conns[c])

    def rx(self, uint32_t c, const unsigned char[::1] data):
        """Enqueue data into the connection's session rx fifo and notify, as
        a transport's rx node does; returns the bytes enqueued."""
        cdef gn_session_t* s = gn_session_get_if_valid(self.sm, self.m.conns[c].s_index, self.m.conns[c].thread_index)
        cdef int n
        if s == NULL:
            raise ValueError(f"connection {c} has no session")
        n = gn_fifo_enqueue(s.rx_fifo, &data[0], data.shape[0]) if data.shape[0] else 0
        gn_session_enqueue_notify(self.sm, s)
        return n
