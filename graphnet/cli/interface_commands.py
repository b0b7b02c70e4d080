"""Interfaces made and removed at run time, as vppctl has them:

    create tap [id <n>] [host-if-name <name>] [host-ns <ns>] [host-ip4-addr <a.b.c.d/len>]
               [host-mac-addr <mac>] [hw-addr <mac>] [rx-mode polling|interrupt|adaptive]
    delete tap <name>
    create host-interface name <kernel-if> [netns <ns>] [hw-addr <mac>] [rx-mode ...]
    delete host-interface name <kernel-if> [netns <ns>]

The graph grows the new interface's nodes (``tap-input-<name>`` ...)
without a restart (``Engine.grow``). ``create tap`` names the interface
``tap<id>`` (the first free one without ``id``) and its kernel side
``host-if-name`` (default: the same name); with ``host-if-name`` and no
``id`` both sides take that name. A deleted interface's nodes stay in
the graph, idle, and the same name made again takes them and its
sw_if_index back, so create/delete cycles do not grow the graph.
``create host-interface`` on an interface that is attached already is
refused; on one that was detached because its kernel interface was deleted
(``show interface`` says ``deleted``) it attaches again. Every refusal is
one line naming the reason (no such interface or namespace, not Ethernet,
already attached, a name in use) and leaves the engine as it was.
"""
from __future__ import annotations

import contextlib

from graphnet.cli.registry import CommandError, UsageError, command

RX_MODES = ("polling", "interrupt", "adaptive")


def _options(args: list, allowed: dict, what: str) -> dict:
    """``key value`` pairs; allowed maps each key to a converter."""
    if len(args) % 2:
        raise UsageError(f"{what}: {args[-1]!r} needs a value")
    out = {}
    for key, value in zip(args[::2], args[1::2]):
        if key not in allowed:
            raise UsageError(f"{what}: unknown option {key!r} (options: {', '.join(allowed)})")
        if key in out:
            raise UsageError(f"{what}: {key} given twice")
        out[key] = allowed[key](value, key)
    return out


def _text(value: str, key: str) -> str:
    return value


def _rx_mode(value: str, key: str) -> str:
    if value not in RX_MODES:
        raise UsageError(f"rx-mode {value!r}: use {'|'.join(RX_MODES)}")
    return value


def _tap_id(value: str, key: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"id must be a number, not {value!r}") from None
    if not 0 <= n <= 99999:
        raise UsageError(f"id {n} is outside 0..99999")
    return n


def _cidr(value: str, key: str) -> str:
    import ipaddress
    try:
        ipaddress.IPv4Interface(value)
    except ValueError:
        raise UsageError(f"{key} {value!r}: give a.b.c.d/len") from None
    if "/" not in value:
        raise UsageError(f"{key} {value!r}: give a.b.c.d/len")
    return value


@contextlib.contextmanager
def _refusals(what: str):
    """A device's refusal as a one-line CommandError (the engine goes on)."""
    from graphnet.io.device import DeviceError
    from graphnet.io.host import HostError
    try:
        yield
    except (DeviceError, HostError, ValueError, OSError) as e:
        raise CommandError(f"{what}: {e}") from None


def _free_tap_name(engine) -> str:
    taken = set(engine.interfaces.names)
    n = 0
    while f"tap{n}" in taken and not engine.interfaces.deleted(f"tap{n}"):
        n += 1
    return f"tap{n}"


@command("create tap", help="make a TAP interface at run time (its nodes join the graph)",
         usage="create tap [id <n>] [host-if-name <name>] [host-ns <ns>] [host-ip4-addr <a.b.c.d/len>] "
               "[host-mac-addr <mac>] [hw-addr <mac>] [rx-mode polling|interrupt|adaptive]")
