"""``ip4-reassembly``: full reassembly of IPv4 fragments for local delivery.

A packet that is not a fragment (MF clear, offset 0) passes straight
through. Fragments are held, per datagram key (src, dst, id, protocol), in a
hash table of contexts; each context keeps its fragments sorted by offset.
When the last byte arrives the datagram leaves as one buffer chain: the
first fragment's buffer (its IP header, options included, with total
length, flags and offset rewritten and the checksum recomputed) followed by
every fragment's payload, in order, with the per-fragment IP headers
stripped. Its metadata (rx interface, opaque) are the first fragment's.

Rules (each drop counted under its own row; a dropped datagram drops every
fragment it held, counted per buffer):

- a fragment with no data, a non-last fragment (MF set) whose data is not
  a multiple of 8 bytes, or a header that does not fit the buffer:
  ``malformed`` (that fragment only);
- an exact duplicate (same offset, length and MF): ``duplicate`` (that
  fragment only; the datagram goes on);
- any other overlap: ``overlap``, the whole datagram (RFC 5722's rule,
  applied to IPv4 as Linux and FreeBSD do);
- a last fragment that disagrees with the end already known, or data
  beyond it: ``inconsistent``, the whole datagram;
- a datagram longer than 65535 bytes: ``too-long`` (ping of death);
- more than ``max_fragments`` fragments: ``too-many-fragments``;
- a new datagram while ``max_datagrams`` are in progress: the oldest
  datagram is dropped to make room (``too-many-datagrams``, each of its
  buffers): the newest datagram wins, so a flood of first fragments
  cannot lock legitimate datagrams out until the timeout;
- a fragment that would take the buffers held past ``pool_share`` of the
  engine's buffer pool (default 25%): the oldest datagrams are dropped
  until it fits (``evicted``, each of their buffers; ``datagrams_evicted``
  in ``stats()``), no ICMP sent, as Linux's fragment memory limit
  (ipfrag_high_thresh) evicts; when the fragment's own datagram is the
  only one left it goes too. A flood of incomplete fragments thus never
  takes more than that share of the pool: inputs always find buffers;
- the limits change at run time (``configure``, ``set ip reassembly``,
  ``[ip.reassembly]``): a lowered ``max_datagrams`` drops the oldest
  datagrams beyond it at once (``too-many-datagrams``), a lowered
  ``max_fragments`` those holding more fragments (``too-many-fragments``);
- incomplete ``timeout`` seconds after its first fragment: ``timeout``.
  Expiry runs in ``ip4-reassembly-expire``, an input node in interrupt mode
  woken by the engine's timer wheel for the oldest datagram: no polling, no
  work while nothing is held.

Time exceeded (RFC 792 type 11 code 1, RFC 1122 s.3.3.2): when the graph
has ``ip4-icmp-error`` and a timed-out datagram holds its fragment with
offset 0, that fragment (still as received) goes to ip4-icmp-error, which
turns it into "fragment reassembly time exceeded" quoting its IP header and
the start of its data (at least 8 bytes; up to 576 bytes in all, as for
every ICMP error here), from the receiving interface's address to the
datagram's source. ip4-icmp-error applies its usual rules (rate limit;
never about an ICMP error, a broadcast or a bogus source) and counts what
it sends. Without the first fragment nothing is sent (the sender could not
match the quote). ``time-exceeded`` counts the datagrams handed over; every
buffer of a timed-out datagram, the handed-over one included, is counted
once under ``timeout`` (ip4-icmp-error counts a sent error's original
under its reason, as it does for every reason).

``reassembled`` counts datagrams completed (an event, not a drop).

Invariants: a held buffer belongs to exactly one context; contexts sit in
one hash chain and in the age list (oldest first) from creation to
completion or drop; the fragments of a context never overlap, so the bytes
held equal the bytes covered and the datagram is complete when they equal
the known length. When the engine closes, held buffers are freed.

Metadata used: current_data (the IPv4 header), current_length, chains
(the header must lie in the first buffer). Set on the reassembled head:
the chain (next_buffer, NEXT_PRESENT, total_length_not_including_first_buffer),
l3_hdr_offset. Next nodes: ``ip4-local`` when the graph has it, else
``null`` (``nodes(next_node=...)`` picks another); the expire node's:
``ip4-icmp-error`` (else error-drop). Trace record: the kit's common one
(rx sw_if_index and the first 40 bytes of the header). State: the kit's
per-node ``reass_t`` (the expire node points at the same), whose tables
the ``Reassembly`` object in ``engine.node_data[name].keep`` owns.
"""
import os

from graphnet.vlib import buffer_usage

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memmove
from graphnet.includes.byteorder cimport gn_net16, gn_put_net16, gn_read_u32
from graphnet.includes.platform cimport gn_time_ns
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_BUFFER_F_NEXT_PRESENT, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_free,
                                 gn_next_buffers_t, gn_next_buffers_flush, gn_next_buffers_put,
                                 gn_node_increment_error, gn_node_schedule_interrupt, gn_count_drops)
