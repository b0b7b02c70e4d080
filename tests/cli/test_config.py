"""The startup file: schema checks with key and line in every error, the
built-in packet templates (golden bytes from Scapy), and engines built from
configs that run and return every buffer."""
import re
import sys
import types
import uuid
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from graphnet import config
from graphnet.cli import templates
from graphnet.config import (BUILTIN, DEFAULT_TOML, PG_DEMO_TOML, ConfigError, build_engine, builtin_config,
                             default_config, load, loads, socket_path)
from graphnet.io.capture import Capture

REPO = Path(__file__).resolve().parents[2]


def stream(extra="", edits=""):
    return f'[pg]\nnext = "null"\n\n[[pg.stream]]\nname = "s"\ntemplate = "udp"\n{extra}\n{edits}'


def error_of(text, **kw):
    with pytest.raises(ConfigError) as ei:
        build_engine(loads(text, "t.toml", **kw)).close()
    return str(ei.value)


def finish(engine):
    """Stop every stream, drain, and return the buffers still in use."""
    engine.stop()
    for n in engine.nodes:
        if n.instance is not None and hasattr(n.instance, "stats") and hasattr(n.instance, "enable"):
            for s in n.instance.stats():
                n.instance.enable(s, False)
    engine.run_until_idle(5)
    in_use = engine.buffer_stats()["in_use"]
    engine.close()
    return in_use


@pytest.fixture
def capture_module(monkeypatch):
    """A module `gn_test_capture` whose NODES is a capture sink named capture."""
    cap = Capture("capture")
    mod = types.ModuleType("gn_test_capture")
    mod.NODES = cap.nodes()
    monkeypatch.setitem(sys.modules, "gn_test_capture", mod)
    return cap


# --- the built-in configs ---------------------------------------------------------------

def test_default_config_is_tap_gn0_in_namespace_graphnet0():
    cfg = default_config()
    assert cfg.builtin == "default" and cfg.cli_enabled and cfg.streams == []
    [ic] = cfg.interfaces
    assert (ic.kind, ic.name, ic.next, ic.rx_mode, ic.admin_up) == ("tap", "gn0", None, "interrupt", True)
    assert ic.options == {"netns": "graphnet0", "host_address": "10.10.0.1/24"}
    assert ic.addresses == ["10.10.0.2/24"] and cfg.ip_enabled
    # checked and drawn without creating anything (no root needed)
    e = build_engine(cfg, create_devices=False)
    try:
        from graphnet.nodes import ip4_host
        assert e.next_names["tap-input-gn0"] == ["ethernet-input"]
        assert ip4_host.interface_addresses(e, "gn0") == ["10.10.0.2/24"]
        assert ip4_host.fib(e).lookup("10.10.0.2")["type"] == "local"
        assert {"arp-input", "ip4-icmp-input", "udp4-echo"} <= set(e.registrations)
        assert "tap-output-gn0" in e.next_names["interface-output"]
        assert "not created" in e.show("hardware", "gn0")
        assert "graphnet0" not in host_netns()
    finally:
        e.close()


def host_netns():
    from graphnet.io import host
    return host.list_netns()


def test_builtin_pg_demo_and_example_file(tmp_path):
    assert builtin_config("pg").streams[0].packets == default_pg().streams[0].packets
    assert (REPO / "examples" / "pg-demo.toml").read_text() == PG_DEMO_TOML
    assert BUILTIN["default"][0] == DEFAULT_TOML
    with pytest.raises(ConfigError, match=r"no built-in config named 'pgg' \(did you mean 'pg'\?\)"):
        builtin_config("pgg")
    cfg = load(REPO / "examples" / "interfaces.toml")
    assert [(i.kind, i.name) for i in cfg.interfaces] == [("tap", "tap0"), ("pcap", "pcap0")]
    build_engine(cfg, create_devices=False).close()


def default_pg():
    return loads(PG_DEMO_TOML, "x")


def test_pg_demo_builds_and_runs():
    cfg = builtin_config("pg")
    assert cfg.pg_mode == "interrupt" and cfg.chain == 2 and cfg.cli_enabled
    assert cfg.streams[0].rate == 1000.0 and cfg.streams[0].count is None
    e = build_engine(cfg)
    assert e.next_names["pg-input"] == ["demo-0"] and e.next_names["demo-1"] == ["null"]
    e.run(0.3)
    vectors = {n.name: c["vectors"] for n, c in zip(e.nodes, e.main.node_counters())}
    assert 50 < vectors["null"] <= 0.3 * 1000 + 2          # rated, never ahead of 1000 pps
    assert vectors["demo-0"] == vectors["demo-1"] == vectors["null"]
    assert finish(e) == 0


def test_default_toml_is_the_default_config():
    assert loads(DEFAULT_TOML, "x").interfaces == default_config().interfaces


def test_empty_file_is_a_valid_config(tmp_path):
    f = tmp_path / "empty.toml"
    f.write_text("")
    cfg = load(f)
    assert cfg.streams == [] and cfg.source == str(f)
    e = build_engine(cfg)
    e.run_until_idle()
    assert finish(e) == 0


def test_socket_path_precedence(tmp_path):
    cfg = loads('[cli]\nsocket = "/tmp/a.sock"\n')
    assert socket_path(cfg) == "/tmp/a.sock"
    assert socket_path(cfg, "/tmp/b.sock") == "/tmp/b.sock"
    assert socket_path(loads(""), None).endswith("cli.sock")


# --- streams and edits reach the packets ---------------------------------------------------

def test_stream_count_edits_and_checksums(capture_module):
    text = """
[engine]
buffers = 1024
[graph]
modules = ["gn_test_capture"]
[pg]
next = "capture"
mode = "polling"
[[pg.stream]]
name = "five"
template = "udp"
src = "192.0.2.1"
dst = "198.51.100.7"
sport = 5000
dport = 53
size = 100
count = 5
[[pg.stream.edit]]
field = "ip4.src"
min = "10.0.0.1"
max = "10.0.0.3"
[[pg.stream.edit]]
offset = 36
size = 2
min = 7000
max = 7000
"""
    e = build_engine(loads(text, "t.toml"))
    e.run_until_idle()
    pkts = [Ether(p) for p in capture_module.packets()]
    assert [p[IP].src for p in pkts] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1", "10.0.0.2"]
    for p in pkts:
        assert len(p) == 100 and p[IP].dst == "198.51.100.7"
        assert p[UDP].sport == 5000 and p[UDP].dport == 7000
        ip_sum, udp_sum = p[IP].chksum, p[UDP].chksum
        del p[IP].chksum, p[UDP].chksum
        again = Ether(bytes(p))
        assert (again[IP].chksum, again[UDP].chksum) == (ip_sum, udp_sum)
    assert finish(e) == 0


