"""``fault-inject``: drops, corrupts, duplicates, reorders and delays
packets at configured rates, seeded and counted: loss for tests on a
kernel without netem (issue 13 item 7).

Placed on any arc of any graph: ``fault_inject(name, next_node,
direction)`` makes the node, its ``<name>-delay`` companion and the
controller; the node hands every packet on to ``next_node``. ``attach(engine,
interface, "rx"|"tx")`` puts one behind an interface's input node (rx) or
in front of its tx node (tx) in a running graph, without naming arcs: that
is what ``set fault-inject <if> rx|tx ...`` and the startup file's
``[[fault_inject]]`` use.

The rates are per interface: the packet's ``sw_if_index[RX]`` for
direction ``rx``, ``sw_if_index[TX]`` for ``tx``, with a default for
interfaces without their own. Per packet, in order: drop (to error-drop,
``dropped``), corrupt (one random bit of its first buffer's bytes flipped,
``corrupted``; the flip stands for the wire, after the sender's checksum,
so an IPv4 TCP or UDP frame whose L4 checksum was left to offload (a TAP
frame from the kernel: GN_BUFFER_F_L4_CSUM_OFFLOAD) first gets its full
checksum and loses the flag, and the receiver's check catches the flip;
a GSO super-frame on tx still goes out with NEEDS_CSUM, the kernel
computing checksums per segment after the flip, so that flip is not
caught), duplicate (a copy of the whole chain follows it,
``duplicated``; ``no-buffer`` when the pool is empty), reorder (held back
and sent after the next packet of the frame that is not held,
``reordered``; a packet picked at the end of a frame has no next one and
goes last, in its place, not counted), delay (what
leaves is held for the interface's delay, ``delayed``).

Delay: held packets wait in one FIFO ring per node, bounded by a share of
the buffer pool (``pool_share``, default 1/8, counted in buffers, chains
whole); a packet that does not fit is dropped as ``delay-full``. They
leave in arrival order when their time has come: on the node's next
dispatch, or when the engine's timer wheel raises ``<name>-delay``
(armed for the oldest held packet). The loop never blocks. With
different delays per interface a packet may wait for an older one with a
longer delay (the ring is FIFO); a packet with no delay never waits. The
held buffers count in ``show buffers``' queued and are freed when the
engine closes.

The random numbers come from one xorshift64* state per node, seeded by
``set(seed=...)``: the same seed and the same input give the same faults.

Metadata used: sw_if_index, current_data/current_length, chains, flags
(L4_CSUM_OFFLOAD). Set: flags (a corrupted frame's L4_CSUM_OFFLOAD
cleared; corrupt changes a byte, and the L4 checksum of such a frame). Next nodes: the one given. Errors:
``dropped``, ``delay-full`` (drops); ``corrupted``, ``duplicated``,
``reordered``, ``delayed`` (counts, not drops); ``no-buffer`` (a duplicate
not made). Trace: the interface and the first bytes (ethernet header).
"""
import re

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from graphnet.includes.platform cimport gn_time_ns
from graphnet.vlib.buffer cimport (gn_buffer_t, gn_frame_t, GN_BUFFER_F_NEXT_PRESENT, GN_BUFFER_F_TRACED, GN_FRAME_F_TRACE,
                                   GN_BUFFER_F_L4_CSUM_OFFLOAD, GN_INVALID_INDEX, GN_RX, GN_TX, gn_buffer_current)
from graphnet.includes.byteorder cimport gn_net16
from graphnet.nodes.ip4_csum cimport gn_ip4_fill_l4_checksum
from graphnet.vlib.main cimport (gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_main_alloc, gn_main_free,
                                 gn_next_buffers_t, gn_next_buffers_put, gn_next_buffers_flush,
                                 gn_node_increment_error, gn_buffer_set_error, gn_node_schedule_interrupt)
from graphnet.vlib.kit cimport gn_node_fn, gn_node_data
from graphnet.io.interface cimport GN_MAX_INTERFACES
from graphnet.vlib.timer cimport GN_TIMER_NONE
from graphnet.vlib import buffer_usage
from graphnet.vlib.kit import node, trace_bytes
from graphnet.vlib.per_engine import per_engine
from graphnet.wire.ethernet import format_ethernet_header