from graphnet.vlib.kit cimport NodeData, gn_node_fn, gn_node_data
from graphnet.wire.ip4 cimport (gn_ip4_header_bytes, gn_ip4_total_length, gn_ip4_set_checksum, GN_IP4_HEADER_LEN,
                                GN_IP4_FLAG_MF, GN_IP4_FRAG_OFFSET_MASK)
from graphnet.io.bufcopy cimport gn_chain_length
from graphnet.vlib.kit import node, trace_bytes
from graphnet.wire.ip4 import format_ip4_header

cpdef enum Next:
    NEXT_OUTPUT, N_NEXT
cpdef enum Error:
    ERROR_NONE
    ERROR_REASSEMBLED
    ERROR_DUPLICATE
    ERROR_OVERLAP
    ERROR_INCONSISTENT
    ERROR_TOO_LONG
    ERROR_TOO_MANY_FRAGMENTS
    ERROR_TOO_MANY_DATAGRAMS
    ERROR_TIMEOUT
    ERROR_MALFORMED
    ERROR_TIME_EXCEEDED
    ERROR_EVICTED
    N_ERROR
cpdef enum ExpireNext:        # ip4-reassembly-expire's arc: ip4-icmp-error (or error-drop)
    EXPIRE_NEXT_ICMP_ERROR, EXPIRE_N_NEXT
cpdef enum ExpireError:
    EXPIRE_ERROR_NONE, EXPIRE_N_ERROR

cdef enum:
    NONE = 0xffffffff
    MAX_FRAGMENTS_LIMIT = 1024
    MAX_DATAGRAMS_LIMIT = 1 << 22
    IP4_MAX_LENGTH = 65535
    TRACE_BYTES = 40

NEXTS = (("output", ("ip4-local", "null")),)
EXPIRE_NEXTS = (("icmp-error", ("ip4-icmp-error", "error-drop")),)
ERRORS = (
    ("none", "info", "no error"),
    ("reassembled", "info", "datagrams reassembled"),
    ("duplicate", "error", "duplicate fragment dropped"),
    ("overlap", "error", "overlapping fragments: datagram dropped"),
    ("inconsistent", "error", "fragments disagree on the datagram length: datagram dropped"),
    ("too-long", "error", "reassembled datagram longer than 65535 bytes: dropped"),
    ("too-many-fragments", "error", "more fragments than the limit per datagram: datagram dropped"),
    ("too-many-datagrams", "error", "reassembly table full (max_datagrams): oldest datagram dropped"),
    ("timeout", "error", "datagram incomplete at the timeout: dropped"),
    ("malformed", "error", "fragment without data, MF with data not a multiple of 8, or bad header"),
    ("time-exceeded", "info", "timed-out datagrams whose first fragment went to ip4-icmp-error (time exceeded 11/1)"),
    ("evicted", "error", "held fragments over the buffer pool share: oldest datagram dropped"),
)
EXPIRE_ERRORS = (("none", "info", "no error"),)
FEATURE = "ip4"

DEFAULT_POOL_SHARE = 0.25
MAX_TIMEOUT = 1e9          # seconds: its nanoseconds still fit a uint64


