"""Sessions: per-thread pools, lookup tables, app workers' pending events,
the session state machine and the transport table (issue 12).

A session joins a transport connection to an app worker through two fifos
in the app's segment. Its handle is ``(thread << 32) | index``; pools are
per thread, allocated once (capacity fixed at start), so a session pointer
stays valid while the session lives.

States (VPP's order, comparisons rely on it): CREATED, LISTENING,
CONNECTING, ACCEPTING, READY, TRANSPORT_CLOSING, CLOSING, APP_CLOSED,
TRANSPORT_CLOSED, CLOSED, TRANSPORT_DELETED. Transitions (VPP's):
  - transport closing: the app is told (DISCONNECTED); in ACCEPTING the
    notice waits for the app's accept reply; at or past TRANSPORT_CLOSING,
    ignored;
  - app close: CLOSING and a transport close programmed; when it runs,
    APP_CLOSED and the transport's close is called; at or past CLOSING only
    TRANSPORT_CLOSED / TRANSPORT_DELETED program the close again;
  - transport closed: in READY it is handled as a transport closing first
    (a FIN then a RST in close succession), the tx fifo dropped, then
    TRANSPORT_CLOSED; up to CLOSING -> TRANSPORT_CLOSED; in APP_CLOSED ->
    CLOSED; the app is told (TRANSPORT_CLOSED);
  - transport reset: the app is told (RESET), as closing otherwise;
  - transport delete: CREATED -> freed with its fifos, the app never told;
    ACCEPTING / TRANSPORT_CLOSING / CLOSING / TRANSPORT_CLOSED ->
    TRANSPORT_DELETED, the tx fifo dropped, the app told of the transport
    cleanup; APP_CLOSED -> TRANSPORT_DELETED, cleanup told, the close
    programmed (which then frees the session); CLOSED -> TRANSPORT_DELETED,
    cleanup told, then the session cleanup (the session is freed once the
    app has been told);
  - session reset (by the app): the tx fifo dropped, CLOSING, a transport
    reset programmed;
  - app shutdown (half-close, SHUT_WR) in READY or TRANSPORT_CLOSING: the
    state stays, the flag APP_SHUT_WR is set (once) and the transport's
    shutdown programmed (the end of stream follows the tx data: TCP's
    FIN, the cut-through peer's DISCONNECTED); rx goes on; a close or
    reset before it runs makes it moot; the app's close later is an
    ordinary close;
  - app close or reset of a half-open (CONNECTING): only marked; the
    transport is not called (it has no connection yet); when the connect
    completes, no session is made (the transport drops the connection)
    and the app is not told; the half-open goes with the transport's
    half-open delete;
  - a failed accept or connect notification frees the fifos and the
    session without a cleanup notification.
"Programmed" means appended to the thread's control list, which
``gn_session_run_ctrl`` (session-queue, each dispatch) runs.

Events to apps: notifications only append an event to the app worker's
pending list; the first worker to become pending raises session-input's
interrupt. An rx event is added only when the rx fifo's has_event flag was
clear, so a session has at most one outstanding however many packets
arrive (the others are counted as coalesced). ``gn_session_flush`` moves
each pending worker's events into its message queue, one batch under one
lock (or one call of a builtin app's callback), at most N per run; a full
queue leaves the rest pending (counted) and nothing is lost. Events for
sessions freed before the flush are dropped and counted (stale).
"""
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport calloc, malloc, realloc, free

cdef extern from "<stdlib.h>" nogil:
    void* aligned_alloc(size_t alignment, size_t size)     # C11 (session pools: one line per part)
from libc.string cimport memset, memmove, memcpy
from graphnet.session.types cimport *
from graphnet.session.segment cimport (Segment, gn_segment_t, gn_segment_alloc, gn_segment_free, gn_segment_contains,
                                       GN_SEGMENT_KIND_FIFO)
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_shared_t, gn_fifo_init, gn_fifo_release, gn_fifo_bytes_for, gn_fifo_set_event,
                                    gn_fifo_dequeue_drop_all, gn_fifo_clear_deq_ntf, gn_fifo_tampered, gn_fifo_borrow,
                                    gn_fifo_max_dequeue)
from graphnet.session.msg_queue cimport gn_mq_enqueue_batch, gn_mq_handle_t, MessageQueue
from graphnet.vlib.main cimport gn_main_t, gn_node_set_interrupt_pending
from graphnet.includes.platform cimport gn_atomic_store_u32
from graphnet.vlib.buffer cimport gn_buffer_waiter_t, gn_buffer_waiter_add, gn_buffer_waiter_remove

import logging
import struct

log = logging.getLogger("graphnet.session")
assert sizeof(gn_session_t) == 256 and sizeof(gn_fifo_t) == 56

# The error-table rows of refused app messages, GN_APP_MSG_E_* - 1 indexing
# them (graphnet/session/app_msg.pxd); session-queue and app-queue add them
# after their own rows.
APP_MSG_REFUSALS = (
    ("bad-worker", "warn", "app message refused: no such worker"),
    ("bad-session", "warn", "app message refused: no such session (a bad or stale handle)"),
    ("not-owner", "warn", "app message refused: the session is another worker's"),
    ("bad-type", "warn", "app message refused: unknown type"),
    ("listener", "warn", "app message refused: close, reset, shutdown or accept reply naming a listener"),
)

STATE_NAMES = ("CREATED", "LISTENING", "CONNECTING", "ACCEPTING", "READY", "TRANSPORT_CLOSING", "CLOSING",
               "APP_CLOSED", "TRANSPORT_CLOSED", "CLOSED", "TRANSPORT_DELETED")
STATES = {n: i for i, n in enumerate(STATE_NAMES)}
EVENT_NAMES = {GN_EVT_RX: "rx", GN_EVT_TX: "tx", GN_EVT_ACCEPTED: "accepted", GN_EVT_CONNECTED: "connected",
               GN_EVT_DISCONNECTED: "disconnected", GN_EVT_TRANSPORT_CLOSED: "transport-closed",
               GN_EVT_RESET: "reset", GN_EVT_CLEANUP: "cleanup", GN_EVT_BOUND: "bound",
               GN_EVT_UNLISTEN_REPLY: "unlisten-reply", GN_EVT_ERROR: "error"}
EVENTS = {v: k for k, v in EVENT_NAMES.items()}
PROTO_NAMES = {GN_TRANSPORT_PROTO_UDP: "udp", GN_TRANSPORT_PROTO_TCP: "tcp", GN_TRANSPORT_PROTO_CT: "ct",
               GN_TRANSPORT_PROTO_TEST: "test"}
PROTOS = {v: k for k, v in PROTO_NAMES.items()}
FLAG_NAMES = {GN_SESSION_F_APP_CLOSED: "app-closed", GN_SESSION_F_HALF_OPEN: "half-open",
              GN_SESSION_F_LISTENER: "listener", GN_SESSION_F_CUT_THROUGH: "ct", GN_SESSION_F_DGRAM: "dgram",
              GN_SESSION_F_TX_QUEUED: "tx-queued", GN_SESSION_F_WAIT_BUFFERS: "wait-buffers",
              GN_SESSION_F_APP_SHUT_WR: "shut-wr"}
CLEANUP_TRANSPORT = GN_CLEANUP_TRANSPORT
CLEANUP_SESSION = GN_CLEANUP_SESSION
NO_HANDLE = GN_NO_HANDLE
MSG_SIZE = sizeof(gn_app_msg_t)
assert sizeof(gn_app_msg_t) == 64
# gn_app_msg_t as a struct format (little-endian, as the machine)
MSG_FORMAT = "<BBHiQQIIIIIIHHII4x"
assert struct.calcsize(MSG_FORMAT) == 64
MSG_FIELDS = ("type", "proto", "state", "retval", "handle", "listener_handle", "rx_fifo", "tx_fifo",
              "segment_index", "opaque", "lcl_ip", "rmt_ip", "lcl_port", "rmt_port", "peer_mq", "wrk_index")

cdef uint64_t HASH_EMPTY = 0xffffffffffffffffULL
cdef uint64_t HASH_TOMB = 0xfffffffffffffffeULL


# --- a small open-addressing hash table: (k0, k1) -> u64 -------------------------

cdef inline uint64_t _mix(uint64_t a, uint64_t b) noexcept nogil:
    cdef uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL)
    x ^= x >> 31
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 29
    return x


cdef int _hash_init(gn_hash_t* h, uint32_t cap) noexcept nogil:
    cdef uint32_t i
    h.keys = <uint64_t*>malloc(2 * cap * sizeof(uint64_t))
    h.vals = <uint64_t*>malloc(cap * sizeof(uint64_t))
    if h.keys == NULL or h.vals == NULL:
        free(h.keys)
        free(h.vals)
        h.keys = h.vals = NULL
        return -1
    for i in range(cap):
        h.vals[i] = HASH_EMPTY
    h.cap = cap
    h.n = 0
    h.n_tomb = 0
    return 0


cdef void _hash_free(gn_hash_t* h) noexcept nogil:
    free(h.keys)
    free(h.vals)
    h.keys = h.vals = NULL


cdef uint64_t _hash_get(gn_hash_t* h, uint64_t k0, uint64_t k1) noexcept nogil:
    cdef uint32_t i = <uint32_t>_mix(k0, k1) & (h.cap - 1), probes = 0
    while probes < h.cap:
        if h.vals[i] == HASH_EMPTY:
            return HASH_EMPTY
        if h.vals[i] != HASH_TOMB and h.keys[2 * i] == k0 and h.keys[2 * i + 1] == k1:
            return h.vals[i]
        i = (i + 1) & (h.cap - 1)
        probes += 1
    return HASH_EMPTY


