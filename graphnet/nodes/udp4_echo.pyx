"""``udp4-echo``: the built-in UDP echo service (RFC 862), on port 7 unless
configured otherwise (``set_udp_echo_port(engine, port)``, before or after
the build).

Each datagram goes back to its sender, built in place: IPv4 addresses and
UDP ports swapped (the reply comes from the address and port that were
asked), TTL 64, a fresh IPv4 header checksum, trailing padding beyond the
UDP length trimmed. The UDP checksum is kept as it was (swapping the
addresses and the ports leaves the sum unchanged; 0 stays "none") unless
the datagram carried only the kernel's partial checksum (offload), in
which case it is computed in full. Then ``ip4-lookup``, with
GN_BUFFER_F_LOCALLY_ORIGINATED.

No answer to a low source port: a datagram from a port below 1024, or
from the echo port itself, is dropped (``reflective-source-port``), as
inetd's built-in echo refuses privileged source ports. Those are where
other reflecting services live (echo 7, discard 9, daytime 13, chargen 19,
time 37, DNS 53, NTP 123, SNMP 161, ...): an answer to one of them is
answered again, and a spoofed datagram from one echo service to another
(or to ourselves, sport 7 -> dport 7) would bounce for ever. The whole
range rather than a list of known reflectors: a client's source port is
ephemeral (1024 and up; Linux picks 32768..60999), so nothing legitimate
is lost. Two echo services on unprivileged ports different from each
other can still be made to bounce by a spoofed datagram; that loop
leaves the host every round and is bounded by the wire.

Metadata used: current_data (IPv4 header), current_length, chains, flags.
Set: current_length (trimmed), sw_if_index[TX] ~0, flags. Next nodes: ``ip4-lookup``. Counted: ``echoed``; dropped:
``reflective-source-port``.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_read_u16, gn_read_u32, gn_write_u16, gn_write_u32
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_INVALID_INDEX, GN_BUFFER_F_NEXT_PRESENT,
                                   GN_BUFFER_F_LOCALLY_ORIGINATED, GN_BUFFER_F_L4_CSUM_OFFLOAD, GN_FRAME_SIZE, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next,
                                 gn_node_increment_error, gn_buffer_set_error)
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.nodes.ip4_csum cimport gn_chain_sum
from graphnet.wire.inet cimport gn_inet_checksum, gn_ip4_pseudo_sum
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_set_checksum, GN_IP4_PROTO_UDP
from graphnet.wire.udp cimport gn_udp_length
from graphnet.vlib.kit import node, trace_ip4

DEFAULT_PORT = 7

cpdef enum Next:
    NEXT_LOOKUP, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_ECHOED, ERROR_REFLECTIVE_SOURCE_PORT, N_ERROR

cdef enum:
    REPLY_TTL = 64
    MIN_SOURCE_PORT = 1024          # below: not answered (see the module docstring)

ERRORS = (
    ("none", "info", "no error"),
    ("echoed", "info", "datagrams echoed"),
    ("reflective-source-port", "error", "not echoed: source port below 1024 or the echo port itself "
                                       "(a reflecting service; would loop)"),
)


cdef uint32_t udp4_echo_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef uint32_t i, n = frame.n_vectors, hlen, ulen, a, sport, n_echoed = 0
    cdef uint16_t csum
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef bint complete
    cdef gn_buffer_t* b
    cdef uint8_t* ip
    cdef uint8_t* u
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        ip = gn_buffer_current(b)
        hlen = gn_ip4_header_bytes(ip)
        u = ip + hlen
        ulen = gn_udp_length(u)                 # checked by udp4-input
        sport = gn_net16(u)
        if sport < MIN_SOURCE_PORT or sport == gn_net16(u + 2):
            gn_buffer_set_error(node, b, ERROR_REFLECTIVE_SOURCE_PORT)
            nexts[i] = node.drop_next
            continue
        nexts[i] = NEXT_LOOKUP
        n_echoed += 1
        a = gn_read_u32(ip + 12)
        gn_write_u32(ip + 12, gn_read_u32(ip + 16))
        gn_write_u32(ip + 16, a)
        a = gn_read_u16(u)
        gn_write_u16(u, gn_read_u16(u + 2))
        gn_write_u16(u + 2, <uint16_t>a)
        gn_put_net16(ip + 2, <uint16_t>(hlen + ulen))
        if not (b.flags & GN_BUFFER_F_NEXT_PRESENT) and b.current_length > hlen + ulen:
            b.current_length = hlen + ulen
        ip[8] = REPLY_TTL
        gn_put_net16(ip + 6, 0)
        gn_ip4_set_checksum(ip)
        if b.flags & GN_BUFFER_F_L4_CSUM_OFFLOAD:
            gn_write_u16(u + 6, 0)
            csum = gn_inet_checksum(gn_chain_sum(vm, b, hlen, ulen, gn_ip4_pseudo_sum(ip, GN_IP4_PROTO_UDP, ulen),
                                                 &complete))
            gn_put_net16(u + 6, csum if csum != 0 else 0xffff)
        b.sw_if_index[GN_TX] = GN_INVALID_INDEX
        b.flags = (b.flags | GN_BUFFER_F_LOCALLY_ORIGINATED) & ~GN_BUFFER_F_L4_CSUM_OFFLOAD
    gn_node_increment_error(vm, node, ERROR_ECHOED, n_echoed)
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


def set_udp_echo_port(engine, port, old=None):
    """Serve UDP echo on ``port`` instead of ``old`` (default: the
    current port, 7 unless changed). port None: switch the service off."""
    from graphnet.nodes.udp4 import udp_register_port, udp_unregister_port, udp_ports
    if old is None:
        old = getattr(engine, "_udp_echo_port", DEFAULT_PORT)
    if old is not None and old != port:
        udp_unregister_port(engine, old)
    if port is not None:
        udp_register_port(engine, port, "udp4-echo")
    engine._udp_echo_port = port


NODES = (
    node("udp4-echo", gn_node_fn(udp4_echo_fn), nexts=(("lookup", "ip4-lookup"),), Next=Next, errors=ERRORS,
         Error=Error, attach_to=(("udp4-input", DEFAULT_PORT),), trace=trace_ip4(),
         doc=__doc__),
)
FEATURE = "ip4-host"
