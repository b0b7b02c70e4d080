"""Routes from the CLI and the startup file (issue 10 item 3): ECMP paths
added one 'via' at a time and removed one at a time, flow-sticky hashing,
unreachable / prohibit routes answered with ICMP 3/1 / 3/13 (against the
kernel's ping in a namespace over a TAP), drop silent; ``show ip fib``
shows the paths and the route types.
"""
import json

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

from graphnet.cli.registry import CommandError, execute
from graphnet.config import build_engine, loads
from graphnet.io import host
from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import HostBench, mac_of, tap_host

PEER = "02:aa:00:00:00:09"
NH0, NH1 = "02:00:00:00:aa:00", "02:00:00:00:aa:01"


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1", "if2"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.address("if2", "10.2.0.1/24")
    execute(b.engine, "set ip neighbor if0 10.0.0.9 " + NH0 + " static")
    execute(b.engine, "set ip neighbor if1 10.1.0.9 " + NH1 + " static")
    execute(b.engine, "set ip neighbor if2 10.2.0.2 " + PEER + " static")
    yield b
    b.check_accounting()


def flows(n, dst="10.90.0.7"):
    return [Ether(src=PEER, dst=mac_of(2)) / IP(src="10.2.0.2", dst=dst) / UDP(sport=1000 + i, dport=53)
            for i in range(n)]


def where(out):
    """{sport: interface} of forwarded UDP packets."""
    return {p[UDP].sport: name for name, pkts in out.items() for p in pkts if UDP in p}


def test_ecmp_paths_added_and_removed_one_at_a_time_flows_sticky(bench):
    e = bench.engine
    execute(e, "ip route add 10.90.0.0/24 via 10.0.0.9")
    execute(e, "ip route add 10.90.0.0/24 via 10.1.0.9")          # a repeated add adds a path
    paths = bench.fib.route_paths("10.90.0.0/24")
    assert paths == [(0, "10.0.0.9"), (1, "10.1.0.9")]
    first = where(bench.send("if2", flows(64)))
    assert set(first.values()) == {"if0", "if1"} and len(first) == 64         # both paths used
    again = where(bench.send("if2", flows(64)))
    assert again == first                                                    # each flow keeps its path
    text = execute(e, "show ip fib 10.90.0.0/24")
    assert "dpo-load-balance: 2 paths" in text and "10.0.0.9" in text and "10.1.0.9" in text
    j = json.loads(execute(e, "show ip fib 10.90.0.0/24 --json"))
    assert [p["next_hop"] for p in j[0]["adjacency"]["path_list"]] == ["10.0.0.9", "10.1.0.9"]
    execute(e, "ip route del 10.90.0.0/24 via 10.0.0.9")          # one path goes, the other stays
    assert bench.fib.route_paths("10.90.0.0/24") == [(1, "10.1.0.9")]
    assert set(where(bench.send("if2", flows(16))).values()) == {"if1"}
    with pytest.raises(CommandError, match="has no path via 10.0.0.9 if0"):
        execute(e, "ip route del 10.90.0.0/24 via 10.0.0.9")
    execute(e, "ip route del 10.90.0.0/24 via 10.1.0.9")          # the last path takes the route
    assert bench.fib.lookup("10.90.0.7")["type"] == "drop"
    execute(e, "ip route add 10.91.0.0/24 via 10.0.0.9 via 10.1.0.9")   # two paths at once
    assert len(bench.fib.route_paths("10.91.0.0/24")) == 2


def test_route_types_in_pg_and_show(bench):
    e = bench.engine
    execute(e, "ip route add 10.90.1.0/24 unreachable")
    execute(e, "ip route add 10.90.2.0/24 prohibit")
    execute(e, "ip route add 10.90.3.0/24 drop")
    codes = []
    for dst in ("10.90.1.5", "10.90.2.5", "10.90.3.5"):
        out = bench.send("if2", flows(1, dst))["if2"]
        codes.append([(p[ICMP].type, p[ICMP].code, p[IP].src) for p in out if ICMP in p])
    assert codes == [[(3, 1, "10.2.0.1")], [(3, 13, "10.2.0.1")], []]
    assert bench.count("ip4-lookup", "unreachable") == 1 and bench.count("ip4-lookup", "prohibited") == 1
    assert bench.count("ip4-lookup", "blackhole") == 1
    text = execute(e, "show ip fib")
    assert "dpo-unreachable" in text and "dpo-prohibit" in text and "blackhole" in text
    execute(e, "ip route add 10.90.1.0/24 via 10.0.0.9")          # a path replaces the type
    assert bench.fib.route_paths("10.90.1.0/24") == [(0, "10.0.0.9")]


def test_startup_file_ecmp_and_route_types():
    cfg = loads('''
[[interface]]
kind = "pcap"
name = "p0"
address = "10.1.0.1/24"

[[interface]]
kind = "pcap"
name = "p1"
address = "10.3.0.1/24"

[[route]]
prefix = "10.90.0.0/24"
via = ["10.1.0.9", "10.3.0.9"]

[[route]]
prefix = "10.91.0.0/24"
type = "prohibit"
''', "t.toml")
    e = build_engine(cfg, create_devices=False)
    try:
        fib = ip4_host.fib(e)
        assert fib.route_paths("10.90.0.0/24") == [(0, "10.1.0.9"), (1, "10.3.0.9")]
        assert fib.lookup("10.91.0.1")["type"] == "prohibit"
    finally:
        e.close()


@pytest.mark.privileged(tools=("ping",))
def test_kernel_ping_gets_unreachable_and_prohibited(engine_factory):
    with host.temporary_netns("gn-rt") as ns:
        eng, dev = tap_host(engine_factory, ns, "10.233.0.1/24", "10.233.0.2/24")
        host.add_route("10.90.0.0/16", via="10.233.0.1", netns=ns)
        for line in ("ip route add 10.90.1.0/24 unreachable", "ip route add 10.90.2.0/24 prohibit",
                     "ip route add 10.90.3.0/24 drop"):
            execute(eng, line)
        eng.start()
        try:
            def ping(dst):
                return host.run_in_netns(ns, ["ping", "-c", "1", "-W", "1", dst], capture_output=True,
                                         text=True, timeout=20).stdout
            out = ping("10.90.1.5")
            assert "From 10.233.0.1" in out and "Destination Host Unreachable" in out, out
            out = ping("10.90.2.5")
            assert "From 10.233.0.1" in out and "Packet filtered" in out, out
            out = ping("10.90.3.5")
            assert "From" not in out and "0 received" in out, out
        finally:
            eng.stop()
