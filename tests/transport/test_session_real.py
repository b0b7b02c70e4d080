"""UDP sessions against the kernel's own stack, over a TAP whose kernel
side lives in a namespace this test creates (privileged: root and
/dev/net/tun). Kernel UDP sockets exchange datagrams with graphnet's
builtin echo server: byte-exact, 64 KB datagrams (fragmented both ways),
500 clients at once."""
import os
import select
import socket
import time

import pytest

from graphnet.io import host, tap
from graphnet.nodes import ip4_host, session_host
from graphnet.apps.echo import start_echo_server
from graphnet.testing.helpers import ns_socket, unique_ifname

pytestmark = pytest.mark.privileged

GN, PEER = "10.231.0.1", "10.231.0.2"


@pytest.fixture
def echo(engine_factory, netns):
    name = unique_ifname("gns")
    eng = engine_factory([ip4_host.NODES, session_host.NODES])
    dev = tap.TapDevice(eng, name, netns=netns, host_address=f"{PEER}/24")
    eng.add(dev)
    eng.build()
    ip4_host.set_interface_address(eng, name, f"{GN}/24")
    app = start_echo_server(eng, f"udp://{GN}/7777", rx_fifo_size=1 << 20, tx_fifo_size=1 << 20)
    eng.start()
    try:
        yield eng, netns, app
    finally:
        eng.stop()


def recv_all(socks, n_each, timeout=10.0):
    got = {s: [] for s in socks}
    by_fd = {s.fileno(): s for s in socks}
    poll = select.poll()                       # not select(): fds may be above 1024 in a long run
    for s in socks:
        poll.register(s, select.POLLIN)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(len(v) < n_each for v in got.values()):
        for fd, _ in poll.poll(200):
            s = by_fd[fd]
            got[s].append(s.recv(70000))
            if len(got[s]) >= n_each:
                poll.unregister(fd)
    return got


@pytest.mark.parametrize("size", [1, 1400, 8000, 65000])
def test_kernel_client_gets_its_datagram_back(echo, size):
    eng, ns, app = echo
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        payload = os.urandom(size)
        s.sendto(payload, (GN, 7777))
        got = recv_all([s], 1)[s]
        assert got == [payload]
    finally:
        s.close()


def test_500_clients_at_once(echo):
    eng, ns, app = echo
    socks = [ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM) for _ in range(500)]
    try:
        # ARP first: datagrams sent while the kernel resolves graphnet's MAC wait
        # in its small unresolved queue (unres_qlen_bytes) and the rest are dropped
        socks[0].sendto(b"warm-up", (GN, 7777))
        assert recv_all([socks[0]], 1)[socks[0]] == [b"warm-up"]
        for i, s in enumerate(socks):
            s.sendto(b"client %d" % i, (GN, 7777))
        got = recv_all(socks, 1, timeout=20)
        assert all(got[s] == [b"client %d" % i] for i, s in enumerate(socks))
        assert app.echo.stats()["datagrams"] >= 500
    finally:
        for s in socks:
            s.close()


def test_nc_u_gets_its_line_back(echo):
    """The kernel's own ``nc -u`` (OpenBSD netcat) as the client."""
    import shutil
    import subprocess
    if shutil.which("nc") is None:
        pytest.fail("nc (netcat-openbsd) is needed for this test")
    eng, ns, app = echo
    p = host.popen_in_netns(ns, ["nc", "-u", "-W", "1", "-w", "5", GN, "7777"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"hello graphnet\n")                  # stdin stays open: nc reads the network
        p.stdin.flush()
        out, _ = p.communicate(timeout=10)              # -W 1: nc ends after one datagram back
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == b"hello graphnet\n", (app.echo.stats(), _, eng.show("errors"))


def test_builtin_echo_client_against_a_kernel_udp_server(echo):
    """graphnet's echo client (connected UDP session, source address from
    the FIB) against a kernel UDP echo in the namespace: byte-exact,
    including datagrams fragmented both ways."""
    import threading
    from graphnet.apps.echo import start_echo_client
    from graphnet.bench.udp_sockets import echo_loop
    eng, ns, app = echo
    srv = ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind((PEER, 9007))
    t = threading.Thread(target=echo_loop, args=(srv.fileno(), 20.0, 1500), daemon=True)
    t.start()
    try:
        clients = [start_echo_client(eng, f"udp://{PEER}/9007", f"cli-{size}", count=20, size=size, window=4)
                   for size in (64, 9000)]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(c.echo.stats()["state"] != "done" for c in clients):
            time.sleep(0.05)
        for c in clients:
            st = c.echo.stats()
            assert (st["state"], st["rx_msgs"], st["mismatches"]) == ("done", 20, 0), st
    finally:
        t.join(timeout=5)
        srv.close()