def check_share(name, value):
    """A share of the buffer pool: a number, 0 < value <= 1 (ValueError naming it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a share of the buffer pool, 0 < {name} <= 1, not {value!r}")


def check_seconds(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
        raise ValueError(f"{name} must be > 0 seconds and at most {MAX_TIMEOUT:g}, not {value!r}")


ctypedef struct reass_frag_t:
    uint32_t bi
    uint32_t first                # payload bytes [first, end) of the datagram
    uint32_t end
    uint32_t mf

ctypedef struct reass_ctx_t:
    uint32_t src                  # key, as in the header (network order)
    uint32_t dst
    uint16_t id
    uint8_t proto
    uint8_t has_last              # the fragment with MF clear arrived: data_len known
    uint32_t hash_next            # bucket chain (free contexts: free list)
    uint32_t age_prev             # age list, oldest first
    uint32_t age_next
    uint64_t expires_ns
    uint32_t data_len             # payload length (valid with has_last)
    uint32_t max_end              # highest end seen
    uint32_t received             # payload bytes held (= covered: no overlaps)
    uint32_t n_frags
    uint32_t n_buffers            # buffers held (a fragment may be a chain)

ctypedef struct reass_t:
    reass_ctx_t* ctxs
    reass_frag_t* frags           # max_fragments per context, context-major
    uint32_t* buckets
    uint32_t bucket_mask
    uint32_t max_datagrams
    uint32_t max_fragments
    uint64_t timeout_ns
    uint64_t hash_seed
    uint32_t free_head
    uint32_t age_head
    uint32_t age_tail
    uint32_t n_active
    uint32_t error_base           # ip4-reassembly's first error row (the expire node drops with it)
    uint32_t expire_node_index
    uint32_t timer_armed
    uint32_t icmp_error           # the expire node's arc 0 is ip4-icmp-error: send time exceeded
    uint64_t n_held               # buffers held (every buffer of every fragment chain)
    uint64_t max_held             # pool_share of the engine's pool: evict the oldest beyond it
    uint64_t n_frags_reassembled  # fragments that went into reassembled datagrams
    uint64_t n_evicted            # datagrams evicted (max_held or max_datagrams)


# --- output --------------------------------------------------------------------

cdef inline void _out_drop(gn_main_t* vm, gn_node_runtime_t* node, reass_t* r, gn_next_buffers_t* out, uint32_t bi,
                           uint32_t code) noexcept nogil:
    """Send bi to error-drop counted under ip4-reassembly's row `code`
    (whichever of the two nodes drops it)."""
    gn_main_buffer(vm, bi).error = <uint16_t>(r.error_base + code)
    gn_next_buffers_put(vm, node, out, bi, node.drop_next)


# --- contexts ------------------------------------------------------------------

cdef inline uint32_t _hash(reass_t* r, uint32_t src, uint32_t dst, uint16_t id, uint8_t proto) noexcept nogil:
    cdef uint64_t x = (<uint64_t>src << 32) | dst
    x ^= ((<uint64_t>id << 8) | proto | (r.hash_seed << 24)) * 0x9e3779b97f4a7c15ULL
    x ^= x >> 33
    x *= 0xff51afd7ed558ccdULL
    x ^= x >> 33
    x *= 0xc4ceb9fe1a85ec53ULL
    x ^= x >> 33
    return <uint32_t>x & r.bucket_mask


cdef uint32_t _ctx_find(reass_t* r, uint32_t h, uint32_t src, uint32_t dst, uint16_t id, uint8_t proto) noexcept nogil:
    cdef uint32_t ci = r.buckets[h]
    cdef reass_ctx_t* c
    while ci != NONE:
        c = &r.ctxs[ci]
        if c.src == src and c.dst == dst and c.id == id and c.proto == proto:
            return ci
        ci = c.hash_next
    return NONE


cdef uint32_t _ctx_new(reass_t* r, uint32_t h, uint32_t src, uint32_t dst, uint16_t id, uint8_t proto,
                       uint64_t now) noexcept nogil:
    cdef uint32_t ci = r.free_head
    cdef reass_ctx_t* c
    if ci == NONE:
        return NONE
    c = &r.ctxs[ci]
    r.free_head = c.hash_next
    c.src = src
    c.dst = dst
    c.id = id
    c.proto = proto
    c.has_last = 0
    c.data_len = 0
    c.max_end = 0
    c.received = 0
    c.n_frags = 0
    c.n_buffers = 0
    c.expires_ns = now + r.timeout_ns
    c.hash_next = r.buckets[h]
    r.buckets[h] = ci
    c.age_next = NONE
    c.age_prev = r.age_tail
    if r.age_tail != NONE:
        r.ctxs[r.age_tail].age_next = ci
    else:
        r.age_head = ci
    r.age_tail = ci
    r.n_active += 1
    return ci


cdef void _ctx_free(reass_t* r, uint32_t ci) noexcept nogil:
    """Unlink a context (its fragments already handed on) and free it."""
    cdef reass_ctx_t* c = &r.ctxs[ci]
    cdef uint32_t h = _hash(r, c.src, c.dst, c.id, c.proto)
    cdef uint32_t* link = &r.buckets[h]
    while link[0] != ci:
        link = &r.ctxs[link[0]].hash_next
    link[0] = c.hash_next
    if c.age_prev != NONE:
        r.ctxs[c.age_prev].age_next = c.age_next
    else:
        r.age_head = c.age_next
    if c.age_next != NONE:
        r.ctxs[c.age_next].age_prev = c.age_prev
    else:
        r.age_tail = c.age_prev
    r.n_held -= c.n_buffers
    c.n_frags = 0
    c.n_buffers = 0
    c.hash_next = r.free_head
    r.free_head = ci
    r.n_active -= 1


cdef void _ctx_drop(gn_main_t* vm, gn_node_runtime_t* node, reass_t* r, gn_next_buffers_t* out, uint32_t ci,
                    uint32_t code) noexcept nogil:
    """Drop every fragment a context holds under `code` and free it."""
    cdef reass_frag_t* fr = &r.frags[<uint64_t>ci * r.max_fragments]
    cdef uint32_t k
    for k in range(r.ctxs[ci].n_frags):
        _out_drop(vm, node, r, out, fr[k].bi, code)
    _ctx_free(r, ci)


cdef inline uint32_t _n_buffers(gn_main_t* vm, gn_buffer_t* b) noexcept nogil:
    cdef uint32_t n = 1
    while b.flags & GN_BUFFER_F_NEXT_PRESENT:
        b = gn_main_buffer(vm, b.next_buffer)
        n += 1
    return n


cdef bint _make_room(gn_main_t* vm, gn_node_runtime_t* node, reass_t* r, gn_next_buffers_t* out, uint32_t ci,
                     uint32_t nb) noexcept nogil:
    """Evict the oldest datagrams other than ci until nb more buffers fit
    under max_held; False when they cannot (ci alone holds too many)."""
    while r.n_held + nb > r.max_held:
        if r.age_head == NONE or r.age_head == ci:
            if r.age_head == NONE or r.ctxs[ci].age_next == NONE:
                return False
            _ctx_drop(vm, node, r, out, r.ctxs[ci].age_next, ERROR_EVICTED)   # ci is the oldest: the next one
        else:
            _ctx_drop(vm, node, r, out, r.age_head, ERROR_EVICTED)
        r.n_evicted += 1
    return True


cdef inline gn_buffer_t* _chain_tail(gn_main_t* vm, gn_buffer_t* b) noexcept nogil:
    while b.flags & GN_BUFFER_F_NEXT_PRESENT:
        b = gn_main_buffer(vm, b.next_buffer)
    return b


cdef uint32_t _ctx_complete(gn_main_t* vm, reass_t* r, uint32_t ci) noexcept nogil:
    """Link a complete context's fragments into one chain behind the first
    fragment's header, fix the header, free the context; returns the head."""
    cdef reass_ctx_t* c = &r.ctxs[ci]
    cdef reass_frag_t* fr = &r.frags[<uint64_t>ci * r.max_fragments]
    cdef uint32_t k, bi, nb, hlen, hlen_k, n = c.n_frags, data_len = c.data_len
    cdef uint32_t head_bi = fr[0].bi
    cdef gn_buffer_t* head = gn_main_buffer(vm, head_bi)
    cdef gn_buffer_t* tail = _chain_tail(vm, head)
    cdef gn_buffer_t* b
    cdef uint8_t* ip = gn_buffer_current(head)
    hlen = gn_ip4_header_bytes(ip)
    for k in range(1, n):
        bi = fr[k].bi
        b = gn_main_buffer(vm, bi)
        hlen_k = gn_ip4_header_bytes(gn_buffer_current(b))
        b.current_data += <int>hlen_k
        b.current_length -= <uint16_t>hlen_k
        if b.current_length == 0 and (b.flags & GN_BUFFER_F_NEXT_PRESENT):
            # the header filled the whole first buffer: drop that buffer alone
            nb = b.next_buffer
            b.flags &= ~GN_BUFFER_F_NEXT_PRESENT
            gn_main_free(vm, &bi, 1)
            bi = nb
            b = gn_main_buffer(vm, bi)
        tail.next_buffer = bi
        tail.flags |= GN_BUFFER_F_NEXT_PRESENT
        b.total_length_not_including_first_buffer = 0
        tail = _chain_tail(vm, b)
    gn_put_net16(ip + 2, <uint16_t>(hlen + data_len))
    gn_put_net16(ip + 6, 0)
    gn_ip4_set_checksum(ip)
    head.total_length_not_including_first_buffer = hlen + data_len - head.current_length
    if head.total_length_not_including_first_buffer == 0:
        head.flags &= ~GN_BUFFER_F_NEXT_PRESENT
    head.l3_hdr_offset = head.current_data
    r.n_frags_reassembled += n
    _ctx_free(r, ci)
    return head_bi


