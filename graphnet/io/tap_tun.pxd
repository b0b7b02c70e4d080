# The C contract between a TAP's modules (docs/devices.md has the whole
# picture): the device state ``tap_dev_t`` that tap-input, tap-output and
# the TapDevice share through the nodes' runtime_data, its constants, the
# error rows of both nodes, and the few functions both directions call.
#
#   tap_tun.pyx     /dev/net/tun: open, features, offloads, vnet header,
#                   carrier; TapState (owns a tap_dev_t); losing the device
#   tap_input.pyx   tap-input-<name>: the rx loop and its trace record
#   tap_output.pyx  tap-output-<name>: writes, the retry queue, its trace
#   tap_host.py     the kernel side: name checks, link, namespace, address
#   tap.pyx         TapDevice: creation, nodes, link events, show
#
# Invariants: every buffer read is either enqueued once or kept on the
# spare stack; every buffer tap-output receives is written and freed,
# dropped with a counter and freed, or held in the retry queue; queue fd k
# is qfd[k], fd is qfd[0]; epoll_fd >= 0 exactly when n_queues > 1; once
# ``dead`` is set no fd of the device is touched by a node again.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.linux cimport EBADF, EBADFD, ENODEV, ENXIO
from graphnet.vlib.main cimport gn_main_t, gn_count_drops
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_main_t

cdef enum:
    FRAME_MAX = 256                # frames per tap-input call
    RX_BUFFER_BUDGET = 256         # buffers per tap-input call: ~8 super-frames, so a
                                   # vector of them stays in L2 until tap-output writes it
    SPARE_CAP = 128                # buffers set aside for reads
    RX_MAX_IOV = 40                # >= ceil(65550 / 2048)
    RX_CHAIN_EXIT_RUN = 256        # chain mode: this many one-buffer frames in a row go back to spill mode
    GSO_MAX_FRAME = 65550          # 64 KB IP packet + Ethernet header
    RETRY_CAP = 1024               # tx buffers held while the kernel queue is full
    TX_MAX_IOV = 64                # segments of one tx frame
    SOFT_ERRORS_PER_CALL = 16
    ETH_HLEN = 14
    MAX_QUEUES = 16                # IFF_MULTI_QUEUE fds per TAP (the kernel allows 256)

# tap-input's error rows, in the order of tap_input.RX_ERRORS (checked
# against it by the kit when tap_input is imported)
cpdef enum RxError:
    RX_ERROR_NONE
    RX_ERROR_FRAME_TOO_SHORT
    RX_ERROR_FRAME_TOO_LONG
    RX_ERROR_BAD_VNET_HEADER
    RX_ERROR_INTERFACE_DOWN
    RX_ERROR_NO_BUFFERS
    RX_ERROR_READ_ERROR
    RX_ERROR_LINK_LOST
    RX_N_ERROR

# tap-output's error rows, in the order of tap_output.TX_ERRORS (checked)
cpdef enum TxError:
    TX_ERROR_NONE
    TX_ERROR_TX_DEFERRED
    TX_ERROR_TX_QUEUE_FULL
    TX_ERROR_WRITE_ERROR
    TX_ERROR_HOST_DOWN
    TX_ERROR_BAD_OFFLOAD
    TX_ERROR_CHAIN_TOO_LONG
    TX_ERROR_LINK_LOST
    TX_ERROR_INTERFACE_DOWN
    TX_N_ERROR

# where the device died (tap_dev_t.dead)
cdef enum:
    DEAD_READ = 1
    DEAD_WRITE = 2
    DEAD_EPOLL = 3
    DEAD_CLOSED = 4
    DEAD_KERNEL = 5                # netlink: the kernel side was deleted, moved, or its namespace deleted

ctypedef struct tap_dev_t:
    int fd                        # queue 0: tx, and rx with one queue
    uint32_t n_queues             # 1..MAX_QUEUES
    uint32_t rx_queue_next        # the queue tap-input reads first on its next call
    int qfd[16]                   # queue k's fd (qfd[0] == fd)
    int epoll_fd                  # several queues: the device's epoll (every qfd, EPOLLIN); else -1
    uint16_t hdr_size             # 12 with IFF_VNET_HDR, else 0
    uint8_t gso_rx                # the kernel may send GSO super-frames
    uint8_t dead                  # DEAD_*: the fd is never touched again
    int dead_errno
    uint32_t monitor_node_index   # tap-monitor-<name>: woken when the device dies
    uint8_t has_monitor
    uint32_t sw_if_index
    gn_interface_t* hw
    gn_pcap_main_t* pcap          # the engine's pcap trace (rx / tx capture)
    uint32_t n_rx_bufs            # buffers a largest frame needs (1: plain read() of one buffer)
    # n_rx_bufs > 1: how a read offers room for a large frame (see tap-input)
    uint8_t* spill                # room after the first buffer: (RX_MAX_IOV - 1) * GN_BUFFER_DATA_SIZE bytes
    uint8_t rx_chain_mode         # 1: readv over n_rx_bufs buffers; 0: first buffer + spill
    uint32_t rx_small_run         # chain mode: one-buffer frames read in a row
    uint16_t next_index
    uint32_t input_node_index
    uint32_t tx_error_base        # global row of tap-output's table
    uint32_t rx_error_base
    uint64_t retry_timeout_ns
    # buffers set aside for reads (a stack; reads fill from the top)
    uint32_t spare[128]
    uint32_t n_spare
    # tx retry queue (a ring of buffer indices, oldest first)
    uint32_t retry[1024]
    uint32_t retry_head
    uint32_t retry_n
    uint8_t retry_armed
    uint64_t retry_since_ns       # when the queue last made no progress from empty
    # statistics for show hardware
    uint64_t rx_reads
    uint64_t rx_empty_reads
    uint64_t rx_gso_frames
    uint64_t rx_chained
    uint64_t rx_spill_copies      # frames copied out of the spill area into their chain
    uint64_t rx_chain_reads       # reads offering a whole chain of buffers
    uint64_t rx_csum_offload
    uint64_t rx_max_frame
    uint64_t tx_gso_frames
    uint64_t tx_chained
    uint64_t tx_eagain
    uint64_t tx_retry_max
    uint64_t rx_queue_frames[16]  # frames read per queue (several queues only)
    # several queues, while tap-input traces: the queue of each frame of its last vector
    uint32_t trace_n
    uint32_t trace_bi[256]
    uint8_t trace_q[256]


cdef inline bint tap_fatal_errno(int e) noexcept nogil:
    """errno values that mean the TAP itself is gone."""
    return e == EBADFD or e == EBADF or e == ENODEV or e == ENXIO


cdef inline uint16_t tap_rd16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline void tap_count_tx_drop(gn_main_t* vm, tap_dev_t* t, uint32_t code, uint64_t n) noexcept nogil:
    gn_count_drops(vm, t.tx_error_base + code, n)       # freed here: a drop under its reason
    t.hw.counters.tx_drops += n


cdef void tap_retry_drop_all(gn_main_t* vm, tap_dev_t* t, uint32_t code) noexcept nogil
cdef void tap_mark_dead(gn_main_t* vm, tap_dev_t* t, int err, uint8_t where) noexcept nogil
