"""The session layer: segments, byte fifos, message queues, sessions,
applications and app workers (issue 12).

STATUS (work in progress, built bottom-up, each layer tested):
  - segment: memfd segments with an offset allocator (done)
  - fifo: SPSC byte fifo, out-of-order ranges, segments, events,
    dequeue notifications, zero-copy slices (done)
  - msg_queue: fixed-size message ring, batch enqueue under one lock,
    eventfd on empty -> non-empty, full/busy answered and counted (done)
"""
