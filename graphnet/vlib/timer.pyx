"""Timer wheel for the main loop and for protocol timers (TCP retransmit...).

Invariants:
  - time is counted in ticks of ``tick_ns`` since ``start_ns``;
  - an armed timer sits in slot ``expiry_tick & slot_mask``; timers more than
    one revolution away share slots and are skipped until their tick comes;
  - ``gn_timer_expire(now)`` fires, in tick order, every timer whose
    expiry tick is <= the current tick, frees it and hands back its ``user``
    value; a handle is invalid after its timer fired or was stopped, and
    stopping an invalid (stale) handle is ignored even after its timer slot
    was reused: handles carry an 8-bit generation (``GN_TIMER_INDEX_BITS``);
  - a timer never fires early; it fires at most one tick late plus however
    late ``expire`` is called.
"""
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from graphnet.includes.platform cimport gn_time_ns


cdef int gn_timer_wheel_init(gn_timer_wheel_t* w, uint64_t tick_ns, uint32_t n_slots, uint64_t now_ns) noexcept nogil:
    cdef uint32_t i
    if n_slots == 0 or (n_slots & (n_slots - 1)) != 0 or tick_ns == 0:
        return -1
    w.slot_head = <uint32_t*>malloc(n_slots * sizeof(uint32_t))
    if w.slot_head == NULL:
        return -1
    for i in range(n_slots):
        w.slot_head[i] = GN_TIMER_NONE
    w.slot_mask = n_slots - 1
    w.tick_ns = tick_ns
    w.start_ns = now_ns
    w.current_tick = 0
    w.timers = NULL
    w.n_timers_alloc = 0
    w.free_head = GN_TIMER_NONE
    w.n_active = 0
    return 0


cdef void gn_timer_wheel_free(gn_timer_wheel_t* w) noexcept nogil:
    free(w.timers)
    free(w.slot_head)
    w.timers = NULL
    w.slot_head = NULL


cdef int _grow(gn_timer_wheel_t* w) noexcept nogil:
    cdef uint32_t n = w.n_timers_alloc * 2 if w.n_timers_alloc else 1024
    cdef uint32_t i
    cdef gn_timer_t* t
    if n > GN_TIMER_MAX:
        n = GN_TIMER_MAX
    if n <= w.n_timers_alloc:
        return -1
    t = <gn_timer_t*>realloc(w.timers, n * sizeof(gn_timer_t))
    if t == NULL:
        return -1
    w.timers = t
    for i in range(w.n_timers_alloc, n):
        t[i].slot = GN_TIMER_FREE
        t[i].handle = i
        t[i].next = i + 1 if i + 1 < n else w.free_head
    w.free_head = w.n_timers_alloc
    w.n_timers_alloc = n
    return 0


cdef void gn_timer_sync(gn_timer_wheel_t* w, uint64_t now_ns) noexcept nogil:
    """An idle wheel (no timer armed) is not advanced by expire; bring its
    current tick up to now_ns before arming, so delays count from now."""
    cdef uint64_t tick
    if w.n_active == 0 and now_ns >= w.start_ns:
        tick = (now_ns - w.start_ns) // w.tick_ns + 1
        if tick > w.current_tick:
            w.current_tick = tick


cdef uint32_t gn_timer_start(gn_timer_wheel_t* w, uint32_t user, uint64_t delay_ticks) noexcept nogil:
    """Arm a timer firing delay_ticks from the current tick; returns its
    handle, or GN_TIMER_NONE if memory ran out."""
    cdef uint32_t h, slot
    cdef gn_timer_t* t
    if w.free_head == GN_TIMER_NONE and _grow(w) != 0:
        return GN_TIMER_NONE
    h = w.free_head
    t = &w.timers[h]
    w.free_head = t.next
    t.expiry_tick = w.current_tick + delay_ticks
    t.user = user
    slot = <uint32_t>(t.expiry_tick & w.slot_mask)
    t.slot = slot
    t.prev = GN_TIMER_NONE
    t.next = w.slot_head[slot]
    if t.next != GN_TIMER_NONE:
        w.timers[t.next].prev = h
    w.slot_head[slot] = h
    w.n_active += 1
    # a new generation, so handles of earlier armings of this timer go stale
    t.handle = ((((t.handle >> GN_TIMER_INDEX_BITS) + 1) & 0xff) << GN_TIMER_INDEX_BITS) | h
    return t.handle


cdef inline void _unlink(gn_timer_wheel_t* w, uint32_t h) noexcept nogil:
    cdef gn_timer_t* t = &w.timers[h]
    if t.prev != GN_TIMER_NONE:
        w.timers[t.prev].next = t.next
    else:
        w.slot_head[t.slot] = t.next
    if t.next != GN_TIMER_NONE:
        w.timers[t.next].prev = t.prev
    t.slot = GN_TIMER_FREE
    t.next = w.free_head
    w.free_head = h
    w.n_active -= 1


