"""Issue 18: `trace add af-packet-input-*` and `trace filter` on a real
AF_PACKET interface (privileged: a veth pair between two namespaces made
by the plugin's veth fixture, removed afterwards)."""
import re

import pytest

from graphnet.cli.registry import execute
from graphnet.testing.helpers import packet_socket, wait_for
from graphnet.vlib.show import trace_packets
from test_af_packet import marked, marked_frame, rx_engine

pytestmark = pytest.mark.privileged(tun=False)


def test_trace_add_glob_and_filter_on_af_packet_input(engine_factory, veth):
    eng, dev, cap = rx_engine(engine_factory, veth)
    # frames 0..9 with our ethertype (0x88b5 at 12) and a 4-byte mark (at 14): the
    # filter keeps our frames with an odd mark (not the kernel's chatter)
    execute(eng, "trace filter bytes 12 88b500000001 mask ffff00000001")
    assert execute(eng, "trace add af-packet-input-* 3") == ""
    kernel = packet_socket(veth.ns_b, veth.veth_b)
    eng.start()
    frames = [marked_frame(i) for i in range(10)]
    for f in frames:
        kernel.send(f)
    assert wait_for(lambda: len(marked(cap.packets())) >= len(frames))
    eng.stop()
    kernel.close()
    pkts = trace_packets(eng)
    assert len(pkts) == 3
    seen = []
    for p in pkts:
        assert p[0][1] == dev.input_node                 # the AF_PACKET input node's record first
        assert p[-1][1] == "capture"
        dump = bytes.fromhex("".join(re.findall(r"^\s*[0-9a-f]{4}: ([0-9a-f ]+)$", p[-1][2], re.M)).replace(" ", ""))
        assert dump[12:14] == b"\x88\xb5"
        seen.append(int.from_bytes(dump[14:18], "big"))
    assert seen == [1, 3, 5]                            # the first three that match, in order
    marks = [int.from_bytes(f[14:18], "big") for f in marked(cap.packets())[:10]]
    assert marks == list(range(10))
    assert "3 matched" in execute(eng, "trace filter")
