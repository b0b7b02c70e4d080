"""Limits operators set (issue 10 item 6), from the CLI and the startup
file, shown by ``show ip limits`` (and --json); checked against
config.LIMITS with a one-line error. The UDP echo port is checked with the
kernel's own UDP socket in a namespace over a TAP.
"""
import json
import socket

import pytest

from graphnet.cli.registry import CommandError, execute
from graphnet.config import build_engine, loads
from graphnet.io import host
from graphnet.nodes import ip4_host
from graphnet.testing.helpers import ns_socket
from graphnet.testing.ip4 import HostBench, tap_host


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"])
    b.address("if0", "10.0.0.1/24")
    yield b


def test_cli_sets_and_show_ip_limits_shows(bench):
    e = bench.engine
    execute(e, "set ip reassembly timeout 5 pool-share 0.5")
    execute(e, "set ip icmp-error-rate 10 burst 3")
    execute(e, "set ip udp-echo-port 7007")
    execute(e, "set ip neighbor-config queue-limit 4")
    j = json.loads(execute(e, "show ip limits --json"))
    assert j["reassembly"]["timeout"] == 5 and j["reassembly"]["pool_share"] == 0.5
    assert j["icmp_error"] == {"rate": 10, "burst": 3}
    assert j["udp_echo_port"] == 7007 and j["neighbor"]["queue_limit"] == 4
    text = execute(e, "show ip limits")
    assert "timeout 5 s" in text and "10/s, burst 3" in text and "udp echo port: 7007" in text
    execute(e, "set ip udp-echo-port none")
    assert "udp echo port: none" in execute(e, "show ip limits")


def _fragments(ident, n, size=64):
    """The n fragments (size payload bytes each) of one UDP datagram from
    10.0.0.2 to the bench's 10.0.0.1, received on if0."""
    from scapy.layers.inet import IP, UDP, fragment
    from scapy.layers.l2 import Ether
    from graphnet.testing.ip4 import mac_of
    dgram = IP(src="10.0.0.2", dst="10.0.0.1", id=ident) / UDP(sport=4000, dport=9) / (b"x" * (n * size - 8))
    frags = fragment(dgram, fragsize=size)
    assert len(frags) == n
    return [Ether(src="02:aa:00:00:00:02", dst=mac_of(0)) / f for f in frags]


def test_reassembly_fragment_and_datagram_limits_from_the_cli(bench):
    """``set ip reassembly max-fragments 3 max-datagrams 2``: shown, the 4th
    fragment of a datagram drops it (each of its fragments counted
    ``too-many-fragments``), a 3rd datagram in progress evicts the oldest
    (``too-many-datagrams``), and lowering max-datagrams while datagrams
    are held drops the oldest at once, every buffer back in the pool."""
    from graphnet.nodes.ip4_reassembly import reassembly
    e = bench.engine
    execute(e, "set ip reassembly max-fragments 3 max-datagrams 2")
    assert "3 fragments per datagram, 2 datagrams at once" in execute(e, "show ip limits")
    r = json.loads(execute(e, "show ip limits --json"))["reassembly"]
    assert (r["max_fragments"], r["max_datagrams"]) == (3, 2)
    count = lambda sym: e.error_count("ip4-reassembly", sym)            # noqa: E731
    bench.send("if0", _fragments(1, 3))
    assert count("reassembled") == 1                                     # 3 fragments: within the limit
    bench.send("if0", _fragments(2, 4))
    assert count("too-many-fragments") == 4 and count("reassembled") == 1   # 3 held + the 4th
    firsts = [_fragments(10 + i, 2) for i in range(3)]
    bench.send("if0", [f[0] for f in firsts])                            # 3 datagrams, room for 2
    assert count("too-many-datagrams") == 1
    assert reassembly(e).stats()["in_progress"] == 2
    bench.send("if0", [firsts[2][1]])                                    # the newest completes
    assert count("reassembled") == 2
    bench.send("if0", [_fragments(20, 2)[0]])                            # datagrams 11 and 20 held
    execute(e, "set ip reassembly max-datagrams 1")                      # 11 is the oldest: dropped now
    assert count("too-many-datagrams") == 2
    st = reassembly(e).stats()
    assert st["in_progress"] == 1 and st["buffers_held"] == 1 and st["max_datagrams"] == 1
    bench.send("if0", [_fragments(20, 2)[1]])                            # 20 kept its fragment: completes
    assert count("reassembled") == 3
    execute(e, "set ip reassembly max-datagrams 4")
    two, one = _fragments(30, 3), _fragments(31, 2)
    bench.send("if0", two[:2] + one[:1])                                 # 30 holds 2 fragments, 31 holds 1
    execute(e, "set ip reassembly max-fragments 1")                      # 30 no longer fits: dropped now
    assert count("too-many-fragments") == 4 + 2
    assert reassembly(e).stats()["in_progress"] == 1
    bench.send("if0", one[1:])                                           # 31 kept: its 2nd fragment is
    assert count("too-many-fragments") == 4 + 2 + 2 and count("reassembled") == 3   # one too many now
    assert reassembly(e).stats()["buffers_held"] == 0
    bench.check_accounting()                  # the rest wait for ARP (port unreachable to 10.0.0.2)


