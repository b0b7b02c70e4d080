"""``graphnet bench ct-throughput``: bytes through a cut-through session
against memcpy of the same sizes in the same run.

Two apps of one session layer (local scope), connected cut-through: the
client writes 64 KB at a time into its tx fifo (256 KB; the server's rx
fifo), raises the server's rx event as the ct transport does, the event
is flushed to the server worker's queue, the server reads the queue and
dequeues the 64 KB (C, one thread: ``session_helper.ct_rounds``).

``memcpy``
    The reference: one memcpy of 64 KB per write between two buffers.
``cut-through``
    Two copies per byte (into the fifo, out of it) plus the event.
    ``ratio``: memcpy's time over cut-through's (the issue's target:
    >= 0.5), ``gbps``: GB/s moved.
``cut-through-zero-copy``
    The writer copies its 64 KB straight into the fifo's writable slices
    (``gn_fifo_writable`` + ``gn_fifo_enqueue_nocopy``, as the builtin
    throughput source does), the reader reads every byte in place in the
    readable slices (an xor of 8-byte words: it uses the data, as memcpy's
    reader does) and drops them: one copy and one read pass per byte.
    ``ratio`` as above.
"""
from __future__ import annotations

from typing import Iterator

from graphnet.bench.core import Clock, best_of, register

CHUNK = 64 << 10
ROUNDS = 256
FIFO = 256 << 10


def _pair():
    from graphnet.session.application import SessionManager
    from graphnet.session.session import parse_msgs
    mgr = SessionManager()
    srv = mgr.attach("ct-srv", scope="local", rx_fifo_size=FIFO, tx_fifo_size=FIFO, segment_size=8 << 20)
    cli = mgr.attach("ct-cli", scope="local")
    srv.workers[0].listen("tcp://0.0.0.0/5000")
    cli.workers[0].connect("tcp://127.0.0.1/5000")
    mgr.layer.flush()
    acc = [m for m in parse_msgs(b"".join(srv.workers[0].mq.dequeue_batch())) if m["event"] == "accepted"][0]
    con = [m for m in parse_msgs(b"".join(cli.workers[0].mq.dequeue_batch())) if m["event"] == "connected"][0]
    mgr.layer.accept_reply(acc["handle"])
    return mgr, con["handle"], acc["handle"]


@register("ct-throughput")
def bench_ct_throughput(opts) -> Iterator[dict]:
    """A cut-through session moving 64 KB writes vs memcpy of 64 KB, GB/s."""
    from graphnet.bench.session_helper import ct_rounds, memcpy_rounds
    mgr, ch, sh = _pair()
    total = CHUNK * ROUNDS

    def ct(zero_copy):
        def run():
            if ct_rounds(mgr.layer, ch, sh, CHUNK, ROUNDS, zero_copy) != total:
                raise RuntimeError("ct-throughput: bytes lost")
        return run

    best, runs = best_of({"memcpy": lambda: memcpy_rounds(CHUNK, ROUNDS), "cut-through": ct(False),
                          "cut-through-zero-copy": ct(True)}, Clock(), opts.repeat, opts.seconds)
    for c in ("memcpy", "cut-through", "cut-through-zero-copy"):
        ns = best[c]
        line = {"case": c, "unit": "64KB-write", "bytes": total, "runs": runs[c], "pps": ROUNDS * 1e9 / ns,
                "ns_per_packet": ns / ROUNDS, "gbps": total / ns}
        if c != "memcpy":
            line.update(ratio=best["memcpy"] / ns, against="memcpy")
        yield line
