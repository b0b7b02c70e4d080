"""The kernel references of the TCP benches (graphnet.bench.tcp_ref), in
short runs (about 1 s each): the bytes a sender wrote all arrive, the CRR
client and the echo server count the same connections, nftables drops
about 1% of the data direction, the namespaces go afterwards; graphnet's
side of each case (a TAP into a namespace) really moves the bytes and the
connections; a case that raises NotBuilt says so plainly (no figure, no
ratio). What these runs measure is not asserted (benchmarks, not tests)."""
import argparse
import json
import subprocess
import sys

import pytest

from graphnet.bench import tcp_ref
from graphnet.io import host


def _tref_namespaces():
    return [n for n in host.list_netns() if n.startswith("gn-tref")]


@pytest.mark.privileged(tun=False)
def test_bulk_reference_delivers_every_byte_and_cleans_up():
    before = _tref_namespaces()
    r = tcp_ref.kernel_bulk(1.0)
    assert r["bytes"] > 0 and r["gbps"] > 0 and 0.5 < r["seconds"] < 5
    assert 0 < r["sender_cpu"] <= 1.05              # one thread's CPU time over its wall time
    assert _tref_namespaces() == before


@pytest.mark.privileged(tun=False)
def test_crr_reference_counts_connections_on_both_sides():
    with tcp_ref.veth_pair() as p:
        server = tcp_ref.Program(p.ns_b, "echo", p.addr_b, "5202", "6", "300")
        try:
            server.ready()
            client = tcp_ref.Program(p.ns_a, "crr", p.addr_b, "5202", "5", "300")
            try:
                c = client.result(20)
            finally:
                client.close()
            s = server.result(20)                # the server stops at its 300th connection
        finally:
            server.close()
    assert c == {"connections": 300, "ns": c["ns"], "errors": 0}
    assert s == {"connections": 300, "bytes": 300 * 8}
    r = tcp_ref.kernel_crr(1.0, 100_000)
    assert r["connections"] > 0 and r["errors"] == 0 and r["connections_per_s"] > 0


@pytest.mark.privileged(tun=False, tools=("nft",))
def test_lossy_reference_drops_about_one_percent_and_still_delivers():
    r = tcp_ref.kernel_bulk(1.0, loss_percent=1)
    assert r["bytes"] > 0 and r["dropped"] > 0           # kernel_bulk checked: every byte arrived
    share = r["dropped"] / r["ingress_packets"]
    assert 0.002 < share < 0.03, r                       # 1% of the packets at B's ingress


def test_loss_refuses_a_bad_share():
    for bad in (0, 100):
        with pytest.raises(ValueError, match="1..99"):
            with tcp_ref.ingress_loss("nowhere", "x", bad):
                pass


def test_graphnet_rows_say_not_built_and_plug_in_per_case(monkeypatch):
    ref = {"gbps": 10.0}

    def not_built(opts):
        raise tcp_ref.NotBuilt("no such thing yet")
    monkeypatch.setitem(tcp_ref.GRAPHNET["tcp-bulk"], "rx", not_built)
    monkeypatch.setitem(tcp_ref.GRAPHNET["tcp-bulk"], "tx", lambda opts: {"gbps": 25.0})
    rx, tx = tcp_ref.graphnet_rows("tcp-bulk", argparse.Namespace(), ref, "kernel-veth")
    assert rx == {"case": "rx", "built": False, "note": "no such thing yet", "against": "kernel-veth"}
    assert tx["case"] == "tx" and tx["ratio"] == 2.5 and tx["targets"] == {">=20Gbit/s": True, ">=1.0x": True}


def _opts(seconds=1.0):
    return argparse.Namespace(seconds=seconds, packets=0)


@pytest.mark.privileged(tun=True)
def test_graphnet_bulk_rx_reads_every_byte_the_kernel_sent(monkeypatch):
    made = []
    create = host.create_netns
    monkeypatch.setattr(host, "create_netns", lambda name, *a, **k: (made.append(name), create(name, *a, **k))[1])
    r = tcp_ref.graphnet_bulk_rx(_opts())            # raises unless the sink read every byte sent
    assert r["bytes"] > 1 << 20 and r["tcp"]["bytes_in"] == r["bytes"]
    assert 0 < r["sender_cpu"] <= 1.05
    est = r["tcp4_established"]
    assert est["vectors"] > 0 and est["clocks_per_packet"] > 0
    assert len(made) == 1 and made[0] not in host.list_netns()      # the bench's namespace is gone


@pytest.mark.privileged(tun=True)
def test_graphnet_bulk_tx_reaches_the_kernel_receiver():
    r = tcp_ref.graphnet_bulk_tx(_opts())
    assert r["bytes"] > 1 << 20 and r["source_bytes"] >= r["bytes"] and r["tcp"]["bytes_out"] >= r["bytes"]


@pytest.mark.privileged(tun=True)
def test_graphnet_crr_echoes_every_connection():
    r = tcp_ref.graphnet_crr(_opts())
    assert r["connections"] > 0 and r["errors"] == 0
    assert r["echoed_bytes"] >= 8 * r["connections"] and r["tcp"]["passive_opens"] >= r["connections"]
    nodes = r["clocks_per_connection"]
    assert any(n.startswith("tap-output-") for n in nodes) and "tcp4-input" in nodes


@pytest.mark.privileged(tun=True, tools=("nft",))
def test_graphnet_lossy_rx_recovers_from_the_drops():
    r = tcp_ref.graphnet_lossy_rx(_opts())           # raises unless every byte arrived
    assert r["bytes"] > 0 and r["dropped"] > 0 and r["tcp"]["bytes_in"] == r["bytes"]


@pytest.mark.privileged(tun=True)
def test_bench_command_json_rows():
    out = subprocess.run([sys.executable, "-m", "graphnet", "bench", "tcp-crr", "--json", "--seconds", "1"],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["case"] for r in rows] == ["kernel-veth", "graphnet"]
    assert rows[0]["connections_per_s"] > 0 and "ratio" not in rows[0]
    assert rows[1]["connections"] > 0 and rows[1]["ratio"] > 0 and rows[1]["against"] == "kernel-veth"
    assert set(rows[1]["targets"]) == {">=1.0x"}