cdef void _trim_chain(gn_main_t* vm, gn_buffer_t* b, uint32_t total) noexcept nogil:
    """Cut a packet (chain) to `total` bytes (at most its length), freeing
    the buffers past the cut."""
    cdef gn_buffer_t* c = b
    cdef uint32_t remaining = total, rest
    while True:
        if c.current_length >= remaining:
            c.current_length = <uint16_t>remaining
            if c.flags & GN_BUFFER_F_NEXT_PRESENT:
                rest = c.next_buffer
                c.flags &= ~GN_BUFFER_F_NEXT_PRESENT
                gn_main_free(vm, &rest, 1)
            break
        remaining -= c.current_length
        if not (c.flags & GN_BUFFER_F_NEXT_PRESENT):
            break
        c = gn_main_buffer(vm, c.next_buffer)
    b.total_length_not_including_first_buffer = total - b.current_length
    if b.total_length_not_including_first_buffer == 0:
        b.flags &= ~GN_BUFFER_F_NEXT_PRESENT


cdef inline void _arm_timer(gn_main_t* vm, reass_t* r, uint64_t now) noexcept nogil:
    """Wake the expire node when the oldest context expires."""
    cdef uint64_t due, ticks
    if r.timer_armed or r.age_head == NONE:
        return
    due = r.ctxs[r.age_head].expires_ns
    ticks = (due - now) // vm.timers.tick_ns + 1 if due > now else 1
    gn_node_schedule_interrupt(vm, r.expire_node_index, ticks)
    r.timer_armed = 1


# --- the nodes -----------------------------------------------------------------

