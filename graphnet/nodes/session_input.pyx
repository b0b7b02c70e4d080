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

Metadata used: none. Next nodes: none. Counters (error table, info):
``events`` delivered, ``rearmed`` runs, ``queue-full`` back-offs.
``show session-input`` adds the session layer's totals (queued,
coalesced, stale, flushes).
"""
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from graphnet.vlib.buffer cimport gn_frame_t
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_node_increment_error, gn_node_set_interrupt_pending,
                                 gn_node_schedule_interrupt)
from graphnet.session.session cimport gn_session_main_t, gn_session_flush, gn_app_wrk_t
from graphnet.vlib.node import Node

DEFAULT_MAX_EVENTS = 4096

cdef enum:
    ERROR_EVENTS = 1
    ERROR_REARMED = 2
    ERROR_QUEUE_FULL = 3

ERRORS = (
    ("none", "info", "no error"),
    ("events", "info", "events delivered to app workers"),
    ("rearmed", "info", "runs that left events (budget) and re-armed at once"),
    ("queue-full", "warn", "runs that left events (app queue full) and re-armed a tick later"),
)

ctypedef struct session_input_t:
    gn_session_main_t* sm
    uint32_t max_events


cdef uint32_t session_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef session_input_t* si = <session_input_t*>node.runtime_data
    cdef gn_session_main_t* sm
    cdef uint32_t n, i
    cdef bint budget_left = False
    if si == NULL or si.sm == NULL:
        return 0
    sm = si.sm
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


cdef class _State:
    cdef session_input_t* si

    def __cinit__(self, layer, uint32_t max_events):
        self.si = <session_input_t*>calloc(1, sizeof(session_input_t))
        if self.si == NULL:
            raise MemoryError()
        self.si.sm = <gn_session_main_t*>PyCapsule_GetPointer(layer.capsule(), "gn_session_main")
        self.si.max_events = max_events

    def __dealloc__(self):
        free(self.si)

    def capsule(self):
        return PyCapsule_New(<void*>self.si, "gn_runtime_data", NULL)


def _setup(engine, node_index):
    from graphnet.session.application import session_manager
    mgr = session_manager(engine)
    st = _State(mgr.layer, getattr(engine, "session_input_max_events", DEFAULT_MAX_EVENTS))
    engine.main.set_runtime_data(node_index, st.capsule())
    mgr.layer.set_input_node(engine.main, node_index)
    mgr.input_state = st                     # kept alive with the manager
    engine.main.set_interrupt_pending(node_index)


NODES = (
    Node("session-input", type="input", state="interrupt",
         fn=PyCapsule_New(<void*>session_input_fn, "gn_node_fn", NULL), errors=ERRORS, setup=_setup,
         doc=__doc__.split("\n\n")[0]),
)
