"""``tcp4-output``: TCP segments built by the transport, checksummed and put in IPv4.

Every segment the TCP transport sends (from the tcp4-* state nodes,
tcp4-timer and session-queue's push) comes here as a TCP header, options
and payload at current_data, its addresses in the TCP opaque
(graphnet.transport.tcp4.gn_tcp4_opaque_t). This node computes the TCP
checksum over the pseudo header, pushes a 20-byte IPv4 header (TTL 64,
DF, an incrementing id, header checksum), marks the buffer locally
originated with no tx interface, and sends it to ``ip4-lookup``.

Metadata used: current_data, current_length, the TCP opaque's src_ip and
dst_ip. Set: current_data (moved back 20 bytes), current_length, flags
(LOCALLY_ORIGINATED), sw_if_index[TX] (invalid: ip4-lookup decides).
Next nodes: ``ip4-lookup``. Counters: ``segments`` (info: segments sent).
Trace: the IPv4 and TCP headers decoded (ports, flags, seq/ack, window,
options), recorded as the segment arrives (before its IPv4 header).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.includes.byteorder cimport gn_put_net16, gn_put_net32
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_INVALID_INDEX, GN_BUFFER_F_LOCALLY_ORIGINATED,
                                   gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_single_next,
                                 gn_node_increment_error)
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.wire.ip4 cimport gn_ip4_set_checksum, GN_IP4_PROTO_TCP
from graphnet.wire.tcp cimport gn_tcp4_set_checksum
from graphnet.transport.tcp4 cimport gn_tcp4_main_t, gn_tcp4_opaque_t, gn_tcp4_opaque
from graphnet.vlib.kit import node, trace_bytes
from graphnet.transport.tcp4 import attach_node
from graphnet.wire.tcp import format_tcp_header

cpdef enum Next:
    NEXT_LOOKUP, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_SEGMENTS, N_ERROR

NEXTS = (("lookup", "ip4-lookup"),)
ERRORS = (("none", "info", "no error"), ("segments", "info", "TCP segments sent"))


cdef uint32_t tcp4_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>node.runtime_data
    cdef uint32_t i, n = frame.n_vectors, len
    cdef gn_buffer_t* b
    cdef gn_tcp4_opaque_t* op
    cdef uint8_t* t
    cdef uint8_t* ip
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        op = gn_tcp4_opaque(b)
        t = gn_buffer_current(b)
        len = b.current_length
        gn_tcp4_set_checksum(op.src_ip, op.dst_ip, t, len)
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
    gn_enqueue_to_single_next(vm, node, frame.buffers, NEXT_LOOKUP, n)
    return n


def _format_segment(data, int indent=0):
    return format_tcp_header(data, indent)


def _setup(engine, node_index):
    t = attach_node(engine, node_index)
    t.set_queue_next(engine.next_index("session-queue", "tcp4-output"))


NODES = (
    node("tcp4-output", gn_node_fn(tcp4_output_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("session-queue", None),), setup=_setup, trace=trace_bytes(80, _format_segment, "tx"),
         doc=__doc__),
)
FEATURE = "session"             # with the session layer (graphnet.nodes.session_host)
