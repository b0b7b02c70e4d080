"""The node kit: one declaration per node, checked; shared state and trace.

The whole anatomy of a Cython node (``graphnet/nodes/passthrough.pyx`` is
the smallest, and ``python -m graphnet.tools.new_node NAME`` writes one)::

    cpdef enum Next:                       # next arcs, in the order of NEXTS
        NEXT_LOOKUP
        N_NEXT
    cpdef enum Error:                      # error rows, in the order of ERRORS
        ERROR_NONE
        ERROR_TOO_SHORT
        N_ERROR

    NEXTS = (("lookup", "ip4-lookup"),)    # (symbol, next node or alternatives)
    ERRORS = (("none", "info", "no error"),
              ("too-short", "error", "shorter than its header"))

    ctypedef struct my_node_t:             # per-engine C state, if any
        ...

    cdef uint32_t my_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
        cdef my_node_t* st = <my_node_t*>node.runtime_data
        cdef uint16_t nexts[GN_FRAME_SIZE]
        ...                                # nexts[i] = NEXT_LOOKUP, or
        ...                                # gn_buffer_set_error(node, b, ERROR_TOO_SHORT); nexts[i] = node.drop_next
        gn_enqueue_to_next(vm, node, frame.buffers, nexts, n)
        return n

    def _setup(engine, node_index):        # fill the zeroed state
        cdef my_node_t* st = <my_node_t*>gn_node_data(engine, "my-node")
        ...

    NODES = (node("my-node", gn_node_fn(my_fn), nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error,
                  data_size=sizeof(my_node_t), setup=_setup,
                  trace=trace_bytes(40, format_ip4_header), doc=__doc__),)
    FEATURE = "ip4"                        # which graphs it joins (graphnet.vlib.registry)

What the kit checks, when the module is imported (a mismatch is a
GraphError naming the node and the row, so the module does not import):

- ``Next`` has exactly ``NEXT_<SYMBOL>`` for each row of ``nexts``, in
  order, then ``N_NEXT`` (a module with two tables prefixes one enum's
  members: ``OUT_ERROR_NONE`` ... ``OUT_N_ERROR``); ``Error`` has ``ERROR_<SYMBOL>`` for each row of
  ``errors`` (``none`` first; it is added when missing), then ``N_ERROR``.
  A symbol's C name is its upper case with ``-`` as ``_``. So the C code
  and the table cannot drift: adding a row without its enum member (or
  the other way round, or in another order) fails at import.
- every severity is info, warn or error; symbols are unique.

Per-node state: ``data_size=sizeof(x)`` makes the engine allocate a zeroed
``x`` for the node before its setup runs (``NodeData``), point the node's
runtime_data at it and free it with the engine; ``gn_node_data(engine,
name)`` returns it to the node's setup and control functions. No copied
``_State`` classes, capsules or per-module engine dictionaries.

Trace: ``trace_bytes(n, header_formatter, "rx"|"tx")`` is the common record
(an interface and the first n bytes, formatted by a ``wire/`` header
formatter); ``trace_ip4()`` and ``trace_ethernet()`` are it with the IPv4
packet and whole-frame decoders; ``trace_error(n, header)`` adds the error
code the packet carries (error-drop, ip4-icmp-error);
``trace_record(fn, size, formatter)`` is a node's own record; no
``trace=`` leaves the engine's default record (metadata and a hex dump of
the first 64 bytes), for nodes with nothing to decode.

Converting an old-style node (mechanical; the session nodes written before
the kit follow the same steps):

1. ``cdef enum`` of NEXT_*/ERROR_* -> ``cpdef enum Next`` / ``cpdef enum
   Error`` with the members renamed to the table's symbols, plus
   ``N_NEXT``/``N_ERROR``; other constants stay in a plain ``cdef enum``.
2. ``next_nodes=("a", "b")`` -> ``NEXTS = (("a", "a"), ("b", "b"))`` with
   the symbols the enum uses.
3. ``cdef class _State`` (calloc, ``__dealloc__``, capsule), ``_STATES``
   and the set_runtime_data in ``_setup`` -> ``data_size=sizeof(...)`` and
   ``gn_node_data(engine, name)`` where the state is used; Python objects
   the state points into go in ``engine.node_data[name].keep``.
4. A trace function copying sw_if_index and the first N bytes ->
   ``trace_bytes(N, formatter)``.
5. ``b.error = node.error_base + code`` -> ``gn_buffer_set_error(node, b,
   code)``; ``nexts[256]`` -> ``nexts[GN_FRAME_SIZE]``.
6. ``Node(name, fn=PyCapsule_New(...), ...)`` -> ``node(name,
   gn_node_fn(fn), ...)``; add ``FEATURE``.

Old-style nodes (plain ``Node(...)``) keep working beside kit nodes: the
engine treats both the same; only the checks above are the kit's.
"""
import struct

