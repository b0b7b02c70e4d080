"""asyncio's datagram endpoint over graphnet UDP sessions (issue 14): a
separate process uses ``graphnet.app.asyncio.create_datagram_endpoint``
as it would ``loop.create_datagram_endpoint``, against the engine's
builtin UDP echo (C, through the graph). Against a kernel UDP peer: see
test_app_real.py."""
from test_app_process import engine, run, finish, counts, wait_counts, ENGINE_IP  # noqa: F401

ECHO_CLIENT = """
    import asyncio, sys
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-udp")

    class Client(asyncio.DatagramProtocol):
        def __init__(self):
            self.got, self.errors, self.lost = [], [], asyncio.get_running_loop().create_future()
            self.done = asyncio.Event()
        def connection_made(self, transport):
            self.transport = transport
        def datagram_received(self, data, addr):
            self.got.append((data, addr))
            if len(self.got) == 40:
                self.done.set()
        def error_received(self, exc):
            self.errors.append(exc)
        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        t, p = await gnasyncio.create_datagram_endpoint(Client, remote_addr=(sys.argv[1], 7))
        print(t.get_extra_info("peername"))
        sent = [b"datagram %d " % i + bytes(range(256)) * (i % 7) for i in range(40)]
        for d in sent:
            t.sendto(d)
        await asyncio.wait_for(p.done.wait(), 10)
        print([d for d, _ in p.got] == sent, {a for _, a in p.got})
        t.sendto(bytes(70000))                      # too big for UDP: error_received, as asyncio does
        print([(type(e).__name__, "70000" in str(e)) for e in p.errors])
        try:
            t.sendto(b"x", ("10.0.0.9", 7))
        except ValueError as e:
            print("ValueError", e)
        t.close()
        print("lost", await asyncio.wait_for(p.lost, 5))
        t.sendto(b"after close")                    # dropped, as asyncio does
    asyncio.run(main())
"""


def test_asyncio_datagram_endpoint_with_the_builtin_echo(engine):
    eng, srv = engine
    before = counts(eng)
    rc, out, err = finish(run(srv, ECHO_CLIENT, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == [
        "('10.0.0.1', 7)",
        "True {('10.0.0.1', 7)}",
        "[('OSError', True)]",
        "ValueError Invalid address: must be None or ('10.0.0.1', 7)",
        "lost None",
    ]
    wait_counts(eng, before)


FLOW_CLIENT = """
    import asyncio, sys
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-udp-flow", tx_fifo_size=4096, rx_fifo_size=1 << 20)
    N = 200

    class Client(asyncio.DatagramProtocol):
        def __init__(self):
            self.got, self.pauses, self.resumes = [], 0, 0
            self.done = asyncio.Event()
        def connection_made(self, transport):
            self.t = transport
        def pause_writing(self):
            self.pauses += 1
        def resume_writing(self):
            self.resumes += 1
        def datagram_received(self, data, addr):
            self.got.append(data)
            if len(self.got) == N:
                self.done.set()

    async def main():
        t, p = await gnasyncio.create_datagram_endpoint(Client, remote_addr=(sys.argv[1], 7))
        t.set_write_buffer_limits(high=8192)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)   # the engine is stalled now
        sent = [b"%04d" % i + bytes(196) for i in range(N)]          # 40 KB into a 4 KB tx fifo
        for d in sent:
            t.sendto(d)
        kept = t.get_write_buffer_size()
        await asyncio.wait_for(p.done.wait(), 15)
        print(kept > 8192, p.pauses, p.resumes, p.got == sent, t.get_write_buffer_size())
        t.close()
    asyncio.run(main())
"""


def test_asyncio_datagram_endpoint_keeps_what_the_full_fifo_cannot_take_in_order(engine):
    """The engine's loop is held while the app sends 40 KB into a 4 KB tx
    fifo: the transport keeps the rest and pauses the protocol, then
    sends it in order (resuming) as the engine drains the fifo."""
    import subprocess
    import threading
    import time
    eng, srv = engine
    before = counts(eng)
    app = run(srv, FLOW_CLIENT, ENGINE_IP, stdin=subprocess.PIPE)
    try:
        assert app.stdout.readline().strip() == "ready"
        stalled = threading.Event()

        def stall():
            stalled.set()
            time.sleep(1.0)
        th = threading.Thread(target=lambda: eng.call(stall))
        th.start()
        assert stalled.wait(10)
        app.stdin.write("go\n")
        app.stdin.flush()
        th.join(15)
        rc, out, err = finish(app)
        assert rc == 0, err
        assert out.split() == ["True", "1", "1", "True", "0"]
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    wait_counts(eng, before)


UDP_SERVER = """
    import sys
    from graphnet import app
    app.attach("dg-server")
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.bind((sys.argv[1], 5300))
    print("bound", flush=True)
    u.settimeout(10)
    for i in range(3):
        d, a = u.recvfrom(70000)
        print("got", len(d), a[0], a[1] > 0, flush=True)
        u.sendto(d[::-1], a)
    u.close()
"""

UDP_CLIENT = """
    import sys
    from graphnet import app
    app.attach("dg-client")
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.settimeout(10)
    u.connect((sys.argv[1], 5300))
    print(u._s.name().split()[2], flush=True)
    sent = [bytes(range(256)) * (n // 256) + bytes([n % 251]) * (n % 256) for n in (1, 1000, 60000)]
    for d in sent:
        u.send(d)
    print([u.recv(70000) == d[::-1] for d in sent], flush=True)
    u.close()
"""


def test_udp_between_two_processes_keeps_datagrams_whole(engine):
    """A process's UDP socket bound on the engine's address and another's
    connected to it (the default scope, local and global): the datagrams go
    through the UDP transport, not a cut-through session (which carries a
    stream), so each recvfrom is one whole datagram, up to 60,000 bytes,
    with the sender's address, and the replies come back whole."""
    eng, srv = engine
    before = counts(eng)
    server = run(srv, UDP_SERVER, ENGINE_IP)
    assert server.stdout.readline().strip() == "bound"
    rc, out, err = finish(run(srv, UDP_CLIENT, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == ["(udp", "[True, True, True]"]
    rc, out, err = finish(server)
    assert rc == 0, err
    assert out.splitlines() == [f"got {n} {ENGINE_IP} True" for n in (1, 1000, 60000)]
    wait_counts(eng, before)
