"""``graphnet bench tap-rx | tap-tx | tap-xconnect | tap-gso``: TAP devices
against the raw syscall limit of the same TAP fd, measured in the same run.

Every bench creates its own network namespaces (removed afterwards) and
puts the kernel side of its TAPs there. The raw references
(``graphnet.bench.tap_raw``) are tight nogil read()/write() loops on the very
fds graphnet's devices own (while the engine is not running), so both sides
pay the same kernel. Runs alternate between the cases and the best run of
each is kept (``--repeat``, ``--seconds`` per case).

``tap-rx``
    The kernel side's queue is filled with ``--packets`` (20000) 64-byte
    frames from an AF_PACKET socket (PACKET_QDISC_BYPASS) before each run,
    then drained: by ``tap-input`` (polling) -> ``null``, or by a raw read()
    loop. Two TAP set-ups: ``plain`` (vnet header, no offloads: one read()
    per frame into a buffer) and ``gso`` (TSO/USO accepted: any frame may
    be a 64 KB super-frame, so every read offers room for one: tap-input's
    readv of one buffer plus a spill area while frames are small); for the
    latter the raw readv over 2 segments (what tap-input offers) and over
    33 (a chain of buffers) are reported as well.
``tap-tx``
    ``pg-input`` -> ``tap-output`` writing ``--packets`` (100000) 64-byte
    frames with a zero virtio-net header, against a raw write() loop of the
    same frame on the same fd. The kernel side drops them (unknown MAC).
``tap-xconnect``
    Two TAPs in two namespaces, cross-connected (tap-input-a ->
    tap-output-b and back), with ``plain`` TAPs (no offloads) and with
    ``gso`` TAPs (offloads on: every read must offer 64 KB). TAP a's queue
    is filled with ``--packets``
    (20000) 64-byte frames, then forwarded until empty, by graphnet
    (polling) or by raw read()/write() loops on the same two fds (frame by
    frame, and 256 reads then 256 writes as graphnet's vectors do). The
    receiving namespace's count of frames (rx_packets of TAP b's kernel
    side) is reported against what both sides forwarded. (Filling first
    keeps the producer off the CPU while forwarding: on two vCPUs a
    concurrent producer measures itself.)
``tap-gso``
    Super-frames (UDP, 63000 bytes of payload, gso_size 1400: 45 segments),
    payload Gbit/s. ``rx-*``: one TAP's queue is filled with 400 of them by
    a UDP socket (UDP_SEGMENT) in its namespace, the kernel's own GSO
    sender, then drained by ``tap-input`` -> ``null`` (31-buffer chains)
    against raw read() into one 64 KB buffer and raw readv() over 33
    buffer-sized slots on the same fd. Filling first keeps the sender off
    the CPU while draining: this is what graphnet takes off a TAP, not an
    end-to-end rate. ``tx-*``: ``gso-source`` (graphnet.bench.gso_source:
    chains built in C, headers written, payload left in the buffers) ->
    ``tap-output`` writes 200 super-frames per run into one TAP, against
    raw write() of the same bytes (virtio-net header + frame, contiguous)
    and raw writev() of them in 2 KB pieces; the kernel runs its receive
    path inside write(), so the sink matters and three are measured:
    ``-drop`` (a MAC that is not the kernel side's: dropped before IP, the
    TAP write alone), ``-gro`` (a UDP socket with UDP_GRO: delivered whole)
    and ``-seg`` (a plain UDP socket: the kernel segments each into 45
    datagrams); ``delivered`` is what the sockets got over what was
    written. Then forwarding: ``*-64k``: TAP a's queue is filled with 400 UDP
    super-frames (63000 bytes of payload, USO, 45 segments each) from a
    socket in namespace a, then drained: read only (``raw-read-64k``),
    forwarded to TAP b by a raw loop (``raw-forward-64k``) or by graphnet
    (tap-input-a reads each into a 31-buffer chain, tap-output-b writes it
    with its virtio-net header); payload Gbit/s, and from node clocks the
    rx and tx Gbit/s of graphnet's two nodes. ``tcp-*``: one TCP stream
    from namespace a to b through the same cross-connect, payload Gbit/s
    at the receiving socket, against the raw cross-connect loop and the
    kernel alone (a veth pair between two namespaces).
"""
from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Iterator

