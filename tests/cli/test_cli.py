"""The command registry, the VPP-style commands, the control socket and the
``graphnet`` program (run / ctl / graph / config / bench).

Every test that runs an engine drains it and checks that no buffer leaked.
Subprocess tests use their own socket path, are bounded in time, and only
ever kill the processes they started.
"""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from graphnet import Engine
from graphnet.cli import control
from graphnet.cli.control import ControlError, ControlServer, NoEngineError, send_command
from graphnet.cli.main import main
from graphnet.cli.registry import CommandError, Registry, UsageError, execute
from graphnet.io.pg import PacketGenerator, Stream
from graphnet.cli import templates
from graphnet.testing.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


def make_engine(count=20, rate=None, state="polling"):
    """pg-input -> null with one UDP stream of `count` packets."""
    pg = PacketGenerator(name="pg-input", next_node="null", state=state)
    pg.add_stream(Stream("s0", [templates.build("udp")], count=count, rate=rate))
    return Engine([pg.nodes()], buffers=2048)


def drained(engine):
    """Stop, switch off every pg stream, run to idle, and report the buffers
    still in use."""
    engine.stop()
    for n in engine.nodes:
        if isinstance(n.instance, PacketGenerator):
            for name in n.instance.stats():
                n.instance.enable(name, False)
    engine.run_until_idle(5)
    in_use = engine.buffer_stats()["in_use"]
    engine.close()
    return in_use


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="gncli-")          # short: AF_UNIX paths are <= 107 bytes
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def runtime_row(text, node):
    """(calls, vectors) of a node in show runtime text."""
    for line in text.splitlines():
        if line.startswith(node + " "):
            nums = re.findall(r"\d+(?:\.\d+)?(?:e[+-]\d+)?", line[32:])
            return int(nums[0]), int(nums[1])
    return None


# --- registry and commands --------------------------------------------------------------

def test_show_runtime_counts_packets_and_abbreviations_match():
    e = make_engine(count=20)
    e.run_until_idle()
    full = execute(e, "show runtime")
    assert runtime_row(full, "null")[1] == 20
    assert runtime_row(full, "pg-input")[1] == 20
    assert runtime_row(execute(e, "sh run"), "null")[1] == 20      # vppctl-style prefixes
    execute(e, "clear runtime")
    assert runtime_row(execute(e, "show runtime"), "null") is None   # zero rows are hidden
    assert runtime_row(execute(e, "show runtime all"), "null") == (0, 0)
    assert drained(e) == 0


def test_unknown_command_names_it_and_suggests():
    e = make_engine()
    with pytest.raises(CommandError) as ei:
        execute(e, "show runtim3")
    assert "'show runtim3'" in str(ei.value) and "show runtime" in str(ei.value)
    with pytest.raises(CommandError) as ei:
        execute(e, "shwo errors")
    assert "show errors" in str(ei.value)
    with pytest.raises(CommandError, match="ambiguous"):
        execute(e, "s runtime")
    assert drained(e) == 0


def test_bad_arguments_give_usage_and_change_nothing():
    e = make_engine()
    for line, usage in [("show runtime bogus", "usage: show runtime [all]"),
                        ("trace add pg-input many", "usage: trace add <input-node> <n>"),
                        ("trace add pg-input", "usage: trace add <input-node> <n>"),
                        ("show trace max -1", "usage: show trace [max <n>]"),
                        ("set node state pg-input fast", "usage: set node state"),
                        ("show node", "usage: show node <name>"),
                        ("clear errors now", "usage: clear errors")]:
        with pytest.raises(UsageError) as ei:
            execute(e, line)
        assert usage in str(ei.value), line
    assert "polling" in execute(e, "show node pg-input").splitlines()[0]
    assert drained(e) == 0


def test_engine_errors_become_command_errors():
    e = make_engine()
    with pytest.raises(CommandError, match="no node named 'nul' .*did you mean 'null'"):
        execute(e, "show node nul")
    with pytest.raises(CommandError, match="not an input node"):
        execute(e, "set node state null polling")
    with pytest.raises(CommandError, match="input node"):
        execute(e, "trace add null 3")
    assert drained(e) == 0


def test_trace_add_show_and_clear():
    e = make_engine(count=5)
    execute(e, "trace add pg-input 3")
    e.run_until_idle()
    out = execute(e, "show trace")
    assert out.count("Packet ") == 3
    assert "pg-input" in out and "null" in out
    assert execute(e, "show trace max 1").count("Packet ") == 1
    execute(e, "clear trace")
    assert execute(e, "show trace") == "No packets in trace buffer"
    assert drained(e) == 0


