"""pcap: capture of rx / tx / drop to standard pcap files, and the pcap
interface kind (replay a file as input, write output to a file).

Files are checked three ways: read back with Scapy, with graphnet's own
reader, and with tshark (no errors, no malformed packets). No privileges
needed: the packets come from pcap interfaces and the packet generator.
Every engine is closed and leak-checked by engine_factory.
"""
import json
import os
import shutil
import stat
import struct
import subprocess
import time

import pytest

from graphnet.cli.registry import CommandError, execute
from graphnet.io.capture import Capture
from graphnet.io.pcap import (PcapDevice, PcapFileError, PcapTrace, default_pcap_dir, pcap_trace_command, read_pcap,
                              write_pcap, PCAP_MAGIC_NS, PCAP_MAGIC_US)
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.testing.helpers import wait_for
from graphnet.testing.packets import udp_packet, udp_packets
from graphnet.vlib.buffer import BUFFER_STRIDE
from graphnet.vlib.node import PythonNode

TSHARK = shutil.which("tshark")


def tshark_lengths(path):
    """frame.len of every packet as tshark reads the file; asserts it had
    nothing to complain about."""
    if TSHARK is None:
        pytest.skip("tshark is not installed")
    r = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "_ws.malformed",
                        "-e", "_ws.expert.severity"], capture_output=True, text=True, timeout=60)
    err = "\n".join(line for line in r.stderr.splitlines() if "Running as user" not in line)
    assert r.returncode == 0 and not err.strip(), err
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert all(len(row) < 2 or not row[1] for row in rows), "tshark found malformed packets"
    return [int(row[0]) for row in rows]


def scapy_read(path):
    from scapy.utils import rdpcap
    return [bytes(p) for p in rdpcap(str(path))]


def packets(n, **kw):
    return [bytes(p) for p in udp_packets(n, **kw)]


class Split(PythonNode):
    """Even packets to next 0, odd ones dropped (error 'odd')."""
    name = "split"
    errors = (("odd", "warn", "odd packet"),)

    def __init__(self, next_node):
        self.next_nodes = (next_node,)

    def process(self, frame):
        for i in range(len(frame)):
            if bytes(frame.packet(i))[-1] % 2:
                frame.drop(i, "odd")
        return None


def numbered(n):
    """UDP packets whose last byte is their number (so Split can tell)."""
    return [bytes(udp_packet(payload=b"pkt-%05d" % i + bytes([i & 0xff]), ip_id=i)) for i in range(n)]


def replay_engine(engine_factory, tmp_path, pkts, *, split=False, **dev_kw):
    """in0 (replaying pkts) -> [split ->] out0 (a pcap file)."""
    eng = engine_factory()
    write_pcap(tmp_path / "in.pcap", pkts)
    out = PcapDevice(eng, "out0", output_path=tmp_path / "out.pcap")
    nxt = "split" if split else out.output_node
    src = PcapDevice(eng, "in0", input_path=tmp_path / "in.pcap", next_node=nxt, **dev_kw)
    eng.add([out, src] + ([Split(out.output_node)] if split else []))
    eng.build()
    return eng, src, out


# --- the pcap interface ----------------------------------------------------------------

@pytest.mark.tools("tshark")
def test_output_read_back_equals_what_was_sent(engine_factory, tmp_path):
    eng = engine_factory()
    out = PcapDevice(eng, "out0", output_path=tmp_path / "out.pcap")
    sent = packets(500) + [bytes(udp_packet(payload=bytes(1400)))]
    pg = PacketGenerator(next_node=out.output_node)
    eng.add([out, pg])
    eng.build()
    pg.add_stream(Stream("s", sent, count=len(sent), fix_checksums=False))
    eng.run_until_idle()
    out.flush()
    assert scapy_read(tmp_path / "out.pcap") == sent
    assert [p for _, p in read_pcap(tmp_path / "out.pcap")] == sent
    assert tshark_lengths(tmp_path / "out.pcap") == [len(p) for p in sent]
    info = eng.interfaces.info("out0")
    assert info["tx_packets"] == len(sent) and info["tx_bytes"] == sum(map(len, sent))


