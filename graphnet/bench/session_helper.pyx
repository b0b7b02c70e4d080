"""C loops for ``graphnet bench session-events`` (see session_events.py):
the rx notification path of the session layer against a synchronous
notification per enqueue, with an app that drains its queue and fifos in
C on both sides."""
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy
from graphnet.includes.platform cimport gn_time_ns
from graphnet.session.types cimport *
from graphnet.session.fifo cimport (gn_fifo_enqueue, gn_fifo_dequeue, gn_fifo_dequeue_drop, gn_fifo_unset_event,
                                    gn_fifo_set_event, gn_fifo_slice_t, gn_fifo_writable, gn_fifo_readable,
                                    gn_fifo_enqueue_nocopy, gn_fifo_init, gn_fifo_bytes_for, gn_fifo_t,
                                    gn_fifo_shared_t, GN_FIFO_MIN_SIZE, GN_FIFO_MAX_SIZE)
from graphnet.session.msg_queue cimport gn_mq_handle_t, gn_mq_enqueue_batch, gn_mq_dequeue_batch
from graphnet.session.session cimport (gn_session_main_t, SessionLayer, gn_session_from_handle,
                                       gn_session_enqueue_notify, gn_session_flush, gn_app_wrk_t, gn_session_handle,
                                       gn_app_wrk_add_event)

cdef enum:
    DRAIN = 256


cdef uint64_t _app_drain(gn_session_main_t* sm, gn_mq_handle_t* h) noexcept nogil:
    """The app: read every message, empty the session's rx fifo, clear its event."""
    cdef gn_app_msg_t msgs[DRAIN]
    cdef uint32_t k, i
    cdef uint64_t n = 0
    cdef gn_session_t* s
    while True:
        k = gn_mq_dequeue_batch(h.mq, <uint8_t*>msgs, sizeof(gn_app_msg_t), DRAIN)
        if k == 0:
            return n
        for i in range(k):
            s = gn_session_from_handle(sm, msgs[i].handle)
            if s != NULL and msgs[i].type == GN_EVT_RX:
                gn_fifo_dequeue_drop(s.rx_fifo, 0xffffffff)
                gn_fifo_unset_event(s.rx_fifo)
        n += k


cdef class RxRounds:
    """The sessions' records resolved once (outside the timed runs), then
    rounds of per_session datagrams of 64 bytes into every session's rx
    fifo, each notified, then the app drains. coalesce: the session
    layer's path (pending events, one flush); else one message-queue
    enqueue (one lock) per datagram. The transport's loop is the same in
    both cases: only the notification differs."""
    cdef SessionLayer layer
    cdef gn_session_t** ss
    cdef uint32_t n
    cdef uint32_t wrk_index
    cdef readonly uint64_t locks       # lock acquisitions of the last run

    def __cinit__(self, SessionLayer layer, list handles, uint32_t wrk_index):
        cdef uint32_t i
        self.layer = layer
        self.n = len(handles)
        self.wrk_index = wrk_index
        self.ss = <gn_session_t**>PyMem_Malloc(self.n * sizeof(gn_session_t*))
        if self.ss == NULL:
            raise MemoryError()
        for i in range(self.n):
            self.ss[i] = gn_session_from_handle(layer.sm, <uint64_t>handles[i])
            if self.ss[i] == NULL:
                raise ValueError(f"no session {handles[i]:#x}")

    def __dealloc__(self):
        PyMem_Free(self.ss)

    def run(self, uint32_t per_session, uint32_t rounds, bint coalesce):
        """Returns the messages the app read; self.locks: lock acquisitions."""
        cdef gn_session_main_t* sm = self.layer.sm
        cdef gn_app_wrk_t* wrk = &sm.wrks[self.wrk_index]
        cdef gn_session_t** ss = self.ss
        cdef uint8_t payload[64]
        cdef gn_app_msg_t m
        cdef uint32_t r, i, k, n = self.n
        cdef uint64_t read = 0, locks0 = wrk.mq.mq.n_lock
        memset(payload, 7, 64)
        memset(&m, 0, sizeof(m))
        m.type = GN_EVT_RX
        with nogil:
            for r in range(rounds):
                for i in range(n):
                    for k in range(per_session):
                        gn_fifo_enqueue(ss[i].rx_fifo, payload, 64)
                        if coalesce:
                            gn_session_enqueue_notify(sm, ss[i])
                        else:
                            m.handle = gn_session_handle(ss[i])
                            gn_mq_enqueue_batch(&wrk.mq, <uint8_t*>&m, sizeof(m), 1)
                if coalesce:
                    while sm.n_pending:
                        gn_session_flush(sm, 0xffffffff)
                read += _app_drain(sm, &wrk.mq)
        self.locks = wrk.mq.mq.n_lock - locks0
        return read


