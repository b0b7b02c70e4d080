"""``pg-input``: the packet generator, an input node that emits streams.

A stream is a list of template packets (bytes or Scapy packets, or a pcap
file) sent round-robin, with an optional packet count limit, an optional
rate in packets per second, and edits applied per packet in C: a 1, 2 or 4
byte big-endian field at an offset, incremented over [min, max] or drawn at
random from it. With ``fix_checksums`` the IPv4 header checksum and the
UDP/TCP checksum are recomputed after edits.

Node: input, polling by default; in interrupt mode it re-raises its own
interrupt (or arms a timer at the next packet time for a rated stream) while
it has packets to send. Metadata used: none (it makes the packets). Set: current_data 0, current_length,
sw_if_index[RX] (the stream's), l2_hdr_offset 0, the rest fresh: buffers
are allocated uninitialised and each gets the stream's 40-byte metadata
template as its packet is copied. Next nodes: the one given (``next``).
Errors: ``no-buffers`` (a packet could not be allocated: counted, retried
on the next call). Trace record: packet length, stream index, then the
kit's record (rx sw_if_index, first bytes); shown as the stream's name,
length and interface and the packet decoded by the wire/ formatters.

Invariants: at most 256 packets per stream per call; a stream never sends
more than ``count``; a rated stream never runs ahead of ``rate`` x elapsed.
"""
import struct
from dataclasses import dataclass, field
from typing import Optional, Sequence

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.platform cimport gn_time_ns, gn_prefetch_store
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_RX, GN_BUFFER_DATA_SIZE, GN_BUFFER_INIT_BYTES,
                                   GN_FRAME_SIZE, gn_buffer_current, gn_buffer_meta_template)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc_uninit,
                                 gn_enqueue_to_single_next,
                                 gn_node_increment_error, gn_node_set_interrupt_pending, gn_node_schedule_interrupt,
                                 GN_NODE_INTERRUPT)
from graphnet.wire.checksum cimport gn_ip4_fix_checksums
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_put_net32
from graphnet.vlib.kit cimport gn_node_fn, gn_trace_fn, gn_trace_bytes_fill, GN_TRACE_BYTES_HEADER
from graphnet.vlib.kit import node, trace_record, parse_trace_bytes

cpdef enum Next:
    NEXT_NEXT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_NO_BUFFERS, N_ERROR

ERRORS = (("none", "info", "no error"), ("no-buffers", "warn", "packet generator could not allocate buffers"))

cdef enum:
    PREFETCH_AHEAD = 8          # buffers whose data line is prefetched (for writing) ahead of the copy
    MAX_EDITS = 8
    EDIT_INC = 0
    EDIT_RANDOM = 1
    TRACE_BYTES = 96

    CSUM_IP4 = 1                # an edit changes words covered by the IPv4 header checksum
    CSUM_L4 = 2                 # ... by the UDP/TCP checksum (pseudo header included)
    EDIT_OUTSIDE = 0x80         # the edit does not fit this template: skipped
    TEMPLATE_PAD = 64           # bytes after the last template (a short copy reads a full 64)

ctypedef struct pg_edit_t:
    uint16_t offset
    uint8_t size
    uint8_t mode
    uint16_t word_start         # the 16-bit words the edit touches: [word_start, word_end)
    uint16_t word_end
    uint32_t min
    uint32_t max
    uint32_t next_value

ctypedef struct pg_template_t:  # one template packet, analysed once when the stream is added
    uint32_t offset             # in pg_stream_t.data
    uint16_t length
    uint16_t ip4_csum           # offset of the IPv4 header checksum (0: none to keep)
    uint16_t l4_csum            # offset of the UDP/TCP checksum (0: none to keep)
    uint8_t udp                 # l4_csum is UDP's: 0 means absent, a computed 0 is sent as 0xffff
    uint8_t pad
    uint8_t edit_csum[8]        # per edit: CSUM_* bits, or EDIT_OUTSIDE

