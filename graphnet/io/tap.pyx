"""TAP interfaces: ``TapDevice`` and its nodes ``tap-input-<name>`` /
``tap-output-<name>``.

graphnet creates the TAP through /dev/net/tun (IFF_TAP | IFF_NO_PI, with
IFF_VNET_HDR and a 12-byte virtio-net header by default), negotiates
offloads with TUNSETOFFLOAD (checksum, TSO4/TSO6, USO4/USO6 when the kernel
accepts them), and configures the kernel side with pyroute2 (MTU, MAC, moved
into a network namespace created on demand, link up, an optional address).
The kernel removes the link when graphnet closes the fd (a non-persistent
TAP); ``close()`` also removes the namespace if graphnet created it. The
first TUNSETIFF carries IFF_TUN_EXCL: graphnet never attaches to a TAP that
someone else made.

Queues (``queues = N``, default 1; at most 16): with N > 1 graphnet opens N
fds on the same TAP with IFF_MULTI_QUEUE, all before the kernel side moves
into its namespace (a later TUNSETIFF would look the name up in graphnet's
own namespace). The kernel picks the queue of each frame it sends by flow
hash (its automq flow table: a flow graphnet has written comes back on the
queue it was written to). The device keeps an epoll fd of its own with every
queue fd in it (EPOLLIN, level-triggered) and registers that one fd with the
loop: readable when any queue is, so interrupt and adaptive modes wake for
any queue and rx-mode switches work unchanged. One engine loop reads all
the queues (see tap-input). tap-output writes every frame to queue 0: with
one loop there is one writer, so spreading would cost a flow hash per frame
and buy nothing, and one queue keeps the retry queue's order simple. The
virtio-net header size and offloads are per device (set once, on queue 0).

Admin state and carrier: ``set interface state <if> down`` (or
``set_admin_up``, or the startup file's ``state = "down"``) turns the
kernel side's carrier off with TUNSETCARRIER (Linux 5.0+): the kernel shows
NO-CARRIER, operstate DOWN, and itself drops (and counts, as tx_dropped on
its side) what it would send to graphnet; ``up`` turns it on again. Frames
the kernel had already queued on the TAP are still read and dropped, each
counted as ``interface-down`` (and rx_drops); tap-output drops what it is
given, and its retry queue, as ``interface-down`` (tx_drops), because the
kernel accepts writes even without carrier. An adopted fd that is not a TAP
(a socketpair in tests) has no carrier: the admin state then only changes
graphnet's side (``show hardware`` says so).

tap-input-<name> (input node; polling, interrupt or adaptive; the fd (with
several queues: the device's epoll fd) is registered with the loop's epoll
in every mode so switching at run time only changes epoll interest): reads
up to 256 frames (or 256 buffers: 8 super-frames, which
stay in cache until the next node has handled them) per
call, each straight into buffer memory: the virtio-net header lands in the
headroom just before ``data[]`` and the frame in ``data[]``; one read() per
frame when every frame fits one buffer. When the kernel may send larger
frames (GSO super-frames, up to 65550 bytes: 33 buffers; or a jumbo MTU)
every read must offer room for one, in one of two modes. Spill mode (the
start): a readv() of the first buffer and one contiguous spill area for the
rest; a frame that spills is copied from there into its chain, and switches
to chain mode: a readv() straight into a chain of buffers (no copy), until
RX_CHAIN_EXIT_RUN (256) one-buffer frames in a row switch back. So a
stream of small frames pays the kernel a 2-slot readv (about a read()'s
cost) rather than a 33-slot one (about 0.8 of it), and a stream of
super-frames is copied by the kernel only, except the first of each burst.
Unused buffers stay set aside for the next read. With several queues it
reads them round-robin, one frame per queue in turn, skipping a queue once
it reports EAGAIN, until all are empty or the budget is spent; the next call
starts at the queue after the last one read, so a busy queue cannot starve
the others and none is favoured when the budget runs out (an idle call
costs one empty read per queue). With one queue it is the same tight loop
as ever: one worker, compiled twice (fused types). Metadata set:
current_data 0, current_length, chain (next_buffer, NEXT_PRESENT,
total_length_not_including_first_buffer), sw_if_index[RX], l2/l3 header
offsets (l4 = csum_start when the kernel left the L4 checksum to us),
gso_size with GN_BUFFER_F_GSO for a super-frame, GN_BUFFER_F_L4_CSUM_OFFLOAD
when the virtio-net header says NEEDS_CSUM (the L4 checksum field holds
the pseudo-header sum only). Next node: the one given (default
``ethernet-input`` when the graph has it, else ``null``). Drops (counted
under their reason and in the interface's rx_drops; their buffers are
reused for the next read and never enter the graph): ``frame-too-short``,
``frame-too-long``, ``bad-vnet-header``, ``interface-down``. Errors:
``no-buffers`` (read deferred), ``read-error`` and ``link-lost``.

tap-output-<name> (internal; attached to ``interface-output`` under the
interface's sw_if_index, and usable as a next node directly): writes each
frame with its virtio-net header (zero for a plain frame; for a GSO or
checksum-offload buffer the header is derived from the frame's own
Ethernet/VLAN/IPv4/IPv6 + TCP/UDP headers and ``gso_size``, so the kernel
segments it and fills checksums) written into the headroom just before the
frame: one write() for a single buffer, one writev() for a chain.
A full kernel queue (EAGAIN) never blocks: the unsent buffers go to a
bounded per-device retry queue (1024 buffers) that is flushed, in order,
before anything newer is written: at the start of the next tap-output call
and from tap-input, whose interrupt the tx node arms on a 1-tick timer
(in polling mode tap-input runs every iteration anyway). A queue that makes
no progress for ``retry_timeout`` (50 ms) is dropped (``tx-queue-full``,
tx_drops); frames that do not fit the queue are dropped at once. Other
write errors count tx_errors and drop the frame. Errors: ``tx-deferred``
(info), ``tx-queue-full``, ``write-error``, ``host-down`` (EIO: the
kernel side is down), ``bad-offload`` (GSO/checksum metadata on a frame
whose headers cannot be parsed), ``chain-too-long``, ``link-lost``,
``interface-down`` (admin down: the frame, and any retry queue, dropped).

pcap trace (``pcap trace rx tx ...``): tap-input hands each vector it
enqueues to the engine's capture as rx, tap-output each frame it is given
as tx (before writing it: a frame that is later dropped was still
offered), both filtered by ``intfc``; off, this costs one branch per frame.

Faults: the kernel side is watched with rtnetlink (graphnet.io.link_events).
Set admin down in its namespace, the interface's link goes down (neighbours
flushed, what is routed to it dropped as ``link-down``) until it is set up
again; its carrier is graphnet's own and does not count. Deleted, moved
away, or its namespace deleted (``ip netns del``; our netlink socket would
keep the namespace alive, so link-events lets go of it and tells us): the
device is lost. The same happens when a read, a write or epoll finds out
first (EBADFD, EPOLLERR forever): that node marks the device dead (link
down, fd out of epoll, retry queue dropped, the fd never touched again) and
wakes the process node ``tap-monitor-<name>``. Either way one log line says
what happened, the fd is closed (the kernel removes the TAP), held buffers
are freed and the input node disabled, so even a polling device costs no
CPU; ``show hardware`` says "link lost" and why. The engine keeps running;
``delete tap`` and a new ``create tap`` of the same name make it again.

Invariants: every buffer read is either enqueued once, or kept in the spare
stack; every buffer the tx node receives is written and freed, dropped with
a counter and freed, or held in the retry queue; ``close()`` frees the
spare stack and the retry queue (the engine's leak check sees none). Every
frame read from any queue is counted exactly once: rx_packets, or rx_drops
under its reason. Queue fd k is ``qfd[k]``, ``fd`` is ``qfd[0]``; the
device's epoll fd exists exactly when there are several queues. Nothing
writes to the TAP while the interface is admin down.
"""
import errno as _errno
import logging
import os
import struct

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset, strncpy
from graphnet.includes.tun cimport (open, fcntl, read, write, close, readv, writev, ioctl, iovec, errno, ifreq,
                                    O_RDWR, O_NONBLOCK, O_CLOEXEC, F_GETFL, F_SETFL,
                                    EAGAIN, EWOULDBLOCK, EINTR, EBADF, EBADFD, EIO, ENODEV, ENXIO, EFAULT, EINVAL,
                                    TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNGETFEATURES, TUNSETCARRIER,
                                    IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE, IFF_TUN_EXCL,
                                    TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, GN_TUN_F_USO4, GN_TUN_F_USO6,
                                    VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4,
                                    VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_ECN, GN_VIRTIO_NET_HDR_GSO_UDP_L4,
                                    GN_VIRTIO_NET_HDR_SIZE, gn_virtio_net_hdr_t)
