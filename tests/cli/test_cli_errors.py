"""Issue 18: a failed command answers one line naming what was wrong,
`graphnet ctl` exits 1, the engine keeps running, and no traceback reaches
the user or the engine's log (unless --log-level debug)."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from graphnet.cli.control import send_command
from graphnet.testing.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine_proc():
    """`graphnet run` with a pg stream and a control socket; its stderr (the log) in a file."""
    d = tempfile.mkdtemp(prefix="gnerr-")          # short: AF_UNIX paths are <= 107 bytes
    path = os.path.join(d, "cli.sock")
    cfg = Path(d) / "s.toml"
    cfg.write_text(f'[cli]\nsocket = "{path}"\n\n[[pg.stream]]\nname = "s"\ntemplate = "udp"\nrate = 10.0\n')
    log = open(Path(d) / "engine.log", "w+")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GRAPHNET_SOCKET", None)
    p = subprocess.Popen([sys.executable, "-m", "graphnet", "run", "-c", str(cfg), "--seconds", "120"], env=env,
                         cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        assert wait_for(lambda: os.path.exists(path) or p.poll() is not None, 30) and p.poll() is None
        assert wait_for(lambda: send_command(path, "show version")[0], 10)
        yield p, path, env, log
    finally:
        p.terminate()
        p.wait(20)
        log.close()
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)


def ctl(engine_proc, *words):
    p, path, env, _ = engine_proc
    return subprocess.run([sys.executable, "-m", "graphnet", "ctl", "--socket", path, *words],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("words, message", [
    # unwritable file
    (["pcap", "trace", "rx", "max", "5", "file", "/proc/graphnet-no-such-dir/x.pcap"], "/proc/graphnet-no-such-dir"),
    # unknown node
    (["trace", "add", "bogus-input", "5"], "no input node named 'bogus-input'"),
    (["show", "node", "bogus-node"], "bogus-node"),
    (["set", "node", "state", "bogus-node", "polling"], "bogus-node"),
    # bad stream
    (["packet-generator", "new", "name", "x", "template", "sctp"], "template must be one of"),
    (["packet-generator", "enable-stream", "no-such-stream"], "no-such-stream"),
    # bad arguments
    (["trace", "add", "pg-input", "many"], "usage: trace add <input-node> <n>"),
    (["trace", "filter", "ip4", "src", "300.1.1.1"], "not an IPv4 address"),
    (["show", "bogus"], "bogus"),
])
def test_failed_command_is_one_line_and_exit_1(engine_proc, words, message):
    p, path, _env, log = engine_proc
    log.seek(0, os.SEEK_END)
    before = log.tell()
    r = ctl(engine_proc, *words)
    assert r.returncode == 1, (words, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert message in err and "\n" not in err and "Traceback" not in err, err
    assert r.stdout == ""
    # the engine runs on and its log got no traceback from it
    assert p.poll() is None
    ok, text = send_command(path, "show version")
    assert ok and text
    log.flush()
    log.seek(before)
    added = log.read()
    assert "Traceback" not in added and len(added.splitlines()) <= 1, added
