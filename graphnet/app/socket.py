"""Blocking sockets over graphnet sessions, mirroring the ``socket`` module.

    from graphnet import app
    with app.socket(app.AF_INET, app.SOCK_STREAM) as s:
        s.connect(("127.0.0.1", 5000))          # a cut-through session if an app of the engine listens there
        s.sendall(b"ping")
        print(s.recv(100))

    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.connect(("10.0.0.1", 7))                  # a UDP session through the engine's graph
    u.send(b"hello"); u.recv(2048)

SOCK_STREAM sockets are sessions of the ``tcp`` transport (cut-through when
an app of the engine listens on the address, TCP through the graph when
the engine has a TCP transport); SOCK_DGRAM sockets are ``udp`` sessions:
``connect`` makes a connected session, ``bind`` a listener that
``recvfrom``/``sendto`` any peer. Only the session layer's generic requests
are used, so the same program runs over UDP, cut-through and TCP.

Semantics and limits, plainly:
  - ``send`` writes what fits in the tx fifo (at least one byte, blocking
    until there is room); ``sendall`` writes everything; a datagram is
    written whole or not at all; ``recv`` returns what is in the rx fifo
    (a whole datagram for UDP; a stream of bytes for TCP and cut-through.
    UDP between two apps of one engine goes through the UDP transport to
    the engine's own address, never cut-through, so datagrams stay whole;
    127.0.0.1 is not one of the engine's addresses);
  - ``shutdown`` as the socket module's: SHUT_WR is a half-close (the
    peer reads end of file after the bytes already written: TCP's FIN,
    the cut-through peer's end of stream) while this socket still
    receives until the peer closes; ``send`` then raises BrokenPipeError;
    SHUT_RD makes ``recv`` return what is buffered, then b"" without
    waiting; SHUT_RDWR both. The session lives until ``close``. A peer's
    end of stream does not stop our sending (the peer may only have
    half-closed); writing to a peer that closed fully ends the session's
    transport (as TCP's RST does): the next send raises BrokenPipeError.
    UDP sessions only mark the socket (nothing is sent);
  - ``close`` closes the session: the peer sees end of file;
  - errors are the stdlib's: ConnectionRefusedError, ConnectionResetError,
    BrokenPipeError, TimeoutError (``settimeout``), BlockingIOError with
    timeout 0, each naming the session;
  - ``fileno()`` is the process's worker eventfd (shared by its sockets):
    readable when events arrived for any of them; with ``selectors``,
    register it and try every socket's non-blocking recv when it fires.
    A blocking socket whose fileno() was never asked for keeps its rx
    event flag set while it reads (the writer then posts no event per
    write) and clears it only before it sleeps in recv;
  - stream bytes are copied in C between the caller's buffer and the
    fifo (``Fifo.enqueue_from`` / ``dequeue_into``): one copy each way,
    no slice per call.
"""
from __future__ import annotations

import errno
import ipaddress
import struct
import time
from typing import Optional

import graphnet.app.dgram as _dgram
import graphnet.app.stream as _stream
from graphnet.app.core import DGRAM_SPIN_NS
from graphnet.session.fifo import DEQ_NTF
from graphnet.session.session import ip_str

AF_INET = 2
SOCK_STREAM = 1
SOCK_DGRAM = 2
SHUT_RD, SHUT_WR, SHUT_RDWR = 0, 1, 2
DGRAM_HDR = struct.Struct("<IIIHH")        # graphnet.transport.udp: length, rmt_ip, lcl_ip, rmt_port, lcl_port
_default_timeout: Optional[float] = None


def _ip(host: str) -> int:
    try:
        return int(ipaddress.IPv4Address("127.0.0.1" if host in ("localhost", "") else host))
    except ValueError:
        raise OSError(errno.EINVAL, f"graphnet sockets take IPv4 addresses, not {host!r}") from None


def setdefaulttimeout(t: Optional[float]) -> None:
    global _default_timeout
    _default_timeout = t


def getdefaulttimeout() -> Optional[float]:
    return _default_timeout


