"""The TCP connection and its RFC 9293 state machine (s.3.10.7, "SEGMENT
ARRIVES"), with RFC 7323 (window scale, timestamps, PAWS), RFC 5961
(challenge ACKs for RST and SYN, ACK acceptability), RFC 2018 SACK block
reporting and MSS negotiation and clamping.

Every function takes the connection and, for input, a parsed segment
(``gn_tcp_seg_t``), and fills an action record (``gn_tcp_act_t``): flags
saying what to send (ACK, challenge ACK, SYN/SYN-ACK, RST), what to tell
the session layer (established, peer FIN, reset, refused, closed), which
timers to (re)arm, and where received bytes go. No byte of data passes
through here:

- rx: ``GN_TCP_A_DELIVER`` says "enqueue payload[rx_skip : rx_skip +
  rx_len] at rx_offset past the rx fifo's tail". In-order data (offset 0)
  has already advanced rcv_nxt; when the fifo's enqueue returns more than
  rx_len (out-of-order data joined), the glue calls ``gn_tcp_rcv_joined``
  with the surplus, which moves rcv_nxt on and takes a FIN waiting there.
  The data always fits: it is trimmed to the rx_space the glue passed
  (the fifo's free space) as well as to the advertised window.
- tx: the tx fifo's head is the first unacknowledged data byte.
  ``gn_tcp_send_next`` answers "send tx fifo bytes [data_off, data_off +
  data_len) with this header" (FIN included after the last byte once the
  app closed); ``GN_TCP_A_TX_ACKED`` says "drop tx_acked bytes from the
  head". Retransmission rewinds snd_nxt (the rto module), so retransmits
  read from the fifo too.

Invariants: snd_una <= snd_nxt <= snd_max (mod 2**32); the tx fifo holds
bytes [data start, snd_una + tx_bytes); rcv_nxt never moves backwards and
the advertised right edge (rcv_adv) never shrinks; a connection in CLOSED
has told the glue GN_TCP_A_CLOSED (or FORGET) exactly once.

Not here yet: urgent data (URG is ignored, its bytes taken as data),
reopening from TIME_WAIT by a new SYN (RFC 6191: answered by a challenge
ACK), segments without timestamps once negotiated are accepted (as Linux
does; RFC 7323 s.3.2 says SHOULD drop).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.string cimport memset
from graphnet.wire.tcp cimport *
from graphnet.wire.tcp import PARSE_ERRORS
from graphnet.transport.tcp.isn cimport gn_tcp_secret_t, gn_tcp_isn, gn_tcp_ts_offset, gn_siphash24
from graphnet.transport.tcp.rto cimport gn_tcp_rto_init, gn_tcp_rto_sample, gn_tcp_rto_backoff
from graphnet.transport.tcp.cc cimport gn_tcp_cc_ops, GN_TCP_CC_CUBIC
from graphnet.transport.tcp.sack cimport (gn_tcp_sb_reset, gn_tcp_sb_update, gn_tcp_sb_is_lost, gn_tcp_sb_pipe,
                                          gn_tcp_sb_next_seg, GN_TCP_DUPTHRESH, GN_TCP_NEXT_NONE, GN_TCP_NEXT_NEW)
from graphnet.transport.tcp.cc import lookup as cc_lookup

cdef enum:
    PAWS_IDLE_MS = 24 * 24 * 3600 * 1000  # RFC 7323 s.5.5: TS.Recent older than 24 days is invalid
    OOW_ACK_INTERVAL_MS = 500             # Linux's tcp_invalid_ratelimit
    MIN_SND_MSS = 64
    DEFAULT_SYN_RETRIES = 6
    DEFAULT_DATA_RETRIES = 15
    DEFAULT_KEEPALIVE_PROBES = 9          # Linux's tcp_keepalive_probes
    TLP_MIN_PTO_US = 10000                # RFC 8985 s.7.2: the PTO is at least 10 ms
    TLP_MAX_ACK_DELAY_US = 200000         # RFC 8985 s.7.2 WCDelAckT: a lone segment's ACK may wait this long

STATE_NAMES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
               "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")
assert len(STATE_NAMES) == GN_TCP_N_STATES

ACTION_NAMES = ("send-ack", "delack", "challenge-ack", "send-syn", "send-rst", "deliver", "tx-acked", "tx-more",
                "established", "peer-fin", "reset", "refused", "time-wait", "closed", "drop", "accept-syn",
                "rtx-arm", "rtx-stop", "forget", "send-probe")

INPUT_ERRORS = PARSE_ERRORS + (
    # GN_TCP_E_* after the wire rows (row = len(PARSE_ERRORS) - 1 + code)
    ("no-connection", "error", "segment for no connection or listener (RST sent)"),
    ("listen-ack", "error", "ACK to a listener (RST sent)"),
    ("listen-not-syn", "error", "segment to a listener without SYN"),
    ("rst-ignored", "info", "RST out of window or for no connection"),
    ("syn-sent-bad-ack", "error", "SYN_SENT: ACK not for our SYN (RST sent)"),
    ("syn-sent-no-syn", "error", "SYN_SENT: neither SYN nor RST"),
    ("paws", "warn", "timestamp older than TS.Recent (PAWS, RFC 7323)"),
    ("out-of-window", "warn", "sequence number outside the receive window"),
    ("rst-in-window", "warn", "RST in window, not at RCV.NXT (challenge ACK, RFC 5961)"),
    ("syn-in-sync", "warn", "SYN on a synchronized connection (challenge ACK, RFC 5961)"),
    ("no-ack", "error", "segment without ACK"),
    ("ack-unsent", "warn", "ACK for data not yet sent"),
    ("ack-too-old", "warn", "ACK below SND.UNA - MAX.SND.WND (RFC 5961)"),
    ("syn-rcvd-bad-ack", "error", "SYN_RCVD: ACK not for our SYN-ACK (RST sent)"),
    ("data-after-fin", "warn", "data after the peer's FIN, ignored"),
    ("rx-window", "warn", "data beyond the receive window, trimmed"),
    ("challenge-limit", "info", "challenge ACK suppressed by the rate limit"),
    ("bad-options", "error", "TCP options malformed"),
    ("oow-ack-limit", "info", "out-of-window pure ACK not answered (rate limit against ACK loops)"),
)
assert len(INPUT_ERRORS) == len(PARSE_ERRORS) + GN_TCP_N_ERRORS - 1


# -- helpers -----------------------------------------------------------------

cdef inline void _act_clear(gn_tcp_act_t* a) noexcept nogil:
    memset(a, 0, sizeof(gn_tcp_act_t))


cdef inline void _drop(gn_tcp_act_t* a, uint32_t error) noexcept nogil:
    a.flags |= GN_TCP_A_DROP
    a.error = error


cdef inline uint32_t _seg_len(const gn_tcp_seg_t* s) noexcept nogil:
    """Sequence space the segment occupies (RFC 9293 SEG.LEN)."""
    return s.len + ((s.flags & GN_TCP_FLAG_SYN) != 0) + ((s.flags & GN_TCP_FLAG_FIN) != 0)


cdef inline uint32_t _rcv_wnd(gn_tcp_conn_t* c) noexcept nogil:
    """RCV.WND: what is left of the window last advertised."""
    return c.rcv_adv - c.rcv_nxt if gn_seq_gt(c.rcv_adv, c.rcv_nxt) else 0


cdef inline bint _acceptable(gn_tcp_conn_t* c, uint32_t seq, uint32_t seglen, uint32_t wnd) noexcept nogil:
    """RFC 9293 s.3.10.7.4 first check (the four cases)."""
    cdef uint32_t off = seq - c.rcv_nxt
    if seglen == 0:
        if wnd == 0:
            return seq == c.rcv_nxt
        return off < wnd
    if wnd == 0:
        return seq == c.rcv_nxt           # RFC: take its ACK and RST; its data is trimmed
    return off < wnd or <uint32_t>(seq + seglen - 1 - c.rcv_nxt) < wnd


cdef inline void _challenge_ack(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a, uint32_t error) noexcept nogil:
    """RFC 5961 s.7: at most chack_limit challenge ACKs per second."""
    _drop(a, error)
    if now_ms - c.chack_window_ms >= 1000:
        c.chack_window_ms = now_ms
        c.chack_count = 0
    if c.chack_count >= c.chack_limit:
        a.error = GN_TCP_E_CHALLENGE_LIMIT
        return
    c.chack_count += 1
    c.n_challenge_acks += 1
    a.flags |= GN_TCP_A_CHALLENGE_ACK | GN_TCP_A_SEND_ACK


cdef inline void _set_state(gn_tcp_conn_t* c, uint8_t state) noexcept nogil:
    c.state = state


cdef inline void _closed(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    c.state = GN_TCP_CLOSED
    a.flags |= GN_TCP_A_CLOSED | GN_TCP_A_RTX_STOP


cdef inline bint _fin_acked(gn_tcp_conn_t* c) noexcept nogil:
    return (c.flags & GN_TCP_CF_FIN_SENT) != 0 and gn_seq_gt(c.snd_una, c.snd_fin)


cdef void _negotiate(gn_tcp_conn_t* c, const gn_tcp_options_t* o, uint32_t now_ms) noexcept nogil:
    """Options of the peer's SYN against what we offer (RFC 7323 s.1.3:
    window scale and timestamps only when both sides sent them; RFC 2018
    SACK likewise; MSS: the peer's, or 536, clamped to ours)."""
    cdef uint32_t mss = o.mss if o.flags & GN_TCP_OPTF_MSS else GN_TCP_DEFAULT_MSS
    if mss > c.rcv_mss:
        mss = c.rcv_mss
    c.flags &= ~(GN_TCP_CF_TS | GN_TCP_CF_SACK | GN_TCP_CF_WSCALE)
    if c.flags & GN_TCP_CF_WANT_WSCALE and o.flags & GN_TCP_OPTF_WSCALE:
        c.flags |= GN_TCP_CF_WSCALE
        c.snd_wscale = o.wscale
        c.rcv_wscale = c.want_wscale
    else:
        c.snd_wscale = 0
        c.rcv_wscale = 0
    if c.flags & GN_TCP_CF_WANT_TS and o.flags & GN_TCP_OPTF_TIMESTAMP:
        c.flags |= GN_TCP_CF_TS
        c.ts_recent = o.tsval
        c.ts_recent_ms = now_ms
        mss -= 12                         # every segment carries the 12 option bytes
    if c.flags & GN_TCP_CF_WANT_SACK and o.flags & GN_TCP_OPTF_SACK_PERMITTED:
        c.flags |= GN_TCP_CF_SACK
    c.snd_mss = <uint16_t>(mss if mss >= MIN_SND_MSS else MIN_SND_MSS)
    c.cc_ops.init(&c.cc, c.snd_mss)       # the initial window in this MSS


