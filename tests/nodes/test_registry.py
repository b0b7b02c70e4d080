"""Node discovery: graphs from features, user modules from entry points and
the startup file joining the same registry."""
import sys
import textwrap

import pytest

from graphnet.nodes import registry

IP4 = {"ethernet-input", "ip4-input", "ip4-input-no-checksum", "ip4-lookup", "ip4-rewrite", "ip4-frag", "ip4-gso",
       "ip4-reassembly", "ip4-reassembly-expire"}
IP4_HOST = IP4 | {"arp-input", "ip4-arp", "ip4-neighbor", "ip4-neighbor-process", "ip4-local", "ip4-icmp-input",
                  "ip4-icmp-error", "udp4-input", "udp4-echo", "ip4-ping", "ip4-ping-reply"}


def test_feature_graphs_are_the_former_hand_lists():
    from graphnet.nodes import ip4, ip4_host
    assert {n.name for n in ip4.NODES} == IP4
    assert {n.name for n in ip4_host.NODES} == IP4_HOST
    assert len(ip4_host.NODES) == len(IP4_HOST)              # each module once
    assert [n.name for n in registry.nodes("ip4-host")] == [n.name for n in ip4_host.NODES]


def test_unknown_feature_is_a_clear_error():
    with pytest.raises(registry.RegistryError, match="unknown feature 'ip5' \\(known: ip4, ip4-host, session\\)"):
        registry.nodes("ip5")


USER_MODULE = '''
"""user-sink: a user's node on UDP port 9999 (joins ip4-host)."""
from graphnet import Node
from graphnet.nodes.passthrough import PASSTHROUGH_FN
NODES = (Node("user-sink", fn=PASSTHROUGH_FN, next_nodes=("null",), attach_to=(("udp4-input", 9999),)),)
FEATURE = "ip4-host"
'''


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A module installed with an entry point in the graphnet.nodes group."""
    (tmp_path / "gn_user_nodes.py").write_text(textwrap.dedent(USER_MODULE))
    dist = tmp_path / "gn_user_nodes-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gn-user-nodes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[graphnet.nodes]\nsink = gn_user_nodes\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    yield
    sys.modules.pop("gn_user_nodes", None)
    monkeypatch.undo()
    registry.refresh()


def test_entry_point_module_joins_its_feature(user_package, engine_factory):
    assert "gn_user_nodes" in [m.__name__ for m in registry.modules()]
    assert "user-sink" in [n.name for n in registry.nodes("ip4-host")]
    assert "user-sink" not in [n.name for n in registry.nodes("ip4")]
    from graphnet.nodes.udp4 import udp_ports
    e = engine_factory(registry.nodes("ip4-host")).build()
    assert udp_ports(e)[9999] == "user-sink"


def test_entry_point_gone_after_refresh(user_package, monkeypatch):
    monkeypatch.undo()
    sys.modules.pop("gn_user_nodes", None)
    registry.refresh()
    assert "user-sink" not in [n.name for n in registry.nodes("ip4-host")]


def test_startup_file_module_joins_the_registry(tmp_path, monkeypatch):
    (tmp_path / "gn_startup_nodes.py").write_text(textwrap.dedent(USER_MODULE).replace("user-sink", "startup-sink"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_added", [])
    m = registry.add_module("gn_startup_nodes")
    try:
        assert m in registry.modules()
        assert "startup-sink" in [n.name for n in registry.nodes("ip4-host")]
        with pytest.raises(registry.RegistryError, match="module 'json' has no NODES"):
            registry.add_module("json")
    finally:
        sys.modules.pop("gn_startup_nodes", None)
