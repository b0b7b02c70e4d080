"""Applications in their own processes (issue 14), as a user runs them:
the engine runs here (its loop in a thread, the attach socket served),
every application is a separate Python process started by the test, with
a bounded timeout, ended by its PID. UDP request/response with the
builtin echo, cut-through between two processes, fork, SIGKILL, corrupt
messages, attach/detach and fork/exit cycles, a refused user."""
import errno
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from graphnet.nodes import ip4_host, session_host
from graphnet.testing.ip4 import CaptureInterface, mac_of
from graphnet.apps.echo import start_echo_server
from graphnet.session.application import session_manager
from graphnet.session.attach import AttachServer, LEN, MAX_MSG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_IP = "10.0.0.1"


@pytest.fixture
def engine(engine_factory):
    eng = engine_factory([ip4_host.NODES, session_host.NODES])
    eng.add(CaptureInterface(eng, "if0", mac_of(0)))
    eng.build()
    ip4_host.set_interface_address(eng, "if0", f"{ENGINE_IP}/24")
    start_echo_server(eng, "udp://0.0.0.0/7")
    eng.start()
    d = f"/tmp/gn-app-{uuid.uuid4().hex[:8]}"
    srv = AttachServer(eng, f"{d}/app.sock").start()
    try:
        yield eng, srv
    finally:
        srv.close()
        eng.stop()


def run(srv, code, *args, timeout=20.0, **kw):
    """Start a client process (PYTHONPATH: this tree); returns the Popen."""
    env = dict(os.environ, PYTHONPATH=ROOT, GRAPHNET_APP_SOCKET=srv.path)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(p, timeout=20.0):
    """Wait for the client (killed by its PID past timeout); (rc, stdout, stderr)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"client {p.pid} timed out:\n{out}\n{err}")
    return p.returncode, out, err


def counts(eng):
    """What an app costs the engine: sessions, segments, workers, fds, buffers."""
    def look():
        mgr = session_manager(eng)
        return {"sessions": mgr.layer.stats()["sessions"], "segments": len(mgr.layer.segments),
                "apps": len(mgr.apps), "app_queues": len(mgr.app_queues),
                "fds": len(os.listdir("/proc/self/fd")), "buffers": eng.buffer_stats()["in_use"]}
    gc.collect()                        # pipes of finished clients' Popen objects
    return eng.call(look)


def wait_for(fn, timeout=10.0, what="the condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = fn()
        if r:
            return r
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_counts(eng, want, timeout=10.0):
    """Counts equal to `want` (the engine frees as peers close and the
    attach server collects); returns the last counts."""
    last = {}

    def same():
        nonlocal last
        last = counts(eng)
        return last == want
    try:
        wait_for(same, timeout, "the counts to come back")
    except AssertionError:
        assert last == want
    return last


UDP_CLIENT = """
    import sys
    from graphnet import app
    app.attach("udp-client")
    with app.socket(app.AF_INET, app.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.connect((sys.argv[1], 7))
        for i in range(50):
            msg = b"request %d " % i + bytes(range(256)) * (i % 5)
            u.send(msg)
            assert u.recv(4096) == msg, i
    print("ok 50")
"""


def test_udp_request_response_with_the_builtin_echo(engine):
    eng, srv = engine
    before = counts(eng)
    rc, out, err = finish(run(srv, UDP_CLIENT, ENGINE_IP))
    assert rc == 0, err
    assert out.strip() == "ok 50"
    assert eng.error_count("app-queue", "app-msgs") >= 50           # each datagram's tx went through its queue
    wait_counts(eng, before)
    assert srv.stats()["attached"] == 1 and srv.stats()["vanished"] == 0


CT_SERVER = """
    import sys
    from graphnet import app
    app.attach("ct-server")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5000))
    ls.listen()
    print("listening", flush=True)
    ls.settimeout(15)
    c, addr = ls.accept()
    c.settimeout(15)
    n = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
        n += len(d)
    c.close()
    ls.close()
    print("echoed", n)
