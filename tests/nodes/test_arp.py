"""ARP and the neighbour table: arp-input answers and learns, ip4-arp
resolves and queues, ip4-neighbor retries / times out / flushes, and the
control plane makes the FIB follow (graphnet.nodes.ip4_neighbor).

Frames go in through pg on a capture interface and what graphnet sends is
checked byte by byte with Scapy; every engine is leak-checked by the
engine_factory fixture (queued packets included: the engine frees them on
close), and HostBench.check_accounting checks that every buffer in use is
one the neighbour table holds.
"""
import time

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import HostBench, mac_of
from graphnet.wire import arp as wire_arp

BCAST = "ff:ff:ff:ff:ff:ff"
PEER = "02:00:00:00:aa:01"
PEER2 = "02:00:00:00:aa:02"
IF0, IF1 = mac_of(0), mac_of(1)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    yield b
    b.check_accounting()


def arp_req(psrc, pdst, hwsrc=PEER, dst=BCAST):
    return Ether(src=hwsrc, dst=dst) / ARP(op=1, hwsrc=hwsrc, psrc=psrc, pdst=pdst)


def arp_reply(psrc, pdst, hwsrc=PEER, hwdst=IF1, dst=IF1):
    return Ether(src=hwsrc, dst=dst) / ARP(op=2, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst)


def udp_to(dst, src="10.0.0.2", ttl=64, payload=b"graphnet", i=0, dmac=IF0):
    return Ether(src=PEER, dst=dmac) / IP(src=src, dst=dst, ttl=ttl, id=i) / UDP(sport=1000 + i, dport=2000) / Raw(payload)


# --- wire ---------------------------------------------------------------------------

def test_wire_arp_matches_scapy():
    body = wire_arp.build(1, bytes.fromhex("020000000001"), "10.0.0.1", None, "10.0.0.2")
    assert body == bytes(ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", hwdst="00:00:00:00:00:00",
                             pdst="10.0.0.2"))
    assert wire_arp.validate(body) == "none"
    assert wire_arp.validate(body[:27]) == "too-short"
    assert wire_arp.validate(b"\x00\x06" + body[2:]) == "bad-format"
    assert wire_arp.validate(body[:6] + b"\x00\x09" + body[8:]) == "bad-opcode"
    text = wire_arp.format_arp(body)
    assert text.startswith("request, type ethernet/IP4") and "02:00:00:00:00:01/10.0.0.1 ->" in text


# --- answering and learning -------------------------------------------------------------

def test_request_for_our_address_is_answered_and_teaches_us(bench):
    out = bench.out("if0", [arp_req("10.0.0.2", "10.0.0.1")])
    assert len(out) == 1
    r = out[0]
    assert (r.dst, r.src, r.type) == (PEER, IF0, 0x0806)
    assert (r[ARP].op, r[ARP].hwsrc, r[ARP].psrc, r[ARP].hwdst, r[ARP].pdst) == (2, IF0, "10.0.0.1", PEER, "10.0.0.2")
    assert len(bytes(r)) == 42
    assert bench.count("arp-input", "replies-sent") == 1
    n = bench.neighbors.lookup("if0", "10.0.0.2")
    assert n["mac"] == PEER and n["state"] == "reachable" and n["complete"] and not n["static"]
    # the FIB now has a rewrite to it: a packet to 10.0.0.2 goes straight out
    assert bench.fib.lookup("10.0.0.2")["type"] == "rewrite"
    out = bench.send("if1", [udp_to("10.0.0.2", src="10.1.0.7", dmac=IF1)])["if0"]
    assert out[0][IP].ttl == 63 and out[0].dst == PEER and out[0].src == IF0
    assert bench.count("ip4-arp", "queued") == 0


def test_arp_probe_is_answered_without_learning(bench):
    out = bench.out("if0", [arp_req("0.0.0.0", "10.0.0.1")])
    assert out[0][ARP].op == 2 and out[0][ARP].pdst == "0.0.0.0"
    assert bench.neighbors.entries() == []


def test_request_for_another_host_is_not_answered(bench):
    assert bench.out("if0", [arp_req("10.0.0.2", "10.0.0.3")]) == []
    assert bench.count("arp-input", "not-for-us") == 1
    assert bench.neighbors.entries() == []
    # the address of another interface is not answered on this one
    assert bench.out("if0", [arp_req("10.0.0.2", "10.1.0.1")]) == []


