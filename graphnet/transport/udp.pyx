"""UDP sessions: the UDP transport of the session layer and its rx node.

Sessions:
  - a **listener** on ip:port (ip 0: any address) is a datagram session
    (the UDP service is DGRAM): it has its own rx and tx fifos and gets
    every datagram for that port that no connected session takes;
  - a **connected** session (``connect``) has a 5-tuple and gets only its
    peer's datagrams; its local port is an ephemeral one (49152..65535).

Datagrams in fifos: each is a 16-byte header (``gn_udp_dgram_hdr_t``:
payload length, peer address and port, local address and port, host
order) followed by the payload. rx writes header and payload with one
``gn_fifo_enqueue_segments(..., allow_partial=0)``: an app reads whole
datagrams or none; a datagram that does not fit is dropped and counted
(``rx-fifo-full``, and the session's rx_drops). tx reads the same format
from the app's tx fifo: the datagram goes to the header's peer (a listener)
or the connection's peer (connected), from the header's local address (or
the connection's); a header claiming more than 65507 bytes, or more than
the fifo holds, is refused (``tx-bad-header``: the fifo is flushed).

``udp4-session`` (internal node, on the kit; registry feature
``session``): claims the ports of listeners and connected sessions on
``udp4-input``. Metadata used: current_data at the IPv4 header (udp4-input
checked the UDP length and checksum), current_length, chains. Set: the
error of a dropped buffer. Next nodes: error-drop only (delivered buffers
are freed once copied). Counters: ``enqueued`` (info); drops
``rx-fifo-full``, ``no-session``, ``too-many-buffers``. Trace: the
interface and the IPv4 header (``trace_ip4``). Its state is the
transport's (``UdpTransport``, which the session layer calls for tx too).
tx runs inside session-queue (its ``ip4-lookup`` arc); its counters are in
``show session`` (udp tx).
"""
import struct
import weakref

from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, memcpy
from graphnet.includes.byteorder cimport gn_put_net16, gn_put_net32, gn_net16
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_INVALID_INDEX, GN_BUFFER_F_NEXT_PRESENT,
                                   GN_BUFFER_F_LOCALLY_ORIGINATED, gn_buffer_current, GN_FRAME_SIZE)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_increment_error, gn_buffer_set_error)
from graphnet.nodes.ip4_csum cimport gn_chain_sum
from graphnet.wire.inet cimport gn_inet_checksum, gn_ip4_pseudo_sum
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_src, gn_ip4_dst, gn_ip4_set_checksum, GN_IP4_PROTO_UDP
from graphnet.wire.udp cimport gn_udp_length, gn_udp_src_port, gn_udp_dst_port, GN_UDP_HEADER_LEN
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_slice_t, gn_fifo_enqueue_segments, gn_fifo_peek,
                                    gn_fifo_max_dequeue, gn_fifo_dequeue_drop, gn_fifo_dequeue_drop_all)
from graphnet.session.session cimport (gn_session_main_t, SessionLayer, gn_session_lookup4, gn_session_lookup_listener4,
                                       gn_session_enqueue_notify, gn_session_stream_connect_notify,
                                       gn_session_half_open_delete_notify, gn_session_transport_delete_notify,
                                       gn_session_get_if_valid, gn_session_wait_buffers)
from graphnet.vlib.kit cimport gn_node_data, gn_node_fn
from graphnet.vlib.kit import node, trace_ip4
from graphnet.nodes.udp4 cimport udp4_input_t, UDP4_NEXT_UNCLAIMED

cdef enum:
    MAX_CONNS = 65536
    MAX_LISTENERS = 1024
    MAX_PIECES = 68                    # header + a 64 KB datagram in 2 KB buffers
    MAX_DGRAM = 65507
    EPHEMERAL_LO = 49152
    HDR_LEN = 16
    IP_UDP_LEN = 28
    BUF_DATA = 2048

cpdef enum Error:
    ERROR_NONE, ERROR_ENQUEUED, ERROR_RX_FIFO_FULL, ERROR_NO_SESSION, ERROR_TOO_MANY_BUFFERS, N_ERROR

