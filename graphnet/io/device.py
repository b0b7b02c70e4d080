"""The base of every device (TAP, AF_PACKET, pcap): an interface in the
engine's table plus an input node and a tx node.

Node names are ``<kind>-input-<ifname>`` and ``<kind>-output-<ifname>``, so
one interface's rx mode is its input node's state; ``trace add tap-input N``
reaches every ``tap-input-*`` node. The tx node attaches itself to
``interface-output`` under its sw_if_index.

Admin state (``set_admin_up``) is graphnet's own; a device whose kernel
side graphnet owns (TAP) mirrors it as the kernel side's carrier through
``admin_state_changed(up)``, which the interface table calls after every
change; other devices leave the kernel alone.

Subclasses implement ``nodes()`` (returning both registrations) and
``close()``; ``open`` work (creating fds) happens in ``__init__`` so that
errors (no privilege, an interface that does not exist) surface where the
device is declared, with a clear message.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger("graphnet.device")

RX_MODES = ("polling", "interrupt", "adaptive")
RESOLVE_AGAIN_AFTER_UP = 0.05      # seconds after a link came up: unresolved neighbours asked for again


def flush_neighbours(engine, sw_if_index: int, incomplete_only: bool = False) -> int:
    """Flush an interface's dynamic IPv4 neighbours (static ones stay):
    on link down, and on admin down (the interface table calls it). Only
    if the IPv4 graph is loaded and has a neighbour table. Returns how many
    entries went."""
    neighbours = sys.modules.get("graphnet.fib.ip4_neighbor_table")
    if neighbours is None or engine not in neighbours._TABLES:
        return 0
    return neighbours.ip4_neighbors(engine).flush_interface(sw_if_index, incomplete_only)


def set_interface_mac(engine, sw_if_index: int, mac) -> None:
    """An interface's new MAC, in the table and in the FIB's rewrites on it,
    then announced by a gratuitous ARP for each of its IPv4 addresses so
    that neighbours update their entry at once (as Linux does on a MAC
    change) (loop thread, or the engine stopped)."""
    engine.interfaces.set_mac(sw_if_index, mac)
    fib = sys.modules.get("graphnet.fib.ip4_fib")
    if fib is not None and engine in fib._FIBS:
        fib.ip4_fib(engine).interface_mac_changed(sw_if_index)
    neighbours = sys.modules.get("graphnet.fib.ip4_neighbor_table")
    if neighbours is not None and engine in neighbours._TABLES:
        neighbours.ip4_neighbors(engine).announce(sw_if_index)


class DefaultNext:
    """The next node of a device's input when none was given, resolved when
    the graph is built: ``ethernet-input`` if the graph has it, else
    ``null``. Used as a Node's ``next_nodes``."""

    def __init__(self, engine):
        self.engine = engine

    def _pick(self):
        return "ethernet-input" if "ethernet-input" in self.engine.registrations else "null"

    def __iter__(self):
        return iter((self._pick(),))

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return (self._pick(),)[i]

    def __repr__(self):
        return "(ethernet-input or null)"


class DeviceError(RuntimeError):
    """A device cannot be created or used; the message says why."""


