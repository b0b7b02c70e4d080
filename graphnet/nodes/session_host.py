"""The session layer's nodes as one set, the registry's feature ``session``:
session-input, session-queue, TCP's tcp4-* nodes (tcp4-input on protocol 6
of ip4-local), app-queue (apps in other processes) and UDP sessions
(udp4-session on udp4-input, graphnet.transport.udp). Add them to a graph
that has the IPv4 host (graphnet.nodes.ip4_host.NODES):

    eng = Engine([devices..., ip4_host.NODES, session_host.NODES])
    from graphnet.apps.echo import start_echo_server
    start_echo_server(eng, "udp://0.0.0.0/1234")

(An aggregate, as ip4_host: NODES is made on demand, so the registry's
scan does not register these nodes twice.)
"""


def __getattr__(name):
    if name == "NODES":
        from graphnet.nodes import registry
        return registry.nodes("session")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
