"""IPv4 route commands, as ``ip route`` of vppctl and Linux:

    ip route add <prefix> via <a.b.c.d> [<if>] [via <a.b.c.d> [<if>]]...   paths (ECMP)
    ip route add <prefix> via <if>                                         on-link
    ip route add <prefix> drop | unreachable | prohibit                    route types
    ip route del <prefix> [via <a.b.c.d> [<if>] | via <if>]                a route, or one path

An ``add`` with paths adds them to the route's paths (a route of another
type, or none, is replaced); ``del ... via`` removes that path and keeps
the others (the last one takes the route with it). ``drop`` is Linux's
blackhole (silent), ``unreachable`` answers ICMP host unreachable (3/1),
``prohibit`` ICMP administratively prohibited (3/13), both through
ip4-icmp-error (rate limited). Importing registers the commands.
"""
from __future__ import annotations

from graphnet.cli.commands import _interface, _ip4_host, _value
from graphnet.cli.registry import UsageError, command

ROUTE_KINDS = ("drop", "unreachable", "prohibit")


def _connected_interface(engine, ip4, address):
    """The interface whose connected prefix holds a next hop address."""
    fib = ip4.fib(engine)
    try:
        info = fib.lookup(address)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if info["type"] in ("glean", "rewrite", "local") and "sw_if_index" in info:
        return info["sw_if_index"]
    raise UsageError(f"next hop {address} is on no interface's connected prefix: name the interface")


def parse_paths(engine, ip4, words: list) -> list:
    """``via A [if] via B [if] ...`` or ``via <if>`` -> [(sw_if_index, next hop or None)]."""
    paths = []
    i = 0
    while i < len(words):
        if words[i] != "via" or i + 1 >= len(words):
            raise UsageError("give a prefix, then 'via' and a next hop address and/or an interface "
                             "(repeat 'via ...' for more paths), or drop | unreachable | prohibit")
        target = words[i + 1]
        i += 2
        if target in engine.interfaces.names:
            paths.append((engine.interfaces.names.index(target), None))
            continue
        if i < len(words) and words[i] != "via":
            sw, _ = _interface(engine, words[i])
            i += 1
        else:
            sw = _connected_interface(engine, ip4, target)
        paths.append((sw, target))
    return paths


@command("ip route add", help="add an IPv4 route via next hops (resolved with ARP; each 'via' adds a path: "
         "ECMP by flow hash), an interface (on-link), or of a type: drop (silent), unreachable (ICMP 3/1), "
         "prohibit (ICMP 3/13)",
         usage="ip route add <prefix> via <a.b.c.d> [<interface>] [via ...] | "
               "ip route add <prefix> via <interface> | ip route add <prefix> drop|unreachable|prohibit")
def ip_route_add(engine, args):
    ip4 = _ip4_host("ip route add")
    fib = ip4.fib(engine)
    if len(args) == 2 and args[1] in ROUTE_KINDS:
        _value(lambda: fib.add_route(args[0], kind=args[1]))
        return ""
    if len(args) < 3:
        raise UsageError("give a prefix, 'via' and a next hop address and/or an interface, "
                         "or drop | unreachable | prohibit")
    paths = parse_paths(engine, ip4, args[1:])
    _value(lambda: [fib.add_path(args[0], sw, nh) for sw, nh in paths])
    return ""


@command("ip route del", help="delete an IPv4 route, or one of its paths (the others stay)",
         usage="ip route del <prefix> [via <a.b.c.d> [<interface>] | via <interface>]")
def ip_route_del(engine, args):
    ip4 = _ip4_host("ip route del")
    fib = ip4.fib(engine)
    if len(args) < 1:
        raise UsageError("give the prefix of the route to delete")
    if len(args) == 1:
        _value(fib.del_route, args[0])
        return ""
    paths = parse_paths(engine, ip4, args[1:])
    _value(lambda: [fib.del_path(args[0], sw, nh) for sw, nh in paths])
    return ""