def test_output_file_is_complete_after_engine_close(engine_factory, tmp_path):
    eng = engine_factory()
    out = PcapDevice(eng, "out0", output_path=tmp_path / "out.pcap", nanosecond=True)
    sent = packets(10)
    pg = PacketGenerator(next_node=out.output_node)
    eng.add([out, pg])
    eng.build()
    pg.add_stream(Stream("s", sent, count=len(sent), fix_checksums=False))
    eng.run_until_idle()
    eng.close()
    data = (tmp_path / "out.pcap").read_bytes()
    assert struct.unpack_from("=I", data)[0] == PCAP_MAGIC_NS
    assert scapy_read(tmp_path / "out.pcap") == sent
    ts = [t for t, _ in read_pcap(tmp_path / "out.pcap")]
    assert all(abs(t - time.time()) < 60 for t in ts)


def test_replay_equals_file_content(engine_factory, tmp_path):
    pkts = packets(700) + [bytes(udp_packet(payload=bytes(range(256)) * 20))]      # a 5 KB frame: a chain
    eng = engine_factory()
    write_pcap(tmp_path / "in.pcap", pkts)
    cap = Capture("capture")
    src = PcapDevice(eng, "in0", input_path=tmp_path / "in.pcap", next_node="capture")
    eng.add([cap, src])
    eng.build()
    eng.run_until_idle()
    assert cap.packets() == pkts
    assert all(rx == src.sw_if_index for _, rx, _ in cap.records())
    assert not eng.main.node_counters()[eng.node_index(src.input_node)]["has_more_work"]
    info = eng.interfaces.info("in0")
    assert info["rx_packets"] == len(pkts) and info["rx_bytes"] == sum(map(len, pkts))
    assert "0 left" in eng.show("hardware")


@pytest.mark.parametrize("rx_mode", ["polling", "interrupt", "adaptive"])
def test_replay_modes_and_repeat(engine_factory, tmp_path, rx_mode):
    pkts = packets(300)
    eng = engine_factory()
    write_pcap(tmp_path / "in.pcap", pkts)
    cap = Capture("capture")
    src = PcapDevice(eng, "in0", input_path=tmp_path / "in.pcap", next_node="capture", rx_mode=rx_mode, repeat=3)
    eng.add([cap, src])
    eng.run_until_idle()
    assert cap.packets() == pkts * 3


def test_replay_reads_pcaps_written_by_others(engine_factory, tmp_path):
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapWriter, wrpcap
    pkts = packets(20)
    wrpcap(str(tmp_path / "scapy.pcap"), [Ether(p) for p in pkts])
    w = PcapWriter(str(tmp_path / "ns.pcap"), nano=True, endianness=">", linktype=1)
    for p in pkts:
        w.write(Ether(p))
    w.close()
    assert (tmp_path / "ns.pcap").read_bytes()[:4] == bytes.fromhex("a1b23c4d")       # big endian, ns
    for name in ("scapy.pcap", "ns.pcap"):
        assert [p for _, p in read_pcap(tmp_path / name)] == pkts


def test_replay_drops_short_and_too_big(engine_factory, tmp_path):
    pkts = [b"\x01" * 10] + packets(3) + [bytes(udp_packet(payload=bytes(3000)))]
    eng = engine_factory()
    write_pcap(tmp_path / "in.pcap", pkts)
    cap = Capture("capture")
    src = PcapDevice(eng, "in0", input_path=tmp_path / "in.pcap", next_node="capture", mtu=1500)
    eng.add([cap, src])
    eng.run_until_idle()
    assert cap.packets() == pkts[1:4]
    assert eng.error_count(src.input_node, "short-frame") == 1
    assert eng.error_count(src.input_node, "too-big") == 1
    assert eng.interfaces.info("in0")["rx_drops"] == 2


