"""Interfaces that go down, flap or vanish (issue 17), and interfaces made
and removed at run time (``create tap``, ``create host-interface``...).

The netlink parser is checked without privileges. The rest runs as root
with real namespaces made and removed by each test (unique names): graphnet
routes between namespace A, behind a TAP, and namespace B, behind a veth
pair whose other end lives in namespace R and is attached with AF_PACKET.
Traffic is the kernel's own ping, only between addresses inside these
namespaces.
"""
import os
import re
import resource
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

from graphnet.bench.link_flap import Pinger
from graphnet.cli.registry import CommandError, execute
from graphnet.io import host
from graphnet.io.link_events import (LinkWatcher, parse_link_messages, RTM_NEWLINK, RTM_DELLINK, IFLA_IFNAME,
                                     IFLA_NEW_NETNSID, IFF_UP, IFF_RUNNING)
from graphnet.testing.helpers import wait_for

GN_A, HOST_A = "10.231.0.1", "10.231.0.2"
GN_B, HOST_B = "10.232.0.1", "10.232.0.2"

root_only = pytest.mark.privileged(tools=("ping", "ip"))


# --- the netlink parser (no privileges) ---------------------------------------------------

def _attr(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + b"\0" * ((-n) & 3)


def _link_msg(mtype, index, flags, attrs=b""):
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0xffffffff) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_parse_link_messages_reads_new_and_del_link():
    data = (_link_msg(RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING, _attr(IFLA_IFNAME, b"veth0\0"))
            + struct.pack("=IHHII", 20, 24, 0, 0, 0) + b"\0" * 4          # an RTM_NEWROUTE: skipped
            + _link_msg(RTM_DELLINK, 9, 0, _attr(IFLA_IFNAME, b"eth1\0") + _attr(IFLA_NEW_NETNSID, b"\x03\0\0\0")))
    msgs, bad = parse_link_messages(data)
    assert bad == 0
    assert [(m.type, m.ifindex, m.ifname, m.flags, m.new_netnsid) for m in msgs] == [
        (RTM_NEWLINK, 7, "veth0", IFF_UP | IFF_RUNNING, None), (RTM_DELLINK, 9, "eth1", 0, 3)]


def test_parse_link_messages_stops_at_lying_lengths():
    good = _link_msg(RTM_NEWLINK, 7, IFF_UP, _attr(IFLA_IFNAME, b"veth0\0"))
    assert parse_link_messages(good[:-3]) == ([], 1)                        # message longer than the datagram
    lying_attr = good[:32] + struct.pack("=HH", 200, IFLA_IFNAME) + good[36:]
    msgs, bad = parse_link_messages(lying_attr)                             # attribute past the message
    assert bad == 1 and msgs[0].ifname is None
    assert parse_link_messages(struct.pack("=IHHII", 3, RTM_NEWLINK, 0, 0, 0)) == ([], 1)     # len < header
    assert parse_link_messages(struct.pack("=IHHII", 20, RTM_NEWLINK, 0, 0, 0) + b"\0" * 4) == ([], 1)
    import random
    rnd = random.Random(17)
    for _ in range(2000):                                                   # never raises on garbage
        blob = bytearray(good * 2)
        for _ in range(rnd.randrange(1, 6)):
            blob[rnd.randrange(len(blob))] = rnd.randrange(256)
        parse_link_messages(bytes(blob[:rnd.randrange(len(blob) + 1)]))


def test_watcher_reports_state_changes_once():
    """Messages as the kernel sends them (attribute updates repeat the same
    flags) give one event per change, in order."""
    from graphnet.io.link_events import _Watch, LinkMessage
    seen = []
    w = LinkWatcher()
    watch = _Watch(None, "veth0", seen.append)
    watch.ifindex, watch.up = 7, True
    w.watches = {1: watch}
    for flags in (IFF_UP | IFF_RUNNING, IFF_UP, IFF_UP, 0, IFF_UP | IFF_RUNNING):
        w._dispatch(None, LinkMessage(RTM_NEWLINK, 7, flags, "veth0"))
    w._dispatch(None, LinkMessage(RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING, "veth9"))
    w._dispatch(None, LinkMessage(RTM_DELLINK, 7, 0, "veth9"))
    w._dispatch(None, LinkMessage(RTM_NEWLINK, 8, IFF_UP, "veth9"))
    assert [(e.what, e.reason) for e in seen] == [
        ("down", "no carrier"), ("down", "admin down"), ("up", ""), ("renamed", ""), ("deleted", ""),
        ("created", ""), ("down", "no carrier")]
    w.close()