cdef enum:
    TRACE_ERROR_HEADER = 4       # trace_error: the error (u16), padding, then the shared record

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from graphnet.vlib.buffer cimport gn_buffer_t, gn_buffer_current, GN_RX, GN_TX, GN_BUFFER_F_NEXT_PRESENT
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer

from graphnet.vlib.node import Node, GraphError, NONE_ERROR, SEVERITIES


cdef class NodeData:
    def __cinit__(self, size_t size):
        self.data = calloc(1, size if size else 1)
        if self.data == NULL:
            raise MemoryError(f"node state of {size} bytes")
        self.size = size
        self.keep = None

    def __dealloc__(self):
        free(self.data)

    @property
    def address(self):
        """The state's address as an integer (tests, debugging)."""
        return <size_t>self.data

    def capsule(self):
        """The state as a 'gn_runtime_data' capsule (Main.set_runtime_data)."""
        return PyCapsule_New(self.data, "gn_runtime_data", NULL)


# --- the shared trace record -------------------------------------------------------

cdef uint16_t _fill_chain(gn_main_t* vm, uint8_t* record, uint32_t sw_if_index, gn_buffer_t* b,
                          uint32_t max_bytes) noexcept nogil:
    """The shared record of a packet that may be a chain: its first
    max_bytes across the buffers (a reassembled datagram's header and
    payload, so its checksum can be checked from the record)."""
    cdef uint16_t n = gn_trace_bytes_fill(record, sw_if_index, gn_buffer_current(b), b.current_length, max_bytes)
    cdef uint32_t have = n - GN_TRACE_BYTES_HEADER, k, hops = 0
    while have < max_bytes and (b.flags & GN_BUFFER_F_NEXT_PRESENT) and hops < 64:
        b = gn_main_buffer(vm, b.next_buffer)
        k = b.current_length if b.current_length < max_bytes - have else max_bytes - have
        memcpy(record + GN_TRACE_BYTES_HEADER + have, gn_buffer_current(b), k)
        have += k
        hops += 1
    n = <uint16_t>have
    memcpy(record + 4, &n, 2)                      # the record's n_bytes, now with the chain's
    return GN_TRACE_BYTES_HEADER + n


cdef uint16_t gn_trace_rx_bytes_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                   uint8_t* record) noexcept nogil:
    return _fill_chain(vm, record, b.sw_if_index[GN_RX], b, node.trace_size - GN_TRACE_BYTES_HEADER)


cdef uint16_t gn_trace_tx_bytes_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                   uint8_t* record) noexcept nogil:
    return _fill_chain(vm, record, b.sw_if_index[GN_TX], b, node.trace_size - GN_TRACE_BYTES_HEADER)


cdef uint16_t gn_trace_error_rx_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_buffer_t* b,
                                   uint8_t* record) noexcept nogil:
    memcpy(record, &b.error, 2)
    return TRACE_ERROR_HEADER + _fill_chain(vm, record + TRACE_ERROR_HEADER, b.sw_if_index[GN_RX], b,
                                            node.trace_size - TRACE_ERROR_HEADER - GN_TRACE_BYTES_HEADER)


_TRACE_FNS = {"rx": gn_trace_fn(gn_trace_rx_bytes_fn), "tx": gn_trace_fn(gn_trace_tx_bytes_fn)}
TRACE_BYTES_HEADER = GN_TRACE_BYTES_HEADER
TRACE_PACKET_BYTES = 128         # enough for a default ping (84 bytes) to be checked whole


def parse_trace_bytes(bytes record, int offset=0):
    """(sw_if_index, packet bytes) of a shared record at ``offset``."""
    sw, n = struct.unpack_from("<IH", record, offset)
    start = offset + GN_TRACE_BYTES_HEADER
    return sw, record[start:start + n]


