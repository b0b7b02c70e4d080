"""Kernel link events from rtnetlink, in the main loop: ``link-events``.

Devices that sit on a kernel interface (an AF_PACKET attachment, a TAP's
kernel side) ask to be told what happens to it:

    w = link_watcher(engine)
    handle = w.watch(netns, "veth0", callback)     # callback(LinkEvent)
    w.unwatch(handle)

The watcher keeps one NETLINK_ROUTE socket per network namespace that has
a watched interface (bound to RTMGRP_LINK, opened inside the namespace),
and one inotify watch on the directory of each named namespace
(``/run/netns``), so that ``ip netns del`` is seen too: our own sockets
keep a deleted namespace alive, so the watcher closes its socket there and
tells the callbacks (``namespace-deleted``). All these fds sit in one small
epoll set whose fd is registered with the main loop for the process node
``link-events`` (state interrupt): no thread, no polling, no timer; an idle
engine sleeps in epoll as before, and an event reaches the callbacks in the
loop thread within one iteration.

Why a raw socket and not pyroute2's IPRoute: the loop must own a plain
non-blocking fd it can put in epoll and drain without blocking, and
pyroute2's socket objects changed their I/O model between releases (0.7
synchronous, 0.9 on asyncio). The messages needed are two (RTM_NEWLINK,
RTM_DELLINK) and four attributes; ``parse_link_messages`` reads them with a
bounds check before every field (a short or lying length ends the parse of
that datagram, counted in ``stats['bad_messages']``). The events are
control plane (a few per flap), so they are parsed in Python; the data
plane never waits for them.

Events (``LinkEvent.what``): ``up`` (admin up and carrier: IFF_UP and
IFF_RUNNING), ``down`` (admin down or no carrier; ``reason`` says which),
``deleted``, ``renamed`` (``old_name``), ``moved`` (to another namespace:
an RTM_DELLINK carrying IFLA_NEW_NETNSID), ``created`` (a new link with
the watched name appeared, e.g. a veth re-created), ``namespace-deleted``,
and ``resync`` (the socket overflowed, ENOBUFS: events were lost; the
callback should look at the interface itself). ``up``/``down`` are only
delivered when the state changes, so a flood of attribute updates costs no
log lines. The watcher logs nothing itself: each device writes one line
per event naming its interface.

Invariants: a socket exists exactly for the namespaces with at least one
watch; ``unwatch`` of the last watch in a namespace closes its socket and
its inotify watch; ``close()`` closes every fd (the engine's close does).
"""
from __future__ import annotations

import ctypes
import errno as _errno
import logging
import os
import select
import socket
import struct
import weakref

from graphnet.vlib.per_engine import per_engine
from dataclasses import dataclass
from typing import Callable, Optional

from graphnet.vlib.engine import register_extension
from graphnet.vlib.node import Node
from graphnet.vlib.process import WaitEvent

log = logging.getLogger("graphnet.link")

NETLINK_ROUTE = 0
RTMGRP_LINK = 1
NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_IFNAME, IFLA_OPERSTATE, IFLA_NEW_NETNSID, IFLA_NEW_IFINDEX = 3, 16, 45, 49
IFF_UP, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x40, 0x10000
CLONE_NEWNET = 0x40000000
IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO = 0x100, 0x200, 0x40, 0x80
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
RCVBUF = 1 << 20

_NLMSGHDR = struct.Struct("=IHHII")        # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")      # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")
_INOTIFY = struct.Struct("=iIII")          # wd, mask, cookie, len


@dataclass
class LinkMessage:
    """One RTM_NEWLINK / RTM_DELLINK as parsed (see parse_link_messages)."""
    type: int
    ifindex: int
    flags: int
    ifname: Optional[str]
    new_netnsid: Optional[int] = None


@dataclass
class LinkEvent:
    """What happened to a watched interface (see the module docstring)."""
    what: str
    ifname: str
    netns: Optional[str]
    ifindex: int = 0
    reason: str = ""
    old_name: str = ""

    def describe(self) -> str:
        where = f" in namespace {self.netns}" if self.netns else ""
        if self.what == "down":
            return f"kernel interface {self.ifname}{where} is down ({self.reason})"
        if self.what == "up":
            return f"kernel interface {self.ifname}{where} is up (ifindex {self.ifindex})"
        if self.what == "renamed":
            return f"kernel interface {self.old_name}{where} was renamed to {self.ifname}"
        if self.what == "moved":
            return f"kernel interface {self.ifname} was moved out of {'namespace ' + self.netns if self.netns else 'our namespace'}"
        if self.what == "namespace-deleted":
            return f"network namespace {self.netns} was deleted (with kernel interface {self.ifname})"
        if self.what == "created":
            return f"kernel interface {self.ifname}{where} appeared (ifindex {self.ifindex})"
        if self.what == "resync":
            return f"netlink events were lost{where}; kernel interface {self.ifname} checked again"
        return f"kernel interface {self.ifname}{where} was {self.what}"


