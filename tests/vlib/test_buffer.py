"""Buffer pool: exact accounting, chains, double frees, short allocations,
per-loop caches, and the FIFO queue of buffer waiters."""
import pytest

from graphnet.vlib.buffer import BufferPool, BufferWaiter, F_NEXT_PRESENT

CACHE_SIZE = 1024      # gn_buffer_cache_t.buffers
CACHE_BATCH = 256      # refill/spill batch


@pytest.fixture
def pool():
    p = BufferPool(2048)
    yield p
    # every test hands back what it took
    assert p.stats()["in_use"] == 0, p.stats()


def consistent(stats):
    return stats["free"] + stats["in_use"] == stats["total"] and stats["in_use"] >= 0


# --- allocation and free --------------------------------------------------------

def test_alloc_free_counts(pool):
    c = pool.new_cache()
    assert pool.stats() == {"total": 2048, "free": 2048, "cached": 0, "in_use": 0,
                            "double_frees": 0, "waiters": 0}
    a = c.alloc(100)
    assert len(a) == 100 and len(set(a)) == 100
    assert all(0 <= bi < 2048 for bi in a)
    s = pool.stats()
    assert s["in_use"] == 100 and s["free"] == 1948 and consistent(s)
    c.free(a[:40])
    assert pool.stats()["in_use"] == 60
    c.free(a[40:])
    s = pool.stats()
    assert s["in_use"] == 0 and s["free"] == 2048 and s["double_frees"] == 0


def test_alloc_zero_and_fresh_metadata(pool):
    c = pool.new_cache()
    assert c.alloc(0) == []
    (bi,) = c.alloc(1)
    c.write(bi, b"hello", offset=-4)          # into the headroom
    assert c.read(bi) == b"hello"
    c.free([bi])
    (bi2,) = c.alloc(1)
    assert bi2 == bi                           # LIFO cache: the same buffer comes back
    assert c.read(bi2) == b""                  # ... with fresh metadata (length 0)
    c.free([bi2])


def test_write_rejects_oversize(pool):
    c = pool.new_cache()
    (bi,) = c.alloc(1)
    with pytest.raises(ValueError):
        c.write(bi, b"x" * 2049)
    with pytest.raises(ValueError):
        c.write(bi, b"x", offset=-129)
    with pytest.raises(IndexError):
        c.write(5000, b"x")
    c.free([bi])


def test_pool_needs_a_buffer():
    with pytest.raises(ValueError):
        BufferPool(0)


def test_alloc_returns_fewer_when_pool_is_short():
    pool = BufferPool(100)
    c = pool.new_cache()
    got = c.alloc(150)
    assert len(got) == 100 and len(set(got)) == 100
    assert c.alloc(1) == []                    # never blocks, never invents buffers
    assert pool.stats()["in_use"] == 100
    c.free(got[:10])
    again = c.alloc(50)
    assert sorted(again) == sorted(got[:10])   # exactly the 10 freed ones
    c.free(got[10:] + again)
    assert pool.stats()["in_use"] == 0


def test_short_pool_shared_by_two_caches():
    pool = BufferPool(300)
    c1, c2 = pool.new_cache(), pool.new_cache()
    a = c1.alloc(10)                           # c1 refills 10 + one batch
    s = pool.stats()
    assert s["cached"] == min(300, 10 + CACHE_BATCH) - 10 and s["in_use"] == 10
    b = c2.alloc(300)                          # only what the shared list still has
    assert len(b) == 300 - (10 + CACHE_BATCH)
    assert not set(a) & set(b)
    c1.flush()                                 # c1's cached buffers go back to the shared list
    more = c2.alloc(300)
    assert len(more) == CACHE_BATCH
    assert len(set(a) | set(b) | set(more)) == 300
    c1.free(a + b + more)
    s = pool.stats()
    assert s["in_use"] == 0 and s["free"] == 300


# --- chains ---------------------------------------------------------------------

def make_chain(cache, parts):
    """Allocate one buffer per part, write it and link them head -> tail."""
    bis = cache.alloc(len(parts))
    assert len(bis) == len(parts)
    for bi, data in zip(bis, parts):
        cache.write(bi, data)
    for a, b in zip(bis, bis[1:]):
        cache.link(a, b)
    return bis


def test_chain_read_and_free_by_walking(pool):
    c = pool.new_cache()
    chain = make_chain(c, [b"aaa", b"bb", b"c"])
    assert c.read(chain[0]) == b"aaabbc"
    assert c.read(chain[1]) == b"bbc"
    assert pool.stats()["in_use"] == 3
    c.free([chain[0]])                         # only the head is named
    s = pool.stats()
    assert s["in_use"] == 0 and s["double_frees"] == 0