from graphnet.bench.core import Clock, frame64, register
from graphnet.io import host
from graphnet.wire.inet import inet_checksum, inet_sum

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
SO_RCVBUFFORCE = 33


def _ns_socket(ns, family, type_, proto=0):
    from pyroute2 import netns as pnetns
    return pnetns.create_socket(ns, family, type_, proto, flags=0)


def _producer(ns, ifname):
    s = _ns_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    s.bind((ifname, 0))
    return s


def _set_txqlen(ns, ifname, n):
    with host.ipr(ns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], txqlen=n)


def _kernel_stats(ns, ifname) -> dict:
    with host.ipr(ns) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
        return dict(link.get_attr("IFLA_STATS64"))


def _need_root(bench: str) -> None:
    import os
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        raise RuntimeError(f"bench {bench} needs root and /dev/net/tun (TAP devices, network namespaces)")


def _uid() -> str:
    import uuid
    return uuid.uuid4().hex[:6]


def _rounds(opts, cases: dict, prepare=None, clock=None) -> dict:
    """Alternate the cases; each entry is fn() -> (frames, extra dict).
    Keeps the best (highest frames/s) run of each. prepare(name) runs
    untimed before each run."""
    clock = clock or Clock()
    best = {}
    deadline = time.perf_counter() + opts.seconds * len(cases)
    for r in range(max(1, opts.repeat)):
        if r >= 2 and time.perf_counter() >= deadline:
            break
        for name, fn in cases.items():
            if prepare is not None:
                prepare(name)
            box = {}
            ns = clock.timed(lambda: box.setdefault("r", fn()))
            frames, extra = box["r"]
            if frames <= 0:
                continue
            pps = frames * 1e9 / ns
            if name not in best or pps > best[name]["pps"]:
                best[name] = {"case": name, "pps": pps, "ns_per_packet": ns / frames, "frames": frames, **extra}
    return best


def _ratio(line: dict, ref: dict) -> dict:
    return {**line, "ratio": line["pps"] / ref["pps"], "against": ref["case"]}


# --- tap-rx --------------------------------------------------------------------------

@register("tap-rx")
def tap_rx(opts) -> Iterator[dict]:
    """TAP rx: tap-input -> null vs a raw read() loop on the same fd (queue full)."""
    _need_root("tap-rx")
    from graphnet.bench import tap_raw
    from graphnet.io.tap import TapDevice
    from graphnet.vlib.engine import Engine
    q = opts.packets or 20000
    frame = frame64()
    for setup, offloads in (("plain", False), ("gso", True)):
        with host.temporary_netns("gn-bench") as ns:
            name = f"gnbr{_uid()}"
            eng = Engine(buffers=16384)
            dev = TapDevice(eng, name, netns=ns, offloads=offloads, rx_mode="polling", next_node="null")
            eng.add(dev)
            eng.build()
            eng.run_until_idle(1)
            _set_txqlen(ns, name, q + 4096)
            prod = _producer(ns, name)
            fd = dev.state.fd
            hdr_buf = 12 + (65550 if offloads else 2048)
            try:
                def fill(_name):
                    tap_raw.drain(fd, hdr_buf)              # nothing left over from the last run
                    tap_raw.write_loop(prod.fileno(), frame, q)

                def graphnet():
                    before = eng.interfaces.info(name)["rx_packets"]
                    eng.run_until_idle(10)
                    return eng.interfaces.info(name)["rx_packets"] - before, {}

                cases = {f"graphnet-{setup}": graphnet,
                         f"raw-read-{setup}": lambda: (tap_raw.drain(fd, hdr_buf)[0], {})}
                if offloads:
                    # the slot counts tap-input offers per read: 2 (the first buffer
                    # and a spill area; here two equal halves of 64 KB: the kernel's
                    # cost depends on the count) or 33 (a chain of buffers)
                    cases["raw-readv2-gso"] = lambda: (tap_raw.drain_readv(fd, 2, 65550 - 2048 + 12)[0], {})
                    cases["raw-readv33-gso"] = lambda: (tap_raw.drain_readv(fd, 33, 2048)[0], {})
                best = _rounds(opts, cases, fill)
            finally:
                prod.close()
                eng.close()
        ref = best.get(f"raw-read-{setup}")
        g = best.get(f"graphnet-{setup}")
        if ref:
            yield ref
        for case in ("raw-readv2-gso", "raw-readv33-gso"):
            if case in best:
                yield _ratio(best[case], ref) if ref else best[case]
        if g:
            yield _ratio(g, ref) if ref else g


