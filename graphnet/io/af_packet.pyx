"""AF_PACKET ("host") interfaces: attach to an existing kernel interface
(a veth end, a real NIC) by name.

    dev = AfPacketDevice(engine, "veth0", netns="blue")
    engine.add(dev)

Socket: ``AF_PACKET/SOCK_RAW`` bound to the interface, opened inside
``netns`` when given (setns in the calling thread around socket creation,
restored afterwards; the socket then lives in that namespace for good).

Rx: a TPACKET_V3 mmap ring (``ring_frames`` x 2 KiB in blocks of
``block_size`` bytes; a block is handed to userspace when full or after
``retire_ms`` ms). ``af-packet-input-<name>`` walks the user-owned blocks,
copies each frame into a buffer (a chain when it does not fit one; a VLAN
tag the kernel took off is put back, so frames arrive byte-exact) and
hands every block back to the kernel as soon as its last frame is copied.
At most 256 frames per call; ``has_more_work`` while user blocks remain.
The per-frame loop holds only the common case (one buffer, no VLAN tag to
restore, nothing wrong: a fixed 64-byte copy for a short frame, with the
data line of the buffer RX_PREFETCH (8) ahead prefetched for writing);
every other frame goes through ``_rx_slow``, and the few it rejects are
remembered by position, so the loop stores no per-frame next index.
The socket ignores outgoing frames (PACKET_IGNORE_OUTGOING), so graphnet
never receives what it sends. Promiscuous mode: PACKET_ADD_MEMBERSHIP
PACKET_MR_PROMISC (the kernel drops it when the socket closes).

Tx: ``af-packet-output-<name>`` sends each frame with one ``send()`` (a
chain with ``sendmsg()``), MSG_DONTWAIT, with PACKET_QDISC_BYPASS (the
fastest way on veth, see MACHINE-NOTES; re-measured while writing this
module, 64-byte frames on veth, one core, 7 runs: send() best 0.92 Mpps,
median 0.83; a TPACKET_V2 tx ring filled in batches of 64 or 256 frames
and kicked with one send(): best 0.89, median 0.83. No gain, and send()
takes chains without a copy and reports a full queue per frame, so
send() it is). A full kernel queue (EAGAIN,
ENOBUFS) never blocks the loop: the unsent frames wait in a backlog that
is retried on later iterations (the input node is woken for it) and, after
``tx_retry_limit`` attempts without progress, dropped with
``tx-queue-full``.

Rx modes: polling, interrupt (the socket fd in the loop's epoll: readable
when a block is retired) and adaptive; switchable at run time.

Link state comes from rtnetlink (graphnet.io.link_events: the engine's
link-events node, woken by the kernel's RTM_NEWLINK/RTM_DELLINK in the
interface's namespace), one log line per event:

  - down (admin down or no carrier): the interface is marked link-down at
    once (interface-output drops what is routed to it, ``link-down``), its
    dynamic neighbours are flushed and the tx backlog dropped. The socket's
    pending ENETDOWN (EPOLLERR) is read by the input node, which puts the
    fd back in epoll: the ring is kept.
  - up: the socket is bound again (the kernel re-arms it by itself; binding
    again also follows a new ifindex), the link marked up, the input node
    raised: rx and tx resume at once.
  - deleted, moved to another namespace, or its namespace deleted: the
    device detaches (fd out of the loop and closed, ring unmapped, tx
    backlog dropped, input node disabled; ``show interface`` says
    ``deleted``) and attaches again, with a fresh socket and ring, when an
    interface of that name appears in the namespace (or on ``create
    host-interface name <if>``).
  - renamed: still attached (the socket follows the ifindex).

A send that fails with ENXIO/ENETDOWN/ENODEV (before the event arrives)
drops the frame as ``link-down`` and makes the input node look at the link
(marked down if it is not up; re-bound if it was re-created). No timer, no
polling: a detached or down interface costs nothing.

Nodes
  af-packet-input-<name>: input. Metadata set: current_data 0,
    current_length, chains, sw_if_index[RX]. Next: next_node (default
    ethernet-input, or null without it). Drops: short-frame, too-big (over MTU + 18), truncated, no-buffers (chain
    tail), interface-down (admin down: frames consumed and counted).
  af-packet-output-<name>: internal, attached to interface-output.
    Metadata used: current_data, current_length, chains. Next: none
    (frees what was sent). Drops: short-frame, too-big, tx-queue-full,
    send-error, link-down, interface-down. Info: tx-deferred.
Both call the pcap capture hook (rx / tx).
"""
import logging
import os

from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset, strncpy
from graphnet.includes.af_packet cimport *
from graphnet.includes.linux cimport mmap, munmap, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_LOCKED, MAP_POPULATE, MAP_FAILED
from graphnet.includes.platform cimport (gn_time_ns, gn_thread_cpu_ns, gn_atomic_load_u32, gn_atomic_store_u32,
                                         gn_unlikely, gn_likely, gn_prefetch_store)
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_BUFFER_DATA_SIZE, GN_FRAME_SIZE,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_INIT_BYTES, gn_buffer_current,
                                   gn_buffer_init_meta, gn_buffer_meta_template)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc_uninit,
                                 gn_main_free,
                                 gn_enqueue_to_next, gn_enqueue_to_single_next, gn_buffer_set_error,
                                 gn_node_increment_error, gn_node_set_interrupt_pending, gn_node_fd_rearm,
                                 GN_NODE_INTERRUPT, GN_NODE_POLLING)
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_main_t, gn_pcap_capture, GN_PCAP_RX, GN_PCAP_TX
from graphnet.io.bufcopy cimport gn_copy_to_chain, gn_chain_length
from graphnet.vlib.node import Node
from graphnet.io.device import Device, DeviceError, RX_MODES
from graphnet.io.link_events import link_watcher
from graphnet.io.device import DefaultNext

log = logging.getLogger("graphnet.af_packet")

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

    RX_ERROR_SHORT = 1
    RX_ERROR_TOO_BIG = 2
    RX_ERROR_TRUNCATED = 3
    RX_ERROR_NO_BUFFERS = 4
    RX_ERROR_DOWN = 5

    TX_ERROR_SHORT = 1
    TX_ERROR_TOO_BIG = 2
    TX_ERROR_QUEUE_FULL = 3
    TX_ERROR_SEND = 4
    TX_ERROR_LINK_DOWN = 5
    TX_ERROR_DOWN = 6
    TX_DEFERRED = 7

INPUT_ERRORS = (
    ("none", "info", "no error"),
    ("short-frame", "error", "frame shorter than an Ethernet header"),
    ("too-big", "error", "frame longer than the interface MTU"),
    ("truncated", "error", "frame cut by the rx ring (larger than a ring block)"),
    ("no-buffers", "warn", "no buffers (frames left in the ring, or a chain tail dropped)"),
    ("interface-down", "warn", "frame received while the interface is admin down"),
)
OUTPUT_ERRORS = (
    ("none", "info", "no error"),
    ("short-frame", "error", "frame shorter than an Ethernet header"),
    ("too-big", "error", "frame longer than the interface MTU"),
    ("tx-queue-full", "error", "kernel tx queue full past the retry limit"),
    ("send-error", "error", "send() failed"),
    ("link-down", "error", "kernel interface down or deleted"),
    ("interface-down", "warn", "interface admin down"),
    ("tx-deferred", "info", "kernel queue full; frame kept for a later retry"),
)
LINK_STATES = {LINK_UP: "up", LINK_DOWN: "down", LINK_GONE: "deleted"}


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


