"""The builtin echo apps: a server that sends every byte (stream) or
datagram back to its sender, and a client that sends test data, checks
that it comes back byte-exact and times the round trip.

Both are builtin apps: a worker gets the session layer's events as a C
callback, one batch per session-input flush, in the engine's loop. They
use only the transport-generic session API (graphnet/apps/app_io.pxd), so
they serve UDP (datagrams), cut-through and TCP (streams) alike.

Server: on an rx event (or a TX event after its tx fifo was full) it
moves what it can from the rx fifo to the tx fifo, through the rx fifo's
readable slices with one ``gn_fifo_enqueue_segments``, and kicks tx.
Datagrams move whole (the 16-byte header is kept: the reply goes to the
header's peer); one that does not fit in the tx fifo is dropped and counted
(``tx_full``). A stream that does not fit waits in the rx fifo: the server
asks for a TX event when its tx fifo has room and goes on then. A peer's
close or reset is answered with a close.

Client: connects to the URI and sends ``count`` messages of ``size`` bytes
(datagrams of at most 65507 bytes, or a stream of count * size bytes) with at most ``window``
messages in flight; every echoed byte is compared in place with what was
sent (datagrams: each payload is the pattern's first ``size`` bytes; a
stream: byte j is j % 251); a difference is counted in ``mismatches``.
Done when everything came back: it closes the session and records the
time from connected to done.

A **cut-through echo pair** is both in one engine with local scope: the
client's connect finds the server's local listener and the two share fifos
(graphnet.transport.cut_through); nothing enters the graph.

    from graphnet.apps.echo import start_echo_server, start_echo_client, start_echo_pair
    start_echo_server(engine, "udp://0.0.0.0/1234")             # CLI: test echo server uri udp://0.0.0.0/1234
    cli = start_echo_client(engine, "udp://10.0.0.2/7", count=100, size=512)   # test echo client uri ...
    cli.echo.stats()    # {'state': 'done', 'rx_msgs': 100, 'mismatches': 0, ...}
    start_echo_pair(engine, "tcp://127.0.0.1/5000", count=1000, size=65536)   # test echo pair uri ...
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.stdlib cimport calloc, free
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_slice_t, gn_fifo_peek, gn_fifo_max_dequeue, gn_fifo_max_enqueue,
                                    gn_fifo_readable, gn_fifo_enqueue_segments, gn_fifo_dequeue_drop,
                                    gn_fifo_unset_event)
from graphnet.session.session cimport (gn_session_main_t, gn_app_wrk_t, gn_session_from_handle, gn_session_close,
                                       SessionLayer)
from graphnet.apps.app_io cimport *

cdef enum:
    ST_CONNECTING = 0
    ST_RUNNING = 1
    ST_DONE = 2
    ST_FAILED = 3

STATES = ("connecting", "running", "done", "failed")


cdef void _move(gn_fifo_t* rx, gn_fifo_t* tx, uint32_t take) noexcept nogil:
    """Move rx's first `take` readable bytes to tx (room checked by the caller)."""
    cdef gn_fifo_slice_t sl[2]
    cdef uint32_t k = gn_fifo_readable(rx, sl)
    if sl[0].len >= take:
        sl[0].len = take
        k = 1
    else:
        sl[1].len = take - sl[0].len
    gn_fifo_enqueue_segments(tx, sl, k, False)
    gn_fifo_dequeue_drop(rx, take)


# --- server -------------------------------------------------------------------------

ctypedef struct echo_t:
    gn_session_main_t* sm
    uint64_t rx_events
    uint64_t datagrams
    uint64_t bytes
    uint64_t tx_full
    uint64_t tx_waits                  # stream data left in rx until the tx fifo has room