# --- tap-tx ----------------------------------------------------------------------------

@register("tap-tx")
def tap_tx(opts) -> Iterator[dict]:
    """TAP tx: pg -> tap-output vs a raw write() loop on the same fd (64-byte frames)."""
    _need_root("tap-tx")
    from graphnet.bench import tap_raw
    from graphnet.io.pg import PacketGenerator, Stream
    from graphnet.io.tap import TapDevice
    from graphnet.vlib.engine import Engine
    n = opts.packets or 100000
    frame = frame64()
    with host.temporary_netns("gn-bench") as ns:
        name = f"gnbt{_uid()}"
        eng = Engine(buffers=16384)
        dev = TapDevice(eng, name, netns=ns, rx_mode="interrupt", next_node="null")
        pg = PacketGenerator(next_node=dev.output_node, state="polling")
        pg.add_stream(Stream("tx", [frame], count=n, fix_checksums=False))
        eng.add([pg, dev])
        eng.build()
        fd = dev.state.fd
        try:
            def graphnet():
                before = eng.interfaces.info(name)["tx_packets"]
                eng.run_until_idle(10)
                return eng.interfaces.info(name)["tx_packets"] - before, {}

            def prepare(case):
                if case == "graphnet":
                    pg.enable("tx", True)

            best = _rounds(opts, {"raw-write": lambda: (tap_raw.write_loop(fd, bytes(12) + frame, n)[0], {}),
                                  "graphnet": graphnet}, prepare)
            errors = eng.interfaces.info(name)["tx_errors"]
        finally:
            eng.close()
    ref = best.get("raw-write")
    if ref:
        yield ref
    if "graphnet" in best:
        yield {**(_ratio(best["graphnet"], ref) if ref else best["graphnet"]), "tx_errors": errors}


# --- two namespaces, two TAPs, cross-connected ------------------------------------------------

@contextlib.contextmanager
def _xconnect(addresses=(None, None), rx_mode="polling", buffers=32768, offloads=True):
    from graphnet.io.tap import TapDevice
    from graphnet.vlib.engine import Engine
    with host.temporary_netns("gn-bench") as ns_a, host.temporary_netns("gn-bench") as ns_b:
        u = _uid()
        a, b = f"gnxa{u}", f"gnxb{u}"
        eng = Engine(buffers=buffers)
        dev_a = TapDevice(eng, a, netns=ns_a, host_address=addresses[0], rx_mode=rx_mode, next_node=f"tap-output-{b}",
                          offloads=offloads)
        dev_b = TapDevice(eng, b, netns=ns_b, host_address=addresses[1], rx_mode=rx_mode, next_node=f"tap-output-{a}",
                          offloads=offloads)
        eng.add([dev_a, dev_b])
        eng.build()
        try:
            yield eng, (ns_a, a, dev_a), (ns_b, b, dev_b)
        finally:
            eng.close()


@register("tap-xconnect")
def tap_xconnect(opts) -> Iterator[dict]:
    """TAP<->TAP cross-connect, 64-byte frames, counted at the receiving namespace."""
    _need_root("tap-xconnect")
    for setup, offloads in (("plain", False), ("gso", True)):
        yield from _xconnect_64(opts, setup, offloads)


