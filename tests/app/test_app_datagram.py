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
