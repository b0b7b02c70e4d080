"""The /dev/net/tun side of a TAP: open a queue fd (TUNSETIFF), features,
offloads (TUNSETOFFLOAD), the virtio-net header size, the carrier
(TUNSETCARRIER); and ``TapState``, the C state (``tap_dev_t``, see
tap_tun.pxd) that one TAP's input and output nodes share.

Queues: with several fds (IFF_MULTI_QUEUE) the state keeps an epoll fd of
its own holding every queue fd (EPOLLIN, level-triggered); the engine's
loop waits on that one fd (``wait_fd``), readable when any queue is.

Losing the device: ``tap_mark_dead`` is what a node calls when a read, a
write or epoll says the kernel side is gone (EBADFD ...), and what the
TapDevice calls on a netlink event: link down, the fd out of the loop's
epoll, the retry queue dropped, the monitor process woken; no fd of the
device is touched by a node afterwards. The full story: docs/devices.md.
"""
import errno as _errno
import os

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset, strncpy
from graphnet.includes.tun cimport (ifreq, TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNGETFEATURES, TUNSETCARRIER,
                                    IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE, IFF_TUN_EXCL,
                                    TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, GN_TUN_F_USO4, GN_TUN_F_USO6,
                                    GN_VIRTIO_NET_HDR_SIZE)
from graphnet.includes.linux cimport (open, read, close, ioctl, errno, O_RDWR, O_NONBLOCK, O_CLOEXEC, EINVAL,
                                      epoll_create1, epoll_ctl, epoll_wait, epoll_event, EPOLL_CTL_ADD,
                                      EPOLL_CTL_DEL, EPOLL_CLOEXEC, EPOLLIN, EPOLLERR, EPOLLHUP)
from graphnet.vlib.buffer cimport GN_BUFFER_DATA_SIZE
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_free, gn_node_increment_error,
                                 gn_node_set_interrupt_pending, GN_NODE_INTERRUPT)
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_main_t
from graphnet.io.tap_tun cimport *


# --- /dev/net/tun ------------------------------------------------------------------

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
# What an adopted fd (set up by someone else) is assumed to do with vnet_hdr and offloads.
ADOPTED_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6


def offload_names(flags):
    return [n for f, n in OFFLOAD_NAMES.items() if flags & f]


def tx_offload_flags(offloads, vnet_hdr):
    """The interface table's tx_offloads (graphnet.io.interface.TX_*) of a
    TAP: what graphnet hands it with a virtio-net header. The kernel takes a
    GSO or partial-checksum frame on write() whenever the vnet header is on;
    graphnet uses that only on a TAP that negotiated the same offloads for
    rx (TUNSETOFFLOAD), so ``offloads=False`` means plain frames both ways."""
    from graphnet.io.interface import TX_CSUM, TX_TSO4
    if not vnet_hdr or not offloads & TUN_F_CSUM:
        return 0
    return TX_CSUM | (TX_TSO4 if offloads & TUN_F_TSO4 else 0)


# --- losing the device (called by both nodes and the TapDevice) ---------------------

cdef void tap_retry_drop_all(gn_main_t* vm, tap_dev_t* t, uint32_t code) noexcept nogil:
    """Free every buffer of the retry queue, counting them under `code`."""
    cdef uint32_t seg
    tap_count_tx_drop(vm, t, code, t.retry_n)
    while t.retry_n:
        seg = t.retry_n if t.retry_n < RETRY_CAP - t.retry_head else RETRY_CAP - t.retry_head
        gn_main_free(vm, &t.retry[t.retry_head], seg)
        t.retry_head = (t.retry_head + seg) % RETRY_CAP
        t.retry_n -= seg
    t.retry_head = 0


cdef void tap_mark_dead(gn_main_t* vm, tap_dev_t* t, int err, uint8_t where) noexcept nogil:
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
    gn_node_increment_error(vm, rt, RX_ERROR_LINK_LOST, 1)
    if t.retry_n:
        tap_retry_drop_all(vm, t, TX_ERROR_LINK_LOST)
    if t.has_monitor:
        gn_node_set_interrupt_pending(vm, t.monitor_node_index)     # it logs, closes the fd, stops the input


# --- the C state ---------------------------------------------------------------------

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
            tap_mark_dead(vm, self.t, 0, DEAD_KERNEL)

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
            tap_mark_dead(vm, self.t, EBADFD, DEAD_EPOLL)
        elif vm != NULL and self.t.hw != NULL and not self.t.dead and self.t.epoll_fd >= 0:
            # Several queues: the loop only sees the device's epoll fd, which
            # never reports EPOLLERR itself; ask it about the queues.
            n = epoll_wait(self.t.epoll_fd, evs, 16, 0)
            for i in range(n if n > 0 else 0):
                if evs[i].events & (EPOLLERR | EPOLLHUP):
                    tap_mark_dead(vm, self.t, EBADFD, DEAD_EPOLL)
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
            tap_retry_drop_all(vm, self.t, TX_ERROR_LINK_LOST)
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




def tap_setup_vnet(int fd, bint offloads):
    """The 12-byte virtio-net header on ``fd`` (TUNSETVNETHDRSZ) and, with
    ``offloads``, the largest set of OFFLOAD_CHOICES the kernel accepts;
    returns the offloads set (0: none)."""
    tap_set_vnet_hdr_size(fd, VNET_HDR_SIZE)
    if offloads:
        for flags in OFFLOAD_CHOICES:
            if tap_set_offload(fd, flags):
                return flags
    return 0