def test_flush_interface_keeps_static_and_can_take_only_unresolved(engine_factory):
    """The neighbour flush a link event makes: down takes every dynamic
    entry of the interface (queued packets dropped and counted), the one
    50 ms after up only the unresolved ones; static entries and other
    interfaces are left alone."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from graphnet.testing.ip4 import HostBench, mac_of
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.0.1.1/24")
    b.neighbors.add("if0", "10.0.0.7", "02:00:00:00:07:07")                 # dynamic, complete
    b.neighbors.add("if0", "10.0.0.8", "02:00:00:00:08:08", static=True)
    b.neighbors.add("if1", "10.0.1.7", "02:00:00:00:17:17")
    b.send("if1", [Ether(dst=mac_of(1)) / IP(src="10.0.1.7", dst="10.0.0.9") / UDP()])     # 10.0.0.9: unresolved
    state = lambda: sorted((e["interface"], e["ip"], e["state"]) for e in b.neighbors.entries())
    assert ("if0", "10.0.0.9", "incomplete") in state()
    assert b.neighbors.flush_interface("if0", incomplete_only=True) == 1
    assert [x[1] for x in state()] == ["10.0.0.7", "10.0.0.8", "10.0.1.7"]
    assert b.engine.error_count("ip4-neighbor", "deleted") == 1              # the queued packet
    assert b.neighbors.flush_interface("if0") == 1
    assert [x[1] for x in state()] == ["10.0.0.8", "10.0.1.7"]


def test_call_later_runs_in_the_loop_after_the_delay(engine_factory):
    from graphnet.io.link_events import link_watcher
    eng = engine_factory()
    eng.start()
    ran = []
    t0 = time.monotonic()
    eng.call(link_watcher(eng).call_later, 0.05, lambda: ran.append((time.monotonic() - t0, eng.running)))
    assert wait_for(lambda: ran, timeout=2)
    assert 0.05 <= ran[0][0] < 0.5 and ran[0][1]


# --- the topology ----------------------------------------------------------------------------

def _uid():
    return uuid.uuid4().hex[:7]


class Net:
    """Namespaces A (a TAP's kernel side), R (graphnet's veth end) and B
    (the veth's other end, HOST_B), unique names, removed afterwards."""

    def __init__(self):
        u = _uid()
        self.a, self.r, self.b = f"gnl-a-{u}", f"gnl-r-{u}", f"gnl-b-{u}"
        self.tap, self.vr, self.vb = f"gnt{u}", f"gnr{u}", f"gnb{u}"
        for ns in (self.a, self.r, self.b):
            host.create_netns(ns)

    def make_veth(self):
        subprocess.run(["ip", "-n", self.r, "link", "add", self.vr, "type", "veth", "peer", "name", self.vb,
                        "netns", self.b], check=True, timeout=10)
        subprocess.run(["ip", "-n", self.r, "link", "set", self.vr, "up"], check=True, timeout=10)
        for cmd in (["link", "set", self.vb, "up"], ["addr", "add", f"{HOST_B}/24", "dev", self.vb],
                    ["route", "add", "default", "via", GN_B]):
            subprocess.run(["ip", "-n", self.b, *cmd], check=True, timeout=10)

    def delete(self):
        for ns in (self.a, self.r, self.b):
            host.delete_netns(ns)


@pytest.fixture
def net():
    n = Net()
    try:
        n.make_veth()
        yield n
    finally:
        n.delete()


def _router(engine_factory, net, rx_mode="interrupt"):
    """graphnet between A (TAP) and B (veth via AF_PACKET in R), started."""
    from graphnet.io.af_packet import AfPacketDevice
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    eng = engine_factory([ip4_host.NODES])
    tap = TapDevice(eng, net.tap, netns=net.a, host_address=f"{HOST_A}/24", rx_mode=rx_mode)
    afp = AfPacketDevice(eng, net.vr, netns=net.r, rx_mode=rx_mode)
    eng.add([tap, afp])
    eng.build()
    ip4_host.set_interface_address(eng, tap.name, f"{GN_A}/24")
    ip4_host.set_interface_address(eng, afp.name, f"{GN_B}/24")
    host.add_route("default", via=GN_A, netns=net.a)
    eng.start()
    return eng, tap, afp


def _ping(ns, dst, count=3, interval=0.2, wait=1):
    r = host.run_in_netns(ns, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait), dst],
                          capture_output=True, text=True, timeout=30)
    m = re.search(r"(\d+) received", r.stdout)
    return int(m.group(1)) if m else 0


