"""The attach socket: how applications in other processes join a running
engine (issue 14 item 2). The client side is graphnet.app.

Server: ``AttachServer(engine, path=None, group=None, max_clients=64).start()``
listens on a Unix stream socket (default ``app.sock`` beside the control
socket; the startup file's ``[app_socket]`` sets path, group, max_clients).
A background thread accepts and reads; every complete request runs in the
engine's loop thread (``engine.call``), so the loop is never blocked by a
client and the session layer is only touched from the loop. The engine
must be running (``engine.start()`` or ``graphnet run``).

Protocol: each message, both ways, is a 4-byte little-endian length and
that many bytes of a JSON object (at most MAX_MSG). A reply may carry file
descriptors (SCM_RIGHTS), listed in its ``fds`` key in order.

    {"op": "attach", "name": "web", "options": {...AppOptions...}}
        -> {"ok": true, "app": "web", "secret": "<hex>", "worker": W, "segments": [S...]}
           fds: the segments' memfds, then W's event eventfd and W's signal eventfd
    {"op": "worker-add", "app": "web", "secret": "<hex>"}   (a new process: after fork)
        -> {"ok": true, "worker": W, "segments": [...]} (fds as for attach)
    {"op": "worker-del", "worker": n}            -> {"ok": true}
    {"op": "listen", "worker": n, "uri": "udp://0.0.0.0/7000"}   -> {"ok": true, "handle": h}
    {"op": "unlisten", "worker": n, "handle": h} -> {"ok": true}
    {"op": "connect", "worker": n, "uri": "...", "opaque": k}    -> {"ok": true, "handle": half-open}
    {"op": "segment", "index": i}                -> {"ok": true, "segment": S}, fds: its memfd
    {"op": "detach"}                             -> {"ok": true}; this process's workers go
    W = {"number", "index", "mq": [segment, offset], "ctrl": [segment, offset]}
    S = {"index", "size"}
    A segment freed by the segment manager is announced in the workers'
    event queues (type EVT_SEGMENT_DEL, its index in segment_index).
    errors: {"ok": false, "error": "<text>", "errno": <int, when there is one>}

Invariants:
  - who may connect: as the control socket (graphnet.unix_socket): mode
    0600, or 0660 with ``group``; the peer's SO_PEERCRED must be root, the
    engine's user or a member of the group, else one error and close
    (``refused["peer"]``); at most ``max_clients`` connections;
  - a message longer than MAX_MSG gets an error and the connection is
    closed (its framing is lost); a message that is not a JSON object with
    a known ``op``, or whose fields are wrong, gets an error and the
    connection goes on; a client that hangs up mid-message costs nothing;
  - workers belong to the connection that made them: a connection can only
    name its own workers; ``worker-add`` needs the app's secret (given at
    attach, inherited by fork); ``segment`` gives only the app's own
    segments or one that holds the fifos of a session of this
    connection's workers (a cut-through peer's); ``unlisten`` only the
    worker's own listeners; anything else is refused, counted by reason
    (``refused``: ``bad-field``, ``not-owner``, ``secret``);
  - when the connection closes without ``detach`` (the process exited or
    was killed), its workers are removed as vanished: their sessions are
    reset, half-opens cleaned up, their queues freed; the app goes with
    its last worker, its segments when their last fifo is gone
    (SessionManager.collect);
  - each worker's requests (tx, close, reset, rx-done, shutdown) come through its
    own app -> engine queue in its app's segment, read by the ``app-queue``
    node, which trusts the queue, not the message, for the worker.
"""
from __future__ import annotations

import array
import errno
import hmac
import json
import logging
import os
import selectors
import socket
import struct
import threading
from typing import Optional, Union

from graphnet.unix_socket import (SocketSetupError, group_id, in_group, listen_unix, unlink_own, peer_credentials,
                                  stop_serving)
from graphnet.session.session import SessionError, MSG_FORMAT, NO_HANDLE

log = logging.getLogger("graphnet.attach")

