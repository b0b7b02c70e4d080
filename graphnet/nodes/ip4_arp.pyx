"""``ip4-arp``: packets whose next hop's MAC is not known yet (ip4-lookup's
glean adjacencies): resolve it with ARP and hold the packets meanwhile.

Attaches to ``ip4-lookup`` with key ``"glean"``. The next hop is the
adjacency's ``next_hop`` (a route via an address) or, for a connected
prefix, the packet's destination. Per packet, in the neighbour table
(graphnet.fib.ip4_neighbor_table):

  - no entry: an incomplete one is made, a broadcast ARP request is sent at
    once (subject to the table's request rate limit: ``throttled``) and the
    packet is queued; ip4-neighbor retries and, after ``max_probes``
    unanswered requests, drops the queue (``resolution-failed``);
  - incomplete: the packet is queued;
  - complete (the control plane has not made the FIB's rewrite yet): the
    packet is queued and the control plane woken; it will go on to
    ip4-lookup once the FIB has the rewrite.

Queues: a neighbour's queue holds at most ``queue_limit`` packets; when it
is full the OLDEST is dropped and the new one kept (``queue-full``), as
Linux's unres_qlen does: the datagram sent last is the one delivered when
ARP resolves (a retransmission replaces what it retransmits). All queues
together hold at most ``max_queued`` buffers (the smaller of
``max_queued_total`` and ``queue_pool_share`` of the engine's buffer pool,
default 1/8): past it a packet for a neighbour that has a queue replaces
that queue's oldest (``queue-full``), and one for a neighbour with an empty
queue is dropped (``queues-full``), so packets waiting for ARP never take
more than that share of the pool.

Drops: ``interface-down`` (the adjacency's interface is admin down or
its kernel link is down or gone: the packet is not queued),
``queue-full``, ``queues-full`` (above), ``table-full`` (too many incomplete entries, or no room),
``no-source-address`` (the interface has no IPv4 address to ask from),
``no-adjacency`` (resolved, but the FIB has no adjacency to make a rewrite
of, e.g. a user's on-link /32), ``bad-adjacency``. Counted (info):
``requests-sent``, ``throttled``, ``queued``; ``no-buffers`` (no buffer
for an ARP request: the packet stays queued).

Metadata used: current_data (the IPv4 header), opaque adj_index. Set:
nothing (queued packets are not modified). Next nodes: ``interface-output`` (the requests).
Trace: the rx interface and the IPv4 packet, decoded (kit.trace_ip4).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memmove
from graphnet.includes.platform cimport gn_time_ns
from graphnet.io.interface cimport InterfaceTable, gn_interface_main_t, gn_interface_t, gn_interface
from graphnet.fib.ip4_address cimport Ip4Addresses, gn_ip4_address_main_t, gn_ip4_source_address
from graphnet.fib.ip4_fib cimport Ip4Fib, gn_ip4_fib_t, gn_ip4_adj_t, gn_ip4_opaque, GN_ADJ_GLEAN
from graphnet.fib.ip4_neighbor_table cimport (Ip4Neighbors, gn_ip4_nbr_main_t, gn_ip4_neighbor_t, gn_nbr_find,
                                              gn_nbr_create, gn_nbr_request_token, gn_nbr_build_request,
                                              gn_nbr_arm_service, gn_nbr_wake_control, GN_NBR_NONE, GN_NBR_F_COMPLETE,
                                              GN_NBR_F_NO_FIB, GN_NBR_F_FIB_PENDING, GN_NBR_F_WANTED)
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, gn_buffer_current, GN_BUFFER_F_TRACED
from graphnet.vlib.main cimport (gn_buffer_set_error, gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_single_next,
                                 gn_node_increment_error)
from graphnet.wire.ip4 cimport gn_ip4_dst
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.vlib.kit import node, trace_ip4
from graphnet.fib.ip4_address import ip4_addresses
from graphnet.fib.ip4_fib import ip4_fib
from graphnet.fib.ip4_neighbor_table import ip4_neighbors

cpdef enum Next:
    NEXT_OUTPUT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_QUEUE_FULL, ERROR_TABLE_FULL, ERROR_NO_SOURCE_ADDRESS, ERROR_NO_ADJACENCY, ERROR_BAD_ADJACENCY
    ERROR_REQUESTS_SENT, ERROR_THROTTLED, ERROR_QUEUED, ERROR_NO_BUFFERS, ERROR_QUEUES_FULL, ERROR_INTERFACE_DOWN
    N_ERROR

ERRORS = (
    ("none", "info", "no error"),
    ("queue-full", "error", "oldest packet waiting for ARP dropped: its neighbour's queue was full (unres_qlen)"),
    ("table-full", "error", "packet dropped: too many unresolved neighbours"),
    ("no-source-address", "error", "no IPv4 address on the interface to send ARP from"),
    ("no-adjacency", "error", "neighbour resolved but no route to make a rewrite of"),
    ("bad-adjacency", "error", "adjacency is not a glean"),
    ("requests-sent", "info", "ARP requests sent"),
    ("throttled", "info", "ARP request not sent: request rate limit"),
    ("queued", "info", "packets queued until their next hop is resolved"),
    ("no-buffers", "warn", "no buffer for an ARP request"),
    ("queues-full", "error", "packet dropped: packets waiting for ARP hold their share of the buffer pool"),
    ("interface-down", "error", "packet dropped: its interface is down or its link lost (nothing queued)"),
)

ctypedef struct ip4_arp_t:
    gn_ip4_fib_t* fib
    gn_interface_main_t* im
    gn_ip4_address_main_t* am
    gn_ip4_nbr_main_t* nm


cdef uint32_t ip4_arp_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ip4_arp_t* st = <ip4_arp_t*>node.runtime_data
    cdef gn_ip4_nbr_main_t* nm = st.nm
    cdef const gn_ip4_adj_t* adj
    cdef gn_ip4_neighbor_t* e
    cdef uint32_t drops[256]
    cdef uint32_t requests[256]
    cdef uint32_t i, n = frame.n_vectors, n_drops = 0, n_requests = 0, ai, sw, nh, k, bi, err, old
    cdef uint64_t now = gn_time_ns(), n_queued = 0, n_throttled = 0, n_nobuf = 0
    cdef bint wake = False
    cdef gn_buffer_t* b
    cdef gn_buffer_t* rb
    cdef gn_interface_t* hw
    for i in range(n):
        bi = frame.buffers[i]
        b = gn_main_buffer(vm, bi)
        ai = gn_ip4_opaque(b).adj_index
        err = 0
        if ai >= st.fib.n_adjs or st.fib.adjs[ai].type != GN_ADJ_GLEAN:
            err = ERROR_BAD_ADJACENCY
        else:
            adj = &st.fib.adjs[ai]
            sw = adj.sw_if_index
            nh = adj.next_hop if adj.next_hop else gn_ip4_dst(gn_buffer_current(b))
            hw = gn_interface(st.im, sw)
            k = gn_nbr_find(nm, sw, nh)
            if hw == NULL or not hw.admin_up or not hw.link_up:
                err = ERROR_INTERFACE_DOWN       # nothing to resolve on: no entry, nothing queued
            elif k == GN_NBR_NONE:
                if gn_ip4_source_address(st.am, sw, nh) == 0:
                    err = ERROR_NO_SOURCE_ADDRESS
                elif nm.n_incomplete >= nm.max_incomplete:
                    err = ERROR_TABLE_FULL
                else:
                    k = gn_nbr_create(nm, vm, sw, nh, True)
                    if k == GN_NBR_NONE:
                        err = ERROR_TABLE_FULL
                    else:
                        e = &nm.entries[k]
                        e.updated_ns = now
                        e.n_probes = 1
                        e.next_probe_ns = now + nm.probe_interval_ns
                        if gn_nbr_request_token(nm, now):
                            requests[n_requests] = gn_nbr_build_request(vm, st.im, st.am, sw, nh, NULL)
                            if requests[n_requests] == GN_NBR_NONE:
                                n_nobuf += 1
                            else:
                                if b.flags & GN_BUFFER_F_TRACED:
                                    # the request shows in the trace of the packet that asked for it
                                    rb = gn_main_buffer(vm, requests[n_requests])
                                    rb.flags = rb.flags | GN_BUFFER_F_TRACED
                                    rb.trace_handle = b.trace_handle
                                n_requests += 1
                        else:
                            n_throttled += 1
                        gn_nbr_arm_service(nm, vm, e.next_probe_ns)
            if err == 0:
                e = &nm.entries[k]
                e.flags = e.flags | GN_NBR_F_WANTED         # graphnet has traffic for it: in use
                if e.flags & GN_NBR_F_NO_FIB:
                    err = ERROR_NO_ADJACENCY
                elif nm.queue_limit == 0:
                    err = ERROR_QUEUE_FULL
                elif e.n_queued and (e.n_queued >= nm.queue_limit or nm.n_queued_total >= nm.max_queued_total):
                    # full: the oldest goes, the newest stays (unres_qlen)
                    old = e.queue[0]
                    gn_buffer_set_error(node, gn_main_buffer(vm, old), ERROR_QUEUE_FULL)
                    drops[n_drops] = old
                    n_drops += 1
                    memmove(&e.queue[0], &e.queue[1], (e.n_queued - 1) * sizeof(uint32_t))
                    e.queue[e.n_queued - 1] = bi
                    n_queued += 1
                elif nm.n_queued_total >= nm.max_queued_total:
                    err = ERROR_QUEUES_FULL
                else:
                    e.queue[e.n_queued] = bi
                    e.n_queued += 1
                    nm.n_queued_total += 1
                    n_queued += 1
                    if e.flags & GN_NBR_F_COMPLETE:
                        e.flags = e.flags | GN_NBR_F_FIB_PENDING
                        wake = True
        if err != 0:
            gn_buffer_set_error(node, b, err)
            drops[n_drops] = bi
            n_drops += 1
    if wake:
        gn_nbr_wake_control(nm, vm)
    if n_requests:
        gn_enqueue_to_single_next(vm, node, requests, NEXT_OUTPUT, n_requests)
        gn_node_increment_error(vm, node, ERROR_REQUESTS_SENT, n_requests)
    if n_drops:
        gn_enqueue_to_single_next(vm, node, drops, node.drop_next, n_drops)
    if n_queued:
        gn_node_increment_error(vm, node, ERROR_QUEUED, n_queued)
    if n_throttled:
        gn_node_increment_error(vm, node, ERROR_THROTTLED, n_throttled)
    if n_nobuf:
        gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, n_nobuf)
    return n


def _setup(engine, node_index):
    cdef ip4_arp_t* st = <ip4_arp_t*>gn_node_data(engine, "ip4-arp")
    cdef Ip4Fib fib = ip4_fib(engine)
    cdef Ip4Addresses addresses = ip4_addresses(engine)
    cdef Ip4Neighbors neighbors = ip4_neighbors(engine)
    engine.node_data["ip4-arp"].keep = (fib, addresses, neighbors)
    st.fib = fib.fib
    st.im = (<InterfaceTable>engine.interfaces).im
    st.am = addresses.am
    st.nm = neighbors.nm


NODES = (
    node("ip4-arp", gn_node_fn(ip4_arp_fn), nexts=(("output", "interface-output"),), Next=Next, errors=ERRORS,
         Error=Error, attach_to=(("ip4-lookup", "glean"),), data_size=sizeof(ip4_arp_t), setup=_setup,
         trace=trace_ip4(), doc=__doc__),
)
FEATURE = "ip4-host"
