/* Small platform helpers for graphnet's data plane: cycle counter, monotonic
 * clock, atomics, branch hints and a debug assert that compiles away. */
#ifndef GN_PLATFORM_H
#define GN_PLATFORM_H
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t gn_clock_cycles(void) { return __rdtsc(); }
#else
static inline uint64_t gn_clock_cycles(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
#endif
static inline uint64_t gn_time_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t gn_thread_cpu_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define gn_likely(x) __builtin_expect(!!(x), 1)
#define gn_unlikely(x) __builtin_expect(!!(x), 0)
#define gn_prefetch(p) __builtin_prefetch((p))
#define gn_prefetch_store(p) __builtin_prefetch((p), 1)
static inline uint32_t gn_atomic_load_u32(volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void gn_atomic_store_u32(volatile uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t gn_atomic_exchange_u32(volatile uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
static inline uint32_t gn_atomic_fetch_add_u32(volatile uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline uint32_t gn_atomic_fetch_or_u32(volatile uint32_t *p, uint32_t v) { return __atomic_fetch_or(p, v, __ATOMIC_ACQ_REL); }
/* A full barrier (store-load too): a store before it is visible before any load after it. */
static inline void gn_atomic_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline uint32_t gn_spin_trylock(volatile uint32_t *p) { return __atomic_exchange_n(p, 1, __ATOMIC_ACQUIRE) == 0; }
static inline void gn_spin_lock(volatile uint32_t *p) {
    while (__atomic_exchange_n(p, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(p, __ATOMIC_RELAXED)) __builtin_ia32_pause();
    }
}
static inline void gn_spin_unlock(volatile uint32_t *p) { __atomic_store_n(p, 0, __ATOMIC_RELEASE); }
#if GN_DEBUG
#include <assert.h>
#define GN_ASSERT(x) assert(x)
#else
#define GN_ASSERT(x) ((void)0)
#endif
#endif
