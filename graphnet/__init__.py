"""graphnet: a userspace packet-processing engine in the style of VPP's vlib.

Packets live in a preallocated buffer arena and move as vectors of buffer
indices through a graph of nodes; per-packet code is Cython ``nogil`` over C
structs. Python builds graphs, writes nodes that see whole frames, and reads
counters and traces.
"""
from graphnet.vlib.node import Node, PythonNode, GraphError, python_node, process_node
from graphnet.vlib.process import Sleep, WaitEvent
from graphnet.vlib.engine import Engine
import graphnet.io.interface  # noqa: F401,E402  (gives every Engine its interface table)
import graphnet.io.pcap  # noqa: F401,E402  (and its pcap-flush process)
import graphnet.io.link_events  # noqa: F401,E402  (and its link-events process)

__all__ = ["Engine", "Node", "PythonNode", "GraphError", "python_node", "process_node", "Sleep", "WaitEvent"]
__version__ = "0.1.0"
