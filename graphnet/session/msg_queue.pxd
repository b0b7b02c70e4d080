# Message queue: a ring of fixed-size messages in a segment (see msg_queue.pyx).
from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef enum:
    GN_MQ_MAGIC = 0x7175656d           # "mequ"
    GN_MQ_MAX_SLOTS = 1 << 20
    GN_MQ_MAX_SLOT_SIZE = 4096
    GN_MQ_LOCK_SPINS = 4096            # a producer gives up (counted "busy") after these tries

ctypedef struct gn_mq_t:
    # Lives in a segment; the slots follow. No pointers.
    uint32_t magic
    uint32_t n_slots                   # a power of two
    uint32_t slot_size                 # bytes per message, a multiple of 8
    uint32_t pad0
    uint64_t n_enqueued
    uint64_t n_full                    # enqueues refused: ring full (the producer retries later)
    uint32_t n_busy                    # enqueues refused: lock not taken within GN_MQ_LOCK_SPINS
    uint32_t pad_busy
    uint64_t n_lock                    # lock acquisitions
    uint64_t n_signals                 # empty -> non-empty transitions signalled
    uint8_t pad1[8]
    # line 1: producers, under the lock
    uint32_t lock
    uint32_t tail                      # free-running
    uint8_t pad2[56]
    # line 2: the consumer
    uint32_t head                      # free-running
    uint8_t pad3[60]

ctypedef struct gn_mq_handle_t:
    # This process's view: the queue in its mapping and the consumer's eventfd.
    gn_mq_t* mq
    int efd                            # -1: nobody is signalled (polled)
    uint32_t n_slots                   # the geometry checked when the queue was opened: used
    uint32_t slot_size                 # instead of the header's (another process may rewrite it)

cdef uint64_t gn_mq_bytes_for(uint32_t n_slots, uint32_t slot_size) noexcept nogil
cdef void gn_mq_init(gn_mq_t* mq, uint32_t n_slots, uint32_t slot_size) noexcept nogil
cdef uint32_t gn_mq_enqueue_batch(gn_mq_handle_t* h, const uint8_t* msgs, uint32_t msg_size, uint32_t n) noexcept nogil
cdef uint32_t gn_mq_dequeue_batch(gn_mq_t* mq, uint8_t* out, uint32_t out_size, uint32_t n) noexcept nogil
cdef uint32_t gn_mq_dequeue_batch_h(gn_mq_handle_t* h, uint8_t* out, uint32_t out_size, uint32_t n) noexcept nogil
cdef uint32_t gn_mq_count(gn_mq_t* mq) noexcept nogil
cdef void gn_mq_clear_signal(gn_mq_handle_t* h) noexcept nogil


cdef class MessageQueue:
    cdef gn_mq_handle_t h
    cdef readonly object segment       # the Segment it lives in
    cdef readonly uint64_t offset
    cdef bint own_fd
    cdef gn_mq_t* _q(self) except NULL