def format_trace_bytes(bytes record, engine=None, header=None, direction="rx", int offset=0, names=True):
    """``  rx sw_if_index 1 (tap0)`` (the name with ``names``) and the bytes
    through ``header(data, indent=2)`` (a wire/ formatter; hex when None)."""
    sw, data = parse_trace_bytes(record, offset)
    name = ""
    if sw == 0xffffffff:
        sw = "-"
    elif engine is not None and names:
        try:
            name = f" ({engine.interfaces.names[sw]})"
        except (AttributeError, IndexError, KeyError):
            pass
    if header is None:
        from graphnet.wire.ethernet import format_hex
        header = format_hex
    text = header(data, indent=2)
    return f"  {direction} sw_if_index {sw}{name}" + (f"\n{text}" if text else "")


def trace_bytes(int n_bytes, header=None, direction="rx", names=True):
    """The common trace: ``direction`` sw_if_index (and the interface's
    name, with ``names``) and the first n_bytes, shown through ``header``
    (e.g. graphnet.wire.ip4.format_ip4_header)."""
    if direction not in _TRACE_FNS:
        raise ValueError(f"trace direction {direction!r}: use rx or tx")

    def format_trace(bytes record, engine=None):
        return format_trace_bytes(record, engine, header, direction, 0, names)
    format_trace.__doc__ = f"{direction} sw_if_index and the first {n_bytes} bytes"
    return {"trace_fn": _TRACE_FNS[direction], "trace_size": GN_TRACE_BYTES_HEADER + n_bytes,
            "format_trace": format_trace}


def trace_ip4(direction="rx", int n_bytes=TRACE_PACKET_BYTES):
    """trace_bytes of a packet at its IPv4 header, decoded by
    graphnet.wire.ip4.format_ip4_header (options, fragment fields and the
    L4 header: ICMP, UDP, TCP)."""
    from graphnet.wire.ip4 import format_ip4_header
    return trace_bytes(n_bytes, format_ip4_header, direction)


def trace_ethernet(direction="rx", int n_bytes=TRACE_PACKET_BYTES):
    """trace_bytes of a frame at its Ethernet header, decoded whole by
    graphnet.wire.ethernet.format_ethernet_frame (IPv4, ARP inside)."""
    from graphnet.wire.ethernet import format_ethernet_frame
    return trace_bytes(n_bytes, format_ethernet_frame, direction)


def format_error(engine, int error) -> str:
    """``error <symbol> (<node>): <description>`` of a global error index."""
    try:
        node_name, sym, _sev, desc = engine.errors[error]
    except (AttributeError, IndexError, TypeError):
        return f"error {error}"
    return f"error {sym} ({node_name}): {desc}"


def trace_error(int n_bytes=0, header=None):
    """A record of the error code the packet carries (the drop reason, or
    the error an ICMP error answers), the rx interface and the first
    n_bytes shown through ``header``."""
    def format_trace(bytes record, engine=None):
        error, = struct.unpack_from("<H", record)
        return f"  {format_error(engine, error)}\n" + format_trace_bytes(record, engine, header, "rx",
                                                                         TRACE_ERROR_HEADER)
    format_trace.__doc__ = f"the packet's error, rx sw_if_index and the first {n_bytes} bytes"
    return {"trace_fn": gn_trace_fn(gn_trace_error_rx_fn),
            "trace_size": TRACE_ERROR_HEADER + GN_TRACE_BYTES_HEADER + n_bytes, "format_trace": format_trace}


def trace_record(fn, int size, format_trace):
    """A node's own trace record: a gn_trace_fn capsule, its size, its formatter."""
    if format_trace is None:
        raise GraphError("a trace record needs a formatter")
    return {"trace_fn": fn, "trace_size": size, "format_trace": format_trace}


# --- the declaration and its checks ------------------------------------------------

def c_name(prefix, symbol):
    """The enum member for a table symbol: ``("ERROR_", "too-short")`` ->
    ``ERROR_TOO_SHORT``."""
    return prefix + symbol.upper().replace("-", "_")


