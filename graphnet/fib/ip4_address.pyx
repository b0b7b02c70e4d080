"""IPv4 interface addresses and the routes they imply.

    from graphnet.fib.ip4_address import set_interface_address
    set_interface_address(engine, "tap0", "10.0.0.1/24")

An address ``A/len`` on interface I installs, in the engine's FIB:

  - ``A/32`` -> local (``dpo-receive`` on I): packets for A go to ip4-local;
  - the connected prefix ``N/len`` -> glean on I (the destination itself is
    resolved with ARP), unless len is 32;
  - for len <= 30, ``N/32`` (network) and ``B/32`` (directed broadcast) ->
    drop, as VPP does: never ARPed for, never forwarded.

Removing the address removes what it installed (a route that someone else
replaced since is left alone). Addresses are kept in a fixed C table (8 per
interface) that nodes read per packet: ARP (is the target ours? which
source address for a request), ICMP (source of an error), through the
inline helpers of ``ip4_address.pxd``. Calls run in the loop thread
(through ``Engine.call`` when the loop runs in another thread).

Secondary addresses: a second address in a subnet the interface has
already (same prefix length) installs only its ``A/32`` local route; the
subnet's routes stay with the first address (the primary). Deleting the
primary promotes the oldest secondary, which takes over those routes
(Linux's ``promote_secondaries``); neighbours of the subnet are flushed only
when its last address goes. The address table keeps the order of addition,
so the source address towards a subnet is its primary.

Invariant: an address is on at most one interface (as in VPP: adding an
address that another interface has is an error), a subnet is on at most
one interface (an overlap with another interface's prefix is an error that
names it), and one interface's overlapping prefixes have the same length.
"""
import ipaddress

from graphnet.vlib.per_engine import per_engine

from libc.stdint cimport uint32_t
from libc.stdlib cimport calloc, free
from graphnet.fib.ip4_fib cimport Ip4Fib

MAX_IF_ADDRESSES = GN_IP4_MAX_IF_ADDRESSES

_TABLES = per_engine()


def ip4_addresses(engine):
    """The engine's interface address table, created on first use."""
    t = _TABLES.get(engine)
    if t is None:
        t = _TABLES[engine] = Ip4Addresses(engine)
    return t


def _parse_cidr(text):
    try:
        iface = ipaddress.IPv4Interface(str(text))
    except ValueError as e:
        raise ValueError(f"bad IPv4 address {text!r}: {e} (expected a.b.c.d/len)") from None
    if "/" not in str(text):
        raise ValueError(f"bad IPv4 address {text!r}: give the prefix length (a.b.c.d/len)")
    a = int(iface.ip)
    if iface.ip.is_multicast or iface.ip.is_unspecified or iface.ip.is_loopback or a == 0xffffffff \
            or (iface.network.prefixlen <= 30 and (a == int(iface.network.network_address)
                                                   or a == int(iface.network.broadcast_address))):
        raise ValueError(f"{text}: not a usable host address")
    return a, iface.network.prefixlen


def _mask(plen):
    return 0 if plen == 0 else (0xffffffff << (32 - plen)) & 0xffffffff


