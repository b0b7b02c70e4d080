"""The kernel references of the TCP benches (graphnet.bench.tcp_ref), in
short runs (about 1 s each): the bytes a sender wrote all arrive, the CRR
client and the echo server count the same connections, nftables drops
about 1% of the data direction, the namespaces go afterwards; the bench
rows say plainly that graphnet's side is not built (no figure, no ratio).
What these runs measure is not asserted (benchmarks, not tests)."""
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
    rows = list(tcp_ref.graphnet_rows("tcp-bulk", argparse.Namespace(), ref, "kernel-veth"))
    assert [r["case"] for r in rows] == ["rx", "tx"]
    for r in rows:
        assert r["built"] is False and "not built" in r["note"] and "ratio" not in r and "gbps" not in r
    monkeypatch.setitem(tcp_ref.GRAPHNET["tcp-bulk"], "rx", lambda opts: {"gbps": 25.0})
    rx = next(tcp_ref.graphnet_rows("tcp-bulk", argparse.Namespace(), ref, "kernel-veth"))
    assert rx["ratio"] == 2.5 and rx["targets"] == {">=20Gbit/s": True, ">=1.0x": True}


@pytest.mark.privileged(tun=False)
def test_bench_command_json_rows():
    out = subprocess.run([sys.executable, "-m", "graphnet", "bench", "tcp-crr", "--json", "--seconds", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["case"] for r in rows] == ["kernel-veth", "graphnet"]
    assert rows[0]["connections_per_s"] > 0 and "ratio" not in rows[0]
    assert rows[1]["built"] is False and "ratio" not in rows[1] and "connections_per_s" not in rows[1]
    assert rows[1]["against"] == "kernel-veth"
