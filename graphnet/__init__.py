"""graphnet: a userspace packet-processing engine in the style of VPP's vlib.

Packets live in a preallocated buffer arena and move as vectors of buffer
indices through a graph of nodes; per-packet code is Cython ``nogil`` over C
structs. Python builds graphs, writes nodes that see whole frames, and reads
counters and traces.
"""
from graphnet.vlib.node import Node, PythonNode, GraphError, python_node, process_node
from graphnet.vlib.process import Sleep, WaitEvent
from graphnet.vlib.engine import Engine

__all__ = ["Engine", "Node", "PythonNode", "GraphError", "python_node", "process_node", "Sleep", "WaitEvent"]
__version__ = "0.1.0"
