"""graphnet as an IPv4 host and router against the kernel's own stack
(privileged: root, /dev/net/tun, iputils ping, tcpdump, tshark).

Every test creates its own network namespaces (unique names, removed
afterwards) and uses addresses only inside them; the kernel side of each
TAP lives in such a namespace. Peers are the kernel's own tools and
sockets: ``ping`` and ``traceroute`` run in the namespace, UDP sockets are
opened inside it (pyroute2's ``netns.create_socket``). Captures are taken
with tcpdump on the kernel side of the TAP and checked with tshark: no
malformed packet, no warning (bad checksums included) in anything graphnet
sent. Every engine is closed and leak-checked by engine_factory.
"""
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from graphnet.testing.helpers import ns_socket

from graphnet.io import host
from graphnet.nodes import ip4_host

from graphnet.io import tap

pytestmark = pytest.mark.privileged(tools=("ping",))

GN_A, HOST_A = "10.221.0.1", "10.221.0.2"
GN_B, HOST_B = "10.222.0.1", "10.222.0.2"
HOST_MAC_A = "02:aa:00:00:01:02"
HOST_MAC_B = "02:aa:00:00:02:02"


def tapname():
    return f"gnr{uuid.uuid4().hex[:7]}"


def run_ns(ns, *argv, timeout=20):
    return host.run_in_netns(ns, list(argv), capture_output=True, text=True, timeout=timeout)


