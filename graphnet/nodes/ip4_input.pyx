"""``ip4-input`` and ``ip4-input-no-checksum``: validate IPv4 headers.

Each packet's header is checked against the bytes present, in this order
(the first failure is the drop reason, one counter each): fewer than 20
bytes (``too-short``), version not 4 (``bad-version``), IHL below 5
(``bad-ihl``), total length below the header length (``bad-length``) or
beyond the frame (``truncated``), header checksum (``bad-checksum``; not in
the ``-no-checksum`` variant, for devices that verified it), TTL 0
(``ttl-zero``; TTL 1 passes: it may be for us, and ip4-rewrite expires it
when forwarding), IP options (``options``: not supported, dropped). A
frame longer than the total length (Ethernet padding) is trimmed to it.

Martian sources (as Linux's ip_route_input_slow drops them, for packets to
us and packets to forward alike): a source in 0.0.0.0/8
(``martian-source-zeronet``), 127.0.0.0/8 (``martian-source-loopback``),
224.0.0.0/4 (``martian-source-multicast``) or 255.255.255.255
(``martian-source-broadcast``) arriving from an interface is dropped. No
host sends from these, and a reply to one would go to ourselves, to a
group or to everyone (a spoofed 127.0.0.1 or our own address is how a
reflector loop starts). 240.0.0.0/4 other than 255.255.255.255 passes, as
in Linux. These checks need only the packet, so they live here, where
every packet from an interface passes once; the fast path pays two
compares on the source's first octet (``_maybe_martian``: not in 1..126
and not in 128..223, i.e. 0, 127 or 224..255), measured at about 0.25 ns
per packet in ``graphnet bench ip4-forward`` (a 256-byte table cost 0.4);
the exact verdict is worked out of line. The
checks that need the address table (a source that is one of our own
addresses, or a connected subnet's broadcast) are ip4-local's: only
packets for us pay them, and locally originated packets to ourselves
(which never pass ip4-input) must not be caught there.

Interfaces without IPv4 (VPP's ip4-not-enabled; Linux with forwarding
off there): in a graph with ip4-local (the host and router graph,
``ip4_host.NODES``), a packet received on an interface that has no IPv4
address is dropped as ``ip4-not-enabled``, never looked up nor forwarded.
One byte load per packet (the interface's address count in the address
table, which the node's state points at). Packets with no rx interface (a
pg stream without one) pass; the bare forwarding graph (``ip4.NODES``
without ip4-local) has no address table and checks nothing.

Both variants are one inline worker with a constant flag (VPP's
ip4_input_inline). ``ip4-input`` claims ethertype 0x0800 of
``ethernet-input``.

Metadata used: current_data, current_length (and for a chain
total_length_not_including_first_buffer; the header must then lie in the
first buffer). Set: l3_hdr_offset; current_length trimmed. Next nodes:
``ip4-lookup``. Trace record: rx sw_if_index and the first 64 bytes of the
header (``format_ip4_header``).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.includes.platform cimport gn_prefetch
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_FRAME_SIZE, GN_BUFFER_F_NEXT_PRESENT, gn_buffer_current, GN_RX
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.wire.ip4 cimport (gn_ip4_sum, gn_ip4_validate, gn_ip4_total_length, gn_ip4_header_bytes, GN_IP4_OK,
                                GN_IP4_HEADER_LEN, GN_IP4_TOO_SHORT, GN_IP4_TRUNCATED, GN_IP4_N_VALIDATE)
from graphnet.includes.byteorder cimport gn_net32
from graphnet.fib.ip4_address cimport gn_ip4_address_main_t, GN_IP4_ADDR_MAX_INTERFACES, Ip4Addresses
from graphnet.vlib.node import GraphError
from graphnet.vlib.kit import node, trace_bytes
from graphnet.wire.ethernet import ETHERTYPE_IP4
from graphnet.wire.ip4 import VALIDATE_ERRORS, format_ip4_header

cpdef enum Next:
    NEXT_LOOKUP, N_NEXT
cpdef enum Error:
    # the first rows are gn_ip4_validate's codes (checked below), then the martians, then ip4-not-enabled
    ERROR_NONE, ERROR_TOO_SHORT, ERROR_BAD_VERSION, ERROR_BAD_IHL, ERROR_BAD_LENGTH, ERROR_TRUNCATED
    ERROR_BAD_CHECKSUM, ERROR_TTL_ZERO, ERROR_OPTIONS, ERROR_MARTIAN_SOURCE_ZERONET, ERROR_MARTIAN_SOURCE_LOOPBACK
    ERROR_MARTIAN_SOURCE_MULTICAST, ERROR_MARTIAN_SOURCE_BROADCAST, ERROR_IP4_NOT_ENABLED, N_ERROR

cdef enum:
    PREFETCH_AHEAD = 4
    TRACE_BYTES = 64

NEXTS = (("lookup", "ip4-lookup"),)

ctypedef struct ip4_input_t:
    const gn_ip4_address_main_t* am   # the address table in the host graph (ip4-local present), else NULL

ERRORS = VALIDATE_ERRORS + (
    ("martian-source-zeronet", "error", "source address in 0.0.0.0/8 from an interface (martian): dropped"),
    ("martian-source-loopback", "error", "source address in 127.0.0.0/8 from an interface (martian): dropped"),
    ("martian-source-multicast", "error", "multicast source address (224.0.0.0/4; martian): dropped"),
    ("martian-source-broadcast", "error", "source address 255.255.255.255 (martian): dropped"),
    ("ip4-not-enabled", "error", "received on an interface with no IPv4 address: dropped"),
)
if ERROR_MARTIAN_SOURCE_ZERONET != GN_IP4_N_VALIDATE or ERROR_TOO_SHORT != GN_IP4_TOO_SHORT:
    raise GraphError("ip4-input: its Error enum does not follow gn_ip4_validate's codes (graphnet/wire/ip4.pxd)")

cdef inline bint _maybe_martian(uint8_t o) noexcept nogil:
    """A source first octet that needs a closer look: 0, 127, 224..255
    (two compares, no memory: not in 1..126 and not in 128..223)."""
    return <uint8_t>(o - 1) >= 126 and <uint8_t>(o - 128) >= 96


cdef uint32_t _martian_source(const uint8_t* ip) noexcept nogil:
    """The error row of a martian source, or GN_IP4_OK (out of line: only
    sources that _maybe_martian flags come here)."""
    cdef uint8_t o = ip[12]
    if o == 0:
        return ERROR_MARTIAN_SOURCE_ZERONET
    if o == 127:
        return ERROR_MARTIAN_SOURCE_LOOPBACK
    if o < 240:
        return ERROR_MARTIAN_SOURCE_MULTICAST
    if gn_net32(ip + 12) == 0xffffffffU:
        return ERROR_MARTIAN_SOURCE_BROADCAST
    return GN_IP4_OK                   # 240.0.0.0/4: passes, as in Linux


# The two variants as fused-type specialisations of one worker: Cython emits
# one C function per type with verify_checksum a compile-time constant (the
# C compiler would not inline one big worker into two callers).
ctypedef uint8_t checksum_verified_t
ctypedef uint16_t checksum_trusted_t
ctypedef fused checksum_mode_t:
    checksum_verified_t
    checksum_trusted_t


cdef uint32_t ip4_input_inline(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame,
                               checksum_mode_t mode) noexcept nogil:
    cdef bint verify_checksum = checksum_mode_t is checksum_verified_t
    cdef const gn_ip4_address_main_t* am = (<ip4_input_t*>node.runtime_data).am
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, code, avail, total, sw
    cdef gn_buffer_t* b
    cdef gn_buffer_t* pb
    cdef const uint8_t* ip
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            pb = gn_main_buffer(vm, frame.buffers[i + PREFETCH_AHEAD])
            gn_prefetch(pb)
            gn_prefetch(pb.data)
        b = gn_main_buffer(vm, frame.buffers[i])
        ip = gn_buffer_current(b)
        avail = b.current_length
        sw = b.sw_if_index[GN_RX]
        if am != NULL and sw < GN_IP4_ADDR_MAX_INTERFACES and am.n[sw] == 0:
            gn_buffer_set_error(node, b, ERROR_IP4_NOT_ENABLED)
            nexts[i] = node.drop_next
            continue
        # fast path: one buffer, version 4 with no options, lengths right,
        # checksum right, TTL not 0 (gn_ip4_validate's checks, in fewer
        # steps), a source whose first octet is not flagged as maybe martian
        if not (b.flags & GN_BUFFER_F_NEXT_PRESENT) and avail >= GN_IP4_HEADER_LEN and ip[0] == 0x45:
            total = gn_ip4_total_length(ip)
            if (total >= GN_IP4_HEADER_LEN and total <= avail and ip[8] != 0 and not _maybe_martian(ip[12])
                    and (not verify_checksum or gn_ip4_sum(ip, GN_IP4_HEADER_LEN) == 0xffff)):
                b.current_length = <uint16_t>total     # trims Ethernet padding
                b.l3_hdr_offset = b.current_data
                nexts[i] = NEXT_LOOKUP
                continue
        if b.flags & GN_BUFFER_F_NEXT_PRESENT:
            # a chain: the header itself must be in the first buffer
            if avail < GN_IP4_HEADER_LEN:
                code = GN_IP4_TOO_SHORT
            elif gn_ip4_header_bytes(ip) > avail:
                code = GN_IP4_TRUNCATED
            else:
                code = gn_ip4_validate(ip, avail + b.total_length_not_including_first_buffer, verify_checksum)
        else:
            code = gn_ip4_validate(ip, avail, verify_checksum)
        if code == GN_IP4_OK and _maybe_martian(ip[12]):
            code = _martian_source(ip)
        if code == GN_IP4_OK:
            total = gn_ip4_total_length(ip)
            if total < avail and not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
                b.current_length = <uint16_t>total     # Ethernet padding
            b.l3_hdr_offset = b.current_data
            nexts[i] = NEXT_LOOKUP
        else:
            gn_buffer_set_error(node, b, code)
            nexts[i] = node.drop_next
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


cdef uint32_t ip4_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    return ip4_input_inline[checksum_verified_t](vm, node, frame, 0)


cdef uint32_t ip4_input_no_checksum_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    return ip4_input_inline[checksum_trusted_t](vm, node, frame, 0)


def check_interfaces(engine, name="ip4-input"):
    """Point ``name``'s state at the engine's address table: from now on
    interfaces with no address are not enabled for IPv4. The host graph's
    setup does it; ``graphnet bench ip4-forward --not-enabled-check`` calls
    it on the bare forwarding graph to measure the check."""
    from graphnet.fib.ip4_address import ip4_addresses
    cdef ip4_input_t* st = <ip4_input_t*>gn_node_data(engine, name)
    cdef Ip4Addresses addresses = ip4_addresses(engine)
    engine.node_data[name].keep = addresses
    st.am = addresses.am


def _setup_for(name):
    """The setup of ``name``: in the host graph (ip4-local present), its
    state points at the address table, so interfaces with no address are
    not enabled for IPv4; elsewhere it stays NULL and nothing is checked."""
    def setup(engine, node_index):
        (<ip4_input_t*>gn_node_data(engine, name)).am = NULL
        if "ip4-local" in engine.registrations:
            check_interfaces(engine, name)
    return setup


_TRACE = trace_bytes(TRACE_BYTES, format_ip4_header, names=False)

NODES = (
    node("ip4-input", gn_node_fn(ip4_input_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("ethernet-input", ETHERTYPE_IP4),), data_size=sizeof(ip4_input_t),
         setup=_setup_for("ip4-input"), trace=_TRACE, doc=__doc__),
    node("ip4-input-no-checksum", gn_node_fn(ip4_input_no_checksum_fn), nexts=NEXTS, Next=Next, errors=ERRORS,
         Error=Error, data_size=sizeof(ip4_input_t), setup=_setup_for("ip4-input-no-checksum"), trace=_TRACE,
         doc="ip4-input without the header checksum check (checksum verified by the device)."),
)
FEATURE = "ip4"
