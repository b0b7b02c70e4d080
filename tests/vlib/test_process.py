"""Process nodes: cooperative Python tasks that Sleep, WaitEvent and are
signalled, run between loop iterations in the loop's thread."""
import threading
import time

import pytest

from graphnet import Sleep, WaitEvent, process_node
from graphnet.vlib.show import node_state_text


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


def test_sleep_resumes_after_the_delay_never_early(engine_factory):
    log = []

    @process_node("sleeper")
    def sleeper(engine):
        for _ in range(3):
            t0 = time.monotonic()
            yield Sleep(0.03)
            log.append(time.monotonic() - t0)
        engine.stop()                        # from the loop's thread: run() returns

    e = engine_factory([sleeper])
    e.run(5)
    assert len(log) == 3
    assert all(dt >= 0.03 for dt in log), log
    i = e.node_index("sleeper")
    assert e.processes[i].done
    c = e.main.node_counters()[i]
    assert c["calls"] == 4 and c["suspends"] == 3          # 3 yields, then return
    assert e.main.loop_stats()["timers_active"] == 0


def test_wait_event_gets_signals_in_order(engine_factory):
    got = []
    ready = threading.Event()

    @process_node("waiter")
    def waiter(engine):
        while True:
            ready.set()
            events = yield WaitEvent()
            got.append(events)
            if "bye" in events:
                return

    e = engine_factory([waiter]).build()
    e.start()
    assert ready.wait(5)
    e.signal_process("waiter", "a")
    assert wait_for(lambda: got == [["a"]])
    e.signal_process("waiter", "b")
    e.signal_process("waiter", "bye")
    assert wait_for(lambda: sum(got, []) == ["a", "b", "bye"])
    e.stop()
    assert e.processes[e.node_index("waiter")].done


def test_signals_during_sleep_are_kept_for_next_wait(engine_factory):
    got = []

    @process_node("proc")
    def proc(engine):
        yield Sleep(0.05)
        got.append((yield WaitEvent(timeout=1.0)))

    e = engine_factory([proc]).build()
    e.start()
    e.signal_process("proc", 1)              # arrives while it sleeps
    e.signal_process("proc", 2)
    assert wait_for(lambda: got)
    e.stop()
    assert got == [[1, 2]]


def test_wait_event_timeout_returns_empty(engine_factory):
    got = []

    @process_node("proc")
    def proc(engine):
        t0 = time.monotonic()
        events = yield WaitEvent(timeout=0.05)
        got.append((events, time.monotonic() - t0))
        engine.stop()

    e = engine_factory([proc])
    e.run(5)
    assert len(got) == 1
    events, dt = got[0]
    assert events == [] and dt >= 0.05


def test_signal_cancels_the_timeout(engine_factory):
    got = []

    @process_node("proc")
    def proc(engine):
        got.append((yield WaitEvent(timeout=0.1)))
        got.append((yield WaitEvent(timeout=0.1)))
        engine.stop()

    e = engine_factory([proc]).build()
    e.signal_process("proc", "x")            # before the loop runs: queued
    e.run(5)
    assert got == [["x"], []]
    assert e.main.loop_stats()["timers_active"] == 0


def test_processes_interleave(engine_factory):
    order = []

    @process_node("fast")
    def fast(engine):
        for i in range(4):
            yield Sleep(0.01)
            order.append("fast")

    @process_node("slow")
    def slow(engine):
        yield Sleep(0.025)
        order.append("slow")

    e = engine_factory([fast, slow])
    e.run(0.3)
    assert order.count("fast") == 4 and order.count("slow") == 1
    assert order.index("slow") >= 1          # fast ran meanwhile


def test_failing_process_stops_alone(engine_factory, caplog):
    ran = []

    @process_node("bad")
    def bad(engine):
        yield Sleep(0.001)
        raise RuntimeError("boom")

    @process_node("good")
    def good(engine):
        for _ in range(3):
            yield Sleep(0.01)
            ran.append(1)

    @process_node("wrong-yield")
    def wrong(engine):
        yield 42

    e = engine_factory([bad, good, wrong])
    e.run(0.3)
    assert len(ran) == 3
    assert e.processes[e.node_index("bad")].done
    assert e.processes[e.node_index("wrong-yield")].done
    assert "boom" in caplog.text


def test_process_state_text(engine_factory):
    @process_node("sleeper")
    def sleeper(engine):
        yield Sleep(10)

    @process_node("waiter")
    def waiter(engine):
        yield WaitEvent()

    @process_node("quitter")
    def quitter(engine):
        return
        yield

    e = engine_factory([sleeper, waiter, quitter])
    e.run_until_idle()
    counters = e.main.node_counters()
    text = {n: node_state_text(e, e.node_index(n), counters[e.node_index(n)])
            for n in ("sleeper", "waiter", "quitter")}
    assert text == {"sleeper": "time wait", "waiter": "event wait", "quitter": "done"}
    runtime = e.show("runtime")
    assert "time wait" in runtime and "event wait" in runtime


def test_signal_unknown_or_not_a_process(engine_factory):
    e = engine_factory([]).build()
    with pytest.raises(KeyError):
        e.signal_process("nobody", 1)
    with pytest.raises(ValueError, match="not a process"):
        e.signal_process("null", 1)


def test_process_can_control_the_engine(engine_factory):
    """A process runs in the loop thread: engine calls from it run at once."""
    from graphnet.io.pg import PacketGenerator, Stream
    from graphnet.testing import udp_packet
    pg = PacketGenerator(next_node="null", state="interrupt")
    stream = Stream("s", [udp_packet()], count=300)

    @process_node("driver")
    def driver(engine):
        yield Sleep(0.01)
        pg.add_stream(stream)
        yield Sleep(0.05)
        engine.stop()

    e = engine_factory([pg, driver])
    e.run(5)
    assert pg.stats() == {"s": 300}
    assert e.main.node_counters()[e.node_index("null")]["vectors"] == 300


def test_sleep_survives_a_timer_that_fires_before_the_python_deadline(engine_factory, monkeypatch):
    # regression: the deadline is taken in Python a little after the loop's
    # tick; under load the timer could fire first, and the process, not due
    # and still holding the fired handle, was never woken again.
    import graphnet.vlib.process as process_mod
    real = time.monotonic
    skew = {"left": 1}

    def skewed():                      # the first reading (the deadline) runs 0.1 s late
        if skew["left"]:
            skew["left"] -= 1
            return real() + 0.1
        return real()

    resumed = []

    @process_node("sleeper")
    def sleeper(engine):
        monkeypatch.setattr(process_mod.time, "monotonic", skewed)
        yield Sleep(0.05)
        monkeypatch.setattr(process_mod.time, "monotonic", real)
        resumed.append(real())

    eng = engine_factory([sleeper])
    t0 = real()
    while not resumed and real() - t0 < 3.0:
        eng.run(0.02)
    assert resumed, "the process was never woken"
    assert resumed[0] - t0 >= 0.14             # it slept to its (skewed) deadline
