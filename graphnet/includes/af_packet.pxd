# Linux AF_PACKET sockets, TPACKET_V3 rings, interface ioctls and setns:
# the C declarations of graphnet.io.af_packet_* (and the bench reader graphnet.bench.af_packet_raw).
# errno, open/close, iovec and ioctl are in linux.pxd.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.includes.linux cimport iovec

cdef extern from "<string.h>" nogil:
    char* strerror(int errnum)

cdef extern from "<sched.h>" nogil:
    int setns(int fd, int nstype)
    enum:
        CLONE_NEWNET


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        unsigned short sa_family
        char sa_data[14]
    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    int socket(int domain, int type, int protocol)
    int bind(int fd, const sockaddr* addr, socklen_t len)
    int setsockopt(int fd, int level, int name, const void* value, socklen_t len)
    int getsockopt(int fd, int level, int name, void* value, socklen_t* len)
    ssize_t send(int fd, const void* buf, size_t len, int flags)
    ssize_t sendmsg(int fd, const msghdr* msg, int flags)
    ssize_t recv(int fd, void* buf, size_t len, int flags)
    enum:
        AF_PACKET
        SOCK_RAW
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        SOL_SOCKET
        SO_ERROR
        SO_SNDBUF
        SO_RCVBUF
        MSG_DONTWAIT

cdef extern from "<arpa/inet.h>" nogil:
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)

cdef extern from "<net/if.h>" nogil:
    enum:
        IFNAMSIZ
        IFF_UP
        IFF_RUNNING
        IFF_PROMISC
    struct ifreq:
        char ifr_name[16]
        int ifr_ifindex
        int ifr_mtu
        short ifr_flags
        sockaddr ifr_hwaddr
    unsigned int if_nametoindex(const char* name)

cdef extern from "<linux/sockios.h>" nogil:
    enum:
        SIOCGIFINDEX
        SIOCGIFFLAGS
        SIOCGIFHWADDR
        SIOCGIFMTU

cdef extern from "<linux/if_ether.h>" nogil:
    enum:
        ETH_P_ALL
        ETH_HLEN
        ETH_ALEN

cdef extern from "<linux/if_packet.h>" nogil:
    struct sockaddr_ll:
        unsigned short sll_family
        unsigned short sll_protocol
        int sll_ifindex
        unsigned short sll_hatype
        unsigned char sll_pkttype
        unsigned char sll_halen
        unsigned char sll_addr[8]

    struct packet_mreq:
        int mr_ifindex
        unsigned short mr_type
        unsigned short mr_alen
        unsigned char mr_address[8]

    struct tpacket_req3:
        unsigned int tp_block_size
        unsigned int tp_block_nr
        unsigned int tp_frame_size
        unsigned int tp_frame_nr
        unsigned int tp_retire_blk_tov
        unsigned int tp_sizeof_priv
        unsigned int tp_feature_req_word

    struct tpacket_stats_v3:
        unsigned int tp_packets
        unsigned int tp_drops
        unsigned int tp_freeze_q_cnt

    struct tpacket_hdr_variant1:
        uint32_t tp_rxhash
        uint32_t tp_vlan_tci
        uint16_t tp_vlan_tpid
        uint16_t tp_padding

    struct tpacket3_hdr:
        uint32_t tp_next_offset
        uint32_t tp_sec
        uint32_t tp_nsec
        uint32_t tp_snaplen
        uint32_t tp_len
        uint32_t tp_status
        uint16_t tp_mac
        uint16_t tp_net
        tpacket_hdr_variant1 hv1      # a member of an anonymous union in C

    struct tpacket_bd_ts:
        unsigned int ts_sec
        unsigned int ts_nsec

    struct tpacket_hdr_v1:
        uint32_t block_status
        uint32_t num_pkts
        uint32_t offset_to_first_pkt
        uint32_t blk_len
        uint64_t seq_num
        tpacket_bd_ts ts_first_pkt
        tpacket_bd_ts ts_last_pkt

    union tpacket_bd_header_u:
        tpacket_hdr_v1 bh1

    struct tpacket_block_desc:
        uint32_t version
        uint32_t offset_to_priv
        tpacket_bd_header_u hdr

    enum:
        SOL_PACKET
        PACKET_ADD_MEMBERSHIP
        PACKET_DROP_MEMBERSHIP
        PACKET_MR_PROMISC
        PACKET_RX_RING
        PACKET_TX_RING
        PACKET_VERSION
        PACKET_STATISTICS
        PACKET_QDISC_BYPASS
        PACKET_IGNORE_OUTGOING
        PACKET_OUTGOING
        PACKET_HOST
        TPACKET_V3
        TPACKET_ALIGNMENT
        TP_STATUS_KERNEL
        TP_STATUS_USER
        TP_STATUS_LOSING
        TP_STATUS_VLAN_VALID
        TP_STATUS_VLAN_TPID_VALID
        TP_STATUS_BLK_TMO
        TP_STATUS_CSUMNOTREADY
