"""An application process that scribbles on the headers of its own fifos
in the shared segment while traffic flows (issue 14, bad input; rule
"hostile by default"). The engine keeps its own geometry for every fifo
(graphnet.session.fifo: a private gn_fifo_t over the shared header) and
clamps the head and tail it reads, so whatever the app writes, the
engine neither writes nor reads outside that session's fifo: another
session's bytes, waiting in the fifo next to the victim's, arrive intact
(sha256), nothing of them leaks into the victim's datagrams, the engine
serves a well-behaved app afterwards, and nothing leaks.

The hostile process writes at the offsets of the header as it was before
the split (320 bytes, with n_ooo and the out-of-order ranges in the
segment); since the split those last bytes are the victim fifo's own
data."""
import json
import subprocess

import pytest

from graphnet.session.application import session_manager
from graphnet.session.show import show_app, show_session
from test_app_process import engine, run, finish, counts, wait_for, wait_counts, UDP_CLIENT, ENGINE_IP  # noqa: F401

HOSTILE = """
    import hashlib, json, os, struct, sys, time
    from graphnet import app
    from graphnet.session.fifo import HEADER_BYTES
    ip, mode = sys.argv[1], sys.argv[2]
    app.attach("hostile-" + mode)
    v = app.socket(app.AF_INET, app.SOCK_DGRAM)        # the victim: its headers get scribbled on
    v.settimeout(3)
    v.connect((ip, 7))
    c = app.socket(app.AF_INET, app.SOCK_DGRAM)        # the canary: its fifos lie after the victim's
    c.settimeout(3)
    c.connect((ip, 7))
    vs, cs = v._s, c._s
    seg = vs.rx.segment
    assert cs.rx.segment.index == seg.index and cs.rx.offset > vs.tx.offset > vs.rx.offset
    FIELD = dict(magic=0, size=4, segment_index=8, master_session_index=16, peer=24, flags=28,
                 head=64, tail=128, n_ooo=144, ooo=152)

    def put(f, field, value, k=0):
        struct.pack_into("<I", seg.view(f.offset, 512), FIELD[field] + 4 * k, value & 0xffffffff)

    def get(f, field):
        return struct.unpack_from("<I", seg.view(f.offset, 512), FIELD[field])[0]

    def data(f):
        return f.offset + HEADER_BYTES

    def wait(cond):
        end = time.monotonic() + 3
        while not cond() and time.monotonic() < end:
            time.sleep(0.005)

    def pow2_above(n):
        return 1 << n.bit_length()

    # the canary's echo waits, unread, in its rx fifo
    secret = os.urandom(1000)
    c.send(secret)
    wait(lambda: cs.rx.max_dequeue >= 16 + len(secret))
    leak = False
    if mode == "size":
        # a ring as large as reaching the canary, head and tail on its data
        d = data(cs.rx) - data(vs.rx)
        put(vs.rx, "size", pow2_above(d + 4096))
        put(vs.rx, "head", d)
        put(vs.rx, "tail", d)
        v.send(b"x" * len(secret))
        wait(lambda: get(vs.rx, "tail") != d)
    elif mode == "tx":
        # the tx ring made to cover the canary's pending datagram, then "send it"
        d = data(cs.rx) - data(vs.tx)
        put(vs.tx, "size", pow2_above(d + 4096))
        put(vs.tx, "head", d)
        put(vs.tx, "tail", d + 16 + len(secret))
        v._w.send(64, vs.handle)                       # GN_APP_MSG_TX
        v.settimeout(0.2)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                leak |= secret in v.recv(4096)
            except OSError:
                pass
    elif mode == "header":
        # every fixed field junk (the tx size only after our send: this
        # process's own Python view of its fifo is not what is tested), a
        # head that makes used > size, and out-of-order ranges where the
        # header had them before the split (the engine keeps its own now:
        # these bytes are the victim's ring)
        for f in (vs.rx, vs.tx):
            for field, x in (("magic", 0xdeadbeef), ("segment_index", 0), ("peer", 0x12345678),
                             ("master_session_index", 0xffffffff), ("flags", 0xffffffff)):
                put(f, field, x)
        put(vs.rx, "size", 3)
        put(vs.rx, "head", get(vs.rx, "tail") + (1 << 31))
        put(vs.rx, "n_ooo", 0xffffffff)
        for k, x in enumerate((get(vs.rx, "tail"), 0, 1 << 31, 0)):
            put(vs.rx, "ooo", x, k)
        v.send(b"z" * 100)
        put(vs.tx, "size", 3)
    got = c.recv(4096)
    again = os.urandom(700)
    c.send(again)
    got2 = c.recv(4096)
    print(json.dumps({"want": hashlib.sha256(secret).hexdigest(), "got": hashlib.sha256(got).hexdigest(),
                      "again": got2 == again, "leak": leak, "v": vs.handle}), flush=True)
    sys.stdin.readline()
    c.close()
    v.close()
"""


