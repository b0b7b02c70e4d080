"""``fuzz-input``: structure-aware frame generators, one per node family,
run in C as an input node.

Each call writes up to 256 generated frames straight into buffers (no
Python object per frame) and hands them to ``ethernet-input``, as a pg
stream on a pg interface would: fresh metadata with the rx interface set
(a generator picks the interface per frame: the if0 or if1 of
graphnet.fuzz.runner's graph).

Families (``FAMILIES``; a generator is one C function, so adding TCP is one
more function and one more row):

  ethernet  runt frames, ethertypes (IPv4, ARP, VLAN/QinQ, LLC lengths,
            unknown), group and foreign destination MACs, priority tags;
  arp       requests, replies, gratuitous and probe ARP from spoofed and
            martian senders, bad hardware/protocol types and lengths,
            truncated bodies;
  ip4       IPv4 headers and options (RR, TS, LSRR/SSRR, RA, malformed
            lengths), bad versions/IHL/total lengths, TTL 0..2, martian and
            broadcast sources and destinations, routed (forwarded and
            fragmented to a 576-byte MTU, DF set or not), unresolved next
            hops (ARP), blackholes, no route, an interface that is down,
            jumbo frames as buffer chains;
  icmp      echo requests and replies, errors quoting a header, other
            types, short messages, to us, to broadcasts and routed on;
  udp       to the echo port, closed ports, port 0, bad UDP lengths, zero
            and wrong checksums, TTL 1 and DF-too-big when routed;
  frag      datagrams cut into fragments sent in order, reversed, shuffled,
            with duplicates, overlaps, tiny (8-byte) pieces, a missing piece
            (reassembly timeout), inconsistent ends, offsets past 65535,
            MF pieces not a multiple of 8; identifiers from a small pool so
            datagrams collide.

Adding a family (TCP, when there is a TCP): a ``gen_tcp(fz_t*)`` that
writes one frame into ``f.scratch`` and returns its length (building on
_eth, _ip4, _finish: _l4_checksum then needs the TCP pseudo-header sum), a
row in ``FAMILIES`` and in ``_generator``, and the nodes it must reach in
graphnet.fuzz.runner.EXPECTED.

The ip4, icmp and udp families also send, in about 2 % of their frames,
ARP replies from the next hops graphnet is resolving (so queued packets
are flushed and the FIB's adjacencies change under traffic).

Most frames carry correct checksums (IPv4 header, ICMP, UDP); a few (about
1 in 16) carry a broken one, about 1 in 10 has 1-3 header bytes mutated
before the checksums are fixed, and about 1 in 32 is cut short. Everything
is drawn from one xorshift64* generator seeded by the caller: the same seed
gives the same frames.

Echo-loop guard: a UDP datagram from source port 7 whose source is one of
our own addresses or a broadcast/martian one loops for ever between
udp4-echo and ip4-local on code without issue 9 defect 1's fix; with
``loop_guard`` (default on) such a frame's source port becomes 9 and its
UDP checksum 0 (none), counted in ``guarded``.

Invariants: a frame is at most JUMBO_MAX bytes; frames longer than one
buffer go out as a chain whose first buffer is full (as a device writes
them), and only in the ip4 family, from the resolved peer to our address
or a routed destination, never mutated (so a packet held by reassembly or
the ARP queue is always one buffer: graphnet.fuzz.runner's buffer check
relies on it, with ``Ip4Neighbors.queued_buffers`` for the ARP queues, where an echo
reply to a reassembled datagram may wait as a chain). When the pool runs
dry the frames wait: the node stops asking the loop for more work (so
run-until-idle returns) and generates them once buffers are back.
Errors: ``no-buffers`` (stalls: counted once each, however long).
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.byteorder cimport gn_net16, gn_net32, gn_put_net16, gn_put_net32
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_BUFFER_DATA_SIZE, GN_BUFFER_INIT_BYTES,
                                   GN_FRAME_SIZE, GN_BUFFER_F_NEXT_PRESENT, gn_buffer_meta_template)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_alloc_uninit,
                                 gn_main_free,
                                 gn_enqueue_to_single_next, gn_node_increment_error)
from graphnet.wire.inet cimport gn_inet_sum, gn_inet_checksum
from graphnet.vlib.node import Node

cdef enum:
    FZ_ETHERNET = 0
    FZ_ARP = 1
    FZ_IP4 = 2
    FZ_ICMP = 3
    FZ_UDP = 4
    FZ_FRAG = 5
    FZ_N = 6
    JUMBO_MAX = 9000
    SCRATCH = 9216
    MAX_PIECES = 64
    DGRAM_MAX = 4096
    ERROR_NO_BUFFERS = 1
    L3 = 14

FAMILIES = {
    "ethernet": (FZ_ETHERNET, "runts, ethertypes, VLAN/LLC, group and foreign MACs"),
    "arp": (FZ_ARP, "requests/replies/gratuitous/probes from spoofed senders, bad types and lengths"),
    "ip4": (FZ_IP4, "IPv4 headers and options, TTL, martians, forwarding, fragmentation, jumbo chains"),
    "icmp": (FZ_ICMP, "echo, errors, other types, short messages, broadcasts, routed"),
    "udp": (FZ_UDP, "echo port, closed ports, bad lengths and checksums, TTL 1, DF too big"),
    "frag": (FZ_FRAG, "fragments: shuffled, duplicates, overlaps, tiny, missing, inconsistent, too long"),
}

ctypedef struct fz_env_t:
    uint32_t addr[2]             # our address on if0 and if1 (host order)
    uint32_t bcast[2]            # their directed broadcasts
    uint32_t mask[2]             # their netmasks
    uint32_t peer                # a resolved (static) neighbour on if0
    uint32_t routed              # a /16 routed via a resolved neighbour on if1
    uint32_t glean               # a /16 routed via an unresolved neighbour on if1
    uint32_t blackhole           # a /16 drop route
    uint32_t down                # a /16 routed via an interface that is down
    uint32_t pending             # the unresolved next hop of `glean` (on if1)
    uint8_t mac[2][6]

ctypedef struct fz_plan_t:      # the frag family: the datagram being sent in pieces
    uint8_t dgram[DGRAM_MAX]
    uint32_t len
    uint32_t hlen
    uint32_t rx_if
    uint32_t n
    uint32_t next
    uint16_t first[MAX_PIECES]
    uint16_t plen[MAX_PIECES]
    uint8_t mf[MAX_PIECES]
    uint8_t bad_csum[MAX_PIECES]

ctypedef struct fz_t:
    uint64_t rng
    uint32_t family
    uint8_t loop_guard
    uint64_t remaining           # frames still to generate in this batch
    uint64_t generated
    uint64_t no_buffers          # stalls: the pool had too few buffers for a call's frames
    uint8_t stalled
    uint64_t bad_checksum
    uint64_t mutated
    uint64_t truncated
    uint64_t chained
    uint64_t guarded
    uint64_t meta[2][5]          # fresh metadata for a frame received on if0 / if1
    uint32_t rx_if               # set by the generator for the frame it wrote
    fz_env_t env
    fz_plan_t plan
    uint8_t scratch[SCRATCH]
    uint8_t dgram_tmp[DGRAM_MAX]


# --- randomness ------------------------------------------------------------------

cdef inline uint64_t _rnd(fz_t* f) noexcept nogil:
    """xorshift64*."""
    cdef uint64_t x = f.rng
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    f.rng = x
    return x * 0x2545F4914F6CDD1DULL


cdef inline uint32_t _below(fz_t* f, uint32_t n) noexcept nogil:
    """Uniform in [0, n) (n >= 1)."""
    return <uint32_t>(((_rnd(f) >> 32) * n) >> 32)


cdef inline bint _pct(fz_t* f, uint32_t p) noexcept nogil:
    """True with probability p/100."""
    return _below(f, 100) < p


cdef inline uint32_t _between(fz_t* f, uint32_t a, uint32_t b) noexcept nogil:
    """Uniform in [a, b]."""
    return a + _below(f, b - a + 1)


cdef void _fill(fz_t* f, uint8_t* p, uint32_t n) noexcept nogil:
    cdef uint32_t i = 0
    cdef uint64_t r
    while i + 8 <= n:
        r = _rnd(f)
        memcpy(p + i, &r, 8)
        i += 8
    while i < n:
        p[i] = <uint8_t>_rnd(f)
        i += 1


# --- addresses ---------------------------------------------------------------------

cdef inline uint32_t _onlink(fz_t* f, uint32_t i) noexcept nogil:
    """A host address on interface i's subnet (never the network or the
    broadcast address; may be ours)."""
    cdef uint32_t host = <uint32_t>_rnd(f) & ~f.env.mask[i]
    if host == 0 or host == ~f.env.mask[i]:
        host = 1
    return (f.env.addr[i] & f.env.mask[i]) | host


cdef uint32_t _martian(fz_t* f) noexcept nogil:
    """An address no host should send from."""
    cdef uint32_t k = _below(f, 9)
    if k == 0:
        return 0
    if k == 1:
        return 0x7f000001                       # 127.0.0.1
    if k == 2:
        return 0xe0000000U | _below(f, 0x10000000)   # multicast
    if k == 3:
        return 0xffffffffU
    if k == 4:
        return f.env.bcast[_below(f, 2)]
    if k == 5:
        return f.env.addr[_below(f, 2)]          # one of ours
    if k == 6:
        return 0xf0000000U | _below(f, 0x0fffffff)   # class E
    if k == 7:
        return _below(f, 0x01000000)             # 0/8
    return f.env.addr[0] & f.env.mask[0]          # the network address


cdef uint32_t _src(fz_t* f, uint32_t peer_pct) noexcept nogil:
    """A source: mostly the resolved peer, else on-link neighbours (their
    answers need ARP), martians, random."""
    cdef uint32_t k = _below(f, 100)
    if k < peer_pct:
        return f.env.peer
    if k < peer_pct + (100 - peer_pct) // 2:
        return _onlink(f, 0)
    if k < peer_pct + (100 - peer_pct) * 3 // 4:
        return _martian(f)
    return <uint32_t>_rnd(f)


cdef uint32_t _dst(fz_t* f, uint32_t local_pct) noexcept nogil:
    """A destination: ours (local_pct %), else routed, glean, blackhole,
    on-link, broadcasts, special and random addresses."""
    cdef uint32_t k
    if _below(f, 100) < local_pct:
        return f.env.addr[0] if _pct(f, 85) else f.env.addr[1]
    k = _below(f, 21)
    if k == 20:
        return f.env.down | _below(f, 0x10000)
    if k < 7:
        return f.env.routed | _below(f, 0x10000)
    if k < 9:
        return f.env.glean | _below(f, 0x10000)
    if k < 10:
        return f.env.blackhole | _below(f, 0x10000)
    if k < 12:
        return _onlink(f, _below(f, 2))
    if k < 14:
        return f.env.bcast[_below(f, 2)] if _pct(f, 70) else 0xffffffffU
    if k < 16:
        return _martian(f)
    return <uint32_t>_rnd(f)


# --- headers -------------------------------------------------------------------------

cdef void _mac_peer(fz_t* f, uint8_t* m) noexcept nogil:
    m[0] = 0x02
    m[1] = 0
    m[2] = 0
    m[3] = 0
    m[4] = 0xaa
    m[5] = <uint8_t>_below(f, 256)


cdef uint32_t _eth(fz_t* f, uint8_t* p, uint16_t ethertype, uint32_t odd_dst_pct) noexcept nogil:
    """Ethernet header for a frame received on f.rx_if: to its MAC, or
    (odd_dst_pct %) to broadcast, multicast, another host or random."""
    cdef uint32_t k
    if _below(f, 100) >= odd_dst_pct:
        memcpy(p, f.env.mac[f.rx_if], 6)
    else:
        k = _below(f, 4)
        if k == 0:
            memset(p, 0xff, 6)
        elif k == 1:
            p[0] = 0x01; p[1] = 0x00; p[2] = 0x5e
            p[3] = <uint8_t>_below(f, 128); p[4] = <uint8_t>_rnd(f); p[5] = <uint8_t>_rnd(f)
        elif k == 2:
            _mac_peer(f, p)
        else:
            _fill(f, p, 6)
    _mac_peer(f, p + 6)
    gn_put_net16(p + 12, ethertype)
    return 14


cdef uint32_t _options(fz_t* f, uint8_t* o, uint32_t n) noexcept nogil:
    """n bytes (a multiple of 4) of IPv4 options: mostly well formed (NOP,
    RR, TS, LSRR/SSRR, router alert, security, EOL), some with bad lengths
    or pointers, some random."""
    cdef uint32_t i = 0, k, ln, room
    cdef uint8_t kinds[5]
    kinds[0] = 7; kinds[1] = 68; kinds[2] = 131; kinds[3] = 137; kinds[4] = 7      # RR, TS, LSRR, SSRR
    while i < n:
        room = n - i
        k = _below(f, 10)
        if k == 0 or room < 4:
            o[i] = 1 if _pct(f, 80) else 0           # NOP / EOL
            i += 1
            continue
        if k <= 5:
            ln = _between(f, 1, room // 4) * 4 - 1 if room >= 7 else 3
            if ln < 3:
                ln = 3
            if ln > room:
                ln = room
            o[i] = kinds[k - 1]
            o[i + 1] = <uint8_t>ln
            o[i + 2] = 4 + 4 * _below(f, 3) if _pct(f, 85) else <uint8_t>_rnd(f)
            _fill(f, o + i + 3, ln - 3)
            if o[i] == 68 and ln >= 4:
                o[i + 3] = <uint8_t>(_below(f, 4) if _pct(f, 80) else _rnd(f))   # oflw/flags
            i += ln
        elif k == 6:
            o[i] = 148; o[i + 1] = 4; o[i + 2] = 0; o[i + 3] = 0   # router alert
            i += 4
        elif k == 7 and room >= 11:
            o[i] = 130; o[i + 1] = 11
            _fill(f, o + i + 2, 9)
            i += 11
        elif k == 8:
            o[i] = <uint8_t>_rnd(f)                       # any type, any length byte
            o[i + 1] = <uint8_t>(_below(f, 3) if _pct(f, 50) else _rnd(f))
            i += 2
        else:
            _fill(f, o + i, room)
            i = n
    return n


cdef uint32_t _ip4(fz_t* f, uint8_t* ip, uint32_t src, uint32_t dst, uint8_t proto, uint8_t ttl,
                   uint16_t frag, uint32_t opt_len, uint32_t payload) noexcept nogil:
    """An IPv4 header with opt_len bytes of options; returns its length.
    The checksum is left for _finish."""
    cdef uint32_t hlen = 20 + opt_len
    ip[0] = <uint8_t>(0x40 | (hlen // 4))
    ip[1] = <uint8_t>(0 if _pct(f, 80) else _rnd(f))
    gn_put_net16(ip + 2, <uint16_t>(hlen + payload))
    gn_put_net16(ip + 4, <uint16_t>_rnd(f))
    gn_put_net16(ip + 6, frag)
    ip[8] = ttl
    ip[9] = proto
    gn_put_net16(ip + 10, 0)
    gn_put_net32(ip + 12, src)
    gn_put_net32(ip + 16, dst)
    if opt_len:
        _options(f, ip + 20, opt_len)
    return hlen


cdef uint8_t _ttl(fz_t* f) noexcept nogil:
    cdef uint32_t k = _below(f, 20)
    if k < 12:
        return 64
    if k < 15:
        return 1
    if k < 16:
        return 0
    if k < 17:
        return 2
    return <uint8_t>_rnd(f)


cdef void _l4_checksum(uint8_t* ip, uint32_t hlen, uint32_t avail) noexcept nogil:
    """Set the ICMP or UDP checksum of an unfragmented datagram (as far as
    its bytes are present)."""
    cdef uint32_t total = gn_net16(ip + 2), n
    cdef uint64_t s
    cdef uint16_t c
    if total > avail:
        total = avail
    if total <= hlen or (gn_net16(ip + 6) & 0x3fff):
        return
    n = total - hlen
    if ip[9] == 1 and n >= 4:
        gn_put_net16(ip + hlen + 2, 0)
        gn_put_net16(ip + hlen + 2, gn_inet_checksum(gn_inet_sum(ip + hlen, n, 0)))
    elif ip[9] == 17 and n >= 8:
        if gn_net16(ip + hlen + 6) == 0:
            return                                      # "no checksum" stays
        gn_put_net16(ip + hlen + 6, 0)
        s = <uint64_t>gn_net32(ip + 12) + gn_net32(ip + 16) + 17 + n
        c = gn_inet_checksum(gn_inet_sum(ip + hlen, n, s))
        gn_put_net16(ip + hlen + 6, c if c != 0 else 0xffff)


cdef void _ip4_checksum(uint8_t* ip) noexcept nogil:
    cdef uint32_t hlen = (ip[0] & 0x0f) * 4
    if hlen < 20:
        hlen = 20
    gn_put_net16(ip + 10, 0)
    gn_put_net16(ip + 10, gn_inet_checksum(gn_inet_sum(ip, hlen, 0)))


cdef uint32_t _finish(fz_t* f, uint8_t* p, uint32_t length, uint32_t l4_region, bint mutable) noexcept nogil:
    """Mutate (about 1 in 10: 1-3 bytes of the IPv4 header and the first
    l4_region bytes after it), fix the checksums (about 15 in 16; else one
    is broken), cut short (about 1 in 32). Returns the final length."""
    cdef uint8_t* ip = p + L3
    cdef uint32_t k, n, span, hlen
    if length < L3 + 20:
        return length
    hlen = (ip[0] & 0x0f) * 4
    if mutable and _pct(f, 10):
        span = hlen + l4_region
        if span < 20:
            span = 20
        if L3 + span > length:
            span = length - L3
        n = _between(f, 1, 3)
        for k in range(n):
            ip[_below(f, span)] = <uint8_t>_rnd(f)
        f.mutated += 1
        hlen = (ip[0] & 0x0f) * 4
    if hlen >= 20 and L3 + hlen <= length:
        _l4_checksum(ip, hlen, length - L3)
        _ip4_checksum(ip)
    if _below(f, 16) == 0:
        k = L3 + 10 if _pct(f, 50) or L3 + hlen + 8 > length else L3 + hlen + (2 if ip[9] == 1 else 6)
        p[k] ^= <uint8_t>(1 << _below(f, 8))
        f.bad_checksum += 1
    if mutable and _below(f, 32) == 0:
        length = _below(f, length)
        f.truncated += 1
    return length


# --- the families ------------------------------------------------------------------------

cdef uint32_t _l4_payload(fz_t* f, uint8_t* l4, uint8_t proto, uint32_t n) noexcept nogil:
    """A plausible start of an L4 message of n bytes (checksum fixed later)."""
    _fill(f, l4, n)
    if proto == 1 and n >= 8:
        l4[0] = 8 if _pct(f, 70) else <uint8_t>_below(f, 20)
        l4[1] = 0 if _pct(f, 80) else <uint8_t>_rnd(f)
    elif proto == 17 and n >= 8:
        gn_put_net16(l4, <uint16_t>_between(f, 1024, 65535))
        gn_put_net16(l4 + 2, 7 if _pct(f, 40) else <uint16_t>_rnd(f))
        gn_put_net16(l4 + 4, <uint16_t>n if _pct(f, 90) else <uint16_t>_below(f, n + 16))
        gn_put_net16(l4 + 6, 1)                          # "a checksum": computed by _finish
    elif proto == 6 and n >= 20:
        l4[12] = 0x50
    return n


cdef uint32_t gen_ethernet(fz_t* f) noexcept nogil:
    cdef uint8_t* p = f.scratch
    cdef uint32_t k = _below(f, 10), n, ln
    cdef uint16_t types[8]
    f.rx_if = 0 if _pct(f, 80) else 1
    if k == 0:                                           # runt
        n = _between(f, 1, 13)
        _fill(f, p, n)
        if _pct(f, 50):
            memcpy(p, f.env.mac[f.rx_if], 6 if n >= 6 else n)
        return n
    types[0] = 0x0800; types[1] = 0x0806; types[2] = 0x8100; types[3] = 0x88a8
    types[4] = 0x86dd; types[5] = 0x0842; types[6] = 0x9100; types[7] = <uint16_t>_rnd(f)
    if k <= 3:                                           # some ethertype, random body
        _eth(f, p, types[_below(f, 8)], 40)
        n = _below(f, 200)
        _fill(f, p + 14, n)
        return 14 + n
    if k == 4:                                           # 802.3 length field / LLC
        _eth(f, p, <uint16_t>_below(f, 0x600), 30)
        n = _below(f, 100)
        _fill(f, p + 14, n)
        return 14 + n
    if k <= 6:                                           # VLAN tag: VID 0 (priority) or a VLAN
        _eth(f, p, 0x8100 if _pct(f, 80) else 0x88a8, 20)
        gn_put_net16(p + 14, (<uint16_t>_below(f, 8) << 13) | (0 if _pct(f, 60) else _below(f, 4096)))
        gn_put_net16(p + 16, 0x0800 if _pct(f, 70) else 0x0806)
        n = _between(f, 0, 80)
        _fill(f, p + 18, n)
        if gn_net16(p + 16) == 0x0800 and n >= 28:
            _ip4(f, p + 18, f.env.peer, f.env.addr[f.rx_if], 1, 64, 0, 0, n - 20)
            p[38] = 8; p[39] = 0
            _l4_checksum(p + 18, 20, n)
            _ip4_checksum(p + 18)
        return 18 + n
    # IPv4 (ICMP echo to us) with an odd destination MAC, or a fine one
    _eth(f, p, 0x0800, 60)
    n = _between(f, 28, 120)
    _fill(f, p + 14, n)
    _ip4(f, p + 14, f.env.peer, f.env.addr[f.rx_if], 1, 64, 0, 0, n - 20)
    p[34] = 8; p[35] = 0
    ln = _finish(f, p, 14 + n, 8, True)
    if _pct(f, 10):                                      # Ethernet padding after the datagram
        _fill(f, p + ln, 18)
        ln += 18
    return ln


cdef uint32_t gen_arp(fz_t* f) noexcept nogil:
    cdef uint8_t* p = f.scratch
    cdef uint8_t* a = p + 14
    cdef uint32_t k, spa, tpa, n
    f.rx_if = 0 if _pct(f, 85) else 1
    k = _below(f, 10)
    _eth(f, p, 0x0806, 0)
    if k < 6:
        memset(p, 0xff, 6)                               # requests go to broadcast
    elif k == 9:
        _eth(f, p, 0x0806, 100)
    gn_put_net16(a, 1 if _pct(f, 95) else <uint16_t>_rnd(f))
    gn_put_net16(a + 2, 0x0800 if _pct(f, 95) else <uint16_t>_rnd(f))
    a[4] = 6 if _pct(f, 96) else <uint8_t>_rnd(f)
    a[5] = 4 if _pct(f, 96) else <uint8_t>_rnd(f)
    k = _below(f, 10)
    gn_put_net16(a + 6, 1 if k < 6 else (2 if k < 9 else <uint16_t>_rnd(f)))
    _mac_peer(f, a + 8)
    a[12] = <uint8_t>_rnd(f)                             # many senders: fills the table
    if _pct(f, 3):
        a[8] |= 1                                        # group sender MAC
    k = _below(f, 100)
    if k < 70:
        spa = _onlink(f, f.rx_if)
    elif k < 75:
        spa = f.env.addr[f.rx_if]                        # conflict
    elif k < 82:
        spa = 0                                          # probe
    elif k < 88:
        spa = _martian(f)
    elif k < 94:
        spa = _onlink(f, 1 - f.rx_if)
    else:
        spa = <uint32_t>_rnd(f)
    gn_put_net32(a + 14, spa)
    k = _below(f, 100)
    if k < 60:
        tpa = f.env.addr[f.rx_if]
    elif k < 70:
        tpa = spa                                        # gratuitous
    elif k < 80:
        tpa = f.env.addr[1 - f.rx_if]
    else:
        tpa = _onlink(f, f.rx_if)
    if _pct(f, 50):
        memset(a + 18, 0, 6)
    else:
        memcpy(a + 18, f.env.mac[f.rx_if], 6)
    gn_put_net32(a + 24, tpa)
    n = 14 + 28
    if _pct(f, 50):
        memset(p + n, 0, 18)                             # padded to the 60-byte minimum
        n = 60
    if _pct(f, 5):
        n = _between(f, 14, 41)                          # truncated body
    return n


cdef uint32_t _arp_answer(fz_t* f) noexcept nogil:
    """An ARP reply to us from a next hop graphnet may be resolving: the
    glean route's next hop on if1, or an on-link host of if0 (an echo
    reply may wait for it): resolutions, queue flushes, FIB updates."""
    cdef uint8_t* p = f.scratch
    cdef uint8_t* a = p + 14
    f.rx_if = 1 if _pct(f, 50) else 0
    _eth(f, p, 0x0806, 0)
    gn_put_net16(a, 1)
    gn_put_net16(a + 2, 0x0800)
    a[4] = 6
    a[5] = 4
    gn_put_net16(a + 6, 2)
    _mac_peer(f, a + 8)
    gn_put_net32(a + 14, f.env.pending if f.rx_if == 1 else _onlink(f, 0))
    memcpy(a + 18, f.env.mac[f.rx_if], 6)
    gn_put_net32(a + 24, f.env.addr[f.rx_if])
    return 14 + 28


cdef uint32_t _jumbo(fz_t* f) noexcept nogil:
    """A jumbo IPv4 frame (a buffer chain) from the resolved peer to us or
    routed on: ICMP echo or UDP; never mutated, checksums correct (rarely
    broken)."""
    cdef uint8_t* p = f.scratch
    cdef uint32_t payload = _between(f, GN_BUFFER_DATA_SIZE - 34 + 1, JUMBO_MAX - 34), hlen
    cdef uint8_t proto = 1 if _pct(f, 50) else 17
    f.rx_if = 0
    _eth(f, p, 0x0800, 0)
    hlen = _ip4(f, p + 14, f.env.peer, f.env.addr[0] if _pct(f, 50) else f.env.routed | _below(f, 0x10000),
                proto, 64 if _pct(f, 90) else 1, 0x4000 if _pct(f, 30) else 0, 0, payload)
    _l4_payload(f, p + 14 + hlen, proto, payload)
    f.chained += 1
    return _finish(f, p, 14 + hlen + payload, 0, False)


cdef uint32_t gen_ip4(fz_t* f) noexcept nogil:
    cdef uint8_t* p = f.scratch
    cdef uint8_t* ip = p + 14
    cdef uint32_t k, opt = 0, payload, hlen, length, dst
    cdef uint8_t proto
    cdef uint16_t frag = 0
    if _pct(f, 3):
        return _jumbo(f)
    if _pct(f, 2):
        return _arp_answer(f)
    f.rx_if = 0 if _pct(f, 90) else 1
    _eth(f, p, 0x0800, 5)
    k = _below(f, 10)
    proto = 1 if k < 3 else (17 if k < 6 else (6 if k < 7 else <uint8_t>_rnd(f)))
    if _pct(f, 25):
        opt = 4 * _between(f, 1, 10)
    k = _below(f, 100)
    payload = _below(f, 100) if k < 70 else _between(f, 100, 1480 - opt)
    if _pct(f, 30):
        frag = 0x4000                                   # DF
    if _pct(f, 3):
        frag = frag | (0x2000 if _pct(f, 50) else 0) | _below(f, 0x2000)
    dst = _dst(f, 40)
    hlen = _ip4(f, ip, _src(f, 40), dst, proto, _ttl(f), frag, opt, payload)
    _l4_payload(f, ip + hlen, proto, payload)
    length = 14 + hlen + payload
    k = _below(f, 100)
    if k < 3:
        ip[0] = <uint8_t>((_below(f, 16) << 4) | (ip[0] & 0x0f))      # version
    elif k < 6:
        ip[0] = <uint8_t>(0x40 | _below(f, 16))                      # IHL
    elif k < 11:
        gn_put_net16(ip + 2, <uint16_t>_below(f, hlen + payload + 64))   # total length
    length = _finish(f, p, length, 8, True)
    if _pct(f, 3):                                       # Ethernet padding
        _fill(f, p + length, 20)
        length += 20
    return length


cdef uint32_t gen_icmp(fz_t* f) noexcept nogil:
    cdef uint8_t* p = f.scratch
    cdef uint8_t* ip = p + 14
    cdef uint8_t* m
    cdef uint32_t k, payload, hlen, dst
    cdef uint8_t types[10]
    if _pct(f, 2):
        return _arp_answer(f)
    f.rx_if = 0 if _pct(f, 90) else 1
    _eth(f, p, 0x0800, 5)
    k = _below(f, 100)
    payload = 8 + (_below(f, 56) if k < 80 else _below(f, 1472 - 8))
    if _pct(f, 3):
        payload = _below(f, 8)                           # shorter than an ICMP header
    dst = _dst(f, 70)
    hlen = _ip4(f, ip, _src(f, 60), dst, 1, 64 if _pct(f, 85) else _ttl(f),
                0x4000 if _pct(f, 30) else 0, 4 * _below(f, 3) if _pct(f, 5) else 0, payload)
    m = ip + hlen
    _fill(f, m, payload)
    types[0] = 8; types[1] = 0; types[2] = 3; types[3] = 11; types[4] = 5
    types[5] = 4; types[6] = 12; types[7] = 13; types[8] = 17; types[9] = <uint8_t>_rnd(f)
    if payload >= 2:
        m[0] = 8 if _pct(f, 55) else types[_below(f, 10)]
        m[1] = 0 if _pct(f, 80) else <uint8_t>_below(f, 16)
    if payload >= 8 + 28 and m[0] in (3, 11, 12, 5, 4):
        # an error quoting an IPv4 header and 8 bytes
        _ip4(f, m + 8, f.env.addr[0], f.env.peer, 17 if _pct(f, 70) else 1, 63, 0, 0, 8)
        _ip4_checksum(m + 8)
    return _finish(f, p, 14 + hlen + payload, 8, True)


cdef uint32_t gen_udp(fz_t* f) noexcept nogil:
    cdef uint8_t* p = f.scratch
    cdef uint8_t* ip = p + 14
    cdef uint8_t* u
    cdef uint32_t k, payload, hlen, ulen
    if _pct(f, 2):
        return _arp_answer(f)
    f.rx_if = 0 if _pct(f, 90) else 1
    _eth(f, p, 0x0800, 5)
    k = _below(f, 100)
    payload = 8 + (_below(f, 64) if k < 75 else _below(f, 1472 - 8))
    if _pct(f, 3):
        payload = _below(f, 8)                           # shorter than a UDP header
    hlen = _ip4(f, ip, _src(f, 60), _dst(f, 70), 17, 64 if _pct(f, 80) else _ttl(f),
                0x4000 if _pct(f, 40) else 0, 4 * _below(f, 3) if _pct(f, 5) else 0, payload)
    u = ip + hlen
    _fill(f, u, payload)
    if payload >= 8:
        gn_put_net16(u, 7 if _pct(f, 10) else <uint16_t>_rnd(f))
        k = _below(f, 100)
        gn_put_net16(u + 2, 7 if k < 45 else (0 if k < 48 else (53 if k < 52 else <uint16_t>_rnd(f))))
        ulen = payload
        k = _below(f, 100)
        if k < 5:
            ulen = _below(f, 8)
        elif k < 10:
            ulen = _below(f, 0x10000)
        gn_put_net16(u + 4, <uint16_t>ulen)
        gn_put_net16(u + 6, 0 if _pct(f, 10) else 1)
    return _finish(f, p, 14 + hlen + payload, 8, True)


cdef void _plan_datagram(fz_t* f) noexcept nogil:
    """A new datagram for the frag family and the pieces to send it in."""
    cdef fz_plan_t* pl = &f.plan
    cdef uint8_t* ip = pl.dgram
    cdef uint32_t k, payload, step, off, n, mode, i, j, opt
    cdef uint8_t proto = 17 if _pct(f, 60) else 1
    cdef uint16_t first
    cdef uint8_t mf
    pl.rx_if = 0 if _pct(f, 90) else 1
    payload = 8 + (_below(f, 600) if _pct(f, 70) else _below(f, DGRAM_MAX - 60 - 8))
    opt = 4 * _below(f, 3) if _pct(f, 10) else 0
    pl.hlen = _ip4(f, ip, f.env.peer if _pct(f, 70) else _src(f, 40), _dst(f, 80), proto,
                   _ttl(f) if _pct(f, 10) else 64, 0, opt, payload)
    gn_put_net16(ip + 4, <uint16_t>_below(f, 16))        # a small pool: datagrams collide
    _l4_payload(f, ip + pl.hlen, proto, payload)
    if proto == 17:
        gn_put_net16(ip + pl.hlen, 1024 + _below(f, 1000))
    pl.len = pl.hlen + payload
    _l4_checksum(ip, pl.hlen, pl.len)
    _ip4_checksum(ip)
    # the cut: piece size a multiple of 8
    k = _below(f, 10)
    step = 8 if k < 2 else (16 if k < 3 else 8 * _between(f, 1, 1480 // 8))
    while (payload + step - 1) // step > MAX_PIECES - 2:
        step *= 2
    n = 0
    off = 0
    while off < payload:
        pl.first[n] = <uint16_t>off
        pl.plen[n] = <uint16_t>(step if payload - off > step else payload - off)
        off += pl.plen[n]
        pl.mf[n] = 1 if off < payload else 0
        pl.bad_csum[n] = 1 if _below(f, 40) == 0 else 0
        n += 1
    mode = _below(f, 100)
    if mode < 10 and n > 1:                              # reversed
        for i in range(n // 2):
            j = n - 1 - i
            first = pl.first[i]; pl.first[i] = pl.first[j]; pl.first[j] = first
            first = pl.plen[i]; pl.plen[i] = pl.plen[j]; pl.plen[j] = first
            mf = pl.mf[i]; pl.mf[i] = pl.mf[j]; pl.mf[j] = mf
    elif mode < 30 and n > 1:                            # shuffled
        for i in range(n - 1, 0, -1):
            j = _below(f, i + 1)
            first = pl.first[i]; pl.first[i] = pl.first[j]; pl.first[j] = first
            first = pl.plen[i]; pl.plen[i] = pl.plen[j]; pl.plen[j] = first
            mf = pl.mf[i]; pl.mf[i] = pl.mf[j]; pl.mf[j] = mf
    elif mode < 40:                                      # a duplicate piece
        j = _below(f, n)
        pl.first[n] = pl.first[j]; pl.plen[n] = pl.plen[j]; pl.mf[n] = pl.mf[j]; pl.bad_csum[n] = 0
        n += 1
    elif mode < 48:                                      # an overlapping piece
        j = _below(f, n)
        pl.first[n] = pl.first[j] + 8 if pl.first[j] + 8 < payload else pl.first[j]
        pl.plen[n] = pl.plen[j] + 8 if pl.plen[j] + 8 <= 1480 else pl.plen[j]
        pl.mf[n] = 1; pl.bad_csum[n] = 0
        if pl.first[n] + pl.plen[n] > payload:
            pl.plen[n] = <uint16_t>(payload - pl.first[n]) if payload > pl.first[n] else 8
            pl.mf[n] = 0
        n += 1
    elif mode < 54 and n > 1:                            # a missing piece: reassembly times out
        j = _below(f, n)
        pl.first[j] = pl.first[n - 1]; pl.plen[j] = pl.plen[n - 1]; pl.mf[j] = pl.mf[n - 1]
        n -= 1
    elif mode < 57 and n > 1:                            # an end in the middle
        pl.mf[_below(f, n - 1)] = 0
    elif mode < 59:                                      # beyond 65535
        pl.first[n - 1] = <uint16_t>(8 * _between(f, 8000, 8191) - 0)
        if pl.first[n - 1] + pl.plen[n - 1] > 0xffff:
            pl.plen[n - 1] = <uint16_t>(0xffff - pl.first[n - 1]) & ~7
    elif mode < 61 and n > 1:                            # MF piece not a multiple of 8
        j = _below(f, n - 1)
        pl.plen[j] = pl.plen[j] - _between(f, 1, 7) if pl.plen[j] > 8 else pl.plen[j]
    pl.n = n
    pl.next = 0


cdef uint32_t gen_frag(fz_t* f) noexcept nogil:
    cdef fz_plan_t* pl = &f.plan
    cdef uint8_t* p = f.scratch
    cdef uint8_t* ip = p + 14
    cdef uint32_t i, hlen, take, avail
    if pl.next >= pl.n:
        _plan_datagram(f)
    i = pl.next
    pl.next += 1
    f.rx_if = pl.rx_if
    _eth(f, p, 0x0800, 2)
    hlen = pl.hlen
    memcpy(ip, pl.dgram, hlen)
    avail = pl.len - hlen
    take = pl.plen[i]
    if pl.first[i] < avail:
        memcpy(ip + hlen, pl.dgram + hlen + pl.first[i], take if pl.first[i] + take <= avail else avail - pl.first[i])
    if pl.first[i] + take > avail:
        if pl.first[i] < avail:
            _fill(f, ip + hlen + avail - pl.first[i], pl.first[i] + take - avail)
        else:
            _fill(f, ip + hlen, take)
    gn_put_net16(ip + 2, <uint16_t>(hlen + take))
    gn_put_net16(ip + 6, <uint16_t>((pl.mf[i] << 13) | (pl.first[i] // 8)))
    _ip4_checksum(ip)
    if pl.bad_csum[i]:
        ip[10] ^= 0x10
        f.bad_checksum += 1
    return 14 + hlen + take


ctypedef uint32_t (*fz_gen_fn)(fz_t* f) noexcept nogil


cdef inline fz_gen_fn _generator(uint32_t family) noexcept nogil:
    if family == FZ_ETHERNET:
        return gen_ethernet
    if family == FZ_ARP:
        return gen_arp
    if family == FZ_IP4:
        return gen_ip4
    if family == FZ_ICMP:
        return gen_icmp
    if family == FZ_UDP:
        return gen_udp
    return gen_frag


cdef bint _loops(fz_t* f, uint32_t src) noexcept nogil:
    """A source whose echo reply would come back to us."""
    return (src == f.env.addr[0] or src == f.env.addr[1] or src == f.env.bcast[0] or src == f.env.bcast[1]
            or src >= 0xe0000000U or (src >> 24) == 127 or (src >> 24) == 0 or (src & 0xff) == 0)


cdef void _guard(fz_t* f, uint8_t* p, uint32_t length) noexcept nogil:
    """The echo-loop guard (module docstring)."""
    cdef uint32_t l3 = 14, hlen
    cdef uint8_t* ip
    if length >= 18 and gn_net16(p + 12) in (0x8100, 0x88a8):
        l3 = 18
    if length < l3 + 20 or gn_net16(p + l3 - 2) != 0x0800:
        return
    ip = p + l3
    hlen = (ip[0] & 0x0f) * 4
    if ip[9] != 17 or hlen < 20 or length < l3 + hlen + 8 or (gn_net16(ip + 6) & 0x1fff):
        return
    if gn_net16(ip + hlen) == 7 and _loops(f, gn_net32(ip + 12)):
        gn_put_net16(ip + hlen, 9)
        gn_put_net16(ip + hlen + 6, 0)
        f.guarded += 1


cdef uint32_t _write(gn_main_t* vm, fz_t* f, uint32_t bi, uint32_t length) noexcept nogil:
    """Copy f.scratch (length bytes) into buffer bi and, past one buffer,
    into a chain of fresh buffers (cut at one buffer when there are none)."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef gn_buffer_t* prev
    cdef gn_buffer_t* c
    cdef uint32_t extra[8]
    cdef uint32_t n, k, off, take
    memcpy(b, f.meta[f.rx_if], GN_BUFFER_INIT_BYTES)
    if length <= GN_BUFFER_DATA_SIZE:
        memcpy(b.data, f.scratch, length)
        b.current_length = <uint16_t>length
        return length
    n = (length - 1) // GN_BUFFER_DATA_SIZE
    k = gn_main_alloc(vm, extra, n)
    if k != n:
        if k:
            gn_main_free(vm, extra, k)
        f.no_buffers += 1
        memcpy(b.data, f.scratch, GN_BUFFER_DATA_SIZE)
        b.current_length = GN_BUFFER_DATA_SIZE
        return GN_BUFFER_DATA_SIZE
    memcpy(b.data, f.scratch, GN_BUFFER_DATA_SIZE)
    b.current_length = GN_BUFFER_DATA_SIZE
    b.total_length_not_including_first_buffer = length - GN_BUFFER_DATA_SIZE
    prev = b
    off = GN_BUFFER_DATA_SIZE
    for k in range(n):
        c = gn_main_buffer(vm, extra[k])
        take = length - off if length - off < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
        memcpy(c.data, f.scratch + off, take)
        c.current_length = <uint16_t>take
        prev.next_buffer = extra[k]
        prev.flags |= GN_BUFFER_F_NEXT_PRESENT
        prev = c
        off += take
    return length