def test_off_link_sender_is_neither_answered_nor_learned(bench):
    """Issue 10 item 5: a request from outside the receiving interface's
    prefixes (here 192.168.9.9, and 10.1.0.9, which is if1's) on if0."""
    out = bench.out("if0", [arp_req("192.168.9.9", "10.0.0.1"), arp_req("10.1.0.9", "10.0.0.1")])
    assert out == []
    assert bench.neighbors.entries() == []
    assert bench.count("arp-input", "sender-not-on-link") == 2
    # an on-link sender still is, and an ARP probe (sender 0.0.0.0) is answered
    out = bench.out("if0", [arp_req("10.0.0.9", "10.0.0.1"), arp_req("0.0.0.0", "10.0.0.1")])
    assert [p[ARP].pdst for p in out] == ["10.0.0.9", "0.0.0.0"]
    assert [n["ip"] for n in bench.neighbors.entries()] == ["10.0.0.9"]


def test_reply_to_us_is_learned(bench):
    assert bench.out("if1", [arp_reply("10.1.0.5", "10.1.0.1")]) == []
    assert bench.count("arp-input", "reply-received") == 1
    assert bench.neighbors.lookup("if1", "10.1.0.5")["mac"] == PEER


def test_gratuitous_arp_updates_but_never_creates(bench):
    grat = lambda mac: Ether(src=mac, dst=BCAST) / ARP(op=1, hwsrc=mac, psrc="10.0.0.2", pdst="10.0.0.2")
    bench.send("if0", [grat(PEER)])
    assert bench.neighbors.entries() == []
    assert bench.count("arp-input", "gratuitous") == 1
    bench.send("if0", [arp_req("10.0.0.2", "10.0.0.1")])
    bench.send("if0", [grat(PEER2)])
    assert bench.neighbors.lookup("if0", "10.0.0.2")["mac"] == PEER2
    out = bench.send("if1", [udp_to("10.0.0.2", src="10.1.0.7", dmac=IF1)])["if0"]
    assert out[0].dst == PEER2                      # the FIB followed the new MAC
    assert bench.neighbors.stats()["updated"] == 1


def test_address_conflict_and_bad_packets_are_counted(bench):
    frames = [
        arp_req("10.0.0.1", "10.0.0.5"),                                        # someone claims our address
        Ether(src=PEER, dst=BCAST, type=0x0806) / Raw(bytes(ARP(pdst="10.0.0.1"))[:20]),   # too short
        Ether(src=PEER, dst=BCAST) / ARP(hwtype=6, hwlen=6, plen=4, psrc="10.0.0.2", pdst="10.0.0.1"),    # bad format
        Ether(src=PEER, dst=BCAST) / ARP(op=9, psrc="10.0.0.2", pdst="10.0.0.1"),        # bad opcode
        Ether(src=PEER, dst=BCAST) / ARP(op=1, hwsrc="01:00:5e:00:00:01", psrc="10.0.0.2", pdst="10.0.0.1"),
        Ether(src=PEER, dst=BCAST) / ARP(op=1, hwsrc=PEER, psrc="224.0.0.1", pdst="10.0.0.1"),
    ]
    assert bench.out("if0", frames) == []
    assert [bench.count("arp-input", s) for s in ("address-conflict", "too-short", "bad-format", "bad-opcode",
                                                  "bad-sender")] == [1, 1, 1, 1, 2]
    assert bench.neighbors.entries() == []


def test_arp_trace(bench):
    bench.engine.trace_add("pg-input", 1)
    bench.send("if0", [arp_req("10.0.0.2", "10.0.0.1")])
    text = bench.engine.show("trace")
    assert "arp-input\n  rx sw_if_index 0\n  request, type ethernet/IP4, address size 6/4" in text
    assert f"{PEER}/10.0.0.2 -> 00:00:00:00:00:00/10.0.0.1" in text


# --- resolving ---------------------------------------------------------------------------

