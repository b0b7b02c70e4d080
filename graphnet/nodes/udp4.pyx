"""``udp4-input``: UDP datagrams for this host, delivered by port.

Claims protocol 17 of ``ip4-local``. Checks, in order: 8 bytes of UDP
header (``too-short``), the UDP length between 8 and the IP payload
(``bad-length``; a shorter UDP length than the payload is allowed, the
rest is padding), the checksum over the pseudo header and the datagram,
across a buffer chain, unless it is 0 ("none", RFC 768) or the device says
the kernel left it to offload (GN_BUFFER_F_L4_CSUM_OFFLOAD: the packet
never left the host) (``bad-checksum``); GSO super-frames are not delivered
(``gso-not-supported``).

Delivery: a node claims a destination port in its registration,
``attach_to=(("udp4-input", 7),)``, or through the API::

    from graphnet.nodes.udp4 import udp_register_port
    udp_register_port(engine, 5000, "my-udp-node")

``udp_register_port`` may be called before the graph is built (it adds
the arc from udp4-input to the node; the node must be added to the engine
too) or after, when udp4-input already has an arc to that node (it claimed
another port, or was registered before the build): the session layer
registers its nodes before the build and its ports whenever it likes.
``udp_unregister_port`` releases a port. ``attach_to=(("udp4-input",
None),)`` gives a node the arc and no port yet (the session layer's
``udp4-session`` claims the ports of its listeners as they come). A datagram for a port nobody
claimed goes to ``ip4-icmp-error`` (port unreachable) when the graph has
it, else it is dropped; either way it is counted ``no-listener``.

Metadata used: current_data, current_length, flags, chains. Set:
nothing; hand-off convention (as ip4-local's): current_data at the IPv4
header, l3_hdr_offset at the IPv4 header, l4_hdr_offset at the UDP
header. Next nodes: ``ip4-icmp-error`` (or error-drop), then the claimed
nodes.
Trace: the rx interface and the IPv4 packet with its ports, UDP length and
checksum state (kit.trace_ip4).
"""
import dataclasses

from graphnet.vlib.per_engine import per_engine

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD,
                                   GN_FRAME_SIZE, gn_buffer_current)
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.nodes.ip4_csum cimport gn_chain_sum
from graphnet.wire.inet cimport gn_inet_fold, gn_ip4_pseudo_sum
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_total_length, GN_IP4_PROTO_UDP
from graphnet.wire.udp cimport GN_UDP_HEADER_LEN, gn_udp_dst_port, gn_udp_length
from graphnet.vlib.kit import node, trace_ip4

cpdef enum Next:
    NEXT_ICMP_ERROR, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_TOO_SHORT, ERROR_BAD_LENGTH, ERROR_BAD_CHECKSUM, ERROR_NO_LISTENER, ERROR_GSO_NOT_SUPPORTED
    N_ERROR

cdef enum:
    NEXT_UNCLAIMED = UDP4_NEXT_UNCLAIMED

NEXTS = (("icmp-error", ("ip4-icmp-error", "error-drop")),)

ERRORS = (
    ("none", "info", "no error"),
    ("too-short", "error", "UDP datagram shorter than its 8-byte header"),
    ("bad-length", "error", "UDP length below 8 or beyond the IP payload"),
    ("bad-checksum", "error", "UDP checksum wrong"),
    ("no-listener", "error", "no node for this UDP port (ICMP port unreachable)"),
    ("gso-not-supported", "error", "UDP GSO super-frame for this host dropped"),
)

cdef inline uint32_t _udp_check(gn_main_t* vm, gn_buffer_t* b) noexcept nogil:
    cdef const uint8_t* ip = gn_buffer_current(b)
    cdef uint32_t hlen = gn_ip4_header_bytes(ip), payload = gn_ip4_total_length(ip) - hlen, ulen
    cdef const uint8_t* u = ip + hlen
    cdef bint complete
    if payload < GN_UDP_HEADER_LEN or b.current_length < hlen + GN_UDP_HEADER_LEN:
        return ERROR_TOO_SHORT
    ulen = gn_udp_length(u)
    if ulen < GN_UDP_HEADER_LEN or ulen > payload:
        return ERROR_BAD_LENGTH
    if b.flags & GN_BUFFER_F_GSO:
        return ERROR_GSO_NOT_SUPPORTED
    if gn_net16(u + 6) != 0 and not (b.flags & GN_BUFFER_F_L4_CSUM_OFFLOAD):
        if gn_inet_fold(gn_chain_sum(vm, b, hlen, ulen, gn_ip4_pseudo_sum(ip, GN_IP4_PROTO_UDP, ulen),
                                     &complete)) != 0xffff or not complete:
            return ERROR_BAD_CHECKSUM
    return 0


