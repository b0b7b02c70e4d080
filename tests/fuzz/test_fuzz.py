"""graphnet.fuzz: the short profile of every family (about 20,000 frames
each) through the whole IPv4 host graph, with the runner's checks after
every batch; the generator's reproducibility and checksum mix; and the
checks themselves, which must catch a leak, an unnamed drop, a ledger hole,
a crash and a hang. The 1 M profile is ``make fuzz`` (``graphnet fuzz
all``)."""
import json
import os
import signal
import struct
import time

import pytest

from graphnet.fuzz import runner
from graphnet.fuzz.gen import FAMILIES
from graphnet.wire.inet import inet_sum
from graphnet.vlib.buffer import BufferCache

SHORT = int(os.environ.get("GRAPHNET_FUZZ_FRAMES", "20000"))
SEED = int(os.environ.get("GRAPHNET_FUZZ_SEED", "20261203"))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_short_profile(family):
    res = runner.run_family(family, SHORT, SEED, batch=5000)
    assert res["failures"] == [], runner.format_result(res)
    assert res["leaked_buffers"] == 0
    assert res["frames"] == SHORT
    assert res["not_reached"] == [], f"{family} reached only {sorted(res['nodes'])}"
    led = res["ledger"]
    assert led["injected"] + led["created"] == led["out"] + led["dropped"] + led["consumed"] + led["held"]


def _frames(family, seed, n):
    g = runner.FuzzGraph(family, seed)
    try:
        return g.input.frames(n)
    finally:
        g.close()


def test_a_pool_run_dry_is_reported_and_every_frame_still_sent():
    """All but 64 buffers hoarded (as a flood held by reassembly would):
    the batch stalls, a ``no-buffers`` failure says who holds what, the run
    waits (the hoard is freed when it does) and sends every frame; the
    ledger and the buffer checks hold."""
    g = runner.FuzzGraph("udp", SEED, buffers=1024)
    cache = BufferCache(g.engine.pool)
    hoard = cache.alloc(1024 - 64)
    run = g.engine.run

    def wait(seconds):
        cache.free(hoard)
        cache.flush()
        hoard.clear()
        return run(seconds)
    g.engine.run = wait
    res = runner.run_family("udp", 4000, SEED, batch=2000, graph=g, recover_seconds=0.1)
    assert [f["kind"] for f in res["failures"]] == ["no-buffers"], runner.format_result(res)
    assert "in use" in res["failures"][0]["detail"]
    assert res["frames"] == 4000 and res["leaked_buffers"] == 0
    assert res["generator"]["no_buffers"] == 1


def test_generator_is_reproducible():
    a = _frames("frag", 7, 300)
    assert a == _frames("frag", 7, 300)
    assert a != _frames("frag", 8, 300)


def _ip_checksum_ok(frame):
    ip = frame[14:]
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != 0x0800 or ip[0] >> 4 != 4:
        return None
    hlen = (ip[0] & 15) * 4
    if hlen < 20 or len(ip) < hlen:
        return None
    return inet_sum(ip[:hlen]) == 0xffff


@pytest.mark.parametrize("family", ["ip4", "icmp", "udp", "frag"])
def test_most_checksums_fixed_a_few_broken(family):
    oks = [ok for ok in map(_ip_checksum_ok, _frames(family, 3, 4000)) if ok is not None]
    good = sum(oks) / len(oks)
    assert 0.85 < good < 0.995, good


def test_loop_guard_removes_the_echo_loop_case():
    """With the guard, no UDP frame from one of our addresses (or a
    broadcast) has source port 7; without it, some have."""
    ours = {bytes(map(int, a.split("/")[0].split("."))) for a in runner.ADDRESSES}

    def looping(frames):
        n = 0
        for f in frames:
            ip = f[14:]
            if (len(f) >= 42 and f[12:14] == b"\x08\x00" and ip[9] == 17 and (ip[0] & 15) == 5
                    and ip[12:16] in ours and ip[20:22] == b"\x00\x07" and not (ip[6] & 0x1f or ip[7])):
                n += 1
        return n

    g = runner.FuzzGraph("udp", 5)
    unguarded = runner.FuzzGraph("udp", 5, loop_guard=False)
    try:
        assert looping(g.input.frames(20000)) == 0
        assert g.input.stats()["guarded"] > 0
        assert looping(unguarded.input.frames(20000)) > 0
    finally:
        g.close()
        unguarded.close()


# --- the checks catch what they are for ------------------------------------------------------

def _one_batch(family="udp", n=2000):
    g = runner.FuzzGraph(family, 11)
    a = g.snapshot()
    g.input.start(n)
    g.engine.run_until_idle()
    return g, a


