"""The IPv4 host commands: set interface ip address, show interface
address, ip route add|del, show ip neighbors, set ip neighbor,
set ip neighbor-config."""
import pytest

from graphnet.cli.registry import CommandError, execute
from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import HostBench


@pytest.fixture
def bench(engine_factory):
    import graphnet.cli.commands  # noqa: F401  (registers the commands)
    b = HostBench(engine_factory, ["if0", "if1"])
    yield b
    b.check_accounting()


def test_addresses_routes_and_neighbors(bench):
    eng = bench.engine
    execute(eng, "set interface ip address if0 10.0.0.1/24")
    execute(eng, "set int ip addr if1 10.1.0.1/24")
    assert execute(eng, "show interface address") == "if0: 10.0.0.1/24\nif1: 10.1.0.1/24"
    assert bench.fib.lookup("10.0.0.1")["type"] == "local"
    execute(eng, "ip route add 10.9.0.0/16 via 10.1.0.9")
    info = bench.fib.lookup("10.9.1.1")
    assert info["type"] == "glean" and info["next_hop"] == "10.1.0.9" and info["sw_if_index"] == 1
    execute(eng, "ip route add 10.8.0.0/16 via 10.0.0.8 if0")
    execute(eng, "ip route add 10.7.0.0/16 via if1")
    execute(eng, "ip route add 10.6.0.0/16 drop")
    assert bench.fib.lookup("10.8.0.1")["sw_if_index"] == 0
    assert bench.fib.lookup("10.7.0.1")["type"] == "glean" and "next_hop" not in bench.fib.lookup("10.7.0.1")
    assert bench.fib.lookup("10.6.0.1")["type"] == "blackhole"
    execute(eng, "set ip neighbor if1 10.1.0.9 02:00:00:00:aa:09 static")
    assert bench.fib.lookup("10.9.1.1")["type"] == "rewrite"
    text = execute(eng, "show ip neighbors")
    assert "10.1.0.9" in text and "02:00:00:00:aa:09" in text and " S " in text
    execute(eng, "set ip neighbor del if1 10.1.0.9")
    assert bench.fib.lookup("10.9.1.1")["type"] == "glean"
    execute(eng, "ip route del 10.9.0.0/16")
    assert bench.fib.lookup("10.9.1.1")["type"] == "drop"
    execute(eng, "set interface ip address del if1 10.1.0.1/24")
    assert execute(eng, "show interface address") == "if0: 10.0.0.1/24"


@pytest.mark.parametrize("line, message", [
    ("set interface ip address if9 10.0.0.1/24", "no interface named 'if9'"),
    ("set interface ip address if0 10.0.0.1", "prefix length"),
    ("set interface ip address if0", "give an interface name"),
    ("ip route add 10.9.0.0/16 via 192.168.1.1", "on no interface's connected prefix"),
    ("ip route add 10.9.0.0/16 to 1.2.3.4", "give a prefix"),
    ("ip route del 10.99.0.0/16", "no route for 10.99.0.0/16"),
    ("set ip neighbor if0 10.0.0.9", "give an interface, an address and a MAC"),
    ("set ip neighbor if0 10.0.0.9 zz:zz", "bad MAC"),
    ("set ip neighbor del if0 10.0.0.9", "no neighbour 10.0.0.9"),
    ("set ip neighbor-config", "give one or more of: reachable-time"),
    ("set ip neighbor-config probes", "give one or more of"),
    ("set ip neighbor-config probes 0", "unicast_probes must be 1..255"),
    ("set ip neighbor-config aging-time 1e11", "aging_time must be >= 0 seconds .0: never. and at most 1e.09, not 100000000000"),
    ("set ip neighbor-config probe-interval 0", "probe_interval must be > 0 seconds and at most 1e.09, not 0"),
    ("set ip neighbor-config probes two", "not a whole number"),
    ("set ip neighbor-config reachable-time -1", "reachable_time must be >= 0"),
    ("set ip neighbor-config ttl 5", "unexpected argument 'ttl'"),
])
def test_bad_lines_are_usage_errors(bench, line, message):
    with pytest.raises(CommandError, match=message):
        execute(bench.engine, line)


def test_set_ip_neighbor_config(bench):
    eng = bench.engine
    execute(eng, "set ip neighbor-config reachable-time 10 probes 5 probe-interval 0.5 aging-time 600")
    c = bench.neighbors.config()
    assert (c["reachable_time"], c["unicast_probes"], c["probe_interval"], c["aging_time"]) == (10.0, 5, 0.5, 600.0)
    assert execute(eng, "show ip neighbors").splitlines()[-1] == \
        "dynamic entries: reachable 10 s, then stale: 5 unicast probes 0.5 s apart; aging 600 s"
    execute(eng, "set ip neighbor-config reachable-time 0")
    assert "never stale" in execute(eng, "show ip neighbors")
