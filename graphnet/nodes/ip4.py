"""The IPv4 forwarding path as one set of registrations, and its control API.

    from graphnet.nodes import ip4
    eng = Engine([pg, devices..., ip4.NODES])
    ip4.fib(eng).add_route("10.0.0.0/8", next_hop_mac="02:00:00:00:00:02", sw_if_index=1)

``NODES`` (the registry's feature ``ip4``, graphnet.nodes.registry) is ethernet-input -> ip4-input (claims 0x0800) -> ip4-lookup ->
ip4-rewrite -> interface-output, plus ip4-input-no-checksum, ip4-frag
(takes ip4-rewrite's packets above the MTU, sends their fragments back to
it), ip4-gso (cuts GSO super-segments for interfaces without TSO into
segments, sent back to ip4-rewrite) and ip4-reassembly (for ip4-local; fed by nothing else). The FIB API is
``graphnet.fib.ip4_fib.Ip4Fib`` (``fib(engine)`` returns the engine's).

Not there yet (issue 4): ARP (glean adjacencies drop as
``glean-unresolved``), ip4-local (local routes drop as ``no-local-node``),
ICMP errors (TTL expiry and MTU are counted drops in ip4-rewrite),
VLAN sub-interfaces.
"""
from graphnet.fib.ip4_fib import Ip4Fib, ip4_fib as fib, show_ip_fib


def __getattr__(name):
    # NODES comes from the registry when first asked for: a module that
    # lists no nodes itself is never scanned as a node module.
    if name == "NODES":
        from graphnet.nodes import registry
        return registry.nodes("ip4")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NODES", "Ip4Fib", "fib", "show_ip_fib"]
