"""Test helpers for graphnet: a pytest plugin and packet builders.

Enable the fixtures in a ``conftest.py`` with::

    pytest_plugins = ["graphnet.testing.plugin"]

What the plugin gives a test:

- ``engine_factory``: builds ``graphnet.Engine`` objects and, at teardown,
  closes them and checks that every buffer is back in the pool and that no
  frame is left pending (see ``check_engine_clean``);
- ``pg_capture``: a factory wiring ``pg-input -> [nodes...] -> capture``
  (``PgCapture``), the usual shape of a node test;
- ``udp_packet``: the Scapy builder below, as a fixture.
"""
from graphnet.testing.packets import udp_packet, udp_packets
from graphnet.testing.plugin import PgCapture, check_engine_clean, LeakError

__all__ = ["udp_packet", "udp_packets", "PgCapture", "check_engine_clean", "LeakError"]
