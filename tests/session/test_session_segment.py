"""Segments: memfd mapping, the offset allocator's invariants, two mappings."""
import os

import pytest
from hypothesis import given, settings, strategies as st

from graphnet.session.segment import Segment, HEADER_BYTES, BLOCK_HEADER_BYTES, KIND_FIFO


def check_invariants(seg):
    blocks = seg.blocks()
    stats = seg.stats()
    # the blocks tile the heap exactly
    off = HEADER_BYTES
    for payload, size, kind in blocks:
        assert payload - BLOCK_HEADER_BYTES == off
        assert size % 64 == 0 and payload % 64 == 0
        off += size
    assert off == seg.size
    free = [b for b in blocks if b[2] == "free"]
    assert stats["bytes_free"] == sum(b[1] for b in free)
    assert stats["free_blocks"] == len(free)
    assert stats["used_blocks"] == len(blocks) - len(free)
    # no two free blocks touch (they are merged)
    for a, b in zip(blocks, blocks[1:]):
        assert not (a[2] == "free" and b[2] == "free")


def test_alloc_free_merges_back_to_one_block():
    seg = Segment(1 << 16, "t")
    offs = [seg.alloc(1000, KIND_FIFO) for _ in range(10)]
    assert len(set(offs)) == 10 and all(o % 64 == 0 for o in offs)
    check_invariants(seg)
    for o in offs[::2] + offs[1::2]:
        seg.free(o)
        check_invariants(seg)
    assert seg.stats()["free_blocks"] == 1
    assert seg.stats()["bytes_free"] == seg.size - HEADER_BYTES
    seg.close()


def test_full_segment_fails_and_counts():
    seg = Segment(8192, "t")
    seg.alloc(4000)
    with pytest.raises(MemoryError):
        seg.alloc(6000)
    assert seg.stats()["alloc_failures"] == 1


def test_bad_free_is_refused_and_counted():
    seg = Segment(8192, "t")
    off = seg.alloc(100)
    seg.free(off)
    with pytest.raises(ValueError):
        seg.free(off)                       # double free
    with pytest.raises(ValueError):
        seg.free(off + 8)                   # not a block
    with pytest.raises(ValueError):
        seg.free(1 << 40)                   # outside
    assert seg.stats()["bad_frees"] == 3
    check_invariants(seg)


def test_two_mappings_share_bytes_at_different_addresses():
    seg = Segment(1 << 16, "shared")
    other = Segment.attach(seg.fd, "other")
    assert other.base_address != seg.base_address
    off = seg.alloc(256)
    seg.view(off, 5)[:] = b"hello"
    assert bytes(other.view(off, 5)) == b"hello"
    other.free(off)                         # the allocator state is shared too
    assert seg.stats()["used_blocks"] == 0
    other.close()
    seg.close()


def test_attach_refuses_a_file_that_is_not_a_segment():
    fd = os.memfd_create("x")
    os.ftruncate(fd, 8192)
    try:
        with pytest.raises(ValueError):
            Segment.attach(fd)
    finally:
        os.close(fd)


def test_bad_sizes_refused():
    with pytest.raises(ValueError):
        Segment(100)
    with pytest.raises(ValueError):
        Segment(1 << 33)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5000), st.integers(0, 1000)), max_size=60))
def test_random_alloc_free_keeps_invariants(ops):
    seg = Segment(1 << 16, "h")
    live = []
    for is_alloc, size, pick in ops:
        if is_alloc or not live:
            try:
                live.append(seg.alloc(size))
            except MemoryError:
                pass
        else:
            seg.free(live.pop(pick % len(live)))
    check_invariants(seg)
    for o in live:
        seg.free(o)
    assert seg.stats()["free_blocks"] == 1
    seg.close()
