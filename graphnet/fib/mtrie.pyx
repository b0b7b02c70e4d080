"""The 16-8-8 mtrie (see ``mtrie.pxd`` for layout and invariants).

Add (prefix P/L, value v): the leaves P covers at the level where L ends
take v where their current prefix length is <= L (shorter or equal routes
are overridden, longer ones kept); pointers to deeper plies are followed
and the same rule applied to every leaf below. A prefix longer than 16
(24) first splits the root (second-level) leaf it falls in into a ply that
inherits the leaf.

Delete (P/L, with its cover C/Lc: the longest remaining prefix containing
P, supplied by the caller's route table): the leaves in P's range whose
length is exactly L (only P can have set them) take C's value and length.
A ply left with nothing more specific than its base folds back into one
leaf of its parent, so the trie after any sequence of adds and deletes is
the trie of the routes that remain.

``Mtrie`` is a small Python wrapper (tests, tools); the FIB embeds a
``gn_mtrie_t`` directly.
"""
from libc.stdint cimport uint8_t, uint32_t
from graphnet.includes.hugemem cimport gn_huge_alloc, gn_huge_free, gn_huge_realloc


cdef inline bint _is_ply(uint32_t leaf) noexcept nogil:
    return (leaf & 1) == 0


cdef inline uint32_t _mask(uint32_t plen) noexcept nogil:
    return 0 if plen == 0 else (<uint32_t>0xffffffffU) << (32 - plen)


cdef int gn_mtrie_init(gn_mtrie_t* m, uint32_t default_value) noexcept nogil:
    """An empty trie where every address maps to default_value (length 0)."""
    cdef uint32_t i, leaf = gn_mtrie_terminal(default_value)
    # root leaves and lengths in one block (on one huge page when possible)
    m.root = <uint32_t*>gn_huge_alloc(GN_MTRIE_ROOT_SIZE * (sizeof(uint32_t) + 1))
    m.plies = NULL
    m.n_plies = m.cap_plies = m.n_free = 0
    m.free_head = GN_MTRIE_NO_PLY
    if m.root == NULL:
        m.root_plen = NULL
        return -1
    m.root_plen = <uint8_t*>(m.root + GN_MTRIE_ROOT_SIZE)
    for i in range(GN_MTRIE_ROOT_SIZE):
        m.root[i] = leaf
        m.root_plen[i] = 0
    return 0


cdef void gn_mtrie_free(gn_mtrie_t* m) noexcept nogil:
    gn_huge_free(m.root, GN_MTRIE_ROOT_SIZE * (sizeof(uint32_t) + 1))
    gn_huge_free(m.plies, <size_t>m.cap_plies * sizeof(gn_mtrie_ply_t))
    m.root = NULL
    m.root_plen = NULL
    m.plies = NULL
    m.n_plies = m.cap_plies = m.n_free = 0
    m.free_head = GN_MTRIE_NO_PLY


cdef size_t gn_mtrie_memory(const gn_mtrie_t* m) noexcept nogil:
    return GN_MTRIE_ROOT_SIZE * (sizeof(uint32_t) + 1) + <size_t>m.n_plies * sizeof(gn_mtrie_ply_t)


cdef int _reserve(gn_mtrie_t* m, uint32_t n) noexcept nogil:
    """Make room for n more plies without moving them during an update."""
    cdef uint32_t cap
    cdef gn_mtrie_ply_t* grown
    if m.n_free + (m.cap_plies - m.n_plies) >= n:
        return 0
    cap = m.cap_plies * 2 + 64
    if cap > (GN_MTRIE_MAX_VALUE >> 1):
        return -1
    # plies live on huge pages: random lookups in a 100 MB table would
    # otherwise miss the TLB on most packets
    grown = <gn_mtrie_ply_t*>gn_huge_realloc(m.plies, <size_t>m.cap_plies * sizeof(gn_mtrie_ply_t),
                                             <size_t>m.n_plies * sizeof(gn_mtrie_ply_t),
                                             <size_t>cap * sizeof(gn_mtrie_ply_t))
    if grown == NULL:
        return -1
    m.plies = grown
    m.cap_plies = cap
    return 0


cdef uint32_t _ply_new(gn_mtrie_t* m, uint32_t leaf, uint8_t plen, uint32_t base_len) noexcept nogil:
    """A ply whose every leaf is `leaf` (capacity reserved by the caller)."""
    cdef uint32_t idx, i
    cdef gn_mtrie_ply_t* p
    if m.free_head != GN_MTRIE_NO_PLY:
        idx = m.free_head
        m.free_head = m.plies[idx].next_free
        m.n_free -= 1
    else:
        idx = m.n_plies
        m.n_plies += 1
    p = &m.plies[idx]
    for i in range(GN_MTRIE_PLY_SIZE):
        p.leaves[i] = leaf
        p.plen[i] = plen
    p.n_non_empty = 0
    p.base_len = base_len
    p.next_free = GN_MTRIE_NO_PLY
    return idx