def test_unresolved_host_is_resolved_and_its_packets_sent(bench):
    frames = [udp_to("10.1.0.5", i=i) for i in range(3)]
    out = bench.send("if0", frames)
    assert out["if0"] == []
    (req,) = out["if1"]
    assert (req.dst, req.src, req.type) == (BCAST, IF1, 0x0806)
    assert (req[ARP].op, req[ARP].hwsrc, req[ARP].psrc, req[ARP].hwdst, req[ARP].pdst) == \
        (1, IF1, "10.1.0.1", "00:00:00:00:00:00", "10.1.0.5")
    n = bench.neighbors.lookup("if1", "10.1.0.5")
    assert n["state"] == "incomplete" and n["queued"] == 3
    assert bench.count("ip4-arp", "queued") == 3
    assert bench.engine.buffer_stats()["in_use"] == 3
    out = bench.out("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    assert [p[IP].id for p in out] == [0, 1, 2]                 # in order
    assert all(p.dst == PEER and p.src == IF1 and p[IP].ttl == 63 for p in out)
    assert bench.count("ip4-neighbor", "flushed") == 3
    assert bench.fib.lookup("10.1.0.5")["type"] == "rewrite"
    # later packets go lookup -> rewrite, not through ip4-arp
    calls = bench.engine.main.node_counters()[bench.engine.node_index("ip4-arp")]["calls"]
    out = bench.send("if0", [udp_to("10.1.0.5", i=9)])["if1"]
    assert out[0][IP].id == 9
    assert bench.engine.main.node_counters()[bench.engine.node_index("ip4-arp")]["calls"] == calls


def test_route_via_next_hop_becomes_a_rewrite(bench):
    bench.fib.add_route("10.9.0.0/16", next_hop="10.1.0.9", sw_if_index="if1")
    assert bench.fib.lookup("10.9.1.1")["type"] == "glean"
    out = bench.send("if0", [udp_to("10.9.1.1"), udp_to("10.9.2.2")])["if1"]
    assert len(out) == 1 and out[0][ARP].pdst == "10.1.0.9"      # one request for the next hop
    out = bench.out("if1", [arp_reply("10.1.0.9", "10.1.0.1")])
    assert sorted(p[IP].dst for p in out) == ["10.9.1.1", "10.9.2.2"]
    info = bench.fib.lookup("10.9.3.3")
    assert info["type"] == "rewrite" and info["next_hop"] == "10.1.0.9" and info["next_hop_mac"] == PEER
    assert "ipv4 via 10.1.0.9 02:00:00:00:aa:01 if1" in bench.fib.show()
    # deleting the neighbour turns it back into a glean
    bench.neighbors.delete("if1", "10.1.0.9")
    assert bench.fib.lookup("10.9.3.3")["type"] == "glean"


def test_resolution_timeout_drops_the_queue(bench):
    bench.neighbors.configure(probe_interval=0.02, max_probes=3)
    out = bench.send("if0", [udp_to("10.1.0.5", i=i) for i in range(2)])
    assert len(out["if1"]) == 1
    bench.run(0.2)
    out = bench.take()
    assert [p[ARP].pdst for p in out["if1"]] == ["10.1.0.5"] * 2       # the retries
    assert bench.count("ip4-neighbor", "resolution-failed") == 2
    assert bench.count("ip4-neighbor", "requests-sent") == 2
    assert bench.neighbors.entries() == []
    assert bench.engine.buffer_stats()["in_use"] == 0


def test_queue_limits_keep_the_newest(bench):
    """A full queue drops its oldest packet (Linux's unres_qlen): the
    datagrams sent last are delivered when ARP resolves (issue 10 item 5)."""
    bench.neighbors.configure(queue_limit=3)
    bench.send("if0", [udp_to("10.1.0.5", i=i) for i in range(5)])
    assert bench.count("ip4-arp", "queue-full") == 2
    out = bench.out("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    assert [p[IP].id for p in out] == [2, 3, 4]
    # all queues together at their limit: a queued neighbour's oldest makes
    # room, a neighbour with no queue yet gets nothing
    bench.neighbors.configure(max_queued_total=2)
    bench.send("if0", [udp_to("10.1.0.6", i=i) for i in range(2)] + [udp_to("10.1.0.7", i=7)]
               + [udp_to("10.1.0.6", i=8)])
    assert bench.count("ip4-arp", "queues-full") == 1
    assert bench.count("ip4-arp", "queue-full") == 3
    assert bench.neighbors.stats()["queued"] == 2
    out = bench.out("if1", [arp_reply("10.1.0.6", "10.1.0.1")])
    assert [p[IP].id for p in out] == [1, 8]


def test_incomplete_entries_are_bounded(bench):
    bench.neighbors.configure(max_incomplete=4)
    bench.send("if0", [udp_to(f"10.1.0.{10 + i}", i=i) for i in range(6)])
    assert bench.neighbors.stats()["incomplete"] == 4
    assert bench.count("ip4-arp", "table-full") == 2


def test_requests_are_rate_limited(bench):
    bench.neighbors.configure(request_rate=0.001, request_burst=2)
    out = bench.send("if0", [udp_to(f"10.1.0.{10 + i}", i=i) for i in range(5)])
    assert len(out["if1"]) == 2
    assert bench.count("ip4-arp", "throttled") == 3
    assert bench.count("ip4-arp", "requests-sent") == 2
    assert bench.neighbors.stats()["incomplete"] == 5      # all wait; their retries are limited too


def test_no_source_address(engine_factory):
    from graphnet.io.pg import PacketGenerator, Stream
    local = PacketGenerator(name="pg-local", next_node="ip4-lookup")    # as a locally originated packet
    b = HostBench(engine_factory, ["if0", "if1"], extra_nodes=[local])
    b.fib.add_route("10.5.0.0/16", sw_if_index="if1")          # on-link; no address anywhere yet
    assert b.send("if0", [udp_to("10.5.0.1")])["if1"] == []
    assert b.count("ip4-input", "ip4-not-enabled") == 1          # if0 has no IPv4 address: not forwarded
    local.add_stream(Stream("local", [bytes(udp_to("10.5.0.1")[IP])], count=1, fix_checksums=False))
    b.run()
    assert b.take()["if1"] == []
    assert b.count("ip4-arp", "no-source-address") == 1, b.errors()
    assert b.neighbors.entries() == []
    b.address("if0", "10.0.0.1/24")                            # if1 still has none: ask from if0's
    out = b.send("if0", [udp_to("10.5.0.1")])["if1"]
    assert out[0][ARP].psrc == "10.0.0.1" and out[0][ARP].pdst == "10.5.0.1"
    b.check_accounting()


# --- static entries, aging, show -------------------------------------------------------

def test_static_entries(bench):
    bench.neighbors.add("if1", "10.1.0.5", PEER, static=True)
    assert bench.fib.lookup("10.1.0.5")["type"] == "rewrite"
    out = bench.send("if0", [udp_to("10.1.0.5")])["if1"]
    assert out[0].dst == PEER
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1", hwsrc=PEER2)])
    assert bench.neighbors.lookup("if1", "10.1.0.5")["mac"] == PEER      # ARP never changes a static entry
    bench.neighbors.delete("if1", "10.1.0.5")
    assert bench.fib.lookup("10.1.0.5")["type"] == "glean"
    assert "10.1.0.5/32" not in bench.fib.show()
    with pytest.raises(KeyError):
        bench.neighbors.delete("if1", "10.1.0.5")
    with pytest.raises(ValueError):
        bench.neighbors.add("if1", "10.1.0.6", "01:00:5e:00:00:01")


def test_static_entry_flushes_waiting_packets(bench):
    bench.send("if0", [udp_to("10.1.0.5", i=i) for i in range(2)])
    bench.neighbors.add("if1", "10.1.0.5", PEER, static=True)
    bench.run()
    out = bench.take()["if1"]
    assert [p[IP].id for p in out] == [0, 1]


def test_aging_removes_dynamic_entries_and_their_routes(bench):
    bench.neighbors.configure(aging_time=0.05)
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    bench.neighbors.add("if1", "10.1.0.6", PEER2, static=True)
    assert bench.fib.lookup("10.1.0.5")["type"] == "rewrite"
    bench.run(0.3)
    assert [d["ip"] for d in bench.neighbors.entries()] == ["10.1.0.6"]
    assert bench.fib.lookup("10.1.0.5")["type"] == "glean"


def test_removing_an_address_forgets_its_neighbours(bench):
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    ip4_host.del_interface_address(bench.engine, "if1", "10.1.0.1/24")
    assert bench.neighbors.entries() == []
    assert bench.fib.lookup("10.1.0.5")["type"] == "drop"


def test_show_ip_neighbors(bench):
    bench.send("if0", [arp_req("10.0.0.2", "10.0.0.1")])
    bench.neighbors.add("if1", "10.1.0.6", PEER2, static=True)
    bench.send("if0", [udp_to("10.1.0.9")])
    text = ip4_host.show_ip_neighbors(bench.engine)
    lines = text.splitlines()
    assert lines[0].split() == ["Time", "IP", "Flags", "Ethernet", "Interface", "State"]
    assert lines[1].split()[1:] == ["10.0.0.2", "D", PEER, "if0", "reachable"]
    assert lines[2].split()[1:] == ["10.1.0.6", "S", PEER2, "if1", "static"]
    assert lines[3].split()[1:4] == ["10.1.0.9", "I", "(incomplete,"]
    assert lines[3].split()[-1] == "incomplete"
    assert lines[4] == "dynamic entries: reachable 30 s, then stale: 3 unicast probes 1 s apart; aging 300 s"
    bench.neighbors.configure(reachable_time=0)
    assert ip4_host.show_ip_neighbors(bench.engine).splitlines()[-1] == "dynamic entries: never stale; aging 300 s"



# --- stale entries: unicast probes (Linux's reachable -> stale -> probe) ------------------

def run_until(bench, cond, timeout=3.0, step=0.05):
    """Run the engine in small steps until cond() (bounded: CI may be slow)."""
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        bench.run(step)
    return cond()


def forwarded_to(bench, dst="10.1.0.5", i=0):
    """Send one UDP packet from if0 to dst; what left on if1."""
    return bench.send("if0", [udp_to(dst, i=i)])["if1"]


def is_probe(p, target="10.1.0.5", mac=PEER):
    return (ARP in p and p.dst == mac and p.src == IF1 and
            (p[ARP].op, p[ARP].hwsrc, p[ARP].psrc, p[ARP].hwdst, p[ARP].pdst) ==
            (1, IF1, "10.1.0.1", "00:00:00:00:00:00", target))


def test_neighbor_timer_defaults_and_checks(bench):
    c = bench.neighbors.config()
    assert (c["reachable_time"], c["unicast_probes"], c["probe_interval"], c["aging_time"]) == (30.0, 3, 1.0, 300.0)
    with pytest.raises(ValueError):
        bench.neighbors.configure(unicast_probes=0)
    with pytest.raises(ValueError):
        bench.neighbors.configure(reachable_time=-1)


def test_stale_entry_is_probed_unicast_and_refreshed_by_the_reply(bench):
    bench.neighbors.configure(reachable_time=0.1, probe_interval=0.4, unicast_probes=3)
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    assert bench.neighbors.lookup("if1", "10.1.0.5")["state"] == "reachable"
    assert run_until(bench, lambda: bench.neighbors.lookup("if1", "10.1.0.5")["state"] == "probe")
    out = bench.take()["if1"]
    assert len(out) == 1 and is_probe(out[0])           # unicast: Ethernet destination = the entry's MAC
    assert len(bytes(out[0])) == 42
    assert bench.count("ip4-neighbor", "probes-sent") == 1
    assert bench.neighbors.lookup("if1", "10.1.0.5")["probes"] == 1
    # still used while probing: forwarded with the known MAC, no broadcast request
    (f,) = forwarded_to(bench)
    assert f.dst == PEER and f[IP].ttl == 63 and bench.count("ip4-arp", "requests-sent") == 0
    # the reply confirms it: reachable again, nothing outstanding
    before = bench.neighbors.lookup("if1", "10.1.0.5")["updated_ns"]
    assert bench.out("if1", [arp_reply("10.1.0.5", "10.1.0.1")]) == []
    n = bench.neighbors.lookup("if1", "10.1.0.5")
    assert n["state"] == "reachable" and n["probes"] == 0 and n["updated_ns"] > before and n["mac"] == PEER
    # ... until it goes stale again: a new round of probes starts from one
    assert run_until(bench, lambda: bench.count("ip4-neighbor", "probes-sent") == 2)
    assert all(is_probe(p) for p in bench.take()["if1"])
    assert bench.neighbors.lookup("if1", "10.1.0.5")["probes"] == 1
    assert bench.count("ip4-neighbor", "probe-failed") == 0
    bench.neighbors.configure(reachable_time=0)           # no more probes while the fixture checks


def test_unanswered_probes_delete_the_entry(bench):
    bench.neighbors.configure(reachable_time=0.05, probe_interval=0.05, unicast_probes=3)
    bench.fib.add_route("10.9.0.0/16", next_hop="10.1.0.5", sw_if_index="if1")
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    assert bench.fib.lookup("10.9.1.1")["type"] == "rewrite"
    assert run_until(bench, lambda: bench.neighbors.entries() == [])
    out = bench.take()["if1"]
    assert len(out) == 3 and all(is_probe(p) for p in out)
    assert bench.count("ip4-neighbor", "probes-sent") == 3
    assert bench.count("ip4-neighbor", "probe-failed") == 1
    assert bench.neighbors.stats()["probe_failed"] == 1
    # its FIB state went with it: routes via it glean again, the next packet resolves with a broadcast
    assert bench.fib.lookup("10.9.1.1")["type"] == "glean"
    assert bench.fib.lookup("10.1.0.5")["type"] == "glean"
    (req,) = forwarded_to(bench, "10.9.1.1")
    assert req.dst == BCAST and req[ARP].pdst == "10.1.0.5"
    assert bench.neighbors.lookup("if1", "10.1.0.5")["state"] == "incomplete"


def test_static_entries_are_never_probed(bench):
    bench.neighbors.configure(reachable_time=0.02, probe_interval=0.02, unicast_probes=1)
    bench.neighbors.add("if1", "10.1.0.6", PEER2, static=True)
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])             # and one dynamic beside it
    assert run_until(bench, lambda: bench.neighbors.lookup("if1", "10.1.0.5") is None)
    bench.run(0.2)
    out = bench.take()["if1"]
    assert [p.dst for p in out] == [PEER]                                # the dynamic one's single probe
    n = bench.neighbors.lookup("if1", "10.1.0.6")
    assert n["state"] == "static" and n["probes"] == 0
    assert forwarded_to(bench, "10.1.0.6")[0].dst == PEER2


