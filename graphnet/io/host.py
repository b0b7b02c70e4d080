"""Host setup helpers on pyroute2: network namespaces, veth pairs, links,
addresses and routes. Used by the startup file, the tests and benchmarks.

Everything here acts on the kernel and needs CAP_NET_ADMIN (root). Names
are checked by the kernel; errors come back as HostError with the
operation and the kernel's message. ``Namespace`` objects created with
``create_netns`` are removed by ``delete_netns`` (or by the context manager
``temporary_netns``), taking their links with them; ``veth_pair`` makes
two such namespaces joined by a veth pair (benches, tests).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from dataclasses import dataclass
from typing import Iterator, Optional

from pyroute2 import IPRoute, NetNS, netns as _netns


class HostError(RuntimeError):
    """A host (kernel) operation failed; the message names it."""


IFNAMSIZ = 16
_IFNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def ifname_error(name: str) -> Optional[str]:
    """None if ``name`` may name a kernel interface graphnet creates (a
    TAP), else why not, in one phrase: 1 to 15 bytes (IFNAMSIZ less the
    NUL) of ASCII letters, digits, ``-``, ``_`` and ``.``, not ``.`` or
    ``..``. Stricter than the kernel, which takes any byte but ``/``,
    ``:`` and white space: a ``%`` would make TUNSETIFF pick the name
    itself, and other bytes make names no shell or tool quotes well."""
    if not 0 < len(name.encode()) < IFNAMSIZ:
        return f"an interface name has 1 to {IFNAMSIZ - 1} bytes (IFNAMSIZ), not {len(name.encode())}"
    bad = sorted(set(name) - _IFNAME_CHARS)
    if bad:
        return f"{''.join(bad)!r} not allowed: an interface name takes letters, digits, '-', '_' and '.'"
    if name in (".", ".."):
        return f"{name!r} cannot name an interface"
    return None


def _fail(what: str, e: Exception) -> HostError:
    if isinstance(e, PermissionError) or getattr(e, "code", None) == 1:
        return HostError(f"{what}: permission denied (needs root / CAP_NET_ADMIN)")
    return HostError(f"{what}: {e}")


@contextlib.contextmanager
def ipr(netns: Optional[str] = None) -> Iterator[IPRoute]:
    """An rtnetlink socket in the host or in a named namespace."""
    sock = NetNS(netns) if netns else IPRoute()
    try:
        yield sock
    finally:
        sock.close()


def list_netns() -> list[str]:
    return list(_netns.listnetns())


def create_netns(name: str) -> bool:
    """Create a named namespace; returns False if it already existed."""
    if name in list_netns():
        return False
    try:
        _netns.create(name)
    except Exception as e:
        raise _fail(f"create network namespace {name!r}", e) from e
    with ipr(name) as ns:
        lo = ns.link_lookup(ifname="lo")
        if lo:
            ns.link("set", index=lo[0], state="up")
    return True


def delete_netns(name: str) -> None:
    """Remove a named namespace (its interfaces go with it). No error if absent."""
    if name not in list_netns():
        return
    try:
        _netns.remove(name)
    except Exception as e:
        raise _fail(f"delete network namespace {name!r}", e) from e


@contextlib.contextmanager
def temporary_netns(prefix: str = "gn-test") -> Iterator[str]:
    """A fresh namespace with a unique name, removed afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_netns(name)
    try:
        yield name
    finally:
        delete_netns(name)


@dataclass(frozen=True)
class VethPair:
    """Two namespaces joined by a veth pair: end veth_a in ns_a, veth_b in
    ns_b; addr_a/addr_b their IPv4 addresses (no prefix length), or None."""
    ns_a: str
    veth_a: str
    ns_b: str
    veth_b: str
    addr_a: Optional[str] = None
    addr_b: Optional[str] = None


@contextlib.contextmanager
def veth_pair(prefix: str = "gn-veth", addresses: tuple[Optional[str], Optional[str]] = (None, None)) -> Iterator[VethPair]:
    """Two fresh namespaces (unique names from prefix) joined by a veth
    pair, both ends and lo up, IPv6 off on the veth (no router
    solicitations in a measurement); ``addresses``, two CIDRs (or None),
    go on the ends a and b. Both namespaces (and so the veth) are removed on exit,
    also on error or interrupt."""
    tag = uuid.uuid4().hex[:8]
    ifs = (f"gnv{tag}a", f"gnv{tag}b")
    with temporary_netns(prefix) as a, temporary_netns(prefix) as b:
        create_veth(ifs[0], ifs[1], netns=a, peer_netns=b)
        for i, (ns, ifname) in enumerate(((a, ifs[0]), (b, ifs[1]))):
            run_in_netns(ns, ["sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1"], capture_output=True)
            if addresses[i] is not None:
                add_address(ifname, addresses[i], netns=ns)
            set_link(ifname, netns=ns, up=True)
            set_link("lo", netns=ns, up=True)
        addr = [c.split("/")[0] if c is not None else None for c in addresses]
        yield VethPair(a, ifs[0], b, ifs[1], addr[0], addr[1])


