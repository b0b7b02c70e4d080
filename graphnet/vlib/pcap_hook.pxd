# The pcap capture hook: the C contract between graphnet.io.pcap (which
# implements it) and the nodes that feed it (device input nodes: rx; device
# tx nodes: tx; error-drop: drop). It is declared in vlib, as VPP's vlib
# holds its pcap state, so that error-drop (graphnet.vlib.drop) feeds it
# without importing anything above vlib; graphnet/io/pcap.pxd re-exports it.
#
# Each engine has one gn_pcap_main_t (graphnet.io.pcap.pcap_main(engine));
# a node keeps a pointer to it in its own C state, taken in its setup hook:
#
#     from graphnet.io.pcap import pcap_main_address
#     st.pcap = <gn_pcap_main_t*><size_t>pcap_main_address(engine)
#
# and calls, once per frame, with the buffers it received / is about to send:
#
#     gn_pcap_capture(st.pcap, vm, bis, n, GN_PCAP_RX, sw_if_index)   # or GN_PCAP_TX
#
# When capture is off this is one load and one (predicted) branch per frame
# (pm.flags & what == 0); nothing else is touched. When it is on, the packets
# (chains flattened, cut at the snap length) are appended to the capture's
# buffer in C, without the GIL, and written to the file in large blocks.
#
# The struct needs no import of graphnet.io.pcap's code: the capture
# function is reached through pm.add, so cimporting this .pxd adds no
# module dependency.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from graphnet.vlib.main cimport gn_main_t

cdef enum:
    GN_PCAP_RX = 1
    GN_PCAP_TX = 2
    GN_PCAP_DROP = 4

cdef struct gn_pcap_main_t

ctypedef void (*gn_pcap_add_fn)(gn_pcap_main_t* pm, gn_main_t* vm, const uint32_t* bis, uint32_t n,
                                uint32_t what, uint32_t sw_if_index) noexcept nogil

cdef struct gn_pcap_main_t:
    uint32_t flags               # GN_PCAP_* being captured; 0: capture off
    uint32_t sw_if_index         # rx/tx: only this interface (0xffffffff: any)
    gn_pcap_add_fn add           # the capture function (set by graphnet.io.pcap)
    uint32_t snaplen             # bytes kept per packet
    uint8_t nanosecond           # timestamps in ns (magic a1b23c4d) or us
    uint8_t done                 # max_packets reached; flags were cleared
    int fd                       # the file being written, or -1
    uint8_t* buf                 # records not yet written to fd
    uint64_t used
    uint64_t cap
    uint64_t flush_bytes         # write to fd when used reaches this
    uint64_t n_captured
    uint64_t max_packets         # 0: no limit
    uint64_t n_by_kind[3]        # rx, tx, drop
    uint64_t n_bytes_written
    uint64_t n_write_errors
    uint64_t n_no_memory         # packets not captured: buffer could not grow
    int last_errno


cdef inline void gn_pcap_capture(gn_pcap_main_t* pm, gn_main_t* vm, const uint32_t* bis, uint32_t n,
                                 uint32_t what, uint32_t sw_if_index) noexcept nogil:
    """Capture n packets as `what` (GN_PCAP_RX / TX / DROP) if that
    capture is on. sw_if_index: the interface the calling device node
    serves (0xffffffff when it serves none, e.g. error-drop: then each
    buffer's sw_if_index[RX]/[TX] is used by an interface filter).
    pm may be NULL (no capture)."""
    if pm != NULL and pm.flags & what:
        pm.add(pm, vm, bis, n, what, sw_if_index)
