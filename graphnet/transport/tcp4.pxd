# TCP over IPv4 on the session layer: the glue between the tcp4-* nodes,
# the connection state machine (graphnet/transport/tcp/conn.pxd) and the
# session layer. See tcp4.pyx.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_FRAME_SIZE
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t
from graphnet.vlib.timer cimport gn_timer_wheel_t
from graphnet.session.types cimport gn_transport_connection_t
from graphnet.session.session cimport gn_session_main_t
from graphnet.transport.tcp.conn cimport gn_tcp_conn_t, gn_tcp_config_t, gn_tcp_act_t, gn_tcp_seg_t, GN_TCP_N_ERRORS
from graphnet.transport.tcp.isn cimport gn_tcp_secret_t
from graphnet.transport.tcp.syncookie cimport gn_tcp_listener_t
from graphnet.fib.ip4_fib cimport gn_ip4_fib_t
from graphnet.io.interface cimport gn_interface_main_t

cdef enum:
    GN_TCP4_MAX_CONNS = 65536
    GN_TCP4_MAX_LISTENERS = 1024
    GN_TCP4_HASH_SIZE = 1 << 18           # open addressing, 4x the connections
    GN_TCP4_T_RTX = 0                     # retransmit / persist / SYN retries
    GN_TCP4_T_DELACK = 1
    GN_TCP4_T_KEEPALIVE = 2
    GN_TCP4_T_TIME_WAIT = 3
    GN_TCP4_N_TIMERS = 4
    GN_TCP4_MAX_PIECES = 48               # buffers of one received segment (64 KB GSO super-frame)

# gn_tcp4_conn_t.gflags
cdef enum:
    GN_TCP4_F_HALF_OPEN_COUNTED = 1       # counted in its listener's n_half_open
    GN_TCP4_F_DEFERRED = 2                # on the deferred list (tcp4-timer sends for it)
    GN_TCP4_F_DELACK = 4                  # an ACK is owed (delayed-ACK timer armed)
    GN_TCP4_F_NOTIFIED = 8                # the session was told "transport closed"
    GN_TCP4_F_ACK_PENDING = 32            # on the dispatch's ACK list (sent once, at the frame's end)

# The state nodes' error rows (tcp4-listen, -syn-sent, -rcv-process,
# -established): row = GN_TCP_E_* for the state machine's reasons, then
# the glue's own below (graphnet.transport.tcp4.STATE_ERRORS).
cdef enum:
    GN_TCP4_E_NO_BUFFERS = GN_TCP_N_ERRORS        # a segment to send was not sent: no buffers
    GN_TCP4_E_NO_CONN_MEMORY = GN_TCP_N_ERRORS + 1 # a SYN not answered: the connection pool is full
    GN_TCP4_E_SYN_DROPPED = GN_TCP_N_ERRORS + 2   # a SYN dropped: backlog full, cookies off
    GN_TCP4_E_BAD_COOKIE = GN_TCP_N_ERRORS + 3    # an ACK to a listener with an invalid cookie (RST sent)
    GN_TCP4_E_ACCEPT_FAILED = GN_TCP_N_ERRORS + 4 # no session for an established connection (RST sent)
    GN_TCP4_E_RX_FIFO = GN_TCP_N_ERRORS + 5       # in-window data not stored: the fifo refused it
    GN_TCP4_E_STATE_N = GN_TCP_N_ERRORS + 6
    GN_TCP4_COUNT_ONLY = 0x10000                  # or'ed into a row: count it, the segment was used

cdef enum:
    GN_TCP4_KIND_CONN = 0                 # gn_tcp4_state_dispatch: segments of a connection
    GN_TCP4_KIND_LISTEN = 1               # segments to a listener
    GN_TCP4_KIND_CLOSED = 2               # segments for nobody (RST)

ctypedef struct gn_tcp4_opaque_t:
    # TCP's use of gn_buffer_t.opaque, after IPv4's 12 bytes (gn_ip4_opaque_t)
    uint32_t pad[4]
    uint32_t src_ip                       # segments out: addresses for tcp4-output (host order)
    uint32_t dst_ip
    uint32_t conn                         # segments in: the connection tcp4-input found

cdef inline gn_tcp4_opaque_t* gn_tcp4_opaque(gn_buffer_t* b) noexcept nogil:
    return <gn_tcp4_opaque_t*>b.opaque

ctypedef struct gn_tcp4_conn_t:
    gn_transport_connection_t c           # first: the session layer's view
    gn_tcp_conn_t t                       # second: the state machine
    uint64_t ho_handle                    # active open: the session's half-open
    uint32_t listener                     # passive open: listener index (else GN_SESSION_INVALID_INDEX)
    uint32_t timers[GN_TCP4_N_TIMERS]     # handles in the transport's wheel (GN_TIMER_NONE: not armed)
    uint32_t rx_hint                      # rx space before the session exists (its fifo size)
    uint32_t last_rx_ms                   # keepalive: the last segment received
    uint32_t deferred                     # GN_TCP_A_* actions waiting for tcp4-timer
    uint32_t rst_seq                      # a deferred RST's fields
    uint32_t rst_ack
    uint8_t rst_flags
    uint8_t valid
    uint8_t gflags                        # GN_TCP4_F_*
    uint8_t pad

ctypedef struct gn_tcp4_listener_t:
    gn_transport_connection_t c
    gn_tcp_listener_t l
    uint8_t valid