cdef uint32_t udp4_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef udp4_input_t* um = <udp4_input_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, err
    cdef uint16_t nx
    cdef gn_buffer_t* b
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        err = _udp_check(vm, b)
        if err == 0:
            nx = um.next_by_port[gn_udp_dst_port(gn_buffer_current(b) + gn_ip4_header_bytes(gn_buffer_current(b)))]
            if nx != NEXT_UNCLAIMED:
                nexts[i] = nx
                continue
            err = ERROR_NO_LISTENER
        gn_buffer_set_error(node, b, err)
        nexts[i] = NEXT_ICMP_ERROR if err == ERROR_NO_LISTENER else node.drop_next
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


cdef udp4_input_t* _state(engine) except NULL:
    return <udp4_input_t*>gn_node_data(engine, "udp4-input")


def _claim(engine, uint32_t port, uint16_t next_index):
    _state(engine).next_by_port[port] = next_index


def _release(engine, uint32_t port):
    _state(engine).next_by_port[port] = NEXT_UNCLAIMED


def _ports(engine):
    cdef udp4_input_t* um = _state(engine)
    cdef uint32_t p
    return {p: um.next_by_port[p] for p in range(65536) if um.next_by_port[p] != NEXT_UNCLAIMED}


_PENDING = per_engine()      # engine -> {port: node name, or None to release}


def _check_port(port):
    if not isinstance(port, int) or not 0 < port <= 0xffff:
        raise ValueError(f"UDP port {port!r}: use 1..65535")


def udp_register_port(engine, port, node_name):
    """Deliver datagrams for ``port`` to ``node_name`` (see the module docstring)."""
    _check_port(port)
    if engine.main is None:
        reg = engine.registrations.get("udp4-input")
        if reg is None:
            raise ValueError("udp4-input is not in the graph: add graphnet.nodes.udp4.NODES first")
        if node_name not in reg.next_nodes:
            engine.registrations["udp4-input"] = dataclasses.replace(
                reg, next_nodes=tuple(reg.next_nodes) + (node_name,))
        _PENDING.setdefault(engine, {})[port] = node_name
        return
    try:
        nx = engine.next_index("udp4-input", node_name)
    except ValueError:
        raise ValueError(f"udp4-input has no arc to {node_name!r}: register its ports before the graph is "
                         f"built (or give it attach_to=((\"udp4-input\", port),))") from None
    engine.call(_claim, engine, port, nx)


def udp_unregister_port(engine, port):
    """Stop delivering datagrams for ``port`` (they get port unreachable)."""
    _check_port(port)
    if engine.main is None:
        _PENDING.setdefault(engine, {})[port] = None
        return
    engine.call(_release, engine, port)


def udp_ports(engine):
    """``{port: node name}`` of the claimed ports."""
    engine.build()
    names = engine.next_names["udp4-input"]
    return {p: names[nx] for p, nx in engine.call(_ports, engine).items()}


def _setup(engine, node_index):
    cdef udp4_input_t* um = _state(engine)
    cdef uint32_t p
    for p in range(65536):
        um.next_by_port[p] = NEXT_UNCLAIMED
    for port, name in _PENDING.get(engine, {}).items():
        if name is not None:
            _claim(engine, port, engine.next_index("udp4-input", name))


def _on_attach(engine, key, next_index):
    if key is None:
        return                       # an arc only: the node claims its ports later (the session layer)
    _check_port(key)
    if key in _PENDING.get(engine, {}):
        return                       # the API said otherwise before the build
    _claim(engine, key, next_index)


NODES = (
    node("udp4-input", gn_node_fn(udp4_input_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("ip4-local", 17),), data_size=sizeof(udp4_input_t), setup=_setup, on_attach=_on_attach,
         trace=trace_ip4(), doc=__doc__),
)
FEATURE = "ip4-host"
