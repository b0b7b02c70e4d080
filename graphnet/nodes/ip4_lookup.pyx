"""``ip4-lookup``: longest-prefix match of the destination in the IPv4 FIB.

The FIB (``graphnet.fib.ip4_fib``, one per engine) maps the destination to
an adjacency with a 16-8-8 mtrie: at most three dependent loads per packet
whatever the number of routes. The frame is looked up in three passes (root
leaves, then second-level, then third-level plies), each prefetching what
the next pass reads, so the cache misses of 256 packets overlap instead of
adding up. An ECMP adjacency picks one of its paths by the packet's flow
hash (src, dst, protocol, ports; ``gn_ip4_flow_hash``).

Metadata used: current_data (the IPv4 header, validated by ip4-input).
Set: ``gn_ip4_opaque(b).adj_index`` (the final, non-ECMP adjacency),
``.flow_hash`` (ECMP only, else 0), ``.fib_index``.

Next nodes, by adjacency type: rewrite -> ``ip4-rewrite``; local -> the
node that attached with key ``"local"`` (ip4-local); glean -> the node that
attached with key ``"glean"`` (ARP). Drops: ``no-route`` (the built-in
default route), ``blackhole`` (a drop route), ``special-destination``
(0.0.0.0/32, 224.0.0.0/4, 240.0.0.0/4, 255.255.255.255/32: built-in, as in
VPP), ``no-local-node`` and ``glean-unresolved`` (local / glean adjacency
while no node attached for it), ``bad-adjacency``. An unreachable or
prohibit route sends its packets, counted as ``unreachable`` /
``prohibited``, to the node that attached with that key (ip4-icmp-error:
ICMP 3/1, 3/13), else drops them under that count.

Trace record: the lookup redone for the traced packet at entry (adjacency,
flow hash) and the first 40 bytes of its header.
"""
import struct
import weakref

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from graphnet.includes.platform cimport gn_prefetch
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_RX, gn_buffer_current
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next
from graphnet.fib.mtrie cimport gn_mtrie_t, gn_mtrie_ply_t
from graphnet.fib.ip4_fib cimport (Ip4Fib, gn_ip4_fib_t, gn_ip4_adj_t, gn_ip4_opaque_t, gn_ip4_opaque,
                                   gn_ip4_fib_lookup, GN_ADJ_DROP, GN_ADJ_BLACKHOLE, GN_ADJ_LOCAL, GN_ADJ_GLEAN,
                                   GN_ADJ_REWRITE, GN_ADJ_ECMP, GN_ADJ_SPECIAL, GN_ADJ_UNREACHABLE,
                                   GN_ADJ_PROHIBIT, GN_ADJ_N_TYPES)
from graphnet.wire.ip4 cimport gn_ip4_dst, gn_ip4_flow_hash
from graphnet.vlib.node import Node
from graphnet.fib.ip4_fib import ip4_fib
from graphnet.wire.ip4 import format_ip4_header

cdef enum:
    NEXT_REWRITE = 0
    ERROR_NONE = 0
    ERROR_NO_ROUTE = 1
    ERROR_BLACKHOLE = 2
    ERROR_NO_LOCAL_NODE = 3
    ERROR_GLEAN_UNRESOLVED = 4
    ERROR_BAD_ADJACENCY = 5
    ERROR_SPECIAL = 6
    ERROR_UNREACHABLE = 7
    ERROR_PROHIBITED = 8
    TRACE_BYTES = 40

ERRORS = (
    ("none", "info", "no error"),
    ("no-route", "warn", "no route to the destination"),
    ("blackhole", "info", "destination is a drop route"),
    ("no-local-node", "warn", "for this host but no ip4-local node in the graph"),
    ("glean-unresolved", "warn", "next hop MAC unknown and no ARP node in the graph"),
    ("bad-adjacency", "error", "adjacency of an unexpected type"),
    ("special-destination", "info", "destination never forwarded (0.0.0.0, multicast, class E, broadcast)"),
    ("unreachable", "info", "destination is an unreachable route (ICMP host unreachable)"),
    ("prohibited", "info", "destination is a prohibit route (ICMP administratively prohibited)"),
)

