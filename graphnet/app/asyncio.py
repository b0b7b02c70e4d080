"""asyncio over graphnet sessions: ``open_connection()`` / ``start_server()``
returning the standard ``asyncio.StreamReader`` / ``StreamWriter``, and a
``Transport`` that any ``asyncio.Protocol`` can use.

    import asyncio
    from graphnet.app import asyncio as gnasyncio

    async def main():
        reader, writer = await gnasyncio.open_connection("127.0.0.1", 5000)
        writer.write(b"ping")
        await writer.drain()
        print(await reader.read(100))
        writer.close()
        await writer.wait_closed()

    class Echo(asyncio.DatagramProtocol):          # UDP: loop.create_datagram_endpoint's counterpart
        def connection_made(self, transport): self.t = transport
        def datagram_received(self, data, addr): self.t.sendto(data, addr)
    transport, _ = await gnasyncio.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", 7000))

How: the process's worker eventfd is added to the running loop
(``loop.add_reader``, so uvloop works too); when it fires, the worker's
events are read once and every transport of this loop looks at its fifos.
A transport reads straight from the rx fifo: a ``BufferedProtocol`` gets
the bytes copied once into its own buffer; a plain ``Protocol`` gets them
as ``bytes``. ``write`` puts what fits into the tx fifo and keeps the rest
(flow control: ``pause_writing`` above the high-water mark, resumed when
the reader's dequeue notification frees room); ``write_eof`` half-closes
(``StreamWriter.write_eof()``: the peer reads end of file, we go on
reading). End of file from the peer calls ``eof_received``; a reset,
``connection_lost(ConnectionResetError)``.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import weakref
from typing import Optional

from graphnet.session.fifo import DEQ_NTF
from graphnet.app.socket import writable, DGRAM_HDR

_PUMPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()     # loop -> _Pump


class _Pump:
    """One per loop: reads the worker's events, wakes the transports."""

    def __init__(self, loop, worker):
        self.loop = loop
        self.worker = worker
        self.transports: set = set()
        self.servers: set = set()
        self.waiters: list = []           # (condition, future)
        loop.add_reader(worker.fileno(), self.run)

    def run(self) -> None:
        self.worker.process_events()
        for t in list(self.transports):
            t._poll()
        for srv in list(self.servers):
            srv._poll()
        for cond, fut in list(self.waiters):
            if fut.done():
                self.waiters.remove((cond, fut))
                continue
            try:
                r = cond()
            except BaseException as e:
                self.waiters.remove((cond, fut))
                fut.set_exception(e)
                continue
            if r:
                self.waiters.remove((cond, fut))
                fut.set_result(r)

    async def wait_for(self, cond):
        r = cond()
        if r:
            return r
        fut = self.loop.create_future()
        self.waiters.append((cond, fut))
        self.loop.call_soon(self.run)             # events may have been read by someone else
        return await fut

    def close(self) -> None:
        self.loop.remove_reader(self.worker.fileno())


def _pump(loop=None) -> _Pump:
    from graphnet.app.core import current
    loop = loop or asyncio.get_running_loop()
    p = _PUMPS.get(loop)
    w = current().worker
    if p is None or p.worker is not w:            # a fork made a new worker
        if p is not None:
            p.close()
        p = _PUMPS[loop] = _Pump(loop, w)
    return p


class _Closing:
    """is_closing/close for both transports: close flushes what is kept
    (_flush sees _closing and closes the session once it is out)."""
    _closing = False
    _lost = False

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """What is kept goes out first, then the session closes."""
        if self._closing or self._lost:
            return
        self._closing = True
        self._flush()


