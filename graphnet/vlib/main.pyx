"""The main loop: frames, dispatch, interrupts, adaptive mode, timers, trace.

One ``Main`` is one loop (one thread). Everything a loop mutates per packet
or per frame (node runtimes, open next frames, the pending queue, the frame
free list, timers, counters, the trace arena, its buffer cache) lives in its
``gn_main_t``, so several loops can run side by side over one BufferPool.

An iteration: (1) every input node in POLLING state is called; (2) when fds
are registered and something polls, epoll is checked without blocking; (3)
every input node whose interrupt is pending and whose state is INTERRUPT is
called; pending process nodes are marked ready for Python; (4) pending frames
are dispatched, FIFO (frames enqueued meanwhile are appended and run in the
same iteration), until none is left or MAX_DISPATCHES_PER_ITERATION (4096)
frames have been dispatched; (5) expired timers raise their nodes'
interrupts. Between iterations the Python hook runs control-plane calls and
ready processes. When nothing polls and nothing is pending, the loop sleeps
in epoll until an fd, the wake eventfd or the next timer; but within the
busy-poll window after an iteration that did data-plane work (see
``Main.set_busy_poll``) it looks at the fds without waiting instead.

The drain bound: a graph whose nodes feed each other in a cycle (a packet
answered to ourselves, a node that re-enqueues its own work) would
otherwise keep one iteration going for ever: no timer, no control call, no
input would run again, and the pending queue would grow without end. 4096
dispatches are up to a million packets, a few milliseconds of work: far
above what one iteration of real traffic needs (an input's burst through a
dozen nodes is a dozen dispatches), far below anything a person waiting on
``graphnet ctl`` notices. Frames left over stay pending, in order, and run
first in the next iteration; the loop neither sleeps nor blocks in epoll
while any is pending (fd inputs in interrupt mode are polled without
waiting instead), and ``drain_limited`` in ``loop_stats()`` counts the
iterations that hit the bound. ``Engine.close`` frees the buffers of frames
still pending when the loop stopped (``discard_pending``).

Invariants:
  - every frame in ``pending`` is referenced by exactly one pending entry; an
    arc slot points to a frame only while that frame is pending and not full;
  - after an iteration that did not hit the drain bound ``n_pending == 0``
    and no arc slot is set;
  - one cycle-counter read per dispatch (the end of one is the start of the
    next);
  - interrupt flags may be set from any thread (atomics + the eventfd); all
    other state is touched only by the loop's thread.
"""
import logging
import os
import threading

from cpython.exc cimport PyErr_CheckSignals
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memmove, memset
from graphnet.includes.linux cimport (epoll_create1, epoll_ctl, epoll_wait, epoll_event, eventfd, read, write, close,
                                      EPOLLIN, EPOLLERR, EPOLLHUP, EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL,
                                      EPOLL_CLOEXEC, EFD_NONBLOCK, EFD_CLOEXEC, errno, sched_yield)
from graphnet.includes.platform cimport (gn_clock_cycles, gn_time_ns, gn_thread_cpu_ns, gn_atomic_load_u32,
                                         gn_atomic_store_u32, gn_atomic_exchange_u32, gn_atomic_fetch_add_u32)
from graphnet.includes.byteorder cimport gn_net16, gn_net32
from graphnet.vlib.buffer cimport (BufferPool, BufferCache, gn_buffer_t, gn_frame_t, GN_FRAME_SIZE,
                                   GN_BUFFER_F_TRACED, GN_FRAME_F_TRACE, GN_RX, GN_TX, GN_BUFFER_F_NEXT_PRESENT,
                                   gn_buffer_current, gn_buffer_flush_cache)
from graphnet.vlib.timer cimport (gn_timer_sync, gn_timer_wheel_init, gn_timer_wheel_free, gn_timer_start, gn_timer_stop,
                                  gn_timer_expire, gn_timer_ns_until_next)

log = logging.getLogger("graphnet.main")

NODE_INPUT, NODE_INTERNAL, NODE_PROCESS = GN_NODE_INPUT, GN_NODE_INTERNAL, GN_NODE_PROCESS
STATE_POLLING, STATE_INTERRUPT, STATE_DISABLED = GN_NODE_POLLING, GN_NODE_INTERRUPT, GN_NODE_DISABLED

cdef enum:
    EVENT_FD_TAG = 0xffffffff
    MAX_EPOLL_EVENTS = 64
    MAX_TIMERS_PER_ITERATION = 1024
    MAX_DISPATCHES_PER_ITERATION = 4096     # frames; see "The drain bound" above
    TRACE_ALIGN = 8
    BUSY_POLL_YIELD_EVERY = 8               # busy-poll looks between two sched_yield calls

# The busy-poll window (see Main.set_busy_poll): 50 us is what Linux's
# networking docs recommend for its own net.core.busy_poll.
DEFAULT_BUSY_POLL_US = 50
MAX_BUSY_POLL_US = 100000


# --- frames --------------------------------------------------------------------

cdef inline gn_frame_t* _frame_alloc(gn_main_t* vm) noexcept nogil:
    cdef gn_frame_t* f
    if vm.n_free_frames:
        vm.n_free_frames -= 1
        f = vm.free_frames[vm.n_free_frames]
    else:
        f = <gn_frame_t*>malloc(sizeof(gn_frame_t))
        if f == NULL:
            return NULL
        vm.n_frames_alloc += 1
    f.n_vectors = 0
    f.flags = vm.current_frame_flags & GN_FRAME_F_TRACE
    return f


cdef inline void _frame_free(gn_main_t* vm, gn_frame_t* f) noexcept nogil:
    cdef gn_frame_t** grown
    if vm.n_free_frames == vm.free_frames_cap:
        grown = <gn_frame_t**>realloc(vm.free_frames, (vm.free_frames_cap * 2 + 64) * sizeof(gn_frame_t*))
        if grown == NULL:
            free(f)
            vm.n_frames_alloc -= 1
            return
        vm.free_frames = grown
        vm.free_frames_cap = vm.free_frames_cap * 2 + 64
    vm.free_frames[vm.n_free_frames] = f
    vm.n_free_frames += 1


cdef inline int _pending_push(gn_main_t* vm, gn_frame_t* f, gn_frame_t** slot, uint32_t node_index) noexcept nogil:
    cdef gn_pending_t* grown
    if vm.n_pending == vm.pending_cap:
        grown = <gn_pending_t*>realloc(vm.pending, (vm.pending_cap * 2 + 64) * sizeof(gn_pending_t))
        if grown == NULL:
            return -1
        vm.pending = grown
        vm.pending_cap = vm.pending_cap * 2 + 64
    vm.pending[vm.n_pending].frame = f
    vm.pending[vm.n_pending].slot = slot
    vm.pending[vm.n_pending].node_index = node_index
    vm.n_pending += 1
    return 0