cpdef enum Next:
    NEXT_NEXT, N_NEXT
cpdef enum Error:
    ERROR_NONE, ERROR_DROPPED, ERROR_CORRUPTED, ERROR_DUPLICATED, ERROR_REORDERED, ERROR_DELAYED, \
        ERROR_DELAY_FULL, ERROR_NO_BUFFER, N_ERROR

cdef enum:
    PPM = 1000000
    MAX_CHAIN = 64                        # buffers copied per duplicate (a 64 KB chain is 33)
    N_RATES = 4

ERRORS = (
    ("none", "info", "no error"),
    ("dropped", "error", "dropped by fault injection"),
    ("corrupted", "info", "a bit flipped by fault injection"),
    ("duplicated", "info", "duplicated by fault injection"),
    ("reordered", "info", "sent after the next packet by fault injection"),
    ("delayed", "info", "held for the delay by fault injection"),
    ("delay-full", "error", "dropped: the delay queue's share of the buffer pool is full"),
    ("no-buffer", "warn", "duplicate not made: no free buffer (or a chain too long)"),
)
FAULTS = ("drop", "corrupt", "duplicate", "reorder")     # rates, in ppm[] order
ALIASES = {"dup": "duplicate"}
DEFAULT_POOL_SHARE = 0.125
MAX_DELAY = 10.0                          # seconds
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

ctypedef struct fi_rates_t:
    uint32_t ppm[N_RATES]                 # drop, corrupt, duplicate, reorder: parts per million
    uint64_t delay_ns
    uint8_t set                           # this interface has its own rates

ctypedef struct fi_held_t:
    uint32_t bi
    uint32_t n_buffers                    # of its chain
    uint64_t due_ns

ctypedef struct fi_t:
    uint64_t rng
    uint8_t direction                     # GN_RX or GN_TX
    uint8_t timer_armed
    uint32_t delay_node_index
    fi_held_t* ring                       # owned by a _Ring in node_data[name].keep
    uint32_t ring_cap                     # == max_buffers: every packet holds >= 1 buffer
    uint32_t head
    uint32_t n_held                       # packets in the ring
    uint32_t n_buffers                    # their buffers
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


cdef inline void _checksum_before_flip(gn_main_t* vm, gn_buffer_t* b) noexcept nogil:
    """b's L4 checksum was left to offload: fill in an IPv4 TCP/UDP
    frame's full checksum, as a sender's NIC would before the wire, and
    clear the flag so that the receiver checks it. Frames of other kinds
    keep their flag."""
    cdef uint8_t* p = gn_buffer_current(b)
    cdef uint8_t* ip
    cdef uint32_t l3 = 14, hlen, et
    if b.current_length < 18:
        return
    et = gn_net16(p + 12)
    if et == 0x8100 or et == 0x88a8:              # one VLAN tag
        l3 = 18
        et = gn_net16(p + 16)
    if et != 0x0800 or b.current_length < l3 + 20:
        return
    ip = p + l3
    hlen = (ip[0] & 15) * 4
    if ip[0] >> 4 != 4 or hlen < 20 or b.current_length < l3 + hlen:
        return
    gn_ip4_fill_l4_checksum(vm, b, ip, hlen, gn_net16(ip + 2))
    b.flags &= ~GN_BUFFER_F_L4_CSUM_OFFLOAD


cdef inline uint32_t _n_buffers(gn_main_t* vm, uint32_t bi) noexcept nogil:
    cdef uint32_t n = 1
    cdef gn_buffer_t* b = gn_main_buffer(vm, bi)
    while b.flags & GN_BUFFER_F_NEXT_PRESENT:
        n += 1
        b = gn_main_buffer(vm, b.next_buffer)
    return n


