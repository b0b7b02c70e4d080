"""af-packet-input-<name>: takes frames from an AF_PACKET interface's
TPACKET_V3 rx ring (input node; polling, interrupt or adaptive: the
socket fd in the loop's epoll, readable when a block is retired).

It walks the user-owned blocks, copies each frame into a buffer (a chain
when it does not fit one; a VLAN tag the kernel took off is put back, so
frames arrive byte-exact) and hands every block back to the kernel as soon
as its last frame is copied; at most 256 frames per call, has_more_work
while user blocks remain. The per-frame loop holds only the common case
(one buffer, no VLAN tag to restore, nothing wrong: a fixed 64-byte copy
for a short frame, the data line RX_PREFETCH buffers ahead prefetched for
writing); every other frame goes through ``_rx_slow``, and the few it
rejects are remembered by position, so the loop stores no per-frame next
index. Admin down: the frames are stepped over and counted.

Metadata set: current_data 0, current_length, chains, sw_if_index[RX],
flags (L4_CSUM_OFFLOAD when the kernel says the checksum is not ready:
TP_STATUS_CSUMNOTREADY, a frame from a local sender over a veth).
Next nodes: next_node (default ethernet-input, else null). Drops:
short-frame, too-big (over MTU + 18), truncated, no-buffers (chain tail),
interface-down (admin down: frames consumed and counted). It also retries
af-packet-output's backlog, reads the socket's pending error after
EPOLLERR (marking the link down at once when it is not up), and hands
what it enqueues to the pcap rx capture.

Trace record: the interface, queue (0: one ring) and ring block, the
frame's length and buffers, the VLAN tag put back and the checksum state
the kernel reported (tp_status), its first bytes. While the node traces,
a variant of the loop notes each frame's ring block and status (the
ring's header is gone once the block is handed back); otherwise the loop
is the untraced one.
"""
import struct

from graphnet.io.frame_trace import buffers, format_record, parse_record

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.includes.af_packet cimport (tpacket_block_desc, tpacket3_hdr, sockaddr_ll, PACKET_OUTGOING,
                                          TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_CSUMNOTREADY)
from graphnet.includes.platform cimport gn_unlikely, gn_likely, gn_prefetch_store
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_BUFFER_DATA_SIZE, GN_FRAME_SIZE,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_L4_CSUM_OFFLOAD, GN_BUFFER_INIT_BYTES,
                                   gn_buffer_current, gn_buffer_init_meta)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc_uninit, gn_main_free,
                                 gn_enqueue_to_next, gn_enqueue_to_single_next, gn_buffer_set_error,
                                 gn_node_increment_error, gn_node_set_interrupt_pending, gn_node_fd_rearm, gn_count_drops,
                                 GN_NODE_INTERRUPT)
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.io.pcap cimport gn_pcap_capture, GN_PCAP_RX
from graphnet.io.bufcopy cimport gn_copy_to_chain
from graphnet.io.af_packet_socket import RxError
from graphnet.vlib.kit import check_enum
from graphnet.io.af_packet_socket cimport *
from graphnet.io.af_packet_output cimport afp_tx_retry
from graphnet.io.trace_record cimport gn_device_trace_t, gn_device_trace_fill, GN_DEVICE_TRACE_BYTES

INPUT_ERRORS = (
    ("none", "info", "no error"),
    ("short-frame", "error", "frame shorter than an Ethernet header"),
    ("too-big", "error", "frame longer than the interface MTU"),
    ("truncated", "error", "frame cut by the rx ring (larger than a ring block)"),
    ("no-buffers", "warn", "no buffers (frames left in the ring, or a chain tail dropped)"),
    ("interface-down", "error", "frame received while the interface is admin down: dropped"),
)
check_enum("af-packet-input", RxError, "ERROR_", [r[0] for r in INPUT_ERRORS], "N_ERROR")


cdef bint _link_slow_path(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st) noexcept nogil:
    """The fd reported EPOLLERR (the socket's pending ENETDOWN: the link
    went down or was deleted) or a send failed with ENXIO/ENETDOWN/ENODEV.
    Read the error, put the fd back in epoll, and look at the link: a link
    that is not up is marked down at once (interface-output drops what is
    routed to it); one re-created under our name is re-bound. Up again is
    decided by the link-events node (netlink), never here. Returns True
    while the link is down."""
    cdef int state
    afp_clear_sock_error(st.fd)
    if node.fd_error:
        gn_node_fd_rearm(vm, node)
    if st.check_link:
        st.check_link = 0
        state = afp_probe_link(st)
        if state != LINK_UP:
            afp_mark_link(st, state)
    return st.link_down