# --- tracing -------------------------------------------------------------------

cdef uint8_t* gn_trace_add(gn_main_t* vm, gn_node_runtime_t* node, uint32_t handle, uint32_t size) noexcept nogil:
    """Append a record for packet `handle` at `node`; returns where the node
    writes its `size` bytes, or NULL when the trace arena is full."""
    cdef size_t need = sizeof(gn_trace_record_t) + ((size + TRACE_ALIGN - 1) & ~(TRACE_ALIGN - 1))
    cdef gn_trace_record_t* r
    if vm.trace.used + need > vm.trace.cap:
        vm.trace.n_lost_records += 1
        return NULL
    r = <gn_trace_record_t*>(vm.trace.data + vm.trace.used)
    r.handle = handle
    r.node_index = node.node_index
    r.time_ns = gn_time_ns()
    r.size = size
    vm.trace.used += need
    return <uint8_t*>(r + 1)


cdef void _trace_buffer(gn_main_t* vm, gn_node_runtime_t* node, uint32_t bi) noexcept nogil:
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint8_t* rec
    cdef gn_trace_default_t* d
    cdef uint16_t written
    if node.trace_fn != NULL:
        rec = gn_trace_add(vm, node, b.trace_handle, node.trace_size)
        if rec != NULL:
            written = node.trace_fn(vm, node, b, rec)
            if written < node.trace_size:
                # the record is the arena's last: give back what it did not use
                # (the walk in trace_records steps by the aligned size)
                (<gn_trace_record_t*>rec - 1).size = written
                vm.trace.used -= (((node.trace_size + TRACE_ALIGN - 1) & ~(TRACE_ALIGN - 1))
                                  - ((written + TRACE_ALIGN - 1) & ~(TRACE_ALIGN - 1)))
        return
    d = <gn_trace_default_t*>gn_trace_add(vm, node, b.trace_handle, sizeof(gn_trace_default_t))
    if d == NULL:
        return
    d.current_data = b.current_data
    d.current_length = b.current_length
    d.flags = b.flags
    d.sw_if_index_rx = b.sw_if_index[GN_RX]
    d.sw_if_index_tx = b.sw_if_index[GN_TX]
    d.buffer_index = bi
    d.error = b.error
    d.n_bytes = b.current_length if b.current_length < GN_TRACE_DEFAULT_BYTES else GN_TRACE_DEFAULT_BYTES
    memcpy(d.bytes, gn_buffer_current(b), d.n_bytes)


cdef void _trace_frame(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* f) noexcept nogil:
    cdef uint32_t i
    for i in range(f.n_vectors):
        if gn_main_buffer(vm, f.buffers[i]).flags & GN_BUFFER_F_TRACED:
            _trace_buffer(vm, node, f.buffers[i])


cdef bint _trace_filter_match(gn_trace_filter_t* f, gn_buffer_t* b) noexcept nogil:
    """Whether b (its first buffer, from current_data) passes the trace
    filter; every read is inside current_length."""
    cdef const uint8_t* p = gn_buffer_current(b)
    cdef uint32_t n = b.current_length, i, l3 = 0, ihl, t
    if f.kind == GN_TRACE_FILTER_BYTES:
        if <uint32_t>f.offset + f.n_bytes > n:
            return False
        for i in range(f.n_bytes):
            if (p[f.offset + i] & f.mask[i]) != f.value[i]:
                return False
        return True
    # IPv4: an Ethernet frame (one VLAN tag skipped) or a packet at its IPv4 header
    if n >= 14 and gn_net16(p + 12) == 0x0800:
        l3 = 14
    elif n >= 18 and gn_net16(p + 12) == 0x8100 and gn_net16(p + 16) == 0x0800:
        l3 = 18
    elif n >= 20 and (p[0] >> 4) == 4:
        l3 = 0
    else:
        return False
    if n < l3 + 20 or (p[l3] >> 4) != 4:
        return False
    ihl = (p[l3] & 0xf) * 4
    if ihl < 20 or (gn_net32(p + l3 + 12) & f.src_mask) != f.src or (gn_net32(p + l3 + 16) & f.dst_mask) != f.dst:
        return False
    if f.proto >= 0 and p[l3 + 9] != f.proto:
        return False
    if f.sport >= 0 or f.dport >= 0:
        t = l3 + ihl
        if (p[l3 + 9] != 6 and p[l3 + 9] != 17) or (gn_net16(p + l3 + 6) & 0x1fff) or n < t + 4:
            return False
        if f.sport >= 0 and gn_net16(p + t) != f.sport:
            return False
        if f.dport >= 0 and gn_net16(p + t + 2) != f.dport:
            return False
    return True


cdef void _trace_mark_input(gn_main_t* vm, gn_node_runtime_t* node, const uint32_t* bis, uint32_t n) noexcept nogil:
    """Mark the first packets an input node enqueues for `trace add` (with a
    trace filter: the first that match it)."""
    cdef uint32_t i
    cdef gn_buffer_t* b
    cdef gn_trace_filter_t* f = &vm.trace.filter
    for i in range(n):
        if node.trace_remaining == 0:
            break
        b = gn_main_buffer(vm, bis[i])
        if f.kind != GN_TRACE_FILTER_NONE:
            f.seen += 1
            if not _trace_filter_match(f, b):
                continue
            f.matched += 1
        b.flags = b.flags | GN_BUFFER_F_TRACED
        b.trace_handle = vm.trace.next_handle
        vm.trace.next_handle += 1
        _trace_buffer(vm, node, bis[i])
        node.trace_remaining -= 1
        vm.current_frame_flags = vm.current_frame_flags | GN_FRAME_F_TRACE


# --- enqueue -------------------------------------------------------------------

cdef void _drop_bad_next(gn_main_t* vm, gn_node_runtime_t* node, const uint32_t* bis, uint32_t n) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        gn_main_buffer(vm, bis[i]).error = <uint16_t>vm.bad_next_error
    _copy_to_arc(vm, node, node.drop_next, bis, n)


