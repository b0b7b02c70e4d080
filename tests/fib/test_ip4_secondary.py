"""Secondary IPv4 addresses (issue 10 item 2), against the kernel in a
namespace over a TAP: a second address in the same subnet is accepted,
answered to ARP and ping; deleting the primary promotes it (Linux's
promote_secondaries). An overlap with another interface's subnet stays an
error naming that interface.
"""

import pytest

from graphnet.cli.registry import execute
from graphnet.io import host
from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import tap_host
from graphnet.testing.ip4 import HostBench

GN1, GN2, PEER = "10.232.0.1", "10.232.0.3", "10.232.0.2"


def run_ns(ns, *argv, timeout=20):
    return host.run_in_netns(ns, list(argv), capture_output=True, text=True, timeout=timeout)


def ping(ns, addr, n=2):
    return run_ns(ns, "ping", "-c", str(n), "-i", "0.2", "-W", "1", addr)


@pytest.mark.privileged(tools=("ping",))
def test_secondary_answers_arp_and_ping_and_is_promoted(engine_factory):
    with host.temporary_netns("gn-sec") as ns:
        eng, dev = tap_host(engine_factory, ns, f"{GN1}/24", f"{PEER}/24")
        eng.start()
        try:
            eng.call(execute, eng, f"set interface ip address {dev.name} {GN2}/24")
            assert ip4_host.interface_addresses(eng, dev.name) == [f"{GN1}/24", f"{GN2}/24"]
            r = ping(ns, GN2)
            assert "2 received" in r.stdout, r.stdout + r.stderr
            mac = eng.interfaces.info(dev.name)["mac"]
            assert mac in run_ns(ns, "ip", "neigh", "show", GN2).stdout.lower()     # ARP answered for .3
            # delete the primary: the secondary keeps the subnet (connected route, replies)
            eng.call(execute, eng, f"set interface ip address del {dev.name} {GN1}/24")
            assert ip4_host.interface_addresses(eng, dev.name) == [f"{GN2}/24"]
            run_ns(ns, "ip", "neigh", "flush", "dev", dev.name)
            r = ping(ns, GN2)
            assert "2 received" in r.stdout, r.stdout + r.stderr
            assert "0 received" in ping(ns, GN1, 1).stdout
            routes = dict(ip4_host.fib(eng).routes())
            assert "10.232.0.0/24" in routes and "10.232.0.255/32" in routes
            # and deleting the last address takes the subnet away
            eng.call(execute, eng, f"set interface ip address del {dev.name} {GN2}/24")
            assert "10.232.0.0/24" not in dict(ip4_host.fib(eng).routes())
        finally:
            eng.stop()


def test_overlap_across_interfaces_is_an_error_naming_the_other(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.5.0.1/24")
    with pytest.raises(ValueError, match="overlaps 10.5.0.1/24 on if0: a subnet is on one interface only"):
        b.address("if1", "10.5.0.9/24")
    with pytest.raises(ValueError, match="on if0"):
        b.address("if1", "10.5.9.1/16")
    with pytest.raises(ValueError, match="another prefix length"):
        b.address("if0", "10.5.0.7/25")
    b.address("if0", "10.5.0.7/24")                      # a secondary: fine
    assert ip4_host.interface_addresses(b.engine, "if0") == ["10.5.0.1/24", "10.5.0.7/24"]
