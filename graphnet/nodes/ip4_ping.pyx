"""``ip4-ping`` and ``ip4-ping-reply``: ICMP echo requests that graphnet
originates itself, and their replies (the ``ping`` command,
graphnet.cli.ping).

- ``ip4-ping`` (input, interrupt mode): the control plane queues requests
  (``PingMain.send``, in the loop's thread) and raises its interrupt; it
  builds each one in fresh buffers: IPv4 (TTL 64, no DF, an identification
  from a counter) + ICMP echo (type 8, id, seq) + ``size`` bytes of data,
  the first 8 of which are the send time (CLOCK_MONOTONIC ns, host order)
  when size >= 8, the rest the byte pattern ``i & 0xff``; chained when it
  exceeds a buffer (up to 65507 bytes of data: IPv4's limit). Flagged
  GN_BUFFER_F_LOCALLY_ORIGINATED, sw_if_index[RX] the source interface,
  then ``ip4-lookup`` -> ip4-rewrite (ip4-frag over the MTU) or ip4-arp,
  as any packet. Queue: at most PING_MAX_REQUESTS waiting (``send`` says
  False when full); drops: ``no-buffers`` (the pool had too few).
- ``ip4-ping-reply`` (internal): ``ip4-icmp-input`` hands it echo replies
  (type 0) addressed to us, checked (length, checksum) and marked with
  its ``echo-reply-received`` error. A reply whose id belongs to a ping in
  progress (``open_id``) is recorded in a bounded ring (PING_MAX_REPLIES:
  source, id, seq, TTL, ICMP bytes, the send time read back from the data
  when there are 8 bytes of it in the first buffer, the receive time) and
  freed (``replies``); one nobody waits for goes to error-drop as it came,
  so it is still counted as ip4-icmp-input's ``echo-reply-received``; a
  full ring drops (``ring-full``).

Metadata used (ip4-ping-reply): current_data (the IPv4 header),
current_length. Set (ip4-ping): current_length, chains, sw_if_index,
flags. Next nodes: ``ip4-lookup`` (ip4-ping); error-drop. Counters:
``sent``, ``no-buffers`` (ip4-ping); ``replies``, ``ring-full``
(ip4-ping-reply).

The ring and the queue are touched only in the loop's thread (nodes, and
control-plane calls through engine.call), so they need no lock. Trace: the
IPv4 packet, decoded (kit.trace_ip4: ICMP id and seq).
"""
import weakref

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_net32
from graphnet.includes.platform cimport gn_time_ns
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_FRAME_SIZE, GN_RX, GN_TX, GN_INVALID_INDEX, GN_BUFFER_DATA_SIZE,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_LOCALLY_ORIGINATED, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_increment_error, gn_next_buffers_t,
                                 gn_next_buffers_put, gn_next_buffers_flush, gn_buffer_set_error)
from graphnet.nodes.ip4_csum cimport gn_chain_sum
from graphnet.wire.inet cimport gn_inet_checksum
from graphnet.wire.ip4 cimport GN_IP4_HEADER_LEN, GN_IP4_PROTO_ICMP, gn_ip4_header_bytes, gn_ip4_total_length, gn_ip4_set_checksum
from graphnet.wire.icmp4 cimport GN_ICMP4_HEADER_LEN, GN_ICMP4_ECHO_REQUEST
from graphnet.vlib.kit cimport NodeData, gn_node_fn
from graphnet.vlib.kit import node, trace_ip4

cdef enum:
    PING_MAX_REQUESTS = 64          # queued by the control plane, not yet built
    PING_MAX_REPLIES = 1024         # recorded, not yet taken
    PING_MAX_IDS = 32               # pings in progress at once
    PING_MAX_CHAIN = 40             # buffers of the largest request (65535 bytes / 2048, rounded up)
    PING_TTL = 64
    PING_STAMP = 8                  # bytes of send time at the start of the data

cpdef enum Next:
    NEXT_LOOKUP, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_SENT, ERROR_NO_BUFFERS, N_ERROR
cpdef enum ReplyError:
    REPLY_ERROR_NONE, REPLY_ERROR_REPLIES, REPLY_ERROR_RING_FULL, REPLY_N_ERROR

NEXTS = (("lookup", "ip4-lookup"),)

MAX_SIZE = 65535 - GN_IP4_HEADER_LEN - GN_ICMP4_HEADER_LEN     # 65507 bytes of data
MAX_REQUESTS = PING_MAX_REQUESTS
MAX_IDS = PING_MAX_IDS