def parse_link_messages(data: bytes) -> tuple:
    """(messages, n_bad): the RTM_NEWLINK/RTM_DELLINK messages of one
    netlink datagram, every length checked against what is left before
    it is used. Other message types are skipped; a message whose lengths
    do not fit ends the parse and counts as bad."""
    out = []
    bad = 0
    off, end = 0, len(data)
    while off + _NLMSGHDR.size <= end:
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size or off + length > end:
            bad += 1
            break
        if mtype in (RTM_NEWLINK, RTM_DELLINK):
            body = off + _NLMSGHDR.size
            if body + _IFINFOMSG.size > off + length:
                bad += 1
            else:
                _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
                msg = LinkMessage(mtype, index, flags, None)
                a, a_end = body + _IFINFOMSG.size, off + length
                while a + _RTATTR.size <= a_end:
                    alen, atype = _RTATTR.unpack_from(data, a)
                    if alen < _RTATTR.size or a + alen > a_end:
                        bad += 1
                        break
                    payload = data[a + _RTATTR.size:a + alen]
                    atype &= 0x3fff                      # NLA_F_NESTED / NET_BYTEORDER
                    if atype == IFLA_IFNAME:
                        msg.ifname = payload.split(b"\0", 1)[0][:15].decode("utf-8", "replace")
                    elif atype == IFLA_NEW_NETNSID and len(payload) >= 4:
                        msg.new_netnsid = struct.unpack_from("=i", payload)[0]
                    a += (alen + 3) & ~3
                out.append(msg)
        off += (length + 3) & ~3
    return out, bad


def _libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.setns.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.inotify_init1.argtypes = (ctypes.c_int,)
    lib.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    lib.inotify_rm_watch.argtypes = (ctypes.c_int, ctypes.c_int)
    return lib


_LIBC = _libc()


def netns_path(netns: Optional[str]) -> Optional[str]:
    """The path of a namespace given by name (``/run/netns/<name>``) or path."""
    if netns is None:
        return None
    netns = os.fspath(netns)
    return netns if os.sep in netns else os.path.join("/run/netns", netns)


def open_in_netns(netns: Optional[str], opener: Callable):
    """Call opener() with this thread inside namespace netns (then back):
    a socket it creates lives in that namespace for good."""
    if netns is None:
        return opener()
    target = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
    own = -1
    try:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if _LIBC.setns(target, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"cannot enter network namespace {netns!r}: {os.strerror(e)}")
        try:
            return opener()
        finally:
            if _LIBC.setns(own, CLONE_NEWNET) != 0:
                log.critical("could not return this thread to its network namespace")
    finally:
        os.close(target)
        if own >= 0:
            os.close(own)


def _link_socket() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)               # SO_RCVBUFFORCE (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        s.bind((0, RTMGRP_LINK))
    except BaseException:
        s.close()
        raise
    return s


class _Watch:
    __slots__ = ("netns", "ifname", "callback", "ifindex", "up", "down_reason")

    def __init__(self, netns, ifname, callback):
        self.netns, self.ifname, self.callback = netns, ifname, callback
        self.ifindex = 0
        self.up = None
        self.down_reason = ""


class _Namespace:
    """One watched namespace: its netlink socket and its inotify watch."""

    def __init__(self, netns):
        self.netns = netns
        self.sock = open_in_netns(netns, _link_socket)
        self.wd = -1