def create_tap(engine, args):
    from graphnet.io.tap import TapDevice
    o = _options(args, {"id": _tap_id, "host-if-name": _text, "host-ns": _text, "host-ip4-addr": _cidr,
                        "host-mac-addr": _text, "hw-addr": _text, "rx-mode": _rx_mode}, "create tap")
    # VPP: tap<id> in graphnet, host-if-name in the kernel; host-if-name alone names both.
    name = f"tap{o['id']}" if "id" in o else (o.get("host-if-name") or _free_tap_name(engine))
    if name in engine.interfaces.names and not engine.interfaces.deleted(name):
        raise CommandError(f"create tap: an interface named {name!r} exists")
    with _refusals(f"create tap {name}"):
        dev = TapDevice(engine, name, host_name=o.get("host-if-name"), netns=o.get("host-ns"),
                        host_address=o.get("host-ip4-addr"),
                        host_mac=o.get("host-mac-addr"), mac=o.get("hw-addr"), rx_mode=o.get("rx-mode", "interrupt"))
        try:
            dev.add_to_engine()
        except BaseException:
            dev.delete()
            raise
    return name


def _device(engine, name: str, kind: str, what: str):
    if name not in list(engine.interfaces):
        raise CommandError(f"{what}: no {kind} interface named {name!r}")
    dev = engine.interfaces.devices[engine.interfaces.index(name)]
    if getattr(dev, "kind", None) != kind:
        raise CommandError(f"{what}: {name} is a {getattr(dev, 'kind', '?')} interface, not {kind}")
    return dev


@command("delete tap", help="remove a TAP interface (its kernel side goes with it)", usage="delete tap <name>")
def delete_tap(engine, args):
    if len(args) != 1:
        raise UsageError("delete tap takes one interface name")
    dev = _device(engine, args[0], "tap", "delete tap")
    with _refusals(f"delete tap {args[0]}"):
        dev.delete()
    return ""


def _host_if_options(args: list, what: str, allowed: dict) -> tuple:
    if len(args) < 2 or args[0] != "name":
        raise UsageError(f"{what}: give name <kernel-interface>")
    return args[1], _options(args[2:], allowed, what)


@command("create host-interface", help="attach to a kernel interface with AF_PACKET at run time (or attach "
         "again one whose kernel interface was deleted)",
         usage="create host-interface name <kernel-if> [netns <ns>] [hw-addr <mac>] "
               "[rx-mode polling|interrupt|adaptive]")
def create_host_interface(engine, args):
    from graphnet.io.af_packet import AfPacketDevice, attached_device
    host_if, o = _host_if_options(args, "create host-interface",
                                  {"netns": _text, "hw-addr": _text, "rx-mode": _rx_mode})
    netns = o.get("netns")
    where = f" in namespace {netns}" if netns else ""
    dev = attached_device(engine, host_if, netns)
    if dev is not None and engine.interfaces.devices[dev.sw_if_index] is dev:
        if dev.attached:
            raise CommandError(f"create host-interface: {host_if}{where} is already attached as {dev.name}")
        with _refusals(f"create host-interface {host_if}{where}"):
            dev.engine.call(dev.attach, "create host-interface")
        return dev.name
    name = f"host-{host_if}"
    if name in engine.interfaces.names and not engine.interfaces.deleted(name):
        raise CommandError(f"create host-interface: an interface named {name!r} exists")
    with _refusals(f"create host-interface {host_if}{where}"):
        dev = AfPacketDevice(engine, host_if, netns=netns, mac=o.get("hw-addr"), rx_mode=o.get("rx-mode", "interrupt"))
        try:
            dev.add_to_engine()
        except BaseException:
            dev.delete()
            raise
    return dev.name


@command("delete host-interface", help="detach from a kernel interface and remove the AF_PACKET interface",
         usage="delete host-interface name <kernel-if> [netns <ns>]")
def delete_host_interface(engine, args):
    from graphnet.io.af_packet import attached_device
    host_if, o = _host_if_options(args, "delete host-interface", {"netns": _text})
    dev = attached_device(engine, host_if, o.get("netns"))
    if dev is None or engine.interfaces.devices[dev.sw_if_index] is not dev:
        raise CommandError(f"delete host-interface: no host interface on {host_if!r}"
                           + (f" in namespace {o['netns']}" if o.get("netns") else ""))
    with _refusals(f"delete host-interface {host_if}"):
        dev.delete()
    return ""
