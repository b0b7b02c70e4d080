# SYN cookies (RFC 4987 s.3.6) and the listener's bounded SYN backlog.
# See syncookie.pyx.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from graphnet.transport.tcp.isn cimport gn_tcp_secret_t
from graphnet.transport.tcp.conn cimport gn_tcp_conn_t, gn_tcp_config_t, gn_tcp_seg_t, gn_tcp_out_t, gn_tcp_act_t

cdef enum:
    GN_TCP_COOKIE_N_MSS = 8
    GN_TCP_COOKIE_WINDOW = 65535          # the (unscaled) window of a cookie SYN-ACK
    GN_TCP_COOKIE_MAX_AGE = 2             # periods (of 2**16 ms, about 65 s) a cookie stays valid
    # gn_tcp_syn_policy results
    GN_TCP_SYN_ACCEPT = 0                 # make a half-open connection
    GN_TCP_SYN_COOKIE = 1                 # answer with a SYN cookie, keep nothing
    GN_TCP_SYN_DROP = 2                   # backlog full and cookies off
    # gn_tcp_listener_t.cookies
    GN_TCP_COOKIES_OFF = 0
    GN_TCP_COOKIES_WHEN_FULL = 1          # the default
    GN_TCP_COOKIES_ALWAYS = 2

ctypedef struct gn_tcp_cookie_t:
    # what a valid cookie ACK gives back
    uint16_t mss                          # the peer's MSS, from the table (rounded down)
    uint8_t snd_wscale                    # the peer's window scale (GN_TCP_COOKIE_NO_WSCALE: none)
    uint8_t flags                         # GN_TCP_OPTF_SACK_PERMITTED | GN_TCP_OPTF_TIMESTAMP | GN_TCP_OPTF_WSCALE

ctypedef struct gn_tcp_listener_t:
    uint32_t n_half_open                  # connections in SYN_RCVD
    uint32_t max_half_open                # the SYN backlog
    uint8_t cookies                       # GN_TCP_COOKIES_*
    uint8_t pad[3]
    uint32_t n_syns
    uint32_t n_syn_dropped
    uint32_t n_cookies_sent
    uint32_t n_cookies_ok
    uint32_t n_cookies_bad

cdef inline void gn_tcp_half_open_gone(gn_tcp_listener_t* l) noexcept nogil:
    """A half-open connection of this listener left SYN_RCVD."""
    if l.n_half_open:
        l.n_half_open -= 1

cdef uint32_t gn_tcp_syn_policy(gn_tcp_listener_t* l) noexcept nogil
cdef void gn_tcp_syncookie_synack(const gn_tcp_secret_t* key, const gn_tcp_config_t* cfg, uint32_t lcl_ip,
                                  uint16_t lcl_port, uint32_t rmt_ip, uint16_t rmt_port, const gn_tcp_seg_t* syn,
                                  uint32_t now_ms, uint32_t ts_offset, gn_tcp_out_t* o) noexcept nogil
cdef bint gn_tcp_syncookie_check(const gn_tcp_secret_t* key, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip,
                                 uint16_t rmt_port, const gn_tcp_seg_t* ack, uint32_t now_ms, uint32_t ts_offset,
                                 gn_tcp_cookie_t* out) noexcept nogil
cdef void gn_tcp_syncookie_open(gn_tcp_conn_t* c, const gn_tcp_seg_t* ack, const gn_tcp_cookie_t* ck,
                                uint32_t now_ms, uint32_t rx_space, gn_tcp_act_t* a) noexcept nogil
