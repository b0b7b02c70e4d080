"""Accounting holes found while building the fuzzer's packet ledger
(graphnet.fuzz.runner), each fixed with its regression test here."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from graphnet.nodes import ip4_frag


@pytest.mark.parametrize("buffers", range(258, 274, 2))
def test_ip4_frag_counts_fragments_sent_before_buffers_ran_out(pg_capture, buffers):
    """100 packets of 1500 bytes into ip4-frag at MTU 576 (3 fragments
    each) with a pool that runs dry: when the frame of fragments filled up
    in the middle of a packet, its first fragment left in that frame and
    the packet then died of no-buffers; the fragment that left was not
    counted under ``fragments`` (the ledger's `created`), so fragments
    captured were one more than fragments counted."""
    pc = pg_capture(*ip4_frag.nodes(next_node="capture", mtu=576), first="ip4-frag", buffers=buffers,
                    capture_limit=0)
    pkt = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(bytes(1472)))
    pc.add_stream([pkt], count=100, fix_checksums=False, l3_offset=0)
    pc.engine.run_until_idle()
    eng = pc.engine
    vectors = {n.name: c["vectors"] for n, c in zip(eng.nodes, eng.main.node_counters())}
    fragmented, no_buffers = eng.error_count("ip4-frag", "fragmented"), eng.error_count("ip4-frag", "no-buffers")
    assert no_buffers > 0 and fragmented + no_buffers == 100
    assert vectors["capture"] == eng.error_count("ip4-frag", "fragments")
