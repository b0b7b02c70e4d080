"""af-packet-output-<name>: sends frames on an AF_PACKET interface
(internal node, attached to interface-output under the interface's
sw_if_index).

Each frame goes out with one ``send()`` (a chain with ``sendmsg()``),
MSG_DONTWAIT, on a socket with PACKET_QDISC_BYPASS: the fastest way on
veth (64-byte frames, one core, 7 runs: send() best 0.92 Mpps, median
0.83; a TPACKET_V2 tx ring filled in batches of 64 or 256 and kicked with
one send(): best 0.89, median 0.83; so send(), which also takes chains
without a copy and reports a full queue per frame). A full kernel queue
(EAGAIN, ENOBUFS) never blocks the loop: the unsent frames wait, in
order, in a backlog (at most 512) retried on later iterations (the input
node is woken for it) and, after ``tx_retry_limit`` attempts without
progress, dropped. A send failing with ENXIO/ENETDOWN/ENODEV drops the
frame as link-down and makes the input node look at the link.

Metadata used: current_data, current_length, chains. Next nodes: none
(frees what was sent; drops go to error-drop). Drops: short-frame,
too-big, tx-queue-full, send-error, link-down, interface-down. Info:
tx-deferred. Each frame it is given goes to the pcap tx capture first.

Trace record: the interface, what is sent (send() or sendmsg(), bytes,
buffers, qdisc bypass, behind the backlog), the frame's first bytes.
"""
import struct

from graphnet.io.frame_trace import buffers, format_record, parse_record

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.includes.af_packet cimport msghdr, send, sendmsg, MSG_DONTWAIT
from graphnet.includes.linux cimport iovec, errno, EINTR, EAGAIN, ENOBUFS, ENXIO, ENETDOWN, ENODEV, EMSGSIZE
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_TX, GN_BUFFER_F_NEXT_PRESENT, gn_buffer_current
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_set_interrupt_pending)
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.io.pcap cimport gn_pcap_capture, GN_PCAP_TX
from graphnet.io.bufcopy cimport gn_chain_length
from graphnet.io.af_packet_socket import TxError
from graphnet.vlib.kit import check_enum
from graphnet.io.af_packet_socket cimport *
from graphnet.io.trace_record cimport gn_device_trace_t, gn_device_trace_fill, GN_DEVICE_TRACE_BYTES

OUTPUT_ERRORS = (
    ("none", "info", "no error"),
    ("short-frame", "error", "frame shorter than an Ethernet header"),
    ("too-big", "error", "frame longer than the interface MTU"),
    ("tx-queue-full", "error", "kernel tx queue full past the retry limit"),
    ("send-error", "error", "send() failed"),
    ("link-down", "error", "kernel interface down or deleted"),
    ("interface-down", "error", "interface admin down: frame dropped"),
    ("tx-deferred", "info", "kernel queue full; frame kept for a later retry"),
)
check_enum("af-packet-output", TxError, "ERROR_", [r[0] for r in OUTPUT_ERRORS], "N_ERROR")


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
            _tx_drop(st, vm, bis[i], TX_ERROR_INTERFACE_DOWN if not st.hw.admin_up else TX_ERROR_LINK_DOWN, drops, &nd)
        elif length < 14:
            _tx_drop(st, vm, bis[i], TX_ERROR_SHORT_FRAME, drops, &nd)
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
                    vm.error_counters[st.tx_error_base + TX_ERROR_TX_DEFERRED] += k
                    st.hw.counters.tx_retries += k
                for j in range(i + k, n):
                    _tx_drop(st, vm, bis[j], TX_ERROR_TX_QUEUE_FULL, drops, &nd)
                break
            elif err == ENXIO or err == ENETDOWN or err == ENODEV:
                _tx_drop(st, vm, bis[i], TX_ERROR_LINK_DOWN, drops, &nd)
                st.check_link = 1
                down = True
            elif err == EMSGSIZE:
                _tx_drop(st, vm, bis[i], TX_ERROR_TOO_BIG, drops, &nd)
            else:
                _tx_drop(st, vm, bis[i], TX_ERROR_SEND_ERROR, drops, &nd)
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