ERRORS = (
    ("none", "info", "no error"),
    ("enqueued", "info", "datagrams enqueued into session rx fifos"),
    ("rx-fifo-full", "error", "datagram dropped: the session's rx fifo is full (app not reading)"),
    ("no-session", "error", "datagram dropped: no session or listener for it"),
    ("too-many-buffers", "error", "datagram dropped: chain longer than a 64 KB datagram"),
)

DGRAM_HDR = struct.Struct("<IIIHH")     # length, rmt_ip, lcl_ip, rmt_port, lcl_port
assert DGRAM_HDR.size == 16

ctypedef struct gn_udp_dgram_hdr_t:
    uint32_t data_length
    uint32_t rmt_ip
    uint32_t lcl_ip
    uint16_t rmt_port
    uint16_t lcl_port

ctypedef struct udp_conn_t:
    gn_transport_connection_t c
    uint8_t valid

ctypedef struct udp_main_t:
    gn_session_main_t* sm
    udp_conn_t* conns
    uint32_t n_conns_high
    uint32_t* free_conns
    uint32_t n_free_conns
    udp_conn_t listeners[MAX_LISTENERS]
    uint8_t port_used[65536]           # connected sessions' local ports
    uint32_t next_port
    uint16_t next_lookup               # session-queue's arc to ip4-lookup
    uint16_t ip_id
    uint64_t tx_datagrams
    uint64_t tx_no_buffers
    uint64_t tx_bad_header
    uint16_t* ports                    # udp4-input's next node by port (NULL: not in a graph)
    uint16_t port_next                 # udp4-input's arc to udp4-session


# --- the transport table ------------------------------------------------------------

cdef int _listen(void* ctx, uint32_t session_index, const gn_endpoint_t* lcl) noexcept nogil:
    cdef udp_main_t* um = <udp_main_t*>ctx
    cdef uint32_t i
    for i in range(MAX_LISTENERS):
        if not um.listeners[i].valid:
            memset(&um.listeners[i], 0, sizeof(udp_conn_t))
            um.listeners[i].c.lcl = lcl[0]
            um.listeners[i].c.c_index = i
            um.listeners[i].c.s_index = session_index
            um.listeners[i].c.proto = GN_TRANSPORT_PROTO_UDP
            um.listeners[i].valid = 1
            return i
    return -1


cdef int _unlisten(void* ctx, uint32_t index) noexcept nogil:
    cdef udp_main_t* um = <udp_main_t*>ctx
    if index < MAX_LISTENERS:
        um.listeners[index].valid = 0
    return 0


cdef udp_conn_t* _conn_alloc(udp_main_t* um) noexcept nogil:
    cdef uint32_t i
    if um.n_free_conns:
        um.n_free_conns -= 1
        i = um.free_conns[um.n_free_conns]
    elif um.n_conns_high < MAX_CONNS:
        i = um.n_conns_high
        um.n_conns_high += 1
    else:
        return NULL
    memset(&um.conns[i], 0, sizeof(udp_conn_t))
    um.conns[i].c.c_index = i
    um.conns[i].c.proto = GN_TRANSPORT_PROTO_UDP
    um.conns[i].c.s_index = GN_SESSION_INVALID_INDEX
    um.conns[i].valid = 1
    return &um.conns[i]


cdef bint _listening_on(udp_main_t* um, uint16_t port) noexcept nogil:
    cdef uint32_t i
    for i in range(MAX_LISTENERS):
        if um.listeners[i].valid and um.listeners[i].c.lcl.port == port:
            return True
    return False


cdef void _conn_free(udp_main_t* um, udp_conn_t* uc) noexcept nogil:
    """The connection goes; its local port is free again, and udp4-input
    stops delivering it here (port unreachable) unless a listener has it."""
    if not uc.valid:
        return
    uc.valid = 0
    um.port_used[uc.c.lcl.port] = 0
    if um.ports != NULL and not _listening_on(um, uc.c.lcl.port):
        um.ports[uc.c.lcl.port] = UDP4_NEXT_UNCLAIMED
    um.free_conns[um.n_free_conns] = uc.c.c_index
    um.n_free_conns += 1


