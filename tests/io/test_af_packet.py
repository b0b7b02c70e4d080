"""AF_PACKET "host" interfaces on a veth pair between two namespaces
(privileged: root).

Each test creates two network namespaces with unique names and a veth pair
between them (removed afterwards): graphnet attaches to one end with an
AfPacketDevice opened inside namespace A; the kernel side is a raw
AF_PACKET socket on the other end, living in namespace B (pyroute2's
``netns.create_socket``). Test frames carry the local experimental
ethertype 0x88b5 so the kernel's own chatter (IPv6 neighbour discovery)
is told apart. Every engine is closed and leak-checked by engine_factory.
"""
import socket
import struct
import time

import pytest

from graphnet.io import host
from graphnet.io.capture import Capture
from graphnet.io.device import DeviceError
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.vlib.buffer import BUFFER_STRIDE
from graphnet.vlib.node import PythonNode
from graphnet.testing.helpers import packet_socket, SetTx, loop_cpu, wait_for

from graphnet.io import af_packet
AfPacketDevice = af_packet.AfPacketDevice

pytestmark = pytest.mark.privileged(tun=False)

MARK_TYPE = 0x88b5


def marked_frame(i, size=64, dst="02:00:00:00:00:01", src="02:00:00:00:00:02"):
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    payload = struct.pack(">I", i) + bytes((i * 7 + k) & 0xff for k in range(max(0, size - 18)))
    return bytes(Ether(dst=dst, src=src, type=MARK_TYPE) / Raw(payload))


def marked(packets):
    return [p for p in packets if p[12:14] == MARK_TYPE.to_bytes(2, "big")
            or (p[12:14] == b"\x81\x00" and p[16:18] == MARK_TYPE.to_bytes(2, "big"))]


def recv_marked(sock, n, timeout=5.0):
    """Frames with our ethertype received by sock until n arrived or timeout."""
    out = []
    end = time.monotonic() + timeout
    sock.settimeout(0.05)
    while len(out) < n and time.monotonic() < end:
        try:
            data, addr = sock.recvfrom(65536)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        out.extend(marked([data]))
    return out





def rx_engine(engine_factory, veth, rx_mode="interrupt", **kw):
    eng = engine_factory()
    cap = Capture("capture")
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="capture", rx_mode=rx_mode, **kw)
    eng.add([cap, dev])
    eng.build()
    return eng, dev, cap


# --- attaching ------------------------------------------------------------------------

def test_attach_names_nodes_and_reads_kernel_link(engine_factory, veth):
    eng = engine_factory()
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="null")
    eng.add(dev)
    eng.build()
    assert dev.name == f"host-{veth.veth_a}"
    assert dev.input_node == f"af-packet-input-host-{veth.veth_a}" in eng.index
    assert dev.output_node == f"af-packet-output-host-{veth.veth_a}" in eng.index
    info = eng.interfaces.info(dev.name)
    assert info["kind"] == "af-packet" and info["mtu"] == 1500 and info["admin_up"] and info["promiscuous"]
    hw = eng.show("hardware")
    assert veth.veth_a in hw and "TPACKET_V3" in hw and "PACKET_QDISC_BYPASS" in hw and veth.ns_a in hw
    with host.ipr(veth.ns_a) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=veth.veth_a)[0])[0]
        assert link.get_attr("IFLA_PROMISCUITY") >= 1, "promiscuous mode is on in the kernel"


def test_missing_interface_and_namespace_are_clear_errors(engine_factory, veth):
    eng = engine_factory()
    with pytest.raises(DeviceError, match="no interface named 'nosuchif0'"):
        AfPacketDevice(eng, "nosuchif0", netns=veth.ns_a)
    with pytest.raises(DeviceError, match="no interface named"):
        AfPacketDevice(eng, veth.veth_a)                  # it lives in namespace a, not here
    with pytest.raises(DeviceError, match="no network namespace 'gn-afp-nonexistent'"):
        AfPacketDevice(eng, veth.veth_a, netns="gn-afp-nonexistent")
    assert len(eng.interfaces) == 0