class Transport(_Closing, asyncio.Transport):
    """A graphnet stream session as an asyncio transport."""

    def __init__(self, loop, sock, protocol: asyncio.BaseProtocol):
        super().__init__()
        self._loop = loop
        self._sock = sock                       # graphnet.app.socket (connected)
        self._s = sock._s
        self._protocol = protocol
        self._pump = _pump(loop)
        self._out = bytearray()                  # written, not yet in the fifo
        self._closing = False
        self._lost = False
        self._eof_sent = False                   # the protocol was told of the peer's end of stream
        self._eof_pending = False                # write_eof(): half-close once _out is in the fifo
        self._reading = True
        self._paused = False
        self._high, self._low = 64 << 10, 16 << 10
        self._pump.transports.add(self)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._poll)

    # --- reading ---------------------------------------------------------------------

    def _poll(self) -> None:
        if self._lost:
            return
        s = self._s
        if self._out:
            self._flush()
        if self._reading:
            self._read()
        if s.reset or s.gone and not self._closing:
            self._lose(ConnectionResetError(errno.ECONNRESET, f"{s.name()}: reset by peer"))
        elif (s.peer_closed or s.transport_closed) and not s.rx.max_dequeue and not self._eof_sent and self._reading:
            self._eof_sent = True
            keep_open = self._protocol.eof_received() if hasattr(self._protocol, "eof_received") else False
            if not keep_open:
                self.close()

    def _read(self) -> None:
        s, p = self._s, self._protocol
        while True:
            n = s.rx.max_dequeue
            if not n:
                s.rx.unset_event()
                if not s.rx.max_dequeue:
                    return
                continue
            if isinstance(p, asyncio.BufferedProtocol):
                buf = memoryview(p.get_buffer(n)).cast("B")
                got = 0
                for piece in s.rx.readable():   # fifo -> the protocol's buffer: one copy
                    k = min(len(piece), len(buf) - got)
                    buf[got:got + k] = piece[:k]
                    got += k
                s.rx.dequeue_drop(got)
                self._sock._rx_done(s, got)
                p.buffer_updated(got)
            else:
                data = s.rx.dequeue(n)
                self._sock._rx_done(s, len(data))
                p.data_received(data)
            if self._lost or not self._reading:
                return

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._loop.call_soon(self._poll)

    def is_reading(self) -> bool:
        return self._reading and not self._lost

    # --- writing ---------------------------------------------------------------------

    def write(self, data) -> None:
        if self._eof_pending:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._lost or self._closing:
            raise BrokenPipeError(errno.EPIPE, f"{self._s.name()}: the transport is closing")
        s = writable(self._s)
        if not data:
            return
        if not self._out:
            n = s.tx.enqueue(memoryview(data).cast("B"))
            if n:
                self._sock._notify_tx(s)
            data = memoryview(data)[n:]
        if len(data):
            self._out += data
            self._flush()
        self._check_pause()

    def _flush(self) -> None:
        """Move buffered bytes into the tx fifo; when it is full, ask for a
        dequeue notification and look again (the reader may have emptied
        it before it saw our request: no wakeup is lost)."""
        s = self._s
        while self._out:
            n = s.tx.enqueue(self._out)
            if n:
                del self._out[:n]
                self._sock._notify_tx(s)
                continue
            s.tx.want_deq_ntf(DEQ_NTF)
            if not s.tx.max_enqueue:
                break
        self._check_pause()
        if self._out or self._lost:
            return
        if self._closing:
            self._sock._close_session()
            self._lose(None)
        elif self._eof_pending:
            self._sock._shut_write(s)

    def _check_pause(self) -> None:
        size = len(self._out)
        if not self._paused and size > self._high:
            self._paused = True
            self._protocol.pause_writing()
        elif self._paused and size <= self._low:
            self._paused = False
            self._protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return len(self._out)

    def get_write_buffer_limits(self):
        return self._low, self._high

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._high = 64 << 10 if high is None else high
        self._low = self._high // 4 if low is None else low
        self._check_pause()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close once the buffered bytes are in the fifo (the socket's
        SHUT_WR: the peer reads end of file); reading goes on."""
        if self._eof_pending or self._closing or self._lost:
            return
        self._eof_pending = True
        self._flush()

    # --- closing ---------------------------------------------------------------------

    def abort(self) -> None:
        if self._lost:
            return
        s = self._s
        if not s.closed and not s.gone:
            s.closed = True
            self._sock._w.send(66, s.handle)           # GN_APP_MSG_RESET
        self._lose(None)

    def _lose(self, exc) -> None:
        if self._lost:
            return
        self._lost = True
        self._pump.transports.discard(self)
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def get_extra_info(self, name, default=None):
        return {"peername": self._s.rmt, "sockname": self._s.lcl, "socket": self._sock,
                "graphnet_session": self._s}.get(name, default)


class Server:
    """What start_server() returns (asyncio.Server's methods)."""

    def __init__(self, loop, lsock, protocol_factory):
        self._loop = loop
        self._lsock = lsock
        self._factory = protocol_factory
        self._pump = _pump(loop)
        self._pump.servers.add(self)
        self._closed = loop.create_future()
        self.sockets = (lsock,)
        loop.call_soon(self._poll)

    def _poll(self) -> None:
        q = self._pump.worker.listeners.get(self._lsock._listener)
        while q:
            from graphnet.app.socket import socket as gsocket
            s = q.pop(0)
            sock = gsocket(attachment=self._lsock._att, _session=s)
            Transport(self._loop, sock, self._factory())

    def is_serving(self) -> bool:
        return not self._closed.done()

    def close(self) -> None:
        if self._closed.done():
            return
        self._pump.servers.discard(self)
        self._lsock.close()
        self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        await asyncio.shield(self._closed)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()


async def _connect(pump: _Pump, sock, address) -> None:
    """socket.connect without blocking the loop: the session's CONNECTED
    event is awaited through the pump."""
    w = sock._w
    opaque = w.next_opaque()
    w.connects[opaque] = None
    uri = sock._uri(address)
    try:
        sock._att.connect(uri, opaque)
        ev = await pump.wait_for(lambda: w.connects.get(opaque))
    finally:
        w.connects.pop(opaque, None)
    if ev["retval"] != 0:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"graphnet connect to {uri} refused ({ev['retval']})")
    sock._s = w.sessions[ev["handle"]]