from graphnet.includes.linux cimport (epoll_create1, epoll_ctl, epoll_wait, epoll_event, EPOLL_CTL_ADD,
                                      EPOLL_CTL_DEL, EPOLL_CLOEXEC, EPOLLIN, EPOLLERR, EPOLLHUP)
from graphnet.includes.platform cimport gn_time_ns
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_BUFFER_DATA_SIZE, GN_BUFFER_HEADROOM,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD,
                                   GN_INVALID_INDEX, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_increment_error, gn_node_set_interrupt_pending,
                                 gn_node_schedule_interrupt, GN_NODE_INTERRUPT, GN_NODE_POLLING)
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_main_t, gn_pcap_capture, GN_PCAP_RX, GN_PCAP_TX

from graphnet.io import host
from graphnet.io.device import DefaultNext, Device, DeviceError
from graphnet.vlib.node import Node
from graphnet.vlib.process import WaitEvent
from graphnet.io.link_events import link_watcher

log = logging.getLogger("graphnet.tap")

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

# tap-input error rows
cdef enum:
    RX_TOO_SHORT = 1
    RX_TOO_LONG = 2
    RX_BAD_VNET = 3
    RX_ADMIN_DOWN = 4
    RX_NO_BUFFERS = 5
    RX_READ_ERROR = 6
    RX_LINK_LOST = 7
    RX_N_ERRORS = 8

# tap-output error rows
cdef enum:
    TX_DEFERRED = 1
    TX_QUEUE_FULL = 2
    TX_WRITE_ERROR = 3
    TX_HOST_DOWN = 4
    TX_BAD_OFFLOAD = 5
    TX_CHAIN_TOO_LONG = 6
    TX_LINK_LOST = 7
    TX_ADMIN_DOWN = 8

# where the device died
cdef enum:
    DEAD_READ = 1
    DEAD_WRITE = 2
    DEAD_EPOLL = 3
    DEAD_CLOSED = 4
    DEAD_KERNEL = 5                # netlink: the kernel side was deleted, moved, or its namespace deleted

RX_ERRORS = (
    ("none", "info", "no error"),
    ("frame-too-short", "error", "frame shorter than an Ethernet header (14 bytes)"),
    ("frame-too-long", "error", "frame longer than MTU + Ethernet header without GSO metadata"),
    ("bad-vnet-header", "error", "inconsistent virtio-net header (GSO type, sizes or checksum offsets)"),
    ("interface-down", "warn", "interface is admin down: frame dropped"),
    ("no-buffers", "warn", "no buffers to read into; read deferred"),
    ("read-error", "error", "read() failed (frame lost)"),
    ("link-lost", "error", "the kernel side of the TAP is gone (fd error)"),
)

TX_ERRORS = (
    ("none", "info", "no error"),
    ("tx-deferred", "info", "kernel queue full (EAGAIN): frame queued for retry"),
    ("tx-queue-full", "error", "kernel queue full: frame dropped (retry queue full or timed out)"),
    ("write-error", "error", "write() failed: frame dropped"),
    ("host-down", "warn", "kernel side of the TAP is down (EIO): frame dropped"),
    ("bad-offload", "error", "GSO/checksum offload on a frame whose headers cannot be parsed"),
    ("chain-too-long", "error", "buffer chain longer than 64 segments"),
    ("link-lost", "error", "the kernel side of the TAP is gone: frame dropped"),
    ("interface-down", "warn", "interface is admin down: frame dropped"),
)

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


ctypedef struct tap_trace_t:
    uint32_t sw_if_index
    uint32_t length               # the whole frame (all buffers)
    uint32_t flags
    uint16_t n_buffers
    uint16_t gso_size
    uint16_t hdr_size
    uint8_t vnet[12]
    uint16_t n_bytes
    uint8_t bytes[96]


# --- helpers -----------------------------------------------------------------------

cdef inline bint _fatal_errno(int e) noexcept nogil:
    """errno values that mean the TAP itself is gone."""
    return e == EBADFD or e == EBADF or e == ENODEV or e == ENXIO


