"""``error-drop`` and ``null``: where packets end (as VPP's vlib drop.c).

error-drop: counts each buffer under its ``error`` (a global error index set
by the node that dropped it, see gn_buffer_set_error; an index beyond the
table counts as ``bad-next``) and frees it with its chain. When a drop
capture is on it records the frame first: its state holds the engine's
pcap capture hook (graphnet/vlib/pcap_hook.pxd), which graphnet.io.pcap
plugs in with ``set_drop_capture`` when it makes the engine's capture
state; until then it is NULL and nothing is captured. Metadata used:
error. Set: nothing. Next nodes: none. Every node has an implicit last
arc to error-drop.

null: frees every buffer without counting an error; a sink for tests and
benchmarks. Metadata used: none. Set: nothing. Next nodes: none.

Both are in every engine (graphnet.vlib.engine adds them first).
"""
from libc.stdint cimport uint32_t
from graphnet.vlib.buffer cimport gn_frame_t, GN_INVALID_INDEX
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free, gn_count_drops
from graphnet.vlib.pcap_hook cimport gn_pcap_main_t, gn_pcap_capture, GN_PCAP_DROP
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.vlib.kit import node, trace_error

cpdef enum Error:
    ERROR_NONE, ERROR_BAD_NEXT, N_ERROR

ERRORS = (
    ("none", "info", "no error"),
    ("bad-next", "error", "packet sent to an invalid next index or out of frame memory"),
)

ctypedef struct error_drop_t:
    gn_pcap_main_t* pcap          # the drop capture, or NULL


cdef uint32_t error_drop_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef uint32_t i, e
    gn_pcap_capture((<error_drop_t*>node.runtime_data).pcap, vm, frame.buffers, frame.n_vectors, GN_PCAP_DROP,
                    GN_INVALID_INDEX)
    for i in range(frame.n_vectors):
        e = gn_main_buffer(vm, frame.buffers[i]).error
        if e >= vm.n_error_counters:
            e = vm.bad_next_error
        gn_count_drops(vm, e, 1)
    gn_main_free(vm, frame.buffers, frame.n_vectors)
    return frame.n_vectors


cdef uint32_t null_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    gn_main_free(vm, frame.buffers, frame.n_vectors)
    return frame.n_vectors


def set_drop_capture(engine, size_t pcap_main_address):
    """Point error-drop at the engine's gn_pcap_main_t (0: none); the
    capture state must live as long as the engine."""
    (<error_drop_t*>gn_node_data(engine, "error-drop")).pcap = <gn_pcap_main_t*>pcap_main_address


ERROR_DROP_ERRORS = ERRORS          # (the former name)

NODES = (
    node("error-drop", gn_node_fn(error_drop_fn), errors=ERRORS, Error=Error, data_size=sizeof(error_drop_t), trace=trace_error(),
         doc="Counts each packet under its error code and frees it."),
    node("null", gn_node_fn(null_fn), doc="Frees every packet; a sink for tests and benchmarks."),
)
