"""Issue 18: trace records a VPP user reads at a glance, trace filters, and
drop counters that count each packet once, at the node that drops it.

The golden traces assert the decoded fields of each node's record (which
nodes, which ICMP type/code/id/seq, which ports, TTL, fragment fields,
ARP operation, tx interface, the error answered), found by field, not by
the text's layout. The counter tests send a known number of packets per
drop class and want exactly that count under exactly that reason, and
show runtime's per-node drops equal to show errors' per-node totals."""
import re

import pytest
from scapy.all import ARP, ICMP, IP, UDP, Ether, Raw, fragment

from graphnet.cli.registry import CommandError, UsageError, execute
from graphnet.testing.ip4 import HostBench, mac_of
from graphnet.vlib.show import node_drops, trace_packets
from graphnet.vlib.trace_filter import parse

PEER = "02:00:00:00:aa:01"           # 10.0.0.2 on if0
FAR = "02:00:00:00:bb:01"            # 10.1.0.5 on if1
IF0, IF1 = mac_of(0), mac_of(1)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    b.neighbors.add("if1", "10.1.0.5", FAR, static=True)
    yield b
    b.check_accounting()


def traced(b, ifname, frames, n=None):
    """Send frames on ifname with tracing on; [[(node, text)...] per packet]."""
    b.engine.clear_trace()
    b.engine.trace_add("pg-input", n or len(frames))
    b.send(ifname, frames)
    return [[(name, text) for _t, name, text in p] for p in trace_packets(b.engine)]


def record(pkt, node, k=0):
    """The k-th record of `node` in one traced packet."""
    texts = [t for name, t in pkt if name == node]
    assert len(texts) > k, (node, [name for name, _ in pkt])
    return texts[k]


