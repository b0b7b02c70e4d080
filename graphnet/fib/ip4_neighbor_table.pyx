"""The IPv4 neighbour table (ARP cache): its entries, their state machine
and its control plane; the graph glue (the ``ip4-neighbor`` service node
and ``ip4-neighbor-process``) is ``graphnet.nodes.ip4_neighbor``, and
``arp-input`` and ``ip4-arp`` reach the table through this module's .pxd.

One table per engine (``ip4_neighbors(engine)``), keyed by (interface,
address). An entry is *incomplete* (being resolved: requests sent, packets
queued) or *complete* (MAC known), *dynamic* (learned, probed, aged) or
*static* (configured: never changed by ARP, never probed, never aged).

States of a complete dynamic entry, as Linux's neighbour layer has them
(``entries()``/``show ip neighbors`` print them): *reachable* for
``reachable_time`` seconds after it was last confirmed, then *stale*; a
stale entry that the FIB forwards through (it has a rewrite adjacency or
its /32) goes to *probe*: ip4-neighbor sends a unicast ARP request to the
known MAC (Ethernet destination = the entry's MAC, like Linux's
ucast_solicit) every ``probe_interval``, and forwarding keeps using the
entry meanwhile. Any ARP from the neighbour that reaches arp-input (the
reply to a probe, a request to us, a gratuitous ARP) confirms it:
reachable again. After ``unicast_probes`` unanswered probes the entry is
deleted (``probe-failed``), its FIB state with it, so the next packet
resolves the address again with a broadcast request. Not tracked: whether
packets actually used the rewrite lately (that would need ip4-rewrite to
stamp its adjacencies), so every stale entry in the FIB is probed, as VPP
does at its neighbour age; an idle neighbour that answers costs one unicast
ARP per ``reachable_time``. A stale entry the FIB does not use is not
probed; ``aging_time`` (since the last confirmation) removes any dynamic
entry, probed or not.

Who does what:

  - ``arp-input`` learns: from requests and replies addressed to us
    (creating entries, when the sender is on-link), and from any ARP,
    gratuitous ones included, whose sender already has an entry (updating
    it). A completed or changed entry is marked FIB_PENDING and the control
    plane is woken.
  - ``ip4-arp`` (ip4-lookup's glean adjacency) creates incomplete entries,
    sends the first request and queues packets (bounded: ``queue_limit``
    per neighbour, the oldest dropped when full; in all the smaller of
    ``max_queued_total`` and ``queue_pool_share`` of the buffer pool;
    ``max_incomplete`` incomplete entries; each excess packet is dropped
    and counted).
  - ``ip4-neighbor`` (graphnet.nodes.ip4_neighbor; a C input node in interrupt mode, woken
    by its own timer and by the control plane) retransmits requests every
    ``probe_interval`` (``max_probes`` in all; requests are also limited by
    a token bucket of ``request_rate`` per second), drops the queue of a
    neighbour that never answered (``resolution-failed``) and forwards the
    queue of a resolved one to ip4-lookup. It also probes stale entries
    (``probes-sent``; the same token bucket, a throttled probe is tried
    again and not counted as unanswered) and marks those that never answer
    for deletion. After ``set interface mac address`` it sends a gratuitous
    ARP for each address of the interface from the new MAC
    (``announce()``; ``announced``), as Linux's arp_notify does.
  - ``ip4-neighbor-process`` (a Python process; woken by the data plane
    through its interrupt, and for aging) makes the FIB follow the table:
    the adjacency of routes via a resolved next hop becomes a rewrite
    (``Ip4Fib.set_neighbor``), and a neighbour inside a connected (glean)
    prefix gets a /32 route to it, so later packets go ip4-lookup ->
    ip4-rewrite directly; then it lets ip4-neighbor flush the queue.
    Dynamic entries not confirmed for ``aging_time`` seconds, and those
    whose probes failed, are removed (their FIB state with them; the next
    packet resolves again).

A full table (``capacity``, default 4096) makes room for a new entry by
evicting the least recently confirmed dynamic entry that is not in use:
no packets queued, and never *wanted* (graphnet never had a packet for
it: it was only learned from the ARP it sent us), as Linux's forced
garbage collection at gc_thresh3 spares referenced entries. An entry
learned from unsolicited ARP (a request to us) evicts only such an entry
confirmed at least ``evict_min_age`` (5 s) ago, as Linux's forced gc
spares entries updated in the last 5 s: a flood of spoofed senders then
replaces at most the table's capacity every 5 s (each eviction costs the
control plane a FIB update), the rest are answered, not learned
(``table-full``), and it never pushes out a host graphnet talks to. An
entry graphnet has traffic for (ip4-arp) evicts regardless of age, and
when the first 64 entries of the LRU list are all wanted, the least
recently confirmed of them with nothing queued. arp-input and ip4-arp unlink
the victim at once, the control plane removes its FIB state
(``evicted``). Static and incomplete entries are never evicted, so a
flood of spoofed ARP from random senders cannot lock new neighbours out
and churns through its own entries, not those of the hosts graphnet
talks to (an entry is wanted once ip4-arp queued a packet for it, or the
operator added it).

Invariants: a queued buffer is owned by exactly one entry until it is
flushed to ip4-lookup or dropped with a counter; the engine's close frees
whatever is still queued. The FIB is changed only by the control plane.

API: ``add(interface, ip, mac, static=False)``, ``delete(interface, ip)``,
``entries()``, ``show()``, ``configure(...)`` (``reachable_time``,
``unicast_probes``, ``probe_interval``, ``aging_time``, limits); CLI
``show ip neighbors``, ``set ip neighbor [del] <if> <ip> [<mac>] [static]``,
``set ip neighbor-config ...``. The four timers can also be set at start
by the startup file's ``[ip.neighbor]`` table (graphnet.config), which
calls ``configure`` the same way.
"""
import ipaddress