ctypedef struct pg_stream_t:
    uint8_t* data               # templates, back to back, then TEMPLATE_PAD bytes
    pg_template_t* templates
    uint32_t n_packets
    uint32_t next_packet
    uint64_t limit              # 0: no limit
    uint64_t sent
    double rate                 # packets/s; 0: as fast as possible
    uint64_t start_ns
    pg_edit_t edits[8]
    uint32_t n_edits
    uint8_t enabled
    uint32_t sw_if_index
    uint64_t rng
    uint64_t meta[5]            # a sent buffer's first GN_BUFFER_INIT_BYTES: fresh, sw_if_index[RX] set

ctypedef struct pg_t:
    pg_stream_t* streams
    uint32_t n_streams
    uint16_t next_index
    uint32_t sending            # the stream whose packets are being enqueued (their trace names it)

ctypedef struct pg_trace_t:
    uint32_t length
    uint32_t stream
    uint8_t bytes[GN_TRACE_BYTES_HEADER + TRACE_BYTES]   # the kit's record: rx sw_if_index, the frame


cdef inline uint64_t _xorshift(uint64_t* s) noexcept nogil:
    cdef uint64_t x = s[0]
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    s[0] = x
    return x


cdef inline void _store(uint8_t* p, uint8_t size, uint32_t v) noexcept nogil:
    """Store v big-endian in 1, 2 or 4 bytes with one store (a checksum pass
    reads these bytes right after: byte stores would stall its word loads)."""
    if size == 1:
        p[0] = <uint8_t>v
    elif size == 2:
        gn_put_net16(p, <uint16_t>v)
    else:
        gn_put_net32(p, v)


cdef inline uint32_t _fold16(uint32_t x) noexcept nogil:
    """Ones-complement fold of a sum below 2**32 (two folds always suffice)."""
    x = (x & 0xffff) + (x >> 16)
    return (x & 0xffff) + (x >> 16)


cdef inline uint32_t _words(const uint8_t* pkt, uint32_t a, uint32_t b) noexcept nogil:
    """Sum of the big-endian 16-bit words in [a, b) (a, b even)."""
    cdef uint32_t sum = 0
    while a < b:
        sum += gn_net16(pkt + a)
        a += 2
    return sum


cdef inline void _csum_apply(uint8_t* field, uint32_t delta, bint udp) noexcept nogil:
    """RFC 1624 eqn 3, HC' = ~(~HC + delta), delta the folded sum of ~m + m'
    over the changed words m -> m'."""
    cdef uint32_t hc = gn_net16(field)
    cdef uint32_t v
    if udp and hc == 0:
        return                                    # UDP without a checksum
    v = ~_fold16((~hc & 0xffff) + _fold16(delta)) & 0xffff
    gn_put_net16(field, v if v != 0 or not udp else 0xffff)


cdef inline void _apply_edits(pg_stream_t* s, const pg_template_t* t, uint8_t* pkt) noexcept nogil:
    """Apply the edits to a fresh copy of template t, and update the
    checksums t keeps incrementally: one RFC 1624 update per checksum for
    all edits together (the templates were made valid when the stream was
    added; which checksum each edit touches was worked out then)."""
    cdef uint32_t k, v, old_w, new_w, d, ip_delta = 0, l4_delta = 0
    cdef uint64_t span
    cdef uint8_t flags
    cdef pg_edit_t* e
    for k in range(s.n_edits):
        e = &s.edits[k]
        flags = t.edit_csum[k]
        if flags & EDIT_OUTSIDE:
            continue
        if e.mode == EDIT_RANDOM:
            # multiply-high maps 32 random bits onto [0, span) without a division
            span = <uint64_t>e.max - e.min + 1
            v = <uint32_t>(e.min + (((_xorshift(&s.rng) >> 32) * span) >> 32))
        else:
            v = e.next_value
            e.next_value = e.min if v >= e.max else v + 1
        if not flags:
            _store(pkt + e.offset, e.size, v)
            continue
        if e.size == 4 and not (e.offset & 1):
            # whole words (the common case: an address): no re-read
            old_w = gn_net16(pkt + e.offset) + gn_net16(pkt + e.offset + 2)
            _store(pkt + e.offset, 4, v)
            new_w = (v >> 16) + (v & 0xffff)
        elif e.size == 2 and not (e.offset & 1):
            old_w = gn_net16(pkt + e.offset)
            _store(pkt + e.offset, 2, v)
            new_w = v
        else:
            old_w = _words(pkt, e.word_start, e.word_end)
            _store(pkt + e.offset, e.size, v)
            new_w = _words(pkt, e.word_start, e.word_end)
        d = (~_fold16(old_w) & 0xffff) + _fold16(new_w)
        if flags & CSUM_IP4:
            ip_delta += d
        if flags & CSUM_L4:
            l4_delta += d
    if ip_delta:
        _csum_apply(pkt + t.ip4_csum, ip_delta, False)
    if l4_delta:
        _csum_apply(pkt + t.l4_csum, l4_delta, t.udp)