cdef uint32_t ip4_reassembly_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef reass_t* r = <reass_t*>node.runtime_data
    cdef gn_next_buffers_t out
    cdef uint32_t i, n = frame.n_vectors, bi, hlen, total, avail, first, end, plen, mf, h, ci, k, nf, nb
    cdef uint32_t src, dst, n_done = 0
    cdef uint16_t frag, ident
    cdef uint8_t proto
    cdef uint64_t now = 0
    cdef gn_buffer_t* b
    cdef uint8_t* ip
    cdef reass_ctx_t* c
    cdef reass_frag_t* fr
    out.n = 0
    for i in range(n):
        bi = frame.buffers[i]
        b = gn_main_buffer(vm, bi)
        ip = gn_buffer_current(b)
        # the header must lie in the first buffer and the packet hold total length
        if b.current_length < GN_IP4_HEADER_LEN or (ip[0] >> 4) != 4:
            _out_drop(vm, node, r, &out, bi, ERROR_MALFORMED)
            continue
        hlen = gn_ip4_header_bytes(ip)
        total = gn_ip4_total_length(ip)
        avail = gn_chain_length(vm, bi) if b.flags & GN_BUFFER_F_NEXT_PRESENT else b.current_length
        if hlen < GN_IP4_HEADER_LEN or hlen > b.current_length or total < hlen or total > avail:
            _out_drop(vm, node, r, &out, bi, ERROR_MALFORMED)
            continue
        frag = gn_net16(ip + 6)
        if not (frag & (GN_IP4_FLAG_MF | GN_IP4_FRAG_OFFSET_MASK)):
            gn_next_buffers_put(vm, node, &out, bi, NEXT_OUTPUT)           # not a fragment
            continue
        if total < avail:
            _trim_chain(vm, b, total)                           # padding, stray tail
        first = (frag & GN_IP4_FRAG_OFFSET_MASK) * 8
        plen = total - hlen
        end = first + plen
        mf = 1 if frag & GN_IP4_FLAG_MF else 0
        if plen == 0 or (mf and (plen & 7)):
            _out_drop(vm, node, r, &out, bi, ERROR_MALFORMED)
            continue
        src = gn_read_u32(ip + 12)
        dst = gn_read_u32(ip + 16)
        ident = gn_net16(ip + 4)
        proto = ip[9]
        h = _hash(r, src, dst, ident, proto)
        ci = _ctx_find(r, h, src, dst, ident, proto)
        if end + GN_IP4_HEADER_LEN > IP4_MAX_LENGTH:
            if ci != NONE:
                _ctx_drop(vm, node, r, &out, ci, ERROR_TOO_LONG)
            _out_drop(vm, node, r, &out, bi, ERROR_TOO_LONG)
            continue
        if ci == NONE:
            if now == 0:
                now = gn_time_ns()
            if r.free_head == NONE:             # full: the oldest makes room
                _ctx_drop(vm, node, r, &out, r.age_head, ERROR_TOO_MANY_DATAGRAMS)
                r.n_evicted += 1
            ci = _ctx_new(r, h, src, dst, ident, proto, now)
            _arm_timer(vm, r, now)
        c = &r.ctxs[ci]
        # the datagram's end: one last fragment, nothing beyond it
        if ((not mf and ((c.has_last and end != c.data_len) or end < c.max_end))
                or (mf and c.has_last and end > c.data_len)):
            _ctx_drop(vm, node, r, &out, ci, ERROR_INCONSISTENT)
            _out_drop(vm, node, r, &out, bi, ERROR_INCONSISTENT)
            continue
        fr = &r.frags[<uint64_t>ci * r.max_fragments]
        nf = c.n_frags
        k = 0
        while k < nf and fr[k].first < first:
            k += 1
        if k < nf and fr[k].first == first and fr[k].end == end and fr[k].mf == mf:
            _out_drop(vm, node, r, &out, bi, ERROR_DUPLICATE)
            continue
        if (k > 0 and fr[k - 1].end > first) or (k < nf and fr[k].first < end):
            _ctx_drop(vm, node, r, &out, ci, ERROR_OVERLAP)
            _out_drop(vm, node, r, &out, bi, ERROR_OVERLAP)
            continue
        if nf == r.max_fragments:
            _ctx_drop(vm, node, r, &out, ci, ERROR_TOO_MANY_FRAGMENTS)
            _out_drop(vm, node, r, &out, bi, ERROR_TOO_MANY_FRAGMENTS)
            continue
        nb = _n_buffers(vm, b)
        if r.n_held + nb > r.max_held and not _make_room(vm, node, r, &out, ci, nb):
            r.n_evicted += 1
            _ctx_drop(vm, node, r, &out, ci, ERROR_EVICTED)
            _out_drop(vm, node, r, &out, bi, ERROR_EVICTED)
            continue
        if k < nf:
            memmove(&fr[k + 1], &fr[k], (nf - k) * sizeof(reass_frag_t))
        fr[k].bi = bi
        fr[k].first = first
        fr[k].end = end
        fr[k].mf = mf
        c.n_frags = nf + 1
        c.n_buffers += nb
        r.n_held += nb
        c.received += plen
        if end > c.max_end:
            c.max_end = end
        if not mf:
            c.has_last = 1
            c.data_len = end
        if c.has_last and c.received == c.data_len:
            if c.data_len + gn_ip4_header_bytes(gn_buffer_current(gn_main_buffer(vm, fr[0].bi))) > IP4_MAX_LENGTH:
                _ctx_drop(vm, node, r, &out, ci, ERROR_TOO_LONG)
                continue
            gn_next_buffers_put(vm, node, &out, _ctx_complete(vm, r, ci), NEXT_OUTPUT)
            n_done += 1
    gn_next_buffers_flush(vm, node, &out)
    if n_done:
        gn_node_increment_error(vm, node, ERROR_REASSEMBLED, n_done)
    return n


