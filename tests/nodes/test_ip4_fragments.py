"""IPv4 fragments: ``ip4-reassembly`` (local delivery) and ``ip4-frag``
(forwarding with an MTU), through pg.

Reassembly is tested as pg -> ip4-reassembly -> capture with Scapy's
``fragment()`` as the reference; ip4-frag both alone (pg -> ip4-frag ->
capture, fixed MTU) and in the forwarding path (ip4-rewrite sends too-big
packets to it), with Scapy's ``defragment()`` as the reference. Every
engine is leak-checked at teardown by ``engine_factory``; the Hypothesis
tests also check after every example that each buffer sent is captured,
held, or counted by one drop row.
"""
from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from scapy.layers.inet import ICMP, IP, UDP, defragment, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from graphnet.testing.helpers import examples
from graphnet.testing.packets import checksums_ok
from graphnet.nodes import ip4_reassembly

HSETTINGS = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                             HealthCheck.function_scoped_fixture])

REASS_DROP_ROWS = ("duplicate", "overlap", "inconsistent", "too-long", "too-many-fragments", "too-many-datagrams",
                   "timeout", "malformed", "evicted")


def datagram(size=3000, ident=0x1234, src="192.0.2.1", dst="198.51.100.7", proto="udp", seed=0, **ipkw):
    rnd = random.Random(seed)
    payload = bytes(rnd.getrandbits(8) for _ in range(size))
    ip = IP(src=src, dst=dst, id=ident, **ipkw)
    if proto == "udp":
        return ip / UDP(sport=4000, dport=7) / Raw(payload)
    return ip / ICMP(id=7, seq=1) / Raw(payload)


