"""``ip4-gso``: GSO super-segments forwarded to an interface without TSO
are cut into segments in software; ip4-rewrite fills checksums left to
offload for interfaces that do not fill them.

Through a TAP whose fd is a socketpair (the test writes what the kernel
would: a virtio-net header with GSO type, gso_size and the L4 checksum
left to offload, then the super-frame) -> ethernet-input -> ip4 path ->
if1 capture (no offloads). Scapy checks every segment; engine_factory
checks at teardown that every buffer came back. A real peer: a kernel TCP
sender in a namespace -> TAP (GSO) -> graphnet -> AF_PACKET on a veth ->
a kernel receiver in another namespace.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet.io.capture import Capture


def vnet(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


GSO_TCPV4, GSO_UDP_L4 = 1, 5


class Path:
    """A TAP whose fd is a socketpair (the test writes the kernel's side:
    virtio-net header + frame) -> ethernet-input -> ip4 path -> if1 capture
    (no offloads, the given MTU)."""

    def __init__(self, engine_factory, mtu=1500, buffers=4096):
        from graphnet.io.tap import TapDevice
        from graphnet.nodes import ip4
        a, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.engine = engine_factory(ip4.NODES, buffers=buffers)
        self.dev = TapDevice(self.engine, "gsotap0", fd=a.detach(), rx_mode="polling")
        self.engine.add(self.dev)
        self.engine.interfaces.add("if1", "capture", None, bytes.fromhex("020000000101"), mtu)
        sw = self.engine.interfaces.info("if1")["sw_if_index"]
        self.engine.interfaces.set_admin_up(sw, True)
        self.cap = Capture(name="capture-tx-if1")
        (n,) = self.cap.nodes()
        self.engine.add(dataclasses.replace(n, attach_to=(("interface-output", sw),)))
        ip4.fib(self.engine).add_route("10.0.0.0/8", next_hop_mac="02:00:00:00:01:02", sw_if_index=sw)
        self.engine.build()
        self.mac = self.engine.interfaces.info(self.dev.name)["mac"]

    def send(self, packets, gso_size=1448, gso=True, csum=True):
        """Each IPv4 packet as the kernel hands a TAP a super-frame: its L4
        checksum left to offload (csum), GSO type and gso_size (gso)."""
        for p in packets:
            p = IP(bytes(p))
            l4 = 16 if TCP in p else 6
            hdr = vnet(flags=1 if csum else 0, gso_type=(GSO_TCPV4 if TCP in p else GSO_UDP_L4) if gso else 0,
                       hdr_len=14 + p[IP].ihl * 4 + (p[TCP].dataofs * 4 if TCP in p else 8) if gso else 0,
                       gso_size=gso_size if gso else 0, csum_start=14 + 20 if csum else 0,
                       csum_offset=l4 if csum else 0)
            self.peer.send(hdr + bytes(Ether(src="02:00:00:00:00:99", dst=self.mac) / p))
        self.engine.run_until_idle(2)
        out = [Ether(p) for p in self.cap.packets()]
        self.cap.clear()
        return out

    def count(self, node, symbol):
        return self.engine.error_count(node, symbol)


def l4_ok(raw: bytes) -> bool:
    """Scapy recomputes the IPv4, TCP and UDP checksums: they must match."""
    q = IP(raw)
    del q.chksum
    for layer in (TCP, UDP):
        if layer in q:
            del q[layer].chksum
    return bytes(IP(bytes(q))) == raw


def with_bad_checksum(pkt):
    """pkt with an L4 checksum that is certainly wrong (as left to offload)."""
    raw = bytearray(bytes(pkt))
    off = 20 + (16 if TCP in pkt else 6)
    raw[off:off + 2] = b"\x12\x34"
    return IP(bytes(raw))


def test_tcp_super_segment_is_cut_into_mss_segments(engine_factory):
    p = Path(engine_factory)
    data = os.urandom(10000)
    sup = IP(src="192.168.1.1", dst="10.1.2.3", id=100, ttl=64, flags="DF") / TCP(
        sport=4000, dport=80, seq=0xfffff000, ack=77, flags="FPAC", window=500,
        options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]) / Raw(data)
    out = p.send([with_bad_checksum(sup)])
    assert len(out) == 7                                  # ceil(10000 / 1448)
    got = b""
    for k, e in enumerate(out):
        ip, tcp = e[IP], e[TCP]
        assert e.dst == "02:00:00:00:01:02" and ip.ttl == 63 and ip.id == 100 + k and ip.flags == "DF"
        assert l4_ok(bytes(ip)), f"segment {k}: bad checksum"
        assert tcp.seq == (0xfffff000 + 1448 * k) & 0xffffffff and tcp.ack == 77 and tcp.window == 500
        assert tcp.options == [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]
        last = k == len(out) - 1
        assert int(tcp.flags) == (0x19 if last else 0x90 if k == 0 else 0x10)    # FPA, CWR+ACK, ACK
        payload = bytes(tcp.payload)
        assert len(payload) == (10000 - 6 * 1448 if last else 1448) and ip.len == 20 + 32 + len(payload)
        got += payload
    assert got == data
    assert p.count("ip4-gso", "segmented") == 1 and p.count("ip4-gso", "segments") == 7
    assert p.count("ip4-rewrite", "mtu-exceeded") == 0


def test_udp_super_segment_is_cut_into_datagrams(engine_factory):
    p = Path(engine_factory)
    data = os.urandom(2500)
    out = p.send([with_bad_checksum(IP(src="192.168.1.1", dst="10.1.2.3", id=7) / UDP(sport=5, dport=6) / Raw(data))],
                 gso_size=1000)
    assert [len(e[UDP].payload) for e in out] == [1000, 1000, 500]
    assert all(e[UDP].len == 8 + len(e[UDP].payload) and l4_ok(bytes(e[IP])) for e in out)
    assert [e[IP].id for e in out] == [7, 8, 9]
    assert b"".join(bytes(e[UDP].payload) for e in out) == data


def test_a_packet_that_fits_keeps_going_and_gets_its_checksum(engine_factory):
    """A packet with its checksum left to offload, within the MTU, leaves a
    no-offload interface with its full checksum (GSO flag or not)."""
    p = Path(engine_factory)
    tcp = IP(src="192.168.1.1", dst="10.1.2.3") / TCP(sport=1, dport=2, flags="A") / Raw(b"x" * 100)
    udp = IP(src="192.168.1.1", dst="10.1.2.3") / UDP(sport=1, dport=2) / Raw(b"y" * 100)
    out = p.send([with_bad_checksum(tcp), with_bad_checksum(udp)], gso=False)
    assert len(out) == 2 and all(l4_ok(bytes(e[IP])) for e in out)
    assert bytes(out[0][TCP].payload) == b"x" * 100 and p.count("ip4-gso", "segmented") == 0


def test_segments_larger_than_the_mtu_go_on_to_fragmentation(engine_factory):
    """gso_size beyond the tx MTU: the segments are ip4-rewrite's too-big
    packets on their way back (DF set: dropped as df-set-too-big); the
    short last one fits."""
    p = Path(engine_factory, mtu=1000)
    sup = IP(src="192.168.1.1", dst="10.1.2.3", flags="DF") / TCP(sport=1, dport=2, flags="A") / Raw(bytes(3000))
    out = p.send([sup])
    assert [len(e[TCP].payload) for e in out] == [3000 - 2 * 1448]
    assert p.count("ip4-gso", "segments") == 3 and p.count("ip4-frag", "df-set-too-big") == 2


def test_bad_super_segments_are_dropped_with_reasons(engine_factory):
    p = Path(engine_factory)
    icmp = IP(src="192.168.1.1", dst="10.1.2.3") / ICMP() / Raw(bytes(3000))
    frag = IP(src="192.168.1.1", dst="10.1.2.3", flags="MF") / UDP(sport=1, dport=2) / Raw(bytes(3000))
    assert p.send([icmp, frag]) == []
    assert p.count("ip4-gso", "not-tcp-udp") == 1 and p.count("ip4-gso", "malformed") == 1


def test_no_buffers_drops_the_super_segment_and_frees_its_segments(engine_factory):
    """A pool too small for all the segments: the super-segment is dropped
    (no-buffers), the segments made for it freed, nothing leaks."""
    p = Path(engine_factory, buffers=64)
    sup = IP(src="192.168.1.1", dst="10.1.2.3") / TCP(sport=1, dport=2, flags="A") / Raw(bytes(10000))
    assert p.send([sup], gso_size=100) == []            # 100 segments, 64 buffers (the super-frame holds 5)
    assert p.count("ip4-gso", "no-buffers") == 1 and p.count("ip4-gso", "segmented") == 0


@pytest.mark.privileged(tun=True)
def test_kernel_tcp_through_a_tap_out_of_af_packet_is_segmented(engine_factory, netns):
    """Kernel TCP in ns A -> TAP (the kernel's TSO super-frames) -> graphnet
    routing -> AF_PACKET on a veth (no offloads) -> kernel TCP in ns B: 8 MB
    arrive intact, cut by ip4-gso."""
    from graphnet.io import host
    from graphnet.io.af_packet import AfPacketDevice
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    from graphnet.testing.helpers import kernel_tcp_transfer
    tap = f"gngso{os.getpid() % 10000}"
    with host.veth_pair("gn-gso", addresses=(None, "10.216.0.1/24")) as v:
        eng = engine_factory(ip4_host.NODES, buffers=8192)
        dev_t = TapDevice(eng, tap, netns=netns, host_address="10.215.0.1/24")
        dev_a = AfPacketDevice(eng, v.veth_a, netns=v.ns_a)
        eng.add([dev_t, dev_a])
        eng.build()
        ip4_host.set_interface_address(eng, dev_t.name, "10.215.0.2/24")
        ip4_host.set_interface_address(eng, dev_a.name, "10.216.0.2/24")
        host.run_in_netns(netns, ["ip", "route", "add", "10.216.0.0/24", "via", "10.215.0.2"], check=True)
        host.run_in_netns(v.ns_b, ["ip", "route", "add", "10.215.0.0/24", "via", "10.216.0.2"], check=True)
        eng.start()
        data = os.urandom(1 << 20) * 8
        try:
            n, digest = kernel_tcp_transfer(netns, v.ns_b, ("10.216.0.1", 5201), data)
        finally:
            eng.stop()
        assert n == len(data) and digest == hashlib.sha256(data).digest()
        assert dev_t.stats()["rx_gso_frames"] > 0
        assert eng.error_count("ip4-gso", "segmented") > 0
        assert eng.error_count("ip4-gso", "segments") > eng.error_count("ip4-gso", "segmented")
        assert eng.error_count("ip4-rewrite", "mtu-exceeded") == 0
