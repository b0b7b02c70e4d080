"""Timer scenarios of ``graphnet bench timers``: arm N timers over 1..1000
ticks, stop every other one, expire the rest."""
import pytest

from graphnet.bench.timers import heapq_start_stop_expire
from graphnet.vlib.timer import TimerWheel

from .conftest import TIMER_ROUNDS, TIMERS, run_pedantic

pytestmark = pytest.mark.benchmark(group="timers")


def test_timer_wheel(benchmark):
    """The main loop's C hashed timer wheel (TimerWheel.bench_start_stop_expire)."""
    wheel = TimerWheel(tick_ns=1_000_000, n_slots=1024)
    run_pedantic(benchmark, lambda: wheel.bench_start_stop_expire(TIMERS), TIMERS, TIMER_ROUNDS)


def test_heapq_reference(benchmark):
    """The reference: Python heapq with lazy cancellation, as asyncio does."""
    run_pedantic(benchmark, lambda: heapq_start_stop_expire(TIMERS), TIMERS, TIMER_ROUNDS)