def raw_fragment(ident, offset_bytes, data, mf, src="192.0.2.1", dst="198.51.100.7", proto=17):
    """A fragment built by hand: payload bytes `data` at `offset_bytes`."""
    return bytes(IP(src=src, dst=dst, id=ident, proto=proto, flags="MF" if mf else 0,
                    frag=offset_bytes // 8) / Raw(data))


class Reass:
    """pg -> ip4-reassembly -> capture."""

    def __init__(self, pg_capture, **kw):
        self.pc = pg_capture(*ip4_reassembly.nodes(next_node="capture", **kw), first="ip4-reassembly")
        self.engine = self.pc.engine
        self.state = ip4_reassembly.reassembly(self.engine)
        self.sent = 0

    def send(self, packets):
        packets = [bytes(p) for p in packets]
        self.sent += len(packets)
        return self.pc.send_bytes(packets, count=len(packets), fix_checksums=False, l3_offset=0)

    def count(self, symbol):
        return self.engine.error_count("ip4-reassembly", symbol)

    def counts(self):
        return {s: self.count(s) for s in ("reassembled",) + REASS_DROP_ROWS if self.count(s)}

    def dropped(self):
        return sum(self.count(s) for s in REASS_DROP_ROWS)


@pytest.fixture
def reass(pg_capture):
    return Reass(pg_capture)


# --- reassembly ----------------------------------------------------------------

@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
@pytest.mark.parametrize("size,fragsize", [(3000, 1480), (4000, 512), (65000, 1480), (100, 8)])
def test_scapy_fragments_reassemble_byte_exact(reass, order, size, fragsize):
    orig = datagram(size, seed=size)
    frags = fragment(orig, fragsize=fragsize)
    assert len(frags) > 1
    if order == "reversed":
        frags = frags[::-1]
    elif order == "shuffled":
        random.Random(size + fragsize).shuffle(frags)
    out = reass.send(frags)
    assert out == [bytes(orig)]
    assert reass.counts() == {"reassembled": 1}
    assert reass.state.stats()["in_progress"] == 0


def test_non_fragments_pass_through_unchanged(reass):
    pkts = [bytes(datagram(50, ident=i, seed=i)) for i in range(5)]
    df = bytes(datagram(60, flags="DF"))
    assert reass.send(pkts + [df]) == pkts + [df]
    assert reass.counts() == {}


def test_interleaved_datagrams_and_keys(reass):
    """Same id from another source, another protocol: distinct datagrams."""
    a = datagram(2000, ident=7, src="192.0.2.1", seed=1)
    b = datagram(2000, ident=7, src="192.0.2.2", seed=2)
    c = datagram(2000, ident=7, src="192.0.2.1", proto="icmp", seed=3)
    fa, fb, fc = (fragment(p, fragsize=400) for p in (a, b, c))
    mixed = [f for trio in zip(fa, fb[::-1], fc) for f in trio]
    out = reass.send(mixed)
    assert sorted(out) == sorted([bytes(a), bytes(b), bytes(c)])
    assert reass.count("reassembled") == 3


def test_first_fragment_header_with_options_is_kept(reass):
    orig = IP(src="10.0.0.1", dst="10.0.0.2", id=99, options=[b"\x94\x04\x00\x00"]) / UDP() / Raw(b"x" * 1000)
    frags = fragment(orig, fragsize=256)
    out = reass.send(frags[::-1])
    assert out == [bytes(orig)]


def test_exact_duplicates_are_dropped_and_counted(reass):
    orig = datagram(3000)
    frags = fragment(orig, fragsize=800)
    out = reass.send([frags[0], frags[1], frags[1], frags[0], frags[2], frags[3], frags[2]])
    assert out == [bytes(orig)]
    # the trailing duplicate arrives after completion: a new datagram, held
    assert reass.count("duplicate") == 2
    stats = reass.state.stats()
    assert stats["in_progress"] == 1 and stats["buffers_held"] == 1


@pytest.mark.parametrize("second", [
    (800, 800, True),      # starts inside the first
    (0, 1600, True),       # covers the first
    (400, 400, True),      # inside it
    (0, 400, True),        # same start, shorter
])
def test_overlap_drops_the_whole_datagram(reass, second):
    data = bytes(range(256)) * 16
    f1 = raw_fragment(5, 0, data[:1200], True)
    off, ln, mf = second
    f2 = raw_fragment(5, off, data[off:off + ln], mf)
    assert reass.send([f1, f2]) == []
    assert reass.counts() == {"overlap": 2}
    assert reass.state.stats()["in_progress"] == 0
    # a later complete set with the same key reassembles afresh
    out = reass.send([raw_fragment(5, 0, data[:1200], True), raw_fragment(5, 1200, data[1200:1300], False)])
    assert len(out) == 1 and out[0][20:] == data[:1300]


def test_same_range_with_other_mf_is_an_overlap_not_a_duplicate(reass):
    data = bytes(2000)
    assert reass.send([raw_fragment(6, 800, data[:800], True), raw_fragment(6, 800, data[:800], False)]) == []
    assert reass.counts() == {"overlap": 2}


def test_inconsistent_ends(reass):
    d = bytes(4000)
    # two different last fragments
    assert reass.send([raw_fragment(1, 800, d[:800], False), raw_fragment(1, 1600, d[:800], False)]) == []
    assert reass.count("inconsistent") == 2
    # data beyond a known end
    assert reass.send([raw_fragment(2, 800, d[:800], False), raw_fragment(2, 1600, d[:800], True)]) == []
    assert reass.count("inconsistent") == 4
    # a last fragment ending before data already held
    assert reass.send([raw_fragment(3, 1600, d[:800], True), raw_fragment(3, 800, d[:800], False)]) == []
    assert reass.count("inconsistent") == 6
    assert reass.state.stats()["buffers_held"] == 0


def test_malformed_fragments(reass):
    d = bytes(100)
    held = raw_fragment(9, 0, d[:16], True)
    bad = [
        raw_fragment(9, 16, d[:13], True),                     # MF with data not a multiple of 8
        raw_fragment(9, 16, b"", False),                      # no data
        raw_fragment(9, 16, d[:16], True)[:30],               # total length beyond the buffer
        b"\x45" + b"\x00" * 10,                               # short
    ]
    assert reass.send([held] + bad) == []
    assert reass.counts() == {"malformed": 4}
    # the datagram held goes on
    out = reass.send([raw_fragment(9, 16, d[16:24], False)])
    assert len(out) == 1 and out[0][20:] == d[:24]


def test_too_long_datagram_is_dropped(reass):
    d = bytes(1480)
    held = raw_fragment(4, 0, d, True)
    ping_of_death = raw_fragment(4, 65520, d[:200], False)   # ends past 65535
    assert reass.send([held, ping_of_death]) == []
    assert reass.counts() == {"too-long": 2}
    assert reass.state.stats()["buffers_held"] == 0


def test_too_long_with_first_fragment_options(reass):
    # data ends at 65512 (fits with a 20-byte header) but the first fragment
    # carries 40 bytes of options: 65552 bytes reassembled
    first = bytes(IP(id=8, proto=17, flags="MF", options=[b"\x01" * 40]) / Raw(bytes(1480)))
    rest = []
    off = 1480
    while off < 65512:
        n = min(1480, 65512 - off)
        rest.append(raw_fragment(8, off, bytes(n), off + n < 65512, src="127.0.0.1", dst="127.0.0.1"))
        off += n
    assert reass.send([first] + rest) == []
    assert reass.count("too-long") == len(rest) + 1


def test_too_many_fragments(pg_capture):
    r = Reass(pg_capture, max_fragments=4)
    orig = datagram(1000)
    frags = fragment(orig, fragsize=200)           # 6 fragments
    assert len(frags) == 6
    assert r.send(frags) == []
    assert r.counts() == {"too-many-fragments": 5}  # 4 held + the 5th
    assert r.send(fragment(datagram(700, ident=2), fragsize=200)) != []  # 4 fragments pass


def test_too_many_datagrams_evicts_the_oldest(pg_capture):
    r = Reass(pg_capture, max_datagrams=3)
    firsts = [fragment(datagram(1000, ident=i), fragsize=400) for i in range(5)]
    assert r.send([f[0] for f in firsts]) == []
    assert r.counts() == {"too-many-datagrams": 2}              # the first fragments of 0 and 1
    assert r.state.stats()["in_progress"] == 3
    assert r.state.stats()["datagrams_evicted"] == 2
    out = r.send([x for f in firsts[2:] + firsts[:2] for x in f[1:]])
    # datagrams 2-4 complete; the rest of 0 and 1 start new datagrams, held
    assert sorted(out) == sorted(bytes(datagram(1000, ident=i)) for i in range(2, 5))
    assert r.state.stats()["in_progress"] == 2


def test_timeout_frees_held_buffers(pg_capture):
    r = Reass(pg_capture, timeout=0.05)
    frags = fragment(datagram(3000), fragsize=600)
    assert r.send(frags[:-1] + fragment(datagram(3000, ident=2), fragsize=600)[:2]) == []
    assert r.engine.buffer_stats()["in_use"] == len(frags) - 1 + 2
    r.engine.run(0.3)
    assert r.counts() == {"timeout": len(frags) + 1}
    assert r.count("time-exceeded") == 0               # no ip4-icmp-error in this graph: only dropped
    assert r.engine.buffer_stats()["in_use"] == 0
    assert r.state.stats()["in_progress"] == 0
    # the timer wakes the expire node: nothing polls for it
    assert r.engine.main.loop_stats()["timers_active"] == 0


def test_timeout_keeps_younger_datagrams(pg_capture):
    r = Reass(pg_capture, timeout=0.2)
    old = fragment(datagram(2000, ident=1), fragsize=600)
    young = fragment(datagram(2000, ident=2), fragsize=600)
    r.send(old[:1])
    r.engine.run(0.12)
    r.send(young[:1])
    r.engine.run(0.12)                                # old expired, young not
    assert r.counts() == {"timeout": 1}
    out = r.send(young[1:] + old[1:])
    assert out == [bytes(datagram(2000, ident=2))]
    r.engine.run(0.35)
    assert r.count("timeout") == 1 + len(old) - 1


def test_engine_close_frees_held_fragments(pg_capture):
    r = Reass(pg_capture)
    r.send(fragment(datagram(5000), fragsize=1000)[:3])
    assert r.state.stats()["buffers_held"] == 3
    # engine_factory's teardown closes the engine and checks for leaks


def test_reassembled_chain_metadata(pg_capture):
    """The head's total_length_not_including_first_buffer matches its chain
    (checked by a Python node behind the reassembly)."""
    from graphnet.vlib.node import python_node
    seen = []

    @python_node("check", next_nodes=["capture"])
    def check(frame):
        for i in range(len(frame)):
            seen.append((frame.length(i), bytes(frame.packet(i))[:20]))
        return 0

    pc = pg_capture(*ip4_reassembly.nodes(next_node="check"), check, first="ip4-reassembly")
    orig = datagram(5000)
    out = pc.send_bytes([bytes(f) for f in fragment(orig, fragsize=1480)], count=4, fix_checksums=False, l3_offset=0)
    assert out == [bytes(orig)]
    assert seen[0][1] == bytes(orig)[:20]


def test_default_next_is_ip4_local_or_null(engine_factory):
    e = engine_factory([ip4_reassembly.NODES]).build()
    assert e.next_names["ip4-reassembly"] == ["null"]


def test_limits_are_checked():
    with pytest.raises(ValueError):
        ip4_reassembly.nodes(max_fragments=0)
    with pytest.raises(ValueError):
        ip4_reassembly.nodes(timeout=0)


def test_trace_shows_fragment_header(reass):
    reass.engine.trace_add("pg-input", 2)
    reass.send(fragment(datagram(2000), fragsize=1000)[:2])
    text = reass.engine.show("trace")
    assert "ip4-reassembly" in text and "flags MF" in text



# --- reassembly timeout: ICMP time exceeded (11/1) through the host graph ----------

PEER_MAC = "02:00:00:00:aa:01"


@pytest.fixture
def host(engine_factory):
    """pg -> the IPv4 host graph (ip4-local -> ip4-reassembly, ip4-icmp-error)
    -> capture interfaces; 10.0.0.1/24 on if0, the peer 10.0.0.2 static,
    reassembly timeout 0.1 s. Teardown: every buffer free or held."""
    from graphnet.testing.ip4 import HostBench
    b = HostBench(engine_factory, ["if0", "if1"])
    b.address("if0", "10.0.0.1/24")
    b.address("if1", "10.1.0.1/24")
    b.neighbors.add("if0", "10.0.0.2", PEER_MAC, static=True)
    ip4_reassembly.reassembly(b.engine).configure(timeout=0.1)
    yield b
    b.check_accounting()


def to_host(frags, dst_mac="02:00:00:00:00:01"):
    return [Ether(src=PEER_MAC, dst=dst_mac) / f for f in frags]


@pytest.mark.parametrize("size,fragsize", [(1000, 400), (3000, 1480)])
def test_reassembly_timeout_sends_time_exceeded_quoting_the_first_fragment(host, size, fragsize):
    """RFC 792 / RFC 1122 s.3.3.2: a datagram for us still incomplete at
    the timeout, whose offset-0 fragment arrived, gets one ICMP time
    exceeded, code 1, from the address it was sent to, back to its source,
    quoting the first fragment as received (IP header and its data: all of
    it, or as much as fits in 576 bytes)."""
    orig = datagram(size, src="10.0.0.2", dst="10.0.0.1", ident=0x4242)
    frags = fragment(orig, fragsize=fragsize)
    assert len(frags) >= 3
    held = frags[1:2] + frags[:1]                     # the last never comes; the first arrives second
    out = host.send("if0", to_host(held))
    assert out == {"if0": [], "if1": []}
    assert ip4_reassembly.reassembly(host.engine).stats()["buffers_held"] == 2
    host.run(0.4)
    out = host.take()
    assert out["if1"] == []
    (e,) = out["if0"]
    first = bytes(frags[0])
    quote = first[:576 - 28]
    assert (e.src, e.dst) == ("02:00:00:00:00:01", PEER_MAC)
    assert (e[IP].src, e[IP].dst, e[IP].proto, e[IP].ttl) == ("10.0.0.1", "10.0.0.2", 1, 64)
    assert (e[ICMP].type, e[ICMP].code) == (11, 1)
    assert e[IP].len == 28 + len(quote)
    raw = bytes(e[IP])[:e[IP].len]
    assert raw[28:] == quote                          # the first fragment's header + (at least 8) data bytes
    q = IP(raw[28:48])
    assert (q.id, q.frag, q.flags.MF, q.src, q.dst) == (0x4242, 0, 1, "10.0.0.2", "10.0.0.1")
    assert raw[48:56] == first[20:28]                 # the UDP header
    assert checksums_ok(raw)
    assert host.count("ip4-reassembly", "timeout") == 2          # each held buffer, once
    assert host.count("ip4-reassembly", "time-exceeded") == 1
    assert host.count("ip4-icmp-error", "sent") == 1
    assert ip4_reassembly.reassembly(host.engine).stats()["in_progress"] == 0
    assert host.engine.buffer_stats()["in_use"] == 0


def test_reassembly_timeout_without_the_first_fragment_sends_nothing(host):
    orig = datagram(3000, src="10.0.0.2", dst="10.0.0.1", ident=0x4343)
    frags = fragment(orig, fragsize=800)
    out = host.send("if0", to_host(frags[1:]))        # everything but offset 0
    host.run(0.4)
    out = host.take()
    assert out == {"if0": [], "if1": []}
    assert host.count("ip4-reassembly", "timeout") == len(frags) - 1
    assert host.count("ip4-reassembly", "time-exceeded") == 0
    assert host.count("ip4-icmp-error", "sent") == 0
    assert host.engine.buffer_stats()["in_use"] == 0


def test_reassembly_time_exceeded_is_rate_limited_and_never_about_an_icmp_error(host):
    from graphnet.nodes import ip4_host
    from scapy.layers.inet import IPerror, UDPerror
    ip4_host.configure_icmp_errors(host.engine, rate=0.001, burst=1)
    firsts = [fragment(datagram(2000, src="10.0.0.2", dst="10.0.0.1", ident=100 + i), fragsize=800)[0]
              for i in range(3)]
    # an ICMP error (port unreachable) that itself arrives in fragments
    err = (IP(src="10.0.0.2", dst="10.0.0.1", id=200) / ICMP(type=3, code=3)
           / IPerror(src="10.0.0.1", dst="10.0.0.2") / UDPerror(sport=7, dport=9) / Raw(bytes(1200)))
    err_first = fragment(err, fragsize=800)[0]
    host.send("if0", to_host([err_first] + firsts))
    host.run(0.4)
    out = host.take()
    assert len(out["if0"]) == 1 and out["if0"][0][ICMP].type == 11
    assert host.count("ip4-reassembly", "time-exceeded") == 4          # handed over ...
    assert host.count("ip4-icmp-error", "icmp-error") == 1            # ... but not about an ICMP error
    assert host.count("ip4-icmp-error", "rate-limited") == 2          # ... and within the rate limit
    assert host.count("ip4-icmp-error", "sent") == 1
    assert host.count("ip4-reassembly", "timeout") == 4
    assert host.engine.buffer_stats()["in_use"] == 0


# --- random fragment sets ------------------------------------------------------

@st.composite
def fragment_sets(draw):
    """Fragments of a few datagrams: random cuts (some not multiples of 8),
    random extra pieces overlapping others, duplicates, shuffled."""
    n_dgrams = draw(st.integers(1, 3))
    out = []
    for ident in range(n_dgrams):
        size = draw(st.integers(1, 3000))
        data = bytes((ident * 31 + i) & 0xff for i in range(size))
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, size - 1)), max_size=6))))
        if draw(st.booleans()):
            cuts = sorted({c & ~7 for c in cuts if c & ~7})
        cuts = sorted(set(cuts) | set(range(1600, size, 1600)))     # every piece fits a pg buffer
        bounds = [0] + [c for c in cuts if c < size] + [size]
        for a, b in zip(bounds, bounds[1:]):
            if a % 8 == 0:
                out.append(raw_fragment(ident, a, data[a:b], b < size))
        for _ in range(draw(st.integers(0, 3))):
            a = draw(st.integers(0, size)) & ~7
            b = draw(st.integers(a, min(size, a + 1600)))
            out.append(raw_fragment(ident, a, data[a:b], draw(st.booleans())))
        if out and draw(st.booleans()):
            out.append(draw(st.sampled_from(out)))
    return draw(st.permutations(out)), n_dgrams


