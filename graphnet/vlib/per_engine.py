"""State kept per engine by modules above vlib (FIB, neighbour tables, link
watchers, ...), released when the engine closes.

``per_engine()`` gives a dict keyed weakly by engine, as
``weakref.WeakKeyDictionary`` does, and remembers it so that
``Engine.close()`` can drop the closed engine's entries (``release``). That
matters: such a value (a FIB, a watcher) usually refers back to its engine,
and a WeakKeyDictionary whose value refers to its key keeps both alive for
ever; every engine ever built then kept its buffer arena (about 37 MB) until
the process ended.
"""
from __future__ import annotations

import weakref

_REGISTRIES: list = []


def per_engine() -> weakref.WeakKeyDictionary:
    """A new engine -> value dict whose entries Engine.close() drops."""
    d: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    _REGISTRIES.append(d)
    return d


def release(engine) -> None:
    """Drop `engine`'s entries from every per-engine dict."""
    for d in _REGISTRIES:
        d.pop(engine, None)
