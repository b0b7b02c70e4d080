# What ip4-frag and ip4-gso share: both cut one IPv4 packet into several
# new ones (gn_packet_from_header) and hand them on in order. The cut
# state keeps the pieces of the packet being cut that are still in hand,
# so that a packet whose buffers run out mid-way frees just those; pieces
# already handed on in a full frame are gone and counted as sent.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.vlib.buffer cimport gn_buffer_t, GN_FRAME_SIZE, GN_BUFFER_F_NEXT_PRESENT
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_free, gn_next_buffers_t,
                                 gn_next_buffers_flush)
from graphnet.wire.ip4 cimport gn_ip4_header_bytes, gn_ip4_total_length, GN_IP4_HEADER_LEN
from graphnet.io.bufcopy cimport gn_chain_length


cdef inline bint gn_ip4_cuttable(gn_main_t* vm, uint32_t bi, gn_buffer_t* b, const uint8_t* ip, uint32_t* hlen,
                                 uint32_t* total) noexcept nogil:
    """An IPv4 packet whose header lies in its first buffer and whose total
    length lies within its chain; hlen and total set (false: malformed)."""
    cdef uint32_t avail
    if b.current_length < GN_IP4_HEADER_LEN or (ip[0] >> 4) != 4:
        return False
    hlen[0] = gn_ip4_header_bytes(ip)
    total[0] = gn_ip4_total_length(ip)
    avail = gn_chain_length(vm, bi) if b.flags & GN_BUFFER_F_NEXT_PRESENT else b.current_length
    return not (hlen[0] < GN_IP4_HEADER_LEN or hlen[0] > b.current_length or total[0] < hlen[0] or total[0] > avail)


ctypedef struct gn_ip4_cut_t:
    uint32_t start                     # out.n when this packet's pieces began (0 after a flush)
    uint32_t made                      # pieces of this packet handed to out
    uint32_t gone                      # of those, in frames already flushed


cdef inline void gn_ip4_cut_begin(gn_ip4_cut_t* c, gn_next_buffers_t* out) noexcept nogil:
    c.start = out.n
    c.made = 0
    c.gone = 0


cdef inline void gn_ip4_cut_put(gn_main_t* vm, gn_node_runtime_t* node, gn_next_buffers_t* out, gn_ip4_cut_t* c,
                                uint32_t bi, uint16_t next) noexcept nogil:
    """Hand on the next piece (flushing a full frame first)."""
    if out.n == GN_FRAME_SIZE:
        gn_next_buffers_flush(vm, node, out)
        c.start = 0
        c.gone = c.made
    out.bis[out.n] = bi
    out.nexts[out.n] = next
    out.n += 1
    c.made += 1


cdef inline uint32_t gn_ip4_cut_abort(gn_main_t* vm, gn_next_buffers_t* out, gn_ip4_cut_t* c) noexcept nogil:
    """Free the pieces of this packet still in hand; returns how many were
    already sent."""
    if out.n > c.start:
        gn_main_free(vm, &out.bis[c.start], out.n - c.start)
        out.n = c.start
    return c.gone
