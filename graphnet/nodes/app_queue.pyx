"""``app-queue``: the requests of applications in other processes.

Each worker of an app attached over the attach socket
(graphnet.session.attach) has its own app -> engine message queue in its
app's segment; all of them signal one eventfd, this node's. An input
node, INTERRUPT mode (woken by that eventfd). Each run it clears the
eventfd, then reads every registered queue, at most ``max_msgs`` messages
per queue per run, and acts on them as session-queue does on the engine's
queue (graphnet.session.app_msg: TX, CLOSE, RESET, ACCEPTED_REPLY,
RX_DONE, SHUTDOWN). The queue, not the message, says which worker is talking: the
``wrk_index`` a message carries is overwritten with the queue's own, so a
process can only name its own workers' sessions; anything else is refused
with an ERROR event to the worker and counted (``bad-msg``, and by
reason: ``bad-worker``, ``bad-session``, ``not-owner``, ``bad-type``,
``listener``: a close or reset naming a listener). A queue left
non-empty (budget spent) keeps the node pending.

Queues are registered and removed by the attach server in the loop
thread (``register(mq, wrk_index)`` -> slot, ``unregister(slot)``).

Metadata used: none (no buffers; what the messages make the transports
send leaves through session-queue). Set: nothing. Next nodes: none.
Counters (error table): ``app-msgs`` read (info), ``bad-msg`` refused, and
each reason
(warn: nothing is dropped).

Trace (``trace add app-queue <n>``): a buffer-less record per app message
(type, session, worker, refused), as session-queue's
(graphnet/session/trace.pxd).
"""
import os

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset
from graphnet.vlib.buffer cimport gn_frame_t
from graphnet.includes.linux cimport close
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data, gn_trace_fn
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_node_increment_error, gn_node_set_interrupt_pending
from graphnet.session.types cimport gn_app_msg_t
from graphnet.session.msg_queue cimport (gn_mq_handle_t, gn_mq_dequeue_batch_h, gn_mq_clear_signal, gn_mq_count,
                                         MessageQueue)
from graphnet.session.session cimport gn_session_main_t
from graphnet.session.app_msg cimport gn_app_msg_handle, gn_app_msg_count_refused, GN_APP_MSG_N_E
from graphnet.session.trace cimport gn_session_trace_t, gn_session_trace_no_buffer
from graphnet.vlib.kit import node, trace_record
from graphnet.session.session import APP_MSG_REFUSALS

cpdef enum Error:
    ERROR_NONE, ERROR_APP_MSGS, ERROR_BAD_MSG, ERROR_BAD_WORKER, ERROR_BAD_SESSION, ERROR_NOT_OWNER, ERROR_BAD_TYPE,
    ERROR_LISTENER, N_ERROR

cdef enum:
    MSG_BATCH = 64
    MAX_QUEUES = 1024

ERRORS = (
    ("none", "info", "no error"),
    ("app-msgs", "info", "messages read from the queues of apps in other processes"),
    ("bad-msg", "warn", "app messages refused (all reasons: the rows below)"),
) + APP_MSG_REFUSALS

ctypedef struct app_queue_slot_t:
    gn_mq_handle_t mq                  # in the app's segment, with the geometry checked at open
    uint32_t wrk_index
    uint32_t valid

ctypedef struct app_queue_t:
    gn_session_main_t* sm
    gn_mq_handle_t sig                 # mq NULL; efd: the eventfd every app queue signals
    app_queue_slot_t slots[MAX_QUEUES]
    uint32_t high                      # slots below this may be valid
    uint32_t max_msgs                  # per queue per run


cdef uint32_t _read_slot(gn_main_t* vm, gn_node_runtime_t* node, app_queue_t* q, uint32_t i, uint32_t limit,
                         uint32_t* bad, uint32_t* refused) noexcept nogil:
    """Act on up to about `limit` messages of slot i's queue (whole batches),
    each as its worker's whatever wrk_index it carries; refusals add to
    *bad and refused[reason]. vm/node NULL: not from a node run (no trace).
    Returns the messages read."""
    cdef gn_app_msg_t msgs[MSG_BATCH]
    cdef uint32_t j, k, n = 0, why
    while n < limit:
        k = gn_mq_dequeue_batch_h(&q.slots[i].mq, <uint8_t*>msgs, sizeof(gn_app_msg_t), MSG_BATCH)
        if k == 0:
            break
        for j in range(k):
            msgs[j].wrk_index = q.slots[i].wrk_index
            why = gn_app_msg_handle(vm, node, q.sm, &msgs[j])
            if why:
                bad[0] += 1
                refused[why] += 1
        n += k
    return n


