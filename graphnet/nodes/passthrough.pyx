"""``passthrough``: hands every packet to its next node (the engine's cost per hop;
the template of tools/new_node). Metadata used: current_length. Set: nothing.
Next nodes: ``next``. Drops: ``empty`` (zero length). Trace: the default record."""
from libc.stdint cimport uint16_t, uint32_t
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_FRAME_SIZE
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.vlib.kit import node

cpdef enum Next:
    NEXT_NEXT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_EMPTY, N_ERROR
ERRORS = (("none", "info", "no error"), ("empty", "error", "zero-length packet"))

cdef uint32_t passthrough_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors
    cdef gn_buffer_t* b
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        nexts[i] = NEXT_NEXT
        if b.current_length == 0:
            gn_buffer_set_error(node, b, ERROR_EMPTY)
            nexts[i] = node.drop_next
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n
PASSTHROUGH_FN = gn_node_fn(passthrough_fn)

def passthrough(name, next_node):
    """A pass-through node `name` feeding `next_node`."""
    return node(name, PASSTHROUGH_FN, nexts=(("next", next_node),), Next=Next, errors=ERRORS, Error=Error, doc=__doc__)

def chain(n, prefix="pass", last="null"):
    """n pass-through nodes prefix-0 -> ... -> last."""
    return tuple(passthrough(f"{prefix}-{i}", f"{prefix}-{i + 1}" if i + 1 < n else last) for i in range(n))

NODES = (passthrough("passthrough", "null"),)
