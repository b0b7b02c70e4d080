"""Issue 9, defect 1: a UDP packet from our own address to our own echo
port looped ip4-lookup -> ip4-local -> udp4-input -> udp4-echo for ever
inside one main-loop iteration. Each depth that stops it is tested on its
own: martian sources at ip4-input and ip4-local, udp4-echo's refusal of
reflecting source ports, the main loop's drain bound; and the original
packet end to end, in a child process (on the code before the fix it
wedged the loop and grew by hundreds of MB/s)."""
import os
from pathlib import Path
import subprocess
import sys
import textwrap
import time

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet import PythonNode, Sleep, process_node
from graphnet.testing.ip4 import HostBench, mac_of

PEER = "02:00:00:00:aa:01"
PEER1 = "02:00:00:00:aa:02"
IF0 = mac_of(0)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    b.neighbors.add("if1", "10.1.0.2", PEER1, static=True)
    yield b
    b.check_accounting()


def udp(src, dst, sport=5000, dport=7, payload=b"x"):
    return Ether(src=PEER, dst=IF0) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)


# --- martian sources ---------------------------------------------------------------

@pytest.mark.parametrize("src, symbol", [
    ("0.0.0.0", "martian-source-zeronet"),
    ("0.1.2.3", "martian-source-zeronet"),
    ("127.0.0.1", "martian-source-loopback"),
    ("127.255.0.9", "martian-source-loopback"),
    ("224.0.0.5", "martian-source-multicast"),
    ("239.255.255.255", "martian-source-multicast"),
    ("255.255.255.255", "martian-source-broadcast"),
])
@pytest.mark.parametrize("dst", ["10.0.0.1", "10.1.0.2"])        # for us, and to forward
def test_martian_sources_are_dropped_at_ip4_input(bench, src, symbol, dst):
    out = bench.send("if0", [udp(src, dst, sport=4000, dport=7)])
    assert out == {"if0": [], "if1": []}
    assert bench.errors() == {("ip4-input", symbol): 1}


def test_class_e_source_passes_as_in_linux(bench):
    out = bench.send("if0", [udp("240.0.0.1", "10.1.0.2")])
    assert len(out["if1"]) == 1 and out["if1"][0][IP].src == "240.0.0.1"


def test_our_own_address_as_source_is_martian(bench):
    """From the wire, a packet claiming to come from us (either of our
    addresses) is never answered: ip4-local drops it."""
    frames = [udp("10.0.0.1", "10.0.0.1", sport=5000), udp("10.1.0.1", "10.0.0.1", sport=5000),
              Ether(src=PEER, dst=IF0) / IP(src="10.0.0.1", dst="10.0.0.1") / b"\x08\x00\xf7\xff\x00\x00\x00\x00"]
    frames[2][IP].proto = 1                                   # an ICMP echo request "from us"
    out = bench.send("if0", frames)
    assert out == {"if0": [], "if1": []}
    assert bench.errors() == {("ip4-local", "martian-source-local"): 3}


def test_subnet_broadcast_as_source_is_martian(bench):
    out = bench.send("if0", [udp("10.0.0.255", "10.0.0.1", sport=5000)])
    assert out == {"if0": [], "if1": []}
    assert bench.errors() == {("ip4-local", "martian-source-broadcast"): 1}


def test_a_ping_of_our_own_address_still_works(bench):
    """Locally originated packets to ourselves are not martians: an echo
    reply from 10.0.0.1 to 10.0.0.1 (ours) is delivered, not dropped."""
    from scapy.layers.inet import ICMP
    (r,) = bench.out("if0", [Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(id=3, seq=1)])
    assert r[ICMP].type == 0 and r[IP].dst == "10.0.0.2"
    assert not any(sym.startswith("martian") for (_n, sym) in bench.errors())


# --- udp4-echo ---------------------------------------------------------------------

@pytest.mark.parametrize("sport", [0, 7, 9, 13, 19, 37, 53, 123, 1023])
def test_echo_never_answers_a_low_source_port(bench, sport):
    out = bench.send("if0", [udp("10.0.0.2", "10.0.0.1", sport=sport, dport=7)])
    assert out == {"if0": [], "if1": []}
    assert bench.errors() == {("udp4-echo", "reflective-source-port"): 1}


def test_echo_never_answers_its_own_port(engine_factory):
    from graphnet.nodes.udp4_echo import set_udp_echo_port

    b = HostBench(engine_factory, ["if0"], before_build=lambda e: set_udp_echo_port(e, 7007))
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    out = b.send("if0", [udp("10.0.0.2", "10.0.0.1", sport=7007, dport=7007),
                         udp("10.0.0.2", "10.0.0.1", sport=7008, dport=7007)])
    (r,) = out["if0"]
    assert (r[UDP].sport, r[UDP].dport) == (7007, 7008)
    assert b.count("udp4-echo", "reflective-source-port") == 1
    assert b.count("udp4-echo", "echoed") == 1
    b.check_accounting()


def test_echo_answers_an_ephemeral_port(bench):
    (r,) = bench.out("if0", [udp("10.0.0.2", "10.0.0.1", sport=1024, dport=7)])
    assert (r[UDP].sport, r[UDP].dport) == (7, 1024)


# --- the main loop's drain bound ---------------------------------------------------

class Reflector(PythonNode):
    """Sends every frame back to itself while ``looping``, then to null:
    the shape of any cycle in a graph."""
    name = "reflector"
    next_nodes = ["reflector", "null"]

    def __init__(self, max_seconds=5.0):
        self.looping = True
        self.calls = 0
        self.deadline = time.monotonic() + max_seconds     # bounds the test on a loop without the bound

    def process(self, frame):
        self.calls += 1
        if self.looping and (self.calls & 0xff or time.monotonic() < self.deadline):
            return 0
        return 1


