# Declarations of gn_platform.h: cycle counter, clocks, atomics, debug assert.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "gn_platform.h" nogil:
    uint64_t gn_clock_cycles()
    uint64_t gn_time_ns()
    uint64_t gn_thread_cpu_ns()
    bint gn_likely(bint)
    bint gn_unlikely(bint)
    void gn_prefetch(const void*)
    void gn_prefetch_store(const void*)        # the line will be written
    uint32_t gn_atomic_load_u32(volatile uint32_t*)
    void gn_atomic_store_u32(volatile uint32_t*, uint32_t)
    uint32_t gn_atomic_exchange_u32(volatile uint32_t*, uint32_t)
    uint32_t gn_atomic_fetch_add_u32(volatile uint32_t*, uint32_t)
    uint32_t gn_atomic_fetch_or_u32(volatile uint32_t*, uint32_t)
    void gn_atomic_fence()                     # full barrier: orders an earlier store before a later load
    bint gn_spin_trylock(volatile uint32_t*)
    void gn_spin_lock(volatile uint32_t*)
    void gn_spin_unlock(volatile uint32_t*)
    void GN_ASSERT(bint)
