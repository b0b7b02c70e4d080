"""SYN cookies (RFC 4987 s.3.6) and the listener's SYN backlog policy.

Under a SYN flood a listener keeps no state per SYN: the SYN-ACK's
sequence number (the cookie) carries what the connection needs, and the
final ACK brings it back (ACK - 1). Layout of the 32-bit cookie:

    bits 31..27  the period (now_ms >> 16, about 65 s) modulo 32
    bits 26..24  the peer's MSS as an index into MSS_TABLE (rounded down)
    bits 23..0   SipHash-2-4 under the secret of (4-tuple, full period,
                 the peer's ISN)

A cookie is valid for GN_TCP_COOKIE_MAX_AGE periods. When the SYN carried
timestamps, the options that do not fit the cookie ride in the low 5 bits
of our TSval, which the peer echoes: bits 0-3 the peer's window scale (15:
none), bit 4 SACK-permitted (as Linux does); without timestamps a cookie
connection has MSS only (no window scale, SACK or timestamps).

Backlog: ``gn_tcp_syn_policy`` answers each SYN to a listener: ACCEPT (a
half-open connection, counted against max_half_open), COOKIE (when the
backlog is full, or always), or DROP (full, cookies off). The glue calls
``gn_tcp_half_open_gone`` when a half-open leaves SYN_RCVD, and tries
``gn_tcp_syncookie_check`` on an ACK that finds no connection at a
listener that sent cookies, before answering it with a RST.
"""
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from graphnet.wire.tcp cimport *
from graphnet.transport.tcp.isn cimport gn_tcp_tuple_hash, gn_tcp_ts_offset
from graphnet.transport.tcp.conn cimport *
from graphnet.transport.tcp.conn import action_names

cdef enum:
    COOKIE_NO_WSCALE = 15
    TS_BITS = 0x1f

cdef uint16_t MSS_TABLE[GN_TCP_COOKIE_N_MSS]
for _i, _m in enumerate((536, 1220, 1300, 1360, 1400, 1440, 1460, 8960)):
    MSS_TABLE[_i] = _m


cdef uint32_t gn_tcp_syn_policy(gn_tcp_listener_t* l) noexcept nogil:
    """What to do with a SYN to this listener (counts it)."""
    l.n_syns += 1
    if l.cookies == GN_TCP_COOKIES_ALWAYS:
        l.n_cookies_sent += 1
        return GN_TCP_SYN_COOKIE
    if l.n_half_open < l.max_half_open:
        l.n_half_open += 1
        return GN_TCP_SYN_ACCEPT
    if l.cookies == GN_TCP_COOKIES_WHEN_FULL:
        l.n_cookies_sent += 1
        return GN_TCP_SYN_COOKIE
    l.n_syn_dropped += 1
    return GN_TCP_SYN_DROP


cdef inline uint32_t _hash(const gn_tcp_secret_t* key, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip,
                           uint16_t rmt_port, uint32_t period, uint32_t peer_isn) noexcept nogil:
    # the top bit keeps these salts apart from gn_tcp_isn's (0) and
    # gn_tcp_ts_offset's (1): periods (now_ms >> 16) stay below 2**16
    return <uint32_t>gn_tcp_tuple_hash(key, lcl_ip, lcl_port, rmt_ip, rmt_port, period | 0x80000000U,
                                       peer_isn) & 0xffffff