def _xconnect_64(opts, setup, offloads) -> Iterator[dict]:
    from graphnet.bench import tap_raw
    q = opts.packets or 20000
    frame = frame64()
    bufsize = 12 + (65550 if offloads else 2048)     # what a raw reader of this fd must offer
    with _xconnect(offloads=offloads) as (eng, (ns_a, a, dev_a), (ns_b, b, dev_b)):
        _set_txqlen(ns_a, a, q + 4096)
        prod = _producer(ns_a, a)
        fd_a, fd_b = dev_a.state.fd, dev_b.state.fd
        received0 = _kernel_stats(ns_b, b)["rx_packets"]
        forwarded = {"n": 0}

        def fill(_case):
            tap_raw.drain(fd_a, 65562)
            tap_raw.drain(fd_b, 65562)
            tap_raw.write_loop(prod.fileno(), frame, q)

        def graphnet():
            before = eng.interfaces.info(b)["tx_packets"]
            eng.run_until_idle(10)
            n = eng.interfaces.info(b)["tx_packets"] - before
            forwarded["n"] += n
            return n, {}

        def raw():
            n = tap_raw.forward_drain(fd_a, fd_b, bufsize)[0]
            forwarded["n"] += n
            return n, {}

        def raw_batched():
            n = tap_raw.forward_drain_batched(fd_a, fd_b, bufsize, 256)[0]
            forwarded["n"] += n
            return n, {}

        try:
            best = _rounds(opts, {f"raw-forward-{setup}": raw, f"raw-batch256-{setup}": raw_batched,
                                  f"graphnet-{setup}": graphnet}, fill)
        finally:
            prod.close()
        received = _kernel_stats(ns_b, b)["rx_packets"] - received0
    raws = [best[c] for c in (f"raw-forward-{setup}", f"raw-batch256-{setup}") if c in best]
    yield from raws
    # the ratio is against the faster raw loop
    ref = max(raws, key=lambda r: r["pps"]) if raws else None
    if f"graphnet-{setup}" in best:
        line = _ratio(best[f"graphnet-{setup}"], ref) if ref else best[f"graphnet-{setup}"]
        # every frame either side forwarded, as the receiving namespace counted it
        yield {**line, "received_at_b": received, "forwarded": forwarded["n"]}


# --- tap-gso ---------------------------------------------------------------------------------

class _Sink:
    """A TCP server in a namespace counting the bytes it receives."""

    def __init__(self, ns, addr, port):
        self.sock = _ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.bytes = 0
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        buf = bytearray(1 << 20)
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(2)
            with conn:
                while True:
                    try:
                        n = conn.recv_into(buf)
                    except OSError:
                        break
                    if not n:
                        break
                    self.bytes += n

    def close(self):
        self.closed = True
        self.thread.join(3)
        self.sock.close()


def _stream(ns, addr, port, seconds, sink, forward) -> tuple[int, float]:
    """Send TCP from ns to addr:port for `seconds` while forward() runs in
    this thread; returns (payload bytes received in the window, seconds)."""
    cli = _ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    cli.settimeout(5)
    chunk = bytes(1 << 20)
    counted = {}

    def send():
        try:
            cli.connect((addr, port))
            end = time.monotonic() + seconds
            counted["b0"], counted["t0"] = sink.bytes, time.perf_counter()
            while time.monotonic() < end:
                cli.sendall(chunk)
            counted["b1"], counted["t1"] = sink.bytes, time.perf_counter()
        except OSError:
            pass
        finally:
            cli.close()

    t = threading.Thread(target=send)
    t.start()
    forward()
    t.join(seconds + 5)
    if "b1" not in counted:
        return 0, 1.0
    return counted["b1"] - counted["b0"], counted["t1"] - counted["t0"]


UDP_SEGMENT = 103
UDP_GRO = 104
GSO_PAYLOAD = 63000              # UDP payload per super-frame (45 segments of 1400)


