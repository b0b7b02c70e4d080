# The main loop and the node runtime: the contract every Cython node uses.
#
# A node's dispatch function is
#     uint32_t fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil
# Input nodes get frame == NULL. The function owns the frame's buffers: it
# must hand each one on with gn_enqueue_to_next (or _single_next) or free it.
# It returns the number of vectors it processed. The engine frees the frame.
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, gn_buffer_pool_t, gn_buffer_cache_t, GN_FRAME_SIZE,
                                   gn_buffer_at, gn_buffer_alloc, gn_buffer_alloc_uninit, gn_buffer_free)
from graphnet.vlib.timer cimport gn_timer_wheel_t

cdef enum:
    GN_NODE_INPUT = 0
    GN_NODE_INTERNAL = 1
    GN_NODE_PROCESS = 2

cdef enum:
    GN_NODE_POLLING = 0
    GN_NODE_INTERRUPT = 1
    GN_NODE_DISABLED = 2

cdef enum:
    GN_TIMER_KIND_SHIFT = 28
    GN_TIMER_KIND_INTERRUPT = 1     # user = kind << 28 | node_index
    GN_TRACE_DEFAULT_BYTES = 64
    GN_LAZY_FD_LOOPS = 1024         # polling: process nodes' fds are checked once per this many iterations

cdef extern from *:
    const uint32_t GN_TRACE_EVENT "0x80000000u"   # handle bit: a buffer-less record (gn_trace_event)

cdef struct gn_main_t
cdef struct gn_node_runtime_t