cdef inline uint16_t _rd16(const uint8_t* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t _plain_max(const uint8_t* frame, uint32_t length, uint32_t mtu) noexcept nogil:
    """Longest frame allowed without GSO: MTU + Ethernet (+4 per VLAN tag)."""
    cdef uint32_t m = mtu + ETH_HLEN
    cdef uint16_t et
    if length >= 18:
        et = _rd16(frame + 12)
        if et == 0x8100 or et == 0x88a8:
            m += 4
            if _rd16(frame + 16) == 0x8100:
                m += 4
    return m


cdef inline int _rx_check(const gn_virtio_net_hdr_t* h, const uint8_t* frame, uint32_t length,
                          uint32_t mtu) noexcept nogil:
    """0, or the tap-input error row that drops this frame."""
    cdef uint8_t gso
    if length < ETH_HLEN:
        return RX_TOO_SHORT
    if h != NULL:
        gso = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN
        if gso != VIRTIO_NET_HDR_GSO_NONE:
            if gso != VIRTIO_NET_HDR_GSO_TCPV4 and gso != VIRTIO_NET_HDR_GSO_TCPV6 and gso != GN_VIRTIO_NET_HDR_GSO_UDP_L4:
                return RX_BAD_VNET
            if h.gso_size == 0 or h.gso_size >= length or h.hdr_len > length:
                return RX_BAD_VNET
            if not (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM):
                return RX_BAD_VNET
        if h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
            if h.csum_start < ETH_HLEN or <uint32_t>h.csum_start + h.csum_offset + 2 > length:
                return RX_BAD_VNET
        if gso != VIRTIO_NET_HDR_GSO_NONE:
            return 0
    if length > _plain_max(frame, length, mtu):
        return RX_TOO_LONG
    return 0


cdef inline void _count_tx_drop(gn_main_t* vm, tap_dev_t* t, uint32_t code, uint64_t n) noexcept nogil:
    vm.error_counters[t.tx_error_base + code] += n
    t.hw.counters.tx_drops += n


cdef void _retry_drop_all(gn_main_t* vm, tap_dev_t* t, uint32_t code) noexcept nogil:
    """Free every buffer of the retry queue, counting them under `code`."""
    cdef uint32_t seg
    _count_tx_drop(vm, t, code, t.retry_n)
    while t.retry_n:
        seg = t.retry_n if t.retry_n < RETRY_CAP - t.retry_head else RETRY_CAP - t.retry_head
        gn_main_free(vm, &t.retry[t.retry_head], seg)
        t.retry_head = (t.retry_head + seg) % RETRY_CAP
        t.retry_n -= seg
    t.retry_head = 0


cdef void _mark_dead(gn_main_t* vm, tap_dev_t* t, int err, uint8_t where) noexcept nogil:
    """The kernel side is gone: link down, fd out of epoll, queue dropped."""
    cdef gn_node_runtime_t* rt
    cdef epoll_event ev
    if t.dead:
        return
    t.dead = where
    t.dead_errno = err
    t.hw.link_up = 0
    rt = &vm.nodes[t.input_node_index]
    if rt.fd >= 0 and not rt.fd_error:
        # As the loop does on EPOLLERR: a dead fd must never wake it again.
        epoll_ctl(vm.epoll_fd, EPOLL_CTL_DEL, rt.fd, &ev)
        if rt.state == GN_NODE_INTERRUPT:
            vm.n_fd_interrupt -= 1
        rt.fd_error = 1
    gn_node_increment_error(vm, rt, RX_LINK_LOST, 1)
    if t.retry_n:
        _retry_drop_all(vm, t, TX_LINK_LOST)
    if t.has_monitor:
        gn_node_set_interrupt_pending(vm, t.monitor_node_index)     # it logs, closes the fd, stops the input


# --- tx --------------------------------------------------------------------------

cdef inline int _tx_offload_hdr(gn_buffer_t* b, gn_virtio_net_hdr_t* h) noexcept nogil:
    """Fill the virtio-net header for a GSO / checksum-offload buffer from
    the frame's own headers (which must be in the first buffer). -1: cannot."""
    cdef const uint8_t* p = gn_buffer_current(b)
    cdef uint32_t length = b.current_length, l3 = ETH_HLEN, l4, hdr_len, ihl
    cdef uint16_t et
    cdef uint8_t proto, v6 = 0, gso_type
    if length < ETH_HLEN:
        return -1
    et = _rd16(p + 12)
    while (et == 0x8100 or et == 0x88a8) and l3 < 22:
        if length < l3 + 4:
            return -1
        et = _rd16(p + l3 + 2)
        l3 += 4
    if et == 0x0800:
        if length < l3 + 20:
            return -1
        ihl = (p[l3] & 0xf) * 4
        if ihl < 20:
            return -1
        proto = p[l3 + 9]
        l4 = l3 + ihl
    elif et == 0x86dd:
        if length < l3 + 40:
            return -1
        proto = p[l3 + 6]
        l4 = l3 + 40
        v6 = 1
    else:
        return -1
    if proto == 6:
        if length < l4 + 20:
            return -1
        hdr_len = l4 + (p[l4 + 12] >> 4) * 4
        h.csum_offset = 16
        gso_type = VIRTIO_NET_HDR_GSO_TCPV6 if v6 else VIRTIO_NET_HDR_GSO_TCPV4
    elif proto == 17:
        hdr_len = l4 + 8
        h.csum_offset = 6
        gso_type = GN_VIRTIO_NET_HDR_GSO_UDP_L4
    else:
        return -1
    if hdr_len > length:
        return -1
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM
    h.csum_start = <uint16_t>l4
    if b.flags & GN_BUFFER_F_GSO:
        if b.gso_size == 0:
            return -1
        h.gso_type = gso_type
        h.gso_size = b.gso_size
        h.hdr_len = <uint16_t>hdr_len
    return 0


cdef uint32_t _tx_burst(gn_main_t* vm, tap_dev_t* t, const uint32_t* bis, uint32_t n) noexcept nogil:
    """Write bis[0:n] in order. Returns how many were consumed (written and
    freed, or dropped with a counter and freed); stops early at EAGAIN (the
    caller keeps bis[ret:]). On a fatal error the device is marked dead."""
    cdef uint32_t i = 0, n_free = 0, n_seg, k, bi, total
    cdef uint32_t done[256]
    cdef iovec iov[TX_MAX_IOV]
    cdef gn_buffer_t* b
    cdef gn_buffer_t* s
    cdef gn_virtio_net_hdr_t* h
    cdef gn_virtio_net_hdr_t scratch
    cdef uint8_t* p
    cdef ssize_t r
    cdef int e, code
    cdef bint in_headroom
    cdef uint64_t packets = 0, nbytes = 0
    while i < n:
        if t.dead:
            break
        bi = bis[i]
        b = gn_main_buffer(vm, bi)
        p = gn_buffer_current(b)
        code = 0
        # The header goes into the headroom just before the frame when there
        # is room (one contiguous write); else into a scratch header.
        in_headroom = b.current_data - <int>t.hdr_size >= -GN_BUFFER_HEADROOM
        h = <gn_virtio_net_hdr_t*>(p - t.hdr_size) if in_headroom else &scratch
        if t.hdr_size:
            memset(h, 0, GN_VIRTIO_NET_HDR_SIZE)
            if b.flags & (GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD):
                if _tx_offload_hdr(b, h) != 0:
                    code = TX_BAD_OFFLOAD
                elif b.flags & GN_BUFFER_F_GSO:
                    t.tx_gso_frames += 1
        total = b.current_length
        if code == 0 and not (b.flags & GN_BUFFER_F_NEXT_PRESENT) and in_headroom:
            r = write(t.fd, p - t.hdr_size, b.current_length + t.hdr_size)
        elif code == 0:
            n_seg = 0
            if in_headroom:
                iov[0].iov_base = p - t.hdr_size
                iov[0].iov_len = b.current_length + t.hdr_size
                n_seg = 1
            else:
                iov[0].iov_base = h
                iov[0].iov_len = t.hdr_size
                iov[1].iov_base = p
                iov[1].iov_len = b.current_length
                n_seg = 2
            s = b
            while s.flags & GN_BUFFER_F_NEXT_PRESENT:
                if n_seg == TX_MAX_IOV:
                    code = TX_CHAIN_TOO_LONG
                    break
                s = gn_main_buffer(vm, s.next_buffer)
                iov[n_seg].iov_base = gn_buffer_current(s)
                iov[n_seg].iov_len = s.current_length
                total += s.current_length
                n_seg += 1
            if code == 0:
                if b.flags & GN_BUFFER_F_NEXT_PRESENT:
                    t.tx_chained += 1
                r = writev(t.fd, iov, n_seg)
        if code == 0 and r < 0:
            e = errno
            if e == EAGAIN:
                t.tx_eagain += 1
                break
            if e == EINTR:
                continue
            t.hw.counters.tx_errors += 1
            if _fatal_errno(e):
                _mark_dead(vm, t, e, DEAD_WRITE)
                code = TX_LINK_LOST
            elif e == EIO:
                code = TX_HOST_DOWN
            else:
                code = TX_WRITE_ERROR
        if code:
            _count_tx_drop(vm, t, code, 1)
        else:
            packets += 1
            nbytes += total
        done[n_free] = bi
        n_free += 1
        if n_free == 256:
            gn_main_free(vm, done, n_free)
            n_free = 0
        i += 1
    if t.dead and i < n:
        # Lost the device mid-burst: nothing after this can be written.
        _count_tx_drop(vm, t, TX_LINK_LOST, n - i)
        gn_main_free(vm, bis + i, n - i)
        i = n
    if n_free:
        gn_main_free(vm, done, n_free)
    t.hw.counters.tx_packets += packets
    t.hw.counters.tx_bytes += nbytes
    return i


cdef void _tx_arm_retry(gn_main_t* vm, tap_dev_t* t) noexcept nogil:
    """Make sure tap-input runs (and flushes the queue) within a tick. A
    polling tap-input runs every iteration anyway: no timer then."""
    if vm.nodes[t.input_node_index].state == GN_NODE_POLLING:
        return
    if not t.retry_armed:
        t.retry_armed = 1
        gn_node_schedule_interrupt(vm, t.input_node_index, 1)


cdef void _tx_flush_retry(gn_main_t* vm, tap_dev_t* t) noexcept nogil:
    """Write the retry queue, oldest first, until it is empty or EAGAIN;
    drop it when it has made no progress for retry_timeout_ns."""
    cdef uint32_t seg, k, before = t.retry_n
    cdef uint64_t now
    t.retry_armed = 0
    if not t.hw.admin_up:
        _retry_drop_all(vm, t, TX_ADMIN_DOWN)     # nothing is written while admin down
        return
    while t.retry_n and not t.dead:
        seg = t.retry_n if t.retry_n < RETRY_CAP - t.retry_head else RETRY_CAP - t.retry_head
        k = _tx_burst(vm, t, &t.retry[t.retry_head], seg)
        t.retry_head = (t.retry_head + k) % RETRY_CAP
        t.retry_n -= k
        if k < seg:
            break
    if t.retry_n == 0:
        t.retry_head = 0
        return
    now = gn_time_ns()
    if t.retry_n < before:
        t.retry_since_ns = now           # progress: restart the clock
    elif now - t.retry_since_ns > t.retry_timeout_ns:
        _retry_drop_all(vm, t, TX_QUEUE_FULL)
        return
    _tx_arm_retry(vm, t)


cdef void _tx_defer(gn_main_t* vm, tap_dev_t* t, const uint32_t* bis, uint32_t n) noexcept nogil:
    """Queue bis[0:n] for retry; what does not fit is dropped."""
    cdef uint32_t room = RETRY_CAP - t.retry_n
    cdef uint32_t k = n if n < room else room
    cdef uint32_t i, tail
    if t.retry_n == 0:
        t.retry_since_ns = gn_time_ns()
    for i in range(k):
        tail = (t.retry_head + t.retry_n) % RETRY_CAP
        t.retry[tail] = bis[i]
        t.retry_n += 1
    if k:
        vm.error_counters[t.tx_error_base + TX_DEFERRED] += k
        t.hw.counters.tx_retries += k
        if t.retry_n > t.tx_retry_max:
            t.tx_retry_max = t.retry_n
    if k < n:
        _count_tx_drop(vm, t, TX_QUEUE_FULL, n - k)
        gn_main_free(vm, bis + k, n - k)
    _tx_arm_retry(vm, t)


cdef uint32_t tap_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef tap_dev_t* t = <tap_dev_t*>node.runtime_data
    cdef uint32_t n = frame.n_vectors, k = 0
    if t == NULL or t.dead:
        if t != NULL:
            _count_tx_drop(vm, t, TX_LINK_LOST, n)
        gn_main_free(vm, frame.buffers, n)
        return n
    gn_pcap_capture(t.pcap, vm, frame.buffers, n, GN_PCAP_TX, t.sw_if_index)
    if not t.hw.admin_up:
        # Reached directly (not through interface-output, which checks too):
        # the kernel would take the frame even with its carrier off.
        _count_tx_drop(vm, t, TX_ADMIN_DOWN, n)
        gn_main_free(vm, frame.buffers, n)
        if t.retry_n:
            _retry_drop_all(vm, t, TX_ADMIN_DOWN)
        return n
    if t.retry_n:
        _tx_flush_retry(vm, t)
    if t.retry_n == 0:
        k = _tx_burst(vm, t, frame.buffers, n)
    if k < n:
        if t.dead:
            _count_tx_drop(vm, t, TX_LINK_LOST, n - k)
            gn_main_free(vm, frame.buffers + k, n - k)
        else:
            _tx_defer(vm, t, frame.buffers + k, n - k)
    return n


# --- rx --------------------------------------------------------------------------

cdef inline uint32_t _next_queue(uint32_t q, uint32_t live, uint32_t n_queues) noexcept nogil:
    """The queue after q (cyclically) whose bit is set in live (live != 0)."""
    while True:
        q += 1
        if q == n_queues:
            q = 0
        if live & (1u << q):
            return q


# tap-input's two variants, as fused-type specializations of one worker:
# Cython emits one C function per type, each holding only its own branch of
# every ``if queues_t is many_queues_t`` (decided at compile time), so the
# single-queue variant is exactly the loop it was before queues existed.
ctypedef uint8_t one_queue_t
ctypedef uint16_t many_queues_t
ctypedef fused queues_t:
    one_queue_t
    many_queues_t


cdef uint32_t _tap_input(gn_main_t* vm, gn_node_runtime_t* node, tap_dev_t* t, queues_t variant) noexcept nogil:
    """tap-input's worker (see the module docstring). one_queue_t: read
    t.fd; many_queues_t: round-robin over t.qfd[0:n_queues]."""
    cdef uint32_t out[FRAME_MAX]
    cdef uint64_t drops[RX_N_ERRORS]
    cdef iovec iov[RX_MAX_IOV]
    cdef uint32_t n = 0, used = 0, nb, k, top, length, rest, room, code, n_soft = 0
    cdef uint64_t nbytes = 0, n_drops = 0
    cdef uint16_t hs, et
    cdef gn_buffer_t* b0
    cdef gn_buffer_t* b
    cdef gn_virtio_net_hdr_t* h
    cdef ssize_t r
    cdef int e, fatal = 0, fd = t.fd
    cdef uint32_t q = 0, live = 0        # several queues: the one to read next; those not yet found empty
    cdef gn_interface_t* hw
    if t.retry_n:
        _tx_flush_retry(vm, t)
    if t.dead:
        node.has_more_work = 0
        return 0
    hw = t.hw
    hs = t.hdr_size
    memset(drops, 0, sizeof(drops))
    if queues_t is many_queues_t:
        q = t.rx_queue_next
        live = (1u << t.n_queues) - 1
        fd = t.qfd[q]
    while n < FRAME_MAX and used < RX_BUFFER_BUDGET:
        if t.n_spare < t.n_rx_bufs:
            t.n_spare += gn_main_alloc(vm, &t.spare[t.n_spare], SPARE_CAP - t.n_spare)
            if t.n_spare < t.n_rx_bufs:
                gn_node_increment_error(vm, node, RX_NO_BUFFERS, 1)
                break
        top = t.n_spare - 1
        b0 = gn_main_buffer(vm, t.spare[top])
        if t.n_rx_bufs == 1:
            r = read(fd, <uint8_t*>b0.data - hs, hs + GN_BUFFER_DATA_SIZE)
        elif not t.rx_chain_mode:
            # Spill mode: the first buffer, then one contiguous area for the
            # rest of a large frame (a 2-slot readv costs the kernel about what
            # a read() does; a 33-slot one about 0.8 of it).
            iov[0].iov_base = <uint8_t*>b0.data - hs
            iov[0].iov_len = hs + GN_BUFFER_DATA_SIZE
            iov[1].iov_base = t.spill
            iov[1].iov_len = (t.n_rx_bufs - 1) * GN_BUFFER_DATA_SIZE
            r = readv(fd, iov, 2)
        else:
            iov[0].iov_base = <uint8_t*>b0.data - hs
            iov[0].iov_len = hs + GN_BUFFER_DATA_SIZE
            for k in range(1, t.n_rx_bufs):
                iov[k].iov_base = <void*>gn_main_buffer(vm, t.spare[top - k]).data
                iov[k].iov_len = GN_BUFFER_DATA_SIZE
            r = readv(fd, iov, t.n_rx_bufs)
            t.rx_chain_reads += 1
        t.rx_reads += 1
        if r < 0:
            e = errno
            if e == EAGAIN:
                t.rx_empty_reads += 1
                if queues_t is many_queues_t:
                    live &= ~(1u << q)           # this queue is done for this call
                    if live:
                        q = _next_queue(q, live, t.n_queues)
                        fd = t.qfd[q]
                        continue
                break
            if e == EINTR:
                continue
            hw.counters.rx_errors += 1
            if _fatal_errno(e) or e == EIO:
                fatal = e
                break
            # EFAULT/EINVAL: the kernel dropped a frame it could not hand over.
            gn_node_increment_error(vm, node, RX_READ_ERROR, 1)
            n_soft += 1
            if n_soft >= SOFT_ERRORS_PER_CALL:
                break
            if queues_t is many_queues_t:
                q = _next_queue(q, live, t.n_queues)
                fd = t.qfd[q]
            continue
        if queues_t is many_queues_t:
            # One frame per queue in turn; the frame just read is handled below.
            t.rx_queue_frames[q] += 1
            q = _next_queue(q, live, t.n_queues)
            fd = t.qfd[q]
        if r < hs:
            drops[RX_TOO_SHORT] += 1
            continue
        length = <uint32_t>(r - hs)
        if length > t.n_rx_bufs * GN_BUFFER_DATA_SIZE:
            # The kernel reports a frame's full length even when it had to
            # truncate it to the buffers offered.
            drops[RX_TOO_LONG] += 1
            continue
        h = <gn_virtio_net_hdr_t*>(<uint8_t*>b0.data - hs) if hs else NULL
        code = _rx_check(h, b0.data, length, hw.mtu)
        if code == 0 and not hw.admin_up:
            code = RX_ADMIN_DOWN
        if code:
            drops[code] += 1
            continue
        # Good frame: take its buffers off the spare stack.
        nb = (length + GN_BUFFER_DATA_SIZE - 1) // GN_BUFFER_DATA_SIZE
        b0.current_data = 0
        b0.flags = 0
        b0.sw_if_index[GN_RX] = t.sw_if_index
        b0.sw_if_index[GN_TX] = GN_INVALID_INDEX
        b0.error = 0
        b0.gso_size = 0
        b0.l2_hdr_offset = 0
        et = _rd16(b0.data + 12)
        b0.l3_hdr_offset = 18 if (et == 0x8100 or et == 0x88a8) else ETH_HLEN
        b0.l4_hdr_offset = 0
        if nb == 1:
            b0.current_length = <uint16_t>length
            b0.total_length_not_including_first_buffer = 0
            b0.next_buffer = GN_INVALID_INDEX
            if t.rx_chain_mode:
                t.rx_small_run += 1
                if t.rx_small_run >= RX_CHAIN_EXIT_RUN:
                    t.rx_chain_mode = 0
        else:
            b0.current_length = GN_BUFFER_DATA_SIZE
            b0.total_length_not_including_first_buffer = length - GN_BUFFER_DATA_SIZE
            b0.flags = GN_BUFFER_F_NEXT_PRESENT
            b0.next_buffer = t.spare[top - 1]
            rest = length - GN_BUFFER_DATA_SIZE
            for k in range(1, nb):
                b = gn_main_buffer(vm, t.spare[top - k])
                b.current_data = 0
                b.current_length = <uint16_t>(rest if rest < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE)
                if not t.rx_chain_mode:
                    memcpy(b.data, t.spill + (k - 1) * GN_BUFFER_DATA_SIZE, b.current_length)
                rest -= b.current_length
                if k + 1 < nb:
                    b.flags = GN_BUFFER_F_NEXT_PRESENT
                    b.next_buffer = t.spare[top - k - 1]
                else:
                    b.flags = 0
                    b.next_buffer = GN_INVALID_INDEX
            t.rx_chained += 1
            if not t.rx_chain_mode:
                # Large frames have started: read straight into chains
                # (no copy) until they stop.
                t.rx_spill_copies += 1
                t.rx_chain_mode = 1
            t.rx_small_run = 0
        if h != NULL:
            if h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
                b0.flags |= GN_BUFFER_F_L4_CSUM_OFFLOAD
                b0.l4_hdr_offset = <int16_t>h.csum_start
                t.rx_csum_offload += 1
            if h.gso_type != VIRTIO_NET_HDR_GSO_NONE:
                b0.flags |= GN_BUFFER_F_GSO
                b0.gso_size = h.gso_size
                t.rx_gso_frames += 1
        if length > t.rx_max_frame:
            t.rx_max_frame = length
        out[n] = t.spare[top]
        n += 1
        t.n_spare -= nb
        used += nb
        nbytes += length
    if queues_t is many_queues_t:
        t.rx_queue_next = q
    for k in range(1, RX_N_ERRORS):
        if drops[k]:
            gn_node_increment_error(vm, node, k, drops[k])
            n_drops += drops[k]
    hw.counters.rx_drops += n_drops
    if n:
        hw.counters.rx_packets += n
        hw.counters.rx_bytes += nbytes
        gn_pcap_capture(t.pcap, vm, out, n, GN_PCAP_RX, t.sw_if_index)
        gn_enqueue_to_single_next(vm, node, out, t.next_index, n)
    if fatal:
        _mark_dead(vm, t, fatal, DEAD_READ)
    elif node.fd_error:
        _mark_dead(vm, t, EBADFD, DEAD_EPOLL)      # epoll reported EPOLLERR/HUP
    if t.dead:
        node.has_more_work = 0
        return n
    node.has_more_work = n == FRAME_MAX or used >= RX_BUFFER_BUDGET
    if node.has_more_work and node.state == GN_NODE_INTERRUPT:
        gn_node_set_interrupt_pending(vm, node.node_index)
    return n


cdef uint32_t tap_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef tap_dev_t* t = <tap_dev_t*>node.runtime_data
    if t == NULL:
        return 0
    if t.n_queues > 1:
        return _tap_input[many_queues_t](vm, node, t, 0)
    return _tap_input[one_queue_t](vm, node, t, 0)


cdef uint16_t tap_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b, uint8_t* record) noexcept nogil:
    cdef tap_trace_t* tr = <tap_trace_t*>record
    cdef tap_dev_t* t = <tap_dev_t*>node.runtime_data
    cdef gn_buffer_t* s = b
    cdef uint32_t hs = t.hdr_size if t != NULL else 0
    tr.sw_if_index = b.sw_if_index[GN_RX]
    tr.length = b.current_length + (b.total_length_not_including_first_buffer
                                    if b.flags & GN_BUFFER_F_NEXT_PRESENT else 0)
    tr.flags = b.flags
    tr.n_buffers = 1
    while s.flags & GN_BUFFER_F_NEXT_PRESENT and tr.n_buffers < 0xffff:
        s = gn_main_buffer(vm, s.next_buffer)
        tr.n_buffers += 1
    tr.gso_size = b.gso_size
    tr.hdr_size = <uint16_t>hs
    memset(tr.vnet, 0, 12)
    if hs and b.current_data == 0:
        memcpy(tr.vnet, <uint8_t*>b.data - hs, 12)      # the header read() left in the headroom
    tr.n_bytes = b.current_length if b.current_length < 96 else 96
    memcpy(tr.bytes, gn_buffer_current(b), tr.n_bytes)
    return sizeof(tap_trace_t)