def _gso_64k(opts, clock) -> Iterator[dict]:
    """UDP super-frames queued in TAP a by the kernel, then drained: read
    only (raw), forwarded to TAP b (raw loop, graphnet cross-connect)."""
    from graphnet.bench import tap_raw
    q = 400
    with _xconnect(("10.250.0.1/24", "10.250.0.2/24")) as (eng, (ns_a, a, dev_a), (ns_b, b, dev_b)):
        _set_txqlen(ns_a, a, q + 256)
        with host.ipr(ns_a) as ipr:
            ipr.neigh("add", dst="10.250.0.9", lladdr="02:fe:00:00:00:09", ifindex=ipr.link_lookup(ifname=a)[0],
                      state=0x80)
        tx = _ns_socket(ns_a, socket.AF_INET, socket.SOCK_DGRAM)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 20)
        tx.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, 1400)
        payload = bytes(GSO_PAYLOAD)
        fd_a, fd_b = dev_a.state.fd, dev_b.state.fd
        in_a, out_b = eng.index[dev_a.input_node], eng.index[dev_b.output_node]
        node_ns = {}

        def fill(_case):
            tap_raw.drain(fd_a, 65562)
            for _ in range(q):
                tx.sendto(payload, ("10.250.0.9", 9))
            eng.clear_runtime()

        def graphnet():
            before = eng.interfaces.info(a)["rx_packets"]
            eng.run_until_idle(10)
            c = eng.main.node_counters()
            n = eng.interfaces.info(a)["rx_packets"] - before
            node_ns["rx"] = clock.to_ns(c[in_a]["clocks"]) / max(1, c[in_a]["vectors"])
            node_ns["tx"] = clock.to_ns(c[out_b]["clocks"]) / max(1, c[out_b]["vectors"])
            return n, {"rx_gbps": round(GSO_PAYLOAD * 8 / node_ns["rx"], 1),
                       "tx_gbps": round(GSO_PAYLOAD * 8 / node_ns["tx"], 1)}

        try:
            best = _rounds(opts, {
                "raw-read-64k": lambda: (tap_raw.drain(fd_a, 65562)[0], {}),
                "raw-forward-64k": lambda: (tap_raw.forward_drain(fd_a, fd_b, 65562)[0], {}),
                "graphnet-64k": graphnet,
            }, fill, clock)
            gso_rx, gso_tx = dev_a.stats()["rx_gso_frames"], dev_b.stats()["tx_gso_frames"]
        finally:
            tx.close()
    for case in ("raw-read-64k", "raw-forward-64k", "graphnet-64k"):
        if case in best:
            line = {**best[case], "gbps": round(best[case]["pps"] * GSO_PAYLOAD * 8 / 1e9, 1)}
            if case == "graphnet-64k":
                if "raw-forward-64k" in best:
                    line = _ratio(line, best["raw-forward-64k"])
                line.update(rx_gso_frames=gso_rx, tx_gso_frames=gso_tx)
            yield line


def _udp_gso_frame(dst_mac: str, src_mac: str, src: str, dst: str, dport: int, payload: int) -> bytes:
    """An Ethernet/IPv4/UDP super-frame with `payload` bytes, laid out for
    checksum offload: the UDP checksum field holds the folded pseudo-header
    sum (CHECKSUM_PARTIAL), the kernel completes it per segment."""
    s_ip, d_ip = socket.inet_aton(src), socket.inet_aton(dst)
    udp_len = 8 + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0, s_ip, d_ip)
    ip = ip[:10] + struct.pack(">H", inet_checksum(ip)) + ip[12:]
    pseudo = inet_sum(s_ip + d_ip + struct.pack(">HH", 17, udp_len))
    udp = struct.pack(">HHHH", 4000, dport, udp_len, pseudo)
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + ip + udp + bytes(payload)


def _vnet_udp_gso(gso_size: int) -> bytes:
    """The 12-byte virtio-net header of such a frame (NEEDS_CSUM, GSO_UDP_L4)."""
    return struct.pack("<BBHHHHH", 1, 5, 42, gso_size, 34, 6, 0)


def _gbps(line: dict, payload: int = GSO_PAYLOAD) -> dict:
    return {**line, "gbps": round(line["pps"] * payload * 8 / 1e9, 1)}