class LinkWatcher:
    """The engine's rtnetlink listener (see the module docstring)."""

    def __init__(self):
        self.epoll = select.epoll()
        self.spaces: dict = {}             # netns (None: ours) -> _Namespace
        self.by_fd: dict = {}              # fd -> _Namespace
        self.watches: dict = {}            # handle -> _Watch
        self._next = 1
        self.inotify = -1
        self.wds: dict = {}                # inotify wd -> directory
        self.node_index = None
        self.main = None
        self.later: list = []              # (monotonic deadline, fn, args), for call_later
        self.stats = {"messages": 0, "bad_messages": 0, "events": 0, "overruns": 0}

    # --- watches -------------------------------------------------------------------

    def watch(self, netns: Optional[str], ifname: str, callback: Callable, ifindex: int = 0) -> int:
        """Deliver events of interface ifname in netns (None: graphnet's own)
        to callback(LinkEvent), in the loop thread. Returns a handle."""
        if netns not in self.spaces:
            ns = _Namespace(netns)
            self.spaces[netns] = ns
            self.by_fd[ns.sock.fileno()] = ns
            self.epoll.register(ns.sock.fileno(), select.EPOLLIN)
            if netns is not None:
                self._watch_dir(ns)
        w = _Watch(netns, ifname, callback)
        w.ifindex = ifindex
        h = self._next
        self._next += 1
        self.watches[h] = w
        return h

    def unwatch(self, handle: int) -> None:
        w = self.watches.pop(handle, None)
        if w is None:
            return
        if not any(x.netns == w.netns for x in self.watches.values()):
            self._close_space(w.netns)

    def set_known(self, handle: int, ifindex: int, up: Optional[bool]) -> None:
        """What the device found when it (re)attached: events are then
        reported relative to this (an ``up`` it already knows is not repeated)."""
        w = self.watches.get(handle)
        if w is not None:
            w.ifindex = ifindex
            w.up = up
            w.down_reason = None            # down for a reason not known yet: the next message tells it

    def _close_space(self, netns) -> None:
        ns = self.spaces.pop(netns, None)
        if ns is None:
            return
        fd = ns.sock.fileno()
        self.by_fd.pop(fd, None)
        try:
            self.epoll.unregister(fd)
        except (OSError, ValueError):
            pass
        ns.sock.close()
        if ns.wd >= 0:
            if not any(x.wd == ns.wd for x in self.spaces.values()):
                _LIBC.inotify_rm_watch(self.inotify, ns.wd)
                self.wds.pop(ns.wd, None)

    def _watch_dir(self, ns: _Namespace) -> None:
        directory = os.path.dirname(netns_path(ns.netns))
        if self.inotify < 0:
            fd = _LIBC.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                log.warning("link-events: no inotify (%s): a deleted namespace is seen only when its "
                            "interfaces report errors", os.strerror(ctypes.get_errno()))
                return
            self.inotify = fd
            self.epoll.register(fd, select.EPOLLIN)
        wd = _LIBC.inotify_add_watch(self.inotify, directory.encode(), IN_DELETE | IN_MOVED_FROM)
        if wd < 0:
            log.warning("link-events: cannot watch %s: %s", directory, os.strerror(ctypes.get_errno()))
            return
        ns.wd = wd
        self.wds[wd] = directory

    # --- the loop side ---------------------------------------------------------------

    def setup(self, engine, node_index) -> None:
        self.node_index = node_index
        self.main = engine.main
        engine.main.register_fd(node_index, self.epoll.fileno())

    def call_later(self, delay: float, fn: Callable, *args) -> None:
        """Run fn(*args) in the loop thread about `delay` seconds from now
        (the link-events process wakes for it; devices use it to act a
        little after an event)."""
        import time
        self.later.append((time.monotonic() + delay, fn, args))
        self.later.sort(key=lambda x: x[0])
        if self.main is not None and self.node_index is not None:
            self.main.set_interrupt_pending(self.node_index)

    def run_due(self) -> Optional[float]:
        """Run the call_later functions that are due; the seconds until the
        next one (None: none left)."""
        import time
        now = time.monotonic()
        while self.later and self.later[0][0] <= now:
            _, fn, args = self.later.pop(0)
            try:
                fn(*args)
            except Exception:
                log.exception("link-events: a delayed action failed")
        return max(0.0, self.later[0][0] - now) if self.later else None

    def poll(self) -> int:
        """Read every ready socket and deliver the events; returns how many."""
        n = 0
        for fd, _mask in self.epoll.poll(0):
            if fd == self.inotify:
                n += self._read_inotify()
                continue
            ns = self.by_fd.get(fd)
            if ns is not None:
                n += self._read_netlink(ns)
        return n

    def _read_netlink(self, ns: _Namespace) -> int:
        n = 0
        for _ in range(256):                     # bounded: at most 256 datagrams a wake
            if self.spaces.get(ns.netns) is not ns:
                break                            # closed by a callback
            try:
                data = ns.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == _errno.ENOBUFS:    # overrun: events were lost
                    self.stats["overruns"] += 1
                    for w in self._watches_in(ns.netns):
                        n += self._deliver(w, LinkEvent("resync", w.ifname, ns.netns, w.ifindex))
                    continue
                log.error("link-events: reading netlink in %s: %s", ns.netns or "our namespace", e)
                break
            msgs, bad = parse_link_messages(data)
            self.stats["messages"] += len(msgs)
            self.stats["bad_messages"] += bad
            for m in msgs:
                n += self._dispatch(ns.netns, m)
        return n

    def _watches_in(self, netns) -> list:
        return [w for w in list(self.watches.values()) if w.netns == netns]

    def _dispatch(self, netns, m: LinkMessage) -> int:
        n = 0
        for w in self._watches_in(netns):
            ev = None
            if m.type == RTM_DELLINK:
                if m.ifindex != w.ifindex or not w.ifindex:
                    continue
                w.ifindex, w.up = 0, None
                ev = LinkEvent("moved" if m.new_netnsid is not None else "deleted", w.ifname, netns, m.ifindex)
            elif w.ifindex and m.ifindex == w.ifindex:
                if m.ifname and m.ifname != w.ifname:
                    old = w.ifname
                    w.ifname = m.ifname
                    n += self._deliver(w, LinkEvent("renamed", m.ifname, netns, m.ifindex, old_name=old))
                ev = self._state_change(w, m, netns)
            elif m.ifname == w.ifname and m.ifindex != w.ifindex:
                w.ifindex = m.ifindex
                w.up = None
                n += self._deliver(w, LinkEvent("created", w.ifname, netns, m.ifindex))
                if w.ifindex == m.ifindex and w.up is None:       # the callback may have re-set it
                    ev = self._state_change(w, m, netns)
            if ev is not None:
                n += self._deliver(w, ev)
        return n

    @staticmethod
    def _state_change(w: _Watch, m: LinkMessage, netns) -> Optional[LinkEvent]:
        up = bool(m.flags & IFF_UP) and bool(m.flags & (IFF_RUNNING | IFF_LOWER_UP))
        reason = "" if up else ("admin down" if not m.flags & IFF_UP else "no carrier")
        if w.up is not None and up == w.up and (up or w.down_reason in (None, reason)):
            w.down_reason = reason
            return None
        w.up, w.down_reason = up, reason
        return LinkEvent("up" if up else "down", w.ifname, netns, m.ifindex, reason=reason)

    def _deliver(self, w: _Watch, ev: LinkEvent) -> int:
        self.stats["events"] += 1
        try:
            w.callback(ev)
        except Exception:
            log.exception("link-events: handling %s of %s failed", ev.what, ev.ifname)
        return 1

    def _read_inotify(self) -> int:
        n = 0
        try:
            data = os.read(self.inotify, 65536)
        except BlockingIOError:
            return 0
        off = 0
        while off + _INOTIFY.size <= len(data):
            wd, mask, _cookie, length = _INOTIFY.unpack_from(data, off)
            if off + _INOTIFY.size + length > len(data):
                self.stats["bad_messages"] += 1
                break
            name = data[off + _INOTIFY.size:off + _INOTIFY.size + length].split(b"\0", 1)[0].decode("utf-8", "replace")
            off += _INOTIFY.size + length
            directory = self.wds.get(wd)
            if directory is None or not mask & (IN_DELETE | IN_MOVED_FROM):
                continue
            path = os.path.join(directory, name)
            for netns in [k for k in self.spaces if k is not None and netns_path(k) == path]:
                watches = self._watches_in(netns)
                self._close_space(netns)          # our socket kept the namespace alive
                for w in watches:
                    w.ifindex, w.up = 0, None
                    n += self._deliver(w, LinkEvent("namespace-deleted", w.ifname, netns))
        return n

    def close(self) -> None:
        for netns in list(self.spaces):
            self._close_space(netns)
        self.watches.clear()
        self.later.clear()
        if self.inotify >= 0:
            os.close(self.inotify)
            self.inotify = -1
        self.epoll.close()

    def fds(self) -> int:
        """How many fds the watcher holds (epoll, sockets, inotify)."""
        return 1 + len(self.spaces) + (1 if self.inotify >= 0 else 0)


_WATCHERS: "weakref.WeakKeyDictionary" = per_engine()


def link_watcher(engine) -> LinkWatcher:
    """The engine's watcher, made on first use."""
    w = _WATCHERS.get(engine)
    if w is None:
        w = _WATCHERS[engine] = LinkWatcher()
        engine.on_close.insert(0, w.close)        # closed last (hooks run in reverse)
    return w


def _setup(engine, node_index):
    link_watcher(engine).setup(engine, node_index)


def _process(engine):
    w = link_watcher(engine)
    timeout = None
    while True:
        yield WaitEvent(timeout=timeout, interrupts=True)
        w.poll()
        timeout = w.run_due()


NODES = (
    Node("link-events", type="process", state="interrupt", process=_process, setup=_setup,
         doc="Kernel link events (rtnetlink RTM_NEWLINK/RTM_DELLINK, one socket per namespace with a watched "
             "interface, and inotify on /run/netns) delivered to the devices: down, up, deleted, renamed, "
             "moved, namespace deleted. Woken by its epoll fd in the main loop; never polls."),
)


@register_extension
def _engine_link_events(engine):
    """Every engine's link-events process (vlib reaches it through this hook)."""
    engine.add(NODES)
