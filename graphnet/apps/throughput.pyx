"""The builtin throughput apps: a source that sends a given number of bytes
as fast as its session takes them, and a sink that reads and counts
everything that reaches its listener.

Builtin apps (C callbacks in the engine's loop) on the transport-generic
session API only (graphnet/apps/app_io.pxd): UDP sessions carry datagrams
of ``size`` payload bytes, cut-through and TCP sessions a stream (each
write fills the tx fifo's free space, in place: ``gn_fifo_writable`` +
``gn_fifo_enqueue_nocopy``, one copy per byte from the test pattern).

Source: connects to the URI; on CONNECTED and on every TX event (its tx
fifo has room again) it writes until the fifo is full or ``bytes`` have
been written, then waits for the fifo to drain (a TX event when empty)
and closes: nothing written is cut off. Counters: tx bytes and datagrams,
seconds from connected to drained.

Sink: listens on the URI; on an rx event it drops everything readable
(counting datagrams for UDP: only whole ones) and tells the writer
(cut-through dequeue notification); a peer's close is answered with a
close. Counters: sessions, bytes, datagrams, seconds from the first to the
last byte.

    from graphnet.apps.throughput import start_sink, start_source
    start_sink(engine, "udp://0.0.0.0/9000")                     # CLI: test throughput sink uri ...
    start_source(engine, "udp://10.0.0.2/9000", bytes=10 << 20, size=1400)   # test throughput source uri ...
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.stdlib cimport calloc, free
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_slice_t, gn_fifo_max_dequeue, gn_fifo_max_enqueue,
                                    gn_fifo_enqueue_segments, gn_fifo_dequeue_drop, gn_fifo_unset_event,
                                    gn_fifo_want_deq_ntf, GN_FIFO_DEQ_NTF_IF_EMPTY)
from graphnet.session.session cimport gn_session_main_t, gn_app_wrk_t, gn_session_from_handle, gn_session_close, SessionLayer
from graphnet.apps.app_io cimport *

cdef enum:
    ST_CONNECTING = 0
    ST_RUNNING = 1
    ST_DRAINING = 2                    # all written, waiting for the tx fifo to empty
    ST_DONE = 3
    ST_FAILED = 4

STATES = ("connecting", "running", "draining", "done", "failed")

ctypedef struct tput_t:
    gn_session_main_t* sm
    uint64_t handle                    # source: its session
    uint64_t total                     # source: payload bytes to send
    uint32_t size                      # source: datagram payload bytes
    uint8_t state
    uint8_t dgram
    int32_t connect_error
    uint64_t bytes                     # payload bytes written (source) or read (sink)
    uint64_t datagrams
    uint64_t sessions                  # sink: accepted
    uint64_t rx_events
    uint64_t t0
    uint64_t t1


# --- source -------------------------------------------------------------------------

cdef void _source_fill(tput_t* t, gn_session_t* s) noexcept nogil:
    cdef gn_fifo_t* tx = s.tx_fifo
    cdef uint32_t hdr[4]
    cdef gn_fifo_slice_t pieces[2]
    cdef uint64_t left
    cdef uint32_t room, k, wrote = 0
    if t.dgram:
        hdr[1] = hdr[2] = hdr[3] = 0
        pieces[0].data = <uint8_t*>hdr
        pieces[0].len = GN_APP_DGRAM_HDR
        pieces[1].data = <uint8_t*>gn_app_pattern(0)
        while t.bytes < t.total:
            left = t.total - t.bytes
            hdr[0] = pieces[1].len = <uint32_t>(left if left < t.size else t.size)
            if gn_fifo_enqueue_segments(tx, pieces, 2, False) < 0:
                break
            t.bytes += hdr[0]
            t.datagrams += 1
            wrote += 1
    else:
        room = gn_fifo_max_enqueue(tx)
        left = t.total - t.bytes
        if room:
            k = gn_app_write_pattern(tx, t.bytes, <uint32_t>(left if left < room else room))
            t.bytes += k
            wrote = k
    if t.bytes < t.total:
        gn_app_want_tx_room(s, tx.size // 2)
    else:
        t.state = ST_DRAINING
        gn_fifo_want_deq_ntf(tx, GN_FIFO_DEQ_NTF_IF_EMPTY, 0)
    if wrote:
        gn_app_tx_kick(t.sm, s)


cdef void _source_pump(tput_t* t, gn_session_t* s) noexcept nogil:
    if t.state == ST_RUNNING:
        _source_fill(t, s)
    if t.state == ST_DRAINING and gn_fifo_max_dequeue(s.tx_fifo) == 0:
        t.state = ST_DONE
        t.t1 = gn_app_now_ns()
        gn_session_close(t.sm, s)


cdef void source_cb(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil:
    cdef tput_t* t = <tput_t*>ctx
    cdef gn_session_t* s
    cdef uint32_t i
    for i in range(n):
        if msgs[i].type == GN_EVT_CONNECTED and t.state == ST_CONNECTING:
            s = gn_session_from_handle(t.sm, msgs[i].handle) if msgs[i].retval == 0 else NULL
            if s == NULL:
                t.connect_error = msgs[i].retval
                t.state = ST_FAILED
                continue
            t.handle = msgs[i].handle
            t.dgram = gn_app_is_dgram(t.sm, s)
            t.state = ST_RUNNING
            t.t0 = gn_app_now_ns()
            _source_pump(t, s)
            continue
        if msgs[i].handle != t.handle:
            continue
        s = gn_session_from_handle(t.sm, msgs[i].handle)
        if s == NULL:
            continue
        if msgs[i].type == GN_EVT_TX:
            _source_pump(t, s)
        elif msgs[i].type == GN_EVT_RX:
            gn_fifo_unset_event(s.rx_fifo)
            gn_fifo_dequeue_drop(s.rx_fifo, gn_fifo_max_dequeue(s.rx_fifo))   # a source ignores replies
        elif msgs[i].type == GN_EVT_DISCONNECTED or msgs[i].type == GN_EVT_RESET:
            if t.state != ST_DONE:
                t.state = ST_FAILED
            gn_session_close(t.sm, s)


# --- sink ---------------------------------------------------------------------------

cdef void _sink_read(tput_t* t, gn_session_t* s) noexcept nogil:
    cdef gn_fifo_t* rx = s.rx_fifo
    cdef uint32_t avail, take, n = 0
    gn_fifo_unset_event(rx)
    avail = gn_fifo_max_dequeue(rx)
    if t.dgram:
        take = gn_app_whole_dgrams(rx, avail, avail, &n)
    else:
        take = avail
    if take == 0:
        return
    if t.t0 == 0:
        t.t0 = gn_app_now_ns()
    t.t1 = gn_app_now_ns()
    gn_fifo_dequeue_drop(rx, take)
    gn_app_rx_done(t.sm, s, take)
    t.datagrams += n
    t.bytes += take - n * GN_APP_DGRAM_HDR


cdef void sink_cb(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil:
    cdef tput_t* t = <tput_t*>ctx
    cdef gn_session_t* s
    cdef uint32_t i
    for i in range(n):
        s = gn_session_from_handle(t.sm, msgs[i].handle)
        if s == NULL:
            continue
        if msgs[i].type == GN_EVT_ACCEPTED:
            t.sessions += 1
        elif msgs[i].type == GN_EVT_RX:
            t.rx_events += 1
            t.dgram = gn_app_is_dgram(t.sm, s)
            _sink_read(t, s)
        elif msgs[i].type == GN_EVT_DISCONNECTED or msgs[i].type == GN_EVT_RESET:
            t.dgram = gn_app_is_dgram(t.sm, s)
            _sink_read(t, s)
            gn_session_close(t.sm, s)


cdef class Throughput:
    """C state of one throughput source or sink (kept alive with its app)."""
    cdef tput_t* t
    cdef readonly str uri
    cdef readonly str role

    def __cinit__(self, SessionLayer layer, str uri, str role, uint64_t total=0, uint32_t size=1400):
        self.t = <tput_t*>calloc(1, sizeof(tput_t))
        if self.t == NULL:
            raise MemoryError()
        self.t.sm = layer.sm
        self.t.total = total
        self.t.size = size
        self.t.handle = GN_NO_HANDLE
        self.uri = uri
        self.role = role

    def __dealloc__(self):
        free(self.t)

    def callback(self):
        fn = <void*>source_cb if self.role == "source" else <void*>sink_cb
        return (PyCapsule_New(fn, "gn_wrk_cb", NULL), PyCapsule_New(<void*>self.t, NULL, NULL))

    def stats(self):
        t = self.t
        out = {"bytes": t.bytes, "datagrams": t.datagrams}
        if self.role == "source":
            out.update(state=STATES[t.state], connect_error=t.connect_error, mode="dgram" if t.dgram else "stream")
            done = t.state == ST_DONE
        else:
            out.update(sessions=t.sessions, rx_events=t.rx_events)
            done = t.bytes > 0
        if done and t.t1 > t.t0:
            out["seconds"] = (t.t1 - t.t0) / 1e9
            out["gbps"] = t.bytes / (t.t1 - t.t0)
        return out


def start_sink(engine, uri, name=None, **options):
    """Attach a throughput sink listening on `uri`; returns the app
    (``app.builtin.stats()``)."""
    from graphnet.apps import start_builtin
    return start_builtin(engine, uri, name or f"throughput-sink {uri}", lambda layer: Throughput(layer, uri, "sink"),
                         "listen", options)


def start_source(engine, uri, name=None, bytes=1 << 20, size=1400, **options):
    """Attach a throughput source that connects to `uri` and sends `bytes`
    payload bytes (UDP: datagrams of `size` bytes); returns the app."""
    from graphnet.apps import start_builtin
    if not isinstance(bytes, int) or not 1 <= bytes <= 1 << 50:
        raise ValueError(f"bytes {bytes!r}: use 1..2^50")
    if not isinstance(size, int) or not 1 <= size <= GN_APP_MAX_DGRAM:
        raise ValueError(f"size {size!r}: use 1..{GN_APP_MAX_DGRAM} (datagram payload bytes)")
    return start_builtin(engine, uri, name or f"throughput-source {uri}",
                         lambda layer: Throughput(layer, uri, "source", bytes, size), "connect", options)
