"""Unix stream sockets that graphnet serves (the control socket,
graphnet.cli.control; the attach socket, graphnet.session.attach): how
they are bound, who may connect, how their serving thread stops.

Invariants (both servers rely on them):
  - the socket's directory is created 0700 (0710 and the group with a
    group) when missing; an existing one must belong to root or to us and
    not be writable by others (graphnet.paths.check_dir);
  - the socket file gets mode 0600 (0660 and the group with a group)
    before listen(): no peer can connect while its mode is wider;
  - a socket file left by a dead server (connect refused) is replaced; a
    live one is never touched (SocketSetupError "... already running");
    a path that exists and is not a socket is never removed;
  - unlink_own() removes the file only if it is still the one we bound
    (same inode).
Errors are SocketSetupError, whose text is for users.
"""
from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Optional, Union

from graphnet.paths import UnsafePathError, private_dir

log = logging.getLogger("graphnet.control")

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class SocketSetupError(Exception):
    """A socket that cannot be served (path, group, a live server there)."""


def group_id(group: Union[str, int, None]) -> Optional[int]:
    """A group name or number as a gid (None: no group); SocketSetupError if unknown."""
    if group is None:
        return None
    try:
        return grp.getgrgid(group).gr_gid if isinstance(group, int) else grp.getgrnam(group).gr_gid
    except (KeyError, OverflowError):
        raise SocketSetupError(f"no group {group!r} on this machine (see /etc/group)") from None


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
        raise SocketSetupError(f"{e} (or choose another path with --socket)") from None
    if gid is not None:
        st = os.stat(directory)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) in (0o700, 0o710):
            os.chown(directory, -1, gid)
            os.chmod(directory, 0o710)


def listen_unix(path: str, gid: Optional[int], backlog: int = 16) -> tuple:
    """Bind and listen on a Unix stream socket at path with the invariants
    of the module docstring (directory checked or made, a stale socket
    replaced, a live one refused, mode 0600 or 0660 with group gid set
    before listen()); returns (socket, (dev, inode), made_dir)."""
    if len(os.fsencode(path)) >= 108:
        raise SocketSetupError(f"socket path too long for a Unix socket (max 107 bytes): {path}")
    p = Path(path)
    made_dir = not p.parent.exists()     # removed again on close when left empty
    _prepare_dir(p.parent, gid)
    _replace_stale(p)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    inode = None
    try:
        try:
            sock.bind(path)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:       # lost a race with another engine
                raise SocketSetupError(f"an engine is already running on {path}") from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise SocketSetupError(f"cannot create {path}: permission denied "
                                   f"(run as root, or choose another path with --socket)") from None
            raise SocketSetupError(f"cannot bind {path}: {e.strerror}") from None
        if gid is not None:
            os.chown(path, -1, gid)
        os.chmod(path, 0o600 if gid is None else 0o660)   # before listen(): see invariants
        st = os.stat(path)
        inode = (st.st_dev, st.st_ino)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        unlink_own(path, inode, made_dir)
        raise
    return sock, inode, made_dir


def _replace_stale(p: Path) -> None:
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketSetupError(f"{p} exists and is not a socket; remove it or choose another path")
    if _probe(str(p)):
        raise SocketSetupError(f"an engine is already running on {p}")
    log.info("removing stale socket %s", p)
    try:
        p.unlink()
    except FileNotFoundError:
        pass
    except PermissionError:
        raise SocketSetupError(f"cannot remove the stale socket {p}: permission denied") from None


def unlink_own(path: str, inode: Optional[tuple], made_dir: bool) -> None:
    """Remove the socket file if it is still the one we bound (same inode),
    and its directory if we made it and it is empty."""
    if inode is None:
        return
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass
    if made_dir:
        try:
            os.rmdir(Path(path).parent)   # only if empty (a pcap directory inside stays)
        except OSError:
            pass


def stop_serving(closing: threading.Event, wake_w: socket.socket, thread: Optional[threading.Thread]) -> None:
    """Tell a serving thread to stop (the flag, a byte on its wake socket)
    and wait for it (not when called from that thread itself)."""
    closing.set()
    try:
        wake_w.send(b"x")
    except OSError:
        pass
    if thread is not None and thread is not threading.current_thread():
        thread.join(5)


def peer_credentials(conn: socket.socket) -> tuple:
    """(pid, uid, gid) of the peer, from the kernel (SO_PEERCRED)."""
    return _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
