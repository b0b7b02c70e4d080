"""A SYN flood of 100,000 SYNs against graphnet's echo server over a TAP
(issue 13): the SYNs are built once from a Scapy template (source address
and port, ISN and checksums patched per frame) and written by an
AF_PACKET socket on the TAP's kernel side in the test's own namespace:
one send() per frame, a few hundred thousand a second from Python, where
Scapy's own sendp() does a few thousand. They cross the TAP as a real
flood would; pg would skip the TAP and the kernel.

The spoofed sources are 10.232.0.100-115 (inside the namespace's /24),
ports 1024 upwards, each 4-tuple once; graphnet knows them by a static
neighbour entry pointing at a MAC nobody has, so its SYN-ACKs go back
over the TAP and the kernel drops them (not its MAC): no RST comes back
to free the backlog, as with a real spoofed flood.

What must hold: graphnet's half-open connections stay at the backlog
(1024), the rest get SYN cookies (counted), the buffers in use by
packets stay small and go back to the pool (the engine fixture's leak
check at teardown), and kernel connect()s made meanwhile from the
namespace's real address complete (on a cookie) and echo their bytes.
"""
import errno
import hashlib
import os
import socket
import struct
import threading
import time

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from graphnet.nodes import ip4_host
from graphnet.testing.helpers import ns_socket
from graphnet.testing.tcp import GN, PORT, kernel_echo, stats
from graphnet.transport import tcp4
from graphnet.wire import tcp as wt

pytestmark = pytest.mark.privileged(tun=True)

N_SYNS = 100_000
N_SOURCES = 16
SPOOF_MAC = "02:00:00:00:99:99"
MAX_SECONDS = 30                          # the flood's own time bound (it takes about 1 s here)


def _spoofed(i):
    """Source address and port of SYN i: every 4-tuple once."""
    return f"10.232.0.{100 + i % N_SOURCES}", 1024 + i // N_SOURCES


def syn_frames(gn_mac, n, seed=1):
    """n SYN frames (bytes) to GN:PORT from the spoofed sources, with the
    options a Linux client sends; built from one Scapy template."""
    import random
    rnd = random.Random(seed)
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
    ips = {}
    for k in range(N_SOURCES):
        src, _ = _spoofed(k)
        p = Ether(src=SPOOF_MAC, dst=gn_mac) / IP(src=src, dst=GN, id=0, flags="DF") / TCP(
            sport=1, dport=PORT, flags="S", window=64240, options=opts)
        ips[k] = bytes(p)                 # header with this source's IP checksum
    gn = int.from_bytes(socket.inet_aton(GN), "big")
    frames = []
    for i in range(n):
        src, sport = _spoofed(i)
        f = bytearray(ips[i % N_SOURCES])
        tcp = memoryview(f)[34:]
        struct.pack_into("!H", f, 34, sport)
        struct.pack_into("!I", f, 34 + 4, rnd.getrandbits(32))                # ISN
        struct.pack_into("!I", f, 34 + 28, rnd.getrandbits(32))          # TSval: options MSS 4, SAckOK 2, TS kind+len
        struct.pack_into("!H", f, 34 + 16, 0)
        struct.pack_into("!H", f, 34 + 16, wt.checksum(int.from_bytes(socket.inet_aton(src), "big"), gn, tcp))
        frames.append(bytes(f))
    return frames


def flood(ns, ifname, frames, syns_seen, want, deadline, batch=256):
    """Write frames through an AF_PACKET socket on ifname (in ns) until
    graphnet has seen `want` SYNs: `batch` at a time, each once graphnet
    has read all but one batch of those before (the TAP's queue holds
    about 500 frames and drops the rest). Bounded: each frame once, and
    until deadline. Returns the frames written."""
    s = ns_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, 0)       # protocol 0: sends only, receives nothing
    s.bind((ifname, 0))
    sent = 0
    base = syns_seen()
    try:
        while sent < len(frames) and syns_seen() - base < want and time.monotonic() < deadline:
            while syns_seen() - base < sent - batch and time.monotonic() < deadline:
                time.sleep(0.0005)
            for f in frames[sent:sent + batch]:
                try:
                    s.send(f)
                except OSError as e:              # ENOBUFS: the device's queue is full: lost, as on a wire
                    if e.errno != errno.ENOBUFS:
                        raise
                sent += 1
    finally:
        s.close()
    return sent


