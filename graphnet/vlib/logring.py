"""The engine's recent log lines, kept in memory for ``show logging``.

``install()`` adds one handler to the ``graphnet`` logger (once, however
often it is called) that keeps the last ``RECENT_LINES`` formatted records
in a ring. The handler does not change which records are emitted: it sees
what the ``graphnet`` logger's level lets through, as any handler does.

``configure(file=, level=)`` is the startup file's ``[logging]``: the
``graphnet`` logger's level, and a file the same lines are appended to
(opened through ``graphnet.paths.open_dir``, O_NOFOLLOW, mode 0640: a link
planted on the way cannot redirect it).
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


LEVELS = ("debug", "info", "warning", "error", "critical")
_file_handler: logging.Handler | None = None


def open_log_file(path: str):
    """An append-only text stream on path, opened safely (module docstring)."""
    import os
    from graphnet.paths import open_dir
    d, name = os.path.split(os.path.abspath(path))
    dfd = open_dir(d)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640,
                     dir_fd=dfd)
    finally:
        os.close(dfd)
    return os.fdopen(fd, "a", buffering=1)


def configure(file: str | None = None, level: str | None = None) -> None:
    """Set the graphnet logger's level and (re)direct a copy of its lines
    to file (None: leave as it is). The ring keeps working either way."""
    global _file_handler
    install()
    logger = logging.getLogger("graphnet")
    if level is not None:
        if level not in LEVELS:
            raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
        logger.setLevel(level.upper())
    if file is not None:
        h = logging.StreamHandler(open_log_file(file))
        h.setFormatter(logging.Formatter(_FORMAT))
        with _lock:
            if _file_handler is not None:
                logger.removeHandler(_file_handler)
                _file_handler.close()
            _file_handler = h
            logger.addHandler(h)