def _gso_rx(opts, clock) -> Iterator[dict]:
    """rx: the kernel queues `q` UDP super-frames (63000 bytes of payload,
    USO: one 63 KB skb per sendto) in one TAP; then they are drained by
    tap-input -> null, or by raw read()/readv() loops on the same fd."""
    from graphnet.bench import tap_raw
    from graphnet.io.tap import TapDevice
    from graphnet.vlib.buffer import BUFFER_STRIDE
    from graphnet.vlib.engine import Engine
    q = 400
    with host.temporary_netns("gn-bench") as ns:
        name = f"gngr{_uid()}"
        eng = Engine(buffers=32768)
        dev = TapDevice(eng, name, netns=ns, host_address="10.252.0.1/24", rx_mode="polling", next_node="null")
        eng.add(dev)
        eng.build()
        _set_txqlen(ns, name, q + 256)
        with host.ipr(ns) as ipr:
            ipr.neigh("add", dst="10.252.0.9", lladdr="02:fe:00:00:00:09", ifindex=ipr.link_lookup(ifname=name)[0],
                      state=0x80)
        tx = _ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 20)
        tx.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, 1400)
        payload = bytes(GSO_PAYLOAD)
        fd = dev.state.fd
        inp = eng.index[dev.input_node]
        node = {}

        def fill(_case):
            tap_raw.drain(fd, 65562)
            for _ in range(q):
                tx.sendto(payload, ("10.252.0.9", 9))
            eng.clear_runtime()

        def graphnet():
            before = eng.interfaces.info(name)["rx_packets"]
            eng.run_until_idle(10)
            c = eng.main.node_counters()[inp]
            node["ns"] = clock.to_ns(c["clocks"]) / max(1, c["vectors"])
            return eng.interfaces.info(name)["rx_packets"] - before, {
                "tap_input_ns_per_frame": round(node["ns"]), "tap_input_gbps": round(GSO_PAYLOAD * 8 / node["ns"], 1)}

        try:
            eng.run_until_idle(1)
            best = _rounds(opts, {
                "rx-raw-read-64k": lambda: (tap_raw.drain(fd, 65562)[0], {}),
                "rx-raw-readv-64k": lambda: (tap_raw.drain_readv(fd, 33, 2048, 0, BUFFER_STRIDE)[0], {}),
                "rx-graphnet-64k": graphnet,
            }, fill, clock)
            st = dev.stats()
        finally:
            tx.close()
            eng.close()
    ref = best.get("rx-raw-read-64k")
    for case in ("rx-raw-read-64k", "rx-raw-readv-64k", "rx-graphnet-64k"):
        if case in best:
            line = _gbps(best[case])
            if case != "rx-raw-read-64k" and ref:
                line = _ratio(line, ref)
            if case == "rx-graphnet-64k":
                line.update(rx_gso_frames=st["rx_gso_frames"], rx_chained=st["rx_chained"],
                            largest_frame=st["rx_max_frame"])
            yield line