from graphnet.vlib.per_engine import per_engine
from graphnet.vlib import buffer_usage

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.byteorder cimport gn_put_net16
from graphnet.includes.platform cimport gn_time_ns
from graphnet.io.interface cimport gn_interface_t, gn_interface
from graphnet.fib.ip4_address cimport gn_ip4_source_address
from graphnet.fib.ip4_fib cimport Ip4Fib
from graphnet.vlib.buffer cimport (gn_buffer_t, GN_RX, GN_TX, GN_BUFFER_F_LOCALLY_ORIGINATED,
                                   GN_BUFFER_F_NEXT_PRESENT, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_node_set_interrupt_pending, gn_node_schedule_interrupt)
from graphnet.wire.arp cimport gn_arp_write, GN_ARP_OP_REQUEST
from graphnet.wire.ethernet cimport GN_ETHERTYPE_ARP
from graphnet.fib.ip4_fib import ip4_fib
from graphnet.wire.ethernet import format_mac, parse_mac

# Linux's defaults: base_reachable_time 30 s, retrans_time 1 s, ucast_solicit / mcast_solicit 3
DEFAULTS = dict(capacity=4096, max_incomplete=512, queue_limit=16, max_queued_total=2048, queue_pool_share=0.125,
                max_probes=3, probe_interval=1.0, request_rate=100.0, request_burst=50.0, aging_time=300.0,
                reachable_time=30.0, unicast_probes=3, evict_min_age=5.0)



# --- the table ------------------------------------------------------------------

cdef inline void _lru_unlink(gn_ip4_nbr_main_t* nm, uint32_t k) noexcept nogil:
    cdef gn_ip4_neighbor_t* e = &nm.entries[k]
    if not (e.flags & GN_NBR_F_LRU):
        return
    if e.lru_prev != GN_NBR_NONE:
        nm.entries[e.lru_prev].lru_next = e.lru_next
    else:
        nm.lru_head = e.lru_next
    if e.lru_next != GN_NBR_NONE:
        nm.entries[e.lru_next].lru_prev = e.lru_prev
    else:
        nm.lru_tail = e.lru_prev
    e.flags = e.flags & ~GN_NBR_F_LRU


cdef inline void _lru_touch(gn_ip4_nbr_main_t* nm, uint32_t k) noexcept nogil:
    """Complete dynamic entry k was confirmed now: the most recently used."""
    cdef gn_ip4_neighbor_t* e = &nm.entries[k]
    _lru_unlink(nm, k)
    e.lru_prev = nm.lru_tail
    e.lru_next = GN_NBR_NONE
    if nm.lru_tail != GN_NBR_NONE:
        nm.entries[nm.lru_tail].lru_next = k
    else:
        nm.lru_head = k
    nm.lru_tail = k
    e.flags = e.flags | GN_NBR_F_LRU


cdef bint _evict_lru(gn_ip4_nbr_main_t* nm, gn_main_t* vm, bint wanted) noexcept nogil:
    """Free one entry, scanning the first GN_NBR_LRU_SCAN of the LRU list
    (least recently confirmed first) for one with no packets queued: the
    first not WANTED; for a `wanted` new entry (graphnet has traffic for
    it) failing that the first WANTED one. For an unwanted new entry
    (learning from unsolicited ARP) only entries confirmed evict_min_age_ns
    ago or more, and never a WANTED one: a flood of fresh spoofed entries
    then churns at most the table's capacity per evict_min_age and never
    pushes out a host graphnet talks to. The victim's FIB state is left for
    the control plane (evicted_*). False when nothing may go, or the
    control plane has GN_NBR_EVICT_PENDING_MAX evictions still to unsync."""
    cdef uint32_t k = nm.lru_head, steps = 0, fallback = GN_NBR_NONE, victim = GN_NBR_NONE
    cdef uint64_t now = gn_time_ns()
    cdef gn_ip4_neighbor_t* e
    if nm.n_evict_pending >= GN_NBR_EVICT_PENDING_MAX:
        return False
    while k != GN_NBR_NONE and steps < GN_NBR_LRU_SCAN:
        e = &nm.entries[k]
        if not wanted and e.updated_ns + nm.evict_min_age_ns > now:
            break                                   # all the rest were confirmed later still
        if e.n_queued == 0:
            if not (e.flags & GN_NBR_F_WANTED):
                victim = k
                break
            if fallback == GN_NBR_NONE:
                fallback = k
        steps += 1
        k = e.lru_next
    if victim == GN_NBR_NONE and wanted:
        victim = fallback
    if victim == GN_NBR_NONE:
        return False
    k = victim
    nm.evicted_sw[nm.n_evict_pending] = nm.entries[k].sw_if_index
    nm.evicted_ip[nm.n_evict_pending] = nm.entries[k].ip
    nm.n_evict_pending += 1
    nm.n_evicted += 1
    gn_nbr_remove(nm, k)
    if vm != NULL:
        gn_nbr_wake_control(nm, vm)
    return True