cdef void _echo_session(echo_t* e, gn_session_t* s) noexcept nogil:
    cdef gn_fifo_t* rx = s.rx_fifo
    cdef gn_fifo_t* tx = s.tx_fifo
    cdef uint32_t avail, room, take, n = 0, rest, n_rest = 0
    if rx == NULL or tx == NULL:
        return
    gn_fifo_unset_event(rx)                           # before reading: data arriving now raises a new event
    avail = gn_fifo_max_dequeue(rx)
    room = gn_fifo_max_enqueue(tx)
    if gn_app_is_dgram(e.sm, s):
        take = gn_app_whole_dgrams(rx, avail, room, &n)
        if take:
            _move(rx, tx, take)
        rest = gn_app_whole_dgrams(rx, avail - take, avail - take, &n_rest)   # did not fit: dropped whole
        if rest:
            gn_fifo_dequeue_drop(rx, rest)
            e.tx_full += n_rest
        e.datagrams += n
    else:
        take = avail if avail < room else room
        if take:
            _move(rx, tx, take)
            gn_app_rx_done(e.sm, s, take)
        if avail > take:                              # wait for room: a TX event brings us back
            e.tx_waits += 1
            gn_app_want_tx_room(s, avail - take)
    if take:
        gn_app_tx_kick(e.sm, s)
    e.bytes += take - n * GN_APP_DGRAM_HDR


cdef inline void _close_when_drained(echo_t* e, gn_session_t* s) noexcept nogil:
    """A stream whose peer closed its side is closed once every byte the
    peer sent has been moved to tx (what is in tx goes before our FIN; a
    close with unread data would be a RST)."""
    if s.state == GN_SESSION_STATE_TRANSPORT_CLOSING and s.rx_fifo != NULL and gn_fifo_max_dequeue(s.rx_fifo) == 0:
        gn_session_close(e.sm, s)


