"""The control socket against hostile or careless local clients (issue 9
defect 5): peer credentials, the line limit, the client cap, idle clients,
the socket directory's owner and mode."""
import json
import os
import shutil
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
from graphnet.cli.control import MAX_LINE, ControlError, ControlServer, send_command
from graphnet.cli.registry import Registry
from graphnet.testing.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="gnctl-")          # short: AF_UNIX paths are <= 107 bytes
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def recorder():
    """A registry with one command, ``record <word>``, that notes what ran."""
    reg = Registry()
    seen = []

    @reg.command("record", needs_engine=False)
    def record(engine, args):
        seen.append(" ".join(args)[:40])
        return "recorded"
    return reg, seen


@pytest.fixture
def server(sockdir, recorder):
    servers = []

    def make(**kw):
        srv = ControlServer(Engine(), str(sockdir / "cli.sock"), registry=recorder[0], **kw).start()
        servers.append(srv)
        return srv
    yield make
    for srv in servers:
        srv.close()


def _connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def _read_answer(s):
    buf = b""
    while not buf.endswith(b"\n"):
        data = s.recv(4096)
        if not data:
            break
        buf += data
    return json.loads(buf) if buf else None


def _cli_threads():
    return sum(t.name == "graphnet-cli-client" for t in threading.enumerate())


# --- the line limit ----------------------------------------------------------------------

def test_a_100_kib_line_is_refused_unexecuted_without_buffering_it(server, recorder):
    """A 100 KiB line ending in a newline, sent at once, used to be
    executed; and a line that never ends must not be buffered whole."""
    srv = server()
    _, seen = recorder
    s = _connect(srv.path)
    sender = threading.Thread(target=lambda: _send_ignoring_hangup(s, b"record " + b"x" * (100 << 10) + b"\n"))
    sender.start()
    answer = _read_answer(s)
    sender.join(10)
    s.close()
    assert answer == {"ok": False, "error": f"command line longer than {MAX_LINE} bytes; not executed, closing"}
    assert seen == [] and srv.refused["long_line"] == 1
    # 16 MiB without a newline: the server hangs up after MAX_LINE and some,
    # so the sender cannot push it all (the socket buffers are far smaller)
    s = _connect(srv.path)
    with pytest.raises(OSError):
        s.sendall(b"y" * (16 << 20))
    s.close()
    assert seen == []
    assert send_command(srv.path, "record ok") == (True, "recorded") and seen == ["ok"]