class Model:
    """The reassembly rules of ip4-reassembly's docstring in plain Python:
    (outputs, drop counts) for a sequence of fragments (no timeouts)."""

    def __init__(self, max_fragments, max_datagrams):
        self.maxf, self.maxd = max_fragments, max_datagrams
        self.ctxs = {}
        self.out, self.drops = [], {}

    def _drop(self, code, n=1):
        self.drops[code] = self.drops.get(code, 0) + n

    def _drop_ctx(self, key, code, with_current=True):
        self._drop(code, len(self.ctxs.pop(key)["frags"]) + with_current)

    def feed(self, pkt):
        ip = IP(pkt)
        hlen, total = ip.ihl * 4, ip.len
        if not ip.flags.MF and ip.frag == 0:
            self.out.append(pkt)
            return
        first, plen, mf = ip.frag * 8, total - hlen, bool(ip.flags.MF)
        end = first + plen
        if plen == 0 or (mf and plen % 8):
            return self._drop("malformed")
        key = (ip.src, ip.dst, ip.id, ip.proto)
        c = self.ctxs.get(key)
        if end + 20 > 65535:
            return self._drop_ctx(key, "too-long") if c else self._drop("too-long")
        if c is None:
            if len(self.ctxs) >= self.maxd:                 # the oldest makes room
                self._drop_ctx(next(iter(self.ctxs)), "too-many-datagrams", with_current=False)
            c = self.ctxs[key] = {"frags": [], "last": None, "max_end": 0}
        if (not mf and ((c["last"] is not None and end != c["last"]) or end < c["max_end"])) or \
                (mf and c["last"] is not None and end > c["last"]):
            return self._drop_ctx(key, "inconsistent")
        if any(f[:3] == (first, end, mf) for f in c["frags"]):
            return self._drop("duplicate")
        if any(f[0] < end and first < f[1] for f in c["frags"]):
            return self._drop_ctx(key, "overlap")
        if len(c["frags"]) == self.maxf:
            return self._drop_ctx(key, "too-many-fragments")
        c["frags"].append((first, end, mf, pkt))
        c["max_end"] = max(c["max_end"], end)
        if not mf:
            c["last"] = end
        if c["last"] is not None and sum(f[1] - f[0] for f in c["frags"]) == c["last"]:
            frags = sorted(c["frags"])
            head = IP(frags[0][3])
            data = b"".join(bytes(IP(f[3]).payload)[:f[1] - f[0]] for f in frags)
            del self.ctxs[key]
            head.remove_payload()
            head.flags, head.frag, head.len, head.chksum = 0, 0, None, None
            self.out.append(bytes(head / Raw(data)))


