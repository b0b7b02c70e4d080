"""Multi-queue TAPs (``queues = N``, IFF_MULTI_QUEUE) against the kernel's
TAP driver (privileged: root).

The kernel side lives in a namespace each test creates and deletes. It
sends IPv4/UDP frames of many flows through an AF_PACKET socket; the TAP
driver picks each frame's queue by flow hash, so the frames really arrive
spread over the queues, and graphnet's single loop must read every one of
them, byte-exact, in order within each flow, and count them. The fairness
of the round-robin itself is pinned down with datagram socketpairs adopted
as the queues (each queue then holds exactly what the test put in it).

Every engine is closed and leak-checked by the engine_factory fixture.
"""
import functools
import os
import socket
import struct
import time
import uuid

import pytest

from graphnet.io import host
from graphnet.io.capture import Capture
from graphnet.io.device import DeviceError
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.testing.helpers import packet_socket, loop_cpu, wait_for, unique_ifname as ifname

from graphnet.io import tap
TapDevice = tap.TapDevice

needs_root = pytest.mark.privileged

HOST_MAC = "02:aa:00:00:00:41"       # the kernel side
GN_MAC = "02:bb:00:00:00:41"         # graphnet's side


@functools.lru_cache(maxsize=None)
def _headers(flow, size, from_kernel):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    src, dst = ("10.214.0.1", "10.214.0.2") if from_kernel else ("10.214.0.2", "10.214.0.1")
    macs = dict(src=HOST_MAC, dst=GN_MAC) if from_kernel else dict(src=GN_MAC, dst=HOST_MAC)
    return bytes(Ether(**macs) / IP(src=src, dst=dst) / UDP(sport=20000 + flow, dport=9000, chksum=0) /
                 bytes(size - 42))[:42]


def udp_frame(flow, seq, size=80, from_kernel=True):
    """Ethernet/IPv4/UDP between the kernel side (10.214.0.1) and graphnet
    (10.214.0.2): flow picks the port (and so the kernel's flow hash), seq
    is in the payload (UDP checksum 0: none, so headers are per flow)."""
    payload = struct.pack(">HI", flow, seq) + bytes((flow + seq + k) & 0xff for k in range(size - 48))
    return _headers(flow, size, from_kernel) + payload


def ours(frames):
    """The test's frames among what was captured (the kernel may add its own)."""
    return [f for f in frames if len(f) >= 34 and f[12:14] == b"\x08\x00"
            and sorted([f[26:30], f[30:34]]) == [bytes([10, 214, 0, 1]), bytes([10, 214, 0, 2])]]


def flow_of(frame):
    return struct.unpack_from(">H", frame, 42)[0]


# --- creation and errors -----------------------------------------------------------------

@needs_root
def test_multiqueue_tap_opens_n_queues_and_shows_them(engine_factory, netns):
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, queues=4, next_node="null")
    eng.add(dev)
    eng.build()
    assert dev.multi_queue and dev.queues == 4 and len(set(dev.state.fds)) == 4
    assert dev.state.fd == dev.state.fds[0] and dev.state.wait_fd not in dev.state.fds
    with host.ipr(netns) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=name)[0])[0]
    assert link.get_attr("IFLA_NUM_TX_QUEUES") >= 4 and link.get_attr("IFLA_NUM_RX_QUEUES") >= 4
    hw = eng.show("hardware", name)
    assert "IFF_MULTI_QUEUE" in hw and "queues: 4 (IFF_MULTI_QUEUE)" in hw and "tx on queue 0" in hw
    # the loop waits on one fd: the device's epoll fd
    assert eng.main.node_counters()[eng.index[dev.input_node]]["fd"] == dev.state.wait_fd
    fds = dev.state.fds + [dev.state.wait_fd]
    eng.close()
    assert not host.link_exists(name, netns)          # all queues closed: the TAP is gone
    for f in fds:
        with pytest.raises(OSError):
            os.fstat(f)


def test_queue_count_is_checked(engine_factory):
    eng = engine_factory()
    for bad in (0, 17, -1, True, 2.0):
        with pytest.raises(DeviceError, match="queues"):
            TapDevice(eng, ifname(), queues=bad)
    with pytest.raises(DeviceError, match="need IFF_MULTI_QUEUE"):
        TapDevice(eng, ifname(), queues=2, multi_queue=False)
    assert len(eng.interfaces) == 0


def test_startup_file_queues_key_is_checked():
    from graphnet.config import ConfigError, build_engine, loads
    base = '[[interface]]\nkind = "tap"\nname = "gnq0"\n'
    for value, msg in (("0", "must be 1..16, not 0"), ("17", "must be 1..16, not 17"), ('"4"', "expected an integer"),
                       ("2\nmulti_queue = false", "2 queues need IFF_MULTI_QUEUE")):
        with pytest.raises(ConfigError, match=msg) as e:
            loads(base + f"queues = {value}\n", "t.toml")
        assert "t.toml:4: interface[1]" in str(e.value) and "queues" in str(e.value)
    cfg = loads(base + "queues = 3\n", "t.toml")
    assert cfg.interfaces[0].options["queues"] == 3
    eng = build_engine(cfg, create_devices=False)           # checked without creating anything
    try:
        assert "queues: 3" in eng.show("hardware", "gnq0")
    finally:
        eng.close()