cdef inline void _emit(gn_main_t* vm, gn_node_runtime_t* node, fi_t* f, gn_next_buffers_t* out, uint32_t bi,
                       uint64_t delay_ns, uint64_t now, uint64_t* counts) noexcept nogil:
    """Send bi on, or hold it for delay_ns (dropped as delay-full when the
    ring's share of the pool is used up)."""
    cdef uint32_t nb
    cdef fi_held_t* h
    if delay_ns == 0:
        gn_next_buffers_put(vm, node, out, bi, NEXT_NEXT)
        return
    nb = _n_buffers(vm, bi)
    if f.n_buffers + nb > f.ring_cap:
        gn_buffer_set_error(node, gn_main_buffer(vm, bi), ERROR_DELAY_FULL)
        gn_next_buffers_put(vm, node, out, bi, node.drop_next)
        return
    h = &f.ring[(f.head + f.n_held) % f.ring_cap]
    h.bi = bi
    h.n_buffers = nb
    h.due_ns = now + delay_ns
    f.n_held += 1
    f.n_buffers += nb
    counts[<int>ERROR_DELAYED] += 1


cdef inline uint32_t _release(gn_main_t* vm, gn_node_runtime_t* node, fi_t* f, gn_next_buffers_t* out,
                              uint64_t now) noexcept nogil:
    """Send on the held packets whose time has come, oldest first."""
    cdef uint32_t n = 0
    cdef fi_held_t* h
    while f.n_held:
        h = &f.ring[f.head]
        if h.due_ns > now:
            break
        if gn_main_buffer(vm, h.bi).flags & GN_BUFFER_F_TRACED:
            vm.current_frame_flags |= GN_FRAME_F_TRACE      # traced on from here (a frame of its own)
        gn_next_buffers_put(vm, node, out, h.bi, NEXT_NEXT)
        f.n_buffers -= h.n_buffers
        f.head = (f.head + 1) % f.ring_cap
        f.n_held -= 1
        n += 1
    return n


cdef inline void _arm(gn_main_t* vm, fi_t* f, uint64_t now) noexcept nogil:
    """Wake the delay node when the oldest held packet is due."""
    cdef uint64_t due, ticks
    if f.timer_armed or f.n_held == 0:
        return
    due = f.ring[f.head].due_ns
    ticks = (due - now) // vm.timers.tick_ns + 1 if due > now else 1
    # no timer (out of memory): not armed, so the next dispatch tries again
    f.timer_armed = gn_node_schedule_interrupt(vm, f.delay_node_index, ticks) != GN_TIMER_NONE


cdef uint32_t fault_inject_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef fi_t* f = <fi_t*>node.runtime_data
    cdef gn_next_buffers_t out
    cdef uint32_t i, bi, sw, held = GN_INVALID_INDEX, copy, off
    cdef uint64_t counts[N_ERROR]
    cdef uint64_t now = gn_time_ns()
    cdef uint64_t held_delay = 0
    cdef fi_rates_t* r
    cdef gn_buffer_t* b
    memset(counts, 0, sizeof(counts))
    out.n = 0
    _release(vm, node, f, &out, now)      # older than this frame's packets
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
            if b.flags & GN_BUFFER_F_L4_CSUM_OFFLOAD:
                _checksum_before_flip(vm, b)
            off = _rand_ppm(f) % (b.current_length * 8)
            gn_buffer_current(b)[off >> 3] ^= <uint8_t>(1 << (off & 7))
            counts[<int>ERROR_CORRUPTED] += 1
        copy = GN_INVALID_INDEX
        if _hit(f, r.ppm[2]):
            copy = _clone_chain(vm, bi)
            counts[<int>(ERROR_DUPLICATED if copy != GN_INVALID_INDEX else ERROR_NO_BUFFER)] += 1
        if held == GN_INVALID_INDEX and _hit(f, r.ppm[3]):
            held = bi                     # goes out after the next packet
            held_delay = r.delay_ns
        else:
            _emit(vm, node, f, &out, bi, r.delay_ns, now, counts)
            if held != GN_INVALID_INDEX:
                _emit(vm, node, f, &out, held, held_delay, now, counts)
                counts[<int>ERROR_REORDERED] += 1
                held = GN_INVALID_INDEX
        if copy != GN_INVALID_INDEX:
            _emit(vm, node, f, &out, copy, r.delay_ns, now, counts)
    if held != GN_INVALID_INDEX:
        _emit(vm, node, f, &out, held, held_delay, now, counts)
    gn_next_buffers_flush(vm, node, &out)
    for i in range(ERROR_CORRUPTED, N_ERROR):
        if counts[i]:
            gn_node_increment_error(vm, node, i, counts[i])
    _arm(vm, f, now)
    return frame.n_vectors


