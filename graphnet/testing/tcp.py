"""TCP against the kernel's own stack, for tests: graphnet's builtin echo
server on a TAP whose kernel side lives in a fresh namespace, kernel
clients and servers in that namespace, and a graphnet client app.

Only addresses of that namespace's /24 are used (``GN`` is graphnet's
end, ``PEER`` the kernel's); the namespace and the TAP are removed when
``tap_echo`` ends (privileged: root and /dev/net/tun).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from typing import Iterator, NamedTuple

from graphnet.testing.helpers import ns_socket, wait_for

GN, PEER = "10.232.0.1", "10.232.0.2"
PORT = 1234


class TapEcho(NamedTuple):
    engine: object
    ns: str                 # the namespace of the TAP's kernel side (PEER/24)
    app: object             # the echo server on GN:PORT
    ifname: str             # the TAP: graphnet's interface and the kernel's link


@contextlib.contextmanager
def tap_echo(engine_factory, *, buffers: int = 32768, fifo_size: int = 1 << 18,
             offloads: bool = True) -> Iterator[TapEcho]:
    """A running engine (IPv4 host + session layer) with a TAP at GN/24,
    its kernel side at PEER/24 in a fresh namespace, and the builtin echo
    server on tcp://GN/PORT. The engine is stopped afterwards
    (engine_factory closes and leak-checks it). offloads: the TAP's
    checksum/GSO offloads (and so TCP's TSO super-segments) on or off."""
    from graphnet.apps.echo import start_echo_server
    from graphnet.io import host, tap
    from graphnet.nodes import ip4_host, session_host
    with host.temporary_netns("gn-tcp") as ns:
        name = f"gnt{os.urandom(3).hex()}"
        eng = engine_factory([ip4_host.NODES, session_host.NODES], buffers=buffers)
        dev = tap.TapDevice(eng, name, netns=ns, host_address=f"{PEER}/24", offloads=offloads)
        eng.add(dev)
        eng.build()
        ip4_host.set_interface_address(eng, name, f"{GN}/24")
        app = start_echo_server(eng, f"tcp://{GN}/{PORT}", rx_fifo_size=fifo_size, tx_fifo_size=fifo_size,
                                segment_size=512 << 20)
        eng.start()
        try:
            yield TapEcho(eng, ns, app, name)
        finally:
            eng.stop()


def connect(ns: str, port: int = PORT, timeout: float = 10.0) -> socket.socket:
    """A kernel TCP socket in ns connected to GN:port."""
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((GN, port))
    return s


class Sender(threading.Thread):
    """Sends payload on socket s from its own thread (started at once),
    then shuts the write side if shut; ``error``: the OSError it met."""

    def __init__(self, s: socket.socket, payload: bytes, shut: bool = False):
        super().__init__(daemon=True)
        self.s, self.payload, self.shut, self.error = s, payload, shut, None
        self.start()

    def run(self):
        try:
            self.s.sendall(self.payload)
            if self.shut:
                self.s.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = e


def echo_through(s: socket.socket, payload: bytes, chunk: int = 1 << 16) -> bytes:
    """Send payload from a thread while reading the echo; the bytes back."""
    th = Sender(s, payload)
    got = bytearray()
    while len(got) < len(payload):
        b = s.recv(chunk)
        if not b:
            break
        got += b
    th.join()
    assert th.error is None, th.error
    return bytes(got)


def kernel_echo(ns: str, payload: bytes, timeout: float = 10.0) -> bytes:
    """One kernel connection from ns to graphnet's echo: payload through
    it (echo_through), then closed; the bytes back."""
    s = connect(ns, timeout=timeout)
    try:
        return echo_through(s, payload)
    finally:
        s.close()


def stats(eng) -> dict:
    """The TCP transport's totals (``show tcp stats``)."""
    from graphnet.transport import tcp4
    return eng.call(lambda: tcp4.transport(eng).stats())


# a kernel echo server for one connection: prints "ready", then the byte
# count and sha256 of what it received
_SERVER = r"""
import socket, sys, hashlib
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2]))); ls.listen(8)
print("ready", flush=True)
c, _ = ls.accept()
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b); n += len(b)
    c.sendall(b)
c.close()
print(n, h.hexdigest(), flush=True)
"""


@contextlib.contextmanager
def kernel_echo_server(ns: str, port: int) -> Iterator[subprocess.Popen]:
    """A kernel echo server on PEER:port in ns (a child process, killed
    afterwards if still running): ``communicate()`` gives "<bytes> <sha256>"."""
    srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", _SERVER, PEER, str(port)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        yield srv
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


class GraphnetClient:
    """A graphnet app (``tcp-client``) that connects to PEER:port, sends
    payload as its tx fifo drains, reads the echo back and closes once all
    of it is in. ``got``: the bytes read; ``events``: the session events."""

    def __init__(self, eng, port: int, payload: bytes, fifo_size: int = 1 << 18):
        from graphnet.session.application import session_manager
        self.eng = eng
        self.payload = payload
        self.handle = None
        self.sent = 0
        self.got = bytearray()
        self.events = []
        self._mgr = session_manager(eng)

        def start():
            cli = self._mgr.attach("tcp-client", callback=self._on_events, rx_fifo_size=fifo_size,
                                   tx_fifo_size=fifo_size)
            cli.workers[0].connect(f"tcp://{PEER}/{port}")       # from the address of the route's interface
        eng.call(start)

    def _pump(self):
        layer = self._mgr.layer
        h = self.handle
        if self.sent < len(self.payload):
            tx = layer.fifo(h, "tx")
            self.sent += tx.enqueue(self.payload[self.sent:self.sent + tx.max_enqueue])
            tx.want_deq_ntf(1)                   # tell me when it drains
            layer.tx_schedule(h)
        rx = layer.fifo(h, "rx")
        rx.unset_event()
        if rx.max_dequeue:
            self.got += rx.dequeue(rx.max_dequeue)
            layer.tx_schedule(h)                 # the push opens the window
        if len(self.got) == len(self.payload):
            layer.close(h)

    def _on_events(self, data):
        from graphnet.session.session import parse_msgs
        for m in parse_msgs(data):
            self.events.append(m["event"])
            if m["event"] == "connected" and m["retval"] == 0:
                self.handle = m["handle"]
            if self.handle is not None and m["event"] in ("connected", "rx", "tx"):
                self._pump()

    def wait(self, timeout: float) -> bool:
        """True once every byte of the echo is back."""
        return wait_for(lambda: len(self.got) == len(self.payload), timeout)