def test_many_chains_freed_in_one_call(pool):
    c = pool.new_cache()
    heads = [make_chain(c, [b"x"] * k)[0] for k in range(1, 9)]
    assert pool.stats()["in_use"] == sum(range(1, 9))
    c.free(heads)
    assert pool.stats()["in_use"] == 0
    assert pool.stats()["double_frees"] == 0


def test_link_rejects_free_and_self(pool):
    c = pool.new_cache()
    a, b = c.alloc(2)
    with pytest.raises(ValueError):
        c.link(a, a)
    c.free([b])
    with pytest.raises(ValueError):
        c.link(a, b)                           # b is free
    with pytest.raises(IndexError):
        c.link(a, 10 ** 6)
    c.free([a])


def test_next_present_flag_is_exported():
    assert F_NEXT_PRESENT == 1


# --- double free ----------------------------------------------------------------

def test_double_free_counted_and_harmless(pool):
    c = pool.new_cache()
    a = c.alloc(5)
    c.free(a)
    c.free(a[:2])                              # already free
    c.free([a[4], a[4]])                       # already free, twice
    c.free([99999])                            # not a buffer at all
    s = pool.stats()
    assert s["double_frees"] == 5
    assert s["in_use"] == 0 and consistent(s)
    # the free list stayed sound: every buffer can be allocated exactly once
    everything = c.alloc(4096)
    assert len(everything) == 2048 and len(set(everything)) == 2048
    assert c.alloc(1) == []
    c.free(everything)
    assert pool.stats()["in_use"] == 0


def test_double_free_of_chain_tail_stops_the_walk(pool):
    c = pool.new_cache()
    chain = make_chain(c, [b"1", b"2", b"3"])
    c.free([chain[2]])                         # tail freed on its own first
    assert pool.stats()["in_use"] == 2
    c.free([chain[0]])                         # walk frees 0, 1 and finds 2 free
    s = pool.stats()
    assert s["in_use"] == 0 and s["double_frees"] == 1


# --- per-loop caches --------------------------------------------------------------

def test_cache_accounting_exact():
    pool = BufferPool(4096)
    c1, c2 = pool.new_cache(), pool.new_cache()
    a = c1.alloc(10)
    s = pool.stats()
    # c1 took 10 + CACHE_BATCH from the shared list and handed out 10
    assert s == {"total": 4096, "free": 4086, "cached": CACHE_BATCH, "in_use": 10,
                 "double_frees": 0, "waiters": 0}
    c2.free(a)                                 # freed into the other loop's cache
    s = pool.stats()
    assert s["cached"] == CACHE_BATCH + 10 and s["in_use"] == 0 and s["free"] == 4096
    c1.flush()
    c2.flush()
    assert pool.stats()["cached"] == 0 and pool.stats()["free"] == 4096


