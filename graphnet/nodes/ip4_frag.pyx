"""``ip4-frag``: fragment IPv4 packets larger than the tx MTU.

It attaches to ``ip4-rewrite`` (key ``fragment``). The contract (VPP's):
a packet whose total length exceeds its adjacency's interface MTU comes
here *before* the rewrite, with current_data at the IPv4 header (TTL not
yet decremented, no L2 header), ``sw_if_index[TX]`` set to the adjacency's
interface and the ip4 opaque (adj_index) as ip4-lookup left it; fragments
go back to ip4-rewrite, which decrements their TTL and pushes their L2
header. The MTU is that interface's (its L3 MTU: the IPv4 total length
limit); ``nodes(mtu=N)`` caps it at N (and sets it for packets with no tx
interface: standalone use, tests).

- Total length within the MTU: passes through unchanged.
- DF set: to ``ip4-icmp-error`` when the graph has that node, else
  dropped; counted once, as ``df-set-too-big`` (the reason it came with,
  ip4-rewrite's ``mtu-exceeded``, is replaced: one packet, one reason).
  The packet is left as received, for the ICMP error to quote;
  ip4-icmp-error turns ``df-set-too-big`` into destination unreachable /
  fragmentation needed (3/4) with the adjacency's interface MTU, RFC
  1191, and counts the reason when it consumes the packet.
- Otherwise it is cut at 8-byte boundaries into fragments of at most MTU
  bytes, each in new buffers (chained when a fragment exceeds a buffer),
  sent in order: the first carries the whole original header (options
  included), the others the options with the copy flag (RFC 791), padded to
  a multiple of 4. Offsets continue from the packet's own offset and the
  last fragment keeps its MF, so a fragment can be fragmented again. Total
  length, flags, offset and header checksum are set per fragment; metadata
  (sw_if_index, opaque, trace) are copied. The original is freed.

Counters: ``fragmented`` (packets) and ``fragments`` (fragments made) are
events; drops: ``df-set-too-big`` (answered by ip4-icmp-error or not), ``mtu-too-small``
(the MTU leaves no room for a header and 8 bytes of data), ``bad-options``
(malformed options), ``malformed`` (header not in the first buffer, total
length beyond the packet), ``no-buffers`` (the packet is dropped; its
fragments not yet handed on are freed; those already handed on in a full
frame count under ``fragments``, so fragments sent == ``fragments``).

Metadata used: current_data (IPv4 header), chains, sw_if_index[TX],
opaque. Next nodes: ``ip4-rewrite`` when the graph has it, else
``interface-output`` (``nodes(next_node=...)`` picks another);
``ip4-icmp-error`` when the graph has it, else error-drop. Trace record: tx
sw_if_index and the first 64 bytes of the packet.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16
from graphnet.io.interface cimport InterfaceTable, gn_interface_main_t, gn_interface_t, gn_interface
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_TX, gn_buffer_current
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free, gn_next_buffers_t,
                                 gn_next_buffers_flush, gn_next_buffers_put, gn_node_increment_error,
                                 gn_buffer_set_error)
from graphnet.wire.ip4 cimport (gn_ip4_set_checksum, GN_IP4_HEADER_LEN,
                                GN_IP4_MAX_HEADER_LEN, GN_IP4_FLAG_DF, GN_IP4_FLAG_MF, GN_IP4_FLAG_RESERVED,
                                GN_IP4_FRAG_OFFSET_MASK)
from graphnet.wire.ip4_options cimport gn_ip4_options_for_fragments
from graphnet.io.bufcopy cimport gn_cursor_t, gn_packet_from_header
from graphnet.nodes.ip4_cut cimport gn_ip4_cut_t, gn_ip4_cuttable, gn_ip4_cut_begin, gn_ip4_cut_put, gn_ip4_cut_abort
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.vlib.kit import node, trace_bytes
from graphnet.wire.ip4 import format_ip4_header

cpdef enum Next:
    NEXT_OUTPUT, NEXT_ICMP_ERROR, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_FRAGMENTED, ERROR_FRAGMENTS, ERROR_DF_SET_TOO_BIG, ERROR_MTU_TOO_SMALL, ERROR_BAD_OPTIONS
    ERROR_MALFORMED, ERROR_NO_BUFFERS, N_ERROR

cdef enum:
    TRACE_BYTES = 64

ERRORS = (
    ("none", "info", "no error"),
    ("fragmented", "info", "packets fragmented"),
    ("fragments", "info", "fragments sent"),
    ("df-set-too-big", "error", "larger than the MTU with DF set (ICMP fragmentation needed, or dropped without ip4-icmp-error)"),
    ("mtu-too-small", "error", "MTU leaves no room for a header and 8 bytes of data"),
    ("bad-options", "error", "malformed IPv4 options"),
    ("malformed", "error", "header not in the first buffer or total length beyond the packet"),
    ("no-buffers", "error", "no buffers for the fragments: packet dropped"),
)

ctypedef struct ip4_frag_t:
    gn_interface_main_t* im
    uint32_t mtu_cap              # 0: the tx interface's MTU only
    uint32_t icmp_error           # arc NEXT_ICMP_ERROR is ip4-icmp-error (else error-drop)


cdef inline void _out_drop(gn_main_t* vm, gn_node_runtime_t* node, gn_next_buffers_t* out, uint32_t bi,
                           uint32_t code) noexcept nogil:
    gn_buffer_set_error(node, gn_main_buffer(vm, bi), code)
    gn_next_buffers_put(vm, node, out, bi, node.drop_next)


cdef int _make_fragment(gn_main_t* vm, gn_buffer_t* orig, const uint8_t* hdr, uint32_t hlen, uint16_t frag_field,
                        gn_cursor_t* c, uint32_t plen, uint32_t* out_bi) noexcept nogil:
    """One fragment: header `hdr` (hlen bytes) and the next plen payload
    bytes at cursor c, in new buffers with orig's metadata; total length,
    flags/offset and checksum set here. Returns 0, or -1 (nothing
    allocated) when buffers ran out."""
    cdef uint8_t* ip
    if gn_packet_from_header(vm, orig, hdr, hlen, c, plen, out_bi) != 0:
        return -1
    ip = gn_main_buffer(vm, out_bi[0]).data
    gn_put_net16(ip + 2, <uint16_t>(hlen + plen))
    gn_put_net16(ip + 6, frag_field)
    gn_ip4_set_checksum(ip)
    return 0


cdef uint32_t ip4_frag_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ip4_frag_t* fm = <ip4_frag_t*>node.runtime_data
    cdef gn_next_buffers_t out
    cdef uint8_t hdr2[GN_IP4_MAX_HEADER_LEN + 4]
    cdef uint32_t i, n = frame.n_vectors, bi, fbi, hlen, hlen2, total, mtu, sw, payload, done, plen
    cdef uint32_t max1, max2, off8, n_packets = 0, n_frags = 0
    cdef uint16_t frag, mf_last
    cdef int w
    cdef gn_buffer_t* b
    cdef gn_interface_t* hw
    cdef uint8_t* ip
    cdef gn_cursor_t c
    cdef gn_ip4_cut_t cut
    cdef bint failed
    out.n = 0
    for i in range(n):
        bi = frame.buffers[i]
        b = gn_main_buffer(vm, bi)
        ip = gn_buffer_current(b)
        if not gn_ip4_cuttable(vm, bi, b, ip, &hlen, &total):
            _out_drop(vm, node, &out, bi, ERROR_MALFORMED)
            continue
        sw = b.sw_if_index[GN_TX]
        hw = gn_interface(fm.im, sw)
        mtu = hw.mtu if hw != NULL else 0xffff
        if fm.mtu_cap and fm.mtu_cap < mtu:
            mtu = fm.mtu_cap
        if total <= mtu:
            gn_next_buffers_put(vm, node, &out, bi, NEXT_OUTPUT)
            continue
        frag = gn_net16(ip + 6)
        if frag & GN_IP4_FLAG_DF:
            if fm.icmp_error:
                # one packet, one reason: this node's (ip4-rewrite's mtu-exceeded,
                # which sent it here, is replaced, not counted as well)
                gn_buffer_set_error(node, b, ERROR_DF_SET_TOO_BIG)
                gn_next_buffers_put(vm, node, &out, bi, NEXT_ICMP_ERROR)
            else:
                _out_drop(vm, node, &out, bi, ERROR_DF_SET_TOO_BIG)
            continue
        # the header of the fragments after the first: copied options only
        memcpy(hdr2, ip, GN_IP4_HEADER_LEN)
        w = gn_ip4_options_for_fragments(ip + GN_IP4_HEADER_LEN, hlen - GN_IP4_HEADER_LEN, hdr2 + GN_IP4_HEADER_LEN)
        if w < 0:
            _out_drop(vm, node, &out, bi, ERROR_BAD_OPTIONS)
            continue
        hlen2 = GN_IP4_HEADER_LEN + <uint32_t>w
        hdr2[0] = <uint8_t>(0x40 | (hlen2 // 4))
        if mtu < hlen + 8 or mtu < hlen2 + 8:
            _out_drop(vm, node, &out, bi, ERROR_MTU_TOO_SMALL)
            continue
        max1 = (mtu - hlen) & ~7u
        max2 = (mtu - hlen2) & ~7u
        payload = total - hlen
        off8 = frag & GN_IP4_FRAG_OFFSET_MASK
        mf_last = frag & GN_IP4_FLAG_MF
        frag &= GN_IP4_FLAG_RESERVED          # keep the reserved bit as it was
        c.b = b
        c.off = hlen
        gn_ip4_cut_begin(&cut, &out)
        done = 0
        failed = False
        while done < payload:
            if done == 0:
                plen = max1 if max1 < payload else payload
            else:
                plen = max2 if max2 < payload - done else payload - done
            if _make_fragment(vm, b, ip if done == 0 else hdr2, hlen if done == 0 else hlen2,
                              <uint16_t>(frag | ((off8 + done // 8) & GN_IP4_FRAG_OFFSET_MASK)
                                         | (GN_IP4_FLAG_MF if done + plen < payload else mf_last)),
                              &c, plen, &fbi) != 0:
                failed = True
                break
            gn_ip4_cut_put(vm, node, &out, &cut, fbi, NEXT_OUTPUT)
            done += plen
        if failed:
            # the fragments still in hand freed; those sent counted as sent (the packet as no-buffers)
            n_frags += gn_ip4_cut_abort(vm, &out, &cut)
            _out_drop(vm, node, &out, bi, ERROR_NO_BUFFERS)
            continue
        gn_main_free(vm, &bi, 1)
        n_packets += 1
        n_frags += cut.made
    gn_next_buffers_flush(vm, node, &out)
    if n_packets:
        gn_node_increment_error(vm, node, ERROR_FRAGMENTED, n_packets)
        gn_node_increment_error(vm, node, ERROR_FRAGMENTS, n_frags)
    return n


def nodes(next_node=None, *, name="ip4-frag", mtu=None, attach=None):
    """The ip4-frag registration. next_node: where fragments (and packets
    within the MTU) go (default ``ip4-rewrite`` if in the graph, else
    ``interface-output``); mtu: a cap on the tx interface's MTU (and the MTU
    of packets with no tx interface); attach: claim ip4-rewrite's too-big
    packets (key ``fragment``; default: when next_node is the default)."""
    if mtu is not None and not 28 <= mtu <= 65535:
        raise ValueError("mtu must be 28..65535")
    if attach is None:
        attach = next_node is None

    def setup(engine, node_index):
        _setup(engine, name, mtu or 0)

    return (
        node(name, gn_node_fn(ip4_frag_fn), Next=Next, Error=Error, errors=ERRORS,
             nexts=(("output", next_node or ("ip4-rewrite", "interface-output")),
                    ("icmp-error", ("ip4-icmp-error", "error-drop"))),
             data_size=sizeof(ip4_frag_t), setup=setup, attach_to=(("ip4-rewrite", "fragment"),) if attach else (),
             trace=trace_bytes(TRACE_BYTES, format_ip4_header, "tx"), doc=__doc__),
    )


def _setup(engine, name, uint32_t mtu_cap):
    cdef ip4_frag_t* fm = <ip4_frag_t*>gn_node_data(engine, name)
    fm.im = (<InterfaceTable>engine.interfaces).im
    fm.mtu_cap = mtu_cap
    fm.icmp_error = engine.next_names[name][NEXT_ICMP_ERROR] == "ip4-icmp-error"


NODES = nodes()
FEATURE = "ip4"
