"""The vlib half of graphnet: buffers, frames, nodes, the main loop, timers,
counters and tracing."""
