"""Ethernet and the IPv4 forwarding path: wire helpers, the mtrie and FIB,
and pg -> ethernet-input -> ip4-input -> ip4-lookup -> ip4-rewrite ->
interface-output -> a capture node standing in for each interface's tx.

Every engine is leak-checked by the ``engine_factory`` fixture; the
Hypothesis tests also check after every example that all buffers are back
and that every packet sent is either captured or counted by one error.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from graphnet.testing.helpers import examples
from graphnet.testing.ip4 import CaptureInterface
from graphnet.testing.packets import inet_checksum
from graphnet.fib.ip4_fib import ADJ_INDEX_SPECIAL, SPECIAL_PREFIXES, Ip4Fib, ip4_fib, parse_prefix
from graphnet.fib.mtrie import Mtrie
from graphnet.io.capture import Capture
from graphnet.io.pg import Edit, PacketGenerator, Stream
from graphnet.nodes import ip4
from graphnet.vlib.node import Node
from graphnet.wire import ethernet as wire_eth
from graphnet.wire import ip4 as wire_ip4

RX_MAC = "02:00:00:00:00:01"
TX_MAC = "02:00:00:00:01:01"
TX2_MAC = "02:00:00:00:02:01"
PEER_MAC = "02:00:00:00:00:99"
NH1 = "02:00:00:00:01:02"
NH2 = "02:00:00:00:02:02"

HSETTINGS = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers -------------------------------------------------------------------

class Router:
    """pg on if0 -> the IPv4 path -> if1 / if2 captures."""

    def __init__(self, engine_factory, extra_nodes=(), mtu=1500):
        self.pg = PacketGenerator(next_node="ethernet-input")
        self.engine = engine_factory([self.pg, ip4.NODES, *extra_nodes])
        self.if0 = CaptureInterface(self.engine, "if0", RX_MAC)
        self.if1 = CaptureInterface(self.engine, "if1", TX_MAC, mtu=mtu)
        self.if2 = CaptureInterface(self.engine, "if2", TX2_MAC)
        self.engine.add([self.if0, self.if1, self.if2])
        self.fib = ip4.fib(self.engine)
        self.engine.build()
        self._names = itertools.count()
        self.sent = 0
        self.taken = 0

    def send(self, frames, **kw):
        """Send frames (Scapy or bytes) in on if0 and run until idle."""
        frames = [bytes(f) for f in frames]
        self.pg.add_stream(Stream(f"s{next(self._names)}", frames, count=len(frames), sw_if_index=0,
                                  fix_checksums=False, **kw))
        self.engine.run_until_idle()
        self.sent += len(frames)

    def take(self, iface=None):
        """Captured frames (Scapy Ether) on iface (default if1), and clear."""
        cap = (iface or self.if1).capture
        out = cap.scapy()
        cap.clear()
        self.taken += len(out)
        return out

    def errors(self):
        """{(node, symbol): count} of the non-zero error rows."""
        counts = self.engine.main.error_counters()
        return {(node, sym): n for (node, sym, _sev, _desc), n in zip(self.engine.errors, counts) if n}

    def dropped(self):
        """Packets counted by error-drop (every row whose packets it freed)."""
        return sum(n for (node, sym), n in self.errors().items()
                   if (node, sym) not in _NON_DROP_ROWS)

    def check_accounting(self):
        """All buffers free; every packet sent was captured or dropped."""
        assert self.engine.buffer_stats()["in_use"] == 0
        captured = self.taken + sum(len(i.capture) for i in (self.if0, self.if1, self.if2))
        # a packet ip4-frag cut into n fragments is captured n times
        errs = self.errors()
        captured -= errs.get(("ip4-frag", "fragments"), 0) - errs.get(("ip4-frag", "fragmented"), 0)
        assert captured + self.dropped() == self.sent, errs


# error rows that count events, not drops
_NON_DROP_ROWS = {("ethernet-input", "priority-tagged"), ("ip4-frag", "fragmented"), ("ip4-frag", "fragments")}


def udp(dst="10.1.2.3", src="192.168.1.1", ttl=64, dmac=RX_MAC, payload=b"graphnet", sport=1234, dport=5678, **ipkw):
    return Ether(src=PEER_MAC, dst=dmac) / IP(src=src, dst=dst, ttl=ttl, **ipkw) / UDP(sport=sport, dport=dport) / Raw(payload)


def _mask(plen):
    return 0 if plen == 0 else (0xffffffff << (32 - plen)) & 0xffffffff


class Oracle:
    """Longest-prefix match by brute force over a dict of routes."""

    def __init__(self):
        self.routes = {}

    def add(self, net, plen, value):
        self.routes[(net & _mask(plen), plen)] = value

    def delete(self, net, plen):
        del self.routes[(net & _mask(plen), plen)]

    def lookup(self, addr, default=0):
        for plen in range(32, -1, -1):
            v = self.routes.get((addr & _mask(plen), plen))
            if v is not None:
                return v
        return default

    def cover(self, net, plen, default=(0, 0)):
        for c in range(plen - 1, -1, -1):
            v = self.routes.get((net & _mask(c), c))
            if v is not None:
                return v, c
        return default


@pytest.fixture
def router(engine_factory):
    return Router(engine_factory)


# --- wire ----------------------------------------------------------------------

def test_ethernet_format_and_mac_parse():
    frame = bytes(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=7, prio=3) / IP())
    text = wire_eth.format_ethernet_header(frame)
    assert text.splitlines()[0] == f"802.1q: {PEER_MAC} -> ff:ff:ff:ff:ff:ff"
    assert "vlan 7 pcp 3" in text and "inner type IP4" in text
    assert "truncated" in wire_eth.format_ethernet_header(b"\x01\x02")
    assert wire_eth.parse_mac("02-00-00-00-00-0a") == bytes.fromhex("02000000000a")
    with pytest.raises(ValueError):
        wire_eth.parse_mac("02:00:00:00:00")


def _ip4_header(**kw):
    return bytes(IP(src="192.0.2.1", dst="198.51.100.7", **kw) / UDP(sport=7, dport=9) / Raw(b"abcd"))


@pytest.mark.parametrize("mutate,symbol", [
    (lambda h: h, "none"),
    (lambda h: h[:19], "too-short"),
    (lambda h: bytes([0x65]) + h[1:], "bad-version"),
    (lambda h: bytes([0x44]) + h[1:], "bad-ihl"),
    (lambda h: h[:2] + struct.pack("!H", 19) + h[4:], "bad-length"),
    (lambda h: h[:2] + struct.pack("!H", len(h) + 1) + h[4:], "truncated"),
    (lambda h: h[:10] + bytes([h[10] ^ 0x01, h[11]]) + h[12:], "bad-checksum"),
])
def test_ip4_validate_golden(mutate, symbol):
    assert wire_ip4.validate(mutate(_ip4_header())) == symbol


def test_ip4_validate_ttl_options_and_checksum_skip():
    assert wire_ip4.validate(_ip4_header(ttl=0)) == "ttl-zero"
    assert wire_ip4.validate(_ip4_header(ttl=1)) == "none"
    with_opts = bytes(IP(dst="10.0.0.1", options=[b"\x01\x01\x01\x00"]) / UDP())
    assert with_opts[0] == 0x46 and wire_ip4.validate(with_opts) == "options"
    h = _ip4_header()
    bad = h[:10] + b"\x00\x00" + h[12:]
    assert wire_ip4.validate(bad) == "bad-checksum"
    assert wire_ip4.validate(bad, verify_checksum=False) == "none"
    assert wire_ip4.header_checksum(bad) == struct.unpack("!H", h[10:12])[0]


def _recomputed_checksum(header: bytes) -> int:
    h = header[:10] + b"\x00\x00" + header[12:20]
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


@given(st.binary(min_size=20, max_size=20), st.integers(1, 255))
@HSETTINGS
def test_ttl_decrement_equals_recomputation(raw, ttl):
    """RFC 1624 eqn. 3 must give exactly what a full recomputation gives,
    including the 0x0000 / 0xffff corner."""
    h = bytearray(raw)
    h[0] = 0x45
    h[8] = ttl
    h[10:12] = struct.pack("!H", _recomputed_checksum(bytes(h)))
    out = wire_ip4.ttl_decrement(bytes(h))
    assert out[8] == ttl - 1
    assert struct.unpack("!H", out[10:12])[0] == _recomputed_checksum(out)
    assert wire_ip4.validate(out, verify_checksum=True) in ("none", "ttl-zero", "bad-length", "truncated")


def test_ttl_decrement_checksum_corners():
    # Find headers whose checksum before or after is 0x0000 / 0xffff-adjacent
    rnd = random.Random(1)
    seen = set()
    for _ in range(200000):
        h = bytearray(rnd.randbytes(20))
        h[0], h[8] = 0x45, rnd.randint(1, 255)
        c = _recomputed_checksum(bytes(h))
        h[10:12] = struct.pack("!H", c)
        out = wire_ip4.ttl_decrement(bytes(h))
        c2 = struct.unpack("!H", out[10:12])[0]
        assert c2 == _recomputed_checksum(out)
        if c in (0, 0xfeff) or c2 in (0, 0x0100):
            seen.add((c, c2))
        if len(seen) >= 2:
            break


def test_ip4_format_header():
    text = wire_ip4.format_ip4_header(_ip4_header(ttl=9, id=0x1234, flags="DF"))
    lines = text.splitlines()
    assert lines[0] == "UDP: 192.0.2.1 -> 198.51.100.7"
    assert "ttl 9" in lines[1] and "(ok)" in lines[1]
    assert "fragment id 0x1234, flags DF" in lines[2]
    assert "UDP: 7 -> 9" in lines[3]
    assert "truncated" in wire_ip4.format_ip4_header(b"\x45\x00")
    icmp = wire_ip4.format_ip4_header(bytes(IP(dst="10.0.0.1") / ICMP()))
    assert icmp.startswith("ICMP: ") and "echo-request" in icmp


def test_flow_hash_uses_ports_but_not_for_fragments():
    a = wire_ip4.flow_hash(bytes(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2)))
    b = wire_ip4.flow_hash(bytes(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=3)))
    assert a != b
    f1 = wire_ip4.flow_hash(bytes(IP(src="1.1.1.1", dst="2.2.2.2", flags="MF") / UDP(sport=1, dport=2)))
    f2 = wire_ip4.flow_hash(bytes(IP(src="1.1.1.1", dst="2.2.2.2", frag=100, proto=17) / Raw(b"x" * 8)))
    assert f1 == f2                          # all pieces of one UDP datagram hash alike
    assert wire_ip4.flow_hash(bytes(IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2)), seed=5) != a


# --- mtrie and FIB control plane ----------------------------------------------------

ROUTE_LENGTHS = st.sampled_from([0, 1, 4, 8, 12, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32])


def _addr_strategy():
    # addresses clustered in a few /16s and /24s so routes overlap a lot
    return st.one_of(
        st.integers(0, 0xffffffff),
        st.integers(0, 0xffff).map(lambda x: 0x0a010000 | x),
        st.integers(0, 0xff).map(lambda x: 0x0a010200 | x),
        st.integers(0, 0xff).map(lambda x: 0xc0a80100 | x),
    )


OPS = st.lists(st.tuples(st.sampled_from(["add", "add", "del"]), _addr_strategy(), ROUTE_LENGTHS),
               min_size=1, max_size=60)


@given(OPS, st.lists(_addr_strategy(), max_size=40))
@settings(max_examples=examples(300), deadline=None)
def test_mtrie_matches_oracle(ops, probes):
    m, oracle = Mtrie(0), Oracle()
    value = 1
    for op, addr, plen in ops:
        net = addr & _mask(plen)
        if op == "del":
            if (net, plen) not in oracle.routes:
                continue
            oracle.delete(net, plen)
            cv, cl = oracle.cover(net, plen)
            m.delete(net, plen, cv, cl)
        else:
            oracle.add(net, plen, value)
            m.add(net, plen, value)
            value += 1
        edges = [n for n, _ in oracle.routes] + [n | (~_mask(p) & 0xffffffff) for n, p in oracle.routes]
        for a in probes + edges:
            assert m.lookup(a) == oracle.lookup(a), hex(a)
    for net, plen in list(oracle.routes):
        oracle.delete(net, plen)
        m.delete(net, plen, *oracle.cover(net, plen))
    assert m.plies == 0                      # every ply folded back


def test_mtrie_bad_arguments():
    m = Mtrie(0)
    with pytest.raises(ValueError):
        m.add(0, 33, 1)
    with pytest.raises(ValueError):
        m.add(0, 8, 1 << 31)
    with pytest.raises(ValueError):
        m.delete(0, 8, 1, 8)


@pytest.fixture
def fib_engine(engine_factory):
    eng = engine_factory()
    eng.interfaces.add("if0", "fake", None, RX_MAC)
    eng.interfaces.add("if1", "fake", None, TX_MAC)
    return eng


def test_fib_routes_adjacencies_and_show(fib_engine):
    fib = ip4_fib(fib_engine)
    assert fib is ip4_fib(fib_engine)
    a = fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
    b = fib.add_route("10.9.0.0/16", next_hop_mac=NH1, sw_if_index="if1")
    assert a == b                             # shared adjacency
    assert fib.adjacency(a)["refs"] == 2
    assert fib.adjacency(a)["rewrite"] == bytes.fromhex(NH1.replace(":", "") + TX_MAC.replace(":", "") + "0800")
    fib.add_route("10.1.0.0/16", drop=True)
    fib.add_route("10.2.0.0/16", sw_if_index=1)
    fib.add_route("192.0.2.1", local=True)
    assert fib.lookup("10.3.4.5")["prefix"] == "10.0.0.0/8"
    assert fib.lookup("10.1.4.5")["type"] == "blackhole"
    assert fib.lookup("10.2.4.5")["type"] == "glean"
    assert fib.lookup("192.0.2.1")["type"] == "local"
    assert fib.lookup("11.0.0.1") == {"address": "11.0.0.1", "prefix": "0.0.0.0/0", "adj_index": 0,
                                      "index": 0, "type": "drop", "fixed": True}
    text = fib.show()
    assert text.splitlines()[0].startswith("ipv4-VRF:0, fib_index:0")
    assert "0.0.0.0/0\n  [@0]: dpo-drop ip4: no route" in text
    assert f"10.0.0.0/8\n  [@{a}]: ipv4 via {NH1} if1 (sw_if_index 1)" in text
    assert "10.1.0.0/16\n  [@1]: dpo-drop ip4: blackhole" in text
    assert "ipv4-glean if1" in text and "dpo-receive" in text
    assert "10.2.0.0/16" in fib.show("10.2.0.0/15") and "10.0.0.0/8" not in fib.show("10.2.0.0/15")
    assert fib.show("10.9.1.1").splitlines()[1] == "10.9.0.0/16"
    # replace, delete, cover restore, adjacency freed
    fib.add_route("10.9.0.0/16", next_hop_mac=NH2, sw_if_index=1)
    assert fib.adjacency(a)["refs"] == 1
    assert fib.lookup("10.9.0.1")["next_hop_mac"] == NH2
    fib.del_route("10.9.0.0/16")
    assert fib.lookup("10.9.0.1")["adj_index"] == a
    fib.del_route("10.0.0.0/8")
    assert fib.lookup("10.3.4.5")["adj_index"] == 0
    with pytest.raises(KeyError):
        fib.adjacency(a)
    with pytest.raises(KeyError):
        fib.del_route("10.0.0.0/8")
    with pytest.raises(ValueError):
        fib.add_route("10.0.0.0/33", next_hop_mac=NH1, sw_if_index=1)
    with pytest.raises(KeyError):
        fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=7)
    with pytest.raises(ValueError):
        fib.add_route("10.0.0.0/8", next_hop_mac=NH1)
    with pytest.raises(ValueError):
        fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1, drop=True)
    fib.clear()
    assert _live(fib.stats()) == _live(Ip4Fib(_FakeEngine()).stats())   # back to the built-in routes only


def test_fib_ecmp_buckets_and_refcounts(fib_engine):
    fib = ip4_fib(fib_engine)
    e = fib.add_route("10.0.0.0/8", paths=[(NH1, 1), (NH2, 0), {"next_hop_mac": "02:00:00:00:03:02",
                                                                   "sw_if_index": 1}])
    info = fib.adjacency(e)
    assert info["type"] == "ecmp" and info["buckets"] == 64 and len(info["paths"]) == 3
    picks = {fib.lookup("10.0.0.1", flow_hash=h)["path_adj_index"] for h in range(64)}
    assert picks == set(info["paths"])
    assert "dpo-load-balance: 3 paths, 64 buckets" in fib.show()
    fib.del_route("10.0.0.0/8")
    assert fib.stats()["adjacencies"] == 3    # ECMP and its paths freed (3 fixed remain)
    e2 = fib.add_route("10.0.0.0/8", paths=[(NH1, 1), (NH2, 0), ("02:00:00:00:03:02", 1)])
    assert fib.adjacency(e2)["buckets"] == 64  # bucket range reused


@given(st.lists(st.tuples(st.sampled_from(["add", "add", "del"]), _addr_strategy(), ROUTE_LENGTHS),
                min_size=1, max_size=40),
       st.lists(_addr_strategy(), min_size=1, max_size=30))
@settings(max_examples=examples(100), deadline=None)
def test_fib_lookup_matches_oracle(ops, probes):
    """Control-plane FIB (adjacencies, replace, delete with cover) against
    the oracle: each route gets its own next-hop MAC, so the adjacency
    identifies the route."""
    fib = Ip4Fib(_FakeEngine())
    baseline = fib.stats()
    oracle = Oracle()
    for net, plen in SPECIAL_PREFIXES:                 # built in: never forwarded
        oracle.add(net, plen, ADJ_INDEX_SPECIAL)
    user = set()
    for i, (op, addr, plen) in enumerate(ops):
        net = addr & _mask(plen)
        if op == "del":
            if (net, plen) in user:
                user.discard((net, plen))
                oracle.delete(net, plen)
                if (net, plen) in SPECIAL_PREFIXES:
                    oracle.add(net, plen, ADJ_INDEX_SPECIAL)
                fib.del_route((net, plen))
            elif (net, plen) in SPECIAL_PREFIXES:
                with pytest.raises(ValueError):
                    fib.del_route((net, plen))
            continue
        mac = "02:00:%02x:%02x:%02x:%02x" % tuple(struct.pack("!I", i + 1))
        adj = fib.add_route((net, plen), next_hop_mac=mac, sw_if_index=0)
        oracle.add(net, plen, adj)
        user.add((net, plen))
    for a in probes + [n for n, _ in oracle.routes]:
        assert fib.lookup_adj(a) == oracle.lookup(a, default=0)
        net, plen, adj = fib.match(a)
        assert adj == oracle.lookup(a, default=0)
    assert fib.stats()["routes"] == len(user)
    fib.clear()
    assert _live(fib.stats()) == _live(baseline)


def _live(stats):
    """FIB stats without the high-water marks (memory, buckets)."""
    return {k: v for k, v in stats.items() if k not in ("mtrie_bytes", "buckets")}


class _FakeEngine:
    """Just enough of an engine for a FIB: an interface table."""
    running = False

    def __init__(self):
        from graphnet.io.interface import InterfaceTable
        self.interfaces = InterfaceTable()
        self.interfaces.add("if0", "fake", None, TX_MAC)


def test_parse_prefix_forms():
    assert parse_prefix("10.1.2.3/8") == (0x0a000000, 8)
    assert parse_prefix("10.1.2.3") == (0x0a010203, 32)
    assert parse_prefix(("10.1.2.3", 16)) == (0x0a010000, 16)
    assert parse_prefix(ipaddress.IPv4Network("192.0.2.0/24")) == (0xc0000200, 24)
    with pytest.raises(ValueError):
        parse_prefix("10.0.0.0/40")
    with pytest.raises(ValueError):
        parse_prefix("fe80::/64")


# --- the forwarding path ------------------------------------------------------------

def test_forward_rewrites_mac_decrements_ttl(router):
    router.fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
    frames = [Ether(bytes(udp(dst="10.1.2.3", ttl=64, payload=b"pkt-%d" % i, id=i))) for i in range(300)]
    router.send(frames)
    out = router.take()
    assert len(out) == 300
    for i, (sent, got) in enumerate(zip(frames, out)):
        assert got.dst == NH1 and got.src == TX_MAC and got.type == 0x0800
        assert got[IP].ttl == 63 and got[IP].id == i
        assert got[Raw].load == b"pkt-%d" % i
        cs = got[IP].chksum
        del got[IP].chksum
        assert IP(bytes(got[IP]))[IP].chksum == cs        # Scapy recomputes: same
        assert bytes(got[UDP]) == bytes(sent[UDP])         # L4 untouched
    router.check_accounting()


def test_forward_sets_tx_interface_and_trims_padding(router):
    router.fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
    router.fib.add_route("10.2.0.0/16", next_hop_mac=NH2, sw_if_index=2)
    short = udp(dst="10.2.0.9", payload=b"x")                 # 43 bytes: pad to 60 like a NIC
    padded = bytes(short) + b"\x00" * (60 - len(bytes(short)))
    router.send([padded, udp(dst="10.7.7.7")])
    recs1 = router.if1.capture.records()
    recs2 = router.if2.capture.records()
    assert [r[2] for r in recs1] == [1] and [r[2] for r in recs2] == [2]
    assert [r[1] for r in recs1 + recs2] == [0, 0]          # rx interface kept
    assert len(recs2[0][0]) == len(bytes(short))             # padding trimmed
    assert Ether(recs2[0][0]).dst == NH2 and Ether(recs2[0][0]).src == TX2_MAC
    router.check_accounting()


def test_longest_prefix_wins_in_the_data_plane(router):
    f = router.fib
    f.add_route("0.0.0.0/0", next_hop_mac=NH1, sw_if_index=1)
    f.add_route("10.0.0.0/8", next_hop_mac=NH2, sw_if_index=2)
    f.add_route("10.1.0.0/16", next_hop_mac=NH1, sw_if_index=1)
    f.add_route("10.1.2.0/24", next_hop_mac=NH2, sw_if_index=2)
    f.add_route("10.1.2.3/32", next_hop_mac=NH1, sw_if_index=1)
    cases = {"10.1.2.3": 1, "10.1.2.4": 2, "10.1.3.1": 1, "10.9.9.9": 2, "8.8.8.8": 1}
    for dst, iface in cases.items():
        router.send([udp(dst=dst)])
        assert len(router.take(router.if1 if iface == 1 else router.if2)) == 1, dst
    f.del_route("10.1.2.0/24")               # 10.1.2.4 falls back to 10.1.0.0/16 (if1)
    router.send([udp(dst="10.1.2.4")])
    assert len(router.take(router.if1)) == 1
    f.del_route("0.0.0.0/0")
    router.send([udp(dst="8.8.8.8")])
    assert router.engine.error_count("ip4-lookup", "no-route") == 1
    router.check_accounting()


def test_ecmp_spreads_flows_and_keeps_each_flow_on_one_path(router):
    router.fib.add_route("10.0.0.0/8", paths=[(NH1, 1), (NH2, 2)])
    frames = [udp(dst="10.0.0.1", sport=1000 + i) for i in range(64)] * 2
    router.send(frames)
    got1 = [p[UDP].sport for p in router.take(router.if1)]
    got2 = [p[UDP].sport for p in router.take(router.if2)]
    assert len(got1) + len(got2) == 128
    assert 16 <= len(got1) <= 112                           # both paths used
    assert not set(got1) & set(got2)                       # a flow never splits
    router.check_accounting()


def test_flow_hash_in_opaque_matches_fib_lookup(router):
    router.fib.add_route("10.0.0.0/8", paths=[(NH1, 1), (NH2, 2)])
    pkt = udp(dst="10.0.0.1", sport=4242)
    h = wire_ip4.flow_hash(bytes(pkt[IP]), seed=0x2545f491)
    expect = router.fib.lookup("10.0.0.1", flow_hash=h)["path_adj_index"]
    router.send([pkt])
    iface = 1 if router.fib.adjacency(expect)["sw_if_index"] == 1 else 2
    assert len(router.take(router.if1 if iface == 1 else router.if2)) == 1


# --- ethernet-input --------------------------------------------------------------------

def test_ethernet_input_filters_and_dispatches(router):
    router.fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
    eng = router.engine
    router.send([udp(dmac="ff:ff:ff:ff:ff:ff"), udp(dmac="01:00:5e:00:00:01"), udp(dmac="02:00:00:00:00:77")])
    assert len(router.take()) == 2
    assert eng.error_count("ethernet-input", "not-for-us") == 1
    eng.interfaces.set_promiscuous("if0", True)
    router.send([udp(dmac="02:00:00:00:00:77")])
    assert len(router.take()) == 1
    eng.interfaces.set_promiscuous("if0", False)
    router.send([Ether(src=PEER_MAC, dst=RX_MAC) / ARP(),                       # nobody claims ARP yet
                 Ether(src=PEER_MAC, dst=RX_MAC, type=0x86dd) / Raw(b"\x60" + bytes(39)),
                 Ether(src=PEER_MAC, dst=RX_MAC) / Dot1Q(vlan=10) / IP(dst="10.0.0.1") / UDP(),
                 Ether(src=PEER_MAC, dst=RX_MAC) / Dot1Q(vlan=0) / Dot1Q(vlan=5) / IP(dst="10.0.0.1"),
                 Ether(src=PEER_MAC, dst=RX_MAC, type=100) / Raw(bytes(100)),
                 bytes(Ether(src=PEER_MAC, dst=RX_MAC))[:13],
                 bytes(Ether(src=PEER_MAC, dst=RX_MAC) / Dot1Q(vlan=0))[:16]])
    assert eng.error_count("ethernet-input", "unknown-ethertype") == 1      # ARP
    assert eng.error_count("ethernet-input", "ipv6") == 1                   # its own (info) row
    assert eng.error_count("ethernet-input", "vlan-tagged") == 2
    assert eng.error_count("ethernet-input", "llc") == 1
    assert eng.error_count("ethernet-input", "too-short") == 2
    # a priority tag (VID 0) is stripped and the frame forwarded untagged
    router.send([Ether(src=PEER_MAC, dst=RX_MAC) / Dot1Q(vlan=0, prio=5) / IP(dst="10.0.0.1") / UDP()])
    out = router.take()
    assert len(out) == 1 and out[0].type == 0x0800 and Dot1Q not in out[0]
    assert eng.error_count("ethernet-input", "priority-tagged") == 1
    router.check_accounting()


def test_ethernet_input_unknown_rx_interface(router):
    router.pg.add_stream(Stream("bad-if", [bytes(udp())], count=1, sw_if_index=42))
    router.engine.run_until_idle()
    router.sent += 1
    assert router.engine.error_count("ethernet-input", "no-interface") == 1
    router.check_accounting()


def test_ethernet_input_attach_claims_ethertype(engine_factory):
    """A node claims an ethertype in its own registration; ethernet-input
    is not edited."""
    arp_sink = Capture(name="arp-sink")
    (reg,) = arp_sink.nodes()
    pg = PacketGenerator(next_node="ethernet-input")
    eng = engine_factory([pg, ip4.NODES, dataclasses.replace(reg, attach_to=(("ethernet-input", 0x0806),))])
    eng.interfaces.add("if0", "fake", None, RX_MAC)
    eng.build()
    pg.add_stream(Stream("arp", [bytes(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.1"))],
                         count=3))
    eng.run_until_idle()
    got = arp_sink.packets()
    assert len(got) == 3 and ARP(got[0]).pdst == "10.0.0.1"     # current_data is past the header


def test_ethernet_input_rejects_bad_attach_key(engine_factory):
    bad = Node("bad", fn=Capture().nodes()[0].fn, attach_to=(("ethernet-input", 0x8100),))
    eng = engine_factory([ip4.NODES, bad])
    with pytest.raises(ValueError, match="cannot attach"):
        eng.build()


# --- ip4-input ---------------------------------------------------------------------

def _raw_ip_frame(iphdr: bytes) -> bytes:
    return bytes(Ether(src=PEER_MAC, dst=RX_MAC, type=0x0800)) + iphdr


def _good_ip(**kw):
    return bytes(IP(src="192.168.1.1", dst="10.1.2.3", **kw) / UDP(sport=1, dport=2) / Raw(b"payload!"))


def _set_csum(h: bytearray) -> bytes:
    h[10:12] = b"\x00\x00"
    hl = (h[0] & 0xf) * 4
    h[10:12] = struct.pack("!H", inet_checksum(bytes(h[:hl])))
    return bytes(h)


def _mutated(fn):
    h = bytearray(_good_ip())
    fn(h)
    return _set_csum(h)


MALFORMED = [
    ("too-short", lambda: _good_ip()[:19]),
    ("bad-version", lambda: _mutated(lambda h: h.__setitem__(0, 0x65))),
    ("bad-ihl", lambda: bytes([0x44]) + _good_ip()[1:]),
    ("bad-length", lambda: _mutated(lambda h: h.__setitem__(slice(2, 4), struct.pack("!H", 12)))),
    ("truncated", lambda: _mutated(lambda h: h.__setitem__(slice(2, 4), struct.pack("!H", 200)))),
    ("bad-checksum", lambda: _good_ip()[:10] + b"\xde\xad" + _good_ip()[12:]),
    ("ttl-zero", lambda: _good_ip(ttl=0)),
    ("options", lambda: bytes(IP(dst="10.1.2.3", options=[b"\x01\x01\x01\x00"]) / UDP())),
]


@pytest.mark.parametrize("symbol,make", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_ip4_input_drops_each_malformed_case_with_its_counter(router, symbol, make):
    router.fib.add_route("0.0.0.0/0", next_hop_mac=NH1, sw_if_index=1)
    router.send([_raw_ip_frame(make()), _raw_ip_frame(_good_ip())])
    assert len(router.take()) == 1
    errs = {k: v for k, v in router.errors().items() if k[0] == "ip4-input"}
    assert errs == {("ip4-input", symbol): 1}
    router.check_accounting()


def test_ip4_input_no_checksum_variant(engine_factory):
    pg = PacketGenerator(next_node="ip4-input-no-checksum")
    eng = engine_factory([pg, ip4.NODES])
    eng.interfaces.add("if0", "fake", None, RX_MAC)
    eng.build()
    ip4.fib(eng).add_route("0.0.0.0/0", drop=True)
    bad = _good_ip()[:10] + b"\xde\xad" + _good_ip()[12:]
    pg.add_stream(Stream("s", [bad, _good_ip(ttl=0)], count=2, fix_checksums=False))
    eng.run_until_idle()
    assert eng.error_count("ip4-input-no-checksum", "bad-checksum") == 0
    assert eng.error_count("ip4-input-no-checksum", "ttl-zero") == 1
    assert eng.error_count("ip4-lookup", "blackhole") == 1


# --- ip4-lookup / ip4-rewrite drops --------------------------------------------------------

def test_lookup_drop_reasons(router):
    f = router.fib
    f.add_route("10.1.0.0/16", drop=True)
    f.add_route("10.2.0.0/16", sw_if_index=1)
    f.add_route("10.3.0.1/32", local=True)
    router.send([udp(dst="9.9.9.9"), udp(dst="10.1.0.1"), udp(dst="10.2.0.1"), udp(dst="10.3.0.1")])
    eng = router.engine
    assert [eng.error_count("ip4-lookup", s) for s in ("no-route", "blackhole", "glean-unresolved",
                                                       "no-local-node")] == [1, 1, 1, 1]
    router.check_accounting()


def test_local_and_glean_arcs_attach(engine_factory):
    """ip4-local / ARP attach with keys "local" / "glean" of ip4-lookup."""
    local, glean = Capture(name="local-sink"), Capture(name="glean-sink")
    regs = [dataclasses.replace(local.nodes()[0], attach_to=(("ip4-lookup", "local"),)),
            dataclasses.replace(glean.nodes()[0], attach_to=(("ip4-lookup", "glean"),))]
    r = Router(engine_factory, extra_nodes=regs)
    r.fib.add_route("10.3.0.1/32", local=True)
    r.fib.add_route("10.2.0.0/16", sw_if_index=1)
    r.send([udp(dst="10.3.0.1"), udp(dst="10.2.0.1"), udp(dst="10.2.0.2")])
    assert len(local) == 1 and len(glean) == 2
    assert IP(local.packets()[0]).dst == "10.3.0.1"          # still at the IPv4 header
    assert r.engine.error_count("ip4-lookup", "no-local-node") == 0


def test_special_destinations_are_never_forwarded(router):
    router.fib.add_route("0.0.0.0/0", next_hop_mac=NH1, sw_if_index=1)
    router.send([udp(dst=d) for d in ("0.0.0.0", "224.0.0.5", "239.1.2.3", "240.0.0.1", "255.255.255.255",
                                      "223.255.255.255", "1.0.0.0")])
    assert len(router.take()) == 2
    assert router.engine.error_count("ip4-lookup", "special-destination") == 5
    assert "224.0.0.0/4\n  [@2]: dpo-drop ip4: special" in router.fib.show()
    router.fib.add_route("224.0.0.0/4", next_hop_mac=NH1, sw_if_index=1)   # a user route overrides
    router.send([udp(dst="239.1.2.3")])
    assert len(router.take()) == 1
    router.fib.del_route("224.0.0.0/4")                                    # and the built-in is back
    with pytest.raises(ValueError, match="built-in"):
        router.fib.del_route("224.0.0.0/4")
    router.send([udp(dst="239.1.2.3")])
    assert router.engine.error_count("ip4-lookup", "special-destination") == 6
    router.check_accounting()


def test_rewrite_ttl_expired_mtu_and_interface_down(engine_factory):
    r = Router(engine_factory, mtu=576)
    r.fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
    r.fib.add_route("10.2.0.0/16", next_hop_mac=NH2, sw_if_index=2)
    r.send([udp(ttl=1), udp(ttl=2), udp(payload=bytes(548)), udp(payload=bytes(549), flags="DF"),
            udp(payload=bytes(549))])
    out = r.take()
    assert [p[IP].ttl for p in out] == [1, 63, 63, 63]
    assert len(out[1]) == 14 + 576
    assert [len(p) for p in out[2:]] == [14 + 572, 14 + 25]   # the last one, fragmented
    assert r.engine.error_count("ip4-rewrite", "ttl-expired") == 1
    # too big: to ip4-frag, which drops it (DF set, no ip4-icmp-error here)
    assert r.engine.error_count("ip4-frag", "df-set-too-big") == 1
    r.engine.interfaces.set_admin_up("if2", False)
    r.send([udp(dst="10.2.0.1")])
    assert r.engine.error_count("interface-output", "interface-down") == 1
    r.check_accounting()


def test_routes_change_while_the_engine_runs(router):
    """Control calls from another thread go through Engine.call."""
    import time
    eng = router.engine
    eng.start()
    try:
        router.fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
        router.pg.add_stream(Stream("live", [bytes(udp())], count=5))
        deadline = time.monotonic() + 5
        while len(router.if1.capture) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        router.fib.del_route("10.0.0.0/8")
        assert router.fib.lookup("10.1.2.3")["type"] == "drop"
    finally:
        eng.stop()
    assert len(router.if1.capture) == 5


# --- tracing ---------------------------------------------------------------------

def test_trace_shows_each_node(router):
    router.fib.add_route("10.0.0.0/8", paths=[(NH1, 1), (NH1, 1)])
    router.fib.add_route("10.1.0.0/16", next_hop_mac=NH1, sw_if_index=1)
    router.engine.trace_add("pg-input", 1)
    router.send([udp(dst="10.1.2.3", ttl=9)])
    text = router.engine.show("trace")
    assert "ethernet-input\n  rx sw_if_index 0 (if0)\n  IP4: 02:00:00:00:00:99 -> 02:00:00:00:00:01" in text
    assert "ip4-input\n  rx sw_if_index 0\n  UDP: 192.168.1.1 -> 10.1.2.3\n    tos 0x00, ttl 9" in text
    assert f"ip4-lookup\n  fib 0 dpo-idx" in text and f"ipv4 via {NH1} if1" in text
    assert f"ip4-rewrite\n  tx_sw_if_index 1 adj-idx" in text and f"IP4: {TX_MAC} -> {NH1}" in text
    assert "interface-output" in text


# --- random and mutated frames --------------------------------------------------------

def _mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


def _template_frames():
    return [
        bytes(udp(dst="10.1.2.3")),
        bytes(udp(dst="10.200.0.1", ttl=1)),
        bytes(Ether(src=PEER_MAC, dst=RX_MAC) / IP(dst="10.1.2.3", options=[b"\x01\x01\x01\x00"]) / TCP()),
        bytes(Ether(src=PEER_MAC, dst=RX_MAC) / Dot1Q(vlan=0) / IP(dst="10.5.5.5") / ICMP()),
        bytes(Ether(src=PEER_MAC, dst=RX_MAC) / ARP()),
        bytes(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(dst="10.9.9.9", frag=10) / Raw(bytes(30))),
    ]


def test_random_and_mutated_frames_never_leak(engine_factory):
    r = Router(engine_factory, mtu=200)
    r.fib.add_route("10.0.0.0/8", next_hop_mac=NH1, sw_if_index=1)
    r.fib.add_route("10.1.0.0/16", paths=[(NH1, 1), (NH2, 2)])
    r.fib.add_route("10.5.0.0/16", sw_if_index=2)
    r.fib.add_route("10.9.0.0/16", drop=True)
    templates = _template_frames()

    @given(st.lists(st.one_of(
        st.binary(min_size=1, max_size=300),
        st.tuples(st.sampled_from(templates),
                  st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
                  st.integers(0, 300)).map(lambda t: _mutate(t[0], t[1])[:max(1, t[2])] if t[2] else
                                           _mutate(t[0], t[1])),
    ), min_size=1, max_size=40))
    @HSETTINGS
    def run(frames):
        r.send(frames)
        r.check_accounting()
        for iface in (r.if1, r.if2):
            for p in r.take(iface):
                # whatever was forwarded is a valid IPv4 packet with TTL decremented
                assert wire_ip4.validate(bytes(p)[14:]) == "none"

    run()


def _martian(src: int) -> bool:
    """Linux's martian sources that ip4-input drops (the oracle)."""
    o = src >> 24
    return o == 0 or o == 127 or 224 <= o <= 239 or src == 0xffffffff