cdef uint32_t gn_nbr_create(gn_ip4_nbr_main_t* nm, gn_main_t* vm, uint32_t sw_if_index, uint32_t ip,
                            bint wanted) noexcept nogil:
    """A new, empty (incomplete) entry linked into its bucket; when the
    table is full the least recently confirmed dynamic entry makes room
    (_evict_lru: `wanted` says graphnet has traffic for this one; vm, may
    be NULL, to wake the control plane); GN_NBR_NONE when nothing can. The
    caller checks that none exists."""
    cdef uint32_t k, h
    cdef gn_ip4_neighbor_t* e
    if nm.free_head == GN_NBR_NONE and nm.n_used >= nm.capacity and not _evict_lru(nm, vm, wanted):
        nm.n_table_full += 1
        return GN_NBR_NONE
    if nm.free_head != GN_NBR_NONE:
        k = nm.free_head
        nm.free_head = nm.entries[k].next
    else:
        k = nm.n_used
        nm.n_used += 1
    e = &nm.entries[k]
    memset(e, 0, sizeof(gn_ip4_neighbor_t))
    e.ip = ip
    e.sw_if_index = sw_if_index
    e.flags = GN_NBR_F_VALID
    h = gn_nbr_hash(nm, sw_if_index, ip)
    e.next = nm.buckets[h]
    nm.buckets[h] = k
    nm.n_entries += 1
    nm.n_incomplete += 1
    return k


cdef void gn_nbr_remove(gn_ip4_nbr_main_t* nm, uint32_t k) noexcept nogil:
    """Unlink and free entry k. Its queue must be empty (flushed or freed)."""
    cdef gn_ip4_neighbor_t* e = &nm.entries[k]
    cdef uint32_t h = gn_nbr_hash(nm, e.sw_if_index, e.ip)
    cdef uint32_t* p = &nm.buckets[h]
    _lru_unlink(nm, k)
    while p[0] != GN_NBR_NONE and p[0] != k:
        p = &nm.entries[p[0]].next
    if p[0] == k:
        p[0] = e.next
    if not (e.flags & GN_NBR_F_COMPLETE):
        nm.n_incomplete -= 1
    nm.n_entries -= 1
    e.flags = 0
    e.next = nm.free_head
    nm.free_head = k


cdef void gn_nbr_wake_control(gn_ip4_nbr_main_t* nm, gn_main_t* vm) noexcept nogil:
    """Ask the control plane (ip4-neighbor-process) to sync the FIB."""
    if nm.attached:
        gn_node_set_interrupt_pending(vm, nm.process_node_index)


cdef inline int memcmp6(const uint8_t* a, const uint8_t* b) noexcept nogil:
    cdef int i
    for i in range(6):
        if a[i] != b[i]:
            return 1
    return 0


cdef int gn_nbr_learn(gn_ip4_nbr_main_t* nm, gn_main_t* vm, uint32_t sw_if_index, uint32_t ip,
                      const uint8_t* mac, bint create) noexcept nogil:
    """ip is at mac on sw_if_index (an ARP packet said so). Creates the
    entry when `create`, else only updates an existing one; static entries
    are left alone. Returns 1 if an entry was created, completed or
    refreshed, 0 if nothing changed, -1 if the table is full.

    A refreshed entry is confirmed: reachable again (no probe outstanding),
    and ip4-neighbor is armed for when it goes stale."""
    cdef uint32_t k = gn_nbr_find(nm, sw_if_index, ip)
    cdef gn_ip4_neighbor_t* e
    if k == GN_NBR_NONE:
        if not create:
            return 0
        k = gn_nbr_create(nm, vm, sw_if_index, ip, False)
        if k == GN_NBR_NONE:
            return -1
    e = &nm.entries[k]
    if e.flags & GN_NBR_F_STATIC:
        return 0
    if not (e.flags & GN_NBR_F_COMPLETE):
        e.flags = e.flags | GN_NBR_F_COMPLETE | GN_NBR_F_FIB_PENDING
        e.flags = e.flags & ~GN_NBR_F_NO_FIB
        nm.n_incomplete -= 1
        memcpy(e.mac, mac, 6)
        nm.n_learned += 1
        gn_nbr_wake_control(nm, vm)
    elif memcmp6(e.mac, mac) != 0:
        memcpy(e.mac, mac, 6)
        e.flags = (e.flags | GN_NBR_F_FIB_PENDING) & ~GN_NBR_F_NO_FIB
        nm.n_updated += 1
        gn_nbr_wake_control(nm, vm)
    e.updated_ns = gn_time_ns()
    e.n_probes = 0
    e.next_probe_ns = 0
    e.flags = e.flags & ~GN_NBR_F_PROBE_FAILED
    _lru_touch(nm, k)
    if nm.reachable_ns:
        gn_nbr_arm_service(nm, vm, e.updated_ns + nm.reachable_ns)
    return 1


cdef bint gn_nbr_request_token(gn_ip4_nbr_main_t* nm, uint64_t now) noexcept nogil:
    """Take one token of the request rate limiter, if there is one."""
    cdef double t = nm.request_tokens + (now - nm.request_last_ns) * 1e-9 * nm.request_rate
    nm.request_last_ns = now
    if t > nm.request_burst:
        t = nm.request_burst
    if t < 1.0:
        nm.request_tokens = t
        nm.n_throttled += 1
        return False
    nm.request_tokens = t - 1.0
    nm.n_requests += 1
    return True


cdef uint32_t gn_nbr_build_request(gn_main_t* vm, gn_interface_main_t* im, gn_ip4_address_main_t* am,
                                   uint32_t sw_if_index, uint32_t target, const uint8_t* dst_mac) noexcept nogil:
    """An ARP request for target, from the interface's MAC and its address
    facing target, to dst_mac (a unicast probe) or, with NULL, broadcast;
    the target hardware address is zero either way (as Linux sends both).
    Ready for interface-output; GN_NBR_NONE when no buffer (or no such
    interface, or no address) is available."""
    return gn_nbr_build_arp_request(vm, im, sw_if_index, gn_ip4_source_address(am, sw_if_index, target), target,
                              dst_mac)


