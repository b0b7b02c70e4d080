"""TCP against the kernel through graphnet's own fault-inject node (issue
13: loss, reordering, duplication and corruption, both directions): the
fault-inject node sits on the TAP's rx path (the kernel's segments to
graphnet) and on its tx path (graphnet's to the kernel) at once, seeded.
Kernel client -> graphnet echo server, and graphnet client -> kernel echo
server: every transfer byte-exact (sha256), the fault-inject counters show
the faults and graphnet's TCP counters the recovery (retransmissions:
SACK/fast retransmit, timeouts). Corrupted frames (one bit flipped) are
dropped by a checksum (graphnet's tcp4-input, the kernel's TCP) and the
transfer still completes.

Each test prints the figures it saw (run with -s): fault-inject's
counters, graphnet's retransmits/timeouts/fast_retransmits, wall time."""
import hashlib
import json
import os
import time

import pytest

from graphnet.cli.registry import execute
from graphnet.testing.tcp import GraphnetClient, kernel_echo, kernel_echo_server, stats

pytestmark = pytest.mark.privileged(tun=True)

SERVER_PORT = 5555
# big enough for many losses (dozens of drops each way, more at 1%), small
# enough that 10% each way, where small windows leave most losses to the
# RTO (200 ms at least, backed off), still ends in seconds
SIZE = {1: 8 << 20, 5: 1 << 20, 10: 512 << 10}


def set_faults(eng, ifname, spec, seed, rx_spec=None):
    """Faults on the TAP's tx path and (rx_spec, or the same) its rx path,
    by the CLI's command. graphnet's TCP sends one MSS per frame here (TSO
    off): fault-inject acts on frames before the kernel segments them, so
    with TSO a tx drop would take a whole 64 KB super-segment, and a bit
    flipped in one would never be checked (the kernel takes a GSO frame
    for local delivery on trust: CHECKSUM_PARTIAL); the faults are meant
    for frames as they would be on a wire."""
    from graphnet.transport import tcp4
    eng.call(lambda: tcp4.transport(eng).configure(tso=False))
    execute(eng, f"set fault-inject {ifname} tx {spec} seed {seed}")
    execute(eng, f"set fault-inject {ifname} rx {rx_spec or spec} seed {seed}")


def fault_counters(eng) -> dict:
    """{"rx": counters, "tx": counters} of the TAP's fault-inject nodes."""
    return {r["direction"]: r["counters"] for r in json.loads(execute(eng, "show fault-inject --json"))}


def transfer(t, who, size, timeout=60.0) -> bytes:
    """size random bytes to an echo and back: kernel client -> graphnet
    echo server, or graphnet client -> kernel echo server (which must
    also have received every byte exactly). The bytes back."""
    payload = os.urandom(size)
    if who == "kernel-client":
        got = kernel_echo(t.ns, payload, timeout=timeout)
    else:
        with kernel_echo_server(t.ns, SERVER_PORT) as srv:
            cli = GraphnetClient(t.engine, SERVER_PORT, payload)
            out, _ = srv.communicate(timeout=timeout)
            n, digest = out.split()
            assert int(n) == size and digest == hashlib.sha256(payload).hexdigest(), "the kernel server's copy"
            assert cli.wait(timeout), f"{len(cli.got)} of {size} bytes back"
            got = bytes(cli.got)
    assert len(got) == size and hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    return got


def report(name, t0, eng, extra=None):
    st = stats(eng)
    figures = {k: st[k] for k in ("retransmits", "timeouts", "fast_retransmits", "segs_in", "segs_out")}
    figures.update(fault_counters(eng))
    figures.update(extra or {})
    print(f"\n{name}: {time.monotonic() - t0:.2f} s, {figures}")
    return st


@pytest.mark.parametrize("loss", [1, 5, 10])
@pytest.mark.parametrize("who", ["kernel-client", "graphnet-client"])
def test_transfer_byte_exact_through_fault_inject(echo, who, loss):
    """loss% dropped, 2% duplicated and 2% reordered on the TAP's rx and
    tx: the echo comes back byte-exact; fault-inject dropped segments each
    way, duplicated and reordered some, and graphnet retransmitted."""
    eng = echo.engine
    set_faults(eng, echo.ifname, f"drop {loss}% dup 2% reorder 2%", seed=loss)
    t0 = time.monotonic()
    transfer(echo, who, SIZE[loss])
    st = report(f"{who} loss {loss}%", t0, eng)
    fi = fault_counters(eng)
    assert fi["rx"]["dropped"] > 0 and fi["tx"]["dropped"] > 0, fi
    # a few hundred frames each way at 10%: some are duplicated and reordered (a packet
    # picked last in its frame has no next one to swap with: not counted)
    assert fi["rx"]["duplicated"] + fi["tx"]["duplicated"] > 0, fi
    assert fi["rx"]["reordered"] + fi["tx"]["reordered"] > 0, fi
    # graphnet lost its own segments (tx drops): it resent them, entering SACK recovery
    # on duplicate ACKs (fast_retransmits: recoveries entered) and, where too little
    # was in flight for those, on its RTO
    assert st["retransmits"] > 0 and st["fast_retransmits"] > 0, st


def _kernel_csum_errors(ns) -> int:
    """TcpInCsumErrors of the namespace's kernel (/proc/net/snmp)."""
    from graphnet.io import host
    lines = [l.split() for l in host.run_in_netns(ns, ["cat", "/proc/net/snmp"], capture_output=True, text=True,
                                                   check=True).stdout.splitlines() if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("InCsumErrors")])


@pytest.mark.parametrize("who", ["kernel-client", "graphnet-client"])
def test_corrupted_segments_are_dropped_by_the_checksum(echo, who):
    """One bit flipped in 0.5% of graphnet's frames and 2% of the kernel's
    (fewer: GSO super-frames): graphnet's tcp4-input drops those from the
    kernel as bad-checksum, the kernel those from graphnet (InCsumErrors),
    and the transfer completes byte-exact."""
    eng = echo.engine
    csum0 = _kernel_csum_errors(echo.ns)
    set_faults(eng, echo.ifname, "corrupt 0.5%", seed=3, rx_spec="corrupt 2%")
    t0 = time.monotonic()
    transfer(echo, who, 4 << 20)
    bad = eng.error_count("tcp4-input", "bad-checksum")
    kernel_bad = _kernel_csum_errors(echo.ns) - csum0
    report(f"{who} corrupt 0.5% tx, 2% rx", t0, eng, {"tcp4-input bad-checksum": bad, "kernel InCsumErrors": kernel_bad})
    fi = fault_counters(eng)
    assert fi["rx"]["corrupted"] > 0 and fi["tx"]["corrupted"] > 0, fi
    assert bad > 0 and kernel_bad > 0
    assert stats(eng)["retransmits"] > 0
