"""A TAP's kernel-side name different from graphnet's interface name
(issue 10 item 7; VPP's ``host-if-name``): from the Python API, the
startup file (``host_name``) and ``create tap id N host-if-name NAME``;
shown by ``show interface`` / ``show hardware`` (and their --json);
validated (IFNAMSIZ, characters) with a one-line error that leaves
nothing behind.

Privileged tests make their own namespaces (unique names, removed
afterwards) and ping only graphnet's address inside them.
"""
import json
import re
import uuid

import pytest

from graphnet.cli.registry import CommandError, execute
from graphnet.config import ConfigError, build_engine, loads
from graphnet.io import host
from graphnet.io.device import DeviceError
from graphnet.io.tap import TapDevice

root_only = pytest.mark.privileged(tools=("ping",))


def _uid():
    return uuid.uuid4().hex[:7]


def _ping(ns, dst):
    r = host.run_in_netns(ns, ["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", dst],
                          capture_output=True, text=True, timeout=30)
    m = re.search(r"(\d+) received", r.stdout)
    return int(m.group(1)) if m else 0


# --- validation (no privileges needed: refused before anything is made) -----------------

@pytest.mark.parametrize("bad, why", [
    ("x" * 16, "1 to 15 bytes"),
    ("", "1 to 15 bytes"),
    ("tap%d", "'%' not allowed"),
    ("a/b", "'/' not allowed"),
    ("a b", "' ' not allowed"),
    ("..", "cannot name an interface"),
])
def test_a_bad_kernel_side_name_is_one_clear_line(bad, why):
    from graphnet import Engine
    eng = Engine()
    with pytest.raises(DeviceError) as e:
        TapDevice(eng, "gn0", host_name=bad)
    assert why in str(e.value) and "\n" not in str(e.value)
    assert f"kernel-side name {bad!r}" in str(e.value)
    assert len(eng.interfaces) == 0


def test_host_name_is_refused_with_an_adopted_fd():
    import socket
    from graphnet import Engine
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        with pytest.raises(DeviceError, match="not an adopted fd"):
            TapDevice(Engine(), "gn0", host_name="k0", fd=a.fileno())
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("body, expected", [
    ('host_name = "tap%d"\n', r"^t\.toml:4: interface\[1\]\.host_name: 'tap%d' is not a kernel interface name: "
                              r"'%' not allowed"),
    ('host_name = "a-name-longer-than-15"\n', r"^t\.toml:4: interface\[1\]\.host_name: 'a-name-longer-than-15' "
                                              r"is not a kernel interface name \(1\.\.15 bytes"),
    ('host-if-name = "k:0"\n', r"^t\.toml:4: interface\[1\]\.host_name: 'k:0' is not a kernel interface name: "
                               r"':' not allowed"),
])
def test_startup_file_checks_host_name(body, expected):
    text = f'[[interface]]\nkind = "tap"\nname = "t0"\n{body}'
    with pytest.raises(ConfigError) as e:
        build_engine(loads(text, "t.toml")).close()
    assert re.search(expected, str(e.value)), str(e.value)


def test_startup_file_host_name_frees_graphnet_s_name_from_the_kernel_rule():
    text = '[[interface]]\nkind = "tap"\nname = "uplink-to-the-lab-net"\nhost_name = "gn-lab0"\n'
    cfg = loads(text, "t.toml")
    (ic,) = cfg.interfaces
    assert (ic.name, ic.options["host_name"]) == ("uplink-to-the-lab-net", "gn-lab0")
    # without host_name the name is the kernel's and must fit IFNAMSIZ
    with pytest.raises(ConfigError, match="is not a kernel interface name"):
        loads(text.replace('host_name = "gn-lab0"\n', ""), "t.toml")


