"""tap-output-<name>: writes frames to a TAP (internal node, attached to
interface-output under the interface's sw_if_index, and usable as a next
node directly).

Each frame is written with its virtio-net header (zero for a plain frame;
for a GSO or checksum-offload buffer derived from the frame's own
Ethernet/VLAN/IPv4/IPv6 + TCP/UDP headers and gso_size, so the kernel
segments it and fills checksums) put in the headroom just before the
frame: one write() for a single buffer, one writev() for a chain, always
on queue 0 (one loop, one writer). Metadata used: current_data,
current_length, chain, flags (GSO, L4_CSUM_OFFLOAD), gso_size. Next nodes:
none (frees what it wrote or dropped).

A full kernel queue (EAGAIN) never blocks: the unsent buffers wait in a
bounded per-device retry queue (1024 buffers), flushed in order before
anything newer, at the next tap-output call and from tap-input (woken on
a 1-tick timer); a queue that makes no progress for retry_timeout (50 ms)
is dropped. Drops: tx-queue-full, write-error, host-down (EIO: the kernel
side is down), bad-offload (offload metadata on unparsable headers),
chain-too-long, link-lost, interface-down (admin down: the frame and the
retry queue dropped; nothing is written while down). Info: tx-deferred.
Each frame it is given goes to the pcap tx capture first.

Trace record: the interface, what is written (write() or writev(), the
virtio-net header's size and the frame's length, buffers), the header
derived for an offload buffer (or bad-offload), the frame's first bytes.
"""
import struct

from graphnet.io.frame_trace import buffers, format_record, format_vnet, parse_record, parse_vnet

from libc.stdint cimport int8_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.includes.linux cimport write, writev, iovec, errno, EAGAIN, EINTR, EIO
from graphnet.includes.tun cimport (VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4,
                                    VIRTIO_NET_HDR_GSO_TCPV6, GN_VIRTIO_NET_HDR_GSO_UDP_L4,
                                    GN_VIRTIO_NET_HDR_SIZE, gn_virtio_net_hdr_t)
from graphnet.includes.platform cimport gn_time_ns
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_TX, GN_BUFFER_HEADROOM, GN_BUFFER_F_NEXT_PRESENT,
                                   GN_BUFFER_F_GSO, GN_BUFFER_F_L4_CSUM_OFFLOAD, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free,
                                 gn_node_schedule_interrupt, GN_NODE_POLLING)
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.io.pcap cimport gn_pcap_capture, GN_PCAP_TX
from graphnet.io.tap_tun import TxError
from graphnet.vlib.kit import check_enum
from graphnet.io.tap_tun cimport *
from graphnet.io.trace_record cimport gn_device_trace_t, gn_device_trace_fill, GN_DEVICE_TRACE_BYTES

TX_ERRORS = (
    ("none", "info", "no error"),
    ("tx-deferred", "info", "kernel queue full (EAGAIN): frame queued for retry"),
    ("tx-queue-full", "error", "kernel queue full: frame dropped (retry queue full or timed out)"),
    ("write-error", "error", "write() failed: frame dropped"),
    ("host-down", "error", "kernel side of the TAP is down (EIO): frame dropped"),
    ("bad-offload", "error", "GSO/checksum offload on a frame whose headers cannot be parsed"),
    ("chain-too-long", "error", "buffer chain longer than 64 segments"),
    ("link-lost", "error", "the kernel side of the TAP is gone: frame dropped"),
    ("interface-down", "error", "interface is admin down: frame dropped"),
)
check_enum("tap-output", TxError, "ERROR_", [r[0] for r in TX_ERRORS], "N_ERROR")


cdef inline int _tx_offload_hdr(gn_buffer_t* b, gn_virtio_net_hdr_t* h) noexcept nogil:
    """Fill the virtio-net header for a GSO / checksum-offload buffer from
    the frame's own headers (which must be in the first buffer). -1: cannot."""
    cdef const uint8_t* p = gn_buffer_current(b)
    cdef uint32_t length = b.current_length, l3 = ETH_HLEN, l4, hdr_len, ihl
    cdef uint16_t et
    cdef uint8_t proto, v6 = 0, gso_type
    if length < ETH_HLEN:
        return -1
    et = tap_rd16(p + 12)
    while (et == 0x8100 or et == 0x88a8) and l3 < 22:
        if length < l3 + 4:
            return -1
        et = tap_rd16(p + l3 + 2)
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
                    code = TX_ERROR_BAD_OFFLOAD
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
                    code = TX_ERROR_CHAIN_TOO_LONG
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
            if tap_fatal_errno(e):
                tap_mark_dead(vm, t, e, DEAD_WRITE)
                code = TX_ERROR_LINK_LOST
            elif e == EIO:
                code = TX_ERROR_HOST_DOWN
            else:
                code = TX_ERROR_WRITE_ERROR
        if code:
            tap_count_tx_drop(vm, t, code, 1)
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
        tap_count_tx_drop(vm, t, TX_ERROR_LINK_LOST, n - i)
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


