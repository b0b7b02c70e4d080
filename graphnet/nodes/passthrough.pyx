"""``passthrough``: a node that hands every packet to its next node.

It reads each buffer's metadata (as any real node does), classifies it
into ``nexts[]`` (always arc 0) and enqueues the frame with one
``gn_enqueue_to_next`` call: the minimal honest node, used to measure the
engine's own cost per node hop. Metadata used: current_length. Next nodes:
the one given. Errors: none.
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint16_t, uint32_t
from graphnet.vlib.buffer cimport gn_frame_t
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next
from graphnet.vlib.node import Node


cdef uint32_t passthrough_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef uint16_t nexts[256]
    cdef uint32_t i, n = frame.n_vectors
    for i in range(n):
        # a real node decides per packet; this one only checks the length
        nexts[i] = 0 if gn_main_buffer(vm, frame.buffers[i]).current_length else 0
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


PASSTHROUGH_FN = PyCapsule_New(<void*>passthrough_fn, "gn_node_fn", NULL)


def passthrough(name, next_node):
    """A pass-through node registration named `name` feeding `next_node`."""
    return Node(name, fn=PASSTHROUGH_FN, next_nodes=(next_node,), doc=__doc__.split("\n\n")[0])


def chain(n, prefix="pass", last="null"):
    """n pass-through nodes prefix-0 -> prefix-1 -> ... -> last."""
    return tuple(passthrough(f"{prefix}-{i}", f"{prefix}-{i + 1}" if i + 1 < n else last) for i in range(n))