def test_no_privilege_is_a_clear_error(veth):
    import subprocess
    import sys
    code = ("import graphnet\nfrom graphnet.io.af_packet import AfPacketDevice\n"
            "from graphnet.io.device import DeviceError\n"
            f"try:\n    AfPacketDevice(graphnet.Engine(buffers=64), {veth.veth_a!r}, netns={veth.ns_a!r})\n"
            "except DeviceError as e:\n    print('DeviceError', e)\n")
    r = subprocess.run(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert "DeviceError af-packet: cannot open an AF_PACKET socket" in r.stdout, r.stdout + r.stderr
    assert "needs root / CAP_NET_RAW" in r.stdout


# --- rx ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rx_mode", ["interrupt", "polling", "adaptive"])
def test_rx_byte_exact_and_counted(engine_factory, veth, rx_mode):
    eng, dev, cap = rx_engine(engine_factory, veth, rx_mode)
    frames = [marked_frame(i, size=60 + (i * 97) % 1455) for i in range(300)]
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    for f in frames:
        kernel.send(f)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(frames))
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == frames
    info = eng.interfaces.info(dev.name)
    assert info["rx_packets"] == len(cap.packets())
    assert info["rx_bytes"] == sum(len(p) for p in cap.packets())
    assert info["rx_drops"] == 0
    assert all(rx == dev.sw_if_index for _, rx, _ in cap.records())


def test_rx_mode_switch_under_traffic_loses_nothing(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth, "interrupt")
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    frames = [marked_frame(i) for i in range(3000)]
    modes = ["polling", "interrupt", "adaptive", "polling", "interrupt"]
    for k, f in enumerate(frames):
        kernel.send(f)
        if k % 600 == 599:
            dev.set_rx_mode(modes[k // 600])
    assert wait_for(lambda: len(marked(cap.packets())) >= len(frames))
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == frames
    assert dev.kernel_stats()["drops"] == 0


def test_rx_vlan_tag_stripped_by_kernel_is_put_back(engine_factory, veth):
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.packet import Raw
    eng, dev, cap = rx_engine(engine_factory, veth)
    frames = [bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") / Dot1Q(vlan=100 + i, prio=i % 8)
                    / Raw(struct.pack(">H", MARK_TYPE) + bytes(range(i, i + 50)))) for i in range(5)]
    frames = [f[:16] + MARK_TYPE.to_bytes(2, "big") + f[18:] for f in frames]
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    for f in frames:
        kernel.send(f)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(frames))
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == frames


def test_rx_jumbo_frame_arrives_as_chain(engine_factory, veth):
    host.set_link(veth.veth_a, veth.ns_a, mtu=9000)
    host.set_link(veth.veth_b, veth.ns_b, mtu=9000)
    eng = engine_factory()
    cap = Capture("capture")
    chains = []

    class Chains(PythonNode):
        name = "chains"
        next_nodes = ("capture",)

        def process(self, frame):
            arena = eng.pool.arena
            for bi in frame.buffer_indices:
                chains.append(struct.unpack_from("<I", arena, bi * BUFFER_STRIDE + 4)[0] & 1)
            return 0

    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="chains")
    eng.add([cap, Chains(), dev])
    eng.build()
    assert eng.interfaces.info(dev.name)["mtu"] == 9000
    frames = [marked_frame(i, size=s) for i, s in enumerate((8000, 2048, 2049, 4096, 9014))]
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    for f in frames:
        kernel.send(f)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(frames))
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == frames
    assert sum(chains) >= 4                           # all but the 2048-byte frame are chains


def test_rx_over_mtu_is_dropped_and_counted(engine_factory, veth, tmp_path):
    from graphnet.io.pcap import PcapTrace, read_pcap
    host.set_link(veth.veth_a, veth.ns_a, mtu=9000)
    host.set_link(veth.veth_b, veth.ns_b, mtu=9000)
    eng, dev, cap = rx_engine(engine_factory, veth, mtu=1500)
    trace = PcapTrace(eng)
    path = trace.start(rx=True, tx=False, drop=False, path=tmp_path / "rx.pcap")
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    kernel.send(marked_frame(1, size=3000))
    kernel.send(marked_frame(2, size=1518))           # 1500 + Ethernet + a VLAN tag's room: kept
    kernel.send(marked_frame(3, size=3000))
    kernel.send(marked_frame(4, size=60))
    assert wait_for(lambda: len(marked(cap.packets())) >= 2)
    time.sleep(0.1)
    eng.stop()
    kernel.close()
    trace.stop()
    kept = [marked_frame(2, size=1518), marked_frame(4, size=60)]
    assert marked(cap.packets()) == kept
    assert marked([p for _, p in read_pcap(path)]) == kept     # rx capture holds what was received
    assert eng.error_count(dev.input_node, "too-big") == 2
    assert eng.interfaces.info(dev.name)["rx_drops"] == 2


