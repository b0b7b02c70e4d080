"""graphnet.app's core: the attachment, the worker and its sessions (see
graphnet.app for the whole picture and its invariants)."""
from __future__ import annotations

import array
import atexit
import errno as _errno
import json
import os
import select
import socket as _socket
import struct
import threading
import time
import weakref
from typing import Optional

from graphnet.session.segment import Segment
from graphnet.session.msg_queue import MessageQueue
from graphnet.session.fifo import Fifo, DEQ_NTF_IF_FULL
from graphnet.session.session import MSG_FORMAT, MSG_FIELDS, parse_msgs, PROTOS, ip_str
import graphnet.app.dgram as _dgram
from graphnet.session.attach import LEN, MAX_MSG, MAX_FDS, EVT_SEGMENT_DEL, send_msg, default_attach_path

ENV_SOCKET = "GRAPHNET_APP_SOCKET"
AF_INET = _socket.AF_INET
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
MSG_TX, MSG_CLOSE, MSG_RESET, MSG_ACCEPTED_REPLY, MSG_RX_DONE, MSG_SHUTDOWN = 64, 65, 66, 67, 68, 69
_MSG = struct.Struct(MSG_FORMAT)
SPIN_NS = int(os.environ.get("GRAPHNET_APP_SPIN_US", "20")) * 1000   # cut-through: look before sleeping (0: never)
YIELD_NS = int(os.environ.get("GRAPHNET_APP_YIELD_US", "200")) * 1000  # then sched_yield at most this long (0: never)

DGRAM_SPIN_NS = int(os.environ.get("GRAPHNET_APP_DGRAM_SPIN_US", "0")) * 1000   # datagram recv: look before sleeping

_ERRORS = {_errno.ECONNREFUSED: ConnectionRefusedError, _errno.ECONNRESET: ConnectionResetError,
           _errno.EPIPE: BrokenPipeError, _errno.EACCES: PermissionError, _errno.EPERM: PermissionError,
           _errno.ENOENT: FileNotFoundError, _errno.ETIMEDOUT: TimeoutError}


def os_error(err: int, text: str) -> OSError:
    """The stdlib's exception for errno err (ConnectionRefusedError, ...)."""
    return _ERRORS.get(err, OSError)(err, text)


class Session:
    """One session of this worker: its fifos and what the events said."""

    def __init__(self, worker: "Worker", ev: dict):
        self.worker = worker
        self.handle = ev["handle"]
        self.proto = ev["proto"]
        self.cut_through = ev["peer_mq"] != 0
        seg = worker.attachment.segment(ev["segment_index"])
        self.rx = Fifo(seg, ev["rx_fifo"])
        self.tx = Fifo(seg, ev["tx_fifo"])
        self.lcl = (ip_str(ev["lcl_ip"]), ev["lcl_port"])
        self.rmt = (ip_str(ev["rmt_ip"]), ev["rmt_port"])
        self.peer_closed = False        # DISCONNECTED: the peer will send no more (it may still read)
        self.reset = False
        self.transport_closed = False   # TRANSPORT_CLOSED or the transport's cleanup: nothing more goes out
        self.gone = False               # CLEANUP: the engine freed it
        self.closed = False             # we sent CLOSE or RESET
        self.shut_wr = False            # we sent SHUTDOWN (half-close): the peer sees end of stream
        self.shut_rd = False            # shutdown(SHUT_RD): reads no longer wait
        # the datagram path (graphnet.app.dgram): prebuilt TX / RX_DONE requests,
        # the addresses as the header's integers (no parse per datagram)
        self.tx_msg = _MSG.pack(MSG_TX, 0, 0, 0, self.handle, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, worker.index)
        self.rx_done_msg = _MSG.pack(MSG_RX_DONE, 0, 0, 0, self.handle, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                     worker.index)
        self.lcl_ip = ev["lcl_ip"]
        self.rmt_ip = ev["rmt_ip"]

    @property
    def datagrams(self) -> bool:
        """UDP through the graph: each fifo record is a 16-byte header + payload."""
        return self.proto == PROTOS["udp"] and not self.cut_through

    def name(self) -> str:
        kind = "ct" if self.cut_through else {v: k for k, v in PROTOS.items()}.get(self.proto, "?")
        return f"session {self.handle:#x} ({kind} {self.lcl[0]}:{self.lcl[1]} -> {self.rmt[0]}:{self.rmt[1]})"

    def __repr__(self):
        return f"<{self.name()}>"