def test_create_tap_with_a_bad_host_if_name_is_one_line_and_the_engine_runs(engine_factory):
    eng = engine_factory()
    eng.start()
    with pytest.raises(CommandError) as e:
        execute(eng, "create tap id 7 host-if-name bad%name")
    assert str(e.value).count("\n") == 0 and "'%' not allowed" in str(e.value)
    assert str(e.value).startswith("create tap tap7:")
    assert eng.running and len(list(eng.interfaces)) == 0


# --- against the kernel ---------------------------------------------------------------------

@root_only
def test_kernel_side_takes_host_name_and_traffic_flows(engine_factory):
    from graphnet.nodes import ip4_host
    u = _uid()
    name, kname = f"uplink-{u}-graphnet", f"gnk{u}"     # graphnet's name is longer than IFNAMSIZ allows
    with host.temporary_netns("gn-hn") as ns:
        eng = engine_factory([ip4_host.NODES])
        dev = TapDevice(eng, name, host_name=kname, netns=ns, host_address="10.213.0.1/24")
        eng.add(dev)
        eng.build()
        ip4_host.set_interface_address(eng, name, "10.213.0.2/24")
        eng.start()
        assert host.link_exists(kname, ns)
        assert not host.link_exists(name[:15], ns) and not host.link_exists(kname)
        assert _ping(ns, "10.213.0.2") == 2
        assert eng.interfaces.info(name)["rx_packets"] >= 2
        shown = eng.show("interface", name)
        assert f"{name} (host {kname})" in shown.splitlines()[1]
        hw = eng.show("hardware", name)
        assert hw.splitlines()[0].startswith(f"{name} (host {kname})")
        assert f"kernel side: {kname} in namespace {ns}" in hw
        assert json.loads(execute(eng, f"show interface {name} --json"))[0]["host_name"] == kname
        assert json.loads(execute(eng, f"show hardware {name} --json"))[0]["host_name"] == kname
        eng.close()
        assert not host.link_exists(kname, ns)             # the kernel side went with the fd


@root_only
def test_create_tap_id_and_host_if_name_name_the_two_sides(engine_factory):
    u = _uid()
    kname = f"gnv{u}"
    with host.temporary_netns("gn-hn") as ns:
        eng = engine_factory()
        eng.start()
        assert execute(eng, f"create tap id 41 host-if-name {kname} host-ns {ns}") == "tap41"
        assert "tap41" in list(eng.interfaces) and kname not in list(eng.interfaces)
        assert host.link_exists(kname, ns) and not host.link_exists("tap41", ns)
        assert f"tap41 (host {kname})" in execute(eng, "show interface tap41")
        assert f"kernel side: {kname}" in execute(eng, "show hardware tap41")
        # the kernel side goes admin down: graphnet hears it under the kernel's name
        host.set_link(kname, ns, up=False)
        from graphnet.testing.helpers import wait_for
        assert wait_for(lambda: not eng.interfaces.info("tap41")["link_up"], timeout=3)
        execute(eng, "delete tap tap41")
        assert not host.link_exists(kname, ns)
        # host-if-name alone names both sides, as before
        assert execute(eng, f"create tap host-if-name {kname} host-ns {ns}") == kname
        assert host.link_exists(kname, ns)
        assert "(host " not in execute(eng, f"show interface {kname}")
        execute(eng, f"delete tap {kname}")


@root_only
def test_startup_file_host_name_makes_the_kernel_side(engine_factory):
    u = _uid()
    name, kname, ns = f"lab-uplink-{u}-x", f"gnf{u}", f"gn-hnc-{u}"
    text = (f'[[interface]]\nkind = "tap"\nname = "{name}"\nhost_name = "{kname}"\nnetns = "{ns}"\n'
            f'offloads = false\n')
    e = build_engine(loads(text, "t.toml"))
    try:
        assert host.link_exists(kname, ns)
        assert e.interfaces.devices[e.interfaces.index(name)].host_name == kname
    finally:
        e.close()
    assert ns not in host.list_netns()
