"""Where graphnet keeps its runtime files, and the checks on those places.

One rule for the control socket and for pcap captures:

- ``runtime_dir()``: ``/run/graphnet`` for root; else
  ``$XDG_RUNTIME_DIR/graphnet`` when that is set (systemd's private,
  per-user tmpfs); else ``/tmp/graphnet-<uid>``.
- the control socket: ``<runtime_dir>/cli.sock`` (``$GRAPHNET_SOCKET``
  overrides it; see graphnet.cli.control);
- pcap captures given as a bare file name: ``<runtime_dir>/pcap/<name>``
  (``$GRAPHNET_PCAP_DIR`` overrides the directory; see graphnet.io.pcap).

``open_dir(path)`` opens a directory for ``openat``-style use (``dir_fd``)
resolving it one component at a time, following a symbolic link only when
root or we own it: a link planted by another user anywhere on the way (in
their home, in a directory they can write) is refused, even in
directories the kernel's fs.protected_symlinks does not cover. A file
created relative to that fd (graphnet.io.pcap) cannot land elsewhere.

Invariants: ``private_dir(path)`` creates missing directories with mode
0700, and accepts an existing directory only when it belongs to root or to
us and no other user can write to it (a world- or group-writable directory
is accepted only with the sticky bit, as /tmp has: then only its owner can
remove or replace what we put there). Anything else raises UnsafePathError
with a message that says what is wrong and how to fix it: a directory that
another user controls lets that user swap our socket or our pcap file for
a symbolic link.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafePathError(OSError):
    """A runtime directory that another user could tamper with, or that
    cannot be created; the text is for users."""


def runtime_dir() -> str:
    """/run/graphnet (root), $XDG_RUNTIME_DIR/graphnet, or /tmp/graphnet-<uid>."""
    if os.geteuid() == 0:
        return "/run/graphnet"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "graphnet")
    return f"/tmp/graphnet-{os.getuid()}"


def check_dir(path, what: str = "directory") -> None:
    """Raise UnsafePathError unless the existing directory path belongs to
    root or to us and is not writable by others (sticky excepted)."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{what} {path} is not a directory")
    if st.st_uid not in (0, os.geteuid()):
        raise UnsafePathError(f"{what} {path} belongs to another user (uid {st.st_uid}); "
                              f"remove it or choose another path")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        who = "everyone" if st.st_mode & stat.S_IWOTH else "its group"
        raise UnsafePathError(f"{what} {path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}); "
                              f"chmod go-w it or choose another path")


def private_dir(path, what: str = "directory") -> Path:
    """path as a directory we can trust: created 0700 (parents too) when
    missing, checked with check_dir when it exists."""
    p = Path(path)
    missing = []
    q = p
    while not q.exists() and q != q.parent:
        missing.append(q)
        q = q.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as e:
            hint = " (run as root, or choose another path)" if isinstance(e, PermissionError) else ""
            raise UnsafePathError(f"cannot create {what} {d}: {e.strerror}{hint}") from None
    check_dir(p, what)
    return p


MAX_LINKS = 40                     # as the kernel's MAXSYMLINKS


def open_dir(path) -> int:
    """An O_PATH fd on the directory path (relative: to the working
    directory), resolved component by component with O_NOFOLLOW; a
    symbolic link is followed only if it belongs to root or to us (read
    from the link we opened, so it cannot be swapped in between). Raises
    UnsafePathError (a foreign link, too many links) or OSError."""
    path = os.fspath(path)
    euid = os.geteuid()
    flags = os.O_PATH | os.O_CLOEXEC
    fd = os.open("/" if path.startswith("/") else ".", flags | os.O_DIRECTORY)
    todo = [c for c in path.split("/") if c not in ("", ".")]
    links = 0
    try:
        while todo:
            c = todo.pop(0)
            nfd = os.open(c, flags | os.O_NOFOLLOW, dir_fd=fd)
            st = os.fstat(nfd)
            if stat.S_ISLNK(st.st_mode):
                try:
                    if st.st_uid not in (0, euid):
                        raise UnsafePathError(f"{c!r} in {path} is a symbolic link of another user "
                                              f"(uid {st.st_uid}); refusing to follow it")
                    links += 1
                    if links > MAX_LINKS:
                        raise UnsafePathError(f"{path}: too many levels of symbolic links")
                    target = os.readlink("", dir_fd=nfd)
                finally:
                    os.close(nfd)
                todo[:0] = [x for x in target.split("/") if x not in ("", ".")]
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", flags | os.O_DIRECTORY)
                continue
            if not stat.S_ISDIR(st.st_mode):
                os.close(nfd)
                raise NotADirectoryError(20, f"{c!r} in {path} is not a directory")
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


ENV_SOCKET = "GRAPHNET_SOCKET"


def default_socket_path() -> str:
    """$GRAPHNET_SOCKET if set; /run/graphnet/cli.sock for root; else
    $XDG_RUNTIME_DIR/graphnet/cli.sock, or /tmp/graphnet-$UID/cli.sock
    (here, below the CLI, so that the startup file's checks need no CLI)."""
    env = os.environ.get(ENV_SOCKET)
    if env:
        return env
    return os.path.join(runtime_dir(), "cli.sock")
