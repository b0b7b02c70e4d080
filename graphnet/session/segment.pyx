"""Shared-memory segments: where fifos and message queues live.

A segment is a memfd mapped MAP_SHARED, so the engine and an application
in another process can map the same bytes at different addresses. Inside
it, everything is addressed by **offset from the segment's base**; no
pointer and no Python object is ever stored in the segment.

Layout: a header (``gn_segment_hdr_t``) at offset 0, then the heap, a
sequence of blocks, each a ``gn_segment_block_t`` (64 bytes) followed by
its payload. Invariants:
  - every block and payload starts on a 64-byte boundary; block sizes are
    multiples of 64 and the blocks tile the heap exactly;
  - free blocks form a singly linked list sorted by offset; adjacent free
    blocks are merged when freed, so no two free blocks touch;
  - ``bytes_free`` is the sum of the free blocks' sizes;
  - the allocator is first-fit under a spinlock in the header (the same
    lock is valid in every process that maps the segment); it is bounded by
    the segment's size and never grows it: a failed allocation returns 0
    and is counted (a segment manager adds another segment);
  - a free list walk stops at the first link that is not strictly
    increasing, inside the heap and aligned, so a corrupted segment can
    fail allocations (counted) but never make the engine loop or read
    outside its mapping; a bad free (not a used block) is counted, ignored.
"""
import os

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset
from graphnet.includes.linux cimport close as c_close, mmap, munmap, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_FAILED
from graphnet.includes.platform cimport gn_spin_lock, gn_spin_unlock

KIND_NAMES = {GN_SEGMENT_KIND_FIFO: "fifo", GN_SEGMENT_KIND_MQ: "mq", GN_SEGMENT_KIND_OTHER: "other"}
KIND_FIFO = GN_SEGMENT_KIND_FIFO
KIND_MQ = GN_SEGMENT_KIND_MQ
KIND_OTHER = GN_SEGMENT_KIND_OTHER
HEADER_BYTES = GN_SEGMENT_HDR_SIZE
BLOCK_HEADER_BYTES = GN_SEGMENT_ALIGN
MAX_SIZE = (1 << 32) - GN_SEGMENT_ALIGN       # offsets travel as u32 in messages
MIN_SIZE = 4096


cdef inline gn_segment_hdr_t* _hdr(gn_segment_t* seg) noexcept nogil:
    return <gn_segment_hdr_t*>seg.base


cdef inline gn_segment_block_t* _blk(gn_segment_t* seg, uint64_t off) noexcept nogil:
    return <gn_segment_block_t*>(seg.base + off)


cdef inline bint _link_ok(gn_segment_t* seg, uint64_t prev, uint64_t cur) noexcept nogil:
    return (cur > prev and cur >= GN_SEGMENT_HDR_SIZE and cur % GN_SEGMENT_ALIGN == 0
            and cur <= seg.size - GN_SEGMENT_ALIGN)


cdef uint64_t gn_segment_alloc(gn_segment_t* seg, uint64_t size, uint32_t kind) noexcept nogil:
    """Offset of a payload of at least `size` bytes, or 0 when none fits."""
    cdef gn_segment_hdr_t* h = _hdr(seg)
    cdef uint64_t need, prev = 0, cur, rest, nxt
    cdef gn_segment_block_t* b
    cdef gn_segment_block_t* r
    if size == 0 or size > seg.size:
        return 0
    need = (size + 2 * GN_SEGMENT_ALIGN - 1) & ~(<uint64_t>GN_SEGMENT_ALIGN - 1)
    gn_spin_lock(&h.lock)
    cur = h.free_head
    while cur != 0 and _link_ok(seg, prev, cur):
        b = _blk(seg, cur)
        if b.magic != GN_SEGMENT_BLOCK_FREE or b.size > seg.size - cur:
            break
        if b.size >= need:
            rest = b.size - need
            if rest >= 2 * GN_SEGMENT_ALIGN:
                r = _blk(seg, cur + need)
                r.size = rest
                r.next_free = b.next_free
                r.magic = GN_SEGMENT_BLOCK_FREE
                r.kind = 0
                nxt = cur + need
            else:
                need = b.size
                nxt = b.next_free
                h.n_free -= 1
            if prev == 0:
                h.free_head = nxt
            else:
                _blk(seg, prev).next_free = nxt
            b.size = need
            b.next_free = 0
            b.magic = GN_SEGMENT_BLOCK_USED
            b.kind = kind
            h.bytes_free -= need
            h.n_used += 1
            gn_spin_unlock(&h.lock)
            return cur + GN_SEGMENT_ALIGN
        prev = cur
        cur = b.next_free
    h.n_alloc_failures += 1
    gn_spin_unlock(&h.lock)
    return 0


