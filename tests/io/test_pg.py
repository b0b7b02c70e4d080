"""Packet generator: templates, edits (incrementing, random), checksums,
count and rate limits, pcap streams, argument checking."""
import ipaddress

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from graphnet.io.pg import Edit, PacketGenerator, Stream, ETHERNET_IP4_FIELDS
from graphnet.testing import udp_packet, udp_packets


def test_template_sent_unchanged(pg_capture):
    t = pg_capture()
    pkt = udp_packet(payload=b"hello")
    got = t.send([pkt], count=3)
    assert [bytes(p) for p in got] == [bytes(pkt)] * 3


def test_templates_round_robin(pg_capture):
    t = pg_capture()
    pkts = udp_packets(3)
    got = t.send_bytes(pkts, count=8)
    assert got == [bytes(pkts[i % 3]) for i in range(8)]


def test_ip4_src_increments_and_wraps(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet()], count=7, edits=[Edit.field("ip4.src", "10.0.0.254", "10.0.1.1")])
    assert [p[IP].src for p in got] == ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1",
                                        "10.0.0.254", "10.0.0.255", "10.0.1.0"]


def test_udp_dport_increments_across_frames(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet()], count=600, edits=[Edit.field("udp.dport", 1000, 1499)])
    assert [p[UDP].dport for p in got] == [1000 + i % 500 for i in range(600)]


def test_two_edits_advance_together(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet()], count=5, edits=[Edit.field("udp.sport", 1, 2), Edit.field("ip4.ttl", 10, 14)])
    assert [(p[UDP].sport, p[IP].ttl) for p in got] == [(1, 10), (2, 11), (1, 12), (2, 13), (1, 14)]


def test_edit_by_offset_one_byte_wraps_at_max(pg_capture):
    t = pg_capture()
    got = t.send_bytes([bytes(64)], count=4, fix_checksums=False, edits=[Edit(63, 1, 254, 255)])
    assert [p[63] for p in got] == [254, 255, 254, 255]


def test_full_range_four_byte_edit_wraps_to_min(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet()], count=3, edits=[Edit.field("ip4.dst", "255.255.255.254", "255.255.255.255")])
    assert [p[IP].dst for p in got] == ["255.255.255.254", "255.255.255.255", "255.255.255.254"]


def test_random_fields_stay_in_range(pg_capture):
    t = pg_capture()
    lo, hi = int(ipaddress.IPv4Address("192.168.1.10")), int(ipaddress.IPv4Address("192.168.1.20"))
    got = t.send_bytes([udp_packet()], count=2000, edits=[
        Edit.field("ip4.src", "192.168.1.10", "192.168.1.20", mode="random"),
        Edit.field("udp.dport", 5000, 5003, mode="random"),
        Edit.field("ip4.tos", 7, 7, mode="random")])
    # raw offsets (see ETHERNET_IP4_FIELDS); Scapy decodes a sample below
    srcs = [int.from_bytes(p[26:30], "big") for p in got]
    dports = [int.from_bytes(p[36:38], "big") for p in got]
    assert len(got) == 2000
    assert all(lo <= s <= hi for s in srcs)
    assert set(dports) == {5000, 5001, 5002, 5003}          # all values drawn ...
    assert len(set(srcs)) == 11                             # ... over 2000 packets
    assert {p[15] for p in got} == {7}                      # a one-value range is constant
    for p in got[:20]:
        sp = Ether(p)
        assert lo <= int(ipaddress.IPv4Address(sp[IP].src)) <= hi and 5000 <= sp[UDP].dport <= 5003


def test_random_full_width(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet()], count=200, edits=[Edit.field("ip4.id", 0, 0xffff, mode="random")])
    ids = {p[IP].id for p in got}
    assert len(ids) > 150                                   # spread over the whole range


