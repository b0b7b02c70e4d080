"""Making a TAP and setting up its kernel side (the host), for TapDevice.

``create_tap`` opens the queue fds on /dev/net/tun (queue 0 with
IFF_TUN_EXCL: graphnet never attaches to a TAP someone else made; queues
1.. attach to it, all before the link leaves graphnet's namespace, since a
later TUNSETIFF would look the name up there), sets the virtio-net header
size and negotiates offloads, then configures the kernel side with
pyroute2 (graphnet.io.host): MTU, MAC, moved into a namespace created on
demand, link up, an optional address. Every failure is one DeviceError
line, and nothing is left behind: the fds are closed (the kernel removes
a non-persistent TAP with its last fd) and a namespace it created removed.
"""
from __future__ import annotations

import errno
import logging
import os

from graphnet.io import host
from graphnet.io.device import DeviceError
from graphnet.io.tap_tun import tap_open, tap_setup_vnet

log = logging.getLogger("graphnet.tap")


class TapMade:
    """What create_tap made: the queue fds (queue 0 first), the offloads
    the kernel accepted, and whether it created the namespace."""

    def __init__(self, fds, offloads, created_netns):
        self.fds, self.offloads, self.created_netns = fds, offloads, created_netns


def create_tap(name: str, *, mtu: int, queues: int, multi_queue: bool, vnet_hdr: bool, offloads: bool,
               netns=None, host_mac=None, host_address=None, open_queue=tap_open) -> TapMade:
    """Create TAP ``name`` (its kernel-side name) and configure its kernel
    side; raises DeviceError (one line) with nothing left behind.
    ``open_queue(name, vnet_hdr, multi_queue, exclusive)`` opens one queue
    fd (graphnet.io.tap passes its ``tap_open``, which tests replace)."""
    if not os.path.exists("/dev/net/tun"):
        raise DeviceError(f"creating TAP {name}: /dev/net/tun is missing (no tun driver in this kernel?)")
    try:
        exists = host.link_exists(name)
    except Exception as e:
        raise DeviceError(f"creating TAP {name}: cannot list interfaces: {e}") from e
    if exists:
        raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists")
    if netns and netns in host.list_netns() and host.link_exists(name, netns):
        raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists "
                          f"in namespace {netns!r}")
    fds = _open_queues(name, queues, vnet_hdr, multi_queue, open_queue)
    made = TapMade(fds, 0, False)
    try:
        if vnet_hdr:
            made.offloads = tap_setup_vnet(fds[0], offloads)
        made.created_netns = configure_kernel_side(name, mtu=mtu, mac=host_mac, netns=netns, address=host_address)
    except BaseException as e:
        undo(made, netns)
        if isinstance(e, (host.HostError, OSError)):
            raise DeviceError(f"creating TAP {name}: {e}") from None
        raise
    return made


def _open_queues(name, queues, vnet_hdr, multi_queue, open_queue):
    fds = []
    try:
        for k in range(queues):
            fds.append(open_queue(name, vnet_hdr, multi_queue, exclusive=(k == 0)))
    except OSError as e:
        k = len(fds)
        for f in fds:
            os.close(f)
        if e.errno in (errno.EPERM, errno.EACCES):
            raise DeviceError(f"creating TAP {name} needs root (CAP_NET_ADMIN)") from None
        if k > 0:
            raise DeviceError(f"creating TAP {name}: the kernel refused queue {k + 1} of {queues} "
                              f"(TUNSETIFF with IFF_MULTI_QUEUE): {e.strerror}") from None
        if e.errno in (errno.EBUSY, errno.EEXIST):
            raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists") from None
        if e.errno == errno.EINVAL and host.link_exists(name):
            raise DeviceError(f"creating TAP {name}: an interface named {name!r} already exists "
                              f"(and is not a TAP" + (" with IFF_MULTI_QUEUE" if multi_queue else "")
                              + ")") from None
        if e.errno == errno.EINVAL and multi_queue:
            raise DeviceError(f"creating TAP {name}: the kernel refused IFF_MULTI_QUEUE: {e.strerror}") from None
        raise DeviceError(f"creating TAP {name}: {e.filename or 'open'}: {e.strerror}") from None
    return fds


def configure_kernel_side(name, *, mtu, mac=None, netns=None, address=None) -> bool:
    """MTU and MAC, into ``netns`` (created if missing), up, the address.
    Returns True if it created the namespace."""
    created = False
    host.set_link(name, mtu=mtu, mac=mac)
    if netns:
        if netns not in host.list_netns():
            created = host.create_netns(netns)
        host.move_link(name, netns)
    host.set_link(name, netns, up=True)
    if address:
        host.add_address(name, address, netns)
    return created


def undo(made: TapMade, netns) -> None:
    """Close the fds (the kernel removes the link with the last one) and
    remove a namespace create_tap made."""
    for f in made.fds:
        os.close(f)
    made.fds = []
    if made.created_netns:
        remove_netns(netns)
        made.created_netns = False


def remove_netns(netns) -> None:
    """Remove a namespace graphnet created (errors logged, not raised)."""
    try:
        host.delete_netns(netns)
    except Exception:
        log.exception("removing namespace %s", netns)