cdef uint32_t fault_inject_delay_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    """The companion input node, raised by the timer wheel: sends on the
    held packets that are due, arms the timer for the next."""
    cdef fi_t* f = <fi_t*>node.runtime_data
    cdef gn_next_buffers_t out
    cdef uint64_t now = gn_time_ns()
    cdef uint32_t n
    out.n = 0
    f.timer_armed = 0
    n = _release(vm, node, f, &out, now)
    gn_next_buffers_flush(vm, node, &out)
    _arm(vm, f, now)
    return n


FAULT_INJECT_FN = gn_node_fn(fault_inject_fn)
DELAY_FN = gn_node_fn(fault_inject_delay_fn)


# --- configuration -------------------------------------------------------------------

def parse_delay(str v):
    """``10ms``, ``500us``, ``0.2s`` (or a bare number of ms) -> seconds,
    0..MAX_DELAY. ValueError saying what is expected."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s)?", v)
    if not m:
        raise ValueError(f"delay {v!r}: a time like 10ms, 500us or 0.2s")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "ms"]
    if seconds > MAX_DELAY:
        raise ValueError(f"delay {v!r}: at most {MAX_DELAY:g}s")
    return seconds


def parse_faults(words):
    """``drop 5% dup 1% reorder 2% delay 10ms corrupt 0.1% [seed N]`` (words
    or a string) -> dict of rates (fractions), ``delay`` (seconds) and
    ``seed``. ``dup`` is ``duplicate``. Raises ValueError naming the word
    at fault."""
    if isinstance(words, str):
        words = words.split()
    words = list(words)
    if not words:
        raise ValueError(f"give faults: {', '.join(FAULTS)} <rate>%, delay <time>, seed <n>, or off")
    out = {}
    i = 0
    while i < len(words):
        w = ALIASES.get(words[i], words[i])
        if w not in FAULTS and w not in ("delay", "seed"):
            raise ValueError(f"unknown fault {words[i]!r}: choose from {', '.join(FAULTS)}, dup, delay, seed")
        if i + 1 >= len(words):
            raise ValueError(f"{words[i]!r} needs a value")
        v = words[i + 1]
        if w in out:
            raise ValueError(f"{words[i]!r} given twice")
        if w == "seed":
            if not v.isdigit() or int(v) >= 1 << 64:
                raise ValueError(f"seed {v!r}: a whole number 0..2**64-1")
            out["seed"] = int(v)
        elif w == "delay":
            out["delay"] = parse_delay(v)
        else:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)%", v)
            if not m or float(m.group(1)) > 100:
                raise ValueError(f"{words[i]} {v!r}: a rate like 5% or 0.1% (0-100%)")
            out[w] = float(m.group(1)) / 100
        i += 2
    return out


def check_rates(rates: dict) -> None:
    """ValueError unless rates has only known faults as fractions 0..1 and
    delay as seconds 0..MAX_DELAY."""
    for k, v in rates.items():
        if k == "delay":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= MAX_DELAY:
                raise ValueError(f"delay {v!r}: 0..{MAX_DELAY:g} seconds")
        elif k not in FAULTS:
            raise ValueError(f"unknown fault {k!r}: choose from {', '.join(FAULTS)}, delay")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"{k} rate {v!r}: between 0 and 1")


cdef class _Ring:
    """The delay ring's memory (kept in the node's NodeData.keep)."""
    cdef fi_held_t* ring

    def __cinit__(self, uint32_t n):
        self.ring = <fi_held_t*>calloc(max(1, n), sizeof(fi_held_t))
        if self.ring == NULL:
            raise MemoryError(f"fault-inject delay ring of {n} entries")

    def __dealloc__(self):
        free(self.ring)


_CONTROLLERS = per_engine()      # engine -> {node name: FaultInject}


cdef class FaultInject:
    """The controller of one fault-inject node: rates per interface (the
    settings are kept here and written to the node's C state once the
    graph is built, so they may be given before)."""
    cdef fi_t* f
    cdef readonly str name
    cdef readonly str direction
    cdef readonly double pool_share
    cdef readonly object seed
    cdef public object interface            # the interface attach() put it on, or None
    cdef dict _rates                        # sw_if_index or None -> {fault: fraction, "delay": seconds}
    cdef object _engine

    def __init__(self, str name, str direction, pool_share=DEFAULT_POOL_SHARE):
        if direction not in ("rx", "tx"):
            raise ValueError(f"direction {direction!r}: rx or tx")
        if isinstance(pool_share, bool) or not isinstance(pool_share, (int, float)) or not 0 < pool_share <= 1:
            raise ValueError(f"pool_share {pool_share!r}: a share of the buffer pool, 0 < share <= 1")
        self.name = name
        self.direction = direction
        self.pool_share = pool_share
        self.seed = None
        self.interface = None
        self._rates = {}

    def _setup(self, engine, node_index):
        cdef fi_t* f = <fi_t*>gn_node_data(engine, self.name)
        cdef uint32_t cap = max(1, <uint32_t>(self.pool_share * engine.pool.stats()["total"]))
        ring = _Ring(cap)
        engine.node_data[self.name].keep = ring
        f.ring = ring.ring
        f.ring_cap = cap
        f.direction = GN_RX if self.direction == "rx" else GN_TX
        f.delay_node_index = engine.index[self.name + "-delay"]
        f.rng = 0x9E3779B97F4A7C15
        self.f = f
        self._engine = engine
        _CONTROLLERS.setdefault(engine, {})[self.name] = self
        self._write(self.seed)

    def _setup_delay(self, engine, node_index):
        engine.main.set_runtime_data(node_index, engine.node_data[self.name].capsule())

    def _teardown(self, engine, node_index):
        """Free the held packets (the engine is closing)."""
        cdef fi_t* f
        cdef gn_main_t* vm
        if engine.main is None or self.name not in engine.node_data:
            return
        f = <fi_t*>gn_node_data(engine, self.name)
        vm = <gn_main_t*><size_t>engine.main.address
        while f.n_held:
            gn_main_free(vm, &f.ring[f.head].bi, 1)
            f.head = (f.head + 1) % f.ring_cap
            f.n_held -= 1
        f.n_buffers = 0
        if f == self.f:
            self.f = NULL
            self._engine = None

    cdef int _write_rates(self, fi_rates_t* r, dict rates) except -1:
        for k, name in enumerate(FAULTS):
            r.ppm[k] = <uint32_t>round(rates.get(name, 0.0) * PPM)
        r.delay_ns = <uint64_t>round(rates.get("delay", 0.0) * 1e9)
        return 0

    def _write(self, seed):
        """Copy the settings into the C state (loop thread, or stopped)."""
        cdef fi_t* f = self.f
        if f == NULL:
            return
        if seed is not None:
            f.rng = (<uint64_t>seed * 0x9E3779B97F4A7C15ULL) | 1
        for sw, rates in self._rates.items():
            if sw is None:
                self._write_rates(&f.dflt, rates)
            else:
                self._write_rates(&f.per_if[<uint32_t>sw], rates)
                f.per_if[<uint32_t>sw].set = 1

    def set(self, sw_if_index=None, *, seed=None, **rates):
        """Rates as fractions (drop=0.05 ...) and ``delay`` in seconds for
        one interface, or the default (sw_if_index None); only the rates
        given change. ``seed`` restarts the random numbers."""
        check_rates(rates)
        if sw_if_index is not None and not 0 <= sw_if_index < GN_MAX_INTERFACES:
            raise ValueError(f"sw_if_index {sw_if_index} out of range")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 64:
                raise ValueError(f"seed {seed!r}: a whole number 0..2**64-1")
            self.seed = seed
        self._rates.setdefault(sw_if_index, {}).update(rates)
        if self._engine is not None:
            self._engine.call(self._write, seed)

    def off(self, sw_if_index=None):
        """Every rate and the delay to 0 (held packets still leave on time)."""
        self.set(sw_if_index, **{k: 0.0 for k in FAULTS + ("delay",)})

    def rates(self, sw_if_index=None):
        """{fault: fraction, "delay": seconds} in force for an interface."""
        r = self._rates.get(sw_if_index, self._rates.get(None, {}))
        return {k: float(r.get(k, 0.0)) for k in FAULTS + ("delay",)}

    def held(self):
        """(packets, buffers) waiting out their delay, and the ring's
        capacity in buffers (0s before the graph is built)."""
        if self.f == NULL:
            return {"packets": 0, "buffers": 0, "max_buffers": 0}
        return {"packets": self.f.n_held, "buffers": self.f.n_buffers, "max_buffers": self.f.ring_cap}

    def stats(self):
        """What ``show fault-inject`` shows of this node."""
        counts = {}
        if self._engine is not None:
            counts = {row[0]: self._engine.error_count(self.name, row[0]) for row in ERRORS[1:]}
        return {"node": self.name, "direction": self.direction, "interface": self.interface,
                "rates": self.rates(self._sw()), "seed": self.seed, "pool_share": self.pool_share,
                "held": self.held(), "counters": counts}

    def _sw(self):
        if self.interface is None or self._engine is None:
            return None
        try:
            return self._engine.interfaces.index(self.interface)
        except KeyError:
            return None


def fault_inject(name="fault-inject", next_node="null", direction="rx", *, pool_share=DEFAULT_POOL_SHARE):
    """((the node, its ``<name>-delay`` companion), FaultInject controller)
    for a node on the arc to ``next_node``."""
    ctl = FaultInject(name, direction, pool_share)
    nexts = (("next", next_node),)
    regs = (node(name, FAULT_INJECT_FN, nexts=nexts, Next=Next, errors=ERRORS, Error=Error,
                 data_size=sizeof(fi_t), setup=ctl._setup, teardown=ctl._teardown,
                 instance=ctl, trace=trace_bytes(32, format_ethernet_header, direction), doc=__doc__),
            node(name + "-delay", DELAY_FN, nexts=nexts, Next=Next, type="input", state="interrupt",
                 setup=ctl._setup_delay, instance=ctl,
                 doc=f"Sends on the packets {name} held for their delay (woken by the timer wheel)."))
    return regs, ctl


def controllers(engine) -> dict:
    """{node name: FaultInject} of the engine's fault-inject nodes."""
    return _CONTROLLERS.get(engine, {})


