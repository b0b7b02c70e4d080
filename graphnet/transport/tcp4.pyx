"""TCP over IPv4 as a session-layer transport: the glue between the
tcp4-* nodes, the connection state machine (graphnet/transport/tcp/) and
the session layer (graphnet/session/).

Connections: ``gn_tcp4_conn_t`` (first member the session layer's
``gn_transport_connection_t``, second the state machine's
``gn_tcp_conn_t``) in one pool (engine thread 0; indices stay valid for a
connection's life), found by 5-tuple in an open-addressing table
(``gn_tcp4_lookup``). Listeners are the session layer's: their endpoint is
in its listen table and their backlog (``gn_tcp_listener_t``: bounded SYN
backlog, SYN cookies when full) here.

Per received segment (a tcp4-* state node calls ``gn_tcp4_rx`` /
``gn_tcp4_rx_listen`` / ``gn_tcp4_rx_closed``): the state machine runs
(``gn_tcp_input``) and its actions are carried out in the order of the
STATUS in graphnet/transport/tcp/__init__.py: session up-calls
(accepted / connected / closing / reset / closed), payload into the rx
fifo by offset (out-of-order ranges kept by the fifo, SACK blocks made
from them), acked bytes dropped from the tx fifo head (the tx fifo is the
retransmission queue: no copy is kept elsewhere), then segments out.

Segments out: built here as TCP header + options + payload (peeked from
the tx fifo) in one buffer, addresses in the buffer's opaque
(``gn_tcp4_opaque_t``), and handed to the caller's arc to ``tcp4-output``
(checksum, IPv4 header, on to ``ip4-lookup``). The caller names its node
and arc with ``gn_tcp4_out_begin`` and flushes with ``gn_tcp4_out_end``.
Segments are one MSS, except new data to a peer the FIB routes out of an
interface with TSO (``_max_seg``: a TAP with tso4): there a segment is up
to ~64 KB of whole MSS, a buffer chain flagged GSO with gso_size = the
effective MSS, and tcp4-output leaves its checksum to the device. Where
the egress has no TSO (AF_PACKET, pg, a TAP without offloads) segments
stay one MSS: TCP itself is the software segmentation, so no second
segmenter has to rewrite headers, sequence numbers and checksums.

Timers: one hashed wheel of this transport (1 ms ticks; retransmit and
persist, delayed ACK, keepalive, TIME_WAIT) driven by the ``tcp4-timer``
node, which the engine's own wheel wakes at the next expiry. Session-layer
calls that must send (connect, close, reset) run outside any node: their
actions are deferred to tcp4-timer, raised at once.

Invariants: a connection is in the hash iff valid; every armed timer names
a valid connection (freeing stops them); a session exists for a
connection from ESTABLISHED to the session layer's delete notification;
the session's tx fifo head is SND.UNA's byte.
"""
import ipaddress
import os
import weakref

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, memcpy
from libc.stdio cimport snprintf
from graphnet.includes.platform cimport gn_time_ns
from graphnet.includes.byteorder cimport gn_put_net16, gn_put_net32
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_FRAME_SIZE, GN_TX, GN_INVALID_INDEX,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_GSO, gn_buffer_current)
from graphnet.fib.ip4_fib cimport Ip4Fib, gn_ip4_fib_t, gn_ip4_adj_t, gn_ip4_fib_lookup, GN_ADJ_REWRITE, GN_ADJ_GLEAN
from graphnet.io.interface cimport InterfaceTable, gn_interface_t, gn_interface, GN_IF_TX_TSO4
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_set_interrupt_pending,
                                 gn_node_schedule_interrupt, gn_node_increment_error)
from graphnet.vlib.timer cimport (gn_timer_wheel_init, gn_timer_wheel_free, gn_timer_sync, gn_timer_start,
                                  gn_timer_stop, gn_timer_expire, gn_timer_ns_until_next, GN_TIMER_NONE)
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_total_length, gn_ip4_src, gn_ip4_dst
from graphnet.wire.tcp cimport (gn_tcp_header_bytes, GN_TCP_FLAG_ACK, GN_TCP_FLAG_RST, GN_TCP_FLAG_SYN,
                                GN_TCP_MAX_HEADER_LEN, GN_TCP_OK)
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_max_dequeue, gn_fifo_max_enqueue, gn_fifo_peek,
                                    gn_fifo_enqueue_with_offset, gn_fifo_dequeue_drop, gn_fifo_needs_deq_ntf,
                                    gn_fifo_unset_event, GN_FIFO_MAX_OOO)
from graphnet.session.session cimport (gn_session_main_t, SessionLayer, gn_session_get_if_valid,
                                       gn_session_from_handle, gn_session_lookup_listener4, gn_session_enqueue_notify,
                                       gn_session_dequeue_notify, gn_session_stream_accept,
                                       gn_session_stream_connect_notify, gn_session_half_open_delete_notify,
                                       gn_session_transport_closing_notify, gn_session_transport_closed_notify,
                                       gn_session_transport_reset_notify, gn_session_transport_delete_notify,
                                       gn_session_wait_buffers)
from graphnet.transport.tcp.conn cimport *
from graphnet.transport.tcp.isn cimport gn_tcp_isn, gn_tcp_ts_offset
from graphnet.transport.tcp.syncookie cimport (gn_tcp_cookie_t, gn_tcp_syn_policy, gn_tcp_syncookie_synack,
                                               gn_tcp_syncookie_check, gn_tcp_syncookie_open, gn_tcp_half_open_gone,
                                               GN_TCP_SYN_ACCEPT, GN_TCP_SYN_COOKIE, GN_TCP_COOKIES_WHEN_FULL)
from graphnet.transport.tcp.conn import INPUT_ERRORS, STATE_NAMES
from graphnet.transport.tcp.cc import lookup as cc_lookup, ALGORITHMS
from graphnet.wire.tcp import PARSE_ERRORS, format_tcp_header

cdef enum:
    TOMB = 0xffffffff
    EPHEMERAL_LO = 49152
    OUT_HEADROOM = 0                   # the TCP header starts at data[0]; IPv4 + L2 go into pre_data
    F_OWNS_PORT = 16                   # gflags: an active open's ephemeral port
    BUF_DATA = 2048
    MAX_EXPIRE = 256
    DEFAULT_BACKLOG = 1024
    IP_HLEN = 20

cdef inline gn_tcp4_opaque_t* _op(gn_buffer_t* b) noexcept nogil:
    return gn_tcp4_opaque(b)


# The state nodes' error table: GN_TCP_E_* rows (conn.INPUT_ERRORS after
# the wire rows), then the glue's.
STATE_ERRORS = (("none", "info", "no error"),) + INPUT_ERRORS[len(PARSE_ERRORS):] + (
    ("no-buffers", "warn", "a segment to send was not sent: no buffers"),
    ("no-conn-memory", "error", "SYN not answered: the connection pool is full"),
    ("syn-dropped", "warn", "SYN dropped: the listener's backlog is full and SYN cookies are off"),
    ("bad-cookie", "warn", "ACK to a listener with no valid SYN cookie (RST sent)"),
    ("accept-failed", "error", "connection established but no session could be made (RST sent)"),
    ("rx-fifo", "warn", "in-window data not stored: the rx fifo refused it (sent again by the peer)"),
)

cpdef enum StateError:
    ERROR_NONE, ERROR_NO_CONNECTION, ERROR_LISTEN_ACK, ERROR_LISTEN_NOT_SYN, ERROR_RST_IGNORED
    ERROR_SYN_SENT_BAD_ACK, ERROR_SYN_SENT_NO_SYN, ERROR_PAWS, ERROR_OUT_OF_WINDOW, ERROR_RST_IN_WINDOW
    ERROR_SYN_IN_SYNC, ERROR_NO_ACK, ERROR_ACK_UNSENT, ERROR_ACK_TOO_OLD, ERROR_SYN_RCVD_BAD_ACK
    ERROR_DATA_AFTER_FIN, ERROR_RX_WINDOW, ERROR_CHALLENGE_LIMIT, ERROR_BAD_OPTIONS, ERROR_OOW_ACK_LIMIT
    ERROR_NO_BUFFERS, ERROR_NO_CONN_MEMORY, ERROR_SYN_DROPPED, ERROR_BAD_COOKIE, ERROR_ACCEPT_FAILED
    ERROR_RX_FIFO, N_ERROR

assert <int>ERROR_OOW_ACK_LIMIT == <int>GN_TCP_E_OOW_LIMIT and <int>ERROR_NO_BUFFERS == <int>GN_TCP4_E_NO_BUFFERS
assert <int>N_ERROR == <int>GN_TCP4_E_STATE_N == len(STATE_ERRORS)