MAX_MSG = 4096                # bytes of JSON in one message
MAX_FDS = 64                  # descriptors in one reply
DEFAULT_MAX_CLIENTS = 64
COLLECT_INTERVAL = 1.0        # seconds idle between looks for segments to free
LEN = struct.Struct("<I")
OPTION_KEYS = ("rx_fifo_size", "tx_fifo_size", "segment_size", "max_segments", "mq_slots", "scope")
REFUSALS = ("peer", "busy", "oversized", "bad-message", "secret", "bad-field", "not-owner")
EVT_SEGMENT_DEL = 32          # engine -> app: segment_index is freed (not a session event; graphnet.app)


def default_attach_path() -> str:
    """``app.sock`` beside the control socket."""
    from graphnet.paths import default_socket_path
    return os.path.join(os.path.dirname(str(default_socket_path())), "app.sock")


def send_msg(sock: socket.socket, obj: dict, fds=()) -> None:
    """One framed message, with fds (SCM_RIGHTS) if any."""
    data = json.dumps(obj).encode()
    frame = LEN.pack(len(data)) + data
    if fds:
        sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(frame)


class AttachError(Exception):
    """A request refused; the text is for users; ``reason`` (one of
    REFUSALS) counts it in ``refused``."""

    def __init__(self, message: str, err: Optional[int] = None, reason: Optional[str] = None):
        super().__init__(message)
        self.errno = err
        self.reason = reason


class _Client:
    """One connection: its peer and the workers it made."""

    def __init__(self, conn: socket.socket, pid: int, uid: int):
        self.conn = conn
        self.pid = pid
        self.uid = uid
        self.buf = bytearray()
        self.app = None                         # Application, once attached
        self.workers: dict[int, int] = {}       # worker number -> app-queue slot
        self.detached = False


