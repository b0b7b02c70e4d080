"""The whole host graph under random and mutated frames (Hypothesis):
nothing crashes, no buffer leaks (every buffer in use is one the
neighbour table holds, and the engine's close frees those), and whatever
graphnet sends is well formed: valid IPv4 and ICMP/UDP checksums, valid
ARP."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import ICMP, IP, IPerror, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from graphnet.testing.helpers import examples
from graphnet.testing.ip4 import HostBench, mac_of
from graphnet.testing.packets import checksums_ok
from graphnet.wire import arp as wire_arp
from graphnet.wire import ip4 as wire_ip4

PEER = "02:00:00:00:aa:01"
IF0, IF1 = mac_of(0), mac_of(1)
BCAST = "ff:ff:ff:ff:ff:ff"
HSETTINGS = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                              HealthCheck.function_scoped_fixture])


def templates():
    e = lambda dst=IF0: Ether(src=PEER, dst=dst)
    ip = lambda dst="10.0.0.1", **kw: IP(src="10.0.0.2", dst=dst, **kw)
    return [bytes(p) for p in (
        e(BCAST) / ARP(op=1, hwsrc=PEER, psrc="10.0.0.2", pdst="10.0.0.1"),
        e() / ARP(op=2, hwsrc=PEER, psrc="10.0.0.3", pdst="10.0.0.1", hwdst=IF0),
        e(BCAST) / ARP(op=1, hwsrc=PEER, psrc="10.0.0.2", pdst="10.0.0.2"),
        e() / ip() / ICMP() / Raw(b"ping" * 8),
        e() / ip("10.1.0.1") / ICMP(type=3, code=3) / IPerror(),
        e() / ip() / UDP(sport=5, dport=7) / Raw(b"echo"),
        e() / ip() / UDP(dport=9999) / Raw(b"closed"),
        e() / ip("10.1.0.2", ttl=1) / UDP(dport=33434),
        e() / ip("10.1.0.77") / UDP(dport=53),
        e() / ip("10.9.0.5") / TCP(),
        e() / ip(proto=99) / Raw(b"x" * 20),
        e() / ip(flags="MF") / ICMP() / Raw(bytes(24)),
        e() / ip(frag=3) / Raw(bytes(24)),
        e() / Dot1Q(vlan=0) / ip() / ICMP(),
        e(BCAST) / ip("10.0.0.255") / UDP(dport=7),
    )]


def _mutate(data, edits, cut):
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:cut]) if cut else bytes(b)


def check_output(p: bytes):
    eth = Ether(p)
    if eth.type == 0x0806:
        assert wire_arp.validate(p[14:]) == "none"
        return
    assert eth.type == 0x0800
    ip = p[14:]
    assert wire_ip4.validate(ip) in ("none",)
    q = IP(ip)
    if q.frag == 0 and not q.flags.MF and q.proto in (1, 17):
        assert checksums_ok(q), p.hex()


def test_random_and_mutated_frames(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.neighbors.add("if1", "10.1.0.2", "02:00:00:00:bb:01", static=True)
    b.fib.add_route("10.9.0.0/16", next_hop="10.1.0.9", sw_if_index="if1")
    b.neighbors.configure(probe_interval=0.001, max_probes=2)
    tpl = templates()

    @given(st.lists(st.one_of(
        st.binary(min_size=1, max_size=200),
        st.tuples(st.sampled_from(tpl), st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
                  st.integers(0, 200)).map(lambda t: _mutate(*t) or b"\0"),
    ), min_size=1, max_size=30), st.sampled_from(["if0", "if1"]))
    @HSETTINGS
    def run(frames, ifname):
        b.inject(ifname, frames)
        b.run()
        for name, iface in b.ifs.items():
            for p in iface.capture.packets():
                check_output(p)
            iface.capture.clear()
        b.check_accounting()

    run()
    b.run(0.05)                 # let pending resolutions time out
    b.take()
    b.check_accounting()
    assert b.neighbors.stats()["queued"] == 0