class socket:
    """A graphnet session with the socket module's methods (see module docstring)."""

    def __init__(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0, *, attachment=None,
                 _session=None):
        from graphnet.app.core import current
        if family != AF_INET:
            raise OSError(errno.EAFNOSUPPORT, "graphnet sockets are AF_INET only")
        if type not in (SOCK_STREAM, SOCK_DGRAM):
            raise OSError(errno.ESOCKTNOSUPPORT, "graphnet sockets are SOCK_STREAM or SOCK_DGRAM")
        self.family = family
        self.type = type
        self.proto = proto
        self._att = attachment or current()
        self._w = self._att.worker
        self._s = _session                 # graphnet.app.Session once connected / accepted / bound (UDP)
        self._listener: Optional[int] = None
        self._bound: Optional[tuple] = None
        self._timeout = _default_timeout
        self._closed = False
        self._polled = False                # fileno() was asked for (see _read_done)

    # --- the basics ----------------------------------------------------------------

    @property
    def _uri_proto(self) -> str:
        return "tcp" if self.type == SOCK_STREAM else "udp"

    def _uri(self, address) -> str:
        host, port = address
        if not isinstance(port, int) or not 0 < port <= 0xffff:
            raise OverflowError(f"port must be 1-65535, not {port!r}")
        return f"{self._uri_proto}://{ipaddress.IPv4Address(_ip(host))}/{port}"

    def _what(self) -> str:
        return self._s.name() if self._s is not None else f"graphnet {self._uri_proto} socket"

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor (the graphnet socket is closed)")

    def fileno(self) -> int:
        self._check_open()
        self._polled = True                 # may be waited on by a selector: reads clear the event flag
        return self._w.fileno()

    def settimeout(self, t: Optional[float]) -> None:
        if t is not None and t < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = t

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def setsockopt(self, *args) -> None:
        """Accepted and ignored (SO_REUSEADDR and friends have no meaning here)."""

    def getsockname(self):
        if self._s is not None:
            return self._s.lcl
        return self._bound or ("0.0.0.0", 0)

    def getpeername(self):
        if self._s is None or self._listener is not None and self.type == SOCK_STREAM:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._s.rmt

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<graphnet.app.socket {'closed' if self._closed else self._what()}>"

    def _wait(self, cond, what: str, before_sleep=None):
        """Process events until cond() is true, honouring the timeout."""
        r = cond()
        if r:
            return r
        if self._timeout == 0.0:
            if before_sleep is not None:
                before_sleep()
                r = cond()
                if r:
                    return r
            raise BlockingIOError(errno.EAGAIN, f"{self._what()}: {what} would block")
        try:
            return self._w.wait_for(cond, self._timeout, what, before_sleep,
                                    spin=self._s is not None and self._s.cut_through)
        except TimeoutError:
            raise TimeoutError(errno.ETIMEDOUT, f"{self._what()}: timed out ({self._timeout} s) waiting for {what}") \
                from None

    # --- connect / bind / listen / accept ------------------------------------------

    def connect(self, address) -> None:
        self._check_open()
        if self._s is not None:
            raise OSError(errno.EISCONN, f"{self._what()} is already connected")
        uri = self._uri(address)
        opaque = self._w.next_opaque()
        self._w.connects[opaque] = None
        try:
            self._att.connect(uri, opaque)
            ev = self._wait(lambda: self._w.connects.get(opaque), f"connect to {uri}")
        finally:
            self._w.connects.pop(opaque, None)
        if ev["retval"] != 0:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"graphnet connect to {uri} refused ({ev['retval']})")
        self._s = self._w.sessions[ev["handle"]]

    def connect_ex(self, address) -> int:
        try:
            self.connect(address)
            return 0
        except OSError as e:
            return e.errno or errno.EIO

    def bind(self, address) -> None:
        """Remember the address; a SOCK_DGRAM socket listens at once (a UDP
        listener session: recvfrom/sendto)."""
        self._check_open()
        self._bound = (str(ipaddress.IPv4Address(_ip(address[0] or "0.0.0.0"))), address[1])
        if self.type == SOCK_DGRAM:
            self._listen()

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self._bound is None:
            raise OSError(errno.EDESTADDRREQ, "graphnet sockets need bind() before listen() (no ephemeral listeners)")
        if self._listener is None:
            self._listen()

    def _listen(self) -> None:
        uri = self._uri(self._bound)
        h = self._att.listen(uri)
        self._listener = h
        self._w.listeners[h] = []
        ev = self._w.wait_for(lambda: next((e for e in self._w.bound if e["handle"] == h), None), 5.0,
                              f"the listen reply for {uri}")
        self._w.bound.remove(ev)
        if ev["rx_fifo"]:                               # a datagram listener: its own fifos
            from graphnet.app.core import Session
            self._s = self._w.sessions[h] = Session(self._w, ev)
            self._s.lcl = self._bound
            self._s.lcl_ip = _ip(self._bound[0])

    def accept(self):
        self._check_open()
        if self._listener is None or self.type != SOCK_STREAM:
            raise OSError(errno.EINVAL, "accept() needs a listening SOCK_STREAM socket")
        q = self._w.listeners[self._listener]
        s = self._wait(lambda: q.pop(0) if q else None, "a connection")
        conn = socket(self.family, self.type, attachment=self._att, _session=s)
        conn._timeout = self._timeout if self._timeout != 0.0 else None
        return conn, s.rmt

    # --- sending ---------------------------------------------------------------------

    def _writable(self):
        s = self._s
        if s is None:
            raise OSError(errno.ENOTCONN, f"{self._what()} is not connected")
        return writable(s)

    def _notify_tx(self, s) -> None:
        if s.tx.set_event():
            self._w.send(64, s.handle)                 # GN_APP_MSG_TX: data in my fifo

    def _room(self, s, need: int):
        """At least `need` bytes free in the tx fifo (waiting for the reader,
        who is asked for a dequeue notification before we sleep)."""
        poked = []

        def ok():
            self._writable()
            if s.peer_closed and not poked:
                # The peer ended its stream while our fifo is full: it may
                # have closed fully, and only a tx event tells the engine to
                # check (ending our transport, as TCP's RST would); the
                # event flag may still be set from bytes it never read.
                poked.append(1)
                self._w.send(64, s.handle)             # GN_APP_MSG_TX
            return s.tx.max_enqueue >= need
        if s.tx.max_enqueue < need:
            self._wait(ok, f"room in the tx fifo ({need} bytes)", lambda: s.tx.want_deq_ntf(DEQ_NTF))

    def send(self, data, flags: int = 0) -> int:
        self._check_open()
        s = self._writable()
        mv = memoryview(data).cast("B")
        if s.datagrams:
            return self._send_dgram(s, mv, None)
        if not len(mv):
            return 0
        self._room(s, 1)
        n = s.tx.enqueue_from(mv)
        self._notify_tx(s)
        return n

    def sendall(self, data, flags: int = 0) -> None:
        self._check_open()
        s = self._writable()
        if s.datagrams:
            self._send_dgram(s, memoryview(data).cast("B"), None)
            return
        # the fast path: all of it into the fifo, in one C call
        left = _stream.sendall(s.tx, self._w.ctrl, s.tx_msg, data)
        if left < 0:                                    # written, but the TX event to post the slow way
            self._w.send(64, s.handle)
            left = -1 - left
        if not left:
            return
        mv = memoryview(data).cast("B")
        off, end, tx = len(mv) - left, len(mv), s.tx
        while off < end:
            n = tx.enqueue_from(mv, off)                # C copy from the caller's buffer, as much as fits
            if n:
                off += n
                self._notify_tx(s)
            else:
                self._room(s, 1)

    def sendto(self, data, address) -> int:
        self._check_open()
        s = self._writable()
        if not s.datagrams:
            return self.send(data)
        return self._send_dgram(s, memoryview(data).cast("B"), address)

    def _send_dgram(self, s, mv, address) -> int:
        """One whole datagram (graphnet.app.dgram.send: header + payload in
        one enqueue, the TX event only if none is outstanding)."""
        n = len(mv)
        if n > 65507:
            raise OSError(errno.EMSGSIZE, f"{s.name()}: datagram of {n} bytes (at most 65507)")
        if address is None:
            if s.rmt_ip == 0 and s.rmt[1] == 0:
                raise OSError(errno.EDESTADDRREQ, f"{s.name()}: sendto() needs an address on an unconnected socket")
            rip, rport = s.rmt_ip, s.rmt[1]
        else:
            rip, rport = _ip(address[0]), address[1]
        r = _dgram.send(s.tx, self._w.ctrl, s.tx_msg, mv, rip, s.lcl_ip, rport, s.lcl[1])
        if r == -1:                                     # no room for the record: wait, then once more
            self._room(s, _dgram.HDR_SIZE + n)
            r = _dgram.send(s.tx, self._w.ctrl, s.tx_msg, mv, rip, s.lcl_ip, rport, s.lcl[1])
            if r == -1:
                raise BlockingIOError(errno.EAGAIN, f"{s.name()}: the tx fifo filled up")
        if r == -3:                                     # written; the engine's queue was full
            self._w.send(64, s.handle)
        return n

    # --- receiving -------------------------------------------------------------------

    def _readable(self, s) -> bool:
        """Data, or an end (reset raises). Before sleeping, _wait clears the
        fifo's event flag (the next byte raises an event) and looks again."""
        if s.rx.max_dequeue:
            return True
        if s.reset:
            raise ConnectionResetError(errno.ECONNRESET, f"{s.name()}: reset by peer")
        return s.peer_closed or s.transport_closed or s.gone or s.closed or s.shut_rd

    def _wait_readable(self, s, what: str = "data") -> None:
        self._wait(lambda: self._readable(s), what, s.rx.unset_event)

    def _read_done(self, s, n: int) -> None:
        """After a read: tell a waiting writer; clear the event flag once
        the fifo is empty only for a socket that may be waited on outside
        recv (non-blocking, or its fileno() was asked for: a selector must
        hear of the next byte). A blocking socket read in a loop keeps the
        flag set while it is awake, so the writer posts no event (no
        system call) per write; the flag is cleared in _wait, just before
        it sleeps, and the fifo looked at once more (no byte is missed:
        see Fifo.unset_event)."""
        if (self._timeout == 0.0 or self._polled) and not s.rx.max_dequeue:
            s.rx.unset_event()
        self._rx_done(s, n)

    def _rx_done(self, s, n: int) -> None:
        if n and s.rx.needs_deq_ntf(n):
            self._w.send(68, s.handle)                  # GN_APP_MSG_RX_DONE: the writer may go on

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._check_open()
        s = self._s
        if s is None:
            raise OSError(errno.ENOTCONN, f"{self._what()} is not connected")
        if s.datagrams:
            return self._recv_dgram(s, bufsize, False)
        self._wait_readable(s)
        data = s.rx.dequeue(bufsize)
        self._read_done(s, len(data))
        return data

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        self._check_open()
        s = self._s
        if s is not None and not s.datagrams:
            # the fast path: bytes are there, one C call takes them
            r = _stream.recv_into(s.rx, self._w.ctrl, s.rx_done_msg, buffer, nbytes,
                                  self._timeout == 0.0 or self._polled)
            if r < 0:                                   # read, but RX_DONE to post the slow way
                self._w.send(68, s.handle)
                return -1 - r
            if r:
                return r
        mv = memoryview(buffer).cast("B")
        n = nbytes or len(mv)
        if s is None:
            raise OSError(errno.ENOTCONN, f"{self._what()} is not connected")
        if s.datagrams:
            while True:
                r = _dgram.recv_into(s.rx, self._w.ctrl, s.rx_done_msg, mv[:n])
                if r >= 0:
                    return r
                if r == -2:
                    raise OSError(errno.EPROTO, f"{s.name()}: corrupt datagram header in the rx fifo")
                if r <= -3:                             # RX_DONE to post the slow way
                    self._w.send(68, s.handle)
                    return -3 - r
                if not self._wait_dgram(s):
                    return 0                            # an end, not a datagram
        self._wait_readable(s)
        got = s.rx.dequeue_into(mv, 0, n)                # one C copy from the ring into the caller's buffer
        self._read_done(s, got)
        return got

    def recvfrom(self, bufsize: int, flags: int = 0):
        self._check_open()
        s = self._s
        if s is None:
            raise OSError(errno.ENOTCONN, f"{self._what()} is not bound or connected")
        if s.datagrams:
            return self._recv_dgram(s, bufsize, True)
        self._wait_readable(s, "a datagram")
        return self.recv(bufsize), s.rmt

    def _wait_dgram(self, s) -> bool:
        """Until the rx fifo has a record: True; False at an end (a reset
        raises); the timeout as _wait. The wait itself is graphnet.app.dgram.wait
        (C, GIL released: an optional spin of DGRAM_SPIN_NS, the event flag
        cleared, one poll on the eventfd, the rx/tx events dropped in C)."""
        w = self._w
        end = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            if s.rx.max_dequeue:
                return True
            if s.reset:
                raise ConnectionResetError(errno.ECONNRESET, f"{s.name()}: reset by peer")
            if s.peer_closed or s.transport_closed or s.gone or s.closed or s.shut_rd:
                return False
            if self._timeout == 0.0:
                s.rx.unset_event()
                if s.rx.max_dequeue:
                    return True
                w.process_events()
                if s.rx.max_dequeue:
                    return True
                raise BlockingIOError(errno.EAGAIN, f"{self._what()}: a datagram would block")
            if end is None:
                ms = 1000
            else:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(errno.ETIMEDOUT,
                                       f"{self._what()}: timed out ({self._timeout} s) waiting for a datagram")
                ms = min(1000, int(left * 1000 + 0.999))
            n, others = _dgram.wait(s.rx, w.events, ms, DGRAM_SPIN_NS)
            w.n_events += n
            if others:
                w.dispatch_batch(others)

    def _recv_dgram(self, s, bufsize: int, with_addr: bool):
        """One whole datagram (graphnet.app.dgram.recv: the payload cut to
        bufsize, the record dropped): bytes, or (bytes, (ip, port)) with
        with_addr; b'' at an end. The fifo is looked at before any wait."""
        while True:
            r = _dgram.recv(s.rx, self._w.ctrl, s.rx_done_msg, bufsize, with_addr)
            if r is None:
                if not self._wait_dgram(s):             # an end, not a datagram
                    return (b"", s.rmt) if with_addr else b""
                continue
            if r == -2:
                raise OSError(errno.EPROTO, f"{s.name()}: corrupt datagram header in the rx fifo")
            if type(r) is list:                         # RX_DONE to post the slow way
                self._w.send(68, s.handle)
                r = r[0]
            if with_addr:
                return r[0], (ip_str(r[1]), r[2])
            return r

    # --- closing ---------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        """As socket.shutdown (see the module docstring): SHUT_WR half-closes
        the session, SHUT_RD stops recv from waiting; close() still ends it."""
        self._check_open()
        if how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            raise OSError(errno.EINVAL, f"{self._what()}: shutdown how must be SHUT_RD, SHUT_WR or SHUT_RDWR, "
                                        f"not {how!r}")
        s = self._s
        if s is None or self._listener is not None and self.type == SOCK_STREAM:
            raise OSError(errno.ENOTCONN, f"{self._what()}: shutdown of a socket that is not connected")
        if how != SHUT_WR:
            s.shut_rd = True
        if how != SHUT_RD:
            self._shut_write(s)

    def _shut_write(self, s) -> None:
        """The half-close: once; a datagram session through the graph has
        nothing to tell its peer (only sends are refused from now on)."""
        if s.shut_wr or s.closed or s.gone:
            return
        s.shut_wr = True
        if not s.datagrams:
            self._w.send(69, s.handle)                 # GN_APP_MSG_SHUTDOWN: end of stream after my tx fifo

    def _close_session(self) -> None:
        s = self._s
        if s is not None and not s.closed and not s.gone and self._listener is None:
            s.closed = True
            try:
                self._w.send(65, s.handle)              # GN_APP_MSG_CLOSE
            except OSError:
                pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._w.listeners.pop(self._listener, None)
            self._w.sessions.pop(self._listener, None)
            try:
                self._att.unlisten(self._listener)
            except OSError:
                pass
            self._listener = None
            self._s = None
            return
        self._close_session()

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "a graphnet socket has no file descriptor of its own")


def writable(s):
    """Session s if it may still send, else the stdlib's error naming it."""
    if s.reset or s.gone:
        raise ConnectionResetError(errno.ECONNRESET, f"{s.name()}: reset by peer")
    if s.closed:
        raise BrokenPipeError(errno.EPIPE, f"{s.name()}: closed")
    if s.shut_wr:
        raise BrokenPipeError(errno.EPIPE, f"{s.name()}: shut down for writing")
    if s.transport_closed:
        raise BrokenPipeError(errno.EPIPE, f"{s.name()}: closed by peer")
    return s


def create_connection(address, timeout: Optional[float] = None, source_address=None) -> socket:
    """As socket.create_connection (IPv4, stream)."""
    s = socket(AF_INET, SOCK_STREAM)
    s.settimeout(timeout if timeout is not None else _default_timeout)
    try:
        s.connect(address)
    except BaseException:
        s.close()
        raise
    return s
