"""Ctrl-C reaches a running loop, and a Python node that raises
KeyboardInterrupt drops its frame and stops the loop without leaking."""
import os
import signal
import threading
import time

import pytest

from graphnet import python_node
from graphnet.io.pg import PacketGenerator, Stream


@pytest.mark.parametrize("state", ["interrupt", "polling"])
def test_sigint_stops_a_running_loop(engine_factory, state):
    pg = PacketGenerator(state=state)
    eng = engine_factory([pg])
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        eng.run(10.0)
    assert time.monotonic() - t0 < 3.0
    assert not eng.running


def test_keyboard_interrupt_in_python_node_drops_frame_and_stops(engine_factory, udp_packet):
    @python_node("interrupter", next_nodes=["null"])
    def interrupter(frame):
        raise KeyboardInterrupt

    pg = PacketGenerator(next_node="interrupter")
    eng = engine_factory([pg, interrupter])
    pg.add_stream(Stream("s", [udp_packet()], count=10))
    eng.run(5.0)                     # returns: the node asked the loop to stop
    assert eng.error_count("interrupter", "python-exception") == 10
    assert eng.buffer_stats()["in_use"] == 0
