"""``arp-input``: ARP for IPv4 over Ethernet (RFC 826): answer requests for
our addresses, learn neighbours.

Claims ethertype 0x0806 of ``ethernet-input``. For each packet, after the
checks of ``gn_arp_validate`` (``too-short``, ``bad-format``,
``bad-opcode``) and of the sender (``bad-sender``: a group MAC, or a
multicast/broadcast sender address):

  - a packet whose sender address is one of the receiving interface's
    addresses is dropped (``address-conflict``: someone else claims it);
  - gratuitous ARP (sender address = target address) updates an existing
    entry, never creates one (``gratuitous``);
  - a request from a sender outside every prefix of the receiving
    interface is neither answered nor learned from (``sender-not-on-link``):
    no host on this link can have that address, and answering would let
    anyone on the segment fill the table with addresses of other networks
    (issue 10 item 5);
  - a request or reply whose target is an address of the receiving
    interface teaches us the sender (a new entry when the sender is on-link,
    inside one of the interface's prefixes; RFC 826's merge otherwise, for
    replies); a request is answered in place (the buffer becomes the reply, sent on the
    receiving interface: ``replies-sent`` counts them), a reply is consumed
    (``reply-received``);
  - anything else only refreshes an existing entry of its sender
    (``not-for-us``). Static entries never change.

An ARP probe (sender address 0, RFC 5227) for our address is answered and
teaches nothing. Learning that completes or changes an entry wakes the
neighbour table's control plane (graphnet.fib.ip4_neighbor_table), which
updates the FIB and sends queued packets on.

Also counted: ``table-full`` (the neighbour table is full: the sender is
not learned); dropped: ``no-interface`` (rx sw_if_index not in the
interface table).

Metadata used: current_data (the ARP body), current_length,
sw_if_index[RX]. Set on a reply: current_data/current_length (Ethernet
header + 28 bytes), l2_hdr_offset, sw_if_index[TX],
GN_BUFFER_F_LOCALLY_ORIGINATED. Next nodes: ``interface-output``. Every
other packet is dropped with one of the rows above. Trace record: rx
interface and the ARP body (``format_arp``).
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from graphnet.includes.byteorder cimport gn_put_net16
from graphnet.io.interface cimport InterfaceTable, gn_interface_main_t, gn_interface_t, gn_interface
from graphnet.fib.ip4_address cimport (Ip4Addresses, gn_ip4_address_main_t, gn_ip4_is_interface_address,
                                       gn_ip4_is_on_link)
from graphnet.fib.ip4_neighbor_table cimport Ip4Neighbors, gn_ip4_nbr_main_t, gn_nbr_learn
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_FRAME_SIZE, GN_BUFFER_F_LOCALLY_ORIGINATED,
                                   gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next,
                                 gn_node_increment_error, gn_buffer_set_error)
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.wire.arp cimport (gn_arp_validate, gn_arp_op, gn_arp_sha, gn_arp_spa, gn_arp_tpa, gn_arp_write,
                                GN_ARP_OK, GN_ARP_LEN, GN_ARP_OP_REQUEST, GN_ARP_OP_REPLY,
                                GN_ARP_BAD_FORMAT, GN_ARP_BAD_OPCODE)
from graphnet.wire.ethernet cimport GN_ETHERNET_HEADER_LEN, GN_ETHERTYPE_ARP, gn_mac_is_group
from graphnet.vlib.kit import node, trace_bytes
from graphnet.vlib.node import GraphError
from graphnet.fib.ip4_address import ip4_addresses
from graphnet.fib.ip4_neighbor_table import ip4_neighbors
from graphnet.wire.arp import VALIDATE_ERRORS, format_arp
from graphnet.wire.ethernet import ETHERTYPE_ARP

cpdef enum Next:
    NEXT_OUTPUT, N_NEXT
cpdef enum Error:
    # the first rows are gn_arp_validate's codes (checked below)
    ERROR_NONE, ERROR_TOO_SHORT, ERROR_BAD_FORMAT, ERROR_BAD_OPCODE, ERROR_BAD_SENDER, ERROR_ADDRESS_CONFLICT
    ERROR_GRATUITOUS, ERROR_NOT_FOR_US, ERROR_REPLY_RECEIVED, ERROR_REPLIES_SENT, ERROR_TABLE_FULL
    ERROR_NO_INTERFACE, ERROR_SENDER_NOT_ON_LINK, N_ERROR

ERRORS = VALIDATE_ERRORS + (
    ("bad-sender", "error", "ARP sender MAC is a group address or sender IP is multicast/broadcast"),
    ("address-conflict", "warn", "ARP from another host claiming one of our addresses"),
    ("gratuitous", "info", "gratuitous ARP (updates an existing entry only)"),
    ("not-for-us", "info", "ARP for another host (refreshes an existing entry only)"),
    ("reply-received", "info", "ARP reply for us (learned)"),
    ("replies-sent", "info", "ARP requests for our addresses answered"),
    ("table-full", "warn", "neighbour table full: sender not learned"),
    ("no-interface", "error", "rx sw_if_index is not in the interface table"),
    ("sender-not-on-link", "warn", "ARP request from an address outside the interface's prefixes: "
                                   "not answered, not learned"),
)
if ERROR_BAD_FORMAT != GN_ARP_BAD_FORMAT or ERROR_BAD_OPCODE != GN_ARP_BAD_OPCODE:
    raise GraphError("arp-input: its Error enum does not follow gn_arp_validate's codes (graphnet/wire/arp.pxd)")

ctypedef struct arp_input_t:
    gn_interface_main_t* im
    gn_ip4_address_main_t* am
    gn_ip4_nbr_main_t* nm



cdef inline uint32_t _arp_one(gn_main_t* vm, arp_input_t* st, gn_buffer_t* b, uint64_t* n_table_full) noexcept nogil:
    """Handle one packet; returns ERROR_* (0: a reply was built in b)."""
    cdef uint8_t* a = gn_buffer_current(b)
    cdef uint32_t code = gn_arp_validate(a, b.current_length)
    cdef uint32_t sw = b.sw_if_index[GN_RX], spa, tpa
    cdef uint16_t op
    cdef bint on_link
    cdef gn_interface_t* hw
    cdef uint8_t sha[6]
    cdef uint8_t* eth
    cdef int r
    if code != GN_ARP_OK:
        return code
    hw = gn_interface(st.im, sw)
    if hw == NULL:
        return ERROR_NO_INTERFACE
    op = gn_arp_op(a)
    spa = gn_arp_spa(a)
    tpa = gn_arp_tpa(a)
    memcpy(sha, gn_arp_sha(a), 6)
    if gn_mac_is_group(sha) or spa == 0xffffffffU or (spa >> 28) == 0xe:
        return ERROR_BAD_SENDER
    if spa != 0 and gn_ip4_is_interface_address(st.am, sw, spa):
        return ERROR_ADDRESS_CONFLICT
    if spa == tpa:
        gn_nbr_learn(st.nm, vm, sw, spa, sha, False)
        return ERROR_GRATUITOUS
    if not gn_ip4_is_interface_address(st.am, sw, tpa):
        if spa != 0:
            gn_nbr_learn(st.nm, vm, sw, spa, sha, False)
        return ERROR_NOT_FOR_US
    on_link = spa != 0 and gn_ip4_is_on_link(st.am, sw, spa)
    if op == GN_ARP_OP_REQUEST and spa != 0 and not on_link:
        return ERROR_SENDER_NOT_ON_LINK
    if spa != 0:
        r = gn_nbr_learn(st.nm, vm, sw, spa, sha, on_link)
        if r < 0:
            n_table_full[0] += 1
    if op != GN_ARP_OP_REQUEST:
        return ERROR_REPLY_RECEIVED
    # the reply, in place: Ethernet header just before the ARP body
    eth = a - GN_ETHERNET_HEADER_LEN
    memcpy(eth, sha, 6)
    memcpy(eth + 6, hw.mac, 6)
    gn_put_net16(eth + 12, GN_ETHERTYPE_ARP)
    gn_arp_write(a, GN_ARP_OP_REPLY, hw.mac, tpa, sha, spa)
    b.current_data -= GN_ETHERNET_HEADER_LEN
    b.current_length = GN_ETHERNET_HEADER_LEN + GN_ARP_LEN
    b.l2_hdr_offset = b.current_data
    b.sw_if_index[GN_TX] = sw
    b.flags = b.flags | GN_BUFFER_F_LOCALLY_ORIGINATED
    return 0


cdef uint32_t arp_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef arp_input_t* st = <arp_input_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, err
    cdef uint64_t n_replies = 0, n_table_full = 0
    cdef gn_buffer_t* b
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        err = _arp_one(vm, st, b, &n_table_full)
        if err == 0:
            nexts[i] = NEXT_OUTPUT
            n_replies += 1
        else:
            gn_buffer_set_error(node, b, err)
            nexts[i] = node.drop_next
    if n_replies:
        gn_node_increment_error(vm, node, ERROR_REPLIES_SENT, n_replies)
    if n_table_full:
        gn_node_increment_error(vm, node, ERROR_TABLE_FULL, n_table_full)
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


def _setup(engine, node_index):
    cdef arp_input_t* st = <arp_input_t*>gn_node_data(engine, "arp-input")
    cdef Ip4Addresses addresses = ip4_addresses(engine)
    cdef Ip4Neighbors neighbors = ip4_neighbors(engine)
    engine.node_data["arp-input"].keep = (addresses, neighbors)
    st.im = (<InterfaceTable>engine.interfaces).im
    st.am = addresses.am
    st.nm = neighbors.nm


NODES = (
    node("arp-input", gn_node_fn(arp_input_fn), nexts=(("output", "interface-output"),), Next=Next, errors=ERRORS,
         Error=Error, attach_to=(("ethernet-input", ETHERTYPE_ARP),), data_size=sizeof(arp_input_t), setup=_setup,
         trace=trace_bytes(GN_ARP_LEN, format_arp, names=False), doc=__doc__),
)
FEATURE = "ip4-host"