@pytest.mark.parametrize("mode", ["size", "tx", "header"])
def test_scribbled_fifo_headers_touch_nothing_outside_the_session(engine, mode):
    eng, srv = engine
    mgr = session_manager(eng)
    before = counts(eng)
    tampered_before = eng.call(mgr.layer.stats).get("fifo_tampered", 0)
    p = run(srv, HOSTILE, ENGINE_IP, mode, stdin=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        rc, out, err = finish(p)
        pytest.fail(f"the hostile app died ({rc}): {err}")
    r = json.loads(line)
    assert r["got"] == r["want"], "the canary session's bytes were overwritten"
    assert r["again"], "the canary session is not served after the scribbling"
    assert not r["leak"], "the canary's bytes went out in the victim's datagrams"
    if mode == "header":
        s = wait_for(lambda: (x := eng.call(mgr.layer.session, r["v"])) and x["fifo_clamped"] and x, 5,
                     "the junk head to be clamped")
        assert s["fifo_tampered"] == ["rx", "tx"]
        assert "fifo faults" in eng.call(show_session, eng)
        assert "scribbled" in eng.call(show_app, eng, "hostile-header")
    p.stdin.write("\n")
    p.stdin.flush()
    rc, out, err = finish(p)
    assert rc == 0, err
    # the engine goes on: a well-behaved app is served; nothing is left behind
    rc, out, err = finish(run(srv, UDP_CLIENT, ENGINE_IP))
    assert rc == 0 and out.strip() == "ok 50", err
    wait_counts(eng, before)
    if mode == "header":
        assert eng.call(mgr.layer.stats)["fifo_tampered"] == tampered_before + 2


CANARY = """
    import os, sys
    from graphnet import app
    app.attach("canary")
    socks = []
    for i in range(2):                      # UDP connections 0 and 1 of the engine
        u = app.socket(app.AF_INET, app.SOCK_DGRAM)
        u.settimeout(3)
        u.connect((sys.argv[1], 7))
        socks.append(u)
    print("ready", flush=True)
    sys.stdin.readline()
    for u in socks:
        msg = os.urandom(500)
        u.send(msg)
        print(u.recv(1000) == msg, flush=True)
"""

LISTENER_CLOSE = """
    import sys
    from graphnet import app
    a = app.attach("closer")
    w = a.worker
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.bind(("0.0.0.0", 9999))               # UDP listener 1 (the echo's is 0)
    h = u._s.handle
    # close, reset and shutdown naming our own listener: the transport's
    # close takes a connection index, and the listener's is another app's
    # connection's
    w.send(65, h)
    w.send(66, h)
    w.send(69, h)
    w.wait_for(lambda: len(w.errors) >= 3, 5, "error events")
    print(sorted(e["retval"] for e in w.errors))
    u.close()
"""


def test_close_or_reset_naming_a_listener_is_refused_and_counted(engine):
    eng, srv = engine
    canary = run(srv, CANARY, ENGINE_IP, stdin=subprocess.PIPE)
    assert canary.stdout.readline().strip() == "ready"
    rc, out, err = finish(run(srv, LISTENER_CLOSE))
    assert rc == 0, err
    assert out.split("\n")[0] == "[65, 66, 69]"
    canary.stdin.write("\n")
    canary.stdin.flush()
    rc, out, err = finish(canary)
    assert rc == 0, err
    assert out.split() == ["True", "True"]                       # another app's sessions untouched
    assert eng.error_count("app-queue", "listener") == 3
    assert eng.error_count("app-queue", "bad-msg") == 3


SNOOP = """
    import sys
    from graphnet import app
    a = app.attach("snoop")
    n = a.worker.number
    asks = [{"op": "segment", "index": int(sys.argv[1])},                 # the echo app's segment
            {"op": "unlisten", "worker": n, "handle": int(sys.argv[2])},  # the echo app's listener
            {"op": "listen", "worker": n + 5, "uri": "udp://0.0.0.0/5555"},  # a worker not ours
            {"op": "connect", "worker": n, "uri": "udp://10.0.0.1/7", "opaque": -1}]
    for m in asks:
        try:
            a.request(m)
            print("granted", m["op"])
        except PermissionError:
            print("refused", m["op"], "EPERM")
        except OSError as e:
            print("refused", m["op"], e.errno)
"""


def test_naming_another_apps_segment_listener_or_worker_is_refused_and_counted(engine):
    eng, srv = engine
    mgr = session_manager(eng)
    echo = next(a for a in mgr.apps.values() if a.name != "snoop")
    seg = next(iter(echo.segments.segments))
    listener = next(h for h in eng.call(mgr.layer.handles) if "listener" in eng.call(mgr.layer.session, h)["flags"])
    before = dict(srv.stats()["refused"])
    rc, out, err = finish(run(srv, SNOOP, seg, listener))
    assert rc == 0, err
    assert out.splitlines() == ["refused segment EPERM", "refused unlisten EPERM", "refused listen EPERM",
                                "refused connect 22"]
    after = srv.stats()["refused"]
    assert after["not-owner"] - before.get("not-owner", 0) == 3
    assert after["bad-field"] - before.get("bad-field", 0) == 1
    assert eng.call(mgr.layer.session, listener) is not None                # the echo's listener is still there
