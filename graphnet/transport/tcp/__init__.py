"""TCP transport (issue 13): the connection and its RFC 9293 state machine,
timers, congestion control and SACK scoreboard, as C (nogil) code with no
graph knowledge. The wire format is graphnet/wire/tcp.pxd; the graph glue
(tcp4-* nodes) and the session-layer hookup come later.

STATUS (keep current: another session continues from here)
- built+tested: graphnet/wire/tcp.pxd/.pyx (header, options parse/write,
  checksum, formatter) -- tests/test_tcp_wire.py
- next: connection struct + state machine (graphnet/transport/tcp/conn.pxd)
"""