@HSETTINGS
@given(fragment_sets())
def test_random_fragment_sets_match_the_model(pg_capture, case):
    frags, _ = case
    r = Reass(pg_capture, max_fragments=8, max_datagrams=2)
    out = r.send(frags)
    m = Model(8, 2)
    for f in frags:
        m.feed(f)
    assert out == m.out
    assert {k: v for k, v in r.counts().items() if k != "reassembled"} == m.drops
    for symbol in r.counts():
        event(symbol)


@HSETTINGS
@given(fragment_sets())
def test_random_fragment_sets_never_leak_or_corrupt(pg_capture, case):
    frags, _ = case
    r = Reass(pg_capture, max_fragments=8, max_datagrams=2)
    out = r.send(frags)
    for p in out:
        ip = IP(p)
        assert ip.flags == 0 and ip.frag == 0 and len(p) == ip.len
        ident = ip.id
        assert p[20:] == bytes((ident * 31 + i) & 0xff for i in range(len(p) - 20))
        assert IP(bytes(ip)).chksum == ip.chksum
    held = r.state.stats()["buffers_held"]
    # every fragment is captured as part of a datagram, held, or dropped
    stats = r.engine.buffer_stats()
    assert stats["in_use"] == held
    # a piece at 0 without MF is no fragment: it passes through
    passed = sum(1 for f in frags if IP(f).frag == 0 and not IP(f).flags.MF)
    assert r.count("reassembled") == len(out) - passed
    assert r.dropped() + held + r.state.stats()["fragments_reassembled"] + passed == len(frags)