# --- socket setup ---------------------------------------------------------------

cdef int _setopt_int(int fd, int level, int name, int value) noexcept nogil:
    return setsockopt(fd, level, name, &value, sizeof(int))


def _netns_path(netns):
    if netns is None:
        return None
    netns = os.fspath(netns)
    return netns if os.sep in netns else os.path.join("/run/netns", netns)


cdef int _open(afp_t* st, str host_if, object netns, uint32_t ring_frames, uint32_t block_size, uint32_t retire_ms,
               bint promisc, bint qdisc_bypass, bint rx_ring) except -1:
    """Open and configure the socket (and the rx ring) inside netns.
    Raises DeviceError with what went wrong."""
    cdef int own = -1, target = -1, fd = -1, err
    cdef bytes name = host_if.encode()
    cdef bytes nspath
    where = f" in network namespace {netns!r}" if netns else ""
    if not 0 < len(name) < 16:
        raise DeviceError(f"af-packet: bad interface name {host_if!r}")
    st.fd = -1
    if netns is not None:
        nspath = _netns_path(netns).encode()
        target = open(nspath, O_RDONLY | O_CLOEXEC)
        if target < 0:
            err = errno
            raise DeviceError(f"af-packet: no network namespace {netns!r} ({nspath.decode()}: {os.strerror(err)})")
        own = open(b"/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        if own < 0 or setns(target, CLONE_NEWNET) != 0:
            err = errno
            close(target)
            if own >= 0:
                close(own)
            raise DeviceError(f"af-packet: cannot enter network namespace {netns!r}: {os.strerror(err)}"
                              + (" (needs root / CAP_SYS_ADMIN)" if err in (EPERM, EACCES) else ""))
        close(target)
    try:
        # Protocol 0 until bound: no frames from other interfaces in the ring.
        fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if fd < 0:
            err = errno
            raise DeviceError(f"af-packet: cannot open an AF_PACKET socket: {os.strerror(err)}"
                              + (" (needs root / CAP_NET_RAW)" if err in (EPERM, EACCES) else ""))
        st.fd = fd
        strncpy(st.ifname, name, 15)
        st.ifindex = if_nametoindex(st.ifname)
        if st.ifindex == 0:
            raise DeviceError(f"af-packet: no interface named {host_if!r}{where}")
        _read_link_info(st, host_if, where)
        if rx_ring:
            _setup_ring(st, ring_frames, block_size, retire_ms)
        if qdisc_bypass and _setopt_int(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1) == 0:
            st.qdisc_bypass = 1
        if _setopt_int(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1) != 0:
            st.check_outgoing = 1
        if _bind(st) != 0:
            err = errno
            raise DeviceError(f"af-packet: cannot bind to {host_if!r}{where}: {os.strerror(err)}")
        if promisc:
            if _add_promisc(st) != 0:
                err = errno
                raise DeviceError(f"af-packet: cannot set {host_if!r} promiscuous: {os.strerror(err)}")
            st.promisc = 1
    except BaseException:
        _close(st)
        raise
    finally:
        if own >= 0:
            if setns(own, CLONE_NEWNET) != 0:
                log.critical("af-packet: could not return this thread to its network namespace")
            close(own)
    return 0


_HW_TYPES = {772: "a loopback device", 65534: "not an Ethernet device (no link-layer header: a TUN?)",
             768: "an IP-in-IP tunnel", 776: "a SIT tunnel", 778: "a GRE tunnel", 823: "a GRE tunnel"}


cdef int _read_link_info(afp_t* st, str host_if, str where) except -1:
    """The kernel interface's MAC and MTU; refuses anything but Ethernet
    (lo, a TUN, a tunnel): graphnet's graph starts at ethernet-input."""
    cdef ifreq ifr
    cdef int hw_type
    memset(&ifr, 0, sizeof(ifr))
    strncpy(ifr.ifr_name, st.ifname, 15)
    if ioctl(st.fd, SIOCGIFHWADDR, &ifr) == 0:
        hw_type = ifr.ifr_hwaddr.sa_family
        if hw_type != ARPHRD_ETHER:
            raise DeviceError(f"af-packet: {host_if!r}{where} is "
                              f"{_HW_TYPES.get(hw_type, f'not an Ethernet device (ARPHRD {hw_type})')}; "
                              f"only Ethernet interfaces can be attached")
        memcpy(st.kernel_mac, ifr.ifr_hwaddr.sa_data, 6)
    memset(&ifr, 0, sizeof(ifr))
    strncpy(ifr.ifr_name, st.ifname, 15)
    if ioctl(st.fd, SIOCGIFMTU, &ifr) == 0:
        st.kernel_mtu = ifr.ifr_mtu
    return 0


cdef int _setup_ring(afp_t* st, uint32_t ring_frames, uint32_t block_size, uint32_t retire_ms) except -1:
    cdef tpacket_req3 req
    cdef void* p
    cdef int err
    if block_size < 4096 or block_size & (block_size - 1):
        raise DeviceError("af-packet: block_size must be a power of two >= 4096")
    if _setopt_int(st.fd, SOL_PACKET, PACKET_VERSION, TPACKET_V3) != 0:
        err = errno
        raise DeviceError(f"af-packet: TPACKET_V3 not available: {os.strerror(err)}")
    memset(&req, 0, sizeof(req))
    req.tp_block_size = block_size
    req.tp_block_nr = max(2, (<uint64_t>ring_frames * FRAME_SIZE + block_size - 1) // block_size)
    req.tp_frame_size = FRAME_SIZE
    req.tp_frame_nr = req.tp_block_nr * (block_size // FRAME_SIZE)
    req.tp_retire_blk_tov = retire_ms
    if setsockopt(st.fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0:
        err = errno
        raise DeviceError(f"af-packet: cannot create the rx ring ({req.tp_block_nr} x {block_size} bytes): "
                          f"{os.strerror(err)}")
    st.block_size = block_size
    st.n_blocks = req.tp_block_nr
    st.ring_size = <size_t>block_size * req.tp_block_nr
    p = mmap(NULL, st.ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, st.fd, 0)
    if p == MAP_FAILED:
        p = mmap(NULL, st.ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, st.fd, 0)
    if p == MAP_FAILED:
        err = errno
        st.ring_size = 0
        raise DeviceError(f"af-packet: cannot map the rx ring: {os.strerror(err)}")
    st.ring = <uint8_t*>p
    return 0


cdef int _bind(afp_t* st) noexcept nogil:
    cdef sockaddr_ll sll
    memset(&sll, 0, sizeof(sll))
    sll.sll_family = AF_PACKET
    sll.sll_protocol = 0 if st.no_rx else htons(ETH_P_ALL)
    sll.sll_ifindex = st.ifindex
    return bind(st.fd, <sockaddr*>&sll, sizeof(sll))


cdef int _add_promisc(afp_t* st) noexcept nogil:
    cdef packet_mreq mr
    memset(&mr, 0, sizeof(mr))
    mr.mr_ifindex = st.ifindex
    mr.mr_type = PACKET_MR_PROMISC
    return setsockopt(st.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))


cdef int _drop_promisc(afp_t* st) noexcept nogil:
    cdef packet_mreq mr
    memset(&mr, 0, sizeof(mr))
    mr.mr_ifindex = st.ifindex
    mr.mr_type = PACKET_MR_PROMISC
    return setsockopt(st.fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof(mr))


cdef void _close(afp_t* st) noexcept nogil:
    if st.ring != NULL:
        munmap(st.ring, st.ring_size)
        st.ring = NULL
    if st.fd >= 0:
        close(st.fd)
        st.fd = -1


# --- link state -------------------------------------------------------------------

cdef int _probe_link(afp_t* st) noexcept nogil:
    """LINK_UP / LINK_DOWN / LINK_GONE of the kernel interface (in the
    socket's namespace); re-binds the socket when the interface was
    re-created with a new ifindex."""
    cdef ifreq ifr
    memset(&ifr, 0, sizeof(ifr))
    strncpy(ifr.ifr_name, st.ifname, 15)
    if ioctl(st.fd, SIOCGIFINDEX, &ifr) != 0:
        return LINK_GONE
    if ifr.ifr_ifindex != st.ifindex:
        st.ifindex = ifr.ifr_ifindex
        if _bind(st) != 0:
            return LINK_GONE
        if st.promisc:
            _add_promisc(st)
    if ioctl(st.fd, SIOCGIFFLAGS, &ifr) != 0:
        return LINK_GONE
    if (ifr.ifr_flags & IFF_UP) and (ifr.ifr_flags & IFF_RUNNING):
        return LINK_UP
    return LINK_DOWN


cdef void _clear_sock_error(int fd) noexcept nogil:
    cdef int err = 0
    cdef socklen_t n = sizeof(int)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n)


cdef void _mark_link(afp_t* st, int state) noexcept nogil:
    st.link_state = state
    st.link_down = state != LINK_UP
    if st.hw != NULL:
        st.hw.link_up = 0 if st.link_down else 1


cdef bint _link_slow_path(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st) noexcept nogil:
    """The fd reported EPOLLERR (the socket's pending ENETDOWN: the link
    went down or was deleted) or a send failed with ENXIO/ENETDOWN/ENODEV.
    Read the error, put the fd back in epoll, and look at the link: a link
    that is not up is marked down at once (interface-output drops what is
    routed to it); one re-created under our name is re-bound. Up again is
    decided by the link-events node (netlink), never here. Returns True
    while the link is down."""
    cdef int state
    _clear_sock_error(st.fd)
    if node.fd_error:
        gn_node_fd_rearm(vm, node)
    if st.check_link:
        st.check_link = 0
        state = _probe_link(st)
        if state != LINK_UP:
            _mark_link(st, state)
    return st.link_down


# --- rx -------------------------------------------------------------------------

cdef inline tpacket_block_desc* _block(afp_t* st, uint32_t i) noexcept nogil:
    return <tpacket_block_desc*>(st.ring + <size_t>i * st.block_size)


cdef inline bint _user_owned(tpacket_block_desc* bd) noexcept nogil:
    return (gn_atomic_load_u32(&bd.hdr.bh1.block_status) & TP_STATUS_USER) != 0


cdef inline void _release_block(afp_t* st) noexcept nogil:
    """Hand cur_block back to the kernel and move to the next one."""
    gn_atomic_store_u32(&_block(st, st.cur_block).hdr.bh1.block_status, TP_STATUS_KERNEL)
    st.cur_block += 1
    if st.cur_block == st.n_blocks:
        st.cur_block = 0
    st.cur_pkt = 0


cdef uint32_t _ring_available(afp_t* st, uint32_t limit) noexcept nogil:
    """Frames ready in user-owned blocks from the current position (at most
    limit). Releases an exhausted (or empty) current block first."""
    cdef uint32_t k, i, cnt = 0, pkt = st.cur_pkt
    cdef tpacket_block_desc* bd
    for k in range(st.n_blocks):
        bd = _block(st, st.cur_block)
        if not _user_owned(bd) or bd.hdr.bh1.num_pkts > st.cur_pkt:
            break
        _release_block(st)
    pkt = st.cur_pkt
    i = st.cur_block
    for k in range(st.n_blocks):
        bd = _block(st, i)
        if not _user_owned(bd):
            break
        cnt += bd.hdr.bh1.num_pkts - pkt
        if cnt >= limit:
            return limit
        pkt = 0
        i += 1
        if i == st.n_blocks:
            i = 0
    return cnt


cdef inline int _copy_frame(gn_main_t* vm, afp_t* st, uint32_t bi, tpacket3_hdr* h, uint32_t length,
                            bint vlan) noexcept nogil:
    """Copy the frame of h into bi (a chain if needed), re-inserting the
    VLAN tag the kernel stripped. Returns 0 or -1 (no buffers)."""
    cdef const uint8_t* src = (<uint8_t*>h) + h.tp_mac
    cdef gn_buffer_t* b
    cdef uint8_t* dst
    cdef uint16_t tpid, tci
    if not vlan:
        return gn_copy_to_chain(vm, bi, src, length)
    tpid = <uint16_t>h.hv1.tp_vlan_tpid if h.tp_status & TP_STATUS_VLAN_TPID_VALID else 0x8100
    tci = <uint16_t>h.hv1.tp_vlan_tci
    b = gn_main_buffer(vm, bi)
    if length + 4 <= GN_BUFFER_DATA_SIZE:
        dst = &b.data[0]
    else:
        dst = st.scratch
    memcpy(dst, src, 12)
    dst[12] = tpid >> 8
    dst[13] = tpid & 0xff
    dst[14] = tci >> 8
    dst[15] = tci & 0xff
    memcpy(dst + 16, src + 12, length - 12)
    if dst != st.scratch:
        b.current_data = 0
        b.current_length = length + 4
        return 0
    return gn_copy_to_chain(vm, bi, dst, length + 4)


cdef int _rx_slow(gn_main_t* vm, afp_t* st, tpacket3_hdr* h, uint32_t bi) noexcept nogil:
    """A frame off the fast path (a chain, a VLAN tag to re-insert, or
    something wrong with it): copy it into bi and return its length, or
    return -code (RX_ERROR_*) and leave bi for the drop."""
    cdef uint32_t length = h.tp_snaplen
    cdef bint vlan = (h.tp_status & TP_STATUS_VLAN_VALID) != 0
    cdef uint32_t total = length + (4 if vlan else 0)
    if h.tp_snaplen < h.tp_len:
        return -RX_ERROR_TRUNCATED
    if total < 14 or length < 12:
        return -RX_ERROR_SHORT
    if total > st.max_frame:
        return -RX_ERROR_TOO_BIG
    if _copy_frame(vm, st, bi, h, length, vlan) != 0:
        return -RX_ERROR_NO_BUFFERS
    return <int>total


cdef uint32_t _rx_discard(afp_t* st, uint32_t limit) noexcept nogil:
    """Admin down: step over up to limit frames (returns how many) and hand
    their blocks back; outgoing copies are skipped without being counted."""
    cdef uint32_t n = 0, num, cur_pkt, cur_off
    cdef tpacket_block_desc* bd
    cdef tpacket3_hdr* h
    while n < limit:
        bd = _block(st, st.cur_block)
        if not _user_owned(bd):
            break
        num = bd.hdr.bh1.num_pkts
        cur_pkt = st.cur_pkt
        cur_off = bd.hdr.bh1.offset_to_first_pkt if cur_pkt == 0 else st.cur_off
        while cur_pkt < num and n < limit:
            h = <tpacket3_hdr*>((<uint8_t*>bd) + cur_off)
            cur_off += h.tp_next_offset
            cur_pkt += 1
            if not (st.check_outgoing and
                    (<sockaddr_ll*>((<uint8_t*>h) + TPACKET3_HDR_ALIGNED)).sll_pkttype == PACKET_OUTGOING):
                n += 1
        st.cur_pkt = cur_pkt
        st.cur_off = cur_off
        if cur_pkt >= num:
            _release_block(st)
    return n


cdef uint32_t _rx(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st) noexcept nogil:
    """af-packet-input's body. The per-frame loop holds only the common
    case (one buffer, nothing to fix, copied from the ring); everything else
    goes through _rx_slow, and the few frames it rejects are remembered in
    bad[] so the loop stores no per-frame next index or capture list."""
    cdef uint32_t bis[256]
    cdef uint32_t ok[256]
    cdef uint16_t nexts[256]
    cdef uint32_t bad[256]
    cdef uint32_t avail, got, n = 0, n_bad = 0, num, last, length, cur_pkt, cur_off, i, j, k
    cdef uint32_t sw_if_index = st.sw_if_index
    cdef uint32_t fast_max = (st.max_frame if st.max_frame < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE) - 14
    cdef bint check_outgoing = st.check_outgoing
    cdef int r
    cdef uint64_t rx_bytes = 0
    cdef tpacket_block_desc* bd
    cdef tpacket3_hdr* h
    cdef const uint8_t* src
    cdef const uint8_t* block_end
    cdef gn_buffer_t* b
    avail = _ring_available(st, GN_FRAME_SIZE)
    if avail == 0:
        node.has_more_work = 0
        return 0
    if not st.hw.admin_up:
        n = _rx_discard(st, avail)
        if n:
            gn_node_increment_error(vm, node, RX_ERROR_DOWN, n)
            st.hw.counters.rx_drops += n
        node.has_more_work = _user_owned(_block(st, st.cur_block))
        if node.has_more_work and node.state == GN_NODE_INTERRUPT:
            gn_node_set_interrupt_pending(vm, node.node_index)
        return 0
    # Uninitialised: every buffer used gets st.rx_meta below, the rest
    # gn_buffer_init_meta before it is freed.
    got = gn_main_alloc_uninit(vm, bis, avail)
    if got < avail:
        gn_node_increment_error(vm, node, RX_ERROR_NO_BUFFERS, avail - got)
    while n < got:
        bd = _block(st, st.cur_block)
        if not _user_owned(bd):
            break
        num = bd.hdr.bh1.num_pkts
        block_end = (<uint8_t*>bd) + st.block_size
        cur_pkt = st.cur_pkt
        cur_off = bd.hdr.bh1.offset_to_first_pkt if cur_pkt == 0 else st.cur_off
        # frames of this block to look at: up to its end or the buffers left
        last = num if num - cur_pkt <= got - n else cur_pkt + (got - n)
        while cur_pkt < last:
            h = <tpacket3_hdr*>((<uint8_t*>bd) + cur_off)
            cur_off += h.tp_next_offset
            cur_pkt += 1
            if gn_unlikely(check_outgoing) and \
                    (<sockaddr_ll*>((<uint8_t*>h) + TPACKET3_HDR_ALIGNED)).sll_pkttype == PACKET_OUTGOING:
                # Skipped: its buffer serves the next frame, and this block
                # may now have one more frame to look at.
                if last < num:
                    last += 1
                continue
            length = h.tp_snaplen
            b = gn_main_buffer(vm, bis[n])
            if n + RX_PREFETCH < got:
                gn_prefetch_store(gn_main_buffer(vm, bis[n + RX_PREFETCH]).data)
            memcpy(b, st.rx_meta, GN_BUFFER_INIT_BYTES)
            if gn_likely(length - 14 <= fast_max and length == h.tp_len
                         and not (h.tp_status & TP_STATUS_VLAN_VALID)):
                # One buffer, nothing to fix. A short frame is copied as a
                # fixed 64 bytes (inlined, no libc call) when those bytes
                # lie inside its block.
                src = (<uint8_t*>h) + h.tp_mac
                if length <= 64 and src + 64 <= block_end:
                    memcpy(b.data, src, 64)
                else:
                    memcpy(b.data, src, length)
                b.current_length = <uint16_t>length
                rx_bytes += length
            else:
                r = _rx_slow(vm, st, h, bis[n])
                if r < 0:
                    gn_buffer_set_error(node, b, <uint32_t>-r)
                    bad[n_bad] = n
                    n_bad += 1
                else:
                    rx_bytes += <uint32_t>r
            n += 1
        st.cur_pkt = cur_pkt
        st.cur_off = cur_off
        if cur_pkt >= num:
            _release_block(st)
    if n < got:                               # frames skipped (outgoing): buffers left over
        for i in range(n, got):
            gn_buffer_init_meta(gn_main_buffer(vm, bis[i]))
        gn_main_free(vm, bis + n, got - n)
    if n:
        if st.trace != NULL and (st.trace.flags & GN_PCAP_RX) != 0:
            if n_bad == 0:
                gn_pcap_capture(st.trace, vm, bis, n, GN_PCAP_RX, sw_if_index)
            else:
                k = 0
                i = 0                                     # the next rejected position
                for j in range(n):
                    if i < n_bad and bad[i] == j:
                        i += 1
                    else:
                        ok[k] = bis[j]
                        k += 1
                gn_pcap_capture(st.trace, vm, ok, k, GN_PCAP_RX, sw_if_index)
        if n_bad == 0:
            gn_enqueue_to_single_next(vm, node, bis, 0, n)
        else:
            memset(nexts, 0, n * sizeof(uint16_t))
            for i in range(n_bad):
                nexts[bad[i]] = node.drop_next
            gn_enqueue_to_next(vm, node, bis, nexts, n)
    st.hw.counters.rx_drops += n_bad
    st.hw.counters.rx_packets += n - n_bad
    st.hw.counters.rx_bytes += rx_bytes
    node.has_more_work = _user_owned(_block(st, st.cur_block))
    if node.has_more_work and node.state == GN_NODE_INTERRUPT:
        gn_node_set_interrupt_pending(vm, node.node_index)
    return n


# --- tx -------------------------------------------------------------------------

cdef int _send_one(afp_t* st, gn_main_t* vm, uint32_t bi) noexcept nogil:
    """Send one frame; 0 or an errno."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef iovec iov[64]
    cdef msghdr mh
    cdef int k = 0, tries
    cdef ssize_t r
    for tries in range(2):
        if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
            r = send(st.fd, gn_buffer_current(b), b.current_length, MSG_DONTWAIT)
        else:
            k = 0
            while True:
                if k == MAX_IOV:
                    return EMSGSIZE
                iov[k].iov_base = gn_buffer_current(b)
                iov[k].iov_len = b.current_length
                k += 1
                if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
                    break
                b = gn_main_buffer(vm, b.next_buffer)
            b = gn_main_buffer(vm, bi)
            memset(&mh, 0, sizeof(mh))
            mh.msg_iov = iov
            mh.msg_iovlen = k
            r = sendmsg(st.fd, &mh, MSG_DONTWAIT)
        if r >= 0:
            return 0
        if errno != EINTR:
            return errno
    return EINTR


cdef inline void _tx_drop(afp_t* st, gn_main_t* vm, uint32_t bi, uint32_t code, uint32_t* drops, uint32_t* nd) noexcept nogil:
    gn_main_buffer(vm, bi).error = <uint16_t>(st.tx_error_base + code)
    drops[nd[0]] = bi
    nd[0] += 1


cdef uint32_t _tx_burst(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st, const uint32_t* bis, uint32_t n,
                        bint retry) noexcept nogil:
    """Send bis[0:n]; frames the kernel had no room for go to the backlog
    (after any already there). Returns how many frames were sent."""
    cdef uint32_t sent[512]
    cdef uint32_t drops[512]
    cdef uint32_t i, j, ns = 0, nd = 0, length, room, k
    cdef uint64_t tx_bytes = 0
    cdef int err
    cdef gn_buffer_t* b
    cdef bint down = not st.hw.admin_up or st.link_down
    i = 0
    while i < n:
        b = gn_main_buffer(vm, bis[i])
        length = b.current_length if not (b.flags & GN_BUFFER_F_NEXT_PRESENT) else gn_chain_length(vm, bis[i])
        if down:
            _tx_drop(st, vm, bis[i], TX_ERROR_DOWN if not st.hw.admin_up else TX_ERROR_LINK_DOWN, drops, &nd)
        elif length < 14:
            _tx_drop(st, vm, bis[i], TX_ERROR_SHORT, drops, &nd)
        elif length > st.max_frame:
            _tx_drop(st, vm, bis[i], TX_ERROR_TOO_BIG, drops, &nd)
        else:
            err = _send_one(st, vm, bis[i])
            if err == 0:
                sent[ns] = bis[i]
                ns += 1
                tx_bytes += length
            elif err == EAGAIN or err == ENOBUFS:
                # Kernel queue full: keep this frame and the rest for later.
                room = st.backlog_cap - st.n_backlog
                k = n - i if n - i < room else room
                memcpy(st.backlog + st.n_backlog, bis + i, k * sizeof(uint32_t))
                st.n_backlog += k
                if not retry:
                    vm.error_counters[st.tx_error_base + TX_DEFERRED] += k
                    st.hw.counters.tx_retries += k
                for j in range(i + k, n):
                    _tx_drop(st, vm, bis[j], TX_ERROR_QUEUE_FULL, drops, &nd)
                break
            elif err == ENXIO or err == ENETDOWN or err == ENODEV:
                _tx_drop(st, vm, bis[i], TX_ERROR_LINK_DOWN, drops, &nd)
                st.check_link = 1
                down = True
            elif err == EMSGSIZE:
                _tx_drop(st, vm, bis[i], TX_ERROR_TOO_BIG, drops, &nd)
            else:
                _tx_drop(st, vm, bis[i], TX_ERROR_SEND, drops, &nd)
                st.hw.counters.tx_errors += 1
        i += 1
    if ns:
        gn_main_free(vm, sent, ns)
    if nd:
        gn_enqueue_to_single_next(vm, node, drops, node.drop_next, nd)
        st.hw.counters.tx_drops += nd
    st.hw.counters.tx_packets += ns
    st.hw.counters.tx_bytes += tx_bytes
    if st.check_link:
        gn_node_set_interrupt_pending(vm, st.input_node_index)
    return ns


cdef void _tx_retry(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st) noexcept nogil:
    """Retry the backlog; drop it after tx_retry_limit attempts without
    progress. Keeps the input node awake while frames wait."""
    cdef uint32_t pending[512]
    cdef uint32_t nb = st.n_backlog, sent, i
    memcpy(pending, st.backlog, nb * sizeof(uint32_t))
    st.n_backlog = 0
    sent = _tx_burst(vm, node, st, pending, nb, True)
    if st.n_backlog == 0:
        st.backlog_tries = 0
        return
    if sent:
        st.backlog_tries = 0
    else:
        st.backlog_tries += 1
    if st.backlog_tries > st.tx_retry_limit:
        nb = st.n_backlog
        for i in range(nb):
            gn_main_buffer(vm, st.backlog[i]).error = <uint16_t>(st.tx_error_base + TX_ERROR_QUEUE_FULL)
        st.n_backlog = 0
        st.backlog_tries = 0
        gn_enqueue_to_single_next(vm, node, st.backlog, node.drop_next, nb)
        st.hw.counters.tx_drops += nb
        return
    gn_node_set_interrupt_pending(vm, st.input_node_index)


cdef uint32_t afp_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef afp_t* st = <afp_t*>node.runtime_data
    cdef uint32_t n = frame.n_vectors, room, k, j
    cdef uint32_t drops[256]
    gn_pcap_capture(st.trace, vm, frame.buffers, n, GN_PCAP_TX, st.sw_if_index)
    if st.n_backlog:
        _tx_retry(vm, node, st)
    if st.n_backlog == 0:
        _tx_burst(vm, node, st, frame.buffers, n, False)
        return n
    # Still stuck: queue behind the backlog (order is kept), drop what does not fit.
    room = st.backlog_cap - st.n_backlog
    k = n if n < room else room
    memcpy(st.backlog + st.n_backlog, frame.buffers, k * sizeof(uint32_t))
    st.n_backlog += k
    vm.error_counters[st.tx_error_base + TX_DEFERRED] += k
    st.hw.counters.tx_retries += k
    for j in range(k, n):
        gn_main_buffer(vm, frame.buffers[j]).error = <uint16_t>(st.tx_error_base + TX_ERROR_QUEUE_FULL)
        drops[j - k] = frame.buffers[j]
    if n > k:
        gn_enqueue_to_single_next(vm, node, drops, node.drop_next, n - k)
        st.hw.counters.tx_drops += n - k
    gn_node_set_interrupt_pending(vm, st.input_node_index)
    return n


cdef uint32_t afp_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef afp_t* st = <afp_t*>node.runtime_data
    if st == NULL or st.fd < 0 or st.ring == NULL:      # detached (the kernel interface was deleted)
        node.has_more_work = 0
        return 0
    if gn_unlikely(node.fd_error or st.check_link):
        _link_slow_path(vm, node, st)
    if st.n_backlog:
        _tx_retry(vm, node, st)          # link down: drops them, counted as link-down
    # Link down or not, frames already in the ring are valid: take them.
    return _rx(vm, node, st)


AFP_INPUT_FN = PyCapsule_New(<void*>afp_input_fn, "gn_node_fn", NULL)
AFP_OUTPUT_FN = PyCapsule_New(<void*>afp_output_fn, "gn_node_fn", NULL)


# --- the Python side ----------------------------------------------------------------

cdef class _AfpState:
    """Owns an afp_t: the socket, the ring, the tx backlog."""
    cdef afp_t* st
    cdef tuple params                   # what open() was given, for reopen()
    cdef readonly uint64_t kernel_packets
    cdef readonly uint64_t kernel_drops
    cdef readonly uint64_t kernel_freezes

    def __cinit__(self):
        self.st = <afp_t*>calloc(1, sizeof(afp_t))
        if self.st == NULL:
            raise MemoryError()
        self.st.fd = -1

    def __dealloc__(self):
        if self.st != NULL:
            _close(self.st)
            free(self.st.backlog)
            free(self.st.scratch)
            free(self.st)

    def open(self, str host_if, netns, uint32_t ring_frames, uint32_t block_size, uint32_t retire_ms, bint promisc,
             bint qdisc_bypass, uint32_t backlog, uint32_t tx_retry_limit, bint rx_ring=True):
        if backlog > 512:
            raise DeviceError("af-packet: tx backlog is at most 512 frames")
        self.st.backlog_cap = backlog
        self.st.backlog = <uint32_t*>calloc(max(1, backlog), sizeof(uint32_t))
        self.st.scratch = <uint8_t*>malloc(65536 + 64)
        if self.st.backlog == NULL or self.st.scratch == NULL:
            raise MemoryError()
        self.st.tx_retry_limit = tx_retry_limit
        self.params = (ring_frames, block_size, retire_ms, promisc, qdisc_bypass, rx_ring)
        _open(self.st, host_if, netns, ring_frames, block_size, retire_ms, promisc, qdisc_bypass, rx_ring)

    def reopen(self, str host_if, netns):
        """Open the socket and map a fresh ring again, as open() did, after
        detach() (the kernel interface was deleted and is back). Raises
        DeviceError and stays detached when it cannot."""
        ring_frames, block_size, retire_ms, promisc, qdisc_bypass, rx_ring = self.params
        if self.st.fd >= 0:
            raise DeviceError(f"af-packet: {host_if!r} is attached already")
        self.st.cur_block = self.st.cur_pkt = self.st.cur_off = 0
        self.st.promisc = self.st.qdisc_bypass = self.st.check_outgoing = 0
        self.st.check_link = 0
        _open(self.st, host_if, netns, ring_frames, block_size, retire_ms, promisc, qdisc_bypass, rx_ring)

    def detach(self, size_t vm_address):
        """The kernel interface is gone: drop the tx backlog (counted as
        link-down), unmap the ring and close the socket; the nodes then
        leave this device alone (link state deleted)."""
        _mark_link(self.st, LINK_GONE)
        self._drop_backlog(vm_address, TX_ERROR_LINK_DOWN)
        _close(self.st)

    def set_link(self, int state, size_t vm_address):
        """Set the link state from a netlink event (loop thread). Down:
        the tx backlog is dropped (link-down). Up: the socket's pending
        error is read, it is bound again (the kernel re-arms it on up by
        itself; binding again also follows a new ifindex). Returns False
        if the socket could not be bound (it then stays down)."""
        if state != LINK_UP:
            _mark_link(self.st, state)
            self._drop_backlog(vm_address, TX_ERROR_LINK_DOWN)
            return True
        if self.st.fd < 0:
            return False
        _clear_sock_error(self.st.fd)
        if _probe_link(self.st) == LINK_GONE or _bind(self.st) != 0:
            _mark_link(self.st, LINK_DOWN)
            return False
        _mark_link(self.st, LINK_UP)
        return True

    def probe(self):
        """The kernel link as the socket sees it now: (state name, ifindex)."""
        if self.st.fd < 0:
            return "deleted", 0
        return LINK_STATES[_probe_link(self.st)], self.st.ifindex

    def _drop_backlog(self, size_t vm_address, uint32_t code):
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        cdef uint32_t nb = self.st.n_backlog, i
        if nb == 0 or vm == NULL:
            return
        for i in range(nb):
            gn_main_buffer(vm, self.st.backlog[i]).error = <uint16_t>(self.st.tx_error_base + code)
        vm.error_counters[self.st.tx_error_base + code] += nb
        if self.st.hw != NULL:
            self.st.hw.counters.tx_drops += nb
        gn_main_free(vm, self.st.backlog, nb)
        self.st.n_backlog = 0
        self.st.backlog_tries = 0

    def bind_engine(self, device, size_t hw, size_t trace, uint32_t sw_if_index, uint32_t max_frame,
                    uint32_t input_node_index):
        self.st.device = <PyObject*>device
        self.st.hw = <gn_interface_t*>hw
        self.st.trace = <gn_pcap_main_t*>trace
        gn_buffer_meta_template(self.st.rx_meta, sw_if_index)
        self.st.sw_if_index = sw_if_index
        self.st.max_frame = max_frame
        self.st.input_node_index = input_node_index
        self.st.check_link = 1           # the first call looks at the kernel link

    def set_tx_error_base(self, uint32_t base):
        self.st.tx_error_base = base

    def capsule(self):
        return PyCapsule_New(<void*>self.st, "gn_runtime_data", NULL)

    def free_backlog(self, size_t vm_address):
        """Free frames still waiting to be sent (the loop must be stopped)."""
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        if self.st.n_backlog and vm != NULL:
            gn_main_free(vm, self.st.backlog, self.st.n_backlog)
        self.st.n_backlog = 0

    def close(self):
        _close(self.st)

    def set_promisc(self, bint on):
        """Join or leave PACKET_MR_PROMISC on the kernel interface."""
        cdef int r
        if self.st.fd < 0:
            raise DeviceError("af-packet: the socket is closed")
        if bool(on) == bool(self.st.promisc):
            return
        r = _add_promisc(self.st) if on else _drop_promisc(self.st)
        if r != 0:
            raise DeviceError(f"af-packet: cannot {'set' if on else 'clear'} promiscuous mode: "
                              f"{os.strerror(errno)}")
        self.st.promisc = 1 if on else 0

    def update_kernel_stats(self):
        """Add the kernel's PACKET_STATISTICS (read and reset) to the totals."""
        cdef tpacket_stats_v3 s
        cdef socklen_t n = sizeof(s)
        if self.st.fd >= 0 and getsockopt(self.st.fd, SOL_PACKET, PACKET_STATISTICS, &s, &n) == 0:
            self.kernel_packets += s.tp_packets
            self.kernel_drops += s.tp_drops
            self.kernel_freezes += s.tp_freeze_q_cnt

    @property
    def fd(self):
        return self.st.fd

    @property
    def ifindex(self):
        return self.st.ifindex

    @property
    def kernel_mtu(self):
        return self.st.kernel_mtu

    @property
    def kernel_mac(self):
        return bytes(self.st.kernel_mac[:6])

    @property
    def ring(self):
        return (self.st.n_blocks, self.st.block_size)

    def filter_outgoing_in_userspace(self):
        """Receive outgoing copies again (PACKET_IGNORE_OUTGOING off) and
        skip them in af-packet-input, as on kernels before 4.20 that refuse
        the option: lets the tests exercise that path."""
        if _setopt_int(self.st.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 0) != 0:
            raise OSError(errno, os.strerror(errno), "PACKET_IGNORE_OUTGOING")
        self.st.check_outgoing = 1

    def flags(self):
        return {"promiscuous": bool(self.st.promisc), "qdisc_bypass": bool(self.st.qdisc_bypass),
                "ignore_outgoing": not self.st.check_outgoing}

    def link(self):
        return {"state": LINK_STATES[self.st.link_state], "events": self.st.link_events,
                "backlog": self.st.n_backlog}

    def count_link_event(self):
        self.st.link_events += 1


from graphnet.vlib.main import STATE_POLLING, STATE_INTERRUPT
_STATE_CODES = {"polling": STATE_POLLING, "interrupt": STATE_INTERRUPT}


def attached_device(engine, host_if, netns):
    """The AF_PACKET device of engine on kernel interface host_if in netns
    (attached or detached), or None."""
    for dev in engine.interfaces.devices:
        if isinstance(dev, AfPacketDevice) and dev.host_if == host_if and dev.netns == netns:
            return dev
    return None


class AfPacketDevice(Device):
    """An AF_PACKET "host" interface on an existing kernel interface (see
    the module docstring).

    ``AfPacketDevice(engine, host_if="veth0", *, name=None ("host-<host_if>"),
    rx_mode="interrupt", promiscuous=True, ring_frames=4096,
    block_size=128 KiB, retire_ms=1, netns=None, next_node=None (ethernet-input
    if the graph has it, else null), mac=None, mtu=None (the kernel's),
    admin_up=True, qdisc_bypass=True, tx_backlog=512, tx_retry_limit=32)``.

    Raises DeviceError (clear text) when the interface or namespace does
    not exist or privileges are missing. Add it to the engine with
    ``engine.add(dev)``; it is created admin up (``admin_up=False``: down)."""
    kind = "af-packet"

    def __init__(self, engine, host_if: str = "veth0", *, name=None, rx_mode: str = "interrupt",
                 promiscuous: bool = True, ring_frames: int = 4096, block_size: int = 1 << 17, retire_ms: int = 1,
                 netns=None, next_node=None, mac=None, mtu=None, admin_up: bool = True,
                 qdisc_bypass: bool = True, tx_backlog: int = 512, tx_retry_limit: int = 32):
        self.host_if = host_if
        self.netns = netns
        self.next_node = next_node
        other = attached_device(engine, host_if, netns)
        if other is not None:
            raise DeviceError(f"af-packet: {host_if!r}"
                              + (f" in network namespace {netns!r}" if netns else "")
                              + f" is already attached as {other.name}")
        self._st = _AfpState()
        self._st.open(host_if, netns, ring_frames, block_size, retire_ms, promiscuous, qdisc_bypass, tx_backlog,
                      tx_retry_limit)
        try:
            super().__init__(engine, name or f"host-{host_if}", mac=mac, mtu=mtu or self._st.kernel_mtu or 1500,
                             rx_mode=rx_mode)
        except BaseException:
            self._st.close()
            raise
        engine.interfaces.set_promiscuous(self.sw_if_index, bool(promiscuous))
        if admin_up:
            engine.interfaces.set_admin_up(self.sw_if_index, True)
        self._input_index = None
        self._watch = None
        self.link_state = "up"

    def nodes(self):
        state, adaptive = self.node_state()
        doc = (type(self).__doc__ or "").strip()
        return (Node(self.input_node, type="input", state=state, adaptive=adaptive, fn=AFP_INPUT_FN,
                     next_nodes=(self.next_node,) if self.next_node else DefaultNext(self.engine),
                     errors=INPUT_ERRORS, setup=self._setup_input, instance=self,
                     doc=doc),
                Node(self.output_node, fn=AFP_OUTPUT_FN, errors=OUTPUT_ERRORS, setup=self._setup_output,
                     attach_to=(("interface-output", self.sw_if_index),), instance=self, doc=doc))

    def _setup_input(self, engine, node_index):
        from graphnet.io.pcap import pcap_main_address
        self._input_index = node_index
        self._st.bind_engine(self, engine.interfaces.address(self.sw_if_index), pcap_main_address(engine),
                             self.sw_if_index, self.mtu + ETH_VLAN_FRAME_EXTRA, node_index)
        engine.main.set_runtime_data(node_index, self._st.capsule())
        engine.main.register_fd(node_index, self._st.fd)
        engine.main.set_interrupt_pending(node_index)
        self._watch = link_watcher(engine).watch(self.netns, self.host_if, self._on_link_event)
        self._sync_link()

    def _setup_output(self, engine, node_index):
        self._st.set_tx_error_base(engine.error_base[self.output_node])
        engine.main.set_runtime_data(node_index, self._st.capsule())

    # --- kernel link events (loop thread) -------------------------------------------

    @property
    def attached(self) -> bool:
        """True while a socket is bound to the kernel interface."""
        return self._st.fd >= 0

    def _sync_link(self):
        """Look at the kernel link now and take its state (at attach, and
        when netlink lost events)."""
        state, ifindex = self._st.probe()
        if state == "up":
            self._link_up()
        elif state == "down":
            self._link_down()
        link_watcher(self.engine).set_known(self._watch, ifindex, (state == "up") if ifindex else None)
        return state

    def _link_down(self):
        self._st.set_link(LINK_DOWN, self.engine.main.address)
        self.link_state = "down"
        self.kernel_link_changed(False)

    def _link_up(self):
        main = self.engine.main
        if not self._st.set_link(LINK_UP, main.address):
            return False
        self.link_state = "up"
        self.kernel_link_changed(True)
        main.rearm_fd(self._input_index)
        main.set_interrupt_pending(self._input_index)      # frames may wait in the ring
        return True

    def _on_link_event(self, ev):
        """A netlink event about our kernel interface: one log line each."""
        self._st.count_link_event()
        what, text = ev.what, ev.describe()
        if what == "down":
            if self.attached:
                self._link_down()
            log.warning("%s: %s: link down, neighbours flushed, traffic to it dropped (link-down)", self.name, text)
        elif what == "up":
            if not self.attached:
                self.attach()
            elif self._link_up():
                log.warning("%s: %s: link up, rx and tx resumed", self.name, text)
            else:
                log.error("%s: %s, but the socket cannot be bound to it again; link stays down", self.name, text)
        elif what in ("deleted", "moved", "namespace-deleted") and not self.attached:
            log.warning("%s: %s (detached already)", self.name, text)
        elif what in ("deleted", "moved", "namespace-deleted"):
            self.detach()
            log.error("%s: %s: detached (socket closed, ring unmapped); attached again when %s appears "
                      "or on 'create host-interface name %s'", self.name, text, self.host_if, self.host_if)
        elif what == "created":
            self.attach(text)
        elif what == "renamed":
            self.host_if = ev.ifname
            log.warning("%s: %s: still attached (the socket follows the ifindex)", self.name, text)
        elif what == "resync":
            log.warning("%s: %s: link %s", self.name, text, self._sync_link() if self.attached else "detached")

    def detach(self):
        """Let go of the kernel interface (it was deleted, moved away, or
        its namespace deleted): fd out of the loop, tx backlog dropped
        (link-down), ring unmapped, socket closed, neighbours flushed, the
        input node disabled. The interface stays, ``show interface`` says
        ``deleted``; attach() (or the interface coming back) binds again."""
        main = self.engine.main
        if not self.attached:
            return
        main.unregister_fd(self._input_index)
        self._st.detach(main.address)
        self.link_state = "deleted"
        self.kernel_link_changed(False)
        from graphnet.vlib.main import STATE_DISABLED
        main.set_state(self._input_index, STATE_DISABLED, False)

    def attach(self, why: str = "") -> bool:
        """Bind to the kernel interface again after detach(): a new socket
        and ring, the fd back in the loop, the rx mode restored. Logs one
        line; on failure (the interface is not there, not Ethernet...) the
        interface stays detached and the reason is logged and returned
        as a DeviceError by ``create host-interface``."""
        main = self.engine.main
        if self.attached:
            raise DeviceError(f"af-packet: {self.host_if!r} is already attached as {self.name}")
        try:
            self._st.reopen(self.host_if, self.netns)
        except DeviceError as e:
            log.error("%s: %s: cannot attach again: %s", self.name, why or "attach", e)
            raise
        main.register_fd(self._input_index, self._st.fd)
        state, adaptive = self.node_state()
        main.set_state(self._input_index, _STATE_CODES[state], adaptive)
        if self._watch is None:
            self._watch = link_watcher(self.engine).watch(self.netns, self.host_if, self._on_link_event)
        link = self._sync_link()
        n_blocks, block_size = self._st.ring
        log.warning("%s: %s: attached again (ifindex %d, ring %d x %d KiB re-mapped), link %s",
                    self.name, why or f"kernel interface {self.host_if}", self._st.ifindex, n_blocks,
                    block_size // 1024, link)
        return True

    def set_rx_mode(self, mode: str) -> None:
        if not self.attached:          # detached: the input node stays disabled until attach()
            if mode not in RX_MODES:
                raise DeviceError(f"rx-mode {mode!r}: use one of {', '.join(RX_MODES)}")
            self.rx_mode = mode
            return
        super().set_rx_mode(mode)

    def set_admin_up(self, up: bool) -> None:
        super().set_admin_up(up)

    def set_promiscuous(self, on: bool) -> None:
        """Promiscuous mode on the kernel interface (PACKET_MR_PROMISC) and
        in the interface table (ethernet-input then keeps unicast frames
        for other MACs)."""
        self.engine.call(self._set_promiscuous, bool(on))

    def _set_promiscuous(self, on):
        self._st.set_promisc(on)
        self.engine.interfaces.set_promiscuous(self.sw_if_index, on)

    def close(self) -> None:
        main = self.engine.main
        if self._watch is not None:
            link_watcher(self.engine).unwatch(self._watch)
            self._watch = None
        if main is not None and self._input_index is not None:
            try:
                main.unregister_fd(self._input_index)
            except Exception:
                pass
            self._st.free_backlog(main.address)
        self._st.close()

    def kernel_stats(self) -> dict:
        """The kernel's counters of this socket since it opened:
        frames it received and frames it dropped (ring full)."""
        self._st.update_kernel_stats()
        return {"packets": self._st.kernel_packets, "drops": self._st.kernel_drops}

    def hardware_info(self) -> dict:
        from graphnet.io.interface import format_mac
        n_blocks, block_size = self._st.ring
        ks = self.kernel_stats()
        flags = self._st.flags()
        link = self._st.link()
        if not self.attached:
            return {"host interface": f"{self.host_if}" + (f" (netns {self.netns})" if self.netns else ""),
                    "socket": "none: detached, the kernel interface was deleted (attached again when it "
                              "comes back, or with 'create host-interface')",
                    "kernel link": f"{link['state']} ({link['events']} changes)"}
        return {"host interface": f"{self.host_if} (ifindex {self._st.ifindex}"
                                  + (f", netns {self.netns}" if self.netns else "") + ")",
                "kernel MAC": format_mac(self._st.kernel_mac),
                "socket": f"fd {self._st.fd}, TPACKET_V3 rx ring {n_blocks} x {block_size // 1024} KiB, "
                          f"tx send(){' + PACKET_QDISC_BYPASS' if flags['qdisc_bypass'] else ''}"
                          f"{', promiscuous' if flags['promiscuous'] else ''}",
                "kernel link": f"{link['state']} ({link['events']} changes)",
                "kernel rx": f"{ks['packets']} frames, {ks['drops']} dropped (ring full)",
                "tx backlog": link["backlog"]}


# --- raw references for the bench ----------------------------------------------------

cdef class RawRingReader:
    """A bare TPACKET_V3 reader: the reference for ``bench af-packet-rx``.
    Busy-polls its ring, counts frames and bytes (reading each frame's first
    byte), hands blocks back. No buffers, no graph."""
    cdef afp_t* st
    cdef public int last_xor

    def __cinit__(self):
        self.st = <afp_t*>calloc(1, sizeof(afp_t))
        if self.st == NULL:
            raise MemoryError()
        self.st.fd = -1

    def __init__(self, str host_if, netns=None, uint32_t ring_frames=4096, uint32_t block_size=1 << 17,
                 uint32_t retire_ms=1, bint promiscuous=True):
        _open(self.st, host_if, netns, ring_frames, block_size, retire_ms, promiscuous, False, True)

    def __dealloc__(self):
        if self.st != NULL:
            _close(self.st)
            free(self.st)

    def run(self, double seconds, uint64_t max_frames=0, bint wait=False, bint copy=False):
        """Read for `seconds` (or until max_frames, if > 0); returns
        (frames, bytes, thread cpu ns, wall ns). wait: sleep in poll()
        while no block is ready (the interrupt-mode reference) instead of
        spinning. copy: memcpy each frame into the next of 256 rotating
        2 KiB slots (the least a copying reader does)."""
        cdef afp_t* st = self.st
        cdef uint64_t frames = 0, nbytes = 0, t0, c0, deadline, now
        cdef uint64_t limit = max_frames if max_frames else <uint64_t>-1
        cdef uint32_t i, num, off, spins = 0
        cdef uint8_t x = 0
        cdef tpacket_block_desc* bd
        cdef tpacket3_hdr* h
        cdef pollfd pfd
        cdef uint8_t* slots = <uint8_t*>malloc(256 * 2048)
        cdef uint32_t slot = 0, k
        if slots == NULL:
            raise MemoryError()
        pfd.fd = st.fd
        pfd.events = POLLIN
        with nogil:
            t0 = gn_time_ns()
            c0 = gn_thread_cpu_ns()
            deadline = t0 + <uint64_t>(seconds * 1e9)
            now = t0
            while now < deadline and frames < limit:
                bd = _block(st, st.cur_block)
                if _user_owned(bd):
                    num = bd.hdr.bh1.num_pkts
                    off = bd.hdr.bh1.offset_to_first_pkt
                    for i in range(num):
                        h = <tpacket3_hdr*>((<uint8_t*>bd) + off)
                        if copy:
                            k = h.tp_snaplen if h.tp_snaplen < 2048 else 2048
                            memcpy(slots + slot * 2048, (<uint8_t*>h) + h.tp_mac, k)
                            slot = (slot + 1) & 255
                        else:
                            x ^= (<uint8_t*>h)[h.tp_mac]
                        nbytes += h.tp_snaplen
                        off += h.tp_next_offset
                    frames += num
                    _release_block(st)
                    if frames >= limit:
                        break
                elif wait:
                    poll(&pfd, 1, 10)
                    now = gn_time_ns()
                else:
                    spins += 1
                    if spins & 63 == 0:
                        now = gn_time_ns()
            now = gn_time_ns()
            c0 = gn_thread_cpu_ns() - c0
        x ^= slots[0]
        free(slots)
        self.last_xor = x
        return frames, nbytes, c0, now - t0

    def kernel_stats(self):
        """(frames received, frames dropped) by the kernel since the last call."""
        cdef tpacket_stats_v3 s
        cdef socklen_t n = sizeof(s)
        if getsockopt(self.st.fd, SOL_PACKET, PACKET_STATISTICS, &s, &n) != 0:
            return (0, 0)
        return (s.tp_packets, s.tp_drops)

    def close(self):
        _close(self.st)


def raw_send_loop(str host_if, bytes frame, double seconds, netns=None, uint32_t vary_offset=0, uint64_t count=0):
    """Send `frame` as fast as one core can for `seconds` (or until `count`
    frames were sent, if > 0) with send() and PACKET_QDISC_BYPASS (the
    bench's traffic generator); returns (sent, failed). vary_offset: if > 0,
    a 16-bit counter is written there in each frame (distinct frames)."""
    cdef afp_t st
    cdef uint64_t sent = 0, failed = 0, deadline
    cdef uint32_t n = len(frame), k = 0
    cdef uint8_t* buf = <uint8_t*>malloc(max(64, n))
    cdef bint vary = vary_offset > 0 and vary_offset + 2 <= n
    if buf == NULL:
        raise MemoryError()
    memset(&st, 0, sizeof(st))
    st.fd = -1
    st.no_rx = 1
    memcpy(buf, <const uint8_t*>frame, n)
    try:
        _open(&st, host_if, netns, 0, 4096, 1, False, True, False)
        with nogil:
            deadline = gn_time_ns() + <uint64_t>(seconds * 1e9)
            while True:
                if vary:
                    buf[vary_offset] = <uint8_t>(sent >> 8)
                    buf[vary_offset + 1] = <uint8_t>sent
                if send(st.fd, buf, n, MSG_DONTWAIT) >= 0:
                    sent += 1
                    if sent == count:
                        break
                else:
                    failed += 1
                k += 1
                if k & 255 == 0 and gn_time_ns() >= deadline:
                    break
    finally:
        _close(&st)
        free(buf)
    return sent, failed
