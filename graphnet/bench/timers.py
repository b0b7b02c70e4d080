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
    loop (O(1) start and stop, expiry walks the slots passed), timed inside
    the Cython call (no Python per timer). The wheel keeps its timer pool
    between runs, as the loop does. ``ratio``: against heapq.

``pps`` and ``ns_per_packet`` count timers here (``unit``: timer) so the
lines keep the common fields.
"""
from __future__ import annotations

import heapq
import time
from typing import Iterator

from graphnet.bench.core import Clock, best_of, register
from graphnet.vlib.timer import TimerWheel

DEFAULT_TIMERS = 100_000


def heapq_start_stop_expire(n: int) -> tuple[int, int]:
    """The reference run; returns (ns taken, timers fired)."""
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
    inner: dict[str, int] = {}

    def run_wheel():
        ns, fired = wheel.bench_start_stop_expire(n)
        _keep_best(inner, "timer-wheel", ns, fired, n)

    def run_heapq():
        ns, fired = heapq_start_stop_expire(n)
        _keep_best(inner, "heapq", ns, fired, n)

    _, runs = best_of({"heapq": run_heapq, "timer-wheel": run_wheel}, Clock(), opts.repeat, opts.seconds)
    for case in ("heapq", "timer-wheel"):
        ns = inner[case] / n
        line = {"case": case, "unit": "timer", "timers": n, "runs": runs[case], "pps": 1e9 / ns,
                "ns_per_packet": ns, "ns_per_timer": ns}
        if case != "heapq":
            line.update(ratio=inner["heapq"] / inner[case], against="heapq")
        yield line


def _keep_best(best: dict, case: str, ns: int, fired: int, n: int) -> None:
    if fired != n - (n + 1) // 2:
        raise RuntimeError(f"{case}: {fired} timers fired, expected {n - (n + 1) // 2}")
    if case not in best or ns < best[case]:
        best[case] = ns
