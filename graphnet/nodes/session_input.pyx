"""``session-input``: delivers the session layer's events to app workers.

An input node in INTERRUPT mode that never touches a packet. Transports
and the session layer only append events to each app worker's pending list
(an rx event at most once per session until the app reads, however many
packets arrived) and raise this node's interrupt when the first worker
becomes pending. Each run flushes every pending worker's events into its
message queue in batches under one lock (or one call of a builtin app's
callback), at most ``max_events`` per run. Work left because the budget
ran out re-arms the interrupt at once; work left because a worker's queue
was full re-arms it one tick later (back-off), so an app that stops
reading costs the engine nothing while nothing is lost.

Metadata used: none (no buffers). Set: nothing. Next nodes: none.
Counters (error table, info): ``events`` delivered, ``rearmed`` runs
(budget spent), ``queue-full`` back-offs (a worker's queue was full).
``show session-input`` adds the session layer's totals (queued,
coalesced, stale, flushes).

Trace (``trace add session-input <n>``): a buffer-less record per event
about to be flushed (gn_trace_event): event type, session, app worker,
rx/tx fifo levels (graphnet/session/trace.pxd).
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.vlib.buffer cimport gn_frame_t, gn_buffer_t
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_node_increment_error, gn_node_set_interrupt_pending,
                                 gn_node_schedule_interrupt)
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data, gn_trace_fn
from graphnet.session.session cimport gn_session_main_t, gn_session_flush, gn_app_wrk_t, gn_session_from_handle
from graphnet.session.trace cimport gn_session_trace_t, gn_session_trace, gn_session_trace_no_buffer
from graphnet.vlib.kit import node, trace_record

DEFAULT_MAX_EVENTS = 4096

cpdef enum Error:
    ERROR_NONE, ERROR_EVENTS, ERROR_REARMED, ERROR_QUEUE_FULL, N_ERROR

ERRORS = (
    ("none", "info", "no error"),
    ("events", "info", "events delivered to app workers"),
    ("rearmed", "info", "runs that left events (budget) and re-armed at once"),
    ("queue-full", "warn", "runs that left events (app queue full) and re-armed a tick later"),
)

ctypedef struct session_input_t:
    gn_session_main_t* sm
    uint32_t max_events


cdef void _trace_pending(gn_main_t* vm, gn_node_runtime_t* node, gn_session_main_t* sm, uint32_t budget) noexcept nogil:
    """A record per event this run will flush (the flush's order), while tracing lasts."""
    cdef uint32_t i, j
    cdef gn_app_wrk_t* w
    for i in range(sm.n_pending):
        w = &sm.wrks[sm.pending_wrks[i]]
        j = 0
        while j < w.n_events and budget and node.trace_remaining:
            gn_session_trace(vm, node, w.events[j].type, w.events[j].handle,
                             gn_session_from_handle(sm, w.events[j].handle), w.wrk_index, w.events[j].arg)
            j += 1
            budget -= 1


cdef uint32_t session_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef session_input_t* si = <session_input_t*>node.runtime_data
    cdef gn_session_main_t* sm = si.sm
    cdef uint32_t n, i
    cdef bint budget_left = False
    if sm == NULL:
        return 0
    if node.trace_remaining:
        _trace_pending(vm, node, sm, si.max_events)
    n = gn_session_flush(sm, si.max_events)
    gn_node_increment_error(vm, node, ERROR_EVENTS, n)
    if sm.n_pending:
        for i in range(sm.n_pending):
            if not sm.wrks[sm.pending_wrks[i]].backoff:
                budget_left = True
                break
        if budget_left:
            gn_node_set_interrupt_pending(vm, node.node_index)
            gn_node_increment_error(vm, node, ERROR_REARMED, 1)
        else:
            gn_node_schedule_interrupt(vm, node.node_index, 1)
            gn_node_increment_error(vm, node, ERROR_QUEUE_FULL, 1)
    return n


def _format(bytes record, engine=None):
    from graphnet.session.show import format_session_trace
    return format_session_trace(record, engine)


def _setup(engine, node_index):
    cdef session_input_t* si = <session_input_t*>gn_node_data(engine, "session-input")
    from graphnet.session.application import session_manager
    mgr = session_manager(engine)
    si.sm = <gn_session_main_t*>PyCapsule_GetPointer(mgr.layer.capsule(), "gn_session_main")
    si.max_events = getattr(engine, "session_input_max_events", DEFAULT_MAX_EVENTS)
    mgr.layer.set_input_node(engine.main, node_index)
    engine.main.set_interrupt_pending(node_index)


NODES = (
    node("session-input", gn_node_fn(session_input_fn), type="input", state="interrupt", errors=ERRORS, Error=Error,
         data_size=sizeof(session_input_t), setup=_setup,
         trace=trace_record(gn_trace_fn(gn_session_trace_no_buffer), sizeof(gn_session_trace_t), _format), doc=__doc__),
)
FEATURE = "session"