def test_random_is_seeded(pg_capture):
    t = pg_capture()
    edits = [Edit.field("udp.sport", 0, 0xffff, mode="random")]
    a = t.send([udp_packet()], count=50, edits=edits, seed=42)
    b = t.send([udp_packet()], count=50, edits=[Edit.field("udp.sport", 0, 0xffff, mode="random")], seed=42)
    c = t.send([udp_packet()], count=50, edits=[Edit.field("udp.sport", 0, 0xffff, mode="random")], seed=43)
    assert [p.sport for p in a] == [p.sport for p in b] != [p.sport for p in c]


def recomputed(pkt):
    """The same packet with Scapy computing both checksums."""
    p = Ether(bytes(pkt))
    del p[IP].chksum
    del p[UDP].chksum
    return Ether(bytes(p))


def test_checksums_fixed_after_edits(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet(payload=b"checksum me")], count=120, edits=[
        Edit.field("ip4.src", "10.1.0.1", "10.1.0.200"),
        Edit.field("udp.dport", 0, 0xffff, mode="random"),
        Edit.field("ip4.ttl", 1, 255, mode="random")])
    for p in got:
        ref = recomputed(p)
        assert p[IP].chksum == ref[IP].chksum
        assert p[UDP].chksum == ref[UDP].chksum
    assert len({p[IP].chksum for p in got}) > 60            # they really changed


def test_checksums_left_alone_when_asked(pg_capture):
    t = pg_capture()
    got = t.send([udp_packet()], count=3, fix_checksums=False, edits=[Edit.field("ip4.src", "1.1.1.1", "1.1.1.3")])
    orig = udp_packet()
    assert all(p[IP].chksum == orig.__class__(bytes(orig))[IP].chksum for p in got)
    assert recomputed(got[1])[IP].chksum != got[1][IP].chksum


@pytest.mark.parametrize("count", [1, 255, 256, 257, 1000])
def test_count_limit_exact(pg_capture, count):
    t = pg_capture()
    got = t.send_bytes([udp_packet()], count=count)
    assert len(got) == count
    assert t.pg.stats() == {"stream-0": count}
    t.engine.run(0.02)                                      # nothing more comes
    assert len(t.capture) == count


def test_count_zero_stream_is_disabled_until_enabled(pg_capture):
    t = pg_capture()
    t.add_stream([udp_packet()], name="s", count=0)
    t.engine.run_until_idle()
    assert len(t.capture) == 0
    t.pg.enable("s")
    t.engine.run(0.02)                                      # count 0 = no limit once enabled
    assert len(t.capture) > 0


def test_enable_restarts_a_finished_stream(pg_capture):
    t = pg_capture()
    t.send([udp_packet()], name="s", count=10)
    t.pg.enable("s")
    t.engine.run_until_idle()
    assert len(t.capture) == 20
    with pytest.raises(KeyError, match="no stream named 'nope'"):
        t.pg.enable("nope")


def test_streams_are_independent(pg_capture):
    t = pg_capture()
    t.add_stream([udp_packet(dport=1)], count=300)
    t.add_stream([udp_packet(dport=2)], count=40)
    t.engine.run_until_idle()
    got = t.capture.scapy()
    assert sum(p[UDP].dport == 1 for p in got) == 300
    assert sum(p[UDP].dport == 2 for p in got) == 40
    assert t.pg.stats() == {"stream-0": 300, "stream-1": 40}


def test_sw_if_index_is_set(pg_capture):
    t = pg_capture()
    t.add_stream([udp_packet()], count=2, sw_if_index=5)
    t.engine.run_until_idle()
    assert [(rx, tx) for _, rx, tx in t.capture.records()] == [(5, 0xffffffff)] * 2


@pytest.mark.parametrize("state", ["polling", "interrupt"])
def test_rate_limit_roughly_respected(pg_capture, state):
    t = pg_capture(pg_state=state)
    t.add_stream([udp_packet()], rate=1000)
    t.engine.run(0.3)
    n = len(t.capture)
    assert 150 <= n <= 450, n


