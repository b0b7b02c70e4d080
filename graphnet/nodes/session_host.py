"""The session layer's nodes as one set: session-input, session-queue,
app-queue (apps in other processes) and UDP sessions (udp4-session on
udp4-input). Add them to a graph that has the IPv4 host
(graphnet.nodes.ip4_host.NODES):

    eng = Engine([devices..., ip4_host.NODES, session_host.NODES])
    from graphnet.apps.echo import start_echo_server
    start_echo_server(eng, "udp://0.0.0.0/1234")
"""
from graphnet.nodes import session_input, session_queue, app_queue
from graphnet.transport import udp

NODES = session_input.NODES + session_queue.NODES + app_queue.NODES + udp.NODES