def test_set_node_state_and_graph_commands():
    e = make_engine()
    execute(e, "set node state pg-input interrupt")
    assert "interrupt" in execute(e, "show node pg-input").splitlines()[0]
    execute(e, "set node state pg-input adaptive")
    assert "adaptive" in execute(e, "show node pg-input").splitlines()[0]
    execute(e, "set node state pg-input disabled")
    assert "disabled" in execute(e, "show node pg-input").splitlines()[0]
    assert re.search(r"pg-input\s+input\s+\[0\] null", execute(e, "show graph"))
    dot = execute(e, "show graph dot")
    assert dot.startswith("digraph") and '"pg-input" -> "null"' in dot
    assert "graphnet " in execute(e, "show version")
    assert "Total" in execute(e, "show buffers")
    assert "Name" in execute(e, "show interface")
    with pytest.raises(UsageError, match="usage: show hardware"):
        execute(e, "show hardware a b")
    assert drained(e) == 0


def test_errors_commands():
    e = make_engine()
    e.run_until_idle()
    assert "no-buffers" not in execute(e, "show errors")
    assert "packet generator could not allocate" in execute(e, "show errors all")
    assert execute(e, "clear errors") == ""
    assert drained(e) == 0


def test_packet_generator_commands():
    e = make_engine(count=10)
    e.run_until_idle()
    assert re.search(r"s0\s+pg-input\s+10", execute(e, "show packet-generator"))
    execute(e, "packet-generator enable-stream s0")         # starts its count again
    e.run_until_idle()
    assert runtime_row(execute(e, "show runtime"), "null")[1] == 20
    with pytest.raises(UsageError, match="no stream named 'nope'"):
        execute(e, "packet-generator disable-stream nope")
    assert drained(e) == 0


def test_pcap_trace_command(tmp_path):
    e = make_engine(count=0)
    assert execute(e, "pcap trace status") == "pcap capture: off"
    out = execute(e, f"pcap trace rx drop max 3 file {tmp_path / 'x.pcap'}")
    assert out.startswith(f"pcap capture of rx drop started: {tmp_path / 'x.pcap'}, 0 packets so far")
    assert "rx drop" in execute(e, "pcap trace status")
    assert execute(e, "pcap trace off").startswith("Wrote 0 packets")
    with pytest.raises(CommandError, match=r"^pcap trace: unexpected 'bogus'; usage: pcap trace"):
        execute(e, "pcap trace bogus")
    assert drained(e) == 0


def test_help_lists_commands():
    out = execute(None, "help")
    for path in ("show runtime", "clear runtime", "show errors", "clear errors", "show buffers",
                 "trace add", "show trace", "clear trace", "show graph", "show graph dot",
                 "show node", "set node state", "show version"):
        assert re.search(rf"^{re.escape(path)}\b", out, re.M), path
    shows = execute(None, "show ?")
    assert "show runtime" in shows and "clear runtime" not in shows
    assert execute(None, "? clear") == execute(None, "help clear")
    with pytest.raises(CommandError, match="needs a running engine"):
        execute(None, "show runtime")


def test_completion_words():
    from graphnet.cli.registry import default_registry
    reg = default_registry()
    assert {"show", "set", "trace", "clear", "help", "packet-generator"} <= set(reg.complete([], ""))
    assert reg.complete(["show"], "ru") == ["runtime"]
    assert reg.complete(["sh"], "g") == ["graph"]              # after an abbreviation
    assert reg.complete(["show", "graph"], "") == ["dot"]
    assert reg.complete(["bogus"], "") == []


def test_custom_registry_and_failing_command():
    reg = Registry()

    @reg.command("hello", usage="hello <name>")
    def hello(engine, args):
        if len(args) != 1:
            raise UsageError()
        return f"hello {args[0]}"

    @reg.command("boom")
    def boom(engine, args):
        raise RuntimeError("kaput")

    e = make_engine()
    assert reg.execute(e, "hello world") == "hello world"
    assert reg.execute(e, "hello 'two words'") == "hello two words"
    with pytest.raises(UsageError, match="usage: hello <name>"):
        reg.execute(e, "hello")
    with pytest.raises(CommandError, match="internal error: RuntimeError: kaput"):
        reg.execute(e, "boom")
    assert reg.execute(e, "hello again") == "hello again"
    with pytest.raises(CommandError, match="cannot parse"):
        reg.execute(e, "hello 'unclosed")
    assert reg.complete([], "he") == ["hello"]
    assert drained(e) == 0


def test_commands_run_in_the_loop_thread():
    reg = Registry()
    seen = []

    @reg.command("where")
    def where(engine, args):
        seen.append(threading.get_ident())
        return ""

    e = make_engine(count=None, rate=100.0, state="interrupt")
    e.start()
    try:
        reg.execute(e, "where")
        assert seen == [e._thread.ident]
    finally:
        assert drained(e) == 0


# --- the control socket -----------------------------------------------------------------

@pytest.fixture
def running(sockdir):
    """An engine running in its thread, with a control server on a temp path."""
    e = make_engine(count=None, rate=200.0, state="interrupt")
    e.start()
    srv = ControlServer(e, str(sockdir / "cli.sock")).start()
    yield e, srv
    srv.close()
    assert drained(e) == 0


