# IPv4 interface addresses: a small fixed C table per interface that nodes
# read per packet (is this address ours? which source address to use?).
# Python (Ip4Addresses) changes it between loop iterations.
from libc.stdint cimport uint8_t, uint32_t

cdef enum:
    GN_IP4_MAX_IF_ADDRESSES = 8           # per interface
    GN_IP4_ADDR_MAX_INTERFACES = 256      # = GN_MAX_INTERFACES

ctypedef struct gn_ip4_if_address_t:
    uint32_t address                      # host order
    uint32_t mask                         # host order, 0 for /0
    uint32_t plen

ctypedef struct gn_ip4_address_main_t:
    gn_ip4_if_address_t addrs[256][8]
    uint8_t n[256]
    uint32_t n_total                      # addresses on all interfaces


cdef inline bint gn_ip4_is_interface_address(const gn_ip4_address_main_t* am, uint32_t sw_if_index,
                                             uint32_t a) noexcept nogil:
    cdef uint32_t k
    if sw_if_index >= GN_IP4_ADDR_MAX_INTERFACES:
        return False
    for k in range(am.n[sw_if_index]):
        if am.addrs[sw_if_index][k].address == a:
            return True
    return False


cdef inline bint gn_ip4_is_on_link(const gn_ip4_address_main_t* am, uint32_t sw_if_index, uint32_t a) noexcept nogil:
    """a is inside one of the interface's connected prefixes."""
    cdef uint32_t k
    if sw_if_index >= GN_IP4_ADDR_MAX_INTERFACES:
        return False
    for k in range(am.n[sw_if_index]):
        if (am.addrs[sw_if_index][k].address ^ a) & am.addrs[sw_if_index][k].mask == 0:
            return True
    return False


cdef inline bint gn_ip4_is_directed_broadcast(const gn_ip4_address_main_t* am, uint32_t sw_if_index,
                                              uint32_t a) noexcept nogil:
    """a is the broadcast address of one of the interface's prefixes (/30 and shorter)."""
    cdef uint32_t k
    cdef const gn_ip4_if_address_t* x
    if sw_if_index >= GN_IP4_ADDR_MAX_INTERFACES:
        return False
    for k in range(am.n[sw_if_index]):
        x = &am.addrs[sw_if_index][k]
        if x.plen <= 30 and (x.address ^ a) & x.mask == 0 and (a | x.mask) == 0xffffffffU:
            return True
    return False


cdef inline uint32_t gn_ip4_source_address(const gn_ip4_address_main_t* am, uint32_t sw_if_index,
                                           uint32_t peer) noexcept nogil:
    """The address to send from on an interface towards peer: the one whose
    prefix holds peer, else the interface's first, else the first address
    of any interface; 0 when there is none."""
    cdef uint32_t k, i
    if sw_if_index < GN_IP4_ADDR_MAX_INTERFACES and am.n[sw_if_index]:
        for k in range(am.n[sw_if_index]):
            if (am.addrs[sw_if_index][k].address ^ peer) & am.addrs[sw_if_index][k].mask == 0:
                return am.addrs[sw_if_index][k].address
        return am.addrs[sw_if_index][0].address
    if am.n_total:
        for i in range(GN_IP4_ADDR_MAX_INTERFACES):
            if am.n[i]:
                return am.addrs[i][0].address
    return 0


cdef class Ip4Addresses:
    cdef gn_ip4_address_main_t* am
    cdef readonly object engine
    cdef dict _routes              # (sw, address, plen) -> [prefixes installed]
    cdef public list listeners     # f(event 'add'|'del', sw_if_index, network, mask) after a change
