"""fault-inject: drop, corrupt, duplicate, reorder and delay at configured
rates, per interface and direction, seeded (the same seed, the same faults)
and counted; every buffer accounted for (the engine fixture's leak check).
The CLI (``set/show fault-inject``), the startup file's [[fault_inject]],
and a kernel pinging through a lossy graphnet over a TAP."""
import json
import math
import struct
import time

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from graphnet.cli.registry import execute
from graphnet.io.pg import Edit
from graphnet.nodes.fault_inject import ERRORS, attach, fault_inject, parse_faults
from graphnet.testing.helpers import wait_for
from graphnet.testing.ip4 import HostBench
from graphnet.vlib.buffer import BUFFER_STRIDE, F_L4_CSUM_OFFLOAD
from graphnet.vlib.node import PythonNode

N = 20000


def run(pg_capture, udp_packet, n=500, sw_if_index=0, direction="rx", pool_share=0.125, **rates):
    nodes, ctl = fault_inject("fault-inject", "capture", direction, pool_share=pool_share)
    t = pg_capture(nodes, first="fault-inject", buffers=8192)
    seed = rates.pop("seed", 1)
    ctl.set(seed=seed, **rates)
    got = t.send_bytes([udp_packet()], count=n, sw_if_index=sw_if_index, edits=[Edit.field("udp.dport", 1, n)])
    return t, ctl, [struct.unpack_from("!H", p, 36)[0] for p in got], got


def errors(t):
    return {row[0]: t.engine.error_count("fault-inject", row[0]) for row in ERRORS[1:]}


def within_rate(k, n, p):
    """k events of n trials at rate p: within 5 standard deviations of the
    binomial mean (a wrong rate by a tenth fails it at these n)."""
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(k - n * p) <= 5 * sigma, f"{k} of {n} at rate {p}: expected {n * p:.0f} +- {5 * sigma:.0f}"


def test_no_rates_pass_everything_in_order(pg_capture, udp_packet):
    t, ctl, ports, _ = run(pg_capture, udp_packet)
    assert ports == list(range(1, 501))
    assert set(errors(t).values()) == {0}


@pytest.mark.parametrize("rate", [0.02, 0.3])
def test_drop_rate_within_the_binomial_bound_seeded_and_counted(pg_capture, udp_packet, rate):
    t, ctl, ports, _ = run(pg_capture, udp_packet, n=N, drop=rate, seed=7)
    within_rate(N - len(ports), N, rate)
    assert errors(t)["dropped"] == N - len(ports)
    assert ports == sorted(ports)
    _, _, again, _ = run(pg_capture, udp_packet, n=N, drop=rate, seed=7)
    _, _, other, _ = run(pg_capture, udp_packet, n=N, drop=rate, seed=8)
    assert again == ports and other != ports


def test_duplicate_rate(pg_capture, udp_packet):
    t, ctl, ports, got = run(pg_capture, udp_packet, n=N, duplicate=0.05, seed=3)
    k = len(ports) - N
    within_rate(k, N, 0.05)
    assert errors(t)["duplicated"] == k
    doubled = [i for i in range(len(ports) - 1) if ports[i] == ports[i + 1]]
    assert len(doubled) == k and all(got[i] == got[i + 1] for i in doubled)
    assert sorted(set(ports)) == list(range(1, N + 1))


def test_duplicate_every_packet(pg_capture, udp_packet):
    t, ctl, ports, got = run(pg_capture, udp_packet, n=300, duplicate=1.0)
    assert ports == [p for i in range(1, 301) for p in (i, i)]
    assert all(bytes(got[2 * i]) == bytes(got[2 * i + 1]) for i in range(300))
    assert errors(t).get("duplicated") == 300


def test_reorder_rate(pg_capture, udp_packet):
    t, ctl, ports, _ = run(pg_capture, udp_packet, n=N, reorder=0.05, seed=5)
    assert sorted(ports) == list(range(1, N + 1))
    swapped = sum(1 for i in range(N - 1) if ports[i] > ports[i + 1])
    k = errors(t)["reordered"]
    within_rate(k, N, 0.05)
    assert swapped == k           # each counted one is one inversion (the last of a frame is not moved)


def test_reorder_swaps_with_the_next_packet(pg_capture, udp_packet):
    t, ctl, ports, _ = run(pg_capture, udp_packet, n=256, reorder=1.0)
    assert sorted(ports) == list(range(1, 257)) and ports != sorted(ports)
    assert ports[:4] == [2, 1, 4, 3]