ctypedef struct ip4_lookup_t:
    gn_ip4_fib_t* fib
    uint16_t next_by_type[16]         # GN_ADJ_* -> next index
    uint16_t error_by_type[16]        # GN_ADJ_* -> global error index (0 when forwarded)

ctypedef struct ip4_lookup_trace_t:
    uint32_t adj_index                # from the mtrie
    uint32_t path_adj_index           # after ECMP
    uint32_t flow_hash
    uint16_t n_bytes
    uint16_t pad
    uint8_t bytes[TRACE_BYTES]


cdef uint32_t ip4_lookup_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ip4_lookup_t* lm = <ip4_lookup_t*>node.runtime_data
    cdef gn_ip4_fib_t* fib = lm.fib
    cdef const uint32_t* root = fib.mtrie.root
    cdef const gn_mtrie_ply_t* plies = fib.mtrie.plies
    cdef const gn_ip4_adj_t* adjs = fib.adjs
    cdef const gn_ip4_adj_t* adj
    cdef uint16_t nexts[256]
    cdef uint32_t dsts[256]
    cdef uint32_t leaves[256]
    cdef uint32_t i, n = frame.n_vectors, dst, leaf, ai, h
    cdef gn_buffer_t* b
    cdef gn_ip4_opaque_t* op
    cdef const uint8_t* ip
    # pass 0: destinations; prefetch the root leaf
    for i in range(n):
        dst = gn_ip4_dst(gn_buffer_current(gn_main_buffer(vm, frame.buffers[i])))
        dsts[i] = dst
        gn_prefetch(&root[dst >> 16])
    # pass 1: root leaf; prefetch the second-level leaf
    for i in range(n):
        dst = dsts[i]
        leaf = root[dst >> 16]
        leaves[i] = leaf
        if not (leaf & 1):
            gn_prefetch(&plies[leaf >> 1].leaves[(dst >> 8) & 0xff])
    # pass 2: second-level leaf; prefetch the third-level leaf
    for i in range(n):
        leaf = leaves[i]
        if not (leaf & 1):
            leaf = plies[leaf >> 1].leaves[(dsts[i] >> 8) & 0xff]
            leaves[i] = leaf
            if not (leaf & 1):
                gn_prefetch(&plies[leaf >> 1].leaves[dsts[i] & 0xff])
    # pass 3: third-level leaf, adjacency, ECMP, next
    for i in range(n):
        leaf = leaves[i]
        if not (leaf & 1):
            leaf = plies[leaf >> 1].leaves[dsts[i] & 0xff]
        ai = leaf >> 1
        adj = &adjs[ai]
        b = gn_main_buffer(vm, frame.buffers[i])
        op = gn_ip4_opaque(b)
        h = 0
        if adj.type == GN_ADJ_ECMP:
            h = gn_ip4_flow_hash(gn_buffer_current(b), fib.flow_hash_seed)
            ai = fib.buckets[adj.ecmp_base + (h & adj.ecmp_mask)]
            adj = &adjs[ai]
        op.adj_index = ai
        op.flow_hash = h
        op.fib_index = fib.fib_index
        nexts[i] = lm.next_by_type[adj.type]
        if adj.type != GN_ADJ_REWRITE:
            b.error = lm.error_by_type[adj.type]
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


cdef uint16_t ip4_lookup_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b, uint8_t* record) noexcept nogil:
    cdef ip4_lookup_t* lm = <ip4_lookup_t*>node.runtime_data
    cdef ip4_lookup_trace_t* t = <ip4_lookup_trace_t*>record
    cdef const uint8_t* ip = gn_buffer_current(b)
    cdef const gn_ip4_adj_t* adj
    t.n_bytes = b.current_length if b.current_length < TRACE_BYTES else TRACE_BYTES
    memcpy(t.bytes, ip, t.n_bytes)
    t.flow_hash = 0
    t.adj_index = t.path_adj_index = 0
    if b.current_length >= 20:
        t.adj_index = t.path_adj_index = gn_ip4_fib_lookup(lm.fib, gn_ip4_dst(ip))
        adj = &lm.fib.adjs[t.adj_index]
        if adj.type == GN_ADJ_ECMP:
            t.flow_hash = gn_ip4_flow_hash(ip, lm.fib.flow_hash_seed)
            t.path_adj_index = lm.fib.buckets[adj.ecmp_base + (t.flow_hash & adj.ecmp_mask)]
    return sizeof(ip4_lookup_trace_t)


