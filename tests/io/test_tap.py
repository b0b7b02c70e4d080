"""TAP interfaces against the kernel's TAP driver (privileged: root).

Every test creates its own network namespaces (unique names, removed
afterwards) and uses only addresses inside them; the kernel side of each
TAP lives in such a namespace. Peers are the kernel's own stack: AF_PACKET
sockets and TCP/UDP sockets opened inside the namespaces (pyroute2's
``netns.create_socket``), no processes are started except one capability-
less interpreter for the privilege test. Bad input and a full kernel queue
are driven through a datagram socketpair adopted as the device's fd, which
behaves as a TAP fd does (one frame per read/write, EAGAIN when full).

Every engine is closed and leak-checked by the engine_factory fixture.
"""
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest

from graphnet.io import host
from graphnet.io.capture import Capture
from graphnet.io.device import DeviceError
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.vlib.buffer import BUFFER_STRIDE
from graphnet.vlib.node import PythonNode
from graphnet.testing.helpers import kernel_tcp_transfer, ns_socket, packet_socket, SetTx, loop_cpu, wait_for, unique_ifname as ifname

from graphnet.io import tap
TapDevice = tap.TapDevice

pytestmark = pytest.mark.privileged

MARK_TYPE = 0x88b5           # IEEE local experimental ethertype: our test frames
F_NEXT_PRESENT, F_GSO, F_L4_CSUM = 1, 1 << 3, 1 << 4


def _mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def marked_frame(i, size=64, dst="02:00:00:00:00:01", src="02:00:00:00:00:02"):
    """An Ethernet frame of `size` bytes with our ethertype and sequence i."""
    body = struct.pack(">I", i) + bytes((i + k) & 0xff for k in range(max(0, size - 18)))
    return _mac(dst) + _mac(src) + MARK_TYPE.to_bytes(2, "big") + body


def marked(packets):
    return [p for p in packets if p[12:14] == MARK_TYPE.to_bytes(2, "big")]


def vnet(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)





# --- creation, configuration, clean removal ------------------------------------------

def test_create_configures_kernel_side_and_close_removes_it(engine_factory, netns):
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, mtu=1400, netns=netns, host_address="10.211.0.1/24",
                    host_mac="02:aa:00:00:00:01", mac="02:bb:00:00:00:01")
    eng.add(dev)
    eng.build()
    with host.ipr(netns) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=name)[0])[0]
        addrs = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=link["index"], family=socket.AF_INET)]
    assert link.get_attr("IFLA_MTU") == 1400
    assert link.get_attr("IFLA_ADDRESS") == "02:aa:00:00:00:01"
    assert link["flags"] & 1                           # IFF_UP
    assert addrs == ["10.211.0.1"]
    assert not host.link_exists(name)                  # moved out of the host namespace
    info = eng.interfaces.info(name)
    assert (info["mac"], info["mtu"], info["admin_up"], info["link_up"]) == ("02:bb:00:00:00:01", 1400, True, True)
    hw = eng.show("hardware", name)
    assert "IFF_VNET_HDR" in hw and "tso4" in hw and f"namespace {netns}" in hw
    assert {f"tap-input-{name}", f"tap-output-{name}"} <= set(eng.index)
    eng.close()
    assert not host.link_exists(name, netns)           # closing the fd removed the TAP
    assert netns in host.list_netns()                  # not ours: left alone


def test_namespace_created_on_demand_is_removed_on_close(engine_factory):
    name, ns = ifname(), f"gn-tap-own-{uuid.uuid4().hex[:8]}"
    eng = engine_factory()
    try:
        dev = TapDevice(eng, name, netns=ns)
        eng.add(dev)
        assert dev.created_netns and ns in host.list_netns()
        assert host.link_exists(name, ns)
        eng.close()
        assert ns not in host.list_netns()
    finally:
        host.delete_netns(ns)