class AttachServer:
    """Serves the attach protocol (see module docstring)."""

    def __init__(self, engine, path: Optional[str] = None, *, group: Union[str, int, None] = None,
                 max_clients: int = DEFAULT_MAX_CLIENTS):
        if not 1 <= max_clients <= 4096:
            raise SocketSetupError(f"max_clients must be 1..4096, not {max_clients}")
        self.engine = engine
        self.path = str(path or default_attach_path())
        self.group = group
        self.gid = group_id(group)
        self.max_clients = max_clients
        self.refused = {r: 0 for r in REFUSALS}
        self.n_attached = 0
        self.n_vanished = 0
        self.n_segment_notices_lost = 0
        self.clients: dict[int, _Client] = {}   # fd -> client (served by the thread)
        self._sock = None
        self._inode = None
        self._made_dir = False
        self._thread = None
        self._wake_r = self._wake_w = None
        self._closing = threading.Event()

    @property
    def manager(self):
        from graphnet.session.application import session_manager
        return session_manager(self.engine)

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> "AttachServer":
        if self._sock is not None:
            raise SocketSetupError("the attach server is already started")
        if getattr(self.manager, "app_queues", None) is None:
            raise SocketSetupError("the engine has no app-queue node (add graphnet.nodes.session_host.NODES)")
        self._sock, self._inode, self._made_dir = listen_unix(self.path, self.gid, backlog=64)
        self._wake_r, self._wake_w = socket.socketpair()
        self._closing.clear()
        self.manager.attach_server = self
        self.engine.on_close.append(self.close)
        self._thread = threading.Thread(target=self._serve, name="graphnet-attach", daemon=True)
        self._thread.start()
        log.info("attach socket listening on %s", self.path)
        return self

    def close(self) -> None:
        """Stop serving; every client's workers go (as detached)."""
        if self._sock is None:
            return
        stop_serving(self._closing, self._wake_w, self._thread)
        self._thread = None
        for c in list(self.clients.values()):
            self._drop(c, vanished=False)
        self._sock.close()
        self._sock = None
        self._wake_r.close()
        self._wake_w.close()
        unlink_own(self.path, self._inode, self._made_dir)
        self._inode = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # --- the serving thread ------------------------------------------------------------

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        self._sel = sel
        try:
            while not self._closing.is_set():
                events = sel.select(COLLECT_INTERVAL)
                if not events:
                    self._collect()
                for key, _ in events:
                    if key.fileobj is self._wake_r or self._closing.is_set():
                        return
                    if key.fileobj is self._sock:
                        self._accept()
                    else:
                        self._readable(key.data)
        except Exception:
            log.exception("the attach server failed")
        finally:
            sel.close()

    def _collect(self) -> None:
        """When idle: free the segments whose last fifo went meanwhile (sessions
        of vanished workers close as their peers and transports finish)."""
        mgr = self.manager
        if mgr._dead or any(len(a.segments.segments) > 1 for a in mgr.apps.values()):
            try:
                self.engine.call(mgr.collect)
            except Exception:
                log.exception("collecting segments failed")

    def peer_allowed(self, uid: int, gid: int) -> bool:
        """Root, the engine's own user, or a member of the configured group."""
        return uid in (0, os.geteuid()) or (self.gid is not None and in_group(uid, gid, self.gid))

    def _accept(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError as e:
            log.warning("accept on %s failed: %s", self.path, e)
            return
        pid, uid, gid = peer_credentials(conn)
        if not self.peer_allowed(uid, gid):
            who = "root or uid %d" % os.geteuid() + (f" or group {self.group}" if self.group is not None else "")
            return self._refuse(conn, "peer", f"permission denied: uid {uid} may not attach to this engine "
                                              f"({who} may)", errno.EACCES)
        if len(self.clients) >= self.max_clients:
            return self._refuse(conn, "busy", f"too many clients ({self.max_clients} attached); try again later",
                                errno.EAGAIN)
        conn.setblocking(False)
        c = _Client(conn, pid, uid)
        self.clients[conn.fileno()] = c
        self._sel.register(conn, selectors.EVENT_READ, c)

    def _refuse(self, conn, reason: str, message: str, err: Optional[int] = None) -> None:
        self.refused[reason] += 1
        log.warning("attach socket %s: %s", self.path, message)
        try:
            conn.settimeout(0.5)
            send_msg(conn, {"ok": False, "error": message, "errno": err})
        except OSError:
            pass
        finally:
            conn.close()

    def _readable(self, c: _Client) -> None:
        try:
            data = c.conn.recv(MAX_MSG + LEN.size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c, vanished=not c.detached)
            return
        c.buf += data
        while len(c.buf) >= LEN.size:
            (n,) = LEN.unpack_from(c.buf)
            if n > MAX_MSG:
                self.refused["oversized"] += 1
                self._reply(c, {"ok": False, "error": f"message of {n} bytes: at most {MAX_MSG}; closing",
                                "errno": errno.EMSGSIZE})
                self._drop(c, vanished=True)
                return
            if len(c.buf) < LEN.size + n:
                return
            raw = bytes(c.buf[LEN.size:LEN.size + n])
            del c.buf[:LEN.size + n]
            answer, fds = self._answer(c, raw)
            self._reply(c, answer, fds)
            if c.detached:
                self._drop(c, vanished=False)
                return

    def _reply(self, c: _Client, answer: dict, fds=()) -> None:
        try:
            c.conn.settimeout(2.0)              # a client that does not read is dropped, not waited for
            send_msg(c.conn, answer, fds)
            c.conn.setblocking(False)
        except OSError:
            pass

    def _drop(self, c: _Client, vanished: bool) -> None:
        """The connection is gone: its workers go (reset if it vanished)."""
        if self.clients.pop(c.conn.fileno(), None) is None:
            return
        try:
            self._sel.unregister(c.conn)
        except (KeyError, ValueError, AttributeError):
            pass
        if vanished and c.workers:
            self.n_vanished += 1
        try:
            self.engine.call(self._del_workers, c, vanished)
        except Exception:
            log.exception("removing the workers of pid %d failed", c.pid)
        c.conn.close()

    # --- requests (in the loop thread) -------------------------------------------------

    def _answer(self, c: _Client, raw: bytes):
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
                raise ValueError("not a JSON object with an op")
        except (ValueError, UnicodeDecodeError) as e:
            self.refused["bad-message"] += 1
            return {"ok": False, "error": f"bad message: {e}", "errno": errno.EINVAL}, ()
        fn = getattr(self, "_op_" + msg["op"].replace("-", "_"), None)
        if fn is None:
            self.refused["bad-message"] += 1
            return {"ok": False, "error": f"unknown op {msg['op'][:32]!r}", "errno": errno.EINVAL}, ()
        try:
            out, fds = self.engine.call(fn, c, msg)
        except AttachError as e:
            if e.reason:
                self.refused[e.reason] += 1
            return {"ok": False, "error": str(e), "errno": e.errno}, ()
        except (SessionError, ValueError, TypeError, KeyError, MemoryError) as e:
            return {"ok": False, "error": str(e), "errno": _errno_of(e)}, ()
        out["ok"] = True
        return out, fds

    @staticmethod
    def _field(msg: dict, key: str, kind):
        v = msg.get(key)
        if not isinstance(v, kind) or isinstance(v, bool):
            raise AttachError(f"{msg['op']}: {key} must be {kind.__name__}", errno.EINVAL, "bad-field")
        return v

    def _worker(self, c: _Client, msg: dict):
        n = self._field(msg, "worker", int)
        if c.app is None or n not in c.workers:
            raise AttachError(f"worker {n} is not one of this process's workers", errno.EPERM, "not-owner")
        return c.app.workers[n]

    def _new_worker(self, c: _Client, app, w=None):
        """Give worker w (a new one of app if None) an app -> engine queue
        and describe it; (dict, fds)."""
        if w is None:
            w = app.add_worker()
        try:
            w.ctrl_segment, w.ctrl_mq = app.segments.alloc_mq(64, 64, signal=False)
        except BaseException:
            app.del_worker(w.number)
            raise
        w.pid = c.pid
        c.app = app
        c.workers[w.number] = self.manager.app_queues.register(w.ctrl_mq, w.index)
        segs = app.segments.segments
        fds = [s.fd for s in segs.values()] + [w.mq.fd, self.manager.app_queues.efd]
        return {"worker": {"number": w.number, "index": w.index, "mq": [w.mq_segment, w.mq.offset],
                           "ctrl": [w.ctrl_segment, w.ctrl_mq.offset]},
                "segments": [{"index": i, "size": s.size} for i, s in segs.items()],
                "app": app.name, "fds": ["segment"] * len(segs) + ["mq", "ctrl"]}, fds

    def _op_attach(self, c: _Client, msg: dict):
        if c.app is not None:
            raise AttachError(f"this connection is already attached as {c.app.name!r}", errno.EISCONN)
        name = self._field(msg, "name", str)
        opts = msg.get("options") or {}
        if not isinstance(opts, dict) or set(opts) - set(OPTION_KEYS):
            raise AttachError(f"attach options: a table of {', '.join(OPTION_KEYS)}", errno.EINVAL, "bad-field")
        app = self.manager.attach(name, **opts)
        app.attach_secret = os.urandom(16).hex()
        app.segments.on_free.append(self._segment_freed)
        out, fds = self._new_worker(c, app, app.workers[0])
        out["secret"] = app.attach_secret
        self.n_attached += 1
        return out, fds

    def _op_worker_add(self, c: _Client, msg: dict):
        name = self._field(msg, "app", str)
        secret = self._field(msg, "secret", str)
        try:
            app = self.manager.app(name)
        except SessionError:
            raise AttachError(f"no app named {name!r}", errno.ENOENT) from None
        if not hmac.compare_digest(secret.encode(), getattr(app, "attach_secret", "").encode()) or \
                (c.app is not None and c.app is not app):
            self.refused["secret"] += 1
            raise AttachError(f"app {name!r}: wrong secret", errno.EPERM)
        return self._new_worker(c, app)

    def _op_worker_del(self, c: _Client, msg: dict):
        w = self._worker(c, msg)
        self._del_worker(c, w.number, vanished=False)
        return {}, ()

    def _op_listen(self, c: _Client, msg: dict):
        w = self._worker(c, msg)
        uri = self._field(msg, "uri", str)
        try:
            try:
                return {"handle": w.listen(uri)}, ()
            except SessionError as e:
                if c.app.options.scope != "both" or "no transport registered" not in str(e):
                    raise
                # no such transport in this engine (yet): listen for cut-through only
                return {"handle": w.listen(uri, scope="local"), "note": f"{e}: cut-through only"}, ()
        except SessionError as e:
            raise AttachError(str(e), errno.EADDRINUSE if "in use" in str(e) else errno.EINVAL) from None

    def _op_unlisten(self, c: _Client, msg: dict):
        w = self._worker(c, msg)
        handle = self._field(msg, "handle", int)
        if handle not in w.listeners:
            raise AttachError(f"unlisten: {handle:#x} is not a listener of worker {w.number}", errno.EPERM,
                              "not-owner")
        w.unlisten(handle)
        return {}, ()

    def _op_connect(self, c: _Client, msg: dict):
        w = self._worker(c, msg)
        opaque = msg.get("opaque", 0)
        if not isinstance(opaque, int) or not 0 <= opaque <= 0xffffffff:
            raise AttachError("connect: opaque must be a u32", errno.EINVAL, "bad-field")
        uri = self._field(msg, "uri", str)
        try:
            return {"handle": w.connect(uri, opaque=opaque)}, ()
        except SessionError as e:
            raise AttachError(f"connect to {uri}: {e}", _errno_of(e)) from None

    def _op_segment(self, c: _Client, msg: dict):
        idx = self._field(msg, "index", int)
        if c.app is None:
            raise AttachError("attach first", errno.ENOTCONN)
        layer = self.manager.layer
        seg = c.app.segments.segments.get(idx)
        if seg is None:
            wrks = {c.app.workers[n].index for n in c.workers}
            if any((s := layer.session(h)) and s["wrk"] in wrks and s["segment"] == idx for h in layer.handles()):
                seg = layer.segments.get(idx)
        if seg is None:
            raise AttachError(f"segment {idx} is not this app's and holds none of its sessions", errno.EPERM,
                              "not-owner")
        return {"segment": {"index": idx, "size": seg.size}, "fds": ["segment"]}, [seg.fd]

    def _op_detach(self, c: _Client, msg: dict):
        c.detached = True
        return {}, ()

    def _segment_freed(self, index: int) -> None:
        """Tell every worker in another process that segment `index` is gone
        (a SEGMENT_DEL event; the app unmaps it if it mapped it). A full
        queue drops the notice (counted): that process keeps a dead mapping."""
        msg = struct.pack(MSG_FORMAT, EVT_SEGMENT_DEL, 0, 0, 0, NO_HANDLE, 0, 0, 0, index, 0, 0, 0, 0, 0, 0, 0)
        for app in self.manager.apps.values():
            for w in app.workers.values():
                if w.pid is not None and w.mq is not None:
                    if not w.mq.enqueue(msg):
                        self.n_segment_notices_lost += 1

    def _del_worker(self, c: _Client, number: int, vanished: bool) -> None:
        slot = c.workers.pop(number)
        self.manager.app_queues.unregister(slot)
        if number in c.app.workers:
            c.app.del_worker(number, vanished=vanished)

    def _del_workers(self, c: _Client, vanished: bool) -> None:
        for n in list(c.workers):
            self._del_worker(c, n, vanished)
        self.manager.layer.run_ctrl()
        self.manager.collect()

    # --- views ----------------------------------------------------------------------

    def stats(self) -> dict:
        return {"path": self.path, "group": self.group, "clients": len(self.clients),
                "max_clients": self.max_clients, "attached": self.n_attached, "vanished": self.n_vanished,
                "late_msgs": self.manager.app_queues.drained,
                "segment_notices_lost": self.n_segment_notices_lost, "refused": dict(self.refused)}

    def client_rows(self) -> list[dict]:
        return [{"pid": c.pid, "uid": c.uid, "app": c.app.name if c.app else None, "workers": sorted(c.workers)}
                for c in list(self.clients.values())]


def _errno_of(e: Exception) -> int:
    text = str(e)
    if "refused" in text or "no local listener" in text or "no transport registered" in text:
        return errno.ECONNREFUSED
    if "(-12)" in text or isinstance(e, MemoryError):
        return errno.ENOMEM
    if "in use" in text:
        return errno.EADDRINUSE
    return errno.EINVAL
