"""graphnet as an IPv4 host and router: the forwarding path plus ARP,
local delivery, ICMP and UDP, as one set of registrations, and the
control API.

    from graphnet.nodes import ip4_host
    eng = Engine([devices..., ip4_host.NODES])
    ip4_host.set_interface_address(eng, "tap0", "10.0.0.1/24")
    ip4_host.ip4_neighbors(eng).add("tap0", "10.0.0.9", "02:00:00:00:00:09", static=True)
    ip4_host.fib(eng).add_route("10.9.0.0/16", next_hop="10.0.0.9", sw_if_index="tap0")

The graph: ethernet-input -> ip4-input -> ip4-lookup -> ip4-rewrite ->
interface-output (graphnet.nodes.ip4), and

  - ethernet-input (0x0806) -> ``arp-input`` (answers, learns);
  - ip4-lookup (glean) -> ``ip4-arp`` (resolves, queues), with the
    ``ip4-neighbor`` service and ``ip4-neighbor-process`` control plane;
  - ip4-lookup (local) -> ``ip4-local`` -> ``ip4-icmp-input`` (1: echo;
    echo replies -> ``ip4-ping-reply``; ``ip4-ping`` -> ip4-lookup sends
    the ``ping`` command's requests),
    ``udp4-input`` (17) -> ``udp4-echo`` (port 7) and registered ports;
  - ip4-rewrite (TTL expired, MTU with DF), ip4-local (unknown protocol),
    udp4-input (no listener) -> ``ip4-icmp-error`` -> ip4-lookup.

Also: ip4-local (fragments) -> ``ip4-reassembly``, whose timeouts send
time exceeded (11/1) through ip4-icmp-error; ip4-rewrite (over the MTU)
-> ``ip4-frag``; ``ip4-neighbor`` probes stale neighbours.

Not there yet: IPv6, VLAN sub-interfaces.
"""
from graphnet.fib.ip4_address import (ip4_addresses, set_interface_address, del_interface_address,
                                      interface_addresses)
from graphnet.fib.ip4_fib import ip4_fib as fib, show_ip_fib
from graphnet.nodes.ip4_icmp_error import configure_icmp_errors, register_icmp_error
from graphnet.fib.ip4_neighbor_table import ip4_neighbors
from graphnet.nodes.udp4 import udp_register_port, udp_unregister_port, udp_ports
from graphnet.nodes.udp4_echo import set_udp_echo_port



def __getattr__(name):
    # NODES: the registry's feature ``ip4-host`` (graphnet.nodes.registry)
    if name == "NODES":
        from graphnet.nodes import registry
        return registry.nodes("ip4-host")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def show_ip_neighbors(engine, *args) -> str:
    """``show ip neighbors``."""
    return ip4_neighbors(engine).show()


__all__ = ["NODES", "fib", "show_ip_fib", "ip4_addresses", "set_interface_address", "del_interface_address",
           "interface_addresses", "ip4_neighbors", "show_ip_neighbors", "configure_icmp_errors",
           "register_icmp_error", "udp_register_port", "udp_unregister_port", "udp_ports", "set_udp_echo_port"]