def test_corrupt_rate_flips_one_bit(pg_capture, udp_packet):
    t, ctl, ports, got = run(pg_capture, udp_packet, n=N, corrupt=0.02, seed=9)
    _, _, _, clean = run(pg_capture, udp_packet, n=N)
    assert len(got) == len(clean) == N
    flips = [sum(bin(x ^ y).count("1") for x, y in zip(b, ref)) for b, ref in zip(got, clean)]
    assert set(flips) <= {0, 1}
    within_rate(sum(flips), N, 0.02)
    assert errors(t)["corrupted"] == sum(flips)


def test_corrupt_every_packet(pg_capture, udp_packet):
    t, ctl, ports, got = run(pg_capture, udp_packet, n=50, corrupt=1.0)
    _, _, _, clean = run(pg_capture, udp_packet, n=50)
    for b, ref in zip(got, clean):
        assert sum(bin(x ^ y).count("1") for x, y in zip(b, ref)) == 1
    assert errors(t).get("corrupted") == 50


class MarkOffload(PythonNode):
    """Flags every packet GN_BUFFER_F_L4_CSUM_OFFLOAD, as tap-input does
    for a frame whose checksum the kernel left to offload."""
    name = "mark-offload"
    next_nodes = ("fault-inject",)
    engine = None

    def process(self, frame):
        arena = self.engine.pool.arena
        for bi in frame.buffer_indices:
            flags, = struct.unpack_from("<I", arena, bi * BUFFER_STRIDE + 4)     # gn_buffer_t.flags
            struct.pack_into("<I", arena, bi * BUFFER_STRIDE + 4, flags | F_L4_CSUM_OFFLOAD)
        return 0


@pytest.mark.parametrize("corrupt", [0.0, 1.0])
def test_corrupt_fills_an_offloaded_checksum_before_the_flip(pg_capture, udp_packet, corrupt):
    """A datagram whose L4 checksum was left to offload (not the full sum
    in its field, as the kernel hands it over a TAP): a flipped one comes
    out exactly one bit away from the datagram with its correct checksum,
    so the receiver's check catches the flip (the partial sum used to
    stay, with the flag that tells the receiver not to check: a TCP test
    against the kernel took corrupted segments). Unflipped: untouched."""
    good = bytes(udp_packet())
    partial = bytearray(good)
    partial[40:42] = (~struct.unpack_from("!H", good, 40)[0] & 0xffff).to_bytes(2, "big")   # 16 bits off
    mark = MarkOffload()
    nodes, ctl = fault_inject("fault-inject", "capture", "rx")
    t = pg_capture(mark, nodes, first="mark-offload")
    mark.engine = t.engine
    ctl.set(corrupt=corrupt, seed=5)
    got = t.send_bytes([bytes(partial)], count=50, fix_checksums=False)
    assert len(got) == 50
    if corrupt:
        assert [sum(bin(x ^ y).count("1") for x, y in zip(p, good)) for p in got] == [1] * 50
    else:
        assert got == [bytes(partial)] * 50


def test_all_faults_at_once_are_deterministic_by_seed(pg_capture, udp_packet):
    rates = dict(drop=0.05, duplicate=0.05, reorder=0.05, corrupt=0.05)
    t, _, ports, got = run(pg_capture, udp_packet, n=5000, seed=11, **rates)
    _, _, _, again = run(pg_capture, udp_packet, n=5000, seed=11, **rates)
    _, _, _, other = run(pg_capture, udp_packet, n=5000, seed=12, **rates)
    assert got == again and got != other
    e = errors(t)
    assert len(got) == 5000 - e["dropped"] + e["duplicated"]


def test_rates_per_interface_and_direction(pg_capture, udp_packet):
    nodes, ctl = fault_inject("fault-inject", "capture", "rx")
    t = pg_capture(nodes, first="fault-inject")
    ctl.set(3, drop=1.0)
    assert len(t.send([udp_packet()], count=20, sw_if_index=3)) == 0
    assert len(t.send([udp_packet()], count=20, sw_if_index=4)) == 20      # the default: nothing
    nodes, ctl = fault_inject("fault-inject", "capture", "tx")              # keyed on sw_if_index[TX]
    t = pg_capture(nodes, first="fault-inject")
    ctl.set(3, drop=1.0)
    assert len(t.send([udp_packet()], count=20, sw_if_index=3)) == 20
    assert ctl.rates(3) == {"drop": 1.0, "corrupt": 0.0, "duplicate": 0.0, "reorder": 0.0, "delay": 0.0}


