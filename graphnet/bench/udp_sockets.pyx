"""C loops over kernel UDP sockets for the udp-echo-tap bench: a client
that keeps a window of datagrams in flight to an echo server and counts
the echoes, and a plain recvfrom/sendto echo server (the kernel's UDP
stack with the thinnest userspace on top: the reference). Both run
without the GIL, bounded in count and time."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from graphnet.includes.linux cimport pollfd, poll, POLLIN

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* alen)
    ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr, socklen_t alen)
    enum: MSG_DONTWAIT


cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


def client_loop(int fd, uint32_t size, uint64_t n, uint32_t window, double seconds, int idle_ms=200):
    """On a connected UDP socket: send n datagrams of `size` bytes, at most
    `window` unanswered; an echo that has not come within idle_ms counts
    the window as lost. Returns (sent, received, lost, seconds)."""
    cdef uint8_t* buf = <uint8_t*>malloc(65536)
    cdef uint64_t sent = 0, received = 0, lost = 0
    cdef pollfd p
    cdef double t0, t1, deadline
    cdef ssize_t r
    if buf == NULL:
        raise MemoryError()
    memset(buf, 0x5a, 65536)
    with nogil:
        t0 = _now()
        deadline = t0 + seconds
        while received + lost < n and _now() < deadline:
            while sent < n and sent - received - lost < window:
                if send(fd, buf, size, MSG_DONTWAIT) < 0:
                    break
                sent += 1
            p.fd = fd
            p.events = POLLIN
            if poll(&p, 1, idle_ms) <= 0:
                lost += sent - received - lost           # the window is gone
                continue
            while True:
                r = recv(fd, buf, 65536, MSG_DONTWAIT)
                if r < 0:
                    break
                received += 1
        t1 = _now()
    free(buf)
    return sent, received, lost, t1 - t0


def echo_loop(int fd, double seconds, int idle_ms=1000):
    """Echo every datagram on a bound UDP socket back to its
    sender until `seconds` pass or none came for idle_ms after the first.
    Returns the datagrams echoed."""
    cdef uint8_t* buf = <uint8_t*>malloc(65536)
    cdef uint8_t addr[128]
    cdef socklen_t alen
    cdef uint64_t echoed = 0
    cdef pollfd p
    cdef double deadline
    cdef ssize_t r
    if buf == NULL:
        raise MemoryError()
    with nogil:
        deadline = _now() + seconds
        while _now() < deadline:
            p.fd = fd
            p.events = POLLIN
            if poll(&p, 1, idle_ms) <= 0:
                if echoed:
                    break
                continue
            while True:
                alen = sizeof(addr)
                r = recvfrom(fd, buf, 65536, MSG_DONTWAIT, <sockaddr*>addr, &alen)
                if r < 0:
                    break
                if sendto(fd, buf, r, 0, <sockaddr*>addr, alen) >= 0:
                    echoed += 1
    free(buf)
    return echoed
