"""Apps in their own processes against the kernel's own stack (issue 14):
the engine (its loop in a thread, the attach socket served) reaches a
network namespace this test creates through a TAP; the app is a separate
Python process; its peer is a kernel socket in the namespace. TCP
half-close both ways (privileged: root and /dev/net/tun)."""
import os
import socket
import subprocess
import threading
import uuid

import pytest

from graphnet.io import host
from graphnet.nodes import ip4_host, session_host
from graphnet.apps.echo import start_echo_server
from graphnet.session.attach import AttachServer
from graphnet.testing.helpers import ns_socket
from test_app_process import run, finish

tap = pytest.importorskip("graphnet.io.tap")

pytestmark = pytest.mark.privileged(tun=True)

GN, PEER = "10.233.0.1", "10.233.0.2"


@pytest.fixture
def real(engine_factory):
    with host.temporary_netns("gn-app") as ns:
        name = f"gna{os.urandom(3).hex()}"
        eng = engine_factory([ip4_host.NODES, session_host.NODES], buffers=16384)
        eng.add(tap.TapDevice(eng, name, netns=ns, host_address=f"{PEER}/24"))
        eng.build()
        ip4_host.set_interface_address(eng, name, f"{GN}/24")
        start_echo_server(eng, "udp://0.0.0.0/7")
        eng.start()
        srv = AttachServer(eng, f"/tmp/gn-app-{uuid.uuid4().hex[:8]}/app.sock").start()
        try:
            warm_neighbours(ns)
            yield eng, ns, srv
        finally:
            srv.close()
            eng.stop()


def warm_neighbours(ns, tries=5):
    """Both sides know each other's MAC before a test starts (a datagram
    sent while ARP resolves may be dropped, and UDP would not resend it):
    the kernel asks the engine's builtin echo until it answers."""
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    try:
        for _ in range(tries):
            s.sendto(b"warm", (GN, 7))
            try:
                if s.recvfrom(100)[0] == b"warm":
                    return
            except TimeoutError:
                pass
        raise AssertionError("the engine's echo never answered the kernel")
    finally:
        s.close()


def kernel_thread(fn):
    """fn() in a thread; join() returns its result or raises its error."""
    box = {}

    def body():
        try:
            box["r"] = fn()
        except BaseException as e:          # handed to the test
            box["e"] = e
    th = threading.Thread(target=body, daemon=True)
    th.start()

    def join(timeout=20.0):
        th.join(timeout)
        assert not th.is_alive(), "the kernel side did not finish"
        if "e" in box:
            raise box["e"]
        return box["r"]
    return join


def read_to_eof(s) -> bytes:
    got = bytearray()
    while d := s.recv(65536):
        got += d
    return bytes(got)


APP_CLIENT = """
    import os, sys
    from graphnet import app
    app.attach("tcp-half-client")
    data = bytes(range(256)) * 800
    s = app.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
    s.sendall(data)
    s.shutdown(app.SHUT_WR)                         # our FIN after the data
    got = bytearray()
    while d := s.recv(65536):                       # FIN_WAIT_2: the kernel still sends
        got += d
    print(bytes(got) == b"%d:" % len(data) + data[::-1])
    s.close()
"""


def test_app_shut_wr_the_kernel_reads_eof_and_answers_after_it(real):
    eng, ns, srv = real
    ls = ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((PEER, 0))
    ls.listen()
    ls.settimeout(15)
    port = ls.getsockname()[1]

    def kernel_server():
        c, _ = ls.accept()
        with c:
            c.settimeout(15)
            data = read_to_eof(c)               # the app's FIN
            c.sendall(b"%d:" % len(data) + data[::-1])
        return len(data)
    join = kernel_thread(kernel_server)
    try:
        rc, out, err = finish(run(srv, APP_CLIENT, PEER, port))
        assert rc == 0, err
        assert out.strip() == "True"
        assert join() == 256 * 800
    finally:
        ls.close()


APP_SERVER = """
    import sys
    from graphnet import app
    app.attach("tcp-half-server")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind((sys.argv[1], int(sys.argv[2])))
    ls.listen()
    print("listening", flush=True)
    ls.settimeout(15)
    c, _ = ls.accept()
    c.settimeout(15)
    got = bytearray()
    while d := c.recv(65536):                       # until the kernel's FIN
        got += d
    c.sendall(b"%d:" % len(got) + bytes(got).upper())   # CLOSE_WAIT: we still send
    c.shutdown(app.SHUT_WR)                         # our FIN, before any close
    print("shut", flush=True)
    sys.stdin.readline()                            # the test saw the kernel read our FIN
    c.close()
    ls.close()
    print("closed")
"""


def test_kernel_shut_wr_the_app_answers_then_its_shutdown_sends_the_fin(real):
    eng, ns, srv = real
    port = 5300
    app = run(srv, APP_SERVER, GN, port, stdin=subprocess.PIPE)
    try:
        assert app.stdout.readline().strip() == "listening"
        c = ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
        with c:
            c.settimeout(15)
            c.connect((GN, port))
            c.sendall(b"kernel data " * 10000)
            c.shutdown(socket.SHUT_WR)
            reply = read_to_eof(c)              # ends with the app's shutdown, not its close
            assert app.stdout.readline().strip() == "shut"
        assert reply == b"120000:" + b"KERNEL DATA " * 10000
        app.stdin.write("close\n")
        app.stdin.flush()
        rc, out, err = finish(app)
        assert rc == 0, err
        assert out.strip() == "closed"
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()


