# What the builtin apps share: transport-generic reads and writes on a
# session's fifos through the session API only (no transport knowledge but
# the service kind), so the same app serves UDP, cut-through and TCP.
#
# Fifo formats: a DGRAM service (UDP) carries whole datagrams, each a
# 16-byte header (payload length first, u32, host order) and the payload;
# a VC service (TCP, cut-through) carries a byte stream.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_t, gn_fifo_peek, gn_fifo_set_event, gn_fifo_needs_deq_ntf,
                                    gn_fifo_want_deq_ntf, gn_fifo_max_enqueue, GN_FIFO_DEQ_NTF_THRESH,
                                    GN_FIFO_DEQ_NTF_IF_EMPTY)
from graphnet.session.session cimport (gn_session_main_t, gn_session_from_handle, gn_session_tx_schedule,
                                       gn_session_dequeue_notify)

cdef enum:
    GN_APP_DGRAM_HDR = 16
    GN_APP_MAX_DGRAM = 65507
    GN_APP_PATTERN = 251               # test data: byte j of a stream (or of a datagram's payload) is j % 251


cdef inline uint64_t gn_app_now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline bint gn_app_is_dgram(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The session's fifos hold datagrams (header + payload), not a stream."""
    return s.proto < GN_TRANSPORT_N_PROTOS and sm.transports[s.proto].service == GN_TRANSPORT_SERVICE_DGRAM


cdef inline uint32_t gn_app_whole_dgrams(gn_fifo_t* f, uint32_t avail, uint32_t limit, uint32_t* n) noexcept nogil:
    """Bytes of the whole datagrams at the fifo's head (of `avail` readable)
    that fit in `limit` bytes; their number in n[0]. A header claiming more
    than is readable ends the walk (the rest has not arrived)."""
    cdef uint32_t off = 0, length
    n[0] = 0
    while off + GN_APP_DGRAM_HDR <= avail:
        gn_fifo_peek(f, off, <uint8_t*>&length, 4)
        if length > avail - off - GN_APP_DGRAM_HDR or length + GN_APP_DGRAM_HDR > limit - off:
            break
        off += GN_APP_DGRAM_HDR + length
        n[0] += 1
    return off


cdef inline void gn_app_tx_kick(gn_session_main_t* sm, gn_session_t* s) noexcept nogil:
    """The app wrote into its tx fifo: one tx event unless one is outstanding."""
    if gn_fifo_set_event(s.tx_fifo):
        gn_session_tx_schedule(sm, s)


cdef inline void gn_app_want_tx_room(gn_session_t* s, uint32_t need) noexcept nogil:
    """Ask for a TX event once `need` bytes of the tx fifo are free (the app
    had more to write than fitted)."""
    gn_fifo_want_deq_ntf(s.tx_fifo, GN_FIFO_DEQ_NTF_THRESH, need if need < s.tx_fifo.size else s.tx_fifo.size)


cdef inline void gn_app_rx_done(gn_session_main_t* sm, gn_session_t* s, uint32_t n) noexcept nogil:
    """The app dequeued n bytes from its rx fifo. Cut-through: that fifo is
    the peer's tx fifo, so the peer's dequeue notification (the TX event it
    asked for) is due from here. Other transports' dequeue notifications
    come from their push (session-queue)."""
    cdef gn_session_t* peer
    if n and s.flags & GN_SESSION_F_CUT_THROUGH and gn_fifo_needs_deq_ntf(s.rx_fifo, n):
        peer = gn_session_from_handle(sm, s.peer_handle)
        if peer != NULL and peer.tx_fifo != NULL and s.rx_fifo != NULL and peer.tx_fifo.shr == s.rx_fifo.shr:
            gn_session_dequeue_notify(sm, peer)


# test data (app_io.pyx): the stream bytes [off, off + n) of the pattern
cdef uint32_t gn_app_write_pattern(gn_fifo_t* f, uint64_t off, uint32_t n) noexcept nogil
cdef uint32_t gn_app_check_pattern(const uint8_t* data, uint64_t off, uint32_t n) noexcept nogil
cdef uint32_t gn_app_check_fifo(gn_fifo_t* f, uint32_t at, uint32_t n, uint64_t off) noexcept nogil
cdef const uint8_t* gn_app_pattern(uint64_t off) noexcept nogil     # 65536 bytes readable from there
