"""Cut-through sessions: two apps of this engine connected without the
graph (issue 12 item 9).

An app with local (or both) scope connecting to ip:port where an app with
local scope listens gets a cut-through session: the connect creates a
pair of ct connections and two sessions that **share two fifos** in the
server worker's segment (the client's tx fifo is the server's rx fifo and
the other way round). The server is told ACCEPTED, the client CONNECTED;
both messages carry the peer worker's queue (``peer_mq``). Data never
enters the graph: an app writes into its tx fifo and, if it set the fifo's
event flag from clear, the tx event (the app's message, or
``tx_schedule`` for builtin apps) reaches session-queue, which hands it to
this transport's push: an rx event for the peer worker. The reader clears
the flag when it has read. Either side's close reaches the other as a
transport closing (DISCONNECTED), a reset as RESET; the fifos are freed
with the second session to go. A shutdown (half-close) reaches the peer
as DISCONNECTED too, but the pair stays linked: the peer still writes to
the end that shut. Writing to a peer that closed fully is what TCP
answers with a RST: the writer's transport is closed (TRANSPORT_CLOSED,
then its cleanup), its bytes dropped. ``show session`` shows them as
``ct``.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset
from graphnet.session.types cimport *
from graphnet.session.session cimport (gn_session_main_t, SessionLayer, gn_session_from_handle, gn_session_alloc,
                                       gn_session_handle, gn_session_stream_accept, gn_session_stream_accept_notify,
                                       gn_session_get_if_valid, gn_session_lookup_local_listener4,
                                       gn_session_half_open_delete_notify, gn_session_transport_closing_notify,
                                       gn_session_transport_reset_notify, gn_session_transport_delete_notify,
                                       gn_session_transport_closed_notify,
                                       gn_app_wrk_add_event, gn_app_wrk_connect_event)

cdef enum:
    MAX_CT = 65536
    CT_PORT_BASE = 49152

ctypedef struct ct_conn_t:
    gn_transport_connection_t c
    uint32_t peer                      # the other end's index, or GN_SESSION_INVALID_INDEX
    uint8_t valid

ctypedef struct ct_main_t:
    gn_session_main_t* sm
    ct_conn_t* conns
    uint32_t high
    uint32_t* free_idx
    uint32_t n_free
    uint32_t next_port
    uint64_t n_connects
    uint64_t n_refused


cdef ct_conn_t* _alloc(ct_main_t* ct) noexcept nogil:
    cdef uint32_t i
    if ct.n_free:
        ct.n_free -= 1
        i = ct.free_idx[ct.n_free]
    elif ct.high < MAX_CT:
        i = ct.high
        ct.high += 1
    else:
        return NULL
    memset(&ct.conns[i], 0, sizeof(ct_conn_t))
    ct.conns[i].c.c_index = i
    ct.conns[i].c.proto = GN_TRANSPORT_PROTO_CT
    ct.conns[i].c.s_index = GN_SESSION_INVALID_INDEX
    ct.conns[i].peer = GN_SESSION_INVALID_INDEX
    ct.conns[i].valid = 1
    return &ct.conns[i]


cdef void _free(ct_main_t* ct, uint32_t i) noexcept nogil:
    if i < ct.high and ct.conns[i].valid:
        ct.conns[i].valid = 0
        ct.free_idx[ct.n_free] = i
        ct.n_free += 1


cdef int _connect(void* ctx, const gn_endpoint_t* rmt, const gn_endpoint_t* lcl, uint64_t ho_handle) noexcept nogil:
    cdef ct_main_t* ct = <ct_main_t*>ctx
    cdef gn_session_main_t* sm = ct.sm
    cdef gn_session_t* ho = gn_session_from_handle(sm, ho_handle)
    cdef gn_session_t* ls
    cdef gn_session_t* ss
    cdef gn_session_t* cs
    cdef ct_conn_t* srv
    cdef ct_conn_t* cli
    cdef uint32_t wrk, opaque
    if ho == NULL:
        return -22
    ls = gn_session_lookup_local_listener4(sm, ho.proto, rmt.ip, rmt.port)
    if ls == NULL:
        ct.n_refused += 1
        return -111                                   # ECONNREFUSED
    wrk = ho.app_wrk_index
    opaque = ho.opaque
    srv = _alloc(ct)
    cli = _alloc(ct)
    if srv == NULL or cli == NULL:
        if srv != NULL:
            _free(ct, srv.c.c_index)
        return -12
    srv.peer = cli.c.c_index
    cli.peer = srv.c.c_index
    srv.c.lcl = rmt[0]
    srv.c.rmt.ip = rmt.ip
    srv.c.rmt.port = <uint16_t>(CT_PORT_BASE + ct.next_port % (65536 - CT_PORT_BASE))
    ct.next_port += 1
    cli.c.lcl = srv.c.rmt
    cli.c.rmt = srv.c.lcl
    if gn_session_stream_accept(sm, &srv.c, gn_session_handle(ls), False) != 0:
        _free(ct, srv.c.c_index)
        _free(ct, cli.c.c_index)
        return -12
    ss = gn_session_get_if_valid(sm, srv.c.s_index, 0)
    cs = gn_session_alloc(sm, 0)
    if cs == NULL:
        gn_session_transport_delete_notify(sm, &srv.c)      # CREATED: freed silently
        _free(ct, srv.c.c_index)
        _free(ct, cli.c.c_index)
        return -12
    ss.flags |= GN_SESSION_F_CUT_THROUGH
    cs.flags = GN_SESSION_F_CUT_THROUGH
    cs.proto = GN_TRANSPORT_PROTO_CT
    cs.connection_index = cli.c.c_index
    cs.app_wrk_index = wrk
    cs.opaque = opaque
    # the same two fifos, crossed; each session has its own copy of the
    # handles (no out-of-order ranges on cut-through: the apps write in order)
    cs.rx_h = ss.tx_h
    cs.tx_h = ss.rx_h
    cs.rx_h.ooo = cs.tx_h.ooo = NULL
    cs.rx_h.n_ooo = cs.tx_h.n_ooo = 0
    cs.rx_fifo = &cs.rx_h
    cs.tx_fifo = &cs.tx_h
    cs.tx_fifo_offset = <uint32_t>cs.tx_h.offset
    cs.state = GN_SESSION_STATE_READY
    cli.c.s_index = cs.session_index
    cs.peer_handle = gn_session_handle(ss)
    ss.peer_handle = gn_session_handle(cs)
    gn_session_stream_accept_notify(sm, &srv.c)
    gn_app_wrk_connect_event(sm, wrk, gn_session_handle(cs), 0, opaque)
    gn_session_half_open_delete_notify(sm, ho_handle)
    ct.n_connects += 1
    return cli.c.c_index


cdef void _end(ct_main_t* ct, uint32_t c, bint reset) noexcept nogil:
    """This end closes: the peer hears of it (closing or reset), this end's
    session is deleted (it is APP_CLOSED: it goes once its app is told)."""
    cdef ct_conn_t* me
    cdef ct_conn_t* peer
    if c >= ct.high or not ct.conns[c].valid:
        return
    me = &ct.conns[c]
    if me.peer != GN_SESSION_INVALID_INDEX and ct.conns[me.peer].valid:
        peer = &ct.conns[me.peer]
        peer.peer = GN_SESSION_INVALID_INDEX
        if reset:
            gn_session_transport_reset_notify(ct.sm, &peer.c)
        else:
            gn_session_transport_closing_notify(ct.sm, &peer.c)
    gn_session_transport_delete_notify(ct.sm, &me.c)
    _free(ct, c)


cdef void _close(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    _end(<ct_main_t*>ctx, c, False)


cdef void _reset(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    _end(<ct_main_t*>ctx, c, True)


cdef void _shutdown(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    """Half-close: the peer hears end of stream (a transport closing) after
    the bytes already in the shared fifo; the pair stays linked."""
    cdef ct_main_t* ct = <ct_main_t*>ctx
    cdef uint32_t p
    if c >= ct.high or not ct.conns[c].valid:
        return
    p = ct.conns[c].peer
    if p != GN_SESSION_INVALID_INDEX and ct.conns[p].valid:
        gn_session_transport_closing_notify(ct.sm, &ct.conns[p].c)


cdef void _cleanup(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    cdef ct_main_t* ct = <ct_main_t*>ctx
    if c < ct.high and ct.conns[c].valid and ct.conns[c].peer != GN_SESSION_INVALID_INDEX:
        ct.conns[ct.conns[c].peer].peer = GN_SESSION_INVALID_INDEX
    _free(ct, c)


cdef uint32_t _push(void* ctx, void* vm, void* node, gn_session_t* s, uint32_t max_units) noexcept nogil:
    """The app wrote to its tx fifo, the peer's rx fifo: an rx event for the
    peer; if the peer closed fully, this end's transport closes (see the
    module docstring)."""
    cdef ct_main_t* ct = <ct_main_t*>ctx
    cdef uint32_t c = s.connection_index
    cdef gn_session_t* peer
    if c < ct.high and ct.conns[c].valid and ct.conns[c].peer == GN_SESSION_INVALID_INDEX:
        gn_session_transport_closed_notify(ct.sm, &ct.conns[c].c)
        gn_session_transport_delete_notify(ct.sm, &ct.conns[c].c)
        _free(ct, c)
        return 0
    peer = gn_session_from_handle(ct.sm, s.peer_handle)
    if peer == NULL:
        return 0
    gn_app_wrk_add_event(ct.sm, peer.app_wrk_index, GN_EVT_RX, 0, gn_session_handle(peer))
    return 1


cdef gn_transport_connection_t* _get(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef ct_main_t* ct = <ct_main_t*>ctx
    return &ct.conns[index].c if index < ct.high and ct.conns[index].valid else NULL


cdef class CutThrough:
    """The cut-through transport of a session layer (proto ``ct``)."""
    cdef ct_main_t* ct
    cdef SessionLayer layer

    def __cinit__(self, SessionLayer layer):
        cdef gn_transport_vft_t* tp
        self.ct = <ct_main_t*>calloc(1, sizeof(ct_main_t))
        if self.ct == NULL:
            raise MemoryError()
        self.ct.conns = <ct_conn_t*>calloc(MAX_CT, sizeof(ct_conn_t))
        self.ct.free_idx = <uint32_t*>calloc(MAX_CT, sizeof(uint32_t))
        if self.ct.conns == NULL or self.ct.free_idx == NULL:
            raise MemoryError()
        self.ct.sm = layer.sm
        self.layer = layer
        tp = &layer.sm.transports[GN_TRANSPORT_PROTO_CT]
        memset(tp, 0, sizeof(gn_transport_vft_t))
        tp.connect = _connect
        tp.close = _close
        tp.reset = _reset
        tp.shutdown = _shutdown
        tp.cleanup = _cleanup
        tp.push_tx = _push
        tp.get_connection = _get
        tp.get_half_open = _get
        tp.ctx = self.ct
        tp.service = GN_TRANSPORT_SERVICE_VC
        tp.registered = 1

    def __dealloc__(self):
        if self.ct != NULL:
            free(self.ct.conns)
            free(self.ct.free_idx)
            free(self.ct)

    def stats(self):
        return {"connects": self.ct.n_connects, "refused": self.ct.n_refused}
