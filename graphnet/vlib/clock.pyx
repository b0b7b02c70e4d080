"""The cycle counter the engine reads once per dispatch, for Python."""
from graphnet.includes.platform cimport gn_clock_cycles, gn_time_ns


def cycles():
    """The current cycle counter (TSC on x86)."""
    return gn_clock_cycles()


def time_ns():
    """CLOCK_MONOTONIC in ns (the clock of trace records and timers)."""
    return gn_time_ns()
