"""Neighbours flushed when an interface goes admin down (issue 10 item 5),
against the kernel in a namespace over a TAP: the entry learned from the
kernel's ping goes, a static entry stays, and after admin up the next ping
resolves afresh.
"""

import pytest

from graphnet.cli.registry import execute
from graphnet.io import host
from graphnet.nodes import ip4_host
from graphnet.testing.ip4 import tap_host

GN, PEER, STATIC = "10.236.0.1", "10.236.0.2", "10.236.0.77"


def ping(ns, n=2):
    return host.run_in_netns(ns, ["ping", "-c", str(n), "-i", "0.2", "-W", "2", GN], capture_output=True,
                             text=True, timeout=20).stdout


@pytest.mark.privileged(tools=("ping",))
def test_admin_down_flushes_dynamic_neighbours_keeps_static(engine_factory):
    with host.temporary_netns("gn-ad") as ns:
        eng, dev = tap_host(engine_factory, ns, f"{GN}/24", f"{PEER}/24")
        eng.start()
        try:
            execute_ = lambda line: eng.call(execute, eng, line)       # noqa: E731
            execute_(f"set ip neighbor {dev.name} {STATIC} 02:aa:00:00:00:77 static")
            assert "2 received" in ping(ns)
            table = ip4_host.ip4_neighbors(eng)
            assert table.lookup(dev.name, PEER)["state"] in ("reachable", "stale")
            execute_(f"set interface state {dev.name} down")
            assert table.lookup(dev.name, PEER) is None
            assert table.lookup(dev.name, STATIC)["static"]
            assert PEER not in execute_("show ip neighbors") and STATIC in execute_("show ip neighbors")
            execute_(f"set interface state {dev.name} up")
            assert "2 received" in ping(ns)
            assert table.lookup(dev.name, PEER) is not None
        finally:
            eng.stop()