cdef uint32_t fuzz_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef fz_t* f = <fz_t*>node.runtime_data
    cdef uint32_t bis[GN_FRAME_SIZE]
    cdef uint32_t i, n, got, length
    cdef fz_gen_fn gen
    if f == NULL or f.remaining == 0:
        if f != NULL:
            node.has_more_work = 0
        return 0
    gen = _generator(f.family)
    n = GN_FRAME_SIZE if f.remaining > GN_FRAME_SIZE else <uint32_t>f.remaining
    got = gn_main_alloc_uninit(vm, bis, n)
    if got < n:
        # the pool ran dry: the frames wait (tried again at the next call);
        # counted once per stall, not once per call while it lasts
        if not f.stalled:
            gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, 1)
            f.no_buffers += 1
        f.stalled = 1
    else:
        f.stalled = 0
    for i in range(got):
        length = gen(f)
        if length > JUMBO_MAX:
            length = JUMBO_MAX
        if f.loop_guard:
            _guard(f, f.scratch, length)
        _write(vm, f, bis[i], length)
    f.remaining -= got
    f.generated += got
    node.has_more_work = f.remaining > 0 and not f.stalled     # a stalled input lets the loop go idle
    if got:
        gn_enqueue_to_single_next(vm, node, bis, 0, got)
    return got