def format_ip4_tcp(data, int indent=0):
    """An IPv4 + TCP trace record: addresses, ports, flags, seq/ack,
    window, options (graphnet.wire.tcp.format_tcp_header)."""
    data = bytes(data)
    pad = " " * indent
    if len(data) < 20 or data[0] >> 4 != 4:
        return f"{pad}not IPv4: {data[:40].hex()}"
    hlen = (data[0] & 15) * 4
    src, dst = ipaddress.IPv4Address(data[12:16]), ipaddress.IPv4Address(data[16:20])
    total = int.from_bytes(data[2:4], "big")
    return (f"{pad}ip4 {src} -> {dst} len {total}\n"
            + format_tcp_header(data[hlen:], indent, str(src), str(dst)))


# --- time, hash, pool ------------------------------------------------------------------

cdef inline uint32_t _now_ms() noexcept nogil:
    return <uint32_t>(gn_time_ns() // 1000000)


cdef inline uint32_t _slot(uint64_t k, uint32_t p) noexcept nogil:
    cdef uint64_t h = (k ^ (<uint64_t>p << 17) ^ p) * 0x9e3779b97f4a7c15ULL
    return <uint32_t>(h >> 40) & (GN_TCP4_HASH_SIZE - 1)


cdef uint32_t gn_tcp4_lookup(gn_tcp4_main_t* tm, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip,
                             uint16_t rmt_port) noexcept nogil:
    """The connection of a 4-tuple (host order), or GN_SESSION_INVALID_INDEX."""
    cdef uint64_t k = (<uint64_t>lcl_ip << 32) | rmt_ip
    cdef uint32_t p = (<uint32_t>lcl_port << 16) | rmt_port
    cdef uint32_t i = _slot(k, p), n, v
    for n in range(GN_TCP4_HASH_SIZE):
        v = tm.hvals[i]
        if v == 0:
            break
        if v != TOMB and tm.hkeys[i] == k and tm.hports[i] == p:
            return v - 1
        i = (i + 1) & (GN_TCP4_HASH_SIZE - 1)
    return GN_SESSION_INVALID_INDEX


cdef void _hash_add(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    cdef uint64_t k = (<uint64_t>tc.t.lcl_ip << 32) | tc.t.rmt_ip
    cdef uint32_t p = (<uint32_t>tc.t.lcl_port << 16) | tc.t.rmt_port
    cdef uint32_t i = _slot(k, p)
    while tm.hvals[i] != 0 and tm.hvals[i] != TOMB:
        i = (i + 1) & (GN_TCP4_HASH_SIZE - 1)
    tm.hkeys[i] = k
    tm.hports[i] = p
    tm.hvals[i] = tc.c.c_index + 1
    tm.h_n += 1


cdef void _hash_rebuild(gn_tcp4_main_t* tm) noexcept nogil:
    """Tombstones went past a quarter of the table: insert the live
    connections afresh."""
    cdef uint32_t i
    memset(tm.hvals, 0, GN_TCP4_HASH_SIZE * sizeof(uint32_t))
    tm.h_n = 0
    for i in range(tm.high):
        if tm.conns[i].valid:
            _hash_add(tm, &tm.conns[i])


cdef void _hash_del(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    cdef uint64_t k = (<uint64_t>tc.t.lcl_ip << 32) | tc.t.rmt_ip
    cdef uint32_t p = (<uint32_t>tc.t.lcl_port << 16) | tc.t.rmt_port
    cdef uint32_t i = _slot(k, p), n
    for n in range(GN_TCP4_HASH_SIZE):
        if tm.hvals[i] == 0:
            return
        if tm.hvals[i] == tc.c.c_index + 1:
            tm.hvals[i] = TOMB
            tm.h_n -= 1
            return
        i = (i + 1) & (GN_TCP4_HASH_SIZE - 1)


cdef gn_tcp4_conn_t* _conn_alloc(gn_tcp4_main_t* tm, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip,
                                 uint16_t rmt_port, uint32_t iss) noexcept nogil:
    cdef uint32_t i, k
    cdef gn_tcp4_conn_t* tc
    if tm.n_free:
        tm.n_free -= 1
        i = tm.free_idx[tm.n_free]
    elif tm.high < GN_TCP4_MAX_CONNS:
        i = tm.high
        tm.high += 1
    else:
        tm.st.conn_alloc_fail += 1
        return NULL
    tc = &tm.conns[i]
    memset(tc, 0, sizeof(gn_tcp4_conn_t))
    tc.c.c_index = i
    tc.c.s_index = GN_SESSION_INVALID_INDEX
    tc.c.proto = GN_TRANSPORT_PROTO_TCP
    tc.c.lcl.ip = lcl_ip
    tc.c.lcl.port = lcl_port
    tc.c.lcl.is_ip4 = 1
    tc.c.rmt.ip = rmt_ip
    tc.c.rmt.port = rmt_port
    tc.c.rmt.is_ip4 = 1
    tc.ho_handle = GN_NO_HANDLE
    tc.listener = GN_SESSION_INVALID_INDEX
    for k in range(GN_TCP4_N_TIMERS):
        tc.timers[k] = GN_TIMER_NONE
    gn_tcp_conn_init(&tc.t, &tm.cfg, lcl_ip, lcl_port, rmt_ip, rmt_port, iss,
                     gn_tcp_ts_offset(&tm.secret, lcl_ip, lcl_port, rmt_ip, rmt_port))
    tc.valid = 1
    tm.n_live += 1
    _hash_add(tm, tc)
    return tc


cdef void _conn_free(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    cdef uint32_t k
    if not tc.valid:
        return
    for k in range(GN_TCP4_N_TIMERS):
        if tc.timers[k] != GN_TIMER_NONE:
            gn_timer_stop(&tm.wheel, tc.timers[k])
            tc.timers[k] = GN_TIMER_NONE
    _half_open_gone(tm, tc)
    _hash_del(tm, tc)
    if tc.gflags & F_OWNS_PORT:
        tm.port_used[tc.t.lcl_port] = 0
    tc.valid = 0
    tm.n_live -= 1
    tm.free_idx[tm.n_free] = tc.c.c_index
    tm.n_free += 1
    if GN_TCP4_HASH_SIZE - tm.h_n - tm.n_live < GN_TCP4_HASH_SIZE // 2:
        _hash_rebuild(tm)


cdef void _half_open_gone(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    if tc.gflags & GN_TCP4_F_HALF_OPEN_COUNTED:
        tc.gflags &= ~GN_TCP4_F_HALF_OPEN_COUNTED
        if tc.listener < GN_TCP4_MAX_LISTENERS:
            gn_tcp_half_open_gone(&tm.listeners[tc.listener].l)


cdef inline gn_session_t* _session(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    if tc.c.s_index == GN_SESSION_INVALID_INDEX:
        return NULL
    return gn_session_get_if_valid(tm.sm, tc.c.s_index, tc.c.thread_index)


cdef inline uint32_t _rx_space(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    cdef gn_session_t* s = _session(tm, tc)
    if s != NULL and s.rx_fifo != NULL:
        return gn_fifo_max_enqueue(s.rx_fifo)
    return tc.rx_hint


cdef inline uint32_t _tx_bytes(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    cdef gn_session_t* s = _session(tm, tc)
    if s != NULL and s.tx_fifo != NULL:
        return gn_fifo_max_dequeue(s.tx_fifo)
    return 0


cdef uint32_t _wrk_rx_size(gn_tcp4_main_t* tm, uint32_t wrk) noexcept nogil:
    if wrk < tm.sm.cap_wrks and tm.sm.wrks[wrk].valid:
        return tm.sm.wrks[wrk].rx_fifo_size
    return 65535


# --- timers ---------------------------------------------------------------------------

cdef void _wake(gn_tcp4_main_t* tm, uint64_t due_ns) noexcept nogil:
    """Make sure tcp4-timer runs by due_ns."""
    cdef gn_main_t* vm = <gn_main_t*>tm.sm.vm
    cdef uint64_t now
    if vm == NULL or tm.timer_node == GN_SESSION_INVALID_INDEX:
        return
    if tm.wake_ns != 0 and tm.wake_ns <= due_ns:
        return
    now = gn_time_ns()
    gn_node_schedule_interrupt(vm, tm.timer_node, (due_ns - now) // vm.timers.tick_ns + 1 if due_ns > now else 1)
    tm.wake_ns = due_ns


cdef void _timer_set(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, uint32_t kind, uint32_t ms) noexcept nogil:
    cdef uint64_t now = gn_time_ns()
    if tc.timers[kind] != GN_TIMER_NONE:
        gn_timer_stop(&tm.wheel, tc.timers[kind])
    gn_timer_sync(&tm.wheel, now)
    tc.timers[kind] = gn_timer_start(&tm.wheel, (tc.c.c_index << 2) | kind, ms if ms else 1)
    _wake(tm, now + (<uint64_t>(ms if ms else 1) + 1) * 1000000)


cdef inline void _timer_stop(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, uint32_t kind) noexcept nogil:
    if tc.timers[kind] != GN_TIMER_NONE:
        gn_timer_stop(&tm.wheel, tc.timers[kind])
        tc.timers[kind] = GN_TIMER_NONE


cdef void _defer(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, gn_tcp_act_t* a) noexcept nogil:
    """Actions from a call outside any node: tcp4-timer carries them out."""
    cdef gn_main_t* vm = <gn_main_t*>tm.sm.vm
    tc.deferred |= a.flags
    if a.flags & GN_TCP_A_SEND_RST:
        tc.rst_seq = a.rst_seq
        tc.rst_ack = a.rst_ack
        tc.rst_flags = a.rst_flags
    if not (tc.gflags & GN_TCP4_F_DEFERRED):
        tc.gflags |= GN_TCP4_F_DEFERRED
        tm.deferred[tm.n_deferred] = tc.c.c_index
        tm.n_deferred += 1
    if vm != NULL and tm.timer_node != GN_SESSION_INVALID_INDEX:
        gn_node_set_interrupt_pending(vm, tm.timer_node)


# --- segments out -----------------------------------------------------------------------

cdef void gn_tcp4_out_begin(gn_tcp4_main_t* tm, gn_main_t* vm, gn_node_runtime_t* node, uint16_t next) noexcept nogil:
    tm.vm = vm
    tm.out_node = node
    tm.out_next = next
    tm.n_out = 0


cdef void gn_tcp4_out_end(gn_tcp4_main_t* tm) noexcept nogil:
    if tm.n_out:
        gn_enqueue_to_single_next(tm.vm, tm.out_node, tm.out, tm.out_next, tm.n_out)
        tm.n_out = 0
    tm.out_node = NULL


cdef bint _chain_payload(gn_tcp4_main_t* tm, gn_buffer_t* b, gn_fifo_t* tx, uint32_t off, uint32_t n,
                         uint32_t room) noexcept nogil:
    """Peek tx bytes [off, off + n) into b (room bytes left after its
    header) and, past that, a chain of fresh buffers hung from b. False:
    not enough buffers (none kept: b's chain is left empty)."""
    cdef uint32_t bis[GN_TCP4_MAX_PIECES]
    cdef uint32_t k = room if room < n else n, rest = n - k, n_more, i, piece, got
    cdef gn_buffer_t* c = b
    cdef gn_buffer_t* d
    n_more = (rest + BUF_DATA - 1) // BUF_DATA
    if n_more > GN_TCP4_MAX_PIECES:
        return False
    if n_more:
        got = gn_main_alloc(tm.vm, bis, n_more)
        if got != n_more:
            gn_main_free(tm.vm, bis, got)
            return False
    gn_fifo_peek(tx, off, gn_buffer_current(b) + b.current_length, k)
    b.current_length += k
    off += k
    for i in range(n_more):
        d = gn_main_buffer(tm.vm, bis[i])
        piece = rest if rest < BUF_DATA else BUF_DATA
        d.current_data = 0
        d.current_length = piece
        d.flags = 0
        gn_fifo_peek(tx, off, gn_buffer_current(d), piece)
        off += piece
        rest -= piece
        c.flags |= GN_BUFFER_F_NEXT_PRESENT
        c.next_buffer = bis[i]
        b.total_length_not_including_first_buffer += piece
        c = d
    return True


cdef bint _send(gn_tcp4_main_t* tm, gn_tcp_out_t* o, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                gn_fifo_t* tx, uint16_t mss) noexcept nogil:
    """Build one segment (header, options, o.data_len bytes peeked from tx
    at o.data_off) and queue it for tcp4-output. More than mss bytes (a
    TSO super-segment, see _max_seg): a buffer chain flagged GSO with
    gso_size mss. False: no buffer."""
    cdef uint32_t bi, hlen
    cdef gn_buffer_t* b
    cdef uint8_t* t
    if tm.out_node == NULL or gn_main_alloc(tm.vm, &bi, 1) != 1:
        tm.st.no_buffers += 1
        return False
    b = gn_main_buffer(tm.vm, bi)
    b.current_data = OUT_HEADROOM
    b.flags = 0
    b.total_length_not_including_first_buffer = 0
    t = gn_buffer_current(b)
    hlen = gn_tcp_write_out(o, sport, dport, t)
    b.current_length = hlen
    if o.data_len:
        if not _chain_payload(tm, b, tx, o.data_off, o.data_len, BUF_DATA - OUT_HEADROOM - hlen):
            gn_main_free(tm.vm, &bi, 1)
            tm.st.no_buffers += 1
            return False
        tm.st.bytes_out += o.data_len
    if mss and o.data_len > mss:
        b.flags |= GN_BUFFER_F_GSO
        b.gso_size = mss
        tm.st.tso_segs_out += 1
        tm.st.tso_bytes_out += o.data_len
    _op(b).src_ip = src
    _op(b).dst_ip = dst
    tm.st.segs_out += 1
    if tm.n_out == GN_FRAME_SIZE:
        gn_enqueue_to_single_next(tm.vm, tm.out_node, tm.out, tm.out_next, tm.n_out)
        tm.n_out = 0
    tm.out[tm.n_out] = bi
    tm.n_out += 1
    return True


cdef inline bint _send_conn(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, gn_tcp_out_t* o, gn_fifo_t* tx) noexcept nogil:
    return _send(tm, o, tc.t.lcl_ip, tc.t.lcl_port, tc.t.rmt_ip, tc.t.rmt_port, tx, tc.t.snd_mss)


cdef uint32_t _max_seg(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    """The largest segment payload tc may send now: a TSO super-segment
    (whole MSS, IPv4 total length <= 65535 with the largest TCP header)
    when the FIB routes its peer out of an interface that does TSO
    (GN_IF_TX_TSO4: a TAP with tso4), else one MSS. Looked up per push,
    so a route that moves to another interface is followed; an ECMP or
    any other adjacency: one MSS. One MSS segments need nothing of the
    device; the egress alone decides (no software segmentation)."""
    cdef const gn_ip4_fib_t* fib = tm.fib
    cdef const gn_ip4_adj_t* adj
    cdef gn_interface_t* hw
    cdef uint32_t ai, mss = tc.t.snd_mss
    if fib == NULL or tm.im == NULL or mss == 0 or tm.tso_off:
        return mss
    ai = gn_ip4_fib_lookup(fib, tc.t.rmt_ip)
    if ai >= fib.n_adjs:
        return mss
    adj = &fib.adjs[ai]
    if adj.type != GN_ADJ_REWRITE and adj.type != GN_ADJ_GLEAN:
        return mss
    hw = gn_interface(tm.im, adj.sw_if_index)
    if hw == NULL or not (hw.tx_offloads & GN_IF_TX_TSO4):
        return mss
    return (0xffff - IP_HLEN - GN_TCP_MAX_HEADER_LEN) // mss * mss


cdef void _send_ack(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, uint32_t now) noexcept nogil:
    """A pure ACK with the rx fifo's out-of-order ranges as SACK blocks."""
    cdef gn_tcp_out_t o
    cdef gn_tcp_range_t ooo[GN_FIFO_MAX_OOO]
    cdef uint32_t n = 0, i
    cdef gn_session_t* s = _session(tm, tc)
    if s != NULL and s.rx_fifo != NULL:
        for i in range(s.rx_fifo.n_ooo):
            ooo[n].offset = s.rx_fifo.ooo[i].start - s.rx_fifo.tail
            ooo[n].length = s.rx_fifo.ooo[i].length
            n += 1
    gn_tcp_make_ack(&tc.t, now, _rx_space(tm, tc), ooo, n, &o)
    _send_conn(tm, tc, &o, NULL)
    tc.gflags &= ~GN_TCP4_F_DELACK
    _timer_stop(tm, tc, GN_TCP4_T_DELACK)


cdef bint _ack_later(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, const gn_tcp_act_t* a, gn_session_t* s,
                    bint had_ooo) noexcept nogil:
    """Put tc's ACK on the frame's ACK list instead of sending it now
    (True), so the segments of one stream in one frame (a TAP delivers
    several 64 KB GSO frames per read burst) are acknowledged once, at the
    frame's end (_send_batched_acks), as VPP's tcp does. Only the ACK of
    in-order data into an rx fifo that held and holds no out-of-order
    data (had_ooo: it held some before this segment): an ACK for
    out-of-order data or for a segment that fills a hole (RFC 5681 s.4.2:
    at once, they drive the peer's recovery), a challenge ACK, and any
    ACK outside a state node's frame go at once."""
    if not tm.acks_batched or a.flags & GN_TCP_A_CHALLENGE_ACK or not (a.flags & GN_TCP_A_DELIVER) or a.rx_offset:
        return False
    if s == NULL or s.rx_fifo == NULL or s.rx_fifo.n_ooo or had_ooo:
        return False
    if tc.gflags & GN_TCP4_F_ACK_PENDING:
        return True
    if tm.n_acks == GN_FRAME_SIZE:
        return False
    tc.gflags |= GN_TCP4_F_ACK_PENDING
    tm.acks[tm.n_acks] = tc.c.c_index
    tm.n_acks += 1
    return True


cdef void _send_batched_acks(gn_tcp4_main_t* tm, uint32_t now) noexcept nogil:
    """The frame's ACK list: one ACK per connection still owing one (a
    segment sent since carried it; a connection freed since is skipped)."""
    cdef uint32_t i
    cdef gn_tcp4_conn_t* tc
    for i in range(tm.n_acks):
        tc = gn_tcp4_conn_at(tm, tm.acks[i])
        if tc == NULL or not (tc.gflags & GN_TCP4_F_ACK_PENDING):
            continue
        tc.gflags &= ~GN_TCP4_F_ACK_PENDING
        if tc.t.last_ack_sent != tc.t.rcv_nxt:
            _send_ack(tm, tc, now)
    tm.n_acks = 0


cdef uint32_t _push(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, uint32_t now, uint32_t max_units) noexcept nogil:
    """Send what the windows allow (new data, retransmissions, the FIN):
    the gn_tcp_send_next loop over the session's tx fifo."""
    cdef gn_tcp_out_t o
    cdef gn_session_t* s = _session(tm, tc)
    cdef gn_fifo_t* tx = s.tx_fifo if s != NULL else NULL
    cdef uint32_t n = 0, tx_bytes = gn_fifo_max_dequeue(tx) if tx != NULL else 0, rx = _rx_space(tm, tc)
    cdef uint32_t rtx_before = tc.t.n_retransmits, max_seg
    if tc.t.state < GN_TCP_ESTABLISHED or tc.t.state == GN_TCP_TIME_WAIT:
        return 0
    # the FIB lookup only when there are bytes to send: a receiver's push per segment needs none
    max_seg = _max_seg(tm, tc) if tx_bytes else tc.t.snd_mss
    while n < max_units and gn_tcp_send_next(&tc.t, now, tx_bytes, rx, max_seg, &o):
        if not _send_conn(tm, tc, &o, tx):
            if s != NULL:
                gn_session_wait_buffers(tm.sm, s)
            break
        n += 1
    tm.st.retransmits += tc.t.n_retransmits - rtx_before
    if n:
        tc.gflags &= ~GN_TCP4_F_DELACK
        _timer_stop(tm, tc, GN_TCP4_T_DELACK)
    return n


# --- actions ----------------------------------------------------------------------------

cdef uint32_t _deliver(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, gn_session_t* s, gn_tcp_act_t* a,
                       gn_buffer_t* b, uint32_t first_off, uint32_t seg_len) noexcept nogil:
    """Put payload[rx_skip:rx_skip+rx_len] into the rx fifo at rx_offset;
    the payload starts first_off bytes into b and may continue in its
    chain. Joins of out-of-order data are told to the connection. Returns
    0 or GN_TCP4_E_RX_FIFO."""
    cdef gn_fifo_t* f = s.rx_fifo
    cdef uint32_t skip = a.rx_skip, want = a.rx_len, pos = 0, adv = 0, k, cut
    cdef int r
    cdef gn_buffer_t* c = b
    cdef uint8_t* p = gn_buffer_current(b) + first_off
    cdef uint32_t avail = b.current_length - first_off if b.current_length > first_off else 0
    cdef gn_main_t* vm = tm.vm
    while want and c != NULL:
        if avail > seg_len:
            avail = seg_len
        seg_len -= avail
        if skip >= avail:
            skip -= avail
        else:
            p += skip
            avail -= skip
            skip = 0
            k = avail if avail < want else want
            if a.rx_offset == 0:
                if adv < pos + k:                  # else: joined data covered this piece already
                    cut = adv - pos if adv > pos else 0
                    r = gn_fifo_enqueue_with_offset(f, 0, p + cut, k - cut)
                    if r < 0:
                        return GN_TCP4_E_RX_FIFO
                    adv += <uint32_t>r
            else:
                r = gn_fifo_enqueue_with_offset(f, a.rx_offset + pos, p, k)
                if r < 0:
                    return GN_TCP4_E_RX_FIFO
            pos += k
            want -= k
        if not (c.flags & GN_BUFFER_F_NEXT_PRESENT) or seg_len == 0:
            break
        c = gn_main_buffer(vm, c.next_buffer)
        p = gn_buffer_current(c)
        avail = c.current_length
    if a.rx_offset == 0:
        tm.st.bytes_in += adv
        if adv > a.rx_len:
            gn_tcp_rcv_joined(&tc.t, adv - a.rx_len, a)
    return 0


cdef void _closed(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    """The connection is over: the session is told (closed, deleted), or a
    pending connect fails; the connection is freed."""
    tm.st.closed += 1
    if tc.ho_handle != GN_NO_HANDLE:
        gn_session_stream_connect_notify(tm.sm, NULL, tc.ho_handle, -111)
        gn_session_half_open_delete_notify(tm.sm, tc.ho_handle)
        tc.ho_handle = GN_NO_HANDLE
    if _session(tm, tc) != NULL:
        gn_session_transport_closed_notify(tm.sm, &tc.c)
        gn_session_transport_delete_notify(tm.sm, &tc.c)
    _conn_free(tm, tc)


cdef bint _established(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc) noexcept nogil:
    """The handshake completed: accept (passive) or connected (active).
    False: no session could be made (the caller resets)."""
    cdef gn_tcp4_listener_t* l
    cdef uint64_t ho
    tm.st.established += 1
    if tc.t.flags & GN_TCP_CF_PASSIVE:
        _half_open_gone(tm, tc)
        if tc.listener >= GN_TCP4_MAX_LISTENERS or not tm.listeners[tc.listener].valid:
            return False
        l = &tm.listeners[tc.listener]
        if gn_session_stream_accept(tm.sm, &tc.c, <uint64_t>l.c.s_index, True) != 0:
            return False
    else:
        ho = tc.ho_handle
        tc.ho_handle = GN_NO_HANDLE
        if gn_session_stream_connect_notify(tm.sm, &tc.c, ho, 0) != 0:
            gn_session_half_open_delete_notify(tm.sm, ho)
            return False
        gn_session_half_open_delete_notify(tm.sm, ho)
    if tm.keepalive_ms:
        _timer_set(tm, tc, GN_TCP4_T_KEEPALIVE, tm.keepalive_ms)
    return True


cdef uint32_t _actions(gn_tcp4_main_t* tm, gn_tcp4_conn_t* tc, gn_tcp_act_t* a, gn_buffer_t* b,
                       uint32_t payload_off, uint32_t seg_len, uint32_t now) noexcept nogil:
    """Carry out a's actions for tc (see the module docstring for the
    order); b holds the segment's payload (NULL: none). Returns an error
    row for the segment (0: none of the glue's)."""
    cdef gn_session_t* s
    cdef gn_tcp_out_t o
    cdef gn_tcp_act_t ra
    cdef uint32_t err = 0, sent = 0
    cdef bint had_ooo = False
    if a.flags & GN_TCP_A_ESTABLISHED:
        if not _established(tm, tc):
            gn_tcp_app_reset(&tc.t, &ra)
            gn_tcp_make_rst(&ra, &o)
            _send_conn(tm, tc, &o, NULL)
            tm.st.resets_sent += 1
            _closed(tm, tc)
            return GN_TCP4_E_ACCEPT_FAILED
    s = _session(tm, tc)
    if (a.flags & GN_TCP_A_DELIVER) and a.rx_len and s != NULL and b != NULL:
        had_ooo = s.rx_fifo != NULL and s.rx_fifo.n_ooo != 0
        err = _deliver(tm, tc, s, a, b, payload_off, seg_len)
        if s.rx_fifo != NULL and gn_fifo_max_dequeue(s.rx_fifo):
            gn_session_enqueue_notify(tm.sm, s)
    if (a.flags & GN_TCP_A_TX_ACKED) and s != NULL and s.tx_fifo != NULL and a.tx_acked:
        gn_fifo_dequeue_drop(s.tx_fifo, a.tx_acked)
        if gn_fifo_needs_deq_ntf(s.tx_fifo, a.tx_acked):
            gn_session_dequeue_notify(tm.sm, s)
    if a.flags & GN_TCP_A_PEER_FIN and s != NULL:
        gn_session_transport_closing_notify(tm.sm, &tc.c)
    if a.flags & GN_TCP_A_RESET:
        tm.st.resets_received += 1
        if s != NULL:
            gn_session_transport_reset_notify(tm.sm, &tc.c)
    if a.flags & GN_TCP_A_SEND_SYN:
        gn_tcp_make_syn(&tc.t, now, _rx_space(tm, tc), &o)
        _send_conn(tm, tc, &o, NULL)
    if a.flags & GN_TCP_A_SEND_RST:
        gn_tcp_make_rst(a, &o)
        _send_conn(tm, tc, &o, NULL)
        tm.st.resets_sent += 1
    if a.flags & GN_TCP_A_FORGET:
        _conn_free(tm, tc)
        return err
    if a.flags & GN_TCP_A_CLOSED:
        _closed(tm, tc)
        return err
    sent = _push(tm, tc, now, 64)
    if (a.flags & (GN_TCP_A_SEND_ACK | GN_TCP_A_CHALLENGE_ACK)) and not sent:
        if not _ack_later(tm, tc, a, s, had_ooo):
            _send_ack(tm, tc, now)
    elif (a.flags & GN_TCP_A_DELACK) and not sent and not (tc.gflags & GN_TCP4_F_DELACK):
        tc.gflags |= GN_TCP4_F_DELACK
        _timer_set(tm, tc, GN_TCP4_T_DELACK, tm.delack_ms)
    if a.flags & GN_TCP_A_SEND_PROBE:
        gn_tcp_make_probe(&tc.t, now, _rx_space(tm, tc), &o)
        _send_conn(tm, tc, &o, NULL)
    if a.flags & GN_TCP_A_TIME_WAIT:
        _timer_stop(tm, tc, GN_TCP4_T_RTX)
        _timer_set(tm, tc, GN_TCP4_T_TIME_WAIT, tm.time_wait_ms)
    elif a.flags & GN_TCP_A_RTX_ARM:
        _timer_set(tm, tc, GN_TCP4_T_RTX, gn_tcp_rtx_timeout_ms(&tc.t))
    elif gn_tcp_timer_wanted(&tc.t):
        if tc.timers[GN_TCP4_T_RTX] == GN_TIMER_NONE:
            _timer_set(tm, tc, GN_TCP4_T_RTX, gn_tcp_rtx_timeout_ms(&tc.t))
    elif tc.t.state != GN_TCP_SYN_SENT and tc.t.state != GN_TCP_SYN_RCVD:
        _timer_stop(tm, tc, GN_TCP4_T_RTX)
    return err


# --- segments in ------------------------------------------------------------------------

cdef uint32_t gn_tcp4_segment_view(gn_main_t* vm, gn_buffer_t* b, uint8_t** ip, uint8_t** t,
                                   uint32_t* tcp_len) noexcept nogil:
    """The IPv4 header at current_data, the TCP header after it and the
    TCP length (header + payload, from the IP total length): a wire error
    row (GN_TCP_OK: the TCP header is in the first buffer)."""
    cdef uint32_t hlen, total
    ip[0] = gn_buffer_current(b)
    hlen = gn_ip4_header_bytes(ip[0])
    total = gn_ip4_total_length(ip[0])
    if total < hlen + 20 or b.current_length < hlen + 20:
        return 1                                     # too-short
    t[0] = ip[0] + hlen
    tcp_len[0] = total - hlen
    if gn_tcp_header_bytes(t[0]) < 20:
        return 2                                     # bad-data-offset
    if gn_tcp_header_bytes(t[0]) > tcp_len[0] or b.current_length < hlen + gn_tcp_header_bytes(t[0]):
        return 3                                     # truncated
    return GN_TCP_OK


cdef uint32_t gn_tcp4_rx(gn_tcp4_main_t* tm, gn_buffer_t* b, uint32_t conn_index) noexcept nogil:
    """A segment for connection conn_index (tcp4-input found it): the state
    machine, then its actions. Returns an error row (0: none)."""
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(tm, conn_index)
    cdef uint8_t* ip
    cdef uint8_t* t
    cdef uint32_t tcp_len, now = _now_ms(), hl, err, fast_before, early_before
    cdef gn_tcp_seg_t seg
    cdef gn_tcp_act_t a
    if tc == NULL:
        return gn_tcp4_rx_closed(tm, b)
    if gn_tcp4_segment_view(tm.vm, b, &ip, &t, &tcp_len) != GN_TCP_OK or gn_tcp_seg_parse(t, tcp_len, &seg) != GN_TCP_OK:
        return GN_TCP_E_BAD_OPTIONS
    tm.st.segs_in += 1
    tc.last_rx_ms = now
    fast_before = tc.t.n_fast_retransmits
    early_before = tc.t.n_early_retransmits
    gn_tcp_input(&tc.t, &seg, now, _rx_space(tm, tc), &a)
    tm.st.fast_retransmits += tc.t.n_fast_retransmits - fast_before
    tm.st.early_retransmits += tc.t.n_early_retransmits - early_before
    hl = <uint32_t>(t - gn_buffer_current(b)) + gn_tcp_header_bytes(t)
    err = _actions(tm, tc, &a, b, hl, seg.len, now)
    if err:
        return err
    if a.error and not (a.flags & GN_TCP_A_DROP):
        return a.error | GN_TCP4_COUNT_ONLY          # used, but trimmed or not answered: counted
    return a.error if (a.flags & GN_TCP_A_DROP) else 0


cdef gn_tcp4_listener_t* gn_tcp4_find_listener(gn_tcp4_main_t* tm, uint32_t ip, uint16_t port) noexcept nogil:
    cdef gn_session_t* s = gn_session_lookup_listener4(tm.sm, GN_TRANSPORT_PROTO_TCP, ip, port)
    if s == NULL or not (s.flags & GN_SESSION_F_LISTENER) or s.connection_index >= GN_TCP4_MAX_LISTENERS:
        return NULL
    if not tm.listeners[s.connection_index].valid:
        return NULL
    return &tm.listeners[s.connection_index]


cdef void _send_rst_for(gn_tcp4_main_t* tm, gn_tcp_act_t* a, uint8_t* ip, uint8_t* t) noexcept nogil:
    """A RST answering the segment at t (ports and addresses swapped)."""
    cdef gn_tcp_out_t o
    gn_tcp_make_rst(a, &o)
    _send(tm, &o, gn_ip4_dst(ip), (t[2] << 8) | t[3], gn_ip4_src(ip), (t[0] << 8) | t[1], NULL, 0)
    tm.st.resets_sent += 1


cdef uint32_t gn_tcp4_rx_closed(gn_tcp4_main_t* tm, gn_buffer_t* b) noexcept nogil:
    """A segment for no connection and no listener: a RST unless it is one."""
    cdef uint8_t* ip
    cdef uint8_t* t
    cdef uint32_t tcp_len
    cdef gn_tcp_seg_t seg
    cdef gn_tcp_act_t a
    if gn_tcp4_segment_view(tm.vm, b, &ip, &t, &tcp_len) != GN_TCP_OK or gn_tcp_seg_parse(t, tcp_len, &seg) != GN_TCP_OK:
        return GN_TCP_E_BAD_OPTIONS
    tm.st.segs_in += 1
    gn_tcp_closed_input(&seg, &a)
    if a.flags & GN_TCP_A_SEND_RST:
        _send_rst_for(tm, &a, ip, t)
    return a.error


cdef uint32_t gn_tcp4_rx_listen(gn_tcp4_main_t* tm, gn_buffer_t* b) noexcept nogil:
    """A segment to a listener: a SYN makes a half-open connection (or a
    SYN cookie when the backlog is full); an ACK may carry a valid cookie.
    A segment whose connection an earlier one of its frame made goes to
    that connection."""
    cdef uint8_t* ip
    cdef uint8_t* t
    cdef uint32_t tcp_len, now = _now_ms(), lip, rip, pol, li, ci
    cdef uint16_t lport, rport
    cdef gn_tcp_seg_t seg
    cdef gn_tcp_act_t a
    cdef gn_tcp_out_t o
    cdef gn_tcp_cookie_t ck
    cdef gn_tcp4_listener_t* l
    cdef gn_tcp4_conn_t* tc
    cdef gn_session_t* ls
    if gn_tcp4_segment_view(tm.vm, b, &ip, &t, &tcp_len) != GN_TCP_OK or gn_tcp_seg_parse(t, tcp_len, &seg) != GN_TCP_OK:
        return GN_TCP_E_BAD_OPTIONS
    lip = gn_ip4_dst(ip)
    rip = gn_ip4_src(ip)
    lport = (t[2] << 8) | t[3]
    rport = (t[0] << 8) | t[1]
    # tcp4-input looked the 4-tuple up for the whole frame before tcp4-listen ran: an
    # earlier segment of this frame (a cookie's ACK, a SYN) may have made the connection
    # since, and the segments after it are the connection's (a kernel client's first
    # data right behind the ACK that opened it on a cookie)
    ci = gn_tcp4_lookup(tm, lip, lport, rip, rport)
    if ci != GN_SESSION_INVALID_INDEX:
        gn_tcp4_opaque(b).conn = ci
        return gn_tcp4_rx(tm, b, ci)
    l = gn_tcp4_find_listener(tm, lip, lport)
    if l == NULL:
        return gn_tcp4_rx_closed(tm, b)
    tm.st.segs_in += 1
    li = l.c.c_index
    ls = gn_session_get_if_valid(tm.sm, l.c.s_index, 0)
    gn_tcp_listen_input(&seg, &a)
    if a.flags & GN_TCP_A_ACCEPT_SYN:
        pol = gn_tcp_syn_policy(&l.l)
        if pol == GN_TCP_SYN_ACCEPT:
            tc = _conn_alloc(tm, lip, lport, rip, rport,
                             gn_tcp_isn(&tm.secret, lip, lport, rip, rport, gn_time_ns() // 1000))
            if tc == NULL:
                gn_tcp_half_open_gone(&l.l)
                return GN_TCP4_E_NO_CONN_MEMORY
            tc.listener = li
            tc.gflags |= GN_TCP4_F_HALF_OPEN_COUNTED
            tc.rx_hint = _wrk_rx_size(tm, ls.app_wrk_index) if ls != NULL else 65535
            tc.t.rcv_buf = tc.rx_hint
            tc.last_rx_ms = now
            tm.st.passive_opens += 1
            gn_tcp_passive_open(&tc.t, &seg, now, &a)
            return _actions(tm, tc, &a, NULL, 0, 0, now)
        if pol == GN_TCP_SYN_COOKIE:
            gn_tcp_syncookie_synack(&tm.secret, &tm.cfg, lip, lport, rip, rport, &seg, now,
                                    gn_tcp_ts_offset(&tm.secret, lip, lport, rip, rport), &o)
            _send(tm, &o, lip, lport, rip, rport, NULL, 0)
            tm.st.cookies_sent += 1
            return 0
        return GN_TCP4_E_SYN_DROPPED
    if (seg.flags & GN_TCP_FLAG_ACK) and not (seg.flags & (GN_TCP_FLAG_SYN | GN_TCP_FLAG_RST)) and l.l.n_cookies_sent:
        if gn_tcp_syncookie_check(&tm.secret, lip, lport, rip, rport, &seg, now,
                                  gn_tcp_ts_offset(&tm.secret, lip, lport, rip, rport), &ck):
            l.l.n_cookies_ok += 1
            tc = _conn_alloc(tm, lip, lport, rip, rport, seg.ack - 1)
            if tc == NULL:
                return GN_TCP4_E_NO_CONN_MEMORY
            tc.listener = li
            tc.rx_hint = _wrk_rx_size(tm, ls.app_wrk_index) if ls != NULL else 65535
            tc.t.rcv_buf = tc.rx_hint
            tc.last_rx_ms = now
            tm.st.passive_opens += 1
            gn_tcp_syncookie_open(&tc.t, &seg, &ck, now, tc.rx_hint, &a)
            return _actions(tm, tc, &a, b, <uint32_t>(t - gn_buffer_current(b)) + gn_tcp_header_bytes(t),
                            seg.len, now)
        l.l.n_cookies_bad += 1
        if a.flags & GN_TCP_A_SEND_RST:
            _send_rst_for(tm, &a, ip, t)
        return GN_TCP4_E_BAD_COOKIE
    if a.flags & GN_TCP_A_SEND_RST:
        _send_rst_for(tm, &a, ip, t)
    return a.error


# --- the state nodes' common dispatch ------------------------------------------------------

cdef uint32_t gn_tcp4_state_dispatch(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame,
                                     uint32_t kind) noexcept nogil:
    """tcp4-established / -syn-sent / -rcv-process (kind CONN), tcp4-listen
    (LISTEN), tcp4-reset (CLOSED): each segment through the state machine;
    segments out to the node's arc 0 (tcp4-output); the received buffers
    freed (data copied) or dropped with the reason; a segment used but
    trimmed (rx-window) or not answered (challenge-limit) is counted
    under its reason and freed."""
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>node.runtime_data
    cdef uint32_t drops[GN_FRAME_SIZE]
    cdef uint32_t done[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, n_drop = 0, n_done = 0, err
    cdef gn_buffer_t* b
    gn_tcp4_out_begin(tm, vm, node, 0)
    tm.acks_batched = kind == GN_TCP4_KIND_CONN
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        if kind == GN_TCP4_KIND_CONN:
            err = gn_tcp4_rx(tm, b, gn_tcp4_opaque(b).conn)
        elif kind == GN_TCP4_KIND_LISTEN:
            err = gn_tcp4_rx_listen(tm, b)
        else:
            err = gn_tcp4_rx_closed(tm, b)
        if err & GN_TCP4_COUNT_ONLY:
            gn_node_increment_error(vm, node, err & ~GN_TCP4_COUNT_ONLY, 1)
            done[n_done] = frame.buffers[i]
            n_done += 1
        elif err:
            b.error = <uint16_t>(node.error_base + err)
            drops[n_drop] = frame.buffers[i]
            n_drop += 1
        else:
            done[n_done] = frame.buffers[i]
            n_done += 1
    tm.acks_batched = 0
    if tm.n_acks:
        _send_batched_acks(tm, _now_ms())
    gn_tcp4_out_end(tm)
    if n_done:
        gn_main_free(vm, done, n_done)
    if n_drop:
        gn_enqueue_to_single_next(vm, node, drops, node.drop_next, n_drop)
    return n


# --- timers and deferred actions: tcp4-timer --------------------------------------------

cdef uint32_t gn_tcp4_run_timers(gn_tcp4_main_t* tm, uint64_t now_ns) noexcept nogil:
    """Expired timers and deferred actions (the caller opened the output);
    schedules the next run. Returns the events handled."""
    cdef uint32_t users[MAX_EXPIRE]
    cdef uint32_t n, i, kind, done = 0, now = <uint32_t>(now_ns // 1000000), idle, probes
    cdef gn_tcp4_conn_t* tc
    cdef gn_tcp_act_t a
    tm.wake_ns = 0
    while True:
        n = gn_timer_expire(&tm.wheel, now_ns, users, MAX_EXPIRE)
        for i in range(n):
            tc = gn_tcp4_conn_at(tm, users[i] >> 2)
            kind = users[i] & 3
            if tc == NULL:
                continue
            tc.timers[kind] = GN_TIMER_NONE
            done += 1
            if kind == GN_TCP4_T_RTX:
                if tc.t.snd_una == tc.t.snd_max and not (tc.t.flags & GN_TCP_CF_PERSIST):
                    continue
                probes = tc.t.n_tlp_probes
                gn_tcp_rto_expired(&tc.t, now, &a)
                if tc.t.n_tlp_probes != probes:
                    tm.st.tlp_probes += 1
                else:
                    tm.st.timeouts += 1
                _actions(tm, tc, &a, NULL, 0, 0, now)
            elif kind == GN_TCP4_T_DELACK:
                tc.gflags &= ~GN_TCP4_F_DELACK
                gn_tcp_delack_expired(&tc.t, &a)          # an ACK only if one is still owed
                if a.flags & GN_TCP_A_SEND_ACK:
                    tm.st.delacks += 1
                    _send_ack(tm, tc, now)
            elif kind == GN_TCP4_T_KEEPALIVE:
                idle = now - tc.last_rx_ms
                if idle + 1 < tm.keepalive_ms:
                    _timer_set(tm, tc, GN_TCP4_T_KEEPALIVE, tm.keepalive_ms - idle)
                    continue
                tm.st.keepalive_probes += 1
                gn_tcp_keepalive_expired(&tc.t, &a)
                if not (a.flags & (GN_TCP_A_CLOSED | GN_TCP_A_RESET)):
                    _timer_set(tm, tc, GN_TCP4_T_KEEPALIVE, tm.keepalive_intvl_ms)
                _actions(tm, tc, &a, NULL, 0, 0, now)
            else:
                tm.st.time_wait_expired += 1
                gn_tcp_time_wait_expired(&tc.t, &a)
                _actions(tm, tc, &a, NULL, 0, 0, now)
        if n < MAX_EXPIRE:
            break
    n = tm.n_deferred
    for i in range(n):
        tc = gn_tcp4_conn_at(tm, tm.deferred[i])
        if tc == NULL or not (tc.gflags & GN_TCP4_F_DEFERRED):
            continue
        tc.gflags &= ~GN_TCP4_F_DEFERRED
        memset(&a, 0, sizeof(gn_tcp_act_t))
        a.flags = tc.deferred | GN_TCP_A_TX_MORE
        a.rst_seq = tc.rst_seq
        a.rst_ack = tc.rst_ack
        a.rst_flags = tc.rst_flags
        tc.deferred = 0
        _actions(tm, tc, &a, NULL, 0, 0, now)
        done += 1
    tm.n_deferred = 0
    if tm.wheel.n_active:
        _wake(tm, now_ns + gn_timer_ns_until_next(&tm.wheel, now_ns, 1000000000))
    return done


# --- the transport table -----------------------------------------------------------------

cdef int _listen(void* ctx, uint32_t session_index, const gn_endpoint_t* lcl) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef uint32_t i
    for i in range(GN_TCP4_MAX_LISTENERS):
        if not tm.listeners[i].valid:
            memset(&tm.listeners[i], 0, sizeof(gn_tcp4_listener_t))
            tm.listeners[i].c.lcl = lcl[0]
            tm.listeners[i].c.c_index = i
            tm.listeners[i].c.s_index = session_index
            tm.listeners[i].c.proto = GN_TRANSPORT_PROTO_TCP
            tm.listeners[i].l.max_half_open = DEFAULT_BACKLOG
            tm.listeners[i].l.cookies = GN_TCP_COOKIES_WHEN_FULL
            tm.listeners[i].valid = 1
            return i
    return -1


cdef int _unlisten(void* ctx, uint32_t index) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    if index < GN_TCP4_MAX_LISTENERS:
        tm.listeners[index].valid = 0
    return 0


cdef uint16_t _ephemeral_port(gn_tcp4_main_t* tm) noexcept nogil:
    cdef uint32_t k, p
    for k in range(65536 - EPHEMERAL_LO):
        p = EPHEMERAL_LO + (tm.next_port + k) % (65536 - EPHEMERAL_LO)
        if not tm.port_used[p]:
            tm.next_port = <uint16_t>(p - EPHEMERAL_LO + 1)
            return <uint16_t>p
    return 0


cdef int _connect(void* ctx, const gn_endpoint_t* rmt, const gn_endpoint_t* lcl, uint64_t ho) noexcept nogil:
    """Active open: a connection in SYN_SENT; its SYN goes out from tcp4-timer."""
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef gn_tcp4_conn_t* tc
    cdef gn_tcp_act_t a
    cdef gn_session_t* hs = gn_session_from_handle(tm.sm, ho)
    cdef uint32_t src = lcl.ip if lcl.ip else tm.src_ip
    cdef uint16_t port = lcl.port if lcl.port else _ephemeral_port(tm)
    if src == 0:
        return -99                                    # EADDRNOTAVAIL: no local address known
    if port == 0 or tm.port_used[port]:
        return -98                                    # EADDRINUSE
    tc = _conn_alloc(tm, src, port, rmt.ip, rmt.port,
                     gn_tcp_isn(&tm.secret, src, port, rmt.ip, rmt.port, gn_time_ns() // 1000))
    if tc == NULL:
        return -12
    tm.port_used[port] = 1
    tc.gflags |= F_OWNS_PORT
    tc.ho_handle = ho
    tc.rx_hint = _wrk_rx_size(tm, hs.app_wrk_index) if hs != NULL else 65535
    tc.t.rcv_buf = tc.rx_hint
    tm.st.active_opens += 1
    gn_tcp_active_open(&tc.t, _now_ms(), &a)
    _defer(tm, tc, &a)
    return tc.c.c_index


cdef void _close(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    """Graceful close: the FIN goes after the tx data (tcp4-timer sends).
    A close with received data the app never read is an abort (RFC 2525
    s.2.17, as Linux does): a RST tells the peer its data was lost."""
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(tm, c)
    cdef gn_session_t* s
    cdef gn_tcp_act_t a
    if tc == NULL:
        return
    s = _session(tm, tc)
    if s != NULL and s.rx_fifo != NULL and gn_fifo_max_dequeue(s.rx_fifo):
        tm.st.unread_resets += 1
        gn_tcp_app_reset(&tc.t, &a)
        _defer(tm, tc, &a)
    else:
        _shutdown(ctx, c, thread)


cdef void _shutdown(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    """Half-close (the app's SHUT_WR): the FIN goes after the tx data and
    the receive side stays open (FIN_WAIT_1/2 still deliver; from
    CLOSE_WAIT, LAST_ACK). The app's close later finds nothing to add."""
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(tm, c)
    cdef gn_tcp_act_t a
    if tc == NULL:
        return
    gn_tcp_app_close(&tc.t, &a)
    _defer(tm, tc, &a)


cdef void _reset(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(tm, c)
    cdef gn_tcp_act_t a
    if tc == NULL:
        return
    gn_tcp_app_reset(&tc.t, &a)
    _defer(tm, tc, &a)


cdef void _cleanup(void* ctx, uint32_t c, uint32_t thread) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(tm, c)
    if tc != NULL:
        _conn_free(tm, tc)


cdef uint32_t _push_tx(void* ctx, void* vmp, void* nodep, gn_session_t* s, uint32_t max_units) noexcept nogil:
    """session-queue: the app wrote (or read: RX_DONE). Sends what the
    windows allow, and a window update when the app's reads opened the
    receive window by the SWS step (gn_tcp_window_opens). The tx event is cleared first: the
    rest is sent as ACKs open the windows (tcp4-* nodes) or by the timers."""
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(tm, s.connection_index)
    cdef uint32_t n, now = _now_ms()
    if tc == NULL or tc.c.s_index != s.session_index:
        return 0
    gn_fifo_unset_event(s.tx_fifo)
    gn_tcp4_out_begin(tm, <gn_main_t*>vmp, <gn_node_runtime_t*>nodep, tm.sq_next)
    n = _push(tm, tc, now, max_units)
    if n == 0 and tc.t.state >= GN_TCP_ESTABLISHED and tc.t.state != GN_TCP_TIME_WAIT:
        if gn_tcp_window_opens(&tc.t, _rx_space(tm, tc)):
            tm.st.window_updates += 1
            _send_ack(tm, tc, now)
    if gn_tcp_timer_wanted(&tc.t) and tc.timers[GN_TCP4_T_RTX] == GN_TIMER_NONE:
        _timer_set(tm, tc, GN_TCP4_T_RTX, gn_tcp_rtx_timeout_ms(&tc.t))
    gn_tcp4_out_end(tm)
    return n


cdef gn_transport_connection_t* _get(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(<gn_tcp4_main_t*>ctx, index)
    return &tc.c if tc != NULL else NULL


cdef gn_transport_connection_t* _get_listener(void* ctx, uint32_t index, uint32_t thread) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>ctx
    return &tm.listeners[index].c if index < GN_TCP4_MAX_LISTENERS and tm.listeners[index].valid else NULL


cdef int _format(void* ctx, uint32_t c, uint32_t thread, int verbose, char* buf, uint32_t size) noexcept nogil:
    cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(<gn_tcp4_main_t*>ctx, c)
    if tc == NULL:
        return snprintf(buf, size, "(no connection)")
    return snprintf(buf, size, "state %u snd_una %u snd_nxt %u rcv_nxt %u cwnd %u", tc.t.state, tc.t.snd_una,
                    tc.t.snd_nxt, tc.t.rcv_nxt, tc.t.cc.cwnd)


# --- control plane ------------------------------------------------------------------------

STAT_NAMES = ("segs_in", "segs_out", "bytes_in", "bytes_out", "retransmits", "timeouts", "fast_retransmits",
              "early_retransmits", "tlp_probes",
              "active_opens", "passive_opens", "established", "resets_sent", "resets_received", "closed",
              "time_wait_expired", "delacks", "window_updates", "keepalive_probes", "cookies_sent", "no_buffers",
              "conn_alloc_fail", "unread_resets", "tso_segs_out", "tso_bytes_out")
assert len(STAT_NAMES) * 8 == sizeof(gn_tcp4_stats_t)


def _ip(v):
    return str(ipaddress.IPv4Address(v))


def connection_line(c: dict) -> str:
    """One connection's state and windows as one indented line."""
    sacks = " ".join(f"{a}-{b}" for a, b in c["sack_blocks"]) or "none"
    return (f"    tcp {c['state']} snd_una {c['snd_una']} snd_nxt {c['snd_nxt']} rcv_nxt {c['rcv_nxt']} "
            f"snd_wnd {c['snd_wnd']} rcv_wnd {c['rcv_wnd']} cwnd {c['cwnd']} ssthresh {c['ssthresh']} "
            f"({c['cc']}) srtt {c['srtt_us'] / 1000:.1f} ms rttvar {c['rttvar_us'] / 1000:.1f} ms "
            f"rto {c['rto_us'] / 1000:.0f} ms in flight {c['bytes_in_flight']} retransmits {c['retransmits']} "
            f"timeouts {c['timeouts']} tlp {c['tlp_probes']} sack [{sacks}] options [{', '.join(c['options'])}]")


cdef class TcpTransport:
    """The TCP transport of one engine's session layer (proto ``tcp``).
    Made by the first tcp4-* node's setup (``attach_node``)."""
    cdef gn_tcp4_main_t* tm
    cdef SessionLayer layer
    cdef object engine
    cdef Ip4Fib fib                       # kept alive: tm.fib points into it

    def __cinit__(self, SessionLayer layer, engine=None):
        cdef gn_transport_vft_t* tp
        cdef bytes key = os.urandom(16)
        self.tm = <gn_tcp4_main_t*>calloc(1, sizeof(gn_tcp4_main_t))
        if self.tm == NULL:
            raise MemoryError()
        tm = self.tm
        tm.conns = <gn_tcp4_conn_t*>calloc(GN_TCP4_MAX_CONNS, sizeof(gn_tcp4_conn_t))
        tm.free_idx = <uint32_t*>calloc(GN_TCP4_MAX_CONNS, sizeof(uint32_t))
        tm.deferred = <uint32_t*>calloc(GN_TCP4_MAX_CONNS, sizeof(uint32_t))
        tm.hkeys = <uint64_t*>calloc(GN_TCP4_HASH_SIZE, sizeof(uint64_t))
        tm.hports = <uint32_t*>calloc(GN_TCP4_HASH_SIZE, sizeof(uint32_t))
        tm.hvals = <uint32_t*>calloc(GN_TCP4_HASH_SIZE, sizeof(uint32_t))
        if (tm.conns == NULL or tm.free_idx == NULL or tm.deferred == NULL or tm.hkeys == NULL
                or tm.hports == NULL or tm.hvals == NULL):
            raise MemoryError()
        if gn_timer_wheel_init(&tm.wheel, 1000000, 4096, gn_time_ns()) != 0:
            raise MemoryError()
        memcpy(&tm.secret, <const char*>key, 16)
        tm.sm = layer.sm
        tm.timer_node = GN_SESSION_INVALID_INDEX
        tm.cfg.mss = 1460
        tm.cfg.wscale = 7
        tm.cfg.flags = GN_TCP_CF_WANT_TS | GN_TCP_CF_WANT_SACK | GN_TCP_CF_WANT_WSCALE
        tm.cfg.challenge_acks_per_s = 10
        tm.cfg.cc_algo = cc_lookup("cubic")
        tm.time_wait_ms = 60000
        tm.delack_ms = 40
        tm.keepalive_ms = 0
        tm.keepalive_intvl_ms = 75000
        self.layer = layer
        self.engine = weakref.ref(engine) if engine is not None else None
        tp = &layer.sm.transports[GN_TRANSPORT_PROTO_TCP]
        memset(tp, 0, sizeof(gn_transport_vft_t))
        tp.listen = _listen
        tp.unlisten = _unlisten
        tp.connect = _connect
        tp.close = _close
        tp.reset = _reset
        tp.shutdown = _shutdown
        tp.cleanup = _cleanup
        tp.push_tx = _push_tx
        tp.get_connection = _get
        tp.get_listener = _get_listener
        tp.get_half_open = _get
        tp.format = _format
        tp.ctx = tm
        tp.service = GN_TRANSPORT_SERVICE_VC
        tp.stream_tx = 1
        tp.registered = 1

    def __dealloc__(self):
        if self.tm != NULL:
            gn_timer_wheel_free(&self.tm.wheel)
            free(self.tm.conns)
            free(self.tm.free_idx)
            free(self.tm.deferred)
            free(self.tm.hkeys)
            free(self.tm.hports)
            free(self.tm.hvals)
            free(self.tm)

    def capsule(self):
        return PyCapsule_New(<void*>self.tm, "gn_runtime_data", NULL)

    def set_timer_node(self, uint32_t node_index):
        self.tm.timer_node = node_index

    def set_queue_next(self, uint16_t next_index):
        self.tm.sq_next = next_index

    def set_egress(self, engine):
        """Where super-segments may go (_max_seg): the engine's FIB and
        interface table."""
        from graphnet.fib.ip4_fib import ip4_fib
        self.fib = ip4_fib(engine)
        self.tm.fib = self.fib.fib
        self.tm.im = (<InterfaceTable>engine.interfaces).im

    def stats(self):
        """Totals since the transport was made (``show tcp stats``)."""
        cdef uint64_t* v = <uint64_t*>&self.tm.st
        d = {name: v[i] for i, name in enumerate(STAT_NAMES)}
        d["connections"] = self.tm.n_live
        d["timers_active"] = self.tm.wheel.n_active
        return d

    def configure(self, cc=None, time_wait_ms=None, delack_ms=None, keepalive_ms=None, keepalive_intvl_ms=None,
                  mss=None, src_ip=None, nagle=None, tso=None):
        """Settings for connections made from now on (cc: cubic or
        newreno; time_wait_ms: 2MSL; keepalive_ms 0: off; src_ip: the
        local address of connects that name none); tso False: one MSS per
        segment even where the egress does TSO (from the next push on)."""
        if tso is not None:
            self.tm.tso_off = not tso
        if cc is not None:
            self.tm.cfg.cc_algo = cc_lookup(cc)
        if time_wait_ms is not None:
            if not 0 <= time_wait_ms <= 600000:
                raise ValueError(f"time-wait {time_wait_ms} ms: use 0..600000")
            self.tm.time_wait_ms = time_wait_ms
        if delack_ms is not None:
            self.tm.delack_ms = delack_ms
        if keepalive_ms is not None:
            self.tm.keepalive_ms = keepalive_ms
        if keepalive_intvl_ms is not None:
            self.tm.keepalive_intvl_ms = keepalive_intvl_ms
        if mss is not None:
            if not 536 <= mss <= 1460:
                raise ValueError(f"mss {mss}: use 536..1460 (segments fit one buffer)")
            self.tm.cfg.mss = mss
        if src_ip is not None:
            self.tm.src_ip = int(ipaddress.IPv4Address(src_ip))
        if nagle is not None:
            if nagle:
                self.tm.cfg.flags &= ~GN_TCP_CF_NO_NAGLE
            else:
                self.tm.cfg.flags |= GN_TCP_CF_NO_NAGLE

    def config(self):
        return {"cc": ALGORITHMS[self.tm.cfg.cc_algo], "time_wait_ms": self.tm.time_wait_ms,
                "delack_ms": self.tm.delack_ms, "keepalive_ms": self.tm.keepalive_ms, "mss": self.tm.cfg.mss,
                "nagle": not (self.tm.cfg.flags & GN_TCP_CF_NO_NAGLE), "tso": not self.tm.tso_off}

    def connection(self, uint32_t index):
        """One connection's fields (``show session verbose``), or None."""
        cdef gn_tcp4_conn_t* tc = gn_tcp4_conn_at(self.tm, index)
        cdef gn_tcp_conn_t* c
        cdef gn_session_t* s
        if tc == NULL:
            return None
        c = &tc.t
        s = _session(self.tm, tc)
        sacks = []
        if s != NULL and s.rx_fifo != NULL:
            sacks = [(c.rcv_nxt + s.rx_fifo.ooo[i].start - s.rx_fifo.tail,
                      c.rcv_nxt + s.rx_fifo.ooo[i].start - s.rx_fifo.tail + s.rx_fifo.ooo[i].length)
                     for i in range(s.rx_fifo.n_ooo)]
        return {
            "index": index, "state": STATE_NAMES[c.state],
            "local": f"{_ip(c.lcl_ip)}:{c.lcl_port}", "remote": f"{_ip(c.rmt_ip)}:{c.rmt_port}",
            "session": None if tc.c.s_index == GN_SESSION_INVALID_INDEX else tc.c.s_index,
            "snd_una": c.snd_una, "snd_nxt": c.snd_nxt, "snd_max": c.snd_max, "snd_wnd": c.snd_wnd,
            "rcv_nxt": c.rcv_nxt, "rcv_wnd": c.rcv_adv - c.rcv_nxt, "snd_mss": c.snd_mss,
            "cc": ALGORITHMS[c.cc_algo], "cwnd": c.cc.cwnd, "ssthresh": c.cc.ssthresh,
            "srtt_us": c.rto.srtt_us, "rttvar_us": c.rto.rttvar_us, "rto_us": c.rto.rto_us,
            "sack_blocks": sacks, "retransmits": c.n_retransmits, "timeouts": c.n_timeouts,
            "fast_retransmits": c.n_fast_retransmits, "early_retransmits": c.n_early_retransmits,
            "tlp_probes": c.n_tlp_probes, "bytes_in_flight": c.snd_max - c.snd_una,
            "bytes_acked": c.bytes_acked, "bytes_received": c.bytes_received,
            "options": [n for n, f in (("ts", GN_TCP_CF_TS), ("sack", GN_TCP_CF_SACK), ("wscale", GN_TCP_CF_WSCALE))
                        if c.flags & f],
        }

    def connections(self):
        """Every live connection's fields (``show tcp connections``)."""
        return [self.connection(i) for i in range(self.tm.high) if self.tm.conns[i].valid]

    def listeners(self):
        cdef gn_tcp4_listener_t* l
        out = []
        for i in range(GN_TCP4_MAX_LISTENERS):
            l = &self.tm.listeners[i]
            if l.valid:
                out.append({"index": i, "local": f"{_ip(l.c.lcl.ip)}:{l.c.lcl.port}", "half_open": l.l.n_half_open,
                            "backlog": l.l.max_half_open, "syns": l.l.n_syns, "cookies_sent": l.l.n_cookies_sent,
                            "cookies_ok": l.l.n_cookies_ok, "syn_dropped": l.l.n_syn_dropped})
        return out

    def last_connect_port(self):
        return 0

    # the application layer's hooks after listen / connect / unlisten: tcp4-input
    # finds listeners through the session layer's table, no port claims
    def claim_port(self, port):
        pass

    def release_port(self, port):
        pass


def transport(engine):
    """The engine's TcpTransport, made on first use."""
    from graphnet.session.application import session_manager
    from graphnet.session.session import PROTOS
    mgr = session_manager(engine)
    t = mgr.transports.get(PROTOS["tcp"])
    if t is None:
        t = TcpTransport(mgr.layer, engine)
        mgr.transports[PROTOS["tcp"]] = t
    return t


def attach_node(engine, node_index):
    """A tcp4-* node's setup: its runtime data is the transport's state."""
    t = transport(engine)
    engine.main.set_runtime_data(node_index, t.capsule())
    t.set_egress(engine)
    return t