ctypedef struct gn_tcp4_stats_t:
    uint64_t segs_in
    uint64_t segs_out
    uint64_t bytes_in                     # payload bytes put into rx fifos (in order)
    uint64_t bytes_out                    # payload bytes sent (retransmissions included)
    uint64_t retransmits
    uint64_t timeouts
    uint64_t fast_retransmits
    uint64_t early_retransmits            # of them, below DupThresh (RFC 5827)
    uint64_t tlp_probes                   # tail loss probes (RFC 8985 s.7): PTO expiries
    uint64_t active_opens
    uint64_t passive_opens
    uint64_t established
    uint64_t resets_sent
    uint64_t resets_received
    uint64_t closed
    uint64_t time_wait_expired
    uint64_t delacks
    uint64_t window_updates
    uint64_t keepalive_probes
    uint64_t cookies_sent
    uint64_t no_buffers
    uint64_t conn_alloc_fail
    uint64_t unread_resets                # app closes with unread rx data: RST instead of FIN
    uint64_t tso_segs_out                 # TSO super-segments sent (counted once each in segs_out)
    uint64_t tso_bytes_out                # their payload bytes (also in bytes_out)

ctypedef struct gn_tcp4_main_t:
    gn_session_main_t* sm
    gn_main_t* vm
    gn_tcp4_conn_t* conns                 # one pool (thread 0); indices stay valid
    uint32_t high
    uint32_t* free_idx
    uint32_t n_free
    uint32_t n_live
    uint64_t* hkeys                       # 5-tuple hash: key (lcl_ip << 32 | rmt_ip), ports, value
    uint32_t* hports
    uint32_t* hvals                       # conn index + 1; 0 empty; 0xffffffff tombstone
    uint32_t h_n
    gn_tcp4_listener_t listeners[GN_TCP4_MAX_LISTENERS]
    gn_tcp_config_t cfg
    gn_tcp_secret_t secret
    gn_timer_wheel_t wheel                # ms ticks
    uint32_t timer_node                   # tcp4-timer's index (GN_SESSION_INVALID_INDEX: none)
    uint64_t wake_ns                      # tcp4-timer's next scheduled run (0: none)
    uint32_t* deferred                    # conns with actions for tcp4-timer
    uint32_t n_deferred
    uint32_t time_wait_ms                 # 2MSL
    uint32_t delack_ms
    uint32_t keepalive_ms                 # idle time before probes (0: off)
    uint32_t keepalive_intvl_ms
    uint32_t src_ip                       # default local address of active opens (0: none)
    uint16_t sq_next                      # session-queue's arc to tcp4-output
    uint16_t next_port
    uint16_t ip_id
    uint8_t port_used[65536]
    # the current output: where built segments go (set by the caller, see gn_tcp4_out_begin)
    gn_node_runtime_t* out_node
    uint16_t out_next
    uint32_t n_out
    uint32_t out[GN_FRAME_SIZE]
    gn_tcp4_stats_t st
    # the egress of super-segments (_max_seg): the engine's FIB and interface table (NULL: one MSS)
    const gn_ip4_fib_t* fib
    gn_interface_main_t* im
    uint8_t tso_off                       # configure(tso=False): one MSS whatever the egress
    # ACKs owed for in-order data, sent once per connection at the end of a state node's frame
    # (gn_tcp4_state_dispatch): a vector of 5 segments of one stream gets one ACK, not 5
    uint8_t acks_batched                  # 1 while a state node's frame runs (else ACKs go at once)
    uint32_t n_acks
    uint32_t acks[GN_FRAME_SIZE]          # connection indices, each once (GN_TCP4_F_ACK_PENDING)


cdef inline gn_tcp4_conn_t* gn_tcp4_conn_at(gn_tcp4_main_t* tm, uint32_t i) noexcept nogil:
    if i < tm.high and tm.conns[i].valid:
        return &tm.conns[i]
    return NULL

cdef uint32_t gn_tcp4_lookup(gn_tcp4_main_t* tm, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip,
                             uint16_t rmt_port) noexcept nogil
cdef gn_tcp4_listener_t* gn_tcp4_find_listener(gn_tcp4_main_t* tm, uint32_t ip, uint16_t port) noexcept nogil
cdef void gn_tcp4_out_begin(gn_tcp4_main_t* tm, gn_main_t* vm, gn_node_runtime_t* node, uint16_t next) noexcept nogil
cdef void gn_tcp4_out_end(gn_tcp4_main_t* tm) noexcept nogil
cdef uint32_t gn_tcp4_rx(gn_tcp4_main_t* tm, gn_buffer_t* b, uint32_t conn_index) noexcept nogil
cdef uint32_t gn_tcp4_rx_listen(gn_tcp4_main_t* tm, gn_buffer_t* b) noexcept nogil
cdef uint32_t gn_tcp4_rx_closed(gn_tcp4_main_t* tm, gn_buffer_t* b) noexcept nogil
cdef uint32_t gn_tcp4_state_dispatch(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame,
                                     uint32_t kind) noexcept nogil
cdef uint32_t gn_tcp4_run_timers(gn_tcp4_main_t* tm, uint64_t now_ns) noexcept nogil
cdef uint32_t gn_tcp4_segment_view(gn_main_t* vm, gn_buffer_t* b, uint8_t** ip, uint8_t** t, uint32_t* tcp_len) noexcept nogil
