# Linux system interfaces: errno and its values, the fd syscalls (unistd,
# fcntl, readv/writev, ioctl), epoll, poll, eventfd, mmap. The one place these are
# declared: tun.pxd and af_packet.pxd hold only their own devices' parts.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "<errno.h>" nogil:
    int errno
    enum:
        EAGAIN
        EWOULDBLOCK
        EINTR
        EBADF
        EBADFD
        EIO
        ENODEV
        ENXIO
        EFAULT
        EINVAL
        EPERM
        EACCES
        EBUSY
        EEXIST
        ENOENT
        EMSGSIZE
        ENOBUFS
        ENOMEM
        EPIPE
        ENETDOWN

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void* buf, size_t count)
    ssize_t write(int fd, const void* buf, size_t count)
    int close(int fd)

cdef extern from "<fcntl.h>" nogil:
    int open(const char* path, int flags)
    int fcntl(int fd, int cmd, ...)
    enum:
        O_RDONLY
        O_RDWR
        O_NONBLOCK
        O_CLOEXEC
        F_GETFL
        F_SETFL

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len
    ssize_t readv(int fd, const iovec* iov, int iovcnt)
    ssize_t writev(int fd, const iovec* iov, int iovcnt)

cdef extern from "<sys/ioctl.h>" nogil:
    int ioctl(int fd, unsigned long request, ...)

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    enum:
        EFD_NONBLOCK
        EFD_CLOEXEC

cdef extern from "<sys/epoll.h>" nogil:
    union epoll_data:
        void* ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data data
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)

cdef extern from "<sys/mman.h>" nogil:
    void* mmap(void* addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void* addr, size_t length)
    enum:
        PROT_READ
        PROT_WRITE
        MAP_PRIVATE
        MAP_SHARED
        MAP_ANONYMOUS
        MAP_POPULATE
        MAP_LOCKED
    void* MAP_FAILED


cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd* fds, unsigned long nfds, int timeout)
    enum:
        POLLIN
        POLLOUT
        POLLERR
        POLLHUP
        POLLNVAL


cdef extern from "<sched.h>" nogil:
    int sched_yield()
