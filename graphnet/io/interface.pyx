"""The interface table and ``interface-output``.

Every interface (TAP, AF_PACKET "host", pcap, ...) has a ``sw_if_index``,
a name, a kind, a MAC, an MTU, an admin state, an rx mode and C counters
that its device nodes update per frame. Indices are dense from 0 and never
reused while the engine lives; the table has a fixed capacity
(GN_MAX_INTERFACES) so device nodes can keep pointers to their records.

A device is an object with ``kind``, ``name``, ``nodes()`` (its input and
tx node registrations; the tx node names ``attach_to=(("interface-output",
sw_if_index),)``), ``input_node`` (name), ``open(engine)`` / ``close()``;
it calls ``table.add(...)`` to get its sw_if_index before the graph is
built.

interface-output: sends each buffer to the tx node of interface
``sw_if_index[TX]``. Metadata used: sw_if_index[TX]. Set: nothing. Next nodes: one per
interface's tx node (attached by the devices). Errors: ``invalid-interface``,
``interface-down`` (admin down), ``link-down`` (the kernel link is down,
deleted or lost: set by the devices from netlink link events); all drops.
Trace: the tx interface and the frame, decoded (kit.trace_ethernet).
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from graphnet.vlib.buffer cimport gn_buffer_t, gn_frame_t, GN_TX, GN_FRAME_SIZE
from graphnet.vlib.kit cimport gn_node_fn
from graphnet.vlib.main cimport gn_main_t, gn_node_runtime_t, gn_main_buffer, gn_enqueue_to_next, gn_buffer_set_error
from graphnet.vlib.kit import node, trace_ethernet
from graphnet.wire.ethernet import format_mac, parse_mac  # one MAC syntax (format_mac: here for old imports)
from graphnet.vlib.engine import register_extension

TX_CSUM = GN_IF_TX_CSUM          # InterfaceTable.set_tx_offloads flags (interface.pxd)
TX_TSO4 = GN_IF_TX_TSO4

cpdef enum Error:
    ERROR_NONE, ERROR_INVALID_INTERFACE, ERROR_INTERFACE_DOWN, ERROR_LINK_DOWN, N_ERROR

ERRORS = (("none", "info", "no error"),
          ("invalid-interface", "error", "no interface with this tx sw_if_index"),
          ("interface-down", "error", "tx interface is admin down"),
          ("link-down", "error", "tx interface's kernel link is down, deleted or lost"))

RX_MODES = ("polling", "interrupt", "adaptive")


cdef uint32_t interface_output_fn(gn_main_t* vm, gn_node_runtime_t* node, gn_frame_t* frame) noexcept nogil:
    cdef gn_interface_main_t* im = <gn_interface_main_t*>node.runtime_data
    cdef uint16_t nexts[GN_FRAME_SIZE]
    cdef uint32_t i
    cdef gn_buffer_t* b
    cdef gn_interface_t* hw
    for i in range(frame.n_vectors):
        b = gn_main_buffer(vm, frame.buffers[i])
        hw = gn_interface(im, b.sw_if_index[GN_TX])
        if hw == NULL:
            gn_buffer_set_error(node, b, ERROR_INVALID_INTERFACE)
            nexts[i] = node.drop_next
        elif not hw.admin_up or not hw.link_up:
            gn_buffer_set_error(node, b, ERROR_INTERFACE_DOWN if not hw.admin_up else ERROR_LINK_DOWN)
            hw.counters.tx_drops += 1
            nexts[i] = node.drop_next
        else:
            nexts[i] = hw.tx_next
    gn_enqueue_to_next(vm, node, frame.buffers, nexts, frame.n_vectors)
    return frame.n_vectors




cdef class InterfaceTable:
    """The engine's interfaces (see module docstring)."""

    def __cinit__(self):
        self.im = <gn_interface_main_t*>calloc(1, sizeof(gn_interface_main_t))
        if self.im == NULL:
            raise MemoryError()
        self.names = []
        self.kinds = []
        self.devices = []
        self.tx_nexts = {}

    def __dealloc__(self):
        free(self.im)

    def nodes(self):
        return (node("interface-output", gn_node_fn(interface_output_fn), errors=ERRORS, Error=Error,
                     setup=self._setup, on_attach=self._on_attach, instance=self, trace=trace_ethernet("tx"), doc=__doc__.split("\n\n")[2]),)

    def _setup(self, engine, node_index):
        self.engine = engine
        engine.main.set_runtime_data(node_index, PyCapsule_New(<void*>self.im, "gn_runtime_data", NULL))

    def _on_attach(self, engine, key, next_index):
        self.im.ifs[key].tx_next = next_index
        self.tx_nexts[key] = next_index

    def delete(self, name):
        """Remove an interface (its device is closed): interface-output
        drops what is still sent to it (invalid-interface); the name and
        index stay reserved for an interface of the same kind, which takes
        them back with add(). Call it in the loop's thread."""
        i = self.index(name)
        self.im.ifs[i].in_use = 0
        self.im.ifs[i].admin_up = 0
        self.im.ifs[i].link_up = 0
        self.devices[i] = None

    def deleted(self, name):
        """True for a name that belonged to a deleted interface."""
        return name in self.names and not self.im.ifs[self.names.index(name)].in_use

    def add(self, str name, str kind, device, mac=b"\x02\x00\x00\x00\x00\x00", int mtu=1500):
        """Register an interface; returns its sw_if_index. A deleted
        interface of the same name and kind is taken back (same index,
        counters zeroed): its device nodes are still in the graph."""
        cdef uint32_t i = self.im.n_ifs
        if not 68 <= mtu <= 65535:
            raise ValueError(f"MTU {mtu} is outside 68..65535")
        if name in self.names:
            i = self.names.index(name)
            if self.im.ifs[i].in_use:
                raise ValueError(f"an interface named {name!r} exists")
            if self.kinds[i] != kind:
                raise ValueError(f"the name {name!r} was a {self.kinds[i]} interface's (deleted); "
                                 f"a {kind} interface needs another name")
            m = parse_mac(mac)
            memset(&self.im.ifs[i], 0, sizeof(gn_interface_t))
            self.im.ifs[i].sw_if_index = i
            self.im.ifs[i].in_use = 1
            self.im.ifs[i].link_up = 1
            self.im.ifs[i].mtu = mtu
            self.im.ifs[i].tx_next = self.tx_nexts.get(i, 0)
            memcpy(self.im.ifs[i].mac, <const uint8_t*>m, 6)
            self.devices[i] = device
            return i
        if i >= GN_MAX_INTERFACES:
            raise ValueError(f"at most {GN_MAX_INTERFACES} interfaces")
        m = parse_mac(mac)
        self.im.ifs[i].sw_if_index = i
        self.im.ifs[i].in_use = 1
        self.im.ifs[i].admin_up = 0
        self.im.ifs[i].link_up = 1
        self.im.ifs[i].mtu = mtu
        memcpy(self.im.ifs[i].mac, <const uint8_t*>m, 6)
        self.im.n_ifs += 1
        self.names.append(name)
        self.kinds.append(kind)
        self.devices.append(device)
        return i

    def address(self, uint32_t sw_if_index):
        """Address of the gn_interface_t (for device modules' C state)."""
        self._check(sw_if_index)
        return <size_t>&self.im.ifs[sw_if_index]

    cdef int _check(self, uint32_t sw_if_index) except -1:
        if sw_if_index >= self.im.n_ifs:
            raise KeyError(f"no interface with sw_if_index {sw_if_index}")
        return 0

    def index(self, name):
        """sw_if_index of an interface by name (or an int passed through)."""
        if isinstance(name, int):
            self._check(name)
            return name
        if name in self.names and self.im.ifs[self.names.index(name)].in_use:
            return self.names.index(name)
        raise KeyError(f"no interface named {name!r}; interfaces: {', '.join(self) or 'none'}")

    def set_admin_up(self, name, bint up):
        """Set the admin state, then tell the device if it wants to know
        (``device.admin_state_changed(up)``: a TAP turns its kernel side's
        carrier on or off). Call it in the loop's thread or while the
        engine is stopped (``Device.set_admin_up`` does). Going down
        flushes the interface's dynamic IPv4 neighbours, their queued
        packets dropped and counted; static entries stay (as Linux does
        for NUD_PERMANENT on link down)."""
        i = self.index(name)
        was_up = self.im.ifs[i].admin_up
        self.im.ifs[i].admin_up = up
        if was_up and not up and self.engine is not None:
            from graphnet.io.device import flush_neighbours
            flush_neighbours(self.engine, i)
        hook = getattr(self.devices[i], "admin_state_changed", None)
        if hook is not None:
            hook(bool(up))

    def set_mtu(self, name, int mtu):
        """The interface's MTU (68..65535), read per packet by ip4-rewrite,
        ip4-frag and the devices' rx checks. Loop thread or engine stopped."""
        if not 68 <= mtu <= 65535:
            raise ValueError(f"MTU {mtu} is outside 68..65535")
        self.im.ifs[self.index(name)].mtu = mtu

    def set_mac(self, name, mac):
        """The interface's MAC (a unicast address): what ethernet-input
        accepts and what is sent from. Loop thread or engine stopped."""
        m = parse_mac(mac)
        if m[0] & 1:
            raise ValueError(f"{format_mac(m)} is a multicast MAC: an interface needs a unicast one")
        memcpy(self.im.ifs[self.index(name)].mac, <const uint8_t*>m, 6)

    def set_link_up(self, name, bint up):
        self.im.ifs[self.index(name)].link_up = up

    def set_promiscuous(self, name, bint on):
        self.im.ifs[self.index(name)].promiscuous = on

    def set_tx_offloads(self, name, uint8_t flags):
        """What the device does on tx: GN_IF_TX_* (``tx_offloads`` in info)."""
        self.im.ifs[self.index(name)].tx_offloads = flags

    def info(self, name):
        """A dict of one interface's state and counters."""
        cdef gn_interface_t* hw = &self.im.ifs[self.index(name)]
        i = hw.sw_if_index
        c = hw.counters
        return {"name": self.names[i], "sw_if_index": i, "kind": self.kinds[i], "mac": format_mac(hw.mac[:6]),
                "mtu": hw.mtu, "admin_up": bool(hw.admin_up), "link_up": bool(hw.link_up),
                "promiscuous": bool(hw.promiscuous),
                "tx_offloads": [n for n, f in (("csum", GN_IF_TX_CSUM), ("tso4", GN_IF_TX_TSO4)) if hw.tx_offloads & f],
                "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes, "tx_packets": c.tx_packets,
                "tx_bytes": c.tx_bytes, "rx_drops": c.rx_drops, "tx_drops": c.tx_drops,
                "rx_errors": c.rx_errors, "tx_errors": c.tx_errors, "tx_retries": c.tx_retries}

    def clear_counters(self):
        cdef uint32_t i
        for i in range(self.im.n_ifs):
            memset(&self.im.ifs[i].counters, 0, sizeof(gn_if_counters_t))

    def __len__(self):
        return self.im.n_ifs

    def __iter__(self):
        """Names of the interfaces, deleted ones left out."""
        return iter([n for i, n in enumerate(self.names) if self.im.ifs[i].in_use])


@register_extension
def _engine_interfaces(engine):
    """Every engine's interface table and interface-output."""
    engine.interfaces = InterfaceTable()
    engine.add(engine.interfaces.nodes())
