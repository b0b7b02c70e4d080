"""The IPv4 FIB: routes -> adjacencies, with a 16-8-8 mtrie for lookups.

One FIB per engine (table 0), reached with ``ip4_fib(engine)``::

    fib = ip4_fib(engine)
    fib.add_route("10.0.0.0/8", next_hop_mac="02:00:00:00:00:02", sw_if_index=1)
    fib.add_route("10.1.0.0/16", paths=[("02:00:00:00:00:02", 1), ("02:00:00:00:00:03", 2)])  # ECMP
    fib.add_route("10.2.0.0/16", sw_if_index=1)          # on-link: glean (needs ARP)
    fib.add_route("192.0.2.1/32", local=True)            # for this host: ip4-local
    fib.add_route("198.51.100.0/24", drop=True)          # blackhole
    fib.add_route("198.51.101.0/24", kind="unreachable") # ICMP 3/1 (or "prohibit": 3/13)
    fib.add_path("10.1.0.0/16", "if1", "10.61.2.1")      # one more ECMP path
    fib.del_path("10.1.0.0/16", "if1", "10.61.2.1")      # one path less (the others stay)
    fib.del_route("10.0.0.0/8")                          # 10/8 falls back to its cover
    fib.lookup("10.1.2.3")                               # what the data plane would do
    print(fib.show())                                    # ``show ip fib``

Adjacencies (``gn_ip4_adj_t``) are shared: every route via the same
(interface, next-hop MAC) uses one, reference counted. Index 0 is the
no-route drop of the built-in default 0.0.0.0/0, index 1 the blackhole.
ECMP adjacencies hold a power-of-two bucket range (16 buckets per path,
rounded up) filled round-robin with their paths' adjacencies; ip4-lookup
picks ``buckets[base + (flow_hash & mask)]``.

A route added again replaces the old one; ``add_path`` / ``del_path``
change one path of a route via next hops (``ip route add/del P via A``),
keeping the others: the route's paths are the glean keys (interface, next
hop) of its adjacency, or of its ECMP adjacency's children, so a path is
the same path before and after ARP resolves it. Flow-sticky: a flow's
packets hash to one bucket and keep their path while the path set stays;
changing the set refills the buckets round-robin (flows may move, as with
Linux's hash without resilient groups). Deleting a route makes the
addresses it covered fall back to the longest remaining route that covers
it (its *cover*), found here from the per-length route tables and handed to
the mtrie.

Rewrites take the interface's MAC when the route is added; ``set
interface mac address`` updates them (``interface_mac_changed``). Control calls run in the loop thread between
iterations (through ``Engine.call`` when the loop runs in another thread):
nodes never see a half-made change.
"""
import ipaddress

from graphnet.vlib.per_engine import per_engine

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, realloc, free
from libc.string cimport memcpy, memset
from graphnet.fib.mtrie cimport (gn_mtrie_init, gn_mtrie_free, gn_mtrie_add, gn_mtrie_del, gn_mtrie_memory,
                                 gn_mtrie_lookup, GN_MTRIE_ROOT_SIZE, GN_MTRIE_PLY_SIZE)
from graphnet.wire.ethernet cimport GN_ETHERNET_HEADER_LEN, GN_ETHERTYPE_IP4

from graphnet.wire.ethernet import format_mac, parse_mac

ADJ_TYPES = ("drop", "blackhole", "local", "glean", "rewrite", "ecmp", "special", "unreachable", "prohibit")
(ADJ_DROP, ADJ_BLACKHOLE, ADJ_LOCAL, ADJ_GLEAN, ADJ_REWRITE, ADJ_ECMP, ADJ_SPECIAL, ADJ_UNREACHABLE,
 ADJ_PROHIBIT) = range(9)
ROUTE_TYPES = ("drop", "unreachable", "prohibit")   # routes with no path, as Linux's blackhole/unreachable/prohibit
assert len(ADJ_TYPES) == GN_ADJ_N_TYPES
ADJ_INDEX_NO_ROUTE = GN_ADJ_INDEX_NO_ROUTE
ADJ_INDEX_BLACKHOLE = GN_ADJ_INDEX_BLACKHOLE
ADJ_INDEX_SPECIAL = GN_ADJ_INDEX_SPECIAL
# Destinations a router never forwards, present in every FIB as VPP's are
# (RFC 1812 5.3.5 / 5.3.7: "this host", limited broadcast; no multicast
# forwarding yet; class E). A user route for the same prefix overrides one;
# deleting that route brings the built-in back; a built-in cannot be deleted.
SPECIAL_PREFIXES = ((0x00000000, 32), (0xe0000000, 4), (0xf0000000, 4), (0xffffffff, 32))
_FIXED_REFS = 1 << 40
ANY_INTERFACE = 0xffffffff
_NO_ADJ = 0xffffffff