cdef uint16_t _ephemeral_port(udp_main_t* um) noexcept nogil:
    cdef uint32_t k, p
    for k in range(65536 - EPHEMERAL_LO):
        p = EPHEMERAL_LO + (um.next_port + k) % (65536 - EPHEMERAL_LO)
        if not um.port_used[p]:
            um.next_port = p - EPHEMERAL_LO + 1
            return <uint16_t>p
    return 0


cdef int _connect(void* ctx, const gn_endpoint_t* rmt, const gn_endpoint_t* lcl, uint64_t ho) noexcept nogil:
    """UDP connects at once: the connection, the session (connect notify)
    and the half-open's end, all before returning."""
    cdef udp_main_t* um = <udp_main_t*>ctx
    cdef udp_conn_t* uc
    cdef uint16_t port = lcl.port if lcl.port else _ephemeral_port(um)
    if port == 0 or um.port_used[port]:
        return -98                                    # EADDRINUSE
    uc = _conn_alloc(um)
    if uc == NULL:
        return -12
    uc.c.lcl.ip = lcl.ip
    uc.c.lcl.port = port
    uc.c.rmt = rmt[0]
    um.port_used[port] = 1
    if um.ports != NULL:
        um.ports[port] = um.port_next                 # udp4-input delivers the port to udp4-session
    if gn_session_stream_connect_notify(um.sm, &uc.c, ho, 0) != 0:
        _conn_free(um, uc)
        gn_session_half_open_delete_notify(um.sm, ho)
        return -12
    gn_session_half_open_delete_notify(um.sm, ho)
    return uc.c.c_index