cdef int gn_segment_free(gn_segment_t* seg, uint64_t offset) noexcept nogil:
    """Give a payload back; 0, or -1 (counted) if it is not a used block."""
    cdef gn_segment_hdr_t* h = _hdr(seg)
    cdef uint64_t blk = offset - GN_SEGMENT_ALIGN, prev = 0, cur
    cdef gn_segment_block_t* b
    cdef gn_segment_block_t* p
    if (offset < GN_SEGMENT_HDR_SIZE + GN_SEGMENT_ALIGN or offset % GN_SEGMENT_ALIGN != 0
            or offset > seg.size):
        h.n_bad_frees += 1
        return -1
    b = _blk(seg, blk)
    gn_spin_lock(&h.lock)
    if b.magic != GN_SEGMENT_BLOCK_USED or b.size > seg.size - blk or b.size < 2 * GN_SEGMENT_ALIGN:
        h.n_bad_frees += 1
        gn_spin_unlock(&h.lock)
        return -1
    cur = h.free_head
    while cur != 0 and cur < blk and _link_ok(seg, prev, cur):
        prev = cur
        cur = _blk(seg, cur).next_free
    b.magic = GN_SEGMENT_BLOCK_FREE
    b.kind = 0
    h.bytes_free += b.size
    h.n_used -= 1
    h.n_free += 1
    if cur != 0 and blk + b.size == cur:            # merge with the next free block
        b.size += _blk(seg, cur).size
        b.next_free = _blk(seg, cur).next_free
        _blk(seg, cur).magic = 0
        h.n_free -= 1
    else:
        b.next_free = cur
    if prev != 0 and prev + _blk(seg, prev).size == blk:   # merge into the previous one
        p = _blk(seg, prev)
        p.size += b.size
        p.next_free = b.next_free
        b.magic = 0
        h.n_free -= 1
    elif prev != 0:
        _blk(seg, prev).next_free = blk
    else:
        h.free_head = blk
    gn_spin_unlock(&h.lock)
    return 0


