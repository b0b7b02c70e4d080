"""Process nodes: cooperative Python tasks run by the main loop.

A process is a generator ``f(engine)``. It yields:

  - ``Sleep(seconds)``: resumed (with None) after the delay;
  - ``WaitEvent(timeout=None)``: resumed with the list of events signalled
    since it last looked (``engine.signal_process(name, event)``), or with
    ``[]`` when the timeout passes first;
  - ``WaitEvent(timeout, interrupts=True)``: as above, and also resumed
    (with ``[]``) when a Cython node raises the process's interrupt with
    ``gn_node_set_interrupt_pending(vm, process_node_index)``: how the data
    plane asks the control plane for work without creating Python objects
    (e.g. the neighbour table asking for FIB updates).

Signals that arrive while a process sleeps are kept for its next WaitEvent.
A process that returns or raises ends (the exception is logged). Processes
run between loop iterations with the GIL; they never see packets.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Optional

log = logging.getLogger("graphnet.process")


@dataclass
class Sleep:
    seconds: float


@dataclass
class WaitEvent:
    timeout: Optional[float] = None
    interrupts: bool = False


@dataclass
class ProcessState:
    name: str
    node_index: int
    gen: Any = None
    waiting: Any = None            # the Sleep / WaitEvent it yielded, or None
    deadline: Optional[float] = None
    timer: Optional[int] = None
    events: list = field(default_factory=list)
    done: bool = False

    def resume(self, main, value) -> None:
        """Run the generator to its next yield and arm what it waits for."""
        t0 = time.perf_counter_ns()
        try:
            what = self.gen.send(value)
        except StopIteration:
            self.done = True
            what = None
        except Exception:
            log.exception("process %s failed; it is stopped", self.name)
            self.done = True
            what = None
        main.count_suspend(self.node_index, 1, 0 if self.done else 1, time.perf_counter_ns() - t0)
        self.waiting = what
        if self.timer is not None:
            main.cancel_timer(self.timer)
            self.timer = None
        self.deadline = None
        if what is None:
            return
        if isinstance(what, Sleep):
            delay = max(0.0, float(what.seconds))
        elif isinstance(what, WaitEvent):
            if self.events:                      # already signalled: run again soon
                main.set_interrupt_pending(self.node_index)
            delay = None if what.timeout is None else max(0.0, float(what.timeout))
        else:
            log.error("process %s yielded %r; expected Sleep or WaitEvent; it is stopped", self.name, what)
            self.done = True
            self.waiting = None
            return
        if delay is not None:
            self.deadline = time.monotonic() + delay
            self.timer = main.schedule_interrupt(self.node_index, delay)

    def on_interrupt(self, main) -> None:
        """The node's interrupt fired (timer or signal): resume if due."""
        if self.done or self.waiting is None:
            return
        now = time.monotonic()
        due = self.deadline is not None and now >= self.deadline
        if due:
            self.timer = None          # it fired; its handle may be reused
        if isinstance(self.waiting, Sleep):
            if due:
                self.resume(main, None)
            else:
                self._rearm(main, now)
        elif self.events:
            events, self.events = self.events, []
            self.resume(main, events)
        elif due or getattr(self.waiting, "interrupts", False):
            self.resume(main, [])
        elif self.deadline is not None:
            self._rearm(main, now)

    def _rearm(self, main, now: float) -> None:
        """Not due yet: the interrupt was a signal, or the timer fired a
        little before this deadline (the wheel counts from the loop's tick,
        the deadline from when Python computed it). Arm a fresh timer for
        the rest; cancelling a handle that already fired is harmless
        (handles carry a generation)."""
        if self.timer is not None:
            main.cancel_timer(self.timer)
        self.timer = main.schedule_interrupt(self.node_index, self.deadline - now)