cdef void _analyse_template(pg_template_t* t, const uint8_t* pkt, uint32_t l3, bint fix,
                            const pg_edit_t* edits, uint32_t n_edits) noexcept nogil:
    """Fill t's checksum offsets and per-edit flags (t.offset and t.length
    set). Word boundaries are even packet offsets, which holds because l3 is
    even and IPv4 headers are 4n bytes."""
    cdef uint32_t k, a, b, ihl, end = 0, l4 = 0, length = t.length
    cdef bint ip_ok = False
    t.ip4_csum = t.l4_csum = 0
    t.udp = 0
    if fix and l3 + 20 <= length and (pkt[l3] >> 4) == 4:
        ihl = (pkt[l3] & 0x0f) * 4
        end = l3 + gn_net16(pkt + l3 + 2)
        ip_ok = ihl >= 20 and end <= length and end >= l3 + ihl
        l4 = l3 + ihl
        if ip_ok:
            t.ip4_csum = <uint16_t>(l3 + 10)
            if (gn_net16(pkt + l3 + 6) & 0x3fff) == 0:      # not a fragment
                if pkt[l3 + 9] == 17 and l4 + 8 <= end:
                    t.l4_csum = <uint16_t>(l4 + 6)
                    t.udp = 1
                elif pkt[l3 + 9] == 6 and l4 + 20 <= end:
                    t.l4_csum = <uint16_t>(l4 + 16)
    for k in range(n_edits):
        t.edit_csum[k] = 0
        if <uint32_t>edits[k].offset + edits[k].size > length:
            t.edit_csum[k] = EDIT_OUTSIDE
            continue
        a = edits[k].word_start
        b = edits[k].word_end
        if t.ip4_csum and a < l4 and b > l3:
            t.edit_csum[k] |= CSUM_IP4
        # the L4 checksum covers the pseudo header's addresses and the segment
        if t.l4_csum and ((a < l3 + 20 and b > l3 + 12) or (a >= l4 and b <= end)):
            t.edit_csum[k] |= CSUM_L4


