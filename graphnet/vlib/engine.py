"""The Engine: builds a graph from node registrations and runs its loop.

    from graphnet import Engine
    eng = Engine([my_nodes...])       # error-drop and null are always there
    eng.run_until_idle()               # or eng.run(seconds) / eng.start() ... eng.stop()
    print(eng.show("runtime"))

Building resolves next nodes by name: an unknown next name, a duplicate node
name, a bad type or state or severity is a GraphError naming the node.

Threading: the loop runs in the thread that calls run()/run_until_idle(), or
in the engine's own thread after start(). Other threads change things only
through ``call(fn, *args)``, which runs fn between two iterations and
returns its result (or raises its exception) to the caller.
"""
from __future__ import annotations

import collections
import difflib
import logging
import threading
import time
from typing import Any, Iterable, Optional

from graphnet.vlib import drop
from graphnet.vlib.buffer import BufferPool
from graphnet.vlib.kit import NodeData
from graphnet.vlib.main import DEFAULT_BUSY_POLL_US, Main, NODE_INPUT, NODE_INTERNAL, NODE_PROCESS, STATE_POLLING, STATE_INTERRUPT, STATE_DISABLED
from graphnet.vlib.node import Node, GraphError, PythonNode, NODE_TYPES, NODE_STATES
from graphnet.vlib.process import ProcessState
from graphnet.vlib.pynode import PythonNodeRuntime

from graphnet.vlib import logring, per_engine

log = logging.getLogger("graphnet.engine")

_TYPE_CODES = {"input": NODE_INPUT, "internal": NODE_INTERNAL, "process": NODE_PROCESS}
_STATE_CODES = {"polling": STATE_POLLING, "interrupt": STATE_INTERRUPT, "disabled": STATE_DISABLED}
STATE_NAMES = {v: k for k, v in _STATE_CODES.items()}


# Engine extensions: ``f(engine)`` run by every new engine after error-drop
# and null are added and before its own nodes. The layers above vlib plug
# in this way (graphnet.io.interface gives each engine its interface table
# and interface-output, graphnet.io.pcap its pcap-flush process,
# graphnet.io.link_events its link-events process); vlib imports none of them.
_EXTENSIONS: list = []


def register_extension(fn):
    """Run ``fn(engine)`` in every Engine made from now on (once per fn)."""
    if fn not in _EXTENSIONS:
        _EXTENSIONS.append(fn)
    return fn


def _registrations(nodes, existing, seen=None) -> Iterable[Node]:
    """Node registrations from a Node, a PythonNode, an object with
    ``nodes()``, or nested iterables of them; a name already in existing
    (or twice among them) is a GraphError."""
    if isinstance(nodes, (Node, PythonNode)) or hasattr(nodes, "nodes"):
        nodes = [nodes]
    seen = set() if seen is None else seen
    for node in nodes:
        if isinstance(node, PythonNode):
            node = node.registration()
        elif not isinstance(node, Node) and hasattr(node, "nodes"):
            yield from _registrations(node.nodes(), existing, seen)
            continue
        elif isinstance(node, (list, tuple)):
            yield from _registrations(node, existing, seen)
            continue
        if not isinstance(node, Node):
            raise GraphError(f"not a node registration: {node!r}")
        if node.name in existing or node.name in seen:
            raise GraphError(f"duplicate node name {node.name!r}")
        seen.add(node.name)
        yield node


