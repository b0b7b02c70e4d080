"""The session layer: segments, byte fifos, message queues, sessions,
applications and app workers (issue 12).

STATUS (built bottom-up, each layer tested; see README "What does not
work yet" for the gaps):
  - segment: memfd segments with an offset allocator (done)
  - fifo: SPSC byte fifo, out-of-order ranges, segments, events,
    dequeue notifications, zero-copy slices (done)
  - msg_queue: fixed-size message ring, batch enqueue under one lock,
    eventfd on empty -> non-empty, full/busy answered and counted (done)
  - types.pxd: session, events, app messages (64-byte slots), the
    transport table (C function pointers)
  - session: per-thread pools, handles, 5-tuple and listener tables,
    VPP's state machine, app workers' pending events and the flush into
    their queues (or a builtin app's callback), shared listeners, half-open
    connects, worker removal (done; table-driven test of every transition)
  - mock_transport: the transport the tests drive (example of the table)
  - application: apps (name once, options checked), workers added and
    removed (only their sessions and half-opens go; reset if vanished),
    shared listeners, builtin callbacks, segments freed when the last
    session of a detached app is gone (done)
  - nodes/session_input.pyx: interrupt-mode flush of pending events, N per
    run, re-armed at once (budget) or a tick later (queue full) (done)
  - nodes/session_queue.pyx: app messages from the engine queue (eventfd),
    refused ones answered with an ERROR event, programmed closes, tx ring
    with a per-run budget, requeue to the back (done)
  - transport/udp.pyx: UDP sessions (datagram listeners, connected
    sessions), udp4-session rx node, tx through ip4-lookup (done)
  - apps/: builtin apps on the transport-generic session API only
    (apps/app_io.pxd): echo server and client (datagrams and streams),
    the cut-through echo pair, throughput source and sink; CLI (test echo
    server|client|pair, test throughput source|sink) and [[app]] (done)
  - nodes/session_host.py: the session nodes as one set (session-input and
    session-queue on the node kit, feature "session", + udp4-session); CLI
    (show session/app/app workers/app mq/session-input, clear session) in
    cli/commands.py + session/show.py (done)
  - trace: session-input records each event it flushes, session-queue each
    app message, tx push and sent packet (vlib's buffer-less
    gn_trace_event; nodes/session_trace.pxd) (done)
  - transport/cut_through.pyx: local sessions between apps of the engine
    (shared fifos, peer queues in the events, close/reset to the peer);
    app scope global/local/both (done)
  - buffer wait queue: a transport with no buffers subscribes the session
    to the pool's FIFO waiters (gn_session_wait_buffers); woken sessions
    go back on the tx ring; freed sessions leave the queue (done, UDP)
  - a closed connected UDP session releases its port on udp4-input; an
    app's close of a half-open waits for the connect's outcome (done)
  - benches: session-events, udp-echo (in memory), udp-echo-tap (kernel
    client over a TAP vs a kernel echo over veth), ct-throughput (two
    copies, and zero-copy), session-idle (perf/RESULTS.md)

NEXT:
  - session-events is 1.6x, below its 2x target (perf/RESULTS.md): the rest is
    the fifo enqueue into 1000 cold fifos and the event flag on its own
    cache line of the fifo header; a transport-side prefetch of the next
    packets' fifo headers is the next thing to try;
  - ct-throughput meets 0.5 of memcpy only with the zero-copy write/read
    (two copies: 0.44);
  - TCP (issue 13) fills types.pxd's gn_transport_vft_t; the app's
    "I read" message (GN_APP_MSG_RX_DONE, rx dequeue notification to the
    transport for window updates) is defined but not handled yet
    (builtin apps call apps/app_io.pxd gn_app_rx_done, which serves
    cut-through);
  - apps in other processes (issue 14): segments and queues are ready
    (offsets only, Segment.attach(fd)); a segment manager adding segments
    when one is full, and the attach socket, are not there.
"""
