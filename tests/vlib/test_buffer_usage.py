"""``show buffers`` as a leak check (issue 10 item 1): buffers in use by
packets, in device caches (a TAP's rx spares), in loop caches and free are
reported apart, and "in use by packets" is back to its idle value once
traffic stops, on TAP, AF_PACKET and pg alike; the same numbers in
``show buffers --json`` and ``engine.buffer_stats()``.

The privileged tests run the kernel's ping inside namespaces they create
(unique names, deleted afterwards) against graphnet's IPv4 host.
"""
import json
import time

import pytest

from graphnet.cli.registry import execute
from graphnet.io import host
from graphnet.io.af_packet import AfPacketDevice
from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import tap_host
from graphnet.testing import udp_packets
from graphnet.testing.helpers import wait_for

GN, PEER = "10.231.0.1", "10.231.0.2"


def run_ns(ns, *argv, timeout=20):
    return host.run_in_netns(ns, list(argv), capture_output=True, text=True, timeout=timeout)


def accounted(s):
    return s["free_shared"] + s["cached"] + s["device_cached"] + s["in_use_packets"] == s["total"]


def ping_and_settle(eng, ns, n=20):
    idle = eng.buffer_stats()
    r = run_ns(ns, "ping", "-c", str(n), "-i", "0.01", "-W", "2", "-s", "1200", GN)
    assert f"{n} received" in r.stdout, r.stdout + r.stderr
    # the last reply has left once ip4-icmp-input counted it; give the loop one more turn
    assert wait_for(lambda: eng.error_count("ip4-icmp-input", "echo-replies") >= n)
    time.sleep(0.05)
    return idle, eng.buffer_stats()


@pytest.mark.privileged(tools=("ping",))
def test_tap_packets_back_to_idle_spares_apart(engine_factory):
    with host.temporary_netns("gn-buf") as ns:
        eng, dev = tap_host(engine_factory, ns, f"{GN}/24", f"{PEER}/24")
        eng.start()
        try:
            idle, after = ping_and_settle(eng, ns)
            assert after["in_use_packets"] == idle["in_use_packets"] == 0, eng.show("buffers")
            # the TAP keeps rx spares: the old "in use" counted them as packets
            assert after["device_cached"] > 0 and after["devices"] == {dev.name: after["device_cached"]}
            assert after["in_use"] == after["in_use_packets"] + after["device_cached"]
            assert accounted(after)
            j = json.loads(eng.call(execute, eng, "show buffers --json"))
            assert j["in_use_packets"] == 0 and j["device_cached"] == eng.buffer_stats()["device_cached"]
            row = eng.show("buffers").splitlines()[1].split()
            assert int(row[5]) == after["device_cached"] and int(row[6]) == 0
        finally:
            eng.stop()


@pytest.mark.privileged(tun=False, tools=("ping",))
def test_af_packet_packets_back_to_idle(engine_factory):
    with host.veth_pair("gn-buf", (None, f"{PEER}/24")) as v:
        a, a_if, b, b_if = v.ns_a, v.veth_a, v.ns_b, v.veth_b
        eng = engine_factory([ip4_host.NODES])
        dev = AfPacketDevice(eng, a_if, netns=a)
        eng.add(dev)
        eng.build()
        eng.interfaces.set_admin_up(dev.name, True)
        ip4_host.set_interface_address(eng, dev.name, f"{GN}/24")
        eng.start()
        try:
            idle, after = ping_and_settle(eng, b)
            assert after["in_use_packets"] == idle["in_use_packets"] == 0, eng.show("buffers")
            assert after["device_cached"] == 0 and accounted(after)
        finally:
            eng.stop()


def test_pg_packets_back_to_idle(pg_capture):
    t = pg_capture()
    t.send_bytes(udp_packets(300), count=300)
    s = t.engine.buffer_stats()
    assert s["in_use_packets"] == 0 and s["device_cached"] == 0 and s["queued"] == 0 and accounted(s)
    assert json.loads(execute(t.engine, "show buffers --json"))["in_use_packets"] == 0


def test_queued_arp_packets_are_counted_as_queued(engine_factory):
    """Packets waiting for ARP are in use by packets, and "queued" says so."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from graphnet.testing.ip4 import HostBench, mac_of
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    frames = [Ether(src="02:aa:00:00:00:09", dst=mac_of(0)) / IP(src="10.0.0.2", dst="10.1.0.5", id=i)
              / UDP(sport=1000, dport=2000) for i in range(3)]
    b.send("if0", frames)
    s = b.engine.buffer_stats()
    assert s["queued"] == 3 and s["in_use_packets"] == 3 and accounted(s)
    assert "Queued" in b.engine.show("buffers")