# --- fragmentation -------------------------------------------------------------

from graphnet.nodes import ip4_frag  # noqa: E402


class Frag:
    """pg -> [ip4-reassembly ->] ip4-frag (mtu cap) -> capture."""

    def __init__(self, pg_capture, mtu, *extra, first="ip4-frag", **kw):
        self.pc = pg_capture(*ip4_frag.nodes(next_node="capture", mtu=mtu), *extra, first=first, **kw)
        self.engine = self.pc.engine

    def send(self, packets):
        packets = [bytes(p) for p in packets]
        return self.pc.send_bytes(packets, count=len(packets), fix_checksums=False, l3_offset=0)

    def count(self, symbol):
        return self.engine.error_count("ip4-frag", symbol)


def check_fragments(frags, mtu, orig):
    """Every fragment within the MTU, data at 8-byte multiples, valid
    checksums, and together they make the original again."""
    ips = [IP(f) for f in frags]
    for f, ip in zip(frags, ips):
        assert len(f) <= mtu and ip.len == len(f)
        h = bytearray(f[:ip.ihl * 4])
        h[10:12] = b"\0\0"
        s = sum(struct.unpack(f"!{len(h) // 2}H", h))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        assert ~s & 0xffff == ip.chksum
        if ip.flags.MF:
            assert (len(f) - ip.ihl * 4) % 8 == 0
    offsets = [ip.frag * 8 for ip in ips]
    assert offsets == sorted(offsets)
    whole = defragment([IP(f) for f in frags])
    assert len(whole) == 1
    assert bytes(whole[0]) == bytes(orig)