def attach(engine, interface, str direction, pool_share=DEFAULT_POOL_SHARE) -> FaultInject:
    """The fault-inject node of one interface and direction, put in the
    graph the first time: ``fault-inject-rx-<if>`` between the interface's
    input node and what it feeds, ``fault-inject-tx-<if>`` between
    interface-output and the interface's tx node (the arc is redirected:
    Engine.redirect). It stays once there, also when the interface is
    deleted and made again (``off`` sets its rates to 0). Keyed on the
    interface: its rates are set with ``set(sw_if_index, ...)``."""
    if direction not in ("rx", "tx"):
        raise ValueError(f"direction {direction!r}: rx or tx")
    engine.build()
    sw = engine.interfaces.index(interface)
    ifname = engine.interfaces.names[sw]
    name = f"fault-inject-{direction}-{ifname}"
    have = controllers(engine).get(name)
    if have is not None:
        return have
    dev = engine.interfaces.devices[sw]
    if direction == "rx":
        src = getattr(dev, "input_node", None)
        if src is None:
            raise ValueError(f"interface {ifname!r} has no input node")
        target = engine.next_names[src][0]
    else:
        src = "interface-output"
        tx = [n.name for n in engine.registrations.values() if ("interface-output", sw) in tuple(n.attach_to)]
        if not tx:
            raise ValueError(f"interface {ifname!r} has no tx node")
        target = tx[0]
    regs, ctl = fault_inject(name, target, direction, pool_share=pool_share)
    engine.grow(regs)
    engine.redirect(src, target, name)
    ctl.interface = ifname
    return ctl


def _queued_buffers(engine) -> int:
    """Buffers held for their delay (``show buffers``' queued)."""
    return sum(c.held()["buffers"] for c in controllers(engine).values())


buffer_usage.register_queue(_queued_buffers)

# A node for graphs that name it (its controller follows the engine built
# last); interfaces get their own through attach().
NODES = fault_inject()[0]
FEATURE = None