cdef bint _ctx_expire(gn_main_t* vm, gn_node_runtime_t* node, reass_t* r, gn_next_buffers_t* out,
                      uint32_t ci) noexcept nogil:
    """Time out context ci: every fragment is marked ``timeout``; the one at
    offset 0 (fragments are sorted, so it can only be the first) goes to
    ip4-icmp-error when the graph has it, the others to error-drop. Frees
    the context; returns whether a fragment went to ip4-icmp-error."""
    cdef reass_frag_t* fr = &r.frags[<uint64_t>ci * r.max_fragments]
    cdef uint32_t k = 0
    cdef bint icmp = r.icmp_error and r.ctxs[ci].n_frags > 0 and fr[0].first == 0
    if icmp:
        gn_main_buffer(vm, fr[0].bi).error = <uint16_t>(r.error_base + ERROR_TIMEOUT)
        gn_next_buffers_put(vm, node, out, fr[0].bi, EXPIRE_NEXT_ICMP_ERROR)
        k = 1
    while k < r.ctxs[ci].n_frags:
        _out_drop(vm, node, r, out, fr[k].bi, ERROR_TIMEOUT)
        k += 1
    _ctx_free(r, ci)
    return icmp


cdef uint32_t ip4_reassembly_expire_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    """Input node, raised by the timer: time out the contexts past their
    time (see _ctx_expire), oldest first, then re-arm for the next one."""
    cdef reass_t* r = <reass_t*>node.runtime_data
    cdef gn_next_buffers_t out
    cdef uint64_t now = gn_time_ns()
    cdef uint32_t n_dropped = 0, n_icmp = 0
    out.n = 0
    r.timer_armed = 0
    while r.age_head != NONE and r.ctxs[r.age_head].expires_ns <= now:
        n_dropped += r.ctxs[r.age_head].n_frags
        if _ctx_expire(vm, node, r, &out, r.age_head):
            n_icmp += 1
    gn_next_buffers_flush(vm, node, &out)
    if n_icmp:
        vm.error_counters[r.error_base + ERROR_TIME_EXCEEDED] += n_icmp   # ip4-reassembly's row
    _arm_timer(vm, r, now)
    return n_dropped


# --- control -------------------------------------------------------------------

cdef int _alloc_tables(reass_t* r, uint32_t max_fragments, uint32_t max_datagrams) except -1:
    """Empty tables for these limits into r (r's old tables untouched on
    MemoryError); the free list holds every context."""
    cdef uint32_t i, nb = 1
    while nb < 2 * max_datagrams:
        nb <<= 1
    cdef reass_ctx_t* ctxs = <reass_ctx_t*>calloc(max_datagrams, sizeof(reass_ctx_t))
    cdef reass_frag_t* frags = <reass_frag_t*>calloc(<size_t>max_datagrams * max_fragments, sizeof(reass_frag_t))
    cdef uint32_t* buckets = <uint32_t*>calloc(nb, sizeof(uint32_t))
    if ctxs == NULL or frags == NULL or buckets == NULL:
        free(ctxs)
        free(frags)
        free(buckets)
        raise MemoryError(f"reassembly tables for {max_datagrams} datagrams of {max_fragments} fragments")
    for i in range(nb):
        buckets[i] = NONE
    for i in range(max_datagrams):
        ctxs[i].hash_next = i + 1 if i + 1 < max_datagrams else NONE
    r.ctxs, r.frags, r.buckets = ctxs, frags, buckets
    r.bucket_mask = nb - 1
    r.max_datagrams = max_datagrams
    r.max_fragments = max_fragments
    r.free_head = 0
    r.age_head = NONE
    r.age_tail = NONE
    r.n_active = 0
    r.n_held = 0
    return 0


cdef void _free_tables(reass_t* r) noexcept nogil:
    free(r.ctxs)
    free(r.frags)
    free(r.buckets)
    r.ctxs, r.frags, r.buckets = NULL, NULL, NULL


def check_limits(max_fragments, max_datagrams):
    """ValueError unless 1 <= max_fragments <= 1024 and 1 <= max_datagrams <= 4194304."""
    for name, v, hi in (("max_fragments", max_fragments, MAX_FRAGMENTS_LIMIT),
                        ("max_datagrams", max_datagrams, MAX_DATAGRAMS_LIMIT)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi):
            raise ValueError(f"{name} must be a whole number 1..{hi}, not {v!r}")


