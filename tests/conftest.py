"""The test suite mirrors the package: a test goes in the directory of the
graphnet package it tests (what it imports and asserts on most), as
``tests/<package>/test_<what>.py``; file names stay unique across the
suite (directories have no __init__.py: pytest imports each test module
by its name, and ``from test_x import ...`` works between files of one
directory).

  tests/vlib/       buffers, graph, loop, scheduler, timers, kit, trace, show, Python nodes
  tests/io/         devices (TAP, AF_PACKET, pcap), pg, interfaces, link events, io.host
  tests/nodes/      the IPv4 nodes (ethernet, ip4-*, arp, icmp, udp, ping, fault-inject),
                    the registry and the conformance of every node
  tests/fib/        routes, interface addresses, the neighbour table's flushes
  tests/wire/       packet formats and checksums (graphnet.wire)
  tests/cli/        commands, the control socket, `graphnet run`, the startup file (config)
  tests/session/    segments, fifos, message queues, sessions, apps and workers, session nodes
  tests/transport/  UDP sessions and TCP (test_session_udp, test_session_real, test_tcp_*;
                    test_tcp_wire goes to tests/wire/)
  tests/app/        applications in other processes (graphnet.app); tests/apps/: builtin apps
  tests/bench/      the benches' helpers and references; tests/fuzz/: the fuzzer
  tests/testing/    the pytest plugin (markers, namespace fixtures, node_benchmark)
  tests/tools/      graphnet.tools (layers; new_node is tested with the kit, in vlib/)

Fixtures shared by every directory are here (``host_engine``) and in the
plugin (graphnet.testing.plugin: engines with leak checks, ``pg_capture``,
``node_benchmark``, the privileged marker, ``netns``/``netns2``/
``quiet_netns``/``veth``).
"""
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
