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

from graphnet.cli.commands import _device_errors, _interface, _ip4_host, _value
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


# --- limits that operators set ---------------------------------------------------------

def _number(word: str, value: str, kind, table: str, key: str):
    """value as kind, within config.LIMITS' bounds for (table, key)."""
    from graphnet.config import LIMITS
    try:
        v = kind(value)
    except ValueError:
        raise UsageError(f"{word}: {value!r} is not a {'number' if kind is float else 'whole number'}") from None
    problem = LIMITS[(table, key)].problem(v)
    if problem:
        raise UsageError(f"{word} {problem}")
    return v


def _pairs(args: list, words: dict, what: str) -> dict:
    """``word value ...`` -> {keyword: value}; words: {word: (keyword, kind, LIMITS table)}."""
    if not args or len(args) % 2:
        raise UsageError(f"{what}: give one or more of: " + ", ".join(f"{w} <value>" for w in words))
    kw = {}
    for word, value in zip(args[::2], args[1::2]):
        if word not in words:
            raise UsageError(f"unexpected argument {word!r}")
        name, kind, table = words[word]
        kw[name] = _number(word, value, kind, table, name)
    return kw


_REASSEMBLY_WORDS = {"timeout": ("timeout", float, "ip.reassembly"),
                     "pool-share": ("pool_share", float, "ip.reassembly"),
                     "max-fragments": ("max_fragments", int, "ip.reassembly"),
                     "max-datagrams": ("max_datagrams", int, "ip.reassembly")}


@command("set ip reassembly", help="IPv4 reassembly: seconds a datagram may stay incomplete (datagrams started "
         "from now on), share of the buffer pool held fragments may take, fragments per datagram (one more "
         "drops the datagram), datagrams in progress at once (a new one evicts the oldest; lowered: the "
         "oldest beyond it are dropped at once)",
         usage="set ip reassembly [timeout <s>] [pool-share <x>] [max-fragments <1..1024>] "
               "[max-datagrams <1..4194304>]")
def set_ip_reassembly(engine, args):
    kw = _pairs(args, _REASSEMBLY_WORDS, "set ip reassembly")
    from graphnet.nodes.ip4_reassembly import reassembly
    _value(lambda: reassembly(engine).configure(**kw))
    return ""


@command("set ip icmp-error-rate", help="ICMP errors sent at most <rate> per second, <burst> at once",
         usage="set ip icmp-error-rate <rate> [burst <n>]")
def set_ip_icmp_error_rate(engine, args):
    ip4 = _ip4_host("set ip icmp-error-rate")
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "burst"):
        raise UsageError("give a rate (errors per second), optionally 'burst <n>'")
    rate = _number("rate", args[0], float, "ip.icmp_error", "rate")
    burst = _number("burst", args[2], float, "ip.icmp_error", "burst") if len(args) == 3 else None
    _value(lambda: ip4.configure_icmp_errors(engine, rate, burst))
    return ""


@command("set ip udp-echo-port", help="the UDP echo service's port, or none to switch it off",
         usage="set ip udp-echo-port <port> | none")
def set_ip_udp_echo_port(engine, args):
    ip4 = _ip4_host("set ip udp-echo-port")
    if len(args) != 1:
        raise UsageError("give a port (1..65535) or none")
    port = None if args[0] == "none" else _number("port", args[0], int, "ip", "udp_echo_port")
    if port == 0:
        port = None
    _value(lambda: ip4.set_udp_echo_port(engine, port))
    return ""


def ip_limits(engine) -> dict:
    """The limits operators set, as ``show ip limits`` shows them."""
    ip4 = _ip4_host("show ip limits")
    from graphnet.nodes.ip4_reassembly import reassembly
    r = reassembly(engine).stats()
    n = ip4.ip4_neighbors(engine).config()
    return {"reassembly": {k: r[k] for k in ("timeout", "max_fragments", "max_datagrams", "pool_share",
                                             "max_buffers_held")},
            "icmp_error": ip4.configure_icmp_errors(engine),
            "udp_echo_port": getattr(engine, "_udp_echo_port", 7),
            "neighbor": {k: n[k] for k in ("queue_limit", "queue_pool_share", "max_queued_total", "max_incomplete")}}


@command("show ip limits", help="the IPv4 limits operators set: reassembly, ICMP error rate, UDP echo port, "
         "neighbour queues", usage="show ip limits")
def show_ip_limits(engine, args):
    if args:
        raise UsageError("show ip limits takes no arguments")
    d = ip_limits(engine)
    r, i, n = d["reassembly"], d["icmp_error"], d["neighbor"]
    return "\n".join([
        f"reassembly: timeout {r['timeout']:g} s, {r['max_fragments']} fragments per datagram, "
        f"{r['max_datagrams']} datagrams at once, pool share {r['pool_share']:g} "
        f"({r['max_buffers_held']} buffers)",
        f"icmp errors: {i['rate']:g}/s, burst {i['burst']:g}",
        f"udp echo port: {d['udp_echo_port'] if d['udp_echo_port'] else 'none'}",
        f"neighbour queues: {n['queue_limit']} packets per neighbour, pool share {n['queue_pool_share']:g}, "
        f"{n['max_queued_total']} in all, {n['max_incomplete']} unresolved neighbours"])


# --- interface MTU and MAC ---------------------------------------------------------------

@command("set interface mtu", help="an interface's MTU (a TAP's kernel side follows; above the MTU a TAP "
         "was made with only with GSO offloads)", usage="set interface mtu <name> <68..65535>")
def set_interface_mtu(engine, args):
    if len(args) != 2:
        raise UsageError("give an interface name and an MTU")
    i, dev = _interface(engine, args[0])
    mtu = _number("mtu", args[1], int, "interface", "mtu")
    if hasattr(dev, "set_mtu"):
        with _device_errors("set interface mtu"):
            dev.set_mtu(mtu)
    else:
        _value(engine.interfaces.set_mtu, i, mtu)
    return ""


@command("set interface mac address", help="graphnet's MAC on an interface (routes' rewrites follow)",
         usage="set interface mac address <name> <xx:xx:xx:xx:xx:xx>")
def set_interface_mac_address(engine, args):
    if len(args) != 2:
        raise UsageError("give an interface name and a MAC address")
    i, dev = _interface(engine, args[0])
    if hasattr(dev, "set_mac"):
        with _device_errors("set interface mac address"):
            _value(dev.set_mac, args[1])
    else:
        from graphnet.io.device import set_interface_mac
        _value(set_interface_mac, engine, i, args[1])
    return ""