class Engine:
    """A graph of nodes and the loop that runs it (see module docstring)."""

    def __init__(self, nodes: Iterable = (), *, buffers: int = 16384, tick: float = 0.001,
                 timer_slots: int = 4096, trace_bytes: int = 4 << 20, name: str = "main",
                 busy_poll_us: int = DEFAULT_BUSY_POLL_US):
        self.name = name
        self.registrations: dict[str, Node] = {}
        self._buffers = buffers
        self._tick_ns = max(1, int(tick * 1e9))
        self._timer_slots = timer_slots
        self._trace_bytes = trace_bytes
        self._busy_poll_us = busy_poll_us
        self.main: Optional[Main] = None
        self.pool: Optional[BufferPool] = None
        self.nodes: list[Node] = []
        self.index: dict[str, int] = {}
        self.errors: list[tuple] = []          # (node name, symbol, severity, description)
        self.error_base: dict[str, int] = {}
        self.processes: dict[int, ProcessState] = {}
        self.node_data: dict[str, NodeData] = {}   # node name -> its C state (Node.data_size)
        self.redirected: dict[tuple, str] = {}     # (node, arc) -> its registered next node (redirect())
        self._calls: collections.deque = collections.deque()
        self._loop_thread: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._started_processes = False
        self.start_time = time.monotonic()
        self.start_time_ns = time.monotonic_ns()
        self.on_close: list = []
        logring.install()                      # recent log lines for `show logging`
        self.interfaces = None                 # the interface table (graphnet.io.interface's extension)
        self._trace_filter = None              # the trace filter spec (graphnet.vlib.trace_filter), or None
        self.add(drop.NODES)
        for extension in _EXTENSIONS:
            extension(self)
        self.add(nodes)

    # --- building ----------------------------------------------------------------

    def add(self, nodes) -> "Engine":
        """Add a Node, a PythonNode, an object with a ``nodes()`` method (a
        device, the packet generator), or an iterable of any of these.
        Before the graph is built; after, see ``grow``."""
        if self.main is not None:
            raise GraphError("the graph is already built; add nodes before running (or grow() it)")
        for node in _registrations(nodes, self.registrations):
            self.registrations[node.name] = node
        return self

    def grow(self, nodes, reuse: bool = False) -> list:
        """Add nodes to the built graph (a device created at run time, e.g.
        ``create tap``): in the loop's thread, between iterations. Their
        next nodes must be in the graph (or among them); a node that
        attaches to a parent gets a new arc of that parent (before its
        error-drop arc). Then their setups run and their processes start.
        Returns the new node indices. Nodes are never removed: a deleted
        device's nodes stay, disabled, and a device made again under the
        same name takes them back (see the devices): with ``reuse``, a
        registration whose name is in the graph replaces that node (same
        type, error table and next nodes required), its setup runs again,
        its input state and process restart."""
        self.build()
        regs = list(_registrations(nodes, {} if reuse else self.registrations))
        return self.call(self._grow_or_reuse, regs)

    def _grow_or_reuse(self, regs: list) -> list:
        old = [n for n in regs if n.name in self.registrations]
        new = [n for n in regs if n.name not in self.registrations]
        for n in old:
            self._check_reusable(n)
        indices = self._grow(new) if new else []
        for n in old:
            self._reuse(n)
        return [self.index[n.name] for n in regs] if old else indices

    def _check_reusable(self, n: Node) -> None:
        was = self.registrations[n.name]
        nexts = [self._pick_next(n.name, x) for x in n.next_nodes]
        have = [self.redirected.get((n.name, i), x) for i, x in enumerate(self.next_names[n.name])]
        if (was.type != n.type or list(was.error_table()) != list(n.error_table())
                or nexts != have or was.attach_to != n.attach_to):
            raise GraphError(f"node {n.name!r} is in the graph with other next nodes, errors or type; "
                             f"use another name")

    def _reuse(self, n: Node) -> None:
        """Node n takes the place of the node of its name (loop thread)."""
        i = self.index[n.name]
        self.registrations[n.name] = n
        self.nodes[i] = n
        if n.type == "input":
            self.main.set_state(i, _STATE_CODES[n.state or "polling"], bool(n.adaptive))
        if n.setup is not None:
            n.setup(self, i)
        for parent, key in n.attach_to:
            on_attach = self.registrations[parent].on_attach
            if on_attach is not None:
                on_attach(self, key, self._arc_of(parent, n.name))
        if n.type == "process":
            ps = self.processes[i] = ProcessState(n.name, i)
            if self._started_processes:
                ps.gen = n.process(self)
                ps.resume(self.main, None)

    def _grow(self, regs: list) -> list:
        first = len(self.nodes)
        names = {n.name: first + k for k, n in enumerate(regs)}
        index = {**self.index, **names}
        nexts_by_node = {n.name: [self._pick_next(n.name, x, names) for x in n.next_nodes] for n in regs}
        n_errors = len(self.errors)
        try:
            specs = [self._spec(n, nexts_by_node[n.name], index) for n in regs]
            for n in regs:
                for parent, _key in n.attach_to:
                    if parent not in self.index:
                        raise GraphError(f"node {n.name!r} attaches to {parent!r}, which is not in the graph")
            for spec, n in zip(specs, regs):
                if n.python is not None:
                    codes = {row[0]: i for i, row in enumerate(n.error_table())}
                    spec["python"] = PythonNodeRuntime(n.python, self.pool.arena, codes)
            self.main.add_nodes(specs, len(self.errors))
        except BaseException:
            del self.errors[n_errors:]
            for n in regs:
                self.error_base.pop(n.name, None)
            raise
        for n in regs:
            self.registrations[n.name] = n
        self.nodes.extend(regs)
        self.index = index
        self.next_names.update(nexts_by_node)
        for n in regs:
            if n.type == "process":
                self.processes[index[n.name]] = ProcessState(n.name, index[n.name])
            if n.data_size:                       # kit nodes' C state, as build() makes it
                data = self.node_data[n.name] = NodeData(n.data_size)
                self.main.set_runtime_data(index[n.name], data.capsule())
        for n in regs:
            if n.setup is not None:
                n.setup(self, index[n.name])
        for n in regs:
            for parent, key in n.attach_to:
                arc = self.main.add_next(self.index[parent], index[n.name])
                self.next_names[parent].append(n.name)
                on_attach = self.registrations[parent].on_attach
                if on_attach is not None:
                    on_attach(self, key, arc)
        if self._started_processes:
            for n in regs:
                if n.type == "process":
                    ps = self.processes[index[n.name]]
                    ps.gen = n.process(self)
                    ps.resume(self.main, None)
        return [index[n.name] for n in regs]

    def _spec(self, n: Node, next_names: list, index: dict) -> dict:
        """The loop's spec of node n (its error rows appended to the
        engine's table); checks type, state and next nodes."""
        if n.type not in NODE_TYPES:
            raise GraphError(f"node {n.name!r}: type {n.type!r} is not one of {', '.join(NODE_TYPES)}")
        state = n.state or "polling"
        if state not in NODE_STATES:
            raise GraphError(f"node {n.name!r}: state {state!r} is not one of {', '.join(NODE_STATES)}")
        if n.type != "process" and n.fn is None and n.python is None:
            raise GraphError(f"node {n.name!r} has neither a Cython fn nor a Python implementation")
        next_indices = []
        for nx in next_names:
            if nx not in index:
                hint = difflib.get_close_matches(nx, list(index), n=1)
                raise GraphError(f"node {n.name!r}: next node {nx!r} is not in the graph"
                                 + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            next_indices.append(index[nx])
        next_indices.append(index["error-drop"])        # implicit last arc
        table = n.error_table()
        if len(self.errors) + len(table) > 0xffff:
            raise GraphError("more than 65535 error rows in the graph")
        self.error_base[n.name] = len(self.errors)
        self.errors.extend((n.name,) + tuple(row) for row in table)
        return {"name": n.name, "type": _TYPE_CODES[n.type], "state": _STATE_CODES[state],
                "fn": n.fn, "next_nodes": next_indices, "error_base": self.error_base[n.name],
                "n_errors": len(table), "trace_fn": n.trace_fn, "trace_size": n.trace_size,
                "adaptive": n.adaptive, "python": None}

    def build(self) -> "Engine":
        """Resolve the graph and create the loop (idempotent)."""
        if self.main is not None:
            return self
        regs = list(self.registrations.values())
        self.index = {n.name: i for i, n in enumerate(regs)}
        attach_calls = []
        nexts_by_node = {n.name: [self._pick_next(n.name, x) for x in n.next_nodes] for n in regs}
        for n in regs:
            for parent, key in n.attach_to:
                if parent not in self.index:
                    raise GraphError(f"node {n.name!r} attaches to {parent!r}, which is not in the graph")
                if n.name not in nexts_by_node[parent]:
                    nexts_by_node[parent].append(n.name)
                attach_calls.append((parent, key, nexts_by_node[parent].index(n.name)))
        specs = [self._spec(n, nexts_by_node[n.name], self.index) for n in regs]
        self.pool = BufferPool(self._buffers)
        for spec, n in zip(specs, regs):
            if n.python is not None:
                codes = {row[0]: i for i, row in enumerate(n.error_table())}
                spec["python"] = PythonNodeRuntime(n.python, self.pool.arena, codes)
        self.nodes = regs
        self.next_names = nexts_by_node
        self.main = Main(self.pool, specs, len(self.errors), self.index["error-drop"],
                         self.error_base["error-drop"] + 1, self._hook, self._tick_ns,
                         self._timer_slots, self._trace_bytes)
        self.main.set_busy_poll(self._busy_poll_us)
        for i, n in enumerate(regs):
            if n.type == "process":
                self.processes[i] = ProcessState(n.name, i)
        for i, n in enumerate(regs):
            if n.data_size:
                data = self.node_data[n.name] = NodeData(n.data_size)
                self.main.set_runtime_data(i, data.capsule())
        for n in regs:
            if n.setup is not None:
                n.setup(self, self.index[n.name])
        for parent, key, next_index in attach_calls:
            on_attach = self.registrations[parent].on_attach
            if on_attach is not None:
                on_attach(self, key, next_index)
        return self

    def _pick_next(self, node: str, nx, more=()) -> str:
        """A next node name, or the first present of a tuple of alternatives
        (``("ip4-local", "null")``: an arc to ip4-local when the graph has
        it (or `more`, nodes being added), else to null)."""
        if isinstance(nx, str):
            return nx
        alternatives = tuple(nx)
        for name in alternatives:
            if name in self.registrations or name in more:
                return name
        raise GraphError(f"node {node!r}: none of the next nodes {', '.join(map(repr, alternatives))} is in the graph")

    def node_index(self, name: str) -> int:
        self.build()
        try:
            return self.index[name]
        except KeyError:
            hint = difflib.get_close_matches(name, list(self.index), n=1)
            raise KeyError(f"no node named {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")) from None

    def next_index(self, node: str, next_node: str) -> int:
        """The arc index from node to next_node."""
        self.build()
        names = self.next_names[node]
        if next_node == "error-drop" and next_node not in names:
            return len(names)
        return names.index(next_node)

    def _arc_of(self, node: str, next_node: str) -> int:
        """The arc of node registered to next_node (redirected or not)."""
        names = self.next_names[node]
        return next(i for i, x in enumerate(names) if self.redirected.get((node, i), x) == next_node)

    def redirect(self, node: str, next_node: str, new_next: str) -> None:
        """Point node's arc to next_node at new_next instead (a node
        inserted on an arc: new_next goes on to next_node itself). In the
        loop's thread, between iterations. The arc stays redirected when
        the node is reused (a device made again under its name)."""
        names = self.next_names[node]
        if next_node not in names:
            raise GraphError(f"node {node!r} has no arc to {next_node!r}")
        arc = names.index(next_node)
        self.call(self.main.set_next, self.index[node], arc, self.node_index(new_next))
        self.redirected.setdefault((node, arc), next_node)
        names[arc] = new_next

    # --- running -----------------------------------------------------------------

    def run(self, seconds: float = -1.0) -> int:
        """Run the loop in this thread for `seconds` (or until stop())."""
        return self._run(seconds, False)

    def run_until_idle(self, timeout: float = 10.0) -> int:
        """Run until an iteration finds nothing to do (or timeout passes)."""
        return self._run(timeout, True)

    def _run(self, seconds: float, until_idle: bool) -> int:
        self.build()
        if self._loop_thread is not None and self._loop_thread != threading.get_ident():
            raise RuntimeError("the engine is already running in another thread")
        self._loop_thread = threading.get_ident()
        try:
            if not self._started_processes or self._calls:
                self.main.wake_python()
            return self.main.run(seconds, until_idle)
        finally:
            self._loop_thread = None

    def start(self) -> None:
        """Run the loop in a background thread until stop()."""
        self.build()
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()

        def body():
            self._loop_thread = threading.get_ident()
            ready.set()
            try:
                self.main.wake_python()
                self.main.run(-1.0, False)
            except Exception:
                log.exception("the main loop failed")
            finally:
                self._loop_thread = None

        self._thread = threading.Thread(target=body, name=f"graphnet-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        """Stop a loop started with start() (or a run() in another thread)."""
        if self.main is None:
            return
        self.main.stop()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def close(self) -> None:
        """Stop, run node teardowns and close hooks (interfaces, sockets);
        free the buffers of frames still pending (the main loop's drain
        bound can leave some when it stops)."""
        self.stop()
        if self.main is not None and not self.running:
            self.main.discard_pending()
        for fn in reversed(self.on_close):
            try:
                fn()
            except Exception:
                log.exception("close hook failed")
        self.on_close.clear()
        for n in self.nodes:
            if n.teardown is not None:
                try:
                    n.teardown(self, self.index[n.name])
                except Exception:
                    log.exception("teardown of %s failed", n.name)
        per_engine.release(self)        # so a closed engine and its buffer arena can be freed

    @property
    def running(self) -> bool:
        return self._loop_thread is not None

    def call(self, fn, *args, timeout: float = 10.0) -> Any:
        """Run fn(*args) between two loop iterations and return its result.

        From the loop's own thread, or when the loop is not running, fn runs
        at once."""
        self.build()
        if self._loop_thread is None or self._loop_thread == threading.get_ident():
            return fn(*args)
        done = threading.Event()
        box: dict = {}
        self._calls.append((fn, args, done, box))
        self.main.wake_python()
        if not done.wait(timeout):
            raise TimeoutError(f"the main loop did not run {getattr(fn, '__name__', fn)!r} within {timeout}s")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def _hook(self) -> None:
        """Runs in the loop thread, with the GIL, between iterations."""
        while self._calls:
            fn, args, done, box = self._calls.popleft()
            try:
                box["result"] = fn(*args)
            except BaseException as e:  # handed to the caller
                box["error"] = e
            done.set()
        if not self._started_processes:
            self._started_processes = True
            for ps in self.processes.values():
                ps.gen = self.nodes[ps.node_index].process(self)
                ps.resume(self.main, None)
        for ps in self.processes.values():
            if self.main.take_interrupt(ps.node_index):
                ps.on_interrupt(self.main)

    # --- control ------------------------------------------------------------------

    def set_node_state(self, name: str, state: str, adaptive: Optional[bool] = None) -> None:
        """polling | interrupt | disabled | adaptive (adaptive starts in interrupt)."""
        i = self.node_index(name)
        if self.nodes[i].type != "input":
            raise ValueError(f"node {name!r} is not an input node; only input nodes have a state")
        if state == "adaptive":
            state, adaptive = "interrupt", True
        elif adaptive is None:
            adaptive = False
        if state not in _STATE_CODES:
            raise ValueError(f"state {state!r}: use polling, interrupt, adaptive or disabled")
        self.call(self.main.set_state, i, _STATE_CODES[state], adaptive)

    def set_interrupt_pending(self, name: str) -> None:
        """Raise a node's interrupt (any thread)."""
        self.main.set_interrupt_pending(self.node_index(name))

    def signal_process(self, name: str, event: Any = None) -> None:
        """Queue an event for a process node and wake it (any thread)."""
        i = self.node_index(name)
        if i not in self.processes:
            raise ValueError(f"node {name!r} is not a process")

        def deliver():
            self.processes[i].events.append(event)
            self.main.set_interrupt_pending(i)
        self.call(deliver)

    def trace_add(self, name: str, n: int) -> list:
        """Trace the next n packets (that pass the trace filter, if one is
        set) from an input node: any input (``pg-input``,
        ``af-packet-input-eth0``, ``tap-input-tap0``...). A device kind's
        prefix (``tap-input``) or a glob (``af-packet-input-*``) names all
        its input nodes. Returns the names of the nodes traced."""
        import fnmatch
        self.build()
        inputs = [i for i, nd in enumerate(self.nodes) if nd.type == "input"]
        if name in self.index:
            targets = [self.index[name]]
        elif any(c in name for c in "*?["):
            targets = [i for i in inputs if fnmatch.fnmatchcase(self.nodes[i].name, name)]
        else:
            targets = [i for i in inputs if self.nodes[i].name.startswith(name + "-")]
        if not targets:
            names = ", ".join(self.nodes[i].name for i in inputs) or "none"
            hint = difflib.get_close_matches(name, [self.nodes[i].name for i in inputs], n=1)
            raise KeyError(f"no input node named {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                           + f"; input nodes: {names}")
        for i in targets:
            if self.nodes[i].type != "input":
                kind = self.nodes[i].type
                raise ValueError(f"trace add takes an input node; {name!r} is {'an' if kind[0] in 'aeiou' else 'a'} "
                                 f"{kind} node")
        for i in targets:
            self.call(self.main.trace_add, i, n)
        return [self.nodes[i].name for i in targets]

    def trace_filter(self, spec) -> None:
        """Trace only packets that match ``spec`` (graphnet.vlib.trace_filter:
        ``parse(["ip4", "dst", "10.0.0.1"])``); None removes the filter."""
        self.build()
        self.call(self.main.set_trace_filter, spec)
        self._trace_filter = spec

    def trace_filter_status(self) -> str:
        """``trace filter: <filter> (<seen> packets looked at, <matched> matched)``."""
        from graphnet.vlib.trace_filter import describe
        spec = self._trace_filter
        if spec is None:
            return "trace filter: off"
        seen, matched = self.call(self.main.trace_filter_stats)
        return f"trace filter: {describe(spec)} ({seen} packets looked at, {matched} matched)"

    def clear_trace(self) -> None:
        self.call(self.main.clear_trace)

    def clear_runtime(self) -> None:
        self.call(self.main.clear_runtime)

    def clear_errors(self) -> None:
        self.call(self.main.clear_errors)

    def error_count(self, node: str, symbol: str) -> int:
        """The counter of one error row, by node and symbol."""
        base = self.error_base[node]
        for i, row in enumerate(self.nodes[self.index[node]].error_table()):
            if row[0] == symbol:
                return self.call(self.main.error_counters)[base + i]
        raise KeyError(f"node {node!r} has no error {symbol!r}")

    def buffer_stats(self) -> dict:
        """Where the pool's buffers are (``graphnet.vlib.buffer_usage``):
        ``total``, ``free`` (shared list + loop caches, as the pool counts),
        ``cached`` (per-loop caches), ``device_cached`` (devices' rx
        spares), ``in_use`` (total - free: packets and device caches),
        ``in_use_packets`` (held by packets only: back to its idle value
        when traffic stops), ``queued`` (of those, packets waiting in ARP
        queues and reassembly), ``devices`` ({interface: cached}),
        ``double_frees``, ``waiters``. Taken between loop iterations."""
        from graphnet.vlib import buffer_usage
        self.build()
        return self.call(buffer_usage.snapshot, self)

    def show(self, what: str, *args) -> str:
        """Text of a show command: runtime, errors, trace, buffers, graph, node NAME."""
        from graphnet.vlib import show
        return self.call(show.SHOW[what], self, *args)

    def __enter__(self):
        return self.build()

    def __exit__(self, *exc):
        self.close()