def format_ip4_lookup_trace(bytes record, engine=None):
    adj, path, h, n = struct.unpack_from("<IIIH", record)
    data = record[16:16 + n]
    lines = [f"  fib 0 dpo-idx {adj} flow hash: 0x{h:08x}"]
    if engine is not None:
        fib = ip4_fib(engine)
        lines.append("  " + fib.format_adjacency(adj))
        if path != adj:
            lines.append("    path " + fib.format_adjacency(path))
    lines.append(format_ip4_header(data, indent=2))
    return "\n".join(lines)


cdef class _State:
    """Per-engine C state of ip4-lookup (runtime_data)."""
    cdef ip4_lookup_t* lm
    cdef Ip4Fib fib

    def __cinit__(self, Ip4Fib fib, uint16_t drop_next, uint16_t error_base):
        cdef uint32_t t
        self.lm = <ip4_lookup_t*>calloc(1, sizeof(ip4_lookup_t))
        if self.lm == NULL:
            raise MemoryError()
        self.fib = fib
        self.lm.fib = fib.fib
        for t in range(16):
            self.lm.next_by_type[t] = drop_next
            self.lm.error_by_type[t] = error_base + ERROR_BAD_ADJACENCY
        self.lm.error_by_type[GN_ADJ_DROP] = error_base + ERROR_NO_ROUTE
        self.lm.error_by_type[GN_ADJ_BLACKHOLE] = error_base + ERROR_BLACKHOLE
        self.lm.error_by_type[GN_ADJ_LOCAL] = error_base + ERROR_NO_LOCAL_NODE
        self.lm.error_by_type[GN_ADJ_GLEAN] = error_base + ERROR_GLEAN_UNRESOLVED
        self.lm.error_by_type[GN_ADJ_SPECIAL] = error_base + ERROR_SPECIAL
        self.lm.error_by_type[GN_ADJ_UNREACHABLE] = error_base + ERROR_UNREACHABLE
        self.lm.error_by_type[GN_ADJ_PROHIBIT] = error_base + ERROR_PROHIBITED
        self.lm.next_by_type[GN_ADJ_REWRITE] = NEXT_REWRITE
        self.lm.error_by_type[GN_ADJ_REWRITE] = 0

    def __dealloc__(self):
        free(self.lm)

    def capsule(self):
        return PyCapsule_New(<void*>self.lm, "gn_runtime_data", NULL)

    def attach(self, uint32_t adj_type, uint16_t next_index):
        self.lm.next_by_type[adj_type] = next_index
        if adj_type == GN_ADJ_LOCAL or adj_type == GN_ADJ_GLEAN:
            self.lm.error_by_type[adj_type] = 0      # the others keep their reason for ip4-icmp-error


_STATES = weakref.WeakKeyDictionary()     # engine -> _State (lives as long as the engine)
ATTACH_KEYS = {"local": GN_ADJ_LOCAL, "glean": GN_ADJ_GLEAN, "unreachable": GN_ADJ_UNREACHABLE,
               "prohibit": GN_ADJ_PROHIBIT}


def _setup(engine, node_index):
    st = _STATES[engine] = _State(ip4_fib(engine), engine.next_index("ip4-lookup", "error-drop"),
                                  engine.error_base["ip4-lookup"])
    engine.main.set_runtime_data(node_index, st.capsule())


def _on_attach(engine, key, next_index):
    if key not in ATTACH_KEYS:
        raise ValueError(f"ip4-lookup: attach key {key!r} is not one of {', '.join(ATTACH_KEYS)}")
    _STATES[engine].attach(ATTACH_KEYS[key], next_index)


NODES = (
    Node("ip4-lookup", fn=PyCapsule_New(<void*>ip4_lookup_fn, "gn_node_fn", NULL), next_nodes=("ip4-rewrite",),
         errors=ERRORS, trace_fn=PyCapsule_New(<void*>ip4_lookup_trace_fn, "gn_trace_fn", NULL),
         trace_size=sizeof(ip4_lookup_trace_t), format_trace=format_ip4_lookup_trace,
         setup=_setup, on_attach=_on_attach, doc=__doc__.split("\n\n")[0]),
)