cdef uint32_t pg_input_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef pg_t* pg = <pg_t*>node.runtime_data
    cdef pg_stream_t* s
    cdef uint32_t k, i, n, got, total = 0
    cdef uint32_t bis[256]
    cdef uint64_t now = 0, allowed, wait_ns, min_wait = <uint64_t>-1
    cdef gn_buffer_t* b
    cdef const pg_template_t* t
    cdef bint more = False
    if pg == NULL:
        return 0
    for k in range(pg.n_streams):
        s = &pg.streams[k]
        if not s.enabled or s.n_packets == 0 or (s.limit and s.sent >= s.limit):
            continue
        n = GN_FRAME_SIZE
        if s.limit and s.limit - s.sent < n:
            n = <uint32_t>(s.limit - s.sent)
        if s.rate > 0:
            if now == 0:
                now = gn_time_ns()
            if s.start_ns == 0:
                s.start_ns = now
            allowed = <uint64_t>((now - s.start_ns) * 1e-9 * s.rate) + 1
            allowed = allowed - s.sent if allowed > s.sent else 0
            if allowed < n:
                n = <uint32_t>allowed
        if n:
            # Uninitialised: each buffer gets the stream's metadata template.
            got = gn_main_alloc_uninit(vm, bis, n)
            if got < n:
                gn_node_increment_error(vm, node, ERROR_NO_BUFFERS, n - got)
            for i in range(got):
                b = gn_main_buffer(vm, bis[i])
                if i + PREFETCH_AHEAD < got:
                    gn_prefetch_store(gn_main_buffer(vm, bis[i + PREFETCH_AHEAD]).data)
                memcpy(b, s.meta, GN_BUFFER_INIT_BYTES)
                t = &s.templates[s.next_packet]
                if t.length <= 64:
                    memcpy(b.data, s.data + t.offset, 64)     # a fixed-size copy, inlined (data is padded)
                else:
                    memcpy(b.data, s.data + t.offset, t.length)
                b.current_length = t.length
                if s.n_edits:
                    _apply_edits(s, t, b.data)
                s.next_packet += 1
                if s.next_packet == s.n_packets:
                    s.next_packet = 0
            s.sent += got
            total += got
            if got:
                pg.sending = k
                gn_enqueue_to_single_next(vm, node, bis, pg.next_index, got)
        if s.limit and s.sent >= s.limit:
            continue
        more = True
        if s.rate > 0:
            wait_ns = <uint64_t>((s.sent) * 1e9 / s.rate)         # when packet sent+1 is due
            wait_ns = wait_ns + s.start_ns - now if wait_ns + s.start_ns > now else 0
            if wait_ns < min_wait:
                min_wait = wait_ns
        else:
            min_wait = 0
    node.has_more_work = more
    if more and node.state == GN_NODE_INTERRUPT:
        if min_wait == 0:
            gn_node_set_interrupt_pending(vm, node.node_index)
        else:
            # Even a wait shorter than a tick goes through the timer (it
            # fires at the next tick boundary): re-raising the interrupt
            # would spin the loop until the packet is due.
            gn_node_schedule_interrupt(vm, node.node_index, min_wait // vm.timers.tick_ns)
    return total


cdef uint16_t pg_trace_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b, uint8_t* record) noexcept nogil:
    cdef pg_trace_t* t = <pg_trace_t*>record
    t.length = b.current_length
    t.stream = (<pg_t*>node.runtime_data).sending
    return 8 + gn_trace_bytes_fill(t.bytes, b.sw_if_index[GN_RX], gn_buffer_current(b), b.current_length, TRACE_BYTES)


def format_pg_trace(bytes record, engine=None, streams=()):
    """Trace text, as VPP's pg-input: the stream's name, the length and the
    interface the packet enters on, then the packet decoded from its first
    bytes (an Ethernet frame, or an IPv4 packet for a stream whose
    l3_offset is 0). ``streams``: (name, l3_offset) by stream index."""
    from graphnet.wire.ethernet import format_ethernet_frame
    from graphnet.wire.ip4 import format_ip4_header
    length, k = struct.unpack_from("<II", record)
    name, l3 = streams[k] if k < len(streams) else (f"#{k}", 14)
    sw_if, data = parse_trace_bytes(record, 8)
    ifname = ""
    if engine is not None:
        try:
            ifname = f" ({engine.interfaces.names[sw_if]})"
        except (AttributeError, IndexError, KeyError):
            pass
    more = "" if len(data) >= length else f" (first {len(data)} recorded)"
    decode = format_ip4_header if l3 == 0 else format_ethernet_frame
    return f"  stream {name}, {length} bytes{more}, sw_if_index {sw_if}{ifname}\n" + decode(data, 2)


ETHERNET_IP4_FIELDS = {
    # name: (offset, size) in an Ethernet + IPv4 (IHL 5) + UDP/TCP packet
    "ip4.tos": (15, 1), "ip4.id": (18, 2), "ip4.ttl": (22, 1), "ip4.proto": (23, 1),
    "ip4.src": (26, 4), "ip4.dst": (30, 4),
    "udp.sport": (34, 2), "udp.dport": (36, 2), "tcp.sport": (34, 2), "tcp.dport": (36, 2),
    "eth.type": (12, 2),
}


def _int_value(v):
    if isinstance(v, str) and "." in v:
        import ipaddress
        return int(ipaddress.IPv4Address(v))
    return int(v)


