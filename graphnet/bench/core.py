"""The bench registry and the measuring helpers every bench shares.

A bench is a function ``fn(opts) -> Iterator[dict]`` registered with
``@register("name")``; its docstring's first line is its summary in
``graphnet bench list``. Each dict it yields is one measured case with at
least ``case``, ``pps`` and ``ns_per_packet`` (the runner adds ``bench`` and
``machine``). A case compared with a reference in the same run carries
``ratio`` (how many times faster) and ``against`` (the reference case).

``opts`` is the argparse namespace of ``graphnet bench``: ``packets`` (None:
the bench's default), ``seconds`` (time budget per case), ``repeat`` (most
runs per case; the best run is reported) and bench-specific options.

Timing: wall clock (``perf_counter_ns``) with the garbage collector off;
each case is run many times in short runs (a few ms, so that some escape
preemption on a shared 2-vCPU VM), cases of one comparison are interleaved
round-robin (so drift hits both sides alike) and the fastest run of each
is kept. Runs too long for that are timed in thread CPU time instead. Node clocks (TSC cycles) are converted to ns with the
TSC frequency measured over those same runs.
"""
from __future__ import annotations

import gc
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from graphnet.io.templates import build
from graphnet.vlib.clock import cycles


@dataclass
class Bench:
    name: str
    fn: Callable[..., Iterator[dict]]
    summary: str
    seconds: float = 2.0          # --seconds when not given


BENCHES: dict[str, Bench] = {}


def register(name: str, seconds: float = 2.0):
    """Decorator: make ``fn(opts)`` the bench ``graphnet bench <name>``
    (``seconds``: its ``--seconds`` default)."""
    def wrap(fn):
        doc = (fn.__doc__ or "").strip()
        BENCHES[name] = Bench(name, fn, doc.splitlines()[0] if doc else "", seconds)
        return fn
    return wrap


_MACHINE: Optional[dict] = None


def machine() -> dict:
    """CPU model, CPU count, Python version, and the 1-minute load average
    when the benches started (on a shared VM, other work skews figures)."""
    global _MACHINE
    if _MACHINE is None:
        model = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _MACHINE = {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load": round(os.getloadavg()[0], 2)}
    return _MACHINE


class Clock:
    """Times runs, and measures TSC ticks per ns over every run it times.

    ``cpu_time``: report the thread's CPU time instead of the wall time, for
    runs too long to escape preemption on a busy machine (the wall time then
    counts other processes' turns)."""

    def __init__(self, cpu_time: bool = False):
        self.cpu_time = cpu_time
        self.ns = 0
        self.cycles = 0

    def timed(self, fn: Callable[[], object]) -> int:
        """Run fn once with the GC off; returns its wall (or CPU) time in ns."""
        gc.collect()
        enabled = gc.isenabled()
        gc.disable()
        try:
            p0 = time.thread_time_ns()
            c0, t0 = cycles(), time.perf_counter_ns()
            fn()
            t1, c1 = time.perf_counter_ns(), cycles()
            p1 = time.thread_time_ns()
        finally:
            if enabled:
                gc.enable()
        self.ns += t1 - t0
        self.cycles += c1 - c0
        return p1 - p0 if self.cpu_time else t1 - t0

    def cycles_per_ns(self) -> float:
        if self.ns < 20_000_000:          # too little timed yet: calibrate on a sleep
            c0, t0 = cycles(), time.perf_counter_ns()
            time.sleep(0.05)
            self.cycles += cycles() - c0
            self.ns += time.perf_counter_ns() - t0
        return self.cycles / self.ns

    def to_ns(self, clocks: float) -> float:
        return clocks / self.cycles_per_ns()


def best_of(cases: dict[str, Callable[[], object]], clock: Clock, repeat: int, seconds: float,
            on_best: Optional[Callable[[str], None]] = None) -> tuple[dict[str, int], dict[str, int]]:
    """Run each case up to `repeat` times, round-robin, until the budget of
    `seconds` per case is spent (at least twice when repeat >= 2: the first
    run warms up). Returns ({case: best wall time in ns}, {case: runs}).

    ``on_best(name)`` is called right after a run that is the best of its
    case so far (to keep the counters of the best run)."""
    best = {name: None for name in cases}
    runs = {name: 0 for name in cases}
    deadline = time.perf_counter() + seconds * len(cases)
    for r in range(max(1, repeat)):
        if r >= 2 and time.perf_counter() >= deadline:
            break
        for name, fn in cases.items():
            ns = clock.timed(fn)
            runs[name] += 1
            if best[name] is None or ns < best[name]:
                best[name] = ns
                if on_best is not None:
                    on_best(name)
    return best, runs


def frame64() -> bytes:
    """The benches' 64-byte Ethernet/IPv4/UDP frame (02:fe:00:00:00:01 ->
    02:fe:00:00:00:02, 10.254.0.1:1024 -> 10.254.0.2:1024, an address
    nobody has), built by the pg's ``udp`` template: one frame builder for
    benches and pg streams."""
    return build("udp", src_mac="02:fe:00:00:00:01", dst_mac="02:fe:00:00:00:02",
                 src="10.254.0.1", dst="10.254.0.2", sport=1024, dport=1024, size=64)