_FIBS = per_engine()


def ip4_fib(engine):
    """The engine's IPv4 FIB (table 0), created on first use."""
    fib = _FIBS.get(engine)
    if fib is None:
        fib = _FIBS[engine] = Ip4Fib(engine)
    return fib


def _mask(plen):
    return 0 if plen == 0 else (0xffffffff << (32 - plen)) & 0xffffffff


def parse_prefix(prefix):
    """(network int, plen) from ``"10.0.0.0/8"``, an IPv4Network or a
    (network, plen) pair; host bits are cleared (as ``ip route add`` does)."""
    if isinstance(prefix, tuple):
        net, plen = prefix
        if isinstance(net, str):
            net = int(ipaddress.IPv4Address(net))
        net, plen = int(net), int(plen)
        if not 0 <= plen <= 32 or not 0 <= net <= 0xffffffff:
            raise ValueError(f"bad prefix {prefix!r}")
        return net & _mask(plen), plen
    if not isinstance(prefix, ipaddress.IPv4Network):
        text = str(prefix)
        try:
            prefix = ipaddress.IPv4Network(text if "/" in text else text + "/32", strict=False)
        except ValueError as e:
            raise ValueError(f"bad IPv4 prefix {text!r}: {e}") from None
    return int(prefix.network_address), prefix.prefixlen


def parse_address(addr) -> int:
    if isinstance(addr, int):
        if not 0 <= addr <= 0xffffffff:
            raise ValueError(f"bad IPv4 address {addr!r}")
        return addr
    try:
        return int(ipaddress.IPv4Address(addr if not isinstance(addr, (bytes, bytearray)) else bytes(addr)))
    except ValueError as e:
        raise ValueError(f"bad IPv4 address {addr!r}: {e}") from None


def format_prefix(net: int, plen: int) -> str:
    return f"{ipaddress.IPv4Address(net)}/{plen}"


