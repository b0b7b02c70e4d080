# A TCP connection (RFC 9293) as a C struct and its state machine as
# functions: a parsed segment (gn_tcp_seg_t) and the connection in,
# actions (gn_tcp_act_t) out. No data passes through here: received bytes
# are named by (skip, length, offset) for the glue to put into the
# session's rx fifo, sent bytes by an offset into the tx fifo, whose head
# is always the first unacknowledged data byte. See conn.pyx.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from graphnet.wire.tcp cimport gn_tcp_options_t, gn_tcp_sack_block_t
from graphnet.transport.tcp.isn cimport gn_tcp_secret_t
from graphnet.transport.tcp.rto cimport gn_tcp_rto_t
from graphnet.transport.tcp.cc cimport gn_tcp_cc_t, gn_tcp_cc_ops_t
from graphnet.transport.tcp.sack cimport gn_tcp_sb_t

cdef enum gn_tcp_state_t:
    GN_TCP_CLOSED = 0
    GN_TCP_LISTEN = 1
    GN_TCP_SYN_SENT = 2
    GN_TCP_SYN_RCVD = 3
    GN_TCP_ESTABLISHED = 4
    GN_TCP_FIN_WAIT_1 = 5
    GN_TCP_FIN_WAIT_2 = 6
    GN_TCP_CLOSE_WAIT = 7
    GN_TCP_CLOSING = 8
    GN_TCP_LAST_ACK = 9
    GN_TCP_TIME_WAIT = 10
    GN_TCP_N_STATES = 11

# gn_tcp_conn_t.flags
cdef enum:
    GN_TCP_CF_TS = 1 << 0                 # timestamps negotiated
    GN_TCP_CF_SACK = 1 << 1               # SACK negotiated
    GN_TCP_CF_WSCALE = 1 << 2             # window scaling negotiated
    GN_TCP_CF_PASSIVE = 1 << 3            # opened by a listener (SYN_RCVD returns to LISTEN on RST)
    GN_TCP_CF_FIN_QUEUED = 1 << 4         # the app closed: FIN goes after the tx data
    GN_TCP_CF_FIN_SENT = 1 << 5           # snd_fin is valid
    GN_TCP_CF_FIN_RCVD = 1 << 6           # the peer's FIN was taken (rcv_nxt is past it)
    GN_TCP_CF_FIN_PENDING = 1 << 7        # a FIN at rcv_fin waits for the data before it
    GN_TCP_CF_NO_NAGLE = 1 << 8
    GN_TCP_CF_WANT_TS = 1 << 9            # offer these options on our SYN
    GN_TCP_CF_WANT_SACK = 1 << 10
    GN_TCP_CF_WANT_WSCALE = 1 << 11
    GN_TCP_CF_RTT_TIMING = 1 << 12        # rtt_seq is being timed (Karn: not retransmitted)
    GN_TCP_CF_RTX_PENDING = 1 << 13       # retransmit the segment at SND.UNA now (fast retransmit)
    GN_TCP_CF_PERSIST = 1 << 14           # data waits behind a shut window: the timer probes it
    # RFC 8985 s.7 tail loss probe (TLP): the retransmit timer runs as the
    # probe timeout (PTO) first, then as the RTO
    GN_TCP_CF_TLP_ARMED = 1 << 15         # the timer was armed for the PTO (gn_tcp_rtx_timeout_ms)
    GN_TCP_CF_TLP_PROBE = 1 << 16         # the PTO fired: gn_tcp_send_next sends the probe
    GN_TCP_CF_TLP_SENT = 1 << 17          # a probe is out: none again until SND.UNA moves
    GN_TCP_CF_TLP_RTX = 1 << 18           # that probe resent the last segment: it may repair a loss
    GN_TCP_CF_RTX_TS = 1 << 19            # data was resent at TSval rtx_tsval: older echoes give no RTT

# gn_tcp_conn_t.recovery
cdef enum:
    GN_TCP_RECOVERY_NONE = 0
    GN_TCP_RECOVERY_NEWRENO = 1           # RFC 6582 fast recovery (no SACK)
    GN_TCP_RECOVERY_SACK = 2              # RFC 6675 loss recovery

