# The interface table: one C record per interface, shared by device nodes.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef enum:
    GN_MAX_INTERFACES = 256

# gn_interface_t.tx_offloads: what the device does to a frame on tx (set
# by the device when it is made; senders read it to shape what they send)
cdef enum:
    GN_IF_TX_CSUM = 1            # L4 checksum offload (GN_BUFFER_F_L4_CSUM_OFFLOAD frames)
    GN_IF_TX_TSO4 = 2            # TCP/IPv4 segmentation offload (GN_BUFFER_F_GSO frames, up to 64 KB)

ctypedef struct gn_if_counters_t:
    uint64_t rx_packets
    uint64_t rx_bytes
    uint64_t tx_packets
    uint64_t tx_bytes
    uint64_t rx_drops            # dropped on receive (short, too big, bad vnet header, down)
    uint64_t tx_drops            # dropped on transmit (queue full past retries, down, errors)
    uint64_t rx_errors           # read() failures
    uint64_t tx_errors           # write()/send() failures other than EAGAIN
    uint64_t tx_retries          # frames deferred because the kernel queue was full

ctypedef struct gn_interface_t:
    uint32_t sw_if_index
    uint8_t in_use
    uint8_t admin_up
    uint8_t link_up              # the device works (cleared when the kernel side vanishes)
    uint8_t promiscuous
    uint16_t mtu
    uint8_t mac[6]
    uint16_t tx_next             # arc of interface-output to this interface's tx node
    uint8_t tx_offloads          # GN_IF_TX_* (0: every frame must be sent as it is)
    gn_if_counters_t counters

ctypedef struct gn_interface_main_t:
    gn_interface_t ifs[256]      # fixed: device nodes keep pointers into it
    uint32_t n_ifs


cdef inline gn_interface_t* gn_interface(gn_interface_main_t* im, uint32_t sw_if_index) noexcept nogil:
    """The interface record, or NULL for an unknown index."""
    if sw_if_index < im.n_ifs and im.ifs[sw_if_index].in_use:
        return &im.ifs[sw_if_index]
    return NULL


cdef class InterfaceTable:
    cdef gn_interface_main_t* im
    cdef readonly list names         # by sw_if_index
    cdef readonly list kinds
    cdef readonly list devices       # the device object of each interface (None: deleted)
    cdef dict tx_nexts               # sw_if_index -> interface-output arc (kept for a re-created interface)
    cdef object engine
    cdef int _check(self, uint32_t sw_if_index) except -1