def fields(text):
    """The decoded fields of one record, by name."""
    f = {}
    m = re.search(r"ICMP: ([a-z-]+(?: \d+)?) (code \d+|[a-z-]+), checksum 0x[0-9a-f]{4} \(([^)]+)\)", text)
    if m:
        f["icmp_type"], f["icmp_code"], f["icmp_checksum"] = m.groups()
    if m := re.search(r"\bid (\d+), seq (\d+)", text):
        f["icmp_id"], f["icmp_seq"] = int(m.group(1)), int(m.group(2))
    if m := re.search(r"next-hop mtu (\d+)", text):
        f["mtu"] = int(m.group(1))
    if m := re.search(r"(UDP|ICMP|TCP|proto \d+): (\d+\.\d+\.\d+\.\d+) -> (\d+\.\d+\.\d+\.\d+)", text):
        f["ip_proto"], f["ip_src"], f["ip_dst"] = m.groups()
    if m := re.search(r"ttl (\d+), length (\d+), checksum 0x[0-9a-f]{4} \((\w+)\)", text):
        f["ttl"], f["ip_length"], f["ip_checksum"] = int(m.group(1)), int(m.group(2)), m.group(3)
    if m := re.search(r"fragment id 0x([0-9a-f]{4})(?:, flags ([A-Z ]+))?(?: offset (\d+))?", text):
        f["frag_id"] = int(m.group(1), 16)
        f["frag_flags"] = (m.group(2) or "").split()
        f["frag_offset"] = int(m.group(3) or 0)
    if m := re.search(r"options (\d+) bytes: (.*)", text):
        f["options"] = m.group(2)
    if m := re.search(r"UDP: (\d+) -> (\d+)\n\s+length (\d+), checksum 0x[0-9a-f]{4} \(([^)]+)\)", text):
        f["sport"], f["dport"], f["udp_length"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
        f["udp_checksum"] = m.group(4)
    if m := re.search(r"quoted: (UDP|ICMP|TCP): (\S+) -> (\S+)", text):
        f["quoted_proto"], f["quoted_src"], f["quoted_dst"] = m.groups()
    if m := re.search(r"quoted: .*?UDP: (\d+) -> (\d+)", text, re.S):
        f["quoted_ports"] = (int(m.group(1)), int(m.group(2)))
    if m := re.search(r"^\s*(request|reply), type ethernet/IP4.*\n\s*(\S+)/(\S+) -> (\S+)/(\S+)", text, re.M):
        f["arp_op"], f["arp_sha"], f["arp_spa"], f["arp_tha"], f["arp_tpa"] = m.groups()
    if m := re.search(r"\b(?:(rx|tx) )?sw_if_index (\d+)(?: \((\S+)\))?", text):
        f["dir"], f["sw_if_index"], f["ifname"] = m.group(1), int(m.group(2)), m.group(3)
    if m := re.search(r"^\s*(IP4|ARP): (\S+) -> (\S+)", text, re.M):
        f["ethertype"], f["eth_src"], f["eth_dst"] = m.groups()
    if m := re.search(r"error (\S+) \((\S+)\)", text):
        f["error"] = (m.group(2), m.group(1))
    if m := re.search(r"stream (\S+), (\d+) bytes", text):
        f["stream"], f["length"] = m.group(1), int(m.group(2))
    return f


def no_hex_dump(pkt):
    """No record of the IPv4 host's nodes is a bare hex dump."""
    for name, text in pkt:
        if not name.startswith("capture-"):
            assert not re.search(r"^\s*0000: ", text, re.M), (name, text)


# --- golden traces ------------------------------------------------------------------------

def test_golden_ping(bench):
    req = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(id=0x1234, seq=7) / Raw(b"x" * 56)
    (pkt,) = traced(bench, "if0", [req])
    assert [n for n, _ in pkt] == ["pg-input", "ethernet-input", "ip4-input", "ip4-lookup", "ip4-local",
                                   "ip4-icmp-input", "ip4-lookup", "ip4-rewrite", "interface-output",
                                   "capture-tx-if0"]
    no_hex_dump(pkt)
    pg = fields(record(pkt, "pg-input"))
    assert pg["stream"] == "s0" and pg["length"] == len(req) and pg["ifname"] == "if0"
    for node in ("ip4-local", "ip4-icmp-input"):
        f = fields(record(pkt, node))
        assert (f["icmp_type"], f["icmp_code"], f["icmp_checksum"]) == ("echo-request", "code 0", "ok"), node
        assert (f["icmp_id"], f["icmp_seq"]) == (0x1234, 7)
        assert (f["ip_src"], f["ip_dst"], f["ttl"], f["ip_checksum"]) == ("10.0.0.2", "10.0.0.1", 64, "ok")
        assert (f["dir"], f["ifname"]) == ("rx", "if0")
    out = fields(record(pkt, "interface-output"))
    assert (out["dir"], out["ifname"], out["ethertype"], out["eth_dst"]) == ("tx", "if0", "IP4", PEER)
    assert (out["icmp_type"], out["icmp_id"], out["icmp_seq"], out["icmp_checksum"]) == \
        ("echo-reply", 0x1234, 7, "ok")
    assert (out["ip_src"], out["ip_dst"]) == ("10.0.0.1", "10.0.0.2")


def test_golden_forwarded(bench):
    p = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5", ttl=9) / UDP(sport=4000, dport=53) / Raw(b"q" * 10)
    (pkt,) = traced(bench, "if0", [p])
    assert [n for n, _ in pkt] == ["pg-input", "ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite",
                                   "interface-output", "capture-tx-if1"]
    no_hex_dump(pkt)
    f = fields(record(pkt, "ip4-input"))
    assert (f["sport"], f["dport"], f["udp_length"], f["udp_checksum"], f["ttl"]) == (4000, 53, 18, "ok", 9)
    out = fields(record(pkt, "interface-output"))
    assert (out["ifname"], out["eth_src"], out["eth_dst"]) == ("if1", IF1, FAR)
    assert (out["ttl"], out["ip_checksum"], out["sport"], out["dport"], out["udp_checksum"]) == (8, "ok", 4000, 53, "ok")


def test_golden_ttl_expired(bench):
    p = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5", ttl=1) / UDP(sport=4001, dport=33434)
    (pkt,) = traced(bench, "if0", [p])
    names = [n for n, _ in pkt]
    assert names[:5] == ["pg-input", "ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite"]
    assert names[5:] == ["ip4-icmp-error", "ip4-lookup", "ip4-rewrite", "interface-output", "capture-tx-if0"]
    no_hex_dump(pkt)
    err = fields(record(pkt, "ip4-icmp-error"))
    assert err["error"] == ("ip4-rewrite", "ttl-expired")
    assert (err["ip_dst"], err["ttl"], err["sport"], err["dport"]) == ("10.1.0.5", 1, 4001, 33434)
    out = fields(record(pkt, "interface-output"))
    assert (out["icmp_type"], out["icmp_code"], out["icmp_checksum"]) == ("time-exceeded", "ttl-exceeded-in-transit", "ok")
    assert (out["ip_src"], out["ip_dst"]) == ("10.0.0.1", "10.0.0.2")
    assert (out["quoted_proto"], out["quoted_src"], out["quoted_dst"]) == ("UDP", "10.0.0.2", "10.1.0.5")
    assert out["quoted_ports"] == (4001, 33434)
    assert bench.errors()[("ip4-rewrite", "ttl-expired")] == 1


def test_golden_fragments(bench):
    """Two fragments of one datagram for this host: each record shows id, MF
    and offset; the reassembled datagram reaches udp4-input whole."""
    frags = fragment(IP(src="10.0.0.2", dst="10.0.0.1", id=0x77) / UDP(sport=5, dport=7) / Raw(b"y" * 100),
                     fragsize=64)
    assert len(frags) == 2
    pkts = traced(bench, "if0", [Ether(src=PEER, dst=IF0) / f for f in frags])
    assert len(pkts) == 2
    first, second = (fields(record(p, "ip4-input")) for p in pkts)
    assert (first["frag_id"], first["frag_flags"], first["frag_offset"]) == (0x77, ["MF"], 0)
    assert (second["frag_id"], second["frag_flags"], second["frag_offset"]) == (0x77, [], 64)
    assert first["sport"] == 5 and "sport" not in second            # ports only in the first fragment
    whole = [p for p in pkts if any(n == "udp4-input" for n, _ in p)]
    assert len(whole) == 1
    u = fields(record(whole[0], "udp4-input"))
    assert (u["frag_flags"], u["frag_offset"], u["udp_length"], u["udp_checksum"]) == ([], 0, 108, "ok")
    for p in pkts:
        no_hex_dump(p)


def test_golden_fragmented_on_output_and_df(bench):
    """ip4-frag's fragments leave if1 with their fragment fields; a DF
    packet over the MTU gets fragmentation needed with the MTU."""
    bench.engine.interfaces.set_mtu("if1", 576)
    big = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5", id=9) / UDP(sport=1, dport=2) / Raw(b"z" * 1000)
    (pkt,) = traced(bench, "if0", [big])
    outs = [fields(t) for n, t in pkt if n == "interface-output"]
    # 1008 bytes of UDP in 552-byte pieces (576 - 20, a multiple of 8)
    assert [(o["frag_id"], o["frag_flags"], o["frag_offset"]) for o in outs] == [(9, ["MF"], 0), (9, [], 552)]
    assert all(o["ifname"] == "if1" and o["ip_checksum"] == "ok" for o in outs)
    df = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5", flags="DF") / UDP(sport=1, dport=2) / Raw(b"z" * 1000)
    (pkt,) = traced(bench, "if0", [df])
    assert fields(record(pkt, "ip4-icmp-error"))["error"] == ("ip4-frag", "df-set-too-big")
    out = fields(record(pkt, "interface-output"))
    assert (out["icmp_type"], out["icmp_code"], out["mtu"]) == \
        ("destination-unreachable", "fragmentation-needed-and-dont-fragment-set", 576)


def test_golden_arp_exchange(bench):
    """A packet to an unresolved neighbour makes an ARP request (decoded on
    interface-output); the peer's reply is decoded by arp-input; its
    request for us is answered."""
    p = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.9") / UDP(sport=1, dport=2)
    (pkt,) = traced(bench, "if0", [p])
    assert [n for n, _ in pkt] == ["pg-input", "ethernet-input", "ip4-input", "ip4-lookup", "ip4-arp",
                                   "interface-output", "capture-tx-if1"]
    req_out = [fields(t) for n, t in pkt if n == "interface-output"]
    assert req_out and req_out[0]["arp_op"] == "request"
    assert (req_out[0]["arp_spa"], req_out[0]["arp_tpa"], req_out[0]["eth_dst"]) == \
        ("10.1.0.1", "10.1.0.9", "ff:ff:ff:ff:ff:ff")
    reply = Ether(src="02:00:00:00:cc:09", dst=IF1) / ARP(op=2, hwsrc="02:00:00:00:cc:09", psrc="10.1.0.9",
                                                          hwdst=IF1, pdst="10.1.0.1")
    (pkt,) = traced(bench, "if1", [reply])
    a = fields(record(pkt, "arp-input"))
    assert (a["arp_op"], a["arp_sha"], a["arp_spa"], a["arp_tpa"]) == ("reply", "02:00:00:00:cc:09", "10.1.0.9", "10.1.0.1")
    request = Ether(src=PEER, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER, psrc="10.0.0.2", pdst="10.0.0.1")
    (pkt,) = traced(bench, "if0", [request])
    no_hex_dump(pkt)
    a = fields(record(pkt, "arp-input"))
    assert (a["arp_op"], a["arp_spa"], a["arp_tpa"]) == ("request", "10.0.0.2", "10.0.0.1")
    out = fields(record(pkt, "interface-output"))
    assert (out["ethertype"], out["arp_op"], out["arp_sha"], out["arp_spa"], out["arp_tha"], out["ifname"]) == \
        ("ARP", "reply", IF0, "10.0.0.1", PEER, "if0")


def test_ip4_options_and_bad_checksum_decoded(bench):
    p = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1", options=b"\x94\x04\x00\x00") / UDP(sport=9, dport=7)
    raw = bytearray(bytes(p))
    raw[24:26] = b"\x00\x00"                                        # IPv4 header checksum wrong
    (pkt,) = traced(bench, "if0", [bytes(p), bytes(raw)])[:1]
    f = fields(record(pkt, "ip4-input"))
    assert f["options"] == "router-alert (4 bytes)"
    bad = traced(bench, "if0", [bytes(raw)])[0]
    assert fields(record(bad, "ip4-input"))["ip_checksum"] == "bad"
    drop = record(bad, "error-drop")
    assert fields(drop)["error"] == ("ip4-input", "bad-checksum") and "0000:" not in drop


# --- pg stream on a second interface --------------------------------------------------------

def test_pg_stream_on_second_interface_traced_with_its_name(bench):
    e = bench.engine
    execute(e, "trace add pg-input 2")
    execute(e, "packet-generator new name from-if1 template icmp src 10.1.0.5 dst 10.1.0.1 "
               f"dst-mac {IF1} src-mac {FAR} limit 2 interface if1")
    bench.run()
    pkts = [[(n, t) for _t, n, t in p] for p in trace_packets(e)]
    assert len(pkts) == 2
    for p in pkts:
        pg = fields(record(p, "pg-input"))
        assert (pg["stream"], pg["sw_if_index"], pg["ifname"]) == ("from-if1", 1, "if1")
        assert fields(record(p, "ethernet-input"))["ifname"] == "if1"
        assert fields(record(p, "interface-output"))["ifname"] == "if1"      # answered where it entered
    assert "stream from-if1," in execute(e, "show trace")
    bench.take()


# --- trace add and trace filter ----------------------------------------------------------

def test_trace_add_any_input_node_by_name_prefix_or_glob(engine_factory):
    from graphnet.io.pg import PacketGenerator, Stream
    a = PacketGenerator(name="af-packet-input-a", next_node="null")
    b = PacketGenerator(name="af-packet-input-b", next_node="null")
    e = engine_factory([a, b])
    assert e.trace_add("af-packet-input-*", 1) == ["af-packet-input-a", "af-packet-input-b"]
    assert e.trace_add("af-packet-input", 1) == ["af-packet-input-a", "af-packet-input-b"]
    assert e.trace_add("af-packet-input-b", 1) == ["af-packet-input-b"]
    for g in (a, b):
        g.add_stream(Stream("s", [bytes(Ether() / IP() / UDP())], count=5))
    e.run_until_idle()
    names = sorted(p[0][1] for p in trace_packets(e))
    assert names == ["af-packet-input-a"] * 2 + ["af-packet-input-b"] * 3
    with pytest.raises(CommandError, match=r"^trace add: no input node named 'bogus'; input nodes: "):
        execute(e, "trace add bogus 5")
    with pytest.raises(CommandError, match=r"trace add takes an input node; 'null' is an internal node"):
        execute(e, "trace add null 5")


def test_trace_filter_ip4_keeps_only_matching_packets(bench):
    e = bench.engine
    execute(e, "trace filter ip4 src 10.0.0.0/24 proto udp dport 53")
    assert "ip4 src 10.0.0.0/24 proto udp dport 53" in execute(e, "trace filter")
    e.trace_add("pg-input", 3)
    frames = [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5", id=i) /
              UDP(sport=1000 + i, dport=53 if i % 3 == 0 else 54) for i in range(12)]
    bench.send("if0", frames)
    pkts = [[(n, t) for _t, n, t in p] for p in trace_packets(e)]
    assert [fields(record(p, "ip4-input"))["sport"] for p in pkts] == [1000, 1003, 1006]    # the first 3 that match
    assert all(fields(record(p, "ip4-input"))["dport"] == 53 for p in pkts)
    assert "(7 packets looked at, 3 matched)" in execute(e, "trace filter")
    bench.take()


def test_trace_filter_bytes_with_mask(bench):
    e = bench.engine
    execute(e, "trace filter bytes 12 0806")                      # ARP only
    e.trace_add("pg-input", 10)
    arp = Ether(src=PEER, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER, psrc="10.0.0.2", pdst="10.0.0.1")
    udp = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5") / UDP(sport=1, dport=2)
    bench.send("if0", [udp, arp, udp, arp])
    assert [p[0][1] for p in trace_packets(e)] == ["pg-input"] * 2
    assert all("arp-input" in [n for _t, n, _x in p] for p in trace_packets(e))
    e.clear_trace()
    execute(e, "trace filter bytes 30 0a010000 mask ffff0000")    # IPv4 destination in 10.1/16
    e.trace_add("pg-input", 10)
    bench.send("if0", [udp, arp, udp])
    assert len(trace_packets(e)) == 2
    e.clear_trace()
    execute(e, "trace filter off")
    assert execute(e, "trace filter") == "trace filter: off"
    e.trace_add("pg-input", 10)
    bench.send("if0", [udp, arp])
    assert len(trace_packets(e)) == 2
    bench.take()


@pytest.mark.parametrize("line, message", [
    ("trace filter bytes 12", "usage: trace filter bytes <offset> <hex> [mask <hex>]"),
    ("trace filter bytes x 08", "offset 'x' is not a number"),
    ("trace filter bytes 12 zz", "pattern 'zz' is not hex bytes"),
    ("trace filter bytes 12 0800 mask ff", "the mask has 1 bytes, the pattern 2"),
    ("trace filter ip4 src 10.0.0.300", "src '10.0.0.300' is not an IPv4 address or prefix"),
    ("trace filter ip4 proto icmp dport 5", "ports need proto udp or tcp"),
    ("trace filter ip4 colour red", "unknown field 'colour'"),
    ("trace filter mac 1", "unknown filter 'mac'"),
])
def test_trace_filter_errors_are_one_line(bench, line, message):
    with pytest.raises(UsageError) as ei:
        execute(bench.engine, line)
    text = str(ei.value)
    assert message in text and "\n" not in text and "usage: trace filter" in text
    assert execute(bench.engine, "trace filter") == "trace filter: off"        # nothing changed


def test_parse_ip4_filter():
    spec = parse(["ip4", "dst", "10.1.0.5", "proto", "17", "sport", "53"])
    assert spec["dst"] == (0x0a010005, 0xffffffff) and spec["src"] == (0, 0)
    assert (spec["proto"], spec["sport"], spec["dport"]) == (17, 53, -1)
    assert parse(["off"]) is None


# --- counters: one packet, one reason -----------------------------------------------------

def test_drop_counts_equal_packets_sent_per_class(bench):
    """Each class of bad packet, a different number of each: every packet
    is counted once, under its reason, at the node that dropped it, and
    show runtime's drops per node are show errors' error rows per node."""
    e = bench.engine
    e.interfaces.set_mtu("if1", 576)

    def udp(dst, n, **ip):
        return [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst=dst, id=i, **ip) / UDP(sport=2000 + i, dport=4000)
                / Raw(b"d" * 8) for i in range(n)]
    bad_sum = []
    for p in udp("10.0.0.1", 4):
        raw = bytearray(bytes(p))
        raw[24] ^= 0xff
        bad_sum.append(bytes(raw))
    big_df = [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.1.0.5", flags="DF", id=i) / UDP() / Raw(b"b" * 700)
              for i in range(5)]
    martian = [Ether(src=PEER, dst=IF0) / IP(src="127.0.0.9", dst="10.0.0.1") / UDP() for _ in range(2)]
    proto = [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1", proto=99) / Raw(b"p" * 8) for _ in range(6)]
    no_route = udp("192.0.2.1", 7)
    first = fragment(IP(src="10.0.0.2", dst="10.0.0.1", id=500) / UDP(sport=1, dport=7) / Raw(b"f" * 100), fragsize=64)[0]
    dup = [Ether(src=PEER, dst=IF0) / first] * 3                    # held once, then 2 duplicates
    sent = {("ip4-rewrite", "ttl-expired"): udp("10.1.0.5", 3, ttl=1),
            ("udp4-input", "no-listener"): udp("10.0.0.1", 2),
            ("ip4-input", "bad-checksum"): bad_sum,
            ("ip4-frag", "df-set-too-big"): big_df,
            ("ip4-input", "martian-source-loopback"): martian,
            ("ip4-local", "unknown-protocol"): proto,
            ("ip4-lookup", "no-route"): no_route,
            ("ip4-reassembly", "duplicate"): dup[1:]}
    e.clear_errors()
    bench.inject("if0", dup[:1])
    for frames in sent.values():
        bench.inject("if0", frames)
    bench.run()
    bench.take()
    errors = {k: v for k, v in bench.errors().items() if e.nodes[e.index[k[0]]].error_table()[
        [r[0] for r in e.nodes[e.index[k[0]]].error_table()].index(k[1])][1] == "error"}
    assert errors == {k: len(v) for k, v in sent.items()}
    assert ("ip4-rewrite", "mtu-exceeded") not in bench.errors()          # DF too big: counted once, not twice
    # show runtime's drops per node == show errors' error rows per node
    per_node = {}
    for (node, _sym), n in errors.items():
        per_node[node] = per_node.get(node, 0) + n
    assert node_drops(e) == per_node
    # ICMP errors went out for the classes that get one (rate limit not reached)
    assert bench.errors()[("ip4-icmp-error", "sent")] == 3 + 2 + 5 + 6
    execute(e, "clear errors")
    assert node_drops(e) == {} and bench.errors() == {}


def test_closed_udp_port_is_an_error_and_expected_events_are_info(bench):
    e = bench.engine
    sev = {(n.name, r[0]): r[1] for n in e.nodes for r in n.error_table()}
    assert sev[("udp4-input", "no-listener")] == "error"
    assert sev[("ip4-rewrite", "ttl-expired")] == "error"
    assert sev[("ip4-icmp-input", "echo-replies")] == "info"
    assert sev[("arp-input", "replies-sent")] == "info"
    assert sev[("ip4-icmp-error", "sent")] == "info"
    text = execute(e, "show errors all")
    assert re.search(r"udp4-input\s+no node for this UDP port.*\s+error$", text, re.M)