cdef void _hash_insert(gn_hash_t* h, uint64_t k0, uint64_t k1, uint64_t v) noexcept nogil:
    """Insert or replace; the caller made sure a free slot exists."""
    cdef uint32_t i = <uint32_t>_mix(k0, k1) & (h.cap - 1), probes = 0
    cdef int64_t tomb = -1
    while probes < h.cap:
        if h.vals[i] == HASH_EMPTY:
            break
        if h.vals[i] == HASH_TOMB:
            if tomb < 0:
                tomb = i
        elif h.keys[2 * i] == k0 and h.keys[2 * i + 1] == k1:
            h.vals[i] = v
            return
        i = (i + 1) & (h.cap - 1)
        probes += 1
    if tomb >= 0:
        i = <uint32_t>tomb
        h.n_tomb -= 1
    h.keys[2 * i] = k0
    h.keys[2 * i + 1] = k1
    h.vals[i] = v
    h.n += 1


cdef int _hash_grow(gn_hash_t* h) noexcept nogil:
    cdef gn_hash_t old = h[0]
    cdef uint32_t i, cap = h.cap * 2 if h.n * 2 >= h.cap else h.cap   # else just purge tombstones
    if _hash_init(h, cap) != 0:
        h[0] = old
        return -1
    for i in range(old.cap):
        if old.vals[i] != HASH_EMPTY and old.vals[i] != HASH_TOMB:
            _hash_insert(h, old.keys[2 * i], old.keys[2 * i + 1], old.vals[i])
    _hash_free(&old)
    return 0


cdef int _hash_put(gn_hash_t* h, uint64_t k0, uint64_t k1, uint64_t v) noexcept nogil:
    """Insert or replace (k0, k1) -> v; -1 if the table cannot grow."""
    if (h.n + h.n_tomb + 1) * 4 > h.cap * 3 and _hash_grow(h) != 0:
        return -1
    _hash_insert(h, k0, k1, v)
    return 0


cdef int _hash_del(gn_hash_t* h, uint64_t k0, uint64_t k1) noexcept nogil:
    cdef uint32_t i = <uint32_t>_mix(k0, k1) & (h.cap - 1), probes = 0
    while probes < h.cap:
        if h.vals[i] == HASH_EMPTY:
            return -1
        if h.vals[i] != HASH_TOMB and h.keys[2 * i] == k0 and h.keys[2 * i + 1] == k1:
            h.vals[i] = HASH_TOMB
            h.n -= 1
            h.n_tomb += 1
            return 0
        i = (i + 1) & (h.cap - 1)
        probes += 1
    return -1


cdef inline uint64_t _conn_k0(uint32_t lcl_ip, uint32_t rmt_ip) noexcept nogil:
    return (<uint64_t>lcl_ip << 32) | rmt_ip


cdef inline uint64_t _conn_k1(uint16_t lcl_port, uint16_t rmt_port) noexcept nogil:
    return (<uint64_t>lcl_port << 16) | rmt_port


# --- pools -----------------------------------------------------------------------

cdef gn_session_t* gn_session_get_if_valid(gn_session_main_t* sm, uint32_t index, uint32_t thread) noexcept nogil:
    if thread >= sm.n_threads or index >= sm.pools[thread].high:
        return NULL
    if not sm.pools[thread].items[index].valid:
        return NULL
    return &sm.pools[thread].items[index]


cdef gn_session_t* gn_session_from_handle(gn_session_main_t* sm, uint64_t handle) noexcept nogil:
    if handle == GN_NO_HANDLE:
        return NULL
    return gn_session_get_if_valid(sm, <uint32_t>handle, <uint32_t>(handle >> 32))


cdef gn_session_t* gn_session_alloc(gn_session_main_t* sm, uint32_t thread) noexcept nogil:
    cdef gn_session_pool_t* p = &sm.pools[thread]
    cdef uint32_t i
    cdef gn_session_t* s
    if p.n_free:
        p.n_free -= 1
        i = p.free_idx[p.n_free]
    elif p.high < p.cap:
        i = p.high
        p.high += 1
    else:
        return NULL
    s = &p.items[i]
    memset(s, 0, sizeof(gn_session_t))
    s.session_index = i
    s.thread_index = thread
    s.app_wrk_index = GN_SESSION_INVALID_INDEX
    s.connection_index = GN_SESSION_INVALID_INDEX
    s.al_index = GN_SESSION_INVALID_INDEX
    s.listener_handle = GN_NO_HANDLE
    s.peer_handle = GN_NO_HANDLE
    s.state = GN_SESSION_STATE_CREATED
    s.valid = 1
    p.n_live += 1
    return s


