# Linux TUN/TAP (/dev/net/tun ioctls) and the virtio-net header a TAP fd
# carries with IFF_VNET_HDR. The syscalls a TAP needs (open, ioctl,
# read/readv/write/writev) and errno are in linux.pxd.
#
# The virtio-net header is in the host's byte order (little endian here: we
# never call TUNSETVNETBE). With TUNSETVNETHDRSZ 12 every read and write
# starts with a gn_virtio_net_hdr_t (the virtio_net_hdr_mrg_rxbuf layout,
# num_buffers unused); without IFF_VNET_HDR frames carry no header at all.
from libc.stdint cimport uint8_t, uint16_t

cdef extern from "<net/if.h>" nogil:
    enum:
        IFNAMSIZ
    struct ifreq:
        char ifr_name[16]
        short ifr_flags

cdef extern from "<linux/if_tun.h>" nogil:
    enum:
        TUNSETIFF
        TUNGETIFF
        TUNSETPERSIST
        TUNGETFEATURES
        TUNSETOFFLOAD
        TUNSETVNETHDRSZ
        TUNGETVNETHDRSZ
        TUNSETSNDBUF
        TUNGETSNDBUF
        TUNSETCARRIER             # Linux 5.0+: the kernel side's carrier on/off
        IFF_TUN
        IFF_TAP
        IFF_NO_PI
        IFF_VNET_HDR
        IFF_MULTI_QUEUE
        IFF_TUN_EXCL              # TUNSETIFF: EBUSY if the interface exists
        IFF_NAPI
        TUN_F_CSUM
        TUN_F_TSO4
        TUN_F_TSO6
        TUN_F_TSO_ECN

cdef extern from "<linux/virtio_net.h>" nogil:
    enum:
        VIRTIO_NET_HDR_F_NEEDS_CSUM
        VIRTIO_NET_HDR_F_DATA_VALID
        VIRTIO_NET_HDR_GSO_NONE
        VIRTIO_NET_HDR_GSO_TCPV4
        VIRTIO_NET_HDR_GSO_UDP
        VIRTIO_NET_HDR_GSO_TCPV6
        VIRTIO_NET_HDR_GSO_ECN

# Newer than some distributions' uapi headers (kernel 6.2+): fixed values.
cdef enum:
    GN_TUN_F_USO4 = 0x20
    GN_TUN_F_USO6 = 0x40
    GN_VIRTIO_NET_HDR_GSO_UDP_L4 = 5
    GN_VIRTIO_NET_HDR_SIZE = 12

ctypedef packed struct gn_virtio_net_hdr_t:
    uint8_t flags                 # VIRTIO_NET_HDR_F_*
    uint8_t gso_type              # VIRTIO_NET_HDR_GSO_*
    uint16_t hdr_len              # Ethernet + IP + L4 headers (a hint)
    uint16_t gso_size             # payload bytes per segment
    uint16_t csum_start           # checksum from here (frame offset) ...
    uint16_t csum_offset          # ... stored at csum_start + csum_offset
    uint16_t num_buffers          # mrg_rxbuf layout; 0