cdef void echo_cb(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil:
    cdef echo_t* e = <echo_t*>ctx
    cdef gn_session_t* s
    cdef uint32_t i
    for i in range(n):
        s = gn_session_from_handle(e.sm, msgs[i].handle)
        if s == NULL:
            continue
        if msgs[i].type == GN_EVT_RX:
            e.rx_events += 1
            _echo_session(e, s)
            _close_when_drained(e, s)
        elif msgs[i].type == GN_EVT_TX:
            _echo_session(e, s)
            _close_when_drained(e, s)
        elif msgs[i].type == GN_EVT_DISCONNECTED and not gn_app_is_dgram(e.sm, s):
            _echo_session(e, s)
            _close_when_drained(e, s)
        elif msgs[i].type == GN_EVT_DISCONNECTED or msgs[i].type == GN_EVT_RESET:
            gn_session_close(e.sm, s)


cdef class EchoServer:
    """C state of one echo server app (kept alive with its app)."""
    cdef echo_t* e
    cdef readonly str uri

    def __cinit__(self, SessionLayer layer, str uri):
        self.e = <echo_t*>calloc(1, sizeof(echo_t))
        if self.e == NULL:
            raise MemoryError()
        self.e.sm = layer.sm
        self.uri = uri

    def __dealloc__(self):
        free(self.e)

    def callback(self):
        return (PyCapsule_New(<void*>echo_cb, "gn_wrk_cb", NULL), PyCapsule_New(<void*>self.e, NULL, NULL))

    def stats(self):
        return {"rx_events": self.e.rx_events, "datagrams": self.e.datagrams, "bytes": self.e.bytes,
                "tx_full": self.e.tx_full, "tx_waits": self.e.tx_waits}


# --- client -------------------------------------------------------------------------

ctypedef struct echo_client_t:
    gn_session_main_t* sm
    uint64_t handle
    uint32_t size                      # bytes per message
    uint32_t window                    # messages in flight at most
    uint64_t count                     # messages to send
    uint64_t tx_msgs
    uint64_t rx_msgs
    uint64_t tx_bytes                  # payload bytes (stream: the stream offset)
    uint64_t rx_bytes
    uint64_t mismatches                # datagrams (or stream reads) that differ from what was sent
    uint64_t t0
    uint64_t t1
    int32_t connect_error
    uint8_t state                      # ST_*
    uint8_t dgram


cdef void _client_rx(echo_client_t* c, gn_session_t* s) noexcept nogil:
    cdef gn_fifo_t* rx = s.rx_fifo
    cdef uint32_t avail, off = 0, length, n
    gn_fifo_unset_event(rx)
    avail = gn_fifo_max_dequeue(rx)
    if c.dgram:
        while off + GN_APP_DGRAM_HDR <= avail:
            gn_fifo_peek(rx, off, <uint8_t*>&length, 4)
            if length > avail - off - GN_APP_DGRAM_HDR:
                break
            if length != c.size or gn_app_check_fifo(rx, off + GN_APP_DGRAM_HDR, length, 0):
                c.mismatches += 1
            c.rx_msgs += 1
            c.rx_bytes += length
            off += GN_APP_DGRAM_HDR + length
    elif avail:
        if gn_app_check_fifo(rx, 0, avail, c.rx_bytes):
            c.mismatches += 1
        c.rx_bytes += avail
        c.rx_msgs = c.rx_bytes // c.size
        off = avail
    if off:
        gn_fifo_dequeue_drop(rx, off)
        gn_app_rx_done(c.sm, s, off)


cdef void _client_tx(echo_client_t* c, gn_session_t* s) noexcept nogil:
    cdef gn_fifo_t* tx = s.tx_fifo
    cdef uint32_t hdr[4]
    cdef gn_fifo_slice_t pieces[2]
    cdef uint64_t total = c.count * c.size, want, in_flight
    cdef uint32_t room, wrote = 0, k
    if c.dgram:
        hdr[0] = c.size
        hdr[1] = hdr[2] = hdr[3] = 0               # connected: the transport knows the peer
        pieces[0].data = <uint8_t*>hdr
        pieces[0].len = GN_APP_DGRAM_HDR
        pieces[1].data = <uint8_t*>gn_app_pattern(0)
        pieces[1].len = c.size
        while c.tx_msgs < c.count and c.tx_msgs - c.rx_msgs < c.window:
            if gn_fifo_enqueue_segments(tx, pieces, 2, False) < 0:
                gn_app_want_tx_room(s, GN_APP_DGRAM_HDR + c.size)
                break
            c.tx_msgs += 1
            c.tx_bytes += c.size
            wrote += 1
    else:
        in_flight = c.tx_bytes - c.rx_bytes
        want = total - c.tx_bytes
        if in_flight + want > <uint64_t>c.window * c.size:
            want = <uint64_t>c.window * c.size - in_flight if <uint64_t>c.window * c.size > in_flight else 0
        room = gn_fifo_max_enqueue(tx)
        if want > room:
            gn_app_want_tx_room(s, tx.size // 2)
            want = room
        if want:
            k = gn_app_write_pattern(tx, c.tx_bytes, <uint32_t>want)
            c.tx_bytes += k
            c.tx_msgs = c.tx_bytes // c.size
            wrote = k
    if wrote:
        gn_app_tx_kick(c.sm, s)


cdef void _client_pump(echo_client_t* c, gn_session_t* s) noexcept nogil:
    if c.state != ST_RUNNING:
        return
    _client_rx(c, s)
    if c.rx_msgs >= c.count:
        c.t1 = gn_app_now_ns()
        c.state = ST_DONE
        gn_session_close(c.sm, s)
        return
    _client_tx(c, s)


cdef void echo_client_cb(void* ctx, gn_app_wrk_t* wrk, const gn_app_msg_t* msgs, uint32_t n) noexcept nogil:
    cdef echo_client_t* c = <echo_client_t*>ctx
    cdef gn_session_t* s
    cdef uint32_t i
    for i in range(n):
        if msgs[i].type == GN_EVT_CONNECTED:
            if c.state != ST_CONNECTING:
                continue
            if msgs[i].retval != 0:
                c.connect_error = msgs[i].retval
                c.state = ST_FAILED
                continue
            s = gn_session_from_handle(c.sm, msgs[i].handle)
            if s == NULL:
                continue
            c.handle = msgs[i].handle
            c.dgram = gn_app_is_dgram(c.sm, s)
            if c.dgram and c.size > GN_APP_MAX_DGRAM:
                c.connect_error = -90                 # EMSGSIZE
                c.state = ST_FAILED
                gn_session_close(c.sm, s)
                continue
            c.state = ST_RUNNING
            c.t0 = gn_app_now_ns()
            _client_pump(c, s)
            continue
        if msgs[i].handle != c.handle:
            continue
        s = gn_session_from_handle(c.sm, msgs[i].handle)
        if s == NULL:
            continue
        if msgs[i].type == GN_EVT_RX or msgs[i].type == GN_EVT_TX:
            _client_pump(c, s)
        elif msgs[i].type == GN_EVT_DISCONNECTED or msgs[i].type == GN_EVT_RESET:
            if c.state == ST_RUNNING:
                _client_rx(c, s)
                c.state = ST_DONE if c.rx_msgs >= c.count else ST_FAILED
                c.t1 = gn_app_now_ns()
            gn_session_close(c.sm, s)


cdef class EchoClient:
    """C state of one echo client app (kept alive with its app)."""
    cdef echo_client_t* c
    cdef readonly str uri

    def __cinit__(self, SessionLayer layer, str uri, uint64_t count, uint32_t size, uint32_t window):
        self.c = <echo_client_t*>calloc(1, sizeof(echo_client_t))
        if self.c == NULL:
            raise MemoryError()
        self.c.sm = layer.sm
        self.c.count = count
        self.c.size = size
        self.c.window = window
        self.c.handle = GN_NO_HANDLE
        self.uri = uri

    def __dealloc__(self):
        free(self.c)

    def callback(self):
        return (PyCapsule_New(<void*>echo_client_cb, "gn_wrk_cb", NULL), PyCapsule_New(<void*>self.c, NULL, NULL))

    def stats(self):
        c = self.c
        out = {"state": STATES[c.state], "tx_msgs": c.tx_msgs, "rx_msgs": c.rx_msgs, "tx_bytes": c.tx_bytes,
               "rx_bytes": c.rx_bytes, "mismatches": c.mismatches, "connect_error": c.connect_error,
               "mode": "dgram" if c.dgram else "stream"}
        if c.state == ST_DONE and c.t1 > c.t0:
            out["seconds"] = (c.t1 - c.t0) / 1e9
        return out


# --- starting them ------------------------------------------------------------------

def _check(count, size, window):
    for name, v, hi in (("count", count, 1 << 40), ("size", size, 1 << 24), ("window", window, 1 << 20)):
        if not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"{name} {v!r}: use 1..{hi}")


def _named(app):
    app.echo = app.builtin                          # the echo apps' counters: app.echo.stats()
    return app


def start_echo_server(engine, uri, name=None, **options):
    """Attach a builtin echo server app listening on `uri`; returns it (its
    ``echo`` attribute has the counters). Runs in the engine's loop thread."""
    from graphnet.apps import start_builtin
    return _named(start_builtin(engine, uri, name or f"echo-server {uri}", lambda layer: EchoServer(layer, uri),
                                "listen", options))


def start_echo_client(engine, uri, name=None, count=1, size=64, window=1, **options):
    """Attach a builtin echo client app that connects to `uri` and sends
    ``count`` messages of ``size`` bytes, ``window`` at a time; returns it
    (``app.echo.stats()``: state connecting/running/done/failed, counts,
    mismatches, seconds)."""
    from graphnet.apps import start_builtin
    _check(count, size, window)
    return _named(start_builtin(engine, uri, name or f"echo-client {uri}",
                                lambda layer: EchoClient(layer, uri, count, size, window), "connect", options))


def start_echo_pair(engine, uri, name=None, count=1, size=64, window=1, **options):
    """A cut-through echo pair: an echo server and an echo client of local
    scope on `uri` (named ``<name>-server`` and ``<name>-client``, default
    ``echo-pair-server <uri>``...), so the client's connect is a
    cut-through session. Returns (server app, client app)."""
    _check(count, size, window)
    options["scope"] = "local"
    srv = start_echo_server(engine, uri, f"{name}-server" if name else f"echo-pair-server {uri}", **options)
    try:
        cli = start_echo_client(engine, uri, f"{name}-client" if name else f"echo-pair-client {uri}", count, size,
                                window, **options)
    except BaseException:
        engine.call(srv.detach)
        raise
    return srv, cli