ERRORS = (
    ("none", "info", "no error"),
    ("sent", "info", "echo requests sent"),
    ("no-buffers", "warn", "echo request not sent: no buffers"),
)
REPLY_ERRORS = (
    ("none", "info", "no error"),
    ("replies", "info", "echo replies recorded for a ping in progress"),
    ("ring-full", "error", "echo reply dropped: the reply ring is full (not read)"),
)


ctypedef struct ping_request_t:
    uint32_t src                    # host order
    uint32_t dst
    uint32_t rx_sw_if_index
    uint32_t size                   # bytes of data after the ICMP header
    uint16_t id
    uint16_t seq

ctypedef struct ping_reply_t:
    uint64_t tx_ns                  # from the data (0: fewer than 8 bytes came back)
    uint64_t rx_ns
    uint32_t src
    uint32_t n_bytes                # ICMP message (header + data)
    uint16_t id
    uint16_t seq
    uint8_t ttl

ctypedef struct ping_main_t:
    ping_request_t requests[PING_MAX_REQUESTS]
    uint32_t req_head
    uint32_t n_req
    ping_reply_t replies[PING_MAX_REPLIES]
    uint32_t rep_head
    uint32_t n_rep
    uint16_t ids[PING_MAX_IDS]
    uint32_t n_ids
    uint16_t ip_id                  # IPv4 identification of the next request


cdef inline void _put_net32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef uint32_t _build(gn_main_t* vm, ping_main_t* pm, const ping_request_t* r) noexcept nogil:
    """The echo request r in fresh buffers (a chain when it needs more than
    one); GN_INVALID_INDEX when the pool has too few."""
    cdef uint32_t bis[PING_MAX_CHAIN]
    cdef uint32_t total = GN_IP4_HEADER_LEN + GN_ICMP4_HEADER_LEN + r.size
    cdef uint32_t nb = (total + GN_BUFFER_DATA_SIZE - 1) // GN_BUFFER_DATA_SIZE, k, j, off, here, data_i = 0
    cdef uint64_t now = gn_time_ns()
    cdef uint8_t stamp[PING_STAMP]
    cdef gn_buffer_t* b
    cdef gn_buffer_t* first
    cdef uint8_t* p
    cdef bint complete
    if nb > PING_MAX_CHAIN:
        return GN_INVALID_INDEX
    k = gn_main_alloc(vm, bis, nb)
    if k != nb:
        if k:
            gn_main_free(vm, bis, k)
        return GN_INVALID_INDEX
    memcpy(stamp, &now, PING_STAMP)
    first = gn_main_buffer(vm, bis[0])
    p = gn_buffer_current(first)
    p[0] = 0x45
    p[1] = 0
    gn_put_net16(p + 2, <uint16_t>total)
    gn_put_net16(p + 4, pm.ip_id)
    pm.ip_id += 1
    gn_put_net16(p + 6, 0)
    p[8] = PING_TTL
    p[9] = GN_IP4_PROTO_ICMP
    _put_net32(p + 12, r.src)
    _put_net32(p + 16, r.dst)
    gn_ip4_set_checksum(p)
    p += GN_IP4_HEADER_LEN
    p[0] = GN_ICMP4_ECHO_REQUEST
    p[1] = 0
    gn_put_net16(p + 2, 0)
    gn_put_net16(p + 4, r.id)
    gn_put_net16(p + 6, r.seq)
    off = GN_IP4_HEADER_LEN + GN_ICMP4_HEADER_LEN          # bytes written in this buffer
    for k in range(nb):
        b = gn_main_buffer(vm, bis[k])
        p = gn_buffer_current(b)
        here = total - (k * GN_BUFFER_DATA_SIZE)
        if here > GN_BUFFER_DATA_SIZE:
            here = GN_BUFFER_DATA_SIZE
        for j in range(off, here):
            p[j] = stamp[data_i] if (data_i < PING_STAMP and r.size >= PING_STAMP) else <uint8_t>data_i
            data_i += 1
        off = 0
        b.current_length = <uint16_t>here
        if k + 1 < nb:
            b.flags = b.flags | GN_BUFFER_F_NEXT_PRESENT
            b.next_buffer = bis[k + 1]
    first.total_length_not_including_first_buffer = total - first.current_length
    first.sw_if_index[GN_RX] = r.rx_sw_if_index
    first.sw_if_index[GN_TX] = GN_INVALID_INDEX
    first.flags = first.flags | GN_BUFFER_F_LOCALLY_ORIGINATED
    p = gn_buffer_current(first) + GN_IP4_HEADER_LEN
    gn_put_net16(p + 2, gn_inet_checksum(gn_chain_sum(vm, first, GN_IP4_HEADER_LEN,
                                                      GN_ICMP4_HEADER_LEN + r.size, 0, &complete)))
    return bis[0]