cdef uint32_t gn_nbr_build_arp_request(gn_main_t* vm, gn_interface_main_t* im, uint32_t sw_if_index, uint32_t src,
                                       uint32_t target, const uint8_t* dst_mac) noexcept nogil:
    """gn_nbr_build_request with the sender address given (src = target:
    a gratuitous ARP); GN_NBR_NONE when src is 0 or no buffer."""
    cdef uint32_t bi
    cdef gn_buffer_t* b
    cdef uint8_t* p
    cdef gn_interface_t* hw = gn_interface(im, sw_if_index)
    if hw == NULL or src == 0 or gn_main_alloc(vm, &bi, 1) != 1:
        return GN_NBR_NONE
    b = gn_main_buffer(vm, bi)
    p = gn_buffer_current(b)
    if dst_mac == NULL:
        memset(p, 0xff, 6)
    else:
        memcpy(p, dst_mac, 6)
    memcpy(p + 6, hw.mac, 6)
    gn_put_net16(p + 12, GN_ETHERTYPE_ARP)
    gn_arp_write(p + 14, GN_ARP_OP_REQUEST, hw.mac, src, NULL, target)
    b.current_length = GN_NBR_ARP_LEN
    b.sw_if_index[GN_RX] = sw_if_index
    b.sw_if_index[GN_TX] = sw_if_index
    b.flags = b.flags | GN_BUFFER_F_LOCALLY_ORIGINATED
    return bi


cdef void gn_nbr_arm_service(gn_ip4_nbr_main_t* nm, gn_main_t* vm, uint64_t due_ns) noexcept nogil:
    """Make sure ip4-neighbor runs at due_ns (or earlier)."""
    cdef uint64_t now, ticks
    if not nm.attached or (nm.service_due_ns != 0 and nm.service_due_ns <= due_ns):
        return
    now = gn_time_ns()
    ticks = (due_ns - now) // vm.timers.tick_ns + 1 if due_ns > now else 0
    gn_node_schedule_interrupt(vm, nm.service_node_index, ticks)
    nm.service_due_ns = due_ns

# --- the control plane ------------------------------------------------------------

_TABLES = per_engine()


def ip4_neighbors(engine, capacity=None):
    """The engine's neighbour table, created on first use (with room for
    ``capacity`` entries, default 4096; a later capacity is an error)."""
    t = _TABLES.get(engine)
    if t is None:
        t = _TABLES[engine] = Ip4Neighbors(engine, capacity or DEFAULTS["capacity"])
    elif capacity is not None and capacity != t.config()["capacity"]:
        raise ValueError("the neighbour table exists already: give its capacity before the graph is built")
    return t


def _queued_buffers(engine) -> int:
    """Buffers in the engine's ARP queues (``show buffers``' Queued)."""
    t = _TABLES.get(engine)
    return t.queued_buffers() if t is not None and engine.main is not None else 0


buffer_usage.register_queue(_queued_buffers)


def _addr(a):
    try:
        return int(ipaddress.IPv4Address(a if not isinstance(a, str) else a.strip()))
    except ValueError as e:
        raise ValueError(f"bad IPv4 address {a!r}: {e}") from None



MAX_TIMER_SECONDS = 1e9     # ~31 years: nanoseconds of it still fit a uint64


def _check_seconds(name, value, zero_means):
    """A timer value: finite, <= MAX_TIMER_SECONDS, > 0 (or >= 0 when
    zero_means says what 0 does). Raises ValueError naming it."""
    low = f">= 0 seconds (0: {zero_means})" if zero_means else "> 0 seconds"
    if not (value >= 0 if zero_means else value > 0) or not value <= MAX_TIMER_SECONDS:
        raise ValueError(f"{name} must be {low} and at most {MAX_TIMER_SECONDS:g}, not {value}")