cdef class Ip4Fib:
    """The IPv4 FIB of one engine (see module docstring)."""

    def __cinit__(self, engine=None, uint32_t fib_index=0, uint32_t flow_hash_seed=0x2545f491):
        self.fib = <gn_ip4_fib_t*>calloc(1, sizeof(gn_ip4_fib_t))
        if self.fib == NULL:
            raise MemoryError()
        if gn_mtrie_init(&self.fib.mtrie, GN_ADJ_INDEX_NO_ROUTE) != 0:
            free(self.fib)
            self.fib = NULL
            raise MemoryError()
        self.fib.fib_index = fib_index
        self.fib.flow_hash_seed = flow_hash_seed
        self.engine = engine
        self._routes = [dict() for _ in range(33)]
        self._adj_by_key = {}
        self._adj_keys = []
        self._adj_refs = []
        self._free_adjs = []
        self._free_buckets = {}
        self._special = {}
        for key, t in ((("drop",), GN_ADJ_DROP), (("blackhole",), GN_ADJ_BLACKHOLE), (("special",), GN_ADJ_SPECIAL)):
            i = self._alloc_adj()
            self.fib.adjs[i].type = t
            self.fib.adjs[i].sw_if_index = ANY_INTERFACE
            self._adj_keys[i] = key
            self._adj_by_key[key] = i
            self._adj_refs[i] = _FIXED_REFS  # fixed: never freed
        for net, plen in SPECIAL_PREFIXES:
            if gn_mtrie_add(&self.fib.mtrie, net, plen, GN_ADJ_INDEX_SPECIAL) != 0:
                raise MemoryError()
            self._routes[plen][net] = GN_ADJ_INDEX_SPECIAL
            self._special[(net, plen)] = True

    def __dealloc__(self):
        if self.fib != NULL:
            gn_mtrie_free(&self.fib.mtrie)
            free(self.fib.adjs)
            free(self.fib.buckets)
            free(self.fib)

    @property
    def address(self):
        """The gn_ip4_fib_t* as an integer (for node modules)."""
        return <size_t>self.fib

    def _call(self, fn, *args):
        eng = self.engine
        if eng is not None and eng.running:
            return eng.call(fn, *args)
        return fn(*args)

    # --- adjacencies ------------------------------------------------------------

    cdef uint32_t _alloc_adj(self) except? 0xffffffff:
        cdef gn_ip4_adj_t* grown
        cdef uint32_t i, cap
        if self._free_adjs:
            i = self._free_adjs.pop()
        else:
            if self.fib.n_adjs == self.fib.cap_adjs:
                cap = self.fib.cap_adjs * 2 + 16
                grown = <gn_ip4_adj_t*>realloc(self.fib.adjs, cap * sizeof(gn_ip4_adj_t))
                if grown == NULL:
                    raise MemoryError()
                self.fib.adjs = grown
                self.fib.cap_adjs = cap
            i = self.fib.n_adjs
            self.fib.n_adjs += 1
            self._adj_keys.append(None)
            self._adj_refs.append(0)
        memset(&self.fib.adjs[i], 0, sizeof(gn_ip4_adj_t))
        return i

    cdef uint32_t _alloc_buckets(self, uint32_t n) except? 0xffffffff:
        cdef uint32_t* grown
        cdef uint32_t base, cap
        free_list = self._free_buckets.get(n)
        if free_list:
            return free_list.pop()
        if self.fib.n_buckets + n > self.fib.cap_buckets:
            cap = max(self.fib.cap_buckets * 2, self.fib.n_buckets + n) + 64
            grown = <uint32_t*>realloc(self.fib.buckets, cap * sizeof(uint32_t))
            if grown == NULL:
                raise MemoryError()
            self.fib.buckets = grown
            self.fib.cap_buckets = cap
        base = self.fib.n_buckets
        self.fib.n_buckets += n
        return base

    def _interfaces(self):
        if self.engine is None:
            raise ValueError("this FIB has no engine: it cannot resolve interfaces")
        return self.engine.interfaces

    def _path_adj(self, path) -> int:
        """Adjacency (created if new, not referenced yet) of one path: a
        dict or tuple (next_hop_mac, sw_if_index[, next_hop])."""
        if isinstance(path, dict):
            mac, sw, nh = path.get("next_hop_mac"), path.get("sw_if_index"), path.get("next_hop")
        else:
            mac, sw = path[0], path[1]
            nh = path[2] if len(path) > 2 else None
        if sw is None:
            raise ValueError("a path needs sw_if_index (the interface to send on)")
        ifs = self._interfaces()
        sw = ifs.index(sw)
        nh_int = parse_address(nh) if nh is not None else 0
        if mac is None:
            key = ("glean", sw, nh_int)
        else:
            key = ("rewrite", sw, parse_mac(mac))
        i = self._adj_by_key.get(key)
        if i is not None:
            return i
        i = self._alloc_adj()
        a = &self.fib.adjs[i]
        a.sw_if_index = sw
        if key[0] == "glean":
            a.type = GN_ADJ_GLEAN
            a.next_hop = nh_int
        else:
            a.type = GN_ADJ_REWRITE
            src = parse_mac(ifs.info(sw)["mac"])
            rw = key[2] + src + GN_ETHERTYPE_IP4.to_bytes(2, "big")
            memcpy(a.rewrite, <const uint8_t*>rw, GN_ETHERNET_HEADER_LEN)
            a.rewrite_len = GN_ETHERNET_HEADER_LEN
        self._adj_keys[i] = key
        self._adj_by_key[key] = i
        return i

    def _ecmp_adj(self, list children) -> int:
        key = ("ecmp", tuple(children))
        i = self._adj_by_key.get(key)
        if i is not None:
            return i
        n = len(children)
        n_buckets = GN_ECMP_BUCKETS_PER_PATH
        while n_buckets < n * GN_ECMP_BUCKETS_PER_PATH:
            n_buckets *= 2
        base = self._alloc_buckets(n_buckets)
        for j in range(n_buckets):
            self.fib.buckets[base + j] = children[j % n]
        i = self._alloc_adj()
        a = &self.fib.adjs[i]
        a.type = GN_ADJ_ECMP
        a.sw_if_index = ANY_INTERFACE
        a.n_paths = n
        a.ecmp_base = base
        a.ecmp_mask = n_buckets - 1
        self._adj_keys[i] = key
        self._adj_by_key[key] = i
        for c in children:
            self._adj_refs[c] += 1
        return i

    def _kind_adj(self, kind) -> int:
        """The shared adjacency of an unreachable or prohibit route."""
        if kind == "drop":
            return GN_ADJ_INDEX_BLACKHOLE
        if kind not in ROUTE_TYPES:
            raise ValueError(f"route type {kind!r}: use one of {', '.join(ROUTE_TYPES)}")
        key = (kind,)
        i = self._adj_by_key.get(key)
        if i is None:
            i = self._alloc_adj()
            self.fib.adjs[i].type = GN_ADJ_UNREACHABLE if kind == "unreachable" else GN_ADJ_PROHIBIT
            self.fib.adjs[i].sw_if_index = ANY_INTERFACE
            self._adj_keys[i] = key
            self._adj_by_key[key] = i
        return i

    def _adj_for(self, next_hop_mac, sw_if_index, next_hop, paths, drop, local, kind=None) -> int:
        if sum(bool(x) for x in (drop, local, paths, kind)) > 1 or (
                (drop or local or paths or kind) and (next_hop_mac is not None or next_hop is not None)):
            raise ValueError("give one of: next_hop_mac/sw_if_index (or next_hop), paths, drop, local, kind")
        if drop:
            return GN_ADJ_INDEX_BLACKHOLE
        if kind:
            return self._kind_adj(kind)
        if local:
            sw = self._interfaces().index(sw_if_index) if sw_if_index is not None else ANY_INTERFACE
            key = ("local", sw)
            i = self._adj_by_key.get(key)
            if i is None:
                i = self._alloc_adj()
                self.fib.adjs[i].type = GN_ADJ_LOCAL
                self.fib.adjs[i].sw_if_index = sw
                self._adj_keys[i] = key
                self._adj_by_key[key] = i
            return i
        if paths:
            paths = list(paths)
            if len(paths) > GN_ECMP_MAX_PATHS:
                raise ValueError(f"at most {GN_ECMP_MAX_PATHS} paths")
            children = [self._path_adj(p) for p in paths]
            if len(children) == 1:
                return children[0]
            return self._ecmp_adj(children)
        if sw_if_index is None:
            raise ValueError("a route needs sw_if_index (with next_hop_mac, or alone for an on-link "
                             "prefix), paths=[...], drop=True or local=True")
        return self._path_adj((next_hop_mac, sw_if_index, next_hop))

    def _unref(self, uint32_t i):
        self._adj_refs[i] -= 1
        if self._adj_refs[i] > 0:
            return
        key = self._adj_keys[i]
        a = &self.fib.adjs[i]
        if a.type == GN_ADJ_ECMP:
            self._free_buckets.setdefault(a.ecmp_mask + 1, []).append(a.ecmp_base)
            for c in key[1]:
                self._unref(c)
        del self._adj_by_key[key]
        self._adj_keys[i] = None
        memset(a, 0, sizeof(gn_ip4_adj_t))
        a.type = GN_ADJ_DROP                 # a stale index drops, never misroutes
        self._free_adjs.append(i)

    def interface_mac_changed(self, sw_if_index):
        """Rewrites on an interface take its new source MAC (``set
        interface mac address``). Returns how many changed."""
        return self._call(self._interface_mac_changed, sw_if_index)

    def _interface_mac_changed(self, sw_if_index):
        cdef uint32_t i, n = 0
        sw = self._interfaces().index(sw_if_index)
        src = parse_mac(self._interfaces().info(sw)["mac"])
        for i in range(self.fib.n_adjs):
            a = &self.fib.adjs[i]
            if self._adj_keys[i] is not None and a.type == GN_ADJ_REWRITE and a.sw_if_index == sw:
                memcpy(&a.rewrite[6], <const uint8_t*>src, 6)
                n += 1
        return n

    def set_neighbor(self, sw_if_index, next_hop, mac=None):
        """The neighbour ``next_hop`` on ``sw_if_index`` resolved to ``mac``
        (or, with None, unresolved again): the adjacency of routes via that
        next hop (key glean/sw/next_hop) becomes a rewrite to mac, or back a
        glean. Returns its index, or None when no route uses that next hop.
        Called by the neighbour table (graphnet.fib.ip4_neighbor_table)."""
        return self._call(self._set_neighbor, sw_if_index, next_hop, mac)

    def _set_neighbor(self, sw_if_index, next_hop, mac):
        sw = self._interfaces().index(sw_if_index)
        i = self._adj_by_key.get(("glean", sw, parse_address(next_hop)))
        if i is None:
            return None
        a = &self.fib.adjs[<uint32_t>i]
        if mac is None:
            a.type = GN_ADJ_GLEAN
            a.rewrite_len = 0
            memset(a.rewrite, 0, GN_ADJ_MAX_REWRITE)
        else:
            rw = parse_mac(mac) + parse_mac(self._interfaces().info(sw)["mac"]) + GN_ETHERTYPE_IP4.to_bytes(2, "big")
            memcpy(a.rewrite, <const uint8_t*>rw, GN_ETHERNET_HEADER_LEN)
            a.rewrite_len = GN_ETHERNET_HEADER_LEN
            a.type = GN_ADJ_REWRITE           # last: the adjacency is whole before it is a rewrite
        return i

    # --- routes -------------------------------------------------------------------

    def add_route(self, prefix, next_hop_mac=None, sw_if_index=None, *, next_hop=None, paths=None,
                  drop=False, local=False, kind=None):
        """Add or replace a route; returns its adjacency index. See the
        module docstring for the forms; ``kind`` is one of ROUTE_TYPES."""
        return self._call(self._add_route, prefix, next_hop_mac, sw_if_index, next_hop, paths, drop, local, kind)

    def _add_route(self, prefix, next_hop_mac, sw_if_index, next_hop, paths, drop, local, kind=None):
        net, plen = parse_prefix(prefix)
        adj = self._adj_for(next_hop_mac, sw_if_index, next_hop, paths, drop, local, kind)
        self._adj_refs[adj] += 1             # before anything can fail below
        table = self._routes[plen]
        old = table.get(net)
        if gn_mtrie_add(&self.fib.mtrie, net, plen, adj) != 0:
            self._unref(adj)
            raise MemoryError("mtrie: out of memory")
        table[net] = adj
        if old is None or self._is_builtin(net, plen, old):
            self.n_routes += 1
        if old is not None:
            self._unref(old)
        return adj

    def _is_builtin(self, net, plen, adj):
        return adj == GN_ADJ_INDEX_SPECIAL and (net, plen) in self._special

    def add_routes(self, prefixes, next_hop_mac=None, sw_if_index=None, *, next_hop=None, paths=None,
                   drop=False, local=False):
        """Add or replace many routes with the same path(s): the adjacency is
        resolved once (bulk loads: 1 M routes in about a second). Returns
        the adjacency index."""
        return self._call(self._add_routes, prefixes, next_hop_mac, sw_if_index, next_hop, paths, drop, local)

    def _add_routes(self, prefixes, next_hop_mac, sw_if_index, next_hop, paths, drop, local):
        cdef uint32_t adj, net, plen
        adj = self._adj_for(next_hop_mac, sw_if_index, next_hop, paths, drop, local)
        self._adj_refs[adj] += 1             # held while loading: a replaced route cannot free it
        routes = self._routes
        try:
            for prefix in prefixes:
                if isinstance(prefix, tuple) and type(prefix[0]) is int and type(prefix[1]) is int \
                        and 0 <= prefix[1] <= 32 and 0 <= prefix[0] <= 0xffffffff:
                    plen = prefix[1]
                    net = prefix[0] & _mask(plen)
                else:
                    net, plen = parse_prefix(prefix)
                if gn_mtrie_add(&self.fib.mtrie, net, plen, adj) != 0:
                    raise MemoryError("mtrie: out of memory")
                table = routes[plen]
                old = table.get(net)
                table[net] = adj
                self._adj_refs[adj] += 1
                if old is None or (old == GN_ADJ_INDEX_SPECIAL and (net, plen) in self._special):
                    self.n_routes += 1
                if old is not None:
                    self._unref(old)
        finally:
            self._unref(adj)
        return adj

    def route_paths(self, prefix):
        """[(sw_if_index, next hop text or None)] of a route via next hops
        or on-link interfaces; None if the prefix has no route or one of
        another kind (local, drop, ...)."""
        return self._call(self._route_paths, prefix)

    def _route_paths(self, prefix):
        net, plen = parse_prefix(prefix)
        adj = self._routes[plen].get(net)
        if adj is None:
            return None
        key = self._adj_keys[adj]
        children = key[1] if key[0] == "ecmp" else (adj,)
        out = []
        for c in children:
            ck = self._adj_keys[c]
            if ck[0] != "glean":
                return None              # a rewrite to a fixed MAC: not a path by next hop
            out.append((ck[1], str(ipaddress.IPv4Address(ck[2])) if ck[2] else None))
        return out

    def add_path(self, prefix, sw_if_index, next_hop=None):
        """Add one path (interface, next hop; no next hop: on-link) to the
        route for prefix: a route via next hops gains it (ECMP), any other
        route (or none) is replaced by a route via this path. Adding a path
        the route has is a no-op. Returns the route's adjacency index."""
        return self._call(self._add_path, prefix, sw_if_index, next_hop)

    def _add_path(self, prefix, sw_if_index, next_hop):
        sw = self._interfaces().index(sw_if_index)
        nh = str(ipaddress.IPv4Address(parse_address(next_hop))) if next_hop is not None else None
        paths = self._route_paths(prefix) or []
        if (sw, nh) not in paths:
            paths.append((sw, nh))
        return self._add_route(prefix, None, None, None, [(None, s, h) for s, h in paths], False, False)

    def del_path(self, prefix, sw_if_index, next_hop=None):
        """Remove one path from a route via next hops; the others stay. The
        last path's removal deletes the route. KeyError if the route has
        no such path."""
        return self._call(self._del_path, prefix, sw_if_index, next_hop)

    def _del_path(self, prefix, sw_if_index, next_hop):
        sw = self._interfaces().index(sw_if_index)
        nh = str(ipaddress.IPv4Address(parse_address(next_hop))) if next_hop is not None else None
        paths = self._route_paths(prefix)
        if not paths or (sw, nh) not in paths:
            net, plen = parse_prefix(prefix)
            raise KeyError(f"the route for {format_prefix(net, plen)} has no path via "
                           f"{nh or ''}{' ' if nh else ''}{self._interfaces().names[sw]}")
        paths.remove((sw, nh))
        if not paths:
            return self._del_route(prefix)
        self._add_route(prefix, None, None, None, [(None, s, h) for s, h in paths], False, False)

    def del_route(self, prefix):
        """Delete a route; KeyError if there is none for this prefix."""
        return self._call(self._del_route, prefix)

    def _del_route(self, prefix):
        net, plen = parse_prefix(prefix)
        table = self._routes[plen]
        adj = table.get(net)
        if adj is None:
            raise KeyError(f"no route for {format_prefix(net, plen)}")
        if (net, plen) in self._special:
            if adj == GN_ADJ_INDEX_SPECIAL:
                raise ValueError(f"{format_prefix(net, plen)} is a built-in special route; it cannot be deleted")
            # a user route over a built-in one: the built-in comes back
            if gn_mtrie_add(&self.fib.mtrie, net, plen, GN_ADJ_INDEX_SPECIAL) != 0:
                raise MemoryError("mtrie: out of memory")
            table[net] = GN_ADJ_INDEX_SPECIAL
            self.n_routes -= 1
            self._unref(adj)
            return
        del table[net]
        cover_adj, cover_plen = GN_ADJ_INDEX_NO_ROUTE, 0
        for c in range(plen - 1, -1, -1):
            a = self._routes[c].get(net & _mask(c))
            if a is not None:
                cover_adj, cover_plen = a, c
                break
        gn_mtrie_del(&self.fib.mtrie, net, plen, cover_adj, cover_plen)
        self.n_routes -= 1
        self._unref(adj)

    def clear(self):
        """Delete every route (the built-in special ones stay)."""
        def do():
            for plen in range(32, -1, -1):
                for net, adj in list(self._routes[plen].items()):
                    if not self._is_builtin(net, plen, adj):
                        self._del_route((net, plen))
        self._call(do)

    def routes(self):
        """[(prefix text, adjacency index)] sorted by address then length."""
        def do():
            out = [(net, plen, adj) for plen in range(33) for net, adj in self._routes[plen].items()]
            out.sort()
            return [(format_prefix(n, p), a) for n, p, a in out]
        return self._call(do)

    def match(self, addr):
        """(network, plen, adjacency index) of the longest route matching
        addr, from the route tables (the control plane's answer; the
        built-in default is (0, 0, 0))."""
        a = parse_address(addr)
        for plen in range(32, -1, -1):
            adj = self._routes[plen].get(a & _mask(plen))
            if adj is not None:
                return a & _mask(plen), plen, adj
        return 0, 0, GN_ADJ_INDEX_NO_ROUTE

    def lookup_adj(self, addr) -> int:
        """The adjacency index the data plane's mtrie gives for addr."""
        return gn_mtrie_lookup(&self.fib.mtrie, parse_address(addr))

    def lookup(self, addr, flow_hash=None) -> dict:
        """What ip4-lookup does with a packet to addr: the matching prefix,
        the adjacency from the mtrie and, for ECMP, the path picked by
        flow_hash (when given)."""
        cdef gn_ip4_adj_t* x
        a = parse_address(addr)
        net, plen, _ = self.match(a)
        adj = self.lookup_adj(a)
        out = {"address": str(ipaddress.IPv4Address(a)), "prefix": format_prefix(net, plen), "adj_index": adj}
        out.update(self.adjacency(adj))
        if out["type"] == "ecmp" and flow_hash is not None:
            x = &self.fib.adjs[<uint32_t>adj]
            out["path_adj_index"] = self.fib.buckets[x.ecmp_base + (flow_hash & x.ecmp_mask)]
        return out

    def adjacency(self, uint32_t i) -> dict:
        """A dict describing adjacency i."""
        if i >= self.fib.n_adjs or self._adj_keys[i] is None:
            raise KeyError(f"no adjacency {i}")
        a = &self.fib.adjs[i]
        d = {"index": i, "type": ADJ_TYPES[a.type]}
        if self._adj_refs[i] >= _FIXED_REFS:
            d["fixed"] = True
        else:
            d["refs"] = self._adj_refs[i]
        if a.type in (GN_ADJ_REWRITE, GN_ADJ_GLEAN, GN_ADJ_LOCAL) and a.sw_if_index != ANY_INTERFACE:
            d["sw_if_index"] = a.sw_if_index
        if a.type == GN_ADJ_REWRITE:
            d["next_hop_mac"] = format_mac(a.rewrite[:6])
            d["rewrite"] = bytes(a.rewrite[:a.rewrite_len])
        if a.type in (GN_ADJ_GLEAN, GN_ADJ_REWRITE) and a.next_hop:
            d["next_hop"] = str(ipaddress.IPv4Address(a.next_hop))
        elif a.type == GN_ADJ_ECMP:
            d["paths"] = list(self._adj_keys[i][1])
            d["buckets"] = a.ecmp_mask + 1
            d["path_list"] = [self.adjacency(c) for c in d["paths"]]
        return d

    def format_adjacency(self, uint32_t i) -> str:
        """One line, VPP style: ``ipv4 via 02:00:00:00:00:02 if1: mtu 1500 ...``."""
        if i >= self.fib.n_adjs or self._adj_keys[i] is None:
            return f"[@{i}]: stale adjacency"
        a = &self.fib.adjs[i]
        def ifname(sw):
            try:
                return f"{self._interfaces().names[sw]} (sw_if_index {sw})"
            except Exception:
                return f"sw_if_index {sw}"
        if a.type == GN_ADJ_DROP:
            return f"[@{i}]: dpo-drop ip4: no route"
        if a.type == GN_ADJ_BLACKHOLE:
            return f"[@{i}]: dpo-drop ip4: blackhole"
        if a.type == GN_ADJ_SPECIAL:
            return f"[@{i}]: dpo-drop ip4: special (never forwarded)"
        if a.type == GN_ADJ_UNREACHABLE:
            return f"[@{i}]: dpo-unreachable ip4: icmp host unreachable (3/1)"
        if a.type == GN_ADJ_PROHIBIT:
            return f"[@{i}]: dpo-prohibit ip4: icmp administratively prohibited (3/13)"
        if a.type == GN_ADJ_LOCAL:
            where = "" if a.sw_if_index == ANY_INTERFACE else " " + ifname(a.sw_if_index)
            return f"[@{i}]: dpo-receive{where}"
        if a.type == GN_ADJ_GLEAN:
            nh = f" {ipaddress.IPv4Address(a.next_hop)}" if a.next_hop else ""
            return f"[@{i}]: ipv4-glean{nh} {ifname(a.sw_if_index)}"
        if a.type == GN_ADJ_REWRITE:
            nh = f"{ipaddress.IPv4Address(a.next_hop)} " if a.next_hop else ""     # a resolved neighbour
            return (f"[@{i}]: ipv4 via {nh}{format_mac(a.rewrite[:6])} {ifname(a.sw_if_index)}: "
                    f"{bytes(a.rewrite[:a.rewrite_len]).hex()}")
        return (f"[@{i}]: dpo-load-balance: {a.n_paths} paths, {a.ecmp_mask + 1} buckets, "
                f"flow hash src dst proto sport dport")

    def show(self, prefix=None, limit=None) -> str:
        """``show ip fib [prefix]``: every route (or those inside prefix, or
        the best match of an address) and its adjacency."""
        return self._call(self._show, prefix, limit)

    def _show(self, prefix, limit):
        mem = gn_mtrie_memory(&self.fib.mtrie)
        plies = self.fib.mtrie.n_plies - self.fib.mtrie.n_free
        lines = [f"ipv4-VRF:0, fib_index:{self.fib.fib_index}, flow hash:[src dst sport dport proto], "
                 f"{self.n_routes} routes, {len(self._adj_by_key)} adjacencies, "
                 f"mtrie 16-8-8: {plies} plies, {mem / 1048576:.1f} MiB"]
        if prefix is not None and "/" not in str(prefix):
            net, plen, _ = self.match(prefix)
            entries = [(net, plen, self._routes[plen].get(net, GN_ADJ_INDEX_NO_ROUTE))]
        else:
            lo, hi = 0, 0xffffffff
            if prefix is not None:
                pnet, pplen = parse_prefix(prefix)
                lo, hi = pnet, pnet | (~_mask(pplen) & 0xffffffff)
            entries = sorted((net, plen, adj) for plen in range(33) for net, adj in self._routes[plen].items()
                             if lo <= net <= hi)
            if not self._routes[0] and lo == 0:
                entries.insert(0, (0, 0, GN_ADJ_INDEX_NO_ROUTE))
        if limit is not None and len(entries) > limit:
            more = len(entries) - limit
            entries = entries[:limit]
        else:
            more = 0
        for net, plen, adj in entries:
            lines.append(format_prefix(net, plen))
            lines.append("  " + self.format_adjacency(adj))
            if self.fib.adjs[adj].type == GN_ADJ_ECMP:
                for c in self._adj_keys[adj][1]:
                    lines.append("    " + self.format_adjacency(c))
        if more:
            lines.append(f"... {more} more routes")
        return "\n".join(lines)

    def mtrie_arrays(self):
        """Copies of the mtrie for Python code that wants to walk it (the
        plain-Python reference of ``graphnet bench ip4-forward``): (root,
        leaves) as ``array('I')``; leaf l of ply p is leaves[p * 256 + l]."""
        from array import array
        cdef uint32_t p
        root = array("I", (<uint8_t*>self.fib.mtrie.root)[:GN_MTRIE_ROOT_SIZE * 4])
        leaves = array("I")
        for p in range(self.fib.mtrie.n_plies):
            leaves.frombytes((<uint8_t*>self.fib.mtrie.plies[p].leaves)[:GN_MTRIE_PLY_SIZE * 4])
        return root, leaves

    def adjacency_table(self):
        """[(type name, rewrite bytes, sw_if_index, ecmp buckets)] by index."""
        cdef uint32_t i
        out = []
        for i in range(self.fib.n_adjs):
            a = &self.fib.adjs[i]
            buckets = [self.fib.buckets[a.ecmp_base + j] for j in range(a.ecmp_mask + 1)] \
                if a.type == GN_ADJ_ECMP else None
            out.append((ADJ_TYPES[a.type], bytes(a.rewrite[:a.rewrite_len]), a.sw_if_index, buckets))
        return out

    def stats(self) -> dict:
        return {"routes": self.n_routes, "adjacencies": len(self._adj_by_key),
                "plies": self.fib.mtrie.n_plies - self.fib.mtrie.n_free,
                "mtrie_bytes": gn_mtrie_memory(&self.fib.mtrie), "buckets": self.fib.n_buckets}


def show_ip_fib(engine, *args) -> str:
    """``show ip fib [<prefix>|<address>]`` for the CLI registry."""
    return ip4_fib(engine).show(args[0] if args else None)