@pytest.mark.parametrize("mtu", [68, 576, 1280, 1500])
@pytest.mark.parametrize("size", [100, 1473, 2000])
def test_frag_output_reassembles_to_the_original(pg_capture, mtu, size):
    f = Frag(pg_capture, mtu)
    orig = datagram(size, seed=size)
    out = f.send([orig])
    if len(orig) <= mtu:
        assert out == [bytes(orig)] and f.count("fragmented") == 0
        return
    assert len(out) > 1
    check_fragments(out, mtu, orig)
    assert f.count("fragmented") == 1 and f.count("fragments") == len(out)


def test_frag_then_reassembly_round_trip(pg_capture):
    """pg -> ip4-frag -> ip4-reassembly -> capture: the datagram again."""
    pc = pg_capture(*ip4_frag.nodes(next_node="ip4-reassembly", mtu=576),
                    *ip4_reassembly.nodes(next_node="capture"), first="ip4-frag")
    pkts = [bytes(datagram(s, ident=s, seed=s)) for s in (600, 1000, 2000)]
    assert sorted(pc.send_bytes(pkts, count=3, fix_checksums=False, l3_offset=0)) == sorted(pkts)


@pytest.mark.parametrize("size,fragsize,mtu", [(4000, 600, 1500), (20000, 1480, 9000), (9000, 1480, 1400)])
def test_chained_packets_are_fragmented(pg_capture, size, fragsize, mtu):
    """A datagram reassembled into a chain, then cut for another MTU
    (fragments above one buffer are chains too)."""
    f = Frag(pg_capture, mtu, *ip4_reassembly.nodes(next_node="ip4-frag"), first="ip4-reassembly")
    orig = datagram(size, seed=3)
    out = f.send(fragment(orig, fragsize=fragsize))
    check_fragments(out, mtu, orig)


def test_jumbo_fragments_in_chains_reassemble(pg_capture):
    """pg -> ip4-reassembly -> ip4-frag (MTU 9000: fragments are buffer
    chains) -> a second reassembly node -> capture: chained fragments in,
    the datagram out."""
    pc = pg_capture(*ip4_reassembly.nodes(next_node="ip4-frag"), *ip4_frag.nodes(next_node="reass-2", mtu=9000),
                    *ip4_reassembly.nodes(next_node="capture", name="reass-2"), first="ip4-reassembly")
    orig = bytes(datagram(30000, seed=5))
    out = pc.send_bytes([bytes(f) for f in fragment(IP(orig), fragsize=1480)], count=21, fix_checksums=False,
                        l3_offset=0)
    assert out == [orig]
    assert pc.engine.error_count("ip4-frag", "fragments") == 4
    assert pc.engine.error_count("reass-2", "reassembled") == 1
    assert ip4_reassembly.reassembly(pc.engine, "reass-2").stats()["fragments_reassembled"] == 4


def test_df_set_is_not_fragmented(pg_capture):
    f = Frag(pg_capture, 576)
    big_df = datagram(1000, flags="DF")
    small_df = datagram(100, flags="DF")
    assert f.send([big_df, small_df]) == [bytes(small_df)]
    assert f.count("df-set-too-big") == 1 and f.count("fragmented") == 0


def test_df_set_goes_to_ip4_icmp_error_when_present(pg_capture):
    from graphnet.io.capture import Capture
    icmp = Capture(name="ip4-icmp-error")
    f = Frag(pg_capture, 576, icmp)
    assert f.engine.next_names["ip4-frag"] == ["capture", "ip4-icmp-error"]
    big_df = bytes(datagram(1000, flags="DF"))
    assert f.send([big_df]) == []
    assert icmp.packets() == [big_df]                  # as received, for the ICMP error to quote
    # counted once, by the node that ends the packet (ip4-icmp-error when it
    # answers, error-drop when not): this stand-in ends it without counting
    assert f.count("df-set-too-big") == 0


def test_options_copy_flag(pg_capture):
    f = Frag(pg_capture, 300)
    # security (0x82, copied), record route (0x07, not copied), NOP, stream id (0x88, copied)
    opts = b"\x82\x0b" + bytes(9) + b"\x07\x07\x04" + bytes(4) + b"\x01" + b"\x88\x04\x12\x34"
    orig = IP(src="10.0.0.1", dst="10.0.0.2", id=77, options=[Raw(opts)]) / UDP() / Raw(bytes(range(256)) * 3)
    out = f.send([orig])
    check_fragments(out, 300, orig)
    first, rest = IP(out[0]), [IP(p) for p in out[1:]]
    assert bytes(first)[20:first.ihl * 4] == bytes(orig)[20:IP(bytes(orig)).ihl * 4]
    for ip in rest:
        assert bytes(ip)[20:ip.ihl * 4] == b"\x82\x0b" + bytes(9) + b"\x88\x04\x12\x34" + b"\x00"


