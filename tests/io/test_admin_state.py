"""Admin state against the kernel (privileged: root).

TAP: ``set interface state <if> down|up`` turns the kernel side's carrier
off and on (TUNSETCARRIER); read back with pyroute2 inside the namespace
(IFLA_CARRIER, IFLA_OPERSTATE, IFF_LOWER_UP). Frames in flight while down
are accounted for exactly: those the kernel had already queued on the TAP
are read and counted by graphnet as ``interface-down``, those the kernel
would send afterwards it drops itself (its tx_dropped), and nothing
graphnet is given reaches the kernel. IPv6 is disabled in the test
namespaces so that the kernel sends nothing of its own.

AF_PACKET: graphnet does not own the kernel link, so ``down`` leaves it as
it is (up, carrier on) and only stops graphnet's rx and tx, with counters.

Every engine is closed and leak-checked by the engine_factory fixture.
"""
import socket
import struct

import pytest

from graphnet.cli.registry import execute
from graphnet.io import host
from graphnet.io.capture import Capture
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.testing import helpers
from graphnet.testing.helpers import SetTx, wait_for, error_rows_per_node, unique_ifname as ifname
from graphnet.vlib.show import node_drops

pytestmark = pytest.mark.privileged

MARK_TYPE = 0x88b5
IFF_LOWER_UP = 0x10000


@pytest.fixture
def netns(quiet_netns):
    """The plugin's quiet_netns: these tests count what the kernel sends."""
    return quiet_netns


def packet_socket(ns, name):
    """helpers.packet_socket, non-blocking."""
    s = helpers.packet_socket(ns, name)
    s.setblocking(False)
    return s


def marked_frame(i, size=64, dst="02:00:00:00:00:01", src="02:00:00:00:00:02"):
    body = struct.pack(">I", i) + bytes((i + k) & 0xff for k in range(max(0, size - 18)))
    mac = lambda t: bytes(int(x, 16) for x in t.split(":"))   # noqa: E731
    return mac(dst) + mac(src) + MARK_TYPE.to_bytes(2, "big") + body


def marked(frames):
    return [f for f in frames if f[12:14] == MARK_TYPE.to_bytes(2, "big")]


def received(sock):
    """Every frame waiting on a nonblocking packet socket (not our own)."""
    out = []
    while True:
        try:
            data, addr = sock.recvfrom(65536)
        except BlockingIOError:
            return out
        if addr[2] != socket.PACKET_OUTGOING:
            out.append(data)


def link_state(ns, name):
    """(carrier, operstate, lower_up, stats64) of a link, read with pyroute2."""
    with host.ipr(ns) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=name)[0])[0]
    return (link.get_attr("IFLA_CARRIER"), link.get_attr("IFLA_OPERSTATE"), bool(link["flags"] & IFF_LOWER_UP),
            link.get_attr("IFLA_STATS64"))


def carrier_is(ns, name, on):
    c, oper, lower, _ = link_state(ns, name)
    return (c, lower) == (1, True) and oper in ("UP", "UNKNOWN") if on else (c, oper, lower) == (0, "DOWN", False)


# --- TAP: carrier follows the admin state -----------------------------------------------------

@pytest.mark.parametrize("queues", [1, 3])
def test_set_interface_state_turns_the_tap_carrier_off_and_on(engine_factory, netns, queues):
    from graphnet.io.tap import TapDevice
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, queues=queues, next_node="null")
    eng.add(dev)
    eng.start()
    assert carrier_is(netns, name, True) and dev.carrier is True
    assert "carrier: on (follows the admin state)" in execute(eng, f"show hardware {name}")
    execute(eng, f"set interface state {name} down")
    assert wait_for(lambda: carrier_is(netns, name, False), timeout=3), link_state(netns, name)
    assert not eng.interfaces.info(name)["admin_up"] and dev.carrier is False
    assert "carrier: off" in execute(eng, f"show hardware {name}")
    execute(eng, f"set interface state {name} up")
    assert wait_for(lambda: carrier_is(netns, name, True), timeout=3), link_state(netns, name)
    assert link_state(netns, name)[1] == "UP"
    assert eng.interfaces.info(name)["admin_up"] and dev.carrier is True
    eng.stop()


