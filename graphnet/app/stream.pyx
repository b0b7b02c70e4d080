# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The app's stream fast path in C: the common case of sendall and
recv_into on a stream session (the fifo has room, or has bytes), one call
from Python with no Python object made per call. graphnet.app.socket calls
these first and falls back to its general path (waiting, errors, the
rest of a write that did not fit) only when they cannot finish.

Invariants:
- The caller's buffer is taken with the buffer protocol (PyBUF_SIMPLE:
  any C-contiguous bytes-like object, as the socket module accepts) and
  released before return; bytes are copied in C straight between it and
  the ring (gn_fifo_enqueue / gn_fifo_dequeue, both pieces at the wrap).
- The tx event is the same rule as the datagram path and socket._notify_tx:
  after bytes went in, the fifo's has_event flag is set and only a 0->1
  change posts the prebuilt TX message to the engine's queue; if that
  queue is full the result says so and the caller posts it the slow way.
- After a read: the event flag is cleared when the fifo is left empty only
  if `clear_event` (a non-blocking or polled socket: socket._read_done's
  rule), and RX_DONE is posted when the writer asked for a dequeue
  notification (gn_fifo_needs_deq_ntf).
"""
from cpython.bytes cimport PyBytes_AS_STRING
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.stdint cimport uint8_t, uint32_t
from graphnet.session.fifo cimport (Fifo, gn_fifo_t, gn_fifo_enqueue, gn_fifo_dequeue, gn_fifo_set_event,
                                    gn_fifo_max_dequeue, gn_fifo_unset_event, gn_fifo_needs_deq_ntf)
from graphnet.session.msg_queue cimport MessageQueue, gn_mq_enqueue_batch

DEF MSG = 64


def sendall(Fifo tx, MessageQueue ctrl, bytes tx_msg, object data):
    """As much of data as fits into tx, then the TX event if none is
    outstanding. Returns the bytes left over (0: all written; > 0: the
    fifo filled first), or -1 - left when the TX message could not be
    posted (the engine's queue full: the caller posts it)."""
    cdef Py_buffer view
    cdef gn_fifo_t* f = tx._f()
    cdef Py_ssize_t left
    cdef uint32_t piece
    cdef int n
    cdef bint wrote = False
    if len(tx_msg) != MSG:
        raise ValueError(f"TX message of {len(tx_msg)} bytes ({MSG} expected)")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        left = view.len
        with nogil:
            while left > 0:
                piece = <uint32_t>left if left < 0x40000000 else 0x40000000
                n = gn_fifo_enqueue(f, <const uint8_t*>view.buf + (view.len - left), piece)
                if n <= 0:
                    break
                wrote = True
                left -= n
    finally:
        PyBuffer_Release(&view)
    if wrote and gn_fifo_set_event(f) and gn_mq_enqueue_batch(&ctrl.h, <const uint8_t*>PyBytes_AS_STRING(tx_msg),
                                                              MSG, 1) != 1:
        return -1 - left
    return left


def recv_into(Fifo rx, MessageQueue ctrl, bytes rx_done_msg, object buffer, Py_ssize_t nbytes,
              bint clear_event):
    """Up to nbytes (0: all of buffer) readable bytes of rx into buffer.
    Returns the bytes read (0: the fifo is empty), or -1 - n when n bytes
    were read but RX_DONE could not be posted (the caller posts it)."""
    cdef Py_buffer view
    cdef gn_fifo_t* f = rx._f()
    cdef Py_ssize_t room
    cdef int n
    if len(rx_done_msg) != MSG:
        raise ValueError(f"RX_DONE message of {len(rx_done_msg)} bytes ({MSG} expected)")
    if nbytes < 0:
        raise ValueError("negative buffersize in recv_into")
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    try:
        room = view.len if nbytes == 0 or nbytes > view.len else nbytes
        if room > <Py_ssize_t>f.size:
            room = f.size
        with nogil:
            n = gn_fifo_dequeue(f, <uint8_t*>view.buf, <uint32_t>room) if room else 0
    finally:
        PyBuffer_Release(&view)
    if n <= 0:
        return 0
    if clear_event and not gn_fifo_max_dequeue(f):
        gn_fifo_unset_event(f)
    if gn_fifo_needs_deq_ntf(f, <uint32_t>n) and gn_mq_enqueue_batch(
            &ctrl.h, <const uint8_t*>PyBytes_AS_STRING(rx_done_msg), MSG, 1) != 1:
        return -1 - n
    return n