cdef class Segment:
    """A memfd segment mapped in this process.

    ``Segment(size, name)`` creates one; ``Segment.attach(fd, name)`` maps
    an existing one (e.g. received from another process, or the same fd a
    second time: the two mappings have different addresses and share the
    bytes). ``alloc(size)`` returns an offset, ``free(offset)`` gives it back.
    """

    def __cinit__(self, size=None, name="segment", *, fd=None, _attach=False):
        self.seg.base = NULL
        self.seg.fd = -1
        self.name = name
        if _attach:
            return
        if size is None:
            raise TypeError("Segment(size, name)")
        if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"segment size {size!r}: use {MIN_SIZE}..{MAX_SIZE} bytes")
        size &= ~(GN_SEGMENT_ALIGN - 1)
        newfd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.ftruncate(newfd, size)
            self._map(newfd, size)
        except BaseException:
            os.close(newfd)
            raise
        self.owner = True
        self._init_header()

    @staticmethod
    def attach(int fd, name="segment"):
        """Map the segment behind `fd` (dup'ed: the caller keeps its fd)."""
        cdef Segment s = Segment(name=name, _attach=True)
        size = os.fstat(fd).st_size
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"fd {fd}: size {size} is not a segment's")
        newfd = os.dup(fd)
        try:
            s._map(newfd, size)
        except BaseException:
            os.close(newfd)
            raise
        if _hdr(&s.seg).magic != GN_SEGMENT_MAGIC or _hdr(&s.seg).size != <uint64_t>size:
            s.close()
            raise ValueError(f"fd {fd} is not a graphnet segment (bad magic or size)")
        return s

    cdef _map(self, int fd, uint64_t size):
        cdef void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        if p == MAP_FAILED:
            raise OSError(f"mmap of segment {self.name!r} ({size} bytes) failed")
        self.seg.base = <uint8_t*>p
        self.seg.size = size
        self.seg.fd = fd

    cdef _init_header(self):
        cdef gn_segment_hdr_t* h = _hdr(&self.seg)
        cdef gn_segment_block_t* b = _blk(&self.seg, GN_SEGMENT_HDR_SIZE)
        memset(h, 0, GN_SEGMENT_HDR_SIZE)
        h.size = self.seg.size
        h.free_head = GN_SEGMENT_HDR_SIZE
        h.bytes_free = self.seg.size - GN_SEGMENT_HDR_SIZE
        h.n_free = 1
        b.size = h.bytes_free
        b.next_free = 0
        b.magic = GN_SEGMENT_BLOCK_FREE
        b.kind = 0
        h.magic = GN_SEGMENT_MAGIC

    def __dealloc__(self):
        self._unmap()

    cdef _unmap(self):
        if self.seg.base != NULL:
            munmap(self.seg.base, self.seg.size)
            self.seg.base = NULL
            self.seg.size = 0
        if self.seg.fd >= 0:
            c_close(self.seg.fd)          # not os.close: __dealloc__ may run at interpreter exit
            self.seg.fd = -1

    def close(self):
        """Unmap and close the fd (offsets into it become meaningless here)."""
        self._unmap()

    cdef gn_segment_t* _check(self) except NULL:
        if self.seg.base == NULL:
            raise ValueError(f"segment {self.name!r} is closed")
        return &self.seg

    @property
    def fd(self):
        return self.seg.fd

    @property
    def size(self):
        return self.seg.size

    @property
    def base_address(self):
        self._check()
        return <size_t>self.seg.base

    @property
    def index(self):
        return self.seg.index

    @index.setter
    def index(self, uint32_t value):
        self.seg.index = value

    def handle_address(self):
        """Address of this process's gn_segment_t (for C code in this process)."""
        return <size_t>self._check()

    def alloc(self, uint64_t size, uint32_t kind=GN_SEGMENT_KIND_OTHER):
        """Offset of a new payload of `size` bytes; MemoryError when full."""
        cdef uint64_t off = gn_segment_alloc(self._check(), size, kind)
        if off == 0:
            raise MemoryError(f"segment {self.name!r}: no free block of {size} bytes "
                              f"({self.stats()['bytes_free']} bytes free)")
        return off

    def free(self, uint64_t offset):
        if gn_segment_free(self._check(), offset) != 0:
            raise ValueError(f"segment {self.name!r}: offset {offset} is not an allocated block")

    def view(self, uint64_t offset, uint64_t n):
        """A writable memoryview of n bytes at offset (bounds-checked)."""
        cdef gn_segment_t* s = self._check()
        if offset > s.size or n > s.size - offset:
            raise IndexError(f"segment {self.name!r}: {offset}+{n} beyond {s.size} bytes")
        return (<uint8_t[:n]>(s.base + offset)) if n else memoryview(b"")

    def stats(self):
        cdef gn_segment_hdr_t* h = _hdr(self._check())
        return {"size": h.size, "bytes_free": h.bytes_free, "used_blocks": h.n_used,
                "free_blocks": h.n_free, "alloc_failures": h.n_alloc_failures, "bad_frees": h.n_bad_frees}

    def blocks(self):
        """``[(offset of payload, block size, kind name or 'free')]`` walking the heap."""
        cdef gn_segment_t* s = self._check()
        cdef uint64_t off = GN_SEGMENT_HDR_SIZE
        cdef gn_segment_block_t* b
        out = []
        while off + GN_SEGMENT_ALIGN <= s.size:
            b = _blk(s, off)
            if b.size < GN_SEGMENT_ALIGN or b.size > s.size - off:
                raise ValueError(f"segment {self.name!r}: corrupt block at {off}")
            out.append((off + GN_SEGMENT_ALIGN, b.size,
                        KIND_NAMES.get(b.kind, "?") if b.magic == GN_SEGMENT_BLOCK_USED else "free"))
            off += b.size
        return out