"""

CT_CLIENT = """
    import hashlib, os, sys
    from graphnet import app
    app.attach("ct-client")
    data = os.urandom(int(sys.argv[1]))
    s = app.create_connection(("127.0.0.1", 5000), timeout=15)
    got = bytearray()
    s.setblocking(False)
    off = 0
    while len(got) < len(data):
        if off < len(data):
            try:
                off += s.send(data[off:off + 65536])
            except BlockingIOError:
                pass
        try:
            got += s.recv(65536)
        except BlockingIOError:
            s._w.wait(0.05)
    s.close()
    print(hashlib.sha256(data).hexdigest(), hashlib.sha256(got).hexdigest(), len(got))
"""


def test_cut_through_between_two_processes_is_byte_exact(engine):
    eng, srv = engine
    before = counts(eng)
    server = run(srv, CT_SERVER)
    assert server.stdout.readline().strip() == "listening"
    rc, out, err = finish(run(srv, CT_CLIENT, 3 << 20))
    assert rc == 0, err
    want, got, n = out.split()
    assert want == got and int(n) == 3 << 20
    rc, out, err = finish(server)
    assert rc == 0, err
    assert out.split()[-1] == str(3 << 20)
    assert eng.buffer_stats()["in_use"] == 0                          # data never entered the graph
    wait_counts(eng, before)


FORKER = """
    import os, sys
    from graphnet import app
    a = app.attach("forker")
    parent = a.worker.number
    print("parent", os.getpid(), parent, flush=True)
    pid = os.fork()
    if pid == 0:
        # the child is a new worker of the same app, with its own queue
        w = app.current().worker
        with app.socket(app.AF_INET, app.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.connect((sys.argv[1], 7))
            u.send(b"from the child")
            ok = u.recv(100) == b"from the child"
        print("child", os.getpid(), w.number, ok, flush=True)
        sys.stdin.readline()                       # the test looks at the workers now
        os._exit(0)
    print("forked", pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
    sys.stdin.readline()
"""


def app_rows(eng, name):
    def look():
        app = session_manager(eng).app(name)
        return sorted((w.number, w.pid) for w in app.workers.values())
    return eng.call(look)


def test_fork_makes_the_child_a_new_worker_and_its_exit_removes_only_it(engine):
    eng, srv = engine
    p = run(srv, FORKER, ENGINE_IP, stdin=subprocess.PIPE)
    try:
        _, ppid, pnum = p.stdout.readline().split()
        lines = [p.stdout.readline().split() for _ in range(2)]
        child = next(x for x in lines if x[0] == "child")
        assert child[3] == "True"                                      # its own worker moved data
        assert int(child[2]) != int(pnum)
        rows = app_rows(eng, "forker")
        assert rows == sorted([(int(pnum), int(ppid)), (int(child[2]), int(child[1]))])
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "reaped"
        wait_for(lambda: app_rows(eng, "forker") == [(int(pnum), int(ppid))], what="the child's worker to go")
        p.stdin.write("\n")
        p.stdin.flush()
        rc, out, err = finish(p)
        assert rc == 0, err
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


HOLDER = """
    import sys
    from graphnet import app
    app.attach("holder")
    s = app.create_connection(("127.0.0.1", 5000), timeout=10)
    s.sendall(b"x" * 1000)
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.connect((sys.argv[1], 9))                    # a UDP session nobody answers
    print("holding", flush=True)
    sys.stdin.readline()
"""

KILL_SERVER = """
    from graphnet import app
    app.attach("kill-server")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5000))
    ls.listen()
    print("listening", flush=True)
    ls.settimeout(15)
    c, _ = ls.accept()
    c.settimeout(15)
    assert c.recv(1000) == b"x" * 1000
    print("got data", flush=True)
    try:
        while c.recv(100):
            pass
        print("eof")
    except ConnectionResetError as e:
        print("reset", e)
    c.close()
    ls.close()
