"""``ip4-rewrite``: forward a looked-up IPv4 packet to its next hop.

For the packet's rewrite adjacency (``gn_ip4_opaque(b).adj_index``, set by
ip4-lookup): TTL 1 or less is dropped as ``ttl-expired``; a packet whose
total length exceeds the tx interface's MTU is dropped as ``mtu-exceeded``
(a TCP GSO super-segment to an interface with TSO: its largest segment,
headers + gso_size, is what must fit; a GSO super-segment that does not
fit goes to the node attached with key ``gso``, ``ip4-gso``, which cuts
it into segments and sends them back here, as ``gso-segment``, not a
drop; without such a node it is ``mtu-exceeded`` like any other);
a packet whose L4 checksum was left to offload
(``GN_BUFFER_F_L4_CSUM_OFFLOAD``, e.g. from a TAP) gets its full checksum
here when the tx interface does not offload checksums (AF_PACKET, pg);
otherwise the TTL is decremented with the RFC 1624 incremental checksum
update, the adjacency's L2 header (next-hop MAC, interface MAC, 0x0800) is
pushed into the headroom and the packet goes to ``interface-output`` on the
adjacency's interface.

A packet built by this host (``GN_BUFFER_F_LOCALLY_ORIGINATED``: ICMP
replies and errors, UDP echo) keeps its TTL. ``ttl-expired`` and
``mtu-exceeded`` packets go to the node that attached with that key
(``ip4-icmp-error`` claims ``ttl-expired``: ICMP time exceeded), else to
error-drop; a node attached with key ``fragment`` (``ip4-frag``) takes
``mtu-exceeded`` packets before one attached with ``mtu-exceeded``, in
whatever order they attached: it fragments them, or
hands those with DF set to ip4-icmp-error (fragmentation needed). Such a
packet leaves untouched but for sw_if_index[TX] (the adjacency's
interface) and its error (``mtu-exceeded``, the reason ICMP reports).

Metadata used: current_data (the IPv4 header), opaque adj_index. Set:
current_data/current_length (the pushed L2 header), l2_hdr_offset,
sw_if_index[TX]. Next nodes: ``interface-output``. Drops: ``ttl-expired``,
``mtu-exceeded``, ``no-headroom``, ``bad-adjacency`` (not a rewrite).

Trace record: adjacency, tx sw_if_index, the rewrite to be pushed and the
first 64 bytes of the packet as received.
"""
import struct

from graphnet.vlib.per_engine import per_engine

from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from graphnet.io.interface cimport (InterfaceTable, gn_interface_main_t, gn_interface_t, gn_interface, GN_IF_TX_TSO4,
                                    GN_IF_TX_CSUM)
from graphnet.includes.platform cimport gn_prefetch
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_FRAME_SIZE, GN_BUFFER_HEADROOM,
                                   GN_BUFFER_F_LOCALLY_ORIGINATED, GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD,
                                   gn_buffer_current)
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.fib.ip4_fib cimport Ip4Fib, gn_ip4_fib_t, gn_ip4_adj_t, gn_ip4_opaque, GN_ADJ_REWRITE
from graphnet.wire.ethernet cimport GN_ETHERNET_HEADER_LEN
from graphnet.wire.ip4 cimport gn_ip4_ttl_decrement, gn_ip4_total_length, gn_ip4_header_bytes
from graphnet.nodes.ip4_csum cimport gn_ip4_fill_l4_checksum
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_node_data, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.vlib.kit import node, trace_record, parse_trace_bytes
from graphnet.fib.ip4_fib import ip4_fib
from graphnet.wire.ethernet import format_ethernet_header
from graphnet.wire.ip4 import format_ip4_header

cpdef enum Next:
    NEXT_INTERFACE_OUTPUT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_TTL_EXPIRED, ERROR_MTU_EXCEEDED, ERROR_NO_HEADROOM, ERROR_BAD_ADJACENCY, ERROR_GSO_SEGMENT, N_ERROR

cdef enum:
    PREFETCH_AHEAD = 4
    TRACE_BYTES = 64

NEXTS = (("interface-output", "interface-output"),)

ERRORS = (
    ("none", "info", "no error"),
    ("ttl-expired", "error", "TTL expired in transit"),
    ("mtu-exceeded", "error", "packet larger than the tx MTU (fragmentation: not yet)"),
    ("no-headroom", "error", "no headroom left for the L2 header"),
    ("bad-adjacency", "error", "adjacency is not a rewrite"),
    ("gso-segment", "info", "GSO super-segment larger than the tx MTU, to ip4-gso to be segmented"),
)