async def create_connection(protocol_factory, host: str, port: int):
    """(transport, protocol) for a stream session to host:port."""
    from graphnet.app.socket import socket as gsocket
    loop = asyncio.get_running_loop()
    sock = gsocket()
    await _connect(_pump(loop), sock, (host, port))
    protocol = protocol_factory()
    return Transport(loop, sock, protocol), protocol


async def open_connection(host: str, port: int, *, limit: int = 2 ** 16):
    """(StreamReader, StreamWriter) over a graphnet stream session."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(lambda: protocol, host, port)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def create_server(protocol_factory, host: str, port: int) -> Server:
    from graphnet.app.socket import socket as gsocket
    ls = gsocket()
    ls.bind((host, port))
    ls.listen()
    return Server(asyncio.get_running_loop(), ls, protocol_factory)


async def start_server(client_connected_cb, host: str, port: int, *, limit: int = 2 ** 16) -> Server:
    """As asyncio.start_server: client_connected_cb(reader, writer) per connection."""
    loop = asyncio.get_running_loop()

    def factory():
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)
    return await create_server(factory, host, port)


class DatagramTransport(_Closing, asyncio.DatagramTransport):
    """A graphnet UDP session as asyncio's datagram transport (what
    ``loop.create_datagram_endpoint`` gives): ``sendto`` puts a datagram
    into the tx fifo, or keeps it (in order) while the fifo is full, with
    ``pause_writing`` / ``resume_writing`` around the high-water mark; each
    datagram in the rx fifo is one ``datagram_received(data, addr)``;
    errors of a send or a corrupt rx record go to ``error_received``, as
    asyncio does with the kernel's. (UDP is never cut-through: a datagram
    listener is reached through the UDP transport only.)"""

    def __init__(self, loop, sock, protocol: asyncio.DatagramProtocol, remote=None, only_remote=False):
        super().__init__()
        self._loop = loop
        self._sock = sock                        # graphnet.app.socket, SOCK_DGRAM, non-blocking
        self._s = sock._s
        self._protocol = protocol
        self._remote = remote                    # the default address (connected), or None
        self._only_remote = only_remote          # a listener that hears only remote (bound and connected)
        self._pump = _pump(loop)
        self._out: collections.deque = collections.deque()    # (data, addr) not yet in the fifo
        self._out_size = 0
        self._closing = False
        self._lost = False
        self._paused = False
        self._high, self._low = 64 << 10, 16 << 10
        sock.setblocking(False)
        self._pump.transports.add(self)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._poll)

    def _poll(self) -> None:
        if self._lost:
            return
        if self._out:
            self._flush()
        self._read()

    def _read(self) -> None:
        s, sock = self._s, self._sock
        while not self._lost:
            if not s.rx.max_dequeue:
                s.rx.unset_event()               # the next datagram raises an event; look once more
                if not s.rx.max_dequeue:
                    return
            try:
                if s.datagrams and s.rx.max_dequeue < DGRAM_HDR.size:
                    s.rx.dequeue_drop_all()
                    raise OSError(errno.EPROTO, f"{s.name()}: a truncated datagram record in the rx fifo")
                data, addr = sock.recvfrom(1 << 16)
            except OSError as e:
                self._protocol.error_received(e)
                continue
            if self._only_remote and addr != self._remote:
                continue                         # connected: only the peer's datagrams, as the kernel
            self._protocol.datagram_received(data, addr)

    def sendto(self, data, addr=None) -> None:
        if self._remote is not None and addr not in (None, self._remote):
            raise ValueError(f"Invalid address: must be None or {self._remote}")
        if self._lost or self._closing:
            return                               # asyncio drops what is sent after close
        if not data:
            return
        addr = addr if addr is not None else self._remote
        if not self._out:
            try:
                self._send(data, addr)
                return
            except BlockingIOError:
                pass                             # the fifo is full: a dequeue notification was asked for
            except OSError as e:
                self._protocol.error_received(e)
                return
        self._out.append((bytes(data), addr))
        self._out_size += len(data)
        self._check_pause()

    def _send(self, data, addr) -> None:
        """One datagram into the tx fifo, or BlockingIOError (no room: the
        dequeue notification is asked for) or the send's OSError."""
        if addr is None:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)

    def _flush(self) -> None:
        while self._out:
            data, addr = self._out[0]
            try:
                self._send(data, addr)
            except BlockingIOError:
                break
            except OSError as e:
                self._protocol.error_received(e)
            self._out.popleft()
            self._out_size -= len(data)
        self._check_pause()
        if not self._out and self._closing:
            self._lose(None)

    def _check_pause(self) -> None:
        if not self._paused and self._out_size > self._high:
            self._paused = True
            self._protocol.pause_writing()
        elif self._paused and self._out_size <= self._low:
            self._paused = False
            self._protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return self._out_size

    def get_write_buffer_limits(self):
        return self._low, self._high

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._high = 64 << 10 if high is None else high
        self._low = self._high // 4 if low is None else low
        self._check_pause()

    def abort(self) -> None:
        self._out.clear()
        self._out_size = 0
        self._lose(None)

    def _lose(self, exc) -> None:
        if self._lost:
            return
        self._lost = True
        self._pump.transports.discard(self)
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def get_extra_info(self, name, default=None):
        info = {"sockname": self._sock.getsockname(), "socket": self._sock, "graphnet_session": self._s}
        if self._remote is not None:
            info["peername"] = self._remote
        return info.get(name, default)


