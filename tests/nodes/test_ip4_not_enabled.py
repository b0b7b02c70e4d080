"""Interfaces without IPv4 (issue 10 item 4), against the kernel in two
namespaces over two TAPs: packets arriving on the interface that has no
IPv4 address are dropped and counted as ``ip4-not-enabled``, never
forwarded, even with a route that would carry them and their replies.
"""
import uuid

import pytest

from graphnet.cli.registry import execute
from graphnet.io import host, tap
from graphnet.nodes import ip4_host


def run_ns(ns, *argv, timeout=20):
    return host.run_in_netns(ns, list(argv), capture_output=True, text=True, timeout=timeout)


@pytest.mark.privileged(tools=("ping",))
def test_packets_from_an_interface_without_ipv4_are_not_forwarded(engine_factory):
    with host.temporary_netns("gn-ne") as ns_a, host.temporary_netns("gn-ne") as ns_b:
        eng = engine_factory([ip4_host.NODES])
        a = tap.TapDevice(eng, f"gna{uuid.uuid4().hex[:7]}", netns=ns_a, host_address="10.234.0.2/24")
        b = tap.TapDevice(eng, f"gnb{uuid.uuid4().hex[:7]}", netns=ns_b, host_address="10.235.0.2/24")
        eng.add([a, b])
        eng.build()
        ip4_host.set_interface_address(eng, a.name, "10.234.0.1/24")
        execute(eng, f"ip route add 10.235.0.0/24 via {b.name}")      # replies could go back on-link
        mac_b = eng.interfaces.info(b.name)["mac"]
        run_ns(ns_b, "ip", "neigh", "replace", "10.235.0.1", "lladdr", mac_b, "dev", b.name, "nud", "permanent")
        host.add_route("10.234.0.0/24", via="10.235.0.1", netns=ns_b)
        host.add_route("10.235.0.0/24", via="10.234.0.1", netns=ns_a)
        eng.start()
        try:
            r = run_ns(ns_b, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.234.0.2")
            assert "0 received" in r.stdout, r.stdout + r.stderr
            assert eng.error_count("ip4-input", "ip4-not-enabled") >= 3
            assert eng.interfaces.info(a.name)["tx_packets"] == 0        # nothing forwarded to ns_a
            # with an address, the same interface forwards
            ip4_host.set_interface_address(eng, b.name, "10.235.0.1/24")
            r = run_ns(ns_b, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.234.0.2")
            assert " 0 received" not in r.stdout, r.stdout + r.stderr
        finally:
            eng.stop()