def test_100k_syn_flood_gets_cookies_and_real_clients_still_connect(echo):
    eng, ns, app, ifname = echo
    gn_mac = eng.call(lambda: eng.interfaces.info(ifname)["mac"])
    nb = ip4_host.ip4_neighbors(eng)
    for k in range(N_SOURCES):
        eng.call(lambda k=k: nb.add(ifname, _spoofed(k)[0], SPOOF_MAC, static=True))
    t = tcp4.transport(eng)
    listener = lambda: eng.call(t.listeners)[0]                # noqa: E731
    backlog = listener()["backlog"]
    frames = syn_frames(gn_mac, N_SYNS + N_SYNS // 10)     # spares for the few the TAP drops

    done = threading.Event()
    peak = {"half_open": 0, "connections": 0, "in_use_packets": 0}
    real = {"ok": 0, "during": 0, "errors": []}

    def sample():                          # memory while the flood runs
        while not done.is_set():
            lst, st, bs = listener(), stats(eng), eng.buffer_stats()
            peak["half_open"] = max(peak["half_open"], lst["half_open"])
            peak["connections"] = max(peak["connections"], st["connections"])
            peak["in_use_packets"] = max(peak["in_use_packets"], bs["in_use_packets"])
            time.sleep(0.02)

    def clients():                         # real connects from the namespace's own address meanwhile
        payload = os.urandom(32 << 10)
        while not done.is_set() or real["ok"] < 10:
            during = not done.is_set()         # started while SYNs were still being written
            c0 = time.monotonic()
            try:
                got = kernel_echo(ns, payload)
                assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
                real["ok"] += 1
                real["during"] += during
                real.setdefault("ms", []).append(round((time.monotonic() - c0) * 1000))
            except (OSError, AssertionError) as e:
                real["errors"].append(repr(e))
                return

    threads = [threading.Thread(target=sample), threading.Thread(target=clients)]
    for th in threads:
        th.start()
    t0 = time.monotonic()
    try:
        sent = flood(ns, ifname, frames, lambda: listener()["syns"] - real["ok"], N_SYNS, t0 + MAX_SECONDS)
    finally:
        flood_s = time.monotonic() - t0
        done.set()
        for th in threads:
            th.join(60)
    lst, st = listener(), stats(eng)
    print(f"\nflood: {sent} SYNs written in {flood_s:.2f} s; listener {lst}; stats: cookies_sent {st['cookies_sent']}, "
          f"timers_active {st['timers_active']}; real connects {real['ok']} ({real['during']} begun during the "
          f"flood, ms each {real.get('ms')}); peaks {peak}")
    assert not real["errors"], (real["errors"], eng.show("errors"))
    assert lst["syns"] >= N_SYNS
    # memory: state only for the backlog; the rest answered with cookies and forgotten
    assert peak["half_open"] <= backlog and lst["half_open"] <= backlog
    assert peak["connections"] <= backlog + 2                 # + the real client's (one at a time)
    assert st["timers_active"] <= backlog + 2
    assert st["cookies_sent"] >= N_SYNS - backlog
    assert peak["in_use_packets"] < eng.buffer_stats()["total"] // 8
    # the real clients: every one connected and echoed its bytes, most on a cookie (a
    # SYN that finds a slot freed, by a real connection or an expired half-open, gets one)
    assert real["ok"] >= 10 and real["during"] >= 1
    assert lst["cookies_ok"] >= 1