def test_rate_limited_stream_with_count_finishes(pg_capture):
    t = pg_capture(pg_state="interrupt")
    t.add_stream([udp_packet()], rate=2000, count=50)
    t.engine.run_until_idle(timeout=5)         # waits for a stream with work left
    assert len(t.capture) == 50
    assert t.engine.main.loop_stats()["timers_active"] == 0


def test_slow_stream_in_interrupt_mode_lets_the_loop_sleep(pg_capture):
    # regression: an interrupt-mode input with more work to do later (a
    # rated stream waiting on its timer) kept the loop from sleeping, so it
    # spun millions of empty iterations between packets
    t = pg_capture(pg_state="interrupt")
    t.engine.main.set_busy_poll(0)     # the wait between packets, not the window after one (test_scheduler)
    t.add_stream([udp_packet()], rate=50)
    loops0 = t.engine.main.loop_stats()["loops"]
    t.engine.run(0.2)
    loops = t.engine.main.loop_stats()["loops"] - loops0
    assert 5 <= len(t.capture) <= 15
    # a sleep before each packet but the first (sent at once), and the run
    # may end inside the last one: at least len - 2 (spinning gives ~0)
    assert t.engine.main.loop_stats()["sleeps"] >= len(t.capture) - 2
    assert loops < 20 * len(t.capture) + 20, loops


@pytest.mark.parametrize("rate", [900, 5000])
def test_fast_rated_stream_in_interrupt_mode_waits_on_timer(pg_capture, rate):
    # regression: a wait shorter than one timer tick (1 ms) re-raised the
    # interrupt at once, so streams of ~1000 pps and more spun the loop
    # (hundreds of thousands of empty iterations) between packets
    t = pg_capture(pg_state="interrupt")
    t.engine.main.set_busy_poll(0)     # the wait between packets, not the window after one (test_scheduler)
    t.add_stream([udp_packet()], rate=rate)
    loops0 = t.engine.main.loop_stats()["loops"]
    t.engine.run(0.2)
    loops = t.engine.main.loop_stats()["loops"] - loops0
    assert 0.5 * 0.2 * rate <= len(t.capture) <= 1.5 * 0.2 * rate
    assert loops < 3000, loops                  # about a few per 1 ms tick


def test_from_pcap(pg_capture, tmp_path):
    pkts = [udp_packet(dport=100 + i, payload=b"p" * i) for i in range(5)]
    path = tmp_path / "in.pcap"
    wrpcap(str(path), pkts)
    s = Stream.from_pcap("replay", path, count=5)
    assert s.packets == [bytes(p) for p in pkts]
    t = pg_capture()
    t.pg.add_stream(s)
    t.engine.run_until_idle()
    assert t.capture.packets() == [bytes(p) for p in pkts]


def test_no_buffers_counted_and_retried(pg_capture):
    t = pg_capture(buffers=300)
    held = t.engine.main.cache.alloc(250)          # leave 50 buffers for pg
    assert len(held) == 250
    got = t.send_bytes(udp_packets(600), count=600)
    assert got == [bytes(p) for p in udp_packets(600)]     # all sent, in order, 50 at a time
    assert t.engine.error_count("pg-input", "no-buffers") > 0
    calls = t.engine.main.node_counters()[t.engine.node_index("capture")]["calls"]
    assert calls == 12
    t.engine.main.cache.free(held)


def test_trace_record_names_stream_and_decodes(pg_capture):
    t = pg_capture()
    t.engine.trace_add("pg-input", 1)
    t.send([udp_packet(src="10.9.9.9", dst="10.8.8.8", sport=11, dport=22)], count=1, name="probe")
    text = t.engine.show("trace")
    assert "stream probe, " in text
    assert "UDP: 10.9.9.9 -> 10.8.8.8" in text and "UDP: 11 -> 22" in text