# --- delay -------------------------------------------------------------------------

def test_delay_holds_packets_for_the_configured_time(pg_capture, udp_packet):
    """Measured by the trace's own clock: the time each packet reached
    fault-inject and the time it reached capture (released by the timer
    wheel through fault-inject-delay, with nothing else going on)."""
    nodes, ctl = fault_inject("fault-inject", "capture", "rx")
    t = pg_capture(nodes, first="fault-inject", pg_state="interrupt")
    ctl.set(delay=0.05)
    t.engine.start()
    try:
        t.engine.trace_add("pg-input", 20)
        start = time.monotonic()
        t.add_stream([udp_packet()], count=20, edits=[Edit.field("udp.dport", 1, 20)])
        assert wait_for(lambda: len(t.capture.records()) == 20, timeout=5)
        wall = time.monotonic() - start
    finally:
        t.engine.stop()
    from graphnet.vlib.show import trace_packets
    delays = []
    for recs in trace_packets(t.engine):
        when = {name: ns for ns, name, _ in recs}
        delays.append((when["capture"] - when["fault-inject"]) / 1e9)
    assert len(delays) == 20
    assert min(delays) >= 0.05, delays                     # never early
    assert sorted(delays)[10] < 0.05 + 0.25, delays        # and released (a loaded machine may be late)
    assert wall >= 0.05
    assert errors(t)["delayed"] == 20 and ctl.held() == {"packets": 0, "buffers": 0, "max_buffers": 512}
    ports = [struct.unpack_from("!H", r[0], 36)[0] for r in t.capture.records()]
    assert ports == list(range(1, 21))                     # a fixed delay keeps the order


def test_delay_queue_is_bounded_by_its_pool_share_and_freed_at_close(pg_capture, udp_packet):
    nodes, ctl = fault_inject("fault-inject", "capture", "rx", pool_share=0.01)
    t = pg_capture(nodes, first="fault-inject")                 # 4096 buffers: 40 may be held
    ctl.set(delay=5.0)
    got = t.send([udp_packet()], count=100)
    assert got == []
    assert ctl.held() == {"packets": 40, "buffers": 40, "max_buffers": 40}
    assert errors(t)["delayed"] == 40 and errors(t)["delay-full"] == 60
    assert t.engine.buffer_stats()["queued"] == 40
    assert "40 packets, 40 of 40 buffers" in execute(t.engine, "show fault-inject")
    # the engine closes with 40 packets held: the teardown frees them (leak check)


def test_delay_released_on_the_next_dispatch_too(pg_capture, udp_packet):
    nodes, ctl = fault_inject("fault-inject", "capture", "rx")
    t = pg_capture(nodes, first="fault-inject")
    ctl.set(delay=0.02)
    assert t.send([udp_packet()], count=5) == []
    time.sleep(0.03)
    ctl.set(delay=0.0)
    assert len(t.send([udp_packet()], count=1)) == 6            # the 5 due ones first, then the new one


# --- parsing, CLI, startup file -------------------------------------------------------

def test_parse_faults():
    assert parse_faults("drop 5% dup 1% reorder 2% delay 10ms corrupt 0.1% seed 3") == {
        "drop": 0.05, "duplicate": 0.01, "reorder": 0.02, "delay": 0.01, "corrupt": 0.001, "seed": 3}
    assert parse_faults("delay 500us")["delay"] == pytest.approx(0.0005)
    assert parse_faults("delay 2s")["delay"] == 2.0
    for bad, msg in (("drop 5", "a rate like"), ("delay 5%", "a time like"), ("drop", "needs a value"),
                     ("drop 120%", "0-100%"), ("jitter 5%", "unknown fault 'jitter'"), ("delay 11s", "at most 10s"),
                     ("drop 1% drop 2%", "given twice"), ("seed x", "whole number"), ("", "give faults")):
        with pytest.raises(ValueError, match=msg):
            parse_faults(bad)


def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"])
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.9", "02:00:00:00:00:09", True)
    return b


def pings(n):
    return [Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:01") / IP(src="10.0.0.9", dst="10.0.0.1")
            / ICMP(id=1, seq=i) for i in range(n)]