cdef class Reassembly:
    """One engine's ip4-reassembly state (``reassembly(engine)``): the
    node's ``reass_t`` (kit state, shared with the expire node) and the
    tables it points to, which this object owns.

    ``stats()``: datagrams in progress, buffers held, limits;
    ``configure(...)``: every limit, at run time."""
    cdef reass_t* r
    cdef reass_t own            # the state when not bound to an engine's node (a check, a test)
    cdef object data            # the NodeData holding *r when bound: alive as long as this object
    cdef double pool_share
    cdef uint64_t pool_buffers
    cdef size_t vm_address
    cdef reass_ctx_t* t_ctxs    # the tables owned, as last allocated: freed by __dealloc__ without
    cdef reass_frag_t* t_frags  # reading r (a NodeData may be freed before this object)
    cdef uint32_t* t_buckets

    def __cinit__(self, uint32_t max_fragments, uint32_t max_datagrams, double timeout, NodeData data=None):
        check_limits(max_fragments, max_datagrams)
        check_seconds("timeout", timeout)
        if data is not None and data.size < sizeof(reass_t):
            raise ValueError("the node's state is too small for reass_t")
        self.data = data
        self.r = <reass_t*>data.data if data is not None else &self.own
        _alloc_tables(self.r, max_fragments, max_datagrams)
        self._own_tables()
        self.r.timeout_ns = <uint64_t>(timeout * 1e9)
        self.r.hash_seed = int.from_bytes(os.urandom(5), "little")
        self.r.max_held = <uint64_t>-1          # until _bind tells the pool's size
        self.pool_share = DEFAULT_POOL_SHARE

    cdef _own_tables(self):
        self.t_ctxs, self.t_frags, self.t_buckets = self.r.ctxs, self.r.frags, self.r.buckets

    def __dealloc__(self):
        free(self.t_ctxs)
        free(self.t_frags)
        free(self.t_buckets)

    def _bind(self, uint32_t error_base, uint32_t expire_node_index, bint icmp_error, uint64_t pool_buffers,
              size_t vm_address):
        self.r.error_base = error_base
        self.r.expire_node_index = expire_node_index
        self.r.icmp_error = icmp_error
        self.vm_address = vm_address
        if pool_buffers:
            self.pool_buffers = pool_buffers
            self._set_max_held()

    cdef _set_max_held(self):
        if self.pool_buffers:
            self.r.max_held = max(1, <uint64_t>(self.pool_share * self.pool_buffers))

    cdef uint32_t _drop_held(self, reass_t* old, uint32_t ci, uint32_t code):
        """Free the fragments context ci of ``old`` holds, counted under
        ``code`` (as error-drop counts a dropped packet); returns how many."""
        cdef gn_main_t* vm = <gn_main_t*>self.vm_address
        cdef reass_frag_t* fr = &old.frags[<uint64_t>ci * old.max_fragments]
        cdef uint32_t k, n = old.ctxs[ci].n_frags
        for k in range(n):
            gn_main_free(vm, &fr[k].bi, 1)
        gn_count_drops(vm, old.error_base + code, n)
        return n

    cdef _resize(self, uint32_t max_fragments, uint32_t max_datagrams):
        """New tables for new limits, the datagrams in progress moved in
        age order. What no longer fits is dropped and counted, as the data
        plane would at the next fragment: the oldest beyond max_datagrams
        (``too-many-datagrams``, the newest stay), then those holding more
        than max_fragments fragments (``too-many-fragments``). Their
        buffers go back to the pool at once (this runs between loop
        iterations, never beside the data plane)."""
        cdef reass_t old = self.r[0]
        cdef reass_t* r = self.r
        cdef reass_ctx_t* c
        cdef reass_ctx_t* nc
        cdef uint32_t ci, nci, nxt, skip
        _alloc_tables(r, max_fragments, max_datagrams)      # MemoryError: nothing changed
        self._own_tables()
        skip = old.n_active - max_datagrams if old.n_active > max_datagrams else 0
        ci = old.age_head
        while ci != NONE:
            c = &old.ctxs[ci]
            nxt = c.age_next
            if skip:
                self._drop_held(&old, ci, ERROR_TOO_MANY_DATAGRAMS)
                r.n_evicted += 1
                skip -= 1
            elif c.n_frags > max_fragments:
                self._drop_held(&old, ci, ERROR_TOO_MANY_FRAGMENTS)
            else:
                nci = _ctx_new(r, _hash(r, c.src, c.dst, c.id, c.proto), c.src, c.dst, c.id, c.proto, 0)
                nc = &r.ctxs[nci]
                nc.has_last, nc.expires_ns, nc.data_len = c.has_last, c.expires_ns, c.data_len
                nc.max_end, nc.received, nc.n_frags, nc.n_buffers = c.max_end, c.received, c.n_frags, c.n_buffers
                memcpy(&r.frags[<uint64_t>nci * max_fragments], &old.frags[<uint64_t>ci * old.max_fragments],
                       c.n_frags * sizeof(reass_frag_t))
                r.n_held += c.n_buffers
            ci = nxt
        _free_tables(&old)

    def configure(self, timeout=None, pool_share=None, max_fragments=None, max_datagrams=None):
        """Change the limits at run time; returns stats().

        timeout: seconds, for datagrams started from now on (those in
        progress keep theirs). pool_share: the share of the engine's
        buffer pool held fragments may take (0 < share <= 1; datagrams
        held beyond a lowered share go as the next fragments arrive).
        max_fragments (1..1024) and max_datagrams (1..4194304): the
        datagrams in progress are kept, except the oldest beyond a lowered
        max_datagrams and those holding more fragments than a lowered
        max_fragments, dropped at once and counted (see _resize). Every
        value is checked before any is applied."""
        if timeout is not None:
            check_seconds("timeout", timeout)
        if pool_share is not None:
            check_share("pool_share", pool_share)
        check_limits(max_fragments, max_datagrams)
        if max_fragments is not None or max_datagrams is not None:
            mf = self.r.max_fragments if max_fragments is None else max_fragments
            md = self.r.max_datagrams if max_datagrams is None else max_datagrams
            if mf != self.r.max_fragments or md != self.r.max_datagrams:
                self._resize(mf, md)
        if timeout is not None:
            self.r.timeout_ns = <uint64_t>(timeout * 1e9)
        if pool_share is not None:
            self.pool_share = pool_share
            self._set_max_held()
        return self.stats()

    def stats(self):
        return {"in_progress": self.r.n_active, "buffers_held": self.r.n_held,
                "fragments_reassembled": self.r.n_frags_reassembled,
                "max_datagrams": self.r.max_datagrams, "max_fragments": self.r.max_fragments,
                "timeout": self.r.timeout_ns / 1e9, "icmp_time_exceeded": bool(self.r.icmp_error),
                "pool_share": self.pool_share,
                "max_buffers_held": self.r.max_held if self.pool_buffers else None,
                "datagrams_evicted": self.r.n_evicted}

    def release_all(self, size_t vm_address):
        """Free every held buffer (the engine is stopped: teardown)."""
        cdef gn_main_t* vm = <gn_main_t*>vm_address
        cdef reass_t* r = self.r
        cdef reass_frag_t* fr
        cdef uint32_t ci, k
        while r.age_head != NONE:
            ci = r.age_head
            fr = &r.frags[<uint64_t>ci * r.max_fragments]
            for k in range(r.ctxs[ci].n_frags):
                gn_main_free(vm, &fr[k].bi, 1)
            _ctx_free(r, ci)
        r.timer_armed = 0


