"""``ping <address> [source <interface>] [repeat <n>] [size <bytes>]
[interval <s>] [timeout <s>]``: ICMP echo from inside the engine, as
vppctl's ping prints it.

The requests are built by the ``ip4-ping`` node and go through the graph
(ip4-lookup -> ip4-rewrite / ip4-arp -> the interface); ``ip4-ping-reply``
records the replies (graphnet.nodes.ip4_ping). This command runs in the
control thread (``needs_engine=False``): it never holds the loop while it
waits, only makes short ``engine.call``\\ s to queue each request and to
collect replies (every POLL_S).

Output: one line per reply in the order they come (``64 bytes from
10.10.0.1: icmp_seq=1 ttl=64 time=0.0425 ms``; bytes = the ICMP message,
header and data, as Linux ping counts them), ``timeout: icmp_seq=N`` for a
request with no reply within the timeout, then ``Statistics: 3 sent, 3
received, 0% packet loss``. The round-trip time is taken from the send
time the request carries in its data (size >= 8), else from when the
request was queued. The source address is the ``source`` interface's
(the one facing the destination), else that of the interface the FIB's
route for the destination points to.

Bounds: repeat 1..1000 (default 5), interval 0.01..60 s (default 1),
timeout 0.01..60 s per reply (default 1), size 0..65507 (default 56).
A ping lasts about (repeat - 1) x interval + timeout; ``graphnet ctl``
waits that long plus CTL_MARGIN_S for the answer (``client_timeout``).
"""
from __future__ import annotations

import ipaddress
import itertools
import os
import time

from graphnet.cli.registry import CommandError, UsageError, command, json_view

DEFAULTS = {"repeat": 5, "interval": 1.0, "timeout": 1.0, "size": 56}
LIMITS = {"repeat": (1, 1000), "interval": (0.01, 60.0), "timeout": (0.01, 60.0), "size": (0, 65507)}
POLL_S = 0.01                   # how often replies are collected while waiting
CTL_MARGIN_S = 5.0
USAGE = ("ping <address> [source <interface>] [repeat <n>] [size <bytes>] [interval <s>] [timeout <s>]")

_ids = itertools.count(os.getpid() & 0xffff)


def parse(args: list) -> dict:
    """The options of one ping command line (UsageError when wrong)."""
    if not args:
        raise UsageError("ping needs an address")
    try:
        dst = ipaddress.IPv4Address(args[0])
    except ValueError:
        raise UsageError(f"{args[0]!r} is not an IPv4 address") from None
    opts = dict(DEFAULTS, address=str(dst), source=None)
    rest = args[1:]
    if len(rest) % 2:
        raise UsageError(f"{rest[-1]!r} needs a value")
    for key, value in zip(rest[::2], rest[1::2]):
        if key == "source":
            opts["source"] = value
            continue
        if key not in LIMITS:
            raise UsageError(f"unknown option {key!r}")
        lo, hi = LIMITS[key]
        try:
            v = int(value) if isinstance(lo, int) else float(value)
        except ValueError:
            raise UsageError(f"{key} {value!r} is not a number") from None
        if not lo <= v <= hi:
            raise UsageError(f"{key} is from {lo:g} to {hi:g}, not {value}")
        opts[key] = v
    return opts


def duration(words: list) -> float:
    """Seconds a ping command line may take (0 when it is not a valid ping)."""
    try:
        o = parse(list(words[1:]))
    except CommandError:
        return 0.0
    return (o["repeat"] - 1) * o["interval"] + o["timeout"]


def client_timeout(line: str, default: float) -> float:
    """How long ``graphnet ctl`` waits for the answer to `line`: a ping
    needs its whole run; any other command the default."""
    import shlex
    try:
        words = shlex.split(line)
    except ValueError:
        return default
    seconds = duration(words) if words and words[0] == "ping" else 0.0
    return max(default, seconds + CTL_MARGIN_S) if seconds else default