def test_packet_hex_and_pcap_sources(tmp_path, capture_module):
    frames = [Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / Raw(b"x" * 10),
              Ether() / IP(src="3.3.3.3", dst="4.4.4.4") / ICMP()]
    wrpcap(str(tmp_path / "two.pcap"), frames)
    (tmp_path / "c.toml").write_text(f"""
[graph]
modules = ["gn_test_capture"]
[pg]
next = "capture"
mode = "polling"
[[pg.stream]]
name = "hex"
packet_hex = ["{bytes(frames[0]).hex()}"]
count = 1
fix_checksums = false
[[pg.stream]]
name = "file"
pcap = "two.pcap"
count = 2
""")
    e = build_engine(load(tmp_path / "c.toml"))             # pcap path relative to the file
    e.run_until_idle()
    got = sorted(capture_module.packets())
    assert got == sorted([bytes(frames[0]), bytes(frames[0]), bytes(frames[1])])
    assert finish(e) == 0


def test_adaptive_mode_and_node_states():
    e = build_engine(loads(stream("count = 0") + '\n[[node]]\nname = "pg-input"\nstate = "disabled"\n'))
    assert "disabled" in e.show("node", "pg-input").splitlines()[0]
    assert finish(e) == 0
    e = build_engine(loads('[pg]\nmode = "adaptive"\n' + stream("count = 0").split("\n", 2)[2]))
    assert "(adaptive)" in e.show("node", "pg-input").splitlines()[0]
    assert finish(e) == 0


@pytest.mark.parametrize("name,sc", [
    ("udp", lambda: IP(src="10.0.0.1", dst="10.0.0.2", ttl=64, id=0) / UDP(sport=1024, dport=9)),
    ("tcp", lambda: IP(src="10.0.0.1", dst="10.0.0.2", ttl=64, id=0)
     / TCP(sport=1024, dport=9, seq=1, ack=0, flags="S", window=65535)),
    ("icmp", lambda: IP(src="10.0.0.1", dst="10.0.0.2", ttl=64, id=0) / ICMP(type=8, id=1024, seq=9)),
])
def test_templates_match_scapy(name, sc):
    ref = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / sc()
    ref = ref / Raw(bytes(80 - len(ref)))
    assert templates.build(name, size=80) == bytes(ref)


# --- errors name the key and the line -------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ('[engine]\nbuffers = 16\nbufers = 16\n', r"^t\.toml:3: engine\.bufers: unknown key 'bufers' \(did you mean 'buffers'\?\)$"),
    ('[engine]\n\nbuffers = "many"\n', r"^t\.toml:3: engine\.buffers: expected an integer, got a string \('many'\)$"),
    ('[engine]\nbuffers = true\n', r"^t\.toml:2: engine\.buffers: expected an integer, got true or false"),
    ('[engine]\ntick = 0\n', r"^t\.toml:2: engine\.tick: must be 1e-06\.\.1, not 0\.0$"),
    ('[cli]\nsocket = 5\n', r"^t\.toml:2: cli\.socket: expected a string"),
    ('[graph]\nmodules = "x"\n', r"^t\.toml:2: graph\.modules: expected a list"),
    ('[engin]\n', r"^t\.toml: engin: unknown key 'engin' \(did you mean 'engine'\?\)$"),
    ('[pg]\nmode = "fast"\n', r"^t\.toml:2: pg\.mode: 'fast' is not one of polling, interrupt, adaptive, disabled$"),
    (stream('rate = -5'), r"^t\.toml:7: pg\.stream\[1\]\.rate: must be 0\.001\.\.1e\+09, not -5\.0$"),
    (stream('count = 1.5'), r"^t\.toml:7: pg\.stream\[1\]\.count: expected an integer, got a number"),
    (stream('sport = 70000'), r"^t\.toml:7: pg\.stream\[1\]\.sport: must be 0\.\.65535, not 70000$"),
    (stream('src = "10.0.0.300"'), r"^t\.toml:7: pg\.stream\[1\]\.src: '10\.0\.0\.300' is not an IPv4 address$"),
    (stream('size = 20'), r"^t\.toml:7: pg\.stream\[1\]\.size: size must be 42\.\.2048"),
    (stream('packet_hex = "00"'), r"^t\.toml:7: pg\.stream\[1\]\.packet_hex: give exactly one of template"),
    (stream('colour = "red"'), r"^t\.toml:7: pg\.stream\[1\]\.colour: unknown key"),
    (stream('', '[[pg.stream.edit]]\nfield = "ip4.sorce"\n'),
     r"^t\.toml:9: pg\.stream\[1\]\.edit\[1\]\.field: unknown field 'ip4\.sorce' \(did you mean 'ip4\.src'\?\)$"),
    (stream('', '[[pg.stream.edit]]\nfield = "ip4.ttl"\nmin = 5\nmax = 300\n'),
     r"^t\.toml:11: pg\.stream\[1\]\.edit\[1\]\.max: 300 does not fit 1 byte \(0\.\.255\)$"),
    (stream('', '[[pg.stream.edit]]\nfield = "udp.sport"\nmin = 9\nmax = 2\n'),
     r"^t\.toml:11: pg\.stream\[1\]\.edit\[1\]\.max: max \(2\) is below min \(9\)$"),
    (stream('', '[[pg.stream.edit]]\noffset = 30\nsize = 3\n'),
     r"^t\.toml:10: pg\.stream\[1\]\.edit\[1\]\.size: 3 is not one of 1, 2, 4$"),
    (stream('', '[[pg.stream.edit]]\nfield = "ip4.src"\nmode = "up"\n'),
     r"^t\.toml:10: pg\.stream\[1\]\.edit\[1\]\.mode: 'up' is not one of inc, random$"),
    (stream('', '[[pg.stream.edit]]\nmin = 1\n'),
     r"^t\.toml:8: pg\.stream\[1\]\.edit\[1\]: an edit needs field, or offset and size$"),
    (stream() + '[[pg.stream]]\nname = "s"\ntemplate = "tcp"\n',
     r"^t\.toml:9: pg\.stream\[2\]\.name: a stream named 's' already exists$"),
    ('[[pg.stream]]\nname = "t"\n', r"^t\.toml:1: pg\.stream\[1\]: give exactly one of template, packet_hex or pcap$"),
    ('[[pg.stream]]\nname = "t"\npacket_hex = "0800zz"\n', r"^t\.toml:3: pg\.stream\[1\]\.packet_hex: not hex"),
    ('[[pg.stream]]\nname = "t"\npacket_hex = "ffff"\n[[pg.stream.edit]]\nfield = "ip4.src"\n',
     r"^t\.toml:5: pg\.stream\[1\]\.edit\[1\]\.field: ip4\.src needs Ethernet \+ IPv4 packets"),
    ('[[pg.stream]]\nname = "t"\npcap = "/nonexistent/x.pcap"\n',
     r"^t\.toml:3: pg\.stream\[1\]\.pcap: no such file: /nonexistent/x\.pcap$"),
    ('[[node]]\nname = "x"\n', r"^t\.toml:1: node\[1\]: needs both name and state$"),
])
def test_schema_errors(text, expected):
    msg = error_of(text)
    assert re.search(expected, msg), msg


