"""tap-input-<name>: reads a TAP's frames into buffers (input node;
polling, interrupt or adaptive; the fd, or with several queues the
device's epoll fd, stays in the loop's epoll in every mode).

Each call reads up to 256 frames (or 256 buffers: about 8 GSO
super-frames), each straight into buffer memory: the virtio-net header
lands in the headroom just before ``data[]``. One read() per frame when
every frame fits one buffer; when the kernel may send larger ones (GSO,
jumbo MTU) a readv() of the first buffer plus a spill area ("spill
mode"), switching to a readv() straight into a chain of buffers after the
first large frame, and back after RX_CHAIN_EXIT_RUN small ones. Several
queues are read round-robin, one frame per queue in turn, skipping a queue
once it says EAGAIN; the next call starts after the last queue read.

Metadata set: current_data 0, current_length, chain (next_buffer,
NEXT_PRESENT, total_length_not_including_first_buffer), sw_if_index[RX],
l2/l3 header offsets (l4 = csum_start when the kernel left the L4
checksum to us), gso_size with GN_BUFFER_F_GSO for a super-frame,
GN_BUFFER_F_L4_CSUM_OFFLOAD when the virtio-net header says NEEDS_CSUM.
Next node: the one given (default ethernet-input, else null). Drops,
counted under their reason and in rx_drops, their buffers reused for the
next read: frame-too-short, frame-too-long, bad-vnet-header,
interface-down. Errors: no-buffers (read deferred), read-error, link-lost
(the device is then marked dead, see tap_tun). It also flushes
tap-output's retry queue, and hands each vector to the pcap rx capture.

Trace record: the interface and queue, the frame's length and buffers,
its buffer flags and virtio-net header (offload flags: NEEDS_CSUM with
csum start/offset, GSO type, size and header length), and its first 96
bytes, summarised in one line (graphnet.io.frame_trace). The
queue of a frame read from one of several queues is noted only while the
node traces.

Invariant: every frame read from any queue is counted exactly once:
rx_packets, or rx_drops under its reason.
"""
import struct

from graphnet.io.frame_trace import buffers, format_record, format_vnet, parse_record, parse_vnet

from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.includes.linux cimport read, readv, iovec, errno, EAGAIN, EINTR, EIO, EBADFD
from graphnet.includes.tun cimport (VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4,
                                    VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_ECN, GN_VIRTIO_NET_HDR_GSO_UDP_L4,
                                    gn_virtio_net_hdr_t)
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_BUFFER_DATA_SIZE,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD,
                                   GN_INVALID_INDEX, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc,
                                 gn_enqueue_to_single_next, gn_node_increment_error, gn_node_set_interrupt_pending,
                                 gn_count_drops, GN_NODE_INTERRUPT)
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.io.interface cimport gn_interface_t
from graphnet.io.pcap cimport gn_pcap_capture, GN_PCAP_RX
from graphnet.io.tap_tun import RxError
from graphnet.vlib.kit import check_enum
from graphnet.io.tap_tun cimport *
from graphnet.io.tap_output cimport tap_tx_flush_retry
from graphnet.io.trace_record cimport gn_device_trace_t, gn_device_trace_fill, GN_DEVICE_TRACE_BYTES

RX_ERRORS = (
    ("none", "info", "no error"),
    ("frame-too-short", "error", "frame shorter than an Ethernet header (14 bytes)"),
    ("frame-too-long", "error", "frame longer than MTU + Ethernet header without GSO metadata"),
    ("bad-vnet-header", "error", "inconsistent virtio-net header (GSO type, sizes or checksum offsets)"),
    ("interface-down", "error", "interface is admin down: frame dropped"),
    ("no-buffers", "warn", "no buffers to read into; read deferred"),
    ("read-error", "error", "read() failed (frame lost)"),
    ("link-lost", "warn", "the kernel side of the TAP is gone (fd error; detached)"),
)
check_enum("tap-input", RxError, "ERROR_", [r[0] for r in RX_ERRORS], "N_ERROR")


# The record: the common device part (trace_record.pxd: length, flags,
# buffers, queue), these fields, then the kit's shared record
# (sw_if_index and the first GN_DEVICE_TRACE_BYTES bytes of the frame).
ctypedef packed struct tap_trace_t:
    gn_device_trace_t dev
    uint16_t gso_size
    uint16_t hdr_size             # virtio-net header bytes (0: none)
    uint8_t vnet[12]              # the virtio-net header as read



cdef inline uint32_t _plain_max(const uint8_t* frame, uint32_t length, uint32_t mtu) noexcept nogil:
    """Longest frame allowed without GSO: MTU + Ethernet (+4 per VLAN tag)."""
    cdef uint32_t m = mtu + ETH_HLEN
    cdef uint16_t et
    if length >= 18:
        et = tap_rd16(frame + 12)
        if et == 0x8100 or et == 0x88a8:
            m += 4
            if tap_rd16(frame + 16) == 0x8100:
                m += 4
    return m