def test_rx_admin_down_consumes_and_counts(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth, admin_up=False)
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    for i in range(10):
        kernel.send(marked_frame(i))
    assert wait_for(lambda: eng.error_count(dev.input_node, "interface-down") >= 10)
    assert loop_cpu(eng, 0.5) < 0.2                   # drained, not spinning on a full ring
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == []


# --- tx ---------------------------------------------------------------------------------

def test_tx_byte_exact_seen_by_kernel(engine_factory, veth):
    eng = engine_factory()
    frames = [marked_frame(i, size=60 + (i * 131) % 1455) for i in range(200)]
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="null")
    pg = PacketGenerator(next_node="set-tx", state="interrupt")
    eng.add([dev, pg, SetTx(eng, dev.sw_if_index)])
    eng.build()
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    pg.add_stream(Stream("s", frames, count=len(frames), fix_checksums=False))
    eng.run_until_idle()
    got = recv_marked(kernel, len(frames))
    kernel.close()
    assert got == frames
    info = eng.interfaces.info(dev.name)
    assert info["tx_packets"] == len(frames) and info["tx_bytes"] == sum(map(len, frames))
    assert info["tx_drops"] == 0


def test_tx_chain_and_bad_sizes(engine_factory, veth, tmp_path):
    from graphnet.io.pcap import PcapDevice, write_pcap
    host.set_link(veth.veth_a, veth.ns_a, mtu=9000)
    host.set_link(veth.veth_b, veth.ns_b, mtu=9000)
    eng = engine_factory()
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="null", mtu=4000)
    good = [marked_frame(i, size=s) for i, s in enumerate((4018, 2500, 64))]
    bad = [marked_frame(9, size=5000), b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"]
    write_pcap(tmp_path / "in.pcap", good + bad)
    src = PcapDevice(eng, "src", input_path=tmp_path / "in.pcap", next_node=dev.output_node, mtu=9000)
    eng.add([dev, src])
    eng.build()
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.run_until_idle()
    got = recv_marked(kernel, len(good))
    kernel.close()
    assert got == good
    assert eng.error_count(dev.output_node, "too-big") == 1
    assert eng.error_count(dev.output_node, "short-frame") == 0      # the pcap input drops it first
    assert eng.error_count(src.input_node, "short-frame") == 1
    assert eng.interfaces.info(dev.name)["tx_packets"] == len(good)


def test_tx_full_kernel_queue_retries_then_drops_without_blocking(engine_factory, veth):
    # Without the qdisc bypass a tbf qdisc that lets almost nothing through
    # makes send() fail with ENOBUFS: frames are deferred, retried on later
    # iterations, then dropped with a counter; the loop never blocks.
    import subprocess
    eng = engine_factory()
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="null", qdisc_bypass=False, tx_retry_limit=8)
    subprocess.run(["ip", "netns", "exec", veth.ns_a, "tc", "qdisc", "add", "dev", veth.veth_a, "root", "tbf",
                    "rate", "8kbit", "burst", "1600", "limit", "3000"], check=True)
    frames = [marked_frame(i, size=1000) for i in range(300)]
    pg = PacketGenerator(next_node=dev.output_node, state="interrupt")
    eng.add([dev, pg])
    eng.build()
    pg.add_stream(Stream("s", frames, count=len(frames), fix_checksums=False))
    t0 = time.monotonic()
    eng.run_until_idle(timeout=10)
    assert time.monotonic() - t0 < 5
    info = eng.interfaces.info(dev.name)
    full = eng.error_count(dev.output_node, "tx-queue-full")
    assert full > 0 and eng.error_count(dev.output_node, "tx-deferred") > 0
    assert info["tx_packets"] + info["tx_drops"] == len(frames)
    assert info["tx_retries"] > 0


# --- the kernel link going away -----------------------------------------------------

