"""A closed engine is freed with its buffer arena (per-engine state is released by close)."""
import gc
import weakref

from graphnet import Engine
from graphnet.nodes import ip4_host


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_a_closed_engine_is_collected_with_its_arena():
    refs = []
    gc.collect()
    before = _rss_mib()
    for _ in range(8):
        e = Engine([ip4_host.NODES], buffers=16384)
        e.build()
        ip4_host.fib(e)                          # per-engine state that refers back to the engine
        e.start()
        e.stop()
        e.close()
        refs.append(weakref.ref(e))
        del e
    gc.collect()
    assert [r() for r in refs] == [None] * 8
    # 8 arenas of 16384 buffers are about 300 MB: they were kept before the fix
    assert _rss_mib() - before < 150
