# The session layer's C core (see session.pyx): per-thread session pools,
# lookup tables, app workers' pending events, the state machine, the
# transport table. Transports cimport this for their up-calls.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from graphnet.session.types cimport *
from graphnet.session.segment cimport gn_segment_t
from graphnet.session.msg_queue cimport gn_mq_handle_t
from graphnet.session.fifo cimport gn_fifo_has_event

cdef enum:
    GN_SCOPE_GLOBAL = 0                # reachable through transports
    GN_SCOPE_LOCAL = 1                 # cut-through only (apps of this engine)
    GN_SCOPE_BOTH = 2

cdef enum:
    GN_MAX_SEGMENTS = 1024
    GN_MAX_LISTENER_WRKS = 64
    GN_MSG_BATCH = 256                 # messages built per worker per batch (stack)

ctypedef struct gn_session_pool_t:
    gn_session_t* items                # cap entries, allocated once: pointers stay valid
    uint32_t* free_idx
    uint32_t n_free
    uint32_t cap
    uint32_t high                      # indices below this have been handed out
    uint32_t n_live
    gn_session_event_t* ctrl           # programmed transport close/reset and cleanups
    uint32_t n_ctrl
    uint32_t cap_ctrl

ctypedef struct gn_app_wrk_t
ctypedef void (*gn_wrk_cb_fn)(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil

ctypedef struct gn_app_wrk_t:
    uint32_t wrk_index
    uint32_t app_index
    uint32_t wrk_map_index             # the worker's number inside its app
    uint8_t valid
    uint8_t pending                    # on the pending-workers list
    uint8_t backoff                    # its queue was full at the last flush
    uint8_t pad
    gn_mq_handle_t mq                  # this process's view of the worker's queue
    uint32_t mq_offset
    uint32_t segment_index             # where its sessions' fifos are allocated
    uint32_t rx_fifo_size
    uint32_t tx_fifo_size
    gn_wrk_cb_fn cb                    # builtin app: batches delivered here, not to mq
    void* cb_ctx
    gn_session_event_t* events         # pending, oldest first
    uint32_t n_events
    uint32_t cap_events
    uint64_t n_queued                  # events appended
    uint64_t n_coalesced               # rx notifications folded into an outstanding event
    uint64_t n_delivered
    uint64_t n_full                    # flushes that left events behind: queue full
    uint64_t n_stale                   # events for sessions freed before the flush
    uint64_t n_flushes

ctypedef struct gn_app_listener_t:
    uint32_t wrks[GN_MAX_LISTENER_WRKS]
    uint32_t n_wrks
    uint32_t rr
    uint64_t ls_handle
    uint32_t app_index
    uint32_t ip                        # the endpoint, for the local (cut-through) table
    uint16_t port
    uint8_t proto
    uint8_t scope                      # GN_SCOPE_*
    uint8_t valid

ctypedef struct gn_hash_t:
    uint64_t* keys                     # 2 words per slot
    uint64_t* vals                     # GN_HASH_EMPTY / GN_HASH_TOMB / a value
    uint32_t cap                       # power of two
    uint32_t n
    uint32_t n_tomb

# A worker's segment had no room for a session's fifos: the segment
# manager (graphnet.session.segment_manager) may point the worker at another
# segment (returns 0) or refuse (-1). Runs with the GIL (control path).
ctypedef int (*gn_segment_full_fn)(void* ctx, gn_app_wrk_t* wrk, uint64_t need) noexcept nogil

ctypedef struct gn_session_main_t:
    gn_session_pool_t pools[GN_SESSION_MAX_THREADS]
    uint32_t n_threads
    gn_hash_t conn_table[GN_TRANSPORT_N_PROTOS]
    gn_hash_t listen_table[GN_TRANSPORT_N_PROTOS]
    gn_transport_vft_t transports[GN_TRANSPORT_N_PROTOS]
    gn_app_wrk_t* wrks
    uint32_t cap_wrks
    gn_app_listener_t* listeners
    uint32_t cap_listeners
    gn_segment_t* segments[GN_MAX_SEGMENTS]
    uint32_t* pending_wrks
    uint32_t n_pending
    void* vm                           # gn_main_t* of the engine, or NULL (unit tests)
    uint32_t input_node_index          # session-input
    uint32_t queue_node_index          # session-queue (GN_SESSION_INVALID_INDEX: none yet)
    uint64_t* tx_ring                  # sessions with tx data to push; each at most once
    uint32_t tx_head
    uint32_t tx_tail
    uint32_t tx_cap                    # a power of two >= all sessions
    uint32_t max_events_per_run
    uint64_t n_interrupts              # session-input interrupts raised
    uint64_t n_flushes
    uint64_t n_events_delivered
    uint64_t n_full_backoffs
    uint64_t n_stale
    uint64_t n_coalesced               # of removed workers and detached sessions (stats adds the live workers')
    uint64_t n_fifo_alloc_fail
    uint64_t n_accept_fail
    uint64_t n_events_lost_nomem       # an event list could not grow (out of memory)
    uint64_t n_buffer_waits            # sessions subscribed to the buffer pool's waiters
    gn_segment_full_fn segment_full    # NULL: a full segment fails the allocation
    void* segment_full_ctx
    uint64_t n_segment_switches        # fifos placed in another segment by the manager
    uint64_t n_fifo_clamped            # junk head/tail seen in the fifos freed so far (gn_fifo_t.n_clamped)
    uint64_t n_fifo_tampered           # fifos freed whose shared header had been rewritten

cdef inline uint64_t gn_session_handle(gn_session_t* s) noexcept nogil:
    return (<uint64_t>s.thread_index << 32) | s.session_index

cdef inline gn_session_t* gn_session_get(gn_session_main_t* sm, uint32_t index, uint32_t thread) noexcept nogil:
    return &sm.pools[thread].items[index]

cdef gn_session_t* gn_session_get_if_valid(gn_session_main_t* sm, uint32_t index, uint32_t thread) noexcept nogil
cdef gn_session_t* gn_session_from_handle(gn_session_main_t* sm, uint64_t handle) noexcept nogil
cdef gn_session_t* gn_session_alloc(gn_session_main_t* sm, uint32_t thread) noexcept nogil
cdef void gn_session_free(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef int gn_session_alloc_fifos(gn_session_main_t* sm, gn_session_t* s, gn_app_wrk_t* wrk) noexcept nogil
cdef void gn_session_free_fifos(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_cleanup(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef inline gn_app_wrk_t* gn_app_wrk_get_if_valid(gn_session_main_t* sm, uint32_t wrk_index) noexcept nogil:
    if wrk_index >= sm.cap_wrks or not sm.wrks[wrk_index].valid:
        return NULL
    return &sm.wrks[wrk_index]

# lookup
cdef int gn_session_lookup_add(gn_session_main_t* sm, gn_transport_connection_t* tc, uint64_t handle) noexcept nogil
cdef void gn_session_lookup_del(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef gn_session_t* gn_session_lookup4(gn_session_main_t* sm, uint8_t proto, uint32_t lcl_ip, uint16_t lcl_port,
                                      uint32_t rmt_ip, uint16_t rmt_port) noexcept nogil
cdef gn_session_t* gn_session_lookup_listener4(gn_session_main_t* sm, uint8_t proto, uint32_t ip, uint16_t port) noexcept nogil
cdef gn_session_t* gn_session_lookup_local_listener4(gn_session_main_t* sm, uint8_t proto, uint32_t ip, uint16_t port) noexcept nogil

# events to app workers
cdef int gn_app_wrk_add_event(gn_session_main_t* sm, uint32_t wrk_index, uint8_t type, int32_t arg,
                              uint64_t handle) noexcept nogil
cdef void gn_session_enqueue_notify_slow(gn_session_main_t* sm, gn_session_t* s) noexcept nogil

cdef inline void gn_session_enqueue_notify(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The transport enqueued rx data: one rx event unless one is
    outstanding (then only counted as coalesced, once: in the worker's
    counter, or the layer's when the worker is gone; a plain load, no
    atomic read-modify-write, on this per-packet path)."""
    cdef gn_app_wrk_t* w
    if gn_fifo_has_event(s.rx_fifo):
        w = &sm.wrks[s.app_wrk_index] if s.app_wrk_index < sm.cap_wrks else NULL
        if w != NULL and w.valid:
            w.n_coalesced += 1
        else:
            sm.n_coalesced += 1
        return
    gn_session_enqueue_notify_slow(sm, s)
cdef void gn_session_dequeue_notify(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef int gn_app_wrk_connect_event(gn_session_main_t* sm, uint32_t wrk_index, uint64_t handle, int err,
                                  uint32_t opaque) noexcept nogil
cdef uint32_t gn_session_flush(gn_session_main_t* sm, uint32_t max_events) noexcept nogil
cdef void gn_session_tx_schedule(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_wait_buffers(gn_session_main_t* sm, gn_session_t* s) noexcept nogil

# transport -> session
cdef int gn_session_stream_accept(gn_session_main_t* sm, gn_transport_connection_t* tc, uint64_t listener_handle,
                                  bint notify) noexcept nogil
cdef int gn_session_stream_accept_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil
cdef int gn_session_stream_connect_notify(gn_session_main_t* sm, gn_transport_connection_t* tc, uint64_t ho_handle,
                                          int err) noexcept nogil
cdef void gn_session_half_open_delete_notify(gn_session_main_t* sm, uint64_t ho_handle) noexcept nogil
cdef void gn_session_transport_closing_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil
cdef void gn_session_transport_closed_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil
cdef void gn_session_transport_reset_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil
cdef void gn_session_transport_delete_notify(gn_session_main_t* sm, gn_transport_connection_t* tc) noexcept nogil

# app -> session
cdef void gn_session_close(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_reset(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_shutdown(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_accept_reply(gn_session_main_t* sm, gn_session_t* s, int retval) noexcept nogil
cdef void gn_session_detach_app(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_transport_close(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_transport_reset(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef void gn_session_transport_cleanup(gn_session_main_t* sm, gn_session_t* s) noexcept nogil
cdef uint32_t gn_session_run_ctrl(gn_session_main_t* sm, uint32_t thread) noexcept nogil


cdef class SessionLayer:
    cdef gn_session_main_t* sm
    cdef readonly dict segments        # index -> Segment (kept alive)
    cdef readonly list keep_alive
    cdef readonly object engine
    cdef gn_transport_vft_t* _tp(self, uint32_t proto) except NULL
    cdef gn_session_t* _get(self, uint64_t handle) except NULL
