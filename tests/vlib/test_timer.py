"""Timer wheel: exact firing tick (never early), stop, stale handles,
timers beyond one revolution, 50k timers, ns_until_next."""
import random

import pytest

from graphnet.vlib.timer import TimerWheel

TICK = 1000          # ns per tick in these tests
NONE = 0xffffffff


def wheel(slots=64):
    return TimerWheel(tick_ns=TICK, n_slots=slots, start_ns=0)


def at(tick):
    """A time inside the given tick (its first ns)."""
    return tick * TICK


def test_bad_wheel_args():
    with pytest.raises(ValueError):
        TimerWheel(tick_ns=TICK, n_slots=100, start_ns=0)     # not a power of two
    with pytest.raises(ValueError):
        TimerWheel(tick_ns=0, n_slots=64, start_ns=0)


def test_fires_at_its_tick_never_early():
    w = wheel()
    h = w.start(7, 10)
    assert h != NONE and w.n_active == 1
    assert w.expire(at(10) - 1) == []          # one ns before tick 10 has elapsed
    assert w.n_active == 1
    assert w.expire(at(10)) == [7]
    assert w.n_active == 0
    assert w.expire(at(100)) == []             # fires once


def test_each_timer_fires_exactly_at_its_tick():
    w = wheel(64)
    rng = random.Random(1)
    delays = {user: rng.randrange(0, 300) for user in range(500)}    # many beyond one revolution
    for user, d in delays.items():
        w.start(user, d)
    fired_at = {}
    for tick in range(0, 302):
        for user in w.expire(at(tick)):
            assert user not in fired_at
            fired_at[user] = tick
    assert fired_at == delays
    assert w.n_active == 0


def test_firing_order_is_tick_order():
    w = wheel(16)
    w.start(3, 40)
    w.start(1, 5)
    w.start(2, 21)
    assert w.expire(at(1000)) == [1, 2, 3]     # one late call: still in tick order


def test_delay_counts_from_the_current_tick():
    w = wheel()
    w.expire(at(20))                           # ticks 0..20 done: current tick is 21
    assert w.current_tick == 21
    w.start(1, 5)                              # due at tick 26
    assert w.expire(at(25)) == []
    assert w.expire(at(26)) == [1]


def test_zero_delay_fires_on_next_expire():
    w = wheel()
    w.start(9, 0)
    assert w.expire(at(0)) == [9]


def test_stop():
    w = wheel()
    keep = w.start(1, 5)
    gone = w.start(2, 5)
    w.stop(gone)
    assert w.n_active == 1
    assert w.expire(at(50)) == [1]
    assert keep != gone


def test_stop_head_middle_tail_of_one_slot():
    w = wheel(8)
    hs = [w.start(u, 3) for u in range(5)]     # all in one slot list
    w.stop(hs[4])                              # list head (pushed last)
    w.stop(hs[2])
    w.stop(hs[0])                              # list tail
    assert sorted(w.expire(at(3))) == [1, 3]
    assert w.n_active == 0


def test_stale_handles_are_ignored():
    w = wheel()
    fired = w.start(1, 1)
    stopped = w.start(2, 1)
    w.stop(stopped)
    assert w.expire(at(1)) == [1]
    w.stop(fired)                              # already fired
    w.stop(stopped)                            # already stopped
    w.stop(123456)                             # never existed
    w.stop(NONE)
    assert w.n_active == 0
    # new timers reuse the freed slots; the old handles must not touch them
    new = [w.start(10 + i, 5) for i in range(4)]
    w.stop(fired)
    w.stop(stopped)
    assert w.n_active == 4
    assert sorted(w.expire(at(100))) == [10, 11, 12, 13]
    assert not set(new) & {fired, stopped}


def test_stale_handle_after_many_reuses():
    w = wheel()
    old = w.start(0, 1)
    w.stop(old)
    for i in range(1, 200):                    # the same slot is armed again and again
        h = w.start(i, 1)
        w.stop(old)                            # stale: ignored every time
        assert w.n_active == 1
        w.stop(h)
        assert w.n_active == 0


def test_fifty_thousand_timers():
    n = 50_000
    w = TimerWheel(tick_ns=TICK, n_slots=1024, start_ns=0)
    handles = [w.start(i, 1 + (i * 7919) % 3000) for i in range(n)]
    assert len(set(handles)) == n and NONE not in handles
    assert w.n_active == n
    for i in range(0, n, 3):
        w.stop(handles[i])
    for i in range(0, n, 3):
        w.stop(handles[i])                     # twice: stale, ignored
    expected = {i for i in range(n) if i % 3}
    assert w.n_active == len(expected)
    fired = []
    for tick in range(0, 3002, 100):           # expire in coarse steps, late but never early
        got = w.expire(at(tick))
        for u in got:
            assert 1 + (u * 7919) % 3000 <= tick
        fired += got
    assert len(fired) == len(expected) and set(fired) == expected
    assert w.n_active == 0


def test_bench_helper_counts():
    w = TimerWheel(tick_ns=TICK, n_slots=1024, start_ns=0)
    ns, fired = w.bench_start_stop_expire(50_000)
    assert fired == 25_000 and w.n_active == 0 and ns > 0


def test_ns_until_next():
    w = wheel(64)
    assert w.ns_until_next(0, 10 ** 9) == 10 ** 9           # nothing armed: the horizon
    w.start(1, 10)                                          # due when tick 10 starts
    assert w.ns_until_next(0, 10 ** 9) == at(10)
    assert w.ns_until_next(at(4) + 250, 10 ** 9) == at(10) - at(4) - 250
    assert w.ns_until_next(0, at(5)) == at(5)               # beyond the horizon
    assert w.ns_until_next(at(12), 10 ** 9) == 0            # overdue
    # sleeping exactly that long is enough for expire to fire it
    assert w.expire(0 + w.ns_until_next(0, 10 ** 9)) == [1]
    assert w.ns_until_next(at(11), 10 ** 9) == 10 ** 9


def test_ns_until_next_picks_the_earliest():
    w = wheel(64)
    w.start(1, 30)
    w.start(2, 7)
    w.start(3, 50)
    assert w.ns_until_next(0, 10 ** 9) == at(7)
    w.expire(at(7))
    assert w.ns_until_next(at(7), 10 ** 9) == at(30) - at(7)
