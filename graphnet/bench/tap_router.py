"""``graphnet bench tap-router``: graphnet routing 64-byte UDP between two
namespaces over two TAPs, against a raw C TAP-to-TAP forwarder on the same
two TAPs and against the Linux kernel forwarding between namespaces over
veth, all in the same run.

Set-up (namespaces created here, removed afterwards; addresses only in them):

- ``graphnet``: namespace A, kernel side ``10.250.1.1/24`` of TAP a,
  graphnet ``10.250.1.2/24``; namespace B, kernel side ``10.250.2.1/24`` of
  TAP b, graphnet ``10.250.2.2/24``. A routes 10.250.2.0/24 via graphnet,
  B routes 10.250.1.0/24 via graphnet. graphnet runs ``ip4_host.NODES``
  (ethernet-input -> ip4-input -> ip4-lookup -> ip4-rewrite ->
  tap-output-b) with both TAPs polled; the kernel sides' MACs are static
  neighbours, so no ARP happens while measuring. A UDP socket listens on
  the destination port in B (no ICMP port unreachable comes back).
- The sender: an AF_PACKET socket in A (PACKET_QDISC_BYPASS) writes
  ``--packets`` (20000) 64-byte UDP frames 10.250.1.1 -> 10.250.2.1 to
  graphnet's MAC in a C loop (``tap_raw.write_loop``: bounded in count and
  time), filling TAP a's queue; then the queue is drained (graphnet
  ``run_until_idle``, or a raw loop). Filling first keeps the sender off
  the CPU while forwarding (on two vCPUs a concurrent sender measures
  itself), as ``tap-xconnect`` does.
- Received: frames counted by B's kernel (rx_packets of TAP b's kernel
  side) over the drain time: ``pps`` is frames received at B per second.
- Raw references on the same two fds (engine not running), each doing a
  router's minimum so that B's kernel accepts and delivers the frames, as
  it does graphnet's: the MAC rewrite and a TTL decrement with an
  incremental checksum (``tap_raw.route_drain_batched``), no checks, no
  lookup. ``raw-route-1`` reads, rewrites and writes one frame at a time;
  ``raw-route`` reads 256, rewrites them, then writes 256. The ratio is
  against the faster of the two.
- ``raw-forward`` (read() one frame, write() it unchanged,
  ``tap_raw.forward_drain``) is reported beside them but is not a
  reference: its frames still carry graphnet's MAC, so B's kernel counts
  them and drops them at once, and each write() costs the kernel less
  than a delivered frame's (``vs_raw_forward`` says how much).
- B's UDP socket is emptied before every run, so each run delivers what
  fits its buffer and drops the rest at the socket.
- ``kernel-veth``: three namespaces S - M - D joined by veth pairs, M with
  net.ipv4.ip_forward=1, the same sender in S writing to M's MAC for a
  destination in D; frames counted at D's veth over the sender's time
  (veth has no queue to fill first: the kernel forwards inside the
  sender's syscalls and softirqs, on the same core; ``sent`` says how many
  were offered).

Every case is bounded: one fill of at most ``--packets`` frames, a drain
of at most 10 s, ``--seconds`` (2) per case in all.
"""
from __future__ import annotations

import socket
import struct
import time
from typing import Iterator

from graphnet.bench.core import Clock, register
from graphnet.bench.tap import _kernel_stats, _need_root, _producer, _ratio, _rounds, _set_txqlen, _uid
from graphnet.io import host

GN_A, HOST_A = "10.250.1.2", "10.250.1.1"
GN_B, HOST_B = "10.250.2.2", "10.250.2.1"
GN_MAC_A, GN_MAC_B = "02:fe:01:00:00:02", "02:fe:02:00:00:02"
HOST_MAC_A, HOST_MAC_B = "02:fe:01:00:00:01", "02:fe:02:00:00:01"
DPORT = 9


def _mac(m: str) -> bytes:
    return bytes.fromhex(m.replace(":", ""))


def udp_frame(dst_mac: str, src_mac: str, src: str, dst: str, dport: int = DPORT) -> bytes:
    """A 64-byte Ethernet/IPv4/UDP frame (no FCS), IPv4 checksum set, UDP
    checksum 0."""
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 50, 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s = sum(struct.unpack(">10H", ip))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    ip = ip[:10] + struct.pack(">H", ~s & 0xffff) + ip[12:]
    udp = struct.pack(">HHHH", 1024, dport, 30, 0) + bytes(22)
    return _mac(dst_mac) + _mac(src_mac) + b"\x08\x00" + ip + udp