def _settled_in_use(eng):
    """Buffers held by packets once the loop has nothing left to do (not the
    spare stacks TAPs keep for their next reads): what stays is held in a
    ring, a tx queue or a neighbour queue."""
    time.sleep(0.3)
    return eng.buffer_stats()["in_use_packets"]


def _fds():
    """Open fds of this process, after collecting garbage (closed engines of
    earlier tests are freed by the collector, with their fds, at any time)."""
    import gc
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def _rss_kib():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


# --- flaps, deletes, re-creates ----------------------------------------------------------------

@root_only
@pytest.mark.parametrize("rx_mode", ["interrupt", "polling", "adaptive"])
def test_flap_under_traffic_resumes_at_once(engine_factory, net, rx_mode, caplog, record_property):
    caplog.set_level("WARNING")
    eng, tap, afp = _router(engine_factory, net, rx_mode)
    assert _ping(net.a, HOST_B) == 3
    baseline, fd, fds = _settled_in_use(eng), afp._st.fd, _fds()
    pinger = Pinger(net.a, HOST_B, 12, interval=0.02)
    try:
        assert wait_for(lambda: len(pinger.replies) >= 5, timeout=5)
        drops0 = (eng.error_count("ip4-arp", "interface-down") + eng.error_count("interface-output", "link-down"))
        t0 = time.monotonic()
        host.set_link(net.vr, net.r, up=False)
        assert wait_for(lambda: not eng.interfaces.info(afp.name)["link_up"], timeout=2)
        down_s = time.monotonic() - t0
        time.sleep(0.5)                                            # pings routed to a dead link
        drops = (eng.error_count("ip4-arp", "interface-down") + eng.error_count("interface-output", "link-down"))
        assert drops > drops0                                      # dropped and counted with a reason
        assert ip4_neighbour_count(eng, afp.name) == 0             # flushed
        assert "down" in eng.show("interface", afp.name)
        t_up = time.time()
        host.set_link(net.vr, net.r, up=True)
        assert wait_for(lambda: pinger.first_after(t_up) is not None, timeout=5)
        resume_s = pinger.first_after(t_up) - t_up
    finally:
        pinger.stop()
    record_property("down_seconds", round(down_s, 4))
    record_property("up_to_first_reply_seconds", round(resume_s, 4))
    print(f"\n{rx_mode}: marked down after {down_s * 1000:.1f} ms; first reply {resume_s * 1000:.1f} ms after up")
    assert resume_s < 1.0
    msgs = [r.getMessage() for r in caplog.records if r.name == "graphnet.af_packet"]
    assert any(f"{net.vr} in namespace {net.r} is down (admin down)" in m for m in msgs)
    assert any(f"{net.vr} in namespace {net.r} is up" in m and "resumed" in m for m in msgs)
    assert _settled_in_use(eng) == baseline
    assert afp._st.fd == fd and _fds() == fds                  # the same socket and ring, recovered


