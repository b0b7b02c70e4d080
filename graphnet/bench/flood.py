"""``graphnet bench flood``: graphnet as a host under a mixed flood over a
TAP, all at once, from a namespace (issue 9, "Load").

Set-up (the namespace is created here and removed afterwards; addresses
only in it): a TAP whose kernel side is ``10.251.0.1/16`` in the namespace,
graphnet ``10.251.0.2/16`` running ``ip4_host.NODES`` (16384 buffers, the
TAP in adaptive rx mode). The namespace has graphnet's MAC as a permanent
neighbour; graphnet learns the kernel side's by ARP, as any peer's.

The flood: an AF_PACKET socket in the namespace (PACKET_QDISC_BYPASS)
writes, in a C loop (``tap_raw.write_frames_loop``, bounded by a frame
count and by the time), as fast as the kernel takes them, four kinds of
frames in turn:

- ICMP echo requests from the kernel side (answered);
- UDP datagrams from the kernel side to closed ports (port unreachable,
  rate limited);
- ARP requests for graphnet's address from 8192 random on-link senders
  (answered; they overfill the 4096-entry neighbour table, which learns
  what fits and evicts only spoofed entries confirmed 5 s ago or more);
- fragments that never complete: 512 datagrams x 16 fragments of 16
  bytes, 8192 buffers held if nothing bounded them (half the pool;
  reassembly keeps 25% at most and drops the oldest).

Meanwhile ``ping`` in the namespace (the legitimate peer, 5 per second,
known to graphnet from one ping before the flood)
and, every ``interval`` (50 ms), a ``show runtime`` control call whose
answer time is the sample's latency, with the process's RSS and the
buffers in use. After the flood the engine gets up to 8 s to give every
buffer back (reassembly timeout 2 s, unresolved neighbours 3 s).

Reported (one line): ``pps``, frames graphnet read from the TAP per
second; ``sent_pps``, frames the kernel took; control latency
``latency_ms_p50/p99/max``; RSS half a second into the flood (its frames
and threads set up), its largest and the change in %; buffers in use
before, at most during and after; the ping's sent and received and its
longest time between two answered pings (``ping_longest_gap_s``; 0.2
when none is lost); the frames the
kernel dropped at the TAP's full queue (``kernel_tap_drops``: the flood
fills it, and a legitimate request then competes for room as on a
saturated link); the error counters that moved (where the flood went).
``--seconds`` (default 60) bounds the flood; ``--packets`` the frames
(default 200 M, more than any run here reaches).
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time
from typing import Iterator

from graphnet.bench.core import register
from graphnet.bench.tap import _kernel_stats
from graphnet.io import host
from graphnet.wire.inet import inet_checksum

GN, HOST = "10.251.0.2", "10.251.0.1"
PREFIX = 16
GN_MAC, HOST_MAC = "02:fe:51:00:00:02", "02:fe:51:00:00:01"
BCAST = "ff:ff:ff:ff:ff:ff"
ECHO_ID = 0x4242              # the flood's ICMP identifier (ping uses its own)
DEFAULT_SECONDS = 60.0
DEFAULT_FRAMES = 200_000_000


# --- frames -------------------------------------------------------------------------

def _mac(m: str) -> bytes:
    return bytes.fromhex(m.replace(":", ""))


def _ip(src: str, dst: str, proto: int, payload: bytes, ident: int = 0, frag: int = 0) -> bytes:
    h = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xffff, frag, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack(">H", inet_checksum(h)) + h[12:] + payload


def _eth(dst: str, src: str, ethertype: int, body: bytes) -> bytes:
    return _mac(dst) + _mac(src) + struct.pack(">H", ethertype) + body


def _icmp_echo(seq: int, size: int = 56) -> bytes:
    body = struct.pack(">BBHHH", 8, 0, 0, ECHO_ID, seq & 0xffff) + bytes(size)
    return body[:2] + struct.pack(">H", inet_checksum(body)) + body[4:]


def _arp_request(sha: str, spa: str, tpa: str) -> bytes:
    return struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, _mac(sha), socket.inet_aton(spa), bytes(6),
                       socket.inet_aton(tpa))


def flood_frames(seed: int = 1) -> list:
    """The flood's frames, the four kinds in turn (4 x 8192 slots; shorter
    kinds repeat)."""
    rng = random.Random(seed)
    icmp = [_eth(GN_MAC, HOST_MAC, 0x0800, _ip(HOST, GN, 1, _icmp_echo(i), ident=i)) for i in range(256)]
    udp = [_eth(GN_MAC, HOST_MAC, 0x0800,
                _ip(HOST, GN, 17, struct.pack(">HHHH", rng.randrange(1024, 65536), rng.randrange(20000, 60000), 26, 0)
                    + bytes(18), ident=i)) for i in range(256)]
    arp = []
    for i in range(8192):
        mac = "02:fe:52:%02x:%02x:%02x" % (i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff)
        sender = f"10.251.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
        arp.append(_eth(BCAST, mac, 0x0806, _arp_request(mac, sender, GN)))
    frag = [_eth(GN_MAC, HOST_MAC, 0x0800, _ip(HOST, GN, 17, bytes(16), ident=0x1000 + i // 16,
                                              frag=0x2000 | (i % 16) * 2)) for i in range(8192)]
    kinds = (icmp, udp, arp, frag)
    return [kinds[k][i % len(kinds[k])] for i in range(8192) for k in range(4)]


# --- the scenario ---------------------------------------------------------------------

def _need_root() -> None:
    import shutil
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ping"):
        raise RuntimeError("bench flood needs root, /dev/net/tun and iputils ping (TAP, a network namespace)")


@contextlib.contextmanager
def flood_host(buffers: int = 16384) -> Iterator[dict]:
    """A started engine with one TAP to a fresh namespace (see the module
    docstring); yields {engine, tap, ns, producer}. Everything is removed
    afterwards."""
    import uuid

    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    from graphnet.vlib.engine import Engine
    from graphnet.bench.tap import _producer
    with host.temporary_netns("gn-flood") as ns:
        name = f"gnfl{uuid.uuid4().hex[:6]}"
        eng = Engine([ip4_host.NODES], buffers=buffers)
        prod = None
        try:
            dev = TapDevice(eng, name, netns=ns, host_address=f"{HOST}/{PREFIX}", host_mac=HOST_MAC, mac=GN_MAC,
                            rx_mode="interrupt", offloads=False)
            eng.add(dev)
            eng.build()
            ip4_host.set_interface_address(eng, name, f"{GN}/{PREFIX}")
            host.run_in_netns(ns, ["ip", "neigh", "replace", GN, "lladdr", GN_MAC, "dev", name, "nud", "permanent"],
                              check=True, timeout=10)
            eng.set_node_state(_tap_input(eng), "adaptive")
            eng.start()
            prod = _producer(ns, name)
            yield {"engine": eng, "tap": name, "ns": ns, "producer": prod}
        finally:
            if prod is not None:
                prod.close()
            eng.close()


def _tap_input(eng) -> str:
    return next(n.name for n in eng.nodes if n.name.startswith("tap-input"))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _in_use(eng) -> int:
    """Buffers held by packets (not the devices' rx spares, whose number
    follows the traffic): engine.buffer_stats()'s in_use_packets."""
    return eng.buffer_stats()["in_use_packets"]