def _empty(sock) -> int:
    n = 0
    try:
        while True:
            sock.recv(2048)
            n += 1
    except BlockingIOError:
        return n


def _udp_listener(ns, addr, port):
    from pyroute2 import netns as pnetns
    s = pnetns.create_socket(ns, socket.AF_INET, socket.SOCK_DGRAM, 0, flags=0)
    s.bind((addr, port))
    return s


def _graphnet_and_raw(opts, q: int) -> dict:
    from graphnet.bench import tap_raw
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    from graphnet.vlib.engine import Engine
    frame = udp_frame(GN_MAC_A, HOST_MAC_A, HOST_A, HOST_B)
    with host.temporary_netns("gn-bench") as ns_a, host.temporary_netns("gn-bench") as ns_b:
        u = _uid()
        a, b = f"gnra{u}", f"gnrb{u}"
        eng = Engine([ip4_host.NODES], buffers=32768)
        dev_a = TapDevice(eng, a, netns=ns_a, host_address=f"{HOST_A}/24", host_mac=HOST_MAC_A, mac=GN_MAC_A,
                          rx_mode="polling", offloads=False)
        dev_b = TapDevice(eng, b, netns=ns_b, host_address=f"{HOST_B}/24", host_mac=HOST_MAC_B, mac=GN_MAC_B,
                          rx_mode="polling", offloads=False)
        eng.add([dev_a, dev_b])
        eng.build()
        listener = prod = None
        try:
            ip4_host.set_interface_address(eng, a, f"{GN_A}/24")
            ip4_host.set_interface_address(eng, b, f"{GN_B}/24")
            nbrs = ip4_host.ip4_neighbors(eng)
            nbrs.add(a, HOST_A, HOST_MAC_A, static=True)
            nbrs.add(b, HOST_B, HOST_MAC_B, static=True)
            host.add_route("10.250.2.0/24", via=GN_A, netns=ns_a)
            host.add_route("10.250.1.0/24", via=GN_B, netns=ns_b)
            for ns, ifname, ip, mac in ((ns_a, a, GN_A, GN_MAC_A), (ns_b, b, GN_B, GN_MAC_B)):
                host.run_in_netns(ns, ["ip", "neigh", "replace", ip, "lladdr", mac, "dev", ifname, "nud", "permanent"],
                                  check=True, timeout=10)
            eng.run_until_idle(1)
            listener = _udp_listener(ns_b, HOST_B, DPORT)
            _set_txqlen(ns_a, a, q + 4096)
            prod = _producer(ns_a, a)
            fd_a, fd_b = dev_a.state.fd, dev_b.state.fd
            bufsize = 12 + 2048
            rewrite = _mac(HOST_MAC_B) + _mac(GN_MAC_B)

            listener.setblocking(False)

            def fill(_case):
                tap_raw.drain(fd_a, 65562)
                tap_raw.drain(fd_b, 65562)
                _empty(listener)                    # every run finds the socket empty
                tap_raw.write_loop(prod.fileno(), frame, q, 5.0)

            def graphnet():
                eng.run_until_idle(10)

            cases = {"raw-forward": lambda: tap_raw.forward_drain(fd_a, fd_b, bufsize),
                     "raw-route-1": lambda: tap_raw.route_drain_batched(fd_a, fd_b, bufsize, rewrite, 12, 1),
                     "raw-route": lambda: tap_raw.route_drain_batched(fd_a, fd_b, bufsize, rewrite, 12, 256),
                     "graphnet": graphnet}
            best = _rounds_received(opts, cases, fill, lambda: _kernel_stats(ns_b, b)["rx_packets"])
            if "graphnet" in best:
                # counters graphnet kept on the path (empty: nothing dropped or punted)
                best["graphnet"]["errors"] = _error_counts(eng)
        finally:
            if prod is not None:
                prod.close()
            if listener is not None:
                listener.close()
            eng.close()
    return best


def _error_counts(eng) -> dict:
    """{"node/symbol": count} of the non-zero error counters on the path."""
    counters = eng.call(eng.main.error_counters)
    out = {}
    for node in ("ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite", "ip4-arp"):
        if node not in eng.index:
            continue
        base = eng.error_base[node]
        for i, row in enumerate(eng.nodes[eng.index[node]].error_table()):
            if row[0] != "none" and counters[base + i]:
                out[f"{node}/{row[0]}"] = counters[base + i]
    return out