cdef inline void _take_syn(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms) noexcept nogil:
    """The peer's SYN: its ISN, its options, and its window, which is never
    scaled on a SYN (RFC 7323 s.2.2)."""
    c.irs = s.seq
    c.rcv_nxt = s.seq + 1
    c.rcv_adv = c.rcv_nxt
    c.last_ack_sent = c.rcv_nxt
    _negotiate(c, &s.opts, now_ms)
    c.snd_wnd = s.wnd
    c.max_snd_wnd = s.wnd
    c.snd_wl1 = s.seq
    c.snd_wl2 = s.ack


cdef inline void _rtt_sample(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    """RTTM from the echoed timestamp (RFC 7323 s.4) or the timed sequence
    number (Karn: the rto module clears the timing on a retransmission).
    Karn holds for echoes too: after a retransmission, an ACK echoing a
    TSval from before it (a duplicate's ACK carries the peer's older
    TS.Recent) may answer the retransmission, and would time the wait for
    the RTO as well: no sample until an echo is at least rtx_tsval. Else
    each timeout would feed itself, SRTT growing to seconds under loss."""
    cdef uint32_t rtt
    if c.flags & GN_TCP_CF_TS and s.opts.flags & GN_TCP_OPTF_TIMESTAMP and s.opts.tsecr != 0:
        if c.flags & GN_TCP_CF_RTX_TS:
            if gn_seq_lt(s.opts.tsecr, c.rtx_tsval):
                return
            c.flags &= ~GN_TCP_CF_RTX_TS  # the peer's TS.Recent never goes back: later echoes are safe
        rtt = now_ms + c.ts_offset - s.opts.tsecr
        if <int32_t>rtt >= 0:
            a.rtt_ms = rtt if rtt else 1
    elif c.flags & GN_TCP_CF_RTT_TIMING and gn_seq_gt(s.ack, c.rtt_seq):
        rtt = now_ms - c.rtt_start_ms
        a.rtt_ms = rtt if rtt else 1
        c.flags &= ~GN_TCP_CF_RTT_TIMING
    if a.rtt_ms:
        gn_tcp_rto_sample(&c.rto, a.rtt_ms * 1000)


cdef void _check_fin(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    """Take the peer's FIN once all data before it is in (RFC 9293 eighth
    step).

    A FIN that moves the connection to CLOSE_WAIT is ACKed with a delay
    (GN_TCP_A_DELACK, unless an immediate ACK is owed anyway): an app that
    closes at once (an echo server, HTTP/1.0) sends its FIN within the
    delay and the ACK rides on it, one segment instead of two. RFC 9293
    s.3.8.6.3 allows delaying any ACK up to 0.5 s; the delayed-ACK timer
    (40 ms by default, far below the peer's retransmission timeout) still
    sends it when the app stays open. Every other FIN is ACKed at once."""
    if not (c.flags & GN_TCP_CF_FIN_PENDING) or c.rcv_nxt != c.rcv_fin:
        return
    c.flags = (c.flags & ~GN_TCP_CF_FIN_PENDING) | GN_TCP_CF_FIN_RCVD
    c.rcv_nxt += 1
    a.flags |= GN_TCP_A_PEER_FIN
    if c.state == GN_TCP_ESTABLISHED or c.state == GN_TCP_SYN_RCVD:
        c.state = GN_TCP_CLOSE_WAIT
        if not (a.flags & GN_TCP_A_SEND_ACK):
            a.flags |= GN_TCP_A_DELACK
        return
    a.flags = (a.flags & ~GN_TCP_A_DELACK) | GN_TCP_A_SEND_ACK
    if c.state == GN_TCP_FIN_WAIT_1:
        if _fin_acked(c):
            c.state = GN_TCP_TIME_WAIT
            a.flags |= GN_TCP_A_TIME_WAIT | GN_TCP_A_RTX_STOP
        else:
            c.state = GN_TCP_CLOSING
    elif c.state == GN_TCP_FIN_WAIT_2:
        c.state = GN_TCP_TIME_WAIT
        a.flags |= GN_TCP_A_TIME_WAIT | GN_TCP_A_RTX_STOP


# -- connection setup ----------------------------------------------------------

cdef void gn_tcp_conn_init(gn_tcp_conn_t* c, const gn_tcp_config_t* cfg, uint32_t lcl_ip, uint16_t lcl_port,
                           uint32_t rmt_ip, uint16_t rmt_port, uint32_t iss, uint32_t ts_offset) noexcept nogil:
    """A connection in CLOSED with our options from cfg and the ISN (from
    gn_tcp_isn) and timestamp offset (gn_tcp_ts_offset) chosen."""
    memset(c, 0, sizeof(gn_tcp_conn_t))
    c.lcl_ip = lcl_ip
    c.lcl_port = lcl_port
    c.rmt_ip = rmt_ip
    c.rmt_port = rmt_port
    c.state = GN_TCP_CLOSED
    c.flags = cfg.flags & (GN_TCP_CF_WANT_TS | GN_TCP_CF_WANT_SACK | GN_TCP_CF_WANT_WSCALE | GN_TCP_CF_NO_NAGLE)
    c.want_wscale = cfg.wscale if cfg.wscale <= GN_TCP_MAX_WSCALE else GN_TCP_MAX_WSCALE
    c.rcv_mss = cfg.mss
    c.snd_mss = GN_TCP_DEFAULT_MSS if GN_TCP_DEFAULT_MSS < cfg.mss else cfg.mss
    c.chack_limit = cfg.challenge_acks_per_s
    c.oow_ack_ms = <uint32_t>(0 - OOW_ACK_INTERVAL_MS)   # "long ago"
    c.cc_algo = cfg.cc_algo
    c.cc_ops = gn_tcp_cc_ops(cfg.cc_algo)
    c.cc_ops.init(&c.cc, c.snd_mss)
    gn_tcp_rto_init(&c.rto, cfg.rto_min_us, cfg.rto_max_us)
    gn_tcp_sb_reset(&c.sb, iss)
    c.recover = iss
    c.max_syn_retries = cfg.syn_retries if cfg.syn_retries else DEFAULT_SYN_RETRIES
    c.max_data_retries = cfg.data_retries if cfg.data_retries else DEFAULT_DATA_RETRIES
    c.ka_max_probes = cfg.keepalive_probes if cfg.keepalive_probes else DEFAULT_KEEPALIVE_PROBES
    c.iss = iss
    c.snd_una = iss
    c.snd_nxt = iss
    c.snd_max = iss
    c.ts_offset = ts_offset


cdef inline void _syn_out(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    c.snd_nxt = c.iss + 1
    c.snd_max = c.iss + 1
    c.rtt_seq = c.iss
    c.rtt_start_ms = now_ms
    c.flags |= GN_TCP_CF_RTT_TIMING
    a.flags |= GN_TCP_A_SEND_SYN | GN_TCP_A_RTX_ARM


cdef void gn_tcp_active_open(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    """CLOSED -> SYN_SENT: send our SYN."""
    _act_clear(a)
    c.state = GN_TCP_SYN_SENT
    _syn_out(c, now_ms, a)


cdef void gn_tcp_passive_open(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms,
                              gn_tcp_act_t* a) noexcept nogil:
    """A listener's SYN (gn_tcp_listen_input said ACCEPT_SYN) on a fresh
    connection: LISTEN -> SYN_RCVD, send the SYN-ACK. Data on the SYN is
    not taken (the peer sends it again)."""
    _act_clear(a)
    _take_syn(c, s, now_ms)
    c.snd_wl2 = c.iss                     # the SYN acknowledges nothing of ours
    c.flags |= GN_TCP_CF_PASSIVE
    c.state = GN_TCP_SYN_RCVD
    _syn_out(c, now_ms, a)


cdef void gn_tcp_closed_input(const gn_tcp_seg_t* s, gn_tcp_act_t* a) noexcept nogil:
    """A segment for no connection (RFC 9293 s.3.10.7.1): answered by a RST
    unless it is one."""
    _act_clear(a)
    if s.flags & GN_TCP_FLAG_RST:
        _drop(a, GN_TCP_E_RST_IGNORED)
        return
    _drop(a, GN_TCP_E_NO_CONNECTION)
    a.flags |= GN_TCP_A_SEND_RST
    if s.flags & GN_TCP_FLAG_ACK:
        a.rst_seq = s.ack
        a.rst_flags = GN_TCP_FLAG_RST
    else:
        a.rst_seq = 0
        a.rst_ack = s.seq + _seg_len(s)
        a.rst_flags = GN_TCP_FLAG_RST | GN_TCP_FLAG_ACK


cdef void gn_tcp_listen_input(const gn_tcp_seg_t* s, gn_tcp_act_t* a) noexcept nogil:
    """A segment to a listener (RFC 9293 s.3.10.7.2)."""
    _act_clear(a)
    if s.flags & GN_TCP_FLAG_RST:
        _drop(a, GN_TCP_E_RST_IGNORED)
    elif s.flags & GN_TCP_FLAG_ACK:
        _drop(a, GN_TCP_E_LISTEN_ACK)
        a.flags |= GN_TCP_A_SEND_RST
        a.rst_seq = s.ack
        a.rst_flags = GN_TCP_FLAG_RST
    elif s.flags & GN_TCP_FLAG_SYN:
        a.flags |= GN_TCP_A_ACCEPT_SYN
    else:
        _drop(a, GN_TCP_E_LISTEN_NOT_SYN)


cdef void _syn_sent_input(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    """RFC 9293 s.3.10.7.3."""
    cdef bint ack = (s.flags & GN_TCP_FLAG_ACK) != 0
    if ack and (gn_seq_leq(s.ack, c.iss) or gn_seq_gt(s.ack, c.snd_max)):
        if s.flags & GN_TCP_FLAG_RST:
            _drop(a, GN_TCP_E_RST_IGNORED)
            return
        _drop(a, GN_TCP_E_SYN_SENT_BAD_ACK)
        a.flags |= GN_TCP_A_SEND_RST
        a.rst_seq = s.ack
        a.rst_flags = GN_TCP_FLAG_RST
        return
    if s.flags & GN_TCP_FLAG_RST:
        if ack:                           # it acknowledges our SYN (RFC 5961 s.3.2)
            a.flags |= GN_TCP_A_REFUSED
            _closed(c, a)
        else:
            _drop(a, GN_TCP_E_RST_IGNORED)
        return
    if not (s.flags & GN_TCP_FLAG_SYN):
        _drop(a, GN_TCP_E_SYN_SENT_NO_SYN)
        return
    _take_syn(c, s, now_ms)
    if ack:
        c.snd_una = s.ack
        _rtt_sample(c, s, now_ms, a)
        c.state = GN_TCP_ESTABLISHED
        a.flags |= GN_TCP_A_ESTABLISHED | GN_TCP_A_SEND_ACK | GN_TCP_A_TX_MORE
        a.flags |= GN_TCP_A_RTX_STOP if c.snd_una == c.snd_max else GN_TCP_A_RTX_ARM
        if s.len or s.flags & GN_TCP_FLAG_FIN:
            a.error = GN_TCP_E_RX_WINDOW  # data on a SYN-ACK: not taken, the peer sends it again
    else:
        c.state = GN_TCP_SYN_RCVD         # simultaneous open: SYN-ACK with our ISS again
        a.flags |= GN_TCP_A_SEND_SYN | GN_TCP_A_RTX_ARM


# -- segment arrival -----------------------------------------------------------

cdef void _enter_recovery(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    """Loss detected (RFC 5681 s.3.2 steps 2-3, RFC 6675 s.5 step 4):
    ssthresh from the cc algorithm, the first lost segment resent at once."""
    c.recover = c.snd_max
    c.cc_ops.on_congestion(&c.cc, c.snd_max - c.snd_una, now_ms / 1000.0)
    c.n_fast_retransmits += 1
    c.flags = (c.flags & ~(GN_TCP_CF_RTT_TIMING | GN_TCP_CF_TLP_RTX)) | GN_TCP_CF_RTX_PENDING
    if c.flags & GN_TCP_CF_SACK:
        c.recovery = GN_TCP_RECOVERY_SACK
        c.sb.rxt_end = c.snd_una
    else:
        c.recovery = GN_TCP_RECOVERY_NEWRENO
        c.cc.cwnd = c.cc.ssthresh + 3 * <uint32_t>c.snd_mss
    a.flags |= GN_TCP_A_TX_MORE


cdef inline bint _early_retransmit(const gn_tcp_conn_t* c, uint32_t mss) noexcept nogil:
    """RFC 5827 early retransmit: fewer than DupThresh + 1 segments out,
    and all but one of them SACKed (or as many duplicate ACKs, without
    SACK): too few for DupThresh ever to be met. RFC 5827 asks too that
    no new segment may go; that test is left out: a sender that could
    send would have, so fewer than four stay out only when the window or
    the app holds new data back."""
    cdef uint32_t out = (c.snd_max - c.snd_una + mss - 1) // mss, got
    if out < 2 or out > GN_TCP_DUPTHRESH:
        return False
    got = (c.sb.sacked + mss - 1) // mss if c.flags & GN_TCP_CF_SACK else c.dup_acks
    return got >= out - 1


cdef inline bint _dsack(const gn_tcp_seg_t* s) noexcept nogil:
    """The ACK reports a duplicate (RFC 2883): its first SACK block lies
    below the cumulative ACK."""
    return s.opts.flags & GN_TCP_OPTF_SACK and s.opts.n_sack and gn_seq_leq(s.opts.sack[0].end, s.ack)


cdef inline void _tlp_acked(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t flight, uint32_t now_ms) noexcept nogil:
    """SND.UNA moved: a new probe may go, but not while a probe's
    retransmission is unanswered. When the ACK covers it with no DSACK,
    it repaired a loss: the congestion response of RFC 8985 s.7.4.2."""
    if not (c.flags & GN_TCP_CF_TLP_RTX):
        c.flags &= ~GN_TCP_CF_TLP_SENT
        return
    if gn_seq_lt(s.ack, c.tlp_high):
        return
    c.flags &= ~(GN_TCP_CF_TLP_RTX | GN_TCP_CF_TLP_SENT)
    if not _dsack(s) and c.recovery == GN_TCP_RECOVERY_NONE:
        c.cc_ops.on_congestion(&c.cc, flight, now_ms / 1000.0)


cdef void _ack_process(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    """Advance SND.UNA, update the SACK scoreboard, grow the window or run
    loss recovery (RFC 5681 s.3.2 with RFC 6582 NewReno partial ACKs, or
    RFC 6675 with SACK), update the send window (RFC 9293 fifth step)."""
    cdef uint32_t lo, hi, wnd = (<uint32_t>s.wnd) << c.snd_wscale
    cdef uint32_t data, acked, flight, mss = c.snd_mss, newly_sacked = 0
    cdef bint new_ack = gn_seq_gt(s.ack, c.snd_una)
    if c.flags & GN_TCP_CF_SACK:
        newly_sacked = gn_tcp_sb_update(&c.sb, s.ack if new_ack else c.snd_una, c.snd_max, s.opts.sack,
                                        s.opts.n_sack if s.opts.flags & GN_TCP_OPTF_SACK else 0)
    if new_ack:
        lo = c.snd_una
        if lo == c.iss:
            lo += 1                       # the SYN is not data
        hi = s.ack
        if c.flags & GN_TCP_CF_FIN_SENT and gn_seq_gt(hi, c.snd_fin):
            hi = c.snd_fin                # nor is the FIN
        data = hi - lo if gn_seq_gt(hi, lo) else 0
        acked = s.ack - c.snd_una
        c.snd_una = s.ack
        if gn_seq_lt(c.snd_nxt, c.snd_una):
            c.snd_nxt = c.snd_una
        c.dup_acks = 0
        c.rto_retries = 0
        _rtt_sample(c, s, now_ms, a)
        if c.recovery == GN_TCP_RECOVERY_NONE:
            c.cc_ops.on_ack(&c.cc, acked, now_ms / 1000.0, c.rto.srtt_us / 1e6)
        elif gn_seq_geq(s.ack, c.recover):        # full ACK: recovery is over
            if c.recovery == GN_TCP_RECOVERY_NEWRENO:    # RFC 6582 s.3.2 step 3 (option 1)
                flight = c.snd_max - c.snd_una
                flight = (flight if flight > mss else mss) + mss
                c.cc.cwnd = c.cc.ssthresh if c.cc.ssthresh < flight else flight
            else:
                c.cc.cwnd = c.cc.ssthresh
            c.recovery = GN_TCP_RECOVERY_NONE
        elif c.recovery == GN_TCP_RECOVERY_NEWRENO:    # partial ACK: RFC 6582 s.3.2 step 5
            c.flags |= GN_TCP_CF_RTX_PENDING
            c.cc.cwnd = (c.cc.cwnd - acked if c.cc.cwnd > acked else 0) + (mss if acked >= mss else 0)
            if c.cc.cwnd < mss:
                c.cc.cwnd = mss
        _tlp_acked(c, s, c.snd_max - c.snd_una + acked, now_ms)
        if data:
            a.tx_acked = data
            c.bytes_acked += data
            a.flags |= GN_TCP_A_TX_ACKED
        a.flags |= GN_TCP_A_TX_MORE
        a.flags |= GN_TCP_A_RTX_STOP if c.snd_una == c.snd_max else GN_TCP_A_RTX_ARM
    elif s.ack == c.snd_una and c.snd_max != c.snd_una and (
            newly_sacked or (s.len == 0 and not (s.flags & (GN_TCP_FLAG_SYN | GN_TCP_FLAG_FIN)) and wnd == c.snd_wnd)):
        c.dup_acks += 1                   # RFC 5681 s.2 / RFC 6675 s.2 "duplicate acknowledgment"
        c.n_dup_acks += 1
        if c.recovery == GN_TCP_RECOVERY_NONE:
            # without SACK, RFC 6582 s.3.2 step 2: not twice per window
            if c.flags & GN_TCP_CF_SACK or gn_seq_gt(s.ack, c.recover):
                if c.dup_acks >= GN_TCP_DUPTHRESH or (c.flags & GN_TCP_CF_SACK
                                                      and gn_tcp_sb_is_lost(&c.sb, c.snd_una, mss)):
                    _enter_recovery(c, now_ms, a)
                elif _early_retransmit(c, mss):
                    c.n_early_retransmits += 1
                    _enter_recovery(c, now_ms, a)
        elif c.recovery == GN_TCP_RECOVERY_NEWRENO:
            c.cc.cwnd += mss              # RFC 5681 s.3.2 step 4: inflate per dup ACK
            a.flags |= GN_TCP_A_TX_MORE
        if newly_sacked:
            a.flags |= GN_TCP_A_TX_MORE   # the pipe shrank
    if gn_seq_lt(c.snd_wl1, s.seq) or (c.snd_wl1 == s.seq and gn_seq_leq(c.snd_wl2, s.ack)):
        if wnd > c.snd_wnd:
            a.flags |= GN_TCP_A_TX_MORE
        c.snd_wnd = wnd
        if wnd > c.max_snd_wnd:
            c.max_snd_wnd = wnd
        c.snd_wl1 = s.seq
        c.snd_wl2 = s.ack


cdef void _rcv_data(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t wnd, uint32_t rx_space,
                    gn_tcp_act_t* a) noexcept nogil:
    """Name the new bytes of the payload and where they go (RFC 9293
    seventh step); ACK at once for out-of-order data and gap fills, else
    every second full segment (RFC 5681 s.4.2), else delayed."""
    cdef uint32_t skip = 0, off, n, limit
    if gn_seq_lt(s.seq, c.rcv_nxt):
        skip = c.rcv_nxt - s.seq
    if skip >= s.len:
        a.flags |= GN_TCP_A_SEND_ACK      # all old: a duplicate, ACK it at once
        return
    off = s.seq + skip - c.rcv_nxt
    n = s.len - skip
    limit = wnd if wnd < rx_space else rx_space
    if off >= limit:
        a.flags |= GN_TCP_A_SEND_ACK
        a.error = GN_TCP_E_RX_WINDOW
        return
    if n > limit - off:
        n = limit - off
        a.error = GN_TCP_E_RX_WINDOW
    a.flags |= GN_TCP_A_DELIVER
    a.rx_skip = skip
    a.rx_len = n
    a.rx_offset = off
    c.bytes_received += n
    if off:
        c.rcv_last_ooo = c.rcv_nxt + off
        a.flags |= GN_TCP_A_SEND_ACK
        return
    c.rcv_nxt += n
    c.delack_bytes += n
    if c.delack_bytes >= 2 * <uint32_t>c.rcv_mss or s.flags & GN_TCP_FLAG_PSH and c.delack_bytes >= c.rcv_mss:
        a.flags |= GN_TCP_A_SEND_ACK
    else:
        a.flags |= GN_TCP_A_DELACK


cdef void gn_tcp_input(gn_tcp_conn_t* c, const gn_tcp_seg_t* s, uint32_t now_ms, uint32_t rx_space,
                       gn_tcp_act_t* a) noexcept nogil:
    """A segment for an existing connection (RFC 9293 s.3.10.7.3-4, with
    RFC 7323 PAWS and RFC 5961). rx_space: free bytes in the rx fifo."""
    cdef uint32_t seglen, wnd, fin_seq
    _act_clear(a)
    if c.state == GN_TCP_SYN_SENT:
        _syn_sent_input(c, s, now_ms, a)
        return
    if c.state == GN_TCP_CLOSED or c.state == GN_TCP_LISTEN:
        gn_tcp_closed_input(s, a)
        return
    if c.state == GN_TCP_SYN_RCVD and s.flags & GN_TCP_FLAG_SYN and not (s.flags & (GN_TCP_FLAG_RST | GN_TCP_FLAG_ACK)) \
            and s.seq == c.irs:
        a.flags |= GN_TCP_A_SEND_SYN      # our SYN-ACK was lost: send it again
        return
    seglen = _seg_len(s)
    wnd = _rcv_wnd(c)
    # RFC 7323 s.5.3 R1: PAWS, before the sequence number check (RSTs are exempt)
    if (c.flags & GN_TCP_CF_TS and s.opts.flags & GN_TCP_OPTF_TIMESTAMP and not (s.flags & GN_TCP_FLAG_RST)
            and gn_seq_lt(s.opts.tsval, c.ts_recent) and now_ms - c.ts_recent_ms < PAWS_IDLE_MS):
        c.n_paws_drops += 1
        _drop(a, GN_TCP_E_PAWS)
        a.flags |= GN_TCP_A_SEND_ACK
        return
    # first: sequence number
    if not _acceptable(c, s.seq, seglen, wnd):
        if s.flags & GN_TCP_FLAG_RST:
            _drop(a, GN_TCP_E_RST_IGNORED)
            return
        c.n_out_of_window += 1
        _drop(a, GN_TCP_E_OUT_OF_WINDOW)
        if seglen == 0:                   # two ends answering each other's pure ACKs would loop
            if now_ms - c.oow_ack_ms < OOW_ACK_INTERVAL_MS:
                a.error = GN_TCP_E_OOW_LIMIT
                return
            c.oow_ack_ms = now_ms
        a.flags |= GN_TCP_A_SEND_ACK
        return
    c.ka_probes = 0                       # the peer is alive
    # second: RST (RFC 5961 s.3.2: only at exactly RCV.NXT)
    if s.flags & GN_TCP_FLAG_RST:
        if s.seq != c.rcv_nxt:
            _challenge_ack(c, now_ms, a, GN_TCP_E_RST_IN_WINDOW)
            return
        if c.state == GN_TCP_SYN_RCVD:
            if c.flags & GN_TCP_CF_PASSIVE:
                c.state = GN_TCP_CLOSED   # back to LISTEN: the half-open goes, nobody told
                a.flags |= GN_TCP_A_FORGET | GN_TCP_A_RTX_STOP
                return
            a.flags |= GN_TCP_A_REFUSED
        elif c.state != GN_TCP_CLOSING and c.state != GN_TCP_LAST_ACK and c.state != GN_TCP_TIME_WAIT:
            a.flags |= GN_TCP_A_RESET
        _closed(c, a)
        return
    # fourth: SYN (RFC 5961 s.4.2: challenge ACK whatever its sequence number)
    if s.flags & GN_TCP_FLAG_SYN:
        _challenge_ack(c, now_ms, a, GN_TCP_E_SYN_IN_SYNC)
        return
    # fifth: ACK
    if not (s.flags & GN_TCP_FLAG_ACK):
        _drop(a, GN_TCP_E_NO_ACK)
        return
    if c.state == GN_TCP_SYN_RCVD:
        if gn_seq_lt(c.snd_una, s.ack) and gn_seq_leq(s.ack, c.snd_max):
            c.state = GN_TCP_ESTABLISHED
            c.snd_wnd = (<uint32_t>s.wnd) << c.snd_wscale
            c.max_snd_wnd = c.snd_wnd
            c.snd_wl1 = s.seq
            c.snd_wl2 = s.ack
            a.flags |= GN_TCP_A_ESTABLISHED
            if c.flags & GN_TCP_CF_FIN_QUEUED:
                c.state = GN_TCP_FIN_WAIT_1   # the app closed during the handshake
        else:
            _drop(a, GN_TCP_E_SYN_RCVD_BAD_ACK)
            a.flags |= GN_TCP_A_SEND_RST
            a.rst_seq = s.ack
            a.rst_flags = GN_TCP_FLAG_RST
            return
    if gn_seq_gt(s.ack, c.snd_max):
        _drop(a, GN_TCP_E_ACK_UNSENT)
        a.flags |= GN_TCP_A_SEND_ACK
        return
    if gn_seq_lt(s.ack, c.snd_una - c.max_snd_wnd):
        _challenge_ack(c, now_ms, a, GN_TCP_E_ACK_TOO_OLD)
        return
    # RFC 7323 s.4.3 (R3): remember the timestamp to echo
    if (c.flags & GN_TCP_CF_TS and s.opts.flags & GN_TCP_OPTF_TIMESTAMP
            and gn_seq_leq(s.seq, c.last_ack_sent) and gn_seq_geq(s.opts.tsval, c.ts_recent)):
        c.ts_recent = s.opts.tsval
        c.ts_recent_ms = now_ms
    _ack_process(c, s, now_ms, a)
    if _fin_acked(c):
        if c.state == GN_TCP_FIN_WAIT_1:
            c.state = GN_TCP_FIN_WAIT_2
        elif c.state == GN_TCP_CLOSING:
            c.state = GN_TCP_TIME_WAIT
            a.flags |= GN_TCP_A_TIME_WAIT
        elif c.state == GN_TCP_LAST_ACK:
            _closed(c, a)
            return
    # seventh: data
    if s.len:
        if (c.state == GN_TCP_ESTABLISHED or c.state == GN_TCP_FIN_WAIT_1 or c.state == GN_TCP_FIN_WAIT_2) \
                and not (c.flags & GN_TCP_CF_FIN_RCVD):
            _rcv_data(c, s, wnd, rx_space, a)
        else:
            a.error = GN_TCP_E_DATA_AFTER_FIN
            a.flags |= GN_TCP_A_SEND_ACK
    # eighth: FIN
    if s.flags & GN_TCP_FLAG_FIN:
        fin_seq = s.seq + s.len
        if c.flags & GN_TCP_CF_FIN_RCVD:
            a.flags |= GN_TCP_A_SEND_ACK  # a retransmitted FIN: ACK it again
            if c.state == GN_TCP_TIME_WAIT:
                a.flags |= GN_TCP_A_TIME_WAIT
        elif a.error != GN_TCP_E_RX_WINDOW:   # the data before it all fitted
            c.flags |= GN_TCP_CF_FIN_PENDING
            c.rcv_fin = fin_seq
            if fin_seq != c.rcv_nxt:
                a.flags |= GN_TCP_A_SEND_ACK
            _check_fin(c, a)


cdef void gn_tcp_rcv_joined(gn_tcp_conn_t* c, uint32_t n, gn_tcp_act_t* a) noexcept nogil:
    """The rx fifo joined n bytes of out-of-order data to the in-order
    data: RCV.NXT moves past them, a gap fill is ACKed at once (RFC 5681
    s.4.2), and a FIN waiting there is taken."""
    if n == 0:
        return
    c.rcv_nxt += n
    a.flags = (a.flags & ~GN_TCP_A_DELACK) | GN_TCP_A_SEND_ACK
    _check_fin(c, a)


# -- application requests ------------------------------------------------------

cdef void gn_tcp_app_close(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    """The app closed: our FIN follows the tx data (RFC 9293 s.3.10.4)."""
    _act_clear(a)
    if c.state == GN_TCP_SYN_SENT or c.state == GN_TCP_LISTEN:
        _closed(c, a)
        return
    if c.state == GN_TCP_SYN_RCVD:
        c.flags |= GN_TCP_CF_FIN_QUEUED   # sent once established
    elif c.state == GN_TCP_ESTABLISHED:
        c.flags |= GN_TCP_CF_FIN_QUEUED
        c.state = GN_TCP_FIN_WAIT_1
        a.flags |= GN_TCP_A_TX_MORE
    elif c.state == GN_TCP_CLOSE_WAIT:
        c.flags |= GN_TCP_CF_FIN_QUEUED
        c.state = GN_TCP_LAST_ACK
        a.flags |= GN_TCP_A_TX_MORE


cdef void gn_tcp_app_reset(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    """The app aborts (RFC 9293 s.3.10.5): a RST in synchronized states."""
    _act_clear(a)
    if c.state != GN_TCP_CLOSED and c.state != GN_TCP_LISTEN and c.state != GN_TCP_SYN_SENT \
            and c.state != GN_TCP_TIME_WAIT:
        a.flags |= GN_TCP_A_SEND_RST
        a.rst_seq = c.snd_nxt
        a.rst_flags = GN_TCP_FLAG_RST
    _closed(c, a)


cdef void gn_tcp_delack_expired(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    """The delayed-ACK timer fired: ACK now if an ACK is still owed (data
    arrived since the last segment we sent, RFC 5681 s.4.2)."""
    _act_clear(a)
    if c.state != GN_TCP_CLOSED and c.rcv_nxt != c.last_ack_sent:
        a.flags |= GN_TCP_A_SEND_ACK


cdef void gn_tcp_keepalive_expired(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    """The keepalive timer fired after the idle time (RFC 9293 s.3.8.4;
    the glue restarts it on every segment received): probe the peer with
    an old sequence number (gn_tcp_make_probe), which it must ACK; after
    ka_max_probes unanswered probes the connection is reset."""
    _act_clear(a)
    if not (c.state == GN_TCP_ESTABLISHED or c.state == GN_TCP_CLOSE_WAIT or c.state == GN_TCP_FIN_WAIT_2):
        return
    if c.ka_probes >= c.ka_max_probes:
        a.flags |= GN_TCP_A_SEND_RST | GN_TCP_A_RESET
        a.rst_seq = c.snd_nxt
        a.rst_flags = GN_TCP_FLAG_RST
        _closed(c, a)
        return
    c.ka_probes += 1
    a.flags |= GN_TCP_A_SEND_PROBE


cdef bint gn_tcp_timer_wanted(const gn_tcp_conn_t* c) noexcept nogil:
    """After a round of gn_tcp_send_next: should the retransmit timer run
    (data outstanding, or data waiting behind a shut window: persist)?"""
    return c.snd_una != c.snd_max or (c.flags & GN_TCP_CF_PERSIST) != 0


cdef inline bint _sending_state(const gn_tcp_conn_t* c) noexcept nogil:
    return (c.state == GN_TCP_ESTABLISHED or c.state == GN_TCP_CLOSE_WAIT or c.state == GN_TCP_FIN_WAIT_1
            or c.state == GN_TCP_LAST_ACK or c.state == GN_TCP_CLOSING)


cdef uint32_t gn_tcp_rtx_timeout_ms(gn_tcp_conn_t* c) noexcept nogil:
    """What to arm the retransmit timer with, in ms: the RTO, or the tail
    loss probe's PTO (RFC 8985 s.7.2) when a probe may go: data out in a
    sending state, SACK on, no loss recovery, no probe out, the RTO not
    backed off, an SRTT measured, nothing rewound (SND.NXT = SND.MAX), and
    the PTO shorter than the RTO. PTO = 2 SRTT, at least 10 ms; with one
    segment out, at least 1.5 SRTT + WCDelAckT (its ACK may be delayed).
    Sets or clears GN_TCP_CF_TLP_ARMED: gn_tcp_rto_expired reads it."""
    cdef unsigned long long pto = 2 * <unsigned long long>c.rto.srtt_us
    c.flags &= ~GN_TCP_CF_TLP_ARMED
    if (not _sending_state(c) or not (c.flags & GN_TCP_CF_SACK) or c.recovery != GN_TCP_RECOVERY_NONE
            or c.flags & (GN_TCP_CF_TLP_SENT | GN_TCP_CF_PERSIST) or c.rto.n_backoff or c.rto.n_samples == 0
            or c.snd_una == c.snd_max or c.snd_nxt != c.snd_max):
        return c.rto.rto_us // 1000
    if c.snd_max - c.snd_una <= c.snd_mss and pto < c.rto.srtt_us * 3 // 2 + TLP_MAX_ACK_DELAY_US:
        pto = c.rto.srtt_us * 3 // 2 + TLP_MAX_ACK_DELAY_US
    if pto < TLP_MIN_PTO_US:
        pto = TLP_MIN_PTO_US
    if pto >= c.rto.rto_us:
        return c.rto.rto_us // 1000
    c.flags |= GN_TCP_CF_TLP_ARMED
    return <uint32_t>(pto // 1000)


cdef void gn_tcp_time_wait_expired(gn_tcp_conn_t* c, gn_tcp_act_t* a) noexcept nogil:
    _act_clear(a)
    _closed(c, a)


# -- segments to send ----------------------------------------------------------

cdef inline uint32_t _sws_step(gn_tcp_conn_t* c) noexcept nogil:
    """How far the right edge moves at least (receiver SWS avoidance, RFC
    9293 s.3.8.6.2.2): min(RCV.BUFF / 2, MSS); 1 while RCV.BUFF is unknown."""
    cdef uint32_t half = c.rcv_buf >> 1
    if c.rcv_buf == 0:
        return 1
    return half if half < c.rcv_mss else c.rcv_mss


cdef inline uint32_t _fifo_window(gn_tcp_conn_t* c, uint32_t rx_space) noexcept nogil:
    """rx_space as a window: at most 65535 << rcv_wscale, a multiple of the scale."""
    cdef uint32_t top = (<uint32_t>0xffff) << c.rcv_wscale, g = (<uint32_t>1) << c.rcv_wscale
    return (rx_space if rx_space < top else top) & ~(g - 1)


cdef uint32_t gn_tcp_rcv_window(gn_tcp_conn_t* c, uint32_t rx_space) noexcept nogil:
    """The window to advertise (bytes, a multiple of the scale) for
    rx_space free fifo bytes, at most 65535 << rcv_wscale.

    The right edge moves right only by a step of min(RCV.BUFF / 2, MSS) or
    more (receiver SWS avoidance, RFC 9293 s.3.8.6.2.2): an app that reads a
    few bytes at a time would otherwise reopen slivers the peer fills with
    tiny segments. The right edge never moves left (s.3.8.6.2.2 too): when
    the fifo has less room than the last advertisement still promises, the
    promise is kept, rounded up to the scale (as Linux does); the few bytes
    that may then not fit are trimmed on arrival and sent again. A peer
    that sent up to the edge would otherwise see even its pure ACKs fall
    outside a window shrunk to zero (RFC 7323 s.2.4)."""
    cdef uint32_t w = _fifo_window(c, rx_space), promised = _rcv_wnd(c)
    cdef uint32_t top = (<uint32_t>0xffff) << c.rcv_wscale, g = (<uint32_t>1) << c.rcv_wscale
    if w < promised + _sws_step(c):
        w = (promised + g - 1) & ~(g - 1)
        if w > top:
            w = top
    return w


cdef bint gn_tcp_window_opens(gn_tcp_conn_t* c, uint32_t rx_space) noexcept nogil:
    """Would an ACK now move the right edge (by the SWS step at least)? The
    glue sends a window update when the app's reads make it so."""
    return _fifo_window(c, rx_space) >= _rcv_wnd(c) + _sws_step(c)


cdef inline void _ack_fields(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, gn_tcp_out_t* o) noexcept nogil:
    cdef uint32_t w = gn_tcp_rcv_window(c, rx_space)
    o.ack = c.rcv_nxt
    o.wnd = <uint16_t>(w >> c.rcv_wscale)
    c.rcv_adv = c.rcv_nxt + w
    c.last_ack_sent = c.rcv_nxt
    c.delack_bytes = 0
    o.opts.flags = 0
    o.opts.n_sack = 0
    if c.flags & GN_TCP_CF_TS:
        o.opts.flags = GN_TCP_OPTF_TIMESTAMP
        o.opts.tsval = now_ms + c.ts_offset
        o.opts.tsecr = c.ts_recent


cdef inline uint32_t _ack_seq(gn_tcp_conn_t* c) noexcept nogil:
    """The sequence number of a pure ACK: one the peer accepts, or it drops
    the segment unread, window update and all (RFC 9293 s.3.10.7.4). Not
    SND.NXT: after a timeout it is rewound below what the peer may already
    have. SND.MAX, unless that is past the right edge of the window the peer
    last offered: a peer short of memory drops data sent into its window
    and then offers less (Linux does); the edge is what it accepts then
    (Linux's own ACKs make the same choice, tcp_acceptable_seq)."""
    cdef uint32_t edge = c.snd_wl2 + c.snd_wnd
    if gn_seq_leq(c.snd_max, edge):
        return c.snd_max
    return edge if gn_seq_geq(edge, c.snd_una) else c.snd_una


cdef void gn_tcp_make_ack(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, const gn_tcp_range_t* ooo,
                          uint32_t n_ooo, gn_tcp_out_t* o) noexcept nogil:
    """A pure ACK (also the challenge and duplicate ACKs), at SND.MAX, or at
    the right edge of the peer's window when SND.MAX is past it (see
    _ack_seq). With SACK, the n_ooo out-of-order ranges of the rx fifo
    (ascending) become SACK blocks, the one holding the latest out-of-order
    segment first (RFC 2018 s.4)."""
    cdef uint32_t i, first = n_ooo, n = 0, rel = c.rcv_last_ooo - c.rcv_nxt
    memset(o, 0, sizeof(gn_tcp_out_t))
    o.seq = _ack_seq(c)
    o.flags = GN_TCP_FLAG_ACK
    _ack_fields(c, now_ms, rx_space, o)
    if not (c.flags & GN_TCP_CF_SACK) or n_ooo == 0:
        return
    for i in range(n_ooo):
        if ooo[i].offset <= rel < ooo[i].offset + ooo[i].length:
            first = i
            break
    if first < n_ooo:
        o.opts.sack[0].start = c.rcv_nxt + ooo[first].offset
        o.opts.sack[0].end = c.rcv_nxt + ooo[first].offset + ooo[first].length
        n = 1
    for i in range(n_ooo):
        if i == first or n == GN_TCP_MAX_SACK_BLOCKS:
            continue
        o.opts.sack[n].start = c.rcv_nxt + ooo[i].offset
        o.opts.sack[n].end = c.rcv_nxt + ooo[i].offset + ooo[i].length
        n += 1
    o.opts.n_sack = <uint8_t>n
    o.opts.flags |= GN_TCP_OPTF_SACK


cdef inline uint8_t _syn_options(uint32_t flags, uint32_t ts, uint32_t sack, uint32_t wscale) noexcept nogil:
    """Option flags (GN_TCP_OPTF_*) for the connection flags given."""
    return ((GN_TCP_OPTF_TIMESTAMP if flags & ts else 0) | (GN_TCP_OPTF_SACK_PERMITTED if flags & sack else 0)
            | (GN_TCP_OPTF_WSCALE if flags & wscale else 0))


cdef void gn_tcp_make_syn(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, gn_tcp_out_t* o) noexcept nogil:
    """Our SYN (SYN_SENT: offering our options) or SYN-ACK (SYN_RCVD:
    answering the peer's); the window unscaled (RFC 7323 s.2.2)."""
    cdef uint32_t w = rx_space if rx_space < 0xffff else 0xffff
    memset(o, 0, sizeof(gn_tcp_out_t))
    o.seq = c.iss
    o.flags = GN_TCP_FLAG_SYN
    o.wnd = <uint16_t>w
    o.opts.flags = GN_TCP_OPTF_MSS
    o.opts.mss = c.rcv_mss
    if c.state == GN_TCP_SYN_SENT:           # offer what we want
        o.opts.flags |= _syn_options(c.flags, GN_TCP_CF_WANT_TS, GN_TCP_CF_WANT_SACK, GN_TCP_CF_WANT_WSCALE)
    else:                                     # answer with what was negotiated
        o.flags |= GN_TCP_FLAG_ACK
        o.ack = c.rcv_nxt
        c.rcv_adv = c.rcv_nxt + w
        c.last_ack_sent = c.rcv_nxt
        o.opts.flags |= _syn_options(c.flags, GN_TCP_CF_TS, GN_TCP_CF_SACK, GN_TCP_CF_WSCALE)
    o.opts.wscale = c.want_wscale
    o.opts.tsval = now_ms + c.ts_offset
    o.opts.tsecr = c.ts_recent if c.state == GN_TCP_SYN_RCVD else 0


cdef void gn_tcp_make_probe(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t rx_space, gn_tcp_out_t* o) noexcept nogil:
    """A zero-window probe: an ACK at SND.UNA - 1, outside the peer's
    window, which the peer must answer with an ACK carrying its window."""
    gn_tcp_make_ack(c, now_ms, rx_space, NULL, 0, o)
    o.seq = c.snd_una - 1


cdef void gn_tcp_make_rst(const gn_tcp_act_t* a, gn_tcp_out_t* o) noexcept nogil:
    memset(o, 0, sizeof(gn_tcp_out_t))
    o.seq = a.rst_seq
    o.ack = a.rst_ack
    o.flags = a.rst_flags


cdef inline void _resent(gn_tcp_conn_t* c, uint32_t now_ms) noexcept nogil:
    """Count a retransmission and keep RTT samples Karn-safe (_rtt_sample)."""
    c.n_retransmits += 1
    c.flags &= ~GN_TCP_CF_RTT_TIMING
    if c.flags & GN_TCP_CF_TS and not (c.flags & GN_TCP_CF_RTX_TS):
        c.flags |= GN_TCP_CF_RTX_TS
        c.rtx_tsval = now_ms + c.ts_offset


cdef bint _retransmit(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t tx_bytes, uint32_t rx_space, uint32_t seq,
                      uint32_t maxlen, gn_tcp_out_t* o) noexcept nogil:
    """Resend up to maxlen bytes from seq (< SND.MAX), and the FIN if it
    follows them. SND.NXT does not move; RTT timing stops (Karn)."""
    cdef uint32_t off = seq - c.snd_una, n
    cdef bint fin
    n = tx_bytes - off if tx_bytes > off else 0
    if n > maxlen:
        n = maxlen
    fin = (c.flags & GN_TCP_CF_FIN_SENT) != 0 and seq + n == c.snd_fin
    if n == 0 and not fin:
        return False
    memset(o, 0, sizeof(gn_tcp_out_t))
    o.seq = seq
    o.data_off = off
    o.data_len = n
    o.flags = GN_TCP_FLAG_ACK | (GN_TCP_FLAG_FIN if fin else 0)
    _ack_fields(c, now_ms, rx_space, o)
    _resent(c, now_ms)
    if c.recovery == GN_TCP_RECOVERY_SACK and gn_seq_lt(c.sb.rxt_end, seq + n + fin):
        c.sb.rxt_end = seq + n + fin
    return True


cdef bint _tlp_retransmit(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t tx_bytes, uint32_t rx_space,
                          gn_tcp_out_t* o) noexcept nogil:
    """The probe when no new segment may go (RFC 8985 s.7.3): the last
    segment sent, again (its last MSS of data, and the FIN if sent)."""
    cdef uint32_t end = c.snd_fin if c.flags & GN_TCP_CF_FIN_SENT else c.snd_max
    cdef uint32_t n = end - c.snd_una if gn_seq_gt(end, c.snd_una) else 0
    if n > c.snd_mss:
        n = c.snd_mss
    if not _retransmit(c, now_ms, tx_bytes, rx_space, end - n, n, o):
        return False
    c.flags |= GN_TCP_CF_TLP_RTX
    c.tlp_high = c.snd_max
    return True


cdef bint gn_tcp_send_next(gn_tcp_conn_t* c, uint32_t now_ms, uint32_t tx_bytes, uint32_t rx_space,
                           uint32_t max_seg, gn_tcp_out_t* o) noexcept nogil:
    """The next segment to send, if the windows allow one; call until it
    returns False. In order: a pending fast retransmission of SND.UNA; a
    tail loss probe whose PTO fired (one new MSS past cwnd, or the last
    segment again: RFC 8985 s.7.3); in SACK recovery, RFC 6675 NextSeg
    while cwnd - pipe >= 1 SMSS; else new data (and/or the FIN) from
    SND.NXT: within SND.WND and cwnd of SND.UNA (cwnd plus an MSS per
    duplicate ACK below DupThresh: RFC 3042 limited transmit),
    at most one MSS, or max_seg bytes (a TSO super-segment: the glue's
    egress can segment it; max_seg <= snd_mss means one MSS). A
    super-segment is a whole number of MSS but for the tail of the data:
    the window's sub-MSS remainder goes out later as a segment of its own
    (or is held by Nagle, as it would be one MSS at a time). A SACK
    recovery retransmission may be a super-segment too (a hole, within
    cwnd - pipe: one packet to lose instead of many); the fast
    retransmission of SND.UNA is one MSS. Nagle (RFC 9293 s.3.7.4) holds
    back a short segment while data is unacknowledged unless switched off.
    tx fifo bytes [data_off, data_off + data_len) go out. tx_bytes: bytes
    in the tx fifo."""
    cdef uint32_t off, avail, flight, usable, wnd_avail, n, pipe = 0, rstart = 0, rlen = 0, kind, limit
    cdef uint32_t mss = c.snd_mss, edge = c.snd_wl2 + c.snd_wnd, seg
    cdef bint fin, probe = (c.flags & GN_TCP_CF_TLP_PROBE) != 0
    if not _sending_state(c):
        return False
    c.flags &= ~GN_TCP_CF_TLP_PROBE
    if c.flags & GN_TCP_CF_RTX_PENDING:
        c.flags &= ~GN_TCP_CF_RTX_PENDING
        if gn_seq_lt(c.snd_una, c.snd_max) and _retransmit(c, now_ms, tx_bytes, rx_space, c.snd_una, mss, o):
            return True
    off = c.snd_nxt - c.snd_una
    avail = tx_bytes - off if tx_bytes > off else 0
    flight = c.snd_nxt - c.snd_una
    # the peer's window counts from the ACK that carried it (SND.WL2)
    wnd_avail = edge - c.snd_nxt if gn_seq_gt(edge, c.snd_nxt) else 0
    seg = max_seg if max_seg > mss else mss
    probe = probe and c.recovery == GN_TCP_RECOVERY_NONE     # recovery began since the PTO fired: none
    if probe:
        if not (avail and wnd_avail and not (c.flags & GN_TCP_CF_FIN_SENT)):
            return _tlp_retransmit(c, now_ms, tx_bytes, rx_space, o)
        seg = mss                         # the probe: one new segment, whatever cwnd says (RFC 8985 s.7.3)
    if c.recovery == GN_TCP_RECOVERY_SACK:
        pipe = gn_tcp_sb_pipe(&c.sb, c.snd_una, c.snd_max, mss)
        if pipe + mss > c.cc.cwnd:
            return False
        usable = c.cc.cwnd - pipe
        kind = gn_tcp_sb_next_seg(&c.sb, c.snd_una, c.snd_max, mss,
                                  (seg if seg < usable else usable) // mss * mss,
                                  (avail > 0 or (c.flags & GN_TCP_CF_FIN_QUEUED and not (c.flags & GN_TCP_CF_FIN_SENT)))
                                  and wnd_avail > 0, &rstart, &rlen)
        if kind == GN_TCP_NEXT_NONE:
            return False
        if kind != GN_TCP_NEXT_NEW:
            return _retransmit(c, now_ms, tx_bytes, rx_space, rstart, rlen, o)
        usable = c.cc.cwnd - pipe
    elif probe:
        usable = mss
    else:
        limit = c.cc.cwnd
        if c.recovery == GN_TCP_RECOVERY_NONE and c.dup_acks < GN_TCP_DUPTHRESH:
            limit += c.dup_acks * <uint32_t>mss  # RFC 3042 limited transmit: a new segment per dup ACK
        usable = limit - flight if limit > flight else 0
    if usable > wnd_avail:
        usable = wnd_avail
    if c.flags & GN_TCP_CF_FIN_SENT and gn_seq_gt(c.snd_nxt, c.snd_fin):
        return False                      # all sent, the FIN too
    n = avail
    if n > seg:
        n = seg
    if n > usable:
        n = usable
    if n > mss and n < avail:
        n -= n % mss                      # a super-segment cut by a window or max_seg: whole MSS
    fin = (c.flags & GN_TCP_CF_FIN_QUEUED) != 0 and n == avail
    if wnd_avail == 0 and (avail or fin):
        c.flags |= GN_TCP_CF_PERSIST      # the peer's window is shut: the timer probes it
        return False
    c.flags &= ~GN_TCP_CF_PERSIST
    if n == 0 and not fin:
        return False
    if not fin and n < mss and flight and not (c.flags & GN_TCP_CF_NO_NAGLE) and not probe \
            and gn_seq_geq(c.snd_nxt, c.snd_max):
        return False                      # Nagle: wait for the ACK or a full segment
    memset(o, 0, sizeof(gn_tcp_out_t))
    o.seq = c.snd_nxt
    o.data_off = off
    o.data_len = n
    o.flags = GN_TCP_FLAG_ACK
    if n and n == avail:
        o.flags |= GN_TCP_FLAG_PSH
    if fin:
        o.flags |= GN_TCP_FLAG_FIN
        c.flags |= GN_TCP_CF_FIN_SENT
        c.snd_fin = o.seq + n
    _ack_fields(c, now_ms, rx_space, o)
    if gn_seq_lt(o.seq, c.snd_max):
        _resent(c, now_ms)                # resent after a timeout (go-back-N from SND.UNA)
    c.snd_nxt += n + fin
    if gn_seq_gt(c.snd_nxt, c.snd_max):
        if not (c.flags & (GN_TCP_CF_RTT_TIMING | GN_TCP_CF_TS)) and o.seq == c.snd_max:
            c.flags |= GN_TCP_CF_RTT_TIMING
            c.rtt_seq = o.seq
            c.rtt_start_ms = now_ms
        c.snd_max = c.snd_nxt
    return True


cdef void gn_tcp_rto_expired(gn_tcp_conn_t* c, uint32_t now_ms, gn_tcp_act_t* a) noexcept nogil:
    """The retransmission timer fired (RFC 6298 s.5.4-5.6): back off, stop
    RTT timing (Karn), resend. SYN/SYN-ACK: again, until max_syn_retries
    (then the open is refused, or a half-open forgotten). Data: cwnd to the
    loss window (the cc algorithm), recovery and the SACK scoreboard
    forgotten (RFC 2018 s.8), SND.NXT back to SND.UNA; after
    max_data_retries the connection is reset."""
    _act_clear(a)
    if c.state == GN_TCP_CLOSED or c.state == GN_TCP_LISTEN or c.state == GN_TCP_TIME_WAIT:
        return
    if c.flags & GN_TCP_CF_TLP_ARMED:
        # it ran as the PTO (RFC 8985 s.7.3): one probe, then the RTO
        c.flags = (c.flags & ~GN_TCP_CF_TLP_ARMED) | GN_TCP_CF_TLP_PROBE | GN_TCP_CF_TLP_SENT
        c.n_tlp_probes += 1
        a.flags |= GN_TCP_A_TX_MORE | GN_TCP_A_RTX_ARM
        return
    c.n_timeouts += 1
    c.rto_retries += 1
    c.flags &= ~(GN_TCP_CF_RTT_TIMING | GN_TCP_CF_RTX_PENDING)
    if c.state == GN_TCP_SYN_SENT or c.state == GN_TCP_SYN_RCVD:
        if c.rto_retries > c.max_syn_retries:
            if c.state == GN_TCP_SYN_RCVD and c.flags & GN_TCP_CF_PASSIVE:
                c.state = GN_TCP_CLOSED
                a.flags |= GN_TCP_A_FORGET | GN_TCP_A_RTX_STOP
            else:
                a.flags |= GN_TCP_A_REFUSED
                _closed(c, a)
            return
        gn_tcp_rto_backoff(&c.rto)
        c.n_retransmits += 1
        a.flags |= GN_TCP_A_SEND_SYN | GN_TCP_A_RTX_ARM
        return
    if c.snd_una == c.snd_max and not (c.flags & GN_TCP_CF_PERSIST):
        a.flags |= GN_TCP_A_RTX_STOP      # nothing outstanding
        return
    if gn_seq_leq(c.snd_wl2 + c.snd_wnd, c.snd_una):
        # the peer's window is shut: probe it (RFC 9293 s.3.8.6.1), backing
        # off; a peer that answers keeps the connection however long it stays
        # shut, so the probes do not count as retries
        c.rto_retries = 0
        gn_tcp_rto_backoff(&c.rto)
        a.flags |= GN_TCP_A_SEND_PROBE | GN_TCP_A_RTX_ARM
        return
    if c.rto_retries > c.max_data_retries:
        a.flags |= GN_TCP_A_SEND_RST | GN_TCP_A_RESET
        a.rst_seq = c.snd_nxt
        a.rst_flags = GN_TCP_FLAG_RST
        _closed(c, a)
        return
    c.cc_ops.on_timeout(&c.cc, c.snd_max - c.snd_una, now_ms / 1000.0)
    gn_tcp_rto_backoff(&c.rto)
    c.flags &= ~(GN_TCP_CF_TLP_SENT | GN_TCP_CF_TLP_RTX | GN_TCP_CF_TLP_PROBE)
    c.recovery = GN_TCP_RECOVERY_NONE
    c.recover = c.snd_max                 # RFC 6582 s.3.2 step 1 after a timeout
    c.dup_acks = 0
    gn_tcp_sb_reset(&c.sb, c.snd_una)
    c.snd_nxt = c.snd_una
    a.flags |= GN_TCP_A_TX_MORE | GN_TCP_A_RTX_ARM


cdef uint32_t gn_tcp_write_out(const gn_tcp_out_t* o, uint16_t sport, uint16_t dport, uint8_t* t) noexcept nogil:
    """Write o's header and options at t (room for 60 bytes); returns the
    header length. The checksum is left 0 (gn_tcp4_set_checksum once the
    payload is in place)."""
    cdef uint32_t olen = gn_tcp_options_write(t + GN_TCP_HEADER_LEN, &o.opts, (o.flags & GN_TCP_FLAG_SYN) != 0)
    gn_tcp_write_header(t, sport, dport, o.seq, o.ack, GN_TCP_HEADER_LEN + olen, o.flags, o.wnd)
    return GN_TCP_HEADER_LEN + olen


cdef uint32_t gn_tcp_seg_parse(const uint8_t* t, uint32_t n, gn_tcp_seg_t* s) noexcept nogil:
    """Parse the n bytes of a segment (header + payload) into s: a wire
    result code (GN_TCP_OK or a PARSE_ERRORS row)."""
    cdef uint32_t r = gn_tcp_validate(t, n), hlen
    if r != GN_TCP_OK:
        return r
    hlen = gn_tcp_header_bytes(t)
    r = gn_tcp_options_parse(t + GN_TCP_HEADER_LEN, hlen - GN_TCP_HEADER_LEN, &s.opts)
    if r != GN_TCP_OK:
        return r
    s.seq = gn_tcp_seq(t)
    s.ack = gn_tcp_ack(t)
    s.len = n - hlen
    s.wnd = gn_tcp_window(t)
    s.flags = gn_tcp_flags(t)
    return GN_TCP_OK


# -- Python face: tests and the control plane ----------------------------------

def action_names(uint32_t flags):
    return [name for bit, name in enumerate(ACTION_NAMES) if flags >> bit & 1]


cdef dict _act_dict(gn_tcp_act_t* a):
    d = {"actions": set(action_names(a.flags)), "error": INPUT_ERRORS[len(PARSE_ERRORS) - 1 + a.error][0]
         if a.error else "none"}
    if a.flags & GN_TCP_A_DELIVER:
        d["rx"] = (a.rx_skip, a.rx_len, a.rx_offset)
    if a.flags & GN_TCP_A_TX_ACKED:
        d["tx_acked"] = a.tx_acked
    if a.flags & GN_TCP_A_SEND_RST:
        d["rst"] = (a.rst_seq, a.rst_ack, a.rst_flags)
    if a.rtt_ms:
        d["rtt_ms"] = a.rtt_ms
    return d


cdef int _seg_from_bytes(data, gn_tcp_seg_t* s) except -1:
    cdef bytes b = bytes(data)
    cdef uint32_t r = gn_tcp_seg_parse(<const uint8_t*>b, len(b), s)
    if r != GN_TCP_OK:
        raise ValueError(f"segment does not parse: {PARSE_ERRORS[r][0]}")
    return 0


ctypedef void (*_stateless_fn)(const gn_tcp_seg_t* s, gn_tcp_act_t* a) noexcept nogil


cdef dict _stateless(_stateless_fn fn, segment):
    cdef gn_tcp_seg_t s
    cdef gn_tcp_act_t a
    _seg_from_bytes(segment, &s)
    fn(&s, &a)
    return _act_dict(&a)


def closed_input(segment):
    """Actions for a segment (bytes) that found no connection."""
    return _stateless(gn_tcp_closed_input, segment)


def listen_input(segment):
    """Actions for a segment (bytes) to a listener."""
    return _stateless(gn_tcp_listen_input, segment)


def rst_bytes(dict act, uint16_t sport, uint16_t dport) -> bytes:
    """The RST an action record asks for, as bytes (no checksum)."""
    cdef gn_tcp_act_t a
    cdef gn_tcp_out_t o
    cdef uint8_t t[GN_TCP_MAX_HEADER_LEN]
    _act_clear(&a)
    a.rst_seq, a.rst_ack, a.rst_flags = act["rst"]
    gn_tcp_make_rst(&a, &o)
    return bytes(t[:gn_tcp_write_out(&o, sport, dport, t)])


def isn(key, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip, uint16_t rmt_port, uint64_t now_us) -> int:
    """RFC 6528 ISN under a 16-byte key."""
    cdef gn_tcp_secret_t k
    k.k0 = int.from_bytes(bytes(key)[:8], "little")
    k.k1 = int.from_bytes(bytes(key)[8:16], "little")
    return gn_tcp_isn(&k, lcl_ip, lcl_port, rmt_ip, rmt_port, now_us)


def siphash24(key, data) -> int:
    cdef bytes b = bytes(data)
    return gn_siphash24(int.from_bytes(bytes(key)[:8], "little"), int.from_bytes(bytes(key)[8:16], "little"),
                        <const uint8_t*>b, len(b))


cdef class Connection:
    """One gn_tcp_conn_t driven from Python (tests, show commands): every
    method calls the C function of the same name and returns its actions
    as a dict; segments go in and out as bytes."""

    def __init__(self, lcl=(0x0A000001, 1000), rmt=(0x0A000002, 2000), uint32_t iss=1000, uint32_t ts_offset=0,
                 uint16_t mss=1460, uint8_t wscale=7, bint ts=True, bint sack=True, bint window_scale=True,
                 bint nagle=True, uint32_t challenge_acks_per_s=10, str cc="cubic", uint32_t rto_min_us=0,
                 uint8_t syn_retries=0, uint8_t data_retries=0, uint8_t keepalive_probes=0, uint32_t rcv_buf=0):
        memset(&self.cfg, 0, sizeof(gn_tcp_config_t))
        self.cfg.mss = mss
        self.cfg.wscale = wscale
        self.cfg.flags = ((GN_TCP_CF_WANT_TS if ts else 0) | (GN_TCP_CF_WANT_SACK if sack else 0)
                          | (GN_TCP_CF_WANT_WSCALE if window_scale else 0) | (0 if nagle else GN_TCP_CF_NO_NAGLE))
        self.cfg.challenge_acks_per_s = challenge_acks_per_s
        self.cfg.cc_algo = cc_lookup(cc)
        self.cfg.rto_min_us = rto_min_us
        self.cfg.syn_retries = syn_retries
        self.cfg.data_retries = data_retries
        self.cfg.keepalive_probes = keepalive_probes
        gn_tcp_conn_init(&self.c, &self.cfg, lcl[0], lcl[1], rmt[0], rmt[1], iss, ts_offset)
        self.c.rcv_buf = rcv_buf

    @property
    def state(self):
        return STATE_NAMES[self.c.state]

    def fields(self):
        """The connection's fields (show session verbose), with the cc, RTO
        and scoreboard state."""
        cdef gn_tcp_conn_t* c = &self.c
        return {
            "lcl_ip": c.lcl_ip,
            "rmt_ip": c.rmt_ip,
            "lcl_port": c.lcl_port,
            "rmt_port": c.rmt_port,
            "state": c.state,
            "snd_wscale": c.snd_wscale,
            "rcv_wscale": c.rcv_wscale,
            "want_wscale": c.want_wscale,
            "flags": c.flags,
            "iss": c.iss,
            "snd_una": c.snd_una,
            "snd_nxt": c.snd_nxt,
            "snd_max": c.snd_max,
            "snd_wnd": c.snd_wnd,
            "max_snd_wnd": c.max_snd_wnd,
            "snd_wl1": c.snd_wl1,
            "snd_wl2": c.snd_wl2,
            "snd_fin": c.snd_fin,
            "snd_mss": c.snd_mss,
            "rcv_mss": c.rcv_mss,
            "irs": c.irs,
            "rcv_nxt": c.rcv_nxt,
            "rcv_adv": c.rcv_adv,
            "rcv_fin": c.rcv_fin,
            "rcv_last_ooo": c.rcv_last_ooo,
            "delack_bytes": c.delack_bytes,
            "ts_recent": c.ts_recent,
            "ts_recent_ms": c.ts_recent_ms,
            "ts_offset": c.ts_offset,
            "last_ack_sent": c.last_ack_sent,
            "rtt_seq": c.rtt_seq,
            "rtt_start_ms": c.rtt_start_ms,
            "chack_limit": c.chack_limit,
            "n_challenge_acks": c.n_challenge_acks,
            "n_paws_drops": c.n_paws_drops,
            "n_out_of_window": c.n_out_of_window,
            "n_dup_acks": c.n_dup_acks,
            "dup_acks": c.dup_acks,
            "bytes_acked": c.bytes_acked,
            "bytes_received": c.bytes_received,
            "recovery": c.recovery,
            "cc_algo": c.cc_algo,
            "rto_retries": c.rto_retries,
            "recover": c.recover,
            "n_retransmits": c.n_retransmits,
            "n_fast_retransmits": c.n_fast_retransmits,
            "n_timeouts": c.n_timeouts,
            "n_tlp_probes": c.n_tlp_probes,
            "n_early_retransmits": c.n_early_retransmits,
            "ka_probes": c.ka_probes,
            "cwnd": c.cc.cwnd, "ssthresh": c.cc.ssthresh, "cc": c.cc_ops.name.decode(),
            "srtt_us": c.rto.srtt_us, "rttvar_us": c.rto.rttvar_us, "rto_us": c.rto.rto_us,
            "sack_blocks": [(c.sb.blk[i].start, c.sb.blk[i].end) for i in range(c.sb.n)],
        }

    def set_cwnd(self, uint32_t cwnd):
        self.c.cc.cwnd = cwnd

    def delack_expired(self):
        cdef gn_tcp_act_t a
        gn_tcp_delack_expired(&self.c, &a)
        return _act_dict(&a)

    def keepalive_expired(self):
        cdef gn_tcp_act_t a
        gn_tcp_keepalive_expired(&self.c, &a)
        return _act_dict(&a)

    def timer_wanted(self):
        return gn_tcp_timer_wanted(&self.c)

    def rtx_timeout_ms(self):
        """The retransmit timer's next timeout (the PTO or the RTO), as
        the glue arms it (gn_tcp_rtx_timeout_ms)."""
        return gn_tcp_rtx_timeout_ms(&self.c)

    def rto_expired(self, uint32_t now_ms=0):
        cdef gn_tcp_act_t a
        gn_tcp_rto_expired(&self.c, now_ms, &a)
        return _act_dict(&a)

    def active_open(self, uint32_t now_ms=0):
        cdef gn_tcp_act_t a
        gn_tcp_active_open(&self.c, now_ms, &a)
        return _act_dict(&a)

    def passive_open(self, segment, uint32_t now_ms=0):
        cdef gn_tcp_seg_t s
        cdef gn_tcp_act_t a
        _seg_from_bytes(segment, &s)
        gn_tcp_passive_open(&self.c, &s, now_ms, &a)
        return _act_dict(&a)

    def input(self, segment, uint32_t now_ms=0, uint32_t rx_space=1 << 20):
        cdef gn_tcp_seg_t s
        cdef gn_tcp_act_t a
        _seg_from_bytes(segment, &s)
        gn_tcp_input(&self.c, &s, now_ms, rx_space, &a)
        return _act_dict(&a)

    def rcv_joined(self, uint32_t n):
        cdef gn_tcp_act_t a
        _act_clear(&a)
        gn_tcp_rcv_joined(&self.c, n, &a)
        return _act_dict(&a)

    def app_close(self):
        cdef gn_tcp_act_t a
        gn_tcp_app_close(&self.c, &a)
        return _act_dict(&a)

    def app_reset(self):
        cdef gn_tcp_act_t a
        gn_tcp_app_reset(&self.c, &a)
        return _act_dict(&a)

    def time_wait_expired(self):
        cdef gn_tcp_act_t a
        gn_tcp_time_wait_expired(&self.c, &a)
        return _act_dict(&a)

    cdef bytes _bytes(self, gn_tcp_out_t* o, payload=b""):
        cdef uint8_t t[GN_TCP_MAX_HEADER_LEN]
        cdef uint32_t h = gn_tcp_write_out(o, self.c.lcl_port, self.c.rmt_port, t)
        cdef bytearray seg = bytearray(t[:h]) + bytes(payload)
        gn_tcp4_set_checksum(self.c.lcl_ip, self.c.rmt_ip, <uint8_t*>seg, len(seg))
        return bytes(seg)

    def make_ack(self, uint32_t now_ms=0, uint32_t rx_space=1 << 20, ooo=()):
        """An ACK as bytes; ooo: the rx fifo's out-of-order (offset, length)
        ranges past RCV.NXT, ascending."""
        cdef gn_tcp_out_t o
        cdef gn_tcp_range_t r[16]
        cdef uint32_t n = 0
        for off, ln in list(ooo)[:16]:
            r[n].offset = off
            r[n].length = ln
            n += 1
        gn_tcp_make_ack(&self.c, now_ms, rx_space, r, n, &o)
        return self._bytes(&o)

    def make_probe(self, uint32_t now_ms=0, uint32_t rx_space=1 << 20):
        cdef gn_tcp_out_t o
        gn_tcp_make_probe(&self.c, now_ms, rx_space, &o)
        return self._bytes(&o)

    def make_syn(self, uint32_t now_ms=0, uint32_t rx_space=1 << 20):
        cdef gn_tcp_out_t o
        gn_tcp_make_syn(&self.c, now_ms, rx_space, &o)
        return self._bytes(&o)

    def send_next(self, tx, uint32_t now_ms=0, uint32_t rx_space=1 << 20, uint32_t max_seg=0):
        """The next data/FIN segment as bytes, its payload taken from tx
        (the tx fifo's bytes, head first), or None. max_seg: the largest
        super-segment the egress takes (0: one MSS)."""
        cdef gn_tcp_out_t o
        tx = bytes(tx)
        if not gn_tcp_send_next(&self.c, now_ms, len(tx), rx_space, max_seg, &o):
            return None
        return self._bytes(&o, tx[o.data_off:o.data_off + o.data_len])

    def rewind(self):
        """snd_nxt back to snd_una (what a retransmission timeout does)."""
        self.c.snd_nxt = self.c.snd_una
