"""Fixtures of the TCP tests against the kernel (test_tcp_real,
test_tcp_faults): the TAP echo setup of graphnet.testing.tcp."""
import pytest

from graphnet.testing.tcp import tap_echo


@pytest.fixture
def echo(request, engine_factory):
    """graphnet.testing.tcp.TapEcho (engine, ns, app, ifname): graphnet's
    echo server on GN:PORT over a TAP, the kernel side in a fresh
    namespace; needs @pytest.mark.privileged on the test."""
    if request.node.get_closest_marker("privileged") is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the echo fixture needs @pytest.mark.privileged")
    with tap_echo(engine_factory) as t:
        yield t
