"""``graphnet bench timers``: the timer wheel against Python's heapq.

One run arms N timers with delays spread over 1..1000 ticks (timer i: 1 +
(i * 7919) % 1000), stops every other one, then expires the rest; both
sides fire N/2 timers.

``heapq``
    The reference: (expiry, handle) tuples pushed on a heap, stopped by
    marking the handle cancelled (lazy deletion, as asyncio does), expired
    by popping every entry due and skipping the cancelled ones.
``timer-wheel``
    ``TimerWheel.bench_start_stop_expire``: the C hashed wheel of the main
    loop (O(1) start and stop, expiry walks the slots passed), one Cython
    call per run (no Python per timer). The wheel keeps its timer pool
    between runs, as the loop does. ``ratio``: against heapq.

Both are timed in the thread's CPU time (``clock``: thread-cpu), since a
heapq run is too long to escape preemption on a busy machine. ``pps`` and
``ns_per_packet`` count timers here (``unit``: timer) so the lines keep the
common fields.
"""
from __future__ import annotations

import heapq
import time
from typing import Iterator

from graphnet.bench.core import Clock, best_of, register
from graphnet.vlib.timer import TimerWheel

DEFAULT_TIMERS = 100_000


def heapq_start_stop_expire(n: int) -> tuple[int, int]:
    """The reference run; returns (wall ns of the timer work, timers fired)."""
    heap: list = []
    push, pop = heapq.heappush, heapq.heappop
    cancelled = bytearray(n)
    fired = []
    t0 = time.perf_counter_ns()
    now = 0
    for i in range(n):
        push(heap, (now + 1 + (i * 7919) % 1000, i))     # the handle is i
    for h in range(0, n, 2):
        cancelled[h] = 1
    far = now + 1001
    while heap and heap[0][0] <= far:
        _, h = pop(heap)
        if not cancelled[h]:
            fired.append(h)
    t1 = time.perf_counter_ns()
    return t1 - t0, len(fired)


@register("timers")
def bench_timers(opts) -> Iterator[dict]:
    """Arm / stop half / expire 100k timers: the C timer wheel vs Python heapq."""
    n = getattr(opts, "timers", None) or DEFAULT_TIMERS
    wheel = TimerWheel(tick_ns=1_000_000, n_slots=1024)
    expected = n - (n + 1) // 2

    def check(case, fired):
        if fired != expected:
            raise RuntimeError(f"{case}: {fired} timers fired, expected {expected}")

    cases = {"heapq": lambda: check("heapq", heapq_start_stop_expire(n)[1]),
             "timer-wheel": lambda: check("timer-wheel", wheel.bench_start_stop_expire(n)[1])}
    best, runs = best_of(cases, Clock(cpu_time=True), opts.repeat, opts.seconds)
    for case in cases:
        ns = best[case] / n
        line = {"case": case, "unit": "timer", "timers": n, "runs": runs[case], "pps": 1e9 / ns,
                "ns_per_packet": ns, "ns_per_timer": ns, "clock": "thread-cpu"}
        if case != "heapq":
            line.update(ratio=best["heapq"] / best[case], against="heapq")
        yield line
