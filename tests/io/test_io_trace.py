"""Trace records of the device nodes (issue 18): tap-input and
af-packet-input name their interface, queue, length and offload flags;
tap-output and af-packet-output name the interface and what they write.
Decoded fields are asserted from the records (``parse_trace``), and what
the output records say is checked against what the peer really received.

The TAP tests adopt datagram socketpairs as the device's queue fds (no
privileges: a TAP fd behaves the same, one frame per read/write); the
AF_PACKET test needs root and a veth pair between two namespaces it makes.
"""
import socket
import struct

import pytest

from graphnet.io import af_packet_input, af_packet_output, frame_trace, host, tap_input, tap_output
from graphnet.io.capture import Capture
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.io.tap import TapDevice
from graphnet.testing.helpers import wait_for
from graphnet.vlib.buffer import BUFFER_STRIDE
from graphnet.vlib.node import PythonNode

F_NEXT_PRESENT, F_GSO, F_L4_CSUM = 1, 1 << 3, 1 << 4


def vnet(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def udp_frame(payload=b"x" * 40, vlan=None):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether
    eth = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    return bytes(eth / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=4000, dport=5000) / payload)


def records(eng, node):
    idx = eng.index[node]
    return [r[3] for r in eng.main.trace_records() if r[1] == idx]


def socketpairs(n):
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(n)]
    return [a.detach() for a, _ in pairs], [b for _, b in pairs]


# --- tap-input -------------------------------------------------------------------------------

def test_tap_input_record_names_interface_queue_length_and_offloads(engine_factory):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    fds, peers = socketpairs(1)
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, "trin0", fd=fds[0], next_node="capture", rx_mode="polling")
    eng.add([cap, dev])
    eng.build()
    eng.trace_add("tap-input", 10)
    plain = udp_frame()
    tcp = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / (b"y" * 5000))
    peers[0].send(vnet() + plain)
    peers[0].send(vnet(flags=1, gso_type=1, hdr_len=54, gso_size=1448, csum_start=34, csum_offset=16) + tcp)
    eng.run_until_idle(2)
    peers[0].close()
    assert cap.packets() == [plain, tcp]
    r0, r1 = [tap_input.parse_trace(r) for r in records(eng, dev.input_node)]
    assert (r0["sw_if_index"], r0["queue"], r0["length"], r0["n_buffers"]) == (dev.sw_if_index, 0, len(plain), 1)
    assert (r0["vnet_flags"], r0["gso_type"], r0["gso_size"]) == (0, 0, 0)
    assert r0["bytes"] == plain                                    # under 96 bytes: all of it
    assert (r1["length"], r1["n_buffers"], r1["queue"]) == (len(tcp), 3, 0)
    assert (r1["vnet_flags"], r1["gso_type"], r1["hdr_len"], r1["gso_size"]) == (1, 1, 54, 1448)
    assert (r1["csum_start"], r1["csum_offset"]) == (34, 16)
    assert r1["flags"] & (F_GSO | F_L4_CSUM | F_NEXT_PRESENT) == F_GSO | F_L4_CSUM | F_NEXT_PRESENT
    assert r1["bytes"] == tcp[:96]
    text = eng.show("trace")
    assert f"TAP trin0: {len(plain)} bytes in 1 buffer, queue 0" in text
    assert f"TAP trin0: {len(tcp)} bytes in 3 buffers, queue 0" in text
    assert "virtio-net: needs-csum start 34 offset 16, gso tcpv4 size 1448 hdr_len 54" in text
    assert "(first 96 bytes)" in text


def test_tap_input_record_names_the_queue_a_frame_came_from(engine_factory):
    fds, peers = socketpairs(3)
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, "trmq0", fd=fds, next_node="capture", rx_mode="polling")
    eng.add([cap, dev])
    eng.build()
    eng.trace_add("tap-input", 50)
    sent = {}
    for q, p in enumerate(peers):
        for i in range(4):
            f = udp_frame(payload=bytes([q, i]) * 20)
            sent[f] = q
            p.send(vnet() + f)
    eng.run_until_idle(2)
    for p in peers:
        p.close()
    recs = [tap_input.parse_trace(r) for r in records(eng, dev.input_node)]
    assert len(recs) == 12
    assert {r["bytes"]: r["queue"] for r in recs} == sent
    assert {r["queue"] for r in recs} == {0, 1, 2}
    assert "queue 2" in eng.show("trace")


# --- tap-output ------------------------------------------------------------------------------

class SetFlags(PythonNode):
    """Sets buffer flags (and gso_size) on every packet, as a TCP or UDP
    node asking for checksum offload or segmentation would."""
    name = "set-flags"

    def __init__(self, engine, flags, gso_size, next_node):
        self.engine, self.flags, self.gso_size = engine, flags, gso_size
        self.next_nodes = (next_node,)

    def process(self, frame):
        arena = self.engine.pool.arena
        for bi in frame.buffer_indices:
            off = bi * BUFFER_STRIDE
            struct.pack_into("<I", arena, off + 4, struct.unpack_from("<I", arena, off + 4)[0] | self.flags)
            struct.pack_into("<H", arena, off + 36, self.gso_size)
        return 0


@pytest.mark.parametrize("flags, gso_size, offload", [(0, 0, "none"), (F_L4_CSUM, 0, "derived"),
                                                      (F_L4_CSUM | F_GSO, 600, "derived")])