def test_round_trip_against_running_engine(running):
    e, srv = running
    time.sleep(0.1)
    ok, text = send_command(srv.path, "show runtime")
    assert ok and "pg-input" in text
    calls, vectors = runtime_row(text, "null")
    assert vectors > 0
    ok, text = send_command(srv.path, "show version")
    assert ok and text.startswith("graphnet ")


def test_error_answers_do_not_stop_the_server(running):
    e, srv = running
    ok, text = send_command(srv.path, "show bogus")
    assert not ok and "unknown command 'show bogus'" in text
    ok, text = send_command(srv.path, "trace add pg-input x")
    assert not ok and "usage: trace add <input-node> <n>" in text
    ok, text = send_command(srv.path, "show node nosuch")
    assert not ok and "no node named 'nosuch'" in text
    ok, text = send_command(srv.path, "")
    assert ok and text == ""
    assert send_command(srv.path, "show buffers")[0]


def test_protocol_is_json_lines_and_survives_garbage(running):
    e, srv = running
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(srv.path)
        s.sendall(b"show version\n\xff\xfe\nshow nothing\n")
        f = s.makefile("rb")
        answers = [json.loads(f.readline()) for _ in range(3)]
    assert answers[0]["ok"] is True and answers[0]["output"].startswith("graphnet")
    assert answers[1] == {"ok": False, "error": "the command line is not valid UTF-8"}
    assert answers[2]["ok"] is False and "unknown command" in answers[2]["error"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:   # a client that hangs up early
        s.connect(srv.path)
        s.sendall(b"show run")
    assert send_command(srv.path, "show version")[0]


def test_concurrent_clients(running):
    e, srv = running
    results = []

    def client():
        for _ in range(5):
            results.append(send_command(srv.path, "show runtime")[0])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [True] * 20


def test_socket_mode_is_0600_and_removed_on_close(sockdir):
    e = make_engine()
    path = sockdir / "sub" / "cli.sock"
    srv = ControlServer(e, str(path)).start()
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    srv.close()
    assert not path.exists()
    srv.close()                                       # idempotent
    assert drained(e) == 0


def test_stale_socket_is_replaced(sockdir):
    path = str(sockdir / "cli.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)                                   # a socket file nobody listens on
    dead.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    e = make_engine()
    srv = ControlServer(e, path).start()
    try:
        assert send_command(path, "show version")[0]
    finally:
        srv.close()
    assert drained(e) == 0


def test_second_server_on_live_socket_is_refused(running):
    e, srv = running
    other = make_engine()
    with pytest.raises(ControlError, match=f"an engine is already running on {re.escape(srv.path)}"):
        ControlServer(other, srv.path).start()
    assert send_command(srv.path, "show version")[0]  # the first one is untouched
    assert drained(other) == 0


def test_path_that_is_not_a_socket_is_left_alone(sockdir):
    path = sockdir / "cli.sock"
    path.write_text("precious")
    e = make_engine()
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(e, str(path)).start()
    assert path.read_text() == "precious"
    assert drained(e) == 0


def test_close_keeps_a_newer_engines_socket(sockdir):
    path = str(sockdir / "cli.sock")
    e = make_engine()
    srv = ControlServer(e, path).start()
    os.unlink(path)                                   # someone else took the path over
    newer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    newer.bind(path)
    srv.close()
    assert os.path.exists(path)
    newer.close()
    assert drained(e) == 0


def test_no_engine_listening(sockdir):
    path = str(sockdir / "cli.sock")
    with pytest.raises(NoEngineError) as ei:
        send_command(path, "show runtime")
    assert str(ei.value) == (f"no graphnet engine is listening on {path}; "
                             f"start one with `graphnet run`")


def test_default_socket_path(monkeypatch):
    monkeypatch.setenv("GRAPHNET_SOCKET", "/tmp/x/y.sock")
    assert control.default_socket_path() == "/tmp/x/y.sock"
    monkeypatch.delenv("GRAPHNET_SOCKET")
    if os.geteuid() == 0:
        assert control.default_socket_path() == "/run/graphnet/cli.sock"
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
        assert control.default_socket_path() == f"/tmp/graphnet-{os.getuid()}/cli.sock"


# --- the graphnet program, in process --------------------------------------------------------

def test_ctl_prints_answers_and_errors(running, capsys):
    e, srv = running
    assert main(["ctl", "--socket", srv.path, "show", "version"]) == 0
    assert capsys.readouterr().out.startswith("graphnet ")
    assert main(["ctl", "--socket", srv.path, "show version"]) == 0     # one quoted line
    assert capsys.readouterr().out.startswith("graphnet ")
    assert main(["ctl", "--socket", srv.path, "show", "nonsense"]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "unknown command 'show nonsense'" in cap.err


def test_ctl_without_engine_is_one_line_error(sockdir, capsys):
    path = str(sockdir / "none.sock")
    assert main(["ctl", "--socket", path, "show", "runtime"]) == 1
    err = capsys.readouterr().err
    assert err == f"graphnet: no graphnet engine is listening on {path}; start one with `graphnet run`\n"


def test_graph_dot_and_bad_config(tmp_path, capsys):
    assert main(["graph", "--dot", "--demo", "pg"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph") and '"pg-input" -> "demo-0"' in out and '"demo-1" -> "null"' in out
    assert main(["graph"]) == 0                        # the default: drawn without creating gn0
    out = capsys.readouterr().out
    assert re.search(r"^tap-input-gn0\s+input\s+\[0\] ethernet-input", out, re.M), out
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nbufers = 10\n")
    assert main(["graph", "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: engine.bufers: unknown key" in err
    assert main(["run", "-c", str(tmp_path / "missing.toml"), "--seconds", "0"]) == 1
    assert "no such config file" in capsys.readouterr().err


def test_config_subcommand(capsys, tmp_path):
    assert main(["config", "--default"]) == 0
    text = capsys.readouterr().out
    f = tmp_path / "startup.toml"
    f.write_text(text)
    assert main(["config", "-c", str(f)]) == 0        # checked without creating the TAP
    assert re.search(r"startup.toml: ok: \d+ nodes, 0 pg streams, 1 interface \(checked, not created\)$",
                     capsys.readouterr().out)
    assert main(["config", "--demo", "pg"]) == 0
    f.write_text(capsys.readouterr().out)
    assert main(["config", "-c", str(f)]) == 0
    assert re.search(r"startup.toml: ok: \d+ nodes, 1 pg stream, 0 interfaces$", capsys.readouterr().out)
    assert main(["config", "--demo", "nope"]) == 1
    assert "no built-in config named 'nope'" in capsys.readouterr().err
    assert main(["run", "-c", str(f), "--demo", "pg"]) == 1
    assert "not both" in capsys.readouterr().err


def test_bench_dispatch(monkeypatch, capsys):
    import types
    got = []
    fake = types.ModuleType("graphnet.bench")
    fake.main = lambda args: got.append(args) or 3
    monkeypatch.setitem(sys.modules, "graphnet.bench", fake)
    assert main(["bench", "--quick", "x"]) == 3
    assert got == [["--quick", "x"]]
    monkeypatch.setitem(sys.modules, "graphnet.bench", types.ModuleType("graphnet.bench"))
    assert main(["bench"]) == 1
    assert "graphnet bench is not available" in capsys.readouterr().err


def test_run_in_process_for_a_moment(sockdir, capsys):
    path = str(sockdir / "cli.sock")
    assert main(["run", "--demo", "pg", "--seconds", "0.3", "--socket", path]) == 0
    out = capsys.readouterr().out
    assert f"control socket {path}" in out and f"graphnet ctl --socket {path} show runtime" in out
    assert not os.path.exists(path)


# --- graphnet run and graphnet ctl as separate processes ----------------------------------------

def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("GRAPHNET_SOCKET", None)
    return env


def _gn(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "graphnet", *args], env=_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _wait_for_socket(proc, path, timeout=30.0):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise AssertionError(f"graphnet run exited early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("graphnet run did not create its socket")


@pytest.fixture
def run_proc(sockdir):
    path = str(sockdir / "cli.sock")
    procs = []

    def start(*extra, seconds="60"):
        extra = extra or ("--demo", "pg")
        p = subprocess.Popen([sys.executable, "-m", "graphnet", "run", "--socket", path,
                              "--seconds", seconds, *extra],
                             env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        _wait_for_socket(p, path)
        return p, path
    yield start
    for p in procs:                     # only the processes this test started
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_ctl_subprocess_against_run_subprocess(run_proc):
    proc, path = run_proc()
    time.sleep(0.3)
    r = _gn("ctl", "--socket", path, "show", "runtime")
    assert r.returncode == 0, r.stderr
    assert runtime_row(r.stdout, "null")[1] > 0 and "demo-0" in r.stdout
    r = _gn("ctl", "--socket", path, "trace", "add", "pg-input", "2")
    assert r.returncode == 0 and r.stdout == ""
    time.sleep(0.2)
    r = _gn("ctl", "--socket", path, "show", "trace")
    assert r.returncode == 0 and r.stdout.count("Packet ") == 2
    r = _gn("ctl", "--socket", path, "show", "nothing")
    assert r.returncode == 1 and r.stdout == ""
    assert "unknown command 'show nothing'" in r.stderr and "Traceback" not in r.stderr
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "graphnet ctl --socket" in out and "stopped by SIGTERM" in err
    assert not os.path.exists(path)
    r = _gn("ctl", "--socket", path, "show", "runtime")
    assert r.returncode == 1 and "no graphnet engine is listening" in r.stderr
    assert "Traceback" not in r.stderr


def test_pcap_trace_to_an_unwritable_path_is_one_line_and_exit_1(run_proc, sockdir):
    """Issue 18 item 3: the answer is one line, graphnet ctl exits 1, the
    engine keeps running and its log gets at most one line, no traceback."""
    proc, path = run_proc()
    for target, why in (("/proc/graphnet-nowhere/x.pcap", "No such file or directory"),
                        (str(sockdir / "cli.sock"), "exists; add 'overwrite'")):
        r = _gn("ctl", "--socket", path, "pcap", "trace", "rx", "file", target)
        assert r.returncode == 1 and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and why in r.stderr, r.stderr
        assert r.stderr.startswith("pcap trace: ")
    good = sockdir / "ok.pcap"
    r = _gn("ctl", "--socket", path, "pcap", "trace", "drop", "file", str(good))
    assert r.returncode == 0 and f"started: {good}, 0 packets so far" in r.stdout
    r = _gn("ctl", "--socket", path, "show", "pcap")
    assert r.returncode == 0 and r.stdout.startswith(f"pcap capture: drop to {good}: ")
    assert _gn("ctl", "--socket", path, "pcap", "trace", "off").returncode == 0
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err and sum("pcap" in line for line in err.splitlines()) <= 1, err


def test_run_seconds_ends_by_itself_and_refuses_a_second_engine(run_proc):
    proc, path = run_proc(seconds="3")
    r = _gn("run", "--demo", "pg", "--socket", path, "--seconds", "1")
    assert r.returncode == 1
    assert r.stderr.strip() == f"graphnet: an engine is already running on {path}"
    assert proc.wait(20) == 0
    assert not os.path.exists(path)


def test_ctl_interactive_session(run_proc):
    proc, path = run_proc()
    r = subprocess.run([sys.executable, "-m", "graphnet", "ctl", "--socket", path],
                       input="show version\nshow bogus\nhelp\nquit\nshow runtime\n",
                       env=dict(_env(), HOME=str(Path(path).parent)), cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "graphnet " in r.stdout and "set node state" in r.stdout
    assert "unknown command 'show bogus'" in r.stderr
    assert "Thread 0" not in r.stdout                # nothing after quit ran


def test_ctl_prompt_in_a_terminal_completes_recalls_and_helps(run_proc):
    """The interactive prompt driven through a pseudo-terminal, as a user types:
    tab completes a command word and a node name, the up arrow recalls the last
    line, `help` fits the terminal."""
    import pty
    import select
    proc, path = run_proc()
    pid, fd = pty.fork()
    if pid == 0:                                            # child: the prompt on the pty
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "graphnet", "ctl", "--socket", path],
                  dict(_env(), HOME=str(Path(path).parent), TERM="xterm", COLUMNS="80"))
    out = bytearray()

    def read_until(marker: bytes, timeout=15.0):
        t_end = time.monotonic() + timeout
        while marker not in out:
            left = t_end - time.monotonic()
            assert left > 0, f"no {marker!r} in {bytes(out)[-600:]!r}"
            if select.select([fd], [], [], left)[0]:
                try:
                    out.extend(os.read(fd, 4096))
                except OSError:
                    break
        return bytes(out)

    try:
        read_until(b"graphnet# ")
        os.write(fd, b"sh\tver\t\r")                     # -> "show version"
        read_until(b"Python")
        del out[:]
        os.write(fd, b"\x1b[A\r")                          # up arrow: "show version" again
        read_until(b"Python")
        del out[:]
        os.write(fd, b"show node pg-in\t\r")               # node name completed
        read_until(b"errors")
        assert b"unknown" not in out and b"pg-input" in out
        del out[:]
        os.write(fd, b"help\r")
        text = read_until(b"set node state").decode(errors="replace")
        assert max(len(l.rstrip("\r")) for l in text.splitlines()) <= 80
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_help_fits_80_columns_with_one_line_per_form():
    out = execute(None, "help")
    assert max(len(l) for l in out.splitlines()) <= 80
    pcap = execute(None, "help pcap").splitlines()
    assert "pcap trace off" in pcap and "pcap trace status" in pcap
    assert any(l.startswith(" " * 30) and "capture" in l for l in pcap)


def test_ctl_monitor_prints_rates_of_the_running_demo(run_proc):
    """The demo's stream runs at 1000 packets/s: the monitor's vectors/s for
    null (its last node) is about that."""
    proc, path = run_proc()
    r = subprocess.run([sys.executable, "-m", "graphnet", "ctl", "--socket", path, "monitor",
                        "--interval", "0.5", "--count", "2"], env=_env(), cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    samples = r.stdout.split("\n\ngraphnet monitor")
    assert len(samples) == 2, r.stdout
    m = re.search(r"^null\s+(\d+)\s+(\d+)", samples[-1], re.M)
    assert m, samples[-1]
    assert 300 <= int(m.group(1)) <= 3000, samples[-1]          # the stream's 1000/s, loosely
    bad = subprocess.run([sys.executable, "-m", "graphnet", "ctl", "--socket", path, "monitor", "--interval", "0"],
                         env=_env(), cwd=REPO, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--interval must be at least" in bad.stderr


def test_graph_svg_of_a_config_and_of_a_running_engine(run_proc, tmp_path):
    """graphnet graph --svg draws the configured graph; ctl show graph --svg the
    running one, with each busy node labelled by its load (Graphviz from Debian)."""
    import xml.etree.ElementTree as ET
    out = tmp_path / "g.svg"
    r = _gn("graph", "--demo", "pg", "--svg", str(out))
    assert r.returncode == 0, r.stderr
    titles = {t.text for t in ET.parse(out).iter("{http://www.w3.org/2000/svg}title")}
    assert {"pg-input", "demo-0", "demo-1", "null", "pg-input->demo-0"} <= titles
    proc, path = run_proc()
    time.sleep(0.5)
    live = tmp_path / "live.svg"
    r = _gn("ctl", "--socket", path, "show", "graph", "--svg", str(live))
    assert r.returncode == 0, r.stderr
    text = live.read_text()
    assert re.search(r"[\d,]+ vectors/s", text) and "clocks/vector" in text
    r = _gn("ctl", "--socket", path, "show", "graph", "--svg")
    assert r.returncode == 1 and "usage: graphnet ctl show graph --svg FILE" in r.stderr


# --- interfaces: set interface ..., show interface / hardware -------------------------------

def pcap_engine(tmp_path, n=10, **kw):
    """pcap0 replays n UDP frames into null."""
    from graphnet.io.pcap import PcapDevice, write_pcap
    write_pcap(tmp_path / "in.pcap", [templates.build("udp", dport=i) for i in range(1, n + 1)])
    e = Engine(buffers=2048)
    dev = PcapDevice(e, "pcap0", input_path=tmp_path / "in.pcap", next_node="null", **kw)
    e.add(dev)
    e.build()
    return e, dev


def test_set_interface_state_rx_mode_and_promiscuous(tmp_path):
    e, dev = pcap_engine(tmp_path, admin_up=False)
    e.run_until_idle()
    assert e.interfaces.info("pcap0")["rx_packets"] == 0           # down: nothing read
    assert re.search(r"^pcap0\s+0\s+down", execute(e, "show interface pcap0"), re.M)
    assert execute(e, "set interface state pcap0 up") == ""
    e.run_until_idle()
    assert e.interfaces.info("pcap0")["rx_packets"] == 10
    assert re.search(r"^pcap0\s+0\s+up\s+9000\s+rx packets\s+10$", execute(e, "sh int"), re.M)
    execute(e, "set interface rx-mode pcap0 interrupt")
    assert "interrupt" in execute(e, "show node pcap-input-pcap0").splitlines()[0]
    assert "rx-mode interrupt" in execute(e, "show hardware pcap0")
    execute(e, "set interface rx-mode pcap0 adaptive")
    assert "(adaptive)" in execute(e, "show node pcap-input-pcap0").splitlines()[0]
    execute(e, "set interface promiscuous pcap0 on")
    assert e.interfaces.info("pcap0")["promiscuous"] and "promiscuous" in execute(e, "show hardware")
    execute(e, "set interface promiscuous pcap0 off")
    assert not e.interfaces.info("pcap0")["promiscuous"]
    execute(e, "clear interfaces")
    assert e.interfaces.info("pcap0")["rx_packets"] == 0
    assert drained(e) == 0


def test_set_interface_errors_name_the_problem(tmp_path):
    e, dev = pcap_engine(tmp_path)
    for line, text in [("set interface state pcap1 up", "no interface named 'pcap1' (did you mean 'pcap0'?)"),
                       ("set interface state zzz up", "no interface named 'zzz'; interfaces: pcap0"),
                       ("set interface state pcap0 on", "'on': use up or down; usage: set interface state"),
                       ("set interface state pcap0", "give an interface name and a state (up|down)"),
                       ("set interface rx-mode pcap0 fast", "'fast': use polling or interrupt or adaptive"),
                       ("set interface promiscuous pcap0 yes", "'yes': use on or off"),
                       ("show interface nope", "no interface named 'nope'"),
                       ("show hardware pcap", "did you mean 'pcap0'?")]:
        with pytest.raises(UsageError) as ei:
            execute(e, line)
        assert text in str(ei.value), (line, str(ei.value))
    assert "polling" in execute(e, "show node pcap-input-pcap0").splitlines()[0]    # unchanged
    assert drained(e) == 0


def test_help_lists_interface_commands():
    out = execute(None, "help set interface")
    for path in ("set interface state", "set interface rx-mode", "set interface promiscuous"):
        assert re.search(rf"^{re.escape(path)}\b", out, re.M), path


# --- graphnet run with no file: TAP gn0 in namespace graphnet0 ------------------------------------

def test_default_run_without_root_says_what_to_do(monkeypatch, capsys):
    from graphnet.io import host
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    before = host.list_netns() if os.path.exists("/run/netns") else []
    assert main(["run", "--seconds", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "creates TAP gn0" in err and "needs root" in err
    assert "graphnet run --demo pg" in err
    assert (host.list_netns() if os.path.exists("/run/netns") else []) == before


def _ns_packet_socket(ns, ifname):
    from pyroute2 import netns as pnetns
    s = pnetns.create_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3), flags=0)
    s.bind((ifname, 0))
    return s


@pytest.mark.privileged
def test_default_run_brings_up_gn0_in_graphnet0_and_removes_it(sockdir):
    from graphnet.io import host
    from graphnet.io.pcap import read_pcap
    if "graphnet0" in host.list_netns() or host.link_exists("gn0"):
        pytest.skip("namespace graphnet0 or link gn0 exists: another graphnet engine is running here")
    path = str(sockdir / "cli.sock")
    env = dict(_env(), GRAPHNET_SOCKET=path)
    p = subprocess.Popen([sys.executable, "-m", "graphnet", "run", "--seconds", "60"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ctl(*words):
        r = subprocess.run([sys.executable, "-m", "graphnet", "ctl", *words], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (words, r.stderr)
        return r.stdout

    sock = None
    try:
        _wait_for_socket(p, path)
        assert "graphnet0" in host.list_netns() and host.link_exists("gn0", "graphnet0")
        assert not host.link_exists("gn0")
        with host.ipr("graphnet0") as ipr:
            idx = ipr.link_lookup(ifname="gn0")[0]
            assert [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)] == ["10.10.0.1"]
        sock = _ns_packet_socket("graphnet0", "gn0")
        mac = bytes.fromhex(re.search(r"Ethernet address ([0-9a-f:]+)", ctl("show", "hardware", "gn0"))
                            .group(1).replace(":", ""))
        frames = [mac + bytes.fromhex("02aa00000001") + b"\x88\xb5" + bytes([i]) * (46 + i) for i in range(5)]
        pcap_file = sockdir / "rx.pcap"
        assert "started" in ctl("pcap", "trace", "rx", "max", "100", "file", str(pcap_file))
        ctl("trace", "add", "tap-input", "3")
        for f in frames:
            sock.send(f)

        def marked():
            return [d for _, d in read_pcap(pcap_file) if d[12:14] == b"\x88\xb5"]
        # readable while the capture runs: the loop writes it out within a second (issue 11 item 3)
        assert wait_for(lambda: len(marked()) == 5, 3), marked()
        if shutil.which("tshark"):
            r = subprocess.run(["tshark", "-r", str(pcap_file), "-Y", "eth.type == 0x88b5"], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 5, r.stdout + r.stderr
        assert "Wrote" in ctl("pcap", "trace", "off")
        got = marked()
        assert got == frames                                      # byte-exact, in order
        trace = ctl("show", "trace")
        assert "tap-input-gn0" in trace and "ethernet-input" in trace
        rx = int(re.search(r"rx packets\s+(\d+)", ctl("show", "interface", "gn0")).group(1))
        assert rx >= 5
        # graphnet is 10.10.0.2 on gn0: the kernel's own ping gets answers, its ARP taught graphnet 10.10.0.1
        assert "gn0: 10.10.0.2/24" in ctl("show", "interface", "address")
        r = host.run_in_netns("graphnet0", ["ping", "-c", "3", "-W", "2", "10.10.0.2"], capture_output=True,
                              text=True, timeout=30)
        assert r.returncode == 0 and "3 received" in r.stdout, r.stdout + r.stderr
        assert "ttl=64" in r.stdout
        neighbors = ctl("show", "ip", "neighbors")
        assert re.search(r"10\.10\.0\.1\s+\S*\s*[0-9a-f:]{17}\s+gn0", neighbors), neighbors
        assert "dpo-receive gn0" in ctl("show", "ip", "fib", "10.10.0.2")
        assert "echo" in ctl("show", "errors")
        # admin down: the TAP's carrier goes off, so the kernel drops what it
        # would send (counted on its side); rx-mode switches at run time
        ctl("set", "interface", "state", "gn0", "down")
        ctl("set", "interface", "rx-mode", "gn0", "polling")
        assert "rx-mode polling" in ctl("show", "hardware", "gn0")
        assert "carrier: off" in ctl("show", "hardware", "gn0")

        def kernel_side():
            with host.ipr("graphnet0") as ipr:
                link = ipr.get_links(ipr.link_lookup(ifname="gn0")[0])[0]
            return link.get_attr("IFLA_CARRIER"), link.get_attr("IFLA_STATS64")["tx_dropped"]
        assert kernel_side()[0] == 0
        dropped = kernel_side()[1]
        rx_before = int(re.search(r"rx packets\s+(\d+)", ctl("show", "interface", "gn0")).group(1))
        sock.send(frames[0])
        time.sleep(0.3)
        assert kernel_side()[1] >= dropped + 1
        assert int(re.search(r"rx packets\s+(\d+)", ctl("show", "interface", "gn0")).group(1)) == rx_before
        ctl("set", "interface", "state", "gn0", "up")
        assert kernel_side()[0] == 1
        ctl("set", "interface", "rx-mode", "gn0", "interrupt")
    finally:
        if sock is not None:
            sock.close()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
        # never leave the namespace behind, whatever happened above
        if "graphnet0" in host.list_netns():
            host.delete_netns("graphnet0")
            pytest.fail("graphnet run left namespace graphnet0 behind")
    assert p.returncode == 0, err
    assert "TAP gn0: kernel side gn0 in network namespace graphnet0, address 10.10.0.1/24" in out
    assert "ip netns exec graphnet0 ping -c 3 10.10.0.2        # answered by graphnet" in out
    assert "graphnet 10.10.0.2/24" in out and "show interface" in out and "show ip neighbors" in out
    assert "stopped by SIGTERM" in err
    assert not host.link_exists("gn0") and not os.path.exists(path)


@pytest.mark.privileged
def test_default_run_keeps_a_namespace_it_did_not_create(sockdir):
    from graphnet.io import host
    if "graphnet0" in host.list_netns() or host.link_exists("gn0"):
        pytest.skip("namespace graphnet0 or link gn0 exists: another graphnet engine is running here")
    host.create_netns("graphnet0")
    try:
        r = subprocess.run([sys.executable, "-m", "graphnet", "run", "--seconds", "0.5"],
                           env=dict(_env(), GRAPHNET_SOCKET=str(sockdir / "cli.sock")), cwd=REPO,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "graphnet0" in host.list_netns() and not host.link_exists("gn0", "graphnet0")
    finally:
        host.delete_netns("graphnet0")


@pytest.mark.privileged(tun=False)
def test_set_interface_promiscuous_reaches_the_kernel_for_af_packet():
    import uuid
    from graphnet.io import host
    from graphnet.io.af_packet import AfPacketDevice
    with host.temporary_netns("gn-cli") as ns:
        a, b = f"gna{uuid.uuid4().hex[:8]}", f"gnb{uuid.uuid4().hex[:8]}"
        host.create_veth(a, b, netns=ns, peer_netns=ns)
        host.set_link(a, ns, up=True)
        e = Engine(buffers=2048)
        dev = AfPacketDevice(e, a, netns=ns, promiscuous=False, next_node="null")
        e.add(dev)
        e.build()

        def promisc():          # socket memberships count in IFLA_PROMISCUITY, not in IFF_PROMISC
            with host.ipr(ns) as ipr:
                return ipr.get_links(ipr.link_lookup(ifname=a)[0])[0].get_attr("IFLA_PROMISCUITY") > 0
        try:
            assert not promisc()
            execute(e, f"set interface promiscuous host-{a} on")
            assert promisc() and e.interfaces.info(f"host-{a}")["promiscuous"]
            assert "promiscuous" in execute(e, f"show hardware host-{a}")
            execute(e, f"set interface promiscuous host-{a} off")
            assert not promisc() and not e.interfaces.info(f"host-{a}")["promiscuous"]
        finally:
            e.close()


@pytest.mark.privileged
def test_readme_run_command_starts_the_default_configuration_and_cleans_up():
    """`make run` (the README's first command) with RUN_ARGS, in the venv this suite runs in."""
    from graphnet.io import host
    if "graphnet0" in host.list_netns() or host.link_exists("gn0"):
        pytest.skip("namespace graphnet0 or link gn0 exists: another graphnet engine is running here")
    venv = os.path.dirname(os.path.dirname(sys.executable))
    # -o: the venv is already set up (this suite runs in it); only the in-place build is checked
    r = subprocess.run(["make", "-o", f"{venv}/.installed", "run", f"VENV={venv}", "RUN_ARGS=--seconds 1"],
                       cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "10.10.0.2/24" in r.stdout and "stop with Ctrl-C" in r.stdout, r.stdout
    assert "graphnet0" not in host.list_netns() and not host.link_exists("gn0")


def test_startup_exec_runs_a_command_file_once_started(tmp_path):
    cmds = tmp_path / "setup.cli"
    cmds.write_text("packet-generator new name from-exec template udp limit 5\nshow packet-generator\n")
    cfg = tmp_path / "s.toml"
    cfg.write_text('[startup]\nexec = "setup.cli"\n\n[pg]\nnext = "null"\n\n'
                   '[[pg.stream]]\nname = "first"\ntemplate = "udp"\ncount = 1\n')
    r = _gn("run", "-c", str(cfg), "--no-cli", "--seconds", "0.5")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^from-exec\s+pg-input\s+\d+$", r.stdout, re.M), r.stdout
    cmds.write_text("show clock\nshow bogus\n")
    r = _gn("run", "-c", str(cfg), "--no-cli", "--seconds", "0.5")
    assert r.returncode == 1 and "setup.cli:2: show bogus: unknown command" in r.stderr
    assert "Traceback" not in r.stderr
    cfg.write_text('[startup]\nexec = "missing.cli"\n')
    r = _gn("config", "-c", str(cfg))
    assert r.returncode == 1 and "startup.exec: no such file" in r.stderr