cdef class Ip4Addresses:
    """Interface addresses of one engine (see the module docstring)."""

    def __cinit__(self, engine=None):
        self.am = <gn_ip4_address_main_t*>calloc(1, sizeof(gn_ip4_address_main_t))
        if self.am == NULL:
            raise MemoryError()
        self.engine = engine
        self._routes = {}
        self.listeners = []

    def __dealloc__(self):
        free(self.am)

    @property
    def address(self):
        """The gn_ip4_address_main_t* as an integer."""
        return <size_t>self.am

    def _call(self, fn, *args):
        eng = self.engine
        if eng is not None and eng.running:
            return eng.call(fn, *args)
        return fn(*args)

    def add(self, interface, cidr):
        """Add ``a.b.c.d/len`` to an interface (name or sw_if_index) and its routes."""
        return self._call(self._add, interface, cidr)

    def _add(self, interface, cidr):
        from graphnet.fib.ip4_fib import ip4_fib
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        cdef uint32_t k
        a, plen = _parse_cidr(cidr)
        mask = _mask(plen)
        secondary = False
        for (osw, oa, oplen) in self._routes:
            if oa == a:
                if osw == sw and oplen == plen:
                    return                      # already there: idempotent
                raise ValueError(f"{ipaddress.IPv4Address(a)} is already an address of "
                                 f"{self.engine.interfaces.names[osw]}")
            if (oa ^ a) & _mask(min(plen, oplen)) == 0:
                if osw != sw:
                    raise ValueError(f"{cidr} overlaps {ipaddress.IPv4Address(oa)}/{oplen} on "
                                     f"{self.engine.interfaces.names[osw]}: a subnet is on one interface only")
                if oplen != plen:
                    raise ValueError(f"{cidr} overlaps {ipaddress.IPv4Address(oa)}/{oplen} on the same interface "
                                     f"with another prefix length (a secondary address takes the same /{oplen})")
                secondary = True                # same subnet, same interface: a secondary address
        if self.am.n[sw] >= GN_IP4_MAX_IF_ADDRESSES:
            raise ValueError(f"at most {GN_IP4_MAX_IF_ADDRESSES} IPv4 addresses per interface")
        fib = ip4_fib(self.engine)
        installed = [((a, 32), fib.add_route((a, 32), local=True, sw_if_index=sw))]
        net = a & mask
        if plen < 32 and not secondary:         # the subnet's routes belong to its primary
            installed.append(((net, plen), fib.add_route((net, plen), sw_if_index=sw)))
            if plen <= 30:
                for x in (net, net | (~mask & 0xffffffff)):
                    installed.append(((x, 32), fib.add_route((x, 32), drop=True)))
        k = self.am.n[sw]
        self.am.addrs[sw][k].address = a
        self.am.addrs[sw][k].mask = mask
        self.am.addrs[sw][k].plen = plen
        self.am.n[sw] += 1
        self.am.n_total += 1
        self._routes[(sw, a, plen)] = installed
        if not secondary:
            for fn in list(self.listeners):
                fn("add", sw, net, mask)

    def delete(self, interface, cidr):
        """Remove an address and the routes it installed."""
        return self._call(self._delete, interface, cidr)

    def _delete(self, interface, cidr):
        from graphnet.fib.ip4_fib import ip4_fib
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        cdef uint32_t k, j
        a, plen = _parse_cidr(cidr)
        installed = self._routes.pop((sw, a, plen), None)
        if installed is None:
            raise KeyError(f"{cidr} is not an address of {self.engine.interfaces.names[sw]}")
        cdef Ip4Fib fib = ip4_fib(self.engine)
        mask = _mask(plen)
        heir = next((key for key in self._routes  # the oldest secondary of the subnet (dict order)
                     if key[0] == sw and key[2] == plen and (key[1] ^ a) & mask == 0), None)
        if heir is not None and len(installed) > 1:
            # Deleting the primary promotes the oldest secondary (Linux's
            # promote_secondaries): the subnet's routes pass to it.
            self._routes[heir] = self._routes[heir] + installed[1:]
            installed = installed[:1]
        for (net, pl), adj in installed:
            if fib._routes[pl].get(net) == adj:       # not replaced since
                fib.del_route((net, pl))
        for k in range(self.am.n[sw]):
            if self.am.addrs[sw][k].address == a:
                for j in range(k + 1, self.am.n[sw]):
                    self.am.addrs[sw][j - 1] = self.am.addrs[sw][j]
                self.am.n[sw] -= 1
                self.am.n_total -= 1
                break
        if heir is None:                        # the subnet is gone from the interface
            for fn in list(self.listeners):
                fn("del", sw, a & mask, mask)

    def get(self, interface):
        """``["a.b.c.d/len", ...]`` of one interface."""
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        cdef uint32_t k
        return [f"{ipaddress.IPv4Address(self.am.addrs[sw][k].address)}/{self.am.addrs[sw][k].plen}"
                for k in range(self.am.n[sw])]

    def all(self):
        """``{interface name: [addresses]}`` of interfaces that have some."""
        out = {}
        for sw, name in enumerate(self.engine.interfaces.names):
            addrs = self.get(sw)
            if addrs:
                out[name] = addrs
        return out

    def interface_of(self, addr):
        """sw_if_index owning an address, or None."""
        a = int(ipaddress.IPv4Address(addr))
        for (sw, oa, _plen) in self._routes:
            if oa == a:
                return sw
        return None

    def source_for(self, interface, peer="0.0.0.0"):
        """What gn_ip4_source_address picks (text), or None."""
        cdef uint32_t sw = self.engine.interfaces.index(interface)
        a = gn_ip4_source_address(self.am, sw, int(ipaddress.IPv4Address(peer)))
        return str(ipaddress.IPv4Address(a)) if a else None


def set_interface_address(engine, interface, cidr):
    """``set interface ip address <if> <a.b.c.d/len>``."""
    ip4_addresses(engine).add(interface, cidr)


def del_interface_address(engine, interface, cidr):
    """``set interface ip address del <if> <a.b.c.d/len>``."""
    ip4_addresses(engine).delete(interface, cidr)


def interface_addresses(engine, interface):
    return ip4_addresses(engine).get(interface)
