# Ethernet II (and 802.1Q / 802.1ad tags): layout, constants and inline
# accessors. Callers check that GN_ETHERNET_HEADER_LEN bytes (plus
# GN_ETHERNET_VLAN_TAG_LEN per tag they read) are present before reading.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.includes.byteorder cimport gn_net16, gn_read_u16, gn_read_u32

cdef enum:
    GN_ETHERNET_HEADER_LEN = 14
    GN_ETHERNET_VLAN_TAG_LEN = 4          # TPID is the outer type; then TCI + inner type
    GN_ETHERNET_ADDRESS_LEN = 6
    GN_ETHERTYPE_MIN = 0x0600             # below: an IEEE 802.3 length, not a type
    GN_ETHERTYPE_IP4 = 0x0800
    GN_ETHERTYPE_ARP = 0x0806
    GN_ETHERTYPE_VLAN = 0x8100            # 802.1Q
    GN_ETHERTYPE_IP6 = 0x86dd
    GN_ETHERTYPE_QINQ = 0x88a8            # 802.1ad
    GN_ETHERTYPE_QINQ_OLD = 0x9100        # pre-standard QinQ
    GN_VLAN_VID_MASK = 0x0fff

ctypedef packed struct gn_ethernet_header_t:
    uint8_t dst[6]
    uint8_t src[6]
    uint16_t type                         # network order

ctypedef packed struct gn_vlan_tag_t:     # follows the outer type field
    uint16_t tci                          # PCP(3) DEI(1) VID(12), network order
    uint16_t type                         # inner ethertype, network order


cdef inline uint16_t gn_ethernet_type(const uint8_t* h) noexcept nogil:
    """The ethertype (host order) of the header at h."""
    return gn_net16(h + 12)


cdef inline bint gn_mac_is_group(const uint8_t* mac) noexcept nogil:
    """Multicast or broadcast: the I/G bit of the first octet."""
    return mac[0] & 1


cdef inline bint gn_mac_is_broadcast(const uint8_t* mac) noexcept nogil:
    return gn_read_u32(mac) == 0xffffffffU and gn_read_u16(mac + 4) == 0xffff


cdef inline bint gn_mac_equal(const uint8_t* a, const uint8_t* b) noexcept nogil:
    return gn_read_u32(a) == gn_read_u32(b) and gn_read_u16(a + 4) == gn_read_u16(b + 4)


cdef inline bint gn_ethertype_is_vlan(uint16_t t) noexcept nogil:
    return t == GN_ETHERTYPE_VLAN or t == GN_ETHERTYPE_QINQ or t == GN_ETHERTYPE_QINQ_OLD