"""


def test_sigkill_resets_the_sessions_and_frees_everything(engine):
    eng, srv = engine
    before = counts(eng)
    server = run(srv, KILL_SERVER)
    assert server.stdout.readline().strip() == "listening"
    holder = run(srv, HOLDER, ENGINE_IP, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert server.stdout.readline().strip() == "got data"
        during = counts(eng)
        assert during["sessions"] > before["sessions"] and during["segments"] > before["segments"]
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()                                          # and close our pipes to it
    rc, out, err = finish(server)
    assert rc == 0, err
    assert out.split()[0] == "reset" and "session" in out             # the error names the session
    wait_counts(eng, before)
    assert srv.stats()["vanished"] == 1


CORRUPT = """
    import struct, sys
    from graphnet import app
    from graphnet.session.session import MSG_FORMAT
    a = app.attach("corrupt")
    w = a.worker
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.settimeout(5)
    u.connect((sys.argv[1], 7))
    h = u._s.handle
    # an unknown type, and a TX naming a session that is not ours (the echo's
    # listener is session 0), even with another worker's index in the message
    w.ctrl.enqueue(struct.pack(MSG_FORMAT, 99, 0, 0, 0, h, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, w.index))
    w.ctrl.enqueue(struct.pack(MSG_FORMAT, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    w.wait_for(lambda: len(w.errors) >= 2, 5, "error events")
    print(sorted(e["retval"] for e in w.errors))
    u.send(b"still fine")
    print(u.recv(100).decode())
    # a header rewritten to claim a huge ring: both sides keep the geometry
    # they checked when they opened the queue, nobody reads or writes outside
    for q in (w.ctrl, w.events):
        q.segment.view(q.offset + 4, 8)[:] = struct.pack("<II", 1 << 20, 4096)
    u.send(b"and after the rewrite")
    print(u.recv(100).decode())
"""


def test_corrupt_messages_are_refused_with_an_error_event_and_the_engine_goes_on(engine):
    eng, srv = engine
    rc, out, err = finish(run(srv, CORRUPT, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == ["[64, 99]", "still fine", "and after the rewrite"]
    assert eng.error_count("app-queue", "bad-msg") == 2
    assert eng.error_count("app-queue", "bad-type") == 1 and eng.error_count("app-queue", "not-owner") == 1


def raw(srv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(srv.path)
    return s


def reply(s):
    n = LEN.unpack(s.recv(4, socket.MSG_WAITALL))[0]
    return json.loads(s.recv(n, socket.MSG_WAITALL))


def test_garbage_oversized_and_half_messages_on_the_attach_socket(engine):
    eng, srv = engine
    before = counts(eng)
    with raw(srv) as s:
        for body in (b"\xff\xfe not json", b"[1, 2]", b'{"op": "launch"}', b'{"op": "listen", "worker": 0}'):
            s.sendall(LEN.pack(len(body)) + body)
            r = reply(s)
            assert r["ok"] is False and r["errno"] in (errno.EINVAL, errno.EPERM), r
        s.sendall(LEN.pack(MAX_MSG + 1) + b"x" * 100)
        r = reply(s)
        assert r["ok"] is False and r["errno"] == errno.EMSGSIZE and "at most" in r["error"]
        assert s.recv(10) == b""                                       # and closed
    with raw(srv) as s:
        s.sendall(LEN.pack(200) + b'{"op": "att')                      # gone mid-message
    assert srv.stats()["refused"]["bad-message"] == 3 and srv.stats()["refused"]["oversized"] == 1
    rc, out, err = finish(run(srv, UDP_CLIENT, ENGINE_IP))            # nothing else lost
    assert rc == 0, err
    wait_counts(eng, before)


CYCLES = """
    import os, sys
    from graphnet import app
    for i in range(100):
        a = app.Attachment(f"cycle-{i % 3}")
        a.detach()
    a = app.attach("forks")
    for i in range(100):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    print("done", len(os.listdir("/proc/self/fd")))
"""


def test_100_attach_detach_and_100_fork_exit_cycles_leave_nothing_behind(engine):
    eng, srv = engine
    before = counts(eng)
    rc, out, err = finish(run(srv, CYCLES), timeout=120)
    assert rc == 0, err
    assert out.split()[0] == "done"
    assert int(out.split()[1]) < 10                                    # the client leaked no fd either
    wait_counts(eng, before, timeout=20)
    assert srv.stats()["attached"] == 101


REFUSED = """
    import errno
    from graphnet import app
    try:
        app.attach("intruder")
    except PermissionError as e:
        print("refused", e)
"""


@pytest.mark.privileged(tun=False)                   # root: to run a client as another user
def test_a_user_the_socket_does_not_allow_is_refused(engine):
    eng, srv = engine
    nobody = 65534
    os.chmod(os.path.dirname(srv.path), 0o711)                         # nobody may reach the socket file...
    rc, out, err = finish(run(srv, REFUSED, preexec_fn=lambda: (os.setgid(nobody), os.setuid(nobody))))
    assert rc == 0, err
    assert out.startswith("refused") and "Permission denied" in out   # ...but its mode 0600 stops connect()
    os.chmod(srv.path, 0o666)                                          # a mode too wide: the peer check stops it
    rc, out, err = finish(run(srv, REFUSED, preexec_fn=lambda: (os.setgid(nobody), os.setuid(nobody))))
    assert rc == 0, err
    assert out.startswith("refused") and "uid 65534 may not attach" in out
    assert srv.stats()["refused"]["peer"] == 1
    assert "intruder" not in eng.call(lambda: dict(session_manager(eng).by_name))


ASYNC_SERVER = """
    import asyncio
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-server")

    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    async def main():
        global done
        done = asyncio.Event()
        async with await gnasyncio.start_server(handle, "127.0.0.1", 5001):
            print("listening", flush=True)
            await asyncio.wait_for(done.wait(), 15)
        print("served")
    asyncio.run(main())
"""

ASYNC_CLIENT = """
    import asyncio, hashlib, os
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-client")

    async def main():
        reader, writer = await gnasyncio.open_connection("127.0.0.1", 5001)
        data = os.urandom(1 << 20)

        async def send():
            for i in range(0, len(data), 65536):
                writer.write(data[i:i + 65536])
                await writer.drain()
        t = asyncio.create_task(send())
        got = await asyncio.wait_for(reader.readexactly(len(data)), 15)
        await t
        writer.close()
        await writer.wait_closed()
        print(got == data)
        try:
            await gnasyncio.open_connection("127.0.0.1", 5999)
        except ConnectionRefusedError as e:
            print("refused", e)
    asyncio.run(main())
"""


def test_asyncio_streams_between_two_processes(engine):
    eng, srv = engine
    before = counts(eng)
    server = run(srv, ASYNC_SERVER)
    assert server.stdout.readline().strip() == "listening"
    rc, out, err = finish(run(srv, ASYNC_CLIENT))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "True"
    assert lines[1].startswith("refused") and "127.0.0.1/5999" in lines[1]
    rc, out, err = finish(server)
    assert rc == 0, err
    assert out.strip() == "served"
    wait_counts(eng, before)


SELECTORS = """
    import selectors, sys
    from graphnet import app
    app.attach("sel")
    socks = []
    for i in range(3):
        u = app.socket(app.AF_INET, app.SOCK_DGRAM)
        u.connect((sys.argv[1], 7))
        u.setblocking(False)
        socks.append(u)
    sel = selectors.DefaultSelector()
    sel.register(socks[0], selectors.EVENT_READ)          # one eventfd for the worker: fileno() is shared
    for i, u in enumerate(socks):
        u.send(b"n%d" % i)
    got = set()
    while len(got) < 3 and sel.select(5):
        for u in socks:
            try:
                got.add(u.recv(100))
            except BlockingIOError:
                pass
    print(sorted(got))
    try:
        socks[0].recv(100)
    except BlockingIOError:
        print("would block")
    socks[0].settimeout(0.2)
    try:
        socks[0].recv(100)
    except TimeoutError as e:
        print("timeout", "session" in str(e))
"""


def test_selectors_and_timeouts(engine):
    eng, srv = engine
    rc, out, err = finish(run(srv, SELECTORS, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == ["[b'n0', b'n1', b'n2']", "would block", "timeout True"]


SLEEPER = """
    import sys
    from graphnet import app
    app.attach("sleeper")
    print("ready", flush=True)
    sys.stdin.readline()
"""


def test_show_app_lists_processes_workers_segments_and_attach_clients(engine):
    from graphnet.cli.registry import execute
    eng, srv = engine
    p = run(srv, SLEEPER, stdin=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == "ready"
        text = execute(eng, "show app")
        line = next(x for x in text.splitlines() if "sleeper" in x)
        assert line.split()[-1] == str(p.pid) and "(in the engine)" in text      # the echo app
        assert str(p.pid) in next(x for x in execute(eng, "show app workers").splitlines() if "sleeper" in x)
        rows = json.loads(execute(eng, "show app --json"))
        assert next(r for r in rows if r["name"] == "sleeper")["pids"] == [p.pid]
        segs = json.loads(execute(eng, "show app segments --json"))
        mine = [r for r in segs if r["app"] == "sleeper"]
        assert len(mine) == 1 and mine[0]["queues"] == 2 and mine[0]["fifos"] == 0   # events + requests
        assert "sleeper" in execute(eng, "show app segments")
        info = json.loads(execute(eng, "show app attach --json"))
        assert info["clients"] == [{"pid": p.pid, "uid": os.getuid(), "app": "sleeper", "workers": [0]}]
        assert info["refused"]["peer"] == 0 and info["path"] == srv.path
        assert f"{p.pid}" in execute(eng, "show app attach") and "refused: peer 0" in execute(eng, "show app attach")
    finally:
        p.stdin.write("\n")
        p.stdin.flush()
        finish(p)
    wait_for(lambda: json.loads(execute(eng, "show app attach --json"))["clients"] == [], what="the client to go")


SMALL_SERVER = """
    import sys
    from graphnet import app
    a = app.attach("small-server", segment_size=64 << 10, rx_fifo_size=8 << 10, tx_fifo_size=8 << 10, mq_slots=64)
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5002))
    ls.listen()
    ls.settimeout(10)
    print("listening", *sorted(a.segments), flush=True)
    conns = [ls.accept()[0] for _ in range(5)]
    for c in conns:
        c.settimeout(10)
        assert c.recv(10) == b"hi"
    print("mapped", *sorted(a.segments), flush=True)
    sys.stdin.readline()
    for c in conns:
        c.close()
    a.worker.wait_for(lambda: len(a.segments) == 1, 10, "the freed segment's notice")
    print("after", *sorted(a.segments), flush=True)
