"""``passthrough``: hands every packet to its next node; the template of tools/new_node.
Metadata used: current_length. Set: nothing. Next nodes: ``next``. Drops: ``empty``
(zero length). Trace: the default record. ``check=False`` reads no buffer: the
engine's own cost per hop (graphnet bench dispatch)."""
from libc.stdint cimport uint16_t, uint32_t
from graphnet.vlib.buffer cimport gn_frame_t, GN_FRAME_SIZE
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.vlib.kit import node

cpdef enum Next:
    NEXT_NEXT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_EMPTY, N_ERROR
ERRORS = (("none", "info", "no error"), ("empty", "error", "zero-length packet"))

cdef inline uint32_t _pass(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame, bint check) noexcept nogil:
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors
    for i in range(n):
        nexts[i] = NEXT_NEXT
        if check and gn_main_buffer(vm, frame.buffers[i]).current_length == 0:
            gn_buffer_set_error(node, gn_main_buffer(vm, frame.buffers[i]), ERROR_EMPTY)
            nexts[i] = node.drop_next
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n
cdef uint32_t passthrough_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    return _pass(vm, node, frame, True)
cdef uint32_t hop_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    return _pass(vm, node, frame, False)
PASSTHROUGH_FN, HOP_FN = gn_node_fn(passthrough_fn), gn_node_fn(hop_fn)

def passthrough(name, next_node, check=True):        # a pass-through node `name` feeding `next_node`
    return node(name, PASSTHROUGH_FN if check else HOP_FN, nexts=(("next", next_node),), Next=Next, errors=ERRORS,
                Error=Error, doc=__doc__)

def chain(n, prefix="pass", last="null", check=True):   # n pass-through nodes prefix-0 -> ... -> last
    return tuple(passthrough(f"{prefix}-{i}", f"{prefix}-{i + 1}" if i + 1 < n else last, check) for i in range(n))
NODES = (passthrough("passthrough", "null"),)
