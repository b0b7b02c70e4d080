"""``fault-inject``: drops, duplicates, reorders and corrupts packets at
configured rates, seeded and counted: loss for tests on a kernel without
netem (issue 13 item 7).

Placed on any arc of any graph: ``fault_inject(name, next_node,
direction)`` makes the node (and its controller) that hands every packet
on to ``next_node``. The rates are per interface: the packet's
``sw_if_index[RX]`` for direction ``rx``, ``sw_if_index[TX]`` for ``tx``,
with a default for interfaces without their own. Per packet, in order:
drop (to error-drop, ``dropped``), corrupt (one random bit of its first
buffer's bytes flipped, ``corrupted``), duplicate (a copy of the whole
chain follows it, ``duplicated``; ``no-buffer`` when the pool is empty),
reorder (held back and sent after the next packet of the frame that is not
held, ``reordered``; a held packet at the end of a frame goes last).

The random numbers come from one xorshift64* state per node, seeded by
``set(seed=...)``: the same seed and the same input give the same faults.

Metadata used: sw_if_index, current_data/current_length, chains. Next
nodes: the one given. Errors: ``dropped`` (drop), ``corrupted``,
``duplicated``, ``reordered`` (counts, not drops), ``no-buffer``.

Not yet: delay (holding packets for a time), the CLI command ``set
fault-inject <if> rx|tx drop 5% ...`` and the startup-file key (the parser
is here: ``parse_faults``), and a hook that puts the node in front of an
interface's tx node or behind its input node without naming arcs.
"""
import re
import weakref

from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_TRACED,
                                   GN_INVALID_INDEX, GN_RX, GN_TX, gn_buffer_current)
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_next_buffers_t, gn_next_buffers_put, gn_next_buffers_flush,
                                 gn_node_increment_error, gn_buffer_set_error)
from graphnet.io.interface cimport GN_MAX_INTERFACES
from graphnet.vlib.node import Node

cdef enum:
    ERROR_DROPPED = 1
    ERROR_CORRUPTED = 2
    ERROR_DUPLICATED = 3
    ERROR_REORDERED = 4
    ERROR_NO_BUFFER = 5
    PPM = 1000000
    MAX_CHAIN = 64                        # buffers copied per duplicate (a 64 KB chain is 33)

ERRORS = (
    ("none", "info", "no error"),
    ("dropped", "warn", "dropped by fault injection"),
    ("corrupted", "info", "a bit flipped by fault injection"),
    ("duplicated", "info", "duplicated by fault injection"),
    ("reordered", "info", "sent after the next packet by fault injection"),
    ("no-buffer", "warn", "duplicate not made: no free buffer (or a chain too long)"),
)
FAULTS = ("drop", "corrupt", "duplicate", "reorder")

ctypedef struct fi_rates_t:
    uint32_t ppm[4]                       # drop, corrupt, duplicate, reorder: parts per million
    uint8_t set                           # this interface has its own rates

ctypedef struct fi_t:
    uint64_t rng
    uint8_t direction                     # GN_RX or GN_TX
    fi_rates_t dflt
    fi_rates_t per_if[GN_MAX_INTERFACES]


cdef inline uint32_t _rand_ppm(fi_t* f) noexcept nogil:
    """xorshift64*: a number in [0, 10**6)."""
    cdef uint64_t x = f.rng
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    f.rng = x
    return <uint32_t>(((x * 0x2545F4914F6CDD1DULL) >> 32) % PPM)


cdef inline bint _hit(fi_t* f, uint32_t ppm) noexcept nogil:
    return ppm != 0 and _rand_ppm(f) < ppm


cdef uint32_t _clone_chain(gn_main_t* vm, uint32_t bi) noexcept nogil:
    """A copy of the packet (every buffer of its chain, metadata and
    bytes), or GN_INVALID_INDEX when the pool is short."""
    cdef uint32_t copies[MAX_CHAIN]
    cdef uint32_t n = 0, cur = bi, i
    cdef gn_buffer_t* src
    cdef gn_buffer_t* dst
    while True:
        if n == MAX_CHAIN or gn_main_alloc(vm, &copies[n], 1) != 1:
            for i in range(n):            # unlinked copies: free one by one
                gn_main_buffer(vm, copies[i]).flags &= ~GN_BUFFER_F_NEXT_PRESENT
            if n:
                gn_main_free(vm, copies, n)
            return GN_INVALID_INDEX
        src = gn_main_buffer(vm, cur)
        dst = gn_main_buffer(vm, copies[n])
        memcpy(dst, src, sizeof(gn_buffer_t))
        dst.flags &= ~GN_BUFFER_F_TRACED
        if n:
            gn_main_buffer(vm, copies[n - 1]).next_buffer = copies[n]
        n += 1
        if not (src.flags & GN_BUFFER_F_NEXT_PRESENT):
            return copies[0]
        cur = src.next_buffer