# gn_tcp_act_t.flags: what the glue must do after a call
cdef enum:
    GN_TCP_A_SEND_ACK = 1 << 0            # an ACK now (gn_tcp_make_ack)
    GN_TCP_A_DELACK = 1 << 1              # an ACK is owed: arm the delayed-ACK timer
    GN_TCP_A_CHALLENGE_ACK = 1 << 2       # RFC 5961 challenge ACK (an ACK now, counted apart)
    GN_TCP_A_SEND_SYN = 1 << 3            # our SYN or SYN-ACK (gn_tcp_make_syn)
    GN_TCP_A_SEND_RST = 1 << 4            # a RST from rst_seq/rst_ack/rst_flags (gn_tcp_make_rst)
    GN_TCP_A_DELIVER = 1 << 5             # rx data: payload[rx_skip:rx_skip+rx_len] at rx_offset
    GN_TCP_A_TX_ACKED = 1 << 6            # tx_acked bytes leave the tx fifo head
    GN_TCP_A_TX_MORE = 1 << 7             # the send window moved: try sending
    GN_TCP_A_ESTABLISHED = 1 << 8         # handshake done: session connected / accepted
    GN_TCP_A_PEER_FIN = 1 << 9            # the peer closed its side: session "transport closing"
    GN_TCP_A_RESET = 1 << 10              # reset by the peer: session reset
    GN_TCP_A_REFUSED = 1 << 11            # an active open was refused (RST to our SYN)
    GN_TCP_A_TIME_WAIT = 1 << 12          # entered (or restarted) TIME_WAIT: arm the 2MSL timer
    GN_TCP_A_CLOSED = 1 << 13             # the connection is over: session "transport closed", free it
    GN_TCP_A_DROP = 1 << 14               # the segment was not (wholly) used; error says why
    GN_TCP_A_ACCEPT_SYN = 1 << 15         # listener: make a connection (gn_tcp_passive_open)
    GN_TCP_A_RTX_ARM = 1 << 16            # data/SYN/FIN outstanding: (re)arm the retransmit timer
    GN_TCP_A_RTX_STOP = 1 << 17           # nothing outstanding: stop it
    GN_TCP_A_FORGET = 1 << 18             # a half-open (SYN_RCVD) vanished silently: free, tell nobody
    GN_TCP_A_SEND_PROBE = 1 << 19         # zero-window probe (gn_tcp_make_probe)

# gn_tcp_act_t.error: why (part of) a segment was not used. These rows
# follow the wire rows (graphnet.wire.tcp.PARSE_ERRORS) in tcp4-input's
# error table (graphnet.transport.tcp.conn.INPUT_ERRORS).
cdef enum:
    GN_TCP_E_NONE = 0
    GN_TCP_E_NO_CONNECTION = 1            # no connection or listener: RST sent
    GN_TCP_E_LISTEN_ACK = 2               # an ACK to a listener: RST sent
    GN_TCP_E_LISTEN_NOT_SYN = 3           # neither SYN nor ACK to a listener
    GN_TCP_E_RST_IGNORED = 4              # RST out of window, or to a listener/no one
    GN_TCP_E_SYN_SENT_BAD_ACK = 5         # SYN_SENT: ACK not for our SYN (RST sent)
    GN_TCP_E_SYN_SENT_NO_SYN = 6          # SYN_SENT: neither SYN nor RST
    GN_TCP_E_PAWS = 7                     # RFC 7323 PAWS: timestamp older than TS.Recent
    GN_TCP_E_OUT_OF_WINDOW = 8            # sequence number not acceptable
    GN_TCP_E_RST_IN_WINDOW = 9            # RFC 5961: RST in window but not at RCV.NXT (challenge ACK)
    GN_TCP_E_SYN_IN_SYNC = 10             # RFC 5961: SYN in a synchronized state (challenge ACK)
    GN_TCP_E_NO_ACK = 11                  # ACK bit off
    GN_TCP_E_ACK_UNSENT = 12              # ACK for data never sent
    GN_TCP_E_ACK_TOO_OLD = 13             # RFC 5961 s.5: ACK below SND.UNA - MAX.SND.WND
    GN_TCP_E_SYN_RCVD_BAD_ACK = 14        # SYN_RCVD: ACK not for our SYN-ACK (RST sent)
    GN_TCP_E_DATA_AFTER_FIN = 15          # data or FIN past the peer's FIN, or in a state taking none
    GN_TCP_E_RX_WINDOW = 16               # data beyond the receive window or fifo space: trimmed
    GN_TCP_E_CHALLENGE_LIMIT = 17         # a challenge ACK not sent: rate limit
    GN_TCP_E_BAD_OPTIONS = 18             # the options did not parse (set by the glue)
    GN_TCP_E_OOW_LIMIT = 19               # out of window, no ACK back (rate limit against ACK loops)
    GN_TCP_N_ERRORS = 20

