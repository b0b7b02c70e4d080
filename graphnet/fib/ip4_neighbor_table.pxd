# The IPv4 neighbour table (ARP cache): C state shared by arp-input,
# ip4-arp and the ip4-neighbor service node (graphnet.nodes.ip4_neighbor);
# Python (Ip4Neighbors) owns the FIB side. Everything here runs in the loop's thread.
#
# Entries live in a fixed array (capacity set at creation) chained from a
# power-of-two bucket array by hash of (sw_if_index, address); a free list
# links unused entries. An incomplete entry holds the buffers waiting for
# its resolution (at most queue_limit, GN_NBR_QUEUE_MAX at compile time).
#
# A complete dynamic entry is reachable for reachable_ns after it was last
# confirmed (updated_ns), then stale; a stale entry that the FIB forwards
# through (not NO_FIB) is probed: unicast ARP requests to its MAC every
# probe_interval_ns (n_probes counts them), still used meanwhile; any ARP
# from it refreshes it (n_probes back to 0); after max_unicast_probes
# unanswered ones it is marked PROBE_FAILED and the control plane deletes
# it. Static entries are never stale.
#
# Complete dynamic entries are also on an LRU list, least recently
# confirmed first. When the table is full, creating an entry evicts the
# first of them not in use (no packets queued, not WANTED: graphnet never
# had traffic for it); an entry learned from unsolicited ARP only one
# confirmed evict_min_age_ns ago or more (Linux's 5 s), one graphnet wants
# failing that the first WANTED one with no packets queued, within
# GN_NBR_LRU_SCAN entries (gn_nbr_create): unlinked at once,
# its (interface, address) left in evicted_* for the control plane, which
# removes its FIB state; static and incomplete entries are never evicted.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.vlib.main cimport gn_main_t
from graphnet.io.interface cimport gn_interface_main_t
from graphnet.fib.ip4_address cimport gn_ip4_address_main_t

cdef enum:
    GN_NBR_QUEUE_MAX = 32
    GN_NBR_NONE = 0xffffffff
    GN_NBR_F_VALID = 1 << 0
    GN_NBR_F_COMPLETE = 1 << 1            # mac is known
    GN_NBR_F_STATIC = 1 << 2              # configured: never learned over, never aged
    GN_NBR_F_FIB_PENDING = 1 << 3         # the control plane must (re)sync the FIB for it
    GN_NBR_F_FLUSH = 1 << 4               # its queued buffers may go to ip4-lookup
    GN_NBR_F_NO_FIB = 1 << 5              # sync found no adjacency to make for it
    GN_NBR_F_PROBE_FAILED = 1 << 6        # stale, unicast probes unanswered: the control plane deletes it
    GN_NBR_F_LRU = 1 << 7                 # on the LRU list (complete, dynamic)
    GN_NBR_F_WANTED = 1 << 8              # graphnet had packets for it (resolved on demand, or configured)
    GN_NBR_EVICT_PENDING_MAX = 256        # evictions the control plane has not unsynced yet
    GN_NBR_LRU_SCAN = 64                  # entries in use skipped at most, per eviction
    GN_NBR_ARP_LEN = 42                   # Ethernet + ARP request, unpadded
    GN_NBR_ANNOUNCE_MAX = 256             # interfaces with a gratuitous ARP pending (= GN_MAX_INTERFACES)

cdef enum:                                # what the control plane counts, under rows the service node gives
    GN_NBR_COUNT_DELETED                  # queued packets dropped: their entry was deleted
    GN_NBR_COUNT_PROBE_FAILED             # entries deleted after unanswered unicast probes
    GN_NBR_COUNT_EVICTED                  # entries evicted (table full)
    GN_NBR_N_COUNT

ctypedef struct gn_ip4_neighbor_t:
    uint32_t ip                           # host order
    uint32_t sw_if_index
    uint32_t next                         # bucket chain, or free list
    uint16_t flags                        # GN_NBR_F_*
    uint8_t mac[6]
    uint8_t n_probes                      # incomplete: requests (or throttled attempts);
                                          # complete: unicast probes unanswered since the last confirmation
    uint8_t n_queued
    uint16_t pad
    uint32_t lru_prev                     # LRU list (GN_NBR_F_LRU), least recently confirmed first
    uint32_t lru_next
    uint64_t updated_ns                   # complete: last learned/confirmed; incomplete: created
    uint64_t next_probe_ns                # incomplete, or complete and probing: when to ask again (or give up)
    uint32_t queue[32]                    # buffers waiting for resolution, oldest first

