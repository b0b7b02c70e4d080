"""udp4-input (checks, port registration, port unreachable) and the
built-in echo service (udp4-echo)."""
import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet.io.capture import Capture
from graphnet.nodes import ip4_host
from graphnet.nodes.udp4 import udp_ports, udp_register_port, udp_unregister_port
from graphnet.nodes.udp4_echo import set_udp_echo_port
from graphnet.testing.ip4 import HostBench, mac_of

PEER = "02:00:00:00:aa:01"
IF0 = mac_of(0)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"])
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    yield b
    b.check_accounting()


def dgram(dport=7, sport=4000, payload=b"hello, echo", dst="10.0.0.1", src="10.0.0.2", dmac=IF0, chksum=None):
    u = UDP(sport=sport, dport=dport)
    if chksum is not None:
        u.chksum = chksum
    return Ether(src=PEER, dst=dmac) / IP(src=src, dst=dst) / u / Raw(payload)


def udp_ok(p):
    raw = bytes(p[IP])
    q = IP(raw)
    del q.chksum
    if q[UDP].chksum != 0:
        del q[UDP].chksum
    return bytes(IP(bytes(q))) == raw


@pytest.mark.parametrize("payload", [b"", b"x", b"hello, echo", bytes(range(256)) * 5])
def test_echo(bench, payload):
    (r,) = bench.out("if0", [dgram(payload=payload)])
    assert (r.dst, r[IP].src, r[IP].dst, r[IP].ttl) == (PEER, "10.0.0.1", "10.0.0.2", 64)
    assert (r[UDP].sport, r[UDP].dport) == (7, 4000)
    assert bytes(r[UDP].payload) == payload
    assert udp_ok(r)
    assert bench.count("udp4-echo", "echoed") == 1


def test_echo_without_checksum_and_with_padding(bench):
    (r,) = bench.out("if0", [dgram(payload=b"ab", chksum=0)])
    assert r[UDP].chksum == 0 and bytes(r[UDP].payload) == b"ab"
    # a UDP length shorter than the IP payload: the rest is padding, not echoed
    p = dgram(payload=b"abcdef")
    raw = bytearray(bytes(p))
    raw[14 + 20 + 4:14 + 20 + 6] = (8 + 2).to_bytes(2, "big")
    raw[14 + 20 + 6:14 + 20 + 8] = b"\0\0"
    (r,) = bench.out("if0", [bytes(raw)])
    assert r[IP].len == 30 and bytes(r[UDP].payload) == b"ab" and udp_ok(r)


def test_port_unreachable(bench):
    sent = dgram(dport=9999)
    (e,) = bench.out("if0", [sent])
    assert (e[IP].src, e[IP].dst, e[ICMP].type, e[ICMP].code) == ("10.0.0.1", "10.0.0.2", 3, 3)
    assert bytes(e[IP])[28:] == bytes(sent[IP])
    assert bench.count("udp4-input", "no-listener") == 1
    assert bench.count("ip4-icmp-error", "sent") == 1


def test_no_port_unreachable_for_broadcast(bench):
    bcast = Ether(src=PEER, dst="ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=9999)
    assert bench.out("if0", [bcast]) == []
    assert bench.count("ip4-icmp-error", "broadcast") == 1


def test_bad_datagrams_are_counted(bench):
    bad_sum = dgram(chksum=0x1234)
    short = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1", proto=17) / Raw(b"\x00\x07\x00\x07")
    long_len = bytearray(bytes(dgram()))
    long_len[14 + 20 + 4:14 + 20 + 6] = (200).to_bytes(2, "big")
    tiny_len = bytearray(bytes(dgram()))
    tiny_len[14 + 20 + 4:14 + 20 + 6] = (4).to_bytes(2, "big")
    assert bench.out("if0", [bad_sum, short, bytes(long_len), bytes(tiny_len)]) == []
    assert [bench.count("udp4-input", s) for s in ("bad-checksum", "too-short", "bad-length")] == [1, 1, 2]


def test_register_port_before_and_after_build(engine_factory):
    sink = Capture(name="app")

    def before_build(engine):
        udp_register_port(engine, 5000, "app")
        set_udp_echo_port(engine, 9)                    # echo moves from 7 to 9 before the build

    b = HostBench(engine_factory, ["if0"], extra_nodes=[sink], before_build=before_build)
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    assert udp_ports(b.engine) == {5000: "app", 9: "udp4-echo"}
    out = b.out("if0", [dgram(dport=5000), dgram(dport=9), dgram(dport=7)])
    assert len(sink) == 1 and IP(sink.packets()[0])[UDP].dport == 5000    # still at the IP header
    assert out[0][UDP].sport == 9
    assert (out[1][ICMP].type, out[1][ICMP].code) == (3, 3)
    # after the build: a node that has an arc can take more ports
    udp_register_port(b.engine, 5001, "app")
    set_udp_echo_port(b.engine, 7)
    assert udp_ports(b.engine) == {5000: "app", 5001: "app", 7: "udp4-echo"}
    b.send("if0", [dgram(dport=5001)])
    assert len(sink) == 2
    udp_unregister_port(b.engine, 5001)
    (e,) = b.out("if0", [dgram(dport=5001)])
    assert e[ICMP].code == 3
    with pytest.raises(ValueError, match="no arc"):
        udp_register_port(b.engine, 6000, "error-drop-nope")
    with pytest.raises(ValueError):
        udp_register_port(b.engine, 0, "app")
    b.check_accounting()