cdef uint64_t _read_words(const uint8_t* p, uint32_t n) noexcept nogil:
    """Read every byte (xor of 8-byte words, then the tail): the zero-copy
    reader's use of the data, so that it is read as memcpy's reader does."""
    cdef uint64_t acc = 0, w
    cdef uint32_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        acc ^= w
        i += 8
    while i < n:
        acc ^= p[i]
        i += 1
    return acc


def ct_rounds(SessionLayer layer, uint64_t cli_handle, uint64_t srv_handle, uint32_t chunk, uint32_t rounds,
              bint zero_copy=False):
    """A cut-through pair moving `rounds` writes of `chunk` bytes: the
    client writes into its tx fifo (the server's rx fifo) and raises the
    server's rx event (what session-queue's ct push does), session-input's
    flush delivers it, the server drains its queue and takes the bytes.
    zero_copy=False: gn_fifo_enqueue from a buffer, gn_fifo_dequeue into
    one (two copies). zero_copy=True: the client copies its buffer into the
    fifo's writable slices (gn_fifo_writable + gn_fifo_enqueue_nocopy), the
    server reads the bytes in place in the readable slices and drops them
    (one copy and one read pass). Returns the bytes the server took."""
    cdef gn_session_main_t* sm = layer.sm
    cdef gn_session_t* cs = gn_session_from_handle(sm, cli_handle)
    cdef gn_session_t* ss = gn_session_from_handle(sm, srv_handle)
    cdef gn_app_wrk_t* wrk
    cdef uint8_t* src
    cdef uint8_t* dst
    cdef uint32_t r, k, i, done
    cdef uint64_t got = 0, acc = 0
    cdef gn_fifo_slice_t sl[2]
    cdef gn_app_msg_t msgs[DRAIN]
    if cs == NULL or ss == NULL:
        raise ValueError("no such sessions")
    wrk = &sm.wrks[ss.app_wrk_index]
    src = <uint8_t*>PyMem_Malloc(chunk)
    dst = <uint8_t*>PyMem_Malloc(chunk)
    memset(src, 5, chunk)
    with nogil:
        for r in range(rounds):
            if zero_copy:
                k = gn_fifo_writable(cs.tx_fifo, sl)
                done = 0
                for i in range(k):
                    if done < chunk:
                        sl[i].len = sl[i].len if sl[i].len < chunk - done else chunk - done
                        memcpy(sl[i].data, src + done, sl[i].len)
                        done += sl[i].len
                gn_fifo_enqueue_nocopy(cs.tx_fifo, done)
            else:
                gn_fifo_enqueue(cs.tx_fifo, src, chunk)
            if gn_fifo_set_event(cs.tx_fifo):
                gn_app_wrk_add_event(sm, ss.app_wrk_index, GN_EVT_RX, 0, gn_session_handle(ss))
            gn_session_flush(sm, 0xffffffff)
            while gn_mq_dequeue_batch(wrk.mq.mq, <uint8_t*>msgs, sizeof(gn_app_msg_t), DRAIN):
                pass
            if zero_copy:
                k = gn_fifo_readable(ss.rx_fifo, sl)
                for i in range(k):
                    acc ^= _read_words(sl[i].data, sl[i].len)
                    got += gn_fifo_dequeue_drop(ss.rx_fifo, sl[i].len)
            else:
                got += gn_fifo_dequeue(ss.rx_fifo, dst, chunk)
            gn_fifo_unset_event(ss.rx_fifo)
    PyMem_Free(src)
    PyMem_Free(dst)
    return got if acc != 1 else got         # (acc used: the reads are not optimised away)