def test_bad_files_are_clear_errors(engine_factory, tmp_path):
    from graphnet.io.device import DeviceError
    eng = engine_factory()
    with pytest.raises(DeviceError, match="cannot read pcap file"):
        PcapDevice(eng, "a", input_path=tmp_path / "missing.pcap")
    (tmp_path / "junk.pcap").write_bytes(b"not a pcap file at all, really")
    with pytest.raises(DeviceError, match="not a pcap file"):
        PcapDevice(eng, "b", input_path=tmp_path / "junk.pcap")
    (tmp_path / "raw.pcap").write_bytes(struct.pack("=IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, 65535, 101))
    with pytest.raises(DeviceError, match="only Ethernet"):
        PcapDevice(eng, "c", input_path=tmp_path / "raw.pcap")


# --- pcap trace rx / tx / drop ------------------------------------------------------------

@pytest.mark.parametrize("kinds", [("rx",), ("tx",), ("drop",), ("rx", "tx", "drop"), ("tx", "drop")])
@pytest.mark.tools("tshark")
def test_trace_filters(engine_factory, tmp_path, kinds):
    pkts = numbered(300)
    eng, src, out = replay_engine(engine_factory, tmp_path, pkts, split=True)
    t = PcapTrace(eng)
    path = t.start(rx="rx" in kinds, tx="tx" in kinds, drop="drop" in kinds, max_packets=0,
                   path=tmp_path / "trace.pcap")
    eng.run_until_idle()
    assert t.stop() == path == str(tmp_path / "trace.pcap")
    even = [p for p in pkts if p[-1] % 2 == 0]
    odd = [p for p in pkts if p[-1] % 2]
    expect = (pkts if "rx" in kinds else []) + (even if "tx" in kinds else []) + (odd if "drop" in kinds else [])
    got = scapy_read(path)
    assert sorted(got) == sorted(expect)
    assert tshark_lengths(path) == [len(p) for p in got]
    st = t.status()
    assert st["captured"] == len(expect) and not st["active"]
    assert (st["rx"], st["tx"], st["drop"]) == (len(pkts) if "rx" in kinds else 0, len(even) if "tx" in kinds else 0,
                                                len(odd) if "drop" in kinds else 0)
    assert eng.error_count("split", "odd") == len(odd)            # capture does not change counting


@pytest.mark.tools("tshark")
def test_trace_max_packets_respected(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(1000), split=True)
    t = PcapTrace(eng)
    path = t.start(max_packets=77, path=tmp_path / "trace.pcap")
    eng.run_until_idle()
    st = t.status()
    assert st["done"] and not st["active"] and st["captured"] == 77
    assert len(scapy_read(path)) == 77            # complete even before stop()
    t.stop()
    assert len(tshark_lengths(path)) == 77


@pytest.mark.tools("tshark")
def test_trace_snaplen_nanoseconds_and_interface_filter(engine_factory, tmp_path):
    eng = engine_factory()
    a, b = packets(30, src="10.0.0.1"), packets(40, src="10.0.0.9")
    write_pcap(tmp_path / "a.pcap", a)
    write_pcap(tmp_path / "b.pcap", b)
    out = PcapDevice(eng, "out0")
    ia = PcapDevice(eng, "ina", input_path=tmp_path / "a.pcap", next_node=out.output_node)
    ib = PcapDevice(eng, "inb", input_path=tmp_path / "b.pcap", next_node=out.output_node)
    eng.add([out, ia, ib])
    eng.build()
    t = PcapTrace(eng)
    path = t.start(rx=True, tx=False, drop=False, interface="inb", snaplen=34, nanosecond=True,
                   path=tmp_path / "t.pcap")
    eng.run_until_idle()
    t.stop()
    data = (tmp_path / "t.pcap").read_bytes()
    assert struct.unpack_from("=I", data)[0] == PCAP_MAGIC_NS
    recs = read_pcap(path)
    assert [p for _, p in recs] == [p[:34] for p in b]
    assert all(abs(ts - time.time()) < 60 for ts, _ in recs)
    assert tshark_lengths(path) == [len(p) for p in b]             # frame.len is the original length


def test_trace_drop_records_the_whole_frame(engine_factory, tmp_path):
    """A node that advanced current_data past the Ethernet header and then
    dropped the packet: the drop capture starts at the Ethernet header."""
    pkts = packets(5)
    eng = engine_factory()
    write_pcap(tmp_path / "in.pcap", pkts)

    class AdvanceAndDrop(PythonNode):
        name = "advance-drop"
        errors = (("bad", "error", "dropped after advancing"),)

        def process(self, frame):
            arena = eng.pool.arena
            for i, bi in enumerate(frame.buffer_indices):
                cd, cl = struct.unpack_from("<hH", arena, bi * BUFFER_STRIDE)
                struct.pack_into("<hH", arena, bi * BUFFER_STRIDE, cd + 14, cl - 14)
                frame.drop(i, "bad")

    src = PcapDevice(eng, "in0", input_path=tmp_path / "in.pcap", next_node="advance-drop")
    eng.add([src, AdvanceAndDrop()])
    eng.build()
    t = PcapTrace(eng)
    path = t.start(rx=False, tx=False, drop=True, path=tmp_path / "d.pcap")
    eng.run_until_idle()
    t.stop()
    assert scapy_read(path) == pkts
    assert eng.error_count("advance-drop", "bad") == 5


def test_trace_from_a_running_engine_and_off(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(100), split=True, rx_mode="interrupt")
    pcap_trace_command(eng, ["rx", "max", "1000", "file", str(tmp_path / "x.pcap")])
    eng.start()
    deadline = time.monotonic() + 5
    while PcapTrace(eng).status()["captured"] < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    text = pcap_trace_command(eng, ["off"])
    eng.stop()
    assert text == f"Wrote 100 packets to {tmp_path / 'x.pcap'}"
    assert len(scapy_read(tmp_path / "x.pcap")) == 100


@pytest.mark.tools("tshark")
def test_cli_command(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(50), split=True)
    assert pcap_trace_command(eng, ["status"]) == "pcap capture: off"
    text = pcap_trace_command(eng, ["rx", "drop", "max", "10", "file", str(tmp_path / "c.pcap")])
    assert text == (f"pcap capture of rx drop started: {tmp_path / 'c.pcap'}, 0 packets so far "
                    f"(written out every second; `show pcap` for the count)")
    assert "rx drop to" in pcap_trace_command(eng, ["status"])
    eng.run_until_idle()
    assert "max reached" in pcap_trace_command(eng, ["status"])
    assert pcap_trace_command(eng, ["off"]) == f"Wrote 10 packets to {tmp_path / 'c.pcap'}"
    assert len(tshark_lengths(tmp_path / "c.pcap")) == 10
    with pytest.raises(ValueError, match="choose at least one"):
        pcap_trace_command(eng, ["max", "5"])
    with pytest.raises(ValueError, match="unexpected 'bogus'"):
        pcap_trace_command(eng, ["rx", "bogus"])
    with pytest.raises(ValueError, match="max takes a number"):
        pcap_trace_command(eng, ["rx", "max", "many"])


def test_capture_off_adds_nothing(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(10))
    eng.run_until_idle()
    st = PcapTrace(eng).status()
    assert st["path"] is None and st["captured"] == 0 and not st["active"]


# --- a safe writer (issue 9 defect 4) -------------------------------------------------------

def test_a_symbolic_link_is_never_followed(engine_factory, tmp_path):
    """A link planted where the capture goes (as a local user could in a
    shared directory) is refused, with and without overwrite, and the file
    it points to is untouched; a dangling link creates nothing."""
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (tmp_path / "link.pcap").symlink_to(victim)
    for overwrite in (False, True):
        with pytest.raises(PcapFileError, match=r"link\.pcap is a symbolic link; refusing to follow it$"):
            PcapTrace(eng).start(path=tmp_path / "link.pcap", overwrite=overwrite)
    assert victim.read_bytes() == b"precious\n"
    (tmp_path / "dangling.pcap").symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(PcapFileError, match="symbolic link"):
        PcapTrace(eng).start(path=tmp_path / "dangling.pcap", overwrite=True)
    assert not (tmp_path / "created-through-the-link").exists()
    assert not PcapTrace(eng).status()["active"]


def test_the_file_is_0600_and_an_existing_one_needs_overwrite(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    f = tmp_path / "c.pcap"
    PcapTrace(eng).start(path=f)
    eng.run_until_idle()
    PcapTrace(eng).stop()
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert len(read_pcap(f)) == 6
    with pytest.raises(PcapFileError, match=r"c\.pcap exists; add 'overwrite' to replace it"):
        PcapTrace(eng).start(path=f)
    assert len(read_pcap(f)) == 6                       # refused: not truncated
    f.chmod(0o644)
    PcapTrace(eng).start(path=f, overwrite=True)
    PcapTrace(eng).stop()
    assert f.stat().st_size == 24 and stat.S_IMODE(f.stat().st_mode) == 0o600    # replaced: a new header only


def test_overwrite_replaces_only_a_pcap_file_of_ours_with_one_link(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    with pytest.raises(PcapFileError, match="is not a pcap file; refusing to overwrite it"):
        PcapTrace(eng).start(path=text, overwrite=True)
    assert text.read_text() == "not a capture\n"
    write_pcap(tmp_path / "a.pcap", numbered(1))
    os.link(tmp_path / "a.pcap", tmp_path / "b.pcap")
    with pytest.raises(PcapFileError, match="has 2 hard links"):
        PcapTrace(eng).start(path=tmp_path / "a.pcap", overwrite=True)
    os.mkfifo(tmp_path / "fifo.pcap")
    with pytest.raises(PcapFileError, match="is not a regular file"):
        PcapTrace(eng).start(path=tmp_path / "fifo.pcap", overwrite=True)
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs.pcap"
        write_pcap(theirs, numbered(1))
        os.chown(theirs, 65534, 65534)
        with pytest.raises(PcapFileError, match=r"belongs to another user \(uid 65534\)"):
            PcapTrace(eng).start(path=theirs, overwrite=True)


def test_cli_overwrite_word_and_one_line_errors(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    f = tmp_path / "o.pcap"
    write_pcap(f, numbered(9))
    with pytest.raises(CommandError) as ei:
        execute(eng, f"pcap trace rx file {f}")
    assert str(ei.value) == f"pcap trace: {f} exists; add 'overwrite' to replace it, or choose another file"
    assert execute(eng, f"pcap trace rx file {f} overwrite").startswith(f"pcap capture of rx started: {f}")
    eng.run_until_idle()
    assert execute(eng, "pcap trace off") == f"Wrote 3 packets to {f}"
    with pytest.raises(CommandError) as ei:
        execute(eng, "pcap trace rx file /proc/graphnet-no-such-dir/x.pcap")
    assert str(ei.value) == "pcap trace: cannot create /proc/graphnet-no-such-dir/x.pcap: No such file or directory"


def test_a_bare_name_goes_to_a_private_0700_directory(engine_factory, tmp_path, monkeypatch):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    d = tmp_path / "run" / "pcap"
    monkeypatch.setenv("GRAPHNET_PCAP_DIR", str(d))
    path = PcapTrace(eng).start(path="b.pcap")
    assert path == str(d / "b.pcap")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    eng.run_until_idle()
    PcapTrace(eng).stop()
    assert len(read_pcap(path)) == 6
    assert PcapTrace(eng).start() == str(d / "graphnet-rx-tx-drop.pcap")      # the default name, same place
    PcapTrace(eng).stop()
    d.chmod(0o777)                                       # another user could swap our file for a link
    with pytest.raises(PcapFileError, match=r"pcap directory .* is writable by everyone \(mode 0777\)"):
        PcapTrace(eng).start(path="c.pcap")
    d.chmod(0o700)
    if os.geteuid() == 0:
        os.chown(d, 65534, 65534)
        with pytest.raises(PcapFileError, match=r"belongs to another user \(uid 65534\)"):
            PcapTrace(eng).start(path="c.pcap")


def test_default_pcap_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("GRAPHNET_PCAP_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_pcap_dir() == "/run/graphnet/pcap"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_pcap_dir() == str(tmp_path / "graphnet" / "pcap")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_pcap_dir() == f"/tmp/graphnet-{os.getuid()}/pcap"


# --- readable while capturing (issue 11 item 3, issue 18 item 3) -------------------------------

def test_the_file_is_readable_within_a_second_while_capturing(engine_factory, tmp_path):
    """Three pings used to leave a 24-byte file until `pcap trace off`: now
    the loop's timer flushes it at least once a second (no status call
    here, which would flush by itself)."""
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(5), rx_mode="interrupt")
    f = tmp_path / "live.pcap"
    PcapTrace(eng).start(rx=True, tx=False, drop=False, path=f)
    eng.start()                                          # replays the 5 packets at once
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(read_pcap(f)) < 5:
        time.sleep(0.05)
    got = read_pcap(f)
    assert [p for _, p in got] == numbered(5)
    if TSHARK:
        assert tshark_lengths(f) == [len(p) for p in numbered(5)]
    assert PcapTrace(eng).status()["active"]             # still capturing
    PcapTrace(eng).stop()
    eng.stop()


def test_show_pcap_flushes_and_says_where_and_how_many(engine_factory, tmp_path):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(4))
    f = tmp_path / "s.pcap"
    execute(eng, f"pcap trace rx tx file {f}")
    eng.run_until_idle()
    assert f.stat().st_size == 24                        # still in memory: no timer ran
    text = execute(eng, "show pcap")
    assert text == (f"pcap capture: rx tx to {f}: 8 packets in the file so far, max 10000 "
                    f"(rx 4, tx 4, drop 0)")
    assert len(read_pcap(f)) == 8
    st = json.loads(execute(eng, "show pcap --json"))
    assert (st["path"], st["captured"], st["kinds"], st["active"]) == (str(f), 8, ["rx", "tx"], True)
    execute(eng, "pcap trace off")
    assert execute(eng, "show pcap") == f"pcap capture: off (8 packets in {f})"


def test_the_flush_timer_runs_only_while_a_capture_runs(engine_factory, tmp_path):
    """pcap-flush arms no timer without a capture (an idle engine sleeps),
    one while capturing, and none again once the capture is off."""
    eng = engine_factory()
    timers = lambda: eng.call(eng.main.loop_stats)["timers_active"]     # noqa: E731
    eng.start()
    time.sleep(0.2)
    assert timers() == 0
    PcapTrace(eng).start(path=tmp_path / "t.pcap")
    assert wait_for(lambda: timers() == 1, 2)
    PcapTrace(eng).stop()
    assert wait_for(lambda: timers() == 0, 3)
    eng.stop()


@pytest.mark.privileged(tun=False)
def test_a_link_of_another_user_on_the_way_is_not_followed(engine_factory, tmp_path):
    """O_NOFOLLOW covers the last component only: a user who owns a
    directory on the way (their home) could point it at /etc and have
    root create files there. Links of another user are refused anywhere
    on the path; links of root or ours are followed."""
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    home = tmp_path / "home"
    home.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (home / "captures").symlink_to(target)
    os.chown(home / "captures", 65534, 65534, follow_symlinks=False)
    with pytest.raises(PcapFileError, match=r"'captures' in .* is a symbolic link of another user \(uid 65534\)"):
        PcapTrace(eng).start(path=home / "captures" / "x.pcap")
    assert list(target.iterdir()) == []
    os.chown(home / "captures", 0, 0, follow_symlinks=False)            # root's own link: followed
    path = PcapTrace(eng).start(path=home / "captures" / "x.pcap")
    PcapTrace(eng).stop()
    assert path == str(home / "captures" / "x.pcap") and (target / "x.pcap").stat().st_size == 24
    with pytest.raises(PcapFileError, match="does not name a file"):
        PcapTrace(eng).start(path=str(home) + "/..")


def test_relative_and_linked_directories_of_our_own_work(engine_factory, tmp_path, monkeypatch):
    eng, src, out = replay_engine(engine_factory, tmp_path, numbered(3))
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to("real")                    # relative target, our own link
    monkeypatch.chdir(tmp_path)
    PcapTrace(eng).start(path="via/../via/r.pcap")
    eng.run_until_idle()
    PcapTrace(eng).stop()
    assert len(read_pcap(tmp_path / "real" / "r.pcap")) == 6
    with pytest.raises(PcapFileError, match="cannot create nowhere/r.pcap: No such file or directory"):
        PcapTrace(eng).start(path="nowhere/r.pcap")
