# A hashed timing wheel (Varghese & Lauck, scheme 6): O(1) start and stop,
# expiry cost proportional to the timers in the slots passed.
from libc.stdint cimport uint32_t, uint64_t

ctypedef struct gn_timer_t:
    uint64_t expiry_tick
    uint32_t user            # opaque to the wheel, handed back on expiry
    uint32_t next            # slot list links (indices into timers)
    uint32_t prev
    uint32_t slot            # GN_TIMER_FREE when not armed
    uint32_t handle          # generation << GN_TIMER_INDEX_BITS | index, of the last arming

ctypedef struct gn_timer_wheel_t:
    gn_timer_t* timers
    uint32_t n_timers_alloc
    uint32_t free_head       # free timers are chained through .next
    uint32_t* slot_head
    uint32_t slot_mask       # n_slots - 1 (n_slots is a power of two)
    uint64_t tick_ns
    uint64_t start_ns
    uint64_t current_tick    # every timer with expiry_tick < current_tick has fired
    uint32_t n_active

cdef enum:
    GN_TIMER_FREE = 0xffffffff
    GN_TIMER_NONE = 0xffffffff
    # A handle is generation << 24 | index: a stale handle (its timer fired
    # or was stopped, and the slot was reused) no longer matches and is
    # ignored by gn_timer_stop. At most 2**24 - 1 timers, so no handle is
    # GN_TIMER_NONE.
    GN_TIMER_INDEX_BITS = 24
    GN_TIMER_INDEX_MASK = 0xffffff
    GN_TIMER_MAX = 0xffffff

cdef int gn_timer_wheel_init(gn_timer_wheel_t* w, uint64_t tick_ns, uint32_t n_slots, uint64_t now_ns) noexcept nogil
cdef void gn_timer_wheel_free(gn_timer_wheel_t* w) noexcept nogil
cdef void gn_timer_sync(gn_timer_wheel_t* w, uint64_t now_ns) noexcept nogil
cdef uint32_t gn_timer_start(gn_timer_wheel_t* w, uint32_t user, uint64_t delay_ticks) noexcept nogil
cdef void gn_timer_stop(gn_timer_wheel_t* w, uint32_t handle) noexcept nogil
cdef uint32_t gn_timer_expire(gn_timer_wheel_t* w, uint64_t now_ns, uint32_t* users, uint32_t max_users) noexcept nogil
cdef uint64_t gn_timer_ns_until_next(gn_timer_wheel_t* w, uint64_t now_ns, uint64_t horizon_ns) noexcept nogil