def test_tap_output_record_says_what_is_written(engine_factory, flags, gso_size, offload):
    fds, peers = socketpairs(1)
    eng = engine_factory()
    dev = TapDevice(eng, "trout0", fd=fds[0], rx_mode="polling")
    frame = udp_frame(payload=b"z" * 1400)
    pg = PacketGenerator(next_node="set-flags")
    pg.add_stream(Stream("s", [frame], count=1, fix_checksums=False))
    eng.add([pg, SetFlags(eng, flags, gso_size, dev.output_node), dev])
    eng.build()
    eng.trace_add("pg-input", 1)
    eng.run_until_idle(2)
    peers[0].settimeout(2)
    written = peers[0].recv(65536)
    peers[0].close()
    (rec,) = [tap_output.parse_output_trace(r) for r in records(eng, dev.output_node)]
    assert (rec["sw_if_index"], rec["length"], rec["n_buffers"], rec["hdr_size"]) == \
        (dev.sw_if_index, len(frame), 1, 12)
    assert rec["offload"] == offload
    # the header the record shows is the one the kernel got
    assert vnet(rec["vnet_flags"], rec["gso_type"], rec["hdr_len"], rec["vnet_gso_size"], rec["csum_start"],
                rec["csum_offset"]) == written[:12]
    assert written[12:] == frame and rec["bytes"] == frame[:96]
    if offload == "derived":
        assert (rec["vnet_flags"], rec["csum_start"], rec["csum_offset"]) == (1, 34, 6)     # UDP checksum
    if flags & F_GSO:
        assert (rec["gso_type"], rec["vnet_gso_size"], rec["hdr_len"]) == (5, 600, 42)       # udp-l4
    text = eng.show("trace")
    assert f"TAP trout0: write 12 + {len(frame)} bytes, 1 buffer, queue 0" in text
    assert "virtio-net: " + ("plain frame" if offload == "none" else "needs-csum start 34 offset 6") in text


def test_tap_output_record_shows_a_bad_offload(engine_factory):
    fds, peers = socketpairs(1)
    eng = engine_factory()
    dev = TapDevice(eng, "trbad0", fd=fds[0], rx_mode="polling")
    arp = bytes.fromhex("ffffffffffff020000000002" "0806") + bytes(28)
    pg = PacketGenerator(next_node="set-flags")
    pg.add_stream(Stream("s", [arp], count=1, fix_checksums=False))
    eng.add([pg, SetFlags(eng, F_L4_CSUM, 0, dev.output_node), dev])
    eng.build()
    eng.trace_add("pg-input", 1)
    eng.run_until_idle(2)
    peers[0].close()
    (rec,) = [tap_output.parse_output_trace(r) for r in records(eng, dev.output_node)]
    assert rec["offload"] == "bad"
    assert eng.error_count(dev.output_node, "bad-offload") == 1
    assert "bad-offload (headers cannot be parsed): dropped, not written" in eng.show("trace")


# --- the shared formatting -------------------------------------------------------------------

def test_undecodable_bytes_are_a_hex_dump_of_at_most_64_bytes():
    assert frame_trace.format_frame(bytes(range(10)), 10, 2) == "  " + bytes(range(10)).hex()
    text = frame_trace.hex_dump(bytes(range(100)))
    assert text.startswith(bytes(range(64)).hex()) and bytes(range(65)).hex() not in text
    assert "(100 bytes captured)" in text


# --- AF_PACKET (root) ------------------------------------------------------------------------

@pytest.mark.privileged(tun=False)
def test_af_packet_records(engine_factory):
    from graphnet.io.af_packet import AfPacketDevice
    from graphnet.testing.helpers import packet_socket
    with host.veth_pair("gn-tr") as v:
        a, a_if, b, b_if = v.ns_a, v.veth_a, v.ns_b, v.veth_b
        eng = engine_factory()
        cap = Capture()
        dev = AfPacketDevice(eng, a_if, netns=a, next_node="capture", rx_mode="polling")
        out = udp_frame(payload=b"o" * 1000)
        pg = PacketGenerator(next_node=dev.output_node)
        pg.add_stream(Stream("s", [out], count=1, fix_checksums=False))
        eng.add([cap, pg, dev])
        eng.build()
        eng.trace_add(dev.input_node, 10)
        eng.trace_add("pg-input", 1)
        peer = packet_socket(b, b_if)
        peer.settimeout(2)
        try:
            tagged = udp_frame(vlan=5)
            peer.send(tagged)
            assert wait_for(lambda: (eng.run_until_idle(0.2), tagged in cap.packets())[1], timeout=3)
            got = None
            while got is None:
                data, addr = peer.recvfrom(65536)
                if addr[2] != socket.PACKET_OUTGOING and data[12:14] == b"\x08\x00":
                    got = data
        finally:
            peer.close()
        # the kernel's own chatter (IPv6 MLD on the new veth) may be traced too: take ours
        (rin,) = [d for d in map(af_packet_input.parse_trace, records(eng, dev.input_node)) if d["bytes"] == tagged]
        assert (rin["sw_if_index"], rin["queue"], rin["length"], rin["n_buffers"]) == \
            (dev.sw_if_index, 0, len(tagged), 1)
        assert rin["vlan"] == {"tci": 5, "vid": 5, "tpid": 0x8100} and rin["block"] is not None
        assert rin["bytes"] == tagged[:96]
        (rout,) = [af_packet_output.parse_trace(r) for r in records(eng, dev.output_node)]
        assert (rout["sw_if_index"], rout["length"], rout["n_buffers"]) == (dev.sw_if_index, len(out), 1)
        assert rout["qdisc_bypass"] and got == out
        text = eng.show("trace")
        assert f"AF_PACKET {dev.name}: {len(tagged)} bytes in 1 buffer, queue 0 (ring block " in text
        assert "vlan 5 tag put back (tpid 0x8100)" in text
        assert f"AF_PACKET {dev.name}: send {len(out)} bytes (qdisc bypass)" in text
