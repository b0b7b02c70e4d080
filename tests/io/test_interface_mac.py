"""One MAC syntax: the interface table parses MACs with graphnet.wire.ethernet
(it had its own parser, which refused the '-' form and short groups)."""
import pytest

from graphnet.io.interface import InterfaceTable
from graphnet.wire.ethernet import parse_mac


@pytest.mark.parametrize("text", ["02-00-00-00-00-0a", "02:00:00:00:00:0a", "2:0:0:0:0:a"])
def test_interface_table_takes_every_form_wire_takes(text):
    t = InterfaceTable()
    sw = t.add("x0", "test", None, mac=text)
    assert t.info(sw)["mac"] == "02:00:00:00:00:0a" == ":".join(f"{b:02x}" for b in parse_mac(text))


@pytest.mark.parametrize("bad", ["02:00:00:00:00", "02:00:00:00:00:0g", b"\x02\x00"])
def test_interface_table_refuses_what_wire_refuses(bad):
    with pytest.raises(ValueError):
        parse_mac(bad)
    with pytest.raises(ValueError):
        InterfaceTable().add("x0", "test", None, mac=bad)
