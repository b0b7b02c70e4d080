"""Small helpers shared by the test suites (and handy in scripts)."""
from __future__ import annotations

import contextlib
import struct
import time
import uuid
from typing import Iterator

from graphnet.vlib.buffer import BUFFER_STRIDE
from graphnet.vlib.node import PythonNode


def wait_for(cond, timeout: float = 5.0, step: float = 0.01) -> bool:
    """Poll cond() until it is true or timeout passes; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def unique_ifname(prefix: str = "gnt") -> str:
    """An interface name nobody else uses: prefix + 7 hex digits (keep the
    prefix to 8 characters: IFNAMSIZ is 16 with the NUL)."""
    return f"{prefix}{uuid.uuid4().hex[:7]}"


@contextlib.contextmanager
def quiet_netns(prefix: str = "gn-test") -> Iterator[str]:
    """A fresh namespace in which the kernel sends nothing unasked (IPv6
    off for every interface), removed afterwards."""
    from graphnet.io import host
    with host.temporary_netns(prefix) as name:
        for conf in ("all", "default"):
            host.run_in_netns(name, ["sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1"], check=True)
        yield name


def loop_cpu(engine, seconds: float = 1.0) -> float:
    """CPU time of a running engine's loop thread over `seconds` of wall
    time, as a fraction of one core (read in the loop's own thread)."""
    c0 = engine.call(engine.main.thread_cpu_ns)
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = engine.call(engine.main.thread_cpu_ns)
    return (c1 - c0) / 1e9 / (time.monotonic() - t0)


_SW_IF_TX_OFFSET = 20          # gn_buffer_t.sw_if_index[GN_TX]


class SetTx(PythonNode):
    """Sets sw_if_index[TX] of every packet and hands it to interface-output."""
    name = "set-tx"
    next_nodes = ("interface-output",)

    def __init__(self, engine, sw_if_index):
        self.engine = engine
        self.sw_if_index = sw_if_index

    def process(self, frame):
        arena = self.engine.pool.arena
        for bi in frame.buffer_indices:
            struct.pack_into("<I", arena, bi * BUFFER_STRIDE + _SW_IF_TX_OFFSET, self.sw_if_index)
        return 0


def ns_socket(ns, family, type_, proto=0):
    """A socket living in network namespace ns (pyroute2 creates it in a
    short-lived child and passes the fd back)."""
    from pyroute2 import netns as pnetns
    return pnetns.create_socket(ns, family, type_, proto, flags=0)


def kernel_tcp_transfer(client_ns, server_ns, server: tuple, data: bytes, timeout: float = 20.0) -> tuple:
    """Kernel TCP from client_ns to server (ip, port) in server_ns: the
    client sends data and closes, the server reads to the end. Returns
    (bytes read, their sha256 digest)."""
    import hashlib
    import socket
    import threading
    srv = ns_socket(server_ns, socket.AF_INET, socket.SOCK_STREAM)
    cli = ns_socket(client_ns, socket.AF_INET, socket.SOCK_STREAM)
    h, n = hashlib.sha256(), 0
    try:
        srv.bind(server)
        srv.listen(1)
        srv.settimeout(timeout)
        cli.settimeout(timeout)
        t = threading.Thread(target=lambda: (cli.connect(server), cli.sendall(data), cli.close()))
        t.start()
        conn, _ = srv.accept()
        conn.settimeout(timeout)
        while n < len(data):
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        conn.close()
        t.join(timeout)
    finally:
        srv.close()
        cli.close()
    return n, h.digest()


def packet_socket(ns, ifname):
    """An AF_PACKET socket (all protocols) bound to interface ifname of
    namespace ns, with an 8 MB receive buffer (SO_RCVBUFFORCE, root) so
    that it holds every frame a test sends."""
    import socket
    s = ns_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))     # ETH_P_ALL
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    s.bind((ifname, 0))
    return s


HYPOTHESIS_PROFILE_ENV = "GRAPHNET_HYPOTHESIS"
FUZZ_SCALE = 25


def examples(n: int) -> int:
    """max_examples for a Hypothesis property: n in the normal run (CI),
    n x 25 under the ``fuzz`` profile (``GRAPHNET_HYPOTHESIS=fuzz``, which
    ``make fuzz`` sets)."""
    import os
    return n * FUZZ_SCALE if os.environ.get(HYPOTHESIS_PROFILE_ENV) == "fuzz" else n


def app_msg(**fields) -> bytes:
    """One app -> engine message (graphnet.session.session MSG_FORMAT) with
    the given fields, the others 0: what an app writes to the engine's queue."""
    import struct
    from graphnet.session.session import MSG_FIELDS, MSG_FORMAT
    d = dict.fromkeys(MSG_FIELDS, 0)
    d.update(fields)
    return struct.pack(MSG_FORMAT, *(d[f] for f in MSG_FIELDS))


def error_rows_per_node(engine) -> dict:
    """{node name: total of its ``error`` rows in show errors} (rows with a
    count only): what graphnet.vlib.show.node_drops (show runtime's drops)
    must equal when every drop is counted once, at the node that drops."""
    from graphnet.vlib.show import error_rows
    out = {}
    for r in error_rows(engine):
        if r["severity"] == "error":
            out[r["node"]] = out.get(r["node"], 0) + r["count"]
    return out