cdef class FuzzInput:
    """The C state of one ``fuzz-input`` node (see the module docstring).

    ``FuzzInput(family, seed, env, next_node="ethernet-input")`` where env
    is a dict: addr (two addresses, host-order ints), bcast, mask (two
    each), peer, routed, glean, blackhole, down, pending (ints), mac (two 6-byte strings), sw_if_index
    (the two interfaces' indices). ``start(n)`` queues n frames for the
    next run; ``frames(n)`` generates n frames as bytes without an engine
    (to look at them, or to write a pcap)."""
    cdef fz_t* f
    cdef readonly str family
    cdef readonly str name
    cdef readonly str next_node

    def __cinit__(self, str family, uint64_t seed, dict env, str next_node="ethernet-input",
                  str name="fuzz-input", bint loop_guard=True):
        if family not in FAMILIES:
            raise ValueError(f"unknown fuzz family {family!r}; known: {', '.join(FAMILIES)}")
        self.f = <fz_t*>calloc(1, sizeof(fz_t))
        if self.f == NULL:
            raise MemoryError()
        self.family = family
        self.name = name
        self.next_node = next_node
        self.f.family = FAMILIES[family][0]
        # splitmix64 of the seed: nearby seeds give unrelated streams; never 0
        z = (seed + 0x9E3779B97F4A7C15) & 0xffffffffffffffff
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xffffffffffffffff
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xffffffffffffffff
        self.f.rng = (z ^ (z >> 31)) or 1
        self.f.loop_guard = loop_guard
        cdef fz_env_t* e = &self.f.env
        cdef bytes mac
        for i in range(2):
            e.addr[i] = env["addr"][i]
            e.bcast[i] = env["bcast"][i]
            e.mask[i] = env["mask"][i]
            mac = bytes(env["mac"][i])
            if len(mac) != 6:
                raise ValueError(f"env mac {i}: 6 bytes, not {len(mac)}")
            memcpy(e.mac[i], <const char*>mac, 6)
            gn_buffer_meta_template(self.f.meta[i], env["sw_if_index"][i])
        e.peer = env["peer"]
        e.routed = env["routed"]
        e.glean = env["glean"]
        e.blackhole = env["blackhole"]
        e.down = env["down"]
        e.pending = env["pending"]

    def __dealloc__(self):
        free(self.f)

    def nodes(self):
        return (Node(self.name, type="input", state="polling",
                     fn=PyCapsule_New(<void*>fuzz_input_fn, "gn_node_fn", NULL),
                     next_nodes=(self.next_node,),
                     errors=(("none", "info", "no error"),
                             ("no-buffers", "warn", "the pool ran dry: frames wait for buffers")),
                     setup=self._setup, instance=self, doc=__doc__.split("\n\n")[0]),)

    def _setup(self, engine, node_index):
        engine.main.set_runtime_data(node_index, PyCapsule_New(<void*>self.f, "gn_runtime_data", NULL))

    def start(self, uint64_t n):
        """Generate n more frames when the engine next runs."""
        self.f.remaining += n

    @property
    def remaining(self):
        return self.f.remaining

    def stats(self) -> dict:
        return {"generated": self.f.generated, "no_buffers": self.f.no_buffers,
                "bad_checksum": self.f.bad_checksum, "mutated": self.f.mutated, "truncated": self.f.truncated,
                "chained": self.f.chained, "guarded": self.f.guarded}

    def frames(self, uint32_t n) -> list:
        """n generated frames as bytes (the generator's state advances as
        in a run; the echo-loop guard applies)."""
        cdef fz_gen_fn gen = _generator(self.f.family)
        cdef uint32_t length
        out = []
        for _ in range(n):
            length = gen(self.f)
            if length > JUMBO_MAX:
                length = JUMBO_MAX
            if self.f.loop_guard:
                _guard(self.f, self.f.scratch, length)
            out.append(PyBytes_FromStringAndSize(<char*>self.f.scratch, length))
        return out