cdef void _copy_to_arc(gn_main_t* vm, gn_node_runtime_t* node, uint16_t arc, const uint32_t* bis, uint32_t n) noexcept nogil:
    cdef gn_frame_t** slot = &node.next_frame[arc]
    cdef gn_frame_t* f = slot[0]
    cdef uint32_t room, k
    while n:
        if f == NULL:
            f = _frame_alloc(vm)
            if f == NULL or _pending_push(vm, f, slot, node.next_node[arc]) != 0:
                # Out of memory: nothing can carry these buffers; free them.
                if f != NULL:
                    _frame_free(vm, f)
                gn_count_drops(vm, vm.bad_next_error, n)
                gn_main_free(vm, bis, n)
                return
            slot[0] = f
        f.flags = f.flags | (vm.current_frame_flags & GN_FRAME_F_TRACE)
        room = GN_FRAME_SIZE - f.n_vectors
        k = n if n < room else room
        memcpy(&f.buffers[f.n_vectors], bis, k * sizeof(uint32_t))
        f.n_vectors += k
        bis += k
        n -= k
        if f.n_vectors == GN_FRAME_SIZE:
            slot[0] = NULL           # full: stays pending, the next one is new
            f = NULL


cdef void gn_enqueue_to_next(gn_main_t* vm, gn_node_runtime_t* node, const uint32_t* bis,
                             const uint16_t* nexts, uint32_t n) noexcept nogil:
    """Hand n buffers on, buffer i to arc nexts[i]; runs of equal next
    indices are copied in one piece."""
    cdef uint32_t i = 0, j
    cdef uint16_t nx, differ = 0
    if node.trace_remaining and node.type == GN_NODE_INPUT:
        _trace_mark_input(vm, node, bis, n)
    if n == 0:
        return
    # The common case, every buffer to one arc, found with a loop the
    # compiler vectorises (8 next indices per instruction).
    nx = nexts[0]
    for j in range(n):
        differ |= nexts[j] ^ nx
    if differ == 0:
        if nx < node.n_next:
            _copy_to_arc(vm, node, nx, bis, n)
        else:
            _drop_bad_next(vm, node, bis, n)
        return
    while i < n:
        nx = nexts[i]
        j = i + 1
        while j < n and nexts[j] == nx:
            j += 1
        if nx < node.n_next:
            _copy_to_arc(vm, node, nx, bis + i, j - i)
        else:
            _drop_bad_next(vm, node, bis + i, j - i)
        i = j


cdef void gn_enqueue_to_single_next(gn_main_t* vm, gn_node_runtime_t* node, const uint32_t* bis,
                                    uint16_t next_index, uint32_t n) noexcept nogil:
    """Hand n buffers on, all to one arc."""
    if node.trace_remaining and node.type == GN_NODE_INPUT:
        _trace_mark_input(vm, node, bis, n)
    if next_index < node.n_next:
        _copy_to_arc(vm, node, next_index, bis, n)
    else:
        _drop_bad_next(vm, node, bis, n)


# --- interrupts and timers -----------------------------------------------------

cdef void gn_node_set_interrupt_pending(gn_main_t* vm, uint32_t node_index) noexcept nogil:
    """Raise a node's interrupt from the loop's own thread."""
    gn_atomic_store_u32(&vm.nodes[node_index].interrupt_pending, 1)
    gn_atomic_store_u32(&vm.n_interrupts_pending, 1)


cdef void gn_node_set_interrupt_pending_threadsafe(gn_main_t* vm, uint32_t node_index) noexcept nogil:
    """Raise a node's interrupt from any thread and wake the loop."""
    cdef uint64_t one = 1
    gn_node_set_interrupt_pending(vm, node_index)
    write(vm.event_fd, &one, 8)


cdef uint32_t gn_node_schedule_interrupt(gn_main_t* vm, uint32_t node_index, uint64_t delay_ticks) noexcept nogil:
    """Raise a node's interrupt after delay_ticks ticks; returns the timer
    handle (for gn_timer_stop on vm.timers)."""
    gn_timer_sync(&vm.timers, gn_time_ns())
    return gn_timer_start(&vm.timers, (GN_TIMER_KIND_INTERRUPT << GN_TIMER_KIND_SHIFT) | node_index, delay_ticks)


cdef void gn_node_fd_rearm(gn_main_t* vm, gn_node_runtime_t* rt) noexcept nogil:
    """Put a node's fd back in epoll after the loop took it out on
    EPOLLERR/HUP (``fd_error``), once the node has dealt with the error
    (e.g. read SO_ERROR of a socket whose link went down and up again)."""
    cdef epoll_event ev
    if rt.fd < 0 or not rt.fd_error:
        return
    ev.events = EPOLLIN if rt.state == GN_NODE_INTERRUPT else 0
    ev.data.u32 = rt.node_index
    if epoll_ctl(vm.epoll_fd, EPOLL_CTL_ADD, rt.fd, &ev) != 0:
        return                    # still unusable: stays out, fd_error set
    rt.fd_error = 0
    _fd_count(vm, rt, 1)


cdef inline void _fd_count(gn_main_t* vm, gn_node_runtime_t* rt, int delta) noexcept nogil:
    """A node's fd enters (+1) or leaves (-1) the set the loop waits on in
    interrupt state; a process node's fd is also counted as lazy."""
    if rt.state != GN_NODE_INTERRUPT:
        return
    vm.n_fd_interrupt += delta
    if rt.type == GN_NODE_PROCESS:
        vm.n_fd_lazy += delta


cdef void _fd_set_mode(gn_main_t* vm, gn_node_runtime_t* rt, uint8_t old_state) noexcept nogil:
    """Keep epoll interest and counters in step with a node's new state."""
    cdef epoll_event ev
    if old_state == GN_NODE_POLLING:
        vm.n_polling -= 1
    if rt.state == GN_NODE_POLLING:
        vm.n_polling += 1
    if rt.fd < 0 or rt.fd_error:
        return
    if old_state == GN_NODE_INTERRUPT:
        vm.n_fd_interrupt -= 1
    if rt.state == GN_NODE_INTERRUPT:
        vm.n_fd_interrupt += 1
    ev.events = EPOLLIN if rt.state == GN_NODE_INTERRUPT else 0
    ev.data.u32 = rt.node_index
    epoll_ctl(vm.epoll_fd, EPOLL_CTL_MOD, rt.fd, &ev)


cdef void _set_state(gn_main_t* vm, gn_node_runtime_t* rt, uint8_t state) noexcept nogil:
    cdef uint8_t old = rt.state
    if old == state:
        return
    rt.state = state
    if rt.type == GN_NODE_INPUT:
        _fd_set_mode(vm, rt, old)
        if state == GN_NODE_INTERRUPT:
            # Give it one call in the new mode: it may have work and no fd.
            gn_node_set_interrupt_pending(vm, rt.node_index)