def _route(engine, opts) -> tuple:
    """(source address, rx sw_if_index) in the loop thread; CommandError
    when there is none."""
    from graphnet.nodes.ip4_host import fib, ip4_addresses
    dst = opts["address"]
    addrs = ip4_addresses(engine)
    if opts["source"] is not None:
        sw = engine.interfaces.index(opts["source"])
    else:
        adj = fib(engine).lookup(dst)
        sw = adj.get("sw_if_index")
        if adj["type"] == "local":
            sw = addrs.interface_of(dst) if sw is None else sw
            if sw is None:
                return dst, 0xffffffff
        if sw is None:
            raise CommandError(f"ping: no route to {dst} ({adj['type']})")
    src = addrs.source_for(sw, dst)
    if src is None:
        raise CommandError(f"ping: {engine.interfaces.names[sw]} has no IPv4 address")
    return src, sw


def run(engine, opts: dict, clock=time.monotonic) -> dict:
    """Ping as opts say; returns ``{"address", "sent", "received", "loss_percent",
    "replies": [{"seq", "from", "ttl", "bytes", "time_ms"}], "timeouts": [seq, ...],
    "lines": [text, ...]}``."""
    from graphnet.nodes.ip4_ping import ping_main
    if engine is None or not engine.running:
        raise CommandError("ping needs a running engine")
    pm = ping_main(engine)
    src, sw = engine.call(_route, engine, opts)
    for _ in range(0xffff):
        ident = next(_ids) & 0xffff
        if engine.call(pm.open_id, ident):
            break
    else:
        raise CommandError("ping: too many pings in progress")
    src_i, dst_i = int(ipaddress.IPv4Address(src)), int(ipaddress.IPv4Address(opts["address"]))
    n, interval, timeout = opts["repeat"], opts["interval"], opts["timeout"]
    queued = {}                 # seq -> monotonic ns when queued (None: queue full, not sent)
    deadline = {}               # seq -> clock() after which it is a timeout
    out = {"address": opts["address"], "source": src, "size": opts["size"], "replies": [], "timeouts": [],
           "lines": []}
    start = clock()
    try:
        seq = 0
        while True:
            now = clock()
            if seq < n and now >= start + seq * interval:
                seq += 1
                queued[seq] = engine.call(pm.send, src_i, dst_i, ident, seq, opts["size"], sw)
                deadline[seq] = now + timeout
            for r_seq, r_src, ttl, nbytes, tx_ns, rx_ns in engine.call(pm.take, ident):
                if r_seq not in deadline:
                    continue                    # late (timed out already) or never sent
                del deadline[r_seq]
                sent_ns = tx_ns if tx_ns and 0 <= rx_ns - tx_ns <= timeout * 1e9 else (queued[r_seq] or rx_ns)
                ms = (rx_ns - sent_ns) / 1e6
                frm = str(ipaddress.IPv4Address(r_src))
                out["replies"].append({"seq": r_seq, "from": frm, "ttl": ttl, "bytes": nbytes,
                                       "time_ms": round(ms, 4)})
                out["lines"].append(f"{nbytes} bytes from {frm}: icmp_seq={r_seq} ttl={ttl} time={ms:.4f} ms")
            now = clock()
            for s in sorted(k for k, d in deadline.items() if now > d):
                del deadline[s]
                out["timeouts"].append(s)
                out["lines"].append(f"timeout: icmp_seq={s}" + ("" if queued[s] else " (not sent: queue full)"))
            if seq == n and not deadline:
                break
            time.sleep(POLL_S)
    finally:
        engine.call(pm.close_id, ident)
    sent = sum(1 for q in queued.values() if q)
    received = len(out["replies"])
    loss = round(100 * (sent - received) / sent) if sent else 100
    out.update(sent=sent, received=received, loss_percent=loss)
    out["lines"].append(f"Statistics: {sent} sent, {received} received, {loss}% packet loss")
    return out


@command("ping", help="ICMP echo from the engine through its graph: a line per reply, then statistics",
         usage=USAGE, needs_engine=False)
def ping(engine, args):
    return "\n".join(run(engine, parse(args))["lines"])


@json_view("ping", "{address, source, size, sent, received, loss_percent, replies: [{seq, from, ttl, bytes, "
                   "time_ms}], timeouts: [seq], lines: [text]}")
def ping_json(engine, args):
    return run(engine, parse(args))