ctypedef uint32_t (*gn_node_fn_t)(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil
# Fills a trace record (at most node.trace_size bytes) for buffer b as this
# node sees it; returns the bytes written.
ctypedef uint16_t (*gn_trace_fn_t)(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b, uint8_t* record) noexcept nogil

cdef struct gn_node_runtime_t:
    gn_node_fn_t fn
    void* runtime_data            # the node instance's own C state
    gn_trace_fn_t trace_fn        # NULL: the default record (metadata + first bytes)
    uint16_t trace_size
    uint32_t node_index
    uint8_t type                  # GN_NODE_INPUT / INTERNAL / PROCESS
    uint8_t state                 # GN_NODE_POLLING / INTERRUPT / DISABLED
    uint8_t adaptive              # input: switch POLLING <-> INTERRUPT by load
    uint8_t has_more_work         # input: set by fn while it has work left
    uint8_t fd_error              # its fd reported EPOLLERR/HUP and was removed
    uint8_t fd_ready              # epoll reported its fd since the node cleared this (the node
                                  # may skip reading an eventfd epoll did not report: no syscall)
    uint16_t n_next
    uint16_t drop_next            # arc to error-drop; always the last arc
    uint32_t* next_node           # arc -> node index
    gn_frame_t** next_frame       # arc -> open frame being filled, or NULL
    uint32_t error_base           # this node's first row in the global error table
    uint32_t n_errors
    uint32_t trace_remaining      # input: packets still to mark for tracing
    uint32_t interrupt_pending    # atomic; see gn_node_set_interrupt_pending
    int fd                        # fd that raises this node's interrupt, or -1
    uint64_t calls
    uint64_t vectors
    uint64_t suspends
    uint64_t clocks
    uint64_t interrupts
    uint64_t mode_switches
    uint32_t window_calls         # adaptive: calls in the current window
    uint64_t window_vectors

ctypedef struct gn_pending_t:
    gn_frame_t* frame
    gn_frame_t** slot             # the arc slot that may still point to frame
    uint32_t node_index

ctypedef struct gn_trace_record_t:
    uint32_t handle               # per traced packet
    uint32_t node_index
    uint64_t time_ns
    uint32_t size                 # bytes of node data after this header
    uint32_t pad

ctypedef struct gn_trace_default_t:
    int16_t current_data
    uint16_t current_length
    uint32_t flags
    uint32_t sw_if_index_rx
    uint32_t sw_if_index_tx
    uint32_t buffer_index
    uint16_t error
    uint16_t n_bytes
    uint8_t bytes[64]

cdef enum:
    GN_TRACE_FILTER_NONE = 0
    GN_TRACE_FILTER_BYTES = 1       # (packet[offset + i] & mask[i]) == value[i] for i < n
    GN_TRACE_FILTER_IP4 = 2         # an IPv4 5-tuple (graphnet.vlib.trace_filter)
    GN_TRACE_FILTER_MAX_BYTES = 64

ctypedef struct gn_trace_filter_t:
    # which packets `trace add` marks (VPP's classify filter): checked by
    # _trace_filter_match against the first buffer from current_data
    uint8_t kind
    uint8_t n_bytes
    uint16_t offset
    uint8_t value[64]
    uint8_t mask[64]
    uint32_t src                  # IPv4: host order, compared under src_mask
    uint32_t src_mask
    uint32_t dst
    uint32_t dst_mask
    int32_t proto                 # -1: any
    int32_t sport                 # -1: any (else needs a UDP/TCP first fragment)
    int32_t dport
    uint64_t seen                 # packets looked at while tracing
    uint64_t matched

ctypedef struct gn_trace_t:
    gn_trace_filter_t filter
    uint8_t* data
    size_t cap
    size_t used
    uint32_t next_handle
    uint64_t n_lost_records       # arena full

cdef struct gn_main_t:
    gn_buffer_pool_t* pool
    gn_buffer_cache_t* cache
    uint8_t* buffer_base
    gn_node_runtime_t* nodes
    uint32_t n_nodes
    uint32_t* input_nodes
    uint32_t n_input_nodes
    uint32_t* process_nodes
    uint32_t n_process_nodes
    uint32_t n_polling            # input nodes in POLLING state
    uint32_t n_fd_interrupt       # input nodes with an fd in INTERRUPT state
    gn_pending_t* pending
    uint32_t n_pending
    uint32_t pending_cap
    gn_frame_t** free_frames
    uint32_t n_free_frames
    uint32_t free_frames_cap
    uint32_t n_frames_alloc
    uint64_t* error_counters
    uint64_t* drop_counters       # per error row: of its count, the packets dropped (gn_count_drops)
    uint32_t n_error_counters
    uint32_t drop_node_index
    uint32_t n_interrupts_pending # atomic
    uint32_t python_work          # atomic: control calls or processes ready
    uint32_t stop_requested       # atomic
    int epoll_fd
    int event_fd
    gn_timer_wheel_t timers
    gn_trace_t trace
    uint16_t current_frame_flags  # flags of the frame being dispatched
    uint64_t loop_count
    uint64_t sleeps
    uint32_t adaptive_up_vectors  # one interrupt call with >= this: go polling
    uint32_t adaptive_down_vectors  # window average below this: go interrupt
    uint32_t adaptive_window      # polling calls per averaging window
    uint32_t bad_next_error       # global error index for invalid next indices
    uint64_t drain_limited        # iterations that stopped at MAX_DISPATCHES_PER_ITERATION
    uint64_t discarded_buffers    # buffers of frames still pending at close (discard_pending)
    uint32_t n_fd_lazy            # of n_fd_interrupt: fds of process nodes (control plane), which
                                  # polling iterations check only every GN_LAZY_FD_LOOPS iterations
    uint64_t busy_poll_ns         # after work, look at the fds without sleeping for this long (0: off)
    uint64_t last_work_ns         # when the loop last did work (busy-poll window start)
    uint64_t busy_polls           # quiet iterations that looked at the fds instead of sleeping

# --- per-frame API for nodes -------------------------------------------------
cdef void gn_enqueue_to_next(gn_main_t* vm, gn_node_runtime_t* node, const uint32_t* bis,
                             const uint16_t* nexts, uint32_t n) noexcept nogil
cdef void gn_enqueue_to_single_next(gn_main_t* vm, gn_node_runtime_t* node, const uint32_t* bis,
                                    uint16_t next_index, uint32_t n) noexcept nogil
cdef void gn_node_set_interrupt_pending(gn_main_t* vm, uint32_t node_index) noexcept nogil
cdef void gn_node_set_interrupt_pending_threadsafe(gn_main_t* vm, uint32_t node_index) noexcept nogil
cdef void gn_node_fd_rearm(gn_main_t* vm, gn_node_runtime_t* rt) noexcept nogil
cdef uint32_t gn_node_schedule_interrupt(gn_main_t* vm, uint32_t node_index, uint64_t delay_ticks) noexcept nogil
cdef uint8_t* gn_trace_add(gn_main_t* vm, gn_node_runtime_t* node, uint32_t handle, uint32_t size) noexcept nogil


cdef inline uint8_t* gn_trace_event(gn_main_t* vm, gn_node_runtime_t* node, uint32_t size) noexcept nogil:
    """A trace record of no packet: one event a buffer-less node handled
    (session-input's app events, session-queue's app messages). While the
    node's ``trace add`` count lasts, each call takes one from it and
    returns where to write ``size`` bytes (the node's formatter reads
    them); NULL when not tracing (one load: free on the hot path) or the
    arena is full. The record's handle has GN_TRACE_EVENT set: ``show
    trace`` lists it as an event of its own, not as a packet."""
    cdef uint32_t handle
    if node.trace_remaining == 0:
        return NULL
    node.trace_remaining -= 1
    handle = GN_TRACE_EVENT | (vm.trace.next_handle & ~GN_TRACE_EVENT)
    vm.trace.next_handle += 1
    return gn_trace_add(vm, node, handle, size)


ctypedef struct gn_next_buffers_t:
    # Output of a node whose inputs may each become several outputs
    # (fragments, reassembled datagrams): collected here and handed on with
    # one gn_enqueue_to_next per frame's worth (GN_FRAME_SIZE) of buffers.
    uint32_t n
    uint32_t bis[GN_FRAME_SIZE]
    uint16_t nexts[GN_FRAME_SIZE]


cdef inline void gn_next_buffers_flush(gn_main_t* vm, gn_node_runtime_t* node, gn_next_buffers_t* out) noexcept nogil:
    if out.n:
        gn_enqueue_to_next(vm, node, out.bis, out.nexts, out.n)
        out.n = 0


cdef inline void gn_next_buffers_put(gn_main_t* vm, gn_node_runtime_t* node, gn_next_buffers_t* out,
                                     uint32_t bi, uint16_t next_index) noexcept nogil:
    if out.n == GN_FRAME_SIZE:
        gn_next_buffers_flush(vm, node, out)
    out.bis[out.n] = bi
    out.nexts[out.n] = next_index
    out.n += 1


cdef inline gn_buffer_t* gn_main_buffer(gn_main_t* vm, uint32_t bi) noexcept nogil:
    return gn_buffer_at(vm.buffer_base, bi)

cdef inline uint32_t gn_main_alloc(gn_main_t* vm, uint32_t* out, uint32_t n) noexcept nogil:
    return gn_buffer_alloc(vm.cache, out, n)

cdef inline uint32_t gn_main_alloc_uninit(gn_main_t* vm, uint32_t* out, uint32_t n) noexcept nogil:
    """gn_buffer_alloc_uninit: the caller writes each buffer's metadata."""
    return gn_buffer_alloc_uninit(vm.cache, out, n)

cdef inline void gn_main_free(gn_main_t* vm, const uint32_t* bis, uint32_t n) noexcept nogil:
    gn_buffer_free(vm.cache, bis, n)

cdef inline void gn_node_increment_error(gn_main_t* vm, gn_node_runtime_t* node, uint32_t code, uint64_t n) noexcept nogil:
    """Count n non-drop events for row `code` of the node's error table."""
    vm.error_counters[node.error_base + code] += n

cdef inline void gn_count_drops(gn_main_t* vm, uint32_t error_index, uint64_t n) noexcept nogil:
    """Count n packets dropped (freed, or consumed into an ICMP error)
    under a global error row: its counter and its drop counter, which
    ``show runtime`` sums per node. error-drop counts every packet it
    frees this way; a node that frees packets itself calls it too."""
    vm.error_counters[error_index] += n
    vm.drop_counters[error_index] += n

cdef inline void gn_buffer_set_error(gn_node_runtime_t* node, gn_buffer_t* b, uint32_t code) noexcept nogil:
    """Mark b with row `code` of the node's table; error-drop counts it."""
    b.error = <uint16_t>(node.error_base + code)


cdef class Main:
    cdef gn_main_t* vm
    cdef readonly object pool          # BufferPool
    cdef readonly object cache         # BufferCache of this loop
    cdef object hook                   # called with the GIL when python_work is set
    cdef list keep_alive
    cdef readonly uint64_t tick_ns
    cdef void _run_hook(self)
    cdef int _init_node(self, uint32_t i, dict spec) except -1
    cdef gn_node_runtime_t* _rt(self, uint32_t node_index) except NULL