async def create_datagram_endpoint(protocol_factory, local_addr=None, remote_addr=None):
    """As loop.create_datagram_endpoint over a graphnet UDP session:
    ``local_addr`` listens there (datagrams from anyone, ``sendto`` anyone);
    ``remote_addr`` alone makes a connected session; both: the listener,
    with ``remote_addr`` as the default address and the only peer heard.
    One of them is needed (graphnet has no ephemeral listeners).
    Returns (transport, protocol)."""
    from graphnet.app.socket import socket as gsocket, SOCK_DGRAM, AF_INET, _ip
    loop = asyncio.get_running_loop()
    if local_addr is None and remote_addr is None:
        raise ValueError("graphnet datagram endpoints need local_addr or remote_addr (no ephemeral ports)")
    remote = None
    if remote_addr is not None:
        remote = (str(ipaddress.IPv4Address(_ip(remote_addr[0]))), remote_addr[1])
    sock = gsocket(AF_INET, SOCK_DGRAM)
    try:
        if local_addr is not None:
            sock.bind(local_addr)
        else:
            await _connect(_pump(loop), sock, remote)
    except BaseException:
        sock.close()
        raise
    protocol = protocol_factory()
    return DatagramTransport(loop, sock, protocol, remote, local_addr is not None and remote is not None), protocol
