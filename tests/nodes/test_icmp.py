"""ip4-local, ICMP echo (ip4-icmp-input) and ICMP errors (ip4-icmp-error):
byte-level checks with Scapy (every checksum recomputed by Scapy must equal
graphnet's), counters by name, and buffer accounting."""
import pytest
from scapy.layers.inet import ICMP, IP, IPerror, UDP, UDPerror, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import HostBench, mac_of
from graphnet.testing.packets import checksums_ok

PEER = "02:00:00:00:aa:01"
PEER1 = "02:00:00:00:bb:01"
IF0, IF1 = mac_of(0), mac_of(1)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"], mtu=1500)
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    b.neighbors.add("if1", "10.1.0.2", PEER1, static=True)
    yield b
    b.check_accounting()


def ping(dst, src="10.0.0.2", ttl=64, payload=b"abcdefgh" * 4, ident=7, seq=1, dmac=IF0, smac=PEER, **ipkw):
    return Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, ttl=ttl, **ipkw) / ICMP(id=ident, seq=seq) / Raw(payload)


def test_echo_reply_built_in_place(bench):
    req = ping("10.0.0.1", ttl=17, id=0x1234, flags="DF")
    (r,) = bench.out("if0", [req])
    assert (r.src, r.dst) == (IF0, PEER)
    assert (r[IP].src, r[IP].dst, r[IP].ttl, r[IP].proto, r[IP].id) == ("10.0.0.1", "10.0.0.2", 64, 1, 0x1234)
    assert (r[ICMP].type, r[ICMP].code, r[ICMP].id, r[ICMP].seq) == (0, 0, 7, 1)
    assert bytes(r[ICMP].payload) == b"abcdefgh" * 4
    assert checksums_ok(r)
    assert bench.count("ip4-icmp-input", "echo-replies") == 1


@pytest.mark.parametrize("payload, ident, seq", [(b"", 7, 1), (b"x", 7, 1), (b"\xff" * 33, 7, 1),
                                                (bytes(range(256)) * 5, 7, 1),
                                                (b"", 0, 0), (bytes(8), 0, 0),          # all-zero reply: 0xffff
                                                (b"\xff\xff", 0, 0)])                    # reply sums to 0xffff: 0x0000
def test_echo_checksums_for_any_payload(bench, payload, ident, seq):
    (r,) = bench.out("if0", [ping("10.0.0.1", payload=payload, ident=ident, seq=seq)])
    assert bytes(r[ICMP].payload) == payload and checksums_ok(r)


def test_echo_for_every_interface_address(bench):
    out = bench.send("if0", [ping("10.0.0.1"), ping("10.1.0.1")])["if0"]
    assert [p[IP].src for p in out] == ["10.0.0.1", "10.1.0.1"]
    # from the other side, through the router's other interface
    out = bench.send("if1", [ping("10.0.0.1", src="10.1.0.2", dmac=IF1, smac=PEER1)])["if1"]
    assert out[0][IP].src == "10.0.0.1" and out[0].dst == PEER1


def test_echo_padding_is_not_echoed(bench):
    req = Ether(bytes(ping("10.0.0.1", payload=b"")) + b"\0" * 18)     # padded to 60 bytes
    (r,) = bench.out("if0", [req])
    assert r[IP].len == 28 and checksums_ok(r)


def test_bad_icmp_is_counted(bench):
    bad = ping("10.0.0.1")
    bad[ICMP].chksum = 0x1234
    short = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1", proto=1) / Raw(b"\x08\x00\xf7")
    reply = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0)
    unreach = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=3, code=3) / IPerror()
    ts = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=13)
    assert bench.out("if0", [bad, short, reply, unreach, ts]) == []
    assert [bench.count("ip4-icmp-input", s) for s in ("bad-checksum", "too-short", "echo-reply-received",
                                                       "error-received", "unhandled-type")] == [1, 1, 1, 1, 1]


# --- errors ---------------------------------------------------------------------------

def test_ttl_expired_in_transit(bench):
    sent = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=1, id=99) / UDP(sport=33434, dport=33435) / Raw(b"probe")
    out = bench.send("if0", [sent])
    assert out["if1"] == []
    (e,) = out["if0"]
    assert (e.dst, e[IP].src, e[IP].dst, e[IP].ttl, e[IP].proto) == (PEER, "10.0.0.1", "10.0.0.2", 64, 1)
    assert (e[ICMP].type, e[ICMP].code) == (11, 0)
    assert bytes(e[IP])[28:] == bytes(sent[IP])                 # the whole (short) datagram, as received
    assert checksums_ok(e)
    assert bench.count("ip4-rewrite", "ttl-expired") == 1
    assert bench.count("ip4-icmp-error", "sent") == 1
    # TTL 2 goes through with 1
    s2 = Ether(bytes(sent))
    s2[IP].ttl = 2
    del s2[IP].chksum
    (f,) = bench.send("if0", [s2])["if1"]
    assert f[IP].ttl == 1


def test_error_quotes_at_most_576_bytes(bench):
    big = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=1) / UDP() / Raw(bytes(1400))
    (e,) = bench.out("if0", [big])
    assert len(e[IP]) == 576 and e[IP].len == 576
    assert bytes(e[IP])[28:] == bytes(big[IP])[:548]
    assert checksums_ok(e)


