"""ethernet-input: unclaimed ethertypes are named in `show errors verbose`;
the kernel's IPv6 and LLDP chatter is counted as info, not warn."""
import re

from scapy.layers.l2 import Ether

from graphnet.cli.registry import execute
from graphnet.testing.ip4 import HostBench


def _frame(ethertype: int, n: int = 0) -> bytes:
    return bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:99", type=ethertype)) + bytes([n]) * 46


def test_ipv6_and_lldp_are_info_and_unknown_types_are_named(engine_factory):
    b = HostBench(engine_factory, ["if0"])
    b.send("if0", [_frame(0x86DD), _frame(0x86DD), _frame(0x88CC)] + [_frame(0x88B5, i) for i in range(3)]
           + [_frame(0x1234)])
    e = b.engine
    assert e.error_count("ethernet-input", "ipv6") == 2
    assert e.error_count("ethernet-input", "lldp") == 1
    assert e.error_count("ethernet-input", "unknown-ethertype") == 4
    rows = {r[1]: r[2] for r in e.errors if r[0] == "ethernet-input"}
    assert rows["ipv6"] == "info" and rows["lldp"] == "info" and rows["unknown-ethertype"] == "error"
    text = execute(e, "show errors verbose")
    assert re.search(r"^\s+ethertype 0x88b5: 3 frames$", text, re.M), text
    assert re.search(r"^\s+ethertype 0x1234: 1 frames$", text, re.M), text
    assert "0x86dd" not in text                              # IPv6 has its own row
    assert "ethertype 0x" not in execute(e, "show errors")   # the details only with verbose
    b.check_accounting()


def test_at_most_sixteen_unclaimed_types_are_remembered(engine_factory):
    b = HostBench(engine_factory, ["if0"])
    b.send("if0", [_frame(0x9000 + k) for k in range(20)])
    text = execute(b.engine, "show errors verbose")
    assert len(re.findall(r"ethertype 0x9[0-9a-f]{3}: 1 frames", text)) == 16
    assert b.engine.error_count("ethernet-input", "unknown-ethertype") == 20