"""

MANY_CLIENT = """
    import sys
    from graphnet import app
    a = app.attach("many-client")
    socks = [app.create_connection(("127.0.0.1", 5002), timeout=10) for _ in range(5)]
    for s in socks:
        s.sendall(b"hi")
    print("mapped", *sorted(a.segments), flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
    a.worker.wait_for(lambda: len(a.segments) == 1, 10, "the freed segment's notice")
    print("after", *sorted(a.segments), flush=True)
"""


def test_segments_grow_across_processes_and_are_unmapped_when_freed(engine):
    from graphnet.cli.registry import execute
    eng, srv = engine
    before = counts(eng)
    server = run(srv, SMALL_SERVER, stdin=subprocess.PIPE)
    client = None
    try:
        first = server.stdout.readline().split()
        assert first[0] == "listening" and len(first) == 2
        client = run(srv, MANY_CLIENT, stdin=subprocess.PIPE)
        smapped = server.stdout.readline().split()
        cmapped = client.stdout.readline().split()
        segs = [r for r in json.loads(execute(eng, "show app segments --json")) if r["app"] == "small-server"]
        assert len(segs) == 2 and sum(r["fifos"] for r in segs) == 10           # 5 sessions, 2 fifos each
        assert len(smapped) == 3 and smapped[1] == first[1]                     # the server maps both
        assert len(cmapped) == 4                                                # the client: its own + both of the server's
        for p in (server, client):
            p.stdin.write("\n")
            p.stdin.flush()
        assert server.stdout.readline().split() == ["after", first[1]]
        assert client.stdout.readline().split()[0] == "after"
        for p in (server, client):
            rc, out, err = finish(p)
            assert rc == 0, err
    finally:
        for p in (server, client):
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.communicate()
    wait_counts(eng, before)


SHARED_SERVER = """
    import os
    from graphnet import app
    app.attach("shared")
    child = os.fork()                                   # two processes, two workers of one app
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5003))
    ls.listen()                                         # the second worker joins the same listener
    print("listening", os.getpid(), flush=True)
    ls.settimeout(10)
    for _ in range(2):
        c, _ = ls.accept()
        c.settimeout(5)
        c.recv(10)
        c.sendall(str(os.getpid()).encode())
        c.close()
    ls.close()
    if child:
        os.waitpid(child, 0)
    else:
        os._exit(0)