cdef uint32_t _ring_available(afp_t* st, uint32_t limit) noexcept nogil:
    """Frames ready in user-owned blocks from the current position (at most
    limit). Releases an exhausted (or empty) current block first."""
    cdef uint32_t k, i, cnt = 0, pkt = st.cur_pkt
    cdef tpacket_block_desc* bd
    for k in range(st.n_blocks):
        bd = afp_block(st, st.cur_block)
        if not afp_user_owned(bd) or bd.hdr.bh1.num_pkts > st.cur_pkt:
            break
        afp_release_block(st)
    pkt = st.cur_pkt
    i = st.cur_block
    for k in range(st.n_blocks):
        bd = afp_block(st, i)
        if not afp_user_owned(bd):
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
        return -RX_ERROR_SHORT_FRAME
    if total > st.max_frame:
        return -RX_ERROR_TOO_BIG
    if _copy_frame(vm, st, bi, h, length, vlan) != 0:
        return -RX_ERROR_NO_BUFFERS
    return <int>total


cdef inline void _trace_note(afp_t* st, uint32_t n, uint32_t bi, tpacket3_hdr* h) noexcept nogil:
    cdef afp_trace_note_t* note = &st.trace_note[n]
    note.bi = bi
    note.block = st.cur_block
    note.status = h.tp_status
    note.vlan_tci = <uint16_t>h.hv1.tp_vlan_tci if h.tp_status & TP_STATUS_VLAN_VALID else 0
    note.vlan_tpid = (<uint16_t>h.hv1.tp_vlan_tpid if h.tp_status & TP_STATUS_VLAN_TPID_VALID else 0x8100) \
        if h.tp_status & TP_STATUS_VLAN_VALID else 0


cdef uint32_t _rx_discard(afp_t* st, uint32_t limit) noexcept nogil:
    """Admin down: step over up to limit frames (returns how many) and hand
    their blocks back; outgoing copies are skipped without being counted."""
    cdef uint32_t n = 0, num, cur_pkt, cur_off
    cdef tpacket_block_desc* bd
    cdef tpacket3_hdr* h
    while n < limit:
        bd = afp_block(st, st.cur_block)
        if not afp_user_owned(bd):
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
            afp_release_block(st)
    return n


# _rx's two variants, as fused-type specializations (see tap_input): the
# untraced one is the loop as it was; the traced one also notes each frame's
# ring block and status for the trace record (tracing: a call whose vector
# has packets to mark for ``trace add``).
ctypedef uint8_t untraced_t
ctypedef uint16_t traced_t
ctypedef fused tracing_t:
    untraced_t
    traced_t


cdef uint32_t _rx(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st, tracing_t variant) noexcept nogil:
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
            gn_count_drops(vm, node.error_base + RX_ERROR_INTERFACE_DOWN, n)
            st.hw.counters.rx_drops += n
        node.has_more_work = afp_user_owned(afp_block(st, st.cur_block))
        if node.has_more_work and node.state == GN_NODE_INTERRUPT:
            gn_node_set_interrupt_pending(vm, node.node_index)
        return 0
    # Uninitialised: every buffer used gets st.rx_meta below, the rest
    # gn_buffer_init_meta before it is freed.
    got = gn_main_alloc_uninit(vm, bis, avail)
    if got < avail:
        gn_node_increment_error(vm, node, RX_ERROR_NO_BUFFERS, avail - got)
    while n < got:
        bd = afp_block(st, st.cur_block)
        if not afp_user_owned(bd):
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
            if tracing_t is traced_t:
                _trace_note(st, n, bis[n], h)
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
            if gn_unlikely(h.tp_status & TP_STATUS_CSUMNOTREADY):
                # a local sender's frame (a veth peer): its L4 checksum is
                # partial, left to an offload that never ran
                b.flags |= GN_BUFFER_F_L4_CSUM_OFFLOAD
            n += 1
        st.cur_pkt = cur_pkt
        st.cur_off = cur_off
        if cur_pkt >= num:
            afp_release_block(st)
    if tracing_t is traced_t:
        st.trace_n = n                        # before the enqueue, which makes the records
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
    node.has_more_work = afp_user_owned(afp_block(st, st.cur_block))
    if node.has_more_work and node.state == GN_NODE_INTERRUPT:
        gn_node_set_interrupt_pending(vm, node.node_index)
    return n