def ip4_neighbour_count(eng, ifname):
    from graphnet.nodes import ip4_host
    return len([e for e in ip4_host.ip4_neighbors(eng).entries() if e["interface"] == ifname])


@root_only
@pytest.mark.parametrize("rx_mode", ["interrupt", "polling", "adaptive"])
def test_deleted_veth_is_detached_and_attached_again_when_it_returns(engine_factory, net, rx_mode, caplog):
    caplog.set_level("WARNING")
    eng, tap, afp = _router(engine_factory, net, rx_mode)
    assert _ping(net.a, HOST_B) == 3
    baseline, fds = _settled_in_use(eng), _fds()
    t0 = time.monotonic()
    subprocess.run(["ip", "-n", net.r, "link", "del", net.vr], check=True, timeout=10)
    assert wait_for(lambda: not afp.attached, timeout=2)
    assert time.monotonic() - t0 < 1.0                          # the netlink event, not a once-a-second check
    assert afp._st.fd == -1
    assert "detached" in eng.show("hardware", afp.name)
    row = [l for l in eng.show("interface").splitlines() if l.startswith(afp.name)][0]
    assert "deleted" in row
    assert _fds() == fds - 1                                    # the socket closed
    assert _ping(net.a, HOST_B, count=2, wait=1) == 0
    net.make_veth()
    assert wait_for(lambda: afp.attached and eng.interfaces.info(afp.name)["link_up"], timeout=3)
    assert _ping(net.a, HOST_B) == 3
    msgs = [r.getMessage() for r in caplog.records if r.name == "graphnet.af_packet"]
    assert any("was deleted: detached" in m for m in msgs)
    assert any("attached again" in m for m in msgs)
    assert _fds() == fds
    assert _settled_in_use(eng) == baseline
    state = eng.main.node_counters()[eng.index[afp.input_node]]["state"]
    assert state == {"polling": 0, "interrupt": 1, "adaptive": 1}[rx_mode]      # the rx mode restored


@root_only
def test_renamed_and_moved_are_logged_and_a_moved_link_detaches(engine_factory, net, caplog):
    caplog.set_level("WARNING")
    eng, tap, afp = _router(engine_factory, net)
    other = f"gnm{_uid()}"
    subprocess.run(["ip", "-n", net.r, "link", "set", net.vr, "name", other], check=True, timeout=10)
    assert wait_for(lambda: any(f"{net.vr} in namespace {net.r} was renamed to {other}: still attached"
                                in r.getMessage() for r in caplog.records), timeout=2)
    assert afp.attached and afp.host_if == other
    assert _ping(net.a, HOST_B) == 3                           # the socket follows the ifindex
    subprocess.run(["ip", "-n", net.r, "link", "set", other, "netns", net.a], check=True, timeout=10)
    assert wait_for(lambda: not afp.attached, timeout=2)
    assert wait_for(lambda: any(f"{other} was moved out of namespace {net.r}: detached" in r.getMessage()
                                for r in caplog.records), timeout=2)


@root_only
def test_namespace_deleted_then_create_host_interface_attaches_again(engine_factory, net, caplog):
    """The veth end's namespace deleted: detached (our sockets let go of the
    namespace, so the veth pair goes). A namespace of that name made again
    is not watched: ``create host-interface`` attaches the old interface
    again, with its addresses, and traffic resumes."""
    caplog.set_level("WARNING")
    eng, tap, afp = _router(engine_factory, net)
    assert _ping(net.a, HOST_B) == 3
    host.delete_netns(net.r)
    assert wait_for(lambda: not afp.attached, timeout=3)
    assert wait_for(lambda: not host.link_exists(net.vb, net.b), timeout=5)    # nothing kept it alive
    assert any(f"network namespace {net.r} was deleted" in r.getMessage() for r in caplog.records)
    host.create_netns(net.r)
    net.make_veth()
    time.sleep(0.3)
    assert not afp.attached
    assert execute(eng, f"create host-interface name {net.vr} netns {net.r}") == afp.name
    assert afp.attached and eng.interfaces.info(afp.name)["link_up"]
    assert _ping(net.a, HOST_B) == 3


