"""TCP transport (issue 13): the connection and its RFC 9293 state machine,
timers, congestion control and SACK scoreboard, as C (nogil) code with no
graph knowledge. The wire format is graphnet/wire/tcp.pxd; the graph glue
is graphnet/transport/tcp4 (session layer) and graphnet/nodes/tcp4_*.

STATUS (keep current: another session continues from here)
- built+tested: graphnet/wire/tcp.pxd/.pyx (header, options parse/write,
  checksum, formatter) -- tests/wire/test_tcp_wire.py
- built+tested: conn.pxd/.pyx (gn_tcp_conn_t, RFC 9293 state machine with
  RFC 7323 wscale/timestamps/PAWS/RTTM, RFC 5961 challenge ACKs (rate
  limited), MSS negotiation+clamping, SACK blocks for ACKs, Nagle, send
  within min(snd_wnd, cwnd)); isn.pxd (RFC 6528 ISN, SipHash-2-4) --
  tests/transport/test_tcp_conn.py (one row per transition + two connections over a
  fifo model: transfer, reordering+SACK, simultaneous open/close, RST)
- built+tested: rto.pxd (RFC 6298), cc.pxd/.pyx (table of C function
  pointers: newreno, cubic (default)), sack.pxd/.pyx (scoreboard, RFC 6675
  IsLost/SetPipe/NextSeg) -- tests/transport/test_tcp_cc.py; wired into the
  connection: dup-ACK / SACK loss detection, NewReno partial ACKs (RFC
  6582), SACK recovery, RTO with backoff, Karn (for echoed timestamps
  too), go-back-N, give-up after retries, zero-window probes, tail loss
  probes (RFC 8985 s.7: gn_tcp_rtx_timeout_ms arms the timer as the PTO,
  gn_tcp_rto_expired then sends the probe), early retransmit (RFC 5827),
  limited transmit (RFC 3042); no RACK (s.6) --
  tests/transport/test_tcp_recovery.py (scripted ACK
  sequences; lossy/reordering/duplicating transfers byte-exact, 1/5/10%)
- testing.py: two connections over a Python rx-fifo model (the glue's
  per-action logic in Python: read it before writing the nodes)
- built+tested: syncookie.pxd/.pyx (RFC 4987 cookies: period + MSS index +
  SipHash in the ISN, window scale and SACK in the TSval's low 5 bits;
  validation, the connection opened from the final ACK; listener backlog
  policy accept/cookie/drop) -- tests/transport/test_tcp_syncookie.py
- built+tested (h-fault): graphnet/nodes/fault_inject.pyx (drop, corrupt,
  duplicate incl. chains, reorder, delay; per interface and direction;
  seeded; counted; CLI `set fault-inject`, startup key) --
  tests/nodes/test_fault_inject.py
- built+tested (h-tcp2): the graph glue. graphnet/transport/tcp4.pyx/.pxd
  (gn_tcp4_conn_t = {gn_transport_connection_t, gn_tcp_conn_t, ...}, one
  pool, 5-tuple open-addressing table, listeners with backlog/cookies,
  the per-action logic below in C, the transport table with stream_tx,
  its own 1 ms timer wheel: RTX/persist/SYN retries, DELACK, KEEPALIVE
  (lazy, off by default), TIME_WAIT; deferred actions for session-layer
  calls made outside a node); nodes graphnet/nodes/tcp4_input, _listen,
  _syn_sent, _rcv_process, _established, _reset, _output, _timer (in
  session_host.NODES); builtin echo serves streams; CLI graphnet/cli/tcp.py
  (show tcp stats / connections, set tcp cc / time-wait; show session
  verbose) -- tests/transport/test_tcp_real.py (kernel over a TAP: 1 B..200 MB
  byte-exact, 1/5/10% loss each way with nftables, zero window, graphnet
  client -> kernel server, RST, close either side, 1000 connections,
  tshark, CLI), tests/transport/test_tcp_pg.py (Scapy via pg: options, RST,
  checksum, challenge ACKs, out of window, simultaneous close, unread
  data RST, RTO, keepalive, SYN flood -> cookies), tests/transport/test_tcp_session.py
  Generic session-layer hooks added for TCP: gn_transport_vft_t.stream_tx
  (session-queue requeues a stream push only when it used all its units;
  the transport owns the tx event) and GN_APP_MSG_RX_DONE accepted by
  session-queue (runs the push: window update).
  A connect with no local address takes the one of the interface the
  FIB routes the peer through (SessionManager.source_for).
- h-tso: TSO super-segments on tx where the egress interface does TSO
  (gn_tcp_send_next's max_seg, tcp4.pyx _max_seg / _send, tcp4-output's
  partial checksum; tests in test_tcp_conn, test_tcp_pg, test_tcp_real).
- next: loss tests through fault-inject (the kernel tests use nftables),
  a 100 k SYN flood, graphnet's rows of bench tcp-bulk / tcp-crr / tcp-lossy (the
  kernel references are in graphnet/bench/tcp_ref.py: plug graphnet's
  side in there)

What the glue will call (tcp4-* nodes, session layer), per segment:
  parse:   gn_tcp_seg_parse(tcp, len, &seg) -> wire error row or OK
  lookup:  5-tuple -> conn: gn_tcp_input(conn, &seg, now_ms,
           gn_fifo_max_enqueue(rx_fifo), &act); no conn: listener ->
           gn_tcp_listen_input; ACCEPT_SYN -> gn_tcp_syn_policy(listener):
             ACCEPT: alloc conn, gn_tcp_conn_init with gn_tcp_isn and
               gn_tcp_ts_offset, gn_tcp_passive_open (gn_tcp_half_open_gone
               when it leaves SYN_RCVD: ESTABLISHED/FORGET/CLOSED)
             COOKIE: gn_tcp_syncookie_synack -> send, keep nothing
             DROP: count
           an ACK at a listener that sent cookies: gn_tcp_syncookie_check
           first (ok: alloc conn, init with iss = ack - 1,
           gn_tcp_syncookie_open), else the RST of gn_tcp_listen_input;
           no listener: gn_tcp_closed_input
  act.flags, in this order:
    DELIVER   gn_fifo_enqueue_with_offset(rx, rx_offset, payload+rx_skip,
              rx_len); if rx_offset == 0 and it returned m > rx_len:
              gn_tcp_rcv_joined(conn, m - rx_len, &act) (adds flags)
              then notify the session (rx event) if the fifo's event was clear
    TX_ACKED  gn_fifo_dequeue_drop(tx, tx_acked)
    ESTABLISHED/PEER_FIN/RESET/REFUSED/CLOSED/FORGET -> session callbacks
              (connected|accepted / transport closing / reset / connect
              failed / transport closed + free / free silently)
    SEND_SYN  gn_tcp_make_syn; SEND_RST gn_tcp_make_rst (ports swapped
              from the segment when there is no conn)
    TX_MORE   loop gn_tcp_send_next(conn, now, gn_fifo_max_dequeue(tx),
              rx space, max_seg, &out) -> copy tx bytes [data_off,
              +data_len) (gn_fifo_peek) behind gn_tcp_write_out(&out,
              ports, hdr); max_seg > snd_mss where the egress does TSO
              (a GSO super-segment: a buffer chain, gso_size snd_mss)
    SEND_ACK/CHALLENGE_ACK (if nothing was sent) gn_tcp_make_ack with the
              rx fifo's ooo ranges (start - tail, length); DELACK: arm
              the delayed-ACK timer, whose expiry sends gn_tcp_make_ack
    SEND_PROBE gn_tcp_make_probe (zero-window probe)
    after the send loop: gn_tcp_timer_wanted(conn) -> arm the retransmit
              timer (it also probes a shut window: persist)
    RTX_ARM/RTX_STOP/TIME_WAIT/DELACK: the timer wheel; on expiry
              gn_tcp_rto_expired / gn_tcp_time_wait_expired /
              gn_tcp_delack_expired (same flags); a keepalive timer
              restarted on every segment received calls
              gn_tcp_keepalive_expired (SEND_PROBE, or RESET after
              ka_max_probes)
  app: gn_tcp_active_open (connect), gn_tcp_app_close, gn_tcp_app_reset,
       app reads: if the window opened by >= 1 MSS, gn_tcp_make_ack

Session-layer hookup (h-session's graphnet/session/types.pxd, session.pxd):
  the glue's connection is a struct whose first member is the session
  layer's gn_transport_connection_t and whose second is gn_tcp_conn_t
  (this package imports nothing from graphnet/session, so it builds and
  is tested without it). gn_transport_vft_t for TCP:
    listen     a gn_tcp_listener_t (backlog, cookies) + the endpoint
    connect    alloc, gn_tcp_conn_init (gn_tcp_isn, gn_tcp_ts_offset),
               gn_tcp_active_open, send gn_tcp_make_syn; the half-open
    close      gn_tcp_app_close, then push; reset: gn_tcp_app_reset
    push_tx    the gn_tcp_send_next loop over the tx fifo
    format     Connection.fields()' keys (state, snd_una/nxt, rcv_nxt,
               cwnd, ssthresh, srtt/rttvar/rto, sack blocks, retransmits)
  up-calls by action: ESTABLISHED -> gn_session_stream_accept (+notify)
  when PASSIVE, else gn_session_stream_connect_notify; REFUSED -> connect
  notify with an error; PEER_FIN -> transport_closing_notify; RESET ->
  transport_reset_notify; CLOSED -> transport_closed_notify then
  delete_notify; FORGET -> free (no session yet); DELIVER ->
  gn_session_enqueue_notify; TX_ACKED -> dequeue drop + dequeue notify.
"""
