"""The app's half-close in the session layer (issue 14: shutdown SHUT_WR):
the transport's shutdown is programmed once, the session keeps its state
and goes on receiving, a close later is an ordinary close, and a close
or a transport end before it runs makes it moot."""
from test_session_state import Env, to_state


def test_shutdown_is_programmed_once_and_the_session_still_receives():
    env = Env()
    free0 = env.seg.stats()["bytes_free"]
    c, h = to_state(env, "READY")
    env.mt.clear_calls()
    env.layer.shutdown(h)
    env.layer.shutdown(h)                                  # again: nothing more
    d = env.layer.session(h)
    assert d["state"] == "READY" and "shut-wr" in d["flags"]
    assert env.mt.calls() == []                            # programmed, not yet run
    env.layer.run_ctrl()
    assert env.mt.calls() == [("shutdown", c)]
    env.layer.shutdown(h)
    env.layer.run_ctrl()
    assert env.mt.calls() == [("shutdown", c)]
    assert env.mt.rx(c, b"after our FIN") == 13            # the receive side is open
    env.mt.closing(c)                                      # the peer's FIN
    assert [e for e, _ in env.drain()] == ["accepted", "rx", "disconnected"]
    env.layer.close(h)                                     # the ordinary close
    env.layer.run_ctrl()
    assert env.mt.calls()[-1] == ("close", c)
    env.mt.closed(c)
    env.mt.deleted(c)
    assert [e for e, _ in env.drain()] == ["transport-closed", "cleanup", "cleanup"]
    assert env.layer.session(h) is None
    assert env.seg.stats()["bytes_free"] == free0


def test_shutdown_after_the_peer_closed_still_ends_our_side():
    env = Env()
    c, h = to_state(env, "TRANSPORT_CLOSING")              # CLOSE_WAIT: our FIN is still to send
    env.mt.clear_calls()
    env.layer.shutdown(h)
    env.layer.run_ctrl()
    assert env.mt.calls() == [("shutdown", c)]


def test_close_before_the_shutdown_runs_makes_it_moot():
    env = Env()
    c, h = to_state(env, "READY")
    env.mt.clear_calls()
    env.layer.shutdown(h)
    env.layer.close(h)
    env.layer.run_ctrl()
    assert env.mt.calls() == [("close", c)]


def test_shutdown_is_ignored_once_closed_or_on_a_listener():
    env = Env()
    for state in ("CLOSING", "APP_CLOSED", "TRANSPORT_CLOSED", "TRANSPORT_DELETED"):
        c, h = to_state(env, state)
        env.layer.run_ctrl()
        env.mt.clear_calls()
        env.layer.shutdown(h)
        env.layer.run_ctrl()
        assert ("shutdown", c) not in env.mt.calls(), state
        assert "shut-wr" not in (env.layer.session(h) or {"flags": ""})["flags"], state
    env.mt.clear_calls()
    env.layer.shutdown(env.lh)
    env.layer.run_ctrl()
    assert env.mt.calls() == []
    assert "shut-wr" not in env.layer.session(env.lh)["flags"]
