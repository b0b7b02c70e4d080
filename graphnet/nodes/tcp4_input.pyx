"""``tcp4-input``: TCP segments for this host: checked, looked up, sent on by state.

Claims protocol 6 of ``ip4-local``. Checks, in order: the TCP header in
the first buffer and within the IP payload (``too-short``,
``bad-data-offset``, ``truncated``), the checksum over the pseudo header
and the segment across a buffer chain unless the device says the kernel
left it to offload (GN_BUFFER_F_L4_CSUM_OFFLOAD: a TAP's frame that never
left the host, or a GSO super-frame) (``bad-checksum``), the options
(``bad-option-length``, ``bad-option``). Then the 4-tuple's connection
(graphnet.transport.tcp4) decides the next node: ``tcp4-established``
(ESTABLISHED), ``tcp4-syn-sent`` (SYN_SENT), ``tcp4-rcv-process`` (every
other state); no connection: ``tcp4-listen`` if a listener has the
address and port, else ``tcp4-reset``.

Metadata used: current_data (the IPv4 header, as ip4-local hands it
over), current_length, flags (L4_CSUM_OFFLOAD, chains). Set: the
connection index in the buffer's TCP opaque. Next nodes:
``tcp4-established``, ``tcp4-syn-sent``, ``tcp4-rcv-process``,
``tcp4-listen``, ``tcp4-reset``. Counters: the wire errors above (all
drops). Trace: the IPv4 and TCP headers decoded (ports, flags, seq/ack,
window, options).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_FRAME_SIZE, GN_BUFFER_F_L4_CSUM_OFFLOAD
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.nodes.ip4_csum cimport gn_chain_sum
from graphnet.wire.inet cimport gn_inet_fold
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_src, gn_ip4_dst
from graphnet.wire.tcp cimport gn_tcp4_pseudo_sum, GN_TCP_OK
from graphnet.transport.tcp.conn cimport gn_tcp_seg_t, gn_tcp_seg_parse, GN_TCP_SYN_SENT, GN_TCP_ESTABLISHED
from graphnet.transport.tcp4 cimport (gn_tcp4_main_t, gn_tcp4_segment_view, gn_tcp4_lookup, gn_tcp4_conn_at,
                                      gn_tcp4_find_listener, gn_tcp4_conn_t, gn_tcp4_opaque)
from graphnet.session.types cimport GN_SESSION_INVALID_INDEX
from graphnet.vlib.kit import node, trace_bytes
from graphnet.wire.tcp import PARSE_ERRORS
from graphnet.transport.tcp4 import attach_node, format_ip4_tcp

cpdef enum Next:
    NEXT_ESTABLISHED, NEXT_SYN_SENT, NEXT_RCV_PROCESS, NEXT_LISTEN, NEXT_RESET, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_TOO_SHORT, ERROR_BAD_DATA_OFFSET, ERROR_TRUNCATED, ERROR_BAD_OPTION_LENGTH, ERROR_BAD_OPTION
    ERROR_BAD_CHECKSUM, N_ERROR

NEXTS = (("established", "tcp4-established"), ("syn-sent", "tcp4-syn-sent"), ("rcv-process", "tcp4-rcv-process"),
         ("listen", "tcp4-listen"), ("reset", "tcp4-reset"))
ERRORS = PARSE_ERRORS + (("bad-checksum", "error", "TCP checksum wrong"),)


cdef inline uint32_t _check(gn_main_t* vm, gn_buffer_t* b, gn_tcp_seg_t* seg, uint8_t** ipp) noexcept nogil:
    cdef uint8_t* ip
    cdef uint8_t* t
    cdef uint32_t n, r
    cdef bint complete
    r = gn_tcp4_segment_view(vm, b, &ip, &t, &n)
    if r != GN_TCP_OK:
        return r
    if not (b.flags & GN_BUFFER_F_L4_CSUM_OFFLOAD):
        if gn_inet_fold(gn_chain_sum(vm, b, gn_ip4_header_bytes(ip), n,
                                     gn_tcp4_pseudo_sum(gn_ip4_src(ip), gn_ip4_dst(ip), n), &complete)) != 0xffff \
                or not complete:
            return ERROR_BAD_CHECKSUM
    ipp[0] = ip
    return gn_tcp_seg_parse(t, n, seg)


cdef uint32_t tcp4_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gn_tcp4_main_t* tm = <gn_tcp4_main_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, err, ci
    cdef gn_buffer_t* b
    cdef gn_tcp_seg_t seg
    cdef gn_tcp4_conn_t* tc
    cdef uint8_t* ip
    cdef uint8_t* t
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        err = _check(vm, b, &seg, &ip)
        if err != 0:
            gn_buffer_set_error(node, b, err)
            nexts[i] = node.drop_next
            continue
        t = ip + gn_ip4_header_bytes(ip)
        ci = gn_tcp4_lookup(tm, gn_ip4_dst(ip), (t[2] << 8) | t[3], gn_ip4_src(ip), (t[0] << 8) | t[1])
        tc = gn_tcp4_conn_at(tm, ci)
        if tc != NULL:
            gn_tcp4_opaque(b).conn = ci
            nexts[i] = (NEXT_ESTABLISHED if tc.t.state == GN_TCP_ESTABLISHED else
                        NEXT_SYN_SENT if tc.t.state == GN_TCP_SYN_SENT else NEXT_RCV_PROCESS)
        elif gn_tcp4_find_listener(tm, gn_ip4_dst(ip), (t[2] << 8) | t[3]) != NULL:
            nexts[i] = NEXT_LISTEN
        else:
            nexts[i] = NEXT_RESET
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


NODES = (
    node("tcp4-input", gn_node_fn(tcp4_input_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("ip4-local", 6),), setup=attach_node, trace=trace_bytes(100, format_ip4_tcp), doc=__doc__),
)
FEATURE = "session"             # with the session layer (graphnet.nodes.session_host)