class Worker:
    """This process's worker: event queue in, request queue out."""

    def __init__(self, attachment: "Attachment", info: dict, mq_fd: int, sig_fd: int):
        self.attachment = attachment
        self.number = info["number"]
        self.index = info["index"]
        self.mq_fd = mq_fd
        self.sig_fd = sig_fd
        seg, off = info["mq"]
        self.events = MessageQueue(attachment.segment(seg), off, mq_fd)
        seg, off = info["ctrl"]
        self.ctrl = MessageQueue(attachment.segment(seg), off, sig_fd)
        self.sessions: dict[int, Session] = {}
        self.listeners: dict[int, list] = {}    # listener handle -> accepted sessions not yet accept()ed
        self.connects: dict[int, dict] = {}     # opaque -> the CONNECTED event (or None while waiting)
        self.bound: list = []                  # BOUND events not yet claimed
        self.errors: list = []                 # ERROR events (a request the engine refused)
        self.n_events = 0
        self._opaque = 0
        self._yield_ns = YIELD_NS                # wait_for's adaptive sched_yield budget (0..YIELD_NS)

    def fileno(self) -> int:
        """The eventfd the engine signals when events arrive (for selectors)."""
        return self.mq_fd

    # --- requests --------------------------------------------------------------------

    def send(self, type_: int, handle: int, retval: int = 0, timeout: float = 5.0) -> None:
        """One request to the engine (its queue: retried while full)."""
        m = _MSG.pack(type_, 0, 0, retval, handle, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, self.index)
        end = time.monotonic() + timeout
        while not self.ctrl.enqueue(m):
            if time.monotonic() > end:
                raise TimeoutError(f"graphnet worker {self.number}: the engine's queue stayed full for {timeout} s")
            time.sleep(0.0005)

    def next_opaque(self) -> int:
        self._opaque = (self._opaque + 1) & 0xffffffff
        return self._opaque

    # --- events ----------------------------------------------------------------------

    def process_events(self) -> int:
        """Read and dispatch the events that arrived; how many."""
        os_read_nb(self.mq_fd)
        n, others = _dgram.drain_events(self.events)    # rx/tx events dropped in C: they only wake us
        self.n_events += n
        if others:
            self.dispatch_batch(others)
        return n

    def dispatch_batch(self, msgs: bytes) -> None:
        """Dispatch 64-byte event messages (those graphnet.app.dgram kept)."""
        for ev in parse_msgs(msgs):
            self._dispatch(ev)

    def _dispatch(self, ev: dict) -> None:
        kind, h = ev["event"], ev["handle"]
        s = self.sessions.get(h) if h is not None else None
        if kind == "accepted":
            s = self.sessions[h] = Session(self, ev)
            self.send(MSG_ACCEPTED_REPLY, h, 0)
            q = self.listeners.get(ev["listener_handle"])
            if q is not None:
                q.append(s)
            else:                                        # nobody listens here any more
                s.closed = True
                self.send(MSG_CLOSE, h)
        elif kind == "connected":
            if ev["retval"] == 0:
                self.sessions[h] = Session(self, ev)
            self.connects[ev["opaque"]] = ev
        elif kind == "bound":
            self.bound.append(ev)
        elif kind == "error":
            self.errors.append(ev)
        elif kind == EVT_SEGMENT_DEL:
            self.attachment.unmap(ev["segment_index"])
        elif s is None:
            return                                       # an event for a session already gone
        elif kind == "disconnected":
            s.peer_closed = True
        elif kind == "reset":
            s.reset = True
        elif kind == "transport-closed" or kind == "cleanup" and ev["retval"] == 0:
            s.transport_closed = True
        elif kind == "cleanup" and ev["retval"] == 1:
            s.gone = True
            self.sessions.pop(h, None)
        # rx / tx events only wake the waiter: the fifos say what is there

    def wait(self, timeout: Optional[float]) -> bool:
        """Block until events arrive (or timeout); processes them; True if any."""
        if self.process_events():
            return True
        p = select.poll()
        p.register(self.mq_fd, select.POLLIN)
        p.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))
        return self.process_events() > 0

    def wait_for(self, cond, timeout: Optional[float], what: str, before_sleep=None, spin: bool = False):
        """Until cond() is true: look at it (and at arriving events), then
        call before_sleep() (e.g. clear a fifo's event flag so the next
        byte raises an event), look once more, and sleep on the eventfd;
        TimeoutError naming `what`.

        With `spin` (a cut-through peer, whose bytes need no engine to
        arrive), before sleeping: look for at most SPIN_NS, then between
        ``sched_yield`` calls (the peer may be waiting for this core) for
        at most the worker's yield budget, then sleep. The budget adapts:
        doubled (up to YIELD_NS) when the peer answered within it, halved
        (down to YIELD_NS/8) when this wait had to sleep anyway, so an idle or slow
        peer costs at most one bounded spin per wakeup and a blocked
        waiter no CPU at all. Not done when the engine itself must run
        first: it would only take the engine's core on a small machine."""
        end = None if timeout is None else time.monotonic() + timeout
        clock = time.perf_counter_ns
        spin_ns = SPIN_NS if spin else 0
        t0 = clock()
        spin_end = t0 + spin_ns
        yield_end = spin_end + (self._yield_ns if spin else 0)
        yielded = False
        while True:
            r = cond()
            if r:
                if yielded:                              # the yields paid off: allow more next time
                    self._yield_ns = min(YIELD_NS, 2 * self._yield_ns)
                return r
            if len(self.events):
                self.process_events()
                continue
            now = clock()
            if now < spin_end:
                continue
            if now < yield_end:
                os.sched_yield()
                yielded = True
                continue
            if yielded:                                  # slept anyway: yield less next time
                self._yield_ns = max(YIELD_NS // 8, self._yield_ns // 2)
                yielded = False
            if before_sleep is not None:
                before_sleep()
                r = cond()
                if r:
                    return r
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(_errno.ETIMEDOUT, f"timed out waiting for {what}")
            self.wait(None if left is None else min(left, 1.0))
            t0 = clock()
            spin_end = t0 + spin_ns
            yield_end = spin_end + (self._yield_ns if spin else 0)

    def close_fds(self) -> None:
        for fd in (self.mq_fd, self.sig_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.mq_fd = self.sig_fd = -1


def os_read_nb(fd: int) -> None:
    """Clear an eventfd (non-blocking)."""
    try:
        os.read(fd, 8)
    except (BlockingIOError, OSError):
        pass


_ATTACHMENTS: "weakref.WeakSet[Attachment]" = weakref.WeakSet()
_default: Optional["Attachment"] = None
_lock = threading.Lock()


class Attachment:
    """This process's attachment to an engine (see the module docstring)."""

    def __init__(self, name: Optional[str] = None, path: Optional[str] = None, timeout: float = 10.0, **options):
        self.path = path or os.environ.get(ENV_SOCKET) or default_attach_path()
        self.timeout = timeout
        self.segments: dict[int, Segment] = {}
        self.name = name or f"app-{os.getpid()}"
        self.sock = None
        self.worker: Optional[Worker] = None
        self.secret = None
        options.setdefault("scope", "both")              # cut-through to the engine's apps, else transports
        self._connect()
        reply, fds = self.request({"op": "attach", "name": self.name, "options": options})
        self.secret = reply["secret"]
        self._adopt(reply, fds)
        _ATTACHMENTS.add(self)

    def _connect(self) -> None:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except FileNotFoundError:
            s.close()
            raise FileNotFoundError(_errno.ENOENT, f"no graphnet attach socket at {self.path} "
                                                   f"(is the engine running? set ${ENV_SOCKET})") from None
        except OSError:
            s.close()
            raise
        self.sock = s

    # --- the attach socket -------------------------------------------------------------

    def request(self, msg: dict) -> tuple[dict, list]:
        """Send one request and return (reply, fds); the engine's refusal
        raises the stdlib's error for its errno."""
        if self.sock is None:
            raise OSError(_errno.ENOTCONN, f"app {self.name!r} is detached")
        try:
            send_msg(self.sock, msg)
        except (BrokenPipeError, ConnectionResetError):
            pass                                         # refused at once: its reason is waiting to be read
        reply, fds = self._recv()
        if not reply.get("ok"):
            for fd in fds:
                os.close(fd)
            raise os_error(reply.get("errno") or _errno.EIO, f"graphnet: {reply.get('error')}")
        return reply, fds

    def _recv(self) -> tuple[dict, list]:
        fds: list = []
        buf = b""
        need = LEN.size
        while len(buf) < need:
            data, anc, _, _ = self.sock.recvmsg(need - len(buf), _socket.CMSG_SPACE(MAX_FDS * 4))
            for level, kind, payload in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[:len(payload) - len(payload) % a.itemsize])
                    fds += list(a)
            if not data:
                raise ConnectionResetError(_errno.ECONNRESET, f"the engine closed the attach socket {self.path}")
            buf += data
            if len(buf) == LEN.size and need == LEN.size:
                (n,) = LEN.unpack(buf)
                if n > MAX_MSG:
                    raise OSError(_errno.EMSGSIZE, f"attach reply of {n} bytes")
                need += n
        return json.loads(buf[LEN.size:]), fds

    def _adopt(self, reply: dict, fds: list) -> None:
        """Map the segments and make the worker from an attach / worker-add reply."""
        kinds = reply["fds"]
        if len(kinds) != len(fds):
            for fd in fds:
                os.close(fd)
            raise OSError(_errno.EPROTO, f"attach reply with {len(fds)} fds, {len(kinds)} announced")
        segs = iter(reply["segments"])
        for kind, fd in zip(kinds, fds):
            if kind == "segment":
                self._map(next(segs)["index"], fd)
        self.worker = Worker(self, reply["worker"], fds[-2], fds[-1])

    def _map(self, index: int, fd: int) -> Segment:
        try:
            if index not in self.segments:
                self.segments[index] = Segment.attach(fd, f"{self.name}-{index}")
        finally:
            os.close(fd)                                 # Segment.attach keeps its own dup
        return self.segments[index]

    def unmap(self, index: int) -> None:
        """The engine freed segment `index`: drop our mapping (no session of
        ours is in it: the engine frees a segment with its last fifo)."""
        seg = self.segments.pop(index, None)
        if seg is not None:
            seg.close()

    def segment(self, index: int) -> Segment:
        """The segment (mapped here on first use; asked for on the socket)."""
        seg = self.segments.get(index)
        if seg is None:
            reply, fds = self.request({"op": "segment", "index": index})
            seg = self._map(index, fds[0])
        return seg

    # --- requests ------------------------------------------------------------------

    def listen(self, uri: str) -> int:
        return self.request({"op": "listen", "worker": self.worker.number, "uri": uri})[0]["handle"]

    def unlisten(self, handle: int) -> None:
        self.request({"op": "unlisten", "worker": self.worker.number, "handle": handle})

    def connect(self, uri: str, opaque: int) -> int:
        return self.request({"op": "connect", "worker": self.worker.number, "uri": uri, "opaque": opaque})[0]["handle"]

    # --- fork and detach ---------------------------------------------------------------

    def _after_fork_child(self) -> None:
        """In a forked child: drop the parent's connection and worker (our
        copies only), attach a worker of our own."""
        if self.sock is None:
            return
        try:
            os.close(self.sock.detach())                  # our copy only: the parent's connection lives on
        except OSError:
            pass
        self.sock = None
        if self.worker is not None:
            self.worker.close_fds()
            self.worker = None
        self._connect()
        reply, fds = self.request({"op": "worker-add", "app": self.name, "secret": self.secret})
        self._adopt(reply, fds)

    def detach(self) -> None:
        """This process's worker goes (its sessions closed); the app goes
        with its last worker."""
        if self.sock is None:
            return
        try:
            self.request({"op": "detach"})
        except OSError:
            pass
        self.sock.close()
        self.sock = None
        if self.worker is not None:
            self.worker.close_fds()
            self.worker = None
        for seg in self.segments.values():
            seg.close()
        self.segments.clear()
        _ATTACHMENTS.discard(self)
        global _default
        if _default is self:
            _default = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()


def _fork_child() -> None:
    for a in list(_ATTACHMENTS):
        try:
            a._after_fork_child()
        except Exception as e:   # the child goes on, detached; say why
            os.write(2, f"graphnet.app: the forked child could not attach a worker: {e}\n".encode())
            a.sock = None


def _at_exit() -> None:
    for a in list(_ATTACHMENTS):
        a.detach()


os.register_at_fork(after_in_child=_fork_child)
atexit.register(_at_exit)


def attach(name: Optional[str] = None, path: Optional[str] = None, **options) -> Attachment:
    """Attach this process (once: later calls return the same attachment)."""
    global _default
    with _lock:
        if _default is None or _default.sock is None:
            _default = Attachment(name, path, **options)
        return _default


def current() -> Attachment:
    """The process's attachment (attach() with defaults if none yet)."""
    return _default if _default is not None and _default.sock is not None else attach()


def detach() -> None:
    if _default is not None:
        _default.detach()
