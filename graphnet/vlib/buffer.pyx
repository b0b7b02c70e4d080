"""Buffer pool: one preallocated mmap arena of fixed-size buffers.

Invariants:
  - every buffer index is in exactly one place: the pool's free list, one
    loop's cache, or in use (held by a node, a frame, a fifo, ...);
    ``free + cached + in_use == n_buffers`` at all times;
  - a free buffer carries GN_BUFFER_F_IS_FREE; freeing it again is counted
    in ``double_frees`` and otherwise ignored (the free list stays sound);
  - allocation never blocks and may return fewer buffers than asked;
    ``gn_buffer_alloc`` gives fresh metadata, ``gn_buffer_alloc_uninit``
    leaves it to the caller (an input node writing a template), who must
    write it before the buffer is used or freed;
  - freeing walks chains (GN_BUFFER_F_NEXT_PRESENT);
  - while waiters are queued, freed buffers go straight back to the shared
    free list and each freed buffer wakes at most one waiter, in FIFO order;
    a woken waiter is unlinked, so one release never wakes it twice.

A loop allocates through its own ``gn_buffer_cache_t`` with no lock; the
cache refills from and spills to the shared free list in batches under a
spinlock, so several loops (threads) can share one pool.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.linux cimport mmap, munmap, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE, MAP_FAILED
from graphnet.includes.platform cimport gn_spin_lock, gn_spin_unlock

cdef enum:
    CACHE_SIZE = 1024     # must match gn_buffer_cache_t.buffers
    CACHE_BATCH = 256

BUFFER_HEADROOM = GN_BUFFER_HEADROOM
BUFFER_DATA_SIZE = GN_BUFFER_DATA_SIZE
BUFFER_STRIDE = GN_BUFFER_STRIDE
FRAME_SIZE = GN_FRAME_SIZE
F_NEXT_PRESENT = GN_BUFFER_F_NEXT_PRESENT
F_TRACED = GN_BUFFER_F_TRACED
F_L4_CSUM_OFFLOAD = GN_BUFFER_F_L4_CSUM_OFFLOAD


cdef uint32_t _pool_take(gn_buffer_pool_t* p, uint32_t* out, uint32_t n) noexcept nogil:
    """Take up to n indices from the shared free list (caller holds no lock)."""
    gn_spin_lock(&p.lock)
    if n > p.n_free:
        n = p.n_free
    p.n_free -= n
    memcpy(out, p.free_list + p.n_free, n * sizeof(uint32_t))
    gn_spin_unlock(&p.lock)
    return n


cdef void _pool_give(gn_buffer_pool_t* p, const uint32_t* bis, uint32_t n, uint32_t n_wake) noexcept nogil:
    """Return n indices to the shared free list and wake up to n_wake waiters."""
    cdef gn_buffer_waiter_t* w
    cdef gn_buffer_waiter_t* woken = NULL
    cdef gn_buffer_waiter_t* last = NULL
    gn_spin_lock(&p.lock)
    memcpy(p.free_list + p.n_free, bis, n * sizeof(uint32_t))
    p.n_free += n
    # Unlink up to n waiters under the lock, wake them after releasing it.
    while n_wake > 0 and p.wait_head != NULL:
        w = p.wait_head
        p.wait_head = w.next
        if p.wait_head != NULL:
            p.wait_head.prev = NULL
        else:
            p.wait_tail = NULL
        p.n_waiters -= 1
        w.queued = 0
        p.wake_seq += 1
        w.last_wake_seq = p.wake_seq
        w.n_wakes += 1
        w.prev = NULL
        w.next = NULL
        if last == NULL:
            woken = w
        else:
            last.next = w
        last = w
        n_wake -= 1
    gn_spin_unlock(&p.lock)
    while woken != NULL:
        w = woken
        woken = w.next
        w.next = NULL
        if w.wake != NULL:
            w.wake(w)


cdef uint32_t gn_buffer_alloc(gn_buffer_cache_t* c, uint32_t* out, uint32_t n) noexcept nogil:
    """Allocate up to n buffers with fresh metadata; returns how many."""
    cdef uint32_t i, got = gn_buffer_alloc_uninit(c, out, n)
    cdef uint8_t* base = c.pool.base
    for i in range(got):
        gn_buffer_init_meta(gn_buffer_at(base, out[i]))
    return got


cdef uint32_t gn_buffer_alloc_uninit(gn_buffer_cache_t* c, uint32_t* out, uint32_t n) noexcept nogil:
    """As gn_buffer_alloc, but the metadata is left as it was at the free
    (GN_BUFFER_F_IS_FREE still set): the caller must give every buffer its
    first GN_BUFFER_INIT_BYTES (gn_buffer_init_meta, or a template copy)
    before it uses or frees it. For input nodes that write the metadata of
    each buffer anyway."""
    cdef uint32_t got, want
    cdef gn_buffer_pool_t* p = c.pool
    if c.n < n:
        want = n - c.n + CACHE_BATCH
        if c.n + want > CACHE_SIZE:
            want = CACHE_SIZE - c.n
        c.n += _pool_take(p, c.buffers + c.n, want)
    got = n if n <= c.n else c.n
    c.n -= got
    memcpy(out, c.buffers + c.n, got * sizeof(uint32_t))
    if got < n:
        # More than a cache holds: the rest comes straight from the shared
        # list, so only a short pool makes the answer short.
        got += _pool_take(p, out + got, n - got)
    return got


cdef inline void _cache_put(gn_buffer_cache_t* c, uint32_t bi) noexcept nogil:
    if c.n == CACHE_SIZE:
        c.n -= CACHE_BATCH
        _pool_give(c.pool, c.buffers + c.n, CACHE_BATCH, 0)
    c.buffers[c.n] = bi
    c.n += 1


cdef void gn_buffer_free(gn_buffer_cache_t* c, const uint32_t* bis, uint32_t n) noexcept nogil:
    """Free n buffers and their chains."""
    cdef uint32_t i, bi, flags
    cdef uint32_t released = 0
    cdef gn_buffer_t* b
    cdef gn_buffer_pool_t* p = c.pool
    cdef uint32_t* slot
    cdef uint8_t* base = p.base
    cdef uint32_t n_buffers = p.n_buffers
    if p.n_waiters == 0 and c.n + n <= CACHE_SIZE:
        # Fast path while the cache has room for all n: single buffers go
        # straight onto it. The first chain, bad index or double free ends
        # it; the loop below handles the rest.
        slot = c.buffers + c.n
        i = 0
        while i < n:
            bi = bis[i]
            if bi >= n_buffers:
                break
            b = gn_buffer_at(base, bi)
            flags = b.flags
            if flags & (GN_BUFFER_F_IS_FREE | GN_BUFFER_F_NEXT_PRESENT):
                break
            b.flags = flags | GN_BUFFER_F_IS_FREE
            slot[i] = bi
            i += 1
        c.n += i
        if i == n:
            return
        bis += i
        n -= i
    for i in range(n):
        bi = bis[i]
        while True:
            if bi >= p.n_buffers:
                p.n_double_free += 1      # not a buffer index at all
                break
            b = gn_buffer_at(p.base, bi)
            if b.flags & GN_BUFFER_F_IS_FREE:
                p.n_double_free += 1
                break
            b.flags = b.flags | GN_BUFFER_F_IS_FREE
            _cache_put(c, bi)
            released += 1
            if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
                break
            bi = b.next_buffer
    if p.n_waiters != 0:
        # Waiters allocate from the shared list: hand everything back and
        # wake one waiter per buffer this call released.
        i = c.n
        c.n = 0
        _pool_give(p, c.buffers, i, released)


cdef void gn_buffer_flush_cache(gn_buffer_cache_t* c) noexcept nogil:
    """Give every cached buffer back to the shared free list (wakes nobody:
    these buffers were already free)."""
    cdef uint32_t n = c.n
    c.n = 0
    if n:
        _pool_give(c.pool, c.buffers, n, 0)


cdef void gn_buffer_waiter_add(gn_buffer_pool_t* p, gn_buffer_waiter_t* w) noexcept nogil:
    """Queue w at the tail (no-op if already queued)."""
    gn_spin_lock(&p.lock)
    if not w.queued:
        w.queued = 1
        w.next = NULL
        w.prev = p.wait_tail
        if p.wait_tail != NULL:
            p.wait_tail.next = w
        else:
            p.wait_head = w
        p.wait_tail = w
        p.n_waiters += 1
    gn_spin_unlock(&p.lock)


cdef void gn_buffer_waiter_remove(gn_buffer_pool_t* p, gn_buffer_waiter_t* w) noexcept nogil:
    """Unlink w if queued (a waiter that goes away must call this)."""
    gn_spin_lock(&p.lock)
    if w.queued:
        if w.prev != NULL:
            w.prev.next = w.next
        else:
            p.wait_head = w.next
        if w.next != NULL:
            w.next.prev = w.prev
        else:
            p.wait_tail = w.prev
        w.prev = NULL
        w.next = NULL
        w.queued = 0
        p.n_waiters -= 1
    gn_spin_unlock(&p.lock)


cdef uint32_t gn_buffer_chain_length(gn_buffer_pool_t* p, uint32_t bi) noexcept nogil:
    """Total bytes of a chain starting at bi."""
    cdef uint32_t total = 0
    cdef gn_buffer_t* b
    while True:
        b = gn_buffer_at(p.base, bi)
        total += b.current_length
        if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
            return total
        bi = b.next_buffer


cdef class BufferPool:
    """The arena and its shared free list. ``BufferPool(n_buffers)``."""

    def __cinit__(self, uint32_t n_buffers=16384):
        cdef uint32_t i
        if n_buffers == 0:
            raise ValueError("a buffer pool needs at least one buffer")
        self.caches = []
        self.pool = <gn_buffer_pool_t*>calloc(1, sizeof(gn_buffer_pool_t))
        if self.pool == NULL:
            raise MemoryError()
        self.pool.n_buffers = n_buffers
        self.pool.arena_size = <size_t>n_buffers * GN_BUFFER_STRIDE
        self.pool.base = <uint8_t*>mmap(NULL, self.pool.arena_size, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)
        if <void*>self.pool.base == MAP_FAILED:
            self.pool.base = NULL
            raise MemoryError(f"cannot mmap a buffer arena of {self.pool.arena_size} bytes")
        self.pool.free_list = <uint32_t*>malloc(n_buffers * sizeof(uint32_t))
        if self.pool.free_list == NULL:
            raise MemoryError()
        # Low indices are handed out first (stack top at the end).
        for i in range(n_buffers):
            self.pool.free_list[i] = n_buffers - 1 - i
            gn_buffer_at(self.pool.base, i).flags = GN_BUFFER_F_IS_FREE
        self.pool.n_free = n_buffers
        self.arena = memoryview(<uint8_t[:self.pool.arena_size]>self.pool.base)

    def __dealloc__(self):
        if self.pool != NULL:
            # The arena is left mapped if views of it may still exist; it is
            # unmapped only when nothing else references the pool object.
            if self.pool.base != NULL:
                munmap(self.pool.base, self.pool.arena_size)
            free(self.pool.free_list)
            free(self.pool)
            self.pool = NULL

    def new_cache(self):
        """A per-loop cache; counted in ``stats()``."""
        c = BufferCache(self)
        self.caches.append(c)
        return c

    @property
    def n_buffers(self):
        return self.pool.n_buffers

    def stats(self):
        """``{'total', 'free', 'cached', 'in_use', 'double_frees', 'waiters'}``.

        Exact when no loop is running; a snapshot otherwise."""
        cached = sum((<BufferCache>c).cache.n for c in self.caches)
        free_ = self.pool.n_free + cached
        return {"total": self.pool.n_buffers, "free": free_, "cached": cached,
                "in_use": self.pool.n_buffers - free_,
                "double_frees": self.pool.n_double_free, "waiters": self.pool.n_waiters}

    def data_offset(self, uint32_t bi):
        """Byte offset of data[] of buffer bi within ``arena``."""
        return <size_t>bi * GN_BUFFER_STRIDE + GN_BUFFER_META_SIZE + GN_BUFFER_HEADROOM


cdef class BufferCache:
    """A lock-free per-loop cache over a BufferPool (see module docstring)."""

    def __cinit__(self, BufferPool pool):
        self.pool = pool
        self.cache = <gn_buffer_cache_t*>calloc(1, sizeof(gn_buffer_cache_t))
        if self.cache == NULL:
            raise MemoryError()
        self.cache.pool = pool.pool

    def __dealloc__(self):
        if self.cache != NULL:
            if self.pool is not None and self.pool.pool != NULL:
                gn_buffer_flush_cache(self.cache)
            free(self.cache)

    def alloc(self, uint32_t n):
        """Allocate up to n buffers; returns a list of indices (control plane)."""
        cdef uint32_t* out = <uint32_t*>malloc((n or 1) * sizeof(uint32_t))
        cdef uint32_t got
        try:
            got = gn_buffer_alloc(self.cache, out, n)
            return [out[i] for i in range(got)]
        finally:
            free(out)

    def free(self, indices):
        """Free buffers (and their chains) by index (control plane)."""
        cdef uint32_t n = len(indices)
        cdef uint32_t* bis = <uint32_t*>malloc((n or 1) * sizeof(uint32_t))
        try:
            for i in range(n):
                bis[i] = indices[i]
            gn_buffer_free(self.cache, bis, n)
        finally:
            free(bis)

    def flush(self):
        gn_buffer_flush_cache(self.cache)

    def write(self, uint32_t bi, data, int offset=0):
        """Copy bytes into buffer bi at current_data=offset and set its length."""
        cdef gn_buffer_t* b
        cdef const uint8_t[:] src = data
        if bi >= self.pool.pool.n_buffers:
            raise IndexError(bi)
        if len(src) + offset > GN_BUFFER_DATA_SIZE or offset < -GN_BUFFER_HEADROOM:
            raise ValueError("data does not fit in one buffer")
        b = gn_buffer_at(self.pool.pool.base, bi)
        b.current_data = offset
        b.current_length = len(src)
        if len(src):
            memcpy(gn_buffer_current(b), &src[0], len(src))

    def link(self, uint32_t a, uint32_t b):
        """Chain buffer b after buffer a: set a's next-present flag and
        next_buffer (control plane, tests). Both must be allocated."""
        cdef gn_buffer_t* ba
        if a >= self.pool.pool.n_buffers or b >= self.pool.pool.n_buffers:
            raise IndexError(b if a < self.pool.pool.n_buffers else a)
        if a == b:
            raise ValueError("a buffer cannot follow itself")
        ba = gn_buffer_at(self.pool.pool.base, a)
        if (ba.flags | gn_buffer_at(self.pool.pool.base, b).flags) & GN_BUFFER_F_IS_FREE:
            raise ValueError("cannot link a free buffer")
        ba.next_buffer = b
        ba.flags = ba.flags | GN_BUFFER_F_NEXT_PRESENT

    def read(self, uint32_t bi):
        """The bytes of a buffer chain from current_data (control plane)."""
        cdef gn_buffer_t* b
        out = bytearray()
        while True:
            b = gn_buffer_at(self.pool.pool.base, bi)
            out += (<uint8_t*>gn_buffer_current(b))[:b.current_length]
            if not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
                return bytes(out)
            bi = b.next_buffer


cdef void _test_wake(gn_buffer_waiter_t* w) noexcept nogil:
    pass


cdef class BufferWaiter:
    """A waiter for buffers, usable from Python (tests, the control plane).

    ``wait()`` queues it; a release of k buffers wakes the first k waiters.
    ``woken`` counts wakes and ``wake_seq`` orders them across waiters."""
    cdef gn_buffer_waiter_t w
    cdef BufferPool pool

    def __cinit__(self, BufferPool pool):
        self.pool = pool
        memset(&self.w, 0, sizeof(self.w))
        self.w.wake = _test_wake

    def wait(self):
        gn_buffer_waiter_add(self.pool.pool, &self.w)

    def cancel(self):
        gn_buffer_waiter_remove(self.pool.pool, &self.w)

    @property
    def queued(self):
        return bool(self.w.queued)

    @property
    def woken(self):
        return self.w.n_wakes

    @property
    def wake_seq(self):
        return self.w.last_wake_seq

    def __dealloc__(self):
        if self.pool is not None and self.pool.pool != NULL:
            gn_buffer_waiter_remove(self.pool.pool, &self.w)
