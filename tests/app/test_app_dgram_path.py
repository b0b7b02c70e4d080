"""The socket module's datagram calls over graphnet.app.dgram (the C path:
one record per datagram in the fifos, the wait on the eventfd in C),
against the engine's builtin UDP echo (port 7) from a separate process."""
import time

from test_app_process import engine, run, finish, ENGINE_IP  # noqa: F401

SIZES_CLIENT = """
    import errno, sys
    from graphnet import app
    app.attach("dg-sizes", rx_fifo_size=1 << 20, tx_fifo_size=1 << 20)
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.settimeout(10)
    u.connect((sys.argv[1], 7))
    def pattern(n):
        return bytes((i * 7 + n) & 255 for i in range(n))
    ok = []
    for n in (1, 15, 16, 17, 64, 1000, 2048, 9000, 60000, 65507):
        d = pattern(n)
        assert u.send(d) == n
        ok.append(u.recv(70000) == d)                        # recv: whole datagram
        u.sendto(d, (sys.argv[1], 7))
        got, addr = u.recvfrom(70000)                        # recvfrom: the peer's address
        ok.append(got == d and addr == (sys.argv[1], 7))
        u.send(d)
        buf = bytearray(70000)
        k = u.recv_into(buf)                                 # recv_into: the user's buffer
        ok.append(k == n and buf[:k] == d)
    print(all(ok), len(ok))
    # a datagram cut to the buffer: the rest of it is dropped, the next one whole
    u.send(pattern(100)); u.send(pattern(50))
    print(u.recv(10) == pattern(100)[:10], u.recv(1000) == pattern(50))
    buf = bytearray(8)
    u.send(pattern(30)); u.send(pattern(5))
    print(u.recv_into(buf) == 8 and buf == pattern(30)[:8], u.recv_into(buf) == 5 and buf[:5] == pattern(5))
    try:
        u.send(bytes(65508))
    except OSError as e:
        print("too big", e.errno == errno.EMSGSIZE)
    u.send(b"")                                              # an empty datagram is one too
    print("empty", u.recvfrom(100) == (b"", (sys.argv[1], 7)))
    u.close()
"""


def test_datagrams_byte_exact_1_byte_to_65507(engine):
    """send/recv, sendto/recvfrom and recv_into carry whole datagrams of 1 B
    to the UDP maximum byte-exact, recvfrom names the echo's address, a
    short buffer cuts one datagram (not the next), 65508 bytes is EMSGSIZE."""
    eng, srv = engine
    rc, out, err = finish(run(srv, SIZES_CLIENT, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == ["True 30", "True True", "True True", "too big True", "empty True"]


TIMEOUT_CLIENT = """
    import sys
    from graphnet import app
    app.attach("dg-timeout")
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.connect((sys.argv[1], 7))
    u.settimeout(0.2)
    for call in (lambda: u.recv(10), lambda: u.recvfrom(10), lambda: u.recv_into(bytearray(10))):
        try:
            call()
        except TimeoutError:
            print("timeout")
    u.settimeout(0)
    try:
        u.recv(10)
    except BlockingIOError:
        print("would block")
    u.settimeout(10)
    u.send(b"after")                                         # the socket still works after timeouts
    print(u.recv(10))
"""


def test_recv_timeouts_and_nonblocking(engine):
    eng, srv = engine
    rc, out, err = finish(run(srv, TIMEOUT_CLIENT, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == ["timeout", "timeout", "timeout", "would block", "b'after'"]


FULL_CLIENT = """
    import sys
    from graphnet import app
    app.attach("dg-full", rx_fifo_size=4096)
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.connect((sys.argv[1], 7))
    for i in range(10):
        u.send(bytes([i]) * 1000)
    print("sent", flush=True)
    sys.stdin.readline()                                     # the engine has answered all ten
    u.settimeout(0)
    got = []
    while True:
        try:
            got.append(u.recv(2000))
        except BlockingIOError:
            break
    print([(len(d), d == bytes([d[0]]) * 1000, d[0]) for d in got])
"""


def test_full_rx_fifo_drops_whole_datagrams_and_counts_them(engine):
    """A 4 KB rx fifo that is not read holds 4 echoed 1000-byte datagrams
    (16-byte header each); the other 6 are dropped whole and counted in
    udp4-session's rx-fifo-full; the 4 read back are the first, intact."""
    import subprocess
    eng, srv = engine
    full0 = eng.error_count("udp4-session", "rx-fifo-full")
    enq0 = eng.error_count("udp4-session", "enqueued")
    p = run(srv, FULL_CLIENT, ENGINE_IP, stdin=subprocess.PIPE)
    assert p.stdout.readline().strip() == "sent"
    end = time.monotonic() + 10                              # wait for the outcome (not a timing check)
    while (eng.error_count("udp4-session", "rx-fifo-full") - full0
           + eng.error_count("udp4-session", "enqueued") - enq0) < 20 and time.monotonic() < end:
        time.sleep(0.01)
    assert eng.error_count("udp4-session", "rx-fifo-full") - full0 == 6
    p.stdin.write("\n")
    p.stdin.flush()
    rc, out, err = finish(p)
    assert rc == 0, err
    assert out.splitlines() == [str([(1000, True, i) for i in range(4)])]


CORRUPT_CLIENT = """
    import errno, sys, time
    from graphnet import app
    app.attach("dg-corrupt")
    u = app.socket(app.AF_INET, app.SOCK_DGRAM)
    u.settimeout(10)
    u.connect((sys.argv[1], 7))
    s = u._s
    def corrupt_next_record():
        # the echo's record arrives whole; then its header's length field is
        # overwritten in the shared ring (as a hostile or broken writer of
        # the segment could) to more than the fifo holds
        end = time.monotonic() + 10
        while s.rx.max_dequeue < 16 + 5 and time.monotonic() < end:
            time.sleep(0.001)
        first = s.rx.readable()[0]
        first[0:4] = (1 << 20).to_bytes(4, "little")
    for call in ("recv", "recvfrom", "recv_into"):
        u.send(b"hello")
        corrupt_next_record()
        try:
            if call == "recv_into":
                u.recv_into(bytearray(100))
            else:
                getattr(u, call)(100)
            print(call, "accepted the corrupt record")
        except OSError as e:
            print(call, errno.errorcode.get(e.errno), s.rx.max_dequeue)
        u.send(call.encode())                                # the session goes on
        print(call, "then", u.recv(100))
    u.close()
"""


def test_a_corrupt_record_header_is_refused_with_eproto_and_the_socket_goes_on(engine):
    """A datagram record whose header claims more bytes than the rx fifo
    holds (only a hostile writer of the shared segment makes one) is never
    read past the fifo: recv, recvfrom and recv_into raise EPROTO, the fifo
    is emptied, and the next datagram arrives whole."""
    eng, srv = engine
    rc, out, err = finish(run(srv, CORRUPT_CLIENT, ENGINE_IP))
    assert rc == 0, err
    assert out.splitlines() == ["recv EPROTO 0", "recv then b'recv'", "recvfrom EPROTO 0",
                                "recvfrom then b'recvfrom'", "recv_into EPROTO 0", "recv_into then b'recv_into'"]