ctypedef struct gn_ip4_nbr_main_t:
    gn_ip4_neighbor_t* entries
    uint32_t* buckets
    uint32_t bucket_mask
    uint32_t capacity
    uint32_t n_used                       # entries[0 .. n_used) have been handed out once
    uint32_t free_head
    uint32_t n_entries
    uint32_t n_incomplete
    uint32_t n_queued_total
    uint32_t lru_head
    uint32_t lru_tail
    uint32_t n_evict_pending              # evicted_sw/_ip entries the control plane has to unsync
    uint32_t evicted_sw[256]
    uint32_t evicted_ip[256]
    uint32_t n_announce                   # interfaces whose addresses ip4-neighbor announces (gratuitous
    uint32_t announce_sw[256]             # ARP) at its next run: their MAC changed
    # configuration
    uint32_t max_incomplete
    uint32_t queue_limit                  # per neighbour, <= GN_NBR_QUEUE_MAX
    uint32_t max_queued_total             # effective: min(configured, queue_pool_share of the pool)
    uint32_t max_probes                   # broadcast requests to resolve an incomplete entry
    uint64_t probe_interval_ns            # between requests, and between unicast probes
    uint64_t reachable_ns                 # a confirmed entry is stale after this (0: never)
    uint32_t max_unicast_probes           # unanswered probes before a stale entry is deleted
    uint64_t evict_min_age_ns             # unsolicited learning evicts only entries confirmed this long ago
    double request_rate                   # token bucket of ARP requests (per second, burst)
    double request_burst
    double request_tokens
    uint64_t request_last_ns
    # the nodes it wakes
    uint32_t process_node_index           # ip4-neighbor-process (Python: FIB sync, aging)
    uint32_t service_node_index           # ip4-neighbor (C: retries, timeouts, flush)
    uint8_t attached                      # the two indices are valid
    uint64_t service_due_ns               # armed timer's time (0: none)
    # statistics
    uint64_t n_requests
    uint64_t n_throttled
    uint64_t n_learned
    uint64_t n_updated
    uint64_t n_table_full
    uint64_t n_unicast_probes             # probes of stale entries sent
    uint64_t n_probe_failed               # entries deleted after unanswered probes
    uint64_t n_evicted                    # entries evicted to make room (table full)
    uint64_t n_announced                  # gratuitous ARP sent (MAC changes)

cdef inline uint32_t gn_nbr_hash(const gn_ip4_nbr_main_t* nm, uint32_t sw_if_index, uint32_t ip) noexcept nogil:
    cdef uint64_t h = (<uint64_t>ip * 0x9e3779b97f4a7c15ULL) ^ (<uint64_t>sw_if_index * 0xc2b2ae3d27d4eb4fULL)
    return <uint32_t>(h >> 32) & nm.bucket_mask


cdef inline uint32_t gn_nbr_find(const gn_ip4_nbr_main_t* nm, uint32_t sw_if_index, uint32_t ip) noexcept nogil:
    """The entry index for (interface, address), or GN_NBR_NONE."""
    cdef uint32_t k = nm.buckets[gn_nbr_hash(nm, sw_if_index, ip)]
    while k != GN_NBR_NONE:
        if nm.entries[k].ip == ip and nm.entries[k].sw_if_index == sw_if_index:
            return k
        k = nm.entries[k].next
    return GN_NBR_NONE


cdef uint32_t gn_nbr_create(gn_ip4_nbr_main_t* nm, gn_main_t* vm, uint32_t sw_if_index, uint32_t ip,
                            bint wanted) noexcept nogil
cdef void gn_nbr_remove(gn_ip4_nbr_main_t* nm, uint32_t k) noexcept nogil
cdef int gn_nbr_learn(gn_ip4_nbr_main_t* nm, gn_main_t* vm, uint32_t sw_if_index, uint32_t ip,
                      const uint8_t* mac, bint create) noexcept nogil
cdef bint gn_nbr_request_token(gn_ip4_nbr_main_t* nm, uint64_t now) noexcept nogil
cdef uint32_t gn_nbr_build_request(gn_main_t* vm, gn_interface_main_t* im, gn_ip4_address_main_t* am,
                                   uint32_t sw_if_index, uint32_t target, const uint8_t* dst_mac) noexcept nogil
cdef uint32_t gn_nbr_build_arp_request(gn_main_t* vm, gn_interface_main_t* im, uint32_t sw_if_index, uint32_t src,
                                       uint32_t target, const uint8_t* dst_mac) noexcept nogil
cdef void gn_nbr_arm_service(gn_ip4_nbr_main_t* nm, gn_main_t* vm, uint64_t due_ns) noexcept nogil
cdef void gn_nbr_wake_control(gn_ip4_nbr_main_t* nm, gn_main_t* vm) noexcept nogil


cdef class Ip4Neighbors:
    cdef gn_ip4_nbr_main_t* nm
    cdef readonly object engine
    cdef dict _owned                      # (sw, ip) -> adjacency index of the /32 we installed
    cdef public double aging_time         # seconds; 0: never
    cdef readonly double queue_pool_share # packets waiting for ARP: at most this share of the pool
    cdef uint32_t queued_cap              # max_queued_total as configured (nm's is the effective limit)
    cdef uint32_t counter_rows[3]         # GN_NBR_COUNT_* -> error row (absolute), given by _attach
    cdef _count(self, uint32_t which, uint64_t n)