def test_second_array_element_is_located():
    text = stream() + '\n[[pg.stream]]\nname = "u"\ntemplate = "udp"\n\n[[pg.stream.edit]]\nfield = "udp.dport"\nmax = 99999\n'
    msg = error_of(text)
    assert msg.startswith("t.toml:15: pg.stream[2].edit[1].max: 99999 does not fit 2 bytes"), msg


def test_toml_syntax_error_has_line_and_column():
    msg = error_of('[engine]\nbuffers = 16\nname = "unterminated\n')
    assert msg.startswith("t.toml: TOML syntax error: ") and "line 3, column" in msg, msg


def test_build_errors_are_config_errors():
    assert re.search(r"^t\.toml:2: pg\.next: no node named 'nul' in the graph \(did you mean 'null'\?\)$",
                     error_of('[pg]\nnext = "nul"\n' + stream().split("\n", 2)[2]))
    msg = error_of('[[node]]\nname = "nul"\nstate = "polling"\n')
    assert re.search(r"^t\.toml:2: node\[1\]\.name: no node named 'nul'", msg), msg
    msg = error_of('[[node]]\nname = "null"\nstate = "polling"\n')
    assert "not an input node" in msg
    msg = error_of('[graph]\nmodules = ["no_such_module_gn"]\n')
    assert re.search(r"^t\.toml:2: graph\.modules: cannot import 'no_such_module_gn'", msg), msg
    msg = error_of('[graph]\nmodules = ["json"]\n')
    assert "module 'json' has no NODES" in msg


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[engine]")
    with pytest.raises(ConfigError, match="cannot read"):
        load(bad)


# --- [[interface]] ------------------------------------------------------------------------

def iface(body, kind="tap", name='"t0"'):
    return f'[[interface]]\nkind = "{kind}"\n' + (f"name = {name}\n" if name else "") + body


@pytest.mark.parametrize("text,expected", [
    ('[[interface]]\nname = "x"\n', r"^t\.toml:1: interface\[1\]: an interface needs kind = one of tap, af-packet, pcap$"),
    ('[[interface]]\nkind = "tpa"\n', r"^t\.toml:2: interface\[1\]\.kind: unknown kind 'tpa' \(did you mean 'tap'\?\)$"),
    (iface('netsn = "x"\n'), r"^t\.toml:4: interface\[1\]\.netsn: unknown key 'netsn' \(did you mean 'netns'\?\)$"),
    (iface('host_if = "eth0"\n'),
     r"^t\.toml:4: interface\[1\]\.host_if: 'host_if' is not an option of a tap interface \(it is one of af-packet\)$"),
    (iface('rx_mode = "fast"\n'), r"^t\.toml:4: interface\[1\]\.rx_mode: 'fast' is not one of polling, interrupt, adaptive$"),
    (iface('rx-mode = "fast"\n'), r"^t\.toml:4: interface\[1\]\.rx_mode: 'fast' is not one of polling, interrupt, adaptive$"),
    (iface('rx-mode = "polling"\nrx_mode = "polling"\n'), r"^t\.toml:4: interface\[1\]\.rx-mode: give rx_mode or rx-mode, not both$"),
    (iface('state = "on"\n'), r"^t\.toml:4: interface\[1\]\.state: 'on' is not one of up, down$"),
    (iface('mtu = 40\n'), r"^t\.toml:4: interface\[1\]\.mtu: must be 68\.\.65535, not 40$"),
    (iface('mac = "02:00:00:00:00"\n'), r"^t\.toml:4: interface\[1\]\.mac: '02:00:00:00:00' is not a MAC address"),
    (iface('mac = "01:00:5e:00:00:01"\n'), r"^t\.toml:4: interface\[1\]\.mac: '01:00:5e:00:00:01' is a multicast address"),
    (iface('host_address = "10.0.0.1"\n'), r"^t\.toml:4: interface\[1\]\.host_address: '10\.0\.0\.1' is not an IPv4 "
                                           r"address/length: give a prefix length"),
    (iface('host_address = "10.0.0.300/24"\n'), r"^t\.toml:4: interface\[1\]\.host_address: '10\.0\.0\.300/24' is not"),
    (iface('offloads = "yes"\n'), r"^t\.toml:4: interface\[1\]\.offloads: expected true or false, got a string"),
    (iface('netns = "a/b"\n'), r"^t\.toml:4: interface\[1\]\.netns: 'a/b' is not a network namespace name$"),
    (iface('', name='"a-name-longer-than-15"'),
     r"^t\.toml:3: interface\[1\]\.name: 'a-name-longer-than-15' is not a kernel interface name \(1\.\.15 bytes"),
    (iface('', name='"two words"'), r"^t\.toml:3: interface\[1\]\.name: 'two words': a name needs"),
    (iface('', name=None), r"^t\.toml:1: interface\[1\]: a tap interface needs a name$"),
    (iface('', kind="af-packet", name=None), r"^t\.toml:1: interface\[1\]: an af-packet interface needs host_if"),
    (iface('promiscuous = 1\nhost_if = "x"\n', kind="af-packet", name=None),
     r"^t\.toml:3: interface\[1\]\.promiscuous: expected true or false"),
    (iface('input = "/nonexistent/in.pcap"\n', kind="pcap"),
     r"^t\.toml:4: interface\[1\]\.input: no such file: /nonexistent/in\.pcap$"),
    (iface('output = "/nonexistent/dir/out.pcap"\n', kind="pcap"),
     r"^t\.toml:4: interface\[1\]\.output: no such directory: /nonexistent/dir$"),
    (iface('repeat = 0\n', kind="pcap"), r"^t\.toml:4: interface\[1\]\.repeat: must be 1\.\.4\.29497e\+09, not 0$"),
    (iface('') + '\n' + iface(''), r"^t\.toml:7: interface\[2\]\.name: an interface named 't0' already exists "
                                   r"\(interface\[1\]\)$"),
    ('interface = 5\n', r"^t\.toml:1: interface: expected \[\[interface\]\] tables"),
])
def test_interface_schema_errors(text, expected):
    msg = error_of(text)
    assert re.search(expected, msg), msg