_TRACE = struct.Struct("<IIIHHH12sH96s")
_GSO_NAMES = {0: "none", 1: "tcpv4", 3: "udp", 4: "tcpv6", 5: "udp-l4"}


def parse_trace(bytes record):
    """A tap-input trace record as a dict (tests and tools)."""
    sw, length, flags, nbuf, gso_size, hs, vnet, n, data = _TRACE.unpack_from(record.ljust(_TRACE.size, b"\0"))
    vflags, gso_type, hdr_len, vgso, cstart, coff = struct.unpack_from("<BBHHHH", vnet)
    return {"sw_if_index": sw, "length": length, "flags": flags, "n_buffers": nbuf, "gso_size": gso_size,
            "vnet_hdr": hs > 0, "vnet_flags": vflags, "gso_type": gso_type, "hdr_len": hdr_len,
            "csum_start": cstart, "csum_offset": coff, "bytes": data[:n]}


def format_tap_trace(bytes record, engine=None):
    """Trace text: interface, length, buffers, virtio-net header, Scapy summary."""
    d = parse_trace(record)
    name = str(d["sw_if_index"])
    if engine is not None:
        try:
            name = engine.interfaces.names[d["sw_if_index"]]
        except (IndexError, AttributeError):
            pass
    text = [f"  TAP {name}: {d['length']} bytes in {d['n_buffers']} buffer{'s' if d['n_buffers'] > 1 else ''}"]
    if d["vnet_hdr"]:
        parts = []
        if d["vnet_flags"] & 1:
            parts.append(f"needs-csum start {d['csum_start']} offset {d['csum_offset']}")
        if d["gso_type"]:
            g = d["gso_type"] & 0x7f
            parts.append(f"gso {_GSO_NAMES.get(g, g)}{' ecn' if d['gso_type'] & 0x80 else ''} "
                         f"size {d['gso_size']} hdr_len {d['hdr_len']}")
        text.append("    virtio-net: " + (", ".join(parts) if parts else "plain frame"))
    try:
        from scapy.layers.l2 import Ether
        summary = Ether(d["bytes"]).summary()
    except Exception:
        summary = d["bytes"].hex()
    more = "" if len(d["bytes"]) >= d["length"] else f" (first {len(d['bytes'])} bytes)"
    text.append(f"    {summary}{more}")
    return "\n".join(text)