def test_bad_options_and_mtu_too_small(pg_capture):
    f = Frag(pg_capture, 60)
    bad = bytes(IP(id=1, options=[Raw(b"\x82\x00\x00\x00")]) / Raw(bytes(200)))
    big_header = bytes(IP(id=2, options=[Raw(b"\x82\x0b" + bytes(9) + b"\x00" * 25)]) / Raw(bytes(200)))
    assert f.send([bad, big_header]) == []
    assert f.count("bad-options") == 1 and f.count("mtu-too-small") == 1


def test_a_fragment_is_fragmented_again(pg_capture):
    f = Frag(pg_capture, 576)
    orig = datagram(4000, seed=9)
    middle = [p for p in fragment(orig, fragsize=1480) if p.frag and p.flags.MF][0]
    out = f.send([middle])
    ips = [IP(p) for p in out]
    assert all(ip.flags.MF for ip in ips)           # the original MF carries over
    assert ips[0].frag == middle.frag and bytes(ips[0])[20:] == bytes(middle.payload)[:len(out[0]) - 20]
    assert b"".join(bytes(ip.payload) for ip in ips) == bytes(middle.payload)


def test_malformed_input_to_frag(pg_capture):
    f = Frag(pg_capture, 576)
    good = bytes(datagram(1000))
    assert f.send([good[:10], good[:800], b"\x65" + good[1:]]) == []
    assert f.count("malformed") == 3


def test_no_buffers_mid_packet_frees_what_it_made(pg_capture):
    f = Frag(pg_capture, 28, buffers=128)
    orig = datagram(1900)                             # 240 fragments of 8 bytes
    assert f.send([orig]) == []
    assert f.count("no-buffers") == 1
    assert f.engine.buffer_stats()["in_use"] == 0


def test_frag_trace(pg_capture):
    f = Frag(pg_capture, 576)
    f.engine.trace_add("pg-input", 1)
    f.send([datagram(1000)])
    assert "ip4-frag" in f.engine.show("trace")


@HSETTINGS
@given(size=st.integers(1, 2000), mtu=st.integers(28, 2100), n_opts=st.integers(0, 3), df=st.booleans())
def test_random_fragmentation_round_trips(pg_capture, size, mtu, n_opts, df):
    pc = pg_capture(*ip4_frag.nodes(next_node="capture", mtu=mtu), first="ip4-frag")
    opts = [Raw(b"\x82\x04\x00\x00"), Raw(b"\x07\x07\x04" + bytes(4) + b"\x00"), Raw(b"\x88\x04\x00\x01")][:n_opts]
    orig = IP(src="10.0.0.1", dst="10.0.0.2", id=size, flags="DF" if df else 0, options=opts) / Raw(
        bytes(i & 0xff for i in range(size)))
    raw = bytes(orig)
    out = pc.send_bytes([raw], count=1, fix_checksums=False, l3_offset=0)
    counts = {s: pc.engine.error_count("ip4-frag", s) for s in ("df-set-too-big", "mtu-too-small", "fragmented")}
    if len(raw) <= mtu:
        assert out == [raw]
    elif df:
        assert out == [] and counts["df-set-too-big"] == 1
    elif counts["mtu-too-small"]:
        assert out == [] and mtu < IP(raw).ihl * 4 + 8
    else:
        check_fragments(out, mtu, orig)
    assert pc.engine.buffer_stats()["in_use"] == 0


# --- in the forwarding path ------------------------------------------------------

class Path:
    """pg (if0) -> ethernet-input -> ip4 path (with ip4-frag) -> if1 capture
    with the given MTU."""

    def __init__(self, engine_factory, mtu, extra=()):
        import dataclasses
        from graphnet.io.capture import Capture
        from graphnet.io.pg import PacketGenerator
        from graphnet.nodes import ip4
        self.pg = PacketGenerator(next_node="ethernet-input")
        self.engine = engine_factory([self.pg, ip4.NODES, *extra])
        self.engine.interfaces.add("if0", "capture", None, bytes.fromhex("020000000001"), 1500)
        self.engine.interfaces.add("if1", "capture", None, bytes.fromhex("020000000101"), mtu)
        for i in (0, 1):
            self.engine.interfaces.set_admin_up(i, True)
        self.cap = Capture(name="capture-tx-if1")
        (n,) = self.cap.nodes()
        self.engine.add(dataclasses.replace(n, attach_to=(("interface-output", 1),)))
        ip4.fib(self.engine).add_route("10.0.0.0/8", next_hop_mac="02:00:00:00:01:02", sw_if_index=1)
        self.engine.build()
        self.n = 0

    def send(self, packets):
        from graphnet.io.pg import Stream
        frames = [bytes(Ether(src="02:00:00:00:00:99", dst="02:00:00:00:00:01") / p) for p in packets]
        self.n += 1
        self.pg.add_stream(Stream(f"s{self.n}", frames, count=len(frames), fix_checksums=False))
        self.engine.run_until_idle()
        out = [Ether(p) for p in self.cap.packets()]
        self.cap.clear()
        return out

    def count(self, node, symbol):
        return self.engine.error_count(node, symbol)