def test_interface_next_must_be_in_the_graph():
    msg = error_of(iface('next = "nul"\n', kind="pcap"))
    assert re.search(r"^t\.toml:4: interface\[1\]\.next: no node named 'nul' in the graph \(did you mean 'null'\?\)$",
                     msg), msg


def test_pcap_interfaces_replay_and_write_offline(tmp_path):
    """pcap0 replays in.pcap into pcap1's tx node; out.pcap equals in.pcap."""
    from graphnet.io.pcap import read_pcap
    frames = [bytes(Ether(dst="02:00:00:00:00:02") / IP(dst="10.1.0.2") / UDP(dport=i) / Raw(bytes(i)))
              for i in range(1, 41)]
    wrpcap(str(tmp_path / "in.pcap"), [Ether(f) for f in frames])
    f = tmp_path / "offline.toml"
    f.write_text('[[interface]]\nkind = "pcap"\nname = "pcap0"\ninput = "in.pcap"\nnext = "pcap-output-pcap1"\n'
                 '\n[[interface]]\nkind = "pcap"\nname = "pcap1"\noutput = "out.pcap"\nrx-mode = "interrupt"\n')
    cfg = load(f)
    assert cfg.interfaces[0].options == {"input_path": str(tmp_path / "in.pcap")}
    e = build_engine(cfg)
    e.run_until_idle()
    assert e.interfaces.info("pcap0")["rx_packets"] == 40
    assert e.interfaces.info("pcap1")["tx_packets"] == 40
    assert finish(e) == 0
    assert [p for _, p in read_pcap(tmp_path / "out.pcap")] == frames


def test_mac_takes_the_interface_table_s_syntax():
    """One MAC parser (graphnet.wire.ethernet.parse_mac) for the startup
    file and the interface table: dash-separated and one-digit groups too."""
    e = build_engine(loads(iface('mac = "02-aa-00-00-00-0f"\n', kind="pcap")))
    assert e.interfaces.info("t0")["mac"] == "02:aa:00:00:00:0f"
    assert finish(e) == 0
    assert loads(iface('mac = "2:0:0:0:0:1"\n', kind="pcap")).interfaces[0].mac == "02:00:00:00:00:01"


def test_state_down_and_mac_reach_the_interface_table(tmp_path):
    e = build_engine(loads(iface('state = "down"\nmac = "02:AA:00:00:00:0F"\nmtu = 1400\n', kind="pcap")))
    info = e.interfaces.info("t0")
    assert (info["admin_up"], info["mac"], info["mtu"]) == (False, "02:aa:00:00:00:0f", 1400)
    assert finish(e) == 0


# --- [[interface]] with real devices (root) ------------------------------------------------

needs_root = pytest.mark.privileged


def close_clean(engine):
    """Close (devices give back the buffers they hold), then check for leaks."""
    from graphnet.testing.plugin import check_engine_clean
    engine.close()
    check_engine_clean(engine)


def _uniq(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@needs_root
def test_tap_from_config_is_created_and_removed_with_its_namespace():
    from graphnet.io import host
    name, ns = _uniq("gnc"), _uniq("gn-cfg-")
    text = iface(f'netns = "{ns}"\nhost_address = "10.212.0.1/24"\nrx_mode = "polling"\nmtu = 1400\n'
                 f'offloads = false\n', name=f'"{name}"')
    e = build_engine(loads(text, "t.toml"))
    try:
        assert ns in host.list_netns() and host.link_exists(name, ns)
        with host.ipr(ns) as ipr:
            idx = ipr.link_lookup(ifname=name)[0]
            assert ipr.get_links(idx)[0].get_attr("IFLA_MTU") == 1400
            assert [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)] == ["10.212.0.1"]
        assert "polling" in e.show("node", f"tap-input-{name}").splitlines()[0]
        assert e.next_names[f"tap-input-{name}"] == ["null"]
        assert "offloads: none" in e.show("hardware", name)
    finally:
        close_clean(e)
    assert ns not in host.list_netns()


@needs_root
def test_existing_namespace_is_kept_and_a_failing_device_undoes_the_others():
    from graphnet.io import host
    a, b = _uniq("gnc"), _uniq("gnc")
    with host.temporary_netns("gn-cfg") as ns:
        host.create_veth(b, _uniq("gnp"))                   # b exists in the host namespace
        try:
            text = (iface(f'netns = "{ns}"\n', name=f'"{a}"') + "\n" + iface("", name=f'"{b}"'))
            msg = error_of(text)
            assert re.search(rf"^t\.toml:6: interface\[2\]: creating TAP {b}: an interface named '{b}' already "
                             rf"exists$", msg), msg
            assert not host.link_exists(a, ns)                # the first TAP was closed again
            assert ns in host.list_netns()                    # not ours: kept
            e = build_engine(loads(iface(f'netns = "{ns}"\n', name=f'"{a}"')))
            assert host.link_exists(a, ns)
            close_clean(e)
            assert ns in host.list_netns() and not host.link_exists(a, ns)
        finally:
            host.delete_link(b)


@needs_root
def test_af_packet_from_config_and_missing_host_interface():
    from graphnet.io import host
    with host.temporary_netns("gn-cfg") as ns:
        a, b = _uniq("gna"), _uniq("gnb")
        host.create_veth(a, b, netns=ns, peer_netns=ns)
        host.set_link(a, ns, up=True)
        host.set_link(b, ns, up=True)
        e = build_engine(loads(iface(f'host_if = "{a}"\nnetns = "{ns}"\npromiscuous = false\nrx-mode = "adaptive"\n',
                                     kind="af-packet", name=None)))
        try:
            info = e.interfaces.info(f"host-{a}")
            assert info["kind"] == "af-packet" and not info["promiscuous"]
            assert "(adaptive)" in e.show("node", f"af-packet-input-host-{a}").splitlines()[0]
        finally:
            close_clean(e)
        msg = error_of(iface(f'host_if = "gnnope0"\nnetns = "{ns}"\n', kind="af-packet", name='"h0"'))
        assert re.search(r"^t\.toml:1: interface\[1\]: .*gnnope0", msg), msg


# --- IPv4: addresses, [ip], [[route]], [[neighbor]] -------------------------------------------