def _open_fds():
    """This process's open /dev/net/tun fds (other fds come and go with
    what earlier tests left to the garbage collector)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "/dev/net/tun":
                out.add(fd)
        except OSError:
            pass
    return out


@needs_root
def test_kernel_refusal_is_a_clear_error_and_leaves_nothing(engine_factory, netns, monkeypatch):
    """An existing single-queue TAP of that name: the check before creating
    says so; with that check out of the way (as in a race) the kernel's own
    refusal (IFF_TUN_EXCL: EBUSY) gives the same clear message. A queue the
    kernel refuses half-way (queue 3 opened without IFF_MULTI_QUEUE: EINVAL)
    undoes the queues already open: no fd and no TAP left behind."""
    name = ifname()
    eng = engine_factory()
    eng.add(TapDevice(eng, name))                       # a plain (single-queue) TAP
    with pytest.raises(DeviceError, match=f"an interface named {name!r} already exists"):
        TapDevice(eng, name, queues=2)
    before = _open_fds()
    monkeypatch.setattr(host, "link_exists", lambda *a, **k: False)
    with pytest.raises(DeviceError, match=f"an interface named {name!r} already exists"):
        TapDevice(eng, name, queues=2)
    monkeypatch.undo()
    assert _open_fds() == before

    real_open = tap.tap_open
    calls = []

    def third_queue_without_multiqueue(n, vnet_hdr=True, multi_queue=False, exclusive=False):
        calls.append(n)
        return real_open(n, vnet_hdr, multi_queue and len(calls) != 3, exclusive)

    other = ifname()
    monkeypatch.setattr(tap, "tap_open", third_queue_without_multiqueue)
    with pytest.raises(DeviceError, match=rf"creating TAP {other}: the kernel refused queue 3 of 4 "
                                          r"\(TUNSETIFF with IFF_MULTI_QUEUE\): Invalid argument"):
        TapDevice(eng, other, queues=4, netns=netns)
    monkeypatch.undo()
    assert len(calls) == 3
    assert _open_fds() == before
    assert not host.link_exists(other) and not host.link_exists(other, netns)
    assert len(eng.interfaces) == 1


# --- rx: the kernel spreads flows over the queues; graphnet reads them all -------------------

@needs_root
@pytest.mark.parametrize("rx_mode", ["interrupt", "polling", "adaptive"])
def test_flows_spread_over_queues_all_arrive_byte_exact_and_counted(engine_factory, netns, rx_mode):
    name = ifname()
    n_queues, n_flows, per_flow = 4, 64, 40
    eng = engine_factory(buffers=16384)
    cap = Capture(limit=100000)
    dev = TapDevice(eng, name, netns=netns, queues=n_queues, rx_mode=rx_mode, next_node="capture",
                    host_mac=HOST_MAC, mac=GN_MAC)
    eng.add([cap, dev])
    eng.build()
    with host.ipr(netns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], txqlen=20000)
    frames = [udp_frame(f, s) for s in range(per_flow) for f in range(n_flows)]
    s = packet_socket(netns, name)
    eng.start()
    try:
        for i, f in enumerate(frames):
            s.send(f)
            if i % 256 == 255:
                time.sleep(0.001)
        assert wait_for(lambda: len(ours(cap.packets())) >= len(frames), timeout=10)
        time.sleep(0.1)
    finally:
        s.close()
        eng.stop()
    got = ours(cap.packets())
    assert len(got) == len(frames) and sorted(got) == sorted(frames)          # all, byte-exact, once
    for f in range(n_flows):                                                   # each flow in order
        assert [g for g in got if flow_of(g) == f] == [x for x in frames if flow_of(x) == f]
    per_queue = dev.stats()["rx_queue_frames"]
    assert len(per_queue) == n_queues and all(q > 0 for q in per_queue), per_queue   # really spread
    info = eng.interfaces.info(name)
    assert info["rx_drops"] == 0 and info["rx_errors"] == 0
    assert info["rx_packets"] == len(cap.packets()) == sum(per_queue)           # every frame read is counted
    assert info["rx_bytes"] == sum(map(len, cap.packets()))
    hw = eng.show("hardware", name)
    assert "rx frames per queue " + " ".join(map(str, per_queue)) in hw


@needs_root
def test_frames_graphnet_sends_reach_the_namespace(engine_factory, netns):
    """tx goes out on queue 0; the kernel side receives every frame byte-exact."""
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, queues=3, host_mac=HOST_MAC, mac=GN_MAC)
    frames = [udp_frame(f, s, size=60 + (s * 137) % 1400, from_kernel=False) for s in range(10) for f in range(20)]
    pg = PacketGenerator(next_node=dev.output_node)
    pg.add_stream(Stream("tx", frames, count=len(frames), fix_checksums=False))
    eng.add([pg, dev])
    eng.build()
    s = packet_socket(netns, name)
    s.settimeout(2)
    got = []
    try:
        eng.run_until_idle(5)
        while len(ours(got)) < len(frames):
            data, addr = s.recvfrom(65536)
            if addr[2] != socket.PACKET_OUTGOING:
                got.append(data)
    finally:
        s.close()
    assert sorted(ours(got)) == sorted(frames)
    info = eng.interfaces.info(name)
    assert info["tx_packets"] == len(frames) and info["tx_bytes"] == sum(map(len, frames))
    assert info["tx_drops"] == info["tx_errors"] == 0


# --- round-robin fairness (socketpairs as the queues) ---------------------------------------

def test_round_robin_reads_one_frame_per_queue_in_turn(engine_factory):
    """Queues holding 300, 5 and 300 frames: the short queue's frames all
    come in the first round-robin rounds, the two long queues alternate to
    the end (no queue is read twice in a row while another has frames),
    across tap-input calls (256 frames per call), and nothing is lost."""
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(3)]
    sizes = (300, 5, 300)
    for (a, b), n in zip(pairs, sizes):
        b.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)      # SO_SNDBUFFORCE: hold them all
    eng = engine_factory()
    cap = Capture(limit=10000)
    dev = TapDevice(eng, "sprr0", fd=[a.detach() for a, _ in pairs], vnet_hdr=False, next_node="capture",
                    rx_mode="interrupt")
    eng.add([cap, dev])
    eng.build()
    assert dev.queues == 3 and dev.state.n_queues == 3
    for q, ((_, b), n) in enumerate(zip(pairs, sizes)):
        for i in range(n):
            b.send(bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5, q]) + i.to_bytes(2, "big") + bytes(47))
    eng.run_until_idle(5)
    for _, b in pairs:
        b.close()
    got = cap.packets()
    order = [(p[14], int.from_bytes(p[15:17], "big")) for p in got]
    assert len(got) == sum(sizes)
    for q, n in enumerate(sizes):                                  # every frame of every queue, in order
        assert [i for qq, i in order if qq == q] == list(range(n))
    assert {q for q, _ in order[:15]} == {0, 1, 2} and [q for q, _ in order[:15]].count(1) == 5
    labels = [q for q, _ in order]
    for k in range(1, len(labels)):                               # 0 and 2 alternate while both have frames
        if labels[k] == labels[k - 1]:
            q = labels[k]
            seen_other = labels[:k].count(2 - q) if q in (0, 2) else None
            assert seen_other == sizes[2 - q], f"queue {q} read twice in a row at {k}"
    assert eng.main.node_counters()[eng.index[dev.input_node]]["calls"] >= 3   # the budget ran out mid-round
    assert dev.stats()["rx_queue_frames"] == list(sizes)
    info = eng.interfaces.info("sprr0")
    assert info["rx_packets"] == sum(sizes) and info["rx_drops"] == 0


# --- faults -------------------------------------------------------------------------------

@needs_root
@pytest.mark.parametrize("rx_mode", ["interrupt", "polling"])
def test_namespace_removed_under_a_multiqueue_tap(engine_factory, rx_mode):
    name = ifname()
    ns = f"gn-tapq-{uuid.uuid4().hex[:8]}"
    host.create_netns(ns)
    try:
        eng = engine_factory()
        dev = TapDevice(eng, name, netns=ns, queues=3, next_node="null", rx_mode=rx_mode)
        eng.add(dev)
        eng.start()
        time.sleep(0.2)
        host.delete_netns(ns)
        assert wait_for(lambda: not eng.interfaces.info(name)["link_up"], timeout=3)
        assert wait_for(lambda: eng.main.node_counters()[eng.index[dev.input_node]]["state"] == 2, timeout=2)
        assert loop_cpu(eng, 1.0) < 0.05              # no spin on the dead queues
        assert "link lost" in eng.show("hardware", name)
        assert eng.error_count(dev.input_node, "link-lost") == 1
        dev.set_admin_up(False)                        # harmless on a dead device
        eng.stop()
    finally:
        host.delete_netns(ns)


@needs_root
def test_namespace_removed_while_input_disabled_is_noticed(engine_factory):
    """With several queues the loop only sees the device's epoll fd, which
    never reports an error itself, and a disabled input reads nothing: the
    namespace's deletion (seen by link-events) tells."""
    name = ifname()
    ns = f"gn-tapq-{uuid.uuid4().hex[:8]}"
    host.create_netns(ns)
    try:
        eng = engine_factory()
        dev = TapDevice(eng, name, netns=ns, queues=2, next_node="null")
        eng.add(dev)
        eng.start()
        eng.set_node_state(dev.input_node, "disabled")
        host.delete_netns(ns)
        assert wait_for(lambda: not eng.interfaces.info(name)["link_up"], timeout=3)
        assert dev.link_error() == (f"link lost: network namespace {ns} was deleted "
                                    f"(with kernel interface {name})")
        assert dev.state.fd == -1                     # let go of: the kernel removes the TAP
        eng.stop()
    finally:
        host.delete_netns(ns)
