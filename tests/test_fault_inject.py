"""fault-inject: drop, corrupt, duplicate and reorder at configured rates,
per interface and direction, seeded (the same seed, the same faults) and
counted; every buffer accounted for (the engine fixture's leak check)."""
import struct

import pytest

from graphnet.io.pg import Edit
from graphnet.nodes.fault_inject import ERRORS, fault_inject, parse_faults


def run(pg_capture, udp_packet, n=500, sw_if_index=0, direction="rx", **rates):
    node, ctl = fault_inject("fault-inject", "capture", direction)
    t = pg_capture(node, first="fault-inject")
    seed = rates.pop("seed", 1)
    ctl.set(seed=seed, **rates)
    got = t.send_bytes([udp_packet()], count=n, sw_if_index=sw_if_index, edits=[Edit.field("udp.dport", 1, n)])
    return t, ctl, [struct.unpack_from("!H", p, 36)[0] for p in got], got


def errors(t):
    return {row[0]: t.engine.error_count("fault-inject", row[0]) for row in ERRORS[1:]}


def test_no_rates_pass_everything_in_order(pg_capture, udp_packet):
    t, ctl, ports, _ = run(pg_capture, udp_packet)
    assert ports == list(range(1, 501))
    assert set(errors(t).values()) == {0}


def test_drop_rate_seeded_and_counted(pg_capture, udp_packet):
    t, ctl, ports, _ = run(pg_capture, udp_packet, n=2000, drop=0.3, seed=7)
    assert 2000 * 0.3 - 120 < 2000 - len(ports) < 2000 * 0.3 + 120
    assert errors(t).get("dropped") == 2000 - len(ports)
    _, _, again, _ = run(pg_capture, udp_packet, n=2000, drop=0.3, seed=7)
    _, _, other, _ = run(pg_capture, udp_packet, n=2000, drop=0.3, seed=8)
    assert again == ports and other != ports


def test_duplicate_every_packet(pg_capture, udp_packet):
    t, ctl, ports, got = run(pg_capture, udp_packet, n=300, duplicate=1.0)
    assert ports == [p for i in range(1, 301) for p in (i, i)]
    assert all(bytes(got[2 * i]) == bytes(got[2 * i + 1]) for i in range(300))
    assert errors(t).get("duplicated") == 300


def test_reorder_swaps_with_the_next_packet(pg_capture, udp_packet):
    t, ctl, ports, _ = run(pg_capture, udp_packet, n=256, reorder=1.0)
    assert sorted(ports) == list(range(1, 257)) and ports != sorted(ports)
    assert ports[:4] == [2, 1, 4, 3]


def test_corrupt_flips_one_bit(pg_capture, udp_packet):
    t, ctl, ports, got = run(pg_capture, udp_packet, n=50, corrupt=1.0)
    _, _, _, clean = run(pg_capture, udp_packet, n=50)
    assert len(got) == len(clean) == 50
    for b, ref in zip(got, clean):
        assert sum(bin(x ^ y).count("1") for x, y in zip(b, ref)) == 1
    assert errors(t).get("corrupted") == 50


def test_rates_per_interface_and_direction(pg_capture, udp_packet):
    node, ctl = fault_inject("fault-inject", "capture", "rx")
    t = pg_capture(node, first="fault-inject")
    ctl.set(3, drop=1.0)
    assert len(t.send([udp_packet()], count=20, sw_if_index=3)) == 0
    assert len(t.send([udp_packet()], count=20, sw_if_index=4)) == 20      # the default: nothing
    node, ctl = fault_inject("fault-inject", "capture", "tx")              # keyed on sw_if_index[TX]
    t = pg_capture(node, first="fault-inject")
    ctl.set(3, drop=1.0)
    assert len(t.send([udp_packet()], count=20, sw_if_index=3)) == 20
    assert ctl.rates(3) == {"drop": 1.0, "corrupt": 0.0, "duplicate": 0.0, "reorder": 0.0}


def test_parse_faults():
    assert parse_faults("drop 5% duplicate 0.5% seed 3") == {"drop": 0.05, "duplicate": 0.005, "seed": 3}
    for bad, msg in (("drop 5", "a rate like"), ("delay 5%", "unknown fault"), ("drop", "needs a value"),
                     ("drop 120%", "0-100%")):
        with pytest.raises(ValueError, match=msg):
            parse_faults(bad)