class Device:
    kind = "device"

    def __init__(self, engine, name: str, *, mac=None, mtu: int = 1500, rx_mode: str = "interrupt"):
        if rx_mode not in RX_MODES:
            raise DeviceError(f"rx-mode {rx_mode!r}: use one of {', '.join(RX_MODES)}")
        self.engine = engine
        self.name = name
        self.rx_mode = rx_mode
        self.mtu = mtu
        self.sw_if_index = engine.interfaces.add(name, self.kind, self, mac or self.default_mac(), mtu)
        self.input_node = f"{self.kind}-input-{name}"
        self.output_node = f"{self.kind}-output-{name}"
        engine.on_close.append(self.close)

    def default_mac(self) -> bytes:
        """A locally administered MAC derived from the interface index."""
        n = len(self.engine.interfaces)
        return bytes([0x02, 0x67, 0x6e, 0x00, (n >> 8) & 0xff, n & 0xff])

    def node_state(self):
        """(state, adaptive) for the input node registration."""
        if self.rx_mode == "adaptive":
            return "interrupt", True
        return self.rx_mode, False

    def set_rx_mode(self, mode: str) -> None:
        if mode not in RX_MODES:
            raise DeviceError(f"rx-mode {mode!r}: use one of {', '.join(RX_MODES)}")
        self.engine.set_node_state(self.input_node, mode)
        self.rx_mode = mode

    def set_admin_up(self, up: bool) -> None:
        """Set graphnet's admin state of this interface (in the loop's
        thread). Down: TAP and AF_PACKET input nodes still drain what the
        kernel hands over and drop it, counted as ``interface-down``
        (rx_drops; a pcap device pauses its replay), and nothing is sent: interface-output and the tx node drop it, counted
        as ``interface-down`` (tx_drops). The interface table then calls
        the device's ``admin_state_changed(up)`` if it has one: a TAP,
        whose kernel side graphnet owns, turns its carrier off/on with it.
        An AF_PACKET device attaches to a link graphnet does not own and
        leaves the kernel link as it is (up, carrier on)."""
        self.engine.call(self.engine.interfaces.set_admin_up, self.sw_if_index, up)

    def kernel_link_changed(self, up: bool) -> None:
        """The kernel link under this interface went up, or down / away
        (loop thread; devices call it from their link events). The
        interface table's link state follows (interface-output drops what
        is routed to a link that is down, as ``link-down``); going down,
        the interface's dynamic neighbours are flushed, their queued
        packets dropped and counted, so nothing waits on a dead link and
        the next packet after up resolves afresh."""
        self.engine.interfaces.set_link_up(self.sw_if_index, up)
        if not up:
            self._flush_neighbours(False)
        else:
            # The peer may not take frames yet in the instant our side comes
            # up (its own carrier event is handled a moment later), so a
            # request sent then can be lost: 50 ms on, unresolved neighbours
            # are dropped and the next packet asks again at once.
            from graphnet.io.link_events import link_watcher
            link_watcher(self.engine).call_later(RESOLVE_AGAIN_AFTER_UP, self._flush_neighbours, True)

    def _flush_neighbours(self, incomplete_only: bool) -> None:
        if self.engine.interfaces.devices[self.sw_if_index] is self:
            flush_neighbours(self.engine, self.sw_if_index, incomplete_only)

    def delete(self) -> None:
        """Remove this interface from a running engine (``delete tap``,
        ``delete host-interface``), in the loop's thread: its IPv4 addresses
        (and so their routes and neighbours) go, its dynamic neighbours are
        flushed, the device closes (fds, rings, held buffers), its input
        node is disabled and the interface leaves the table. Its nodes stay
        in the graph, idle; a device of the same kind and name made later
        takes them (and the sw_if_index) back."""
        eng = self.engine

        def remove():
            addresses = sys.modules.get("graphnet.fib.ip4_address")
            if addresses is not None and eng in addresses._TABLES:
                table = addresses.ip4_addresses(eng)
                for cidr in table.get(self.sw_if_index):
                    table.delete(self.sw_if_index, cidr)
            self.kernel_link_changed(False)
            self.close()
            if eng.main is not None and self.input_node in eng.index:
                from graphnet.vlib.main import STATE_DISABLED
                eng.main.set_state(eng.index[self.input_node], STATE_DISABLED, False)
            eng.interfaces.delete(self.sw_if_index)
            if self.close in eng.on_close:
                eng.on_close.remove(self.close)
        eng.call(remove)

    def add_to_engine(self) -> None:
        """Put a device made after the graph was built into it (loop
        thread): new nodes grow the graph; a re-made interface takes back
        the nodes of the deleted one of the same name."""
        self.engine.grow(self, reuse=True)

    def set_promiscuous(self, on: bool) -> None:
        """Accept unicast frames for other MACs (the interface table's flag,
        read by ethernet-input). Devices with a kernel-side setting
        (AF_PACKET) override this to change it too."""
        self.engine.call(self.engine.interfaces.set_promiscuous, self.sw_if_index, bool(on))

    def nodes(self):  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass

    def hardware_info(self) -> dict:
        """Device details for ``show hardware`` (fd, offloads, queues...)."""
        return {}

    def max_mtu(self) -> int:
        """The largest MTU this device can take at run time."""
        return 65535

    def set_mtu(self, mtu: int) -> None:
        """``set interface mtu``: the interface's MTU (68..max_mtu()); a
        device whose kernel side graphnet owns (TAP) sets it there too."""
        if not 68 <= mtu <= self.max_mtu():
            raise DeviceError(f"{self.name}: MTU {mtu} is outside 68..{self.max_mtu()}")
        self.engine.call(self.engine.interfaces.set_mtu, self.sw_if_index, mtu)
        self.kernel_mtu_changed(mtu)

    def kernel_mtu_changed(self, mtu: int) -> None:
        """Make the kernel side follow a new MTU (nothing by default: an
        AF_PACKET link is not graphnet's)."""

    def set_mac(self, mac) -> None:
        """``set interface mac address``: graphnet's MAC on this interface;
        the FIB's rewrites on it follow (``Ip4Fib.interface_mac_changed``)."""
        self.engine.call(set_interface_mac, self.engine, self.sw_if_index, mac)

    def cached_buffers(self) -> int:
        """Free buffers this device keeps allocated for its own use (rx
        spares), not held by any packet: ``show buffers`` reports them as
        "device cache", apart from buffers in use by packets. Call it in
        the loop's thread (``engine.call``) or with the loop stopped.
        Devices that cache nothing (AF_PACKET copies from its ring into
        buffers it allocates per frame) keep this default."""
        return 0
