"""packet-generator new / enable-stream / disable-stream / show (graphnet.cli.packet_generator)."""
import pytest
from scapy.all import ICMP, IP  # noqa: F401  (binds IP and ICMP to Ether for parsing)

from graphnet.cli.registry import CommandError, execute
from graphnet.testing.ip4 import HostBench


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.0.1.1/24")
    execute(b.engine, "set ip neighbor if0 10.0.0.9 02:00:00:00:00:66 static")
    execute(b.engine, "set ip neighbor if1 10.0.1.2 02:00:00:00:00:77 static")
    return b


def test_new_stream_enters_on_the_named_interface(bench):
    """Echo requests made by `packet-generator new ... interface if1` are
    answered out of if1, from if1's address: they entered there."""
    out = execute(bench.engine, "packet-generator new name ping1 template icmp src 10.0.1.2 dst 10.0.1.1 "
                                "dst-mac 02:00:00:00:00:02 src-mac 02:00:00:00:00:77 limit 3 interface if1")
    assert "ping1" in out and "sending" in out
    bench.run()
    got = bench.take()
    assert got["if0"] == []
    replies = got["if1"]
    assert len(replies) == 3
    assert all(p["IP"].src == "10.0.1.1" and p["IP"].dst == "10.0.1.2" and p["ICMP"].type == 0 for p in replies)
    assert "ping1" in execute(bench.engine, "show packet-generator")
    bench.check_accounting()


def test_new_stream_with_an_edit_and_disabled_until_enabled(bench):
    e = bench.engine
    execute(e, "packet-generator new name many template udp src 10.0.0.9 dst 10.0.0.1 dport 9999 "
               "dst-mac 02:00:00:00:00:01 limit 5 edit udp.sport 1000-1004 disabled")
    bench.run()
    assert bench.take()["if0"] == []                                 # nothing sent while disabled
    execute(e, "packet-generator enable-stream many")
    bench.run()
    unreach = bench.take()["if0"]                                    # port unreachable per datagram
    assert sorted(p["ICMP"].payload.sport for p in unreach) == [1000, 1001, 1002, 1003, 1004]
    bench.check_accounting()


@pytest.mark.parametrize("line, message", [
    ("packet-generator new template udp", "needs a name"),
    ("packet-generator new name x", "exactly one of template"),
    ("packet-generator new name x template sctp", "template must be one of"),
    ("packet-generator new name x template udp dport 70000", "dport must be 0..65535"),
    ("packet-generator new name x template udp size 20", "size must be"),
    ("packet-generator new name x template udp colour blue", "unknown word 'colour'"),
    ("packet-generator new name x template udp interface nope", "no interface named 'nope'"),
    ("packet-generator new name x template udp edit ip9.src 1-2", "unknown field 'ip9.src'"),
    ("packet-generator new name x template udp rate -5", "rate must be > 0"),
    ("packet-generator new name x data zz", "data must be hex"),
    ("packet-generator new name x template udp limit", "'limit' needs a value"),
])
def test_new_stream_bad_words_are_named(bench, line, message):
    with pytest.raises(CommandError) as ei:
        execute(bench.engine, line)
    assert message in str(ei.value) and "Traceback" not in str(ei.value)
    assert "x" not in bench.pg.stats()


def test_new_stream_name_must_be_unique(bench):
    execute(bench.engine, "packet-generator new name dup template udp limit 1 disabled")
    with pytest.raises(CommandError, match="a stream named 'dup' exists"):
        execute(bench.engine, "packet-generator new name dup template udp limit 1")