def test_cli_set_show_and_off_on_the_tx_path(engine_factory):
    b = bench(engine_factory)
    e = b.engine
    assert execute(e, "show fault-inject").startswith("no fault injection")
    assert execute(e, "set fault-inject if0 tx drop 30% dup 0% delay 0ms seed 4") == ""
    replies = b.out("if0", pings(2000))
    lost = 2000 - len(replies)
    within_rate(lost, 2000, 0.3)
    assert e.error_count("fault-inject-tx-if0", "dropped") == lost
    text = execute(e, "show fault-inject")
    assert "fault-inject-tx-if0: if0 tx: drop 30%, seed 4" in text and f"dropped {lost}" in text
    rows = json.loads(execute(e, "show fault-inject --json"))
    assert rows[0]["node"] == "fault-inject-tx-if0" and rows[0]["rates"]["drop"] == 0.3
    assert rows[0]["counters"]["dropped"] == lost and rows[0]["seed"] == 4
    execute(e, "set fault-inject if0 tx off")
    assert len(b.out("if0", pings(100))) == 100
    assert "if0 tx: off" in execute(e, "show fault-inject")
    b.check_accounting()


@pytest.mark.parametrize("line, message", [
    ("set fault-inject if9 rx drop 5%", "no interface named 'if9'"),
    ("set fault-inject if0 up drop 5%", "'up': use rx or tx"),
    ("set fault-inject if0 tx drop 5", "drop '5': a rate like 5% or 0.1%"),
    ("set fault-inject if0 tx drop 101%", "(0-100%)"),
    ("set fault-inject if0 tx wobble 5%", "unknown fault 'wobble'"),
    ("set fault-inject if0 tx delay 1h", "a time like 10ms"),
    ("set fault-inject if0 tx", "give an interface, rx or tx, and faults"),
    ("set fault-inject if0 rx drop 5%", "has no input node"),
])
def test_cli_errors_are_one_line(engine_factory, line, message):
    from graphnet.cli.registry import CommandError
    b = bench(engine_factory)
    with pytest.raises(CommandError) as ei:
        execute(b.engine, line)
    assert message in str(ei.value)
    assert "\n" not in str(ei.value).split("\nusage:")[0]
    assert not [n for n in b.engine.registrations if n.startswith("fault-inject")]     # nothing half-made


def test_startup_file_key_builds_the_node(tmp_path):
    from scapy.utils import wrpcap
    from graphnet.config import build_engine, loads
    wrpcap(str(tmp_path / "in.pcap"), [Ether() / IP() / ICMP(seq=i) for i in range(1000)])
    cfg = loads(f'[[interface]]\nkind = "pcap"\nname = "p0"\nnext = "null"\ninput = "{tmp_path}/in.pcap"\n\n'
                '[[fault_inject]]\ninterface = "p0"\ndirection = "rx"\ndrop = 20.0\nseed = 5\n', "t.toml")
    e = build_engine(cfg)
    try:
        e.run_until_idle()
        dropped = e.error_count("fault-inject-rx-p0", "dropped")
        within_rate(dropped, 1000, 0.2)
        assert e.main.node_counters()[e.index["null"]]["vectors"] == 1000 - dropped
        assert "p0 rx: drop 20%, seed 5" in execute(e, "show fault-inject")
    finally:
        e.close()


@pytest.mark.parametrize("body, message", [
    ('interface = "p1"\ndirection = "rx"', "fault_inject[1].interface: no [[interface]] named 'p1'"),
    ('interface = "p0"\ndirection = "up"', "fault_inject[1].direction: 'up' is not one of rx, tx"),
    ('interface = "p0"', "fault_inject[1]: needs direction"),
    ('interface = "p0"\ndirection = "rx"\ndrop = 101.0', "fault_inject[1].drop: must be 0..100"),
    ('interface = "p0"\ndirection = "rx"\njitter = 1.0', "fault_inject[1].jitter: unknown key 'jitter'"),
    ('interface = "p0"\ndirection = "rx"\ndelay = 60.0', "fault_inject[1].delay: must be 0..10"),
    ('interface = "p0"\ndirection = "rx"\n\n[[fault_inject]]\ninterface = "p0"\ndirection = "rx"',
     "fault_inject[2].direction: p0 rx is already given"),
])
def test_startup_file_key_errors(body, message):
    from graphnet.config import ConfigError, loads
    with pytest.raises(ConfigError) as ei:
        loads(f'[[interface]]\nkind = "pcap"\nname = "p0"\n\n[[fault_inject]]\n{body}\n', "t.toml")
    assert message in str(ei.value)