cdef uint32_t fault_inject_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef fi_t* f = <fi_t*>node.runtime_data
    cdef gn_next_buffers_t out
    cdef uint32_t i, bi, sw, held = GN_INVALID_INDEX, copy, off
    cdef uint64_t counts[6]
    cdef fi_rates_t* r
    cdef gn_buffer_t* b
    memset(counts, 0, sizeof(counts))
    out.n = 0
    for i in range(frame.n_vectors):
        bi = frame.buffers[i]
        b = gn_main_buffer(vm, bi)
        sw = b.sw_if_index[f.direction]
        r = &f.per_if[sw] if sw < GN_MAX_INTERFACES and f.per_if[sw].set else &f.dflt
        if _hit(f, r.ppm[0]):
            gn_buffer_set_error(node, b, ERROR_DROPPED)
            gn_next_buffers_put(vm, node, &out, bi, node.drop_next)
            continue
        if b.current_length and _hit(f, r.ppm[1]):
            off = _rand_ppm(f) % (b.current_length * 8)
            gn_buffer_current(b)[off >> 3] ^= <uint8_t>(1 << (off & 7))
            counts[ERROR_CORRUPTED] += 1
        copy = GN_INVALID_INDEX
        if _hit(f, r.ppm[2]):
            copy = _clone_chain(vm, bi)
            counts[ERROR_DUPLICATED if copy != GN_INVALID_INDEX else ERROR_NO_BUFFER] += 1
        if held == GN_INVALID_INDEX and _hit(f, r.ppm[3]):
            held = bi                     # goes out after the next packet
            counts[ERROR_REORDERED] += 1
        else:
            gn_next_buffers_put(vm, node, &out, bi, 0)
            if held != GN_INVALID_INDEX:
                gn_next_buffers_put(vm, node, &out, held, 0)
                held = GN_INVALID_INDEX
        if copy != GN_INVALID_INDEX:
            gn_next_buffers_put(vm, node, &out, copy, 0)
    if held != GN_INVALID_INDEX:
        gn_next_buffers_put(vm, node, &out, held, 0)
    gn_next_buffers_flush(vm, node, &out)
    for i in range(2, 6):
        if counts[i]:
            gn_node_increment_error(vm, node, i, counts[i])
    return frame.n_vectors


def parse_faults(words):
    """``drop 5% duplicate 0.5% reorder 1% corrupt 0.1% [seed N]`` (words
    or a string) -> dict of rates (fractions) and seed. Raises ValueError
    naming the word at fault."""
    if isinstance(words, str):
        words = words.split()
    words = list(words)
    out = {}
    i = 0
    while i < len(words):
        w = words[i]
        if i + 1 >= len(words):
            raise ValueError(f"{w!r} needs a value")
        v = words[i + 1]
        if w == "seed":
            if not v.isdigit():
                raise ValueError(f"seed {v!r}: an integer")
            out["seed"] = int(v)
        elif w in FAULTS:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)%", v)
            if not m or float(m.group(1)) > 100:
                raise ValueError(f"{w} {v!r}: a rate like 5% or 0.1% (0-100%)")
            out[w] = float(m.group(1)) / 100
        else:
            raise ValueError(f"unknown fault {w!r}: choose from {', '.join(FAULTS)}, seed")
        i += 2
    return out


cdef class FaultInject:
    """The controller of one fault-inject node: rates per interface."""
    cdef fi_t* f
    cdef readonly str name
    cdef readonly str direction
    cdef object _engine

    def __cinit__(self):
        self.f = <fi_t*>calloc(1, sizeof(fi_t))
        if self.f == NULL:
            raise MemoryError()
        self.f.rng = 0x9E3779B97F4A7C15

    def __dealloc__(self):
        free(self.f)

    def __init__(self, str name, str direction):
        if direction not in ("rx", "tx"):
            raise ValueError(f"direction {direction!r}: rx or tx")
        self.name = name
        self.direction = direction
        self.f.direction = GN_RX if direction == "rx" else GN_TX

    def _setup(self, engine, node_index):
        self._engine = weakref.ref(engine)
        engine.main.set_runtime_data(node_index, PyCapsule_New(<void*>self.f, "gn_runtime_data", NULL))

    def _apply(self, sw_if_index, dict rates, seed):
        cdef fi_rates_t* r
        if seed is not None:
            self.f.rng = (<uint64_t>seed * 0x9E3779B97F4A7C15ULL) | 1
        if sw_if_index is None:
            r = &self.f.dflt
        else:
            if not 0 <= sw_if_index < GN_MAX_INTERFACES:
                raise ValueError(f"sw_if_index {sw_if_index} out of range")
            r = &self.f.per_if[sw_if_index]
            r.set = 1
        for k, name in enumerate(FAULTS):
            if name in rates:
                r.ppm[k] = <uint32_t>round(rates[name] * PPM)

    def set(self, sw_if_index=None, *, seed=None, **rates):
        """Rates as fractions (drop=0.05 ...) for one interface, or the
        default (sw_if_index None); only the rates given change."""
        for k, v in rates.items():
            if k not in FAULTS:
                raise ValueError(f"unknown fault {k!r}: choose from {', '.join(FAULTS)}")
            if not 0 <= v <= 1:
                raise ValueError(f"{k} rate {v}: between 0 and 1")
        engine = self._engine() if self._engine is not None else None
        if engine is not None and engine.running:
            engine.call(self._apply, sw_if_index, rates, seed)
        else:
            self._apply(sw_if_index, rates, seed)

    def rates(self, sw_if_index=None):
        cdef fi_rates_t* r = &self.f.dflt
        if sw_if_index is not None and self.f.per_if[sw_if_index].set:
            r = &self.f.per_if[sw_if_index]
        return {name: r.ppm[k] / PPM for k, name in enumerate(FAULTS)}


def fault_inject(name="fault-inject", next_node="null", direction="rx"):
    """(Node registration, FaultInject controller) for a node on the arc
    to ``next_node``."""
    ctl = FaultInject(name, direction)
    node = Node(name, fn=PyCapsule_New(<void*>fault_inject_fn, "gn_node_fn", NULL), next_nodes=(next_node,),
                errors=ERRORS, setup=ctl._setup, instance=ctl, doc=__doc__.split("\n\n")[0])
    return node, ctl
