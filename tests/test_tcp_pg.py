"""TCP edge cases scripted with Scapy through a pg interface (no kernel
peer): the handshake and its options, RST for a closed port, bad
checksums, RFC 5961 challenge ACKs (SYN and RST inside the window),
out-of-window segments, and a SYN flood answered with SYN cookies once
the backlog is full, a cookie ACK opening a connection."""
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet.apps.echo import start_echo_server
from graphnet.nodes import session_host
from graphnet.testing.ip4 import HostBench, mac_of
from graphnet.transport import tcp4

PEER = "02:00:00:00:00:99"
IF0 = mac_of(0)


@pytest.fixture
def bench(engine_factory):
    b = HostBench(engine_factory, ["if0"], extra_nodes=[session_host.NODES])
    b.address("if0", "10.0.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER, static=True)
    start_echo_server(b.engine, "tcp://0.0.0.0/1234")
    yield b
    b.check_accounting()


def seg(flags, seq, ack=0, sport=40000, dport=1234, payload=b"", options=None, **kw):
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None), ("WScale", 7)] \
        if options is None else options
    p = Ether(src=PEER, dst=IF0) / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535, options=opts, **kw)
    return p / Raw(payload) if payload else p


def checksums_ok(r):
    q = IP(bytes(r[IP]))
    del q.chksum, q[TCP].chksum
    return bytes(IP(bytes(q))) == bytes(r[IP])


def opts(r):
    return dict((k, v) for k, v in r[TCP].options)


def handshake(bench, sport=40000, isn=1000):
    (sa,) = bench.out("if0", [seg("S", isn, sport=sport)])
    ts = opts(sa)["Timestamp"][0]
    out = bench.out("if0", [seg("A", isn + 1, sa[TCP].seq + 1, sport=sport,
                                options=[("NOP", None), ("NOP", None), ("Timestamp", (101, ts))])])
    assert out == []
    return sa


def test_syn_ack_carries_our_options_and_data_is_echoed(bench):
    sa = handshake(bench)
    assert sa[TCP].flags == "SA" and sa[TCP].ack == 1001 and checksums_ok(sa)
    o = opts(sa)
    assert o["MSS"] == 1460 and o["WScale"] == 7 and "SAckOK" in o and o["Timestamp"][1] == 100
    assert (sa[IP].src, sa[IP].dst, sa[IP].flags) == ("10.0.0.1", "10.0.0.2", "DF")
    out = bench.out("if0", [seg("PA", 1001, sa[TCP].seq + 1, payload=b"hello",
                                options=[("NOP", None), ("NOP", None), ("Timestamp", (102, 0))])])
    data = [r for r in out if len(r[TCP].payload)]
    assert [bytes(r[TCP].payload) for r in data] == [b"hello"] and data[0][TCP].ack == 1006
    assert all(checksums_ok(r) for r in out)
    assert bench.engine.error_count("tcp4-output", "segments") >= 2
    t = bench.engine.call(lambda: tcp4.transport(bench.engine).stats())
    assert t["established"] == 1 and t["bytes_in"] == 5


def test_rst_for_a_closed_port_and_for_an_ack(bench):
    (r,) = bench.out("if0", [seg("S", 5000, dport=9)])
    assert r[TCP].flags == "RA" and r[TCP].ack == 5001 and r[TCP].seq == 0 and checksums_ok(r)
    (r,) = bench.out("if0", [seg("A", 7, 123456, dport=9, options=[])])
    assert r[TCP].flags == "R" and r[TCP].seq == 123456
    assert bench.out("if0", [seg("R", 7, dport=9, options=[])]) == []           # no RST for a RST
    assert bench.engine.error_count("tcp4-reset", "no-connection") == 2
    assert bench.engine.error_count("tcp4-reset", "rst-ignored") == 1


def test_bad_checksum_is_dropped_and_counted(bench):
    p = seg("S", 1)
    p[TCP].chksum = 0x1234
    assert bench.out("if0", [p]) == []
    assert bench.engine.error_count("tcp4-input", "bad-checksum") == 1


def test_syn_and_rst_inside_the_window_get_challenge_acks(bench):
    sa = handshake(bench)
    una = sa[TCP].seq + 1
    ts = [("NOP", None), ("NOP", None), ("Timestamp", (110, 0))]
    (c,) = bench.out("if0", [seg("S", 1500, options=ts)])                     # RFC 5961 s.4
    assert c[TCP].flags == "A" and c[TCP].ack == 1001 and c[TCP].seq == una
    (c,) = bench.out("if0", [seg("R", 1100, options=[])])                     # in window, not RCV.NXT
    assert c[TCP].flags == "A" and c[TCP].ack == 1001
    assert bench.engine.error_count("tcp4-established", "syn-in-sync") == 1
    assert bench.engine.error_count("tcp4-established", "rst-in-window") == 1
    conns = bench.engine.call(lambda: tcp4.transport(bench.engine).connections())
    assert [c["state"] for c in conns] == ["ESTABLISHED"]                     # neither reset it
    assert bench.out("if0", [seg("R", 1001, options=[])]) == []               # exactly RCV.NXT: reset
    assert bench.engine.call(lambda: tcp4.transport(bench.engine).stats())["resets_received"] == 1


def test_out_of_window_data_is_dropped_and_acked(bench):
    sa = handshake(bench)
    ts = [("NOP", None), ("NOP", None), ("Timestamp", (110, 0))]
    (a,) = bench.out("if0", [seg("PA", 1001 + (1 << 30), sa[TCP].seq + 1, payload=b"far", options=ts)])
    assert a[TCP].flags == "A" and a[TCP].ack == 1001 and len(a[TCP].payload) == 0
    assert bench.engine.error_count("tcp4-established", "out-of-window") == 1


def test_syn_flood_gets_cookies_and_a_cookie_opens_a_connection(bench):
    """More SYNs than the backlog: the first get half-open connections,
    the rest SYN cookies (nothing kept); the ACK of a cookie SYN-ACK
    opens a connection. Memory: connections stay at the backlog."""
    n = 1100
    out = bench.out("if0", [seg("S", 7000 + i, sport=20000 + i) for i in range(n)])
    assert len(out) == n and all(r[TCP].flags == "SA" for r in out)
    t = tcp4.transport(bench.engine)
    st = bench.engine.call(t.stats)
    assert st["cookies_sent"] == n - 1024 and st["connections"] == 1024
    last = out[-1]                                             # a cookie SYN-ACK
    ts = opts(last)["Timestamp"][0]
    out = bench.out("if0", [seg("A", 7000 + n, last[TCP].seq + 1, sport=20000 + n - 1,
                                options=[("NOP", None), ("NOP", None), ("Timestamp", (101, ts))])])
    # (the half-open connections' SYN-ACK retransmissions may be in out: time passed)
    assert [r for r in out if r[TCP].dport == 20000 + n - 1] == []            # no RST: the cookie was good
    assert bench.engine.call(t.listeners)[0]["cookies_ok"] == 1
    assert bench.engine.call(t.stats)["established"] == 1
