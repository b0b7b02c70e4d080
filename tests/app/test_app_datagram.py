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