def _states(engine):
    """The engine's Reassembly objects (its reassembly nodes' kept state)."""
    return [d.keep for d in getattr(engine, "node_data", {}).values() if isinstance(d.keep, Reassembly)]


def _queued_buffers(engine) -> int:
    """Buffers the engine's reassembly nodes hold (``show buffers``' Queued)."""
    return sum(st.stats()["buffers_held"] for st in _states(engine))


buffer_usage.register_queue(_queued_buffers)


def reassembly(engine, name="ip4-reassembly") -> Reassembly:
    """The state of the engine's reassembly node `name` (after build)."""
    engine.build()
    st = engine.node_data[name].keep
    if not isinstance(st, Reassembly):
        raise KeyError(f"{name!r} is not a reassembly node")
    return st


def nodes(next_node=None, *, name="ip4-reassembly", max_fragments=64, max_datagrams=1024, timeout=2.0):
    """The two registrations: ``name`` and ``name + "-expire"``.

    next_node: where reassembled datagrams and non-fragments go (default:
    ``ip4-local`` when the graph has it, else ``null``). The expire node
    sends time exceeded through ``ip4-icmp-error`` when the graph has it
    (its reason: this node's ``timeout`` row, registered here). The limits
    are the initial ones; ``reassembly(engine).configure(...)``, ``set ip
    reassembly`` and ``[ip.reassembly]`` change them."""
    from graphnet.nodes.ip4_icmp_error import register_icmp_error
    expire_name = name + "-expire"
    check_limits(max_fragments, max_datagrams)
    check_seconds("timeout", timeout)
    register_icmp_error(name, "timeout", 11, 1)            # time exceeded: fragment reassembly time exceeded

    def setup(engine, node_index):
        data = engine.node_data[name]
        st = data.keep = Reassembly(max_fragments, max_datagrams, timeout, data)
        st._bind(engine.error_base[name], engine.index[expire_name],
                 engine.next_names[expire_name][EXPIRE_NEXT_ICMP_ERROR] == "ip4-icmp-error",
                 engine.pool.stats()["total"], engine.main.address)
        engine.main.set_runtime_data(engine.index[expire_name], data.capsule())

    def teardown(engine, node_index):
        data = engine.node_data.get(name)
        if data is not None and isinstance(data.keep, Reassembly) and engine.main is not None:
            data.keep.release_all(engine.main.address)

    nexts = NEXTS if next_node is None else (("output", next_node),)
    return (
        node(name, gn_node_fn(ip4_reassembly_fn), nexts=nexts, Next=Next, errors=ERRORS, Error=Error,
             data_size=sizeof(reass_t), setup=setup, teardown=teardown,
             trace=trace_bytes(TRACE_BYTES, format_ip4_header, names=False), doc=__doc__),
        node(expire_name, gn_node_fn(ip4_reassembly_expire_fn), type="input", state="interrupt",
             nexts=EXPIRE_NEXTS, Next=ExpireNext, errors=EXPIRE_ERRORS, Error=ExpireError,
             doc=f"Drops {name} datagrams incomplete at the timeout (woken by the timer wheel); "
                 f"ICMP time exceeded for those with their first fragment."),
    )


NODES = nodes()