cdef uint32_t ip4_ping_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef ping_main_t* pm = <ping_main_t*>node.runtime_data
    cdef uint32_t bis[PING_MAX_REQUESTS]
    cdef uint32_t n = 0, bi
    cdef uint64_t n_nobuf = 0
    if pm == NULL:
        return 0
    while pm.n_req:
        bi = _build(vm, pm, &pm.requests[pm.req_head])
        pm.req_head = (pm.req_head + 1) % PING_MAX_REQUESTS
        pm.n_req -= 1
        if bi == GN_INVALID_INDEX:
            n_nobuf += 1
        else:
            bis[n] = bi
            n += 1
    if n:
        gn_enqueue_to_single_next(vm, node, bis, NEXT_LOOKUP, n)
        gn_node_increment_error(vm, node, ERROR_SENT, n)
    if n_nobuf:
        gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, n_nobuf)
    return n


cdef inline bint _waited_for(const ping_main_t* pm, uint16_t id) noexcept nogil:
    cdef uint32_t k
    for k in range(pm.n_ids):
        if pm.ids[k] == id:
            return True
    return False


cdef uint32_t ip4_ping_reply_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    """Echo replies from ip4-icmp-input (current_data at the IPv4 header;
    at least 8 bytes of ICMP in the first buffer, checksum good)."""
    cdef ping_main_t* pm = <ping_main_t*>node.runtime_data
    cdef uint32_t i, n = frame.n_vectors, hlen, n_done = 0
    cdef uint32_t done[GN_FRAME_SIZE]
    cdef uint64_t now = gn_time_ns()
    cdef gn_buffer_t* b
    cdef uint8_t* ip
    cdef ping_reply_t* r
    cdef gn_next_buffers_t out
    out.n = 0
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        ip = gn_buffer_current(b)
        hlen = gn_ip4_header_bytes(ip)
        if pm == NULL or not _waited_for(pm, gn_net16(ip + hlen + 4)):
            gn_next_buffers_put(vm, node, &out, frame.buffers[i], node.drop_next)     # echo-reply-received
            continue
        if pm.n_rep == PING_MAX_REPLIES:
            gn_buffer_set_error(node, b, REPLY_ERROR_RING_FULL)
            gn_next_buffers_put(vm, node, &out, frame.buffers[i], node.drop_next)
            continue
        r = &pm.replies[(pm.rep_head + pm.n_rep) % PING_MAX_REPLIES]
        pm.n_rep += 1
        r.id = gn_net16(ip + hlen + 4)
        r.seq = gn_net16(ip + hlen + 6)
        r.src = gn_net32(ip + 12)
        r.ttl = ip[8]
        r.n_bytes = gn_ip4_total_length(ip) - hlen
        r.rx_ns = now
        r.tx_ns = 0
        if r.n_bytes >= GN_ICMP4_HEADER_LEN + PING_STAMP and b.current_length >= hlen + GN_ICMP4_HEADER_LEN + PING_STAMP:
            memcpy(&r.tx_ns, ip + hlen + GN_ICMP4_HEADER_LEN, PING_STAMP)
        done[n_done] = frame.buffers[i]
        n_done += 1
    gn_next_buffers_flush(vm, node, &out)
    if n_done:
        gn_main_free(vm, done, n_done)
        gn_node_increment_error(vm, node, REPLY_ERROR_REPLIES, n_done)
    return n