IP_TOML = """\
[[interface]]
kind = "pcap"
name = "p0"
addresses = ["10.1.0.1/24", "10.2.0.1/24"]

[[interface]]
kind = "pcap"
name = "p1"
address = "10.3.0.1/24"

[[neighbor]]
interface = "p0"
ip = "10.1.0.9"
mac = "02:00:00:00:00:09"
static = true

[[neighbor]]
interface = "p1"
ip = "10.3.0.8"
mac = "02:00:00:00:00:08"

[[route]]
prefix = "10.9.0.0/16"
via = "10.1.0.9"

[[route]]
prefix = "10.8.0.0/16"
via = "10.3.0.7"
interface = "p1"

[[route]]
prefix = "10.7.0.0/16"
interface = "p1"

[[route]]
prefix = "192.0.2.0/24"
drop = true
"""


def test_ip_addresses_routes_neighbors_are_applied():
    from graphnet.nodes import ip4_host
    cfg = loads(IP_TOML, "t.toml")
    assert cfg.ip_enabled
    assert [ic.addresses for ic in cfg.interfaces] == [["10.1.0.1/24", "10.2.0.1/24"], ["10.3.0.1/24"]]
    assert [(r.prefix, r.via, r.interface, r.drop) for r in cfg.routes] == [
        ("10.9.0.0/16", "10.1.0.9", "p0", False),       # interface found from the connected prefix
        ("10.8.0.0/16", "10.3.0.7", "p1", False),
        ("10.7.0.0/16", None, "p1", False),
        ("192.0.2.0/24", None, None, True)]
    e = build_engine(cfg, create_devices=False)
    try:
        assert ip4_host.ip4_addresses(e).all() == {"p0": ["10.1.0.1/24", "10.2.0.1/24"], "p1": ["10.3.0.1/24"]}
        assert e.next_names["pcap-input-p0"] == ["ethernet-input"]
        fib = ip4_host.fib(e)
        assert fib.lookup("10.2.0.1")["type"] == "local"
        hop = fib.lookup("10.9.1.1")                     # the static neighbour resolves it at once
        assert hop["type"] == "rewrite" and hop["sw_if_index"] == 0
        assert fib.lookup("10.8.1.1")["type"] == "glean" and fib.lookup("10.8.1.1")["sw_if_index"] == 1
        assert fib.lookup("10.7.1.1")["type"] == "glean"
        assert fib.lookup("192.0.2.7")["type"] == "blackhole"
        nbrs = ip4_host.ip4_neighbors(e)
        assert nbrs.lookup("p0", "10.1.0.9")["mac"] == "02:00:00:00:00:09"
        assert nbrs.lookup("p1", "10.3.0.8")["mac"] == "02:00:00:00:00:08"
        shown = ip4_host.show_ip_neighbors(e)
        assert "10.1.0.9" in shown and "10.3.0.8" in shown
    finally:
        e.close()


def test_ip_enabled_alone_adds_the_graph_and_no_ip_no_graph():
    e = build_engine(loads('[ip]\nenabled = true\n', "t.toml"), create_devices=False)
    try:
        assert "ip4-icmp-input" in e.registrations
    finally:
        e.close()
    cfg = loads('[[interface]]\nkind = "pcap"\nname = "p0"\n', "t.toml")
    assert not cfg.ip_enabled
    e = build_engine(cfg, create_devices=False)
    try:
        assert "ip4-input" not in e.registrations and e.next_names["pcap-input-p0"] == ["null"]
    finally:
        e.close()
    # a route alone brings the graph in too
    assert loads('[[route]]\nprefix = "192.0.2.0/24"\ndrop = true\n', "t.toml").ip_enabled


def test_ip_with_the_ip4_module_already_in_the_graph():
    text = '[graph]\nmodules = ["graphnet.nodes.ip4"]\n[[interface]]\nkind = "pcap"\nname = "p0"\n' \
           'address = "10.1.0.1/24"\n'
    e = build_engine(loads(text, "t.toml"), create_devices=False)
    try:
        assert "arp-input" in e.registrations and "ip4-lookup" in e.registrations
    finally:
        e.close()


def test_ip_engine_answers_ping_from_a_pcap_interface(tmp_path):
    """A config with an address, run: an ARP request and a ping in a pcap
    get their answers in the output pcap; every buffer comes back."""
    from scapy.layers.l2 import ARP
    from scapy.utils import rdpcap
    mac = "02:00:00:00:00:01"
    peer = "02:aa:00:00:00:02"
    wrpcap(str(tmp_path / "in.pcap"), [
        Ether(src=peer, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=peer, psrc="10.1.0.2", pdst="10.1.0.1"),
        Ether(src=peer, dst=mac) / IP(src="10.1.0.2", dst="10.1.0.1") / ICMP(id=7, seq=1) / Raw(b"x" * 20)])
    text = (f'[[interface]]\nkind = "pcap"\nname = "p0"\nmac = "{mac}"\ninput = "in.pcap"\n'
            f'output = "out.pcap"\naddress = "10.1.0.1/24"\n')
    e = build_engine(loads(text, "t.toml", tmp_path))
    e.run_until_idle(5)
    assert finish(e) == 0
    out = rdpcap(str(tmp_path / "out.pcap"))
    assert any(ARP in p and p[ARP].op == 2 and p[ARP].psrc == "10.1.0.1" for p in out)
    replies = [p for p in out if ICMP in p and p[ICMP].type == 0]
    assert len(replies) == 1 and replies[0][IP].src == "10.1.0.1" and replies[0][ICMP].id == 7