cdef void afp_tx_retry(gn_main_t* vm, gn_node_runtime_t* node, afp_t* st) noexcept nogil:
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
            gn_main_buffer(vm, st.backlog[i]).error = <uint16_t>(st.tx_error_base + TX_ERROR_TX_QUEUE_FULL)
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
        afp_tx_retry(vm, node, st)
    if st.n_backlog == 0:
        _tx_burst(vm, node, st, frame.buffers, n, False)
        return n
    # Still stuck: queue behind the backlog (order is kept), drop what does not fit.
    room = st.backlog_cap - st.n_backlog
    k = n if n < room else room
    memcpy(st.backlog + st.n_backlog, frame.buffers, k * sizeof(uint32_t))
    st.n_backlog += k
    vm.error_counters[st.tx_error_base + TX_ERROR_TX_DEFERRED] += k
    st.hw.counters.tx_retries += k
    for j in range(k, n):
        gn_main_buffer(vm, frame.buffers[j]).error = <uint16_t>(st.tx_error_base + TX_ERROR_TX_QUEUE_FULL)
        drops[j - k] = frame.buffers[j]
    if n > k:
        gn_enqueue_to_single_next(vm, node, drops, node.drop_next, n - k)
        st.hw.counters.tx_drops += n - k
    gn_node_set_interrupt_pending(vm, st.input_node_index)
    return n


# The record: the common device part (trace_record.pxd), these fields,
# then the kit's shared record (the device's sw_if_index and the first
# GN_DEVICE_TRACE_BYTES bytes of the frame).
ctypedef packed struct afp_tx_trace_t:
    gn_device_trace_t dev
    uint8_t qdisc_bypass
    uint8_t backlog               # 1: frames wait in the tx backlog, this one queues behind them



cdef uint16_t afp_output_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                  uint8_t* record) noexcept nogil:
    cdef afp_tx_trace_t* tr = <afp_tx_trace_t*>record
    cdef afp_t* st = <afp_t*>node.runtime_data
    gn_device_trace_fill(vm, &tr.dev, b, 0)
    tr.qdisc_bypass = st.qdisc_bypass if st != NULL else 0
    tr.backlog = 1 if st != NULL and st.n_backlog else 0
    return sizeof(afp_tx_trace_t) + gn_trace_bytes_fill(record + sizeof(afp_tx_trace_t),
                                                        st.sw_if_index if st != NULL else b.sw_if_index[GN_TX],
                                                        gn_buffer_current(b), b.current_length, GN_DEVICE_TRACE_BYTES)


_TRACE = struct.Struct("<BB")


def parse_trace(bytes record):
    """An af-packet-output trace record as a dict (tests and tools)."""
    d, (bypass, backlog) = parse_record(record, _TRACE)
    return d | {"qdisc_bypass": bool(bypass), "behind_backlog": bool(backlog)}


def format_afp_output_trace(bytes record, engine=None):
    """``AF_PACKET host-veth0: send 98 bytes (qdisc bypass)``, the frame's summary."""
    d = parse_trace(record)
    call = "sendmsg" if d["n_buffers"] > 1 else "send"
    notes = (["qdisc bypass"] if d["qdisc_bypass"] else []) + (["behind the tx backlog"] if d["behind_backlog"] else [])
    return format_record("AF_PACKET", engine, d, f"{call} {d['length']} bytes"
                         + (f" in {buffers(d['n_buffers'])}" if d["n_buffers"] > 1 else "")
                         + (f" ({', '.join(notes)})" if notes else ""))


AFP_OUTPUT_FN = gn_node_fn(afp_output_fn)
AFP_OUTPUT_TRACE_FN = gn_trace_fn(afp_output_trace_fn)
AFP_OUTPUT_TRACE_SIZE = sizeof(afp_tx_trace_t) + GN_TRACE_BYTES_HEADER + GN_DEVICE_TRACE_BYTES