cdef class Ip4Neighbors:
    """The neighbour table of one engine (see the module docstring)."""

    def __cinit__(self, engine=None, uint32_t capacity=DEFAULTS["capacity"]):
        cdef uint32_t nb = 1, k
        while nb < capacity * 2:
            nb <<= 1
        self.nm = <gn_ip4_nbr_main_t*>calloc(1, sizeof(gn_ip4_nbr_main_t))
        if self.nm == NULL:
            raise MemoryError()
        self.nm.entries = <gn_ip4_neighbor_t*>calloc(capacity, sizeof(gn_ip4_neighbor_t))
        self.nm.buckets = <uint32_t*>calloc(nb, sizeof(uint32_t))
        if self.nm.entries == NULL or self.nm.buckets == NULL:
            raise MemoryError()
        for k in range(nb):
            self.nm.buckets[k] = GN_NBR_NONE
        self.nm.bucket_mask = nb - 1
        self.nm.capacity = capacity
        self.nm.free_head = GN_NBR_NONE
        self.nm.lru_head = GN_NBR_NONE
        self.nm.lru_tail = GN_NBR_NONE
        self.engine = engine
        self._owned = {}
        self.configure(**{name: v for name, v in DEFAULTS.items() if name != "capacity"})
        self.nm.request_tokens = self.nm.request_burst

    def __dealloc__(self):
        if self.nm != NULL:
            free(self.nm.entries)
            free(self.nm.buckets)
            free(self.nm)

    @property
    def address(self):
        """The gn_ip4_nbr_main_t* as an integer."""
        return <size_t>self.nm

    def queued_buffers(self) -> int:
        """Buffers (chains counted whole) waiting in the ARP queues (in the
        loop's thread or with it stopped): part of ``show buffers``'
        packets, and the fuzz runner's exact buffer check."""
        cdef gn_main_t* vm
        cdef gn_buffer_t* b
        cdef gn_ip4_neighbor_t* e
        cdef uint32_t k, q
        cdef uint64_t n = 0
        if self.engine is None or self.engine.main is None:
            return 0
        vm = <gn_main_t*><size_t>self.engine.main.address
        for k in range(self.nm.n_used):
            e = &self.nm.entries[k]
            if not (e.flags & GN_NBR_F_VALID):
                continue
            for q in range(e.n_queued):
                b = gn_main_buffer(vm, e.queue[q])
                n += 1
                while b.flags & GN_BUFFER_F_NEXT_PRESENT:
                    b = gn_main_buffer(vm, b.next_buffer)
                    n += 1
        return n

    def configure(self, *, max_incomplete=None, queue_limit=None, max_queued_total=None, queue_pool_share=None,
                  max_probes=None, probe_interval=None, request_rate=None, request_burst=None, aging_time=None,
                  reachable_time=None, unicast_probes=None, evict_min_age=None):
        """Change limits and timers (seconds; rates per second).

        max_probes: broadcast requests to resolve an address;
        probe_interval: between those, and between unicast probes;
        reachable_time: a confirmed dynamic entry is stale (and probed, if
        the FIB uses it) this long after its last confirmation (0: never
        stale, never probed); unicast_probes: unanswered probes before a
        stale entry is deleted; aging_time: any dynamic entry not confirmed
        for this long is removed (0: never); queue_limit: packets queued
        per neighbour while it is resolved (the oldest goes when full);
        max_queued_total and queue_pool_share (0 < share <= 1): packets
        queued in all, the smaller of the two (the share of the engine's
        buffer pool); evict_min_age: with the table full, an entry learned
        from unsolicited ARP evicts only one confirmed at least this long
        ago (0: any; one graphnet has traffic for evicts any). Defaults:
        ``DEFAULTS``."""
        if queue_limit is not None:
            if not 0 <= queue_limit <= GN_NBR_QUEUE_MAX:
                raise ValueError(f"queue_limit must be 0..{GN_NBR_QUEUE_MAX}")
            self.nm.queue_limit = queue_limit
        if max_incomplete is not None:
            self.nm.max_incomplete = max_incomplete
        if queue_pool_share is not None:
            if isinstance(queue_pool_share, bool) or not 0 < queue_pool_share <= 1:
                raise ValueError(f"queue_pool_share must be a share of the buffer pool, 0 < share <= 1, "
                                 f"not {queue_pool_share!r}")
            self.queue_pool_share = queue_pool_share
        if max_queued_total is not None:
            if not 0 <= max_queued_total <= 0xffffffff:
                raise ValueError(f"max_queued_total must be 0..{0xffffffff}")
            self.queued_cap = max_queued_total
        if queue_pool_share is not None or max_queued_total is not None:
            self._set_max_queued()
        if max_probes is not None:
            if not 1 <= max_probes <= 255:
                raise ValueError("max_probes must be 1..255")
            self.nm.max_probes = max_probes
        if probe_interval is not None:
            _check_seconds("probe_interval", probe_interval, zero_means=None)
            self.nm.probe_interval_ns = <uint64_t>(probe_interval * 1e9)
        if request_rate is not None:
            if not request_rate > 0:
                raise ValueError("request_rate must be > 0 per second")
            self.nm.request_rate = request_rate
        if request_burst is not None:
            if not request_burst >= 1:
                raise ValueError("request_burst must be >= 1")
            self.nm.request_burst = request_burst
        if aging_time is not None:
            _check_seconds("aging_time", aging_time, zero_means="never")
            self.aging_time = aging_time
            self._wake_process()
        if evict_min_age is not None:
            _check_seconds("evict_min_age", evict_min_age, zero_means="any entry may go")
            self.nm.evict_min_age_ns = <uint64_t>(evict_min_age * 1e9)
        if unicast_probes is not None:
            if not 1 <= unicast_probes <= 255:
                raise ValueError("unicast_probes must be 1..255")
            self.nm.max_unicast_probes = unicast_probes
        if reachable_time is not None:
            _check_seconds("reachable_time", reachable_time, zero_means="never stale")
            self.nm.reachable_ns = <uint64_t>(reachable_time * 1e9)
        if reachable_time is not None or probe_interval is not None or unicast_probes is not None:
            self._wake_service()               # deadlines changed: it re-arms its timer

    def _set_max_queued(self):
        """The effective limit of packets queued in all (see configure)."""
        cdef uint64_t cap = self.queued_cap
        eng = self.engine
        pool = eng.pool if eng is not None else None
        if pool is not None:
            cap = min(cap, max(1, <uint64_t>(self.queue_pool_share * pool.stats()["total"])))
        self.nm.max_queued_total = <uint32_t>cap

    def config(self) -> dict:
        return {"capacity": self.nm.capacity, "max_incomplete": self.nm.max_incomplete,
                "queue_limit": self.nm.queue_limit, "max_queued_total": self.queued_cap,
                "queue_pool_share": self.queue_pool_share, "max_queued": self.nm.max_queued_total,
                "max_probes": self.nm.max_probes, "probe_interval": self.nm.probe_interval_ns / 1e9,
                "request_rate": self.nm.request_rate, "request_burst": self.nm.request_burst,
                "aging_time": self.aging_time, "reachable_time": self.nm.reachable_ns / 1e9,
                "unicast_probes": self.nm.max_unicast_probes, "evict_min_age": self.nm.evict_min_age_ns / 1e9}

    def stats(self) -> dict:
        return {"entries": self.nm.n_entries, "incomplete": self.nm.n_incomplete,
                "queued": self.nm.n_queued_total, "requests": self.nm.n_requests,
                "throttled": self.nm.n_throttled, "learned": self.nm.n_learned, "updated": self.nm.n_updated,
                "table_full": self.nm.n_table_full, "probes": self.nm.n_unicast_probes,
                "probe_failed": self.nm.n_probe_failed, "evicted": self.nm.n_evicted,
                "announced": self.nm.n_announced}

    def _call(self, fn, *args):
        eng = self.engine
        if eng is not None and eng.running:
            return eng.call(fn, *args)
        return fn(*args)

    def _main_ptr(self):
        eng = self.engine
        if eng is None or eng.main is None:
            return 0
        return eng.main.address

    def _wake_process(self):
        eng = self.engine
        if eng is not None and eng.main is not None and self.nm.attached:
            eng.main.set_interrupt_pending(self.nm.process_node_index)

    def _wake_service(self):
        eng = self.engine
        if eng is not None and eng.main is not None and self.nm.attached:
            eng.main.set_interrupt_pending(self.nm.service_node_index)

    def announce(self, uint32_t sw_if_index):
        """Send a gratuitous ARP for each address of the interface from its
        current MAC (``set interface mac address`` calls it), at
        ip4-neighbor's next run; counted ``announced``. Loop thread or
        engine stopped (the ARP then goes at the next run)."""
        cdef uint32_t j
        if sw_if_index >= GN_NBR_ANNOUNCE_MAX:
            raise ValueError(f"no interface {sw_if_index}")
        for j in range(self.nm.n_announce):
            if self.nm.announce_sw[j] == sw_if_index:
                break
        else:
            self.nm.announce_sw[self.nm.n_announce] = sw_if_index
            self.nm.n_announce += 1
        self._wake_service()

    # --- entries ------------------------------------------------------------

    def add(self, interface, ip, mac, static=False):
        """Add or replace a neighbour: ip is at mac on interface. A static
        entry is never changed by ARP, never probed and never aged."""
        return self._call(self._add, interface, ip, mac, static)

    def _add(self, interface, ip, mac, static):
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        cdef uint32_t a = _addr(ip)
        cdef bytes m = parse_mac(mac)
        cdef uint32_t k = gn_nbr_find(self.nm, sw, a)
        cdef gn_ip4_neighbor_t* e
        if m[0] & 1:
            raise ValueError(f"{mac}: a neighbour's MAC cannot be multicast")
        if a == 0 or a == 0xffffffff or (a >> 28) == 0xe:
            raise ValueError(f"{ip}: not a unicast address")
        if k == GN_NBR_NONE:
            k = gn_nbr_create(self.nm, NULL, sw, a, True)
            if k == GN_NBR_NONE:
                raise ValueError(f"the neighbour table is full ({self.nm.capacity} entries)")
            self._unsync_evicted()
        e = &self.nm.entries[k]
        if not (e.flags & GN_NBR_F_COMPLETE):
            self.nm.n_incomplete -= 1
        e.flags = (e.flags | GN_NBR_F_COMPLETE) & ~(GN_NBR_F_STATIC | GN_NBR_F_NO_FIB | GN_NBR_F_FIB_PENDING)
        e.flags = e.flags | GN_NBR_F_WANTED            # configured: in use
        if static:
            e.flags = e.flags | GN_NBR_F_STATIC
            _lru_unlink(self.nm, k)
        else:
            _lru_touch(self.nm, k)
        memcpy(e.mac, <const uint8_t*>m, 6)
        e.updated_ns = gn_time_ns()
        e.n_probes = 0
        e.next_probe_ns = 0
        e.flags = e.flags & ~GN_NBR_F_PROBE_FAILED
        self._sync(k)
        self._after_sync([k])
        if not static:
            self._wake_service()               # it arms the timer for when this entry goes stale

    def delete(self, interface, ip):
        """Remove a neighbour (its FIB state and queued packets with it)."""
        return self._call(self._delete, interface, ip)

    def _delete(self, interface, ip):
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        cdef uint32_t k = gn_nbr_find(self.nm, sw, _addr(ip))
        if k == GN_NBR_NONE:
            raise KeyError(f"no neighbour {ip} on {self.engine.interfaces.names[sw]}")
        self._remove(k)

    def clear(self, static=False):
        """Remove every dynamic entry (and the static ones too with static=True)."""
        self._call(self._clear, static)

    def _clear(self, static):
        cdef uint32_t k
        for k in range(self.nm.n_used):
            if self.nm.entries[k].flags & GN_NBR_F_VALID and (
                    static or not (self.nm.entries[k].flags & GN_NBR_F_STATIC)):
                self._remove(k)

    def flush_interface(self, interface, incomplete_only=False):
        """Remove every dynamic entry on one interface, complete or not (its
        FIB state and queued packets with it, counted as ``deleted``);
        static entries stay, as Linux keeps permanent ones on link down.
        Called when the interface's link goes down or vanishes; with
        incomplete_only, shortly after it came up (a request sent in the
        instant the link came up may be lost: the next packet asks again
        at once instead of after probe_interval). Returns how many entries
        went."""
        return self._call(self._flush_interface, interface, incomplete_only)

    def _flush_interface(self, interface, bint incomplete_only):
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        cdef uint32_t k, n = 0
        for k in range(self.nm.n_used):
            if (self.nm.entries[k].flags & GN_NBR_F_VALID and self.nm.entries[k].sw_if_index == sw
                    and not (self.nm.entries[k].flags & GN_NBR_F_STATIC)
                    and not (incomplete_only and self.nm.entries[k].flags & GN_NBR_F_COMPLETE)):
                self._remove(k)
                n += 1
        return n

    def _remove(self, uint32_t k):
        cdef gn_ip4_neighbor_t* e = &self.nm.entries[k]
        cdef uint32_t sw = e.sw_if_index, a = e.ip
        if e.flags & GN_NBR_F_COMPLETE:
            self._unsync(sw, a)
        self._drop_queue(k)
        gn_nbr_remove(self.nm, k)

    def _drop_queue(self, uint32_t k):
        """Free an entry's queued buffers, counted as ``deleted``."""
        cdef gn_ip4_neighbor_t* e = &self.nm.entries[k]
        cdef gn_main_t* vm = <gn_main_t*><size_t>self._main_ptr()
        if e.n_queued == 0:
            return
        if vm != NULL:
            self._count(GN_NBR_COUNT_DELETED, e.n_queued)
            gn_main_free(vm, e.queue, e.n_queued)
        self.nm.n_queued_total -= e.n_queued
        e.n_queued = 0

    def entries(self):
        """``[{interface, sw_if_index, ip, mac, state, complete, static, age,
        queued, probes}]``, sorted by interface then address; age in seconds
        since last confirmed; state one of ``incomplete``, ``static``,
        ``reachable``, ``stale``, ``probe`` (probes: unicast probes sent and
        not answered yet; for an incomplete entry, broadcast requests)."""
        return self._call(self._entries)

    def _entries(self):
        cdef uint32_t k
        cdef gn_ip4_neighbor_t* e
        cdef uint64_t now = gn_time_ns()
        out = []
        for k in range(self.nm.n_used):
            e = &self.nm.entries[k]
            if not (e.flags & GN_NBR_F_VALID):
                continue
            complete = bool(e.flags & GN_NBR_F_COMPLETE)
            if not complete:
                state = "incomplete"
            elif e.flags & GN_NBR_F_STATIC:
                state = "static"
            elif e.n_probes or e.flags & GN_NBR_F_PROBE_FAILED:
                state = "probe"
            elif self.nm.reachable_ns and e.updated_ns + self.nm.reachable_ns <= now:
                state = "stale"
            else:
                state = "reachable"
            out.append({"interface": self.engine.interfaces.names[e.sw_if_index], "sw_if_index": e.sw_if_index,
                        "ip": str(ipaddress.IPv4Address(e.ip)),
                        "mac": format_mac(e.mac[:6]) if complete else None,
                        "state": state, "complete": complete,
                        "static": bool(e.flags & GN_NBR_F_STATIC),
                        "age": (now - e.updated_ns) / 1e9 if complete else None,
                        "updated_ns": e.updated_ns, "queued": e.n_queued, "probes": e.n_probes})
        out.sort(key=lambda d: (d["sw_if_index"], ipaddress.IPv4Address(d["ip"])))
        return out

    def lookup(self, interface, ip):
        """One entry (dict, as in entries()) or None."""
        sw = self.engine.interfaces.index(interface)
        for d in self.entries():
            if d["sw_if_index"] == sw and d["ip"] == str(ipaddress.IPv4Address(_addr(ip))):
                return d
        return None

    def show(self) -> str:
        """``show ip neighbors``, as VPP prints it, with Linux's state of
        each entry as a last column, and the timers below the table."""
        start = getattr(self.engine, "start_time_ns", 0)
        lines = [f"{'Time':>10}  {'IP':<16} {'Flags':<6} {'Ethernet':<18} {'Interface':<12} State"]
        for d in self.entries():
            flags = "S" if d["static"] else ("D" if d["complete"] else "I")
            t = (d["updated_ns"] - start) / 1e9
            mac = d["mac"] or f"(incomplete, {d['queued']} queued)"
            lines.append(f"{t:>10.4f}  {d['ip']:<16} {flags:<6} {mac:<18} {d['interface']:<12} {d['state']}")
        c = self.config()
        stale = (f"reachable {c['reachable_time']:g} s, then stale: {c['unicast_probes']} unicast probes "
                 f"{c['probe_interval']:g} s apart" if c["reachable_time"] else "never stale")
        aging = f"aging {c['aging_time']:g} s" if c["aging_time"] else "no aging"
        lines.append(f"dynamic entries: {stale}; {aging}")
        return "\n".join(lines)

    # --- FIB sync ------------------------------------------------------------

    def _sync(self, uint32_t k):
        """Make the FIB follow complete entry k (see the module docstring)."""
        cdef gn_ip4_neighbor_t* e = &self.nm.entries[k]
        cdef Ip4Fib fib = ip4_fib(self.engine)
        sw, a, mac = e.sw_if_index, e.ip, bytes(e.mac[:6])
        key = (sw, a)
        e.flags = e.flags & ~(GN_NBR_F_FIB_PENDING | GN_NBR_F_NO_FIB)
        owned = self._owned.get(key)
        if owned is not None and fib._routes[32].get(a) != owned:
            del self._owned[key]           # someone replaced or removed our /32
            owned = None
        if owned is None and a not in fib._routes[32]:
            _net, plen, adj = fib.match(a)
            info = fib.adjacency(adj)
            if info["type"] == "glean" and info.get("sw_if_index") == sw and "next_hop" not in info:
                self._owned[key] = fib.add_route((a, 32), sw_if_index=sw, next_hop=a)
        fib.set_neighbor(sw, a, mac)
        info = fib.lookup(a)
        if info["type"] == "glean" and info.get("sw_if_index") == sw and "next_hop" not in info:
            e.flags = e.flags | GN_NBR_F_NO_FIB        # e.g. a user's on-link /32: nothing to make a rewrite of

    def _unsync(self, uint32_t sw, uint32_t a):
        cdef Ip4Fib fib = ip4_fib(self.engine)
        fib.set_neighbor(sw, a, None)
        owned = self._owned.pop((sw, a), None)
        if owned is not None and fib._routes[32].get(a) == owned:
            fib.del_route((a, 32))

    def _after_sync(self, list ks):
        """Queued packets of synced entries go on to ip4-lookup (through ip4-neighbor)."""
        cdef uint32_t k
        cdef bint flush = False
        for k in ks:
            if self.nm.entries[k].n_queued:
                self.nm.entries[k].flags |= GN_NBR_F_FLUSH
                flush = True
        if flush and self.engine.main is not None and self.nm.attached:
            self.engine.main.set_interrupt_pending(self.nm.service_node_index)

    def _service(self):
        """The control plane's turn (ip4-neighbor-process): sync pending
        entries, delete those whose probes failed (counted ``probe-failed``),
        age old ones; returns seconds until the next aging check (None:
        nothing to age)."""
        cdef uint32_t k
        cdef gn_ip4_neighbor_t* e
        cdef uint64_t now = gn_time_ns(), aging_ns = <uint64_t>(self.aging_time * 1e9), oldest = 0
        cdef gn_main_t* vm
        pending = []
        aged = []
        failed = []
        self._unsync_evicted()
        for k in range(self.nm.n_used):
            e = &self.nm.entries[k]
            if (e.flags & (GN_NBR_F_VALID | GN_NBR_F_COMPLETE)) != (GN_NBR_F_VALID | GN_NBR_F_COMPLETE):
                continue
            if e.flags & GN_NBR_F_PROBE_FAILED:
                failed.append(k)
                continue
            if aging_ns and not (e.flags & GN_NBR_F_STATIC):
                if now - e.updated_ns >= aging_ns:
                    aged.append(k)
                    continue
                if oldest == 0 or e.updated_ns < oldest:
                    oldest = e.updated_ns
            if e.flags & GN_NBR_F_FIB_PENDING:
                pending.append(k)
        for k in pending:
            self._sync(k)
        self._after_sync(pending)
        for k in aged:
            self._remove(k)
        for k in failed:
            self._remove(k)
        if failed:
            self.nm.n_probe_failed += len(failed)
            self._count(GN_NBR_COUNT_PROBE_FAILED, len(failed))
        if oldest == 0:
            return None
        return max(0.01, (oldest + aging_ns - now) / 1e9)

    def _unsync_evicted(self):
        """Remove the FIB state of entries the data plane evicted (counted
        ``evicted``)."""
        cdef uint32_t i, n = self.nm.n_evict_pending
        if n == 0:
            return
        for i in range(n):
            self._unsync(self.nm.evicted_sw[i], self.nm.evicted_ip[i])
        self.nm.n_evict_pending = 0
        self._count(GN_NBR_COUNT_EVICTED, n)

    cdef _count(self, uint32_t which, uint64_t n):
        """Add n to the error row the service node gave for ``which`` (a
        GN_NBR_COUNT_*; see _attach); nothing before it is attached."""
        cdef gn_main_t* vm = <gn_main_t*><size_t>self._main_ptr()
        if vm != NULL and self.nm.attached:
            vm.error_counters[self.counter_rows[which]] += n

    # --- the interface address table tells us ------------------------------------

    def _address_removed(self, uint32_t sw, uint32_t net, uint32_t mask):
        """Dynamic neighbours inside a removed prefix go; static ones lose their /32."""
        cdef uint32_t k
        cdef gn_ip4_neighbor_t* e
        for k in range(self.nm.n_used):
            e = &self.nm.entries[k]
            if e.flags & GN_NBR_F_VALID and e.sw_if_index == sw and (e.ip & mask) == net:
                if e.flags & GN_NBR_F_STATIC:
                    owned = self._owned.pop((sw, e.ip), None)
                    if owned is not None and (<Ip4Fib>ip4_fib(self.engine))._routes[32].get(e.ip) == owned:
                        ip4_fib(self.engine).del_route((e.ip, 32))
                else:
                    self._remove(k)

    # --- engine hooks ---------------------------------------------------------------

    def _attach(self, engine, uint32_t service_index, uint32_t process_index, counter_rows):
        """The graph is built: the nodes it wakes, and ``counter_rows``, the
        engine's error rows (absolute indices) that the control plane's
        drops and events are counted under, one per GN_NBR_COUNT_*
        (deleted, probe-failed, evicted: ip4-neighbor's rows)."""
        cdef uint32_t k
        if len(counter_rows) != GN_NBR_N_COUNT:
            raise ValueError(f"counter_rows: {GN_NBR_N_COUNT} error rows, not {len(counter_rows)}")
        for k in range(GN_NBR_N_COUNT):
            self.counter_rows[k] = counter_rows[k]
        self._set_max_queued()                 # the pool exists now
        self.nm.service_node_index = service_index
        self.nm.process_node_index = process_index
        self.nm.attached = 1

    def _teardown(self):
        """Free every queued buffer (the engine is closing)."""
        cdef uint32_t k
        cdef gn_main_t* vm = <gn_main_t*><size_t>self._main_ptr()
        for k in range(self.nm.n_used):
            if self.nm.entries[k].flags & GN_NBR_F_VALID and self.nm.entries[k].n_queued:
                if vm != NULL:
                    gn_main_free(vm, self.nm.entries[k].queue, self.nm.entries[k].n_queued)
                self.nm.n_queued_total -= self.nm.entries[k].n_queued
                self.nm.entries[k].n_queued = 0
        self.nm.attached = 0


