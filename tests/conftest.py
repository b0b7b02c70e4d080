pytest_plugins = ["graphnet.testing.plugin", "pytester"]

import pytest


@pytest.fixture
def host_engine(engine_factory):
    """The IPv4 host graph with one capture interface, if0 = 10.0.0.1/24 (02:00:00:00:00:01)."""
    from graphnet.nodes import ip4_host
    from graphnet.testing.ip4 import CaptureInterface
    e = engine_factory([ip4_host.NODES])
    e.add([CaptureInterface(e, "if0", "02:00:00:00:00:01")])
    e.build()
    ip4_host.set_interface_address(e, "if0", "10.0.0.1/24")
    return e
