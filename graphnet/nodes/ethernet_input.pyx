"""``ethernet-input``: receive Ethernet II frames and dispatch them by
ethertype to the nodes that claimed it.

Accepts frames addressed to the receiving interface's MAC (the interface
table record of ``sw_if_index[RX]``), broadcast and multicast frames; other
unicast frames are dropped (``not-for-us``) unless the interface is
promiscuous. A protocol node claims an ethertype in its own registration,
``attach_to=(("ethernet-input", 0x0800),)``; ethernet-input's ``on_attach``
records ethertype -> next index in a 64 K table (O(1), one cache line per
type in use). 802.1Q / 802.1ad tags are recognised: a priority tag (VID 0)
is stripped and the frame handled as untagged (counted ``priority-tagged``);
a frame with a VLAN id is dropped (``vlan-tagged``: no VLAN sub-interfaces
yet).

Metadata used: current_data, current_length, sw_if_index[RX]. Set:
l2_hdr_offset (the Ethernet header), l3_hdr_offset, and current_data /
current_length advanced past the Ethernet header (and a priority tag).
Next nodes: whoever attached, per ethertype. Drops: ``too-short``,
``no-interface`` (unknown rx sw_if_index), ``not-for-us``,
``unknown-ethertype`` (the first 16 such types are remembered with their
counts for ``show errors verbose``), ``vlan-tagged``, ``llc`` (802.3 length
field). Counted as info, not warn: ``ipv6`` and ``lldp`` (the kernel's own
chatter on a TAP; graphnet has no IPv6), ``priority-tagged``.

Invariant: no byte beyond current_length is read; a dropped frame keeps
its current_data. Trace record: rx sw_if_index and the first 22 bytes
(formatted by ``graphnet.wire.ethernet.format_ethernet_header``).
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.byteorder cimport gn_net16, gn_read_u16, gn_read_u32
from graphnet.io.interface cimport InterfaceTable, gn_interface_main_t, gn_interface_t, gn_interface
from graphnet.includes.platform cimport gn_prefetch
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_RX, GN_FRAME_SIZE, gn_buffer_current
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next,
                                 gn_buffer_set_error, gn_node_increment_error)
from graphnet.wire.ethernet cimport (GN_ETHERNET_HEADER_LEN, GN_ETHERNET_VLAN_TAG_LEN, GN_ETHERTYPE_MIN,
                                     GN_VLAN_VID_MASK, gn_ethernet_type, gn_mac_is_group, gn_mac_equal,
                                     gn_ethertype_is_vlan)
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.vlib.kit import node, trace_bytes
from graphnet.wire.ethernet import format_ethernet_header

cpdef enum Error:
    ERROR_NONE, ERROR_TOO_SHORT, ERROR_NO_INTERFACE, ERROR_NOT_FOR_US, ERROR_UNKNOWN_ETHERTYPE
    ERROR_VLAN_TAGGED, ERROR_LLC, ERROR_PRIORITY_TAGGED, ERROR_IPV6, ERROR_LLDP, N_ERROR

cdef enum:
    PREFETCH_AHEAD = 4
    NEXT_UNCLAIMED = 0xffff
    TRACE_BYTES = 22
    UNKNOWN_SLOTS = 16                  # distinct unclaimed ethertypes remembered for show errors
    ETHERTYPE_IPV6 = 0x86dd
    ETHERTYPE_LLDP = 0x88cc

ERRORS = (
    ("none", "info", "no error"),
    ("too-short", "error", "frame shorter than its Ethernet header"),
    ("no-interface", "error", "rx sw_if_index is not in the interface table"),
    ("not-for-us", "info", "unicast to another MAC (interface not promiscuous)"),
    ("unknown-ethertype", "error", "no node handles this ethertype"),
    ("vlan-tagged", "error", "802.1Q/802.1ad tagged frame (no VLAN sub-interfaces)"),
    ("llc", "info", "802.3 length field (LLC/SNAP not supported)"),
    ("priority-tagged", "info", "802.1Q priority tag (VID 0) stripped"),
    ("ipv6", "info", "IPv6 frame (no IPv6 support: the kernel's chatter)"),
    ("lldp", "info", "LLDP frame (not handled)"),
)

ctypedef struct ethernet_input_t:
    gn_interface_main_t* im
    uint16_t next_by_type[65536]        # NEXT_UNCLAIMED unless a node attached
    uint16_t unknown_type[UNKNOWN_SLOTS]    # unclaimed ethertypes seen, first come
    uint64_t unknown_count[UNKNOWN_SLOTS]   # frames of each; the last slot also takes any later type
    uint32_t n_unknown


cdef inline uint32_t _unclaimed(ethernet_input_t* em, uint16_t t) noexcept nogil:
    """The error row of an unclaimed ethertype t; other types are remembered
    (the first UNKNOWN_SLOTS of them) for `show errors verbose`."""
    cdef uint32_t k
    if t == ETHERTYPE_IPV6:
        return ERROR_IPV6
    if t == ETHERTYPE_LLDP:
        return ERROR_LLDP
    for k in range(em.n_unknown):
        if em.unknown_type[k] == t:
            em.unknown_count[k] += 1
            return ERROR_UNKNOWN_ETHERTYPE
    if em.n_unknown < UNKNOWN_SLOTS:
        em.unknown_type[em.n_unknown] = t
        em.unknown_count[em.n_unknown] = 1
        em.n_unknown += 1
    return ERROR_UNKNOWN_ETHERTYPE


cdef uint16_t _ethernet_slow(ethernet_input_t* em, gn_node_runtime_t* node, gn_buffer_t* b,
                            uint64_t* n_priority) noexcept nogil:
    """Every case, with its error: a frame the fast path did not take."""
    cdef const uint8_t* p = gn_buffer_current(b)
    cdef gn_interface_t* hw = gn_interface(em.im, b.sw_if_index[GN_RX])
    cdef uint32_t err = ERROR_NONE, hlen = GN_ETHERNET_HEADER_LEN
    cdef uint16_t t, nx = NEXT_UNCLAIMED
    if b.current_length < GN_ETHERNET_HEADER_LEN:
        err = ERROR_TOO_SHORT
    elif hw == NULL:
        err = ERROR_NO_INTERFACE
    elif not gn_mac_is_group(p) and not hw.promiscuous and not gn_mac_equal(p, hw.mac):
        err = ERROR_NOT_FOR_US
    else:
        t = gn_ethernet_type(p)
        if gn_ethertype_is_vlan(t):
            if b.current_length < GN_ETHERNET_HEADER_LEN + GN_ETHERNET_VLAN_TAG_LEN:
                err = ERROR_TOO_SHORT
            elif gn_net16(p + 14) & GN_VLAN_VID_MASK:
                err = ERROR_VLAN_TAGGED
            else:
                t = gn_net16(p + 16)
                hlen += GN_ETHERNET_VLAN_TAG_LEN
                if gn_ethertype_is_vlan(t):
                    err = ERROR_VLAN_TAGGED
                else:
                    n_priority[0] += 1
        if err == ERROR_NONE:
            if t < GN_ETHERTYPE_MIN:
                err = ERROR_LLC
            else:
                nx = em.next_by_type[t]
                if nx == NEXT_UNCLAIMED:
                    err = _unclaimed(em, t)
    if err != ERROR_NONE:
        gn_buffer_set_error(node, b, err)
        return node.drop_next
    b.l2_hdr_offset = b.current_data
    b.current_data += <int16_t>hlen
    b.current_length -= <uint16_t>hlen
    b.l3_hdr_offset = b.current_data
    return nx


cdef uint32_t ethernet_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ethernet_input_t* em = <ethernet_input_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, sw, last_sw = 0xffffffffU, mac4 = 0
    cdef uint64_t n_priority = 0
    cdef uint16_t t, nx, mac2 = 0
    cdef bint usable = False, promiscuous = False
    cdef gn_buffer_t* b
    cdef gn_buffer_t* pb
    cdef gn_interface_t* hw
    cdef const uint8_t* p
    cdef int16_t cd
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            pb = gn_main_buffer(vm, frame.buffers[i + PREFETCH_AHEAD])
            gn_prefetch(pb)
            gn_prefetch(pb.data)
        b = gn_main_buffer(vm, frame.buffers[i])
        p = gn_buffer_current(b)
        sw = b.sw_if_index[GN_RX]
        if sw != last_sw:
            # frames mostly come from one interface: keep its MAC in registers
            last_sw = sw
            hw = gn_interface(em.im, sw)
            usable = hw != NULL
            if usable:
                mac4 = gn_read_u32(hw.mac)
                mac2 = gn_read_u16(hw.mac + 4)
                promiscuous = hw.promiscuous
        # fast path: untagged, for us (or group, or promiscuous), claimed type
        if usable and b.current_length >= GN_ETHERNET_HEADER_LEN and (
                (p[0] & 1) or promiscuous or ((gn_read_u32(p) ^ mac4) | (gn_read_u16(p + 4) ^ mac2)) == 0):
            t = gn_ethernet_type(p)
            nx = em.next_by_type[t]
            if nx != NEXT_UNCLAIMED and t >= GN_ETHERTYPE_MIN:   # (VLAN TPIDs are never claimed)
                cd = b.current_data
                b.l2_hdr_offset = cd
                b.current_data = cd + GN_ETHERNET_HEADER_LEN
                b.l3_hdr_offset = cd + GN_ETHERNET_HEADER_LEN
                b.current_length -= GN_ETHERNET_HEADER_LEN
                nexts[i] = nx
                continue
        nexts[i] = _ethernet_slow(em, node, b, &n_priority)
    if n_priority:
        gn_node_increment_error(vm, node, ERROR_PRIORITY_TAGGED, n_priority)
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


def _setup(engine, node_index):
    cdef ethernet_input_t* em = <ethernet_input_t*>gn_node_data(engine, "ethernet-input")
    cdef uint32_t t
    em.im = (<InterfaceTable>engine.interfaces).im
    for t in range(65536):
        em.next_by_type[t] = NEXT_UNCLAIMED


def _error_details(engine):
    """unknown-ethertype: the types seen (show errors verbose)."""
    cdef ethernet_input_t* em = <ethernet_input_t*>gn_node_data(engine, "ethernet-input")
    cdef uint32_t k
    lines = [f"ethertype 0x{em.unknown_type[k]:04x}: {em.unknown_count[k]} frames" for k in range(em.n_unknown)]
    return {"unknown-ethertype": lines}


def _on_attach(engine, key, next_index):
    if not isinstance(key, int) or not GN_ETHERTYPE_MIN <= key <= 0xffff or gn_ethertype_is_vlan(key):
        raise ValueError(f"ethernet-input: cannot attach to ethertype {key!r} "
                         f"(need 0x0600..0xffff, not a VLAN TPID)")
    (<ethernet_input_t*>gn_node_data(engine, "ethernet-input")).next_by_type[<uint16_t>key] = next_index


NODES = (
    node("ethernet-input", gn_node_fn(ethernet_input_fn), errors=ERRORS, Error=Error,
         data_size=sizeof(ethernet_input_t), setup=_setup, on_attach=_on_attach, error_details=_error_details,
         trace=trace_bytes(TRACE_BYTES, format_ethernet_header), doc=__doc__),
)
FEATURE = "ip4"