cdef inline void _adaptive_update(gn_main_t* vm, gn_node_runtime_t* rt, uint32_t n) noexcept nogil:
    if rt.state == GN_NODE_INTERRUPT:
        if n >= vm.adaptive_up_vectors:
            _set_state(vm, rt, GN_NODE_POLLING)
            rt.mode_switches += 1
            rt.window_calls = 0
            rt.window_vectors = 0
    elif rt.state == GN_NODE_POLLING:
        rt.window_calls += 1
        rt.window_vectors += n
        if rt.window_calls >= vm.adaptive_window:
            if rt.window_vectors < <uint64_t>vm.adaptive_down_vectors * rt.window_calls:
                _set_state(vm, rt, GN_NODE_INTERRUPT)
                rt.mode_switches += 1
            rt.window_calls = 0
            rt.window_vectors = 0


cdef uint32_t _epoll_poll(gn_main_t* vm, int timeout_ms) noexcept nogil:
    """Wait for fds; raise the interrupts of ready nodes. Returns events."""
    cdef epoll_event evs[MAX_EPOLL_EVENTS]
    cdef epoll_event dummy
    cdef int n, i
    cdef uint32_t tag
    cdef uint64_t value
    cdef gn_node_runtime_t* rt
    n = epoll_wait(vm.epoll_fd, evs, MAX_EPOLL_EVENTS, timeout_ms)
    for i in range(n if n > 0 else 0):
        tag = evs[i].data.u32
        if tag == EVENT_FD_TAG:
            read(vm.event_fd, &value, 8)
            continue
        rt = &vm.nodes[tag]
        if evs[i].events & (EPOLLERR | EPOLLHUP):
            # A dead fd (e.g. its namespace was deleted) would report forever:
            # drop it from epoll and let the node see the error on its call.
            epoll_ctl(vm.epoll_fd, EPOLL_CTL_DEL, rt.fd, &dummy)
            _fd_count(vm, rt, -1)
            rt.fd_error = 1
        rt.fd_ready = 1
        gn_node_set_interrupt_pending(vm, tag)
    return n if n > 0 else 0


# --- dispatch ------------------------------------------------------------------

cdef inline uint32_t _dispatch_input(gn_main_t* vm, gn_node_runtime_t* rt, uint64_t* t) noexcept nogil:
    cdef uint32_t n
    cdef uint64_t t1
    vm.current_frame_flags = 0
    n = rt.fn(vm, rt, NULL)
    t1 = gn_clock_cycles()
    rt.clocks += t1 - t[0]
    t[0] = t1
    rt.calls += 1
    rt.vectors += n
    if rt.adaptive:
        _adaptive_update(vm, rt, n)
    return n


cdef uint64_t _drain_pending(gn_main_t* vm, uint64_t* t) noexcept nogil:
    cdef uint32_t i = 0
    cdef uint32_t n
    cdef uint64_t t1, vectors = 0
    cdef gn_pending_t p
    cdef gn_node_runtime_t* rt
    while i < vm.n_pending and i < MAX_DISPATCHES_PER_ITERATION:
        p = vm.pending[i]            # by value: dispatch may grow the queue
        i += 1
        if p.slot[0] == p.frame:
            p.slot[0] = NULL
        rt = &vm.nodes[p.node_index]
        vm.current_frame_flags = p.frame.flags
        if p.frame.flags & GN_FRAME_F_TRACE:
            _trace_frame(vm, rt, p.frame)
        n = rt.fn(vm, rt, p.frame)
        t1 = gn_clock_cycles()
        rt.clocks += t1 - t[0]
        t[0] = t1
        rt.calls += 1
        rt.vectors += n
        vectors += n
        _frame_free(vm, p.frame)
    if i < vm.n_pending:
        # the bound: the rest stays pending, in order, for the next iteration
        memmove(vm.pending, vm.pending + i, (vm.n_pending - i) * sizeof(gn_pending_t))
        vm.n_pending -= i
        vm.drain_limited += 1
    else:
        vm.n_pending = 0
    return vectors


cdef uint64_t _iteration(gn_main_t* vm) noexcept nogil:
    """One turn of the loop; returns the vectors processed."""
    cdef uint64_t t = gn_clock_cycles()
    cdef uint64_t vectors = 0
    cdef uint32_t k, n
    cdef uint32_t users[MAX_TIMERS_PER_ITERATION]
    cdef gn_node_runtime_t* rt
    for k in range(vm.n_input_nodes):
        rt = &vm.nodes[vm.input_nodes[k]]
        if rt.state == GN_NODE_POLLING:
            vectors += _dispatch_input(vm, rt, &t)
    if vm.n_fd_interrupt and (vm.n_polling or vm.n_pending) and (vm.n_fd_interrupt > vm.n_fd_lazy
                                                             or (vm.loop_count & (GN_LAZY_FD_LOOPS - 1)) == 0):
        # Busy (something polls, or frames were left by the drain bound), so
        # the loop does not sleep in epoll: look at the fds without waiting,
        # every iteration for inputs' fds, now and then when only process
        # nodes (control plane) have one.
        _epoll_poll(vm, 0)
    if gn_atomic_load_u32(&vm.n_interrupts_pending):
        gn_atomic_store_u32(&vm.n_interrupts_pending, 0)
        for k in range(vm.n_input_nodes):
            rt = &vm.nodes[vm.input_nodes[k]]
            if gn_atomic_load_u32(&rt.interrupt_pending) and gn_atomic_exchange_u32(&rt.interrupt_pending, 0):
                rt.interrupts += 1
                if rt.state == GN_NODE_INTERRUPT:
                    vectors += _dispatch_input(vm, rt, &t)
        for k in range(vm.n_process_nodes):
            rt = &vm.nodes[vm.process_nodes[k]]
            if gn_atomic_load_u32(&rt.interrupt_pending):
                gn_atomic_store_u32(&vm.python_work, 1)
    vectors += _drain_pending(vm, &t)
    if vm.timers.n_active:
        n = gn_timer_expire(&vm.timers, gn_time_ns(), users, MAX_TIMERS_PER_ITERATION)
        for k in range(n):
            if (users[k] >> GN_TIMER_KIND_SHIFT) == GN_TIMER_KIND_INTERRUPT:
                gn_node_set_interrupt_pending(vm, users[k] & ((1u << GN_TIMER_KIND_SHIFT) - 1))
    vm.loop_count += 1
    return vectors


cdef bint _input_has_more_work(gn_main_t* vm) noexcept nogil:
    cdef uint32_t k
    for k in range(vm.n_input_nodes):
        if vm.nodes[vm.input_nodes[k]].has_more_work and vm.nodes[vm.input_nodes[k]].state != GN_NODE_DISABLED:
            return True
    return False


