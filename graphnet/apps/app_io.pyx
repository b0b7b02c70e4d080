"""Test data for the builtin apps (declarations and the inline helpers in
app_io.pxd): a stream's byte j is ``j % 251`` (a prime, so no power-of-two
fifo or buffer size lines up with it); a datagram's payload is the stream's
first bytes. Writers copy it straight into the fifo's writable slices
(``gn_fifo_writable`` + ``gn_fifo_enqueue_nocopy``: one copy per byte);
readers compare the readable slices in place."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memcmp
from graphnet.session.fifo cimport gn_fifo_t, gn_fifo_slice_t, gn_fifo_writable, gn_fifo_enqueue_nocopy, gn_fifo_readable

cdef enum:
    CHUNK = 65536

cdef uint8_t PATTERN[GN_APP_PATTERN + CHUNK]


cdef void _init_pattern() noexcept nogil:
    cdef uint32_t i
    for i in range(GN_APP_PATTERN + CHUNK):
        PATTERN[i] = i % GN_APP_PATTERN


_init_pattern()


cdef uint32_t gn_app_write_pattern(gn_fifo_t* f, uint64_t off, uint32_t n) noexcept nogil:
    """Enqueue up to n pattern bytes starting at stream offset off into f,
    in place; returns how many (the fifo's free space bounds it)."""
    cdef gn_fifo_slice_t sl[2]
    cdef uint32_t k = gn_fifo_writable(f, sl), i, done = 0, step, pos
    for i in range(k):
        pos = 0
        while pos < sl[i].len and done < n:
            step = sl[i].len - pos
            if step > n - done:
                step = n - done
            if step > CHUNK:
                step = CHUNK
            memcpy(sl[i].data + pos, &PATTERN[(off + done) % GN_APP_PATTERN], step)
            pos += step
            done += step
    return <uint32_t>gn_fifo_enqueue_nocopy(f, done) if done else 0


cdef uint32_t gn_app_check_pattern(const uint8_t* data, uint64_t off, uint32_t n) noexcept nogil:
    """0 if data[0:n] are the pattern's bytes at stream offset off, else 1."""
    cdef uint32_t done = 0, step
    while done < n:
        step = n - done if n - done < CHUNK else CHUNK
        if memcmp(data + done, &PATTERN[(off + done) % GN_APP_PATTERN], step) != 0:
            return 1
        done += step
    return 0


cdef uint32_t gn_app_check_fifo(gn_fifo_t* f, uint32_t at, uint32_t n, uint64_t off) noexcept nogil:
    """0 if the fifo's readable bytes [at, at + n) are the pattern's at
    stream offset off, else 1 (compared in place, across the wrap)."""
    cdef gn_fifo_slice_t sl[2]
    cdef uint32_t k = gn_fifo_readable(f, sl), i, take
    for i in range(k):
        if at >= sl[i].len:
            at -= sl[i].len
            continue
        take = sl[i].len - at if sl[i].len - at < n else n
        if gn_app_check_pattern(sl[i].data + at, off, take):
            return 1
        off += take
        n -= take
        at = 0
    return 1 if n else 0


cdef const uint8_t* gn_app_pattern(uint64_t off) noexcept nogil:
    return &PATTERN[off % GN_APP_PATTERN]


def pattern(uint64_t off, uint32_t n):
    """The pattern's bytes at stream offset off (for tests and peers)."""
    return bytes((off + i) % GN_APP_PATTERN for i in range(n))
