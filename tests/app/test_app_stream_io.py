"""Stream copies in C between a socket and its cut-through fifos
(Fifo.enqueue_from / dequeue_into under app.socket's send, sendall and
recv_into) across processes: byte-exact through many wraps of small
fifos, partial writes when the fifo is full, a peer that closes while the
other side is blocked. Each app is its own process (see
test_app_process), ended by its PID past a bounded timeout."""
from tests.app.test_app_process import engine, run, finish  # noqa: F401  (the engine fixture)

FIFO = 4096                                      # small: 64 MB-scale wraps are not needed to cross the end

SINK = """
    import hashlib, sys
    from graphnet import app
    fifo, total, bufsize = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    app.attach("stream-sink", rx_fifo_size=fifo, tx_fifo_size=fifo)
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5200))
    ls.listen()
    print("listening", flush=True)
    ls.settimeout(15)
    c, _ = ls.accept()
    c.settimeout(15)
    buf = bytearray(bufsize)
    h, got, calls = hashlib.sha256(), 0, 0
    while True:
        n = c.recv_into(buf, bufsize - (calls % 3))      # odd lengths: copies end anywhere in the ring
        if not n:
            break
        h.update(buf[:n])
        got += n
        calls += 1
    c.sendall(h.hexdigest().encode())
    c.close()
    print(got, flush=True)
"""

SOURCE = """
    import hashlib, sys
    from graphnet import app
    fifo, total = int(sys.argv[1]), int(sys.argv[2])
    app.attach("stream-source", rx_fifo_size=fifo, tx_fifo_size=fifo)
    data = bytes((i * 131 + 17) & 0xff for i in range(total))
    s = app.create_connection(("127.0.0.1", 5200), timeout=15)
    sizes, off, k = (1, 999, 4096, 7777, 3), 0, 0
    while off < total:                                   # sendall of odd sizes, some larger than the fifo
        n = min(sizes[k % len(sizes)], total - off)
        if k % 2:
            s.sendall(memoryview(data)[off:off + n])
        else:
            sent = 0
            while sent < n:
                sent += s.send(data[off + sent:off + n])
        off += n
        k += 1
    s.shutdown(app.SHUT_WR)
    digest = b""
    while len(digest) < 64:
        d = s.recv(64)
        if not d:
            break
        digest += d
    print(hashlib.sha256(data).hexdigest(), digest.decode(), flush=True)
"""


def test_stream_is_byte_exact_across_processes_through_many_fifo_wraps(engine):
    eng, srv = engine
    total = 3 << 20                                   # 768 wraps of a 4 KB fifo
    sink = run(srv, SINK, FIFO, total, 5000)
    assert sink.stdout.readline().strip() == "listening"
    rc, out, err = finish(run(srv, SOURCE, FIFO, total), timeout=60)
    assert rc == 0, err
    want, got = out.split()
    assert want == got
    rc, out, err = finish(sink, timeout=60)
    assert rc == 0, err
    assert int(out.split()[-1]) == total


# one app process, a cut-through pair to its own listener: c (client) and
# a (accepted), fifos of argv[1] bytes each way, the app named argv[2]
PAIR = """
    import array, errno, sys
    from graphnet import app
    fifo = int(sys.argv[1])
    app.attach(sys.argv[2], rx_fifo_size=fifo, tx_fifo_size=fifo)
    ls = app.socket(app.AF_INET, app.SOCK_STREAM)
    ls.bind(("127.0.0.1", 5201))
    ls.listen()
    c = app.create_connection(("127.0.0.1", 5201), timeout=10)
    a, _ = ls.accept()
    a.settimeout(10)
"""

FULL = PAIR + """
    data = bytes(range(256)) * (3 * fifo // 256)
    c.setblocking(False)
    first = c.send(data)                                 # a partial write: what fits
    try:
        c.send(data[first:])
        again = "sent"
    except BlockingIOError:
        again = "would-block"
    buf = bytearray(fifo)
    n = a.recv_into(buf, 1000)                           # make room for 1000 bytes
    second = c.send(data[first:])
    got = bytes(buf[:n])
    while len(got) < first + second:
        k = a.recv_into(buf)
        got += bytes(buf[:k])
    print(first, again, second, got == data[:first + second], flush=True)
"""


def test_a_full_fifo_takes_a_partial_write_then_would_block(engine):
    eng, srv = engine
    rc, out, err = finish(run(srv, FULL, FIFO, "stream-full"))
    assert rc == 0, err
    first, again, second, same = out.split()
    assert int(first) == FIFO and again == "would-block" and int(second) == 1000 and same == "True"