cdef void gn_tcp_syncookie_synack(const gn_tcp_secret_t* key, const gn_tcp_config_t* cfg, uint32_t lcl_ip,
                                  uint16_t lcl_port, uint32_t rmt_ip, uint16_t rmt_port, const gn_tcp_seg_t* syn,
                                  uint32_t now_ms, uint32_t ts_offset, gn_tcp_out_t* o) noexcept nogil:
    """The stateless SYN-ACK answering syn (ts_offset: gn_tcp_ts_offset of
    the tuple, so the connection made later stamps on from it)."""
    cdef uint32_t period = now_ms >> 16, idx = GN_TCP_COOKIE_N_MSS - 1, mss, bits = 0
    mss = syn.opts.mss if syn.opts.flags & GN_TCP_OPTF_MSS else GN_TCP_DEFAULT_MSS
    while idx and MSS_TABLE[idx] > mss:
        idx -= 1
    memset(o, 0, sizeof(gn_tcp_out_t))
    o.seq = ((period & 31) << 27) | (idx << 24) | _hash(key, lcl_ip, lcl_port, rmt_ip, rmt_port, period, syn.seq)
    o.ack = syn.seq + 1
    o.flags = GN_TCP_FLAG_SYN | GN_TCP_FLAG_ACK
    o.wnd = GN_TCP_COOKIE_WINDOW
    o.opts.flags = GN_TCP_OPTF_MSS
    o.opts.mss = cfg.mss
    if cfg.flags & GN_TCP_CF_WANT_TS and syn.opts.flags & GN_TCP_OPTF_TIMESTAMP:
        bits = COOKIE_NO_WSCALE
        if cfg.flags & GN_TCP_CF_WANT_WSCALE and syn.opts.flags & GN_TCP_OPTF_WSCALE:
            bits = syn.opts.wscale
            o.opts.flags |= GN_TCP_OPTF_WSCALE
            o.opts.wscale = cfg.wscale
        if cfg.flags & GN_TCP_CF_WANT_SACK and syn.opts.flags & GN_TCP_OPTF_SACK_PERMITTED:
            bits |= 0x10
            o.opts.flags |= GN_TCP_OPTF_SACK_PERMITTED
        o.opts.flags |= GN_TCP_OPTF_TIMESTAMP
        # the bits in the low 5 of the stamp, never ahead of the clock the connection
        # made from it stamps on with (the peer's PAWS would drop its first segments)
        o.opts.tsval = ((now_ms + ts_offset) & ~(<uint32_t>TS_BITS)) | bits
        if <int32_t>(o.opts.tsval - (now_ms + ts_offset)) > 0:
            o.opts.tsval -= TS_BITS + 1
        o.opts.tsecr = syn.opts.tsval


cdef bint gn_tcp_syncookie_check(const gn_tcp_secret_t* key, uint32_t lcl_ip, uint16_t lcl_port, uint32_t rmt_ip,
                                 uint16_t rmt_port, const gn_tcp_seg_t* ack, uint32_t now_ms, uint32_t ts_offset,
                                 gn_tcp_cookie_t* out) noexcept nogil:
    """Is ack (no SYN, RST or missing ACK) the answer to one of our
    cookies? If so, out says what the SYN had negotiated."""
    cdef uint32_t cookie = ack.ack - 1, now_p = now_ms >> 16, age, bits, ts_age
    if (ack.flags & (GN_TCP_FLAG_SYN | GN_TCP_FLAG_RST | GN_TCP_FLAG_ACK)) != GN_TCP_FLAG_ACK:
        return False
    age = (now_p - (cookie >> 27)) & 31
    if age > GN_TCP_COOKIE_MAX_AGE:
        return False
    if (cookie & 0xffffff) != _hash(key, lcl_ip, lcl_port, rmt_ip, rmt_port, now_p - age, ack.seq - 1):
        return False
    memset(out, 0, sizeof(gn_tcp_cookie_t))
    out.mss = MSS_TABLE[(cookie >> 24) & 7]
    if ack.opts.flags & GN_TCP_OPTF_TIMESTAMP:
        ts_age = ((now_ms + ts_offset) & ~(<uint32_t>TS_BITS)) - (ack.opts.tsecr & ~(<uint32_t>TS_BITS))
        if ts_age <= ((GN_TCP_COOKIE_MAX_AGE + 1) << 16):   # an echo of a TSval we could have sent
            bits = ack.opts.tsecr & TS_BITS
            out.flags = GN_TCP_OPTF_TIMESTAMP
            if bits & 0x10:
                out.flags |= GN_TCP_OPTF_SACK_PERMITTED
            if (bits & 0xf) != COOKIE_NO_WSCALE:
                out.flags |= GN_TCP_OPTF_WSCALE
                out.snd_wscale = bits & 0xf if (bits & 0xf) <= GN_TCP_MAX_WSCALE else GN_TCP_MAX_WSCALE
    return True