def test_random_headers_forward_with_valid_checksum(engine_factory):
    r = Router(engine_factory)
    r.fib.add_route("0.0.0.0/0", next_hop_mac=NH1, sw_if_index=1)

    @given(st.lists(st.tuples(st.integers(2, 255), st.integers(0, 0xffff), st.integers(0, 255),
                              st.integers(0, 0xffffffff), st.integers(0x01000000, 0xdfffffff),
                              st.binary(max_size=64)),
                    min_size=1, max_size=20))
    @HSETTINGS
    def run(specs):
        frames = [Ether(src=PEER_MAC, dst=RX_MAC) / IP(ttl=ttl, id=ident, tos=tos, src=str(ipaddress.IPv4Address(s)),
                                                       dst=str(ipaddress.IPv4Address(d)), proto=253) / Raw(pl)
                  for ttl, ident, tos, s, d, pl in specs]
        r.send(frames)
        out = r.take()
        # martian sources (0/8, 127/8, 224/4, 255.255.255.255) are dropped by ip4-input
        forwarded = [f for f, spec in zip(frames, specs) if not _martian(spec[3])]
        assert len(out) == len(forwarded)
        for sent, got in zip(forwarded, out):
            assert got[IP].ttl == sent[IP].ttl - 1
            assert wire_ip4.validate(bytes(got[IP])) == "none"
            assert bytes(got[IP])[12:] == bytes(sent[IP])[12:]
        r.check_accounting()

    run()


