"""The raw references of the TAP benchmarks: tight nogil read/write loops on
a TAP fd (or a packet socket), no graph, no buffers, no metadata. What a
single core can get from the kernel's TAP driver with one syscall per frame
is the physical limit the ``tap-*`` benches compare graphnet against.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from graphnet.includes.linux cimport read, write, readv, writev, iovec, errno, EAGAIN, EINTR
from graphnet.includes.platform cimport gn_time_ns


def drain(int fd, uint32_t bufsize, uint64_t max_frames=0):
    """read() frames into one buffer until EAGAIN (or max_frames).
    Returns (frames, bytes)."""
    cdef uint8_t* buf = <uint8_t*>malloc(bufsize)
    cdef uint64_t frames = 0, nbytes = 0
    cdef ssize_t r
    if buf == NULL:
        raise MemoryError()
    with nogil:
        while max_frames == 0 or frames < max_frames:
            r = read(fd, buf, bufsize)
            if r < 0:
                if errno == EINTR:
                    continue
                break
            frames += 1
            nbytes += r
    free(buf)
    return frames, nbytes


def drain_readv(int fd, uint32_t n_iov, uint32_t seg_size, uint64_t max_frames=0, uint32_t stride=0):
    """As drain(), with readv() over n_iov segments of seg_size bytes,
    `stride` bytes apart (default: back to back): what a reader that must
    accept 64 KB super-frames into 2 KB buffers pays."""
    if stride < seg_size:
        stride = seg_size
    cdef uint8_t* buf = <uint8_t*>malloc(<size_t>n_iov * stride)
    cdef iovec* iov = <iovec*>malloc(n_iov * sizeof(iovec))
    cdef uint64_t frames = 0, nbytes = 0
    cdef uint32_t k
    cdef ssize_t r
    if buf == NULL or iov == NULL:
        free(buf)
        free(iov)
        raise MemoryError()
    for k in range(n_iov):
        iov[k].iov_base = buf + <size_t>k * stride
        iov[k].iov_len = seg_size
    with nogil:
        while max_frames == 0 or frames < max_frames:
            r = readv(fd, iov, n_iov)
            if r < 0:
                if errno == EINTR:
                    continue
                break
            frames += 1
            nbytes += r
    free(buf)
    free(iov)
    return frames, nbytes


def write_loop(int fd, bytes frame, uint64_t n, double seconds=-1.0):
    """write() the same frame n times (or until `seconds` pass). A failed
    write (EAGAIN, ENOBUFS: a full queue) is counted and retried, up to
    4 n + 1000 attempts in all. Returns (written, failed)."""
    cdef const uint8_t* p = frame
    cdef size_t length = len(frame)
    cdef uint64_t done = 0, failed = 0, attempts = 0, limit = 4 * n + 1000
    cdef uint64_t deadline = gn_time_ns() + <uint64_t>(seconds * 1e9) if seconds > 0 else <uint64_t>-1
    cdef ssize_t r
    if limit < n:
        limit = <uint64_t>-1
    with nogil:
        while done < n and attempts < limit:
            r = write(fd, p, length)
            attempts += 1
            if r < 0:
                failed += 1
            else:
                done += 1
            if (attempts & 255) == 0 and gn_time_ns() >= deadline:
                break
    return done, failed


def write_frames_loop(int fd, list frames, uint64_t n, double seconds=-1.0):
    """write() the frames in turn, cycling, n writes in all (or until
    `seconds` pass); failed writes (a full queue) are counted, not retried.
    Returns (written, failed)."""
    cdef bytes blob = b"".join(frames)
    cdef const uint8_t* p = blob
    cdef uint32_t k = len(frames), i = 0
    cdef size_t* offsets = <size_t*>malloc((k + 1) * sizeof(size_t))
    cdef uint64_t done = 0, failed = 0, attempts = 0
    cdef uint64_t deadline = gn_time_ns() + <uint64_t>(seconds * 1e9) if seconds > 0 else <uint64_t>-1
    if k == 0:
        free(offsets)
        return 0, 0
    if offsets == NULL:
        raise MemoryError()
    offsets[0] = 0
    for i in range(k):
        offsets[i + 1] = offsets[i] + len(frames[i])
    i = 0
    with nogil:
        while attempts < n:
            if write(fd, p + offsets[i], offsets[i + 1] - offsets[i]) < 0:
                failed += 1
            else:
                done += 1
            attempts += 1
            i += 1
            if i == k:
                i = 0
            if (attempts & 255) == 0 and gn_time_ns() >= deadline:
                break
    free(offsets)
    return done, failed


def forward_drain(int fd_a, int fd_b, uint32_t bufsize):
    """read() from a and write() to b until a is empty. Returns
    (frames, bytes)."""
    cdef uint8_t* buf = <uint8_t*>malloc(bufsize)
    cdef uint64_t frames = 0, nbytes = 0
    cdef ssize_t r
    if buf == NULL:
        raise MemoryError()
    with nogil:
        while True:
            r = read(fd_a, buf, bufsize)
            if r < 0:
                if errno == EINTR:
                    continue
                break
            if write(fd_b, buf, r) == r:
                frames += 1
                nbytes += r
    free(buf)
    return frames, nbytes


cdef uint32_t _read_batch(int fd, uint8_t* buf, uint32_t bufsize, ssize_t* lens, uint32_t batch,
                          bint* empty) noexcept nogil:
    """Read up to batch frames into bufsize-byte slots; sets *empty when the
    fd has no more (EAGAIN or an error). Returns the frames read."""
    cdef uint32_t n = 0
    cdef ssize_t r
    while n < batch:
        r = read(fd, buf + <size_t>n * bufsize, bufsize)
        if r < 0:
            if errno == EINTR:
                continue
            empty[0] = True
            break
        lens[n] = r
        n += 1
    return n


def forward_drain_batched(int fd_a, int fd_b, uint32_t bufsize, uint32_t batch=256):
    """forward_drain() in batches: up to `batch` read()s into `batch`
    buffers, then their write()s (as graphnet does per vector). Returns
    (frames, bytes)."""
    cdef uint8_t* buf = <uint8_t*>malloc(<size_t>bufsize * batch)
    cdef ssize_t* lens = <ssize_t*>malloc(batch * sizeof(ssize_t))
    cdef uint64_t frames = 0, nbytes = 0
    cdef uint32_t n, k
    cdef ssize_t r
    cdef bint empty = False
    if buf == NULL or lens == NULL:
        free(buf)
        free(lens)
        raise MemoryError()
    with nogil:
        while not empty:
            n = _read_batch(fd_a, buf, bufsize, lens, batch, &empty)
            for k in range(n):
                if write(fd_b, buf + <size_t>k * bufsize, lens[k]) == lens[k]:
                    frames += 1
                    nbytes += lens[k]
    free(buf)
    free(lens)
    return frames, nbytes


def xconnect(int fd_a, int fd_b, uint32_t bufsize, double seconds):
    """Forward frames a -> b and b -> a (busy polling both, nonblocking)
    for `seconds`. Returns (frames a->b, frames b->a, bytes)."""
    cdef uint8_t* buf = <uint8_t*>malloc(bufsize)
    cdef uint64_t ab = 0, ba = 0, nbytes = 0, k = 0
    cdef uint64_t deadline = gn_time_ns() + <uint64_t>(seconds * 1e9)
    cdef ssize_t r
    if buf == NULL:
        raise MemoryError()
    with nogil:
        while True:
            r = read(fd_a, buf, bufsize)
            if r > 0 and write(fd_b, buf, r) == r:
                ab += 1
                nbytes += r
            r = read(fd_b, buf, bufsize)
            if r > 0 and write(fd_a, buf, r) == r:
                ba += 1
                nbytes += r
            k += 1
            if (k & 63) == 0 and gn_time_ns() >= deadline:
                break
    free(buf)
    return ab, ba, nbytes


def writev_loop(int fd, bytes frame, uint32_t hdr_size, uint32_t seg_size, uint64_t n, uint32_t stride=0):
    """write_loop() with the frame scattered as graphnet's chains are: the
    first iovec is the hdr_size-byte virtio-net header plus seg_size bytes,
    then seg_size-byte pieces, each in its own slot `stride` bytes apart
    (default seg_size + 256, about a buffer's stride); one writev() per frame.
    Returns (written, failed)."""
    cdef uint32_t length = len(frame), k, n_iov, off
    if stride < seg_size + hdr_size:
        stride = seg_size + 256 if seg_size + 256 >= seg_size + hdr_size else seg_size + hdr_size
    n_iov = (length - hdr_size + seg_size - 1) // seg_size if length > hdr_size else 1
    cdef uint8_t* buf = <uint8_t*>malloc(<size_t>n_iov * stride)
    cdef iovec* iov = <iovec*>malloc(n_iov * sizeof(iovec))
    cdef const uint8_t* p = frame
    cdef uint64_t done = 0, failed = 0, attempts = 0, limit = 4 * n + 1000
    cdef ssize_t r
    if buf == NULL or iov == NULL:
        free(buf)
        free(iov)
        raise MemoryError()
    off = 0
    for k in range(n_iov):
        seg = (hdr_size + seg_size) if k == 0 else seg_size
        if off + seg > length:
            seg = length - off
        memcpy(buf + <size_t>k * stride, p + off, seg)
        iov[k].iov_base = buf + <size_t>k * stride
        iov[k].iov_len = seg
        off += seg
    with nogil:
        while done < n and attempts < limit:
            r = writev(fd, iov, n_iov)
            attempts += 1
            if r < 0:
                failed += 1
            else:
                done += 1
    free(buf)
    free(iov)
    return done, failed


def route_drain_batched(int fd_a, int fd_b, uint32_t bufsize, bytes macs, uint32_t hdr_len=12,
                        uint32_t batch=256):
    """forward_drain_batched() doing a router's minimum per frame: the
    12 bytes of `macs` (destination + source MAC) written over the Ethernet
    header that follows the `hdr_len`-byte virtio-net header, and an IPv4
    TTL decrement with an incremental checksum update (RFC 1624); no checks,
    no lookup. The raw reference of ``graphnet bench tap-router``. Returns
    (frames, bytes)."""
    if len(macs) != 12:
        raise ValueError("macs: 12 bytes (destination MAC, source MAC)")
    cdef const uint8_t* m = macs
    cdef uint8_t* buf = <uint8_t*>malloc(<size_t>bufsize * batch)
    cdef ssize_t* lens = <ssize_t*>malloc(batch * sizeof(ssize_t))
    cdef uint64_t frames = 0, nbytes = 0
    cdef uint32_t n, k, s
    cdef uint8_t* f
    cdef ssize_t r
    cdef bint empty = False
    if buf == NULL or lens == NULL:
        free(buf)
        free(lens)
        raise MemoryError()
    with nogil:
        while not empty:
            n = _read_batch(fd_a, buf, bufsize, lens, batch, &empty)
            for k in range(n):
                f = buf + <size_t>k * bufsize
                if lens[k] >= <ssize_t>(hdr_len + 34):
                    memcpy(f + hdr_len, m, 12)
                    f = f + hdr_len + 14
                    f[8] -= 1                                       # TTL
                    s = ((<uint32_t>f[10] << 8) | f[11]) + 0x0100   # checksum += 0x0100 (TTL is the high byte)
                    s = (s & 0xffff) + (s >> 16)
                    f[10] = <uint8_t>(s >> 8)
                    f[11] = <uint8_t>s
                    f = buf + <size_t>k * bufsize
                if write(fd_b, f, lens[k]) == lens[k]:
                    frames += 1
                    nbytes += lens[k]
    free(buf)
    free(lens)
    return frames, nbytes