cdef void gn_tcp_syncookie_open(gn_tcp_conn_t* c, const gn_tcp_seg_t* ack, const gn_tcp_cookie_t* ck,
                                uint32_t now_ms, uint32_t rx_space, gn_tcp_act_t* a) noexcept nogil:
    """Make c (gn_tcp_conn_init'ed with iss = ack.ack - 1 and the tuple's
    ts_offset) an ESTABLISHED connection from a valid cookie ACK, and take
    the rest of that segment (its data, a FIN) as gn_tcp_input does."""
    cdef uint32_t mss = ck.mss if ck.mss < c.rcv_mss else c.rcv_mss, w
    cdef uint32_t extra
    c.irs = ack.seq - 1
    c.rcv_nxt = ack.seq
    c.last_ack_sent = ack.seq
    c.snd_una = c.iss + 1
    c.snd_nxt = c.iss + 1
    c.snd_max = c.iss + 1
    c.recover = c.snd_una
    c.flags &= ~(GN_TCP_CF_TS | GN_TCP_CF_SACK | GN_TCP_CF_WSCALE)
    c.flags |= GN_TCP_CF_PASSIVE
    c.snd_wscale = 0
    c.rcv_wscale = 0
    if ck.flags & GN_TCP_OPTF_WSCALE:
        c.flags |= GN_TCP_CF_WSCALE
        c.snd_wscale = ck.snd_wscale
        c.rcv_wscale = c.want_wscale
    if ck.flags & GN_TCP_OPTF_SACK_PERMITTED:
        c.flags |= GN_TCP_CF_SACK
    if ck.flags & GN_TCP_OPTF_TIMESTAMP:
        c.flags |= GN_TCP_CF_TS
        c.ts_recent = ack.opts.tsval
        c.ts_recent_ms = now_ms
        mss -= 12
    c.snd_mss = <uint16_t>mss
    c.cc_ops.init(&c.cc, c.snd_mss)
    c.snd_wnd = (<uint32_t>ack.wnd) << c.snd_wscale
    c.max_snd_wnd = c.snd_wnd
    c.snd_wl1 = ack.seq
    c.snd_wl2 = ack.ack
    w = GN_TCP_COOKIE_WINDOW if GN_TCP_COOKIE_WINDOW < rx_space else rx_space
    c.rcv_adv = c.rcv_nxt + w             # what the SYN-ACK offered
    c.state = GN_TCP_ESTABLISHED
    gn_tcp_input(c, ack, now_ms, rx_space, a)
    a.flags |= GN_TCP_A_ESTABLISHED


# -- Python face (tests) ---------------------------------------------------------

def mss_table():
    return [MSS_TABLE[i] for i in range(GN_TCP_COOKIE_N_MSS)]