BLOCKED = """
    import os, sys, threading, time
    from graphnet import app
    fifo, who = int(sys.argv[1]), sys.argv[2]
    app.attach("stream-" + who, rx_fifo_size=fifo, tx_fifo_size=fifo)
    if who == "server":
        ls = app.socket(app.AF_INET, app.SOCK_STREAM)
        ls.bind(("127.0.0.1", 5202))
        ls.listen()
        print("listening", flush=True)
        ls.settimeout(10)
        c, _ = ls.accept()
        print("accepted", flush=True)
        sys.stdin.readline()                             # the test says when: the peer is blocked by now
        c.close()
        print("closed", flush=True)
        sys.stdin.readline()
    else:
        s = app.create_connection(("127.0.0.1", 5202), timeout=10)
        s.settimeout(10)
        mode = sys.argv[3]
        print("blocking", flush=True)
        try:
            if mode == "send":
                s.sendall(bytes(8 * fifo))               # fills the fifo nobody reads, then blocks
                print("sent-all", flush=True)
            else:
                print("recv", s.recv_into(bytearray(100)), flush=True)
        except (BrokenPipeError, ConnectionResetError) as e:
            print("error", type(e).__name__, flush=True)
        except TimeoutError:
            print("timeout", flush=True)
"""


def _blocked_then_peer_closes(srv, mode):
    server = run(srv, BLOCKED, FIFO, "server", stdin=-1)
    assert server.stdout.readline().strip() == "listening"
    client = run(srv, BLOCKED, FIFO, "client", mode)
    line = server.stdout.readline().strip()
    assert line == "accepted", server.stderr.read() if not line else line
    assert client.stdout.readline().strip() == "blocking"
    server.stdin.write("\n")
    server.stdin.flush()
    assert server.stdout.readline().strip() == "closed"
    rc, out, err = finish(client)
    server.stdin.write("\n")
    server.stdin.flush()
    finish(server)
    assert rc == 0, err
    return out.split()


def test_a_writer_blocked_on_a_full_fifo_hears_the_peer_close(engine):
    eng, srv = engine
    assert _blocked_then_peer_closes(srv, "send") == ["error", "BrokenPipeError"]


def test_a_reader_blocked_on_an_empty_fifo_reads_end_of_stream_when_the_peer_closes(engine):
    eng, srv = engine
    assert _blocked_then_peer_closes(srv, "recv") == ["recv", "0"]


BUFFERS = PAIR + """
    ints = array.array("i", range(100))
    def take(n):
        buf, got = bytearray(n), 0
        while got < n:
            got += a.recv_into(memoryview(buf)[got:])
        return bytes(buf)
    # any C-contiguous bytes-like object, whatever its item format
    for obj in (b"bytes", bytearray(b"bytearray"), memoryview(b"xxview")[2:], ints, memoryview(ints)):
        c.sendall(obj)
        ok = take(memoryview(obj).nbytes) == memoryview(obj).tobytes()
        print(type(obj).__name__, ok)
    # recv_into: nbytes bounds the read, a larger nbytes is capped at the buffer
    c.sendall(b"0123456789")
    buf = bytearray(8)
    print("nbytes", a.recv_into(buf, 3), bytes(buf[:3]), a.recv_into(buf, 100), bytes(buf[:7]))
    for bad, what in ((lambda: a.recv_into(bytearray(4), -1), "negative"),
                      (lambda: a.recv_into(b"readonly"), "read-only"),
                      (lambda: c.sendall(memoryview(bytes(8))[::2]), "not contiguous")):
        try:
            bad()
            print(what, "accepted")
        except (ValueError, TypeError, BufferError):
            print(what, "refused")
    c.sendall(b"after")
    print("still", take(5))
"""


def test_sendall_and_recv_into_take_any_contiguous_buffer_and_refuse_the_rest(engine):
    """The C fast path of sendall / recv_into (graphnet.app.stream) takes
    bytes, bytearray, memoryview slices and arrays of any item size byte-
    exact; recv_into honours nbytes; a negative nbytes, a read-only buffer
    and a non-contiguous view are refused as the socket module does, and
    the session goes on."""
    eng, srv = engine
    rc, out, err = finish(run(srv, BUFFERS, 1 << 16, "stream-buffers"))
    assert rc == 0, err
    assert out.splitlines() == ["bytes True", "bytearray True", "memoryview True", "array True", "memoryview True",
                                "nbytes 3 b'012' 7 b'3456789'", "negative refused", "read-only refused",
                                "not contiguous refused", "still b'after'"]
