"""The AF_PACKET socket of a host interface, and ``AfpState``, the C state
(``afp_t``, see af_packet_socket.pxd) its input and output nodes share.

``afp_open`` makes an ``AF_PACKET/SOCK_RAW`` socket inside ``netns`` when
given (setns in the calling thread around socket creation, restored
afterwards; the socket then lives in that namespace for good), refuses
anything but an Ethernet interface, maps a TPACKET_V3 rx ring
(``ring_frames`` x 2 KiB in blocks of ``block_size`` bytes, a block handed
to userspace when full or after ``retire_ms``), sets PACKET_QDISC_BYPASS
and PACKET_IGNORE_OUTGOING (graphnet never receives what it sends; a
kernel that refuses it makes af-packet-input filter by packet type), binds
to the interface and joins PACKET_MR_PROMISC (dropped by the kernel when
the socket closes). Every failure is one DeviceError line saying what
and where.

Link state as the socket sees it: ``afp_probe_link`` (up, down, gone;
re-binds when the interface was re-created with a new ifindex). Up again
is decided by netlink (graphnet.io.link_events), never by a probe.
"""
import logging
import os

from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset, strncpy
from graphnet.includes.af_packet cimport *
from graphnet.includes.linux cimport (open, close, ioctl, errno, O_RDONLY, O_CLOEXEC, EPERM, EACCES, mmap, munmap,
                                      PROT_READ, PROT_WRITE, MAP_SHARED, MAP_LOCKED, MAP_POPULATE, MAP_FAILED)
from graphnet.vlib.buffer cimport gn_buffer_meta_template
from graphnet.vlib.main cimport gn_main_t, gn_main_buffer, gn_main_free, gn_count_drops
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_main_t
from graphnet.io.af_packet_socket cimport *
from graphnet.io.device import DeviceError

log = logging.getLogger("graphnet.af_packet")

LINK_STATES = {LINK_UP: "up", LINK_DOWN: "down", LINK_GONE: "deleted"}


# --- socket setup ---------------------------------------------------------------

cdef int _setopt_int(int fd, int level, int name, int value) noexcept nogil:
    return setsockopt(fd, level, name, &value, sizeof(int))


def _netns_path(netns):
    if netns is None:
        return None
    netns = os.fspath(netns)
    return netns if os.sep in netns else os.path.join("/run/netns", netns)


cdef int afp_open(afp_t* st, str host_if, object netns, uint32_t ring_frames, uint32_t block_size, uint32_t retire_ms,
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
        if afp_bind(st) != 0:
            err = errno
            raise DeviceError(f"af-packet: cannot bind to {host_if!r}{where}: {os.strerror(err)}")
        if promisc:
            if _promisc(st, True) != 0:
                err = errno
                raise DeviceError(f"af-packet: cannot set {host_if!r} promiscuous: {os.strerror(err)}")
            st.promisc = 1
    except BaseException:
        afp_close(st)
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


cdef int afp_bind(afp_t* st) noexcept nogil:
    cdef sockaddr_ll sll
    memset(&sll, 0, sizeof(sll))
    sll.sll_family = AF_PACKET
    sll.sll_protocol = 0 if st.no_rx else htons(ETH_P_ALL)
    sll.sll_ifindex = st.ifindex
    return bind(st.fd, <sockaddr*>&sll, sizeof(sll))


cdef int _promisc(afp_t* st, bint on) noexcept nogil:
    """Join (on) or leave PACKET_MR_PROMISC on the bound interface."""
    cdef packet_mreq mr
    memset(&mr, 0, sizeof(mr))
    mr.mr_ifindex = st.ifindex
    mr.mr_type = PACKET_MR_PROMISC
    return setsockopt(st.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP if on else PACKET_DROP_MEMBERSHIP, &mr, sizeof(mr))


cdef void afp_close(afp_t* st) noexcept nogil:
    if st.ring != NULL:
        munmap(st.ring, st.ring_size)
        st.ring = NULL
    if st.fd >= 0:
        close(st.fd)
        st.fd = -1


# --- link state -------------------------------------------------------------------

cdef int afp_probe_link(afp_t* st) noexcept nogil:
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
        if afp_bind(st) != 0:
            return LINK_GONE
        if st.promisc:
            _promisc(st, True)
    if ioctl(st.fd, SIOCGIFFLAGS, &ifr) != 0:
        return LINK_GONE
    if (ifr.ifr_flags & IFF_UP) and (ifr.ifr_flags & IFF_RUNNING):
        return LINK_UP
    return LINK_DOWN


cdef void afp_clear_sock_error(int fd) noexcept nogil:
    cdef int err = 0
    cdef socklen_t n = sizeof(int)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n)


cdef void afp_mark_link(afp_t* st, int state) noexcept nogil:
    st.link_state = state
    st.link_down = state != LINK_UP
    if st.hw != NULL:
        st.hw.link_up = 0 if st.link_down else 1


# --- the state -----------------------------------------------------------------------

cdef class AfpState:
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
            afp_close(self.st)
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
        afp_open(self.st, host_if, netns, ring_frames, block_size, retire_ms, promisc, qdisc_bypass, rx_ring)

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
        afp_open(self.st, host_if, netns, ring_frames, block_size, retire_ms, promisc, qdisc_bypass, rx_ring)

    def detach(self, size_t vm_address):
        """The kernel interface is gone: drop the tx backlog (counted as
        link-down), unmap the ring and close the socket; the nodes then
        leave this device alone (link state deleted)."""
        afp_mark_link(self.st, LINK_GONE)
        self._drop_backlog(vm_address, TX_ERROR_LINK_DOWN)
        afp_close(self.st)

    def set_link(self, int state, size_t vm_address):
        """Set the link state from a netlink event (loop thread). Down:
        the tx backlog is dropped (link-down). Up: the socket's pending
        error is read, it is bound again (the kernel re-arms it on up by
        itself; binding again also follows a new ifindex). Returns False
        if the socket could not be bound (it then stays down)."""
        if state != LINK_UP:
            afp_mark_link(self.st, state)
            self._drop_backlog(vm_address, TX_ERROR_LINK_DOWN)
            return True
        if self.st.fd < 0:
            return False
        afp_clear_sock_error(self.st.fd)
        if afp_probe_link(self.st) == LINK_GONE or afp_bind(self.st) != 0:
            afp_mark_link(self.st, LINK_DOWN)
            return False
        afp_mark_link(self.st, LINK_UP)
        return True

    def probe(self):
        """The kernel link as the socket sees it now: (state name, ifindex)."""
        if self.st.fd < 0:
            return "deleted", 0
        return LINK_STATES[afp_probe_link(self.st)], self.st.ifindex

    def _drop_backlog(self, size_t vm_address, uint32_t code):
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        cdef uint32_t nb = self.st.n_backlog, i
        if nb == 0 or vm == NULL:
            return
        for i in range(nb):
            gn_main_buffer(vm, self.st.backlog[i]).error = <uint16_t>(self.st.tx_error_base + code)
        gn_count_drops(vm, self.st.tx_error_base + code, nb)
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
        afp_close(self.st)

    def set_promisc(self, bint on):
        """Join or leave PACKET_MR_PROMISC on the kernel interface."""
        cdef int r
        if self.st.fd < 0:
            raise DeviceError("af-packet: the socket is closed")
        if bool(on) == bool(self.st.promisc):
            return
        r = _promisc(self.st, on)
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


