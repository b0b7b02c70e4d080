"""``ip4-neighbor`` and ``ip4-neighbor-process``: the graph glue of the IPv4
neighbour table (``graphnet.fib.ip4_neighbor_table``, where the entries,
their states and the control API live: ``ip4_neighbors(engine)``).

``ip4-neighbor`` (a C input node in interrupt mode, woken by its own timer
and by the control plane) makes one pass over the table per run: it
flushes the queue of a resolved neighbour to ip4-lookup (``flushed``),
retransmits the ARP requests of incomplete entries every probe_interval
(``requests-sent``; a token bucket limits them: ``throttled``), drops the
queue of a neighbour that never answered (``resolution-failed``) and
deletes it, probes stale entries with unicast ARP requests to their MAC
(``probes-sent``) and marks those that never answer for deletion; then it
arms its timer for the earliest thing due. After ``set interface mac
address`` it sends a gratuitous ARP for each address of the interface
from the new MAC (``announced``), as Linux's arp_notify does. A request
it cannot allocate is ``no-buffers``.

``ip4-neighbor-process`` (a Python process, woken through its interrupt
by the data plane and for aging) makes the FIB follow the table (rewrite
adjacencies, /32s of connected neighbours), then lets ip4-neighbor flush
the queues; it deletes entries whose probes failed (``probe-failed``)
and ages old ones. The table's control plane counts under this node's
rows what it drops: queued packets of a deleted entry (``deleted``),
entries evicted from a full table (``evicted``).

Metadata used: the queued packets' own (they were ip4-lookup's input);
ip4-neighbor sets on the requests it builds: current_length,
sw_if_index[rx/tx], LOCALLY_ORIGINATED. Next nodes: ``ip4-lookup``
(flushed queues), ``interface-output`` (ARP requests, probes, gratuitous
ARP); drops go to error-drop. Trace: the default record.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.platform cimport gn_time_ns
from graphnet.io.interface cimport InterfaceTable, gn_interface_main_t
from graphnet.fib.ip4_address cimport Ip4Addresses, gn_ip4_address_main_t, GN_IP4_ADDR_MAX_INTERFACES
from graphnet.fib.ip4_neighbor_table cimport (Ip4Neighbors, gn_ip4_nbr_main_t, gn_ip4_neighbor_t,
                                              gn_nbr_remove, gn_nbr_request_token, gn_nbr_build_request,
                                              gn_nbr_build_arp_request, gn_nbr_arm_service, gn_nbr_wake_control,
                                              GN_NBR_NONE, GN_NBR_F_VALID, GN_NBR_F_COMPLETE, GN_NBR_F_STATIC,
                                              GN_NBR_F_NO_FIB, GN_NBR_F_FLUSH, GN_NBR_F_PROBE_FAILED)
from graphnet.vlib.buffer cimport gn_frame_t, GN_FRAME_SIZE
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_single_next,
                                 gn_node_increment_error, gn_buffer_set_error)
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.vlib.kit import node
from graphnet.vlib.process import WaitEvent
from graphnet.fib.ip4_address import ip4_addresses
# the table's API, here too for the modules that imported it from the node
from graphnet.fib.ip4_neighbor_table import ip4_neighbors

cpdef enum Next:
    NEXT_LOOKUP, NEXT_OUTPUT, N_NEXT
cpdef enum Error:
    ERROR_NONE
    ERROR_RESOLUTION_FAILED
    ERROR_NO_BUFFERS
    ERROR_DELETED
    ERROR_REQUESTS_SENT
    ERROR_THROTTLED
    ERROR_FLUSHED
    ERROR_PROBES_SENT
    ERROR_PROBE_FAILED
    ERROR_EVICTED
    ERROR_ANNOUNCED
    N_ERROR

NEXTS = (("lookup", "ip4-lookup"), ("output", "interface-output"))

ERRORS = (
    ("none", "info", "no error"),
    ("resolution-failed", "error", "neighbour never answered: queued packet dropped"),
    ("no-buffers", "warn", "no buffer for an ARP request"),
    ("deleted", "info", "queued packet dropped: its neighbour entry was deleted"),
    ("requests-sent", "info", "ARP requests retransmitted"),
    ("throttled", "info", "ARP request not sent: request rate limit"),
    ("flushed", "info", "queued packets sent on after resolution"),
    ("probes-sent", "info", "unicast ARP probes sent to stale neighbours"),
    ("probe-failed", "warn", "stale neighbour did not answer its unicast probes: entry deleted"),
    ("evicted", "warn", "table full: least recently confirmed dynamic entry removed to make room"),
    ("announced", "info", "gratuitous ARP sent for an address of an interface whose MAC changed"),
)


# --- ip4-neighbor: retries, timeouts, flush --------------------------------------

ctypedef struct nbr_service_t:           # the node's kit state
    gn_ip4_nbr_main_t* nm
    gn_interface_main_t* im
    gn_ip4_address_main_t* am

ctypedef struct out_t:
    uint32_t lookup[GN_FRAME_SIZE]
    uint32_t n_lookup
    uint32_t output[GN_FRAME_SIZE]
    uint32_t n_output
    uint32_t drop[GN_FRAME_SIZE]
    uint32_t n_drop


cdef inline void _out_flush(gn_main_t* vm, gn_node_runtime_t* node, out_t* o) noexcept nogil:
    if o.n_lookup:
        gn_enqueue_to_single_next(vm, node, o.lookup, NEXT_LOOKUP, o.n_lookup)
        o.n_lookup = 0
    if o.n_output:
        gn_enqueue_to_single_next(vm, node, o.output, NEXT_OUTPUT, o.n_output)
        o.n_output = 0
    if o.n_drop:
        gn_enqueue_to_single_next(vm, node, o.drop, node.drop_next, o.n_drop)
        o.n_drop = 0


cdef inline void _out_put(gn_main_t* vm, gn_node_runtime_t* node, out_t* o, uint32_t bi) noexcept nogil:
    if o.n_output == GN_FRAME_SIZE:
        _out_flush(vm, node, o)
    o.output[o.n_output] = bi
    o.n_output += 1


cdef uint32_t _announce(gn_main_t* vm, gn_node_runtime_t* node, nbr_service_t* sv, out_t* o) noexcept nogil:
    """A gratuitous ARP (a broadcast request from and for the address) for
    every address of each interface in announce_sw, from its current MAC,
    as Linux's arp_notify on a MAC change: neighbours that know the
    address update their entry. Not rate limited (an operator's action, at
    most 8 per interface). Returns how many were sent."""
    cdef gn_ip4_nbr_main_t* nm = sv.nm
    cdef uint32_t j, k, sw, bi, n = 0
    cdef uint64_t n_nobuf = 0
    for j in range(nm.n_announce):
        sw = nm.announce_sw[j]
        if sw >= GN_IP4_ADDR_MAX_INTERFACES:
            continue
        for k in range(sv.am.n[sw]):
            bi = gn_nbr_build_arp_request(vm, sv.im, sw, sv.am.addrs[sw][k].address, sv.am.addrs[sw][k].address, NULL)
            if bi == GN_NBR_NONE:
                n_nobuf += 1
            else:
                _out_put(vm, node, o, bi)
                n += 1
    nm.n_announce = 0
    if n:
        nm.n_announced += n
        gn_node_increment_error(vm, node, ERROR_ANNOUNCED, n)
    if n_nobuf:
        gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, n_nobuf)
    return n


cdef uint32_t ip4_neighbor_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    """One pass over the table: flush resolved queues, retry or give up
    incomplete entries, probe stale ones (see the module docstring), then
    arm the timer for the earliest thing due. Deadlines of reachable
    entries are rounded up to at least one probe_interval from now, so
    staleness wakes this node at most once per probe_interval."""
    cdef nbr_service_t* sv = <nbr_service_t*>node.runtime_data
    cdef gn_ip4_nbr_main_t* nm = sv.nm
    cdef gn_ip4_neighbor_t* e
    cdef uint64_t now = gn_time_ns(), next_due = 0, due
    cdef uint32_t k, j, bi, n_out = 0
    cdef uint64_t n_failed = 0, n_requests = 0, n_throttled = 0, n_nobuf = 0, n_flushed = 0, n_probes = 0
    cdef bint wake = False
    cdef out_t o
    o.n_lookup = o.n_output = o.n_drop = 0
    nm.service_due_ns = 0
    n_out += _announce(vm, node, sv, &o)
    for k in range(nm.n_used):
        e = &nm.entries[k]
        if not (e.flags & GN_NBR_F_VALID):
            continue
        if e.flags & GN_NBR_F_FLUSH:
            e.flags = e.flags & ~GN_NBR_F_FLUSH
            for j in range(e.n_queued):
                if o.n_lookup == GN_FRAME_SIZE:
                    _out_flush(vm, node, &o)
                o.lookup[o.n_lookup] = e.queue[j]
                o.n_lookup += 1
            n_flushed += e.n_queued
            n_out += e.n_queued
            nm.n_queued_total -= e.n_queued
            e.n_queued = 0
        if e.flags & GN_NBR_F_COMPLETE:
            # reachable -> stale -> probe (unicast) -> deleted by the control plane
            if nm.reachable_ns == 0 or e.flags & (GN_NBR_F_STATIC | GN_NBR_F_NO_FIB | GN_NBR_F_PROBE_FAILED):
                continue
            if e.updated_ns + nm.reachable_ns > now:
                due = e.updated_ns + nm.reachable_ns              # reachable
                if due < now + nm.probe_interval_ns:
                    due = now + nm.probe_interval_ns
            elif now >= e.next_probe_ns:                          # stale: probe now (0 after a confirmation)
                if e.n_probes >= nm.max_unicast_probes:
                    e.flags = e.flags | GN_NBR_F_PROBE_FAILED   # still used until the control plane deletes it
                    wake = True
                    continue
                e.next_probe_ns = now + nm.probe_interval_ns
                due = e.next_probe_ns
                if gn_nbr_request_token(nm, now):
                    bi = gn_nbr_build_request(vm, sv.im, sv.am, e.sw_if_index, e.ip, e.mac)
                    if bi == GN_NBR_NONE:
                        n_nobuf += 1
                    else:
                        _out_put(vm, node, &o, bi)
                        e.n_probes += 1
                        n_probes += 1
                        n_out += 1
                else:
                    n_throttled += 1                             # tried again, not counted as unanswered
            else:
                due = e.next_probe_ns
            if next_due == 0 or due < next_due:
                next_due = due
            continue
        if now >= e.next_probe_ns:
            if e.n_probes >= nm.max_probes:
                for j in range(e.n_queued):
                    if o.n_drop == GN_FRAME_SIZE:
                        _out_flush(vm, node, &o)
                    bi = e.queue[j]
                    gn_buffer_set_error(node, gn_main_buffer(vm, bi), ERROR_RESOLUTION_FAILED)
                    o.drop[o.n_drop] = bi
                    o.n_drop += 1
                n_failed += e.n_queued
                n_out += e.n_queued
                nm.n_queued_total -= e.n_queued
                e.n_queued = 0
                gn_nbr_remove(nm, k)
                continue
            e.n_probes += 1
            e.next_probe_ns = now + nm.probe_interval_ns
            if gn_nbr_request_token(nm, now):
                bi = gn_nbr_build_request(vm, sv.im, sv.am, e.sw_if_index, e.ip, NULL)
                if bi == GN_NBR_NONE:
                    n_nobuf += 1
                else:
                    _out_put(vm, node, &o, bi)
                    n_requests += 1
                    n_out += 1
            else:
                n_throttled += 1
        if next_due == 0 or e.next_probe_ns < next_due:
            next_due = e.next_probe_ns
    _out_flush(vm, node, &o)
    if wake:
        gn_nbr_wake_control(nm, vm)
    if next_due:
        gn_nbr_arm_service(nm, vm, next_due)
    if n_requests:
        gn_node_increment_error(vm, node, ERROR_REQUESTS_SENT, n_requests)
    if n_probes:
        nm.n_unicast_probes += n_probes
        gn_node_increment_error(vm, node, ERROR_PROBES_SENT, n_probes)
    if n_throttled:
        gn_node_increment_error(vm, node, ERROR_THROTTLED, n_throttled)
    if n_nobuf:
        gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, n_nobuf)
    if n_flushed:
        gn_node_increment_error(vm, node, ERROR_FLUSHED, n_flushed)
    return n_out


def _setup(engine, node_index):
    cdef nbr_service_t* sv = <nbr_service_t*>gn_node_data(engine, "ip4-neighbor")
    cdef Ip4Neighbors nb = ip4_neighbors(engine)
    cdef InterfaceTable interfaces = engine.interfaces
    cdef Ip4Addresses addresses = ip4_addresses(engine)
    engine.node_data["ip4-neighbor"].keep = (nb, interfaces, addresses)
    sv.nm = nb.nm
    sv.im = interfaces.im
    sv.am = addresses.am
    base = engine.error_base["ip4-neighbor"]
    nb._attach(engine, node_index, engine.node_index("ip4-neighbor-process"),
               (base + ERROR_DELETED, base + ERROR_PROBE_FAILED, base + ERROR_EVICTED))
    addresses.listeners.append(lambda event, sw, net, mask: nb._address_removed(sw, net, mask)
                               if event == "del" else None)


def _teardown(engine, node_index):
    data = engine.node_data.get("ip4-neighbor")
    if data is not None and data.keep is not None:
        data.keep[0]._teardown()


def _process(engine):
    """Syncs the FIB with the neighbour table and ages entries."""
    nb = ip4_neighbors(engine)
    while True:
        timeout = nb._service()        # first: whatever the data plane asked before we started
        yield WaitEvent(timeout=timeout, interrupts=True)


NODES = (
    node("ip4-neighbor", gn_node_fn(ip4_neighbor_fn), type="input", state="interrupt", nexts=NEXTS, Next=Next,
         errors=ERRORS, Error=Error, data_size=sizeof(nbr_service_t), setup=_setup, teardown=_teardown,
         doc="Neighbour resolution service: ARP retries, resolution timeouts, flushing queues of resolved "
             "neighbours."),
    node("ip4-neighbor-process", None, type="process", process=_process,
         doc="Control plane of the neighbour table: FIB sync of resolved neighbours, aging."),
)
FEATURE = "ip4-host"
