"""shutdown() with the socket module's semantics for apps in their own
processes (issue 14): SHUT_WR is a half-close (the peer reads end of file
after the bytes written, this side still receives), SHUT_RD stops recv
from waiting, errors are the stdlib's and name the session. Over
cut-through between two processes, asyncio's ``write_eof()``; over TCP
through the graph against the kernel: see test_app_tcp_real.py."""
from test_app_process import engine, run, finish, counts, wait_counts  # noqa: F401  (the engine fixture)

HALF_SERVER = """
    from graphnet import app
    app.attach("half-server")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5200))
    ls.listen()
    print("listening", flush=True)
    ls.settimeout(15)
    c, _ = ls.accept()
    c.settimeout(15)
    got = bytearray()
    while d := c.recv(65536):               # until the client's half-close
        got += d
    c.sendall(b"after your eof: %d bytes" % len(got))   # we may still send
    c.sendall(got[::-1])
    c.close()
    ls.close()
    print("served", len(got))
"""

HALF_CLIENT = """
    import os
    from graphnet import app
    app.attach("half-client")
    data = os.urandom(300000)
    s = app.create_connection(("127.0.0.1", 5200), timeout=15)
    s.sendall(data)
    s.shutdown(app.SHUT_WR)
    try:
        s.send(b"more")
        print("send after SHUT_WR: no error")
    except BrokenPipeError as e:
        print("send after SHUT_WR:", type(e).__name__, e)
    head = b"after your eof: %d bytes" % len(data)
    got = bytearray()
    while d := s.recv(65536):               # the reply comes after our half-close
        got += d
    print(bytes(got[:len(head)]) == head, bytes(got[len(head):]) == data[::-1])
    s.close()
"""


def test_shut_wr_over_cut_through_the_peer_reads_eof_and_still_answers(engine):
    eng, srv = engine
    before = counts(eng)
    server = run(srv, HALF_SERVER)
    assert server.stdout.readline().strip() == "listening"
    rc, out, err = finish(run(srv, HALF_CLIENT))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("send after SHUT_WR: BrokenPipeError") and "shut down for writing" in lines[0]
    assert "session 0x" in lines[0] and "ct 127.0.0.1:" in lines[0]            # the message names the session
    assert lines[1] == "True True"
    rc, out, err = finish(server)
    assert rc == 0, err
    assert out.split() == ["served", "300000"]
    wait_counts(eng, before)


ONE_PROCESS = """
    import errno, time
    from graphnet import app
    from graphnet.app.socket import SHUT_RD, SHUT_WR, SHUT_RDWR
    app.attach("shut-one")
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5201))
    ls.listen()
    for how in (SHUT_WR, SHUT_RD):
        try:
            app.socket(app.AF_INET, app.SOCK_STREAM).shutdown(how)
        except OSError as e:
            print("unconnected", how, errno.errorcode[e.errno])
    c = app.create_connection(("127.0.0.1", 5201), timeout=5)
    a, _ = ls.accept()
    a.settimeout(5)
    try:
        c.shutdown(7)
    except OSError as e:
        print("bad how", errno.errorcode[e.errno])
    a.sendall(b"queued")
    deadline = time.monotonic() + 5
    while not c._s.rx.max_dequeue and time.monotonic() < deadline:
        c._w.wait(0.05)
    c.shutdown(SHUT_RD)
    print("buffered", c.recv(100))
    t0 = time.monotonic()
    print("then", c.recv(100), c.recv_into(bytearray(10)), time.monotonic() - t0 < 1.0)   # no wait for the timeout
    c.sendall(b"still sending")                                     # SHUT_RD leaves the sending side
    print("peer got", a.recv(100))
    c.shutdown(SHUT_RDWR)
    c.shutdown(SHUT_WR)                                             # again: nothing more happens
    print("peer eof", a.recv(100))
    try:
        c.sendall(b"x")
    except BrokenPipeError as e:
        print("sendall", type(e).__name__, "shut down for writing" in str(e))
    a.close()
    c.close()
    # a peer that closed fully: the first write goes, then the pipe is broken
    c = app.create_connection(("127.0.0.1", 5201), timeout=5)
    a, _ = ls.accept()
    a.close()
    print("eof", c.recv(10))
    c.send(b"into the void")
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c.send(b"y")
            c._w.wait(0.05)
        print("no error")
    except BrokenPipeError as e:
        print("write after peer close", type(e).__name__, "closed by peer" in str(e))
    c.close()
    # UDP: SHUT_WR only marks the socket
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.connect(("10.0.0.1", 7))
    u.shutdown(SHUT_WR)
    try:
        u.send(b"x")
    except BrokenPipeError as e:
        print("udp", type(e).__name__, "udp 10.0.0.1:" in str(e) or "10.0.0.1:7" in str(e))
    u.close()
    ls.close()
"""


def test_shut_rd_bad_how_unconnected_and_writes_after_the_peer_closed(engine):
    eng, srv = engine
    before = counts(eng)
    rc, out, err = finish(run(srv, ONE_PROCESS))
    assert rc == 0, err
    assert out.splitlines() == [
        "unconnected 1 ENOTCONN", "unconnected 0 ENOTCONN",
        "bad how EINVAL",
        "buffered b'queued'",
        "then b'' 0 True",
        "peer got b'still sending'",
        "peer eof b''",
        "sendall BrokenPipeError True",
        "eof b''",
        "write after peer close BrokenPipeError True",
        "udp BrokenPipeError True",
    ]
    wait_counts(eng, before)


AIO_SERVER = """
    import asyncio
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-half-server")

    async def handle(reader, writer):
        data = await reader.read()                      # until the client's write_eof()
        writer.write(b"%d:" % len(data) + data.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    async def main():
        global done
        done = asyncio.Event()
        async with await gnasyncio.start_server(handle, "127.0.0.1", 5202):
            print("listening", flush=True)
            await asyncio.wait_for(done.wait(), 15)
        print("served")
    asyncio.run(main())
"""

AIO_CLIENT = """
    import asyncio
    from graphnet import app
    from graphnet.app import asyncio as gnasyncio
    app.attach("aio-half-client")

    async def main():
        reader, writer = await gnasyncio.open_connection("127.0.0.1", 5202)
        writer.write(b"hello " * 20000)
        print(writer.can_write_eof())
        writer.write_eof()
        try:
            writer.write(b"late")
        except RuntimeError as e:
            print("write after eof:", e)
        reply = await asyncio.wait_for(reader.read(), 15)   # we still read after our eof
        print(reply == b"120000:" + b"HELLO " * 20000)
        writer.close()
        await writer.wait_closed()
    asyncio.run(main())
"""


def test_asyncio_write_eof_half_closes_between_two_processes(engine):
    eng, srv = engine
    before = counts(eng)
    server = run(srv, AIO_SERVER)
    assert server.stdout.readline().strip() == "listening"
    rc, out, err = finish(run(srv, AIO_CLIENT))
    assert rc == 0, err
    assert out.splitlines() == ["True", "write after eof: Cannot call write() after write_eof()", "True"]
    rc, out, err = finish(server)
    assert rc == 0, err
    assert out.strip() == "served"
    wait_counts(eng, before)