def _gso_tx(opts, clock) -> Iterator[dict]:
    """tx: `n` UDP super-frames (63000 bytes of payload, gso_size 1400) per
    run written into one TAP, by gso-source -> tap-output (chains of 31
    buffers, one writev() each, virtio-net header from the frame's headers)
    or by raw write()/writev() loops of the same bytes on the same fd. The
    kernel takes each through its receive path inside the write() (tun has
    no queue on that side), so three sinks: ``-drop`` frames to a MAC that
    is not the kernel side's (dropped by the kernel before IP: the cost of
    the TAP write itself, as in tap-tx), ``-gro`` delivered to a UDP socket
    with UDP_GRO (the super-frame is queued whole), ``-seg`` delivered to a
    plain UDP socket (the kernel segments it into 45 datagrams). The
    sockets are drained between runs (not timed) and the bytes they got
    are reported (``delivered``) against what was written."""
    from graphnet.bench import tap_raw
    from graphnet.bench.gso_source import GsoSource
    from graphnet.io.tap import TapDevice
    from graphnet.vlib.engine import Engine
    n = 200
    host_mac = "02:fe:00:00:01:01"
    results = {}
    with host.temporary_netns("gn-bench") as ns:
        name = f"gngt{_uid()}"
        eng = Engine(buffers=32768)
        dev = TapDevice(eng, name, netns=ns, host_address="10.252.1.1/24", host_mac=host_mac, rx_mode="interrupt",
                        next_node="null")
        gn_mac = eng.interfaces.info(name)["mac"]
        frames = {kind: _udp_gso_frame(dst, gn_mac, "10.252.1.9", "10.252.1.1", port, GSO_PAYLOAD)
                  for kind, dst, port in (("drop", "02:fe:00:00:0e:ee", 5203), ("gro", host_mac, 5201),
                                          ("seg", host_mac, 5202))}
        srcs = {kind: GsoSource(frames[kind], 1400, dev.output_node, name=f"gso-source-{kind}")
                for kind in frames}
        eng.add([dev, *srcs.values()])
        eng.build()
        out = eng.index[dev.output_node]
        fd = dev.state.fd
        socks = {}
        for kind, port in (("gro", 5201), ("seg", 5202)):
            r = _ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
            r.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 512 << 20)
            if kind == "gro":
                r.setsockopt(socket.IPPROTO_UDP, UDP_GRO, 1)
            r.bind(("10.252.1.1", port))
            r.setblocking(False)
            socks[kind] = r
        vnet = _vnet_udp_gso(1400)
        delivered = {}
        written = {}
        last = {"case": None}
        buf = bytearray(1 << 17)

        def drain_sockets():
            got = 0
            for r in socks.values():
                while True:
                    try:
                        got += r.recv_into(buf)
                    except BlockingIOError:
                        break
            if last["case"] is not None:
                delivered[last["case"]] = delivered.get(last["case"], 0) + got

        def prepare(case):
            drain_sockets()
            last["case"] = case
            if case.startswith("tx-graphnet"):
                srcs[case.rsplit("-", 1)[1]].add(n)
            eng.clear_runtime()

        def counted(case, frames_done):
            written[case] = written.get(case, 0) + frames_done
            return frames_done

        def graphnet(kind):
            case = f"tx-graphnet-64k-{kind}"

            def run():
                before = eng.interfaces.info(name)["tx_packets"]
                eng.run_until_idle(10)
                c = eng.main.node_counters()[out]
                ns_frame = clock.to_ns(c["clocks"]) / max(1, c["vectors"])
                done = counted(case, eng.interfaces.info(name)["tx_packets"] - before)
                return done, {"tap_output_ns_per_frame": round(ns_frame),
                              "tap_output_gbps": round(GSO_PAYLOAD * 8 / ns_frame, 1)}
            return run

        def raw(kind, scattered):
            case = f"tx-raw-{'writev' if scattered else 'write'}-64k-{kind}"
            data = vnet + frames[kind]

            def run():
                if scattered:
                    w, _ = tap_raw.writev_loop(fd, data, 12, 2048, n)
                else:
                    w, _ = tap_raw.write_loop(fd, data, n)
                return counted(case, w), {}
            return run

        try:
            eng.run_until_idle(1)
            for kind in ("drop", "gro", "seg"):
                cases = {f"tx-raw-write-64k-{kind}": raw(kind, False),
                         f"tx-raw-writev-64k-{kind}": raw(kind, True),
                         f"tx-graphnet-64k-{kind}": graphnet(kind)}
                results[kind] = _rounds(opts, cases, prepare, clock)
                drain_sockets()
                last["case"] = None
            st = dev.stats()
            errors = eng.interfaces.info(name)["tx_errors"] + eng.interfaces.info(name)["tx_drops"]
        finally:
            for r in socks.values():
                r.close()
            eng.close()
    for kind in ("drop", "gro", "seg"):
        best = results.get(kind, {})
        ref = best.get(f"tx-raw-write-64k-{kind}")
        for case in (f"tx-raw-write-64k-{kind}", f"tx-raw-writev-64k-{kind}", f"tx-graphnet-64k-{kind}"):
            if case not in best:
                continue
            line = _gbps(best[case])
            if written.get(case) and kind != "drop":
                line["delivered"] = round(delivered.get(case, 0) / (written[case] * GSO_PAYLOAD), 3)
            if case != f"tx-raw-write-64k-{kind}" and ref:
                line = _ratio(line, ref)
            if case.startswith("tx-graphnet"):
                line.update(tx_gso_frames=st["tx_gso_frames"], tx_errors_and_drops=errors)
            yield line


@register("tap-gso")
def tap_gso(opts) -> Iterator[dict]:
    """GSO super-frames through TAPs: rx and tx of one TAP, forwarding, TCP; payload Gbit/s vs raw loops."""
    _need_root("tap-gso")
    clock = Clock()
    yield from _gso_rx(opts, clock)
    yield from _gso_tx(opts, clock)
    yield from _gso_64k(opts, clock)
    yield from _gso_tcp(opts)