def test_existing_interface_is_a_clear_error(engine_factory, netns):
    name = ifname()
    eng = engine_factory()
    eng.add(TapDevice(eng, name))
    with pytest.raises(DeviceError, match="already exists"):
        TapDevice(eng, name)
    host.create_veth(name + "a", name + "b", netns=netns)
    with pytest.raises(DeviceError, match=f"already exists in namespace {netns!r}"):
        TapDevice(eng, name + "a", netns=netns)
    with pytest.raises(DeviceError, match="1 to 15 bytes"):
        TapDevice(eng, "x" * 16)
    assert len(eng.interfaces) == 1                    # failures registered nothing


def test_without_cap_net_admin_the_message_says_so():
    name = ifname()
    code = ("from graphnet import Engine\nfrom graphnet.io.tap import TapDevice\n"
            f"try:\n    TapDevice(Engine(), {name!r})\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run(["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=30)
    assert f"DeviceError creating TAP {name} needs root (CAP_NET_ADMIN)" in out.stdout, out.stderr
    assert not host.link_exists(name)


# --- rx and tx, byte exact ------------------------------------------------------------

@pytest.mark.parametrize("offloads", [True, False])
def test_frames_from_the_kernel_arrive_byte_exact_and_counted(engine_factory, netns, offloads):
    name = ifname()
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, name, netns=netns, next_node="capture", offloads=offloads)
    eng.add([cap, dev])
    eng.build()
    frames = [marked_frame(i, size=60 + (i * 97) % 1455) for i in range(300)]
    s = packet_socket(netns, name)
    try:
        for f in frames:
            s.send(f)
    finally:
        s.close()
    assert wait_for(lambda: (eng.run_until_idle(1), len(marked(cap.packets())) >= len(frames))[1], timeout=5)
    got = cap.records()
    assert marked([r[0] for r in got]) == frames
    assert {r[1] for r in got} == {dev.sw_if_index}
    info = eng.interfaces.info(name)
    assert info["rx_packets"] == len(got) and info["rx_bytes"] == sum(len(r[0]) for r in got)
    assert info["rx_drops"] == 0
    assert dev.state.n_rx_bufs == (33 if offloads else 1)


def test_frames_graphnet_sends_arrive_byte_exact(engine_factory, netns):
    """pg -> set-tx -> interface-output -> tap-output, and pg -> tap-output."""
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns)
    frames = [marked_frame(i, size=60 + (i * 131) % 1455) for i in range(200)]
    pg = PacketGenerator(next_node="set-tx")
    pg.add_stream(Stream("via-interface-output", frames[:100], count=100, fix_checksums=False))
    pg2 = PacketGenerator(name="pg-direct", next_node=dev.output_node)
    pg2.add_stream(Stream("direct", frames[100:], count=100, fix_checksums=False))
    eng.add([pg, pg2, SetTx(eng, dev.sw_if_index), dev])
    eng.build()
    s = packet_socket(netns, name)
    s.settimeout(2)
    try:
        eng.run_until_idle(5)
        got = []
        while len(marked(got)) < 200:
            data, addr = s.recvfrom(65536)
            if addr[2] != socket.PACKET_OUTGOING:
                got.append(data)
    finally:
        s.close()
    got = marked(got)
    assert sorted(got) == sorted(frames)
    info = eng.interfaces.info(name)
    assert info["tx_packets"] == 200 and info["tx_bytes"] == sum(map(len, frames))
    assert info["tx_errors"] == info["tx_drops"] == 0


def test_trace_shows_the_frame(engine_factory, netns):
    name = ifname()
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, name, netns=netns, next_node="capture")
    eng.add([cap, dev])
    eng.build()
    eng.trace_add("tap-input", 100)
    s = packet_socket(netns, name)
    s.send(marked_frame(7, size=100))
    s.close()
    assert wait_for(lambda: (eng.run_until_idle(1), marked(cap.packets()))[1])
    text = eng.show("trace")
    assert f"TAP {name}: 100 bytes in 1 buffer" in text
    assert "virtio-net: plain frame" in text and "02:00:00:00:00:02 > 02:00:00:00:00:01" in text


