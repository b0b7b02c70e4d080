"""``graphnet bench link-flap``: how soon forwarding resumes after a link
comes back up, graphnet against the Linux kernel as the router.

Namespace A pings namespace B every 10 ms through a router; the router's
link towards B is set down for 0.3 s and up again, ``--repeat`` times
(default 10 here). Measured per flap: the time from the moment ``ip link
set ... up`` returned to the first echo reply A receives (``ping -D``
timestamps), which includes the router resolving B again (its neighbours
were flushed on down).

  - ``graphnet``: A -- TAP -- graphnet -- AF_PACKET on a veth end in R -- B
    (rx-mode interrupt), flapping that veth end in R;
  - ``kernel-router`` (the reference): A -- veth -- namespace K with
    ip_forward -- veth -- B, flapping K's end towards B.

Columns: ``ns_per_packet`` is the median up-to-first-reply time in ns,
``pps`` its inverse (recoveries per second: higher is better, so
``ratio`` > 1 means graphnet resumed sooner than the kernel); ``max_ms``
and ``flaps`` in the details. Needs root; every namespace is made here
with a unique name and removed afterwards.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import threading
import time
from typing import Iterator

from graphnet.bench.core import register
from graphnet.bench.tap import _need_root, _uid
from graphnet.io import host

GN_A, HOST_A = "10.251.1.1", "10.251.1.2"
GN_B, HOST_B = "10.251.2.1", "10.251.2.2"


def _ip(ns, *args):
    subprocess.run(["ip", "-n", ns, *args], check=True, timeout=10)


class Pinger:
    """The kernel's ``ping -D`` in namespace `ns` every `interval` s in the
    background; ``replies`` are their wall-clock times (used by the bench
    and by tests/io/test_link_events.py)."""

    def __init__(self, ns, dst, seconds, interval=0.01):
        # No -w: with a deadline, ping exits at the first ICMP error (the
        # kernel router answers "net unreachable" while its link is down).
        # Stopped by stop(); `seconds` bounds it should the caller fail.
        self.proc = host.popen_in_netns(ns, ["timeout", str(int(seconds) + 1), "ping", "-n", "-D", "-i",
                                             str(interval), "-W", "1", dst],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.replies = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            m = re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line)
            if m:
                self.replies.append(float(m.group(1)))

    def first_after(self, t, timeout=0.0):
        """The first reply later than wall time t, waiting up to `timeout` s; or None."""
        end = time.monotonic() + timeout
        while True:
            r = next((x for x in list(self.replies) if x > t), None)
            if r is not None or time.monotonic() >= end:
                return r
            time.sleep(0.002)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.thread.join(5)
        self.proc.stdout.close()


def _flaps(pinger, ns, ifname, n) -> list:
    out = []
    for _ in range(n):
        _ip(ns, "link", "set", ifname, "down")
        time.sleep(0.3)
        _ip(ns, "link", "set", ifname, "up")
        t_up = time.time()
        r = pinger.first_after(t_up, timeout=5.0)
        out.append(r - t_up if r is not None else float("inf"))
        time.sleep(0.1)
    return out


def _graphnet(n) -> list:
    from graphnet.io.af_packet import AfPacketDevice
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    from graphnet.vlib.engine import Engine
    u = _uid()
    a, r, b = f"gn-flap-{u}a", f"gn-flap-{u}r", f"gn-flap-{u}b"
    vr, vb = f"gnfr{u}", f"gnfb{u}"
    for ns in (a, r, b):
        host.create_netns(ns)
    eng = None
    try:
        _ip(r, "link", "add", vr, "type", "veth", "peer", "name", vb, "netns", b)
        _ip(r, "link", "set", vr, "up")
        _ip(b, "link", "set", vb, "up")
        _ip(b, "addr", "add", f"{HOST_B}/24", "dev", vb)
        _ip(b, "route", "add", "default", "via", GN_B)
        eng = Engine([ip4_host.NODES], buffers=4096)
        tap = TapDevice(eng, f"gnft{u}", netns=a, host_address=f"{HOST_A}/24")
        afp = AfPacketDevice(eng, vr, netns=r)
        eng.add([tap, afp])
        eng.build()
        ip4_host.set_interface_address(eng, tap.name, f"{GN_A}/24")
        ip4_host.set_interface_address(eng, afp.name, f"{GN_B}/24")
        _ip(a, "route", "add", "default", "via", GN_A)
        eng.start()
        pinger = Pinger(a, HOST_B, n * 6 + 5)
        try:
            if pinger.first_after(0, timeout=5.0) is None:
                raise RuntimeError("link-flap: no reply through graphnet before the first flap")
            return _flaps(pinger, r, vr, n)
        finally:
            pinger.stop()
    finally:
        if eng is not None:
            eng.close()
        for ns in (a, r, b):
            host.delete_netns(ns)


def _kernel(n) -> list:
    u = _uid()
    a, k, b = f"gn-flap-{u}a", f"gn-flap-{u}k", f"gn-flap-{u}b"
    ka, kb = f"gnka{u}", f"gnkb{u}"
    for ns in (a, k, b):
        host.create_netns(ns)
    try:
        _ip(k, "link", "add", ka, "type", "veth", "peer", "name", "eth0", "netns", a)
        _ip(k, "link", "add", kb, "type", "veth", "peer", "name", "eth0", "netns", b)
        for ns, dev, addr, gw in ((a, "eth0", HOST_A, GN_A), (b, "eth0", HOST_B, GN_B)):
            _ip(ns, "link", "set", dev, "up")
            _ip(ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip(ns, "route", "add", "default", "via", gw)
        for dev, addr in ((ka, GN_A), (kb, GN_B)):
            _ip(k, "link", "set", dev, "up")
            _ip(k, "addr", "add", f"{addr}/24", "dev", dev)
        host.run_in_netns(k, ["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=10)
        pinger = Pinger(a, HOST_B, n * 6 + 5)
        try:
            if pinger.first_after(0, timeout=5.0) is None:
                raise RuntimeError("link-flap: no reply through the kernel router before the first flap")
            return _flaps(pinger, k, kb, n)
        finally:
            pinger.stop()
    finally:
        for ns in (a, k, b):
            host.delete_netns(ns)


def _line(case, times) -> dict:
    med = statistics.median(times)
    return {"case": case, "pps": 1.0 / med if med > 0 else 0.0, "ns_per_packet": med * 1e9,
            "median_ms": med * 1e3, "max_ms": max(times) * 1e3, "flaps": len(times)}


@register("link-flap")
def link_flap(opts) -> Iterator[dict]:
    """Time from 'ip link set up' to the first forwarded ping reply: graphnet (AF_PACKET) vs the kernel router."""
    _need_root("link-flap")
    n = max(1, min(opts.repeat, 10) if opts.repeat != 100 else 10)
    kernel = _line("kernel-router", _kernel(n))
    gn = _line("graphnet", _graphnet(n))
    yield kernel
    yield {**gn, "ratio": kernel["ns_per_packet"] / gn["ns_per_packet"] if gn["ns_per_packet"] else 0.0,
           "against": "kernel-router"}
