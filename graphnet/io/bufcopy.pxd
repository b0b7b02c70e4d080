# Copying packets between flat memory and buffer chains: shared by the
# device nodes (af_packet, pcap, ...) and the nodes that cut packets into
# new ones (ip4-frag, ip4-gso). Per-packet helpers, inline, nogil.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy
from graphnet.vlib.buffer cimport (gn_buffer_t, GN_BUFFER_DATA_SIZE, GN_BUFFER_F_NEXT_PRESENT, GN_INVALID_INDEX,
                                   GN_BUFFER_F_TRACED, GN_BUFFER_F_LOCALLY_ORIGINATED, GN_RX, GN_TX,
                                   gn_buffer_current)
from graphnet.vlib.main cimport gn_main_t, gn_main_buffer, gn_main_alloc, gn_main_free

cdef enum:
    GN_MAX_CUT_BUFFERS = 40            # buffers of one packet cut from another: 65535 / 2048 + 1, rounded up


cdef inline int gn_copy_to_chain(gn_main_t* vm, uint32_t head, const uint8_t* src, uint32_t length) noexcept nogil:
    """Copy `length` bytes into buffer `head` (current_data 0), chaining
    more buffers when they do not fit one. Returns 0, or -1 when no buffer
    was left for the tail (the tail buffers taken so far are freed; head
    is the caller's to free)."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, head)
    cdef gn_buffer_t* prev
    cdef uint32_t k, bi, first_tail = GN_INVALID_INDEX
    k = length if length < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
    b.current_data = 0
    b.current_length = k
    memcpy(b.data, src, k)
    if k == length:
        return 0
    b.total_length_not_including_first_buffer = length - k
    prev = b
    src += k
    length -= k
    while length:
        if gn_main_alloc(vm, &bi, 1) != 1:
            if first_tail != GN_INVALID_INDEX:
                gn_main_free(vm, &first_tail, 1)          # frees the whole tail chain
            gn_main_buffer(vm, head).flags &= ~GN_BUFFER_F_NEXT_PRESENT
            gn_main_buffer(vm, head).total_length_not_including_first_buffer = 0
            return -1
        if first_tail == GN_INVALID_INDEX:
            first_tail = bi
        prev.flags |= GN_BUFFER_F_NEXT_PRESENT
        prev.next_buffer = bi
        b = gn_main_buffer(vm, bi)
        k = length if length < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
        b.current_data = 0
        b.current_length = k
        memcpy(b.data, src, k)
        src += k
        length -= k
        prev = b
    return 0


cdef inline uint32_t gn_chain_length(gn_main_t* vm, uint32_t bi) noexcept nogil:
    """Bytes of a packet: current_length summed over its chain."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint32_t n = b.current_length
    while b.flags & GN_BUFFER_F_NEXT_PRESENT:
        b = gn_main_buffer(vm, b.next_buffer)
        n += b.current_length
    return n


cdef inline uint32_t gn_copy_from_chain(gn_main_t* vm, uint32_t bi, uint8_t* dst, uint32_t max_bytes) noexcept nogil:
    """Copy up to max_bytes of a packet (its chain flattened) to dst;
    returns the bytes copied."""
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    cdef uint32_t n = 0, k
    while True:
        k = b.current_length
        if k > max_bytes - n:
            k = max_bytes - n
        memcpy(dst + n, gn_buffer_current(b), k)
        n += k
        if n == max_bytes or not (b.flags & GN_BUFFER_F_NEXT_PRESENT):
            return n
        b = gn_main_buffer(vm, b.next_buffer)


ctypedef struct gn_cursor_t:
    # A read position in a buffer chain.
    gn_buffer_t* b
    uint32_t off                       # bytes of b's current data already read


cdef inline void gn_cursor_read(gn_main_t* vm, gn_cursor_t* c, uint8_t* dst, uint32_t n) noexcept nogil:
    """Copy the next n bytes at the cursor to dst (fewer if the chain ends)."""
    cdef uint32_t k
    while n:
        k = c.b.current_length - c.off
        if k == 0:
            if not (c.b.flags & GN_BUFFER_F_NEXT_PRESENT):
                return
            c.b = gn_main_buffer(vm, c.b.next_buffer)
            c.off = 0
            continue
        if k > n:
            k = n
        memcpy(dst, gn_buffer_current(c.b) + c.off, k)
        dst += k
        c.off += k
        n -= k


cdef inline int gn_packet_from_header(gn_main_t* vm, gn_buffer_t* orig, const uint8_t* hdr, uint32_t hlen,
                                      gn_cursor_t* c, uint32_t plen, uint32_t* out_bi) noexcept nogil:
    """A new packet cut from orig (ip4-frag's fragments, ip4-gso's
    segments): the header `hdr` (hlen bytes, at most one buffer, at
    current_data 0 of the head) then the next plen bytes at cursor c, in
    new buffers chained as needed, with orig's sw_if_index, opaque, trace
    handle and TRACED / LOCALLY_ORIGINATED flags. The caller patches the
    header in place. Returns 0, or -1 (nothing allocated) when buffers ran
    out."""
    cdef uint32_t bis[GN_MAX_CUT_BUFFERS]
    cdef uint32_t total = hlen + plen
    cdef uint32_t nb = (total + GN_BUFFER_DATA_SIZE - 1) // GN_BUFFER_DATA_SIZE, got, k, take
    cdef gn_buffer_t* head
    cdef gn_buffer_t* b
    cdef gn_buffer_t* prev
    if nb > GN_MAX_CUT_BUFFERS or hlen > GN_BUFFER_DATA_SIZE:
        return -1
    got = gn_main_alloc(vm, bis, nb)
    if got != nb:
        if got:
            gn_main_free(vm, bis, got)
        return -1
    head = gn_main_buffer(vm, bis[0])
    memcpy(head.data, hdr, hlen)
    take = plen if plen < GN_BUFFER_DATA_SIZE - hlen else GN_BUFFER_DATA_SIZE - hlen
    gn_cursor_read(vm, c, head.data + hlen, take)
    head.current_length = <uint16_t>(hlen + take)
    plen -= take
    prev = head
    for k in range(1, nb):
        b = gn_main_buffer(vm, bis[k])
        take = plen if plen < GN_BUFFER_DATA_SIZE else GN_BUFFER_DATA_SIZE
        gn_cursor_read(vm, c, b.data, take)
        b.current_length = <uint16_t>take
        plen -= take
        prev.next_buffer = bis[k]
        prev.flags |= GN_BUFFER_F_NEXT_PRESENT
        prev = b
    head.total_length_not_including_first_buffer = total - head.current_length
    head.sw_if_index[GN_RX] = orig.sw_if_index[GN_RX]
    head.sw_if_index[GN_TX] = orig.sw_if_index[GN_TX]
    head.flags |= orig.flags & (GN_BUFFER_F_TRACED | GN_BUFFER_F_LOCALLY_ORIGINATED)
    head.trace_handle = orig.trace_handle
    memcpy(head.opaque, orig.opaque, sizeof(head.opaque))
    out_bi[0] = bis[0]
    return 0