def test_a_node_that_reenqueues_itself_does_not_wedge_the_loop(engine_factory):
    from graphnet.io.pg import PacketGenerator, Stream
    from graphnet.testing import udp_packet

    ticks = []

    @process_node("ticker")
    def ticker(engine):
        while True:
            yield Sleep(0.005)
            ticks.append(time.monotonic())

    refl = Reflector()
    pg = PacketGenerator(next_node="reflector")
    e = engine_factory([pg, refl, ticker])
    e.build()
    pg.add_stream(Stream("s", [bytes(udp_packet())], count=3))
    e.start()
    try:
        deadline = time.monotonic() + 2.0
        while refl.calls < 10000 and time.monotonic() < deadline:
            time.sleep(0.01)
        n_ticks = len(ticks)
        t0 = time.monotonic()
        answer = e.call(lambda: "answered", timeout=2.0)       # a control call runs
        latency = time.monotonic() - t0
        assert answer == "answered"
        time.sleep(0.1)
        assert len(ticks) > n_ticks, "the timer-driven process stopped running"
        stats = e.call(e.main.loop_stats)
        assert stats["drain_limited"] > 0 and stats["pending_frames"] > 0
        assert refl.looping and refl.calls > 10000
        assert latency < 1.0, latency
    finally:
        refl.looping = False
    # whatever is still pending when the loop stops is freed by close() (engine_factory checks)


def test_close_frees_frames_left_pending(engine_factory):
    from graphnet.io.pg import PacketGenerator, Stream
    from graphnet.testing import udp_packet

    refl = Reflector()
    pg = PacketGenerator(next_node="reflector")
    e = engine_factory([pg, refl], buffers=1024)
    e.build()
    pg.add_stream(Stream("s", [bytes(udp_packet())], count=300))
    e.run(0.2)                                     # returns although the reflector never stops
    assert e.main.loop_stats()["pending_frames"] > 0
    assert e.buffer_stats()["in_use"] == 300
    e.close()
    assert e.main.loop_stats()["pending_frames"] == 0
    assert e.main.loop_stats()["discarded_at_close"] == 300
    assert e.buffer_stats()["in_use"] == 0


# --- the original packet, end to end -----------------------------------------------

_ECHO_LOOP_SCRIPT = textwrap.dedent("""
    import time
    import graphnet
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from graphnet.testing.ip4 import HostBench, mac_of

    engines = []
    def factory(nodes=(), **kw):
        e = graphnet.Engine(nodes, buffers=4096, **kw)
        engines.append(e)
        return e

    b = HostBench(factory, ["if0"])
    b.address("if0", "10.0.0.1/24")
    b.inject("if0", [Ether(src="02:00:00:00:aa:01", dst=mac_of(0)) / IP(src="10.0.0.1", dst="10.0.0.1")
                     / UDP(sport=7, dport=7) / b"loop"] * 4)
    b.engine.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    b.engine.call(lambda: None, timeout=3)
    print("latency", time.monotonic() - t0)
    print("martian", b.count("ip4-local", "martian-source-local"))
    print("echoed", b.count("udp4-echo", "echoed"))
    b.engine.close()
    print("in_use", b.engine.buffer_stats()["in_use"])
""")


def _run_child(script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a script in a child Python limited to 3 GB and `timeout` s (on
    code without the fixes these loops wedged and grew by hundreds of MB/s)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                         env.get("PYTHONPATH", "")])

    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    try:
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the engine wedged: the child did not finish within {timeout} s")


def test_udp_echo_to_ourselves_from_port_7_is_dropped_not_looped():
    """The packet of issue 9 (10.0.0.1:7 -> 10.0.0.1:7, received on an
    interface), in a child process."""
    p = _run_child(_ECHO_LOOP_SCRIPT)
    assert p.returncode == 0, p.stderr[-3000:]
    out = dict(line.split() for line in p.stdout.splitlines())
    assert out["martian"] == "4" and out["echoed"] == "0" and out["in_use"] == "0", p.stdout
    assert float(out["latency"]) < 3.0


_CYCLE_SCRIPT = textwrap.dedent("""
    import os, signal, threading, time
    import graphnet
    from graphnet.io.pg import PacketGenerator, Stream
    from graphnet.nodes.passthrough import passthrough
    from graphnet.testing import udp_packet

    pg = PacketGenerator(next_node="spin-a")
    e = graphnet.Engine([pg, passthrough("spin-a", "spin-b"), passthrough("spin-b", "spin-a")], buffers=1024)
    e.build()
    pg.add_stream(Stream("s", [bytes(udp_packet())], count=10))
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    try:
        e.run(10.0)
        print("interrupted no")
    except KeyboardInterrupt:
        print("interrupted yes")
    print("seconds", time.monotonic() - t0)
    print("drain_limited", e.main.loop_stats()["drain_limited"])
    e.close()
    print("in_use", e.buffer_stats()["in_use"])
""")


def test_ctrl_c_stops_a_loop_spinning_in_a_cycle_of_cython_nodes():
    """A cycle of C nodes (no Python runs per frame to notice a signal):
    the iterations cut by the drain bound let SIGINT through at once, and
    close() frees what was still pending."""
    p = _run_child(_CYCLE_SCRIPT, timeout=30)
    assert p.returncode == 0, p.stderr[-3000:]
    out = dict(line.split() for line in p.stdout.splitlines())
    assert out["interrupted"] == "yes" and float(out["seconds"]) < 2.0, p.stdout
    assert int(out["drain_limited"]) > 0 and out["in_use"] == "0", p.stdout