def test_protocol_unreachable(bench):
    sent = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1", proto=253) / Raw(b"hello")
    (e,) = bench.out("if0", [sent])
    assert (e[ICMP].type, e[ICMP].code, e[IP].src) == (3, 2, "10.0.0.1")
    assert bytes(e[IP])[28:] == bytes(sent[IP])
    assert checksums_ok(e)
    assert bench.count("ip4-local", "unknown-protocol") == 1


def test_fragmentation_needed_with_df(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"], mtu=576)
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    b.neighbors.add("if1", "10.1.0.2", PEER1, static=True)
    df = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.2", flags="DF") / UDP() / Raw(bytes(1000))
    out = b.send("if0", [df])
    (e,) = out["if0"]
    assert (e[ICMP].type, e[ICMP].code) == (3, 4)
    assert bytes(e[ICMP])[6:8] == (576).to_bytes(2, "big")          # next-hop MTU (RFC 1191)
    assert checksums_ok(e)
    b.check_accounting()


def test_no_error_about_errors_broadcasts_fragments_or_bad_sources(bench):
    frames = [
        # an ICMP error whose TTL runs out
        Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=1) / ICMP(type=3, code=1) / IPerror(),
        # a non-first fragment
        Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=1, frag=100) / Raw(bytes(16)),
        # from a source that is not one host (class E: ip4-input lets it pass, as Linux does)
        Ether(src=PEER, dst=IF0) / IP(src="240.0.0.1", dst="10.1.0.2", ttl=1) / UDP(),
        Ether(src=PEER, dst=IF0) / IP(src="250.1.2.3", dst="10.0.0.1", proto=253),
        # martian sources: ip4-input drops them before anything could answer
        Ether(src=PEER, dst=IF0) / IP(src="0.0.0.0", dst="10.1.0.2", ttl=1) / UDP(),
        Ether(src=PEER, dst=IF0) / IP(src="127.0.0.1", dst="10.0.0.1", proto=253),
        # received in a link-layer broadcast
        Ether(src=PEER, dst="ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.2", dst="10.0.0.1", proto=253),
    ]
    out = bench.send("if0", frames)
    assert out == {"if0": [], "if1": []}
    assert [bench.count("ip4-icmp-error", s) for s in ("icmp-error", "not-first-fragment", "bad-source",
                                                       "broadcast", "sent")] == [1, 1, 2, 1, 0]
    assert bench.count("ip4-input", "martian-source-zeronet") == 1
    assert bench.count("ip4-input", "martian-source-loopback") == 1
    # each dropped packet is counted once, under its reason
    assert bench.count("ip4-rewrite", "ttl-expired") == 3
    assert bench.count("ip4-local", "unknown-protocol") == 2


def test_icmp_errors_are_rate_limited(bench):
    ip4_host.configure_icmp_errors(bench.engine, rate=0.001, burst=3)
    sent = [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.2", ttl=1, id=i) / UDP() for i in range(10)]
    out = bench.out("if0", sent)
    assert len(out) == 3
    assert bench.count("ip4-icmp-error", "rate-limited") == 7
    assert bench.count("ip4-rewrite", "ttl-expired") == 10


def test_fragmented_ping(bench):
    """With ip4-reassembly in the graph a fragmented echo request is
    answered (and the reply fragmented again by ip4-frag when it exceeds
    the MTU); without it, fragments for us are dropped and counted."""
    from scapy.layers.inet import fragment, defragment
    req = IP(src="10.0.0.2", dst="10.0.0.1", id=4242) / ICMP(id=3, seq=9) / Raw(bytes(range(256)) * 12)
    frags = [Ether(src=PEER, dst=IF0) / f for f in fragment(req, fragsize=1200)]
    assert len(frags) == 3
    out = bench.out("if0", frags)
    if "ip4-reassembly" not in bench.engine.registrations:
        assert out == [] and bench.count("ip4-local", "fragment") == 3
        return
    assert len(out) >= 2                            # 3100 bytes do not fit a 1500-byte MTU
    (reply,) = defragment([p[IP] for p in out])
    reply = IP(bytes(reply))
    assert (reply.src, reply.dst, reply[ICMP].type, reply[ICMP].id, reply[ICMP].seq) == ("10.0.0.1", "10.0.0.2", 0, 3, 9)
    assert bytes(reply[ICMP].payload) == bytes(range(256)) * 12
    assert checksums_ok(reply)


def test_ping_to_unresolved_peer_is_answered_after_arp(engine_factory):
    """The reply needs the peer's MAC: graphnet asks, queues, answers."""
    b = HostBench(engine_factory, ["if0"])
    b.address("if0", "10.0.0.1/24")
    req = ping("10.0.0.1", src="10.0.0.9")
    (arp,) = b.out("if0", [req])
    assert arp[ARP].op == 1 and arp[ARP].pdst == "10.0.0.9"
    (r,) = b.out("if0", [Ether(src=PEER, dst=IF0) / ARP(op=2, hwsrc=PEER, psrc="10.0.0.9", hwdst=IF0,
                                                         pdst="10.0.0.1")])
    assert r[ICMP].type == 0 and r.dst == PEER and r[IP].ttl == 64
    b.check_accounting()


def test_trace_of_an_echo(bench):
    bench.engine.trace_add("pg-input", 1)
    bench.send("if0", [ping("10.0.0.1")])
    text = bench.engine.show("trace")
    for node in ("ethernet-input", "ip4-input", "ip4-lookup", "ip4-local", "ip4-icmp-input", "ip4-rewrite",
                 "interface-output"):
        assert f"\n{node}\n" in text or text.startswith(node) or f"{node}\n" in text, node