def link_index(ifname: str, netns: Optional[str] = None) -> Optional[int]:
    with ipr(netns) as s:
        idx = s.link_lookup(ifname=ifname)
    return idx[0] if idx else None


def link_exists(ifname: str, netns: Optional[str] = None) -> bool:
    return link_index(ifname, netns) is not None


def create_veth(name: str, peer: str, netns: Optional[str] = None, peer_netns: Optional[str] = None) -> None:
    """A veth pair; each end optionally moved into a namespace."""
    try:
        with ipr() as s:
            s.link("add", ifname=name, kind="veth", peer={"ifname": peer})
    except Exception as e:
        raise _fail(f"create veth {name}/{peer}", e) from e
    if netns:
        move_link(name, netns)
    if peer_netns:
        move_link(peer, peer_netns)


def move_link(ifname: str, netns: str, from_netns: Optional[str] = None) -> None:
    """Move a link into a named namespace."""
    try:
        with ipr(from_netns) as s:
            idx = s.link_lookup(ifname=ifname)
            if not idx:
                raise HostError(f"no interface {ifname!r}" + (f" in namespace {from_netns!r}" if from_netns else ""))
            s.link("set", index=idx[0], net_ns_fd=netns)
    except HostError:
        raise
    except Exception as e:
        raise _fail(f"move {ifname} to namespace {netns!r}", e) from e


def set_link(ifname: str, netns: Optional[str] = None, *, up: Optional[bool] = None, mtu: Optional[int] = None,
             mac: Optional[str] = None, promisc: Optional[bool] = None) -> None:
    """Set a link's state, MTU, MAC or promiscuous mode."""
    attrs = {}
    if up is not None:
        attrs["state"] = "up" if up else "down"
    if mtu is not None:
        attrs["mtu"] = mtu
    if mac is not None:
        attrs["address"] = mac
    if promisc is not None:
        attrs["flags"] = 0x100 if promisc else 0
        attrs["change"] = 0x100
    try:
        with ipr(netns) as s:
            idx = s.link_lookup(ifname=ifname)
            if not idx:
                raise HostError(f"no interface {ifname!r}" + (f" in namespace {netns!r}" if netns else ""))
            s.link("set", index=idx[0], **attrs)
    except HostError:
        raise
    except Exception as e:
        raise _fail(f"set link {ifname} {attrs}", e) from e


def delete_link(ifname: str, netns: Optional[str] = None) -> None:
    """Delete a link; no error if it is already gone."""
    try:
        with ipr(netns) as s:
            idx = s.link_lookup(ifname=ifname)
            if idx:
                s.link("del", index=idx[0])
    except Exception as e:
        raise _fail(f"delete link {ifname}", e) from e


def add_address(ifname: str, cidr: str, netns: Optional[str] = None) -> None:
    """Add an IPv4 address ``a.b.c.d/len`` to a link."""
    addr, _, plen = cidr.partition("/")
    try:
        with ipr(netns) as s:
            idx = s.link_lookup(ifname=ifname)
            if not idx:
                raise HostError(f"no interface {ifname!r}" + (f" in namespace {netns!r}" if netns else ""))
            s.addr("add", index=idx[0], address=addr, prefixlen=int(plen or 32))
    except HostError:
        raise
    except Exception as e:
        raise _fail(f"add address {cidr} to {ifname}", e) from e


def add_route(prefix: str, via: Optional[str] = None, dev: Optional[str] = None, netns: Optional[str] = None) -> None:
    """Add an IPv4 route (``default`` or ``a.b.c.d/len``)."""
    kw = {"dst": "0.0.0.0/0" if prefix == "default" else prefix}
    if via:
        kw["gateway"] = via
    try:
        with ipr(netns) as s:
            if dev:
                idx = s.link_lookup(ifname=dev)
                if not idx:
                    raise HostError(f"no interface {dev!r}")
                kw["oif"] = idx[0]
            s.route("add", **kw)
    except HostError:
        raise
    except Exception as e:
        raise _fail(f"add route {prefix}", e) from e


def run_in_netns(netns: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command inside a namespace (``ip netns exec``)."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], **kw)


def popen_in_netns(netns: str, argv: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", netns, *argv], **kw)


def is_root() -> bool:
    return os.geteuid() == 0
