# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The app's datagram path in C: sendto/recv/recvfrom of a UDP session and
the event drain of graphnet.app's worker, with no Python object per call
beyond the call's own arguments and result.

Invariants:
- A datagram is one fifo record: a 16-byte header (length, rmt_ip, lcl_ip,
  rmt_port, lcl_port; little-endian, graphnet.transport.udp's layout) then
  the payload. send() writes header + payload with ONE enqueue_segments
  (one tail store): the engine sees the whole record or nothing; a record
  that does not fit is not written (-1), never cut.
- recv*() take one whole record: the payload cut to the caller's buffer,
  the rest of the record dropped (the socket module's datagram semantics).
  A header whose length exceeds what is readable cannot come from the
  engine: the fifo is emptied and -2 returned (the caller raises EPROTO).
- After a read that left the rx fifo empty its event flag is cleared, so
  the engine's next enqueue raises an event (same rule as socket._read_done);
  a writer that asked for a dequeue notification gets RX_DONE (rx_done msg).
- The tx event: the fifo's has_event flag is set and only a 0->1 change
  posts the prebuilt TX message to the engine's queue; if that queue is
  full the call returns -3 after writing, and the caller posts it the slow
  way (Worker.send retries).
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from graphnet.session.fifo cimport (Fifo, gn_fifo_t, gn_fifo_slice_t, gn_fifo_enqueue_segments, gn_fifo_set_event,
                                    gn_fifo_max_dequeue, gn_fifo_peek, gn_fifo_dequeue_drop, gn_fifo_dequeue_drop_all,
                                    gn_fifo_unset_event, gn_fifo_needs_deq_ntf)
from graphnet.session.msg_queue cimport MessageQueue, gn_mq_enqueue_batch, gn_mq_dequeue_batch_h, gn_mq_count

DEF HDR = 16
DEF MSG = 64
DEF BATCH = 256
DEF EVT_RX = 1
DEF EVT_TX = 2

ctypedef packed struct dgram_hdr_t:
    uint32_t length
    uint32_t rmt_ip
    uint32_t lcl_ip
    uint16_t rmt_port
    uint16_t lcl_port

HDR_SIZE = HDR
MAX_DGRAM = 65507


def send(Fifo tx, MessageQueue ctrl, const uint8_t[::1] tx_msg, const uint8_t[::1] data,
         uint32_t rmt_ip, uint32_t lcl_ip, uint16_t rmt_port, uint16_t lcl_port):
    """One datagram into tx and the TX event if none is outstanding.
    len(data) on success; -1: no room for the whole record (nothing
    written); -3: written but the engine's queue was full (post TX)."""
    cdef gn_fifo_t* f = tx._f()
    cdef dgram_hdr_t h
    cdef gn_fifo_slice_t sl[2]
    cdef uint32_t n = data.shape[0]
    h.length = n
    h.rmt_ip = rmt_ip
    h.lcl_ip = lcl_ip
    h.rmt_port = rmt_port
    h.lcl_port = lcl_port
    sl[0].data = <uint8_t*>&h
    sl[0].len = HDR
    sl[1].data = <uint8_t*>&data[0] if n else NULL
    sl[1].len = n
    if gn_fifo_enqueue_segments(f, sl, 2, False) <= 0:
        return -1
    if gn_fifo_set_event(f) and gn_mq_enqueue_batch(&ctrl.h, &tx_msg[0], MSG, 1) != 1:
        return -3
    return <int>n


cdef int _head(gn_fifo_t* f, dgram_hdr_t* h) noexcept nogil:
    """Payload length of the first record; -1 none; -2 corrupt (fifo emptied)."""
    cdef uint32_t avail = gn_fifo_max_dequeue(f)
    if avail < HDR:
        return -1
    gn_fifo_peek(f, 0, <uint8_t*>h, HDR)
    if h.length > avail - HDR:
        gn_fifo_dequeue_drop_all(f)
        return -2
    return <int>h.length


cdef bint _finish(gn_fifo_t* f, dgram_hdr_t* h, uint8_t* dst, uint32_t k, MessageQueue ctrl,
                  const uint8_t* rx_done_msg) noexcept:
    """Copy k payload bytes to dst, drop the record, clear the event flag
    if empty, RX_DONE if the writer asked; False if that could not be posted."""
    if k:
        gn_fifo_peek(f, HDR, dst, k)
    gn_fifo_dequeue_drop(f, HDR + h.length)
    if not gn_fifo_max_dequeue(f):
        gn_fifo_unset_event(f)
    if gn_fifo_needs_deq_ntf(f, HDR + h.length):
        return gn_mq_enqueue_batch(&ctrl.h, rx_done_msg, MSG, 1) == 1
    return True


def recv_into(Fifo rx, MessageQueue ctrl, const uint8_t[::1] rx_done_msg, uint8_t[::1] buf):
    """One datagram into buf: bytes copied; -1 nothing there; -2 corrupt
    header (fifo emptied); -3 - n: n bytes copied but RX_DONE not posted."""
    cdef gn_fifo_t* f = rx._f()
    cdef dgram_hdr_t h
    cdef int n = _head(f, &h)
    cdef uint32_t k
    if n < 0:
        return n
    k = min(<uint32_t>n, <uint32_t>buf.shape[0])
    if not _finish(f, &h, &buf[0] if buf.shape[0] else NULL, k, ctrl, &rx_done_msg[0]):
        return -3 - <int>k
    return <int>k


def recv(Fifo rx, MessageQueue ctrl, const uint8_t[::1] rx_done_msg, uint32_t bufsize, bint with_addr):
    """One datagram as bytes (cut to bufsize), or (bytes, rmt_ip, rmt_port)
    if with_addr; None: nothing there; -2: corrupt header (fifo emptied);
    [result] when RX_DONE could not be posted (the caller posts it)."""
    cdef gn_fifo_t* f = rx._f()
    cdef dgram_hdr_t h
    cdef int n = _head(f, &h)
    cdef uint32_t k
    cdef bytes out
    cdef bint posted
    if n == -1:
        return None
    if n == -2:
        return -2
    k = min(<uint32_t>n, bufsize)
    out = PyBytes_FromStringAndSize(NULL, k)
    posted = _finish(f, &h, <uint8_t*>PyBytes_AS_STRING(out), k, ctrl, &rx_done_msg[0])
    r = (out, h.rmt_ip, h.rmt_port) if with_addr else out
    return r if posted else [r]


def drain_events(MessageQueue mq):
    """Dequeue every event; rx/tx events (they only wake the waiter: the
    fifos say what is there) are counted and dropped here, the others
    returned as one bytes of 64-byte messages. (count, bytes)."""
    cdef uint8_t buf[BATCH * MSG]
    cdef uint8_t keep[BATCH * MSG]
    cdef uint32_t k, i, kept, total = 0
    cdef uint32_t size = ctrl_slot(mq)
    out = []
    while True:
        k = gn_mq_count(mq.h.mq)
        if k > BATCH:
            k = BATCH
        if k == 0:
            break
        k = gn_mq_dequeue_batch_h(&mq.h, buf, MSG, k)
        if k == 0:
            break
        total += k
        kept = 0
        for i in range(k):
            if buf[i * MSG] != EVT_RX and buf[i * MSG] != EVT_TX:
                memcpy(&keep[kept * MSG], &buf[i * MSG], MSG)
                kept += 1
        if kept:
            out.append(PyBytes_FromStringAndSize(<char*>keep, kept * MSG))
    return total, b"".join(out) if out else b""


cdef inline uint32_t ctrl_slot(MessageQueue mq) except 0:
    if mq.h.mq == NULL:
        raise ValueError("message queue closed")
    if mq.h.slot_size != MSG:
        raise ValueError(f"event queue slots of {mq.h.slot_size} bytes (64 expected)")
    return MSG


from graphnet.includes.linux cimport pollfd, poll, POLLIN

from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

cdef extern from "<unistd.h>" nogil:
    long c_read "read"(int fd, void* buf, size_t n)


cdef inline long long _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000LL + ts.tv_nsec


def wait(Fifo rx, MessageQueue events, int timeout_ms, long spin_ns):
    """Block until rx has bytes, events are queued, or timeout_ms (-1:
    none); the GIL is released. First looks for spin_ns (0: no spin), then
    clears rx's event flag (the engine's next enqueue raises an event) and
    looks again, then sleeps on the worker's eventfd; after a wakeup the
    eventfd is cleared before the queue is drained (so no signal is lost)
    and the events drained like drain_events. (count, bytes of the others)."""
    cdef gn_fifo_t* f = rx._f()
    cdef int efd = events.h.efd
    cdef pollfd p
    cdef long long spin_end
    cdef uint64_t v
    cdef bint ready = False
    cdef int woke = 0
    if events.h.mq == NULL:
        raise ValueError("message queue closed")
    with nogil:
        if gn_fifo_max_dequeue(f) or gn_mq_count(events.h.mq):
            ready = True
        elif spin_ns > 0:
            spin_end = _now_ns() + spin_ns
            while _now_ns() < spin_end:
                if gn_fifo_max_dequeue(f) or gn_mq_count(events.h.mq):
                    ready = True
                    break
        if not ready:
            gn_fifo_unset_event(f)
            if not gn_fifo_max_dequeue(f) and not gn_mq_count(events.h.mq) and efd >= 0:
                p.fd = efd
                p.events = POLLIN
                p.revents = 0
                woke = poll(&p, 1, timeout_ms)
        if efd >= 0 and (woke > 0 or gn_mq_count(events.h.mq)):
            c_read(efd, &v, 8)
    if gn_mq_count(events.h.mq):
        return drain_events(events)
    return 0, b""