def run_flood(env: dict, seconds: float, max_frames: int = DEFAULT_FRAMES, interval: float = 0.05,
              settle: float = 8.0) -> dict:
    """Flood for `seconds` (at most max_frames frames), sampling; then wait
    up to `settle` s for the buffers to come back. Returns the figures."""
    from graphnet.bench import tap_raw
    eng = env["engine"]
    # the legitimate peer is known before the flood (its first ping resolves it)
    host.run_in_netns(env["ns"], ["ping", "-n", "-q", "-c", "1", "-W", "2", GN], timeout=10, capture_output=True)
    time.sleep(0.3)                                 # the TAP's rx spares allocated, nothing in flight
    pre = _in_use(eng)
    tap = eng.node_index(_tap_input(eng))
    rx0 = eng.call(eng.main.node_counters)[tap]["vectors"]
    frames = flood_frames()
    sent: dict = {}
    ping = host.popen_in_netns(env["ns"], ["ping", "-n", "-i", "0.2", "-W", "1", "-w", str(max(1, int(seconds))), GN],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    dropped0 = _kernel_stats(env["ns"], env["tap"]).get("tx_dropped", 0)

    def sender():
        sent["written"], sent["failed"] = tap_raw.write_frames_loop(env["producer"].fileno(), frames, max_frames,
                                                                    seconds)

    t_start = time.monotonic()
    th = threading.Thread(target=sender, name="flood-sender", daemon=True)
    th.start()
    lat, rss, bufs = [], [], []
    rss0 = None
    while th.is_alive():
        if rss0 is None and time.monotonic() - t_start >= 0.5:
            rss0 = _rss_bytes()              # steady state: the flood's frames and threads are set up
        t0 = time.monotonic()
        eng.show("runtime")
        lat.append(time.monotonic() - t0)
        rss.append(_rss_bytes())
        bufs.append(eng.buffer_stats()["in_use"])          # a snapshot, from outside the loop
        time.sleep(interval)
    th.join()
    flood_s = time.monotonic() - t_start
    rx = eng.call(eng.main.node_counters)[tap]["vectors"] - rx0
    kernel_dropped = _kernel_stats(env["ns"], env["tap"]).get("tx_dropped", 0) - dropped0
    rss0 = rss0 or (rss[0] if rss else _rss_bytes())
    try:
        out, _ = ping.communicate(timeout=seconds + 10)
    except subprocess.TimeoutExpired:
        ping.kill()
        out, _ = ping.communicate()
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
    seqs = sorted(int(x) for x in re.findall(r"icmp_seq=(\d+) ", out or ""))
    gap = max((b - a for a, b in zip([0] + seqs, seqs + [int(m.group(1)) + 1 if m else 0])), default=0)
    deadline = time.monotonic() + settle
    post = _in_use(eng)
    while post > pre and time.monotonic() < deadline:
        time.sleep(0.1)
        post = _in_use(eng)
    lat.sort()
    counters = eng.call(eng.main.error_counters)
    moved = {f"{node}/{sym}": n for (node, sym, _sev, _d), n in zip(eng.errors, counters) if n}
    return {
        "seconds": round(flood_s, 2), "frames_sent": sent.get("written", 0), "frames_failed": sent.get("failed", 0),
        "frames_received": rx, "pps": rx / flood_s if flood_s else 0.0,
        "sent_pps": sent.get("written", 0) / flood_s if flood_s else 0.0,
        "samples": len(lat),
        "latency_ms_p50": 1e3 * lat[len(lat) // 2] if lat else None,
        "latency_ms_p99": 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
        "latency_ms_max": 1e3 * lat[-1] if lat else None,
        "latencies_ms": [round(1e3 * x, 2) for x in lat],
        "rss_mb_start": rss0 / 1e6, "rss_mb_max": max(rss, default=rss0) / 1e6,
        "rss_change_pct": 100.0 * (max(rss, default=rss0) - rss0) / rss0,
        "buffers_pre": pre, "buffers_max": max(bufs, default=pre), "buffers_post": post,
        "ping_sent": int(m.group(1)) if m else 0, "ping_received": int(m.group(2)) if m else 0,
        "ping_longest_gap_s": round(gap * 0.2, 1),
        "kernel_tap_drops": kernel_dropped,
        "errors": moved,
    }


@register("flood", seconds=DEFAULT_SECONDS)
def flood(opts) -> Iterator[dict]:
    """Mixed flood (ICMP, UDP to closed ports, ARP from random senders, fragments) over a TAP: control latency, RSS, buffers, a legit ping."""
    _need_root()
    with flood_host() as env:
        r = run_flood(env, opts.seconds, opts.packets or DEFAULT_FRAMES)
    r.pop("latencies_ms")
    pps = r.pop("pps")
    yield {"case": "graphnet", "pps": pps, "ns_per_packet": 1e9 / pps if pps else 0.0, **r}
