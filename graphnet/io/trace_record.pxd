# The start of every device node's trace record (tap-input/-output,
# af-packet-input/-output): the frame's length over its whole chain, the
# buffer's flags, its buffers and the queue. A node's own fields follow it,
# then the node kit's shared record (sw_if_index and the first bytes, see
# graphnet/vlib/kit.pxd). graphnet.io.frame_trace parses and formats it.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.vlib.buffer cimport gn_buffer_t, GN_BUFFER_F_NEXT_PRESENT
from graphnet.vlib.main cimport gn_main_t, gn_main_buffer

cdef enum:
    GN_DEVICE_TRACE_BYTES = 96    # frame bytes kept: Ethernet + VLAN + IPv4 with options + L4 ports

ctypedef packed struct gn_device_trace_t:
    uint32_t length               # the whole frame (all buffers)
    uint32_t flags                # the first buffer's (GSO, L4_CSUM_OFFLOAD, NEXT_PRESENT ...)
    uint16_t n_buffers
    uint16_t queue                # the device queue (AF_PACKET: 0, one ring)


cdef inline void gn_device_trace_fill(gn_main_t* vm, gn_device_trace_t* tr, gn_buffer_t* b,
                                      uint16_t queue) noexcept nogil:
    cdef gn_buffer_t* s = b
    tr.length = b.current_length
    tr.flags = b.flags
    tr.n_buffers = 1
    tr.queue = queue
    while s.flags & GN_BUFFER_F_NEXT_PRESENT and tr.n_buffers < 0xffff:
        s = gn_main_buffer(vm, s.next_buffer)
        tr.length += s.current_length
        tr.n_buffers += 1
