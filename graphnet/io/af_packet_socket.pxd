# The C contract between an AF_PACKET interface's modules (docs/devices.md
# has the whole picture): the state ``afp_t`` that af-packet-input,
# af-packet-output and the AfPacketDevice share through the nodes'
# runtime_data, its constants, both nodes' error rows, the ring walk
# (inline), and the socket functions the nodes and the bench reader call.
#
#   af_packet_socket.pyx  the socket: open in a namespace, TPACKET_V3 ring,
#                         bind, promiscuous, link probe; AfpState owns an afp_t
#   af_packet_input.pyx   af-packet-input-<name>: the ring walk, copies
#   af_packet_output.pyx  af-packet-output-<name>: send(), the tx backlog
#   af_packet.pyx         AfPacketDevice: nodes, link events, attach/detach, show
#   graphnet/bench/af_packet_raw.pyx   the bench's raw reader and sender
#
# Invariants: the ring is walked in order (cur_block, cur_pkt, cur_off) and
# a block goes back to the kernel as soon as its last frame is taken;
# n_backlog <= backlog_cap <= 512; fd < 0 exactly when detached (the nodes
# then leave the state alone).
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.af_packet cimport tpacket_block_desc, TP_STATUS_USER, TP_STATUS_KERNEL
from graphnet.includes.platform cimport gn_atomic_load_u32, gn_atomic_store_u32
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_main_t

cdef enum:
    FRAME_SIZE = 2048             # nominal ring frame (V3 packs frames; it only sizes the ring)
    TPACKET3_HDR_ALIGNED = 48     # TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
    MAX_IOV = 64
    ARPHRD_ETHER = 1
    LINK_UP = 0
    LINK_DOWN = 1
    LINK_GONE = 2
    ETH_VLAN_FRAME_EXTRA = 18     # Ethernet header + one VLAN tag
    RX_PREFETCH = 8               # af-packet-input prefetches (for writing) the data line this many buffers ahead

# af-packet-input's error rows, in the order of af_packet_input.INPUT_ERRORS
# (checked against it by the kit when af_packet_input is imported)
cpdef enum RxError:
    RX_ERROR_NONE
    RX_ERROR_SHORT_FRAME
    RX_ERROR_TOO_BIG
    RX_ERROR_TRUNCATED
    RX_ERROR_NO_BUFFERS
    RX_ERROR_INTERFACE_DOWN
    RX_N_ERROR

# af-packet-output's error rows, in the order of af_packet_output.OUTPUT_ERRORS (checked)
cpdef enum TxError:
    TX_ERROR_NONE
    TX_ERROR_SHORT_FRAME
    TX_ERROR_TOO_BIG
    TX_ERROR_TX_QUEUE_FULL
    TX_ERROR_SEND_ERROR
    TX_ERROR_LINK_DOWN
    TX_ERROR_INTERFACE_DOWN
    TX_ERROR_TX_DEFERRED
    TX_N_ERROR


# What af-packet-input notes of a frame while it traces (the ring's header
# is gone once the block is handed back; the record is made at enqueue).
ctypedef struct afp_trace_note_t:
    uint32_t bi
    uint32_t block                # the ring block it came from
    uint32_t status               # its tp_status (VLAN valid, checksum not ready / valid ...)
    uint16_t vlan_tci
    uint16_t vlan_tpid

ctypedef struct afp_t:
    int fd
    int ifindex
    char ifname[16]
    uint8_t kernel_mac[6]
    uint32_t kernel_mtu
    uint8_t* ring
    size_t ring_size
    uint32_t block_size
    uint32_t n_blocks
    uint32_t cur_block
    uint32_t cur_pkt              # frames of cur_block already consumed
    uint32_t cur_off              # offset of the next frame in cur_block
    uint8_t check_outgoing        # PACKET_IGNORE_OUTGOING was refused: filter by pkttype
    uint8_t promisc
    uint8_t qdisc_bypass
    uint8_t no_rx                 # bound with protocol 0: a send-only socket
    # bound to an engine
    gn_interface_t* hw
    gn_pcap_main_t* trace
    uint32_t sw_if_index
    uint32_t max_frame
    uint32_t input_node_index
    uint32_t tx_error_base        # global error row 0 of the tx node's table
    # tx backlog (kernel queue full)
    uint32_t* backlog
    uint32_t n_backlog
    uint32_t backlog_cap
    uint32_t backlog_tries
    uint32_t tx_retry_limit
    # link state
    uint8_t link_down
    uint8_t link_state
    uint8_t check_link            # a send failed with ENXIO/ENETDOWN/ENODEV: look at the link
    PyObject* device              # borrowed: the AfPacketDevice (kept alive by the engine)
    uint8_t* scratch              # a VLAN-tagged frame over one buffer is assembled here
    uint64_t rx_meta[5]           # a received buffer's first GN_BUFFER_INIT_BYTES: fresh, sw_if_index[RX] set
    uint64_t link_events
    # while af-packet-input traces: notes on the frames of its last vector
    uint32_t trace_n
    afp_trace_note_t trace_note[256]


# --- the ring walk (inline: af-packet-input and the bench reader) ------------------

cdef inline tpacket_block_desc* afp_block(afp_t* st, uint32_t i) noexcept nogil:
    return <tpacket_block_desc*>(st.ring + <size_t>i * st.block_size)


cdef inline bint afp_user_owned(tpacket_block_desc* bd) noexcept nogil:
    return (gn_atomic_load_u32(&bd.hdr.bh1.block_status) & TP_STATUS_USER) != 0


cdef inline void afp_release_block(afp_t* st) noexcept nogil:
    """Hand cur_block back to the kernel and move to the next one."""
    gn_atomic_store_u32(&afp_block(st, st.cur_block).hdr.bh1.block_status, TP_STATUS_KERNEL)
    st.cur_block += 1
    if st.cur_block == st.n_blocks:
        st.cur_block = 0
    st.cur_pkt = 0


# --- the socket (af_packet_socket.pyx) ----------------------------------------------

cdef int afp_open(afp_t* st, str host_if, object netns, uint32_t ring_frames, uint32_t block_size,
                  uint32_t retire_ms, bint promisc, bint qdisc_bypass, bint rx_ring) except -1
cdef void afp_close(afp_t* st) noexcept nogil
cdef int afp_bind(afp_t* st) noexcept nogil
cdef int afp_probe_link(afp_t* st) noexcept nogil
cdef void afp_clear_sock_error(int fd) noexcept nogil
cdef void afp_mark_link(afp_t* st, int state) noexcept nogil