def test_cache_spills_in_batches():
    pool = BufferPool(4096)
    src, sink = pool.new_cache(), pool.new_cache()
    held = []
    while len(held) < 3000:
        held += src.alloc(100)
    src.flush()
    assert pool.stats()["cached"] == 0 and pool.stats()["in_use"] == 3000
    for k in range(0, 3000, 100):              # 3000 frees into one cache: it must spill
        sink.free(held[k:k + 100])
        s = pool.stats()
        assert s["cached"] <= CACHE_SIZE and consistent(s)
        assert s["in_use"] == 3000 - (k + 100)
    # 3000 = 1024 + spills of 256: the cache holds 3000 - 256 * ceil((3000 - 1024) / 256)
    assert pool.stats()["cached"] == 3000 - CACHE_BATCH * -(-(3000 - CACHE_SIZE) // CACHE_BATCH)
    assert pool.stats()["in_use"] == 0


def test_cache_dealloc_returns_buffers():
    pool = BufferPool(1024)
    c = pool.new_cache()
    c.free(c.alloc(10))
    assert pool.stats()["cached"] > 0
    c.flush()
    assert pool.stats()["cached"] == 0


# --- waiters ----------------------------------------------------------------------

def test_waiters_woken_in_fifo_order_one_per_buffer(pool):
    c = pool.new_cache()
    held = c.alloc(10)
    ws = [BufferWaiter(pool) for _ in range(5)]
    for w in ws:
        w.wait()
    assert pool.stats()["waiters"] == 5 and all(w.queued for w in ws)
    c.free(held[:2])                           # 2 buffers: the first 2 waiters
    assert [w.woken for w in ws] == [1, 1, 0, 0, 0]
    assert [w.queued for w in ws] == [False, False, True, True, True]
    assert ws[0].wake_seq < ws[1].wake_seq
    c.free(held[2:3])
    assert [w.woken for w in ws] == [1, 1, 1, 0, 0]
    c.free(held[3:10])                         # 7 buffers, 2 waiters left: each woken once
    assert [w.woken for w in ws] == [1, 1, 1, 1, 1]
    seqs = [w.wake_seq for w in ws]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert pool.stats()["waiters"] == 0


def test_waiter_not_woken_twice_for_one_release(pool):
    c = pool.new_cache()
    held = c.alloc(50)
    w = BufferWaiter(pool)
    w.wait()
    w.wait()                                   # already queued: still one entry
    assert pool.stats()["waiters"] == 1
    c.free(held[:50])
    assert w.woken == 1 and not w.queued


def test_waiter_woken_by_chain_buffers(pool):
    c = pool.new_cache()
    chain = make_chain(c, [b"a", b"b", b"c"])
    ws = [BufferWaiter(pool) for _ in range(4)]
    for w in ws:
        w.wait()
    c.free([chain[0]])                         # one call releasing 3 buffers
    assert [w.woken for w in ws] == [1, 1, 1, 0]
    ws[3].cancel()


def test_cancel_removes_waiter(pool):
    c = pool.new_cache()
    held = c.alloc(4)
    ws = [BufferWaiter(pool) for _ in range(3)]
    for w in ws:
        w.wait()
    ws[1].cancel()
    assert not ws[1].queued and pool.stats()["waiters"] == 2
    ws[1].cancel()                             # cancelling twice is harmless
    assert pool.stats()["waiters"] == 2
    c.free(held[:2])
    assert [w.woken for w in ws] == [1, 0, 1]  # the removed waiter is skipped
    c.free(held[2:])
    assert ws[1].woken == 0
    assert pool.stats()["waiters"] == 0


def test_cancel_head_and_tail_keeps_queue_sound(pool):
    c = pool.new_cache()
    held = c.alloc(10)
    ws = [BufferWaiter(pool) for _ in range(4)]
    for w in ws:
        w.wait()
    ws[0].cancel()
    ws[3].cancel()
    ws[0].wait()                               # re-queued at the tail
    c.free(held[:3])
    assert [w.woken for w in ws] == [1, 1, 1, 0]
    assert ws[1].wake_seq < ws[2].wake_seq < ws[0].wake_seq
    c.free(held[3:])
    assert ws[3].woken == 0 and pool.stats()["waiters"] == 0


def test_waiter_rewait_is_woken_again(pool):
    c = pool.new_cache()
    held = c.alloc(2)
    w = BufferWaiter(pool)
    w.wait()
    c.free(held[:1])
    w.wait()
    c.free(held[1:])
    assert w.woken == 2


def test_double_free_wakes_nobody(pool):
    c = pool.new_cache()
    held = c.alloc(2)
    c.free(held)
    w = BufferWaiter(pool)
    w.wait()
    c.free(held)                               # nothing released
    assert w.woken == 0 and w.queued
    w.cancel()


def test_waiters_make_frees_visible_to_other_loops(pool):
    c1, c2 = pool.new_cache(), pool.new_cache()
    held = c1.alloc(2048)
    assert len(held) == 2048
    w = BufferWaiter(pool)
    w.wait()
    c2.free(held[:5])                          # while someone waits, frees bypass the cache
    assert w.woken == 1
    assert pool.stats()["cached"] == 0
    got = c1.alloc(5)                          # ... so the waiter's loop can allocate them
    assert sorted(got) == sorted(held[:5])
    c1.free(held[5:] + got)


def test_waiter_dealloc_unlinks(pool):
    c = pool.new_cache()
    held = c.alloc(3)
    w = BufferWaiter(pool)
    w.wait()
    other = BufferWaiter(pool)
    other.wait()
    del w                                      # a waiter that goes away leaves the queue
    assert pool.stats()["waiters"] == 1
    c.free(held)
    assert other.woken == 1


def test_alloc_more_than_a_cache_holds():
    # regression: one alloc used to stop at the cache size (1024) although
    # the pool had plenty; only a short pool may make the answer short
    pool = BufferPool(3000)
    c = pool.new_cache()
    got = c.alloc(2500)
    assert len(got) == 2500 and len(set(got)) == 2500
    assert pool.stats()["in_use"] == 2500
    c.free(got)
    assert pool.stats()["in_use"] == 0