def test_deleted_link_marks_interface_down_engine_keeps_running(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth)
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    kernel.send(marked_frame(1))
    assert wait_for(lambda: len(marked(cap.packets())) == 1)
    kernel.close()
    assert eng.interfaces.info(dev.name)["link_up"]
    host.delete_link(veth.veth_b, veth.ns_b)               # takes the pair with it
    assert wait_for(lambda: not eng.interfaces.info(dev.name)["link_up"], timeout=3)
    assert eng.running
    assert loop_cpu(eng, 1.0) < 0.05                  # not spinning on a dead fd
    assert "deleted" in eng.show("hardware")
    assert "deleted" in eng.show("interface")          # detached until it comes back


def test_peer_namespace_removed_marks_interface_down(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth, rx_mode="polling")
    eng.start()
    assert wait_for(lambda: eng.interfaces.info(dev.name)["link_up"])
    host.delete_netns(veth.ns_b)
    assert wait_for(lambda: not eng.interfaces.info(dev.name)["link_up"], timeout=5)
    assert eng.running
    eng.set_node_state(dev.input_node, "interrupt")
    assert loop_cpu(eng, 1.0) < 0.05
    eng.stop()


def test_link_down_then_up_recovers(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth)
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    host.set_link(veth.veth_a, veth.ns_a, up=False)
    assert wait_for(lambda: not eng.interfaces.info(dev.name)["link_up"], timeout=3)
    assert loop_cpu(eng, 0.5) < 0.05
    host.set_link(veth.veth_a, veth.ns_a, up=True)
    assert wait_for(lambda: eng.interfaces.info(dev.name)["link_up"], timeout=3)
    frames = [marked_frame(i) for i in range(20)]
    for f in frames:
        kernel.send(f)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(frames))
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == frames


def test_idle_interrupt_mode_uses_no_cpu(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth)
    eng.start()
    time.sleep(0.2)
    assert loop_cpu(eng, 1.0) < 0.02


# --- pcap capture of what the device receives and sends -----------------------------

def test_pcap_trace_of_af_packet_rx_and_tx(engine_factory, veth, tmp_path):
    from graphnet.io.pcap import PcapTrace, read_pcap
    eng = engine_factory()
    cap = Capture("capture")
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="capture")
    pg = PacketGenerator(next_node=dev.output_node, state="interrupt")
    eng.add([cap, dev, pg])
    eng.build()
    trace = PcapTrace(eng)
    path = trace.start(rx=True, tx=True, drop=False, path=tmp_path / "t.pcap")
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    rx_frames = [marked_frame(i, size=100) for i in range(10)]
    tx_frames = [marked_frame(100 + i, size=200) for i in range(10)]
    eng.start()
    for f in rx_frames:
        kernel.send(f)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(rx_frames))
    pg.add_stream(Stream("s", tx_frames, count=len(tx_frames), fix_checksums=False))
    assert recv_marked(kernel, len(tx_frames)) == tx_frames
    trace.stop()
    eng.stop()
    kernel.close()
    got = marked([p for _, p in read_pcap(path)])
    assert sorted(got) == sorted(rx_frames + tx_frames)
    st = trace.status()
    assert st["rx"] >= len(rx_frames) and st["tx"] == len(tx_frames)


def test_outgoing_copies_are_skipped_without_the_kernel_option(engine_factory, veth):
    """Kernels before 4.20 refuse PACKET_IGNORE_OUTGOING: the socket then
    sees its own transmissions and af-packet-input skips them by packet
    type, handing their buffers on to later frames (the engine's leak check
    sees every buffer back)."""
    eng = engine_factory()
    cap = Capture("capture")
    dev = AfPacketDevice(eng, veth.veth_a, netns=veth.ns_a, next_node="capture", rx_mode="polling")
    pg = PacketGenerator(next_node=dev.output_node, state="interrupt")
    eng.add([cap, dev, pg])
    eng.build()
    dev._st.filter_outgoing_in_userspace()
    assert dev._st.flags()["ignore_outgoing"] is False
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    tx_frames = [marked_frame(100 + i, size=80) for i in range(40)]
    rx_frames = [marked_frame(i, size=70) for i in range(40)]
    eng.start()
    pg.add_stream(Stream("s", tx_frames, count=len(tx_frames), fix_checksums=False))
    for f in rx_frames:
        kernel.send(f)
    assert sorted(recv_marked(kernel, len(tx_frames))) == sorted(tx_frames)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(rx_frames))
    time.sleep(0.1)
    eng.stop()
    kernel.close()
    assert marked(cap.packets()) == rx_frames
    assert eng.interfaces.info(dev.name)["rx_packets"] == len(cap.packets())