cdef class Listener:
    """A listener's backlog policy and SYN cookies under one secret."""
    cdef gn_tcp_listener_t l
    cdef gn_tcp_secret_t key
    cdef gn_tcp_config_t cfg
    cdef public tuple lcl

    def __init__(self, key=bytes(16), lcl=(0x0A000001, 1000), uint32_t backlog=128, str cookies="when-full",
                 uint16_t mss=1460, uint8_t wscale=7):
        memset(&self.l, 0, sizeof(gn_tcp_listener_t))
        self.l.max_half_open = backlog
        self.l.cookies = {"off": GN_TCP_COOKIES_OFF, "when-full": GN_TCP_COOKIES_WHEN_FULL,
                          "always": GN_TCP_COOKIES_ALWAYS}[cookies]
        self.key.k0 = int.from_bytes(bytes(key)[:8], "little")
        self.key.k1 = int.from_bytes(bytes(key)[8:16], "little")
        memset(&self.cfg, 0, sizeof(gn_tcp_config_t))
        self.cfg.mss = mss
        self.cfg.wscale = wscale
        self.cfg.flags = GN_TCP_CF_WANT_TS | GN_TCP_CF_WANT_SACK | GN_TCP_CF_WANT_WSCALE
        self.cfg.challenge_acks_per_s = 10
        self.lcl = tuple(lcl)

    def policy(self):
        return ("accept", "cookie", "drop")[gn_tcp_syn_policy(&self.l)]

    def half_open_gone(self):
        gn_tcp_half_open_gone(&self.l)

    def counters(self):
        return dict(self.l)

    cdef int _parse(self, data, gn_tcp_seg_t* s) except -1:
        cdef bytes b = bytes(data)
        if gn_tcp_seg_parse(<const uint8_t*>b, len(b), s) != GN_TCP_OK:
            raise ValueError("segment does not parse")
        return 0

    cdef uint32_t _ts_offset(self, rmt):
        return gn_tcp_ts_offset(&self.key, self.lcl[0], self.lcl[1], rmt[0], rmt[1])

    def synack(self, rmt, syn, uint32_t now_ms):
        """The cookie SYN-ACK (bytes, checksummed) answering syn (bytes)."""
        cdef gn_tcp_seg_t s
        cdef gn_tcp_out_t o
        cdef uint8_t t[GN_TCP_MAX_HEADER_LEN]
        self._parse(syn, &s)
        gn_tcp_syncookie_synack(&self.key, &self.cfg, self.lcl[0], self.lcl[1], rmt[0], rmt[1], &s, now_ms,
                                self._ts_offset(rmt), &o)
        cdef bytearray seg = bytearray(t[:gn_tcp_write_out(&o, self.lcl[1], rmt[1], t)])
        gn_tcp4_set_checksum(self.lcl[0], rmt[0], <uint8_t*>seg, len(seg))
        return bytes(seg)

    def check(self, rmt, ack, uint32_t now_ms):
        """None, or what the cookie ACK (bytes) restores."""
        cdef gn_tcp_seg_t s
        cdef gn_tcp_cookie_t ck
        self._parse(ack, &s)
        if not gn_tcp_syncookie_check(&self.key, self.lcl[0], self.lcl[1], rmt[0], rmt[1], &s, now_ms,
                                      self._ts_offset(rmt), &ck):
            self.l.n_cookies_bad += 1
            return None
        self.l.n_cookies_ok += 1
        return {"mss": ck.mss, "wscale": ck.snd_wscale if ck.flags & GN_TCP_OPTF_WSCALE else None,
                "sack": bool(ck.flags & GN_TCP_OPTF_SACK_PERMITTED),
                "timestamps": bool(ck.flags & GN_TCP_OPTF_TIMESTAMP)}

    def open(self, rmt, ack, uint32_t now_ms, uint32_t rx_space=1 << 20):
        """(Connection, actions) made from a valid cookie ACK, or None."""
        cdef gn_tcp_seg_t s
        cdef gn_tcp_cookie_t ck
        cdef gn_tcp_act_t a
        cdef Connection conn
        self._parse(ack, &s)
        if not gn_tcp_syncookie_check(&self.key, self.lcl[0], self.lcl[1], rmt[0], rmt[1], &s, now_ms,
                                      self._ts_offset(rmt), &ck):
            return None
        conn = Connection(lcl=self.lcl, rmt=rmt)
        gn_tcp_conn_init(&conn.c, &self.cfg, self.lcl[0], self.lcl[1], rmt[0], rmt[1], s.ack - 1,
                         self._ts_offset(rmt))
        gn_tcp_syncookie_open(&conn.c, &s, &ck, now_ms, rx_space, &a)
        return conn, action_names(a.flags), (a.rx_skip, a.rx_len, a.rx_offset)
