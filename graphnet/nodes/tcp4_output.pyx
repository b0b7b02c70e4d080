"""``tcp4-output``: TCP segments built by the transport, checksummed and put in IPv4.

Every segment the TCP transport sends (from the tcp4-* state nodes,
tcp4-timer and session-queue's push) comes here as a TCP header, options
and payload at current_data, its addresses in the TCP opaque
(graphnet.transport.tcp4.gn_tcp4_opaque_t). This node computes the TCP
checksum over the pseudo header, pushes a 20-byte IPv4 header (TTL 64,
DF, an incrementing id, header checksum), marks the buffer locally
originated with no tx interface, and sends it to ``ip4-lookup``. A TSO
super-segment (GSO flag, gso_size = the MSS; a buffer chain, headers in
the first buffer) gets the total length of the whole chain and only the
pseudo header's partial sum in its checksum field: the device (tap-output:
virtio-net NEEDS_CSUM + GSO_TCPV4) cuts it into gso_size segments and
finishes each checksum.

Metadata used: current_data, current_length, the chain's length, flags
(GSO), the TCP opaque's src_ip and dst_ip. Set: current_data (moved back
20 bytes), current_length, flags (LOCALLY_ORIGINATED), sw_if_index[TX]
(invalid: ip4-lookup decides). Next nodes: ``ip4-lookup``. Counters:
``segments`` (info: segments sent), ``tso-segments`` (info: of them, TSO
super-segments). Trace: the TCP length and, for a super-segment, its
gso_size and segment count, then the TCP header decoded (ports, flags,
seq/ack, window, options), recorded as the segment arrives (before its
IPv4 header).
"""
import struct

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.includes.byteorder cimport gn_put_net16, gn_put_net32
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_INVALID_INDEX, GN_BUFFER_F_LOCALLY_ORIGINATED,
                                   GN_BUFFER_F_GSO, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_single_next,
                                 gn_node_increment_error)
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.wire.ip4 cimport gn_ip4_set_checksum, GN_IP4_PROTO_TCP
from graphnet.wire.tcp cimport gn_tcp4_set_checksum, gn_tcp4_set_partial_checksum
from graphnet.transport.tcp4 cimport gn_tcp4_main_t, gn_tcp4_opaque_t, gn_tcp4_opaque
from graphnet.vlib.kit import node, trace_record, format_trace_bytes
from graphnet.transport.tcp4 import attach_node
from graphnet.wire.tcp import format_tcp_header

cpdef enum Next:
    NEXT_LOOKUP, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_SEGMENTS, ERROR_TSO_SEGMENTS, N_ERROR

cdef enum:
    TRACE_BYTES = 80

NEXTS = (("lookup", "ip4-lookup"),)
ERRORS = (("none", "info", "no error"), ("segments", "info", "TCP segments sent"),
          ("tso-segments", "info", "of them TSO super-segments (checksum and segmentation by the device)"))

ctypedef packed struct tcp4_out_trace_t:
    uint32_t tcp_length           # TCP header + payload, the whole chain
    uint16_t gso_size             # 0: an ordinary segment
    uint8_t bytes[GN_TRACE_BYTES_HEADER + TRACE_BYTES]   # the kit's record: the TCP header on


cdef uint32_t tcp4_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>node.runtime_data
    cdef uint32_t i, n = frame.n_vectors, len
    cdef gn_buffer_t* b
    cdef gn_tcp4_opaque_t* op
    cdef uint8_t* t
    cdef uint8_t* ip
    cdef uint32_t n_tso = 0
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        op = gn_tcp4_opaque(b)
        t = gn_buffer_current(b)
        len = b.current_length + b.total_length_not_including_first_buffer
        if b.flags & GN_BUFFER_F_GSO:
            gn_tcp4_set_partial_checksum(op.src_ip, op.dst_ip, t, len)
            n_tso += 1
        else:
            gn_tcp4_set_checksum(op.src_ip, op.dst_ip, t, len)     # one buffer: one MSS
        b.current_data -= 20
        b.current_length += 20
        ip = gn_buffer_current(b)
        ip[0] = 0x45
        ip[1] = 0
        gn_put_net16(ip + 2, <uint16_t>(20 + len))
        gn_put_net16(ip + 4, tm.ip_id)
        tm.ip_id += 1
        gn_put_net16(ip + 6, 0x4000)                   # DF: path MTU discovery (RFC 1191)
        ip[8] = 64
        ip[9] = GN_IP4_PROTO_TCP
        gn_put_net32(ip + 12, op.src_ip)
        gn_put_net32(ip + 16, op.dst_ip)
        gn_ip4_set_checksum(ip)
        b.flags |= GN_BUFFER_F_LOCALLY_ORIGINATED
        b.sw_if_index[GN_TX] = GN_INVALID_INDEX
    gn_node_increment_error(vm, node, ERROR_SEGMENTS, n)
    if n_tso:
        gn_node_increment_error(vm, node, ERROR_TSO_SEGMENTS, n_tso)
    gn_enqueue_to_single_next(vm, node, frame.buffers, NEXT_LOOKUP, n)
    return n


cdef uint16_t tcp4_output_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                   uint8_t* record) noexcept nogil:
    cdef tcp4_out_trace_t* tr = <tcp4_out_trace_t*>record
    tr.tcp_length = b.current_length + b.total_length_not_including_first_buffer
    tr.gso_size = b.gso_size if b.flags & GN_BUFFER_F_GSO else 0
    return 6 + gn_trace_bytes_fill(tr.bytes, b.sw_if_index[GN_TX], gn_buffer_current(b), b.current_length,
                                   TRACE_BYTES)


_TRACE = struct.Struct("<IH")


def parse_tcp4_output_trace(bytes record):
    """{tcp_length, gso_size, payload, segments, header (the TCP header's
    bytes)} of a tcp4-output trace record (tests and tools)."""
    from graphnet.vlib.kit import parse_trace_bytes
    length, gso = _TRACE.unpack_from(record)
    _, data = parse_trace_bytes(record, _TRACE.size)
    hlen = (data[12] >> 4) * 4 if len(data) > 12 else 0
    payload = max(length - hlen, 0)
    return {"tcp_length": length, "gso_size": gso, "payload": payload, "header": data,
            "segments": -(-payload // gso) if gso else 1}


def format_tcp4_output_trace(bytes record, engine=None):
    """``  TSO super-segment: 63712 payload bytes, 44 segments of gso_size
    1448, checksum by the device`` (or ``  segment: TCP length N``), then
    the TCP header decoded."""
    d = parse_tcp4_output_trace(record)
    if d["gso_size"]:
        first = (f"  TSO super-segment: {d['payload']} payload bytes, {d['segments']} segments of gso_size "
                 f"{d['gso_size']}, checksum by the device")
    else:
        first = f"  segment: TCP length {d['tcp_length']}"
    return first + "\n" + format_trace_bytes(record, engine, format_tcp_header, "tx", _TRACE.size)


def _setup(engine, node_index):
    t = attach_node(engine, node_index)
    t.set_queue_next(engine.next_index("session-queue", "tcp4-output"))


NODES = (
    node("tcp4-output", gn_node_fn(tcp4_output_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("session-queue", None),), setup=_setup,
         trace=trace_record(gn_trace_fn(tcp4_output_trace_fn), sizeof(tcp4_out_trace_t), format_tcp4_output_trace),
         doc=__doc__),
)
FEATURE = "session"             # with the session layer (graphnet.nodes.session_host)