# --- the kernel sees the loss (privileged) -------------------------------------------------

@pytest.mark.privileged(tools=("ping",))
def test_kernel_pings_through_a_lossy_graphnet(engine_factory):
    """The kernel in a namespace pings graphnet over a TAP; fault-inject
    drops 50% of what graphnet receives (rx) and delays its replies by
    20 ms (tx): ping reports the loss and the delay."""
    from graphnet.io import host
    from graphnet.testing.ip4 import tap_host
    gn, peer = "10.237.0.1", "10.237.0.2"
    with host.temporary_netns("gn-fi") as ns:
        eng, dev = tap_host(engine_factory, ns, f"{gn}/24", f"{peer}/24")
        eng.start()
        try:
            warm = host.run_in_netns(ns, ["ping", "-c", "1", "-W", "2", gn], capture_output=True, text=True,
                                     timeout=10)
            assert "1 received" in warm.stdout
            eng.call(execute, eng, f"set fault-inject {dev.name} rx drop 50% seed 1")
            eng.call(execute, eng, f"set fault-inject {dev.name} tx delay 20ms")
            out = host.run_in_netns(ns, ["ping", "-c", "100", "-i", "0.01", "-W", "1", gn], capture_output=True,
                                    text=True, timeout=60).stdout
            received = int(out.split(" received")[0].rsplit(" ", 1)[1])
            dropped = eng.call(eng.error_count, f"fault-inject-rx-{dev.name}", "dropped")
            assert dropped > 0 and received < 100
            within_rate(100 - received, 100, 0.5)
            rtt_min = float(out.split("min/avg/max")[1].split("=")[1].split("/")[0])
            assert rtt_min >= 20.0, out                              # ms: every reply held 20 ms
            eng.call(execute, eng, f"set fault-inject {dev.name} rx off")
            eng.call(execute, eng, f"set fault-inject {dev.name} tx off")
            out = host.run_in_netns(ns, ["ping", "-c", "5", "-i", "0.05", "-W", "2", gn], capture_output=True,
                                    text=True, timeout=20).stdout
            assert "5 received" in out
        finally:
            eng.stop()


@pytest.mark.privileged(tools=("ping",))
def test_faults_stay_when_the_tap_is_deleted_and_made_again(engine_factory):
    """``delete tap`` / ``create tap`` of the same name takes its nodes back
    (Engine.grow reuse): the redirected arcs stay, so the faults still
    apply (tx: replies dropped), and 'off' restores the path."""
    import uuid
    from graphnet.io import host
    from graphnet.nodes import ip4_host
    u = uuid.uuid4().hex[:7]
    ns, name, gn, peer = f"gn-fir-{u}", f"gnf{u}", "10.238.0.1", "10.238.0.2"
    eng = engine_factory([ip4_host.NODES])
    eng.start()

    def make():
        assert execute(eng, f"create tap host-if-name {name} host-ns {ns} host-ip4-addr {peer}/24") == name
        execute(eng, f"set interface state {name} up")
        execute(eng, f"set interface ip address {name} {gn}/24")

    def ping(n=3):
        out = host.run_in_netns(ns, ["ping", "-c", str(n), "-i", "0.1", "-W", "1", gn], capture_output=True,
                                text=True, timeout=20).stdout
        return int(out.split(" received")[0].rsplit(" ", 1)[1])
    try:
        make()
        assert ping() == 3
        execute(eng, f"set fault-inject {name} tx drop 100%")
        execute(eng, f"set fault-inject {name} rx delay 1ms")
        assert ping() == 0
        counts = lambda: (eng.error_count(f"fault-inject-tx-{name}", "dropped"),      # noqa: E731
                          eng.error_count(f"fault-inject-rx-{name}", "delayed"))
        before = counts()
        execute(eng, f"delete tap {name}")
        make()                                        # refused before: the input's arc was redirected
        assert ping() == 0
        after = counts()
        assert after[0] > before[0] and after[1] > before[1], (before, after)      # both still in the path
        execute(eng, f"set fault-inject {name} tx off")
        assert ping() == 3
    finally:
        if name in list(eng.interfaces):
            execute(eng, f"delete tap {name}")
        host.delete_netns(ns)