cdef uint32_t _python_node_fn(gn_main_t* vm, gn_node_runtime_t* rt, gn_frame_t* frame) noexcept nogil:
    """Trampoline for nodes written in Python: one GIL round trip per frame."""
    with gil:
        return (<object>rt.runtime_data)._dispatch_frame(<size_t>vm, <size_t>rt, <size_t>frame)


cdef class Main:
    """One loop over a graph of node runtimes (see module docstring).

    Built by ``graphnet.vlib.graph``; not meant to be made by hand. ``nodes``
    is a list of dicts with keys: name, type, state, fn (PyCapsule of a
    gn_node_fn_t or None for Python/process nodes), python (object with
    ``_dispatch_frame`` for Python nodes), next_nodes (indices), n_errors,
    trace_fn (capsule or None), trace_size, runtime_data (capsule or None)."""

    def __cinit__(self, BufferPool pool, list nodes, uint32_t n_error_counters, uint32_t drop_node_index,
                  uint32_t bad_next_error, object hook=None, uint64_t tick_ns=1000000,
                  uint32_t timer_slots=4096, size_t trace_bytes=4 << 20):
        cdef gn_main_t* vm
        cdef epoll_event ev
        cdef uint32_t i
        self.pool = pool
        self.cache = pool.new_cache()
        self.hook = hook
        self.keep_alive = []
        self.tick_ns = tick_ns
        vm = self.vm = <gn_main_t*>calloc(1, sizeof(gn_main_t))
        if vm == NULL:
            raise MemoryError()
        vm.epoll_fd = -1
        vm.event_fd = -1
        vm.pool = pool.pool
        vm.cache = (<BufferCache>self.cache).cache
        vm.buffer_base = pool.pool.base
        vm.n_nodes = len(nodes)
        vm.nodes = <gn_node_runtime_t*>calloc(max(1, vm.n_nodes), sizeof(gn_node_runtime_t))
        vm.input_nodes = <uint32_t*>calloc(max(1, vm.n_nodes), sizeof(uint32_t))
        vm.process_nodes = <uint32_t*>calloc(max(1, vm.n_nodes), sizeof(uint32_t))
        vm.n_error_counters = n_error_counters
        vm.error_counters = <uint64_t*>calloc(max(1, n_error_counters), sizeof(uint64_t))
        vm.drop_counters = <uint64_t*>calloc(max(1, n_error_counters), sizeof(uint64_t))
        vm.trace.cap = trace_bytes
        vm.trace.data = <uint8_t*>malloc(trace_bytes)
        if (vm.nodes == NULL or vm.input_nodes == NULL or vm.process_nodes == NULL or vm.error_counters == NULL or vm.drop_counters == NULL
                or vm.trace.data == NULL):
            raise MemoryError()
        vm.drop_node_index = drop_node_index
        vm.bad_next_error = bad_next_error
        vm.adaptive_up_vectors = 32
        vm.adaptive_down_vectors = 4
        vm.adaptive_window = 64
        if gn_timer_wheel_init(&vm.timers, tick_ns, timer_slots, gn_time_ns()) != 0:
            raise ValueError("timer_slots must be a power of two and tick_ns > 0")
        vm.epoll_fd = epoll_create1(EPOLL_CLOEXEC)
        vm.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if vm.epoll_fd < 0 or vm.event_fd < 0:
            raise OSError(errno, os.strerror(errno))
        ev.events = EPOLLIN
        ev.data.u32 = EVENT_FD_TAG
        epoll_ctl(vm.epoll_fd, EPOLL_CTL_ADD, vm.event_fd, &ev)
        for i, spec in enumerate(nodes):
            self._init_node(i, spec)

    cdef int _init_node(self, uint32_t i, dict spec) except -1:
        """Fill runtime i (zeroed) from its spec; lists it as an input or a
        process node."""
        cdef gn_main_t* vm = self.vm
        cdef gn_node_runtime_t* rt = &vm.nodes[i]
        cdef uint32_t j
        rt.node_index = i
        rt.fd = -1
        rt.type = spec["type"]
        rt.state = spec["state"]
        nexts = spec["next_nodes"]
        rt.n_next = len(nexts)
        rt.drop_next = rt.n_next - 1
        rt.next_node = <uint32_t*>calloc(max(1, rt.n_next), sizeof(uint32_t))
        rt.next_frame = <gn_frame_t**>calloc(max(1, rt.n_next), sizeof(gn_frame_t*))
        if rt.next_node == NULL or rt.next_frame == NULL:
            raise MemoryError()
        for j in range(rt.n_next):
            rt.next_node[j] = nexts[j]
        rt.error_base = spec["error_base"]
        rt.n_errors = spec["n_errors"]
        if spec.get("python") is not None:
            self.keep_alive.append(spec["python"])
            rt.fn = _python_node_fn
            rt.runtime_data = <void*>spec["python"]
        elif spec.get("fn") is not None:
            rt.fn = <gn_node_fn_t>_capsule_pointer(spec["fn"], b"gn_node_fn")
        if spec.get("trace_fn") is not None:
            rt.trace_fn = <gn_trace_fn_t>_capsule_pointer(spec["trace_fn"], b"gn_trace_fn")
            rt.trace_size = spec["trace_size"]
        if rt.type == GN_NODE_INPUT:
            vm.input_nodes[vm.n_input_nodes] = i
            vm.n_input_nodes += 1
            if rt.state == GN_NODE_POLLING:
                vm.n_polling += 1
            rt.adaptive = 1 if spec.get("adaptive") else 0
        elif rt.type == GN_NODE_PROCESS:
            vm.process_nodes[vm.n_process_nodes] = i
            vm.n_process_nodes += 1
        if rt.type != GN_NODE_PROCESS and rt.fn == NULL:
            raise ValueError(f"node {spec['name']!r} has no dispatch function")
        return 0

    def add_nodes(self, list specs, uint32_t n_error_counters):
        """Grow the graph at run time (between iterations, in the loop's
        thread): runtimes for the new nodes (indices n_nodes...), and the
        error counters up to n_error_counters. Node runtimes move (realloc):
        nothing may keep a pointer to one across iterations (nodes keep
        indices). Returns the index of the first new node."""
        cdef gn_main_t* vm = self.vm
        cdef uint32_t first = vm.n_nodes, n = vm.n_nodes + len(specs), i
        cdef void* p
        if n_error_counters < vm.n_error_counters:
            raise ValueError("the error table only grows")
        p = realloc(vm.nodes, n * sizeof(gn_node_runtime_t))
        if p == NULL:
            raise MemoryError()
        vm.nodes = <gn_node_runtime_t*>p
        memset(&vm.nodes[first], 0, (n - first) * sizeof(gn_node_runtime_t))
        p = realloc(vm.input_nodes, n * sizeof(uint32_t))
        if p == NULL:
            raise MemoryError()
        vm.input_nodes = <uint32_t*>p
        p = realloc(vm.process_nodes, n * sizeof(uint32_t))
        if p == NULL:
            raise MemoryError()
        vm.process_nodes = <uint32_t*>p
        p = realloc(vm.error_counters, max(1, n_error_counters) * sizeof(uint64_t))
        if p == NULL:
            raise MemoryError()
        vm.error_counters = <uint64_t*>p
        memset(&vm.error_counters[vm.n_error_counters], 0,
               (n_error_counters - vm.n_error_counters) * sizeof(uint64_t))
        p = realloc(vm.drop_counters, max(1, n_error_counters) * sizeof(uint64_t))
        if p == NULL:
            raise MemoryError()
        vm.drop_counters = <uint64_t*>p
        memset(&vm.drop_counters[vm.n_error_counters], 0,
               (n_error_counters - vm.n_error_counters) * sizeof(uint64_t))
        vm.n_error_counters = n_error_counters
        for i in range(first, n):
            vm.n_nodes = i + 1             # so a failure leaves only filled runtimes counted
            self._init_node(i, specs[i - first])
        return first

    def add_next(self, uint32_t node_index, uint32_t target):
        """A new arc from node_index to target, just before its error-drop
        arc (which stays last); returns the new arc's index. Between
        iterations only (no arc slot holds a frame then)."""
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        cdef void* p
        self._rt(target)
        p = realloc(rt.next_node, (rt.n_next + 1) * sizeof(uint32_t))
        if p == NULL:
            raise MemoryError()
        rt.next_node = <uint32_t*>p
        p = realloc(rt.next_frame, (rt.n_next + 1) * sizeof(gn_frame_t*))
        if p == NULL:
            raise MemoryError()
        rt.next_frame = <gn_frame_t**>p
        rt.next_node[rt.n_next] = rt.next_node[rt.n_next - 1]       # error-drop moves up one
        rt.next_frame[rt.n_next] = NULL
        rt.next_node[rt.n_next - 1] = target
        rt.next_frame[rt.n_next - 1] = NULL
        rt.n_next += 1
        rt.drop_next = rt.n_next - 1
        return rt.n_next - 2

    def set_next(self, uint32_t node_index, uint32_t arc, uint32_t target):
        """Point an existing arc of node_index (not its error-drop arc) at
        another node: a node inserted on an arc (fault-inject behind an
        input). Between iterations only (no arc slot holds a frame then)."""
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        self._rt(target)
        if arc >= rt.drop_next:
            raise IndexError(f"node {node_index} has no arc {arc} to move (arcs 0..{rt.drop_next - 1})")
        rt.next_node[arc] = target
        rt.next_frame[arc] = NULL

    def __dealloc__(self):
        cdef uint32_t i
        cdef gn_main_t* vm = self.vm
        if vm == NULL:
            return
        for i in range(vm.n_pending):
            free(vm.pending[i].frame)
        for i in range(vm.n_free_frames):
            free(vm.free_frames[i])
        for i in range(vm.n_nodes):
            free(vm.nodes[i].next_node)
            free(vm.nodes[i].next_frame)
        free(vm.nodes)
        free(vm.input_nodes)
        free(vm.process_nodes)
        free(vm.pending)
        free(vm.free_frames)
        free(vm.error_counters)
        free(vm.drop_counters)
        free(vm.trace.data)
        gn_timer_wheel_free(&vm.timers)
        if vm.epoll_fd >= 0:
            close(vm.epoll_fd)
        if vm.event_fd >= 0:
            close(vm.event_fd)
        free(vm)
        self.vm = NULL

    # --- the loop --------------------------------------------------------------

    def run(self, double seconds=-1.0, bint until_idle=False, double max_sleep=1.0):
        """Run iterations until stop(), until `seconds` pass (< 0: no limit),
        or (until_idle) until an iteration finds no work at all.

        Returns the number of iterations run."""
        cdef gn_main_t* vm = self.vm
        cdef uint64_t start = gn_time_ns(), now, deadline, vectors, wait_ns, loops0 = vm.loop_count
        cdef uint64_t max_sleep_ns = <uint64_t>(max_sleep * 1e9)
        cdef uint64_t sleeps_seen = vm.sleeps, limited_seen = vm.drain_limited
        cdef bint idle, quiet, worked
        cdef int timeout_ms
        # Python runs signal handlers in the main thread only: a loop in
        # another thread (an engine thread) never takes the GIL for them.
        cdef bint check_signals = threading.current_thread() is threading.main_thread()
        deadline = start + <uint64_t>(seconds * 1e9) if seconds >= 0 else <uint64_t>-1
        gn_atomic_store_u32(&vm.stop_requested, 0)
        with nogil:
            while not gn_atomic_load_u32(&vm.stop_requested):
                vectors = _iteration(vm)
                worked = vectors != 0     # the data plane's work, not the hook's
                if gn_atomic_load_u32(&vm.python_work):
                    gn_atomic_store_u32(&vm.python_work, 0)
                    with gil:
                        self._run_hook()
                    vectors += 1      # the hook may have queued work
                if check_signals and ((vm.loop_count & 0xfff) == 0 or vm.sleeps != sleeps_seen
                                      or vm.drain_limited != limited_seen):
                    # Let Python run signal handlers (Ctrl-C) now and then:
                    # after every sleep, every 4096 busy iterations, and
                    # after each iteration cut by the drain bound (those
                    # last milliseconds each).
                    sleeps_seen = vm.sleeps
                    limited_seen = vm.drain_limited
                    with gil:
                        PyErr_CheckSignals()
                now = gn_time_ns()
                if worked:
                    vm.last_work_ns = now
                if now >= deadline:
                    break
                # quiet: nothing to run right now. An input in interrupt
                # mode with more work (has_more_work) has raised its own
                # interrupt or armed a timer for when its work is due, so
                # the loop may sleep; it is idle only when no input has more.
                quiet = (vectors == 0 and vm.n_pending == 0
                         and not gn_atomic_load_u32(&vm.n_interrupts_pending)
                         and not gn_atomic_load_u32(&vm.python_work))
                idle = quiet and not _input_has_more_work(vm)
                if until_idle and idle:
                    break
                if quiet and vm.n_polling == 0 and now - vm.last_work_ns < vm.busy_poll_ns:
                    # the busy-poll window: work was done a moment ago, more
                    # is likely; look at the fds without sleeping (no wakeup
                    # latency, no cross-CPU wakeup) until the window closes,
                    # giving the CPU away between looks to whatever else is
                    # runnable on it (the peer this loop waits for, maybe)
                    vm.busy_polls += 1
                    _epoll_poll(vm, 0)
                    if vm.busy_polls % BUSY_POLL_YIELD_EVERY == 0:
                        sched_yield()
                elif quiet and vm.n_polling == 0:
                    wait_ns = gn_timer_ns_until_next(&vm.timers, now, max_sleep_ns)
                    if deadline - now < wait_ns:
                        wait_ns = deadline - now
                    if wait_ns > 0:
                        timeout_ms = <int>((wait_ns + 999999) // 1000000)
                        vm.sleeps += 1
                        _epoll_poll(vm, timeout_ms)
                    else:
                        _epoll_poll(vm, 0)
        return vm.loop_count - loops0

    cdef void _run_hook(self):
        if self.hook is not None:
            try:
                self.hook()
            except Exception:
                log.exception("control-plane hook failed")
            except BaseException:          # KeyboardInterrupt, SystemExit
                log.warning("stopping the loop: %s raised in the control-plane hook", "interrupt")
                gn_atomic_store_u32(&self.vm.stop_requested, 1)

    def stop(self):
        """Ask the loop to return after the current iteration (any thread)."""
        cdef uint64_t one = 1
        gn_atomic_store_u32(&self.vm.stop_requested, 1)
        write(self.vm.event_fd, &one, 8)

    def wake_python(self):
        """Ask the loop to run the Python hook soon (any thread)."""
        cdef uint64_t one = 1
        gn_atomic_store_u32(&self.vm.python_work, 1)
        write(self.vm.event_fd, &one, 8)

    # --- control plane (call between iterations, from the loop's thread) -------

    def set_state(self, uint32_t node_index, uint32_t state, adaptive=None):
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        if state > GN_NODE_DISABLED:
            raise ValueError(state)
        if adaptive is not None:
            rt.adaptive = 1 if adaptive else 0
            rt.window_calls = 0
            rt.window_vectors = 0
        _set_state(self.vm, rt, state)

    def set_adaptive_thresholds(self, uint32_t up_vectors, uint32_t down_vectors, uint32_t window):
        if window == 0 or down_vectors > up_vectors:
            raise ValueError("need window > 0 and down_vectors <= up_vectors (hysteresis)")
        self.vm.adaptive_up_vectors = up_vectors
        self.vm.adaptive_down_vectors = down_vectors
        self.vm.adaptive_window = window

    def register_fd(self, uint32_t node_index, int fd):
        """The node's interrupt is raised when fd becomes readable."""
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        cdef epoll_event ev
        if rt.fd >= 0:
            raise ValueError("node already has an fd")
        ev.events = EPOLLIN if rt.state == GN_NODE_INTERRUPT else 0
        ev.data.u32 = node_index
        if epoll_ctl(self.vm.epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0:
            raise OSError(errno, os.strerror(errno))
        rt.fd = fd
        rt.fd_error = 0
        _fd_count(self.vm, rt, 1)

    def unregister_fd(self, uint32_t node_index):
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        cdef epoll_event ev
        if rt.fd < 0:
            return
        if not rt.fd_error:
            epoll_ctl(self.vm.epoll_fd, EPOLL_CTL_DEL, rt.fd, &ev)
            _fd_count(self.vm, rt, -1)
        rt.fd = -1
        rt.fd_error = 0

    def rearm_fd(self, uint32_t node_index):
        """Put the node's fd back in epoll after an EPOLLERR/HUP took it out
        (the node dealt with the error); True if it is in epoll now."""
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        gn_node_fd_rearm(self.vm, rt)
        return rt.fd >= 0 and not rt.fd_error

    def set_interrupt_pending(self, uint32_t node_index):
        """Raise a node's interrupt (any thread)."""
        self._rt(node_index)
        gn_node_set_interrupt_pending_threadsafe(self.vm, node_index)

    def take_interrupt(self, uint32_t node_index):
        """Consume a process node's pending interrupt; True if it was set."""
        return bool(gn_atomic_exchange_u32(&self._rt(node_index).interrupt_pending, 0))

    def schedule_interrupt(self, uint32_t node_index, double delay_seconds):
        """Raise a node's interrupt after a delay (a delay <= 0: on the next
        tick); returns the timer handle."""
        cdef uint64_t ticks
        if not delay_seconds > 0:          # negative (or NaN) would wrap to a huge delay
            delay_seconds = 0
        ticks = <uint64_t>(delay_seconds * 1e9 / self.tick_ns + 0.999999)
        self._rt(node_index)
        return gn_node_schedule_interrupt(self.vm, node_index, ticks)

    def cancel_timer(self, uint32_t handle):
        gn_timer_stop(&self.vm.timers, handle)

    def count_suspend(self, uint32_t node_index, uint64_t calls=1, uint64_t suspends=1, uint64_t clocks=0):
        """Process nodes run in Python; the engine books their counters here."""
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        rt.calls += calls
        rt.suspends += suspends
        rt.clocks += clocks

    def trace_add(self, uint32_t node_index, uint32_t n):
        cdef gn_node_runtime_t* rt = self._rt(node_index)
        if rt.type != GN_NODE_INPUT:
            raise ValueError("trace add takes an input node")
        rt.trace_remaining += n

    def set_trace_filter(self, spec):
        """Mark only packets that match (graphnet.vlib.trace_filter
        checks and builds the spec); None removes the filter."""
        cdef gn_trace_filter_t* f = &self.vm.trace.filter
        cdef bytes value, mask
        cdef uint32_t i
        memset(f, 0, sizeof(gn_trace_filter_t))
        if spec is None:
            return
        if spec["kind"] == "bytes":
            value, mask = spec["value"], spec["mask"]
            if not 0 < len(value) == len(mask) <= GN_TRACE_FILTER_MAX_BYTES or not 0 <= spec["offset"] <= 0xffff:
                raise ValueError("a byte filter has 1..64 bytes (and as many mask bytes) at offset 0..65535")
            for i in range(len(value)):
                f.value[i] = value[i] & mask[i]
                f.mask[i] = mask[i]
            f.n_bytes = len(value)
            f.offset = spec["offset"]
            f.kind = GN_TRACE_FILTER_BYTES
        else:
            f.src, f.src_mask = spec["src"]
            f.dst, f.dst_mask = spec["dst"]
            f.src &= f.src_mask
            f.dst &= f.dst_mask
            f.proto, f.sport, f.dport = spec["proto"], spec["sport"], spec["dport"]
            f.kind = GN_TRACE_FILTER_IP4

    def trace_filter_stats(self):
        """(packets looked at, packets that matched) since the filter was set."""
        return self.vm.trace.filter.seen, self.vm.trace.filter.matched

    def clear_trace(self):
        cdef uint32_t i
        self.vm.trace.used = 0
        self.vm.trace.n_lost_records = 0
        for i in range(self.vm.n_nodes):
            self.vm.nodes[i].trace_remaining = 0

    def trace_records(self):
        """[(handle, node_index, time_ns, bytes)] in the order recorded."""
        cdef size_t off = 0
        cdef gn_trace_record_t* r
        out = []
        while off < self.vm.trace.used:
            r = <gn_trace_record_t*>(self.vm.trace.data + off)
            out.append((r.handle, r.node_index, r.time_ns, (<uint8_t*>(r + 1))[:r.size]))
            off += sizeof(gn_trace_record_t) + ((r.size + TRACE_ALIGN - 1) & ~(TRACE_ALIGN - 1))
        return out

    def node_counters(self):
        """[{calls, vectors, suspends, clocks, interrupts, state, adaptive,
        mode_switches, fd, fd_error, trace_remaining}] by node index."""
        cdef uint32_t i
        cdef gn_node_runtime_t* rt
        out = []
        for i in range(self.vm.n_nodes):
            rt = &self.vm.nodes[i]
            out.append({"calls": rt.calls, "vectors": rt.vectors, "suspends": rt.suspends, "clocks": rt.clocks,
                        "interrupts": rt.interrupts, "state": rt.state, "adaptive": bool(rt.adaptive),
                        "mode_switches": rt.mode_switches, "fd": rt.fd, "fd_error": bool(rt.fd_error),
                        "trace_remaining": rt.trace_remaining, "has_more_work": bool(rt.has_more_work)})
        return out

    def clear_runtime(self):
        cdef uint32_t i
        for i in range(self.vm.n_nodes):
            rt = &self.vm.nodes[i]
            rt.calls = rt.vectors = rt.suspends = rt.clocks = rt.interrupts = rt.mode_switches = 0

    def error_counters(self):
        return [self.vm.error_counters[i] for i in range(self.vm.n_error_counters)]

    def drop_counters(self):
        """Per error row, the packets dropped under it (gn_count_drops)."""
        return [self.vm.drop_counters[i] for i in range(self.vm.n_error_counters)]

    def clear_errors(self):
        memset(self.vm.error_counters, 0, self.vm.n_error_counters * sizeof(uint64_t))
        memset(self.vm.drop_counters, 0, self.vm.n_error_counters * sizeof(uint64_t))

    def add_error(self, uint32_t error_index, uint64_t n=1):
        """Count n events against a global error row (Python nodes)."""
        if error_index >= self.vm.n_error_counters:
            raise IndexError(error_index)
        self.vm.error_counters[error_index] += n

    def discard_pending(self):
        """Free the buffers of every pending frame and the frames (the loop
        is stopped: Engine.close). Returns the buffers freed."""
        cdef gn_main_t* vm = self.vm
        cdef uint32_t i
        cdef uint64_t n = 0
        cdef gn_pending_t* p
        for i in range(vm.n_pending):
            p = &vm.pending[i]
            if p.slot[0] == p.frame:
                p.slot[0] = NULL
            gn_main_free(vm, p.frame.buffers, p.frame.n_vectors)
            n += p.frame.n_vectors
            _frame_free(vm, p.frame)
        vm.n_pending = 0
        vm.discarded_buffers += n
        return n

    def loop_stats(self):
        return {"loops": self.vm.loop_count, "sleeps": self.vm.sleeps, "pending_frames": self.vm.n_pending,
                "drain_limited": self.vm.drain_limited, "discarded_at_close": self.vm.discarded_buffers,
                "max_dispatches_per_iteration": MAX_DISPATCHES_PER_ITERATION,
                "frames_allocated": self.vm.n_frames_alloc, "frames_free": self.vm.n_free_frames,
                "timers_active": self.vm.timers.n_active, "trace_bytes": self.vm.trace.used,
                "trace_lost_records": self.vm.trace.n_lost_records,
                "polling_inputs": self.vm.n_polling, "busy_poll_us": self.vm.busy_poll_ns // 1000,
                "busy_polls": self.vm.busy_polls}

    def set_busy_poll(self, microseconds):
        """The busy-poll window: after an iteration that did data-plane
        work, the loop keeps looking at its fds (epoll without waiting,
        giving the CPU away every BUSY_POLL_YIELD_EVERY looks) for this many
        microseconds before it sleeps in epoll. A flow's next packet then
        finds the loop awake: no wakeup latency, no cross-CPU wakeup. CPU is
        spent only while traffic flows (at most the window after each
        burst); an idle engine sleeps as before. 0: off."""
        if not isinstance(microseconds, int) or not 0 <= microseconds <= MAX_BUSY_POLL_US:
            raise ValueError(f"busy-poll window must be 0..{MAX_BUSY_POLL_US} microseconds, not {microseconds!r}")
        self.vm.busy_poll_ns = <uint64_t>microseconds * 1000

    def runtime_data_address(self, uint32_t node_index):
        """A node's runtime_data pointer as an integer (tests, debugging)."""
        return <size_t>self._rt(node_index).runtime_data

    def set_runtime_data(self, uint32_t node_index, capsule):
        """Point a Cython node's runtime_data at its instance state (a
        PyCapsule named 'gn_runtime_data'); the capsule is kept alive."""
        self._rt(node_index).runtime_data = _capsule_pointer(capsule, b"gn_runtime_data")
        self.keep_alive.append(capsule)

    @property
    def address(self):
        """The gn_main_t* as an integer (for Cython modules' factories)."""
        return <size_t>self.vm

    def runtime_address(self, uint32_t node_index):
        return <size_t>self._rt(node_index)

    def flush_buffer_cache(self):
        gn_buffer_flush_cache(self.vm.cache)

    def thread_cpu_ns(self):
        return gn_thread_cpu_ns()

    cdef gn_node_runtime_t* _rt(self, uint32_t node_index) except NULL:
        if node_index >= self.vm.n_nodes:
            raise IndexError(f"no node with index {node_index}")
        return &self.vm.nodes[node_index]


cdef void* _capsule_pointer(object capsule, const char* name) except NULL:
    return PyCapsule_GetPointer(capsule, name)