def _rounds_received(opts, cases: dict, prepare, counter) -> dict:
    """As tap._rounds, but a run's frames are what the destination's kernel
    counted (``counter()`` after minus before)."""
    clock = Clock()
    best: dict = {}
    deadline = time.perf_counter() + opts.seconds * len(cases)
    for r in range(max(1, opts.repeat)):
        if r >= 2 and time.perf_counter() >= deadline:
            break
        for name, fn in cases.items():
            prepare(name)
            before = counter()
            ns = clock.timed(fn)
            frames = counter() - before
            if frames <= 0:
                continue
            pps = frames * 1e9 / ns
            if name not in best or pps > best[name]["pps"]:
                best[name] = {"case": name, "pps": pps, "ns_per_packet": ns / frames, "frames": frames}
    return best


def _kernel_veth(opts, q: int) -> dict:
    """S -veth- M (ip_forward) -veth- D; the sender in S; counted at D."""
    from graphnet.bench import tap_raw
    u = _uid()
    s_if, ms_if, md_if, d_if = f"gnks{u}", f"gnkms{u}", f"gnkmd{u}", f"gnkd{u}"
    with host.temporary_netns("gn-bench") as ns_s, host.temporary_netns("gn-bench") as ns_m, \
            host.temporary_netns("gn-bench") as ns_d:
        host.create_veth(s_if, ms_if, netns=ns_s, peer_netns=ns_m)
        host.create_veth(md_if, d_if, netns=ns_m, peer_netns=ns_d)
        for ifname, ns, cidr, mac in ((s_if, ns_s, f"{HOST_A}/24", HOST_MAC_A), (ms_if, ns_m, f"{GN_A}/24", GN_MAC_A),
                                      (md_if, ns_m, f"{GN_B}/24", GN_MAC_B), (d_if, ns_d, f"{HOST_B}/24", HOST_MAC_B)):
            host.set_link(ifname, ns, mac=mac)
            host.add_address(ifname, cidr, ns)
            host.set_link(ifname, ns, up=True)
        host.run_in_netns(ns_m, ["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=10)
        host.add_route("10.250.2.0/24", via=GN_A, netns=ns_s)
        host.add_route("10.250.1.0/24", via=GN_B, netns=ns_d)
        host.run_in_netns(ns_m, ["ip", "neigh", "replace", HOST_B, "lladdr", HOST_MAC_B, "dev", md_if,
                                 "nud", "permanent"], check=True, timeout=10)
        listener = _udp_listener(ns_d, HOST_B, DPORT)
        prod = _producer(ns_s, s_if)
        frame = udp_frame(GN_MAC_A, HOST_MAC_A, HOST_A, HOST_B)
        sent = {"n": 0}
        try:
            def send():
                sent["n"] = tap_raw.write_loop(prod.fileno(), frame, q, 5.0)[0]

            def counter():
                time.sleep(0.05)                         # let softirqs finish
                return _kernel_stats(ns_d, d_if)["rx_packets"]

            best = _rounds_received(opts, {"kernel-veth": send}, lambda _c: None, counter)
        finally:
            prod.close()
            listener.close()
        if "kernel-veth" in best:
            best["kernel-veth"]["sent"] = sent["n"]
    return best


@register("tap-router")
def tap_router(opts) -> Iterator[dict]:
    """64-byte UDP routed ns A -> graphnet (2 TAPs) -> ns B vs a raw TAP forwarder and kernel veth forwarding."""
    _need_root("tap-router")
    q = opts.packets or 20000
    best = _graphnet_and_raw(opts, q)
    kernel = _kernel_veth(opts, q)
    raws = [best[c] for c in ("raw-route-1", "raw-route") if c in best]     # delivered at B, as graphnet's
    yield from raws
    if "raw-forward" in best:
        yield {**best["raw-forward"], "note": "no rewrite: B's kernel drops the frames; not a reference"}
    if "kernel-veth" in kernel:
        yield kernel["kernel-veth"]
    g = best.get("graphnet")
    if g and "pps" in g:
        ref = max(raws, key=lambda r: r["pps"]) if raws else None
        line = _ratio(g, ref) if ref else dict(g)
        line["target_85pct_of_raw"] = bool(ref) and line["ratio"] >= 0.85
        if "raw-forward" in best:
            line["vs_raw_forward"] = round(g["pps"] / best["raw-forward"]["pps"], 3)
        if "kernel-veth" in kernel:
            line["vs_kernel_veth"] = round(g["pps"] / kernel["kernel-veth"]["pps"], 3)
        yield line
