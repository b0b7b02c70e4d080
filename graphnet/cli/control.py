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

import errno
import grp
import json
import logging
import os
import pwd
import selectors
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Optional, Union

from graphnet.cli.registry import CommandError, Registry, default_registry
from graphnet.paths import ENV_SOCKET, UnsafePathError, default_socket_path, private_dir, runtime_dir  # noqa: F401

log = logging.getLogger("graphnet.control")

MAX_LINE = 64 * 1024          # bytes in one command line
RECV_CHUNK = 4096             # bytes read at a time
DEFAULT_MAX_CLIENTS = 16      # connections served at once
DEFAULT_IDLE_TIMEOUT = 60.0   # seconds a connection may stay silent
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(Exception):
    """The control socket cannot be served or reached; the text is for users."""


class NoEngineError(ControlError):
    """Nothing listens on the socket path."""


def group_id(group: Union[str, int, None]) -> Optional[int]:
    """A group name or number as a gid (None: no group); ControlError if unknown."""
    if group is None:
        return None
    try:
        return grp.getgrgid(group).gr_gid if isinstance(group, int) else grp.getgrnam(group).gr_gid
    except (KeyError, OverflowError):
        raise ControlError(f"no group {group!r} on this machine (see /etc/group)") from None


def in_group(uid: int, gid: int, group: int) -> bool:
    """uid (whose primary gid is gid) is a member of group."""
    if gid == group:
        return True
    try:
        pw = pwd.getpwuid(uid)
        return group in os.getgrouplist(pw.pw_name, pw.pw_gid)
    except (KeyError, OSError):
        return False


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


def _prepare_dir(directory: Path, gid: Optional[int]) -> None:
    """Create the socket's directory (0700), or check that an existing one
    cannot be tampered with (graphnet.paths.check_dir): a user who can
    write to it could replace our socket. With a group, a private
    directory of ours becomes 0710 and that group's, so members reach the
    socket (and cannot list or change the directory)."""
    try:
        private_dir(directory, "socket directory")
    except UnsafePathError as e:
        raise ControlError(f"{e} (or choose another path with --socket)") from None
    if gid is not None:
        st = os.stat(directory)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) in (0o700, 0o710):
            os.chown(directory, -1, gid)
            os.chmod(directory, 0o710)


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
        if len(os.fsencode(self.path)) >= 108:
            raise ControlError(f"socket path too long for a Unix socket (max 107 bytes): {self.path}")
        p = Path(self.path)
        self._made_dir = not p.parent.exists()     # removed again on close when left empty
        _prepare_dir(p.parent, self.gid)
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
            if self.gid is not None:
                os.chown(self.path, -1, self.gid)
            os.chmod(self.path, 0o600 if self.gid is None else 0o660)   # before listen(): see invariants
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
        if self._made_dir:
            try:
                os.rmdir(Path(self.path).parent)   # only if empty (a pcap directory inside stays)
            except OSError:
                pass

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
        _, uid, gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
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
