"""``gso-source``: an input node that emits GSO super-frames as buffer
chains, for ``graphnet bench tap-gso`` (the tx direction).

Each super-frame is a copy of one template frame (Ethernet + IPv4/IPv6 +
TCP/UDP headers + up to ~64 KB of payload) laid out as a chain of 2 KB
buffers, with ``GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD``, ``gso_size``
and the L2/L3/L4 offsets set: what a host stack or a forwarding path hands
to ``tap-output``. ``copy``: ``"headers"`` (default) writes only the first
buffer (the headers and the first bytes of payload) and leaves the other
buffers' bytes as they are, as a forwarding path whose payload is already in
buffers would; ``"all"`` copies the whole template into every chain (a
producer that writes every byte). Up to ``burst`` super-frames per call
(default 8: 256 buffers, what ``tap-input`` reads per call), ``count`` in
all; then the node has nothing to do.

Metadata set: current_data 0, current_length, chain fields, flags (GSO,
L4_CSUM_OFFLOAD, NEXT_PRESENT), gso_size, sw_if_index[RX] = ~0,
sw_if_index[TX] (given), l2/l3/l4 offsets. Next: the one given. Errors:
``no-buffers`` (counted; retried on the next call).
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memcpy
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_BUFFER_DATA_SIZE, GN_INVALID_INDEX,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_increment_error)
from graphnet.vlib.node import Node

cdef enum:
    MAX_BURST = 16
    MAX_CHAIN = 40
    ERROR_NO_BUFFERS = 1

ctypedef struct gso_src_t:
    uint8_t* tmpl
    uint32_t length
    uint32_t n_bufs
    uint16_t gso_size
    int16_t l3
    int16_t l4
    uint8_t copy_all
    uint32_t burst
    uint32_t sw_if_index_tx
    uint64_t remaining
    uint64_t sent


cdef uint32_t gso_source_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gso_src_t* st = <gso_src_t*>node.runtime_data
    cdef uint32_t out[MAX_BURST]
    cdef uint32_t bis[MAX_BURST * MAX_CHAIN]
    cdef uint32_t k, n, got, j, nb, off, seg
    cdef gn_buffer_t* b0
    cdef gn_buffer_t* b
    if st == NULL or st.remaining == 0:
        node.has_more_work = 0
        return 0
    nb = st.n_bufs
    n = st.burst if st.burst < st.remaining else <uint32_t>st.remaining
    got = gn_main_alloc(vm, bis, n * nb)
    if got < n * nb:
        gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, 1)
        k = got // nb
        if got > k * nb:
            gn_main_free(vm, bis + k * nb, got - k * nb)
        n = k
    for k in range(n):
        b0 = gn_main_buffer(vm, bis[k * nb])
        off = 0
        for j in range(nb):
            b = gn_main_buffer(vm, bis[k * nb + j]) if j else b0
            seg = st.length - off if st.length - off < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
            b.current_data = 0
            b.current_length = <uint16_t>seg
            if j == 0 or st.copy_all:
                memcpy(b.data, st.tmpl + off, seg)
            if j + 1 < nb:
                b.flags = GN_BUFFER_F_NEXT_PRESENT
                b.next_buffer = bis[k * nb + j + 1]
            else:
                b.flags = 0
                b.next_buffer = GN_INVALID_INDEX
            off += seg
        b0.flags |= GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD
        b0.total_length_not_including_first_buffer = st.length - b0.current_length
        b0.gso_size = st.gso_size
        b0.sw_if_index[GN_RX] = GN_INVALID_INDEX
        b0.sw_if_index[GN_TX] = st.sw_if_index_tx
        b0.error = 0
        b0.l2_hdr_offset = 0
        b0.l3_hdr_offset = st.l3
        b0.l4_hdr_offset = st.l4
        out[k] = bis[k * nb]
    if n:
        gn_enqueue_to_single_next(vm, node, out, 0, n)
    st.remaining -= n
    st.sent += n
    node.has_more_work = st.remaining > 0
    return n


cdef class _State:
    cdef gso_src_t* st

    def __cinit__(self):
        self.st = <gso_src_t*>calloc(1, sizeof(gso_src_t))
        if self.st == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.st.tmpl)
        free(self.st)

    def configure(self, bytes frame, uint16_t gso_size, int l3, int l4, bint copy_all, uint32_t burst,
                  uint32_t sw_if_index_tx):
        cdef uint32_t n = len(frame)
        free(self.st.tmpl)
        self.st.tmpl = <uint8_t*>malloc(n)
        if self.st.tmpl == NULL:
            raise MemoryError()
        memcpy(self.st.tmpl, <const uint8_t*>frame, n)
        self.st.length = n
        self.st.n_bufs = (n + GN_BUFFER_DATA_SIZE - 1) // GN_BUFFER_DATA_SIZE
        self.st.gso_size = gso_size
        self.st.l3 = l3
        self.st.l4 = l4
        self.st.copy_all = copy_all
        self.st.burst = burst
        self.st.sw_if_index_tx = sw_if_index_tx

    def add(self, uint64_t count):
        self.st.remaining += count

    def capsule(self):
        return PyCapsule_New(<void*>self.st, "gn_runtime_data", NULL)

    @property
    def sent(self):
        return self.st.sent

    @property
    def remaining(self):
        return self.st.remaining


class GsoSource:
    """``GsoSource(frame, gso_size, next_node, *, name="gso-source",
    copy="headers", burst=8, sw_if_index_tx=~0)`` (see the module
    docstring). ``add(n)`` queues n more super-frames (from any thread,
    through ``engine.call`` once the engine is built)."""

    def __init__(self, frame: bytes, gso_size: int, next_node: str, *, name: str = "gso-source",
                 copy: str = "headers", burst: int = 8, sw_if_index_tx: int = 0xffffffff):
        if copy not in ("headers", "all"):
            raise ValueError("copy: 'headers' or 'all'")
        if not 1 <= burst <= MAX_BURST:
            raise ValueError(f"burst: 1..{MAX_BURST}")
        if not 54 <= len(frame) <= MAX_CHAIN * GN_BUFFER_DATA_SIZE:
            raise ValueError("the frame must hold headers and fit 40 buffers")
        et = int.from_bytes(frame[12:14], "big")
        if et == 0x0800:
            l3, l4 = 14, 14 + (frame[14] & 0xf) * 4
        elif et == 0x86dd:
            l3, l4 = 14, 54
        else:
            raise ValueError("an IPv4 or IPv6 frame without VLAN tags")
        if l4 + 8 > GN_BUFFER_DATA_SIZE:
            raise ValueError("the headers must fit the first buffer")
        self.name = name
        self.next_node = next_node
        self.state = _State()
        self.state.configure(bytes(frame), gso_size, l3, l4, copy == "all", burst, sw_if_index_tx)
        self.engine = None

    def nodes(self):
        return (Node(self.name, type="input", state="polling", fn=PyCapsule_New(<void*>gso_source_fn, "gn_node_fn",
                                                                              NULL),
                     next_nodes=(self.next_node,), setup=self._setup, instance=self,
                     errors=(("none", "info", "no error"),
                             ("no-buffers", "warn", "could not allocate a super-frame's buffers")),
                     doc=__doc__.split("\n\n")[1]),)

    def _setup(self, engine, node_index):
        self.engine = engine
        engine.main.set_runtime_data(node_index, self.state.capsule())

    def add(self, n: int) -> None:
        if self.engine is not None:
            self.engine.call(self.state.add, n)
        else:
            self.state.add(n)

    @property
    def sent(self) -> int:
        return self.state.sent