def memcpy_rounds(uint32_t chunk, uint32_t rounds):
    """The reference: `rounds` memcpy of `chunk` bytes between two buffers."""
    cdef uint8_t* src = <uint8_t*>PyMem_Malloc(chunk)
    cdef uint8_t* dst = <uint8_t*>PyMem_Malloc(chunk)
    cdef uint32_t r
    cdef uint64_t got = 0
    memset(src, 5, chunk)
    with nogil:
        for r in range(rounds):
            memcpy(dst, src, chunk)
            got += dst[r % chunk]
    PyMem_Free(src)
    PyMem_Free(dst)
    return got


# --- the two-core fifo ceiling (app-ct-throughput's ring-c row) ---------------------

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    int pthread_create(pthread_t* t, const void* attr, void* (*fn)(void*) noexcept nogil, void* arg)
    int pthread_join(pthread_t t, void** ret)

cdef extern from "<stdlib.h>" nogil:
    void* aligned_alloc(size_t alignment, size_t size)
    void free(void* p)

ctypedef struct _reader_t:
    gn_fifo_t f                   # the consumer's own handle on the fifo
    uint8_t* dst
    uint32_t read_bytes
    uint64_t total


cdef void* _fifo_reader(void* arg) noexcept nogil:
    cdef _reader_t* r = <_reader_t*>arg
    cdef uint64_t got = 0
    while got < r.total:
        got += <uint32_t>gn_fifo_dequeue(&r.f, r.dst, r.read_bytes)
    return NULL


def ring_rounds(uint32_t chunk, uint32_t writes, uint32_t ring_bytes, uint32_t read_bytes):
    """The ceiling of a session fifo between two cores on this machine:
    this thread gn_fifo_enqueues `writes` chunks of `chunk` bytes into a
    fifo of `ring_bytes` (a power of two), a second thread gn_fifo_dequeues
    them `read_bytes` at a time, both spinning on the fifo's head and tail
    (no Python, no events, no wakeups): what two processes over a
    cut-through fifo could reach with the same copies. Returns the
    nanoseconds to the last byte read."""
    cdef _reader_t r
    cdef gn_fifo_t f
    cdef pthread_t t
    cdef uint8_t* src
    cdef void* block
    cdef uint32_t i, sent
    cdef uint64_t t0, t1
    cdef int rc
    if ring_bytes & (ring_bytes - 1) or ring_bytes < GN_FIFO_MIN_SIZE or ring_bytes > GN_FIFO_MAX_SIZE \
            or chunk == 0 or read_bytes == 0:
        raise ValueError(f"ring_bytes: a power of two in {GN_FIFO_MIN_SIZE}..{GN_FIFO_MAX_SIZE}; "
                         "chunk and read_bytes > 0")
    memset(&r, 0, sizeof(r))
    src = <uint8_t*>PyMem_Malloc(chunk)
    r.dst = <uint8_t*>PyMem_Malloc(read_bytes)
    block = aligned_alloc(64, (gn_fifo_bytes_for(ring_bytes) + 63) & ~(<uint64_t>63))
    if src == NULL or r.dst == NULL or block == NULL:
        PyMem_Free(src)
        PyMem_Free(r.dst)
        free(block)
        raise MemoryError("ring_rounds: buffers")
    gn_fifo_init(&f, <gn_fifo_shared_t*>block, ring_bytes, 0, 0)
    memcpy(&r.f, &f, sizeof(gn_fifo_t))
    memset(f.data, 0, ring_bytes)
    memset(src, 5, chunk)
    memset(r.dst, 0, read_bytes)
    r.read_bytes = read_bytes
    r.total = <uint64_t>chunk * writes
    with nogil:
        t0 = gn_time_ns()
        rc = pthread_create(&t, NULL, _fifo_reader, &r)
        if rc == 0:
            for i in range(writes):
                sent = 0
                while sent < chunk:
                    sent += <uint32_t>gn_fifo_enqueue(&f, src + sent, chunk - sent)
            pthread_join(t, NULL)
        t1 = gn_time_ns()
    PyMem_Free(src)
    PyMem_Free(r.dst)
    free(block)
    if rc != 0:
        raise OSError(rc, "ring_rounds: pthread_create")
    return t1 - t0