@pytest.mark.parametrize("text,where,message", [
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.0.0.1"\n', "t.toml:4: interface[1].address",
     "give the prefix length too"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.0.0.300/24"\n', "t.toml:4: interface[1].address",
     "is not an IPv4 address/length"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.0.0.0/24"\n', "t.toml:4: interface[1].address",
     "network address"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "224.0.0.1/4"\n', "t.toml:4: interface[1].address",
     "not a usable host address"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = 10\n', "t.toml:4: interface[1].address",
     "expected an address a.b.c.d/len"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddres = "10.0.0.1/24"\n', "t.toml:4: interface[1].addres",
     "did you mean 'address'"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.0.0.1/24"\naddresses = []\n',
     "t.toml:5: interface[1].addresses", "not both"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddresses = "10.0.0.1/24"\n',
     "t.toml:4: interface[1].addresses", "expected a list"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddresses = ["10.0.0.1/24", "10.0.0.2/25"]\n',
     "t.toml:4: interface[1].addresses", "overlaps"),      # 10.0.0.2/24 would be a secondary
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.0.0.1/24"\n'
     '[[interface]]\nkind = "pcap"\nname = "p1"\naddress = "10.0.0.9/24"\n',
     "t.toml:8: interface[2].address", "on p0: a subnet is on one interface only"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.0.0.1/24"\n'
     '[[interface]]\nkind = "pcap"\nname = "p1"\naddress = "10.0.0.1/16"\n',
     "t.toml:8: interface[2].address", "already an address of p0"),
    ('[[route]]\nprefix = "10.0.0.1/8"\ndrop = true\n', "t.toml:2: route[1].prefix",
     "host bits set (did you mean '10.0.0.0/8'?)"),
    ('[[route]]\nprefix = "10.0.0.0/33"\ndrop = true\n', "t.toml:2: route[1].prefix", "not an IPv4 prefix"),
    ('[[route]]\nprefix = "10.0.0.0"\ndrop = true\n', "t.toml:2: route[1].prefix", "give the prefix length"),
    ('[[route]]\nprefx = "10.0.0.0/8"\n', "t.toml:2: route[1].prefx", "did you mean 'prefix'"),
    ('[[route]]\ndrop = true\n', "t.toml:1: route[1]", "needs prefix"),
    ('[[route]]\nprefix = "10.0.0.0/8"\n', "t.toml:1: route[1]", "needs via"),
    ('[[route]]\nprefix = "10.0.0.0/8"\ndrop = true\nvia = "10.1.1.1"\n', "t.toml:4: route[1].via",
     "a drop route has no via"),
    ('[[route]]\nprefix = "10.0.0.0/8"\nvia = "10.1.1.1"\n', "t.toml:3: route[1].via",
     "on no interface's address prefix"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\n[[route]]\nprefix = "10.0.0.0/8"\nvia = "10.1.1.1/24"\n'
     'interface = "p0"\n', "t.toml:6: route[1].via",
     "without a prefix length"),
    ('[[interface]]\nkind = "pcap"\nname = "gn0"\n[[route]]\nprefix = "10.0.0.0/8"\nvia = "10.1.1.1"\n'
     'interface = "gn1"\n', "t.toml:7: route[1].interface", "did you mean 'gn0'"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\naddress = "10.1.1.1/24"\n'
     '[[route]]\nprefix = "10.0.0.0/8"\nvia = "10.1.1.1"\n', "t.toml:7: route[1].via", "graphnet's own address"),
    ('[[route]]\nprefix = "10.0.0.0/8"\ndrop = true\n[[route]]\nprefix = "10.0.0.0/8"\ndrop = true\n',
     "t.toml:5: route[2].prefix", "already given (route[1])"),
    ('[[neighbor]]\ninterface = "p0"\nip = "10.0.0.1"\n', "t.toml:1: neighbor[1]", "no mac"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\n[[neighbor]]\ninterface = "p0"\nip = "10.0.0.1"\n'
     'mac = "01:00:5e:00:00:01"\n', "t.toml:7: neighbor[1].mac", "multicast"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\n[[neighbor]]\ninterface = "p0"\nip = "10.0.0"\n'
     'mac = "02:00:5e:00:00:01"\n', "t.toml:6: neighbor[1].ip", "is not an IPv4 address"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\n[[neighbor]]\ninterface = "p0"\nip = "10.0.0.1"\n'
     'mac = "02:00:5e:00:00:01"\nstatic = "yes"\n', "t.toml:8: neighbor[1].static", "expected true or false"),
    ('[[interface]]\nkind = "pcap"\nname = "p0"\n[[neighbor]]\ninterface = "p0"\nip = "10.0.0.1"\n'
     'mac = "02:00:5e:00:00:01"\nstatik = true\n', "t.toml:8: neighbor[1].statik", "did you mean 'static'"),
    ('[ip]\nenabled = false\n[[route]]\nprefix = "192.0.2.0/24"\ndrop = true\n', "t.toml:2: ip.enabled",
     "needed by [[route]]"),
    ('[ip]\nenable = true\n', "t.toml:2: ip.enable", "did you mean 'enabled'"),
])
def test_ip_errors_name_key_and_line(text, where, message):
    err = error_of(text)
    assert err.startswith(where + ":"), err
    assert message in err, err


# --- [ip.neighbor]: the neighbour timers ------------------------------------------------

def test_ip_neighbor_timers_reach_the_neighbor_table():
    from graphnet.nodes import ip4_host
    text = ('[[interface]]\nkind = "pcap"\nname = "p0"\n\n'
            '[ip.neighbor]\nreachable_time = 10\nunicast_probes = 5\nprobe_interval = 0.5\naging_time = 600.0\n')
    cfg = loads(text, "t.toml")
    assert cfg.ip_enabled                    # the table alone brings the IPv4 graph in
    assert cfg.neighbor_config == {"reachable_time": 10.0, "unicast_probes": 5, "probe_interval": 0.5,
                                   "aging_time": 600.0}
    e = build_engine(cfg, create_devices=False)
    try:
        c = ip4_host.ip4_neighbors(e).config()
        assert (c["reachable_time"], c["unicast_probes"], c["probe_interval"], c["aging_time"]) == \
            (10.0, 5, 0.5, 600.0)
        assert ip4_host.show_ip_neighbors(e).splitlines()[-1] == \
            "dynamic entries: reachable 10 s, then stale: 5 unicast probes 0.5 s apart; aging 600 s"
    finally:
        e.close()
    # keys left out keep the defaults; 0 is "never", as in set ip neighbor-config
    from graphnet.fib.ip4_neighbor_table import DEFAULTS
    e = build_engine(loads('[ip.neighbor]\nreachable_time = 0\naging_time = 0\n', "t.toml"), create_devices=False)
    try:
        c = ip4_host.ip4_neighbors(e).config()
        assert (c["reachable_time"], c["aging_time"]) == (0.0, 0.0)
        assert (c["unicast_probes"], c["probe_interval"]) == (DEFAULTS["unicast_probes"], DEFAULTS["probe_interval"])
        assert "never stale" in ip4_host.show_ip_neighbors(e)
    finally:
        e.close()


def test_ip_neighbor_timers_in_a_file_and_inline(tmp_path):
    from graphnet.nodes import ip4_host
    f = tmp_path / "n.toml"
    f.write_text('[ip]\nenabled = true\nneighbor = { unicast_probes = 7, probe_interval = 2 }\n')
    e = build_engine(load(f), create_devices=False)
    try:
        c = ip4_host.ip4_neighbors(e).config()
        assert (c["unicast_probes"], c["probe_interval"]) == (7, 2.0)
    finally:
        e.close()
    bad = tmp_path / "bad.toml"
    bad.write_text('[ip]\nneighbor = { unicast_probes = 0 }\n')
    with pytest.raises(ConfigError) as ei:
        load(bad)
    # an inline table's error points at the line of its key
    assert str(ei.value) == f"{bad}:2: ip.neighbor.unicast_probes: must be 1..255, not 0"