ctypedef struct gn_tcp_seg_t:
    # A received segment, as the glue parsed it (host order).
    uint32_t seq
    uint32_t ack
    uint32_t len                          # payload bytes (SYN and FIN not counted)
    uint16_t wnd                          # the window field, unscaled
    uint8_t flags                         # GN_TCP_FLAG_*
    uint8_t pad
    gn_tcp_options_t opts

ctypedef struct gn_tcp_act_t:
    uint32_t flags                        # GN_TCP_A_*
    uint32_t error                        # GN_TCP_E_* (with GN_TCP_A_DROP or a trim)
    uint32_t rx_skip                      # payload bytes to skip (had them, or before the window)
    uint32_t rx_len                       # bytes to enqueue
    uint32_t rx_offset                    # at this offset past the fifo's tail (0: in order)
    uint32_t tx_acked                     # data bytes acknowledged
    uint32_t rst_seq                      # the RST to send (GN_TCP_A_SEND_RST)
    uint32_t rst_ack
    uint8_t rst_flags
    uint8_t pad[3]
    uint32_t rtt_ms                       # an RTT sample was taken (0: none)

ctypedef struct gn_tcp_out_t:
    # A segment to send: header fields and which tx fifo bytes it carries.
    uint32_t seq
    uint32_t ack
    uint32_t data_off                     # offset of the payload from the tx fifo head
    uint32_t data_len
    uint16_t wnd                          # the window field (already scaled)
    uint8_t flags
    uint8_t pad
    gn_tcp_options_t opts

ctypedef struct gn_tcp_range_t:
    uint32_t offset                       # out-of-order data at rcv_nxt + offset
    uint32_t length

ctypedef struct gn_tcp_conn_t:
    uint32_t lcl_ip                       # host order
    uint32_t rmt_ip
    uint16_t lcl_port
    uint16_t rmt_port
    uint8_t state                         # gn_tcp_state_t
    uint8_t snd_wscale                    # shift of the peer's window fields
    uint8_t rcv_wscale                    # shift of ours
    uint8_t want_wscale                   # the shift we offer on our SYN
    uint32_t flags                        # GN_TCP_CF_*
    # send sequence space (RFC 9293 s.3.3.1)
    uint32_t iss
    uint32_t snd_una
    uint32_t snd_nxt
    uint32_t snd_max                      # highest sequence sent + 1 (snd_nxt rewinds on RTO)
    uint32_t snd_wnd                      # scaled
    uint32_t max_snd_wnd                  # largest window the peer offered (RFC 5961 s.5)
    uint32_t snd_wl1
    uint32_t snd_wl2
    uint32_t snd_fin                      # sequence number of our FIN (GN_TCP_CF_FIN_SENT)
    uint16_t snd_mss                      # segment payload limit (peer's MSS, clamped, less TS option)
    uint16_t rcv_mss                      # the MSS we offer (interface MTU - 40)
    uint32_t rcv_buf                      # RCV.BUFF, the rx fifo's size (receiver SWS avoidance; 0: unknown)
    # receive sequence space
    uint32_t irs
    uint32_t rcv_nxt
    uint32_t rcv_adv                      # right edge of the window last advertised
    uint32_t rcv_fin                      # sequence number of the peer's FIN (GN_TCP_CF_FIN_PENDING)
    uint32_t rcv_last_ooo                 # start of the last out-of-order segment (SACK block order)
    uint32_t delack_bytes                 # in-order bytes received since the last ACK sent
    # timestamps (RFC 7323)
    uint32_t ts_recent
    uint32_t ts_recent_ms                 # when ts_recent was set (its age for PAWS)
    uint32_t ts_offset                    # our TSval = now_ms + ts_offset
    uint32_t last_ack_sent
    # Karn-safe RTT timing without timestamps (RFC 6298 s.3)
    uint32_t rtt_seq
    uint32_t rtt_start_ms
    # RFC 5961 challenge ACK budget
    uint32_t chack_limit                  # per second
    uint32_t chack_window_ms
    uint32_t chack_count
    uint32_t oow_ack_ms                   # last ACK answering an out-of-window pure ACK
    # counters (show session verbose / show tcp stats)
    uint32_t n_challenge_acks
    uint32_t n_paws_drops
    uint32_t n_out_of_window
    uint32_t n_dup_acks
    uint32_t dup_acks                     # consecutive duplicate ACKs (the cc module reads it)
    uint64_t bytes_acked
    uint64_t bytes_received
    # retransmission and congestion control
    uint8_t recovery                      # GN_TCP_RECOVERY_*
    uint8_t cc_algo                       # GN_TCP_CC_*
    uint8_t rto_retries                   # consecutive expiries
    uint8_t max_syn_retries
    uint8_t max_data_retries
    uint8_t ka_probes                     # keepalive probes unanswered
    uint8_t ka_max_probes
    uint8_t pad2
    uint32_t recover                      # RFC 6582 "recover" / RFC 6675 RecoveryPoint
    uint32_t n_retransmits                # segments resent
    uint32_t n_fast_retransmits           # recoveries entered
    uint32_t n_timeouts                   # retransmission timer expiries
    uint32_t n_tlp_probes                 # tail loss probes sent (RFC 8985 s.7)
    uint32_t n_early_retransmits          # recoveries entered below DupThresh (RFC 5827)
    uint32_t tlp_high                     # SND.MAX when a TLP retransmission went (TLPRxtOut's end)
    uint32_t rtx_tsval                    # our TSval on the first retransmission since the last RTT sample
    const gn_tcp_cc_ops_t* cc_ops
    gn_tcp_rto_t rto
    gn_tcp_cc_t cc                        # cc.cwnd is the congestion window
    gn_tcp_sb_t sb