cdef inline int _rx_check(const gn_virtio_net_hdr_t* h, const uint8_t* frame, uint32_t length,
                          uint32_t mtu) noexcept nogil:
    """0, or the tap-input error row that drops this frame."""
    cdef uint8_t gso
    if length < ETH_HLEN:
        return RX_ERROR_FRAME_TOO_SHORT
    if h != NULL:
        gso = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN
        if gso != VIRTIO_NET_HDR_GSO_NONE:
            if gso != VIRTIO_NET_HDR_GSO_TCPV4 and gso != VIRTIO_NET_HDR_GSO_TCPV6 and gso != GN_VIRTIO_NET_HDR_GSO_UDP_L4:
                return RX_ERROR_BAD_VNET_HEADER
            if h.gso_size == 0 or h.gso_size >= length or h.hdr_len > length:
                return RX_ERROR_BAD_VNET_HEADER
            if not (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM):
                return RX_ERROR_BAD_VNET_HEADER
        if h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
            if h.csum_start < ETH_HLEN or <uint32_t>h.csum_start + h.csum_offset + 2 > length:
                return RX_ERROR_BAD_VNET_HEADER
        if gso != VIRTIO_NET_HDR_GSO_NONE:
            return 0
    if length > _plain_max(frame, length, mtu):
        return RX_ERROR_FRAME_TOO_LONG
    return 0


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
    cdef uint64_t drops[RX_N_ERROR]
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
    cdef uint32_t rq = 0                 # several queues: the one the frame in hand came from
    cdef bint tracing = node.trace_remaining != 0
    cdef gn_interface_t* hw
    if t.retry_n:
        tap_tx_flush_retry(vm, t)
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
                gn_node_increment_error(vm, node, RX_ERROR_NO_BUFFERS, 1)
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
            if tap_fatal_errno(e) or e == EIO:
                fatal = e
                break
            # EFAULT/EINVAL: the kernel dropped a frame it could not hand over.
            gn_count_drops(vm, node.error_base + RX_ERROR_READ_ERROR, 1)
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
            rq = q
            q = _next_queue(q, live, t.n_queues)
            fd = t.qfd[q]
        if r < hs:
            drops[<int>RX_ERROR_FRAME_TOO_SHORT] += 1
            continue
        length = <uint32_t>(r - hs)
        if length > t.n_rx_bufs * GN_BUFFER_DATA_SIZE:
            # The kernel reports a frame's full length even when it had to
            # truncate it to the buffers offered.
            drops[<int>RX_ERROR_FRAME_TOO_LONG] += 1
            continue
        h = <gn_virtio_net_hdr_t*>(<uint8_t*>b0.data - hs) if hs else NULL
        code = _rx_check(h, b0.data, length, hw.mtu)
        if code == 0 and not hw.admin_up:
            code = RX_ERROR_INTERFACE_DOWN
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
        et = tap_rd16(b0.data + 12)
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
        if queues_t is many_queues_t:
            if tracing:
                t.trace_bi[n] = out[n]
                t.trace_q[n] = <uint8_t>rq
        n += 1
        t.n_spare -= nb
        used += nb
        nbytes += length
    if queues_t is many_queues_t:
        t.rx_queue_next = q
        t.trace_n = n if tracing else 0
    for k in range(1, RX_N_ERROR):
        if drops[k]:
            gn_count_drops(vm, node.error_base + k, drops[k])
            n_drops += drops[k]
    hw.counters.rx_drops += n_drops
    if n:
        hw.counters.rx_packets += n
        hw.counters.rx_bytes += nbytes
        gn_pcap_capture(t.pcap, vm, out, n, GN_PCAP_RX, t.sw_if_index)
        gn_enqueue_to_single_next(vm, node, out, t.next_index, n)
    if fatal:
        tap_mark_dead(vm, t, fatal, DEAD_READ)
    elif node.fd_error:
        tap_mark_dead(vm, t, EBADFD, DEAD_EPOLL)      # epoll reported EPOLLERR/HUP
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
    cdef uint32_t hs = t.hdr_size if t != NULL else 0, k
    cdef uint16_t queue = 0
    if t != NULL and t.n_queues > 1:
        for k in range(t.trace_n):
            if gn_main_buffer(vm, t.trace_bi[k]) == b:
                queue = t.trace_q[k]
                break
    gn_device_trace_fill(vm, &tr.dev, b, queue)
    tr.gso_size = b.gso_size
    tr.hdr_size = <uint16_t>hs
    memset(tr.vnet, 0, 12)
    if hs and b.current_data == 0:
        memcpy(tr.vnet, <uint8_t*>b.data - hs, 12)      # the header read() left in the headroom
    return sizeof(tap_trace_t) + gn_trace_bytes_fill(record + sizeof(tap_trace_t), b.sw_if_index[GN_RX],
                                                     gn_buffer_current(b), b.current_length, GN_DEVICE_TRACE_BYTES)


_TRACE = struct.Struct("<HH12s")


def parse_trace(bytes record):
    """A tap-input trace record as a dict (tests and tools)."""
    d, (gso_size, hs, vnet) = parse_record(record, _TRACE)
    return d | {"gso_size": gso_size, "vnet_hdr": hs > 0} | parse_vnet(vnet)


def format_tap_trace(bytes record, engine=None):
    """``TAP gn0: 98 bytes in 1 buffer, queue 0``, the virtio-net header
    (offload flags: checksum, GSO type and size), the frame's summary."""
    d = parse_trace(record)
    return format_record("TAP", engine, d, f"{d['length']} bytes in {buffers(d['n_buffers'])}, queue {d['queue']}",
                         ["    virtio-net: " + format_vnet(d, d["gso_size"])] if d["vnet_hdr"] else [])


TAP_INPUT_FN = gn_node_fn(tap_input_fn)
TAP_INPUT_TRACE_FN = gn_trace_fn(tap_trace_fn)
TAP_TRACE_SIZE = sizeof(tap_trace_t) + GN_TRACE_BYTES_HEADER + GN_DEVICE_TRACE_BYTES
