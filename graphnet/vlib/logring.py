"""The engine's recent log lines, kept in memory for ``show logging``.

``install()`` adds one handler to the ``graphnet`` logger (once, however
often it is called) that keeps the last ``RECENT_LINES`` formatted records
in a ring. The handler does not change which records are emitted: it sees
what the ``graphnet`` logger's level lets through, as any handler does.
"""
from __future__ import annotations

import collections
import logging
import threading

RECENT_LINES = 1000
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RingHandler(logging.Handler):
    """A logging handler keeping the last `capacity` formatted lines."""

    def __init__(self, capacity: int = RECENT_LINES):
        super().__init__()
        self.lines: collections.deque = collections.deque(maxlen=capacity)
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record).splitlines()[0])   # one line each, no traceback
        except Exception:                                           # never let logging raise
            self.handleError(record)


_lock = threading.Lock()
_handler: RingHandler | None = None


def install() -> RingHandler:
    """The ring handler on the ``graphnet`` logger, added on the first call."""
    global _handler
    with _lock:
        if _handler is None:
            _handler = RingHandler()
            logging.getLogger("graphnet").addHandler(_handler)
        return _handler


def recent(n: int = 50) -> list[str]:
    """The last n lines logged (oldest first)."""
    lines = list(install().lines)
    return lines[-n:] if n > 0 else []
