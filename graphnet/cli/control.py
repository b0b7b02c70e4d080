"""The control socket: how ``graphnet ctl`` reaches a running engine.

Server: ``ControlServer(engine, path).start()`` listens on a Unix stream
socket and serves it from a background thread; ``close()`` stops it and
removes the socket file.

Protocol (one connection may carry several requests, in order):

    client -> server   one command line, UTF-8, ending in "\\n"
    server -> client   one JSON object on one line, ending in "\\n":
                       {"ok": true, "output": "<text>"} or
                       {"ok": false, "error": "<message>"}

The client may close after its first answer (``send_command`` does).

Invariants:

- The socket file is created with mode 0600 and is only ever listened on
  after its mode is set: connect() before listen() is refused, so no peer can
  talk to it while its mode is wider. The directory is created 0700 when the
  server creates it.
- A socket file left by a dead engine (connect refused) is replaced; a live
  one (connect succeeds) is never touched: start() raises ControlError
  "an engine is already running on <path>". A path that exists and is not a
  socket is never removed.
- close() removes the socket file only if it is still the one this server
  bound (same inode), so it never deletes a newer engine's socket.
- A command's failure becomes an error answer; nothing a client sends (bad
  UTF-8, an over-long line, a hang-up) stops the server. Commands run through
  ``graphnet.cli.registry``, hence in the engine's loop thread.
- No network: only AF_UNIX sockets.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import selectors
import socket
import stat
import threading
from pathlib import Path
from typing import Optional

from graphnet.cli.registry import CommandError, Registry, default_registry

log = logging.getLogger("graphnet.control")

MAX_LINE = 64 * 1024          # bytes in one command line
CLIENT_IDLE_TIMEOUT = 60.0    # seconds a connection may stay silent
ENV_SOCKET = "GRAPHNET_SOCKET"


class ControlError(Exception):
    """The control socket cannot be served or reached; the text is for users."""


class NoEngineError(ControlError):
    """Nothing listens on the socket path."""


def default_socket_path() -> str:
    """$GRAPHNET_SOCKET if set; /run/graphnet/cli.sock for root; else
    $XDG_RUNTIME_DIR/graphnet/cli.sock, or /tmp/graphnet-$UID/cli.sock."""
    env = os.environ.get(ENV_SOCKET)
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/graphnet/cli.sock"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "graphnet", "cli.sock")
    return f"/tmp/graphnet-{os.getuid()}/cli.sock"


def _probe(path: str) -> bool:
    """True if something accepts connections on the socket at path."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except socket.timeout:          # a listener whose backlog is full is alive
        return True
    finally:
        s.close()


def _prepare_dir(directory: Path) -> None:
    """Create the socket's directory (0700), or check that an existing one
    is not another user's: its owner could replace our socket."""
    if directory.exists():
        owner = directory.stat().st_uid
        if owner not in (0, os.geteuid()):
            raise ControlError(f"{directory} belongs to another user (uid {owner}); "
                               f"choose another path with --socket")
        return
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return
    except PermissionError:
        raise ControlError(f"cannot create {directory}: permission denied "
                           f"(run as root, or choose another path with --socket)") from None


class ControlServer:
    """Serves command lines on a Unix socket (see module docstring)."""

    def __init__(self, engine, path: Optional[str] = None, registry: Optional[Registry] = None):
        self.engine = engine
        self.path = str(path or default_socket_path())
        self.registry = registry or default_registry()
        self._sock: Optional[socket.socket] = None
        self._inode: Optional[tuple] = None
        self._thread: Optional[threading.Thread] = None
        self._wake_r, self._wake_w = None, None
        self._closing = threading.Event()
        self._clients: set = set()
        self._lock = threading.Lock()

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> "ControlServer":
        if self._sock is not None:
            raise ControlError("the control server is already started")
        if len(os.fsencode(self.path)) >= 108:
            raise ControlError(f"socket path too long for a Unix socket (max 107 bytes): {self.path}")
        p = Path(self.path)
        _prepare_dir(p.parent)
        self._replace_stale(p)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.bind(self.path)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:       # lost a race with another engine
                    raise ControlError(f"an engine is already running on {self.path}") from None
                if e.errno in (errno.EACCES, errno.EPERM):
                    raise ControlError(f"cannot create {self.path}: permission denied "
                                       f"(run as root, or choose another path with --socket)") from None
                raise ControlError(f"cannot bind {self.path}: {e.strerror}") from None
            os.chmod(self.path, 0o600)                  # before listen(): see invariants
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(16)
        except BaseException:
            sock.close()
            self._unlink_own()
            raise
        self._sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._closing.clear()
        self._thread = threading.Thread(target=self._serve, name="graphnet-cli", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", self.path)
        return self

    def _replace_stale(self, p: Path) -> None:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlError(f"{p} exists and is not a socket; remove it or choose another path")
        if _probe(str(p)):
            raise ControlError(f"an engine is already running on {p}")
        log.info("removing stale control socket %s", p)
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except PermissionError:
            raise ControlError(f"cannot remove the stale socket {p}: permission denied") from None

    def close(self) -> None:
        """Stop serving, drop client connections, remove the socket file."""
        if self._sock is None:
            return
        self._closing.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
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
        if self._inode is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
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
                    t = threading.Thread(target=self._client, args=(conn,),
                                         name="graphnet-cli-client", daemon=True)
                    t.start()
        finally:
            sel.close()

    def _client(self, conn: socket.socket) -> None:
        with self._lock:
            self._clients.add(conn)
        conn.settimeout(CLIENT_IDLE_TIMEOUT)
        buf = b""
        try:
            while not self._closing.is_set():
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_LINE:
                        self._reply(conn, {"ok": False, "error": f"command line longer than {MAX_LINE} bytes"})
                        return
                    data = conn.recv(65536)
                    if not data:
                        if buf.strip():        # a last line without "\n" still gets its answer
                            self._reply(conn, self.answer(buf))
                        return
                    buf += data
                    continue
                line, buf = buf[:nl], buf[nl + 1:]
                self._reply(conn, self.answer(line))
        except (OSError, socket.timeout):
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
            log.exception("command %r failed", line)
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
        try:
            s.sendall(line.encode("utf-8") + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                data = s.recv(65536)
                if not data:
                    break
                buf += data
        except socket.timeout:
            raise ControlError(f"the engine on {path} did not answer within {timeout}s") from None
        except OSError as e:
            raise ControlError(f"lost the connection to {path}: {e.strerror or e}") from None
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