@pytest.mark.parametrize("body,where,message", [
    ('reachable_time = "30s"', "t.toml:3: ip.neighbor.reachable_time", "expected a number, got a string ('30s')"),
    ('reachable_time = -1', "t.toml:3: ip.neighbor.reachable_time", "must be 0..1e+09, not -1.0"),
    ('reachable_time = nan', "t.toml:3: ip.neighbor.reachable_time", "must be a finite number"),
    ('aging_time = -0.5', "t.toml:3: ip.neighbor.aging_time", "must be 0..1e+09, not -0.5"),
    ('aging_time = inf', "t.toml:3: ip.neighbor.aging_time", "must be a finite number"),
    ('aging_time = true', "t.toml:3: ip.neighbor.aging_time", "expected a number, got true or false"),
    ('probe_interval = 0', "t.toml:3: ip.neighbor.probe_interval", "must be > 0 and <= 1e+09, not 0.0"),
    ('probe_interval = -1.5', "t.toml:3: ip.neighbor.probe_interval", "must be > 0 and <= 1e+09, not -1.5"),
    ('unicast_probes = 0', "t.toml:3: ip.neighbor.unicast_probes", "must be 1..255, not 0"),
    ('unicast_probes = 256', "t.toml:3: ip.neighbor.unicast_probes", "must be 1..255, not 256"),
    ('aging_time = 1e11', "t.toml:3: ip.neighbor.aging_time", "must be 0..1e+09, not 100000000000.0"),
    ('reachable_time = 1.9e10', "t.toml:3: ip.neighbor.reachable_time", "must be 0..1e+09"),
    ('probe_interval = 1e11', "t.toml:3: ip.neighbor.probe_interval", "must be > 0 and <= 1e+09"),
    ('unicast_probes = 2.5', "t.toml:3: ip.neighbor.unicast_probes", "expected an integer, got a number"),
    ('probes = 3', "t.toml:3: ip.neighbor.probes", "unknown key 'probes' (did you mean 'unicast_probes'?)"),
    ('colour = "red"', "t.toml:3: ip.neighbor.colour", "unknown key 'colour'; known keys: reachable_time"),
])
def test_ip_neighbor_timer_errors_name_key_and_line(body, where, message):
    err = error_of(f'# timers\n[ip.neighbor]\n{body}\n')
    assert err.startswith(where + ":"), err
    assert message in err, err


def test_ip_neighbor_errors_in_the_ip_table():
    err = error_of('[ip]\nneighbor = 5\n')
    assert err.startswith("t.toml:2: ip.neighbor: expected a table, got an integer"), err
    err = error_of('[ip]\nenabled = false\n\n[ip.neighbor]\naging_time = 60\n')
    assert err.startswith("t.toml:2: ip.enabled: the IPv4 graph is needed by [ip.neighbor]; "
                          "remove enabled = false"), err


# --- numeric bounds (issue 9 defect 6) ---------------------------------------------------

# Where each table's keys can be written: a minimal valid file around one key.
_LIMIT_CONTEXT = {
    "pg.stream": '[pg]\nnext = "null"\n\n[[pg.stream]]\nname = "s"\ntemplate = "udp"\n',
    "pg.stream.edit": '[pg]\nnext = "null"\n\n[[pg.stream]]\nname = "s"\ntemplate = "udp"\n\n[[pg.stream.edit]]\n',
    "interface": '[[interface]]\nkind = "{kind}"\nname = "t0"\n',
    "app": '[ip]\nenabled = true\n\n[[app]]\ntype = "echo-server"\nuri = "udp://0.0.0.0/1234"\n',
    "fault_inject": '[[interface]]\nkind = "pcap"\nname = "p0"\n\n[[fault_inject]]\ninterface = "p0"\n'
                    'direction = "rx"\n',
}
_EDIT_PARTNER = {"offset": "size = 2\n", "size": "offset = 34\n", "min": 'field = "udp.sport"\n',
                 "max": 'field = "udp.sport"\n'}


def _limit_file(table, key, literal):
    from graphnet.config import _IF_KEYS
    head = _LIMIT_CONTEXT.get(table, f"[{table}]\n")
    if table == "interface":
        head = head.format(kind=next(k for k, keys in _IF_KEYS.items() if key in keys))
    if table == "pg.stream.edit":
        head += _EDIT_PARTNER[key]
    text = head + f"{key} = {literal}\n"
    return text, text.count("\n")


def _absurd(limit, kind):
    """Values every numeric key must refuse: just outside, far outside,
    the extremes of TOML's integers, and (floats) infinities and NaN."""
    if kind is float:
        return [repr(limit.lo - 1.0), repr(limit.hi * 10 + 1), "1e300", "-1e300", "inf", "-inf", "nan"] \
            + (["0.0"] if limit.lo_open else [])
    return [str(int(limit.lo) - 1), str(int(limit.hi) + 1), str(2**63 - 1), str(-2**63)]


def _numeric_keys():
    from graphnet.config import LIMITS
    return sorted(LIMITS)


@pytest.mark.parametrize("table,key", _numeric_keys())
def test_every_numeric_key_refuses_absurd_values_with_key_and_line(table, key):
    """buffers = 4000000000 was a MemoryError from the arena's mmap and
    tick = 1e300 an OverflowError; now every numeric key refuses values
    outside its declared bounds with one line naming file, line and key."""
    from graphnet.config import LIMITS
    limit = LIMITS[(table, key)]
    kind = float if isinstance(limit.hi, float) else int        # float keys have float bounds
    label = {"pg.stream": r"pg\.stream\[1\]", "pg.stream.edit": r"pg\.stream\[1\]\.edit\[1\]",
             "interface": r"interface\[1\]", "app": r"app\[1\]",
             "fault_inject": r"fault_inject\[1\]"}.get(table, re.escape(table))
    for literal in _absurd(limit, kind):
        text, line = _limit_file(table, key, literal)
        with pytest.raises(ConfigError) as ei:
            config.loads(text, "t.toml")
        msg = str(ei.value)
        assert "\n" not in msg
        assert re.match(rf"^t\.toml:{line}: {label}\.{key}: must be ", msg), (literal, msg)


def test_busy_poll_window_from_the_startup_file_reaches_the_loop():
    e = build_engine(loads("[engine]\nbusy_poll_us = 200\n", "t.toml"), create_devices=False)
    try:
        assert e.main.loop_stats()["busy_poll_us"] == 200
    finally:
        e.close()
    e = build_engine(loads("", "t.toml"), create_devices=False)
    try:
        assert e.main.loop_stats()["busy_poll_us"] == 50             # the default
    finally:
        e.close()
    with pytest.raises(ConfigError, match=r"engine\.busy_poll_us: must be 0\.\.100000, not 200000"):
        loads("[engine]\nbusy_poll_us = 200000\n", "t.toml")