ctypedef struct ip4_rewrite_t:
    gn_ip4_fib_t* fib
    gn_interface_main_t* im
    uint16_t error_next[8]            # ERROR_* -> next (drop, or a node attached for it)
    uint8_t gso_attached              # a node took key "gso": GSO super-segments too big go there

ctypedef struct ip4_rewrite_trace_t:
    uint32_t adj_index
    uint16_t rewrite_len
    uint8_t rewrite[32]
    uint8_t bytes[GN_TRACE_BYTES_HEADER + TRACE_BYTES]   # the kit's record: tx sw_if_index, the header


cdef inline uint32_t _wire_length(gn_buffer_t* b, const uint8_t* ip, uint8_t tx_offloads) noexcept nogil:
    """The largest IPv4 packet the interface puts on the wire for b: its
    total length, or for a TCP GSO super-segment to an interface with TSO,
    one segment (IPv4 + TCP headers + gso_size; headers in the first
    buffer, else the total length counts)."""
    cdef uint32_t ihl
    if b.flags & GN_BUFFER_F_GSO and tx_offloads & GN_IF_TX_TSO4 and ip[9] == 6:
        ihl = (ip[0] & 15) * 4
        if b.current_length >= ihl + 13:
            return ihl + (ip[ihl + 12] >> 4) * 4 + b.gso_size
    return gn_ip4_total_length(ip)


cdef void _complete_l4_checksum(gn_main_t* vm, gn_buffer_t* b, uint8_t* ip) noexcept nogil:
    """The interface will not fill the L4 checksum left to offload: fill it
    now (headers inside the first buffer; else the packet goes as it is)."""
    cdef uint32_t hlen = gn_ip4_header_bytes(ip)
    if b.current_length >= hlen:
        gn_ip4_fill_l4_checksum(vm, b, ip, hlen, gn_ip4_total_length(ip))
    b.flags &= ~GN_BUFFER_F_L4_CSUM_OFFLOAD


cdef uint32_t ip4_rewrite_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ip4_rewrite_t* rm = <ip4_rewrite_t*>node.runtime_data
    cdef const gn_ip4_adj_t* adjs = rm.fib.adjs
    cdef uint32_t n_adjs = rm.fib.n_adjs
    cdef const gn_ip4_adj_t* adj
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, ai, err, rl, sw, last_sw = 0xffffffffU, mtu = 0xffff
    cdef uint8_t tx_offloads = 0
    cdef gn_buffer_t* b
    cdef gn_buffer_t* pb
    cdef gn_interface_t* hw
    cdef uint8_t* ip
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            pb = gn_main_buffer(vm, frame.buffers[i + PREFETCH_AHEAD])
            gn_prefetch(pb)
            gn_prefetch(pb.data)
            gn_prefetch(pb.opaque)
            gn_prefetch(pb.data - 1)
        b = gn_main_buffer(vm, frame.buffers[i])
        ip = gn_buffer_current(b)
        ai = gn_ip4_opaque(b).adj_index
        err = ERROR_NONE
        if ai >= n_adjs or adjs[ai].type != GN_ADJ_REWRITE:
            err = ERROR_BAD_ADJACENCY
        elif ip[8] <= 1 and not (b.flags & GN_BUFFER_F_LOCALLY_ORIGINATED):
            err = ERROR_TTL_EXPIRED
        else:
            adj = &adjs[ai]
            rl = adj.rewrite_len
            sw = adj.sw_if_index
            if sw != last_sw:
                # most packets of a frame leave on one interface: keep its MTU
                # (an unknown interface is left to interface-output to drop)
                last_sw = sw
                hw = gn_interface(rm.im, sw)
                mtu = hw.mtu if hw != NULL else 0xffff
                tx_offloads = hw.tx_offloads if hw != NULL else 0
            if _wire_length(b, ip, tx_offloads) > mtu:
                # to ip4-gso (a super-segment), else ip4-frag (or ip4-icmp-error)
                err = ERROR_GSO_SEGMENT if b.flags & GN_BUFFER_F_GSO and rm.gso_attached else ERROR_MTU_EXCEEDED
                b.sw_if_index[GN_TX] = sw         # whose MTU: ip4-frag and ip4-gso read it
            elif b.current_data - <int>rl < -GN_BUFFER_HEADROOM:
                err = ERROR_NO_HEADROOM
            else:
                if b.flags & GN_BUFFER_F_L4_CSUM_OFFLOAD and not (tx_offloads & GN_IF_TX_CSUM):
                    _complete_l4_checksum(vm, b, ip)
                if not (b.flags & GN_BUFFER_F_LOCALLY_ORIGINATED):
                    gn_ip4_ttl_decrement(ip)
                b.current_data -= <int16_t>rl
                b.current_length += <uint16_t>rl
                if rl == GN_ETHERNET_HEADER_LEN:
                    memcpy(ip - GN_ETHERNET_HEADER_LEN, adj.rewrite, GN_ETHERNET_HEADER_LEN)
                else:
                    memcpy(ip - rl, adj.rewrite, rl)
                b.l2_hdr_offset = b.current_data
                b.sw_if_index[GN_TX] = sw
                nexts[i] = NEXT_INTERFACE_OUTPUT
        if err != ERROR_NONE:
            gn_buffer_set_error(node, b, err)
            nexts[i] = rm.error_next[err]
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