"""

WHO = """
    from graphnet import app
    app.attach("who")
    pids = []
    for i in range(4):
        with app.create_connection(("127.0.0.1", 5003), timeout=10) as s:
            s.sendall(b"who")
            pids.append(s.recv(20).decode())
    print(*pids)
"""


def test_a_listener_shared_by_workers_in_two_processes_spreads_connections(engine):
    eng, srv = engine
    server = run(srv, SHARED_SERVER)
    try:
        pids = {server.stdout.readline().split()[1] for _ in range(2)}
        assert len(pids) == 2
        rc, out, err = finish(run(srv, WHO))
        assert rc == 0, err
        got = out.split()
        assert sorted(got) == sorted(list(pids) * 2)                   # two connections each
        rc, out, err = finish(server)
        assert rc == 0, err
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
            server.communicate()


CLOSE_AND_EXIT = """
    import os, sys
    from graphnet import app
    app.attach("closer")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5004))
    ls.listen()
    print("listening", flush=True)
    c, _ = ls.accept()
    print("accepted", flush=True)
    sys.stdin.readline()
    c.sendall(b"last words")
    c.close()
    os._exit(0)                         # as a forked worker ends: no detach, the close still queued
"""

READER = """
    from graphnet import app
    app.attach("reader")
    s = app.create_connection(("127.0.0.1", 5004), timeout=10)
    print("connected", flush=True)
    got = b""
    while (b := s.recv(100)):
        got += b
    print(got.decode())
