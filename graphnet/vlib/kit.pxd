# The node kit's C side: capsules for a node's functions, its per-engine C
# state (NodeData) and the shared "interface + first bytes" trace record.
# See graphnet/vlib/kit.pyx for the whole anatomy of a node.
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from graphnet.vlib.main cimport gn_node_fn_t, gn_trace_fn_t


cdef class NodeData:
    """One node's zeroed C state (``Node.data_size`` bytes), made by the
    engine before the node's setup runs and pointed to by its
    runtime_data; freed with the engine. ``keep`` holds the Python objects
    whose C memory the state points into (a FIB, a table)."""
    cdef void* data
    cdef readonly size_t size
    cdef public object keep


cdef inline object gn_node_fn(gn_node_fn_t fn):
    """The capsule of a dispatch function, for ``node(..., fn=...)``."""
    return PyCapsule_New(<void*>fn, "gn_node_fn", NULL)


cdef inline object gn_trace_fn(gn_trace_fn_t fn):
    """The capsule of a trace function, for ``trace_record(...)``."""
    return PyCapsule_New(<void*>fn, "gn_trace_fn", NULL)


cdef inline void* gn_node_data(object engine, object name) except NULL:
    """The C state of node ``name`` in ``engine`` (its ``data_size`` bytes)."""
    return (<NodeData>engine.node_data[name]).data


# The shared trace record: an interface and the first bytes of the packet
# from current_data, packed as "<IH" + bytes (sw_if_index, n_bytes, data).
# gn_trace_rx_bytes_fn / gn_trace_tx_bytes_fn (kit.pyx) fill a whole record
# of node.trace_size bytes; a node that adds fields of its own puts this
# record after them with gn_trace_bytes_fill and formats it with
# format_trace_bytes.
cdef enum:
    GN_TRACE_BYTES_HEADER = 6


cdef inline uint16_t gn_trace_bytes_fill(uint8_t* record, uint32_t sw_if_index, const uint8_t* data,
                                         uint32_t length, uint32_t max_bytes) noexcept nogil:
    """Write the record at ``record``; returns its size (header + bytes)."""
    cdef uint16_t n = <uint16_t>(length if length < max_bytes else max_bytes)
    memcpy(record, &sw_if_index, 4)
    memcpy(record + 4, &n, 2)
    memcpy(record + GN_TRACE_BYTES_HEADER, data, n)
    return GN_TRACE_BYTES_HEADER + n
