"""The compiled helpers of the benchmarks: ``gso-source`` builds super-frame
chains that tap-output can send (the tx cases of ``graphnet bench tap-gso``)."""
import struct

import pytest

from graphnet.io.capture import Capture
from graphnet.vlib.buffer import BUFFER_STRIDE
from graphnet.vlib.node import PythonNode

gso_source = pytest.importorskip("graphnet.bench.gso_source")
tap_bench = pytest.importorskip("graphnet.bench.tap")

F_NEXT_PRESENT, F_GSO, F_L4_CSUM = 1, 1 << 3, 1 << 4


class FlagRecorder(PythonNode):
    """Records (chain/GSO/csum flags, gso_size) of each packet, then capture."""
    name = "flags"
    next_nodes = ("capture",)

    def __init__(self, engine):
        self.engine = engine
        self.seen = []

    def process(self, frame):
        arena = self.engine.pool.arena
        for bi in frame.buffer_indices:
            off = bi * BUFFER_STRIDE
            flags = struct.unpack_from("<I", arena, off + 4)[0]
            gso = struct.unpack_from("<H", arena, off + 36)[0]
            self.seen.append((flags & (F_NEXT_PRESENT | F_GSO | F_L4_CSUM), gso))
        return 0


@pytest.mark.parametrize("copy", ["all", "headers"])
def test_gso_source_builds_super_frame_chains(engine_factory, copy):
    frame = tap_bench._udp_gso_frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.2", "10.0.0.1", 9,
                                     20000 + 7)
    payload = bytes((i * 13) & 0xff for i in range(20007))
    frame = frame[:42] + payload
    eng = engine_factory()
    cap = Capture()
    flags = FlagRecorder(eng)
    src = gso_source.GsoSource(frame, 1400, "flags", copy=copy, burst=3)
    eng.add([src, flags, cap])
    eng.build()
    src.add(7)
    eng.run_until_idle()
    assert src.sent == 7
    got = cap.packets()
    assert len(got) == 7 and all(len(p) == len(frame) for p in got)
    assert all(p[:2048] == frame[:2048] for p in got)          # headers always written
    if copy == "all":
        assert all(p == frame for p in got)
    assert flags.seen == [(F_NEXT_PRESENT | F_GSO | F_L4_CSUM, 1400)] * 7
    assert eng.error_count("gso-source", "no-buffers") == 0


def test_gso_source_checks_its_frame():
    with pytest.raises(ValueError, match="IPv4 or IPv6"):
        gso_source.GsoSource(bytes(100), 1400, "null")
    with pytest.raises(ValueError, match="copy"):
        gso_source.GsoSource(bytes(100), 1400, "null", copy="some")


def test_udp_gso_frame_and_vnet_header_layout():
    from scapy.utils import checksum
    f = tap_bench._udp_gso_frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.2", "10.0.0.1", 5201, 63000)
    assert len(f) == 14 + 20 + 8 + 63000
    assert struct.unpack(">H", f[16:18])[0] == 20 + 8 + 63000            # IPv4 total length
    assert checksum(f[14:34]) == 0                                          # IPv4 header checksum
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, _ = struct.unpack("<BBHHHHH",
                                                                                   tap_bench._vnet_udp_gso(1400))
    assert (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) == (1, 5, 42, 1400, 34, 6)


