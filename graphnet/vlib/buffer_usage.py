"""Where an engine's buffers are: the numbers of ``show buffers``.

Every buffer of the pool is in exactly one of these places:

- ``free_shared``: the pool's shared free list;
- ``cached``: a loop's private cache (free, but only that loop allocates
  it);
- ``device_cached``: kept by a device for its own use, not holding a
  packet (a TAP's rx spares, allocated ahead of each read);
- ``in_use_packets``: holding a packet: in a frame, in a queue (ARP,
  reassembly, a device's tx retry queue), in a node's hands.

So ``total == free_shared + cached + device_cached + in_use_packets``, and
between loop iterations, once traffic has stopped and nothing waits in a
queue, ``in_use_packets`` is back to its idle value (0 on an engine that
holds nothing): the number to watch for leaks. The pool's own ``free``
(shared + loop caches) and ``in_use`` (total - free) are kept as they
were for compatibility; ``in_use`` includes the device caches, which is why
it moved with a TAP's spares and could end *below* its start.

``queued`` counts the buffers (chains whole) of ``in_use_packets`` that a
known queue holds while the engine is idle: the ARP queues of the
neighbour table and the datagrams ip4-reassembly keeps. ``tx_queued``
counts the frames waiting in TAP tx retry queues (a full kernel queue);
an AF_PACKET tx backlog is not counted there yet.
"""
from __future__ import annotations


def device_caches(engine) -> dict:
    """{interface name: buffers its device caches} (devices with none left out)."""
    out = {}
    for name, dev in zip(engine.interfaces.names, engine.interfaces.devices):
        fn = getattr(dev, "cached_buffers", None)
        n = fn() if fn is not None else 0
        if n:
            out[name] = n
    return out


_QUEUES: list = []      # fn(engine) -> buffers a queue of that module holds (register_queue)


def register_queue(fn) -> None:
    """Count the buffers a module's queue holds in ``queued``: ``fn(engine)
    -> int`` (the neighbour table's ARP queues, ip4-reassembly). The
    modules above vlib register at import, so vlib imports none of them
    (a module not imported holds nothing)."""
    if fn not in _QUEUES:
        _QUEUES.append(fn)


def queued_buffers(engine) -> int:
    """Buffers of packets waiting in the registered queues (ARP, ip4-reassembly)."""
    return sum(fn(engine) for fn in _QUEUES)


def tx_queued(engine) -> int:
    """Frames waiting in devices' tx retry queues (TAP: kernel queue full)."""
    n = 0
    for dev in engine.interfaces.devices:
        if getattr(dev, "kind", None) == "tap":
            n += dev.stats().get("tx_retry_queue", 0)
    return n


def snapshot(engine) -> dict:
    """The engine's buffer accounting (module docstring); call it in the
    loop's thread or with the loop stopped."""
    s = engine.pool.stats()
    devices = device_caches(engine)
    dev = sum(devices.values())
    s["device_cached"] = dev
    s["free_shared"] = s["free"] - s["cached"]
    s["in_use_packets"] = s["in_use"] - dev
    s["queued"] = queued_buffers(engine)
    s["tx_queued"] = tx_queued(engine)
    s["devices"] = devices
    return s
