"""The socket loops of the kernel TCP references (graphnet.bench.tcp_ref):
plain blocking socket calls in nogil C loops, so the reference measures the
kernel, not Python. Every loop is bounded in time (and count where it
counts): a peer that stops answering ends it through SO_RCVTIMEO (set by
the caller on blocking sockets) or the deadline.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from graphnet.includes.af_packet cimport sockaddr, socklen_t, socket, setsockopt, send, recv, SOCK_CLOEXEC
from graphnet.includes.inet cimport (sockaddr_in, connect, accept4, AF_INET, SOCK_STREAM, MSG_NOSIGNAL,
                                     IPPROTO_TCP, TCP_NODELAY)
from graphnet.includes.linux cimport close, errno, EINTR
from graphnet.includes.platform cimport gn_time_ns

cdef enum:
    MESSAGE = 8      # bytes each way per connection in the CRR loop


def bulk_send(int fd, uint32_t chunk, double seconds):
    """send() chunk-byte writes until `seconds` pass (or the peer goes).
    Returns (bytes sent, ns spent)."""
    cdef uint8_t* buf = <uint8_t*>malloc(chunk)
    cdef uint64_t total = 0, t0, deadline
    cdef ssize_t r
    if buf == NULL:
        raise MemoryError()
    memset(buf, 0x5a, chunk)
    t0 = gn_time_ns()
    deadline = t0 + <uint64_t>(seconds * 1e9)
    with nogil:
        while gn_time_ns() < deadline:
            r = send(fd, buf, chunk, MSG_NOSIGNAL)
            if r < 0:
                if errno == EINTR:
                    continue
                break
            total += r
    free(buf)
    return total, gn_time_ns() - t0


def bulk_recv(int fd, uint32_t chunk, double seconds):
    """recv() until end of stream, an error (SO_RCVTIMEO) or `seconds`.
    Returns (bytes, ns from the first byte to the last, ended by EOF)."""
    cdef uint8_t* buf = <uint8_t*>malloc(chunk)
    cdef uint64_t total = 0, first = 0, last = 0, deadline
    cdef ssize_t r
    cdef bint eof = False
    if buf == NULL:
        raise MemoryError()
    deadline = gn_time_ns() + <uint64_t>(seconds * 1e9)
    with nogil:
        while gn_time_ns() < deadline:
            r = recv(fd, buf, chunk, 0)
            if r == 0:
                eof = True
                break
            if r < 0:
                if errno == EINTR:
                    continue
                break
            last = gn_time_ns()
            if first == 0:
                first = last
            total += r
    free(buf)
    return total, last - first, eof


cdef inline int _exchange(int fd) noexcept nogil:
    """Send MESSAGE bytes and read MESSAGE back: 0, or -1."""
    cdef uint8_t msg[MESSAGE]
    cdef ssize_t r
    cdef uint32_t got = 0
    memset(msg, 0x61, MESSAGE)
    if send(fd, msg, MESSAGE, MSG_NOSIGNAL) != MESSAGE:
        return -1
    while got < MESSAGE:
        r = recv(fd, msg, MESSAGE - got, 0)
        if r <= 0:
            if r < 0 and errno == EINTR:
                continue
            return -1
        got += r
    return 0


def crr_client(uint32_t addr_be, uint16_t port_be, uint64_t max_connections, double seconds,
               uint64_t max_errors=1000):
    """Connect, send 8 bytes, read the 8-byte reply, close; again, until
    max_connections or `seconds` (or max_errors failures). The address and
    port in network byte order. Returns (connections, ns, errors)."""
    cdef sockaddr_in sa
    cdef uint64_t n = 0, errors = 0, t0, deadline
    cdef int fd, one = 1
    memset(&sa, 0, sizeof(sa))
    sa.sin_family = AF_INET
    sa.sin_port = port_be
    sa.sin_addr.s_addr = addr_be
    t0 = gn_time_ns()
    deadline = t0 + <uint64_t>(seconds * 1e9)
    with nogil:
        while n < max_connections and errors < max_errors and gn_time_ns() < deadline:
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)
            if fd < 0:
                errors += 1
                continue
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
            if connect(fd, <sockaddr*>&sa, sizeof(sa)) != 0 or _exchange(fd) != 0:
                errors += 1
            else:
                n += 1
            close(fd)
    return n, gn_time_ns() - t0, errors


def echo_server(int listen_fd, uint64_t max_connections, double seconds):
    """accept(); echo what is read until the peer closes; close; again,
    until max_connections or `seconds`. The listening socket's
    SO_RCVTIMEO bounds each accept (and the accepted sockets inherit it).
    Returns (connections, bytes echoed)."""
    cdef uint8_t buf[4096]
    cdef uint64_t n = 0, echoed = 0, deadline = gn_time_ns() + <uint64_t>(seconds * 1e9)
    cdef int fd
    cdef ssize_t r
    with nogil:
        while n < max_connections and gn_time_ns() < deadline:
            fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)
            if fd < 0:
                continue                  # timeout (EAGAIN) or EINTR: look at the deadline
            while True:
                r = recv(fd, buf, sizeof(buf), 0)
                if r < 0 and errno == EINTR:
                    continue
                if r <= 0 or send(fd, buf, r, MSG_NOSIGNAL) != r:
                    break
                echoed += r
            close(fd)
            n += 1
    return n, echoed