@root_only
def test_a_hundred_flaps_and_twenty_recreations_leave_nothing_behind(engine_factory, net):
    eng, tap, afp = _router(engine_factory, net)
    assert _ping(net.a, HOST_B) == 3
    with host.ipr(net.r) as s:
        baseline, fds, rss = _settled_in_use(eng), _fds(), _rss_kib()
        t0 = time.monotonic()
        for i in range(100):
            idx = s.link_lookup(ifname=net.vr)[0]
            s.link("set", index=idx, state="down")
            assert wait_for(lambda: not eng.interfaces.info(afp.name)["link_up"], timeout=2, step=0.001), i
            s.link("set", index=idx, state="up")
            assert wait_for(lambda: eng.interfaces.info(afp.name)["link_up"], timeout=2, step=0.001), i
        flaps_s = time.monotonic() - t0
        for i in range(20):
            s.link("del", index=s.link_lookup(ifname=net.vr)[0])
            assert wait_for(lambda: not afp.attached, timeout=2, step=0.001), i
            net.make_veth()
            assert wait_for(lambda: afp.attached and eng.interfaces.info(afp.name)["link_up"], timeout=3,
                            step=0.001), i
        assert _ping(net.a, HOST_B) == 3
        print(f"\n100 flaps in {flaps_s:.2f} s, then 20 re-creations in {time.monotonic() - t0 - flaps_s:.2f} s")
        assert _fds() == fds
        assert _rss_kib() - rss <= 8 * 1024
        assert _settled_in_use(eng) == baseline


@root_only
def test_tap_namespace_deleted_then_tap_made_again(engine_factory, caplog):
    """A TAP made with ``create tap``: its namespace deleted (log line, down,
    fd closed, no CPU), then ``delete tap`` / ``create tap`` of the same
    name, 20 times, with fds, RSS and buffers back to where they were."""
    from graphnet.nodes import ip4_host
    caplog.set_level("WARNING")
    u = _uid()
    ns, name = f"gnl-t-{u}", f"gnt{u}"
    eng = engine_factory([ip4_host.NODES])
    eng.start()
    create = f"create tap host-if-name {name} host-ns {ns} host-ip4-addr {HOST_A}/24 rx-mode polling"
    try:
        def make():
            assert execute(eng, create) == name
            execute(eng, f"set interface state {name} up")
            execute(eng, f"set interface ip address {name} {GN_A}/24")
            dev = eng.interfaces.devices[eng.interfaces.index(name)]
            assert dev.state.fd >= 0
            return dev

        dev = make()
        assert _ping(ns, GN_A) == 3
        index, n_nodes = eng.interfaces.index(name), len(eng.nodes)
        baseline, fds, rss = _settled_in_use(eng), _fds(), _rss_kib()
        for i in range(20):
            host.delete_netns(ns)
            assert wait_for(lambda: dev.state.fd == -1, timeout=3), i
            assert not eng.interfaces.info(name)["link_up"]
            if i == 0:
                assert wait_for(lambda: any(f"TAP {name}: link lost: network namespace {ns} was deleted"
                                            in r.getMessage() for r in caplog.records), timeout=2)
                r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                time.sleep(1.0)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / (time.monotonic() - t0)
                print(f"\nCPU after the TAP's namespace went (rx-mode polling): {cpu * 100:.2f} % of a core")
                assert cpu < 0.01
            execute(eng, f"delete tap {name}")
            assert name not in list(eng.interfaces)
            dev = make()
            assert eng.interfaces.index(name) == index and len(eng.nodes) == n_nodes     # nodes taken back
        assert _ping(ns, GN_A) == 3
        assert _fds() == fds
        assert _rss_kib() - rss <= 8 * 1024
        assert _settled_in_use(eng) == baseline
    finally:
        if name in list(eng.interfaces):
            execute(eng, f"delete tap {name}")
        host.delete_netns(ns)