def test_forwarding_fragments_to_the_tx_mtu(engine_factory):
    p = Path(engine_factory, mtu=576)
    assert p.engine.next_names["ip4-frag"][0] == "ip4-rewrite"
    assert "ip4-frag" in p.engine.next_names["ip4-rewrite"]
    orig = IP(src="192.168.1.1", dst="10.1.2.3", id=4242, ttl=64) / UDP(sport=1, dport=2) / Raw(bytes(range(256)) * 7)
    out = p.send([orig, IP(src="192.168.1.1", dst="10.1.2.3") / UDP() / Raw(b"small")])
    assert len(out) == 5                              # 1820 bytes in 4 fragments, and the small one
    frags = [e for e in out if e[IP].flags.MF or e[IP].frag]
    assert len(frags) == 4
    for e in out:
        assert e.dst == "02:00:00:00:01:02" and e.src == "02:00:00:00:01:01" and e[IP].ttl == 63
        assert len(e) - 14 <= 576
    expected = orig.copy()
    expected.ttl = 63
    check_fragments([bytes(e[IP]) for e in frags], 576, IP(bytes(expected)))
    assert p.count("ip4-frag", "fragmented") == 1 and p.count("ip4-frag", "fragments") == 4
    assert p.count("ip4-rewrite", "mtu-exceeded") == 0


def test_forwarding_df_set_is_dropped_without_icmp(engine_factory):
    p = Path(engine_factory, mtu=576)
    assert p.send([IP(src="192.168.1.1", dst="10.1.2.3", flags="DF") / UDP() / Raw(bytes(1000))]) == []
    assert p.count("ip4-frag", "df-set-too-big") == 1
    assert p.engine.buffer_stats()["in_use"] == 0


def test_forwarding_df_set_reaches_icmp_error_with_rewrites_reason(engine_factory):
    """With a node named ip4-icmp-error in the graph, DF packets go there
    untouched, with ip4-frag's df-set-too-big as their one reason (which
    the ICMP error node reports as 3/4 and counts as it answers; this
    stand-in counts nothing): not counted here, nor as ip4-rewrite's
    mtu-exceeded (issue 18: it was counted at both)."""
    from graphnet.vlib.node import python_node
    seen = []

    @python_node("ip4-icmp-error", next_nodes=["null"])
    def icmp_error(frame):
        for i in range(len(frame)):
            seen.append(bytes(frame.packet(i)))
        return 0

    p = Path(engine_factory, mtu=576, extra=[icmp_error])
    orig = bytes(IP(src="192.168.1.1", dst="10.1.2.3", flags="DF", ttl=9) / UDP() / Raw(bytes(1000)))
    assert p.send([IP(orig)]) == []
    assert seen == [orig]                              # as received: TTL not decremented
    assert p.count("ip4-frag", "df-set-too-big") == 0 and p.count("ip4-rewrite", "mtu-exceeded") == 0



# --- a real peer (privileged) ----------------------------------------------------

@pytest.mark.privileged(tools=("tshark",))
@pytest.mark.parametrize("size", [4000, 20000])
def test_kernel_ping_with_fragments_gets_replies(engine_factory, tmp_path, size):
    """The kernel's ping -s N (fragmented at its MTU of 1500) to graphnet
    over a TAP in a namespace made for the test: graphnet reassembles the
    request, answers, and fragments the reply; tshark, capturing on the
    kernel side, finds every reply, no malformed packet and no bad IPv4 or
    ICMP checksum."""
    import shutil
    import subprocess
    import time
    import uuid
    from graphnet.io import host
    from graphnet.io.tap import TapDevice
    from graphnet.nodes import ip4_host
    name = f"gnf{uuid.uuid4().hex[:7]}"
    pcap = tmp_path / "ping.pcap"
    with host.temporary_netns("gn-frag") as ns:
        eng = engine_factory([ip4_host.NODES], buffers=8192)
        tap = TapDevice(eng, name, netns=ns, host_address="10.213.0.1/24")
        eng.add(tap)
        eng.build()
        ip4_host.set_interface_address(eng, name, "10.213.0.2/24")
        shark = None
        if shutil.which("tshark"):
            shark = host.popen_in_netns(ns, ["tshark", "-q", "-i", name, "-w", str(pcap)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (pcap.exists() and pcap.stat().st_size > 0):
                time.sleep(0.05)
        eng.start()
        try:
            r = host.run_in_netns(ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", str(size), "10.213.0.2"],
                                  capture_output=True, text=True, timeout=30)
        finally:
            eng.stop()
            if shark is not None:
                time.sleep(0.3)
                shark.terminate()
                shark.wait(10)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "3 received" in r.stdout
        assert eng.error_count("ip4-reassembly", "reassembled") == 3
        assert eng.error_count("ip4-frag", "fragmented") == 3
        eng.close()
    if shark is not None:
        def read(display_filter):
            out = subprocess.run(["tshark", "-r", str(pcap), "-o", "ip.check_checksum:TRUE",
                                  "-Y", display_filter], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            return [line for line in out.stdout.splitlines() if line.strip()]
        assert len(read("icmp.type == 0")) == 3                 # reassembled by tshark
        assert len(read("ip.src == 10.213.0.2 and ip.flags.mf == 1")) >= 3 * (size // 1480)
        assert read('_ws.malformed or ip.checksum.status == "Bad" or icmp.checksum.status == "Bad" '
                    'or _ws.expert.severity >= "warning"') == []
