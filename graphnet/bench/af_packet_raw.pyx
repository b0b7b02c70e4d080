"""Raw AF_PACKET references for ``graphnet bench af-packet-rx`` (moved
here from the data-plane module graphnet.io.af_packet).

``RawRingReader`` is a bare TPACKET_V3 reader over the very socket set-up
graphnet uses (af_packet_socket.afp_open): no buffers, no graph, the
least a ring reader does; ``raw_send_loop`` is the bench's traffic
generator, a nogil send() loop with PACKET_QDISC_BYPASS, bounded in time
and count.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.linux cimport pollfd, poll, POLLIN
from graphnet.includes.af_packet cimport (tpacket_block_desc, tpacket3_hdr, tpacket_stats_v3,
                                          send, getsockopt, socklen_t, MSG_DONTWAIT, SOL_PACKET, PACKET_STATISTICS)
from graphnet.includes.platform cimport gn_time_ns, gn_thread_cpu_ns
from graphnet.io.af_packet_socket cimport afp_t, afp_open, afp_close, afp_block, afp_user_owned, afp_release_block


cdef class RawRingReader:
    """A bare TPACKET_V3 reader: the reference for ``bench af-packet-rx``.
    Busy-polls its ring, counts frames and bytes (reading each frame's first
    byte), hands blocks back. No buffers, no graph."""
    cdef afp_t* st
    cdef public int last_xor

    def __cinit__(self):
        self.st = <afp_t*>calloc(1, sizeof(afp_t))
        if self.st == NULL:
            raise MemoryError()
        self.st.fd = -1

    def __init__(self, str host_if, netns=None, uint32_t ring_frames=4096, uint32_t block_size=1 << 17,
                 uint32_t retire_ms=1, bint promiscuous=True):
        afp_open(self.st, host_if, netns, ring_frames, block_size, retire_ms, promiscuous, False, True)

    def __dealloc__(self):
        if self.st != NULL:
            afp_close(self.st)
            free(self.st)

    def run(self, double seconds, uint64_t max_frames=0, bint wait=False, bint copy=False):
        """Read for `seconds` (or until max_frames, if > 0); returns
        (frames, bytes, thread cpu ns, wall ns). wait: sleep in poll()
        while no block is ready (the interrupt-mode reference) instead of
        spinning. copy: memcpy each frame into the next of 256 rotating
        2 KiB slots (the least a copying reader does)."""
        cdef afp_t* st = self.st
        cdef uint64_t frames = 0, nbytes = 0, t0, c0, deadline, now
        cdef uint64_t limit = max_frames if max_frames else <uint64_t>-1
        cdef uint32_t i, num, off, spins = 0
        cdef uint8_t x = 0
        cdef tpacket_block_desc* bd
        cdef tpacket3_hdr* h
        cdef pollfd pfd
        cdef uint8_t* slots = <uint8_t*>malloc(256 * 2048)
        cdef uint32_t slot = 0, k
        if slots == NULL:
            raise MemoryError()
        pfd.fd = st.fd
        pfd.events = POLLIN
        with nogil:
            t0 = gn_time_ns()
            c0 = gn_thread_cpu_ns()
            deadline = t0 + <uint64_t>(seconds * 1e9)
            now = t0
            while now < deadline and frames < limit:
                bd = afp_block(st, st.cur_block)
                if afp_user_owned(bd):
                    num = bd.hdr.bh1.num_pkts
                    off = bd.hdr.bh1.offset_to_first_pkt
                    for i in range(num):
                        h = <tpacket3_hdr*>((<uint8_t*>bd) + off)
                        if copy:
                            k = h.tp_snaplen if h.tp_snaplen < 2048 else 2048
                            memcpy(slots + slot * 2048, (<uint8_t*>h) + h.tp_mac, k)
                            slot = (slot + 1) & 255
                        else:
                            x ^= (<uint8_t*>h)[h.tp_mac]
                        nbytes += h.tp_snaplen
                        off += h.tp_next_offset
                    frames += num
                    afp_release_block(st)
                    if frames >= limit:
                        break
                elif wait:
                    poll(&pfd, 1, 10)
                    now = gn_time_ns()
                else:
                    spins += 1
                    if spins & 63 == 0:
                        now = gn_time_ns()
            now = gn_time_ns()
            c0 = gn_thread_cpu_ns() - c0
        x ^= slots[0]
        free(slots)
        self.last_xor = x
        return frames, nbytes, c0, now - t0

    def kernel_stats(self):
        """(frames received, frames dropped) by the kernel since the last call."""
        cdef tpacket_stats_v3 s
        cdef socklen_t n = sizeof(s)
        if getsockopt(self.st.fd, SOL_PACKET, PACKET_STATISTICS, &s, &n) != 0:
            return (0, 0)
        return (s.tp_packets, s.tp_drops)

    def close(self):
        afp_close(self.st)


def raw_send_loop(str host_if, bytes frame, double seconds, netns=None, uint32_t vary_offset=0, uint64_t count=0):
    """Send `frame` as fast as one core can for `seconds` (or until `count`
    frames were sent, if > 0) with send() and PACKET_QDISC_BYPASS (the
    bench's traffic generator); returns (sent, failed). vary_offset: if > 0,
    a 16-bit counter is written there in each frame (distinct frames)."""
    cdef afp_t st
    cdef uint64_t sent = 0, failed = 0, deadline
    cdef uint32_t n = len(frame), k = 0
    cdef uint8_t* buf = <uint8_t*>malloc(max(64, n))
    cdef bint vary = vary_offset > 0 and vary_offset + 2 <= n
    if buf == NULL:
        raise MemoryError()
    memset(&st, 0, sizeof(st))
    st.fd = -1
    st.no_rx = 1
    memcpy(buf, <const uint8_t*>frame, n)
    try:
        afp_open(&st, host_if, netns, 0, 4096, 1, False, True, False)
        with nogil:
            deadline = gn_time_ns() + <uint64_t>(seconds * 1e9)
            while True:
                if vary:
                    buf[vary_offset] = <uint8_t>(sent >> 8)
                    buf[vary_offset + 1] = <uint8_t>sent
                if send(st.fd, buf, n, MSG_DONTWAIT) >= 0:
                    sent += 1
                    if sent == count:
                        break
                else:
                    failed += 1
                k += 1
                if k & 255 == 0 and gn_time_ns() >= deadline:
                    break
    finally:
        afp_close(&st)
        free(buf)
    return sent, failed