cdef void _close(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    """No handshake: the connection is gone at once."""
    cdef udp_main_t* um = <udp_main_t*>ctx
    if c >= um.n_conns_high or not um.conns[c].valid:
        return
    gn_session_transport_delete_notify(um.sm, &um.conns[c].c)
    _conn_free(um, &um.conns[c])


cdef void _cleanup(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    cdef udp_main_t* um = <udp_main_t*>ctx
    if c < um.n_conns_high:
        _conn_free(um, &um.conns[c])


cdef gn_transport_connection_t* _get(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef udp_main_t* um = <udp_main_t*>ctx
    return &um.conns[index].c if index < um.n_conns_high and um.conns[index].valid else NULL


cdef gn_transport_connection_t* _get_listener(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef udp_main_t* um = <udp_main_t*>ctx
    return &um.listeners[index].c if index < MAX_LISTENERS and um.listeners[index].valid else NULL


cdef uint32_t _build(gn_main_t* vm, udp_main_t* um, gn_fifo_t* f, uint32_t len, uint32_t src, uint16_t sport,
                     uint32_t dst, uint16_t dport, uint32_t* bis, uint32_t nb) noexcept nogil:
    """Fill the nb buffers bis[] with IPv4 + UDP + len payload bytes peeked
    from f after the 16-byte header; returns the first buffer."""
    cdef gn_buffer_t* b0 = gn_main_buffer(vm, bis[0])
    cdef gn_buffer_t* b = b0
    cdef uint8_t* ip = gn_buffer_current(b0)
    cdef uint32_t off = HDR_LEN, k, room = BUF_DATA - IP_UDP_LEN, i
    cdef bint complete
    cdef uint16_t csum
    ip[0] = 0x45
    ip[1] = 0
    gn_put_net16(ip + 2, <uint16_t>(IP_UDP_LEN + len))
    gn_put_net16(ip + 4, um.ip_id)
    um.ip_id += 1
    gn_put_net16(ip + 6, 0)
    ip[8] = 64
    ip[9] = GN_IP4_PROTO_UDP
    gn_put_net32(ip + 12, src)
    gn_put_net32(ip + 16, dst)
    gn_ip4_set_checksum(ip)
    gn_put_net16(ip + 20, sport)
    gn_put_net16(ip + 22, dport)
    gn_put_net16(ip + 24, <uint16_t>(GN_UDP_HEADER_LEN + len))
    gn_put_net16(ip + 26, 0)
    k = len if len < room else room
    gn_fifo_peek(f, off, ip + IP_UDP_LEN, k)
    b0.current_length = IP_UDP_LEN + k
    off += k
    for i in range(1, nb):
        b.flags |= GN_BUFFER_F_NEXT_PRESENT
        b.next_buffer = bis[i]
        b = gn_main_buffer(vm, bis[i])
        k = len + HDR_LEN - off
        if k > BUF_DATA:
            k = BUF_DATA
        gn_fifo_peek(f, off, gn_buffer_current(b), k)
        b.current_length = k
        off += k
    b0.total_length_not_including_first_buffer = len - (b0.current_length - IP_UDP_LEN)
    csum = gn_inet_checksum(gn_chain_sum(vm, b0, 20, GN_UDP_HEADER_LEN + len,
                                         gn_ip4_pseudo_sum(ip, GN_IP4_PROTO_UDP, GN_UDP_HEADER_LEN + len), &complete))
    gn_put_net16(ip + 26, csum if csum != 0 else 0xffff)
    b0.flags |= GN_BUFFER_F_LOCALLY_ORIGINATED
    b0.sw_if_index[GN_TX] = GN_INVALID_INDEX
    return bis[0]


cdef uint32_t _push(void* ctx, void* vmp, void* nodep, gn_session_t* s, uint32_t max_units) noexcept nogil:
    """Send up to max_units whole datagrams from s.tx_fifo through ip4-lookup."""
    cdef udp_main_t* um = <udp_main_t*>ctx
    cdef gn_main_t* vm = <gn_main_t*>vmp
    cdef gn_node_runtime_t* node = <gn_node_runtime_t*>nodep
    cdef gn_fifo_t* f = s.tx_fifo
    cdef gn_udp_dgram_hdr_t h
    cdef gn_transport_connection_t* tc
    cdef uint32_t out[256]
    cdef uint32_t bis[MAX_PIECES]
    cdef uint32_t n = 0, n_out = 0, avail, nb, got, src, dst
    cdef uint16_t sport, dport
    if s.flags & GN_SESSION_F_LISTENER:
        tc = _get_listener(um, s.connection_index, 0)
    else:
        tc = _get(um, s.connection_index, 0)
    if tc == NULL:
        gn_fifo_dequeue_drop_all(f)
        return 0
    while n < max_units:
        # Apps publish each record (header and payload) with one tail
        # store, so the readable bytes are whole records: less than a
        # header, or a length past them, is junk from the app (its tail or
        # head rewritten, or its bytes): flushed, counted, never retried
        # (a retry would requeue the session forever)
        avail = gn_fifo_max_dequeue(f)
        if avail == 0:
            break
        if avail >= HDR_LEN:
            gn_fifo_peek(f, 0, <uint8_t*>&h, HDR_LEN)
        if avail < HDR_LEN or h.data_length > MAX_DGRAM or h.data_length > avail - HDR_LEN:
            um.tx_bad_header += 1
            gn_fifo_dequeue_drop_all(f)
            break
        nb = 1 if h.data_length <= BUF_DATA - IP_UDP_LEN else 1 + (h.data_length - (BUF_DATA - IP_UDP_LEN) + BUF_DATA - 1) // BUF_DATA
        got = gn_main_alloc(vm, bis, nb)
        if got < nb:
            if got:
                gn_main_free(vm, bis, got)
            um.tx_no_buffers += 1
            gn_session_wait_buffers(um.sm, s)          # woken when buffers are freed
            break
        if s.flags & GN_SESSION_F_LISTENER:
            dst = h.rmt_ip
            dport = h.rmt_port
            src = h.lcl_ip if h.lcl_ip else tc.lcl.ip
            sport = tc.lcl.port
        else:
            dst = tc.rmt.ip
            dport = tc.rmt.port
            src = tc.lcl.ip
            sport = tc.lcl.port
        out[n_out] = _build(vm, um, f, h.data_length, src, sport, dst, dport, bis, nb)
        n_out += 1
        gn_fifo_dequeue_drop(f, HDR_LEN + h.data_length)
        n += 1
        if n_out == 256:
            gn_enqueue_to_single_next(vm, node, out, um.next_lookup, n_out)
            n_out = 0
    if n_out:
        gn_enqueue_to_single_next(vm, node, out, um.next_lookup, n_out)
    um.tx_datagrams += n
    return n


# --- rx: udp4-session ----------------------------------------------------------------

cdef uint32_t udp4_session_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef udp_main_t* um = <udp_main_t*>node.runtime_data
    cdef gn_session_main_t* sm = um.sm
    cdef gn_fifo_slice_t pieces[MAX_PIECES]
    cdef gn_udp_dgram_hdr_t h
    cdef uint32_t done[GN_FRAME_SIZE]
    cdef uint32_t drops[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, n_done = 0, n_drop = 0, hlen, left, k, np
    cdef uint32_t n_ok = 0, n_full = 0, n_nos = 0, n_many = 0
    cdef gn_buffer_t* b
    cdef gn_buffer_t* c
    cdef uint8_t* ip
    cdef uint8_t* u
    cdef gn_session_t* s
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        ip = gn_buffer_current(b)
        hlen = gn_ip4_header_bytes(ip)
        u = ip + hlen
        h.data_length = gn_udp_length(u) - GN_UDP_HEADER_LEN      # checked by udp4-input
        h.rmt_ip = gn_ip4_src(ip)
        h.lcl_ip = gn_ip4_dst(ip)
        h.rmt_port = gn_udp_src_port(u)
        h.lcl_port = gn_udp_dst_port(u)
        s = gn_session_lookup4(sm, GN_TRANSPORT_PROTO_UDP, h.lcl_ip, h.lcl_port, h.rmt_ip, h.rmt_port)
        if s == NULL:
            s = gn_session_lookup_listener4(sm, GN_TRANSPORT_PROTO_UDP, h.lcl_ip, h.lcl_port)
        if s == NULL or s.rx_fifo == NULL:
            n_nos += 1
            gn_buffer_set_error(node, b, ERROR_NO_SESSION)
            drops[n_drop] = frame.buffers[i]
            n_drop += 1
            continue
        pieces[0].data = <uint8_t*>&h
        pieces[0].len = HDR_LEN
        np = 1
        left = h.data_length
        k = b.current_length - hlen - GN_UDP_HEADER_LEN
        pieces[1].data = u + GN_UDP_HEADER_LEN
        pieces[1].len = k if k < left else left
        left -= pieces[1].len
        np = 2
        c = b
        while left and (c.flags & GN_BUFFER_F_NEXT_PRESENT) and np < MAX_PIECES:
            c = gn_main_buffer(vm, c.next_buffer)
            pieces[np].data = gn_buffer_current(c)
            pieces[np].len = c.current_length if c.current_length < left else left
            left -= pieces[np].len
            np += 1
        if left:
            n_many += 1
            gn_buffer_set_error(node, b, ERROR_TOO_MANY_BUFFERS)
            drops[n_drop] = frame.buffers[i]
            n_drop += 1
            continue
        if gn_fifo_enqueue_segments(s.rx_fifo, pieces, np, False) < 0:
            n_full += 1
            s.rx_drops += 1
            gn_buffer_set_error(node, b, ERROR_RX_FIFO_FULL)
            drops[n_drop] = frame.buffers[i]
            n_drop += 1
            continue
        n_ok += 1
        gn_session_enqueue_notify(sm, s)
        done[n_done] = frame.buffers[i]
        n_done += 1
    if n_done:
        gn_main_free(vm, done, n_done)
    if n_drop:
        gn_enqueue_to_single_next(vm, node, drops, node.drop_next, n_drop)
    gn_node_increment_error(vm, node, ERROR_ENQUEUED, n_ok)
    return n


# --- control plane ----------------------------------------------------------------------

cdef class UdpTransport:
    """The UDP transport of one engine's session layer. Made by ``setup``
    (udp4-session's setup); listeners' and connections' ports are claimed
    on udp4-input through graphnet.nodes.udp4."""
    cdef udp_main_t* um
    cdef SessionLayer layer
    cdef object engine

    def __cinit__(self, SessionLayer layer, engine=None):
        cdef gn_transport_vft_t* tp
        self.um = <udp_main_t*>calloc(1, sizeof(udp_main_t))
        if self.um == NULL:
            raise MemoryError()
        self.um.conns = <udp_conn_t*>calloc(MAX_CONNS, sizeof(udp_conn_t))
        self.um.free_conns = <uint32_t*>calloc(MAX_CONNS, sizeof(uint32_t))
        if self.um.conns == NULL or self.um.free_conns == NULL:
            raise MemoryError()
        self.layer = layer
        self.engine = weakref.ref(engine) if engine is not None else None     # the manager is the engine's
        self.um.sm = layer.sm
        tp = &layer.sm.transports[GN_TRANSPORT_PROTO_UDP]
        memset(tp, 0, sizeof(gn_transport_vft_t))
        tp.listen = _listen
        tp.unlisten = _unlisten
        tp.connect = _connect
        tp.close = _close
        tp.reset = _close
        tp.cleanup = _cleanup
        tp.push_tx = _push
        tp.get_connection = _get
        tp.get_listener = _get_listener
        tp.get_half_open = _get
        tp.ctx = self.um
        tp.service = GN_TRANSPORT_SERVICE_DGRAM
        tp.registered = 1

    def __dealloc__(self):
        if self.um != NULL:
            free(self.um.conns)
            free(self.um.free_conns)
            free(self.um)

    def capsule(self):
        return PyCapsule_New(<void*>self.um, "gn_runtime_data", NULL)

    def set_next_lookup(self, uint16_t next_index):
        self.um.next_lookup = next_index

    def set_port_table(self, engine):
        """Connected sessions claim and release their ports in udp4-input's
        table directly (C, as they connect and close)."""
        self.um.ports = (<udp4_input_t*>gn_node_data(engine, "udp4-input")).next_by_port
        self.um.port_next = engine.next_index("udp4-input", "udp4-session")

    def stats(self):
        return {"tx_datagrams": self.um.tx_datagrams, "tx_no_buffers": self.um.tx_no_buffers,
                "tx_bad_header": self.um.tx_bad_header}

    # hooks the application layer calls after listen / unlisten (connects claim theirs in C)
    def claim_port(self, port):
        engine = self.engine() if self.engine is not None else None
        if engine is not None:
            from graphnet.nodes.udp4 import udp_register_port
            udp_register_port(engine, port, "udp4-session")

    def release_port(self, port):
        engine = self.engine() if self.engine is not None else None
        if engine is not None:
            from graphnet.nodes.udp4 import udp_unregister_port
            udp_unregister_port(engine, port)


def pack_dgram(payload, rmt_ip, rmt_port, lcl_ip=0, lcl_port=0):
    """A datagram as an app writes it into a UDP session's tx fifo."""
    return DGRAM_HDR.pack(len(payload), rmt_ip, lcl_ip, rmt_port, lcl_port) + bytes(payload)


def unpack_dgrams(data):
    """``[(payload, (rmt_ip, rmt_port), (lcl_ip, lcl_port))]`` from rx fifo bytes."""
    out, i = [], 0
    while i + 16 <= len(data):
        n, rip, lip, rp, lp = DGRAM_HDR.unpack_from(data, i)
        out.append((bytes(data[i + 16:i + 16 + n]), (rip, rp), (lip, lp)))
        i += 16 + n
    return out


def _setup(engine, node_index):
    from graphnet.session.application import session_manager
    from graphnet.session.session import PROTOS
    mgr = session_manager(engine)
    t = UdpTransport(mgr.layer, engine)
    mgr.transports[PROTOS["udp"]] = t
    engine.main.set_runtime_data(node_index, t.capsule())
    t.set_next_lookup(0)            # session-queue's first arc: ip4-lookup (or error-drop without it)
    t.set_port_table(engine)


NODES = (
    node("udp4-session", gn_node_fn(udp4_session_fn), errors=ERRORS, Error=Error, attach_to=(("udp4-input", None),),
         setup=_setup, trace=trace_ip4(), doc=__doc__),
)
FEATURE = "session"                # with the IPv4 host (udp4-input): graphnet.nodes.session_host