ctypedef struct gn_tcp_config_t:
    uint16_t mss                          # the MSS we offer and clamp to (MTU - 40)
    uint8_t wscale                        # our window scale offer (0..14)
    uint8_t pad
    uint32_t flags                        # GN_TCP_CF_WANT_* | GN_TCP_CF_NO_NAGLE
    uint32_t challenge_acks_per_s         # RFC 5961 s.7 limit per connection
    uint8_t cc_algo                       # GN_TCP_CC_* (CUBIC by default)
    uint8_t syn_retries                   # SYN / SYN-ACK expiries before giving up
    uint8_t data_retries                  # data expiries before the connection is reset
    uint8_t keepalive_probes              # unanswered keepalive probes before a reset (0: 9)
    uint32_t rto_min_us                   # 0: GN_TCP_RTO_MIN_US
    uint32_t rto_max_us


cdef void gn_tcp_conn_init(gn_tcp_conn_t* c, const gn_tcp_config_t* cfg, uint32_t lcl_ip, uint16_t lcl_port,
                           uint32_t rmt_ip, uint16_t rmt_port, uint32_t iss, uint32_t ts_offset) noexcept nogil
cdef void gn_tcp_active_open(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_passive_open(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms,
                              gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_closed_input(const gn_tcp_seg_t* s, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_listen_input(const gn_tcp_seg_t* s, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_input(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms, uint32_t rx_space,
                       gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_rcv_joined(gn_tcp_conn_t* c, uint32_t n, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_app_close(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_app_reset(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_rto_expired(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil
cdef uint32_t gn_tcp_rtx_timeout_ms(gn_tcp_conn_t* c) noexcept nogil
cdef void gn_tcp_delack_expired(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_keepalive_expired(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_time_wait_expired(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil
cdef void gn_tcp_make_ack(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, const gn_tcp_range_t* ooo,
                          uint32_t n_ooo, gn_tcp_out_t* o) noexcept nogil
cdef void gn_tcp_make_syn(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, gn_tcp_out_t* o) noexcept nogil
cdef void gn_tcp_make_probe(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, gn_tcp_out_t* o) noexcept nogil
cdef void gn_tcp_make_rst(const gn_tcp_act_t* a, gn_tcp_out_t* o) noexcept nogil
cdef bint gn_tcp_send_next(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t tx_bytes, uint32_t rx_space,
                           uint32_t max_seg, gn_tcp_out_t* o) noexcept nogil
cdef uint32_t gn_tcp_write_out(const gn_tcp_out_t* o, uint16_t sport, uint16_t dport, uint8_t* t) noexcept nogil
cdef uint32_t gn_tcp_seg_parse(const uint8_t* t, uint32_t n, gn_tcp_seg_t* s) noexcept nogil
cdef bint gn_tcp_timer_wanted(const gn_tcp_conn_t* c) noexcept nogil
cdef uint32_t gn_tcp_rcv_window(gn_tcp_conn_t* c, uint32_t rx_space) noexcept nogil
cdef bint gn_tcp_window_opens(gn_tcp_conn_t* c, uint32_t rx_space) noexcept nogil


cdef class Connection:
    # a gn_tcp_conn_t driven from Python (tests, show commands); see conn.pyx
    cdef gn_tcp_conn_t c
    cdef gn_tcp_config_t cfg
    cdef bytes _bytes(self, gn_tcp_out_t* o, payload=*)
