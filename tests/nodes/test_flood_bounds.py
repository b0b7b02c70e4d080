"""Issue 9, defects 2 and 3, and issue 10 item 5: floods must not take the
buffer pool or the neighbour table. Reassembly holds at most its share of
the pool (default 25%) and packets waiting for ARP theirs (default 1/8),
the neighbour table evicts its least recently confirmed dynamic entry when
full, and an ARP request from off-link is neither answered nor learned.
After each flood a legitimate packet gets through at once, and every
buffer comes back."""
import pytest
from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from graphnet.nodes import ip4_host
from graphnet.nodes.ip4_reassembly import reassembly
from graphnet.testing.ip4 import HostBench, mac_of

PEER = "02:00:00:00:aa:01"
IF0, IF1 = mac_of(0), mac_of(1)
BCAST = "ff:ff:ff:ff:ff:ff"
POOL = 4096


def ping(i=1, size=56, dst="10.0.0.1"):
    return IP(src="10.0.0.2", dst=dst, id=1000 + i) / ICMP(id=7, seq=i) / Raw(bytes(size))


def eth(ip, src=PEER, dst=IF0):
    return Ether(src=src, dst=dst) / ip


@pytest.fixture
def host(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"], buffers=POOL)
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/16")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    yield b
    b.check_accounting()


def replies(out):
    return [p for p in out["if0"] if ICMP in p and p[ICMP].type == 0]


# --- reassembly -------------------------------------------------------------------

def test_fragment_flood_holds_at_most_its_share_of_the_pool(host):
    r = reassembly(host.engine)
    r.configure(timeout=0.3)
    # 1500 datagrams of two 16-byte fragments each, never completed
    flood = [eth(IP(src="10.0.0.2", dst="10.0.0.1", id=i, flags="MF", frag=off, proto=17) / Raw(bytes(16)))
             for i in range(1500) for off in (0, 2)]
    out = host.send("if0", flood)
    assert out == {"if0": [], "if1": []}
    st = r.stats()
    assert st["buffers_held"] <= POOL // 4                 # was 2048: 1024 datagrams x 2
    assert st["max_buffers_held"] == POOL // 4
    assert host.count("ip4-reassembly", "evicted") > 0
    assert st["datagrams_evicted"] > 0
    # at once: a fragmented ping (the newest datagram wins) and a plain one
    frags = fragment(ping(1, size=200), fragsize=96)
    assert len(frags) == 3
    out = host.send("if0", [eth(f) for f in frags] + [eth(ping(2))])
    assert sorted(p[ICMP].seq for p in replies(out)) == [1, 2]
    # the flood's buffers all come back at the timeout
    host.run(0.6)
    assert r.stats()["buffers_held"] == 0
    assert host.engine.buffer_stats()["in_use"] == 0


def test_reassembly_pool_share_is_settable():
    import graphnet
    e = graphnet.Engine(ip4_host.NODES, buffers=1000)
    try:
        r = reassembly(e)
        assert r.configure(pool_share=0.1)["max_buffers_held"] == 100
        for bad in (0, -0.5, 1.01, float("nan"), "0.5", True):
            with pytest.raises(ValueError, match="pool_share"):
                r.configure(pool_share=bad)
        assert r.stats()["pool_share"] == 0.1
        with pytest.raises(ValueError, match="timeout"):
            r.configure(timeout=1e300)
    finally:
        e.close()


# --- packets waiting for ARP --------------------------------------------------------

def test_arp_pending_flood_holds_at_most_its_share_of_the_pool(host):
    host.neighbors.configure(max_probes=1)
    # 500 unresolvable on-link neighbours, 4 packets each
    flood = [eth(IP(src="10.0.0.2", dst=f"10.1.{1 + k // 250}.{1 + k % 250}", id=j) / UDP(sport=4000, dport=9))
             for k in range(500) for j in range(4)]
    host.send("if0", flood)
    limit = POOL // 8
    assert host.neighbors.stats()["queued"] <= limit       # was 2000: max_queued_total 2048
    assert host.neighbors.config()["max_queued"] == limit
    assert host.count("ip4-arp", "queues-full") + host.count("ip4-arp", "queue-full") >= len(flood) - limit
    # at once: a ping of us, and a packet to a known neighbour
    out = host.send("if0", [eth(ping(3))])
    assert [p[ICMP].seq for p in replies(out)] == [3]
    # unanswered: every queue is dropped after one request (max_probes=1), nothing left
    host.run(1.5)
    assert host.neighbors.stats()["queued"] == 0
    assert host.count("ip4-neighbor", "resolution-failed") > 0
    assert host.engine.buffer_stats()["in_use"] == 0


def test_arp_queue_share_is_settable(host):
    nb = host.neighbors
    assert nb.configure(queue_pool_share=0.01) is None
    assert nb.config()["max_queued"] == int(0.01 * POOL)
    nb.configure(max_queued_total=10)
    assert nb.config()["max_queued"] == 10                 # the smaller of the two
    for bad in (0, 1.5, -1, True):
        with pytest.raises(ValueError, match="queue_pool_share"):
            nb.configure(queue_pool_share=bad)


# --- the neighbour table ---------------------------------------------------------------

def arp_req(psrc, pdst="10.0.0.1", hwsrc=PEER):
    return Ether(src=hwsrc, dst=BCAST) / ARP(op=1, hwsrc=hwsrc, psrc=psrc, pdst=pdst)


def mac(i):
    return f"02:00:00:{(i >> 16) & 0xff:02x}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


def test_spoofed_arp_fills_the_table_and_a_new_neighbour_is_still_learned(engine_factory):
    b = HostBench(engine_factory, ["if0"], buffers=POOL, before_build=lambda e: ip4_host.ip4_neighbors(e, capacity=64))
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    b.neighbors.configure(evict_min_age=0)         # any entry may go (default: confirmed 5 s ago or more)
    # 64 + 100 spoofed senders, each learned (its request answered), the table full after 63
    spoofed = [arp_req(f"10.0.0.{10 + i}", hwsrc=mac(0x100 + i)) for i in range(164)]
    out = b.out("if0", spoofed)
    assert len(out) == 164
    assert b.neighbors.stats()["entries"] == 64
    assert b.count("arp-input", "table-full") == 0
    # the newest: a real host, learned and answered, its FIB route made
    (r,) = b.out("if0", [arp_req("10.0.0.250", hwsrc="02:00:00:00:bb:01")])
    assert (r[ARP].op, r[ARP].pdst, r[ARP].hwdst) == (2, "10.0.0.250", "02:00:00:00:bb:01")
    ips = {n["ip"]: n for n in b.neighbors.entries()}
    assert ips["10.0.0.250"]["mac"] == "02:00:00:00:bb:01"
    assert ips["10.0.0.2"]["static"]                       # never evicted
    assert "10.0.0.10" not in ips and "10.0.0.173" in ips   # the least recently confirmed went first
    assert b.fib.lookup("10.0.0.250")["type"] == "rewrite"
    assert b.fib.lookup("10.0.0.10")["type"] == "glean"    # an evicted entry's FIB state is gone
    n_evicted = 164 + 1 - 63
    assert b.neighbors.stats()["evicted"] == n_evicted
    assert b.count("ip4-neighbor", "evicted") == n_evicted
    # a packet to the new neighbour goes straight out
    (p,) = b.out("if0", [eth(IP(src="10.0.0.2", dst="10.0.0.250") / UDP(sport=4000, dport=9))])
    assert p.dst == "02:00:00:00:bb:01" and p[IP].ttl == 63
    b.check_accounting()


def test_refreshed_neighbours_outlive_spoofed_ones(engine_factory):
    """LRU by last confirmation: a neighbour that keeps talking stays."""
    b = HostBench(engine_factory, ["if0"], buffers=POOL, before_build=lambda e: ip4_host.ip4_neighbors(e, capacity=8))
    b.address("if0", "10.0.0.1/24")
    b.neighbors.configure(evict_min_age=0)
    b.out("if0", [arp_req("10.0.0.3", hwsrc="02:00:00:00:bb:03")])
    for round_ in range(5):
        b.out("if0", [arp_req(f"10.0.0.{40 + 4 * round_ + i}", hwsrc=mac(round_ * 4 + i)) for i in range(4)])
        b.out("if0", [arp_req("10.0.0.3", hwsrc="02:00:00:00:bb:03")])          # confirmed again
    assert "10.0.0.3" in {n["ip"] for n in b.neighbors.entries()}
    assert b.neighbors.stats()["evicted"] > 0
    b.check_accounting()


def test_fresh_spoofed_entries_are_not_churned_but_a_wanted_neighbour_gets_in(engine_factory):
    """With the default evict_min_age (5 s), a table full of fresh spoofed
    entries is not churned by more spoofed ARP (answered, not learned:
    each eviction costs the control plane a FIB update), but a host
    graphnet has traffic for (its ping's reply) evicts one at once."""
    b = HostBench(engine_factory, ["if0"], buffers=POOL, before_build=lambda e: ip4_host.ip4_neighbors(e, capacity=32))
    b.address("if0", "10.0.0.1/24")
    out = b.out("if0", [arp_req(f"10.0.0.{10 + i}", hwsrc=mac(0x100 + i)) for i in range(40)])
    assert len(out) == 40                                  # all answered
    assert b.count("arp-input", "table-full") == 8 and b.neighbors.stats()["evicted"] == 0
    # a new host pings us: its reply needs its MAC, ip4-arp evicts the least recently confirmed
    (req,) = b.out("if0", [Ether(src="02:00:00:00:bb:01", dst=IF0) / IP(src="10.0.0.250", dst="10.0.0.1")
                           / ICMP(id=1, seq=1)])
    assert (req[ARP].op, req[ARP].pdst) == (1, "10.0.0.250")
    (r,) = b.out("if0", [Ether(src="02:00:00:00:bb:01", dst=IF0) / ARP(op=2, hwsrc="02:00:00:00:bb:01",
                                                                      psrc="10.0.0.250", hwdst=IF0, pdst="10.0.0.1")])
    assert r[ICMP].type == 0 and r.dst == "02:00:00:00:bb:01"
    assert b.neighbors.stats()["evicted"] == 1
    assert "10.0.0.10" not in {n["ip"] for n in b.neighbors.entries()}
    b.check_accounting()