# --- the C state and the kernel calls ---------------------------------------------------

cdef class TapState:
    """The C state shared by one TAP's input and output nodes."""
    cdef tap_dev_t* t

    def __cinit__(self):
        self.t = <tap_dev_t*>calloc(1, sizeof(tap_dev_t))
        if self.t == NULL:
            raise MemoryError()
        self.t.fd = -1
        self.t.epoll_fd = -1
        self.t.n_queues = 1
        for k in range(MAX_QUEUES):
            self.t.qfd[k] = -1
        self.t.retry_timeout_ns = 50 * 1000000

    def __dealloc__(self):
        if self.t != NULL:
            free(self.t.spill)
        free(self.t)

    def configure(self, fds, int hdr_size, bint gso_rx, uint32_t mtu):
        """Take the queue fds (an int, or a list: queue k is fds[k]); with
        several, make the device's epoll fd holding all of them. On an
        error nothing is kept: the caller still owns (and closes) fds."""
        cdef epoll_event ev
        cdef int efd, err
        fds = [int(fds)] if isinstance(fds, int) else [int(f) for f in fds]
        if not 1 <= len(fds) <= MAX_QUEUES:
            raise ValueError(f"{len(fds)} queues: a TAP has 1 to {MAX_QUEUES}")
        max_frame = max(GSO_MAX_FRAME if gso_rx else 0, mtu + ETH_HLEN + 8)
        n_rx_bufs = (max_frame + GN_BUFFER_DATA_SIZE - 1) // GN_BUFFER_DATA_SIZE
        if n_rx_bufs > RX_MAX_IOV:
            raise ValueError(f"MTU {mtu} needs {n_rx_bufs} buffers per read; at most {RX_MAX_IOV}")
        if n_rx_bufs > 1 and self.t.spill == NULL:       # sized for any n_rx_bufs; freed with the state
            self.t.spill = <uint8_t*>malloc((RX_MAX_IOV - 1) * GN_BUFFER_DATA_SIZE)
            if self.t.spill == NULL:
                raise MemoryError()
        efd = -1
        if len(fds) > 1:
            efd = epoll_create1(EPOLL_CLOEXEC)
            if efd < 0:
                err = errno
                raise OSError(err, os.strerror(err), "epoll_create1")
            for k, f in enumerate(fds):
                memset(&ev, 0, sizeof(ev))
                ev.events = EPOLLIN
                ev.data.u32 = k
                if epoll_ctl(efd, EPOLL_CTL_ADD, f, &ev) != 0:
                    err = errno
                    close(efd)
                    raise OSError(err, os.strerror(err), "epoll_ctl")
        self.t.epoll_fd = efd
        self.t.n_queues = len(fds)
        self.t.rx_queue_next = 0
        for k, f in enumerate(fds):
            self.t.qfd[k] = f
        self.t.fd = fds[0]
        self.t.hdr_size = hdr_size
        self.t.gso_rx = gso_rx
        self.t.n_rx_bufs = n_rx_bufs
        self.t.rx_chain_mode = 0
        self.t.rx_small_run = 0

    def attach(self, size_t hw_address, uint32_t sw_if_index, uint32_t input_node_index, uint32_t rx_error_base,
               size_t pcap_address=0):
        self.t.pcap = <gn_pcap_main_t*>pcap_address
        self.t.hw = <gn_interface_t*>hw_address
        self.t.sw_if_index = sw_if_index
        self.t.input_node_index = input_node_index
        self.t.rx_error_base = rx_error_base

    def set_tx_error_base(self, uint32_t base):
        self.t.tx_error_base = base

    def set_monitor(self, uint32_t node_index):
        self.t.monitor_node_index = node_index
        self.t.has_monitor = 1

    def mark_lost(self, size_t vm_address):
        """The kernel side is gone (a netlink event said so): as when a
        read, a write or epoll finds out, but named DEAD_KERNEL."""
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        if vm != NULL and self.t.hw != NULL:
            _mark_dead(vm, self.t, 0, DEAD_KERNEL)

    def set_retry_timeout(self, double seconds):
        self.t.retry_timeout_ns = <uint64_t>(seconds * 1e9)

    def capsule(self):
        return PyCapsule_New(<void*>self.t, "gn_runtime_data", NULL)

    @property
    def fd(self):
        """Queue 0's fd (tx, and rx with one queue); -1 once closed."""
        return self.t.fd

    @property
    def fds(self):
        """Every queue's fd, queue 0 first."""
        return [self.t.qfd[k] for k in range(self.t.n_queues)] if self.t.fd >= 0 else []

    @property
    def n_queues(self):
        return self.t.n_queues

    @property
    def wait_fd(self):
        """The fd the loop waits on: the device's epoll fd with several
        queues, else the TAP fd itself."""
        return self.t.epoll_fd if self.t.n_queues > 1 else self.t.fd

    def set_carrier(self, bint on):
        """TUNSETCARRIER on queue 0 (the carrier is the device's). Returns
        0, or the errno of a refusal (ENOTTY: not a TAP; EINVAL: a kernel
        before 5.0). Never called on a dead or closed device."""
        cdef int v = 1 if on else 0
        if self.t.fd < 0 or self.t.dead:
            return _errno.EBADF
        if ioctl(self.t.fd, TUNSETCARRIER, &v) != 0:
            return errno
        return 0

    @property
    def dead(self):
        """0, or how the device was lost: 1 read, 2 write, 3 epoll, 4 closed."""
        return self.t.dead

    @property
    def dead_errno(self):
        return self.t.dead_errno

    def check_epoll_error(self, size_t vm_address):
        """Mark the device dead if the loop saw EPOLLERR/HUP on its fd
        while the input node was not there to notice (e.g. disabled)."""
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        cdef epoll_event evs[16]
        cdef int n, i
        if vm != NULL and self.t.hw != NULL and not self.t.dead and vm.nodes[self.t.input_node_index].fd_error:
            _mark_dead(vm, self.t, EBADFD, DEAD_EPOLL)
        elif vm != NULL and self.t.hw != NULL and not self.t.dead and self.t.epoll_fd >= 0:
            # Several queues: the loop only sees the device's epoll fd, which
            # never reports EPOLLERR itself; ask it about the queues.
            n = epoll_wait(self.t.epoll_fd, evs, 16, 0)
            for i in range(n if n > 0 else 0):
                if evs[i].events & (EPOLLERR | EPOLLHUP):
                    _mark_dead(vm, self.t, EBADFD, DEAD_EPOLL)
                    break
        return self.t.dead

    @property
    def n_rx_bufs(self):
        return self.t.n_rx_bufs

    def release(self, size_t vm_address):
        """Free the spare buffers and the retry queue (loop stopped or in
        its thread); the fd is never used by the nodes again."""
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        self.t.dead = DEAD_CLOSED if not self.t.dead else self.t.dead
        if vm == NULL:
            return
        if self.t.n_spare:
            gn_main_free(vm, self.t.spare, self.t.n_spare)
            self.t.n_spare = 0
        if self.t.retry_n and self.t.hw != NULL and self.t.tx_error_base:
            _retry_drop_all(vm, self.t, TX_LINK_LOST)
        elif self.t.retry_n:
            while self.t.retry_n:
                gn_main_free(vm, &self.t.retry[self.t.retry_head], 1)
                self.t.retry_head = (self.t.retry_head + 1) % RETRY_CAP
                self.t.retry_n -= 1

    def close_fd(self):
        """Close every queue fd and the device's epoll fd."""
        cdef uint32_t k
        self.t.fd = -1
        if self.t.epoll_fd >= 0:
            close(self.t.epoll_fd)
            self.t.epoll_fd = -1
        for k in range(self.t.n_queues):
            if self.t.qfd[k] >= 0:
                close(self.t.qfd[k])
                self.t.qfd[k] = -1

    def stats(self):
        t = self.t
        return {"rx_reads": t.rx_reads, "rx_empty_reads": t.rx_empty_reads, "rx_gso_frames": t.rx_gso_frames,
                "rx_chained": t.rx_chained, "rx_spill_copies": t.rx_spill_copies,
                "rx_chain_reads": t.rx_chain_reads, "rx_chain_mode": bool(t.rx_chain_mode),
                "rx_csum_offload": t.rx_csum_offload, "rx_max_frame": t.rx_max_frame,
                "tx_gso_frames": t.tx_gso_frames, "tx_chained": t.tx_chained, "tx_eagain": t.tx_eagain,
                "tx_retry_queue": t.retry_n, "tx_retry_max": t.tx_retry_max, "spare_buffers": t.n_spare,
                "buffers_per_read": t.n_rx_bufs, "queues": t.n_queues,
                "rx_queue_frames": ([t.rx_queue_frames[k] for k in range(t.n_queues)] if t.n_queues > 1
                                    else None)}     # frames read per queue (several queues only)