cdef void gn_timer_stop(gn_timer_wheel_t* w, uint32_t handle) noexcept nogil:
    """Disarm a timer; a stale or invalid handle is ignored."""
    cdef uint32_t i = handle & GN_TIMER_INDEX_MASK
    if i < w.n_timers_alloc and w.timers[i].slot != GN_TIMER_FREE and w.timers[i].handle == handle:
        _unlink(w, i)


cdef uint32_t gn_timer_expire(gn_timer_wheel_t* w, uint64_t now_ns, uint32_t* users, uint32_t max_users) noexcept nogil:
    """Fire timers due by now_ns, writing their user values; returns how many.

    Stops early (leaving the rest for the next call) when users is full."""
    cdef uint64_t target
    cdef uint32_t n = 0, h, nxt
    cdef gn_timer_t* t
    if now_ns < w.start_ns:
        return 0
    target = (now_ns - w.start_ns) // w.tick_ns      # ticks fully elapsed
    while w.current_tick <= target:
        if w.n_active == 0:
            w.current_tick = target + 1
            break
        h = w.slot_head[w.current_tick & w.slot_mask]
        while h != GN_TIMER_NONE:
            t = &w.timers[h]
            nxt = t.next
            if t.expiry_tick <= w.current_tick:
                if n == max_users:
                    return n
                users[n] = t.user
                n += 1
                _unlink(w, h)
            h = nxt
        w.current_tick += 1
    return n


cdef uint64_t gn_timer_ns_until_next(gn_timer_wheel_t* w, uint64_t now_ns, uint64_t horizon_ns) noexcept nogil:
    """Nanoseconds until the next timer is due, looking at most horizon_ns
    ahead (returns horizon_ns if none is due sooner, 0 if one is due now)."""
    cdef uint64_t tick, last, due_ns, h
    if w.n_active == 0:
        return horizon_ns
    last = w.current_tick + horizon_ns // w.tick_ns + 1
    tick = w.current_tick
    while tick <= last and tick <= w.current_tick + w.slot_mask:
        h = w.slot_head[tick & w.slot_mask]
        while h != GN_TIMER_NONE:
            if w.timers[h].expiry_tick == tick:
                # expire() fires it once tick ticks have fully elapsed
                due_ns = w.start_ns + tick * w.tick_ns
                return due_ns - now_ns if due_ns > now_ns else 0
            h = w.timers[h].next
        tick += 1
    return horizon_ns


cdef class TimerWheel:
    """Python handle on a timer wheel (tests, benchmarks, the control plane)."""
    cdef gn_timer_wheel_t w
    cdef uint32_t* out

    def __cinit__(self, uint64_t tick_ns=1000000, uint32_t n_slots=1024, start_ns=None):
        if gn_timer_wheel_init(&self.w, tick_ns, n_slots, gn_time_ns() if start_ns is None else start_ns) != 0:
            raise ValueError("n_slots must be a power of two and tick_ns > 0")
        self.out = <uint32_t*>malloc(65536 * sizeof(uint32_t))

    def __dealloc__(self):
        gn_timer_wheel_free(&self.w)
        free(self.out)

    def start(self, uint32_t user, uint64_t delay_ticks):
        return gn_timer_start(&self.w, user, delay_ticks)

    def stop(self, uint32_t handle):
        gn_timer_stop(&self.w, handle)

    def expire(self, uint64_t now_ns):
        """User values of every timer due by now_ns, in firing order."""
        result = []
        cdef uint32_t n
        while True:
            n = gn_timer_expire(&self.w, now_ns, self.out, 65536)
            result.extend(self.out[i] for i in range(n))
            if n < 65536:
                return result

    def ns_until_next(self, uint64_t now_ns, uint64_t horizon_ns):
        return gn_timer_ns_until_next(&self.w, now_ns, horizon_ns)

    def bench_start_stop_expire(self, uint32_t n):
        """Arm n timers over 1..1000 ticks, stop every other one, expire the
        rest; returns the ns taken (a perf helper, no Python per timer)."""
        cdef uint32_t i, fired = 0
        cdef uint32_t* hs = <uint32_t*>malloc(n * sizeof(uint32_t))
        cdef uint64_t t0, t1, far
        with nogil:
            t0 = gn_time_ns()
            for i in range(n):
                hs[i] = gn_timer_start(&self.w, i, 1 + (i * 7919) % 1000)
            i = 0
            while i < n:
                gn_timer_stop(&self.w, hs[i])
                i += 2
            far = self.w.start_ns + (self.w.current_tick + 1001) * self.w.tick_ns
            while True:
                i = gn_timer_expire(&self.w, far, self.out, 65536)
                fired += i
                if i < 65536:
                    break
            t1 = gn_time_ns()
        free(hs)
        return t1 - t0, fired

    @property
    def n_active(self):
        return self.w.n_active

    @property
    def current_tick(self):
        return self.w.current_tick