cdef void _ply_release(gn_mtrie_t* m, uint32_t idx) noexcept nogil:
    m.plies[idx].next_free = m.free_head
    m.free_head = idx
    m.n_free += 1


cdef inline bint _non_empty(gn_mtrie_ply_t* p, uint32_t i) noexcept nogil:
    return _is_ply(p.leaves[i]) or p.plen[i] > p.base_len


cdef void _fill(gn_mtrie_t* m, uint32_t ply, uint32_t lo, uint32_t n, uint32_t plen, uint32_t leaf) noexcept nogil:
    """Apply the add rule to leaves [lo, lo + n) of a ply."""
    cdef gn_mtrie_ply_t* p = &m.plies[ply]
    cdef uint32_t i, old
    cdef int before
    for i in range(lo, lo + n):
        old = p.leaves[i]
        if _is_ply(old):
            _fill(m, old >> 1, 0, GN_MTRIE_PLY_SIZE, plen, leaf)
        elif p.plen[i] <= plen:
            before = _non_empty(p, i)
            p.leaves[i] = leaf
            p.plen[i] = <uint8_t>plen
            p.n_non_empty += <int>_non_empty(p, i) - before


cdef uint32_t _child(gn_mtrie_t* m, uint32_t ply, uint32_t i) noexcept nogil:
    """The ply under leaf i of `ply` (split from the leaf if terminal)."""
    cdef gn_mtrie_ply_t* p = &m.plies[ply]
    cdef uint32_t leaf = p.leaves[i], c
    cdef int before
    if _is_ply(leaf):
        return leaf >> 1
    c = _ply_new(m, leaf, p.plen[i], p.base_len + 8)
    p = &m.plies[ply]
    before = _non_empty(p, i)
    p.leaves[i] = c << 1
    p.n_non_empty += 1 - before
    return c


cdef uint32_t _root_child(gn_mtrie_t* m, uint32_t i) noexcept nogil:
    cdef uint32_t leaf = m.root[i], c
    if _is_ply(leaf):
        return leaf >> 1
    c = _ply_new(m, leaf, m.root_plen[i], 16)
    m.root[i] = c << 1
    return c


cdef int gn_mtrie_add(gn_mtrie_t* m, uint32_t dst, uint32_t plen, uint32_t value) noexcept nogil:
    """Add (or replace) dst/plen -> value. Host bits of dst are ignored.
    Returns -1 (trie unchanged) when out of memory or value/plen invalid."""
    cdef uint32_t leaf, i, p2, p3
    if plen > 32 or value > GN_MTRIE_MAX_VALUE or _reserve(m, 2) != 0:
        return -1
    dst &= _mask(plen)
    leaf = gn_mtrie_terminal(value)
    if plen <= 16:
        for i in range(dst >> 16, (dst >> 16) + (1u << (16 - plen))):
            if _is_ply(m.root[i]):
                _fill(m, m.root[i] >> 1, 0, GN_MTRIE_PLY_SIZE, plen, leaf)
            elif m.root_plen[i] <= plen:
                m.root[i] = leaf
                m.root_plen[i] = <uint8_t>plen
        return 0
    p2 = _root_child(m, dst >> 16)
    if plen <= 24:
        _fill(m, p2, (dst >> 8) & 0xff, 1u << (24 - plen), plen, leaf)
        return 0
    p3 = _child(m, p2, (dst >> 8) & 0xff)
    _fill(m, p3, dst & 0xff, 1u << (32 - plen), plen, leaf)
    return 0


cdef void _fold(gn_mtrie_t* m, uint32_t parent, uint32_t i) noexcept nogil:
    """Leaf i of `parent` points to a ply with nothing specific left:
    replace the pointer by the ply's (uniform) terminal leaf."""
    cdef gn_mtrie_ply_t* p = &m.plies[parent]
    cdef uint32_t c = p.leaves[i] >> 1
    p.leaves[i] = m.plies[c].leaves[0]
    p.plen[i] = m.plies[c].plen[0]
    p.n_non_empty -= 1 - <int>_non_empty(p, i)
    _ply_release(m, c)