def test_stale_entry_the_fib_does_not_use_is_not_probed(bench):
    """A user's on-link /32 leaves nothing to make a rewrite of: the entry
    is not used for forwarding, so it goes stale without being probed."""
    bench.neighbors.configure(reachable_time=0.02, probe_interval=0.02)
    bench.fib.add_route("10.1.0.5/32", sw_if_index="if1")
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    bench.run(0.2)
    assert bench.neighbors.lookup("if1", "10.1.0.5")["state"] == "stale"
    assert bench.take()["if1"] == [] and bench.count("ip4-neighbor", "probes-sent") == 0


def test_any_arp_from_a_probed_neighbour_confirms_it(bench):
    """A request from it (to us) or a gratuitous ARP confirms it as well;
    one with a new MAC moves the entry and the FIB to it."""
    bench.neighbors.configure(reachable_time=0.05, probe_interval=0.5)
    bench.send("if1", [arp_reply("10.1.0.5", "10.1.0.1")])
    assert run_until(bench, lambda: bench.neighbors.lookup("if1", "10.1.0.5")["state"] == "probe")
    bench.send("if1", [arp_req("10.1.0.5", "10.1.0.1")])
    assert bench.neighbors.lookup("if1", "10.1.0.5")["probes"] == 0
    assert run_until(bench, lambda: bench.neighbors.lookup("if1", "10.1.0.5")["state"] == "probe")
    grat = Ether(src=PEER2, dst=BCAST) / ARP(op=1, hwsrc=PEER2, psrc="10.1.0.5", pdst="10.1.0.5")
    bench.send("if1", [grat])
    n = bench.neighbors.lookup("if1", "10.1.0.5")
    assert n["probes"] == 0 and n["mac"] == PEER2
    assert forwarded_to(bench)[0].dst == PEER2
    bench.neighbors.configure(reachable_time=0)

def test_engine_close_frees_queued_packets(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.send("if0", [udp_to("10.1.0.5", i=i) for i in range(4)])
    assert b.engine.buffer_stats()["in_use"] == 4
    # engine_factory closes the engine and finds no buffer in use


def test_full_table_still_answers(engine_factory):
    b = HostBench(engine_factory, ["if0"], before_build=lambda e: ip4_host.ip4_neighbors(e, capacity=2))
    b.address("if0", "10.0.0.1/24")
    for i in range(2):                      # static entries are never evicted
        b.neighbors.add("if0", f"10.0.0.{20 + i}", f"02:00:00:00:ac:{i:02x}", static=True)
    out = b.out("if0", [arp_req(f"10.0.0.{10 + i}", "10.0.0.1", hwsrc=f"02:00:00:00:ab:{i:02x}") for i in range(3)])
    assert [p[ARP].pdst for p in out] == ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
    assert b.count("arp-input", "table-full") == 3
    assert [n["ip"] for n in b.neighbors.entries()] == ["10.0.0.20", "10.0.0.21"]
    with pytest.raises(ValueError, match="capacity"):
        ip4_host.ip4_neighbors(b.engine, capacity=8)
    b.check_accounting()
