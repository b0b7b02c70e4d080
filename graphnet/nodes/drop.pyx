"""``error-drop`` and ``null``: where packets end.

error-drop: counts each buffer under its ``error`` (a global error index set
by the node that dropped it, see gn_buffer_set_error) and frees it with its
chain; when a pcap drop capture is on (graphnet.io.pcap) it records the
frame first (its runtime_data is the engine's gn_pcap_main_t). Metadata
used: error. Next nodes: none. Every node has an implicit last arc to
error-drop.

null: frees every buffer without counting an error; a sink for tests and
benchmarks. Metadata used: none. Next nodes: none.
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint32_t
from graphnet.vlib.buffer cimport gn_frame_t
from graphnet.vlib.buffer cimport GN_INVALID_INDEX
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free
from graphnet.io.pcap cimport gn_pcap_main_t, gn_pcap_capture, GN_PCAP_DROP
from graphnet.vlib.node import Node


cdef uint32_t error_drop_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef uint32_t i, e
    gn_pcap_capture(<gn_pcap_main_t*>node.runtime_data, vm, frame.buffers, frame.n_vectors, GN_PCAP_DROP,
                    GN_INVALID_INDEX)
    for i in range(frame.n_vectors):
        e = gn_main_buffer(vm, frame.buffers[i]).error
        if e >= vm.n_error_counters:
            e = vm.bad_next_error
        vm.error_counters[e] += 1
    gn_main_free(vm, frame.buffers, frame.n_vectors)
    return frame.n_vectors


cdef uint32_t null_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    gn_main_free(vm, frame.buffers, frame.n_vectors)
    return frame.n_vectors


ERROR_DROP_ERRORS = (
    ("none", "info", "no error"),
    ("bad-next", "error", "packet sent to an invalid next index or out of frame memory"),
)

def _error_drop_setup(engine, node_index):
    """Point error-drop at the engine's pcap capture state (drop capture)."""
    from graphnet.io.pcap import pcap_main_capsule
    engine.main.set_runtime_data(node_index, pcap_main_capsule(engine))


NODES = (
    Node("error-drop", fn=PyCapsule_New(<void*>error_drop_fn, "gn_node_fn", NULL), errors=ERROR_DROP_ERRORS,
         setup=_error_drop_setup,
         doc="Counts each packet under its error code and frees it."),
    Node("null", fn=PyCapsule_New(<void*>null_fn, "gn_node_fn", NULL),
         doc="Frees every packet; a sink for tests and benchmarks."),
)
