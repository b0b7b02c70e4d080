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
flow hash) and the first 64 bytes of the packet (an ICMP error's quote included).
"""
import struct

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.platform cimport gn_prefetch
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_FRAME_SIZE, gn_buffer_current
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next
from graphnet.fib.mtrie cimport gn_mtrie_t, gn_mtrie_ply_t
from graphnet.fib.ip4_fib cimport (Ip4Fib, gn_ip4_fib_t, gn_ip4_adj_t, gn_ip4_opaque_t, gn_ip4_opaque,
                                   gn_ip4_fib_lookup, GN_ADJ_DROP, GN_ADJ_BLACKHOLE, GN_ADJ_LOCAL, GN_ADJ_GLEAN,
                                   GN_ADJ_REWRITE, GN_ADJ_ECMP, GN_ADJ_SPECIAL, GN_ADJ_UNREACHABLE,
                                   GN_ADJ_PROHIBIT, GN_ADJ_N_TYPES)
from graphnet.wire.ip4 cimport gn_ip4_dst, gn_ip4_flow_hash
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_node_data, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.vlib.kit import node, trace_record, parse_trace_bytes
from graphnet.fib.ip4_fib import ip4_fib
from graphnet.wire.ip4 import format_ip4_header

cpdef enum Next:
    NEXT_REWRITE, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_NO_ROUTE, ERROR_BLACKHOLE, ERROR_NO_LOCAL_NODE, ERROR_GLEAN_UNRESOLVED
    ERROR_BAD_ADJACENCY, ERROR_SPECIAL_DESTINATION, ERROR_UNREACHABLE, ERROR_PROHIBITED, N_ERROR

cdef enum:
    TRACE_BYTES = 64

NEXTS = (("rewrite", "ip4-rewrite"),)
ERRORS = (
    ("none", "info", "no error"),
    ("no-route", "error", "no route to the destination"),
    ("blackhole", "error", "destination is a drop route"),
    ("no-local-node", "error", "for this host but no ip4-local node in the graph"),
    ("glean-unresolved", "error", "next hop MAC unknown and no ARP node in the graph"),
    ("bad-adjacency", "error", "adjacency of an unexpected type"),
    ("special-destination", "info", "destination never forwarded (0.0.0.0, multicast, class E, broadcast)"),
    ("unreachable", "error", "destination is an unreachable route (ICMP host unreachable)"),
    ("prohibited", "error", "destination is a prohibit route (ICMP administratively prohibited)"),
)

ctypedef struct ip4_lookup_t:
    gn_ip4_fib_t* fib
    uint16_t next_by_type[16]         # GN_ADJ_* -> next index
    uint16_t error_by_type[16]        # GN_ADJ_* -> global error index (0 when forwarded)

ctypedef struct ip4_lookup_trace_t:
    uint32_t adj_index                # from the mtrie
    uint32_t path_adj_index           # after ECMP
    uint32_t flow_hash
    uint8_t bytes[GN_TRACE_BYTES_HEADER + TRACE_BYTES]   # the kit's record: tx sw_if_index ~0, the header


cdef uint32_t ip4_lookup_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ip4_lookup_t* lm = <ip4_lookup_t*>node.runtime_data
    cdef gn_ip4_fib_t* fib = lm.fib
    cdef const uint32_t* root = fib.mtrie.root
    cdef const gn_mtrie_ply_t* plies = fib.mtrie.plies
    cdef const gn_ip4_adj_t* adjs = fib.adjs
    cdef const gn_ip4_adj_t* adj
    cdef uint16_t nexts[GN_FRAME_SIZE]
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
    t.flow_hash = 0
    t.adj_index = t.path_adj_index = 0
    if b.current_length >= 20:
        t.adj_index = t.path_adj_index = gn_ip4_fib_lookup(lm.fib, gn_ip4_dst(ip))
        adj = &lm.fib.adjs[t.adj_index]
        if adj.type == GN_ADJ_ECMP:
            t.flow_hash = gn_ip4_flow_hash(ip, lm.fib.flow_hash_seed)
            t.path_adj_index = lm.fib.buckets[adj.ecmp_base + (t.flow_hash & adj.ecmp_mask)]
    return 12 + gn_trace_bytes_fill(t.bytes, 0xffffffffU, ip, b.current_length, TRACE_BYTES)


def format_ip4_lookup_trace(bytes record, engine=None):
    adj, path, h = struct.unpack_from("<III", record)
    _, data = parse_trace_bytes(record, 12)
    lines = [f"  fib 0 dpo-idx {adj} flow hash: 0x{h:08x}"]
    if engine is not None:
        fib = ip4_fib(engine)
        lines.append("  " + fib.format_adjacency(adj))
        if path != adj:
            lines.append("    path " + fib.format_adjacency(path))
    lines.append(format_ip4_header(data, indent=2))
    return "\n".join(lines)


ATTACH_KEYS = {"local": GN_ADJ_LOCAL, "glean": GN_ADJ_GLEAN, "unreachable": GN_ADJ_UNREACHABLE,
               "prohibit": GN_ADJ_PROHIBIT}


def _setup(engine, node_index):
    cdef ip4_lookup_t* lm = <ip4_lookup_t*>gn_node_data(engine, "ip4-lookup")
    cdef uint16_t drop_next = engine.next_index("ip4-lookup", "error-drop")
    cdef uint32_t t, base = engine.error_base["ip4-lookup"]
    cdef Ip4Fib fib = ip4_fib(engine)
    engine.node_data["ip4-lookup"].keep = fib
    lm.fib = fib.fib
    for t in range(16):
        lm.next_by_type[t] = drop_next
        lm.error_by_type[t] = base + ERROR_BAD_ADJACENCY
    lm.error_by_type[GN_ADJ_DROP] = base + ERROR_NO_ROUTE
    lm.error_by_type[GN_ADJ_BLACKHOLE] = base + ERROR_BLACKHOLE
    lm.error_by_type[GN_ADJ_LOCAL] = base + ERROR_NO_LOCAL_NODE
    lm.error_by_type[GN_ADJ_GLEAN] = base + ERROR_GLEAN_UNRESOLVED
    lm.error_by_type[GN_ADJ_SPECIAL] = base + ERROR_SPECIAL_DESTINATION
    lm.error_by_type[GN_ADJ_UNREACHABLE] = base + ERROR_UNREACHABLE
    lm.error_by_type[GN_ADJ_PROHIBIT] = base + ERROR_PROHIBITED
    lm.next_by_type[GN_ADJ_REWRITE] = NEXT_REWRITE
    lm.error_by_type[GN_ADJ_REWRITE] = 0


def _on_attach(engine, key, next_index):
    cdef ip4_lookup_t* lm = <ip4_lookup_t*>gn_node_data(engine, "ip4-lookup")
    if key not in ATTACH_KEYS:
        raise ValueError(f"ip4-lookup: attach key {key!r} is not one of {', '.join(ATTACH_KEYS)}")
    lm.next_by_type[ATTACH_KEYS[key]] = next_index
    if key == "local" or key == "glean":
        lm.error_by_type[ATTACH_KEYS[key]] = 0      # the others keep their reason for ip4-icmp-error


NODES = (
    node("ip4-lookup", gn_node_fn(ip4_lookup_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         data_size=sizeof(ip4_lookup_t), setup=_setup, on_attach=_on_attach,
         trace=trace_record(gn_trace_fn(ip4_lookup_trace_fn), sizeof(ip4_lookup_trace_t), format_ip4_lookup_trace),
         doc=__doc__),
)
FEATURE = "ip4"
