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
    gn_trace_event; session/trace.pxd) (done)
  - transport/cut_through.pyx: local sessions between apps of the engine
    (shared fifos, peer queues in the events, close/reset to the peer);
    app scope global/local/both (done)
  - buffer wait queue: a transport with no buffers subscribes the session
    to the pool's FIFO waiters (gn_session_wait_buffers); woken sessions
    go back on the tx ring; freed sessions leave the queue (done, UDP)
  - segment_manager: per app, first segment at attach, another added when
    a session's fifos do not fit (the session layer's segment-full hook),
    up to max_segments; an added one freed by collect() when empty (done)
  - attach: the attach socket (issue 14): length-prefixed JSON, memfds
    and eventfds by SCM_RIGHTS, SO_PEERCRED, workers per connection
    (vanished when it closes: sessions reset, queues and segments freed),
    fork's worker-add with the app's secret, segment hand-out checked,
    SEGMENT_DEL notices (done)
  - nodes/app_queue.pyx: one app -> engine queue per worker of an app in
    another process, one eventfd; the queue names the worker (done);
    app_msg.pxd: message handling shared with session-queue, RX_DONE on
    cut-through sends the writer its dequeue notification, SHUTDOWN the
    app's half-close (the transports' ``shutdown``: TCP's FIN, the
    cut-through peer's end of stream)
  - graphnet/app: the app side (attach, fork hook, sockets, asyncio) (done)
  - a closed connected UDP session releases its port on udp4-input; an
    app's close of a half-open waits for the connect's outcome (done)
  - benches: session-events, udp-echo (in memory), udp-echo-tap (kernel
    client over a TAP vs a kernel echo over veth), ct-throughput (two
    copies, and zero-copy), session-idle (perf/RESULTS.md)

NEXT:
  - session-events is 1.5-2.0x (median 1.74), below its 2x target
    (perf/RESULTS.md). The event flags now sit beside the fifo's tail and
    the enqueue is inline; what is left is the enqueue itself, 8 x 64
    bytes into 1000 cold fifos, which both cases pay and which is about
    3/4 of graphnet's time (no notification at all would give about
    2.2x). Prefetching the next session's fifo header lines gave nothing;
    prefetching the ring lines at its tail cut 80-100 ns per session in
    both cases (the reference's more). udp4-session does not prefetch
    yet: it would need the frame's session lookups first, then the
    enqueues with the ring lines of packet i+1 prefetched. The bench
    drives the fifos and the notify directly, not udp4-session;
  - ct-throughput meets 0.5 of memcpy only with the zero-copy write/read
    (two copies: 0.44);
  - TCP (issue 13) fills gn_transport_vft_t (graphnet/transport/tcp4:
    stream_tx, its push owns the tx event); the app's "I read" message
    (GN_APP_MSG_RX_DONE) on a non-cut-through session runs its push
    (graphnet/session/app_msg.pxd), where TCP sends its window update
    (builtin apps' gn_app_rx_done serves cut-through only: they kick tx);
  - apps in other processes (issue 14): app-ct-throughput is 0.4-0.8x a
    Unix socket (target 3x) and app-udp-rr 0.4-0.8x the kernel (target
    1x): move the app side's per-call path to Cython (a cdef socket over
    gn_fifo_t and the queues) and let a cut-through writer signal the
    peer's queue directly (its segment mapped) instead of through
    session-queue; the idle figure (0.2% of a core) is measured by hand,
    not by a bench; the engine's fifo operations read the fifo's size from
    its header in the app's segment: keep an engine-local geometry per
    session fifo (as gn_mq_handle_t does for queues) before hostile apps.
"""