def test_check_batch_passes_a_clean_batch():
    g, a = _one_batch()
    try:
        assert runner.check_batch(g, a, g.snapshot()) == []
    finally:
        g.close()


def test_check_batch_catches_a_leaked_buffer():
    g, a = _one_batch()
    try:
        cache = BufferCache(g.engine.pool)
        leaked = cache.alloc(1)
        kinds = [k for k, _ in runner.check_batch(g, a, g.snapshot())]
        assert "buffers" in kinds
        cache.free(leaked)
        cache.flush()
        cache = None
    finally:
        g.close()


def test_check_batch_catches_an_unnamed_drop_and_a_ledger_hole():
    g, a = _one_batch()
    try:
        # a packet counted as dropped under error-drop's "none": no reason given
        g.engine.main.add_error(g.engine.error_base["error-drop"], 1)
        # ip4-frag claims a fragment nobody saw: the ledger no longer balances
        g.engine.main.add_error(g.engine.error_base["ip4-frag"] + 2, 1)
        kinds = [k for k, _ in runner.check_batch(g, a, g.snapshot())]
        assert "unnamed-drop" in kinds and "ledger" in kinds
    finally:
        g.close()


def test_check_output_flags_a_bad_checksum_from_us():
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    mac = bytes.fromhex("020000000001")
    good = bytes(Ether(src="02:00:00:00:00:01") / IP(src="10.10.0.2", dst="10.10.0.1", ttl=64) / ICMP(type=0))
    assert runner.check_output(good, mac) is None
    bad = bytearray(good)
    bad[-1] ^= 0xff                             # the ICMP checksum
    assert "ICMP checksum" in runner.check_output(bytes(bad), mac)
    assert "source MAC" in runner.check_output(good, bytes(6))


def test_isolated_run_reports_a_crash_with_its_seed(monkeypatch):
    def crash(family, frames, seed, *, batch, progress, **kw):
        progress(1)
        progress(2)
        import faulthandler
        faulthandler.disable()                  # pytest's would print the child's stack
        os.kill(os.getpid(), signal.SIGSEGV)
    monkeypatch.setattr(runner, "run_family", crash)
    res = runner.run_isolated("icmp", 50000, 42, batch=1000)
    (f,) = res["failures"]
    assert f["kind"] == "crash" and "SIGSEGV" in f["detail"]
    assert f["reproduce"] == "graphnet fuzz icmp --seed 42 --frames 3000 --batch 1000"


def test_isolated_run_ends_a_hang(monkeypatch):
    def hang(family, frames, seed, *, batch, progress, **kw):
        time.sleep(60)
    monkeypatch.setattr(runner, "run_family", hang)
    t = time.monotonic()
    res = runner.run_isolated("udp", 1000, 1, hang_seconds=0.5)
    assert time.monotonic() - t < 10
    assert res["failures"][0]["kind"] == "hang"


def _touch(n):
    b = bytearray(n)
    for i in range(0, n, 4096):
        b[i] = 1
    return b


def test_memory_watchdog_counts_growth_not_the_callers_memory():
    """The child starts with the caller's resident memory (fork): a big
    caller (a long pytest run) must not look like a runaway child."""
    hog = _touch(300 << 20)
    res = runner.run_isolated("udp", 2000, 3, batch=1000, max_rss=200 << 20)
    assert res["failures"] == [] and res["frames"] == 2000
    del hog


def test_memory_watchdog_ends_a_runaway_child(monkeypatch):
    def grow(family, frames, seed, *, batch, progress, **kw):
        progress(1)
        keep = _touch(400 << 20)
        time.sleep(30)
        return keep
    monkeypatch.setattr(runner, "run_family", grow)
    t = time.monotonic()
    res = runner.run_isolated("arp", 5000, 3, batch=1000, max_rss=100 << 20)
    assert time.monotonic() - t < 20
    (f,) = res["failures"]
    assert f["kind"] == "memory" and f["batch"] == 1


def test_cli_fuzz_json(capsys):
    from graphnet.cli.main import main
    assert main(["fuzz", "udp", "--frames", "3000", "--batch", "1000", "--seed", "9", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("family", "frames", "frames_per_s", "failures", "leaked_buffers", "nodes"):
        assert key in res
    assert res["family"] == "udp" and res["frames"] == 3000 and res["failures"] == [] and res["leaked_buffers"] == 0
    assert res["nodes"]["udp4-input"] > 0


def test_cli_fuzz_unknown_family(capsys):
    from graphnet.cli.main import main
    assert main(["fuzz", "udpp"]) == 1
    assert "did you mean 'udp'" in capsys.readouterr().err
