"""TCP on the session layer without a kernel peer: the startup file's
[[app]] and the CLI start a TCP echo server whose listener the transport
holds; the transport's settings and errors."""
import pytest

from graphnet.session.application import session_manager
from graphnet.transport import tcp4


def test_startup_file_tcp_app_listens():
    from graphnet import config
    cfg = config.loads('[ip]\nenabled = true\n[[app]]\ntype = "echo-server"\nuri = "tcp://0.0.0.0/1234"\n')
    eng = config.build_engine(cfg)
    try:
        assert list(session_manager(eng).by_name) == ["echo-server tcp://0.0.0.0/1234"]
        ls = eng.call(lambda: tcp4.transport(eng).listeners())
        assert [(l["local"], l["half_open"]) for l in ls] == [("0.0.0.0:1234", 0)]
    finally:
        eng.close()


def test_configure_checks_its_values():
    from graphnet import config
    eng = config.build_engine(config.loads("[ip]\nenabled = true\n[[app]]\ntype = \"echo-server\"\n"
                                           "uri = \"tcp://0.0.0.0/1\"\n"))
    try:
        t = tcp4.transport(eng)
        with pytest.raises(ValueError, match="congestion control"):
            t.configure(cc="vegas")
        with pytest.raises(ValueError, match="time-wait"):
            t.configure(time_wait_ms=10 ** 9)
        t.configure(cc="newreno", time_wait_ms=500)
        assert t.config()["cc"] == "newreno" and t.config()["time_wait_ms"] == 500
    finally:
        eng.close()