@pytest.mark.parametrize("text, message", [
    ("max_fragments = 0", "t.toml:3: ip.reassembly.max_fragments: must be 1..1024, not 0"),
    ("max_datagrams = 5000000", r"t.toml:3: ip.reassembly.max_datagrams: must be 1\.\.4\.1943e\+06, not 5000000"),
    ("max_fragments = 2.5", r"t.toml:3: ip.reassembly.max_fragments: expected an integer, got a number \(2.5\)"),
])
def test_bad_reassembly_limits_in_the_startup_file(text, message):
    from graphnet.config import ConfigError
    with pytest.raises(ConfigError, match=message):
        loads(f"[ip.reassembly]\n\n{text}\n", "t.toml")


@pytest.mark.parametrize("line, message", [
    ("set ip reassembly timeout 0", "timeout must be > 0"),
    ("set ip reassembly pool-share 2", "pool-share must be > 0 and <= 1"),
    ("set ip reassembly fragments 3", "unexpected argument 'fragments'"),
    ("set ip reassembly max-fragments 0", "max-fragments must be 1..1024"),
    ("set ip reassembly max-datagrams 1.5", "max-datagrams: '1.5' is not a whole number"),
    ("set ip icmp-error-rate 0", "rate must be > 0"),
    ("set ip icmp-error-rate 10 burst 0.5", "burst must be 1..1e"),
    ("set ip udp-echo-port 70000", "port must be 0..65535"),
    ("set ip neighbor-config queue-limit 99", "queue_limit"),
])
def test_bad_limits_are_one_line_errors(bench, line, message):
    with pytest.raises(CommandError, match=message):
        execute(bench.engine, line)


def test_startup_file_limits():
    cfg = loads('''
[[interface]]
kind = "pcap"
name = "p0"
address = "10.1.0.1/24"

[ip]
udp_echo_port = 0

[ip.icmp_error]
rate = 50.0
burst = 5.0

[ip.reassembly]
max_fragments = 5
max_datagrams = 7
''', "t.toml")
    e = build_engine(cfg, create_devices=False)
    try:
        j = json.loads(execute(e, "show ip limits --json"))
        assert j["icmp_error"] == {"rate": 50, "burst": 5} and j["udp_echo_port"] is None
        assert (j["reassembly"]["max_fragments"], j["reassembly"]["max_datagrams"]) == (5, 7)
    finally:
        e.close()


@pytest.mark.privileged()
def test_udp_echo_port_moves_for_the_kernel(engine_factory):
    with host.temporary_netns("gn-lim") as ns:
        eng, dev = tap_host(engine_factory, ns, "10.237.0.1/24", "10.237.0.2/24")
        execute(eng, "set ip udp-echo-port 7007")
        eng.start()
        try:
            s = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.bind(("10.237.0.2", 4000))
            s.sendto(b"hello", ("10.237.0.1", 7007))
            assert s.recvfrom(100) == (b"hello", ("10.237.0.1", 7007))
            s.sendto(b"hello", ("10.237.0.1", 7))                 # the old port: nobody (port unreachable)
            s.settimeout(1)
            with pytest.raises((socket.timeout, ConnectionRefusedError)):
                s.recvfrom(100)
            s.close()
        finally:
            eng.stop()