def test_tap_created_down_has_no_carrier_until_up(engine_factory, netns):
    from graphnet.io.tap import TapDevice
    name = ifname()
    eng = engine_factory()
    dev = TapDevice(eng, name, netns=netns, admin_up=False, next_node="null")
    eng.add(dev)
    eng.build()
    assert carrier_is(netns, name, False) or wait_for(lambda: carrier_is(netns, name, False), timeout=3)
    dev.set_admin_up(True)
    assert wait_for(lambda: carrier_is(netns, name, True), timeout=3)


def test_startup_file_queues_and_state_down(netns):
    """``queues`` and ``state = "down"`` in an [[interface]] table: a
    multi-queue TAP created with its carrier off."""
    from graphnet.config import build_engine, loads
    from graphnet.testing.plugin import check_engine_clean
    name = ifname()
    text = (f'[[interface]]\nkind = "tap"\nname = "{name}"\nnetns = "{netns}"\nqueues = 2\nstate = "down"\n'
            f'next = "null"\n')
    eng = build_engine(loads(text, "t.toml"))
    try:
        hw = eng.show("hardware", name)
        assert "queues: 2 (IFF_MULTI_QUEUE)" in hw and "carrier: off" in hw
        assert wait_for(lambda: carrier_is(netns, name, False), timeout=3)
    finally:
        eng.close()
        check_engine_clean(eng)
    assert not host.link_exists(name, netns)