# --- argument checking ------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    (dict(offset=0, size=3), "edit size must be 1, 2 or 4 bytes, not 3"),
    (dict(offset=0, size=2, mode="up"), "edit mode must be 'inc' or 'random', not 'up'"),
    (dict(offset=0, size=1, min=0, max=256), r"edit range \[0, 256\] does not fit 1 bytes"),
    (dict(offset=0, size=2, min=5, max=4), r"edit range \[5, 4\] does not fit 2 bytes"),
    (dict(offset=0, size=2, min=-1, max=4), r"edit range \[-1, 4\]"),
    (dict(offset=2047, size=2), "edit offset 2047 is outside a buffer"),
    (dict(offset=-1, size=1), "edit offset -1 is outside a buffer"),
])
def test_bad_edit_args(kw, message):
    with pytest.raises(ValueError, match=message):
        Edit(**kw)


def test_bad_edit_field():
    with pytest.raises(ValueError, match="unknown field 'ip6.src'; known: .*ip4.src"):
        Edit.field("ip6.src", 0, 1)
    with pytest.raises(ValueError):
        Edit.field("ip4.src", "10.0.0.9", "10.0.0.1")          # min > max
    assert set(ETHERNET_IP4_FIELDS) >= {"ip4.src", "ip4.dst", "udp.sport", "udp.dport"}


@pytest.mark.parametrize("kw, message", [
    (dict(packets=[]), "stream 's' has no packets"),
    (dict(packets=[b""]), "a packet of 0 bytes does not fit"),
    (dict(packets=[bytes(2049)]), "a packet of 2049 bytes does not fit one 2048-byte buffer"),
    (dict(packets=[b"x"], count=-1), "count must be >= 0"),
    (dict(packets=[b"x"], rate=0), "rate must be > 0 packets/s"),
    (dict(packets=[b"x"], rate=-5), "rate must be > 0 packets/s"),
    (dict(packets=[b"x"], edits=[Edit(0, 1)] * 9), "at most 8 edits per stream"),
])
def test_bad_stream_args(kw, message):
    with pytest.raises(ValueError, match=message):
        Stream("s", **kw)


def test_duplicate_stream_name(pg_capture):
    t = pg_capture()
    t.add_stream([b"x" * 60], name="s", count=1)
    with pytest.raises(ValueError, match="stream 's' exists"):
        t.add_stream([b"x" * 60], name="s", count=1)
    t.engine.run_until_idle()


def test_stream_before_build(engine_factory):
    from graphnet.io.capture import Capture
    pg = PacketGenerator(next_node="capture")
    cap = Capture()
    pg.add_stream(Stream("early", [udp_packet()], count=3))
    e = engine_factory([pg, cap])
    e.run_until_idle()
    assert len(cap) == 3


def test_edit_max_defaults_to_the_field_width():
    # regression: max defaulted to 0xffffffff, so Edit(offset, 1) or
    # Edit(offset, 2) without an explicit max was always rejected
    assert Edit(0, 1).max == 0xff
    assert Edit(0, 2).max == 0xffff
    assert Edit(0, 4).max == 0xffffffff
    assert Edit(0, 2, 7).min == 7


def test_udp_packets_helper_matches_scapy():
    pkts = udp_packets(300, dport=99, payload=b"+tail")
    for i in (0, 1, 255, 299):
        assert pkts[i] == bytes(udp_packet(dport=99, payload=b"pkt-%06d+tail" % i, ip_id=i))
        ref = recomputed(pkts[i])
        assert Ether(pkts[i])[IP].chksum == ref[IP].chksum and Ether(pkts[i])[UDP].chksum == ref[UDP].chksum


def test_capture_limit_counts_overflow_and_frees(pg_capture):
    t = pg_capture(capture_limit=100)
    got = t.send_bytes(udp_packets(300), count=300)
    assert got == udp_packets(100)                          # the first 100 are kept
    assert t.engine.error_count("capture", "overflow") == 200
    t.capture.clear()
    assert len(t.capture) == 0 and t.capture.packets() == []