@dataclass
class Edit:
    """Rewrite `size` bytes at `offset` per packet: mode ``inc`` counts from
    min to max and wraps; ``random`` draws uniformly from [min, max] (max
    defaults to the largest value `size` bytes hold).
    ``Edit.field("ip4.src", "10.0.0.1", "10.0.0.99")`` names a field of an
    Ethernet + IPv4 + UDP/TCP packet instead of an offset."""
    offset: int
    size: int
    min: int = 0
    max: Optional[int] = None
    mode: str = "inc"

    def __post_init__(self):
        if self.size not in (1, 2, 4):
            raise ValueError(f"edit size must be 1, 2 or 4 bytes, not {self.size}")
        if self.max is None:
            self.max = (1 << (8 * self.size)) - 1
        self.min, self.max = _int_value(self.min), _int_value(self.max)
        if self.mode not in ("inc", "random"):
            raise ValueError(f"edit mode must be 'inc' or 'random', not {self.mode!r}")
        if not 0 <= self.min <= self.max < (1 << (8 * self.size)):
            raise ValueError(f"edit range [{self.min}, {self.max}] does not fit {self.size} bytes")
        if not 0 <= self.offset <= GN_BUFFER_DATA_SIZE - self.size:
            raise ValueError(f"edit offset {self.offset} is outside a buffer")

    @classmethod
    def field(cls, name, min, max, mode="inc"):
        try:
            offset, size = ETHERNET_IP4_FIELDS[name]
        except KeyError:
            raise ValueError(f"unknown field {name!r}; known: {', '.join(sorted(ETHERNET_IP4_FIELDS))}") from None
        return cls(offset, size, min, max, mode)


@dataclass
class Stream:
    """A pg stream (see module docstring). packets: bytes or Scapy packets."""
    name: str
    packets: Sequence = ()
    count: Optional[int] = None
    rate: Optional[float] = None
    edits: Sequence[Edit] = ()
    fix_checksums: bool = True
    sw_if_index: int = 0
    l3_offset: int = 14
    seed: int = 0x9e3779b97f4a7c15

    def __post_init__(self):
        self.packets = [bytes(p) for p in self.packets]
        if not self.packets:
            raise ValueError(f"stream {self.name!r} has no packets")
        for p in self.packets:
            if not 1 <= len(p) <= GN_BUFFER_DATA_SIZE:
                raise ValueError(f"stream {self.name!r}: a packet of {len(p)} bytes does not fit one "
                                 f"{GN_BUFFER_DATA_SIZE}-byte buffer")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0 packets/s")
        if self.l3_offset < 0 or self.l3_offset % 2:
            raise ValueError(f"l3_offset must be even and >= 0, not {self.l3_offset}")
        if len(self.edits) > MAX_EDITS:
            raise ValueError(f"at most {MAX_EDITS} edits per stream")

    @classmethod
    def from_pcap(cls, name, path, **kw):
        """A stream replaying the packets of a pcap file."""
        from scapy.utils import rdpcap
        return cls(name, [bytes(p) for p in rdpcap(str(path))], **kw)


cdef void _free_stream(pg_stream_t* s) noexcept nogil:
    free(s.data)
    free(s.templates)


