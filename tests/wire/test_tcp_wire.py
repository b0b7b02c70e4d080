"""graphnet.wire.tcp: header and option bytes against Scapy, option parsing
of hostile bytes (never past the end: guard page), the checksum with the
IPv4 pseudo header, the formatter."""
import struct

import pytest
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import IP, TCP

from graphnet.wire import tcp as wt

SRC, DST = 0x0A000001, 0x0A000002        # 10.0.0.1 -> 10.0.0.2


def scapy_segment(**kw):
    """The TCP bytes Scapy builds (checksum over 10.0.0.1 -> 10.0.0.2)."""
    payload = kw.pop("payload", b"")
    pkt = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(**kw) / payload
    return bytes(pkt)[20:]


def test_syn_header_and_options_match_scapy_golden_bytes():
    ours = wt.build_header(40000, 80, 1000, 0, wt.SYN, 64240,
                           {"mss": 1460, "sack_permitted": True, "timestamp": (12345, 0), "wscale": 7},
                           syn_layout=True, src=SRC, dst=DST)
    ref = scapy_segment(sport=40000, dport=80, seq=1000, ack=0, flags="S", window=64240,
                        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None),
                                 ("WScale", 7)])
    assert ours == ref
    assert len(ours) == 40                 # 20 bytes of Linux-layout options


def test_syn_without_timestamps_pads_sack_permitted_with_nops():
    ours = wt.write_options({"mss": 1400, "sack_permitted": True, "wscale": 2}, syn=True)
    assert ours == bytes([2, 4, 0x05, 0x78, 1, 1, 4, 2, 1, 3, 3, 2])


def test_data_segment_with_timestamps_and_sack_matches_scapy():
    blocks = [(5000, 6000), (7000, 7500), (9000, 9100)]
    ours = wt.build_header(80, 40000, 2001, 1001, wt.ACK | wt.PSH, 501,
                           {"timestamp": (7, 12345), "sack": blocks}, payload=b"hello", src=SRC, dst=DST)
    ref = scapy_segment(sport=80, dport=40000, seq=2001, ack=1001, flags="PA", window=501,
                        options=[("NOP", None), ("NOP", None), ("Timestamp", (7, 12345)), ("NOP", None),
                                 ("NOP", None), ("SAck", (5000, 6000, 7000, 7500, 9000, 9100))],
                        payload=b"hello")
    assert ours == ref


def test_sack_blocks_limited_by_option_space():
    four = [(i * 100, i * 100 + 50) for i in range(4)]
    with_ts = wt.write_options({"timestamp": (1, 2), "sack": four})
    assert len(with_ts) == 40 and with_ts[15] == 2 + 3 * 8          # 3 blocks fit beside timestamps
    without = wt.write_options({"sack": four})
    assert len(without) == 36 and without[3] == 2 + 4 * 8
    assert wt.parse_options(without) == ("none", {"sack": four})


def test_checksum_matches_scapy_and_verifies():
    seg = scapy_segment(sport=1, dport=2, seq=3, ack=4, flags="A", window=5, payload=b"odd!x")
    assert wt.checksum(SRC, DST, seg) == struct.unpack_from("!H", seg, 16)[0]
    assert wt.checksum_ok(SRC, DST, seg)
    bad = bytearray(seg)
    bad[-1] ^= 1
    assert not wt.checksum_ok(SRC, DST, bad)
    assert not wt.checksum_ok(SRC, DST + 1, seg)            # pseudo header counts


def test_parse_options_of_a_scapy_syn():
    seg = scapy_segment(flags="S", options=[("MSS", 8960), ("NOP", None), ("WScale", 20), ("SAckOK", b""),
                                            ("Timestamp", (0xffffffff, 1)), ("EOL", None)])
    hlen = (seg[12] >> 4) * 4
    err, opts = wt.parse_options(seg[20:hlen])
    assert err == "none"
    assert opts == {"mss": 8960, "wscale": 14, "sack_permitted": True, "timestamp": (0xffffffff, 1)}


def test_validate_header_lengths():
    seg = scapy_segment(flags="S", options=[("MSS", 1460)])
    assert wt.validate(seg) == "none"
    assert wt.validate(seg[:19]) == "too-short"
    assert wt.validate(seg[:23]) == "truncated"
    short_doff = bytearray(seg)
    short_doff[12] = 4 << 4
    assert wt.validate(short_doff) == "bad-data-offset"