cdef class PingMain:
    """One engine's ping state: the request queue, the ids in progress and
    the reply ring, in ip4-ping's kit state (``ping_main_t``, which
    ip4-ping-reply shares). Every method runs in the loop's thread (call
    it through engine.call while the engine runs)."""
    cdef ping_main_t* pm
    cdef object data                # the NodeData holding *pm: alive as long as this object
    cdef public object engine_ref
    cdef public uint32_t node_index

    def __cinit__(self, NodeData data not None):
        if data.size < sizeof(ping_main_t):
            raise ValueError("ip4-ping's state is too small for ping_main_t")
        self.data = data
        self.pm = <ping_main_t*>data.data
        self.node_index = GN_INVALID_INDEX

    def open_id(self, uint16_t id):
        """Wait for replies with this id; False when PING_MAX_IDS pings are
        in progress already, or the id is taken."""
        if self.pm.n_ids >= PING_MAX_IDS or _waited_for(self.pm, id):
            return False
        self.pm.ids[self.pm.n_ids] = id
        self.pm.n_ids += 1
        return True

    def close_id(self, uint16_t id):
        """Stop waiting for id; its replies still in the ring are dropped."""
        cdef uint32_t k
        for k in range(self.pm.n_ids):
            if self.pm.ids[k] == id:
                self.pm.ids[k] = self.pm.ids[self.pm.n_ids - 1]
                self.pm.n_ids -= 1
                break
        self.take(id)

    def ids(self):
        return [self.pm.ids[k] for k in range(self.pm.n_ids)]

    def send(self, uint32_t src, uint32_t dst, uint16_t id, uint16_t seq, uint32_t size,
             uint32_t rx_sw_if_index=GN_INVALID_INDEX):
        """Queue one echo request (addresses as host-order integers) and
        raise ip4-ping's interrupt. Returns the time it was queued
        (monotonic ns; the request is built in the next loop iteration),
        or None when the queue is full."""
        cdef ping_request_t* r
        if size > MAX_SIZE:
            raise ValueError(f"size {size}: at most {MAX_SIZE} bytes")
        if self.pm.n_req == PING_MAX_REQUESTS:
            return None
        r = &self.pm.requests[(self.pm.req_head + self.pm.n_req) % PING_MAX_REQUESTS]
        r.src, r.dst, r.id, r.seq, r.size, r.rx_sw_if_index = src, dst, id, seq, size, rx_sw_if_index
        self.pm.n_req += 1
        eng = self.engine_ref() if self.engine_ref is not None else None
        if eng is not None and self.node_index != GN_INVALID_INDEX:
            eng.main.set_interrupt_pending(self.node_index)
        return gn_time_ns()

    def take(self, uint16_t id):
        """The recorded replies with this id, oldest first, removed from
        the ring: ``[(seq, src, ttl, icmp_bytes, tx_ns, rx_ns), ...]``
        (src a host-order integer, tx_ns 0 when unknown)."""
        cdef uint32_t k, kept = 0
        cdef ping_reply_t r
        out = []
        for k in range(self.pm.n_rep):
            r = self.pm.replies[(self.pm.rep_head + k) % PING_MAX_REPLIES]
            if r.id == id:
                out.append((r.seq, r.src, r.ttl, r.n_bytes, r.tx_ns, r.rx_ns))
            else:
                self.pm.replies[(self.pm.rep_head + kept) % PING_MAX_REPLIES] = r
                kept += 1
        self.pm.n_rep = kept
        return out

    def stats(self) -> dict:
        return {"queued": self.pm.n_req, "replies_held": self.pm.n_rep, "pings": self.pm.n_ids}


def ping_main(engine) -> PingMain:
    """The engine's PingMain (the graph is built first; KeyError when it
    has no ip4-ping)."""
    engine.build()
    if "ip4-ping" not in engine.node_data:
        raise KeyError("the graph has no ip4-ping (add the IPv4 host nodes)")
    return engine.node_data["ip4-ping"].keep


def _setup(engine, node_index):
    data = engine.node_data["ip4-ping"]
    pm = data.keep = PingMain(data)
    pm.engine_ref = weakref.ref(engine)
    pm.node_index = node_index
    engine.main.set_runtime_data(engine.index["ip4-ping-reply"], data.capsule())


NODES = (
    node("ip4-ping", gn_node_fn(ip4_ping_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error, type="input",
         state="interrupt", data_size=sizeof(ping_main_t), setup=_setup, trace=trace_ip4("tx"),
         doc="Builds the ICMP echo requests the ping command asks for and sends them to ip4-lookup."),
    node("ip4-ping-reply", gn_node_fn(ip4_ping_reply_fn), errors=REPLY_ERRORS, Error=ReplyError, trace=trace_ip4(),
         doc="Records echo replies for the pings in progress; others are dropped as "
             "ip4-icmp-input's echo-reply-received."),
)
FEATURE = "ip4-host"