APP_UDP = """
    import asyncio, sys
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-udp-real")
    gn, peer, kport, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    class Upper(asyncio.DatagramProtocol):          # a server: answers whoever sent
        def __init__(self):
            self.n = 0
            self.done = asyncio.Event()
        def connection_made(self, transport):
            self.t = transport
        def datagram_received(self, data, addr):
            self.t.sendto(data.upper(), addr)
            self.n += 1
            if self.n == n:
                self.done.set()

    class Client(asyncio.DatagramProtocol):         # a connected client of the kernel's echo
        def __init__(self):
            self.got = []
            self.done = asyncio.Event()
        def connection_made(self, transport):
            self.t = transport
        def datagram_received(self, data, addr):
            self.got.append((data, addr))
            if len(self.got) == n:
                self.done.set()

    async def main():
        srv, up = await gnasyncio.create_datagram_endpoint(Upper, local_addr=(gn, 6000))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)   # nothing printed meanwhile
        cli, c = await gnasyncio.create_datagram_endpoint(Client, remote_addr=(peer, kport))
        sent = [b"from the app %d" % i * (1 + i % 50) for i in range(n)]
        for d in sent:
            cli.sendto(d)
        await asyncio.wait_for(c.done.wait(), 15)
        print([d for d, _ in c.got] == sent, {a for _, a in c.got} == {(peer, kport)})
        await asyncio.wait_for(up.done.wait(), 15)
        print("answered", up.n)
        cli.close()
        srv.close()
    asyncio.run(main())
"""


def test_asyncio_datagram_endpoints_against_kernel_udp_sockets(real):
    eng, ns, srv = real
    n = 30
    echo = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)    # the kernel's echo for the app's client
    echo.bind((PEER, 0))
    echo.settimeout(15)
    peer = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)    # a kernel client of the app's server
    peer.bind((PEER, 0))
    peer.settimeout(15)

    def kernel_echo():
        for _ in range(n):
            d, a = echo.recvfrom(65536)
            echo.sendto(d, a)
        return a
    join = kernel_thread(kernel_echo)
    app = run(srv, APP_UDP, GN, PEER, echo.getsockname()[1], n, stdin=subprocess.PIPE)
    try:
        assert app.stdout.readline().strip() == "ready"
        app.stdin.write("go\n")
        app.stdin.flush()
        replies = []
        for i in range(n):
            peer.sendto(b"kernel %d" % i, (GN, 6000))
            replies.append(peer.recvfrom(65536))
        assert replies == [(b"KERNEL %d" % i, (GN, 6000)) for i in range(n)]
        assert join()[0] == GN                           # the app's datagrams came from the engine's address
        rc, out, err = finish(app)
        assert rc == 0, err
        assert out.splitlines() == ["True True", f"answered {n}"]
    finally:
        echo.close()
        peer.close()
        if app.poll() is None:
            app.kill()
            app.communicate()


APP_UDP_BOTH = """
    import asyncio, sys
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-udp-both")
    gn, peer, kport = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Only(asyncio.DatagramProtocol):
        def __init__(self):
            self.got = asyncio.get_running_loop().create_future()
        def datagram_received(self, data, addr):
            if not self.got.done():
                self.got.set_result((data, addr))

    async def main():
        t, p = await gnasyncio.create_datagram_endpoint(Only, local_addr=(gn, 6001), remote_addr=(peer, kport))
        t.sendto(b"hello")                              # to remote_addr, from gn:6001
        print(await asyncio.wait_for(p.got, 15))
        t.close()
    asyncio.run(main())
"""


def test_asyncio_datagram_endpoint_bound_and_connected_hears_only_its_peer(real):
    eng, ns, srv = real
    mine = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    other = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    for s in (mine, other):
        s.bind((PEER, 0))
        s.settimeout(15)
    app = run(srv, APP_UDP_BOTH, GN, PEER, mine.getsockname()[1])
    try:
        d, a = mine.recvfrom(100)
        assert (d, a) == (b"hello", (GN, 6001))
        other.sendto(b"not for you", (GN, 6001))          # another sender: not heard
        mine.sendto(b"for you", (GN, 6001))
        rc, out, err = finish(app)
        assert rc == 0, err
        assert out.strip() == f"(b'for you', ('{PEER}', {mine.getsockname()[1]}))"
    finally:
        mine.close()
        other.close()
        if app.poll() is None:
            app.kill()
            app.communicate()


AIO_TCP_CLIENT = """
    import asyncio, sys
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-tcp-half")

    async def main():
        reader, writer = await gnasyncio.open_connection(sys.argv[1], int(sys.argv[2]))
        writer.write(b"question " * 5000)
        writer.write_eof()                              # our FIN after the bytes
        print((await asyncio.wait_for(reader.read(), 15)).decode())    # the kernel answers after it
        writer.close()
        await writer.wait_closed()
    asyncio.run(main())
"""


def test_asyncio_write_eof_against_a_kernel_tcp_server(real):
    eng, ns, srv = real
    ls = ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    ls.bind((PEER, 0))
    ls.listen()
    ls.settimeout(15)

    def kernel_server():
        c, _ = ls.accept()
        with c:
            c.settimeout(15)
            data = read_to_eof(c)
            c.sendall(b"got %d bytes" % len(data))
    join = kernel_thread(kernel_server)
    try:
        rc, out, err = finish(run(srv, AIO_TCP_CLIENT, PEER, ls.getsockname()[1]))
        assert rc == 0, err
        assert out.strip() == "got 45000 bytes"
        join()
    finally:
        ls.close()