def test_a_value_inside_the_bounds_is_accepted():
    cfg = config.loads("[engine]\nbuffers = 16\ntick = 1e-6\n[graph]\nchain = 256\n", "t.toml")
    assert (cfg.buffers, cfg.tick, cfg.chain) == (16, 1e-6, 256)


def test_a_numeric_key_without_declared_bounds_cannot_be_read(monkeypatch):
    """The bounds live in one place: reading a number whose key has no
    LIMITS entry is a programming error, not a silent pass."""
    monkeypatch.delitem(config.LIMITS, ("engine", "tick"))
    with pytest.raises(KeyError):
        config.loads("[engine]\ntick = 0.5\n", "t.toml")


def test_huge_buffers_and_tick_from_the_command_line_are_one_line(tmp_path):
    """The reproducers of issue 9: graphnet config answers with the key, exit 1."""
    import subprocess
    import sys
    for body, key in (("buffers = 4000000000", "engine.buffers"), ("tick = 1e300", "engine.tick")):
        f = tmp_path / "x.toml"
        f.write_text(f"[engine]\n{body}\n")
        r = subprocess.run([sys.executable, "-m", "graphnet", "config", "-c", str(f)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 1
        assert r.stderr.strip() == f"graphnet: {f}:2: {key}: " + (
            "must be 16..4.1943e+06, not 4000000000" if "buffers" in key else "must be 1e-06..1, not 1e+300")


def test_every_broken_part_of_a_file_is_reported_at_once(tmp_path):
    """As a compiler does: one run names each broken part with its line."""
    from graphnet.config import ConfigError, loads
    text = """\
[engine]
buffers = -5

[[pg.stream]]
name = "a"
template = "udp"
dport = 70000

[[pg.stream]]
name = "b"
template = "sctp"

[[node]]
name = "x"

[[route]]
prefix = "10.0.0.0/8"
drop = true
"""
    with pytest.raises(ConfigError) as ei:
        loads(text, "s.toml")
    lines = str(ei.value).splitlines()
    assert lines[0] == "4 errors:"
    assert lines[1].startswith("s.toml:2: engine.buffers")
    assert lines[2].startswith("s.toml:7: pg.stream[1].dport")
    assert lines[3].startswith("s.toml:11: pg.stream[2].template")
    assert lines[4].startswith("s.toml:13: node[1]")


def test_ip_sections_collect_each_entry(tmp_path):
    from graphnet.config import ConfigError, loads
    text = """\
[[neighbor]]
interface = "gn0"
ip = "10.0.0.300"
mac = "02:00:00:00:00:09"

[[route]]
prefix = "10.0.0.0/33"
drop = true
"""
    with pytest.raises(ConfigError) as ei:
        loads(text, "s.toml")
    text = str(ei.value)
    assert text.startswith("2 errors:") and "neighbor[1]" in text and "route[1].prefix" in text


# --- [ip.reassembly] and the neighbour queue limits: shares of the buffer pool ----------

def test_pool_shares_reach_reassembly_and_the_neighbor_table():
    from graphnet.nodes import ip4_host
    from graphnet.nodes.ip4_reassembly import reassembly
    text = ('[engine]\nbuffers = 8192\n\n[ip.reassembly]\npool_share = 0.5\ntimeout = 3\n\n'
            '[ip.neighbor]\nqueue_limit = 4\nqueue_pool_share = 0.01\n')
    cfg = loads(text, "t.toml")
    assert cfg.ip_enabled                    # either table alone brings the IPv4 graph in
    e = build_engine(cfg, create_devices=False)
    try:
        st = reassembly(e).stats()
        assert (st["pool_share"], st["max_buffers_held"], st["timeout"]) == (0.5, 4096, 3.0)
        c = ip4_host.ip4_neighbors(e).config()
        assert (c["queue_limit"], c["queue_pool_share"], c["max_queued"]) == (4, 0.01, 81)
    finally:
        e.close()
    e = build_engine(loads('[ip]\nenabled = true\n', "t.toml"), create_devices=False)
    try:                                     # the defaults: 25% and 1/8 of the pool
        assert reassembly(e).stats()["max_buffers_held"] == 16384 // 4
        assert ip4_host.ip4_neighbors(e).config()["max_queued"] == 2048
    finally:
        e.close()


@pytest.mark.parametrize("text, where, message", [
    ('[ip.reassembly]\npool_share = 0\n', "t.toml:2: ip.reassembly.pool_share", "must be > 0 and <= 1, not 0.0"),
    ('[ip.reassembly]\npool_share = 1.5\n', "t.toml:2: ip.reassembly.pool_share", "must be > 0 and <= 1, not 1.5"),
    ('[ip.reassembly]\ntimeout = 1e300\n', "t.toml:2: ip.reassembly.timeout", "must be > 0 and <= 1e+09"),
    ('[ip.reassembly]\n\npool = 0.3\n', "t.toml:3: ip.reassembly.pool", "known keys: pool_share, timeout"),
    ('[ip.neighbor]\nqueue_limit = 33\n', "t.toml:2: ip.neighbor.queue_limit", "must be 0..32, not 33"),
    ('[ip.neighbor]\nqueue_pool_share = "half"\n', "t.toml:2: ip.neighbor.queue_pool_share", "expected"),
])
def test_pool_share_errors_name_key_and_line(text, where, message):
    err = error_of(text)
    assert err.startswith(where + ":"), err
    assert message in err, err


def test_app_socket_table_is_checked_and_adds_the_session_layer():
    cfg = config.loads('[ip]\nenabled = true\n[app_socket]\nsocket = "/tmp/x/app.sock"\ngroup = "root"\nmax_clients = 8\n')
    assert (cfg.app_socket, cfg.app_socket_group, cfg.app_socket_max_clients) == ("/tmp/x/app.sock", "root", 8)
    assert cfg.app_socket_given and cfg.app_socket_enabled
    eng = config.build_engine(cfg)
    try:
        assert "app-queue" in eng.registrations
    finally:
        eng.close()
    with pytest.raises(config.ConfigError, match="max_clients"):
        config.loads("[ip]\nenabled = true\n[app_socket]\nmax_clients = 0\n")
    with pytest.raises(config.ConfigError, match="no group named"):
        config.loads('[ip]\nenabled = true\n[app_socket]\ngroup = "no-such-group-xyz"\n')
    with pytest.raises(config.ConfigError, match="IPv4 host"):
        config.loads("[app_socket]\n")
    eng = config.build_engine(config.loads("[ip]\nenabled = true\n"))
    try:
        assert "app-queue" not in eng.registrations              # no [app_socket], no [[app]]: no session layer
    finally:
        eng.close()
