# IPv4 stream sockets (connect, listen, accept): the kernel TCP references of
# the TCP benches (graphnet/bench/tcp_ref_io.pyx). The generic socket calls
# (socket, bind, setsockopt, send, recv) and sockaddr are in af_packet.pxd.
from libc.stdint cimport uint16_t, uint32_t
from graphnet.includes.af_packet cimport sockaddr, socklen_t

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr
    enum:
        IPPROTO_TCP

cdef extern from "<netinet/tcp.h>" nogil:
    enum:
        TCP_NODELAY

cdef extern from "<sys/socket.h>" nogil:
    int connect(int fd, const sockaddr* addr, socklen_t len)
    int listen(int fd, int backlog)
    int accept4(int fd, sockaddr* addr, socklen_t* len, int flags)
    int shutdown(int fd, int how)
    enum:
        AF_INET
        SOCK_STREAM
        SHUT_WR
        SO_REUSEADDR
        SO_RCVTIMEO
        MSG_NOSIGNAL
