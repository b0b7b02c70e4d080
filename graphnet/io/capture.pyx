"""``capture``: a sink that keeps copies of the packets it receives.

Tests and the control plane read them back (``packets()`` as bytes,
``scapy()`` as Scapy packets). Each packet's chain is flattened in C into a
growing byte store, with its rx/tx interface indices; after ``limit``
packets further ones are only counted (``overflow`` error, not a drop of
data the test asked for). Every received buffer is freed.

Node: internal. Metadata used: current_data, current_length, chains,
sw_if_index. Set: nothing. Next nodes: none. Errors: ``overflow`` (packet not kept,
capture full).
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, realloc, free
from libc.string cimport memcpy
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_BUFFER_F_NEXT_PRESENT, GN_RX, GN_TX, gn_buffer_current
from graphnet.io.growbuf cimport gn_reserve
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free, gn_node_increment_error
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.vlib.kit import node

cpdef enum Error:
    ERROR_NONE, ERROR_OVERFLOW, N_ERROR

ERRORS = (("none", "info", "no error"), ("overflow", "warn", "capture full; packet not kept"))

ctypedef struct capture_t:
    uint8_t* data
    uint64_t used
    uint64_t cap
    uint64_t* offsets           # packet i is data[offsets[i] : offsets[i+1]]
    uint32_t* sw_if             # rx, tx per packet
    uint32_t n
    uint32_t n_alloc
    uint32_t limit


cdef uint32_t capture_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef capture_t* c = <capture_t*>node.runtime_data
    cdef uint32_t i, bi, n_alloc
    cdef gn_buffer_t* b
    cdef gn_buffer_t* first
    cdef uint64_t* offs
    cdef uint32_t* sw
    for i in range(frame.n_vectors):
        if c.n >= c.limit:
            gn_node_increment_error(vm, node, ERROR_OVERFLOW, frame.n_vectors - i)
            break
        if c.n + 1 >= c.n_alloc:
            n_alloc = c.n_alloc * 2 + 256
            offs = <uint64_t*>realloc(c.offsets, (n_alloc + 1) * sizeof(uint64_t))
            if offs != NULL:
                c.offsets = offs
            sw = <uint32_t*>realloc(c.sw_if, 2 * n_alloc * sizeof(uint32_t))
            if sw != NULL:
                c.sw_if = sw
            if offs == NULL or sw == NULL:
                gn_node_increment_error(vm, node, ERROR_OVERFLOW, frame.n_vectors - i)
                break
            c.n_alloc = n_alloc
        bi = frame.buffers[i]
        first = gn_main_buffer(vm, bi)
        c.offsets[c.n] = c.used
        while True:
            b = gn_main_buffer(vm, bi)
            if gn_reserve(&c.data, &c.cap, c.used, b.current_length) != 0:
                break
            memcpy(c.data + c.used, gn_buffer_current(b), b.current_length)
            c.used += b.current_length
            if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
                break
            bi = b.next_buffer
        c.sw_if[2 * c.n] = first.sw_if_index[GN_RX]
        c.sw_if[2 * c.n + 1] = first.sw_if_index[GN_TX]
        c.n += 1
        c.offsets[c.n] = c.used
    gn_main_free(vm, frame.buffers, frame.n_vectors)
    return frame.n_vectors


cdef class Capture:
    """A capture sink node. ``Capture(name="capture", limit=100000)``."""
    cdef capture_t* c
    cdef readonly str name
    cdef object engine

    def __cinit__(self, str name="capture", uint32_t limit=100000):
        self.c = <capture_t*>calloc(1, sizeof(capture_t))
        if self.c == NULL:
            raise MemoryError()
        self.c.limit = limit
        self.name = name

    def __dealloc__(self):
        if self.c != NULL:
            free(self.c.data)
            free(self.c.offsets)
            free(self.c.sw_if)
            free(self.c)

    def nodes(self):
        return (node(self.name, gn_node_fn(capture_fn), errors=ERRORS, Error=Error, setup=self._setup, instance=self,
                     doc=__doc__),)

    def _setup(self, engine, node_index):
        self.engine = engine
        engine.main.set_runtime_data(node_index, PyCapsule_New(<void*>self.c, "gn_runtime_data", NULL))

    def _read(self):
        cdef uint32_t i
        if self.c.n == 0:
            return []
        return [((<uint8_t*>self.c.data)[self.c.offsets[i]:self.c.offsets[i + 1]],
                 self.c.sw_if[2 * i], self.c.sw_if[2 * i + 1]) for i in range(self.c.n)]

    def records(self):
        """[(bytes, rx sw_if_index, tx sw_if_index)] in arrival order."""
        return self.engine.call(self._read) if self.engine is not None else self._read()

    def packets(self):
        """The captured packets as bytes."""
        return [r[0] for r in self.records()]

    def scapy(self, layer=None):
        """The captured packets decoded by Scapy (Ether by default)."""
        if layer is None:
            import scapy.layers.inet  # noqa: F401 - binds IP, UDP, TCP, ICMP under Ether
            from scapy.layers.l2 import Ether as layer
        return [layer(p) for p in self.packets()]

    def clear(self):
        def do():
            self.c.n = 0
            self.c.used = 0
        return self.engine.call(do) if self.engine is not None else do()

    def __len__(self):
        return self.c.n