cdef void tap_tx_flush_retry(gn_main_t* vm, tap_dev_t* t) noexcept nogil:
    """Write the retry queue, oldest first, until it is empty or EAGAIN;
    drop it when it has made no progress for retry_timeout_ns."""
    cdef uint32_t seg, k, before = t.retry_n
    cdef uint64_t now
    t.retry_armed = 0
    if not t.hw.admin_up:
        tap_retry_drop_all(vm, t, TX_ERROR_INTERFACE_DOWN)     # nothing is written while admin down
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
        tap_retry_drop_all(vm, t, TX_ERROR_TX_QUEUE_FULL)
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
        vm.error_counters[t.tx_error_base + TX_ERROR_TX_DEFERRED] += k
        t.hw.counters.tx_retries += k
        if t.retry_n > t.tx_retry_max:
            t.tx_retry_max = t.retry_n
    if k < n:
        tap_count_tx_drop(vm, t, TX_ERROR_TX_QUEUE_FULL, n - k)
        gn_main_free(vm, bis + k, n - k)
    _tx_arm_retry(vm, t)


cdef uint32_t tap_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef tap_dev_t* t = <tap_dev_t*>node.runtime_data
    cdef uint32_t n = frame.n_vectors, k = 0
    if t == NULL or t.dead:
        if t != NULL:
            tap_count_tx_drop(vm, t, TX_ERROR_LINK_LOST, n)
        gn_main_free(vm, frame.buffers, n)
        return n
    gn_pcap_capture(t.pcap, vm, frame.buffers, n, GN_PCAP_TX, t.sw_if_index)
    if not t.hw.admin_up:
        # Reached directly (not through interface-output, which checks too):
        # the kernel would take the frame even with its carrier off.
        tap_count_tx_drop(vm, t, TX_ERROR_INTERFACE_DOWN, n)
        gn_main_free(vm, frame.buffers, n)
        if t.retry_n:
            tap_retry_drop_all(vm, t, TX_ERROR_INTERFACE_DOWN)
        return n
    if t.retry_n:
        tap_tx_flush_retry(vm, t)
    if t.retry_n == 0:
        k = _tx_burst(vm, t, frame.buffers, n)
    if k < n:
        if t.dead:
            tap_count_tx_drop(vm, t, TX_ERROR_LINK_LOST, n - k)
            gn_main_free(vm, frame.buffers + k, n - k)
        else:
            _tx_defer(vm, t, frame.buffers + k, n - k)
    return n


# The record: the common device part (trace_record.pxd; queue 0, where
# tap-output writes), these fields, then the kit's shared record (the
# device's sw_if_index and the first GN_DEVICE_TRACE_BYTES bytes of the frame).
ctypedef packed struct tap_tx_trace_t:
    gn_device_trace_t dev
    uint16_t hdr_size             # virtio-net header bytes written before the frame (0: none)
    int8_t offload                # 0: plain frame; 1: header derived from the frame; -1: bad-offload
    uint8_t vnet[12]              # the virtio-net header tap-output writes



cdef uint16_t tap_output_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                  uint8_t* record) noexcept nogil:
    cdef tap_tx_trace_t* tr = <tap_tx_trace_t*>record
    cdef tap_dev_t* t = <tap_dev_t*>node.runtime_data
    cdef gn_virtio_net_hdr_t h
    gn_device_trace_fill(vm, &tr.dev, b, 0)
    tr.hdr_size = t.hdr_size if t != NULL else 0
    tr.offload = 0
    memset(&h, 0, sizeof(h))
    if tr.hdr_size and b.flags & (GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD):
        tr.offload = -1 if _tx_offload_hdr(b, &h) != 0 else 1     # as _tx_burst will derive it
    memcpy(tr.vnet, &h, 12)
    return sizeof(tap_tx_trace_t) + gn_trace_bytes_fill(record + sizeof(tap_tx_trace_t),
                                                        t.sw_if_index if t != NULL else b.sw_if_index[GN_TX],
                                                        gn_buffer_current(b), b.current_length, GN_DEVICE_TRACE_BYTES)


_TRACE = struct.Struct("<Hb12s")
_OFFLOAD = {0: "none", 1: "derived", -1: "bad"}


def parse_output_trace(bytes record):
    """A tap-output trace record as a dict (tests and tools)."""
    d, (hs, offload, vnet) = parse_record(record, _TRACE)
    return d | {"hdr_size": hs, "offload": _OFFLOAD[offload]} | parse_vnet(vnet)


def format_tap_output_trace(bytes record, engine=None):
    """``TAP gn0: write 12 + 98 bytes, 1 buffer, queue 0``, the virtio-net
    header it writes, the frame's summary."""
    d = parse_output_trace(record)
    call = "writev" if d["n_buffers"] > 1 else "write"
    size = f"{d['hdr_size']} + {d['length']}" if d["hdr_size"] else f"{d['length']}"
    if d["offload"] == "bad":
        lines = ["    virtio-net: bad-offload (headers cannot be parsed): dropped, not written"]
    else:
        lines = ["    virtio-net: " + format_vnet(d, d["vnet_gso_size"])] if d["hdr_size"] else []
    return format_record("TAP", engine, d, f"{call} {size} bytes, {buffers(d['n_buffers'])}, queue 0", lines)


TAP_OUTPUT_FN = gn_node_fn(tap_output_fn)
TAP_OUTPUT_TRACE_FN = gn_trace_fn(tap_output_trace_fn)
TAP_OUTPUT_TRACE_SIZE = sizeof(tap_tx_trace_t) + GN_TRACE_BYTES_HEADER + GN_DEVICE_TRACE_BYTES