class Capture:
    """tcpdump on an interface inside a namespace, written to a pcap file."""

    def __init__(self, ns, ifname, path):
        self.path = path
        self.proc = host.popen_in_netns(ns, ["tcpdump", "-i", ifname, "-U", "--immediate-mode", "-n", "-Z", "root", "-w", path],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()                   # "listening on ..." once it captures
        assert "listening" in line, line

    def stop(self):
        time.sleep(0.2)
        self.proc.terminate()
        self.proc.wait(5)

    def problems(self, sender):
        """tshark's malformed/warning packets among those ``sender`` sent."""
        if not shutil.which("tshark"):
            pytest.skip("tshark is not installed")
        flt = (f"(ip.src == {sender} || arp.src.proto_ipv4 == {sender}) && "
               f"(_ws.malformed || _ws.expert.severity >= warning)")
        r = subprocess.run(["tshark", "-r", self.path, "-n", "-o", "ip.check_checksum:TRUE",
                            "-o", "udp.check_checksum:TRUE", "-Y", flt], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def count(self, display_filter):
        r = subprocess.run(["tshark", "-r", self.path, "-n", "-Y", display_filter], capture_output=True, text=True,
                           timeout=60)
        return len([l for l in r.stdout.splitlines() if l.strip()])


def make_host(engine_factory, ns, *, extra_nodes=(), name=None, gn=GN_A, peer=HOST_A, host_mac=HOST_MAC_A):
    name = name or tapname()
    eng = engine_factory([ip4_host.NODES, *extra_nodes])
    dev = tap.TapDevice(eng, name, netns=ns, host_address=f"{peer}/24", host_mac=host_mac)
    eng.add(dev)
    eng.build()
    ip4_host.set_interface_address(eng, name, f"{gn}/24")
    return eng, dev


def test_kernel_ping_gets_replies(engine_factory, netns, tmp_path):
    eng, dev = make_host(engine_factory, netns)
    eng.start()
    try:
        cap = Capture(netns, dev.name, str(tmp_path / "ping.pcap"))
        r = run_ns(netns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "100", GN_A)
        cap.stop()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "3 received" in r.stdout and "ttl=64" in r.stdout
        # ARP both ways: the kernel resolved graphnet's MAC, graphnet learned the kernel's
        neigh = run_ns(netns, "ip", "neigh", "show", GN_A).stdout
        assert eng.interfaces.info(dev.name)["mac"] in neigh.lower()
        entry = ip4_host.ip4_neighbors(eng).lookup(dev.name, HOST_A)
        assert entry["mac"] == HOST_MAC_A and entry["state"] == "reachable"
        assert eng.error_count("ip4-icmp-input", "echo-replies") == 3
        assert cap.count(f"icmp.type == 0 && ip.src == {GN_A}") == 3
        assert cap.count(f"arp.opcode == 2 && arp.src.proto_ipv4 == {GN_A}") >= 1
        assert cap.problems(GN_A) == ""
    finally:
        eng.stop()


def test_fragmented_ping(engine_factory, netns, tmp_path):
    """``ping -s 4000``: the request arrives in fragments (ip4-reassembly),
    the reply leaves in fragments (ip4-frag)."""
    eng, dev = make_host(engine_factory, netns)
    if "ip4-reassembly" not in eng.registrations or "ip4-frag" not in eng.registrations:
        pytest.skip("the graph has no reassembly / fragmentation")
    eng.start()
    try:
        cap = Capture(netns, dev.name, str(tmp_path / "frag.pcap"))
        r = run_ns(netns, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", GN_A)
        cap.stop()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 received" in r.stdout and "4008 bytes from" in r.stdout
        assert cap.count(f"ip.src == {GN_A} && ip.flags.mf == 1") >= 4
        assert cap.problems(GN_A) == ""
    finally:
        eng.stop()


def test_graphnet_resolves_the_kernel_and_udp_both_ways(engine_factory, netns, tmp_path):
    """graphnet sends first (pg -> ip4-lookup): it has to ARP for the
    kernel, queue the datagram and send it once the kernel answers."""
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw
    from graphnet.io.pg import PacketGenerator, Stream
    pg = PacketGenerator(next_node="ip4-lookup", state="interrupt")
    eng, dev = make_host(engine_factory, netns, extra_nodes=[pg])
    sock = ns_socket(netns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((HOST_A, 5555))
        sock.settimeout(5)
        eng.start()
        cap = Capture(netns, dev.name, str(tmp_path / "udp.pcap"))
        pkt = bytes(IP(src=GN_A, dst=HOST_A, ttl=64) / UDP(sport=4444, dport=5555) / Raw(b"from graphnet"))
        eng.call(pg.add_stream, Stream("to-kernel", [pkt], count=1, l3_offset=0, fix_checksums=False,
                                       sw_if_index=dev.sw_if_index))
        eng.set_interrupt_pending("pg-input")
        data, addr = sock.recvfrom(2048)
        assert data == b"from graphnet" and addr == (GN_A, 4444)
        entry = ip4_host.ip4_neighbors(eng).lookup(dev.name, HOST_A)
        assert entry["mac"] == HOST_MAC_A
        assert eng.error_count("ip4-arp", "requests-sent") == 1
        assert eng.error_count("ip4-neighbor", "flushed") == 1
        # the kernel to graphnet's UDP echo, and to a closed port
        c = ns_socket(netns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            c.settimeout(5)
            c.connect((GN_A, 7))
            c.send(b"echo me")
            assert c.recv(2048) == b"echo me"
            c.connect((GN_A, 9))
            c.send(b"anyone?")
            with pytest.raises(ConnectionRefusedError):
                c.recv(2048)
        finally:
            c.close()
        cap.stop()
        assert cap.count(f"arp.opcode == 1 && arp.src.proto_ipv4 == {GN_A}") == 1
        assert cap.count(f"icmp.type == 3 && icmp.code == 3 && ip.src == {GN_A}") == 1
        assert cap.problems(GN_A) == ""
    finally:
        sock.close()
        eng.stop()


@pytest.fixture
def router(engine_factory, netns, netns2):
    """graphnet routing between two namespaces over two TAPs."""
    eng = engine_factory([ip4_host.NODES])
    a, b = tapname(), tapname()
    dev_a = tap.TapDevice(eng, a, netns=netns, host_address=f"{HOST_A}/24", host_mac=HOST_MAC_A)
    dev_b = tap.TapDevice(eng, b, netns=netns2, host_address=f"{HOST_B}/24", host_mac=HOST_MAC_B)
    eng.add([dev_a, dev_b])
    eng.build()
    ip4_host.set_interface_address(eng, a, f"{GN_A}/24")
    ip4_host.set_interface_address(eng, b, f"{GN_B}/24")
    host.add_route("default", via=GN_A, netns=netns)
    host.add_route("default", via=GN_B, netns=netns2)
    eng.start()
    yield eng, dev_a, dev_b
    eng.stop()


def test_router_ping_udp_and_ttl(router, netns, netns2, tmp_path):
    eng, dev_a, dev_b = router
    cap = Capture(netns2, dev_b.name, str(tmp_path / "b.pcap"))
    r = run_ns(netns, "ping", "-c", "3", "-i", "0.2", "-W", "2", HOST_B)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 received" in r.stdout and "ttl=63" in r.stdout           # one hop: graphnet
    # UDP across, with the TTL the receiver sees
    rx = ns_socket(netns2, socket.AF_INET, socket.SOCK_DGRAM)
    tx = ns_socket(netns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind((HOST_B, 6000))
        rx.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
        rx.settimeout(5)
        for i in range(5):
            tx.sendto(b"across %d" % i, (HOST_B, 6000))
        got = []
        for _ in range(5):
            data, anc, _flags, addr = rx.recvmsg(2048, socket.CMSG_SPACE(4))
            ttl = int.from_bytes(anc[0][2][:4], "little")
            got.append((data, addr[0], ttl))
        assert sorted(got) == [(b"across %d" % i, HOST_A, 63) for i in range(5)]
    finally:
        rx.close()
        tx.close()
    cap.stop()
    # graphnet forwarded with a correct IP checksum and resolved B itself
    assert cap.problems(GN_B) == ""
    assert cap.count(f"ip.src == {HOST_A} && ip.ttl == 63") >= 8
    assert ip4_host.ip4_neighbors(eng).lookup(dev_b.name, HOST_B)["mac"] == HOST_MAC_B


def test_router_ttl_exceeded(router, netns, tmp_path):
    eng, dev_a, dev_b = router
    cap = Capture(netns, dev_a.name, str(tmp_path / "a.pcap"))
    r = run_ns(netns, "ping", "-c", "1", "-t", "1", "-W", "2", HOST_B)
    assert f"From {GN_A} icmp_seq=1 Time to live exceeded" in r.stdout, r.stdout + r.stderr
    if shutil.which("traceroute"):
        r = run_ns(netns, "traceroute", "-n", "-q", "1", "-w", "2", "-m", "4", HOST_B, timeout=30)
        lines = [l.split() for l in r.stdout.splitlines()[1:]]
        assert lines[0][1] == GN_A and lines[1][1] == HOST_B, r.stdout
    cap.stop()
    assert cap.count(f"icmp.type == 11 && ip.src == {GN_A}") >= 1
    assert cap.problems(GN_A) == ""
    assert eng.error_count("ip4-rewrite", "ttl-expired") >= 1


def test_reassembly_timeout_time_exceeded_reaches_the_kernel(engine_factory, netns, tmp_path):
    """A lone first fragment sent by a kernel raw socket: graphnet holds
    it, times the datagram out and sends ICMP time exceeded, code 1, which
    the kernel delivers to a raw ICMP socket, quoting the fragment; a lone
    non-first fragment gets nothing."""
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw
    from graphnet.nodes import ip4_reassembly
    eng, dev = make_host(engine_factory, netns)
    ip4_reassembly.reassembly(eng).configure(timeout=0.3)
    first = bytes(IP(src=HOST_A, dst=GN_A, id=0x5151, flags="MF", ttl=64) / UDP(sport=4000, dport=7, len=1008)
                  / Raw(bytes(range(256)) * 2))                 # 512 + 8 of a 1000-byte UDP datagram
    later = bytes(IP(src=HOST_A, dst=GN_A, id=0x5252, frag=65, ttl=64, proto=17) / Raw(bytes(100)))
    tx = ns_socket(netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rx = ns_socket(netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    eng.start()
    try:
        cap = Capture(netns, dev.name, str(tmp_path / "reass.pcap"))
        rx.settimeout(0.1)
        tx.sendto(later, (GN_A, 0))
        tx.sendto(first, (GN_A, 0))
        got = []
        deadline = time.monotonic() + 1.5                     # 5 times the reassembly timeout
        while time.monotonic() < deadline:
            try:
                pkt = IP(rx.recv(4096))
            except socket.timeout:
                continue
            if pkt.src == GN_A and pkt.proto == 1:
                got.append(pkt)
        cap.stop()
        (e,) = got
        assert (e.src, e.dst, e["ICMP"].type, e["ICMP"].code) == (GN_A, HOST_A, 11, 1)
        quote = bytes(e)[28:e.len]                             # raw: Scapy's UDPerror stops short
        q = IP(quote[:20])
        assert (q.id, q.flags.MF, q.frag, q.src, q.dst) == (0x5151, 1, 0, HOST_A, GN_A)
        assert quote[20:] == first[20:]                        # the whole (short) fragment's data
        assert eng.error_count("ip4-reassembly", "time-exceeded") == 1
        assert eng.error_count("ip4-reassembly", "timeout") == 2
        assert cap.count(f"icmp.type == 11 && icmp.code == 1 && ip.src == {GN_A}") == 1
        assert cap.problems(GN_A) == ""
    finally:
        tx.close()
        rx.close()
        eng.stop()


def test_stale_neighbour_is_probed_unicast_against_the_kernel(engine_factory, netns, tmp_path):
    """graphnet's entry for the kernel goes stale and is probed with
    unicast ARP requests (Ethernet destination: the kernel's MAC): the
    kernel answers and the entry stays; once the kernel stops answering ARP
    (arp_ignore = 8) the entry is deleted after the probes."""
    from graphnet.testing.helpers import wait_for
    eng, dev = make_host(engine_factory, netns)
    nbrs = ip4_host.ip4_neighbors(eng)
    eng.start()
    try:
        cap = Capture(netns, dev.name, str(tmp_path / "probe.pcap"))
        r = run_ns(netns, "ping", "-c", "1", "-W", "2", GN_A)
        assert r.returncode == 0, r.stdout + r.stderr
        assert nbrs.lookup(dev.name, HOST_A)["mac"] == HOST_MAC_A
        nbrs.configure(reachable_time=0.2, probe_interval=0.2, unicast_probes=3)
        assert wait_for(lambda: eng.error_count("ip4-neighbor", "probes-sent") >= 3, timeout=5)
        entry = nbrs.lookup(dev.name, HOST_A)
        assert entry is not None and entry["mac"] == HOST_MAC_A           # answered every time
        assert eng.error_count("ip4-neighbor", "probe-failed") == 0
        run_ns(netns, "sysctl", "-qw", f"net.ipv4.conf.{dev.name}.arp_ignore=8", timeout=10).check_returncode()
        assert wait_for(lambda: nbrs.lookup(dev.name, HOST_A) is None, timeout=5)
        assert eng.error_count("ip4-neighbor", "probe-failed") == 1
        cap.stop()
        probes = f"arp.opcode == 1 && eth.dst == {HOST_MAC_A} && arp.src.proto_ipv4 == {GN_A}"
        assert cap.count(probes) >= 6                                      # answered ones, then 3 unanswered
        assert cap.count(f"arp.opcode == 2 && arp.src.proto_ipv4 == {HOST_A}") >= 3
        assert cap.count(f"arp.opcode == 1 && eth.dst == ff:ff:ff:ff:ff:ff && arp.src.proto_ipv4 == {GN_A}") == 0
        assert cap.problems(GN_A) == ""
    finally:
        eng.stop()