cdef uint32_t afp_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef afp_t* st = <afp_t*>node.runtime_data
    if st == NULL or st.fd < 0 or st.ring == NULL:      # detached (the kernel interface was deleted)
        node.has_more_work = 0
        return 0
    if gn_unlikely(node.fd_error or st.check_link):
        _link_slow_path(vm, node, st)
    if st.n_backlog:
        afp_tx_retry(vm, node, st)          # link down: drops them, counted as link-down
    # Link down or not, frames already in the ring are valid: take them.
    if gn_unlikely(node.trace_remaining != 0):
        return _rx[traced_t](vm, node, st, 0)
    return _rx[untraced_t](vm, node, st, 0)


# The record: the common device part (trace_record.pxd; queue 0: one
# ring), these fields, then the kit's shared record (sw_if_index and the
# first GN_DEVICE_TRACE_BYTES bytes of the frame, VLAN tag restored).
ctypedef packed struct afp_rx_trace_t:
    gn_device_trace_t dev
    uint32_t block                # the ring block it came from
    uint32_t status               # its tp_status; 0xffffffff: not noted
    uint16_t vlan_tci             # a tag the kernel had taken off (status VLAN_VALID)
    uint16_t vlan_tpid



cdef uint16_t afp_input_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                 uint8_t* record) noexcept nogil:
    cdef afp_rx_trace_t* tr = <afp_rx_trace_t*>record
    cdef afp_t* st = <afp_t*>node.runtime_data
    cdef uint32_t k
    gn_device_trace_fill(vm, &tr.dev, b, 0)
    tr.block = 0
    tr.status = 0xffffffff
    tr.vlan_tci = 0
    tr.vlan_tpid = 0
    if st != NULL:
        for k in range(st.trace_n):
            if gn_main_buffer(vm, st.trace_note[k].bi) == b:
                tr.block = st.trace_note[k].block
                tr.status = st.trace_note[k].status
                tr.vlan_tci = st.trace_note[k].vlan_tci
                tr.vlan_tpid = st.trace_note[k].vlan_tpid
                break
    return sizeof(afp_rx_trace_t) + gn_trace_bytes_fill(record + sizeof(afp_rx_trace_t), b.sw_if_index[GN_RX],
                                                        gn_buffer_current(b), b.current_length, GN_DEVICE_TRACE_BYTES)


_TRACE = struct.Struct("<IIHH")
# tp_status bits worth showing (linux/if_packet.h)
_STATUS_NAMES = ((0x2, "copy"), (0x4, "losing"), (0x8, "csum-not-ready"), (0x80, "csum-valid"))


def parse_trace(bytes record):
    """An af-packet-input trace record as a dict (tests and tools)."""
    d, (block, status, tci, tpid) = parse_record(record, _TRACE)
    noted = status != 0xffffffff
    return d | {"block": block if noted else None, "status": status if noted else None,
                "vlan": ({"tci": tci, "vid": tci & 0xfff, "tpid": tpid} if noted and status & 0x10 else None),
                "status_flags": [n for bit, n in _STATUS_NAMES if noted and status & bit]}


def format_afp_input_trace(bytes record, engine=None):
    """``AF_PACKET host-veth0: 98 bytes in 1 buffer, queue 0 (ring block
    3)``, the VLAN tag put back and checksum state, the frame's summary."""
    d = parse_trace(record)
    where = f" (ring block {d['block']})" if d["block"] is not None else ""
    notes = list(d["status_flags"])
    if d["vlan"] is not None:
        notes.insert(0, f"vlan {d['vlan']['vid']} tag put back (tpid 0x{d['vlan']['tpid']:04x})")
    return format_record("AF_PACKET", engine, d,
                         f"{d['length']} bytes in {buffers(d['n_buffers'])}, queue {d['queue']}{where}",
                         ["    ring: " + ", ".join(notes)] if notes else [])


AFP_INPUT_FN = gn_node_fn(afp_input_fn)
AFP_INPUT_TRACE_FN = gn_trace_fn(afp_input_trace_fn)
AFP_INPUT_TRACE_SIZE = sizeof(afp_rx_trace_t) + GN_TRACE_BYTES_HEADER + GN_DEVICE_TRACE_BYTES