cdef void _unfill(gn_mtrie_t* m, uint32_t ply, uint32_t lo, uint32_t n, uint32_t plen, uint32_t cover,
                  uint32_t cover_plen) noexcept nogil:
    """Apply the delete rule to leaves [lo, lo + n) of a ply."""
    cdef gn_mtrie_ply_t* p = &m.plies[ply]
    cdef uint32_t i, old
    cdef int before
    for i in range(lo, lo + n):
        old = p.leaves[i]
        if _is_ply(old):
            _unfill(m, old >> 1, 0, GN_MTRIE_PLY_SIZE, plen, cover, cover_plen)
            if m.plies[old >> 1].n_non_empty == 0:
                _fold(m, ply, i)
        elif p.plen[i] == plen:
            before = _non_empty(p, i)
            p.leaves[i] = cover
            p.plen[i] = <uint8_t>cover_plen
            p.n_non_empty += <int>_non_empty(p, i) - before


cdef void gn_mtrie_del(gn_mtrie_t* m, uint32_t dst, uint32_t plen, uint32_t cover_value,
                       uint32_t cover_plen) noexcept nogil:
    """Remove dst/plen; the addresses it was best for fall back to the cover
    (cover_value, cover_plen < plen). Removing a prefix that is not in the
    trie changes nothing."""
    cdef uint32_t cover, i, i1, i2, p2, p3, c
    if plen > 32 or cover_plen >= plen and plen > 0:
        return
    dst &= _mask(plen)
    cover = gn_mtrie_terminal(cover_value)
    if plen <= 16:
        for i in range(dst >> 16, (dst >> 16) + (1u << (16 - plen))):
            if _is_ply(m.root[i]):
                c = m.root[i] >> 1
                _unfill(m, c, 0, GN_MTRIE_PLY_SIZE, plen, cover, cover_plen)
                if m.plies[c].n_non_empty == 0:
                    m.root[i] = m.plies[c].leaves[0]
                    m.root_plen[i] = m.plies[c].plen[0]
                    _ply_release(m, c)
            elif m.root_plen[i] == plen:
                m.root[i] = cover
                m.root_plen[i] = <uint8_t>cover_plen
        return
    i1 = dst >> 16
    if not _is_ply(m.root[i1]):
        return
    p2 = m.root[i1] >> 1
    if plen <= 24:
        _unfill(m, p2, (dst >> 8) & 0xff, 1u << (24 - plen), plen, cover, cover_plen)
    else:
        i2 = (dst >> 8) & 0xff
        if not _is_ply(m.plies[p2].leaves[i2]):
            return
        p3 = m.plies[p2].leaves[i2] >> 1
        _unfill(m, p3, dst & 0xff, 1u << (32 - plen), plen, cover, cover_plen)
        if m.plies[p3].n_non_empty == 0:
            _fold(m, p2, i2)
    if m.plies[p2].n_non_empty == 0:
        m.root[i1] = m.plies[p2].leaves[0]
        m.root_plen[i1] = m.plies[p2].plen[0]
        _ply_release(m, p2)


cdef class Mtrie:
    """A standalone mtrie over u32 values (tests, tools).

    ``Mtrie(default=0)``; ``add(addr, plen, value)``; ``delete(addr, plen,
    cover_value, cover_plen)``; ``lookup(addr)``; ``plies`` in use.
    Addresses are host-order ints."""
    cdef gn_mtrie_t m

    def __cinit__(self, uint32_t default=0):
        if default > GN_MTRIE_MAX_VALUE:
            raise ValueError("value too large")
        if gn_mtrie_init(&self.m, default) != 0:
            raise MemoryError()

    def __dealloc__(self):
        gn_mtrie_free(&self.m)

    def add(self, uint32_t addr, uint32_t plen, uint32_t value):
        if plen > 32 or value > GN_MTRIE_MAX_VALUE:
            raise ValueError("plen must be <= 32 and value <= 0x7fffffff")
        if gn_mtrie_add(&self.m, addr, plen, value) != 0:
            raise MemoryError()

    def delete(self, uint32_t addr, uint32_t plen, uint32_t cover_value, uint32_t cover_plen):
        if plen > 32 or (plen > 0 and cover_plen >= plen):
            raise ValueError("need plen <= 32 and cover_plen < plen")
        gn_mtrie_del(&self.m, addr, plen, cover_value, cover_plen)

    def lookup(self, uint32_t addr):
        return gn_mtrie_lookup(&self.m, addr)

    def lookup_many(self, addrs):
        return [gn_mtrie_lookup(&self.m, a) for a in addrs]

    @property
    def plies(self):
        return self.m.n_plies - self.m.n_free

    @property
    def memory(self):
        return gn_mtrie_memory(&self.m)
