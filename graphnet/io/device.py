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

log = logging.getLogger("graphnet.device")

RX_MODES = ("polling", "interrupt", "adaptive")


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