def test_random_destinations_with_pg_edits(engine_factory):
    """pg rewrites ip4.dst at random per packet (fix_checksums): every
    packet lands on the interface its longest-prefix route says."""
    r = Router(engine_factory)
    rnd = random.Random(7)
    oracle = Oracle()
    for i in range(300):
        plen = rnd.choice([8, 12, 16, 20, 24, 28, 32])
        net = (0x0a000000 | rnd.getrandbits(24)) & _mask(plen)
        iface = rnd.choice([1, 2])
        r.fib.add_route((net, plen), next_hop_mac=NH1 if iface == 1 else NH2, sw_if_index=iface)
        oracle.add(net, plen, iface)
    r.pg.add_stream(Stream("rand", [bytes(udp(dst="10.0.0.0"))], count=2000, sw_if_index=0,
                           edits=[Edit.field("ip4.dst", "10.0.0.0", "10.255.255.255", "random")]))
    r.engine.run_until_idle()
    r.sent += 2000
    for iface, cap in ((1, r.if1), (2, r.if2)):
        for p in cap.capture.scapy():
            assert oracle.lookup(int(ipaddress.IPv4Address(p[IP].dst))) == iface
    assert len(r.if1.capture) + len(r.if2.capture) + r.engine.error_count("ip4-lookup", "no-route") == 2000
    r.check_accounting()