def tap_open(str name, bint vnet_hdr=True, bint multi_queue=False, bint exclusive=False):
    """Open /dev/net/tun and create (TUNSETIFF) TAP `name`; returns the fd
    (nonblocking, close-on-exec). Raises OSError with the kernel's errno.
    exclusive: IFF_TUN_EXCL, EBUSY if `name` exists. Without it, with
    multi_queue, a TAP `name` that exists with IFF_MULTI_QUEUE gets one
    more queue (this fd): how queues 1..N-1 are opened."""
    cdef ifreq ifr
    cdef bytes bname = name.encode()
    cdef int fd, err
    if len(bname) >= 16:
        raise OSError(_errno.EINVAL, f"interface name {name!r} is longer than 15 bytes")
    fd = open(b"/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
    if fd < 0:
        err = errno
        raise OSError(err, os.strerror(err), "/dev/net/tun")
    memset(&ifr, 0, sizeof(ifr))
    strncpy(ifr.ifr_name, bname, 15)
    ifr.ifr_flags = <short>(IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
                            | (IFF_MULTI_QUEUE if multi_queue else 0) | (IFF_TUN_EXCL if exclusive else 0))
    if ioctl(fd, TUNSETIFF, &ifr) != 0:
        err = errno
        close(fd)
        raise OSError(err, os.strerror(err), "TUNSETIFF")
    return fd


def tap_set_vnet_hdr_size(int fd, int size):
    cdef int sz = size, err
    if ioctl(fd, TUNSETVNETHDRSZ, &sz) != 0:
        err = errno
        raise OSError(err, os.strerror(err), "TUNSETVNETHDRSZ")


def tap_set_offload(int fd, unsigned int flags):
    """TUNSETOFFLOAD; returns True if the kernel accepted `flags`."""
    cdef int err
    if ioctl(fd, TUNSETOFFLOAD, <unsigned long>flags) != 0:
        err = errno
        if err == EINVAL:
            return False
        raise OSError(err, os.strerror(err), "TUNSETOFFLOAD")
    return True


def tap_features(int fd):
    cdef unsigned int features = 0
    if ioctl(fd, TUNGETFEATURES, &features) != 0:
        return 0
    return features


OFFLOAD_NAMES = {TUN_F_CSUM: "csum", TUN_F_TSO4: "tso4", TUN_F_TSO6: "tso6", GN_TUN_F_USO4: "uso4",
                 GN_TUN_F_USO6: "uso6"}
# Tried in order until the kernel accepts one.
OFFLOAD_CHOICES = (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | GN_TUN_F_USO4 | GN_TUN_F_USO6,
                   TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
                   TUN_F_CSUM)
GSO_OFFLOADS = TUN_F_TSO4 | TUN_F_TSO6 | GN_TUN_F_USO4 | GN_TUN_F_USO6
VNET_HDR_SIZE = GN_VIRTIO_NET_HDR_SIZE


def offload_names(flags):
    return [n for f, n in OFFLOAD_NAMES.items() if flags & f]


# --- the device --------------------------------------------------------------------



class TapDevice(Device):
    """A TAP interface (see the module docstring).

    ``TapDevice(engine, name="gn0", *, mac=None, mtu=1500, rx_mode="interrupt",
    host_address=None, netns=None, host_mac=None, vnet_hdr=True, offloads=True,
    queues=1, multi_queue=None, next_node=None, admin_up=True, fd=None)``

    mac is graphnet's side (the interface table); host_mac the kernel side's
    (None: the kernel's random one). netns: move the kernel side into this
    namespace, created if missing (and then removed by close()).
    host_address ``a.b.c.d/len`` goes on the kernel side. queues: 1 to 16
    fds on the TAP (IFF_MULTI_QUEUE when more than one); multi_queue: set
    IFF_MULTI_QUEUE even with one queue (None: when queues > 1; False with
    queues > 1 is an error). admin_up=False creates it down, carrier off.
    fd: adopt an already configured TAP fd, or a list of them (one per
    queue), or any packet-preserving fd (e.g. a datagram socketpair in
    tests): nothing is created or configured in the kernel, vnet_hdr/offloads
    say how that fd was set up. Create devices before the engine is built,
    then ``engine.add(device)``; or later (in the loop's thread, as
    ``create tap`` does), then ``device.add_to_engine()``.

    Invariant: ``carrier`` is True/False once TUNSETCARRIER succeeded and
    then always equals the interface's admin state; None when the kernel
    (or an adopted non-TAP fd) refused it (``carrier_error`` says why).
    """
    kind = "tap"

    def __init__(self, engine, name: str = "gn0", *, mac=None, mtu: int = 1500, rx_mode: str = "interrupt",
                 host_address=None, netns=None, host_mac=None, vnet_hdr: bool = True, offloads: bool = True,
                 queues=None, multi_queue=None, next_node=None, admin_up: bool = True, fd=None):
        if not 68 <= mtu <= 65535:
            raise DeviceError(f"TAP {name}: MTU {mtu} is outside 68..65535")
        if fd is None and not 0 < len(name.encode()) < 16:
            raise DeviceError(f"TAP name {name!r}: an interface name has 1 to 15 bytes")
        adopted = None if fd is None else ([int(f) for f in fd] if isinstance(fd, (list, tuple)) else [int(fd)])
        if queues is None:
            queues = len(adopted) if adopted else 1
        if isinstance(queues, bool) or not isinstance(queues, int) or not 1 <= queues <= MAX_QUEUES:
            raise DeviceError(f"TAP {name}: queues = {queues!r}: give 1 to {MAX_QUEUES}")
        if adopted is not None and len(adopted) != queues:
            raise DeviceError(f"TAP {name}: {len(adopted)} fd(s) adopted for {queues} queues")
        if multi_queue is False and queues > 1:
            raise DeviceError(f"TAP {name}: {queues} queues need IFF_MULTI_QUEUE (multi_queue=False given)")
        self.netns = netns
        self.host_address = host_address
        self.host_mac = host_mac
        self.vnet_hdr = bool(vnet_hdr)
        self.queues = queues
        self.multi_queue = queues > 1 if multi_queue is None else bool(multi_queue)
        self.created_netns = False
        self.adopted_fd = fd is not None
        self.offloads = 0
        self.carrier = None
        self.carrier_error = None
        self._closed = False
        self._lost_reason = None
        self._watch = None
        self._fds = []
        self.state = TapState()
        if adopted is not None:
            for f in adopted:
                os.set_blocking(f, False)
            self._fds = adopted
            self.offloads = (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) if (offloads and vnet_hdr) else 0
        else:
            self._create(name, mtu, offloads)
        self.fd = self._fds[0]
        try:
            self.state.configure(self._fds, VNET_HDR_SIZE if self.vnet_hdr else 0,
                                 bool(self.offloads & GSO_OFFLOADS), mtu)
            super().__init__(engine, name, mac=mac, mtu=mtu, rx_mode=rx_mode)
        except BaseException:
            self._undo()
            raise
        self.monitor_node = f"tap-monitor-{name}"
        self.next_node = next_node
        if admin_up:
            engine.interfaces.set_admin_up(self.sw_if_index, True)     # carrier on (see admin_state_changed)
        else:
            self.admin_state_changed(False)                              # created down: carrier off

    # --- creation ---------------------------------------------------------------

    def _create(self, name, mtu, offloads):
        if not os.path.exists("/dev/net/tun"):
            raise DeviceError(f"creating TAP {name}: /dev/net/tun is missing (no tun driver in this kernel?)")
        try:
            exists = host.link_exists(name)
        except Exception as e:
            raise DeviceError(f"creating TAP {name}: cannot list interfaces: {e}") from e
        if exists:
            raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists")
        if self.netns and self.netns in host.list_netns() and host.link_exists(name, self.netns):
            raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists "
                              f"in namespace {self.netns!r}")
        try:
            # Queue 0 creates the TAP (IFF_TUN_EXCL: never someone else's);
            # queues 1.. attach to it, all before the link leaves our namespace.
            for k in range(self.queues):
                self._fds.append(tap_open(name, self.vnet_hdr, self.multi_queue, exclusive=(k == 0)))
        except OSError as e:
            k = len(self._fds)
            self._undo()
            if e.errno in (_errno.EPERM, _errno.EACCES):
                raise DeviceError(f"creating TAP {name} needs root (CAP_NET_ADMIN)") from None
            if k > 0:
                raise DeviceError(f"creating TAP {name}: the kernel refused queue {k + 1} of {self.queues} "
                                  f"(TUNSETIFF with IFF_MULTI_QUEUE): {e.strerror}") from None
            if e.errno in (_errno.EBUSY, _errno.EEXIST):
                raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists") from None
            if e.errno == _errno.EINVAL and host.link_exists(name):
                raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists "
                                  f"(and is not a TAP" + (" with IFF_MULTI_QUEUE" if self.multi_queue else "")
                                  + ")") from None
            if e.errno == _errno.EINVAL and self.multi_queue:
                raise DeviceError(f"creating TAP {name}: the kernel refused IFF_MULTI_QUEUE: {e.strerror}") from None
            raise DeviceError(f"creating TAP {name}: {e.filename or 'open'}: {e.strerror}") from None
        fd = self._fds[0]
        try:
            if self.vnet_hdr:
                tap_set_vnet_hdr_size(fd, VNET_HDR_SIZE)
                if offloads:
                    for flags in OFFLOAD_CHOICES:
                        if tap_set_offload(fd, flags):
                            self.offloads = flags
                            break
            self._configure_host(name, mtu)
        except BaseException as e:
            self._undo()
            if isinstance(e, (host.HostError, OSError)):
                raise DeviceError(f"creating TAP {name}: {e}") from None
            raise

    def _configure_host(self, name, mtu):
        host.set_link(name, mtu=mtu, mac=self.host_mac)
        if self.netns:
            if self.netns not in host.list_netns():
                self.created_netns = host.create_netns(self.netns)
            host.move_link(name, self.netns)
        host.set_link(name, self.netns, up=True)
        if self.host_address:
            host.add_address(name, self.host_address, self.netns)

    def _undo(self):
        """Undo a half-made device: close the fds (the kernel removes the
        link with the last one) and remove a namespace we created."""
        if self.state.fd >= 0:
            self.state.close_fd()
        else:
            for f in self._fds:
                os.close(f)
        self._fds = []
        self.fd = -1
        if self.created_netns:
            try:
                host.delete_netns(self.netns)
            except Exception:
                log.exception("removing namespace %s", self.netns)
            self.created_netns = False

    # --- registration -----------------------------------------------------------

    def nodes(self):
        state, adaptive = self.node_state()
        nexts = (self.next_node,) if self.next_node else DefaultNext(self.engine)
        return (
            Node(self.input_node, type="input", state=state, adaptive=adaptive,
                 fn=PyCapsule_New(<void*>tap_input_fn, "gn_node_fn", NULL), next_nodes=nexts,
                 errors=RX_ERRORS, trace_fn=PyCapsule_New(<void*>tap_trace_fn, "gn_trace_fn", NULL),
                 trace_size=sizeof(tap_trace_t), format_trace=format_tap_trace,
                 setup=self._setup_input, instance=self, doc=__doc__.split("\n\n")[2]),
            Node(self.output_node, fn=PyCapsule_New(<void*>tap_output_fn, "gn_node_fn", NULL), errors=TX_ERRORS,
                 attach_to=(("interface-output", self.sw_if_index),), setup=self._setup_output, instance=self,
                 doc=__doc__.split("\n\n")[3]),
            Node(self.monitor_node, type="process", process=self._monitor, instance=self,
                 doc="Logs the loss of the kernel side once and disables the input node."),
        )

    def _setup_input(self, engine, node_index):
        from graphnet.io.pcap import pcap_main_address
        self.state.attach(engine.interfaces.address(self.sw_if_index), self.sw_if_index, node_index,
                          engine.error_base[self.input_node], pcap_main_address(engine))
        engine.main.set_runtime_data(node_index, self.state.capsule())
        engine.main.register_fd(node_index, self.state.wait_fd)   # several queues: the device's epoll fd
        engine.main.set_interrupt_pending(node_index)     # frames may already be queued
        self.state.set_monitor(engine.index[self.monitor_node])
        if not self.adopted_fd:
            w = link_watcher(engine)
            self._watch = w.watch(self.netns, self.name, self._on_link_event)
            w.set_known(self._watch, host.link_index(self.name, self.netns) or 0, True)

    def _setup_output(self, engine, node_index):
        self.state.set_tx_error_base(engine.error_base[self.output_node])
        engine.main.set_runtime_data(node_index, self.state.capsule())

    def _monitor(self, engine):
        """Process: woken when a node finds the device dead (a read, a
        write or epoll failed); reports it once and lets go of the fd."""
        while not self._closed:
            yield WaitEvent(interrupts=True)
            if not self._closed and self.state.check_epoll_error(engine.main.address):
                self._lose(self.link_error())
                return

    def _on_link_event(self, ev):
        """A netlink event about the kernel side (loop thread). Its carrier
        is ours (it follows graphnet's admin state), so only its admin state
        counts as up or down; deleted, moved or its namespace deleted: the
        device is lost."""
        what, text = ev.what, ev.describe()
        if what in ("deleted", "moved", "namespace-deleted"):
            self._lose(text)
        elif what in ("up", "down"):
            up = what == "up" or ev.reason == "no carrier"
            if up != bool(self.engine.interfaces.info(self.sw_if_index)["link_up"]):
                self.kernel_link_changed(up)
                log.warning("TAP %s: %s: %s", self.name, f"kernel side {self.name} is admin {'up' if up else 'down'}",
                            "link up, traffic resumed" if up else
                            "link down, neighbours flushed, traffic to it dropped (link-down)")
        else:
            log.warning("TAP %s: %s", self.name, text)

    def _lose(self, why):
        """The kernel side is gone: one log line, the interface down, the
        fd out of the loop and closed, held buffers freed, the input node
        disabled (so even a polling device costs nothing)."""
        if self._closed or self._lost_reason is not None:
            return
        eng = self.engine
        main = eng.main
        self._lost_reason = why
        self.state.mark_lost(main.address)            # no-op if a node found out first
        i = eng.index[self.input_node]
        main.unregister_fd(i)
        self.state.release(main.address)
        self.state.close_fd()
        self.fd = -1
        from graphnet.vlib.main import STATE_DISABLED
        main.set_state(i, STATE_DISABLED, False)
        if self._watch is not None:
            link_watcher(eng).unwatch(self._watch)
            self._watch = None
        self.kernel_link_changed(False)
        log.error("TAP %s: %s; interface %s is down, its fd closed", self.name, self.link_error(), self.name)

    # --- control ----------------------------------------------------------------

    def link_error(self):
        """None while the device works, else what happened (text)."""
        dead, err = self.state.dead, self.state.dead_errno
        if not dead:
            return None
        if dead == DEAD_CLOSED:
            return "closed"
        if dead == DEAD_KERNEL:
            return f"link lost: {self._lost_reason}"
        what = {DEAD_READ: "read", DEAD_WRITE: "write", DEAD_EPOLL: "epoll"}.get(dead, "?")
        if dead == DEAD_EPOLL:
            return "link lost: epoll reported an error on the TAP fd (the kernel side is gone)"
        return f"link lost: {what}: {_errno.errorcode.get(err, err)} ({os.strerror(err)})"

    @property
    def link_lost(self) -> bool:
        return self.state.dead not in (0, DEAD_CLOSED)

    def set_rx_mode(self, mode: str) -> None:
        if self.link_lost:
            from graphnet.io.device import RX_MODES
            if mode not in RX_MODES:
                raise DeviceError(f"rx-mode {mode!r}: use one of {', '.join(RX_MODES)}")
            self.rx_mode = mode       # the input node stays disabled
            return
        super().set_rx_mode(mode)

    def admin_state_changed(self, up: bool) -> None:
        """Called by the interface table after this interface's admin state
        was set (``set interface state``, ``set_admin_up``): the kernel
        side's carrier follows it (TUNSETCARRIER). graphnet's side changes
        first, so going down nothing more is written and coming up nothing
        the kernel sends is dropped as interface-down. A refusal is
        recorded (``carrier_error``, ``show hardware``) and logged once for
        a TAP graphnet created; it never fails the state change."""
        if self._closed or self.link_lost:
            return
        err = self.state.set_carrier(bool(up))
        if err == 0:
            self.carrier = bool(up)
            self.carrier_error = None
            return
        first = self.carrier_error is None
        self.carrier = None
        if err == _errno.ENOTTY:
            self.carrier_error = "not controlled: the fd is not a TAP (TUNSETCARRIER: ENOTTY)"
        else:
            self.carrier_error = (f"not controlled: TUNSETCARRIER: {_errno.errorcode.get(err, err)} "
                                  f"({os.strerror(err)}; needs Linux 5.0+)")
        if first and not self.adopted_fd:
            log.warning("TAP %s: carrier %s", self.name, self.carrier_error)

    def max_mtu(self) -> int:
        """Reads take 64 KB frames with GSO offloads; without them, the
        frame size the TAP was made for (its MTU at creation)."""
        return 65535 if self.offloads & GSO_OFFLOADS else self.mtu

    def kernel_mtu_changed(self, mtu: int) -> None:
        """The kernel side's MTU follows graphnet's."""
        host.set_link(self.name, self.netns, mtu=mtu)

    def cached_buffers(self) -> int:
        """The rx spare buffers (allocated ahead of reads, up to 128, not
        packets): ``show buffers``' device cache."""
        return self.state.stats()["spare_buffers"]

    def stats(self) -> dict:
        """Device statistics (reads, GSO frames, retry queue...)."""
        if self.engine.main is None:
            return self.state.stats()
        return self.engine.call(self.state.stats)

    def set_retry_timeout(self, seconds: float) -> None:
        """How long a full kernel queue may hold tx frames before they are dropped."""
        self.engine.call(self.state.set_retry_timeout, seconds)

    def hardware_info(self) -> dict:
        info = {}
        flags = ["IFF_TAP", "IFF_NO_PI"] + (["IFF_VNET_HDR"] if self.vnet_hdr else []) + \
                (["IFF_MULTI_QUEUE"] if self.multi_queue else [])
        fds = " ".join(str(f) for f in self.state.fds) or "-1"
        if self.adopted_fd:
            info["device"] = f"adopted fd{'s' if self.queues > 1 else ''} {fds}"
        else:
            info["device"] = f"/dev/net/tun fd{'s' if self.queues > 1 else ''} {fds}, {'|'.join(flags)}"
            info["kernel side"] = (f"{self.name}" + (f" in namespace {self.netns}" if self.netns else "")
                                   + (" (namespace created by graphnet)" if self.created_netns else "")
                                   + (f", address {self.host_address}" if self.host_address else ""))
        info["vnet header"] = f"{VNET_HDR_SIZE} bytes" if self.vnet_hdr else "none"
        info["offloads"] = " ".join(offload_names(self.offloads)) or "none"
        s = self.state.stats()
        if self.queues > 1:
            info["queues"] = (f"{self.queues} (IFF_MULTI_QUEUE), read round-robin through epoll fd "
                              f"{self.state.wait_fd}; rx frames per queue "
                              f"{' '.join(str(x) for x in s['rx_queue_frames'])}; tx on queue 0")
        else:
            info["queues"] = "1" + (" (IFF_MULTI_QUEUE)" if self.multi_queue else "")
        if self.carrier is not None:
            info["carrier"] = f"{'on' if self.carrier else 'off'} (follows the admin state)"
        elif self.carrier_error:
            info["carrier"] = self.carrier_error
        if s['buffers_per_read'] > 1:
            room = (f"1 buffer + spill or a {s['buffers_per_read']}-buffer chain per read (now: "
                    f"{'chain' if s['rx_chain_mode'] else 'spill'}; {s['rx_chain_reads']} chain reads, "
                    f"{s['rx_spill_copies']} spill copies)")
        else:
            room = "1 buffer per read"
        info["rx"] = (f"{room}, {s['rx_reads']} reads "
                      f"({s['rx_empty_reads']} empty), gso {s['rx_gso_frames']}, chained {s['rx_chained']}, "
                      f"csum-offload {s['rx_csum_offload']}, largest {s['rx_max_frame']} bytes")
        info["tx"] = (f"gso {s['tx_gso_frames']}, chained {s['tx_chained']}, eagain {s['tx_eagain']}, "
                      f"retry queue {s['tx_retry_queue']}/{RETRY_CAP} (max {s['tx_retry_max']})")
        err = self.link_error()
        if err:
            info["link"] = err
        return info

    def close(self) -> None:
        """Unregister and close the fds (the kernel removes the TAP), free the
        buffers the device holds, remove the namespace if we created it."""
        if self._closed:
            return
        self._closed = True
        eng = self.engine
        if self._watch is not None:
            link_watcher(eng).unwatch(self._watch)
            self._watch = None
        if eng.main is not None:
            def detach():
                i = eng.index.get(self.input_node)
                if i is not None:
                    eng.main.unregister_fd(i)
                self.state.release(eng.main.address)
            try:
                eng.call(detach)
            except Exception:
                log.exception("TAP %s: detaching from the engine", self.name)
        self.state.close_fd()
        self.fd = -1
        self._fds = []
        if self.created_netns:
            try:
                host.delete_netns(self.netns)
            except Exception:
                log.exception("TAP %s: removing namespace %s", self.name, self.netns)
            self.created_netns = False
