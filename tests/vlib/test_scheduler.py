"""The main loop's scheduling: polling / interrupt / disabled inputs,
interrupts from other threads, run(seconds), run_until_idle, adaptive mode,
and an idle engine that really sleeps."""
import threading
import time

import pytest

from graphnet.io.pg import PacketGenerator, Stream
from graphnet.testing import udp_packet
from graphnet.vlib.main import STATE_DISABLED, STATE_INTERRUPT, STATE_POLLING


def counters(engine, name):
    return engine.main.node_counters()[engine.node_index(name)]


def wait_for(pred, timeout=5.0, step=0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


@pytest.fixture
def three_inputs(engine_factory):
    """Three empty packet generators, one per state."""
    pgs = [PacketGenerator(name=f"in-{s}", next_node="null", state=s)
           for s in ("polling", "interrupt", "disabled")]
    return engine_factory(pgs).build()


def test_initial_states(three_inputs):
    e = three_inputs
    assert counters(e, "in-polling")["state"] == STATE_POLLING
    assert counters(e, "in-interrupt")["state"] == STATE_INTERRUPT
    assert counters(e, "in-disabled")["state"] == STATE_DISABLED
    assert e.main.loop_stats()["polling_inputs"] == 1


def test_polling_every_iteration_interrupt_only_when_pending_disabled_never(three_inputs):
    e = three_inputs
    # the pg raises its own interrupt once at setup: one call
    e.run_until_idle()
    assert counters(e, "in-interrupt")["calls"] == 1
    loops0 = e.main.loop_stats()["loops"]
    poll0 = counters(e, "in-polling")["calls"]
    e.run(0.05)                              # many iterations (something polls)
    loops = e.main.loop_stats()["loops"] - loops0
    assert loops > 10
    assert counters(e, "in-polling")["calls"] - poll0 == loops
    assert counters(e, "in-interrupt")["calls"] == 1          # no interrupt: not called
    for k in range(1, 4):
        e.set_interrupt_pending("in-interrupt")
        e.set_interrupt_pending("in-interrupt")                # raised twice, called once
        e.run_until_idle()
        assert counters(e, "in-interrupt")["calls"] == 1 + k
    irqs = counters(e, "in-disabled")["interrupts"]
    e.set_interrupt_pending("in-disabled")
    e.run(0.02)
    assert counters(e, "in-disabled")["calls"] == 0
    assert counters(e, "in-disabled")["interrupts"] == irqs + 1   # seen, but not run


def test_interrupt_only_when_pending_without_polling(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.run(0.1)                                # nothing polls: the loop sleeps
    assert counters(e, "irq")["calls"] == 1   # the setup interrupt only
    assert e.main.loop_stats()["sleeps"] >= 1


def test_state_changes_take_effect(three_inputs):
    e = three_inputs
    e.set_node_state("in-disabled", "polling")
    e.set_node_state("in-polling", "disabled")
    e.run_until_idle()
    before = counters(e, "in-polling")["calls"]
    loops0 = e.main.loop_stats()["loops"]
    calls0 = counters(e, "in-disabled")["calls"]
    e.run(0.02)
    assert counters(e, "in-polling")["calls"] == before
    assert counters(e, "in-disabled")["calls"] - calls0 == e.main.loop_stats()["loops"] - loops0
    with pytest.raises(ValueError, match="not an input node"):
        e.set_node_state("null", "polling")
    with pytest.raises(ValueError, match="state 'sleepy'"):
        e.set_node_state("in-polling", "sleepy")


def test_interrupt_from_another_thread_wakes_sleeping_loop(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.start()
    assert wait_for(lambda: counters(e, "irq")["calls"] == 1)
    time.sleep(0.3)                           # the loop is asleep (up to 1 s per sleep)
    sleeps = e.main.loop_stats()["sleeps"]
    assert sleeps >= 1
    t0 = time.monotonic()
    threading.Thread(target=e.set_interrupt_pending, args=("irq",)).start()
    assert wait_for(lambda: counters(e, "irq")["calls"] == 2, timeout=3)
    # woken by the eventfd, not by the 1 s sleep running out
    assert time.monotonic() - t0 < 0.5
    e.stop()
    assert counters(e, "irq")["calls"] == 2


def test_stream_added_from_another_thread_runs(engine_factory):
    pg = PacketGenerator(name="pg-input", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.start()
    time.sleep(0.05)
    pg.add_stream(Stream("s", [udp_packet()], count=1000))     # goes through engine.call
    assert wait_for(lambda: pg.stats()["s"] == 1000)
    e.stop()
    assert counters(e, "pg-input")["vectors"] == 1000


def test_run_seconds_returns_after_about_that_long(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    t0 = time.monotonic()
    e.run(0.25)                               # sleeping loop
    dt = time.monotonic() - t0
    assert 0.24 <= dt < 0.8
    e.set_node_state("irq", "polling")
    t0 = time.monotonic()
    loops = e.run(0.1)                        # spinning loop
    dt = time.monotonic() - t0
    assert 0.099 <= dt < 0.6 and loops > 1


def test_stop_from_another_thread_ends_run(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    threading.Timer(0.1, e.stop).start()
    t0 = time.monotonic()
    e.run(10)
    assert time.monotonic() - t0 < 3


def test_run_until_idle_stops(engine_factory):
    pg = PacketGenerator(next_node="null")
    e = engine_factory([pg]).build()
    pg.add_stream(Stream("s", [udp_packet()], count=5000))
    t0 = time.monotonic()
    e.run_until_idle(timeout=10)
    assert time.monotonic() - t0 < 5
    assert pg.stats()["s"] == 5000
    assert counters(e, "null")["vectors"] == 5000
    loops = e.run_until_idle()                # nothing left: returns at once
    assert loops == 1


def test_run_until_idle_times_out_on_endless_work(engine_factory):
    pg = PacketGenerator(next_node="null")
    e = engine_factory([pg]).build()
    pg.add_stream(Stream("s", [udp_packet()]))            # no count: never idle
    t0 = time.monotonic()
    e.run_until_idle(timeout=0.2)
    assert 0.19 <= time.monotonic() - t0 < 2
    assert pg.stats()["s"] > 0


def test_cannot_run_in_two_threads(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.start()
    with pytest.raises(RuntimeError):
        e.run(0.01)
    with pytest.raises(RuntimeError):
        e.start()
    e.stop()
    e.run(0.01)                               # fine once stopped


def test_call_runs_in_loop_thread_and_returns(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.start()
    loop_tid = e.call(threading.get_ident)
    assert loop_tid != threading.get_ident()
    assert e.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        e.call(lambda: 1 / 0)
    e.stop()


# --- adaptive mode -------------------------------------------------------------

def test_adaptive_switches_both_ways(engine_factory):
    pg = PacketGenerator(next_node="null", state="interrupt", adaptive=True)
    e = engine_factory([pg]).build()
    c = lambda: counters(e, "pg-input")
    assert c()["adaptive"] and c()["state"] == STATE_INTERRUPT
    # light load: a slow stream never fills a call -> stays in interrupt mode
    pg.add_stream(Stream("slow", [udp_packet()], count=10, rate=200))
    e.run(0.08)
    assert pg.stats()["slow"] == 10
    assert c()["mode_switches"] == 0 and c()["state"] == STATE_INTERRUPT
    assert e.main.loop_stats()["polling_inputs"] == 0
    # load rises: full frames -> polling
    pg.add_stream(Stream("fast", [udp_packet()]))
    e.run(0.05)
    assert c()["mode_switches"] == 1 and c()["state"] == STATE_POLLING
    assert e.main.loop_stats()["polling_inputs"] == 1
    # load falls: the stream stops -> back to interrupt after a window of empty polls
    pg.enable("fast", False)
    e.run(0.05)
    assert c()["mode_switches"] == 2 and c()["state"] == STATE_INTERRUPT
    assert e.main.loop_stats()["polling_inputs"] == 0
    calls = c()["calls"]
    e.run(0.05)
    assert c()["calls"] == calls              # idle in interrupt mode: not called
    # and up again
    pg.enable("fast", True)
    e.run(0.05)
    assert c()["mode_switches"] == 3 and c()["state"] == STATE_POLLING
    pg.enable("fast", False)
    e.run(0.05)
    assert c()["mode_switches"] == 4 and c()["state"] == STATE_INTERRUPT


def test_adaptive_returns_to_interrupt_when_the_stream_finishes(engine_factory):
    pg = PacketGenerator(next_node="null", state="interrupt", adaptive=True)
    e = engine_factory([pg]).build()
    pg.add_stream(Stream("burst", [udp_packet()], count=20000))
    e.run(0.2)
    c = counters(e, "pg-input")
    assert pg.stats()["burst"] == 20000
    assert c["mode_switches"] == 2 and c["state"] == STATE_INTERRUPT
    # while polling the node ran with full frames: far fewer calls than packets
    assert c["vectors"] == 20000 and c["calls"] < 20000 // 32 + 100
    assert e.main.loop_stats()["sleeps"] >= 1               # and then the loop slept


def test_adaptive_via_set_node_state_and_thresholds(engine_factory):
    pg = PacketGenerator(next_node="null", state="polling")
    e = engine_factory([pg]).build()
    e.set_node_state("pg-input", "adaptive")
    assert counters(e, "pg-input")["adaptive"]
    assert counters(e, "pg-input")["state"] == STATE_INTERRUPT
    with pytest.raises(ValueError, match="hysteresis"):
        e.main.set_adaptive_thresholds(4, 32, 64)
    e.main.set_adaptive_thresholds(300, 4, 64)              # a call never reaches 300
    pg.add_stream(Stream("s", [udp_packet()], count=3000))
    e.run(0.05)
    assert pg.stats()["s"] == 3000
    assert counters(e, "pg-input")["mode_switches"] == 0
    e.set_node_state("pg-input", "polling")                  # explicit state: not adaptive
    assert not counters(e, "pg-input")["adaptive"]


def test_pg_adaptive_flag_reaches_the_node(engine_factory):
    # regression: PacketGenerator(adaptive=True) was accepted and ignored
    pg = PacketGenerator(next_node="null", state="interrupt", adaptive=True)
    e = engine_factory([pg]).build()
    assert counters(e, "pg-input")["adaptive"] is True


# --- an idle engine sleeps -----------------------------------------------------

def test_idle_interrupt_engine_uses_almost_no_cpu(engine_factory):
    pgs = [PacketGenerator(name=f"irq-{i}", next_node="null", state="interrupt") for i in range(3)]
    e = engine_factory(pgs).build()
    e.start()
    time.sleep(0.05)
    cpu0 = e.call(e.main.thread_cpu_ns)       # read in the loop's own thread
    t0 = time.monotonic()
    time.sleep(1.0)
    cpu1 = e.call(e.main.thread_cpu_ns)
    wall = time.monotonic() - t0
    e.stop()
    assert wall >= 0.95
    assert (cpu1 - cpu0) / 1e9 < 0.05 * wall, f"idle loop used {(cpu1 - cpu0) / 1e6:.1f} ms of CPU in {wall:.2f}s"


# --- the busy-poll window ------------------------------------------------------

def test_after_work_the_loop_busy_polls_for_the_window_then_sleeps(engine_factory):
    pg = PacketGenerator(next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.main.set_busy_poll(20000)                              # 20 ms
    e.run(0.05)                                              # the setup call: no packet, no window
    assert e.main.loop_stats()["busy_polls"] == 0
    pg.add_stream(Stream("s", [udp_packet()], count=100))
    t0 = time.monotonic()
    e.run(0.3)
    assert time.monotonic() - t0 >= 0.29
    loop = e.main.loop_stats()
    assert pg.stats()["s"] == 100
    assert loop["busy_polls"] > 0 and loop["busy_poll_us"] == 20000
    # the window closed and the loop slept for the rest of the run; had it
    # kept polling, 0.3 s would be far more looks than 20 ms allows
    polls = loop["busy_polls"]
    sleeps = loop["sleeps"]
    e.run(0.2)
    assert e.main.loop_stats()["busy_polls"] == polls
    assert e.main.loop_stats()["sleeps"] > sleeps


def test_busy_poll_off_sleeps_at_once_after_work(engine_factory):
    pg = PacketGenerator(next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.main.set_busy_poll(0)
    pg.add_stream(Stream("s", [udp_packet()], count=100))
    e.run(0.1)
    assert pg.stats()["s"] == 100
    assert e.main.loop_stats()["busy_polls"] == 0 and e.main.loop_stats()["sleeps"] >= 1


def test_busy_poll_window_is_bounded(engine_factory):
    e = engine_factory([PacketGenerator(next_node="null", state="interrupt")]).build()
    for bad in (-1, 100001, 1.5, "50"):
        with pytest.raises(ValueError, match="busy-poll window"):
            e.main.set_busy_poll(bad)


def test_thread_cpu_clock_sees_a_busy_loop(engine_factory):
    # the measurement above is meaningful: a polling loop does burn its CPU
    pg = PacketGenerator(name="poll", next_node="null", state="polling")
    e = engine_factory([pg]).build()
    e.start()
    time.sleep(0.02)
    cpu0 = e.call(e.main.thread_cpu_ns)
    time.sleep(0.3)
    cpu1 = e.call(e.main.thread_cpu_ns)
    e.stop()
    assert (cpu1 - cpu0) / 1e9 > 0.05


def _run_until(e, pred, timeout=5.0):
    """Run the loop in short slices until pred() holds (bounded)."""
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        e.run(0.02)
    return pred()


def test_schedule_interrupt_fires_and_cancels(engine_factory):
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.run_until_idle()
    i = e.node_index("irq")
    t0 = time.monotonic()
    e.main.schedule_interrupt(i, 0.3)
    e.run_until_idle()                        # a pending timer is not work: returns at once
    assert counters(e, "irq")["calls"] == 1
    assert _run_until(e, lambda: counters(e, "irq")["calls"] == 2)
    assert time.monotonic() - t0 >= 0.3        # never early
    assert e.main.loop_stats()["timers_active"] == 0
    h = e.main.schedule_interrupt(i, 0.02)
    e.main.cancel_timer(h)
    e.run(0.06)
    assert counters(e, "irq")["calls"] == 2


def test_schedule_interrupt_with_negative_delay_fires_next_tick(engine_factory):
    # regression: a negative delay was cast to an unsigned tick count and
    # the timer (almost) never fired
    pg = PacketGenerator(name="irq", next_node="null", state="interrupt")
    e = engine_factory([pg]).build()
    e.run_until_idle()
    e.main.schedule_interrupt(e.node_index("irq"), -0.5)
    assert _run_until(e, lambda: counters(e, "irq")["calls"] == 2, timeout=2.0)
    assert e.main.loop_stats()["timers_active"] == 0
