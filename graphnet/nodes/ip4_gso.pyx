"""``ip4-gso``: software segmentation of GSO super-segments for
interfaces that cannot segment them (AF_PACKET, pg, a TAP without tso4).

A TAP hands graphnet super-frames of up to 64 KB (GSO, gso_size set, the
L4 checksum usually left to offload). Forwarded to an interface with TSO
they leave as they are; to any other, ``ip4-rewrite`` finds them larger
than the MTU and, with this node attached (key ``gso``), sends them here
with sw_if_index[TX] and the ip4 opaque set, current_data at the IPv4
header, TTL not yet decremented (ip4-frag's contract). Each becomes
ceil(payload / gso_size) packets that go back to ip4-rewrite:

- TCP: the IPv4 and TCP headers copied (options included), the sequence
  number advanced by the payload before it, FIN and PSH kept only on the
  last segment and CWR only on the first (what Linux's TSO does);
- UDP (GSO_UDP_L4): the IPv4 and UDP headers copied, the UDP length per
  segment: each segment is a datagram of its own;
- IPv4 total length, identification (the super-segment's + the segment's
  index, as Linux's TSO does) and header checksum per segment; the L4
  checksum computed in full (GSO and L4_CSUM_OFFLOAD cleared);
- metadata (sw_if_index, opaque, trace) copied; the original freed.

A super-segment whose payload fits one segment passes on as one packet
(its flags cleared, its checksum filled). A segment still too large for
the MTU (gso_size beyond it) is ip4-rewrite's ``mtu-exceeded`` on its way
back, as for any packet: ip4-frag or ICMP "fragmentation needed".

Counters: ``segmented`` (super-segments) and ``segments`` (packets made)
are events; drops: ``not-tcp-udp`` (another protocol flagged GSO),
``malformed`` (headers not in the first buffer, a total length beyond the
packet, a fragment, gso_size 0), ``no-buffers`` (the super-segment is
dropped; its segments not yet handed on are freed, those already handed
on in a full frame count under ``segments``).

Metadata used: current_data (IPv4 header), chains, flags (GSO), gso_size,
sw_if_index, opaque. Set (on each segment): current_data 0,
current_length, chains, sw_if_index and opaque (copied), flags (GSO and
L4_CSUM_OFFLOAD cleared). Next nodes: ``ip4-rewrite``. Trace record: tx
sw_if_index and the first 64 bytes of the super-segment.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_net32, gn_put_net32
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD, gn_buffer_current
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free, gn_next_buffers_t,
                                 gn_next_buffers_flush, gn_next_buffers_put, gn_node_increment_error,
                                 gn_buffer_set_error)
from graphnet.wire.ip4 cimport (gn_ip4_set_checksum, GN_IP4_MAX_HEADER_LEN, GN_IP4_FLAG_MF, GN_IP4_FRAG_OFFSET_MASK,
                                GN_IP4_PROTO_TCP, GN_IP4_PROTO_UDP)
from graphnet.nodes.ip4_csum cimport gn_ip4_fill_l4_checksum
from graphnet.io.bufcopy cimport gn_cursor_t, gn_packet_from_header
from graphnet.nodes.ip4_cut cimport gn_ip4_cut_t, gn_ip4_cuttable, gn_ip4_cut_begin, gn_ip4_cut_put, gn_ip4_cut_abort
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.vlib.kit import node, trace_bytes
from graphnet.wire.ip4 import format_ip4_header

cpdef enum Next:
    NEXT_REWRITE, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_SEGMENTED, ERROR_SEGMENTS, ERROR_NOT_TCP_UDP, ERROR_MALFORMED, ERROR_NO_BUFFERS, N_ERROR

cdef enum:
    TRACE_BYTES = 64
    TCP_MAX_HEADER = 60
    TCP_FIN = 0x01
    TCP_PSH = 0x08
    TCP_CWR = 0x80

ERRORS = (
    ("none", "info", "no error"),
    ("segmented", "info", "GSO super-segments cut into segments"),
    ("segments", "info", "segments sent"),
    ("not-tcp-udp", "error", "GSO flag on a packet that is neither TCP nor UDP"),
    ("malformed", "error", "headers not in the first buffer, length beyond the packet, a fragment or gso_size 0"),
    ("no-buffers", "error", "no buffers for the segments: super-segment dropped"),
)


cdef inline void _out_drop(gn_main_t* vm, gn_node_runtime_t* node, gn_next_buffers_t* out, uint32_t bi,
                           uint32_t code) noexcept nogil:
    gn_buffer_set_error(node, gn_main_buffer(vm, bi), code)
    gn_next_buffers_put(vm, node, out, bi, node.drop_next)


cdef inline uint32_t _l4_header_bytes(gn_buffer_t* b, const uint8_t* ip, uint32_t hlen, uint32_t total) noexcept nogil:
    """The TCP or UDP header's length, 0 when it is not whole inside the
    first buffer and the datagram."""
    cdef uint32_t l4h
    if ip[9] == GN_IP4_PROTO_UDP:
        l4h = 8
    elif hlen + 13 <= b.current_length:
        l4h = (ip[hlen + 12] >> 4) * 4
        if l4h < 20:
            return 0
    else:
        return 0
    return l4h if hlen + l4h <= b.current_length and hlen + l4h <= total else 0


cdef void _fix_segment(gn_main_t* vm, uint32_t bi, uint32_t hlen, uint32_t l4h, uint32_t plen, uint32_t k,
                       uint32_t done, bint last) noexcept nogil:
    """Segment k (payload bytes [done, done + plen) of the super-segment's
    payload) in bi, headers copied: lengths, id, seq, flags, checksums."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint8_t* ip = b.data
    cdef uint8_t* l4 = ip + hlen
    gn_put_net16(ip + 2, <uint16_t>(hlen + l4h + plen))
    gn_put_net16(ip + 4, <uint16_t>(gn_net16(ip + 4) + k))
    gn_ip4_set_checksum(ip)
    if ip[9] == GN_IP4_PROTO_TCP:
        gn_put_net32(l4 + 4, gn_net32(l4 + 4) + done)
        if not last:
            l4[13] &= ~(TCP_FIN | TCP_PSH)
        if k:
            l4[13] &= ~TCP_CWR
    else:
        gn_put_net16(l4 + 4, <uint16_t>(l4h + plen))
    gn_ip4_fill_l4_checksum(vm, b, ip, hlen, hlen + l4h + plen)
    b.flags &= ~(GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD)
    b.gso_size = 0


