"""The control socket: how ``graphnet ctl`` reaches a running engine.

Server: ``ControlServer(engine, path, group=None, max_clients=16,
idle_timeout=60.0).start()`` listens on a Unix stream socket; a background
thread accepts, each admitted connection is served by a thread of its own;
``close()`` stops it and removes the socket file. The startup file's
``[cli]`` keys ``group``, ``max_clients`` and ``idle_timeout`` set them.

Protocol (one connection may carry several requests, in order):

    client -> server   one command line, UTF-8, ending in "\\n"
    server -> client   one JSON object on one line, ending in "\\n":
                       {"ok": true, "output": "<text>"} or
                       {"ok": false, "error": "<message>"}

The client may close after its first answer (``send_command`` does).

Invariants:

- Who may talk: the peer's credentials (SO_PEERCRED, from the kernel, taken
  at accept) must be root's, the engine's own user's, or, with ``group``,
  those of a member of that group (primary or supplementary). Anyone else
  gets one error line and is disconnected before a byte of theirs is read.
- The socket file is created with mode 0600 (0660 and that group with
  ``group``) and is only ever listened on after its mode is set: connect()
  before listen() is refused, so no peer can talk to it while its mode is
  wider. Its directory is created 0700 (0710 and the group with ``group``)
  when missing; an existing one must belong to root or to us and not be
  writable by others (graphnet.paths.check_dir): else start() refuses with a
  ControlError that says why.
- Bounded: at most ``max_clients`` connections at once (one thread each);
  the next one gets the error line "too many clients" and is closed. A
  connection silent for ``idle_timeout`` seconds is told so and closed. A
  line is read in chunks of RECV_CHUNK bytes into a buffer that never holds
  more than MAX_LINE + RECV_CHUNK: a line longer than MAX_LINE is answered
  with an error, never executed, and the connection is closed.
- A socket file left by a dead engine (connect refused) is replaced; a live
  one (connect succeeds) is never touched: start() raises ControlError
  "an engine is already running on <path>". A path that exists and is not a
  socket is never removed.
- close() removes the socket file only if it is still the one this server
  bound (same inode), so it never deletes a newer engine's socket.
- A command's failure becomes an error answer; nothing a client sends (bad
  UTF-8, an over-long line, a hang-up, a flood of connections) stops the
  server. Commands run through
  ``graphnet.cli.registry``, hence in the engine's loop thread.
- No network: only AF_UNIX sockets.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import threading
from typing import Optional, Union

from graphnet.cli.registry import CommandError, Registry, default_registry
from graphnet.paths import ENV_SOCKET, UnsafePathError, default_socket_path, private_dir, runtime_dir  # noqa: F401
from graphnet.unix_socket import (SocketSetupError, group_id as _group_id, in_group, listen_unix,  # noqa: F401
                                  unlink_own, peer_credentials, stop_serving)

log = logging.getLogger("graphnet.control")

MAX_LINE = 64 * 1024          # bytes in one command line
RECV_CHUNK = 4096             # bytes read at a time
DEFAULT_MAX_CLIENTS = 16      # connections served at once
DEFAULT_IDLE_TIMEOUT = 60.0   # seconds a connection may stay silent


class ControlError(SocketSetupError):
    """The control socket cannot be served or reached; the text is for users."""


def group_id(group: Union[str, int, None]) -> Optional[int]:
    """A group name or number as a gid (None: no group); ControlError if unknown."""
    try:
        return _group_id(group)
    except SocketSetupError as e:
        raise ControlError(str(e)) from None


class NoEngineError(ControlError):
    """Nothing listens on the socket path."""


class ControlServer:
    """Serves command lines on a Unix socket (see module docstring)."""

    def __init__(self, engine, path: Optional[str] = None, registry: Optional[Registry] = None, *,
                 group: Union[str, int, None] = None, max_clients: int = DEFAULT_MAX_CLIENTS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT):
        self.engine = engine
        self.path = str(path or default_socket_path())
        self.registry = registry or default_registry()
        if not max_clients >= 1:
            raise ControlError(f"max_clients must be at least 1, not {max_clients}")
        if not idle_timeout > 0:
            raise ControlError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
        self.group = group
        self.gid = group_id(group)
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self.refused = {"peer": 0, "busy": 0, "long_line": 0, "idle": 0}   # connections closed, by reason
        self._sock: Optional[socket.socket] = None
        self._inode: Optional[tuple] = None
        self._made_dir = False
        self._thread: Optional[threading.Thread] = None
        self._wake_r, self._wake_w = None, None
        self._closing = threading.Event()
        self._clients: set = set()
        self._lock = threading.Lock()

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> "ControlServer":
        if self._sock is not None:
            raise ControlError("the control server is already started")
        try:
            self._sock, self._inode, self._made_dir = listen_unix(self.path, self.gid)
        except SocketSetupError as e:
            raise ControlError(str(e)) from None
        self._wake_r, self._wake_w = socket.socketpair()
        self._closing.clear()
        self._thread = threading.Thread(target=self._serve, name="graphnet-cli", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", self.path)
        return self

    def close(self) -> None:
        """Stop serving, drop client connections, remove the socket file."""
        if self._sock is None:
            return
        stop_serving(self._closing, self._wake_w, self._thread)
        self._thread = None
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        self._sock = None
        self._wake_r.close()
        self._wake_w.close()
        self._unlink_own()
        log.info("control socket %s closed", self.path)

    def _unlink_own(self) -> None:
        unlink_own(self.path, self._inode, self._made_dir)
        self._inode = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # --- serving --------------------------------------------------------------------

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._closing.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r or self._closing.is_set():
                        return
                    try:
                        conn, _ = self._sock.accept()
                    except OSError as e:
                        log.warning("accept on %s failed: %s", self.path, e)
                        continue
                    self._admit(conn)
        finally:
            sel.close()

    def peer_allowed(self, uid: int, gid: int) -> bool:
        """Root, the engine's own user, or a member of the configured group."""
        return uid in (0, os.geteuid()) or (self.gid is not None and in_group(uid, gid, self.gid))

    def _admit(self, conn: socket.socket) -> None:
        """Check the peer and the client count; serve in a thread, or refuse."""
        _, uid, gid = peer_credentials(conn)
        if not self.peer_allowed(uid, gid):
            log.warning("control socket %s: refused a client with uid %d", self.path, uid)
            who = "root or uid %d" % os.geteuid() + (f" or group {self.group}" if self.group is not None else "")
            self._refuse(conn, "peer", f"permission denied: uid {uid} may not use this engine's control socket "
                                       f"({who} may)")
            return
        with self._lock:
            busy = len(self._clients) >= self.max_clients
            if not busy:
                self._clients.add(conn)
        if busy:
            self._refuse(conn, "busy", f"too many clients ({self.max_clients} connected); try again later")
            return
        t = threading.Thread(target=self._client, args=(conn,), name="graphnet-cli-client", daemon=True)
        t.start()

    def _refuse(self, conn: socket.socket, reason: str, message: str) -> None:
        self.refused[reason] += 1
        try:
            conn.settimeout(0.5)
            self._reply(conn, {"ok": False, "error": message})
        except OSError:
            pass
        finally:
            conn.close()

    def _client(self, conn: socket.socket) -> None:
        conn.settimeout(self.idle_timeout)
        buf = bytearray()                # never more than MAX_LINE + RECV_CHUNK bytes
        try:
            while not self._closing.is_set():
                nl = buf.find(b"\n")
                if nl > MAX_LINE or (nl < 0 and len(buf) > MAX_LINE):
                    self.refused["long_line"] += 1
                    self._reply(conn, {"ok": False, "error": f"command line longer than {MAX_LINE} bytes; "
                                                              f"not executed, closing"})
                    return
                if nl >= 0:
                    line = bytes(buf[:nl])
                    del buf[:nl + 1]
                    self._reply(conn, self.answer(line))
                    continue
                try:
                    data = conn.recv(RECV_CHUNK)
                except socket.timeout:
                    self.refused["idle"] += 1
                    self._reply(conn, {"ok": False, "error": f"idle for {self.idle_timeout:g} s; closing"})
                    return
                if not data:
                    if buf.strip():        # a last line without "\n" still gets its answer
                        self._reply(conn, self.answer(bytes(buf)))
                    return
                buf += data
        except OSError:
            pass
        finally:
            with self._lock:
                self._clients.discard(conn)
            conn.close()

    @staticmethod
    def _reply(conn: socket.socket, answer: dict) -> None:
        conn.sendall(json.dumps(answer).encode() + b"\n")

    def answer(self, raw: bytes) -> dict:
        """The reply to one request line (never raises)."""
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return {"ok": False, "error": "the command line is not valid UTF-8"}
        try:
            return {"ok": True, "output": self.registry.execute(self.engine, line)}
        except CommandError as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:  # registry.execute should not raise anything else
            log.error("command %r failed: %s: %s", line, type(e).__name__, e,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            return {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}


def send_command(path: Optional[str], line: str, timeout: float = 10.0) -> tuple[bool, str]:
    """Send one command line to the engine listening on path.

    Returns (ok, text): text is the output, or the error message when ok is
    False. Raises NoEngineError when nothing listens there and ControlError
    for other failures to talk to it."""
    path = str(path or default_socket_path())
    if "\n" in line:
        raise ControlError("a command line cannot contain a newline")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise NoEngineError(f"no graphnet engine is listening on {path}; "
                                f"start one with `graphnet run`") from None
        except PermissionError:
            raise ControlError(f"permission denied on {path}: the engine belongs to another user "
                               f"(try as that user, or as root)") from None
        except socket.timeout:
            raise ControlError(f"the engine on {path} did not accept the connection within {timeout}s") from None
        except OSError as e:
            raise ControlError(f"cannot connect to {path}: {e.strerror or e}") from None
        lost = None
        try:
            s.sendall(line.encode("utf-8") + b"\n")
        except (BrokenPipeError, ConnectionResetError) as e:
            lost = e                       # refused at once (busy, not allowed): its answer may be waiting
        except socket.timeout:
            raise ControlError(f"the engine on {path} did not take the command within {timeout}s") from None
        buf = b""
        try:
            while not buf.endswith(b"\n"):
                data = s.recv(65536)
                if not data:
                    break
                buf += data
        except socket.timeout:
            raise ControlError(f"the engine on {path} did not answer within {timeout}s") from None
        except OSError as e:
            lost = lost or e
        if lost is not None and not buf.endswith(b"\n"):
            raise ControlError(f"lost the connection to {path}: {lost.strerror or lost}") from None
    finally:
        s.close()
    if not buf:
        raise ControlError(f"the engine on {path} closed the connection without answering")
    try:
        reply = json.loads(buf)
        ok = bool(reply["ok"])
        return ok, str(reply["output"] if ok else reply["error"])
    except (ValueError, KeyError, TypeError):
        raise ControlError(f"the engine on {path} sent an answer that is not graphnet's: {buf[:80]!r}") from None