def check_enum(node_name, enum, prefix, symbols, sentinel):
    """Raise GraphError unless ``enum`` is exactly prefix+SYMBOL for each of
    ``symbols``, numbered 0.. in order, then ``sentinel`` = len(symbols).

    A module with two tables (C enum members share one namespace) puts
    the same extra prefix on all of one enum's members: ``OUT_ERROR_NONE``
    ... ``OUT_N_ERROR``; the sentinel says which."""
    have = sorted(enum.__members__.items(), key=lambda kv: (int(kv[1]), kv[0]))
    # (no negative indices: this module is compiled with wraparound off)
    ends = [k for k, _ in have if k.endswith(sentinel)]
    extra = ends[len(ends) - 1][:len(ends[len(ends) - 1]) - len(sentinel)] if ends else ""
    want = [extra + c_name(prefix, s) for s in symbols] + [extra + sentinel]
    have_names = [k for k, _ in have]
    for i, (member, value) in enumerate(have):
        if int(value) != i:
            raise GraphError(f"node {node_name!r}: {enum.__name__}.{member} is {int(value)}, expected {i} "
                             f"(members must be numbered 0, 1, ... in table order)")
    if have_names != want:
        for i, (w, h) in enumerate(zip(want, have_names)):
            if w != h:
                break
        else:
            i = min(len(want), len(have_names))
        w = want[i] if i < len(want) else "(nothing)"
        h = have_names[i] if i < len(have_names) else "(nothing)"
        raise GraphError(f"node {node_name!r}: {enum.__name__} does not match its table at position {i}: "
                         f"the table says {w}, the enum has {h} "
                         f"(table: {', '.join(want)}; enum: {', '.join(have_names)})")


def node(name, fn, *, nexts=(), errors=(), Next=None, Error=None, trace=None, data_size=0, doc=None, **kw):
    """A checked Node registration (see the module docstring).

    nexts: rows ``(symbol, next node)``; the next node may be a tuple of
    alternatives (the first in the graph). errors: rows ``(symbol,
    severity, description)``. Next / Error: the module's ``cpdef enum``s,
    checked against the rows. trace: ``trace_bytes(...)`` or
    ``trace_record(...)``. data_size: bytes of zeroed per-engine C state.
    doc: the module docstring (its first paragraph is the node's summary).
    next_nodes: instead of nexts, arcs decided when the graph is built (a
    device input's DefaultNext); the C code then uses no Next enum.
    Other keywords go to ``Node`` (type, state, setup, attach_to, ...)."""
    nexts = tuple(tuple(r) for r in nexts)
    for row in nexts:
        if len(row) != 2 or not isinstance(row[0], str):
            raise GraphError(f"node {name!r}: next row {row!r} is not (symbol, next node)")
    rows = [tuple(r) for r in errors]
    if not rows or rows[0][0] != "none":
        rows.insert(0, NONE_ERROR)
    seen = set()
    for row in rows:
        if len(row) != 3:
            raise GraphError(f"node {name!r}: error row {row!r} is not (symbol, severity, description)")
        if row[1] not in SEVERITIES:
            raise GraphError(f"node {name!r}: error {row[0]!r} has severity {row[1]!r}; use one of "
                             f"{', '.join(SEVERITIES)}")
        if row[0] in seen:
            raise GraphError(f"node {name!r}: error {row[0]!r} appears twice")
        seen.add(row[0])
    if len({s for s, _ in nexts}) != len(nexts):
        raise GraphError(f"node {name!r}: a next symbol appears twice")
    if Next is not None:
        check_enum(name, Next, "NEXT_", [s for s, _ in nexts], "N_NEXT")
    elif nexts:
        raise GraphError(f"node {name!r}: next rows given without their Next enum")
    if Error is not None:
        check_enum(name, Error, "ERROR_", [r[0] for r in rows], "N_ERROR")
    elif len(rows) > 1:
        raise GraphError(f"node {name!r}: error rows given without their Error enum")
    next_nodes = kw.pop("next_nodes", None)      # arcs known only at build (a device's DefaultNext)
    if next_nodes is not None and nexts:
        raise GraphError(f"node {name!r}: give nexts or next_nodes, not both")
    summary = (doc or "").strip().split("\n\n")[0]
    return Node(name, fn=fn, next_nodes=tuple(t for _, t in nexts) if next_nodes is None else next_nodes,
                errors=tuple(rows), data_size=data_size, doc=summary, kit=True, **(trace or {}), **kw)