def test_pcap_trace_of_tap_rx_and_tx(engine_factory, netns, tmp_path):
    """pcap trace rx tx on a TAP: what the kernel sent and what graphnet
    sent back (tap-input -> tap-output, a loopback) read back byte-exact;
    the interface filter keeps the other input out."""
    from graphnet.io.pcap import PcapTrace, read_pcap
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, next_node=f"tap-output-{name}")
    other = PacketGenerator(name="pg-other", next_node="null")
    other.add_stream(Stream("x", [marked_frame(99)], count=10, fix_checksums=False))
    eng.add([dev, other])
    eng.build()
    path = PcapTrace(eng).start(rx=True, tx=True, drop=False, path=tmp_path / "t.pcap", interface=name)
    frames = [marked_frame(i, size=60 + i * 300) for i in range(5)]
    s = packet_socket(netns, name)
    try:
        for f in frames:
            s.send(f)
        assert wait_for(lambda: (eng.run_until_idle(1), eng.interfaces.info(name)["tx_packets"] >= 5)[1])
    finally:
        s.close()
    st = PcapTrace(eng).status()
    PcapTrace(eng).stop()
    got = marked([p for _, p in read_pcap(path)])
    assert sorted(got) == sorted(frames * 2)                    # each once as rx, once as tx; byte-exact
    assert st["rx"] >= 5 and st["tx"] >= 5 and st["drop"] == 0
    assert eng.interfaces.info(name)["rx_packets"] >= 5


# --- GSO ------------------------------------------------------------------------

def test_tcp_super_frames_cross_graphnet_as_chains(engine_factory, netns, netns2):
    """Kernel TCP in ns A -> TAP A -> graphnet -> TAP B -> kernel TCP in ns B.

    The kernel hands TAP A super-frames (TSO accepted) that arrive as buffer
    chains with GSO metadata; tap-output-B writes them back as super-frames
    that the kernel in B accepts (the data arrives intact)."""
    a, b = ifname("gnta"), ifname("gntb")
    eng = engine_factory(buffers=8192)
    dev_a = TapDevice(eng, a, netns=netns, host_address="10.212.0.1/24", next_node=f"tap-output-{b}")
    dev_b = TapDevice(eng, b, netns=netns2, host_address="10.212.0.2/24", next_node=f"tap-output-{a}")
    eng.add([dev_a, dev_b])
    eng.build()
    eng.trace_add(f"tap-input-{a}", 400)
    eng.start()
    data = os.urandom(1 << 20) * 8                     # 8 MB
    try:
        n, digest = kernel_tcp_transfer(netns, netns2, ("10.212.0.2", 5201), data, timeout=10)
    finally:
        eng.stop()
    assert n == len(data) and digest == hashlib.sha256(data).digest()
    sa, sb = dev_a.stats(), dev_b.stats()
    assert sa["rx_gso_frames"] > 0 and sa["rx_chained"] > 0 and sa["rx_max_frame"] > 16000, sa
    assert sb["tx_gso_frames"] > 0 and sb["tx_chained"] > 0, sb
    assert eng.interfaces.info(a)["rx_drops"] == 0 and eng.interfaces.info(b)["tx_errors"] == 0
    idx = eng.index[f"tap-input-{a}"]
    recs = [tap.parse_trace(r[3]) for r in eng.main.trace_records() if r[1] == idx]
    gso = [r for r in recs if r["flags"] & F_GSO]
    assert gso, "no traced super-frame"
    r = max(gso, key=lambda r: r["length"])
    assert r["n_buffers"] == (r["length"] + 2047) // 2048 > 1
    assert r["flags"] & F_NEXT_PRESENT and r["flags"] & F_L4_CSUM
    assert r["gso_size"] > 0 and r["gso_type"] in (1, 4) and r["csum_offset"] == 16
    assert "gso tcpv4" in eng.show("trace")


class GsoBuilder(PythonNode):
    """Turns each packet into a UDP super-frame chain built from `frame_bytes`
    (the chain buffers were allocated beforehand on the control plane)."""
    name = "gso-builder"
    next_nodes = ()

    def __init__(self, engine, frame_bytes, gso_size, next_node):
        self.engine, self.frame_bytes, self.gso_size = engine, frame_bytes, gso_size
        self.next_nodes = (next_node,)
        self.tail = []

    def process(self, frame):
        cache, arena = self.engine.main.cache, self.engine.pool.arena
        for bi in frame.buffer_indices:
            cache.write(bi, self.frame_bytes[:2048])
            prev = bi
            for k, cb in enumerate(self.tail):
                cache.write(cb, self.frame_bytes[2048 * (k + 1):2048 * (k + 2)])
                cache.link(prev, cb)
                prev = cb
            off = bi * BUFFER_STRIDE
            flags = struct.unpack_from("<I", arena, off + 4)[0] | F_GSO | F_L4_CSUM | F_NEXT_PRESENT
            struct.pack_into("<I", arena, off + 4, flags)
            struct.pack_into("<I", arena, off + 12, len(self.frame_bytes) - 2048)
            struct.pack_into("<H", arena, off + 36, self.gso_size)
        return 0


