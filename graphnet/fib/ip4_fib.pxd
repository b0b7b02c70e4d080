# The IPv4 FIB: an mtrie from destination to adjacency index, the
# adjacency table and the ECMP bucket table. Nodes read it per packet
# (ip4-lookup, ip4-rewrite); Python (Ip4Fib) changes it between loop
# iterations, so a node may cache `gn_ip4_fib_t*` but must re-read the
# arrays (adjs, buckets) per frame: they move when they grow.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.vlib.buffer cimport gn_buffer_t
from graphnet.fib.mtrie cimport gn_mtrie_t, gn_mtrie_lookup

cdef enum:
    # adjacency types; ip4-lookup maps each to a next node and an error row
    GN_ADJ_DROP = 0               # no route (the built-in default)
    GN_ADJ_BLACKHOLE = 1          # an explicit drop route
    GN_ADJ_LOCAL = 2              # for this host: ip4-local
    GN_ADJ_GLEAN = 3              # on-link, MAC unknown: ARP (resolves, then rewrite)
    GN_ADJ_REWRITE = 4            # via a neighbour: push its L2 header, send on an interface
    GN_ADJ_ECMP = 5               # several paths: pick one by flow hash
    GN_ADJ_SPECIAL = 6            # a built-in never-forwarded destination (multicast, class E, ...)
    GN_ADJ_UNREACHABLE = 7        # an unreachable route: ICMP host unreachable (3/1)
    GN_ADJ_PROHIBIT = 8           # a prohibit route: ICMP administratively prohibited (3/13)
    GN_ADJ_N_TYPES = 9

    GN_ADJ_INDEX_NO_ROUTE = 0     # fixed adjacencies
    GN_ADJ_INDEX_BLACKHOLE = 1
    GN_ADJ_INDEX_SPECIAL = 2
    GN_ADJ_MAX_REWRITE = 32
    GN_ECMP_MAX_PATHS = 64
    GN_ECMP_BUCKETS_PER_PATH = 16 # buckets = next power of two >= paths, x16

ctypedef struct gn_ip4_adj_t:     # one cache line
    uint8_t type                  # GN_ADJ_*
    uint8_t rewrite_len           # REWRITE: bytes pushed before the IPv4 header
    uint16_t n_paths              # ECMP
    uint32_t sw_if_index          # REWRITE, GLEAN, LOCAL: the interface (~0: any)
    uint32_t ecmp_base            # ECMP: first bucket in fib.buckets
    uint32_t ecmp_mask            # ECMP: n_buckets - 1
    uint32_t next_hop             # GLEAN: address to resolve (0: the destination)
    uint32_t pad
    uint8_t rewrite[GN_ADJ_MAX_REWRITE]   # REWRITE: dst MAC, src MAC, 0x0800

ctypedef struct gn_ip4_fib_t:
    gn_mtrie_t mtrie
    gn_ip4_adj_t* adjs
    uint32_t n_adjs               # high-water mark of adjs[]
    uint32_t cap_adjs
    uint32_t* buckets             # ECMP buckets -> adjacency index
    uint32_t n_buckets
    uint32_t cap_buckets
    uint32_t flow_hash_seed
    uint32_t fib_index

ctypedef struct gn_ip4_opaque_t:  # IPv4's use of gn_buffer_t.opaque
    uint32_t adj_index            # set by ip4-lookup, read by ip4-rewrite / ip4-local / ARP
    uint32_t flow_hash            # set by ip4-lookup for ECMP (0 otherwise)
    uint32_t fib_index


cdef inline gn_ip4_opaque_t* gn_ip4_opaque(gn_buffer_t* b) noexcept nogil:
    return <gn_ip4_opaque_t*>b.opaque


cdef inline uint32_t gn_ip4_fib_lookup(const gn_ip4_fib_t* fib, uint32_t dst) noexcept nogil:
    """Adjacency index of the longest prefix matching dst (host order),
    before ECMP resolution."""
    return gn_mtrie_lookup(&fib.mtrie, dst)


cdef class Ip4Fib:
    cdef gn_ip4_fib_t* fib
    cdef readonly object engine
    cdef list _routes             # [plen] -> {network int: Route}
    cdef dict _adj_by_key         # adjacency key -> index
    cdef list _adj_keys           # index -> key (None: free)
    cdef list _adj_refs           # index -> routes (or ECMP adjs) using it
    cdef list _free_adjs
    cdef dict _free_buckets       # size -> [base, ...]
    cdef dict _special            # built-in (network, plen) -> True
    cdef readonly uint64_t n_routes
    cdef uint32_t _alloc_adj(self) except? 0xffffffff
    cdef uint32_t _alloc_buckets(self, uint32_t n) except? 0xffffffff
