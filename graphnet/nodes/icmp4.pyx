"""``ip4-icmp-input``: ICMP messages for this host; answers echo requests.

Claims protocol 1 of ``ip4-local``. Checks: at least 8 bytes of ICMP
(``too-short``), the checksum over the whole message, across a buffer chain
(``bad-checksum``). An echo request (type 8) to any of our addresses is
answered in place: addresses swapped (the reply comes from the address that
was pinged), type 0, the ICMP checksum updated incrementally (RFC 1624;
recomputed in the one case where eqn. 3 gives 0x0000 for 0xffff), TTL
64, a fresh IPv4 header checksum, GN_BUFFER_F_LOCALLY_ORIGINATED (so
ip4-rewrite keeps the TTL); it goes to ``ip4-lookup`` and out like any
packet (``echo-replies`` counts them). Echo replies go to
``ip4-ping-reply`` when the graph has it (graphnet.nodes.ip4_ping), marked
``echo-reply-received``, which it keeps on those no ping waits for; errors
and other types are counted and consumed (``echo-reply-received``,
``error-received``, ``unhandled-type``): nothing here listens for them yet.

Metadata used: current_data (the IPv4 header, per ip4-local's
convention), current_length, chains. Set on a reply: sw_if_index[TX] ~0,
flags. Next nodes: ``ip4-lookup``, ``ip4-ping-reply`` (or error-drop). Trace: the rx interface and the
IPv4 packet with its ICMP type, code, id and seq, or the header an error
quotes (kit.trace_ip4).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_read_u32, gn_write_u32
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_INVALID_INDEX, GN_BUFFER_F_LOCALLY_ORIGINATED,
                                   GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD, GN_FRAME_SIZE, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next,
                                 gn_node_increment_error, gn_buffer_set_error)
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.nodes.ip4_csum cimport gn_chain_sum
from graphnet.wire.inet cimport gn_inet_fold, gn_inet_checksum, gn_csum_update16
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_total_length, gn_ip4_set_checksum
from graphnet.wire.icmp4 cimport GN_ICMP4_HEADER_LEN, GN_ICMP4_ECHO_REQUEST, GN_ICMP4_ECHO_REPLY, gn_icmp4_is_error
from graphnet.vlib.kit import node, trace_ip4

cpdef enum Next:
    NEXT_LOOKUP, NEXT_PING_REPLY, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_TOO_SHORT, ERROR_BAD_CHECKSUM, ERROR_ECHO_REPLIES, ERROR_ECHO_REPLY_RECEIVED
    ERROR_ERROR_RECEIVED, ERROR_UNHANDLED_TYPE, N_ERROR

cdef enum:
    REPLY_TTL = 64

NEXTS = (("lookup", "ip4-lookup"), ("ping-reply", ("ip4-ping-reply", "error-drop")))

ERRORS = (
    ("none", "info", "no error"),
    ("too-short", "error", "ICMP message shorter than 8 bytes"),
    ("bad-checksum", "error", "ICMP checksum wrong"),
    ("echo-replies", "info", "echo requests answered"),
    ("echo-reply-received", "info", "echo reply received (no listener)"),
    ("error-received", "info", "ICMP error received (not delivered yet)"),
    ("unhandled-type", "error", "ICMP type not handled"),
)


cdef inline uint32_t _icmp_one(gn_main_t* vm, gn_buffer_t* b) noexcept nogil:
    """Returns 0 when b became an echo reply, else an ERROR_* row."""
    cdef uint8_t* ip = gn_buffer_current(b)
    cdef uint32_t hlen = gn_ip4_header_bytes(ip), total = gn_ip4_total_length(ip), n, a
    cdef uint16_t c
    cdef uint8_t* icmp = ip + hlen
    cdef bint complete
    if total < hlen + GN_ICMP4_HEADER_LEN or b.current_length < hlen + GN_ICMP4_HEADER_LEN:
        return ERROR_TOO_SHORT
    n = total - hlen
    if gn_inet_fold(gn_chain_sum(vm, b, hlen, n, 0, &complete)) != 0xffff or not complete:
        return ERROR_BAD_CHECKSUM
    if icmp[0] != GN_ICMP4_ECHO_REQUEST:
        if icmp[0] == GN_ICMP4_ECHO_REPLY:
            return ERROR_ECHO_REPLY_RECEIVED
        if gn_icmp4_is_error(icmp[0]):
            return ERROR_ERROR_RECEIVED
        return ERROR_UNHANDLED_TYPE
    # the reply, in place
    c = gn_csum_update16(gn_net16(icmp + 2), (<uint16_t>icmp[0] << 8) | icmp[1],
                         (<uint16_t>GN_ICMP4_ECHO_REPLY << 8) | icmp[1])
    icmp[0] = GN_ICMP4_ECHO_REPLY
    if c == 0:
        # RFC 1624's eqn. 3 gives 0x0000 both when the sum is 0xffff and when
        # it is 0 (an all-zero message, which needs 0xffff): recompute
        gn_put_net16(icmp + 2, 0)
        c = gn_inet_checksum(gn_chain_sum(vm, b, hlen, n, 0, &complete))
    gn_put_net16(icmp + 2, c)
    a = gn_read_u32(ip + 12)
    gn_write_u32(ip + 12, gn_read_u32(ip + 16))
    gn_write_u32(ip + 16, a)
    ip[8] = REPLY_TTL
    gn_put_net16(ip + 6, gn_net16(ip + 6) & 0x4000)      # keep DF only
    gn_ip4_set_checksum(ip)
    b.sw_if_index[GN_TX] = GN_INVALID_INDEX
    b.flags = (b.flags | GN_BUFFER_F_LOCALLY_ORIGINATED) & ~(GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD)
    return 0


cdef uint32_t icmp4_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, err
    cdef uint64_t n_replies = 0
    cdef gn_buffer_t* b
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        err = _icmp_one(vm, b)
        if err == 0:
            nexts[i] = NEXT_LOOKUP
            n_replies += 1
        else:
            gn_buffer_set_error(node, b, err)
            nexts[i] = NEXT_PING_REPLY if err == ERROR_ECHO_REPLY_RECEIVED else node.drop_next
    if n_replies:
        gn_node_increment_error(vm, node, ERROR_ECHO_REPLIES, n_replies)
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


NODES = (
    node("ip4-icmp-input", gn_node_fn(icmp4_input_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("ip4-local", 1),), trace=trace_ip4(), doc=__doc__),
)
FEATURE = "ip4-host"