def test_udp_super_frame_from_graphnet_is_segmented_by_the_kernel(engine_factory, netns):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, host_address="10.213.0.1/24", host_mac="02:aa:00:00:00:02")
    payload = bytes((i * 7) & 0xff for i in range(60000))
    gso_size = 1400
    udp_len = 8 + len(payload)
    # CHECKSUM_PARTIAL convention: the UDP checksum field holds the folded
    # pseudo-header sum; the kernel completes it per segment.
    from scapy.utils import checksum
    partial = ~checksum(bytes([10, 213, 0, 2, 10, 213, 0, 1]) + struct.pack(">HH", 17, udp_len)) & 0xffff
    frame = bytes(Ether(dst="02:aa:00:00:00:02", src="02:bb:00:00:00:02") /
                  IP(src="10.213.0.2", dst="10.213.0.1", id=1) / UDP(sport=4000, dport=9999, chksum=partial) /
                  payload)
    pg = PacketGenerator(next_node="gso-builder")
    pg.add_stream(Stream("one", [b"\0" * 60], count=1, fix_checksums=False))
    builder = GsoBuilder(eng, frame, gso_size, dev.output_node)
    eng.add([pg, builder, dev])
    eng.build()
    builder.tail = eng.main.cache.alloc((len(frame) - 1) // 2048)
    rx = ns_socket(netns, socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    rx.bind(("10.213.0.1", 9999))
    rx.settimeout(2)
    got = []
    try:
        eng.run_until_idle(5)
        while sum(map(len, got)) < len(payload):
            got.append(rx.recv(65536))
    finally:
        rx.close()
    assert len(got) == (len(payload) + gso_size - 1) // gso_size > 1
    assert all(len(g) == gso_size for g in got[:-1])
    assert b"".join(got) == payload
    s = dev.stats()
    assert s["tx_gso_frames"] == 1 and s["tx_chained"] == 1
    assert eng.interfaces.info(name)["tx_packets"] == 1


# --- bad input, faults, full queues (socketpair as the device fd) ------------------

def socketpair_rx(engine_factory, name, **kw):
    """(engine, device, capture, peer): a TapDevice adopting one end of a
    datagram socketpair, polling, its frames going to a capture; the test
    writes (virtio-net header + frame) datagrams into peer."""
    a, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, name, fd=a.detach(), next_node="capture", rx_mode="polling", **kw)
    eng.add([cap, dev])
    eng.build()
    return eng, dev, cap, peer


def test_bad_frames_are_dropped_with_reasons(engine_factory):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    eng, dev, cap, b = socketpair_rx(engine_factory, "spbad0")
    eng.trace_add("tap-input", 10)
    good = marked_frame(1, size=100)
    tcp = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / (b"x" * 60000))
    super_hdr = vnet(flags=1, gso_type=1, hdr_len=54, gso_size=1448, csum_start=34, csum_offset=16)
    bad = [
        (vnet() + b"\x01" * 10, "frame-too-short"),
        (b"\x00" * 5, "frame-too-short"),                                   # not even a header
        (vnet(1, 9, 54, 100, 34, 16) + tcp[:3000], "bad-vnet-header"),     # unknown GSO type
        (vnet(1, 1, 54, 0, 34, 16) + tcp[:3000], "bad-vnet-header"),       # gso_size 0
        (vnet(1, 1, 9000, 1448, 34, 16) + tcp[:3000], "bad-vnet-header"),  # hdr_len beyond the frame
        (vnet(1, 0, 0, 0, 1000, 16) + good, "bad-vnet-header"),           # csum_start beyond the frame
        (vnet() + marked_frame(2, size=1600), "frame-too-long"),            # > MTU + 14, no GSO
    ]
    for data, _ in bad[:3]:
        b.send(data)
    b.send(vnet() + good)
    for data, _ in bad[3:]:
        b.send(data)
    b.send(super_hdr + tcp)
    eng.run_until_idle(2)
    b.close()
    assert cap.packets() == [good, tcp]
    for reason in ("frame-too-short", "bad-vnet-header", "frame-too-long"):
        assert eng.error_count(dev.input_node, reason) == sum(1 for _, r in bad if r == reason), reason
    info = eng.interfaces.info("spbad0")
    assert (info["rx_packets"], info["rx_drops"], info["rx_bytes"]) == (2, len(bad), len(good) + len(tcp))
    idx = eng.index[dev.input_node]
    recs = [tap.parse_trace(r[3]) for r in eng.main.trace_records() if r[1] == idx]
    assert [r["length"] for r in recs] == [len(good), len(tcp)]
    chain = recs[1]
    assert chain["n_buffers"] == (len(tcp) + 2047) // 2048
    assert chain["flags"] & (F_GSO | F_L4_CSUM | F_NEXT_PRESENT) == F_GSO | F_L4_CSUM | F_NEXT_PRESENT
    assert (chain["gso_size"], chain["csum_start"], chain["csum_offset"]) == (1448, 34, 16)
    assert "frame shorter than an Ethernet header" in eng.show("errors")


