# A 16-8-8 multibit trie for IPv4 longest-prefix match (VPP ip4_mtrie_16).
#
# Lookup is at most three dependent loads whatever the number of routes:
# root[dst >> 16], then a 256-leaf ply for byte 2, then one for byte 3.
# A leaf is a u32: (value << 1) | 1 is terminal (value: an adjacency index,
# up to GN_MTRIE_MAX_VALUE), (ply << 1) points to the next ply.
#
# Invariants (kept by gn_mtrie_add / gn_mtrie_del):
#   - every terminal leaf holds the value of the longest added prefix that
#     covers its whole address range, and plen[] records that length;
#   - a ply exists only while it holds something more specific than its
#     base length (16 or 24) or points to a deeper ply (n_non_empty > 0);
#     otherwise it is folded back into one terminal leaf of its parent;
#   - lookups may run between any two control-plane calls; a control call
#     never leaves the trie half-updated when it returns (capacity for new
#     plies is reserved before any leaf changes, so an add fails cleanly).
from libc.stdint cimport uint8_t, uint32_t

cdef enum:
    GN_MTRIE_ROOT_SIZE = 65536
    GN_MTRIE_PLY_SIZE = 256
    GN_MTRIE_MAX_VALUE = 0x7fffffff
    GN_MTRIE_NO_PLY = 0xffffffff

ctypedef struct gn_mtrie_ply_t:
    uint32_t leaves[256]
    uint8_t plen[256]             # prefix length that set each terminal leaf
    uint32_t n_non_empty          # leaves with plen > base_len, plus ply pointers
    uint32_t base_len             # 16 (second level) or 24 (third level)
    uint32_t next_free            # free-list link while the ply is unused

ctypedef struct gn_mtrie_t:
    uint32_t* root                # GN_MTRIE_ROOT_SIZE leaves
    uint8_t* root_plen
    gn_mtrie_ply_t* plies
    uint32_t n_plies              # high-water mark of plies[]
    uint32_t cap_plies
    uint32_t free_head
    uint32_t n_free


cdef inline uint32_t gn_mtrie_terminal(uint32_t value) noexcept nogil:
    return (value << 1) | 1


cdef inline bint gn_mtrie_is_terminal(uint32_t leaf) noexcept nogil:
    return leaf & 1


cdef inline uint32_t gn_mtrie_value(uint32_t leaf) noexcept nogil:
    return leaf >> 1


cdef inline const uint32_t* gn_mtrie_step(const gn_mtrie_t* m, uint32_t leaf, uint32_t byte) noexcept nogil:
    """Where the next leaf is, from a non-terminal leaf and the next address
    byte (for prefetching in multi-pass lookups)."""
    return &m.plies[leaf >> 1].leaves[byte]


cdef inline uint32_t gn_mtrie_lookup(const gn_mtrie_t* m, uint32_t dst) noexcept nogil:
    """The value of the longest prefix matching dst (host order)."""
    cdef uint32_t leaf = m.root[dst >> 16]
    if not (leaf & 1):
        leaf = m.plies[leaf >> 1].leaves[(dst >> 8) & 0xff]
        if not (leaf & 1):
            leaf = m.plies[leaf >> 1].leaves[dst & 0xff]
    return leaf >> 1


cdef int gn_mtrie_init(gn_mtrie_t* m, uint32_t default_value) noexcept nogil
cdef void gn_mtrie_free(gn_mtrie_t* m) noexcept nogil
cdef int gn_mtrie_add(gn_mtrie_t* m, uint32_t dst, uint32_t plen, uint32_t value) noexcept nogil
cdef void gn_mtrie_del(gn_mtrie_t* m, uint32_t dst, uint32_t plen, uint32_t cover_value,
                       uint32_t cover_plen) noexcept nogil
cdef size_t gn_mtrie_memory(const gn_mtrie_t* m) noexcept nogil
