"""The ``ping`` command and its nodes (graphnet.nodes.ip4_ping,
graphnet.cli.ping): the request built (addresses, id/seq, checksum, size,
fragments), reply matching through ip4-icmp-input, the command's output
against graphnet's own echo and against nobody, bounds, ``--json``; and,
privileged, against the Linux kernel in a namespace the test creates."""
import ipaddress
import json
import struct
import time

import pytest
from scapy.utils import checksum

from graphnet.cli.ping import client_timeout, parse
from graphnet.cli.registry import CommandError, default_registry
from graphnet.nodes import ip4_host
from graphnet.nodes.ip4_ping import ping_main
from graphnet.testing.ip4 import CaptureInterface, HostBench, mac_of

GN, PEER, PEER_MAC = "10.0.0.1", "10.0.0.9", "02:00:00:00:00:99"


def _int(a):
    return int(ipaddress.IPv4Address(a))


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"])
    b.address("if0", f"{GN}/24")
    b.neighbors.add("if0", PEER, PEER_MAC, static=True)
    return b


def _echo_reply(request, ident=None, ttl=63):
    """The peer's reply to a captured request (Scapy), id changeable."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    icmp = request[ICMP]
    return (Ether(src=PEER_MAC, dst=mac_of(0)) / IP(src=PEER, dst=GN, ttl=ttl)
            / ICMP(type=0, id=icmp.id if ident is None else ident, seq=icmp.seq) / bytes(icmp.payload))


def test_request_is_built_and_reply_matched(bench):
    from scapy.layers.inet import ICMP, IP
    pm = ping_main(bench.engine)
    assert pm.open_id(0x4242)
    before = time.monotonic_ns()
    assert pm.send(_int(GN), _int(PEER), 0x4242, 7, 56, bench.ifs["if0"].sw_if_index) is not None
    bench.run()
    (req,) = bench.take()["if0"]
    ip = req[IP]
    assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.len) == (GN, PEER, 64, 1, 20 + 8 + 56)
    assert req.dst == PEER_MAC
    icmp = ip[ICMP]
    assert (icmp.type, icmp.code, icmp.id, icmp.seq) == (8, 0, 0x4242, 7)
    assert checksum(bytes(icmp)) == 0 and icmp.chksum != 0      # the sum over a correct message is 0
    assert checksum(bytes(ip)[:20]) == 0
    data = bytes(icmp.payload)
    (stamp,) = struct.unpack("=Q", data[:8])
    assert before <= stamp <= time.monotonic_ns()
    assert data[8:] == bytes(range(8, 56))
    # the reply, and one with an id nobody waits for
    bench.send("if0", [_echo_reply(req), _echo_reply(req, ident=0x4343)])
    replies = pm.take(0x4242)
    assert len(replies) == 1
    seq, src, ttl, nbytes, tx_ns, rx_ns = replies[0]
    assert (seq, src, ttl, nbytes, tx_ns) == (7, _int(PEER), 63, 64, stamp)
    assert rx_ns >= tx_ns
    assert pm.take(0x4242) == [] and pm.take(0x4343) == []
    assert bench.count("ip4-ping", "sent") == 1
    assert bench.count("ip4-ping-reply", "replies") == 1
    assert bench.count("ip4-icmp-input", "echo-reply-received") == 1      # the 0x4343 one, dropped
    pm.close_id(0x4242)
    bench.send("if0", [_echo_reply(req)])
    assert pm.take(0x4242) == [] and bench.count("ip4-icmp-input", "echo-reply-received") == 2
    bench.check_accounting()


def test_large_request_is_chained_and_fragmented(bench):
    from scapy.layers.inet import ICMP, IP, defragment
    pm = ping_main(bench.engine)
    assert pm.open_id(9)
    for size in (0, 7, 5000, 65507):
        pm.send(_int(GN), _int(PEER), 9, size % 1000, size, bench.ifs["if0"].sw_if_index)
        bench.run()
        frames = bench.take()["if0"]
        assert all(len(f[IP]) <= 1500 for f in frames)
        (whole,) = defragment([f[IP] for f in frames])
        whole = IP(bytes(whole))
        assert whole.len == 28 + size and whole[ICMP].seq == size % 1000
        raw = bytes(whole[ICMP])
        assert checksum(raw) == 0
        if size > 8:
            assert raw[-1] == (size - 1) & 0xff
        assert len(frames) == (1 if size < 1500 else -(-(size + 8) // 1480))
    assert bench.count("ip4-frag", "fragmented") == 2
    bench.check_accounting()


def test_queue_and_ids_are_bounded(bench):
    from graphnet.nodes.ip4_ping import MAX_IDS, MAX_REQUESTS
    pm = ping_main(bench.engine)
    assert [pm.open_id(i) for i in range(MAX_IDS)] == [True] * MAX_IDS
    assert not pm.open_id(MAX_IDS) and not pm.open_id(0)
    sent = [pm.send(_int(GN), _int(PEER), 1, i, 0) for i in range(MAX_REQUESTS + 1)]
    assert sent[-1] is None and None not in sent[:-1]
    with pytest.raises(ValueError):
        pm.send(_int(GN), _int(PEER), 1, 1, 65508)
    bench.run()
    assert len(bench.take()["if0"]) == MAX_REQUESTS
    bench.check_accounting()


@pytest.fixture
def running(engine_factory):
    """An engine with one capture interface (10.0.0.1/24, static peer
    10.0.0.9 that never answers), running in its thread."""
    eng = engine_factory([ip4_host.NODES])
    iface = CaptureInterface(eng, "if0", mac_of(0))
    eng.add(iface)
    eng.build()
    ip4_host.set_interface_address(eng, "if0", f"{GN}/24")
    ip4_host.ip4_neighbors(eng).add("if0", PEER, PEER_MAC, static=True)
    eng.start()
    yield eng, iface
    eng.stop()


def test_ping_command_own_address_and_nobody(running):
    """``ping 10.0.0.1``: through ip4-lookup, ip4-local, ip4-icmp-input's
    echo and back; ``ping 10.0.0.9``: sent on if0, never answered."""
    eng, iface = running
    reg = default_registry()
    out = reg.execute(eng, f"ping {GN} repeat 3 interval 0.05").splitlines()
    assert len(out) == 4, out
    for i, line in enumerate(out[:3], 1):
        assert line.startswith(f"64 bytes from {GN}: icmp_seq={i} ttl=64 time=") and line.endswith(" ms")
    assert out[3] == "Statistics: 3 sent, 3 received, 0% packet loss"
    assert eng.error_count("ip4-icmp-input", "echo-replies") == 3
    t0 = time.monotonic()
    out = reg.execute(eng, f"ping {PEER} repeat 2 interval 0.05 timeout 0.2 size 100").splitlines()
    assert time.monotonic() - t0 < 2
    assert out == ["timeout: icmp_seq=1", "timeout: icmp_seq=2",
                   "Statistics: 2 sent, 0 received, 100% packet loss"]
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    sent = [Ether(p) for p in iface.capture.packets()]
    assert [(p[IP].dst, p[IP].len, p[ICMP].seq) for p in sent] == [(PEER, 128, 1), (PEER, 128, 2)]
    assert ping_main(eng).stats() == {"queued": 0, "replies_held": 0, "pings": 0}


def test_ping_source_interface_and_json(running):
    eng, _ = running
    reg = default_registry()
    data = json.loads(reg.execute(eng, f"ping {GN} source if0 repeat 2 interval 0.02 --json"))
    assert (data["sent"], data["received"], data["loss_percent"], data["source"]) == (2, 2, 0, GN)
    assert [r["seq"] for r in data["replies"]] == [1, 2] and data["timeouts"] == []
    assert all(r["from"] == GN and r["bytes"] == 64 and r["time_ms"] >= 0 for r in data["replies"])
    assert "--json" in reg.help_text(["ping"])


@pytest.mark.parametrize("line, message", [
    ("ping", "needs an address"),
    ("ping nowhere", "not an IPv4 address"),
    ("ping 10.0.0.9 repeat 0", "repeat is from 1 to 1000"),
    ("ping 10.0.0.9 repeat 1001", "repeat is from 1 to 1000"),
    ("ping 10.0.0.9 interval 0.001", "interval is from 0.01"),
    ("ping 10.0.0.9 size 65508", "size is from 0 to 65507"),
    ("ping 10.0.0.9 size", "needs a value"),
    ("ping 10.0.0.9 color red", "unknown option"),
])
def test_ping_arguments_are_checked(line, message):
    with pytest.raises(CommandError) as e:
        default_registry().execute(None, line)
    assert message in str(e.value) and "usage: ping <address>" in str(e.value)


def test_ping_needs_a_running_engine_and_a_route(running, engine_factory):
    with pytest.raises(CommandError, match="needs a running engine"):
        default_registry().execute(None, "ping 10.0.0.9")
    eng, _ = running
    with pytest.raises(CommandError, match="no route to 192.0.2.1"):
        default_registry().execute(eng, "ping 192.0.2.1 repeat 1")
    with pytest.raises(CommandError, match="no interface|unknown interface|if9"):
        default_registry().execute(eng, "ping 10.0.0.9 source if9 repeat 1")


def test_ctl_waits_for_the_whole_ping():
    assert parse(["10.0.0.9"])["repeat"] == 5
    assert client_timeout("ping 10.0.0.9", 10.0) == 10.0               # 5 x 1 s fits in 10 s
    assert client_timeout("ping 10.0.0.9 repeat 20 timeout 2", 10.0) == 19 + 2 + 5
    assert client_timeout("show runtime", 10.0) == 10.0
    assert client_timeout("ping nowhere", 3.0) == 3.0


# --- against the Linux kernel ---------------------------------------------------------

@pytest.mark.privileged()
def test_ping_the_kernel(engine_factory):
    import uuid
    from graphnet.io import host, tap
    gn, peer = "10.223.0.1", "10.223.0.2"
    with host.temporary_netns("gn-ping") as ns:
        eng = engine_factory([ip4_host.NODES])
        name = f"gnp{uuid.uuid4().hex[:7]}"
        dev = tap.TapDevice(eng, name, netns=ns, host_address=f"{peer}/24")
        eng.add(dev)
        eng.build()
        ip4_host.set_interface_address(eng, name, f"{gn}/24")
        eng.start()
        try:
            reg = default_registry()
            out = reg.execute(eng, f"ping {peer} repeat 3 interval 0.1").splitlines()
            assert out[-1] == "Statistics: 3 sent, 3 received, 0% packet loss", out
            assert all(f"bytes from {peer}: icmp_seq={i} ttl=64 time=" in out[i - 1] for i in (1, 2, 3)), out
            data = json.loads(reg.execute(eng, f"ping {peer} repeat 2 interval 0.1 size 3000 --json"))
            assert (data["received"], data["replies"][0]["bytes"]) == (2, 3008)
            # the kernel's address gone: nobody answers ARP
            host.run_in_netns(ns, ["ip", "addr", "del", f"{peer}/24", "dev", name], check=True)
            out = reg.execute(eng, "ping 10.223.0.3 repeat 2 interval 0.1 timeout 0.5").splitlines()
            assert out == ["timeout: icmp_seq=1", "timeout: icmp_seq=2",
                           "Statistics: 2 sent, 0 received, 100% packet loss"]
            data = json.loads(reg.execute(eng, f"ping {peer} repeat 2 interval 0.1 timeout 0.5 --json"))
            assert (data["sent"], data["received"], data["loss_percent"], data["timeouts"]) == (2, 0, 100, [1, 2])
        finally:
            eng.stop()


def test_graphnet_ctl_waits_for_a_ping_longer_than_its_timeout(running, tmp_path, capsys):
    """``graphnet ctl --timeout 1 ping ...`` of about 1.5 s: the answer
    comes (the client waits the ping's run), not 'did not answer'."""
    import os
    from graphnet.cli.control import ControlServer
    from graphnet.cli.main import main
    eng, _ = running
    d = tmp_path / "ctl"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    srv = ControlServer(eng, str(d / "cli.sock")).start()
    try:
        rc = main(["ctl", "--socket", str(d / "cli.sock"), "--timeout", "1",
                   "ping", GN, "repeat", "6", "interval", "0.25"])
    finally:
        srv.close()
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.splitlines()[-1] == "Statistics: 6 sent, 6 received, 0% packet loss"


def test_a_ping_can_be_traced(running):
    """``trace add ip4-ping 1``: the request is traced from ip4-ping
    through ip4-local and ip4-icmp-input, and its reply to ip4-ping-reply."""
    eng, _ = running
    eng.trace_add("ip4-ping", 1)
    default_registry().execute(eng, f"ping {GN} repeat 1")
    text = eng.call(eng.show, "trace")
    for node in ("ip4-ping", "ip4-lookup", "ip4-local", "ip4-icmp-input", "ip4-ping-reply"):
        assert node in text, text
