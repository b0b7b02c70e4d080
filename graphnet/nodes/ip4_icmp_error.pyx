"""``ip4-icmp-error``: turn a packet that could not be delivered or
forwarded into the ICMP error that tells its sender (RFC 792, RFC 1812
s.4.3.2).

Other nodes send packets here with ``b.error`` set to the reason (a row
of their own error table); the reason picks the message:

  ============================  ==========================================
  ip4-rewrite ttl-expired       time exceeded in transit (11/0)
  ip4-rewrite mtu-exceeded      fragmentation needed (3/4) with the tx
  ip4-frag df-set-too-big       MTU (RFC 1191), when DF is set (else:
                                dropped; ip4-frag fragments those)
  ip4-local unknown-protocol    protocol unreachable (3/2)
  udp4-input no-listener        port unreachable (3/3)
  ip4-reassembly timeout        fragment reassembly time exceeded (11/1),
                                for the first fragment of a datagram that
                                timed out (sent by ip4-reassembly-expire)
  ip4-lookup unreachable        host unreachable (3/1): an unreachable route
  ip4-lookup prohibited         administratively prohibited (3/13): a
                                prohibit route
  ============================  ==========================================

(more with ``register_icmp_error(node, symbol, type, code)`` before the
graph is built; ``ip4_reassembly.nodes()`` registers its ``timeout`` row
for each reassembly node it makes). It attaches itself to ip4-rewrite (keys ``ttl-expired``,
``mtu-exceeded``) and ip4-lookup (``unreachable``, ``prohibit``); ip4-local and udp4-input name it as an optional next
node (``("ip4-icmp-error", "error-drop")``), so all of them send such
packets here only when it is in the graph.

The original packet is counted under its reason either way. No error is
sent (the packet is dropped with its reason, and counted here as well) in
reply to: a fragment other than the first (``not-first-fragment``), an
ICMP error (``icmp-error``), a packet to a broadcast or multicast address,
IP or link layer (``broadcast``), a packet from an address that does not
name one host (0.0.0.0, loopback, multicast, class E, broadcast:
``bad-source``); nor beyond the rate limit (a token bucket per engine:
``rate-limited``; default 1000/s, burst 100, ``configure_icmp_errors``).

The error is built in place: a new IPv4 header (from the receiving
interface's address facing the sender, to the sender, TTL 64, protocol 1)
and ICMP header are pushed in front of the original IPv4 header, whose
datagram is quoted up to 576 bytes in all (the rest of a chain is freed);
a UDP/TCP checksum the kernel left to offload is filled in first, so the
quote is a correct datagram.
Then it goes to ``ip4-lookup`` (GN_BUFFER_F_LOCALLY_ORIGINATED).

Metadata used: current_data (the original IPv4 header), error,
sw_if_index[RX], l2/l3 header offsets, opaque adj_index (the MTU of 3/4).
Set: current_data/current_length (the pushed headers), l3/l4 header
offsets, sw_if_index[TX] ~0, flags, error 0. Next nodes: ``ip4-lookup``.
Drops: the reasons above, ``no-source-address`` (no IPv4 address
anywhere), ``no-headroom``, ``unknown-reason``. Counted: ``sent``.
Trace: the error being answered (the row that sent the packet here), the
rx interface and the offending packet decoded (kit.trace_error).
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_put_net32
from graphnet.includes.platform cimport gn_time_ns
from graphnet.io.interface cimport InterfaceTable, gn_interface_main_t, gn_interface_t, gn_interface
from graphnet.fib.ip4_address cimport (Ip4Addresses, gn_ip4_address_main_t, gn_ip4_source_address,
                                       gn_ip4_is_directed_broadcast)
from graphnet.fib.ip4_fib cimport Ip4Fib, gn_ip4_fib_t, gn_ip4_opaque, GN_ADJ_REWRITE
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_TX, GN_FRAME_SIZE, GN_INVALID_INDEX, GN_BUFFER_HEADROOM,
                                   GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_LOCALLY_ORIGINATED, GN_BUFFER_F_GSO,
                                   GN_BUFFER_F_L4_CSUM_OFFLOAD, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free, gn_enqueue_to_next,
                                 gn_node_increment_error, gn_buffer_set_error, gn_count_drops)
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.nodes.ip4_csum cimport gn_ip4_fill_l4_checksum
from graphnet.wire.inet cimport gn_inet_sum, gn_inet_checksum
from graphnet.wire.ip4 cimport (gn_ip4_header_bytes, gn_ip4_total_length, gn_ip4_src, gn_ip4_dst, gn_ip4_set_checksum,
                                GN_IP4_FRAG_OFFSET_MASK, GN_IP4_FLAG_DF, GN_IP4_FLAG_MF, GN_IP4_PROTO_ICMP,
                                GN_IP4_PROTO_UDP, GN_IP4_PROTO_TCP)
from graphnet.wire.icmp4 cimport GN_ICMP4_ERROR_MAX_LEN, GN_ICMP4_DEST_UNREACH, GN_ICMP4_FRAG_NEEDED, gn_icmp4_is_error
from graphnet.vlib.kit import node, trace_error, TRACE_PACKET_BYTES
from graphnet.wire.ip4 import format_ip4_header
from graphnet.fib.ip4_address import ip4_addresses
from graphnet.fib.ip4_fib import ip4_fib

cpdef enum Next:
    NEXT_LOOKUP, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_SENT, ERROR_RATE_LIMITED, ERROR_NOT_FIRST_FRAGMENT, ERROR_ICMP_ERROR, ERROR_BROADCAST
    ERROR_BAD_SOURCE, ERROR_NO_SOURCE_ADDRESS, ERROR_NO_HEADROOM, ERROR_UNKNOWN_REASON, N_ERROR

NEXTS = (("lookup", "ip4-lookup"),)

cdef enum:
    NO_REASON = 0xffff
    DROP_QUIETLY = 100                # frag needed without DF: dropped with its reason only
    PUSH = 28                         # IPv4 + ICMP headers
    ERROR_TTL = 64

ERRORS = (
    ("none", "info", "no error"),
    ("sent", "info", "ICMP errors sent"),
    ("rate-limited", "info", "ICMP error not sent: rate limit"),
    ("not-first-fragment", "info", "ICMP error not sent: not the first fragment"),
    ("icmp-error", "info", "ICMP error not sent: in reply to an ICMP error"),
    ("broadcast", "info", "ICMP error not sent: to a broadcast or multicast destination"),
    ("bad-source", "info", "ICMP error not sent: source is not one host"),
    ("no-source-address", "warn", "ICMP error not sent: no IPv4 address to send it from"),
    ("no-headroom", "warn", "ICMP error not sent: no headroom"),
    ("unknown-reason", "error", "packet sent to ip4-icmp-error without a known reason"),
)

# (node, error symbol) -> (ICMP type, code)
REASONS = {
    ("ip4-rewrite", "ttl-expired"): (11, 0),
    ("ip4-rewrite", "mtu-exceeded"): (3, 4),
    ("ip4-frag", "df-set-too-big"): (3, 4),
    ("ip4-local", "unknown-protocol"): (3, 2),
    ("udp4-input", "no-listener"): (3, 3),
    ("ip4-reassembly", "timeout"): (11, 1),
    ("ip4-lookup", "unreachable"): (3, 1),
    ("ip4-lookup", "prohibited"): (3, 13),
}


def register_icmp_error(node, symbol, int icmp_type, int code):
    """Packets that ``node`` sends to ip4-icmp-error with its error
    ``symbol`` get ICMP ``icmp_type``/``code`` (call before the build)."""
    if not (0 <= icmp_type <= 255 and 0 <= code <= 255):
        raise ValueError("ICMP type and code are 0..255")
    REASONS[(node, symbol)] = (icmp_type, code)


ctypedef struct icmp_error_t:
    uint16_t* reason                  # global error index -> type << 8 | code, or NO_REASON
    uint32_t n_reasons
    gn_ip4_address_main_t* am
    gn_interface_main_t* im
    gn_ip4_fib_t* fib
    double rate
    double burst
    double tokens
    uint64_t last_ns
    uint16_t next_id


cdef inline bint _bad_source(uint32_t s) noexcept nogil:
    return s == 0 or s == 0xffffffffU or (s >> 24) == 127 or (s >> 28) >= 0xe


cdef inline bint _token(icmp_error_t* st) noexcept nogil:
    cdef uint64_t now = gn_time_ns()
    cdef double t = st.tokens + (now - st.last_ns) * 1e-9 * st.rate
    st.last_ns = now
    if t > st.burst:
        t = st.burst
    if t < 1.0:
        st.tokens = t
        return False
    st.tokens = t - 1.0
    return True


cdef inline uint32_t _error_one(gn_main_t* vm, icmp_error_t* st, gn_buffer_t* b) noexcept nogil:
    """0 when b became an ICMP error, else the row that says why not."""
    cdef uint8_t* ip = gn_buffer_current(b)
    cdef uint8_t* h
    cdef uint32_t hlen = gn_ip4_header_bytes(ip), total = gn_ip4_total_length(ip), quote, src, dst, sw, mtu = 0
    cdef uint32_t src_addr
    cdef uint16_t r, frag = gn_net16(ip + 6)
    cdef uint32_t ai
    cdef gn_interface_t* hw
    if b.error >= st.n_reasons or st.reason[b.error] == NO_REASON:
        return ERROR_UNKNOWN_REASON
    r = st.reason[b.error]
    if frag & GN_IP4_FRAG_OFFSET_MASK:
        return ERROR_NOT_FIRST_FRAGMENT
    if r == ((GN_ICMP4_DEST_UNREACH << 8) | GN_ICMP4_FRAG_NEEDED):
        if not (frag & GN_IP4_FLAG_DF):
            return DROP_QUIETLY
        hw = gn_interface(st.im, b.sw_if_index[GN_TX])   # set by ip4-rewrite for ip4-frag
        ai = gn_ip4_opaque(b).adj_index
        if hw == NULL and ai < st.fib.n_adjs and st.fib.adjs[ai].type == GN_ADJ_REWRITE:
            hw = gn_interface(st.im, st.fib.adjs[ai].sw_if_index)
        if hw != NULL:
            mtu = hw.mtu
    if ip[9] == GN_IP4_PROTO_ICMP and (total <= hlen or b.current_length <= hlen or gn_icmp4_is_error(ip[hlen])):
        return ERROR_ICMP_ERROR
    src = gn_ip4_src(ip)
    dst = gn_ip4_dst(ip)
    sw = b.sw_if_index[GN_RX]
    if (dst >> 28) == 0xe or dst == 0xffffffffU or gn_ip4_is_directed_broadcast(st.am, sw, dst):
        return ERROR_BROADCAST
    if b.l3_hdr_offset - b.l2_hdr_offset >= 14 and b.l2_hdr_offset >= -GN_BUFFER_HEADROOM and (
            b.data[b.l2_hdr_offset] & 1):
        return ERROR_BROADCAST                     # arrived in a link-layer broadcast/multicast frame
    if _bad_source(src):
        return ERROR_BAD_SOURCE
    if b.current_data - PUSH < -GN_BUFFER_HEADROOM:
        return ERROR_NO_HEADROOM
    src_addr = gn_ip4_source_address(st.am, sw, src)
    if src_addr == 0:
        return ERROR_NO_SOURCE_ADDRESS
    if not _token(st):
        return ERROR_RATE_LIMITED
    if b.flags & GN_BUFFER_F_L4_CSUM_OFFLOAD:
        gn_ip4_fill_l4_checksum(vm, b, ip, hlen, total)   # the quote is a correct packet
    # quote the datagram: as much as fits in 576 bytes and in this buffer
    quote = total
    if quote > GN_ICMP4_ERROR_MAX_LEN - PUSH:
        quote = GN_ICMP4_ERROR_MAX_LEN - PUSH
    if quote > b.current_length:
        quote = b.current_length
    if b.flags & GN_BUFFER_F_NEXT_PRESENT:
        gn_main_free(vm, &b.next_buffer, 1)
        b.flags = b.flags & ~GN_BUFFER_F_NEXT_PRESENT
        b.total_length_not_including_first_buffer = 0
    h = ip - PUSH
    h[0] = 0x45
    h[1] = 0
    gn_put_net16(h + 2, PUSH + quote)
    gn_put_net16(h + 4, st.next_id)
    st.next_id += 1
    gn_put_net16(h + 6, 0)
    h[8] = ERROR_TTL
    h[9] = GN_IP4_PROTO_ICMP
    gn_put_net32(h + 12, src_addr)
    gn_put_net32(h + 16, src)
    gn_ip4_set_checksum(h)
    h[20] = <uint8_t>(r >> 8)
    h[21] = <uint8_t>(r & 0xff)
    gn_put_net16(h + 22, 0)
    gn_put_net16(h + 24, 0)
    gn_put_net16(h + 26, <uint16_t>mtu)
    gn_put_net16(h + 22, gn_inet_checksum(gn_inet_sum(h + 20, 8 + quote, 0)))
    b.current_data -= PUSH
    b.current_length = PUSH + quote
    b.l3_hdr_offset = b.current_data
    b.l4_hdr_offset = b.current_data + 20
    b.sw_if_index[GN_TX] = GN_INVALID_INDEX
    b.flags = (b.flags | GN_BUFFER_F_LOCALLY_ORIGINATED) & ~(GN_BUFFER_F_GSO | GN_BUFFER_F_L4_CSUM_OFFLOAD)
    return 0


cdef uint32_t icmp_error_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef icmp_error_t* st = <icmp_error_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i, n = frame.n_vectors, why
    cdef uint64_t n_sent = 0
    cdef gn_buffer_t* b
    for i in range(n):
        b = gn_main_buffer(vm, frame.buffers[i])
        why = _error_one(vm, st, b)
        if why == 0:
            gn_count_drops(vm, b.error, 1)        # the original is consumed: a drop for its reason
            b.error = 0
            nexts[i] = NEXT_LOOKUP
            n_sent += 1
        else:
            # dropped: error-drop counts its reason; say here why no error went out
            if why == ERROR_UNKNOWN_REASON:
                gn_buffer_set_error(node, b, ERROR_UNKNOWN_REASON)
            elif why != DROP_QUIETLY:
                gn_node_increment_error(vm, node, why, 1)
            nexts[i] = node.drop_next
    if n_sent:
        gn_node_increment_error(vm, node, ERROR_SENT, n_sent)
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
    return n


def _setup(engine, node_index):
    cdef icmp_error_t* st = <icmp_error_t*>gn_node_data(engine, "ip4-icmp-error")
    cdef uint32_t i, n_errors = len(engine.errors)
    cdef Ip4Addresses addresses = ip4_addresses(engine)
    cdef Ip4Fib fib = ip4_fib(engine)
    cdef bytearray reasons = bytearray(2 * max(1, n_errors))
    engine.node_data["ip4-icmp-error"].keep = (addresses, fib, reasons)
    st.reason = <uint16_t*><char*>reasons
    for i in range(n_errors):
        st.reason[i] = NO_REASON
    st.n_reasons = n_errors
    st.am = addresses.am
    st.im = (<InterfaceTable>engine.interfaces).im
    st.fib = fib.fib
    st.rate = 1000.0
    st.burst = 100.0
    st.tokens = 100.0
    st.last_ns = gn_time_ns()
    for (name, symbol), (t, c) in REASONS.items():
        if name in engine.error_base:
            for i, row in enumerate(engine.nodes[engine.index[name]].error_table()):
                if row[0] == symbol:
                    st.reason[engine.error_base[name] + i] = (t << 8) | c


def _configure(engine, rate, burst):
    cdef icmp_error_t* st = <icmp_error_t*>gn_node_data(engine, "ip4-icmp-error")
    if rate is not None:
        if not rate > 0:
            raise ValueError("rate must be > 0 per second")
        st.rate = rate
    if burst is not None:
        if not burst >= 1:
            raise ValueError("burst must be >= 1")
        st.burst = burst
        st.tokens = min(st.tokens, burst)
    return {"rate": st.rate, "burst": st.burst}


def configure_icmp_errors(engine, rate=None, burst=None):
    """The ICMP error rate limit: ``rate`` errors per second, ``burst``
    at most at once. Returns the settings."""
    engine.build()
    return engine.call(_configure, engine, rate, burst)


NODES = (
    node("ip4-icmp-error", gn_node_fn(icmp_error_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
         attach_to=(("ip4-rewrite", "ttl-expired"), ("ip4-rewrite", "mtu-exceeded"),
                    ("ip4-lookup", "unreachable"), ("ip4-lookup", "prohibit")),
         data_size=sizeof(icmp_error_t), setup=_setup,
         trace=trace_error(TRACE_PACKET_BYTES, format_ip4_header), doc=__doc__),
)
FEATURE = "ip4-host"