cdef uint32_t ip4_gso_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gn_next_buffers_t out
    cdef uint8_t hdr[GN_IP4_MAX_HEADER_LEN + TCP_MAX_HEADER]
    cdef uint32_t i, n = frame.n_vectors, bi, sbi, hlen, l4h, total, payload, done, plen, gso
    cdef uint32_t n_packets = 0, n_segs = 0
    cdef gn_buffer_t* b
    cdef uint8_t* ip
    cdef gn_cursor_t c
    cdef gn_ip4_cut_t cut
    cdef bint failed
    out.n = 0
    for i in range(n):
        bi = frame.buffers[i]
        b = gn_main_buffer(vm, bi)
        ip = gn_buffer_current(b)
        if (not gn_ip4_cuttable(vm, bi, b, ip, &hlen, &total)
                or gn_net16(ip + 6) & (GN_IP4_FLAG_MF | GN_IP4_FRAG_OFFSET_MASK)):
            _out_drop(vm, node, &out, bi, ERROR_MALFORMED)
            continue
        if ip[9] != GN_IP4_PROTO_TCP and ip[9] != GN_IP4_PROTO_UDP:
            _out_drop(vm, node, &out, bi, ERROR_NOT_TCP_UDP)
            continue
        l4h = _l4_header_bytes(b, ip, hlen, total)
        gso = b.gso_size
        if l4h == 0 or gso == 0:
            _out_drop(vm, node, &out, bi, ERROR_MALFORMED)
            continue
        payload = total - hlen - l4h
        memcpy(hdr, ip, hlen + l4h)
        c.b = b
        c.off = hlen + l4h
        gn_ip4_cut_begin(&cut, &out)
        done = 0
        failed = False
        while True:
            plen = gso if gso < payload - done else payload - done
            if gn_packet_from_header(vm, b, hdr, hlen + l4h, &c, plen, &sbi) != 0:
                failed = True
                break
            _fix_segment(vm, sbi, hlen, l4h, plen, cut.made, done, done + plen == payload)
            gn_ip4_cut_put(vm, node, &out, &cut, sbi, NEXT_REWRITE)
            done += plen
            if done == payload:
                break
        if failed:
            n_segs += gn_ip4_cut_abort(vm, &out, &cut)
            _out_drop(vm, node, &out, bi, ERROR_NO_BUFFERS)
            continue
        gn_main_free(vm, &bi, 1)
        n_packets += 1
        n_segs += cut.made
    gn_next_buffers_flush(vm, node, &out)
    if n_packets:
        gn_node_increment_error(vm, node, ERROR_SEGMENTED, n_packets)
        gn_node_increment_error(vm, node, ERROR_SEGMENTS, n_segs)
    return n


def nodes(next_node=None, *, name="ip4-gso", attach=None):
    """The ip4-gso registration. next_node: where segments go (default
    ``ip4-rewrite``); attach: claim ip4-rewrite's super-segments too big
    for their interface (key ``gso``; default: when next_node is the
    default)."""
    if attach is None:
        attach = next_node is None
    return (
        node(name, gn_node_fn(ip4_gso_fn), Next=Next, Error=Error, errors=ERRORS,
             nexts=(("rewrite", next_node or "ip4-rewrite"),),
             attach_to=(("ip4-rewrite", "gso"),) if attach else (),
             trace=trace_bytes(TRACE_BYTES, format_ip4_header, "tx"), doc=__doc__),
    )


NODES = nodes()
FEATURE = "ip4"
