"""Cleanup after a kill (issue 9): an engine or a benchmark ended by SIGTERM
or SIGINT removes the namespaces, TAPs and files it made, as a normal exit
does. Each test starts its own `graphnet` process, signals it by PID and
checks what is left in the kernel and on disk."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from graphnet.io import host
from graphnet.testing.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
SIGNALS = [signal.SIGTERM, signal.SIGINT]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("GRAPHNET_SOCKET", None)
    return env


def _graphnet(*args):
    """A graphnet process whose SIGINT is not ignored (as a Ctrl-C would reach it)."""
    return subprocess.Popen([sys.executable, "-m", "graphnet", *args], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _stop(p, sig):
    p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"graphnet did not end within 60 s of {sig.name}: {err}")
    return out, err


@pytest.fixture
def run_setup():
    """A startup file with a TAP whose kernel side goes into a namespace
    graphnet creates (and so must remove), and a socket path."""
    d = Path(tempfile.mkdtemp(prefix="gnkill-"))
    tag = uuid.uuid4().hex[:6]
    ns, tap = f"gn-kill-{tag}", f"gnk{tag}"
    cfg = d / "s.toml"
    cfg.write_text(f'[cli]\nsocket = "{d / "cli.sock"}"\n\n[[interface]]\nkind = "tap"\nname = "{tap}"\n'
                   f'netns = "{ns}"\nhost_address = "10.231.0.1/24"\naddress = "10.231.0.2/24"\n')
    yield cfg, ns, tap, d / "cli.sock"
    if ns in host.list_netns():             # only what this test made
        host.delete_netns(ns)
    shutil.rmtree(d, ignore_errors=True)


def _nothing_left(ns, tap, sock):
    assert ns not in host.list_netns(), f"namespace {ns} left behind"
    assert not host.link_exists(tap), f"TAP {tap} left behind"
    assert not sock.exists(), f"socket {sock} left behind"


@pytest.mark.privileged
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_running_engine_removes_its_tap_namespace_and_socket(run_setup, sig):
    cfg, ns, tap, sock = run_setup
    p = _graphnet("run", "-c", str(cfg), "--seconds", "120")
    try:
        assert wait_for(lambda: sock.exists() or p.poll() is not None, 30), "no socket"
        assert p.poll() is None, p.communicate()
        assert ns in host.list_netns() and host.link_exists(tap, ns)
        out, err = _stop(p, sig)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert f"stopped by {sig.name}" in err and "Traceback" not in err
    _nothing_left(ns, tap, sock)


@pytest.mark.privileged
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_an_engine_signalled_while_it_creates_its_devices_removes_them(run_setup, sig):
    """The signal comes as soon as the namespace exists, while the TAP is
    being set up: SIGTERM used to kill the process there and then."""
    cfg, ns, tap, sock = run_setup
    p = _graphnet("run", "-c", str(cfg), "--seconds", "120")
    try:
        assert wait_for(lambda: os.path.exists(f"/run/netns/{ns}") or p.poll() is not None, 30, step=0.002)
        out, err = _stop(p, sig)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode in (0, 130), err
    assert "Traceback" not in err
    _nothing_left(ns, tap, sock)


def _bench_namespaces():
    """gn-bench-<8 hex>: host.temporary_netns("gn-bench") names (other
    benches, e.g. another user's link-flap run, name theirs otherwise)."""
    return {n for n in host.list_netns() if re.fullmatch(r"gn-bench-[0-9a-f]{8}", n)}


@pytest.mark.privileged(tun=False)
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_benchmark_removes_its_namespaces(sig):
    """A killed `graphnet bench af-packet-rx` used to leave its two
    gn-bench-* namespaces behind (SIGTERM)."""
    before = _bench_namespaces()
    p = _graphnet("bench", "af-packet-rx", "--seconds", "5")
    try:
        assert wait_for(lambda: len(_bench_namespaces() - before) >= 2 or p.poll() is not None, 60)
        mine = _bench_namespaces() - before
        assert p.poll() is None and len(mine) == 2, p.communicate()
        time.sleep(1.0)                     # well into the measurement, the generator running
        out, err = _stop(p, sig)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == ("graphnet: stopped by SIGTERM" if sig == signal.SIGTERM
                                            else "graphnet: interrupted")
    assert not (_bench_namespaces() & mine), f"left behind: {_bench_namespaces() & mine}"