cdef uint16_t ip4_rewrite_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b, uint8_t* record) noexcept nogil:
    cdef ip4_rewrite_t* rm = <ip4_rewrite_t*>node.runtime_data
    cdef ip4_rewrite_trace_t* t = <ip4_rewrite_trace_t*>record
    cdef const gn_ip4_adj_t* adj
    cdef uint32_t sw = 0xffffffffU
    t.adj_index = gn_ip4_opaque(b).adj_index
    t.rewrite_len = 0
    if t.adj_index < rm.fib.n_adjs:
        adj = &rm.fib.adjs[t.adj_index]
        if adj.type == GN_ADJ_REWRITE:
            sw = adj.sw_if_index
            t.rewrite_len = adj.rewrite_len
            memcpy(t.rewrite, adj.rewrite, adj.rewrite_len)
    return 38 + gn_trace_bytes_fill(t.bytes, sw, gn_buffer_current(b), b.current_length, TRACE_BYTES)


def format_ip4_rewrite_trace(bytes record, engine=None):
    adj, rl = struct.unpack_from("<IH", record)
    rw = record[6:6 + rl]
    sw, data = parse_trace_bytes(record, 38)
    sw_text = "-" if sw == 0xffffffff else str(sw)
    lines = [f"  tx_sw_if_index {sw_text} adj-idx {adj}"]
    if rl:
        lines.append(format_ethernet_header(rw, indent=2))
    lines.append(format_ip4_header(data, indent=2))
    return "\n".join(lines)


def _setup(engine, node_index):
    cdef ip4_rewrite_t* rm = <ip4_rewrite_t*>gn_node_data(engine, "ip4-rewrite")
    cdef Ip4Fib fib = ip4_fib(engine)
    cdef uint32_t e
    engine.node_data["ip4-rewrite"].keep = fib
    for e in range(8):
        rm.error_next[e] = engine.next_index("ip4-rewrite", "error-drop")
    rm.fib = fib.fib
    rm.im = (<InterfaceTable>engine.interfaces).im


ATTACH_KEYS = {"ttl-expired": ERROR_TTL_EXPIRED, "mtu-exceeded": ERROR_MTU_EXCEEDED, "fragment": ERROR_MTU_EXCEEDED,
               "gso": ERROR_GSO_SEGMENT}
_FRAGMENT_ATTACHED = per_engine()     # engine -> True once a "fragment" node attached


def _on_attach(engine, key, next_index):
    if key not in ATTACH_KEYS:
        raise ValueError(f"ip4-rewrite: attach key {key!r} is not one of {', '.join(ATTACH_KEYS)}")
    if key == "mtu-exceeded" and _FRAGMENT_ATTACHED.get(engine):
        return                            # ip4-frag comes first; it sends DF packets on to ICMP
    cdef ip4_rewrite_t* rm = <ip4_rewrite_t*>gn_node_data(engine, "ip4-rewrite")
    if key == "fragment":
        _FRAGMENT_ATTACHED[engine] = True
    if key == "gso":
        rm.gso_attached = 1
    rm.error_next[<uint32_t>ATTACH_KEYS[key]] = next_index


NODES = (
    node("ip4-rewrite", gn_node_fn(ip4_rewrite_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         data_size=sizeof(ip4_rewrite_t), setup=_setup, on_attach=_on_attach,
         trace=trace_record(gn_trace_fn(ip4_rewrite_trace_fn), sizeof(ip4_rewrite_trace_t), format_ip4_rewrite_trace),
         doc=__doc__),
)
FEATURE = "ip4"
