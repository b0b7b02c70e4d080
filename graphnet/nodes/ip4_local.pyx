"""``ip4-local``: IPv4 packets for this host (ip4-lookup's local
adjacency): dispatch by IP protocol to the nodes that claimed it.

Attaches to ``ip4-lookup`` with key ``"local"``. A protocol node claims its
number in its own registration: ``attach_to=(("ip4-local", 1),)`` (ICMP),
``(("ip4-local", 17),)`` (UDP); ``on_attach`` records protocol -> next in a
256-entry table. A packet for an unclaimed protocol goes to
``ip4-icmp-error`` (protocol unreachable) when the graph has that node,
else it is dropped; either way it is counted ``unknown-protocol``.
Fragments go to ``ip4-reassembly`` when the graph has it (the reassembled
datagram comes back here), else they are dropped (``fragment``).

Martian sources that need the address table (Linux's
fib_validate_source, for a packet that arrived from an interface, i.e.
not GN_BUFFER_F_LOCALLY_ORIGINATED): a source that is one of this host's
addresses (its FIB route is a local adjacency: ``martian-source-local``)
or the broadcast address of a connected subnet of the receiving interface
(``martian-source-broadcast``) is dropped before anything answers it. A
packet "from ourselves" that comes in from the wire is a spoof, and
answering it is how the UDP echo loop (issue 9) began: the reply would be
addressed to us and come straight back here. The checks are here rather
than in ip4-input because they cost an mtrie lookup and a walk of the
interface's addresses, which only packets for this host should pay (the
forwarding path does not come here), and because our own packets to our
own addresses (a ping of one of our addresses, an echo reply) come here
with the locally-originated flag and must pass. Not done: forwarded
packets spoofing one of our addresses are not dropped (Linux drops them;
they leave, so they cannot loop). The source checks that need no table
(0/8, 127/8, 224/4, 255.255.255.255) are ip4-input's.

Hand-off convention: protocol nodes get the buffer with current_data still
at the IPv4 header (so replies can be built in place), l3_hdr_offset at the
IPv4 header and l4_hdr_offset at the protocol header.

Metadata used: current_data, current_length. Set: l3_hdr_offset,
l4_hdr_offset. Next nodes: ``ip4-icmp-error``, ``ip4-reassembly`` (each or
error-drop), the protocol nodes.
Trace: the rx interface and the IPv4 packet, decoded (kit.trace_ip4).
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_FRAME_SIZE, GN_BUFFER_F_LOCALLY_ORIGINATED,
                                   gn_buffer_current)
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.fib.ip4_address cimport Ip4Addresses, gn_ip4_address_main_t, gn_ip4_is_directed_broadcast
from graphnet.fib.ip4_fib cimport Ip4Fib, gn_ip4_fib_t, gn_ip4_fib_lookup, GN_ADJ_LOCAL
from graphnet.includes.byteorder cimport gn_net32
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_is_fragment
from graphnet.vlib.kit import node, trace_ip4

cpdef enum Next:
    NEXT_ICMP_ERROR, NEXT_REASSEMBLY, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_UNKNOWN_PROTOCOL, ERROR_FRAGMENT, ERROR_MARTIAN_SOURCE_LOCAL, ERROR_MARTIAN_SOURCE_BROADCAST
    N_ERROR

cdef enum:
    NEXT_UNCLAIMED = 0xffff

NEXTS = (("icmp-error", ("ip4-icmp-error", "error-drop")), ("reassembly", ("ip4-reassembly", "error-drop")))

ERRORS = (
    ("none", "info", "no error"),
    ("unknown-protocol", "error", "no node for this IP protocol (ICMP protocol unreachable)"),
    ("fragment", "error", "fragment for this host dropped (no reassembly yet)"),
    ("martian-source-local", "error", "from an interface with one of our own addresses as source (martian): dropped"),
    ("martian-source-broadcast", "error", "source is the broadcast address of the receiving interface's subnet "
                                         "(martian): dropped"),
)

ctypedef struct ip4_local_t:
    uint16_t next_by_proto[256]
    uint16_t unknown_next             # arc 0: ip4-icmp-error, or error-drop
    uint8_t reassembly                # arc 1 is ip4-reassembly (else error-drop)
    gn_ip4_fib_t* fib                 # for the martian source checks (NULL: not checked)
    gn_ip4_address_main_t* am


cdef uint32_t _martian_source(ip4_local_t* lm, gn_buffer_t* b, const uint8_t* ip) noexcept nogil:
    """The error row of a martian source of a packet from an interface, or 0."""
    cdef uint32_t src = gn_net32(ip + 12)
    if lm.fib.adjs[gn_ip4_fib_lookup(lm.fib, src)].type == GN_ADJ_LOCAL:
        return ERROR_MARTIAN_SOURCE_LOCAL
    if gn_ip4_is_directed_broadcast(lm.am, b.sw_if_index[GN_RX], src):
        return ERROR_MARTIAN_SOURCE_BROADCAST
    return 0


cdef uint32_t ip4_local_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ip4_local_t* lm = <ip4_local_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors
    cdef uint16_t nx
    cdef uint32_t code
    cdef gn_buffer_t* b
    cdef const uint8_t* ip
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        ip = gn_buffer_current(b)
        b.l3_hdr_offset = b.current_data
        b.l4_hdr_offset = b.current_data + <int16_t>gn_ip4_header_bytes(ip)
        if lm.fib != NULL and not (b.flags & GN_BUFFER_F_LOCALLY_ORIGINATED):
            code = _martian_source(lm, b, ip)
            if code:
                gn_buffer_set_error(node, b, code)
                nexts[i] = node.drop_next
                continue
        if gn_ip4_is_fragment(ip):
            if lm.reassembly:
                nexts[i] = NEXT_REASSEMBLY
            else:
                gn_buffer_set_error(node, b, ERROR_FRAGMENT)
                nexts[i] = node.drop_next
            continue
        nx = lm.next_by_proto[ip[9]]
        if nx == NEXT_UNCLAIMED:
            gn_buffer_set_error(node, b, ERROR_UNKNOWN_PROTOCOL)
            nx = lm.unknown_next
        nexts[i] = nx
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


def _setup(engine, node_index):
    from graphnet.fib.ip4_address import ip4_addresses
    from graphnet.fib.ip4_fib import ip4_fib
    cdef ip4_local_t* lm = <ip4_local_t*>gn_node_data(engine, "ip4-local")
    cdef Ip4Fib fib = ip4_fib(engine)
    cdef Ip4Addresses addresses = ip4_addresses(engine)
    cdef uint32_t p
    for p in range(256):
        lm.next_by_proto[p] = NEXT_UNCLAIMED
    lm.unknown_next = NEXT_ICMP_ERROR
    lm.reassembly = engine.next_names["ip4-local"][NEXT_REASSEMBLY] == "ip4-reassembly"
    engine.node_data["ip4-local"].keep = (fib, addresses)
    lm.fib = fib.fib
    lm.am = addresses.am


def _on_attach(engine, key, next_index):
    if isinstance(key, int) and 0 <= key <= 255:
        (<ip4_local_t*>gn_node_data(engine, "ip4-local")).next_by_proto[<uint32_t>key] = next_index
    else:
        raise ValueError(f"ip4-local: cannot attach to {key!r} (an IP protocol 0..255)")


NODES = (
    node("ip4-local", gn_node_fn(ip4_local_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("ip4-lookup", "local"),), data_size=sizeof(ip4_local_t), setup=_setup, on_attach=_on_attach,
         trace=trace_ip4(), doc=__doc__),
)
FEATURE = "ip4-host"