# --- made at run time, and refused ---------------------------------------------------------------

@root_only
def test_create_host_interface_at_run_time_grows_the_graph_and_routes(engine_factory, net):
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    eng = engine_factory([ip4_host.NODES])
    tap = TapDevice(eng, net.tap, netns=net.a, host_address=f"{HOST_A}/24")
    eng.add(tap)
    eng.build()
    ip4_host.set_interface_address(eng, tap.name, f"{GN_A}/24")
    host.add_route("default", via=GN_A, netns=net.a)
    eng.start()
    n_nodes = len(eng.nodes)
    name = execute(eng, f"create host-interface name {net.vr} netns {net.r} rx-mode adaptive")
    assert name == f"host-{net.vr}"
    assert len(eng.nodes) == n_nodes + 2 and f"af-packet-input-{name}" in eng.index
    execute(eng, f"set interface ip address {name} {GN_B}/24")
    assert _ping(net.a, HOST_B) == 3
    execute(eng, f"delete host-interface name {net.vr} netns {net.r}")
    assert name not in list(eng.interfaces)
    assert _ping(net.a, HOST_B, count=2) == 0
    assert execute(eng, f"create host-interface name {net.vr} netns {net.r}") == name
    assert len(eng.nodes) == n_nodes + 2                       # the same nodes, taken back
    execute(eng, f"set interface ip address {name} {GN_B}/24")
    assert _ping(net.a, HOST_B) == 3


@root_only
def test_bad_attachments_are_refused_in_one_line(engine_factory, net):
    from graphnet.nodes import ip4_host
    eng = engine_factory([ip4_host.NODES])
    eng.start()
    tun = f"gnu{_uid()}"
    subprocess.run(["ip", "-n", net.r, "tuntap", "add", "mode", "tun", "name", tun], check=True, timeout=10)
    cases = {f"create host-interface name nosuch{_uid()} netns {net.r}": "no interface named",
             f"create host-interface name {net.vr} netns nosuch-{_uid()}": "no network namespace",
             f"create host-interface name lo netns {net.r}": "is a loopback device",
             f"create host-interface name {tun} netns {net.r}": "not an Ethernet device"}
    for line, text in cases.items():
        with pytest.raises(CommandError) as e:
            execute(eng, line)
        msg = str(e.value)
        assert text in msg and "\n" not in msg, (line, msg)
    # usage errors: the reason on the first line, the usage under it
    for line, text in {"create host-interface netns x": "give name <kernel-interface>",
                       "create tap id 12 rx-mode fast": "rx-mode 'fast'"}.items():
        with pytest.raises(CommandError) as e:
            execute(eng, line)
        assert text in str(e.value).splitlines()[0]
    execute(eng, f"create host-interface name {net.vr} netns {net.r}")
    with pytest.raises(CommandError, match="already attached as host-"):
        execute(eng, f"create host-interface name {net.vr} netns {net.r}")
    tap = f"gnt{_uid()}"
    execute(eng, f"create tap host-if-name {tap}")
    with pytest.raises(CommandError, match="exists"):
        execute(eng, f"create tap host-if-name {tap}")
    assert eng.running
    assert len(list(eng.interfaces)) == 2
    execute(eng, f"delete tap {tap}")


@root_only
def test_link_flap_bench_runs_against_the_kernel_and_cleans_up(monkeypatch):
    import types
    from graphnet.bench import link_flap as bench
    made = []
    create = host.create_netns
    monkeypatch.setattr(host, "create_netns", lambda name: made.append(name) or create(name))
    lines = {l["case"]: l for l in bench.link_flap(types.SimpleNamespace(repeat=2))}
    assert set(lines) == {"kernel-router", "graphnet"}
    assert lines["graphnet"]["flaps"] == 2 and lines["graphnet"]["against"] == "kernel-router"
    assert 0 < lines["graphnet"]["max_ms"] < 1000 and 0 < lines["kernel-router"]["max_ms"] < 5000
    assert len(made) == 6 and not set(made) & set(host.list_netns())      # its namespaces are gone