def _send_ignoring_hangup(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass


def test_a_line_of_exactly_the_limit_is_still_served(server, recorder):
    srv = server()
    line = b"record " + b"z" * (MAX_LINE - 7)
    assert len(line) == MAX_LINE
    s = _connect(srv.path)
    s.sendall(line + b"\n")
    assert _read_answer(s) == {"ok": True, "output": "recorded"}
    s.close()


# --- the client cap and idle clients -----------------------------------------------------------

def test_clients_beyond_the_cap_get_one_line_and_no_thread(server, recorder):
    """Each client was a thread: 200 idle clients made 200 threads. Now at
    most max_clients are served; the others get one error line."""
    srv = server(max_clients=4)
    base = _cli_threads()
    idle = [_connect(srv.path) for _ in range(4)]
    assert wait_for(lambda: len(srv._clients) == 4)
    extra, answers = [], []
    for _ in range(40):
        extra.append(_connect(srv.path))
        answers.append(_read_answer(extra[-1]))
    assert answers == [{"ok": False, "error": "too many clients (4 connected); try again later"}] * 40
    assert _cli_threads() - base <= 4 and srv.refused["busy"] == 40
    ok, text = send_command(srv.path, "record x")
    assert not ok and text.startswith("too many clients")
    for s in idle + extra:
        s.close()
    assert wait_for(lambda: len(srv._clients) == 0)
    assert send_command(srv.path, "record y") == (True, "recorded")


def test_an_idle_client_is_told_and_closed(server):
    srv = server(idle_timeout=0.3)
    s = _connect(srv.path)
    t0 = time.monotonic()
    assert _read_answer(s) == {"ok": False, "error": "idle for 0.3 s; closing"}
    assert s.recv(10) == b""                               # closed
    assert time.monotonic() - t0 < 3
    assert wait_for(lambda: len(srv._clients) == 0) and srv.refused["idle"] == 1
    s.close()


def test_bad_limits_are_refused(sockdir):
    with pytest.raises(ControlError, match="max_clients must be at least 1"):
        ControlServer(Engine(), str(sockdir / "a.sock"), max_clients=0)
    with pytest.raises(ControlError, match="idle_timeout must be > 0"):
        ControlServer(Engine(), str(sockdir / "a.sock"), idle_timeout=0)
    with pytest.raises(ControlError, match="no group 'graphnet-no-such-group'"):
        ControlServer(Engine(), str(sockdir / "a.sock"), group="graphnet-no-such-group")


# --- the socket directory ----------------------------------------------------------------------

@pytest.mark.parametrize("mode,message", [(0o777, r"is writable by everyone \(mode 0777\)"),
                                          (0o770, r"is writable by its group \(mode 0770\)")])
def test_a_directory_others_can_write_is_refused(sockdir, mode, message):
    d = sockdir / "open"
    d.mkdir()
    d.chmod(mode)
    with pytest.raises(ControlError, match=rf"^socket directory {d} {message}; chmod go-w it"):
        ControlServer(Engine(), str(d / "cli.sock")).start()
    assert not (d / "cli.sock").exists()


def test_a_sticky_directory_like_tmp_is_accepted(sockdir):
    d = sockdir / "sticky"
    d.mkdir()
    d.chmod(0o1777)
    srv = ControlServer(Engine(), str(d / "cli.sock")).start()
    try:
        assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600
    finally:
        srv.close()


@pytest.mark.privileged(tun=False)
def test_a_directory_of_another_user_is_refused(sockdir):
    d = sockdir / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(ControlError, match=rf"^socket directory {d} belongs to another user \(uid 65534\)"):
        ControlServer(Engine(), str(d / "cli.sock")).start()


# --- peer credentials ---------------------------------------------------------------------------

CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(b"record from-nobody\\n")
except OSError:
    pass                                  # refused before it could send: the answer is waiting
print(s.makefile("rb").readline().decode().strip())
"""


def _as_nobody(path):
    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    r = subprocess.run([sys.executable, "-c", CLIENT, path], preexec_fn=drop, capture_output=True, text=True,
                       timeout=30, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.privileged(tun=False)
def test_a_peer_of_another_user_is_refused_by_its_credentials(server, sockdir, recorder):
    """Even with the socket's mode opened wide by mistake, a client that is
    not root, the engine's user or in the configured group is refused
    (SO_PEERCRED) before anything it sends is read."""
    srv = server()
    sockdir.chmod(0o711)
    os.chmod(srv.path, 0o666)
    answer = _as_nobody(srv.path)
    assert answer == {"ok": False, "error": "permission denied: uid 65534 may not use this engine's control "
                                            f"socket (root or uid {os.geteuid()} may)"}
    assert recorder[1] == [] and srv.refused["peer"] == 1


@pytest.mark.privileged(tun=False)
def test_a_member_of_the_configured_group_is_served(server, sockdir, recorder):
    """group = "nogroup": the socket is 0660 and that group's, its private
    directory 0710 and that group's, and a member (nobody) is served."""
    srv = server(group="nogroup")
    st, dst = os.stat(srv.path), os.stat(sockdir)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 65534
    assert stat.S_IMODE(dst.st_mode) == 0o710 and dst.st_gid == 65534
    assert _as_nobody(srv.path) == {"ok": True, "output": "recorded"}
    assert recorder[1] == ["from-nobody"]


def test_peer_allowed_rule(sockdir, monkeypatch):
    import grp
    srv = ControlServer(Engine(), str(sockdir / "a.sock"))
    me = os.geteuid()
    assert srv.peer_allowed(0, 0) and srv.peer_allowed(me, 12345)
    assert not srv.peer_allowed(54321, 54321)
    gid = grp.getgrnam("nogroup").gr_gid
    srv = ControlServer(Engine(), str(sockdir / "a.sock"), group="nogroup")
    assert srv.peer_allowed(54321, gid) and not srv.peer_allowed(54321, 54320)


# --- from the startup file ----------------------------------------------------------------------

def test_startup_file_cli_keys_reach_the_server(sockdir, tmp_path):
    """[cli] max_clients = 1: with one idle client connected, graphnet ctl
    gets the one-line refusal and exits 1."""
    path = str(sockdir / "cli.sock")
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[cli]\nsocket = "{path}"\nmax_clients = 1\nidle_timeout = 30.0\n\n'
                   f'[[pg.stream]]\nname = "s"\ntemplate = "udp"\nrate = 10.0\n')
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GRAPHNET_SOCKET", None)
    p = subprocess.Popen([sys.executable, "-m", "graphnet", "run", "-c", str(cfg), "--seconds", "60"], env=env,
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: os.path.exists(path) or p.poll() is not None, 30) and p.poll() is None
        idle = _connect(path)
        assert wait_for(lambda: send_command(path, "show version")[0] is False, 5)
        r = subprocess.run([sys.executable, "-m", "graphnet", "ctl", "--socket", path, "show", "version"],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and r.stderr.strip() == "too many clients (1 connected); try again later"
        idle.close()
        assert wait_for(lambda: send_command(path, "show version")[0], 5)
    finally:
        p.terminate()
        p.wait(20)


def test_startup_file_group_must_exist():
    from graphnet import config
    with pytest.raises(config.ConfigError, match=r"^t\.toml:3: cli\.group: no group named 'graphnet-nope'"):
        config.loads('[cli]\nenabled = true\ngroup = "graphnet-nope"\n', "t.toml")


def test_a_socket_directory_made_by_the_server_is_removed_when_left_empty(tmp_path):
    from graphnet import Engine
    from graphnet.cli.control import ControlServer
    e = Engine()
    try:
        made = tmp_path / "made"
        with ControlServer(e, str(made / "cli.sock")):
            assert made.is_dir()
        assert not made.exists()
        kept = tmp_path / "kept"
        kept.mkdir(mode=0o700)
        with ControlServer(e, str(kept / "cli.sock")):
            pass
        assert kept.is_dir() and not (kept / "cli.sock").exists()       # not ours: left as it was
        busy = tmp_path / "busy"
        with ControlServer(e, str(busy / "cli.sock")):
            (busy / "other").write_text("x")
        assert (busy / "other").exists()                                  # not empty: left
    finally:
        e.close()