cdef class PacketGenerator:
    """Owns the C state of one pg input node; ``nodes()`` registers it.

    ``PacketGenerator(name="pg-input", next_node="null", state="polling")``;
    ``add_stream(Stream(...))`` before or after the engine is built."""
    cdef pg_t* pg
    cdef readonly str name
    cdef readonly str next_node
    cdef readonly str state
    cdef readonly bint adaptive
    cdef readonly list stream_names
    cdef list stream_l3             # (name, l3_offset) by stream index, for the trace
    cdef object engine
    cdef int node_index

    def __cinit__(self, str name="pg-input", str next_node="null", str state="polling", adaptive=False):
        self.pg = <pg_t*>calloc(1, sizeof(pg_t))
        if self.pg == NULL:
            raise MemoryError()
        self.name = name
        self.next_node = next_node
        self.state = state
        self.adaptive = bool(adaptive)
        self.stream_names = []
        self.stream_l3 = []
        self.node_index = -1

    def __dealloc__(self):
        cdef uint32_t k
        if self.pg != NULL:
            for k in range(self.pg.n_streams):
                _free_stream(&self.pg.streams[k])
            free(self.pg.streams)
            free(self.pg)

    def nodes(self):
        return (node(self.name, gn_node_fn(pg_input_fn), type="input", state=self.state, adaptive=self.adaptive,
                     nexts=(("next", self.next_node),), Next=Next, errors=ERRORS, Error=Error,
                     trace=trace_record(gn_trace_fn(pg_trace_fn), sizeof(pg_trace_t), self._format_trace),
                     setup=self._setup, instance=self, doc=__doc__),)

    def _format_trace(self, bytes record, engine=None):
        return format_pg_trace(record, engine, self.stream_l3)

    def _setup(self, engine, node_index):
        self.engine = engine
        self.node_index = node_index
        self.pg.next_index = 0
        engine.main.set_runtime_data(node_index, PyCapsule_New(<void*>self.pg, "gn_runtime_data", NULL))
        engine.main.set_interrupt_pending(node_index)

    def add_stream(self, stream: Stream):
        """Add (and enable) a stream; thread-safe once the engine runs."""
        if stream.name in self.stream_names:
            raise ValueError(f"stream {stream.name!r} exists")
        if self.engine is not None:
            return self.engine.call(self._add_stream, stream)
        return self._add_stream(stream)

    def _add_stream(self, stream):
        cdef pg_stream_t* grown = <pg_stream_t*>realloc(self.pg.streams, (self.pg.n_streams + 1) * sizeof(pg_stream_t))
        cdef pg_stream_t* s
        cdef uint32_t i, off = 0
        cdef bytes blob = b"".join(stream.packets)
        if grown == NULL:
            raise MemoryError()
        self.pg.streams = grown
        s = &grown[self.pg.n_streams]
        memset(s, 0, sizeof(pg_stream_t))
        s.n_packets = len(stream.packets)
        s.data = <uint8_t*>calloc(len(blob) + TEMPLATE_PAD, 1)
        s.templates = <pg_template_t*>calloc(s.n_packets, sizeof(pg_template_t))
        if s.data == NULL or s.templates == NULL:
            _free_stream(s)
            raise MemoryError()
        memcpy(s.data, <const uint8_t*>blob, len(blob))
        s.n_edits = len(stream.edits)
        for i, e in enumerate(stream.edits):
            s.edits[i].offset = e.offset
            s.edits[i].size = e.size
            s.edits[i].word_start = e.offset & ~1
            s.edits[i].word_end = (e.offset + e.size + 1) & ~1
            s.edits[i].mode = EDIT_RANDOM if e.mode == "random" else EDIT_INC
            s.edits[i].min = e.min
            s.edits[i].max = e.max
            s.edits[i].next_value = e.min
        for i, p in enumerate(stream.packets):
            s.templates[i].offset = off
            s.templates[i].length = len(p)
            if stream.fix_checksums and len(p) > stream.l3_offset:
                # make the template valid once; edits then update incrementally
                gn_ip4_fix_checksums(s.data + off + <uint32_t>stream.l3_offset, <uint32_t>(len(p) - stream.l3_offset))
            _analyse_template(&s.templates[i], s.data + off, stream.l3_offset, stream.fix_checksums,
                              s.edits, s.n_edits)
            off += len(p)
        s.limit = stream.count if stream.count is not None else 0
        if stream.count == 0:
            s.enabled = 0
        else:
            s.enabled = 1
        s.rate = stream.rate or 0.0
        s.sw_if_index = stream.sw_if_index
        gn_buffer_meta_template(s.meta, stream.sw_if_index)
        s.rng = stream.seed or 1
        self.pg.n_streams += 1
        self.stream_names.append(stream.name)
        self.stream_l3.append((stream.name, stream.l3_offset))
        if self.engine is not None:
            self.engine.main.set_interrupt_pending(self.node_index)

    cdef pg_stream_t* _stream(self, str name) except NULL:
        try:
            return &self.pg.streams[self.stream_names.index(name)]
        except ValueError:
            raise KeyError(f"no stream named {name!r}") from None

    def enable(self, str name, bint on=True):
        """Enable (from a count of zero sent) or disable a stream."""
        if self.engine is not None:
            return self.engine.call(self._enable, name, on)
        return self._enable(name, on)

    def _enable(self, str name, bint on):
        cdef pg_stream_t* s = self._stream(name)
        s.enabled = on
        if on:
            s.start_ns = 0
            s.sent = 0
            if self.engine is not None:
                self.engine.main.set_interrupt_pending(self.node_index)

    def stats(self):
        """{stream name: packets sent}."""
        return {n: self.pg.streams[i].sent for i, n in enumerate(self.stream_names)}