"""


def test_a_close_queued_just_before_the_process_exits_stays_a_close(engine):
    """The engine's loop is held while the server process writes, closes
    and exits: its close waits in its queue when the attach thread sees its
    socket close and queues the removal of its workers, which runs first.
    The close must still be a close (the reader gets the last bytes, then
    EOF), not the reset of a vanished process's live sessions."""
    eng, srv = engine
    server = run(srv, CLOSE_AND_EXIT, stdin=subprocess.PIPE)
    reader = None
    try:
        assert server.stdout.readline().split() == ["listening"]
        reader = run(srv, READER)
        assert reader.stdout.readline().strip() == "connected"
        assert server.stdout.readline().strip() == "accepted"

        def hold_the_loop():
            server.stdin.write("go\n")
            server.stdin.flush()
            server.wait(10)
            end = time.monotonic() + 5
            while not eng._calls and time.monotonic() < end:    # the attach thread's removal
                time.sleep(0.01)
            return len(eng._calls)
        assert eng.call(hold_the_loop, timeout=20) == 1
        rc, out, err = finish(reader)
        assert rc == 0, err
        assert out.strip() == "last words"
        assert srv.stats()["late_msgs"] >= 2                        # its TX and CLOSE, acted on at removal
    finally:
        for p in (server, reader):
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.communicate()