@pytest.mark.privileged(tools=("ping",))
def test_set_interface_mtu_and_mac_on_a_tap(engine_factory):
    with host.temporary_netns("gn-lim") as ns:
        eng, dev = tap_host(engine_factory, ns, "10.238.0.1/24", "10.238.0.2/24")
        eng.start()
        try:
            eng.call(execute, eng, f"set interface mtu {dev.name} 1400")
            assert eng.interfaces.info(dev.name)["mtu"] == 1400
            link = host.run_in_netns(ns, ["ip", "link", "show", dev.name], capture_output=True, text=True).stdout
            assert "mtu 1400" in link                                   # the kernel side followed
            eng.call(execute, eng, f"set interface mac address {dev.name} 02:bb:00:00:00:01")
            r = host.run_in_netns(ns, ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.238.0.1"],
                                  capture_output=True, text=True, timeout=20)
            assert "2 received" in r.stdout, r.stdout + r.stderr
            neigh = host.run_in_netns(ns, ["ip", "neigh", "show", "10.238.0.1"], capture_output=True,
                                      text=True).stdout
            assert "02:bb:00:00:00:01" in neigh                          # ARP answered from the new MAC
            with pytest.raises(CommandError, match="multicast MAC"):
                eng.call(execute, eng, f"set interface mac address {dev.name} 01:00:5e:00:00:01")
            with pytest.raises(CommandError, match="mtu must be 68..65535"):
                eng.call(execute, eng, f"set interface mtu {dev.name} 70000")
        finally:
            eng.stop()


def test_mac_change_reaches_the_rewrites(engine_factory):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from graphnet.testing.ip4 import mac_of
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    execute(b.engine, "set ip neighbor if1 10.1.0.9 02:00:00:00:aa:09 static")
    execute(b.engine, "ip route add 10.90.0.0/24 via 10.1.0.9")
    execute(b.engine, "set interface mac address if1 02:cc:00:00:00:01")
    pkt = Ether(src="02:aa:00:00:00:09", dst=mac_of(0)) / IP(src="10.0.0.2", dst="10.90.0.5") / UDP()
    (out,) = [p for p in b.send("if0", [pkt])["if1"] if IP in p]       # beside the gratuitous ARP
    assert out.src == "02:cc:00:00:00:01" and out.dst == "02:00:00:00:aa:09"


def test_mac_change_sends_a_gratuitous_arp_per_address(engine_factory):
    """``set interface mac address`` announces each address of the
    interface with a gratuitous ARP (broadcast request, sender = target =
    the address) from the new MAC; counted ``announced``."""
    from scapy.layers.l2 import ARP
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if1", "10.1.0.1/24")
    b.address("if1", "10.1.0.7/24")
    execute(b.engine, "set interface mac address if1 02:cc:00:00:00:01")
    b.run()
    out = b.take()
    assert out["if0"] == []
    garps = sorted((p[ARP].psrc, p[ARP].pdst, p[ARP].hwsrc, p[ARP].op, p.src, p.dst) for p in out["if1"])
    assert garps == [(a, a, "02:cc:00:00:00:01", 1, "02:cc:00:00:00:01", "ff:ff:ff:ff:ff:ff")
                     for a in ("10.1.0.1", "10.1.0.7")]
    assert b.count("ip4-neighbor", "announced") == 2
    execute(b.engine, "set interface mac address if0 02:cc:00:00:00:02")   # no address: nothing to announce
    b.run()
    assert b.take() == {"if0": [], "if1": []}


@pytest.mark.privileged(tools=("ping",))
def test_kernel_neighbour_follows_a_mac_change_without_traffic(engine_factory):
    """The kernel's neighbour entry for graphnet's address changes to the
    new MAC after ``set interface mac address``, with no packet from the
    kernel in between: the gratuitous ARP updated it (Linux accepts one
    for an existing entry once its locktime, 1 s, has passed)."""
    import time
    with host.temporary_netns("gn-lim") as ns:
        eng, dev = tap_host(engine_factory, ns, "10.239.0.1/24", "10.239.0.2/24")
        eng.start()
        try:
            r = host.run_in_netns(ns, ["ping", "-c", "1", "-W", "2", "10.239.0.1"], capture_output=True,
                                  text=True, timeout=20)
            assert "1 received" in r.stdout, r.stdout + r.stderr
            old = eng.interfaces.info(dev.name)["mac"]

            def neigh():
                return host.run_in_netns(ns, ["ip", "neigh", "show", "10.239.0.1", "dev", dev.name],
                                         capture_output=True, text=True).stdout
            assert old in neigh()
            time.sleep(1.2)                                              # past the kernel's locktime
            eng.call(execute, eng, f"set interface mac address {dev.name} 02:bb:00:00:00:02")
            deadline = time.monotonic() + 3
            while "02:bb:00:00:00:02" not in neigh() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "02:bb:00:00:00:02" in neigh(), neigh()
            assert eng.error_count("ip4-neighbor", "announced") == 1
        finally:
            eng.stop()