cdef void gn_session_free(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    cdef gn_session_pool_t* p = &sm.pools[s.thread_index]
    if not s.valid:
        return
    if s.buf_waiter.queued and sm.vm != NULL:
        gn_buffer_waiter_remove((<gn_main_t*>sm.vm).pool, &s.buf_waiter)
    s.valid = 0
    p.free_idx[p.n_free] = s.session_index
    p.n_free += 1
    p.n_live -= 1


cdef gn_fifo_t* _fifo_alloc(gn_session_main_t* sm, uint32_t seg_index, uint32_t size, gn_session_t* s,
                            gn_fifo_t* f) noexcept nogil:
    """A fifo in the segment, with f (one of the session's handles, engine
    memory) set to its geometry; f, or NULL if the segment has no room."""
    cdef gn_segment_t* seg = sm.segments[seg_index]
    cdef uint64_t off = gn_segment_alloc(seg, gn_fifo_bytes_for(size), GN_SEGMENT_KIND_FIFO)
    if off == 0:
        return NULL
    gn_fifo_init(f, <gn_fifo_shared_t*>(seg.base + off), size, seg_index, off)
    f.shr.master_session_index = s.session_index
    f.shr.master_thread_index = s.thread_index
    return f


cdef void _fifo_free(gn_session_main_t* sm, gn_fifo_t* f) noexcept nogil:
    """Free the fifo's block (by the handle's trusted segment and offset,
    nothing read from the segment) and what the handle holds; the junk it
    saw is added to the layer's counters."""
    if f == NULL:
        return
    sm.n_fifo_clamped += f.n_clamped
    if gn_fifo_tampered(f):
        sm.n_fifo_tampered += 1
    f.shr.magic = 0
    if sm.segments[f.segment_index] != NULL:
        gn_segment_free(sm.segments[f.segment_index], f.offset)
    gn_fifo_release(f)


cdef int gn_session_alloc_fifos(gn_session_main_t* sm, gn_session_t* s, gn_app_wrk_t* wrk) noexcept nogil:
    """rx and tx fifos from the worker's segment; when they do not fit, the
    segment manager (if set) is asked once for another segment of the app;
    -1 (counted) if none fit."""
    cdef int attempt
    cdef uint64_t need = gn_fifo_bytes_for(wrk.rx_fifo_size) + gn_fifo_bytes_for(wrk.tx_fifo_size) + 4 * 64
    for attempt in range(2):
        if wrk.segment_index < GN_MAX_SEGMENTS and sm.segments[wrk.segment_index] != NULL:
            s.rx_fifo = _fifo_alloc(sm, wrk.segment_index, wrk.rx_fifo_size, s, &s.rx_h)
            s.tx_fifo = _fifo_alloc(sm, wrk.segment_index, wrk.tx_fifo_size, s, &s.tx_h)
            if s.rx_fifo != NULL and s.tx_fifo != NULL:
                s.tx_fifo_offset = <uint32_t>s.tx_h.offset
                return 0
            gn_session_free_fifos(sm, s)
        # no room: the segment manager may add a segment (once per allocation)
        if attempt or sm.segment_full == NULL or sm.segment_full(sm.segment_full_ctx, wrk, need) != 0:
            break
        sm.n_segment_switches += 1
    sm.n_fifo_alloc_fail += 1
    return -1


cdef void gn_session_free_fifos(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """Free the session's fifos. Cut-through peers share theirs: the first
    of the two to go leaves them to the other, the last frees them."""
    cdef gn_session_t* peer
    if s.flags & GN_SESSION_F_CUT_THROUGH:
        peer = gn_session_from_handle(sm, s.peer_handle)
        s.peer_handle = GN_NO_HANDLE
        if peer != NULL and peer.peer_handle == gn_session_handle(s):
            peer.peer_handle = GN_NO_HANDLE
            s.rx_fifo = NULL
            s.tx_fifo = NULL
            s.tx_fifo_offset = 0
            return
    _fifo_free(sm, s.rx_fifo)
    _fifo_free(sm, s.tx_fifo)
    s.rx_fifo = NULL
    s.tx_fifo = NULL
    s.tx_fifo_offset = 0


cdef void gn_session_cleanup(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    gn_session_free_fifos(sm, s)
    gn_session_free(sm, s)


# --- lookup ----------------------------------------------------------------------

cdef inline gn_transport_connection_t* _session_tc(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    cdef gn_transport_vft_t* tp = &sm.transports[s.proto]
    if s.connection_index == GN_SESSION_INVALID_INDEX:
        return NULL
    if s.flags & GN_SESSION_F_LISTENER:
        return tp.get_listener(tp.ctx, s.connection_index, 0) if tp.get_listener != NULL else NULL
    if s.flags & GN_SESSION_F_HALF_OPEN:
        return tp.get_half_open(tp.ctx, s.connection_index, 0) if tp.get_half_open != NULL else NULL
    return tp.get_connection(tp.ctx, s.connection_index, s.thread_index) if tp.get_connection != NULL else NULL


cdef int gn_session_lookup_add(gn_session_main_t* sm, gn_transport_connection_t* tc, uint64_t handle) noexcept nogil:
    return _hash_put(&sm.conn_table[tc.proto], _conn_k0(tc.lcl.ip, tc.rmt.ip), _conn_k1(tc.lcl.port, tc.rmt.port),
                     handle)


cdef void gn_session_lookup_del(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    cdef gn_transport_connection_t* tc = _session_tc(sm, s)
    cdef uint64_t k0, k1
    if tc == NULL:
        return
    if s.flags & GN_SESSION_F_LISTENER:
        k0 = tc.lcl.ip
        k1 = tc.lcl.port
        if _hash_get(&sm.listen_table[s.proto], k0, k1) == gn_session_handle(s):
            _hash_del(&sm.listen_table[s.proto], k0, k1)
        return
    k0 = _conn_k0(tc.lcl.ip, tc.rmt.ip)
    k1 = _conn_k1(tc.lcl.port, tc.rmt.port)
    if _hash_get(&sm.conn_table[s.proto], k0, k1) == gn_session_handle(s):
        _hash_del(&sm.conn_table[s.proto], k0, k1)


cdef gn_session_t* gn_session_lookup4(gn_session_main_t* sm, uint8_t proto, uint32_t lcl_ip, uint16_t lcl_port,
                                      uint32_t rmt_ip, uint16_t rmt_port) noexcept nogil:
    cdef uint64_t h = _hash_get(&sm.conn_table[proto], _conn_k0(lcl_ip, rmt_ip), _conn_k1(lcl_port, rmt_port))
    return NULL if h == HASH_EMPTY else gn_session_from_handle(sm, h)


cdef gn_session_t* gn_session_lookup_listener4(gn_session_main_t* sm, uint8_t proto, uint32_t ip, uint16_t port) noexcept nogil:
    """The listener on ip:port, else on 0.0.0.0:port (wildcard)."""
    cdef uint64_t h = _hash_get(&sm.listen_table[proto], ip, port)
    if h == HASH_EMPTY and ip != 0:
        h = _hash_get(&sm.listen_table[proto], 0, port)
    return NULL if h == HASH_EMPTY else gn_session_from_handle(sm, h)


cdef inline uint64_t _local_k1(uint8_t proto, uint16_t port) noexcept nogil:
    return (<uint64_t>proto << 16) | port


cdef gn_session_t* gn_session_lookup_local_listener4(gn_session_main_t* sm, uint8_t proto, uint32_t ip, uint16_t port) noexcept nogil:
    """A listener of an app with local scope on ip:port (or 0.0.0.0:port)
    for proto: the peer of a cut-through connect."""
    cdef uint64_t h = _hash_get(&sm.listen_table[GN_TRANSPORT_PROTO_CT], ip, _local_k1(proto, port))
    if h == HASH_EMPTY and ip != 0:
        h = _hash_get(&sm.listen_table[GN_TRANSPORT_PROTO_CT], 0, _local_k1(proto, port))
    return NULL if h == HASH_EMPTY else gn_session_from_handle(sm, h)


# --- events to app workers --------------------------------------------------------

cdef int gn_app_wrk_add_event(gn_session_main_t* sm, uint32_t wrk_index, uint8_t type, int32_t arg,
                              uint64_t handle) noexcept nogil:
    """Append an event to the worker's pending list; the first worker to
    become pending raises session-input's interrupt. -1: no such worker."""
    cdef gn_app_wrk_t* wrk = gn_app_wrk_get_if_valid(sm, wrk_index)
    cdef gn_session_event_t* e
    cdef uint32_t cap
    if wrk == NULL:
        return -1
    if wrk.n_events == wrk.cap_events:
        cap = wrk.cap_events * 2 if wrk.cap_events else 64
        e = <gn_session_event_t*>realloc(wrk.events, cap * sizeof(gn_session_event_t))
        if e == NULL:
            sm.n_events_lost_nomem += 1
            return -1
        wrk.events = e
        wrk.cap_events = cap
    e = &wrk.events[wrk.n_events]
    e.type = type
    e.arg = arg
    e.handle = handle
    e.opaque = 0
    wrk.n_events += 1
    wrk.n_queued += 1
    if not wrk.pending:
        wrk.pending = 1
        sm.pending_wrks[sm.n_pending] = wrk_index
        sm.n_pending += 1
        if sm.n_pending == 1 and sm.vm != NULL:
            gn_node_set_interrupt_pending(<gn_main_t*>sm.vm, sm.input_node_index)
            sm.n_interrupts += 1
    return 0


cdef void gn_session_enqueue_notify_slow(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """gn_session_enqueue_notify when the flag looked clear: set it and add
    the event. A plain store, no atomic exchange: the transport is the rx
    fifo's only producer and the app only ever clears the flag, so the
    flag seen clear stays clear until this store."""
    gn_atomic_store_u32(&s.rx_fifo.shr.has_event, 1)
    gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_RX, 0, gn_session_handle(s))


cdef void gn_session_dequeue_notify(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The transport drained the tx fifo past what the app asked: tell it."""
    gn_fifo_clear_deq_ntf(s.tx_fifo)
    gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_TX, 0, gn_session_handle(s))


cdef inline uint32_t _fifo_offset(gn_session_main_t* sm, gn_fifo_t* f) noexcept nogil:
    return <uint32_t>f.offset if f != NULL else 0


cdef bint _build_msg(gn_session_main_t* sm, gn_app_wrk_t* wrk, gn_session_event_t* e, gn_app_msg_t* m) noexcept nogil:
    """The message for event e, from the session as it is now; false if the
    session is gone (a stale event)."""
    cdef gn_session_t* s
    cdef gn_session_t* peer
    cdef gn_transport_connection_t* tc
    cdef gn_app_wrk_t* pw
    memset(m, 0, sizeof(gn_app_msg_t))
    m.type = e.type
    m.retval = e.arg
    m.handle = e.handle
    m.opaque = e.opaque
    m.wrk_index = wrk.wrk_index
    if e.handle == GN_NO_HANDLE:
        return True
    s = gn_session_from_handle(sm, e.handle)
    if s == NULL:
        return False
    m.proto = s.proto
    m.state = s.state
    m.listener_handle = s.listener_handle
    if s.rx_fifo != NULL:
        m.segment_index = s.rx_fifo.segment_index
        m.rx_fifo = _fifo_offset(sm, s.rx_fifo)
    m.tx_fifo = s.tx_fifo_offset
    if e.type != GN_EVT_CONNECTED:
        m.opaque = s.opaque
    if e.type == GN_EVT_ACCEPTED or e.type == GN_EVT_CONNECTED:
        if s.flags & GN_SESSION_F_CUT_THROUGH:
            peer = gn_session_from_handle(sm, s.peer_handle)
            if peer != NULL:
                pw = gn_app_wrk_get_if_valid(sm, peer.app_wrk_index)
                if pw != NULL:
                    m.peer_mq = pw.mq_offset
        tc = _session_tc(sm, s) if s.state < GN_SESSION_STATE_TRANSPORT_DELETED else NULL
        if tc != NULL:
            m.lcl_ip = tc.lcl.ip
            m.lcl_port = tc.lcl.port
            m.rmt_ip = tc.rmt.ip
            m.rmt_port = tc.rmt.port
    return True


cdef void _after_delivery(gn_session_main_t* sm, gn_app_wrk_t* wrk, gn_app_msg_t* m) noexcept nogil:
    cdef gn_session_t* s
    if m.type != GN_EVT_ACCEPTED and m.type != GN_EVT_CLEANUP:
        return                                     # (the rx path: no session lookup)
    s = gn_session_from_handle(sm, m.handle)
    if s == NULL:
        return
    if m.type == GN_EVT_ACCEPTED and wrk.cb != NULL and s.state == GN_SESSION_STATE_ACCEPTING:
        gn_session_accept_reply(sm, s, 0)          # a builtin app accepted unless it closed it
    elif m.type == GN_EVT_CLEANUP and m.retval == GN_CLEANUP_SESSION:
        gn_session_cleanup(sm, s)                  # the app has been told: free it


cdef uint32_t gn_session_flush(gn_session_main_t* sm, uint32_t max_events) noexcept nogil:
    """Deliver pending events, each worker's in batches under one lock, at
    most max_events in all; returns how many were delivered. Workers left
    with events stay pending (budget spent, or queue full: wrk.backoff)."""
    cdef gn_app_msg_t msgs[GN_MSG_BATCH]
    cdef uint32_t pos[GN_MSG_BATCH]
    cdef uint32_t i = 0, keep = 0, wi, consumed, j, k, taken, m, total = 0
    cdef gn_app_wrk_t* wrk
    cdef bint full
    while i < sm.n_pending:
        wi = sm.pending_wrks[i]
        i += 1
        wrk = &sm.wrks[wi]
        if not wrk.valid:
            wrk.pending = 0
            continue
        consumed = 0
        full = False
        while consumed < wrk.n_events and total < max_events and not full:
            k = 0
            j = consumed
            while j < wrk.n_events and k < GN_MSG_BATCH and total + k < max_events:
                if _build_msg(sm, wrk, &wrk.events[j], &msgs[k]):
                    pos[k] = j
                    k += 1
                else:
                    wrk.n_stale += 1
                    sm.n_stale += 1
                j += 1
            if k == 0:
                consumed = j
                continue
            if wrk.cb != NULL:
                wrk.cb(wrk.cb_ctx, wrk, msgs, k)
                taken = k
            else:
                taken = gn_mq_enqueue_batch(&wrk.mq, <uint8_t*>msgs, sizeof(gn_app_msg_t), k)
            wrk.n_flushes += 1
            for m in range(taken):
                _after_delivery(sm, wrk, &msgs[m])
            total += taken
            wrk.n_delivered += taken
            if taken < k:
                consumed = pos[taken]
                full = True
                wrk.n_full += 1
                sm.n_full_backoffs += 1
            else:
                consumed = j
        if consumed:
            memmove(wrk.events, wrk.events + consumed, (wrk.n_events - consumed) * sizeof(gn_session_event_t))
            wrk.n_events -= consumed
        wrk.backoff = full
        if wrk.n_events and wrk.valid:
            sm.pending_wrks[keep] = wi
            keep += 1
        else:
            wrk.pending = 0
    sm.n_pending = keep
    sm.n_flushes += 1
    sm.n_events_delivered += total
    return total


cdef void gn_session_tx_schedule(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """Put the session on the tx ring for session-queue (once: a session
    already queued is not queued again, so the ring never overflows)."""
    if s.flags & GN_SESSION_F_TX_QUEUED:
        return
    s.flags |= GN_SESSION_F_TX_QUEUED
    sm.tx_ring[sm.tx_tail & (sm.tx_cap - 1)] = gn_session_handle(s)
    sm.tx_tail += 1
    _kick_queue(sm)


cdef void _buffers_freed(gn_buffer_waiter_t* w) noexcept nogil:
    """The pool released a buffer for this waiting session (it was unlinked
    from the queue): back on the tx ring."""
    cdef gn_session_t* s = <gn_session_t*>w           # buf_waiter is the first member
    if not s.valid:
        return
    s.flags &= ~GN_SESSION_F_WAIT_BUFFERS
    gn_session_tx_schedule(<gn_session_main_t*>w.ctx, s)


cdef void gn_session_wait_buffers(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The transport found no buffers to send s's data: subscribe s to the
    pool's FIFO waiter queue; it is put back on the tx ring when buffers
    are freed (one session per buffer released, in order). Until then
    session-queue leaves it alone. A session freed while waiting leaves
    the queue."""
    if sm.vm == NULL:
        return
    s.flags |= GN_SESSION_F_WAIT_BUFFERS
    s.buf_waiter.wake = _buffers_freed
    s.buf_waiter.ctx = sm
    sm.n_buffer_waits += 1
    gn_buffer_waiter_add((<gn_main_t*>sm.vm).pool, &s.buf_waiter)


cdef inline void _kick_queue(gn_session_main_t* sm) noexcept nogil:
    if sm.vm != NULL and sm.queue_node_index != GN_SESSION_INVALID_INDEX:
        gn_node_set_interrupt_pending(<gn_main_t*>sm.vm, sm.queue_node_index)


# --- control events ----------------------------------------------------------------

cdef void _program_ctrl(gn_session_main_t* sm, gn_session_t* s, uint8_t type) noexcept nogil:
    cdef gn_session_pool_t* p = &sm.pools[s.thread_index]
    cdef gn_session_event_t* e
    cdef uint32_t cap
    if p.n_ctrl == p.cap_ctrl:
        cap = p.cap_ctrl * 2 if p.cap_ctrl else 64
        e = <gn_session_event_t*>realloc(p.ctrl, cap * sizeof(gn_session_event_t))
        if e == NULL:
            sm.n_events_lost_nomem += 1
            return
        p.ctrl = e
        p.cap_ctrl = cap
    e = &p.ctrl[p.n_ctrl]
    memset(e, 0, sizeof(gn_session_event_t))
    e.type = type
    e.handle = gn_session_handle(s)
    p.n_ctrl += 1
    _kick_queue(sm)


cdef uint32_t gn_session_run_ctrl(gn_session_main_t* sm, uint32_t thread) noexcept nogil:
    """Run the thread's programmed transport closes, resets and shutdowns
    (those they program in turn wait for the next run)."""
    cdef gn_session_pool_t* p = &sm.pools[thread]
    cdef uint32_t n = p.n_ctrl, i
    cdef gn_session_event_t e
    cdef gn_session_t* s
    for i in range(n):
        e = p.ctrl[i]
        s = gn_session_from_handle(sm, e.handle)
        if s == NULL:
            continue
        if e.type == GN_APP_MSG_CLOSE:
            gn_session_transport_close(sm, s)
        elif e.type == GN_APP_MSG_RESET:
            gn_session_transport_reset(sm, s)
        elif e.type == GN_APP_MSG_SHUTDOWN:
            _transport_shutdown(sm, s)
    memmove(p.ctrl, p.ctrl + n, (p.n_ctrl - n) * sizeof(gn_session_event_t))
    p.n_ctrl -= n
    return n


# --- the state machine: transport -> session ------------------------------------------

cdef inline void _set_state(gn_session_t* s, uint8_t state) noexcept nogil:
    s.state = state


cdef void _cleanup_notify(gn_session_main_t* sm, gn_session_t* s, int ntf) noexcept nogil:
    if gn_app_wrk_get_if_valid(sm, s.app_wrk_index) == NULL:
        if ntf == GN_CLEANUP_TRANSPORT:
            return
        gn_session_cleanup(sm, s)
        return
    if gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_CLEANUP, ntf, gn_session_handle(s)) != 0 \
            and ntf == GN_CLEANUP_SESSION:
        gn_session_cleanup(sm, s)


cdef inline void _drop_tx(gn_session_t* s) noexcept nogil:
    if s.tx_fifo != NULL:
        gn_fifo_dequeue_drop_all(s.tx_fifo)


cdef uint32_t _select_worker(gn_session_main_t* sm, gn_session_t* ls) noexcept nogil:
    """Round-robin over the workers sharing the listener."""
    cdef gn_app_listener_t* al
    cdef uint32_t n, w
    if ls.al_index >= sm.cap_listeners or not sm.listeners[ls.al_index].valid:
        return ls.app_wrk_index
    al = &sm.listeners[ls.al_index]
    for n in range(al.n_wrks):
        w = al.wrks[al.rr % al.n_wrks]
        al.rr += 1
        if gn_app_wrk_get_if_valid(sm, w) != NULL:
            return w
    return GN_SESSION_INVALID_INDEX


cdef int gn_session_stream_accept(gn_session_main_t* sm, gn_transport_connection_t* tc, uint64_t listener_handle,
                                  bint notify) noexcept nogil:
    """A new connection on a listener: a session with fifos from the chosen
    worker's segment, in the lookup table, the app told if notify.
    -1 (counted) if it cannot be made; nothing is left behind."""
    cdef gn_session_t* ls = gn_session_from_handle(sm, listener_handle)
    cdef gn_session_t* s
    cdef gn_app_wrk_t* wrk
    cdef uint32_t wi
    if ls == NULL:
        sm.n_accept_fail += 1
        return -1
    wi = _select_worker(sm, ls)
    wrk = gn_app_wrk_get_if_valid(sm, wi)
    if wrk == NULL or tc.thread_index >= sm.n_threads:
        sm.n_accept_fail += 1
        return -1
    s = gn_session_alloc(sm, tc.thread_index)
    if s == NULL:
        sm.n_accept_fail += 1
        return -1
    s.proto = tc.proto
    s.connection_index = tc.c_index
    s.listener_handle = listener_handle
    s.app_wrk_index = wi
    tc.s_index = s.session_index
    if gn_session_alloc_fifos(sm, s, wrk) != 0:
        gn_session_free(sm, s)
        sm.n_accept_fail += 1
        return -1
    gn_session_lookup_add(sm, tc, gn_session_handle(s))
    if notify and gn_session_stream_accept_notify(sm, tc) != 0:
        gn_session_lookup_del(sm, s)
        gn_session_cleanup(sm, s)
        sm.n_accept_fail += 1
        return -1
    return 0


cdef int gn_session_stream_accept_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil:
    cdef gn_session_t* s = gn_session_get_if_valid(sm, tc.s_index, tc.thread_index)
    if s == NULL or gn_app_wrk_get_if_valid(sm, s.app_wrk_index) == NULL:
        return -1
    if s.state != GN_SESSION_STATE_CREATED:
        return 0
    _set_state(s, GN_SESSION_STATE_ACCEPTING)
    if gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_ACCEPTED, 0, gn_session_handle(s)) != 0:
        _set_state(s, GN_SESSION_STATE_CREATED)
        return -1
    return 0


cdef int gn_session_stream_connect_notify(gn_session_main_t* sm, gn_transport_connection_t* tc, uint64_t ho_handle,
                                          int err) noexcept nogil:
    """The transport connected (err 0, tc the connection) or failed (err < 0)
    for half-open ho_handle. The half-open stays until the transport calls
    gn_session_half_open_delete_notify. Returns 0 when the app was told;
    -1 when it was not or no session was made for a connection (the
    transport drops it): out of memory, or the app closed the half-open
    meanwhile (it is not told then)."""
    cdef gn_session_t* ho = gn_session_from_handle(sm, ho_handle)
    cdef gn_session_t* s
    cdef gn_app_wrk_t* wrk
    cdef uint32_t opaque
    if ho == NULL or not (ho.flags & GN_SESSION_F_HALF_OPEN):
        return -1
    _set_state(ho, GN_SESSION_STATE_TRANSPORT_CLOSED)
    opaque = ho.opaque
    wrk = gn_app_wrk_get_if_valid(sm, ho.app_wrk_index)
    if wrk == NULL or ho.flags & GN_SESSION_F_APP_CLOSED:
        return -1
    if err != 0 or tc == NULL:
        return _connect_event(sm, wrk, GN_NO_HANDLE, err if err != 0 else -1, opaque)
    s = gn_session_alloc(sm, tc.thread_index)
    if s == NULL:
        _connect_event(sm, wrk, GN_NO_HANDLE, -12, opaque)      # ENOMEM
        return -1
    _set_state(s, GN_SESSION_STATE_CONNECTING)
    s.proto = tc.proto
    s.connection_index = tc.c_index
    s.app_wrk_index = wrk.wrk_index
    s.opaque = opaque
    tc.s_index = s.session_index
    if gn_session_alloc_fifos(sm, s, wrk) != 0:
        gn_session_free(sm, s)
        _connect_event(sm, wrk, GN_NO_HANDLE, -12, opaque)
        return -1
    _set_state(s, GN_SESSION_STATE_READY)
    gn_session_lookup_add(sm, tc, gn_session_handle(s))
    if _connect_event(sm, wrk, gn_session_handle(s), 0, opaque) != 0:
        gn_session_lookup_del(sm, s)
        gn_session_cleanup(sm, s)                # no cleanup notification
        return -1
    return 0


cdef int _connect_event(gn_session_main_t* sm, gn_app_wrk_t* wrk, uint64_t handle, int err, uint32_t opaque) noexcept nogil:
    return gn_app_wrk_connect_event(sm, wrk.wrk_index, handle, err, opaque)


cdef int gn_app_wrk_connect_event(gn_session_main_t* sm, uint32_t wrk_index, uint64_t handle, int err,
                                  uint32_t opaque) noexcept nogil:
    """A CONNECTED event (err 0 and the new session, or err < 0 and
    GN_NO_HANDLE) carrying the app's opaque."""
    cdef gn_app_wrk_t* wrk
    if gn_app_wrk_add_event(sm, wrk_index, GN_EVT_CONNECTED, err, handle) != 0:
        return -1
    wrk = &sm.wrks[wrk_index]
    wrk.events[wrk.n_events - 1].opaque = opaque
    return 0


cdef void gn_session_half_open_delete_notify(gn_session_main_t* sm, uint64_t ho_handle) noexcept nogil:
    cdef gn_session_t* ho = gn_session_from_handle(sm, ho_handle)
    if ho != NULL and (ho.flags & GN_SESSION_F_HALF_OPEN):
        gn_session_free(sm, ho)


cdef void gn_session_transport_closing_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil:
    cdef gn_session_t* s = gn_session_get_if_valid(sm, tc.s_index, tc.thread_index)
    if s == NULL or s.state >= GN_SESSION_STATE_TRANSPORT_CLOSING:
        return
    if s.state == GN_SESSION_STATE_ACCEPTING:
        _set_state(s, GN_SESSION_STATE_TRANSPORT_CLOSING)     # told after the accept reply
        return
    _set_state(s, GN_SESSION_STATE_TRANSPORT_CLOSING)
    gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_DISCONNECTED, 0, gn_session_handle(s))


cdef void gn_session_transport_closed_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil:
    cdef gn_session_t* s = gn_session_get_if_valid(sm, tc.s_index, tc.thread_index)
    if s == NULL or s.state >= GN_SESSION_STATE_TRANSPORT_CLOSED:
        return
    if s.state == GN_SESSION_STATE_READY:
        # the app never closed: a FIN then a RST in close succession
        gn_session_transport_closing_notify(sm, tc)
        _drop_tx(s)
        _set_state(s, GN_SESSION_STATE_TRANSPORT_CLOSED)
    elif s.state <= GN_SESSION_STATE_CLOSING:
        _set_state(s, GN_SESSION_STATE_TRANSPORT_CLOSED)
    elif s.state == GN_SESSION_STATE_APP_CLOSED:
        _set_state(s, GN_SESSION_STATE_CLOSED)
    gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_TRANSPORT_CLOSED, 0, gn_session_handle(s))


cdef void gn_session_transport_reset_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil:
    cdef gn_session_t* s = gn_session_get_if_valid(sm, tc.s_index, tc.thread_index)
    if s == NULL or s.state >= GN_SESSION_STATE_TRANSPORT_CLOSING:
        return
    if s.state == GN_SESSION_STATE_ACCEPTING:
        _set_state(s, GN_SESSION_STATE_TRANSPORT_CLOSING)
        return
    _set_state(s, GN_SESSION_STATE_TRANSPORT_CLOSING)
    gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_RESET, 0, gn_session_handle(s))


cdef void gn_session_transport_delete_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil:
    cdef gn_session_t* s = gn_session_get_if_valid(sm, tc.s_index, tc.thread_index)
    if s == NULL:
        return
    if s.state == GN_SESSION_STATE_CREATED:
        # the app was never told: free everything silently
        gn_session_lookup_del(sm, s)
        gn_session_cleanup(sm, s)
    elif (s.state == GN_SESSION_STATE_ACCEPTING or s.state == GN_SESSION_STATE_TRANSPORT_CLOSING
          or s.state == GN_SESSION_STATE_CLOSING or s.state == GN_SESSION_STATE_TRANSPORT_CLOSED):
        gn_session_lookup_del(sm, s)
        _set_state(s, GN_SESSION_STATE_TRANSPORT_DELETED)
        _drop_tx(s)
        _cleanup_notify(sm, s, GN_CLEANUP_TRANSPORT)
    elif s.state == GN_SESSION_STATE_APP_CLOSED:
        gn_session_lookup_del(sm, s)
        _set_state(s, GN_SESSION_STATE_TRANSPORT_DELETED)
        _cleanup_notify(sm, s, GN_CLEANUP_TRANSPORT)
        _program_ctrl(sm, s, GN_APP_MSG_CLOSE)
    elif s.state == GN_SESSION_STATE_TRANSPORT_DELETED:
        pass
    else:                                     # CLOSED (and anything unexpected)
        gn_session_lookup_del(sm, s)
        _set_state(s, GN_SESSION_STATE_TRANSPORT_DELETED)
        _cleanup_notify(sm, s, GN_CLEANUP_TRANSPORT)
        _cleanup_notify(sm, s, GN_CLEANUP_SESSION)


# --- the state machine: app -> session -----------------------------------------------

cdef void gn_session_close(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    if s.flags & GN_SESSION_F_APP_CLOSED:
        return
    s.flags |= GN_SESSION_F_APP_CLOSED
    if s.flags & GN_SESSION_F_HALF_OPEN:
        return                                   # abandoned: the connect's outcome frees it, unannounced
    if s.state >= GN_SESSION_STATE_CLOSING:
        if s.state == GN_SESSION_STATE_TRANSPORT_CLOSED or s.state == GN_SESSION_STATE_TRANSPORT_DELETED:
            _program_ctrl(sm, s, GN_APP_MSG_CLOSE)
        return
    if s.tx_fifo != NULL:
        gn_fifo_clear_deq_ntf(s.tx_fifo)
    _set_state(s, GN_SESSION_STATE_CLOSING)
    _program_ctrl(sm, s, GN_APP_MSG_CLOSE)


cdef void gn_session_reset(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    if s.flags & GN_SESSION_F_APP_CLOSED:
        return
    s.flags |= GN_SESSION_F_APP_CLOSED
    if s.flags & GN_SESSION_F_HALF_OPEN:
        return                                   # as close: nothing to reset yet
    _drop_tx(s)
    if s.state >= GN_SESSION_STATE_CLOSING:
        if s.state == GN_SESSION_STATE_TRANSPORT_CLOSED or s.state == GN_SESSION_STATE_TRANSPORT_DELETED:
            _program_ctrl(sm, s, GN_APP_MSG_RESET)
        return
    if s.tx_fifo != NULL:
        gn_fifo_clear_deq_ntf(s.tx_fifo)
    _set_state(s, GN_SESSION_STATE_CLOSING)
    _program_ctrl(sm, s, GN_APP_MSG_RESET)


cdef void gn_session_shutdown(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The app half-closes (see the module docstring): ignored for a
    listener, a half-open, a session its app closed or shut already, and
    one the transport has closed (nothing is left to end)."""
    if s.flags & (GN_SESSION_F_APP_CLOSED | GN_SESSION_F_APP_SHUT_WR | GN_SESSION_F_HALF_OPEN
                  | GN_SESSION_F_LISTENER):
        return
    if s.state != GN_SESSION_STATE_READY and s.state != GN_SESSION_STATE_TRANSPORT_CLOSING:
        return
    s.flags |= GN_SESSION_F_APP_SHUT_WR
    _program_ctrl(sm, s, GN_APP_MSG_SHUTDOWN)


cdef void _transport_shutdown(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The programmed shutdown: the transport's, unless the app closed (or
    the transport went) meanwhile; a transport without one has nothing to
    tell its peer (UDP)."""
    cdef gn_transport_vft_t* tp = &sm.transports[s.proto]
    if s.flags & GN_SESSION_F_APP_CLOSED or s.state > GN_SESSION_STATE_TRANSPORT_CLOSING:
        return
    if tp.shutdown != NULL:
        tp.shutdown(tp.ctx, s.connection_index, s.thread_index)


cdef void gn_session_accept_reply(gn_session_main_t* sm, gn_session_t* s, int retval) noexcept nogil:
    """The app accepted (retval 0) or refused an ACCEPTED session."""
    if retval != 0:
        gn_session_reset(sm, s)
        return
    if s.state == GN_SESSION_STATE_ACCEPTING:
        _set_state(s, GN_SESSION_STATE_READY)
    elif s.state == GN_SESSION_STATE_TRANSPORT_CLOSING:
        # the transport closed while the app was deciding: tell it now
        gn_app_wrk_add_event(sm, s.app_wrk_index, GN_EVT_DISCONNECTED, 0, gn_session_handle(s))


cdef void gn_session_detach_app(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The app worker goes: close what is open, let the transport finish,
    free the session when it does (no one is told). A session the app
    closed (or reset) already is only disowned: its programmed close runs
    as for a live app, so what it wrote is still sent (for a cut-through
    session: left in the peer's rx fifo) instead of dropped."""
    cdef gn_transport_vft_t* tp = &sm.transports[s.proto]
    cdef gn_transport_connection_t* tc
    if s.flags & GN_SESSION_F_APP_CLOSED and s.state < GN_SESSION_STATE_TRANSPORT_DELETED:
        s.app_wrk_index = GN_SESSION_INVALID_INDEX
        return
    if s.state < GN_SESSION_STATE_TRANSPORT_CLOSING:
        gn_session_close(sm, s)
    elif s.state < GN_SESSION_STATE_TRANSPORT_DELETED:
        if tp.close != NULL:
            tp.close(tp.ctx, s.connection_index, s.thread_index)
        tc = _session_tc(sm, s)
        gn_session_lookup_del(sm, s)
        if tc != NULL:
            tc.s_index = GN_SESSION_INVALID_INDEX
        _set_state(s, GN_SESSION_STATE_TRANSPORT_DELETED)
        s.app_wrk_index = GN_SESSION_INVALID_INDEX
        _cleanup_notify(sm, s, GN_CLEANUP_SESSION)
        return
    else:
        s.app_wrk_index = GN_SESSION_INVALID_INDEX
        _cleanup_notify(sm, s, GN_CLEANUP_SESSION)
        return
    s.flags |= GN_SESSION_F_APP_CLOSED
    s.app_wrk_index = GN_SESSION_INVALID_INDEX


cdef void _transport_shut(gn_session_main_t* sm, gn_session_t* s, bint reset) noexcept nogil:
    """The programmed close (or reset) of the transport: APP_CLOSED, then the
    transport's close (reset); a session already past it only moves on
    (TRANSPORT_CLOSED -> CLOSED, or cleanup once the transport is deleted)."""
    cdef gn_transport_vft_t* tp = &sm.transports[s.proto]
    if s.state >= GN_SESSION_STATE_APP_CLOSED:
        if s.state == GN_SESSION_STATE_TRANSPORT_CLOSED:
            _set_state(s, GN_SESSION_STATE_CLOSED)
        elif s.state >= GN_SESSION_STATE_TRANSPORT_DELETED and not (s.flags & GN_SESSION_F_HALF_OPEN):
            _cleanup_notify(sm, s, GN_CLEANUP_SESSION)
        return
    _set_state(s, GN_SESSION_STATE_APP_CLOSED)
    if reset and tp.reset != NULL:
        tp.reset(tp.ctx, s.connection_index, s.thread_index)
    elif not reset and tp.close != NULL:
        tp.close(tp.ctx, s.connection_index, s.thread_index)


cdef void gn_session_transport_close(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    _transport_shut(sm, s, False)


cdef void gn_session_transport_reset(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    _transport_shut(sm, s, True)


cdef void gn_session_transport_cleanup(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The transport failed and is closed: free its connection and the session now."""
    cdef gn_transport_vft_t* tp = &sm.transports[s.proto]
    gn_session_lookup_del(sm, s)
    if s.state != GN_SESSION_STATE_TRANSPORT_DELETED and tp.cleanup != NULL:
        tp.cleanup(tp.ctx, s.connection_index, s.thread_index)
    gn_session_cleanup(sm, s)


# --- builtin apps in Python: batches through a callable ----------------------------------

cdef int _segment_full_tramp(void* ctx, gn_app_wrk_t* wrk, uint64_t need) noexcept nogil:
    """The C hook for SessionLayer.set_segment_full_handler."""
    with gil:
        try:
            return 0 if (<object>ctx)(wrk.app_index, wrk.wrk_index, need) else -1
        except BaseException:
            log.exception("the segment manager failed")
            return -1


cdef void _py_wrk_cb(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil:
    with gil:
        try:
            (<object>ctx)((<const char*>msgs)[:n * sizeof(gn_app_msg_t)])
        except BaseException:
            log.exception("builtin app callback of worker %d failed", wrk.wrk_index)


def parse_msgs(data):
    """``[dict]`` from a batch of gn_app_msg_t (64 bytes each)."""
    out = []
    for i in range(0, len(data) - len(data) % 64, 64):
        d = dict(zip(MSG_FIELDS, struct.unpack_from(MSG_FORMAT, data, i)))
        d["event"] = EVENT_NAMES.get(d["type"], d["type"])
        if d["handle"] == GN_NO_HANDLE:
            d["handle"] = None
        out.append(d)
    return out


def ip_str(uint32_t ip):
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


def ip_int(s):
    import ipaddress
    return int(ipaddress.IPv4Address(s))


class SessionError(Exception):
    """A session-layer request was refused (the message says why)."""


cdef class SessionLayer:
    """The session layer of one engine: owns gn_session_main_t.

    Control plane only (Python); the data plane uses ``sm`` through
    session.pxd. Workers, listeners and connects are made by
    graphnet.session.application, which keeps the apps' Python state."""

    def __cinit__(self, uint32_t n_threads=1, uint32_t max_sessions=65536, uint32_t max_workers=1024,
                  uint32_t max_listeners=1024, uint32_t max_events_per_run=4096, engine=None):
        cdef uint32_t t, p
        if not 1 <= n_threads <= GN_SESSION_MAX_THREADS:
            raise ValueError(f"n_threads {n_threads}: 1..{GN_SESSION_MAX_THREADS}")
        self.sm = <gn_session_main_t*>calloc(1, sizeof(gn_session_main_t))
        if self.sm == NULL:
            raise MemoryError()
        self.segments = {}
        self.keep_alive = []
        self.engine = engine
        self.sm.n_threads = n_threads
        self.sm.max_events_per_run = max_events_per_run
        self.sm.queue_node_index = GN_SESSION_INVALID_INDEX
        self.sm.tx_cap = 1
        while self.sm.tx_cap < <uint64_t>max_sessions * n_threads:
            self.sm.tx_cap <<= 1
        self.sm.tx_ring = <uint64_t*>malloc(self.sm.tx_cap * sizeof(uint64_t))
        if self.sm.tx_ring == NULL:
            raise MemoryError()
        for t in range(n_threads):
            self.sm.pools[t].cap = max_sessions
            self.sm.pools[t].items = <gn_session_t*>aligned_alloc(64, max_sessions * sizeof(gn_session_t))
            if self.sm.pools[t].items != NULL:
                memset(self.sm.pools[t].items, 0, max_sessions * sizeof(gn_session_t))
            self.sm.pools[t].free_idx = <uint32_t*>malloc(max_sessions * sizeof(uint32_t))
            if self.sm.pools[t].items == NULL or self.sm.pools[t].free_idx == NULL:
                raise MemoryError()
        for p in range(GN_TRANSPORT_N_PROTOS):
            if _hash_init(&self.sm.conn_table[p], 1024) or _hash_init(&self.sm.listen_table[p], 64):
                raise MemoryError()
        self.sm.cap_wrks = max_workers
        self.sm.wrks = <gn_app_wrk_t*>calloc(max_workers, sizeof(gn_app_wrk_t))
        self.sm.pending_wrks = <uint32_t*>calloc(max_workers, sizeof(uint32_t))
        self.sm.cap_listeners = max_listeners
        self.sm.listeners = <gn_app_listener_t*>calloc(max_listeners, sizeof(gn_app_listener_t))
        if self.sm.wrks == NULL or self.sm.pending_wrks == NULL or self.sm.listeners == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef uint32_t t, p
        if self.sm == NULL:
            return
        for t in range(self.sm.n_threads):
            free(self.sm.pools[t].items)
            free(self.sm.pools[t].free_idx)
            free(self.sm.pools[t].ctrl)
        for p in range(GN_TRANSPORT_N_PROTOS):
            _hash_free(&self.sm.conn_table[p])
            _hash_free(&self.sm.listen_table[p])
        if self.sm.wrks != NULL:
            for t in range(self.sm.cap_wrks):
                free(self.sm.wrks[t].events)
        free(self.sm.wrks)
        free(self.sm.pending_wrks)
        free(self.sm.listeners)
        free(self.sm.tx_ring)
        free(self.sm)
        self.sm = NULL

    def capsule(self):
        return PyCapsule_New(<void*>self.sm, "gn_session_main", NULL)

    def set_input_node(self, main, uint32_t node_index):
        """Raise `node_index`'s interrupt (session-input) on `main` (a
        graphnet.vlib.main.Main) when the first worker becomes pending."""
        self.sm.vm = <void*><size_t>main.address
        self.sm.input_node_index = node_index

    def set_queue_node(self, uint32_t node_index):
        """Raise session-queue's interrupt when tx or control work appears."""
        self.sm.queue_node_index = node_index

    def tx_schedule(self, uint64_t handle):
        gn_session_tx_schedule(self.sm, self._get(handle))

    def tx_ring(self):
        return [self.sm.tx_ring[i & (self.sm.tx_cap - 1)] for i in range(self.sm.tx_head, self.sm.tx_tail)]

    # --- segments and workers --------------------------------------------------------

    def add_segment(self, Segment seg):
        """Register a segment for fifos; returns its index."""
        for i in range(GN_MAX_SEGMENTS):
            if self.sm.segments[i] == NULL:
                seg.index = i
                self.sm.segments[i] = &seg.seg
                self.segments[i] = seg
                return i
        raise SessionError(f"more than {GN_MAX_SEGMENTS} segments")

    def set_segment_full_handler(self, handler):
        """``handler(app_index, wrk_index, bytes_needed) -> bool``: called
        (with the GIL, from the data path) when a worker's segment has no
        room for a session's fifos; it may point the app's workers at
        another segment (set_worker_segment) and return True. None: unset."""
        if handler is None:
            self.sm.segment_full = NULL
            self.sm.segment_full_ctx = NULL
            return
        self.keep_alive.append(handler)
        self.sm.segment_full_ctx = <void*>handler
        self.sm.segment_full = _segment_full_tramp

    def set_worker_segment(self, uint32_t wrk_index, uint32_t segment_index):
        """New sessions of the worker get their fifos from this segment."""
        cdef gn_app_wrk_t* w = gn_app_wrk_get_if_valid(self.sm, wrk_index)
        if w == NULL:
            raise SessionError(f"no app worker {wrk_index}")
        if segment_index >= GN_MAX_SEGMENTS or self.sm.segments[segment_index] == NULL:
            raise SessionError(f"no segment {segment_index}")
        w.segment_index = segment_index

    def del_segment(self, uint32_t index):
        self.sm.segments[index] = NULL
        return self.segments.pop(index, None)

    def add_worker(self, uint32_t app_index, uint32_t wrk_map_index, uint32_t segment_index,
                   uint32_t rx_fifo_size, uint32_t tx_fifo_size, MessageQueue mq=None, callback=None):
        """A C app worker; events go to `mq`, or to `callback(batch bytes)`
        for a builtin Python app, or to a C callback capsule ("gn_wrk_cb")."""
        cdef uint32_t i
        cdef gn_app_wrk_t* w
        if segment_index >= GN_MAX_SEGMENTS or self.sm.segments[segment_index] == NULL:
            raise SessionError(f"no segment {segment_index}")
        for i in range(self.sm.cap_wrks):
            if not self.sm.wrks[i].valid and self.sm.wrks[i].n_events == 0:
                break
        else:
            raise SessionError(f"more than {self.sm.cap_wrks} app workers")
        w = &self.sm.wrks[i]
        free(w.events)
        memset(w, 0, sizeof(gn_app_wrk_t))
        w.wrk_index = i
        w.app_index = app_index
        w.wrk_map_index = wrk_map_index
        w.segment_index = segment_index
        w.rx_fifo_size = rx_fifo_size
        w.tx_fifo_size = tx_fifo_size
        w.mq.efd = -1
        if mq is not None:
            w.mq = (<gn_mq_handle_t*><size_t>mq.handle_address())[0]
            w.mq_offset = mq.offset
        if callback is not None:
            if hasattr(callback, "__call__"):
                w.cb = _py_wrk_cb
                w.cb_ctx = <void*>callback
            else:
                w.cb = <gn_wrk_cb_fn>PyCapsule_GetPointer(callback[0], "gn_wrk_cb")
                w.cb_ctx = PyCapsule_GetPointer(callback[1], NULL) if callback[1] is not None else NULL
            self.keep_alive.append(callback)
        elif mq is None:
            raise SessionError("a worker needs a message queue or a callback")
        w.valid = 1
        return i

    def del_worker(self, uint32_t wrk_index, bint reset=False):
        """The worker goes: its sessions closed (reset if `reset`, as when
        its process vanished), its half-opens cleaned up, its pending events
        dropped. Sessions are freed as their transports finish (run_ctrl)."""
        cdef gn_app_wrk_t* w = gn_app_wrk_get_if_valid(self.sm, wrk_index)
        cdef gn_session_t* s
        cdef gn_transport_vft_t* tp
        cdef uint32_t t, i
        if w == NULL:
            raise SessionError(f"no app worker {wrk_index}")
        for t in range(self.sm.n_threads):
            for i in range(self.sm.pools[t].high):
                s = gn_session_get_if_valid(self.sm, i, t)
                if s == NULL or s.app_wrk_index != wrk_index or (s.flags & GN_SESSION_F_LISTENER):
                    continue
                if s.flags & GN_SESSION_F_HALF_OPEN:
                    tp = &self.sm.transports[s.proto]
                    if tp.cleanup != NULL and s.connection_index != GN_SESSION_INVALID_INDEX \
                            and s.state != GN_SESSION_STATE_TRANSPORT_CLOSED:
                        tp.cleanup(tp.ctx, s.connection_index, GN_SESSION_INVALID_INDEX)
                    gn_session_free(self.sm, s)
                    continue
                if reset and s.state < GN_SESSION_STATE_CLOSING and not (s.flags & GN_SESSION_F_APP_CLOSED):
                    gn_session_reset(self.sm, s)         # the reset runs with the next run_ctrl
                    s.app_wrk_index = GN_SESSION_INVALID_INDEX
                else:
                    gn_session_detach_app(self.sm, s)
        self.sm.n_coalesced += w.n_coalesced        # the layer's total keeps the removed worker's
        w.valid = 0
        w.n_events = 0
        w.cb = NULL
        w.cb_ctx = NULL

    # --- listeners, connects, app requests ----------------------------------------------

    cdef gn_transport_vft_t* _tp(self, uint32_t proto) except NULL:
        if proto >= GN_TRANSPORT_N_PROTOS or not self.sm.transports[proto].registered:
            raise SessionError(f"no transport registered for proto {PROTO_NAMES.get(proto, proto)}")
        return &self.sm.transports[proto]

    def listen(self, uint32_t wrk_index, uint32_t app_index, uint32_t proto, uint32_t ip, uint16_t port,
               uint8_t scope=GN_SCOPE_GLOBAL):
        """Listen on ip:port (ip 0: any) for the worker: through the
        transport (scope global), for cut-through connects of this
        engine's apps (local), or both. The same app listening again with
        another worker shares the listener (new sessions are spread among
        its workers); another app gets SessionError (address in use).
        Returns the listener's handle."""
        cdef bint glob = scope != GN_SCOPE_LOCAL, local = scope != GN_SCOPE_GLOBAL
        cdef gn_transport_vft_t* tp = self._tp(proto) if glob else NULL
        cdef gn_app_wrk_t* w = gn_app_wrk_get_if_valid(self.sm, wrk_index)
        cdef uint64_t h
        cdef gn_session_t* ls
        cdef gn_app_listener_t* al
        cdef gn_endpoint_t ep
        cdef uint32_t i, a
        cdef int r
        if w == NULL:
            raise SessionError(f"no app worker {wrk_index}")
        if proto >= GN_TRANSPORT_N_PROTOS:
            raise SessionError(f"no proto {proto}")
        if self.sm.transports[proto].service == GN_TRANSPORT_SERVICE_DGRAM:
            # A datagram listener reads its datagrams from its own fifo,
            # whoever sends them: it is reached through its transport (the
            # graph delivers to this engine's own addresses), never by a
            # cut-through session, whatever the scope.
            glob, local = True, False
            tp = self._tp(proto)
        h = _hash_get(&self.sm.listen_table[proto], ip, port) if glob else HASH_EMPTY
        if h == HASH_EMPTY and local:
            h = _hash_get(&self.sm.listen_table[GN_TRANSPORT_PROTO_CT], ip, _local_k1(proto, port))
        if h != HASH_EMPTY:
            ls = gn_session_from_handle(self.sm, h)
            al = &self.sm.listeners[ls.al_index]
            if al.app_index != app_index:
                raise SessionError(f"{PROTO_NAMES[proto]} {ip_str(ip)}:{port} is in use by another app")
            for i in range(al.n_wrks):
                if al.wrks[i] == wrk_index:
                    raise SessionError(f"worker {wrk_index} already listens on {ip_str(ip)}:{port}")
            if al.n_wrks == GN_MAX_LISTENER_WRKS:
                raise SessionError(f"more than {GN_MAX_LISTENER_WRKS} workers on one listener")
            al.wrks[al.n_wrks] = wrk_index
            al.n_wrks += 1
            return h
        for a in range(self.sm.cap_listeners):
            if not self.sm.listeners[a].valid:
                break
        else:
            raise SessionError("too many listeners")
        ls = gn_session_alloc(self.sm, 0)
        if ls == NULL:
            raise SessionError("session pool full")
        ls.flags = GN_SESSION_F_LISTENER
        ls.proto = proto
        ls.app_wrk_index = wrk_index
        ls.al_index = a
        _set_state(ls, GN_SESSION_STATE_LISTENING)
        h = gn_session_handle(ls)
        if glob:
            if tp.service == GN_TRANSPORT_SERVICE_DGRAM:
                ls.flags |= GN_SESSION_F_DGRAM
                if gn_session_alloc_fifos(self.sm, ls, w) != 0:
                    gn_session_free(self.sm, ls)
                    raise SessionError("no room for the listener's fifos in the app's segment")
            ep.ip = ip
            ep.port = port
            ep.is_ip4 = 1
            r = tp.listen(tp.ctx, ls.session_index, &ep)
            if r < 0:
                gn_session_cleanup(self.sm, ls)
                raise SessionError(f"{PROTO_NAMES[proto]} transport refused to listen on {ip_str(ip)}:{port} ({r})")
            ls.connection_index = r
            _hash_put(&self.sm.listen_table[proto], ip, port, h)
        if local:
            _hash_put(&self.sm.listen_table[GN_TRANSPORT_PROTO_CT], ip, _local_k1(proto, port), h)
        al = &self.sm.listeners[a]
        memset(al, 0, sizeof(gn_app_listener_t))
        al.valid = 1
        al.app_index = app_index
        al.ls_handle = h
        al.wrks[0] = wrk_index
        al.n_wrks = 1
        al.ip = ip
        al.port = port
        al.proto = proto
        al.scope = scope
        return h

    def unlisten(self, uint64_t handle, uint32_t wrk_index):
        """The worker stops listening; the listener goes with its last worker."""
        cdef gn_session_t* ls = gn_session_from_handle(self.sm, handle)
        cdef gn_app_listener_t* al
        cdef gn_transport_vft_t* tp
        cdef uint32_t i, j = 0
        if ls == NULL or not (ls.flags & GN_SESSION_F_LISTENER):
            raise SessionError(f"no listener with handle {handle:#x}")
        al = &self.sm.listeners[ls.al_index]
        for i in range(al.n_wrks):
            if al.wrks[i] != wrk_index:
                al.wrks[j] = al.wrks[i]
                j += 1
        if j == al.n_wrks:
            raise SessionError(f"worker {wrk_index} does not listen on {handle:#x}")
        al.n_wrks = j
        if j:
            if ls.app_wrk_index == wrk_index:
                ls.app_wrk_index = al.wrks[0]
            return False
        if _hash_get(&self.sm.listen_table[GN_TRANSPORT_PROTO_CT], al.ip, _local_k1(al.proto, al.port)) == handle:
            _hash_del(&self.sm.listen_table[GN_TRANSPORT_PROTO_CT], al.ip, _local_k1(al.proto, al.port))
        if ls.connection_index != GN_SESSION_INVALID_INDEX:
            tp = &self.sm.transports[ls.proto]
            gn_session_lookup_del(self.sm, ls)
            if tp.unlisten != NULL:
                tp.unlisten(tp.ctx, ls.connection_index)
        al.valid = 0
        gn_session_cleanup(self.sm, ls)
        return True

    def connect(self, uint32_t wrk_index, uint32_t proto, uint32_t ip, uint16_t port, uint32_t opaque=0,
                uint32_t lcl_ip=0, uint16_t lcl_port=0, uint8_t scope=GN_SCOPE_GLOBAL):
        """Open a connection for the worker: a half-open session (tracked
        per worker) and the transport's connect; the CONNECTED event
        follows. With local scope, a listener of this engine's apps with
        local scope on ip:port makes it a cut-through session. Returns the
        half-open's handle."""
        cdef gn_transport_vft_t* tp
        cdef gn_session_t* ho
        cdef gn_endpoint_t rmt, lcl
        cdef uint64_t h
        cdef int r
        if gn_app_wrk_get_if_valid(self.sm, wrk_index) == NULL:
            raise SessionError(f"no app worker {wrk_index}")
        if proto >= GN_TRANSPORT_N_PROTOS:
            raise SessionError(f"no proto {proto}")
        if scope != GN_SCOPE_GLOBAL and gn_session_lookup_local_listener4(self.sm, proto, ip, port) != NULL:
            tp = self._tp(GN_TRANSPORT_PROTO_CT)
        elif scope != GN_SCOPE_LOCAL:
            tp = self._tp(proto)
        else:
            raise SessionError(f"connection refused: no local listener on {ip_str(ip)}:{port}")
        ho = gn_session_alloc(self.sm, 0)
        if ho == NULL:
            raise SessionError("session pool full")
        ho.flags = GN_SESSION_F_HALF_OPEN
        ho.proto = proto
        ho.app_wrk_index = wrk_index
        ho.opaque = opaque
        _set_state(ho, GN_SESSION_STATE_CONNECTING)
        h = gn_session_handle(ho)
        rmt.ip = ip
        rmt.port = port
        rmt.is_ip4 = 1
        lcl.ip = lcl_ip
        lcl.port = lcl_port
        lcl.is_ip4 = 1
        r = tp.connect(tp.ctx, &rmt, &lcl, h)
        if r < 0:
            if ho.valid:
                gn_session_free(self.sm, ho)
            raise SessionError(f"{PROTO_NAMES[proto]} connect to {ip_str(ip)}:{port} failed ({r})")
        if ho.valid and (ho.flags & GN_SESSION_F_HALF_OPEN) and ho.connection_index == GN_SESSION_INVALID_INDEX:
            ho.connection_index = r
        return h

    cdef gn_session_t* _get(self, uint64_t handle) except NULL:
        cdef gn_session_t* s = gn_session_from_handle(self.sm, handle)
        if s == NULL:
            raise SessionError(f"no session {handle:#x}")
        return s

    def close(self, uint64_t handle):
        gn_session_close(self.sm, self._get(handle))

    def reset(self, uint64_t handle):
        gn_session_reset(self.sm, self._get(handle))

    def shutdown(self, uint64_t handle):
        """Half-close (the socket module's SHUT_WR): end of stream after the
        tx data; the session still receives."""
        gn_session_shutdown(self.sm, self._get(handle))

    def transport_cleanup(self, uint64_t handle):
        """Free the session and its transport connection now (a transport
        that failed); no notification."""
        gn_session_transport_cleanup(self.sm, self._get(handle))

    def accept_reply(self, uint64_t handle, int retval=0):
        gn_session_accept_reply(self.sm, self._get(handle), retval)

    def run_ctrl(self, uint32_t thread=0):
        return gn_session_run_ctrl(self.sm, thread)

    def flush(self, max_events=None):
        return gn_session_flush(self.sm, self.sm.max_events_per_run if max_events is None else max_events)

    def add_event(self, uint32_t wrk_index, event, uint64_t handle=GN_NO_HANDLE, int32_t arg=0):
        """Queue an event for a worker (listen replies, errors) by name."""
        if gn_app_wrk_add_event(self.sm, wrk_index, EVENTS[event], arg, handle) != 0:
            raise SessionError(f"no app worker {wrk_index}")

    def send_now(self, uint32_t wrk_index, event, uint64_t handle=GN_NO_HANDLE, int32_t arg=0):
        """Deliver one event at once, not through session-input (listen and
        unlisten replies). False if the worker's queue is full."""
        cdef gn_app_wrk_t* w = gn_app_wrk_get_if_valid(self.sm, wrk_index)
        cdef gn_session_event_t e
        cdef gn_app_msg_t m
        if w == NULL:
            raise SessionError(f"no app worker {wrk_index}")
        memset(&e, 0, sizeof(e))
        e.type = EVENTS[event]
        e.arg = arg
        e.handle = handle
        _build_msg(self.sm, w, &e, &m)
        if w.cb != NULL:
            w.cb(w.cb_ctx, w, &m, 1)
            return True
        return gn_mq_enqueue_batch(&w.mq, <uint8_t*>&m, sizeof(m), 1) == 1

    # --- views -----------------------------------------------------------------------

    def pending_events(self, uint32_t wrk_index):
        """``[(event name, handle, arg)]`` waiting for session-input."""
        cdef gn_app_wrk_t* w = &self.sm.wrks[wrk_index]
        return [(EVENT_NAMES.get(w.events[i].type, w.events[i].type),
                 None if w.events[i].handle == GN_NO_HANDLE else w.events[i].handle, w.events[i].arg)
                for i in range(w.n_events)]

    def session(self, uint64_t handle):
        """A dict describing the session, or None if there is none."""
        cdef gn_session_t* s = gn_session_from_handle(self.sm, handle)
        cdef gn_transport_connection_t* tc
        if s == NULL:
            return None
        d = {"handle": handle, "thread": s.thread_index, "index": s.session_index,
             "state": STATE_NAMES[s.state] if s.state < GN_SESSION_N_STATES else str(s.state),
             "proto": PROTO_NAMES.get(s.proto, str(s.proto)), "wrk": None if s.app_wrk_index == GN_SESSION_INVALID_INDEX else s.app_wrk_index,
             "flags": [n for f, n in FLAG_NAMES.items() if s.flags & f],
             "rx_fifo": _fifo_offset(self.sm, s.rx_fifo) or None, "tx_fifo": _fifo_offset(self.sm, s.tx_fifo) or None,
             "segment": s.rx_fifo.segment_index if s.rx_fifo != NULL else None,
             "connection": None if s.connection_index == GN_SESSION_INVALID_INDEX else s.connection_index,
             "listener": None if s.listener_handle == GN_NO_HANDLE else s.listener_handle,
             "peer": None if s.peer_handle == GN_NO_HANDLE else s.peer_handle,
             "rx_drops": s.rx_drops, "opaque": s.opaque}
        tc = _session_tc(self.sm, s) if s.state < GN_SESSION_STATE_TRANSPORT_DELETED else NULL
        if tc != NULL:
            d["lcl"] = (ip_str(tc.lcl.ip), tc.lcl.port)
            d["rmt"] = (ip_str(tc.rmt.ip), tc.rmt.port)
        if s.rx_fifo != NULL:
            d["rx_bytes"] = gn_fifo_max_dequeue(s.rx_fifo)
            d["tx_bytes"] = gn_fifo_max_dequeue(s.tx_fifo)
            d["fifo_clamped"] = s.rx_fifo.n_clamped + s.tx_fifo.n_clamped
            d["fifo_tampered"] = ((["rx"] if gn_fifo_tampered(s.rx_fifo) else [])
                                  + (["tx"] if gn_fifo_tampered(s.tx_fifo) else []))
        return d

    def handles(self, thread=None):
        """Handles of the live sessions (of one thread, or all)."""
        cdef uint32_t t, i
        out = []
        for t in range(self.sm.n_threads):
            if thread is not None and t != thread:
                continue
            for i in range(self.sm.pools[t].high):
                if self.sm.pools[t].items[i].valid:
                    out.append((<uint64_t>t << 32) | i)
        return out

    def lookup(self, proto, lcl_ip, uint16_t lcl_port, rmt_ip, uint16_t rmt_port):
        cdef gn_session_t* s = gn_session_lookup4(self.sm, PROTOS.get(proto, proto), ip_int(lcl_ip), lcl_port,
                                                  ip_int(rmt_ip), rmt_port)
        return None if s == NULL else gn_session_handle(s)

    def lookup_listener(self, proto, ip, uint16_t port):
        cdef gn_session_t* s = gn_session_lookup_listener4(self.sm, PROTOS.get(proto, proto), ip_int(ip), port)
        return None if s == NULL else gn_session_handle(s)

    def lookup_local_listener(self, uint32_t proto, uint32_t ip, uint16_t port):
        """The handle of a local-scope listener for a cut-through connect, or None."""
        cdef gn_session_t* s = gn_session_lookup_local_listener4(self.sm, proto, ip, port)
        return None if s == NULL else gn_session_handle(s)

    def listener_workers(self, uint64_t handle):
        cdef gn_session_t* ls = self._get(handle)
        cdef gn_app_listener_t* al = &self.sm.listeners[ls.al_index]
        return [al.wrks[i] for i in range(al.n_wrks)]

    def worker_stats(self, uint32_t wrk_index):
        cdef gn_app_wrk_t* w = &self.sm.wrks[wrk_index]
        return {"valid": bool(w.valid), "app": w.app_index, "wrk_map_index": w.wrk_map_index,
                "pending": w.n_events, "queued": w.n_queued, "coalesced": w.n_coalesced,
                "delivered": w.n_delivered, "full": w.n_full, "stale": w.n_stale, "flushes": w.n_flushes,
                "backoff": bool(w.backoff), "mq_offset": w.mq_offset, "segment": w.segment_index,
                "builtin": w.cb != NULL}

    def stats(self):
        cdef gn_session_main_t* sm = self.sm
        cdef uint64_t coalesced = sm.n_coalesced           # removed workers' and detached sessions'
        cdef uint32_t i
        for i in range(sm.cap_wrks):
            if sm.wrks[i].valid:
                coalesced += sm.wrks[i].n_coalesced
        return {"interrupts": sm.n_interrupts, "flushes": sm.n_flushes, "delivered": sm.n_events_delivered,
                "full_backoffs": sm.n_full_backoffs, "stale": sm.n_stale, "coalesced": coalesced,
                "fifo_alloc_fail": sm.n_fifo_alloc_fail, "accept_fail": sm.n_accept_fail,
                "lost_nomem": sm.n_events_lost_nomem, "buffer_waits": sm.n_buffer_waits,
                "segment_switches": sm.n_segment_switches, "pending_workers": sm.n_pending,
                "fifo_clamped": sm.n_fifo_clamped, "fifo_tampered": sm.n_fifo_tampered,
                "sessions": sum(sm.pools[t].n_live for t in range(sm.n_threads)),
                "ctrl_pending": sum(sm.pools[t].n_ctrl for t in range(sm.n_threads))}

    def fifo(self, uint64_t handle, which):
        """The session's rx or tx fifo as a graphnet.session.fifo.Fifo (on
        the engine's own handle)."""
        cdef gn_session_t* s = self._get(handle)
        cdef gn_fifo_t* f = s.rx_fifo if which == "rx" else s.tx_fifo
        if f == NULL:
            raise SessionError(f"session {handle:#x} has no {which} fifo")
        return gn_fifo_borrow(self.segments[f.segment_index], f)