def test_large_frames_switch_reads_from_spill_to_chain_and_back(engine_factory):
    """With offloads, a read offers the first buffer plus a spill area; the
    first super-frame is copied from the spill into its chain and switches
    reads to whole chains, and 256 one-buffer frames in a row switch back.
    Every frame arrives byte-exact whichever way it was read."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    eng, dev, cap, b = socketpair_rx(engine_factory, "spmode0")
    hdr = vnet(flags=1, gso_type=1, hdr_len=54, gso_size=1448, csum_start=34, csum_offset=16)
    supers = [bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2)
                    / bytes((i * 7 + k) & 0xff for k in range(size)))
              for i, size in enumerate((60000, 3000, 40000))]
    smalls = [marked_frame(i, size=60 + i % 64) for i in range(256)]
    sent = []

    def send(frames):
        for f in frames:
            b.send((hdr if len(f) > 2048 else vnet()) + f)
            sent.append(f)
        eng.run_until_idle(2)

    send(supers[:1])
    assert dev.stats()["rx_spill_copies"] == 1 and dev.stats()["rx_chain_mode"]
    send(supers[1:2])                              # read straight into a chain
    assert dev.stats()["rx_spill_copies"] == 1 and dev.stats()["rx_chain_reads"] >= 1
    for k in range(0, 255, 64):
        send(smalls[k:min(k + 64, 255)])
    assert dev.stats()["rx_chain_mode"], "255 small frames in a row: still chain mode"
    send(smalls[255:])
    assert not dev.stats()["rx_chain_mode"], "256 small frames in a row: back to spill mode"
    send(supers[2:])
    st = dev.stats()
    b.close()
    assert cap.packets() == sent
    assert (st["rx_spill_copies"], st["rx_chained"]) == (2, 3)
    assert "spill copies" in eng.show("hardware")


def test_admin_down_interface_drops_what_it_reads(engine_factory):
    eng, dev, cap, b = socketpair_rx(engine_factory, "spdown0", admin_up=False)
    for i in range(3):
        b.send(vnet() + marked_frame(i))
    eng.run_until_idle(2)
    assert len(cap) == 0
    assert eng.error_count(dev.input_node, "interface-down") == 3
    assert eng.interfaces.info("spdown0")["rx_drops"] == 3
    eng.interfaces.set_admin_up("spdown0", True)
    b.send(vnet() + marked_frame(9))
    eng.run_until_idle(2)
    assert cap.packets() == [marked_frame(9)]
    b.close()


def test_frame_longer_than_mtu_from_the_kernel_is_dropped(engine_factory, netns):
    name = ifname()
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, name, netns=netns, next_node="capture", mtu=1500)
    eng.add([cap, dev])
    eng.build()
    host.set_link(name, netns, mtu=3000)        # the kernel side now sends more than we accept
    s = packet_socket(netns, name)
    frames = [marked_frame(1, size=1514), marked_frame(2, size=1800), marked_frame(3, size=2900),
              marked_frame(4, size=64)]
    for f in frames:
        s.send(f)
    s.close()
    assert wait_for(lambda: (eng.run_until_idle(1), len(marked(cap.packets())) >= 2)[1])
    eng.run_until_idle(1)
    assert marked(cap.packets()) == [frames[0], frames[3]]
    assert eng.error_count(dev.input_node, "frame-too-long") == 2
    assert eng.interfaces.info(name)["rx_drops"] == 2


def test_jumbo_frames_from_the_kernel_arrive_as_chains(engine_factory, netns):
    """A plain TAP (no offloads) with MTU 9000: every read offers one buffer
    plus the spill area, then whole chains once jumbo frames come; small
    and jumbo frames interleaved all arrive byte-exact and in order."""
    name = ifname()
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, name, netns=netns, next_node="capture", mtu=9000, offloads=False)
    eng.add([cap, dev])
    eng.build()
    assert dev.state.n_rx_bufs == 5
    s = packet_socket(netns, name)
    frames = [marked_frame(i, size=(9014, 64, 5000, 2048, 2049, 100)[i % 6]) for i in range(30)]
    for f in frames:
        s.send(f)
    s.close()
    assert wait_for(lambda: (eng.run_until_idle(1), len(marked(cap.packets())) >= len(frames))[1])
    assert marked(cap.packets()) == frames
    st = dev.stats()
    assert st["rx_spill_copies"] == 1 and st["rx_chain_reads"] >= 15 and st["rx_chained"] == 15


def _drain(sock, n, timeout=5.0):
    out = []
    sock.settimeout(0.05)
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        try:
            out.append(sock.recv(65536))
        except socket.timeout:
            pass
    return out


@pytest.mark.parametrize("rx_mode", ["interrupt", "polling"])
def test_full_kernel_queue_defers_and_retries_in_order(engine_factory, rx_mode):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    eng = engine_factory()
    dev = TapDevice(eng, "spq0", fd=a.detach(), vnet_hdr=False, rx_mode=rx_mode)
    frames = [marked_frame(i, size=100) for i in range(600)]
    pg = PacketGenerator(next_node=dev.output_node, state="interrupt")
    pg.add_stream(Stream("s", frames, count=len(frames), fix_checksums=False))
    eng.add([pg, dev])
    eng.build()
    dev.set_retry_timeout(5.0)
    t0 = time.monotonic()
    eng.run(0.1)                                     # nobody reads: the loop must not block
    assert time.monotonic() - t0 < 1.0
    deferred = eng.error_count(dev.output_node, "tx-deferred")
    assert deferred > 0 and dev.stats()["tx_retry_queue"] > 0
    assert eng.interfaces.info("spq0")["tx_retries"] == deferred
    got = []
    reader = threading.Thread(target=lambda: got.extend(_drain(b, len(frames))))
    reader.start()
    eng.start()
    reader.join(10)
    eng.stop()
    b.close()
    assert got == frames                              # all of them, in order
    info = eng.interfaces.info("spq0")
    assert info["tx_packets"] == len(frames) and info["tx_drops"] == 0
    assert dev.stats()["tx_retry_queue"] == 0
    assert eng.main.loop_stats()["timers_active"] <= 2     # no timer per iteration


def test_retry_queue_is_bounded_then_dropped_with_a_counter(engine_factory):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    eng = engine_factory()
    dev = TapDevice(eng, "spq1", fd=a.detach(), vnet_hdr=False)
    n = 2000                                          # more than the queue holds
    pg = PacketGenerator(next_node=dev.output_node, state="interrupt")
    pg.add_stream(Stream("s", [marked_frame(i, size=80) for i in range(50)], count=n, fix_checksums=False))
    eng.add([pg, dev])
    eng.build()
    dev.set_retry_timeout(0.05)
    eng.run(0.5)                                      # nobody reads
    info = eng.interfaces.info("spq1")
    assert info["tx_packets"] > 0
    assert info["tx_packets"] + info["tx_drops"] == n
    assert eng.error_count(dev.output_node, "tx-queue-full") == info["tx_drops"] > 0
    assert dev.stats()["tx_retry_queue"] == 0       # timed out and dropped
    b.close()


# --- rx modes and CPU ---------------------------------------------------------------

def test_rx_mode_switched_under_traffic_loses_nothing(engine_factory, netns):
    name = ifname()
    eng = engine_factory(buffers=8192)
    cap = Capture(limit=200000)
    dev = TapDevice(eng, name, netns=netns, next_node="capture", rx_mode="interrupt")
    eng.add([cap, dev])
    eng.build()
    with host.ipr(netns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], txqlen=20000)
    n = 30000
    frames = [marked_frame(i, size=64) for i in range(n)]
    s = packet_socket(netns, name)
    eng.start()
    done = threading.Event()

    def send():
        for i, f in enumerate(frames):
            s.send(f)
            if i % 200 == 199:
                time.sleep(0.001)
        done.set()

    sender = threading.Thread(target=send)
    sender.start()
    modes = ["polling", "adaptive", "interrupt"]
    k = 0
    while not done.wait(0.01):
        dev.set_rx_mode(modes[k % 3])
        k += 1
    sender.join()
    s.close()
    assert wait_for(lambda: len(marked(cap.packets())) >= n, timeout=5)
    eng.stop()
    got = marked(cap.packets())
    assert k >= 6
    assert len(got) == n and got == frames
    assert eng.interfaces.info(name)["rx_drops"] == 0


def test_interrupt_mode_uses_no_cpu_when_idle(engine_factory, netns):
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, rx_mode="interrupt")
    eng.add(dev)
    eng.start()
    time.sleep(0.2)
    assert loop_cpu(eng, 1.0) < 0.05


# --- the kernel side disappearing ---------------------------------------------------------

@pytest.mark.parametrize("how,rx_mode", [("delete-link", "interrupt"), ("delete-namespace", "polling")])
def test_kernel_side_vanishing_marks_the_interface_down(engine_factory, how, rx_mode, caplog):
    name = ifname()
    ns = f"gn-tap-{uuid.uuid4().hex[:8]}"
    host.create_netns(ns)
    try:
        eng = engine_factory()
        cap = Capture()
        dev = TapDevice(eng, name, netns=ns, next_node="null", rx_mode=rx_mode)
        pg = PacketGenerator(next_node="capture", state="interrupt")
        pg.add_stream(Stream("tick", [marked_frame(0)], rate=200.0, fix_checksums=False))
        tx = PacketGenerator(name="pg-tx", next_node=dev.output_node, state="interrupt")
        tx.add_stream(Stream("tx", [marked_frame(1)], rate=100.0, fix_checksums=False))
        eng.add([cap, dev, pg, tx])
        eng.start()
        time.sleep(0.2)
        assert eng.interfaces.info(name)["link_up"]
        if how == "delete-link":
            host.delete_link(name, ns)
        else:
            host.delete_netns(ns)
        assert wait_for(lambda: not eng.interfaces.info(name)["link_up"], timeout=3)
        assert wait_for(lambda: eng.main.node_counters()[eng.index[dev.input_node]]["state"] == 2, timeout=2)
        assert eng.running
        before = len(cap)
        assert loop_cpu(eng, 1.0) < 0.05             # no spin on the dead fd
        assert len(cap) > before + 50                 # other nodes still run
        hw = eng.show("hardware", name)
        # found by a read or epoll (EBADFD), or told by netlink / the namespace's deletion
        assert "link lost" in hw and ("EBADFD" in hw or "epoll" in hw or "was deleted" in hw)
        assert eng.error_count(dev.input_node, "link-lost") == 1
        assert any("link lost" in r.getMessage() for r in caplog.records)
        dev.set_rx_mode("interrupt")                  # harmless on a dead device
        eng.stop()
        for p in (pg, tx):
            for s in p.stats():
                p.enable(s, False)
        eng.run_until_idle(2)
    finally:
        host.delete_netns(ns)