def _gso_tcp(opts) -> Iterator[dict]:
    """One TCP stream a -> b through the cross-connect, against the raw
    cross-connect loop and against a veth pair (the kernel alone)."""
    from graphnet.bench import tap_raw
    seconds = min(1.0, opts.seconds / 2)
    results = {}
    with _xconnect(("10.250.0.1/24", "10.250.0.2/24")) as (eng, (ns_a, a, dev_a), (ns_b, b, dev_b)):
        sink = _Sink(ns_b, "10.250.0.2", 5201)
        fd_a, fd_b = dev_a.state.fd, dev_b.state.fd
        try:
            # warm up: ARP, connection set-up paths
            _stream(ns_a, "10.250.0.2", 5201, 0.2, sink, lambda: eng.run(0.3))
            for r in range(max(1, min(opts.repeat, 3))):
                for case in ("tcp-raw-xconnect", "tcp-graphnet"):
                    if case == "tcp-graphnet":
                        rx0 = eng.interfaces.info(a)["rx_packets"]
                        nbytes, dt = _stream(ns_a, "10.250.0.2", 5201, seconds, sink,
                                             lambda: eng.run(seconds + 0.3))
                        n_frames = eng.interfaces.info(a)["rx_packets"] - rx0
                    else:
                        box = {}
                        nbytes, dt = _stream(ns_a, "10.250.0.2", 5201, seconds, sink,
                                             lambda: box.setdefault("r", tap_raw.xconnect(fd_a, fd_b, 65562,
                                                                                          seconds + 0.3)))
                        n_frames = box["r"][0]
                    gbps = nbytes * 8 / dt / 1e9
                    if case not in results or gbps > results[case]["gbps"]:
                        results[case] = {"gbps": gbps, "bytes": nbytes, "seconds": dt, "frames": n_frames}
        finally:
            sink.close()
    # The kernel alone: a veth pair between two namespaces.
    with host.temporary_netns("gn-bench") as ns_c, host.temporary_netns("gn-bench") as ns_d:
        u = _uid()
        host.create_veth(f"gnva{u}", f"gnvb{u}", netns=ns_c, peer_netns=ns_d)
        host.add_address(f"gnva{u}", "10.251.0.1/24", ns_c)
        host.add_address(f"gnvb{u}", "10.251.0.2/24", ns_d)
        host.set_link(f"gnva{u}", ns_c, up=True)
        host.set_link(f"gnvb{u}", ns_d, up=True)
        sink = _Sink(ns_d, "10.251.0.2", 5201)
        try:
            for r in range(max(1, min(opts.repeat, 3))):
                nbytes, dt = _stream(ns_c, "10.251.0.2", 5201, seconds, sink, lambda: time.sleep(seconds + 0.3))
                gbps = nbytes * 8 / dt / 1e9
                if "tcp-kernel-veth" not in results or gbps > results["tcp-kernel-veth"]["gbps"]:
                    results["tcp-kernel-veth"] = {"gbps": gbps, "bytes": nbytes, "seconds": dt, "frames": 0}
        finally:
            sink.close()
    lines = {}
    for case, r in results.items():
        # pps: payload in 1448-byte (MSS) segments per second, so the three compare
        segs = r["bytes"] / 1448 / r["seconds"] if r["seconds"] else 0
        line = {"case": case, "pps": segs, "ns_per_packet": 1e9 / segs if segs else 0.0,
                "gbps": round(r["gbps"], 2)}
        if r["frames"]:
            line["super_frames_per_s"] = round(r["frames"] / r["seconds"])
            line["avg_frame_bytes"] = round(r["bytes"] / r["frames"])
        lines[case] = line
    for case in ("tcp-kernel-veth", "tcp-raw-xconnect"):
        if case in lines:
            yield lines[case]
    if "tcp-graphnet" in lines:
        g = lines["tcp-graphnet"]
        if "tcp-raw-xconnect" in lines and lines["tcp-raw-xconnect"]["pps"]:
            g = _ratio(g, lines["tcp-raw-xconnect"])
        if "tcp-kernel-veth" in lines and lines["tcp-kernel-veth"]["pps"]:
            g["vs_kernel_veth"] = round(lines["tcp-graphnet"]["pps"] / lines["tcp-kernel-veth"]["pps"], 3)
        yield g
