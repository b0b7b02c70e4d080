"""Node registrations: what a node is, before a graph is built from it.

A Cython node module ends with ``NODES = (Node(...), ...)`` built from its
dispatch function's capsule (``node_fn_capsule`` in its .pyx). A Python node
is a subclass of ``PythonNode`` or a function decorated with
``@python_node(...)``; it sees a whole frame at once (``FrameView``) and
says where each packet goes.

Error tables are ``(symbol, severity, description)`` rows. Row 0 is always
``none``; it is added when a table does not start with it. Severity is one
of ``info``, ``warn``, ``error``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

NODE_TYPES = ("input", "internal", "process")
NODE_STATES = ("polling", "interrupt", "disabled")
SEVERITIES = ("info", "warn", "error")
NONE_ERROR = ("none", "info", "no error")


@dataclass
class Node:
    """A node registration.

    name:        unique node name (VPP style, e.g. ``ip4-input``)
    type:        ``input`` (called by the scheduler), ``internal`` (called with
                 a frame) or ``process`` (a cooperative Python task)
    fn:          PyCapsule of a Cython ``gn_node_fn_t`` (Cython nodes)
    python:      the PythonNode instance (Python nodes)
    process:     generator function ``f(engine)`` (process nodes)
    next_nodes:  names of the next nodes; next index i is next_nodes[i].
                 An entry may be a tuple of alternatives, resolved when the
                 graph is built to the first one in the graph (an optional
                 next: ``("ip4-icmp-error", "error-drop")``).
                 Every node also gets a last, implicit arc to ``error-drop``.
    errors:      error table rows ``(symbol, severity, description)``
    state:       initial state of an input node (default polling)
    adaptive:    input node switches polling <-> interrupt by load
    trace_fn, trace_size: capsule of a ``gn_trace_fn_t`` and its record size
    format_trace: ``f(record: bytes, engine) -> str`` for ``show trace``
    setup:       ``f(engine, node_index)`` after the graph is built (attach C
                 state with ``engine.main.set_runtime_data``, register fds)
    teardown:    ``f(engine, node_index)`` when the engine closes
    attach_to:   ``((parent, key), ...)``: add an arc parent -> this node and
                 call the parent's ``on_attach(engine, key, next_index)``
    instance:    any object the node wants kept alive with the engine
    data_size:   bytes of zeroed C state the engine allocates for the node
                 before setup (runtime_data; ``engine.node_data[name]``)
    kit:         declared with graphnet.vlib.kit.node (tables checked)
    error_details: ``f(engine) -> {symbol: [lines]}``: what ``show errors
                 verbose`` prints under a row (e.g. which ethertypes)
    """
    name: str
    type: str = "internal"
    fn: Any = None
    python: Any = None
    process: Optional[Callable] = None
    next_nodes: Sequence[str] = ()
    errors: Sequence[tuple] = ()
    state: Optional[str] = None
    adaptive: bool = False
    trace_fn: Any = None
    trace_size: int = 0
    format_trace: Optional[Callable] = None
    setup: Optional[Callable] = None
    teardown: Optional[Callable] = None
    attach_to: Sequence[tuple] = ()
    on_attach: Optional[Callable] = None
    instance: Any = None
    doc: str = ""
    data_size: int = 0
    kit: bool = False
    error_details: Optional[Callable] = None

    def error_table(self) -> list:
        rows = [tuple(r) for r in self.errors]
        if not rows or rows[0][0] != "none":
            rows.insert(0, NONE_ERROR)
        for sym, sev, desc in rows:
            if sev not in SEVERITIES:
                raise GraphError(f"node {self.name!r}: error {sym!r} has severity {sev!r}; "
                                 f"use one of {', '.join(SEVERITIES)}")
        return rows


class GraphError(ValueError):
    """A graph cannot be built (unknown next node, duplicate name, ...)."""


class PythonNode:
    """Base class for nodes written in plain Python.

    Subclasses set ``name``, ``next_nodes`` and optionally ``errors`` (the
    ``type`` is always ``internal``), and implement ``process(frame)``,
    which returns one of:

      - an int: every packet goes to that next index;
      - a sequence of ints, one next index per packet;
      - None, after filling ``frame.nexts`` (or calling ``frame.drop``).

    An exception drops every packet of the frame with the node's
    ``python-exception`` error and logs the traceback; the engine runs on.
    """
    name: str = ""
    next_nodes: Sequence[str] = ()
    errors: Sequence[tuple] = ()
    type: str = "internal"

    def process(self, frame) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def registration(self) -> Node:
        if not self.name:
            raise GraphError(f"{type(self).__name__} has no name")
        if self.type != "internal":
            # The trampoline needs a frame: an input node would be called
            # with none (and has no way to allocate buffers from Python).
            raise GraphError(f"Python node {self.name!r}: type {self.type!r} is not supported; Python nodes "
                             f"are internal (use process_node for a background task)")
        errors = list(Node(self.name, errors=self.errors).error_table())
        if "python-exception" not in [e[0] for e in errors]:
            errors.append(("python-exception", "error", "Python node raised an exception"))
        return Node(self.name, type=self.type, python=self, next_nodes=tuple(self.next_nodes),
                    errors=tuple(errors), doc=(type(self).__doc__ or "").strip())


def python_node(name: str, next_nodes: Sequence[str] = (), errors: Sequence[tuple] = ()):
    """Decorator: ``@python_node("my-node", next_nodes=["null"])`` on a
    function ``f(frame)`` with the contract of ``PythonNode.process``."""
    def wrap(fn):
        node = type(f"PythonNode_{name}", (PythonNode,), {
            "name": name, "next_nodes": tuple(next_nodes), "errors": tuple(errors),
            "process": staticmethod(fn), "__doc__": fn.__doc__})()
        return node
    return wrap


def process_node(name: str):
    """Decorator for a process node: a generator ``f(engine)`` that yields
    ``Sleep(seconds)`` or ``WaitEvent(timeout)`` (see graphnet.vlib.process)."""
    def wrap(fn):
        return Node(name, type="process", process=fn, doc=(fn.__doc__ or "").strip())
    return wrap