cdef uint32_t app_queue_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef app_queue_t* q = <app_queue_t*>node.runtime_data
    cdef uint32_t i, total = 0, bad = 0
    cdef uint32_t refused[GN_APP_MSG_N_E]
    cdef bint more = False
    if q == NULL or q.sm == NULL:
        return 0
    gn_mq_clear_signal(&q.sig)
    memset(refused, 0, sizeof(refused))
    for i in range(q.high):
        if not q.slots[i].valid:
            continue
        total += _read_slot(vm, node, q, i, q.max_msgs, &bad, refused)
        if gn_mq_count(q.slots[i].mq.mq):
            more = True
    gn_node_increment_error(vm, node, ERROR_APP_MSGS, total)
    gn_node_increment_error(vm, node, ERROR_BAD_MSG, bad)
    gn_app_msg_count_refused(vm, node, ERROR_BAD_WORKER, refused)
    node.has_more_work = more
    if more:
        gn_node_set_interrupt_pending(vm, node.node_index)
    return total


cdef class AppQueues:
    """The control side of the node's state (the engine's NodeData for
    app-queue, kept alive by it): registers queues, owns the eventfd."""
    cdef app_queue_t* q
    cdef dict mqs                      # slot -> MessageQueue (kept alive while registered)
    cdef readonly int efd
    cdef readonly uint64_t drained     # messages acted on as their queue was unregistered
    cdef readonly uint64_t drained_refused

    def __cinit__(self, engine, layer, uint32_t max_msgs=1024):
        self.efd = -1
        self.q = <app_queue_t*>gn_node_data(engine, "app-queue")
        self.q.sm = <gn_session_main_t*>PyCapsule_GetPointer(layer.capsule(), "gn_session_main")
        self.q.max_msgs = max_msgs
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.q.sig.efd = self.efd
        self.q.sig.mq = NULL
        self.mqs = {}

    def __dealloc__(self):
        # libc's close: at interpreter exit the os module may be gone already
        if self.efd >= 0:
            close(self.efd)

    def detach(self):
        """The engine closes (its NodeData goes): no more registering."""
        self.q = NULL
        self.mqs.clear()

    def register(self, MessageQueue mq, uint32_t wrk_index):
        """Read `mq` for worker `wrk_index`; returns its slot."""
        cdef uint32_t i
        if self.q == NULL:
            raise RuntimeError("app-queue: the engine is closed")
        for i in range(MAX_QUEUES):
            if not self.q.slots[i].valid:
                self.q.slots[i].mq = (<gn_mq_handle_t*><size_t>mq.handle_address())[0]
                self.q.slots[i].wrk_index = wrk_index
                self.q.slots[i].valid = 1
                if i >= self.q.high:
                    self.q.high = i + 1
                self.mqs[i] = mq
                return i
        raise RuntimeError(f"more than {MAX_QUEUES} app queues")

    def unregister(self, uint32_t slot):
        """Stop reading the slot's queue. What the worker queued before it
        went is acted on first, as the node would have: a close that its
        process sent just before it exited stays a close (the peer reads
        the last bytes, then EOF) instead of becoming the reset of a
        vanished worker's sessions. At most the queue's capacity is read
        (a process still writing cannot keep this going)."""
        cdef uint32_t n, bad = 0
        cdef uint32_t refused[GN_APP_MSG_N_E]
        memset(refused, 0, sizeof(refused))
        if self.q != NULL and slot < MAX_QUEUES and self.q.slots[slot].valid:
            n = _read_slot(NULL, NULL, self.q, slot, self.q.slots[slot].mq.n_slots, &bad, refused)
            self.drained += n
            self.drained_refused += bad
            self.q.slots[slot].valid = 0
            self.q.slots[slot].mq.mq = NULL
            self.mqs.pop(slot, None)
            while self.q.high and not self.q.slots[self.q.high - 1].valid:
                self.q.high -= 1

    def __len__(self):
        return len(self.mqs)


def _setup(engine, node_index):
    from graphnet.session.application import session_manager
    mgr = session_manager(engine)
    st = AppQueues(engine, mgr.layer)
    engine.node_data["app-queue"].keep = st
    engine.main.register_fd(node_index, st.efd)
    mgr.app_queues = st


def _teardown(engine, node_index):
    from graphnet.session.application import _MANAGERS
    engine.main.unregister_fd(node_index)
    mgr = _MANAGERS.get(engine)
    if mgr is not None and mgr.app_queues is not None:
        mgr.app_queues.detach()
        mgr.app_queues = None


def _format(bytes record, engine=None):
    from graphnet.session.show import format_session_trace
    return format_session_trace(record, engine)


NODES = (
    node("app-queue", gn_node_fn(app_queue_fn), type="input", state="interrupt", errors=ERRORS, Error=Error,
         data_size=sizeof(app_queue_t), setup=_setup, teardown=_teardown,
         trace=trace_record(gn_trace_fn(gn_session_trace_no_buffer), sizeof(gn_session_trace_t), _format),
         doc=__doc__),
)
FEATURE = "session"                # with session-input and session-queue: graphnet.nodes.session_host