def test_bench_frame64_is_a_valid_udp_frame_to_nobody():
    """The benches' one 64-byte frame (af-packet-*, tap-*), built by the
    pg's udp template: Scapy reads it and finds every checksum right."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from graphnet.bench.core import frame64
    from graphnet.testing.packets import checksums_ok
    f = frame64()
    p = Ether(f)
    assert len(f) == 64 and p[IP].dst == "10.254.0.2" and p[UDP].dport == 1024 and p.dst == "02:fe:00:00:00:02"
    assert checksums_ok(p)


def test_raw_route_loop_rewrites_macs_and_decrements_ttl():
    """tap_raw.route_drain_batched (the raw reference of tap-router) over
    datagram socket pairs: MACs rewritten, TTL 63, checksum still valid."""
    import os
    import socket
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    tap_raw = pytest.importorskip("graphnet.bench.tap_raw")
    from graphnet.bench.tap_router import udp_frame
    a_in, a_out = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b_in, b_out = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        for s in (a_in, b_in):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        a_in.settimeout(5)
        a_out.setblocking(False)
        b_in.setblocking(False)                 # a full queue fails the write, never hangs
        b_out.setblocking(False)
        frames = [udp_frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", f"10.0.{i // 200}.{i % 200 + 1}")
                  for i in range(1, 261)]
        assert all(len(f) == 64 for f in frames)
        for f in frames:
            a_in.send(bytes(12) + f)
        rw = bytes.fromhex("02bb000000010202bb000002")
        assert tap_raw.route_drain_batched(a_out.fileno(), b_in.fileno(), 2060, rw, 12, 256)[0] == len(frames)
        for i, f in enumerate(frames, 1):
            got = b_out.recv(2048)
            assert got[:12] == bytes(12)
            p = Ether(got[12:])
            assert (p.dst, p.src) == ("02:bb:00:00:00:01", "02:02:bb:00:00:02")
            assert p[IP].ttl == 63 and p[IP].dst == f"10.0.{i // 200}.{i % 200 + 1}"
            chk = p[IP].chksum
            del p[IP].chksum
            assert IP(bytes(p[IP])).chksum == chk
    finally:
        for s in (a_in, a_out, b_in, b_out):
            s.close()


@pytest.mark.privileged
def test_tap_router_bench_runs_and_cleans_up():
    import types
    from graphnet.bench.tap_router import tap_router
    from graphnet.io import host
    before = set(host.list_netns())
    lines = {l["case"]: l for l in tap_router(types.SimpleNamespace(packets=2000, seconds=0.1, repeat=2))}
    assert set(lines) == {"raw-forward", "raw-route-1", "raw-route", "kernel-veth", "graphnet"}
    g = lines["graphnet"]
    # the reference is a raw loop whose frames B delivers, as it does graphnet's
    assert g["frames"] >= 2000 and g["pps"] > 0 and g["against"] in ("raw-route-1", "raw-route")
    assert lines["raw-route-1"]["frames"] >= 2000
    # its own namespaces (gn-bench-*) are gone; others' may come and go meanwhile
    assert not [n for n in set(host.list_netns()) - before if n.startswith("gn-bench-")]


def test_table_ratio_has_two_decimals_below_ten():
    """0.86 and 0.94 of a raw loop must not both print as 0.9x."""
    from graphnet.bench import format_line
    line = {"bench": "tap-rx", "case": "graphnet-gso", "pps": 1.385e6, "ns_per_packet": 722.0}
    assert "0.86x  vs raw-read-gso" in format_line({**line, "ratio": 0.864, "against": "raw-read-gso"})
    assert "107.4x" in format_line({**line, "ratio": 107.44, "against": "plain-python"})


def test_ip4_forward_not_enabled_check_case():
    """``--not-enabled-check`` adds the 1-route case with ip4-input's
    interface check on (every packet checked, none dropped: the bench
    raises on a lost packet) and its cost against the case without."""
    import types
    from graphnet.bench.ip4 import bench_ip4_forward
    opts = types.SimpleNamespace(packets=2560, seconds=0.05, repeat=2, routes=100, ref_packets=100,
                                 not_enabled_check=True)
    lines = {l["case"]: l for l in bench_ip4_forward(opts)}
    c = lines["graphnet-1-route-check"]
    assert c["against"] == "graphnet-1-route"
    assert c["check_ns"] == pytest.approx(c["ns_per_packet"] - lines["graphnet-1-route"]["ns_per_packet"], abs=0.01)


def test_check_interfaces_turns_the_check_on_in_the_bare_graph():
    """ip4_input.check_interfaces: an interface with no address is then
    not enabled for IPv4 (every packet dropped, counted)."""
    from graphnet.bench.ip4 import Ip4Forward, STREAM
    from graphnet.nodes.ip4_input import check_interfaces
    c = Ip4Forward(256, [])
    try:
        check_interfaces(c.engine)
        c.pg.enable(STREAM)
        c.engine.run_until_idle()
        assert c.engine.error_count("ip4-input", "ip4-not-enabled") == 256
    finally:
        c.close()


def test_ip4_forward_path_is_measured_wall_minus_pg_alone():
    """The headline path figure is a measured rate: the graphnet case's wall
    time minus pg-null's (the same stream into null) from the same
    invocation; the per-node clocks stay as a breakdown."""
    import types
    from graphnet.bench.ip4 import bench_ip4_forward
    opts = types.SimpleNamespace(packets=2560, seconds=0.05, repeat=2, routes=100, ref_packets=100)
    lines = {l["case"]: l for l in bench_ip4_forward(opts)}
    assert set(lines) == {"graphnet", "graphnet-1-route", "pg-null", "plain-python"}
    pg = lines["pg-null"]["ns_per_packet"]
    for case in ("graphnet", "graphnet-1-route"):
        g = lines[case]
        assert g["path_ns_per_packet"] == pytest.approx(g["ns_per_packet"] - pg, abs=0.01)
        assert abs(g["path_pps"] * g["path_ns_per_packet"] / 1e9 - 1) < 1e-2
        assert g["nodes_sum_ns"] == pytest.approx(sum(v for k, v in g["nodes"].items() if k != "pg-input"), abs=0.05)


def test_session_events_reports_sustained_and_cold_rates():
    """``session-events``: a timed run is ROUNDS rounds (the app's reads are
    checked inside: one message per session per round coalesced, one per
    datagram in the reference), the one-round cold figures ride along, and
    the lock counts are the mq's own: 1000 per 1000 notifications in the
    reference, one batch per round (0.5 per 1000) through the session layer."""
    import types
    from graphnet.bench.session_events import ROUNDS, bench_session_events
    lines = {l["case"]: l for l in bench_session_events(types.SimpleNamespace(seconds=0.05, repeat=2))}
    ref, gn = lines["sync-per-enqueue"], lines["session-layer"]
    assert ref["locks_per_1000"] == 1000 and gn["locks_per_1000"] == 0.5 and gn["lock_ratio"] == 2000
    assert gn["rounds"] == ROUNDS > 1
    assert gn["ratio"] == pytest.approx(ref["ns_per_packet"] / gn["ns_per_packet"], rel=1e-6)
    assert gn["ratio_cold"] == pytest.approx(ref["ns_cold"] / gn["ns_cold"], rel=1e-6)
    assert gn["events_per_s"] == pytest.approx(gn["notifications_per_s"] / gn["per_session"], rel=1e-6)