def test_frames_in_flight_while_down_are_all_accounted_for(engine_factory, netns):
    """Queued in the TAP before down: read and dropped by graphnet
    (interface-down, rx_drops). Sent by the kernel while down: dropped by
    the kernel (its tx_dropped). Given to tap-output while down: dropped and
    counted (interface-down, tx_drops), never written. After up: all flows."""
    from graphnet.io.tap import TapDevice
    name = ifname()
    eng = engine_factory()
    cap = Capture()
    dev = TapDevice(eng, name, netns=netns, next_node="capture", rx_mode="interrupt")
    tx = PacketGenerator(name="pg-tx", next_node=dev.output_node)
    eng.add([cap, dev, tx])
    eng.build()
    kernel = packet_socket(netns, name)
    try:
        queued = [marked_frame(i) for i in range(20)]
        for f in queued:                      # the engine is not running: they wait in the TAP
            kernel.send(f)
        _, _, _, st0 = link_state(netns, name)
        dev.set_admin_up(False)               # carrier off
        assert wait_for(lambda: carrier_is(netns, name, False), timeout=3)
        for i in range(15):                   # the kernel itself drops these
            kernel.send(marked_frame(100 + i))
        tx.add_stream(Stream("down", [marked_frame(200 + i, dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
                                      for i in range(7)], count=7, fix_checksums=False))
        eng.run_until_idle(3)
        _, _, _, st1 = link_state(netns, name)
        assert cap.packets() == []
        # The kernel counts a frame as sent when graphnet reads it. Its qdisc
        # is swapped for a dropping one just after operstate turns DOWN, so
        # one of the 15 might still slip into the TAP: then graphnet drops it.
        read = st1["tx_packets"] - st0["tx_packets"]
        down = eng.error_count(dev.input_node, "interface-down")
        assert down == read and len(queued) <= read                       # every frame read was counted
        assert (st1["tx_dropped"] - st0["tx_dropped"]) + (read - len(queued)) == 15   # the rest: the kernel's
        assert eng.error_count(dev.output_node, "interface-down") == 7
        info = eng.interfaces.info(name)
        assert (info["rx_packets"], info["rx_drops"], info["tx_packets"], info["tx_drops"]) == (0, down, 0, 7)
        assert st1["rx_packets"] == st0["rx_packets"]                    # graphnet wrote nothing
        assert node_drops(eng) == error_rows_per_node(eng) == {dev.input_node: down, dev.output_node: 7}
        assert marked(received(kernel)) == []
        dev.set_admin_up(True)
        assert wait_for(lambda: carrier_is(netns, name, True), timeout=3)
        after = [marked_frame(300 + i) for i in range(10)]
        for f in after:
            kernel.send(f)
        tx.add_stream(Stream("up", [marked_frame(400, dst="02:00:00:00:00:02", src="02:00:00:00:00:01")],
                             count=1, fix_checksums=False))
        assert wait_for(lambda: (eng.run_until_idle(1), len(marked(cap.packets())) >= 10)[1], timeout=5)
        assert marked(cap.packets()) == after
        eng.run_until_idle(1)
        assert eng.interfaces.info(name)["tx_packets"] == 1
        got = []
        assert wait_for(lambda: (got.extend(received(kernel)), len(marked(got)) >= 1)[1])
        assert marked(got) == [marked_frame(400, dst="02:00:00:00:00:02", src="02:00:00:00:00:01")]
    finally:
        kernel.close()


def test_retry_queue_is_dropped_when_the_interface_goes_down(engine_factory):
    """Frames waiting for a full kernel queue are not written after down."""
    from graphnet.io.tap import TapDevice
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    eng = engine_factory()
    dev = TapDevice(eng, "spdn1", fd=a.detach(), vnet_hdr=False)
    pg = PacketGenerator(next_node=dev.output_node, state="interrupt")
    pg.add_stream(Stream("s", [marked_frame(i, size=100) for i in range(300)], count=300, fix_checksums=False))
    eng.add([pg, dev])
    eng.build()
    dev.set_retry_timeout(10.0)
    eng.run(0.1)                                   # nobody reads: some wait in the retry queue
    waiting = dev.stats()["tx_retry_queue"]
    sent = eng.interfaces.info("spdn1")["tx_packets"]
    assert waiting > 0
    dev.set_admin_up(False)
    assert dev.carrier is None and "not a TAP" in dev.carrier_error     # a socketpair has no carrier
    assert "carrier: not controlled" in eng.show("hardware", "spdn1")
    got = []
    b.setblocking(False)
    eng.run(0.1)
    while True:
        try:
            got.append(b.recv(65536))
        except BlockingIOError:
            break
    b.close()
    assert len(got) == sent                         # only what was written before down
    info = eng.interfaces.info("spdn1")
    assert eng.error_count(dev.output_node, "interface-down") == waiting
    assert info["tx_packets"] + info["tx_drops"] == 300 and dev.stats()["tx_retry_queue"] == 0
    assert node_drops(eng) == error_rows_per_node(eng) == {dev.output_node: waiting}


# --- AF_PACKET: graphnet leaves the kernel link alone ------------------------------------------

def test_af_packet_down_stops_rx_and_tx_and_leaves_the_kernel_link_up(engine_factory, veth):
    from graphnet.io.af_packet import AfPacketDevice
    a, a_if, b, b_if = veth.ns_a, veth.veth_a, veth.ns_b, veth.veth_b
    eng = engine_factory()
    cap = Capture()
    dev = AfPacketDevice(eng, a_if, netns=a, next_node="capture")
    direct = PacketGenerator(name="pg-direct", next_node=dev.output_node)
    routed = PacketGenerator(name="pg-routed", next_node="set-tx")
    eng.add([cap, dev, direct, routed, SetTx(eng, dev.sw_if_index)])
    eng.start()
    peer = packet_socket(b, b_if)
    try:
        assert wait_for(lambda: carrier_is(a, a_if, True), timeout=3)
        execute(eng, f"set interface state {dev.name} down")
        for i in range(10):
            peer.send(marked_frame(i))
        assert wait_for(lambda: eng.error_count(dev.input_node, "interface-down") >= 10)
        direct.add_stream(Stream("d", [marked_frame(50)], count=5, fix_checksums=False))
        routed.add_stream(Stream("r", [marked_frame(60)], count=4, fix_checksums=False))
        assert wait_for(lambda: eng.error_count(dev.output_node, "interface-down") >= 5)
        assert wait_for(lambda: eng.error_count("interface-output", "interface-down") >= 4)
        c, oper, lower, _ = link_state(a, a_if)
        assert (c, oper, lower) == (1, "UP", True)              # the kernel link is untouched
        info = eng.interfaces.info(dev.name)
        assert info["rx_drops"] == 10 and info["rx_packets"] == 0
        assert info["tx_drops"] == 9 and info["tx_packets"] == 0
        assert node_drops(eng) == error_rows_per_node(eng) == {dev.input_node: 10, dev.output_node: 5,
                                                               "interface-output": 4}
        assert marked(cap.packets()) == [] and marked(received(peer)) == []
        execute(eng, f"set interface state {dev.name} up")
        for i in range(10):
            peer.send(marked_frame(100 + i))
        assert wait_for(lambda: len(marked(cap.packets())) >= 10)
        assert marked(cap.packets()) == [marked_frame(100 + i) for i in range(10)]
        direct.add_stream(Stream("d2", [marked_frame(70)], count=3, fix_checksums=False))
        got = []
        assert wait_for(lambda: (got.extend(received(peer)), len(marked(got)) >= 3)[1])
        assert marked(got) == [marked_frame(70)] * 3
    finally:
        peer.close()
        eng.stop()