@pytest.mark.parametrize("opts, err", [
    (b"\x02", "bad-option-length"),                # kind with no length byte
    (b"\x02\x00\x05\xb4", "bad-option-length"),    # length 0
    (b"\x02\x01\x05\xb4", "bad-option-length"),    # length 1
    (b"\x01\x01\x08\x0a\x00\x00", "bad-option-length"),   # timestamp past the end
    (b"\x02\x03\x05\x00", "bad-option"),           # MSS of length 3
    (b"\x03\x04\x07\x00", "bad-option"),           # window scale of length 4
    (b"\x05\x0b" + bytes(9), "bad-option"),        # SACK of 9 body bytes
    (b"\x05\x02\x01\x01", "bad-option"),           # SACK without a block
    (b"\xfe\x04\xaa\xbb\x02\x04\x05\xb4", "none"),  # unknown kind skipped
    (b"\x00\x02", "none"),                         # EOL ends the list
])
def test_malformed_options_rejected(opts, err):
    assert wt.parse_options_guarded(opts)[0] == err


def test_unknown_option_skipped_keeps_the_rest():
    assert wt.parse_options(b"\xfe\x04\xaa\xbb\x02\x04\x05\xb4") == ("none", {"mss": 1460})


def reference_parse(b):
    """An independent model of the parser's rules (the oracle)."""
    out, i = {}, 0
    fixed = {2: 4, 3: 3, 4: 2, 8: 10}
    while i < len(b):
        kind = b[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(b):
            return "bad-option-length", {}
        k = b[i + 1]
        if k < 2 or i + k > len(b):
            return "bad-option-length", {}
        body = b[i + 2:i + k]
        if kind in fixed and k != fixed[kind]:
            return "bad-option", {}
        if kind == 5 and (k < 10 or (k - 2) % 8):
            return "bad-option", {}
        if kind == 2:
            out["mss"] = struct.unpack("!H", body)[0]
        elif kind == 3:
            out["wscale"] = min(body[0], 14)
        elif kind == 4:
            out["sack_permitted"] = True
        elif kind == 8:
            out["timestamp"] = struct.unpack("!II", body)
        elif kind == 5:
            blocks = out.setdefault("sack", [])
            for j in range(0, len(body), 8):
                if len(blocks) < 4:
                    blocks.append(struct.unpack_from("!II", body, j))
        i += k
    return "none", out


option_bytes = st.one_of(
    st.binary(max_size=40),
    # mostly well-formed pieces with an occasional lie in a length byte
    st.lists(st.sampled_from([b"\x01", b"\x00", b"\x02\x04\x05\xb4", b"\x03\x03\x07", b"\x04\x02",
                              b"\x08\x0a" + bytes(range(8)), b"\x05\x0a" + bytes(8), b"\x05\x12" + bytes(16),
                              b"\x02", b"\x05", b"\x08\x0a", b"\xfd\x03\x00", b"\x02\x00", b"\x13\x01"]),
             max_size=10).map(b"".join),
)


@settings(max_examples=600, deadline=None)
@given(option_bytes)
def test_random_option_bytes_parse_in_bounds_and_as_the_model_says(b):
    # the bytes end at a guard page: an overread would crash the test run
    err, opts = wt.parse_options_guarded(b)
    ref_err, ref_opts = reference_parse(b)
    assert err == ref_err
    if err == "none":
        assert {k: (list(map(tuple, v)) if k == "sack" else tuple(v) if k == "timestamp" else v)
                for k, v in opts.items()} == ref_opts


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), min_size=1, max_size=3),
       st.binary(max_size=64))
def test_written_options_read_back_by_scapy(tsval, tsecr, blocks, payload):
    seg = wt.build_header(1, 2, 3, 4, wt.ACK, 5, {"timestamp": (tsval, tsecr), "sack": blocks},
                          payload=payload, src=SRC, dst=DST)
    pkt = TCP(seg)
    opts = dict((k, v) for k, v in pkt.options if k != "NOP")
    assert opts["Timestamp"] == (tsval, tsecr)
    assert list(opts["SAck"]) == [x for blk in blocks for x in blk]
    assert bytes(pkt.payload) == payload
    assert wt.checksum_ok(SRC, DST, seg)


def test_format_header():
    seg = wt.build_header(40000, 80, 1000, 0, wt.SYN, 64240,
                          {"mss": 1460, "sack_permitted": True, "timestamp": (7, 0), "wscale": 7},
                          syn_layout=True, src=SRC, dst=DST)
    text = wt.format_tcp_header(seg, src=SRC, dst=DST)
    assert text.splitlines()[0].startswith("TCP: 40000 -> 80 flags [S] seq 1000 win 64240 csum 0x")
    assert text.splitlines()[0].endswith("(ok)")
    assert text.splitlines()[1] == "  options [mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 7]"
    ack = wt.build_header(80, 40000, 5, 1001, wt.ACK | wt.FIN, 10, {"sack": [(1, 2)]}, payload=b"xy")
    lines = wt.format_tcp_header(ack).splitlines()
    assert "flags [F.] seq 5 ack 1001 win 10" in lines[0]
    assert lines[1] == "  options [nop,nop,sack 1 {1:2}]" and lines[2] == "  payload 2 bytes"
    assert "truncated" in wt.format_tcp_header(b"\x00" * 7)
    assert "bad-length" in wt.format_options(b"\x02\x09\x00")
