"""The built-in VPP-style commands: show / clear / trace / set node /
set interface / pcap trace / packet-generator / IPv4 (addresses, routes,
neighbours) / help.

Importing this module registers them in graphnet.cli.registry.REGISTRY and
has no other effect. Each command is ``f(engine, args) -> str``, runs in the
loop thread (the dispatcher goes through ``engine.call``) and checks its
arguments before it changes anything: a UsageError leaves the engine as it
was.
"""
from __future__ import annotations

import contextlib
import platform
import time

from graphnet.cli.registry import REGISTRY, CommandError, UsageError, command, json_view

NODE_STATE_WORDS = ("polling", "interrupt", "adaptive", "disabled")


def _no_args(args: list) -> None:
    if args:
        raise UsageError(f"unexpected argument {args[0]!r}")


def _flags(args: list, allowed: tuple) -> list:
    for a in args:
        if a not in allowed:
            raise UsageError(f"unexpected argument {a!r}")
    return args


def _count(word: str, what: str) -> int:
    try:
        n = int(word, 0)
    except ValueError:
        raise UsageError(f"{what} must be a number, not {word!r}") from None
    if n <= 0:
        raise UsageError(f"{what} must be positive, not {n}")
    return n


@command("show runtime", help="per node calls, vectors, suspends and clocks per vector",
         usage="show runtime [all]")
def show_runtime(engine, args):
    return engine.show("runtime", *_flags(args, ("all", "verbose")))


@command("clear runtime", help="zero the per node runtime counters", usage="clear runtime")
def clear_runtime(engine, args):
    _no_args(args)
    engine.clear_runtime()
    return ""


@command("show errors", help="error counters that are not zero (all: every row)",
         usage="show errors [all]")
def show_errors(engine, args):
    return engine.show("errors", *_flags(args, ("all", "verbose")))


@command("clear errors", help="zero the error counters", usage="clear errors")
def clear_errors(engine, args):
    _no_args(args)
    engine.clear_errors()
    return ""


@command("show buffers", help="buffer pool: free, loop caches, device caches (TAP rx spares), in use by "
         "packets (back to its idle value when traffic stops: the leak check), queued in ARP/reassembly; frames",
         usage="show buffers")
def show_buffers(engine, args):
    _no_args(args)
    return engine.show("buffers")


@command("trace add", help="trace the next <n> packets (that pass the trace filter) from an input node: "
         "pg-input, tap-input-<if>, af-packet-input-<if>, ...; a prefix (tap-input) or a glob "
         "(af-packet-input-*) traces all the nodes it names",
         usage="trace add <input-node> <n>")
def trace_add(engine, args):
    if len(args) != 2:
        raise UsageError("trace add takes an input node and a packet count")
    n = _count(args[1], "the packet count")
    engine.trace_add(args[0], n)
    return ""


@command("trace filter", help="trace only matching packets (VPP's classify filter): bytes at an offset "
         "under a mask, or an IPv4 5-tuple; 'off' removes it, no argument shows it and its counts "
         "(graphnet.vlib.trace_filter)",
         usage="trace filter bytes <offset> <hex> [mask <hex>] | trace filter ip4 [src <addr>[/<len>]] "
               "[dst <addr>[/<len>]] [proto udp|tcp|icmp|<n>] [sport <n>] [dport <n>] | trace filter off "
               "| trace filter")
def trace_filter(engine, args):
    from graphnet.vlib import trace_filter as tf
    if not args:
        return engine.trace_filter_status()
    try:
        spec = tf.parse(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    engine.trace_filter(spec)
    return ""


@command("show trace", help="the traced packets, node by node", usage="show trace [max <n>]")
def show_trace(engine, args):
    if not args:
        return engine.show("trace")
    if len(args) == 2 and args[0] == "max":
        return engine.show("trace", "max", str(_count(args[1], "max")))
    raise UsageError(f"unexpected argument {args[0]!r}")


@command("clear trace", help="forget the trace records and stop tracing", usage="clear trace")
def clear_trace(engine, args):
    _no_args(args)
    engine.clear_trace()
    return ""


@command("show graph", help="every node with its type and next nodes", usage="show graph")
def show_graph(engine, args):
    _no_args(args)
    return engine.show("graph")


@command("show graph dot", help="the graph in Graphviz DOT (pipe into `dot -Tsvg`)",
         usage="show graph dot")
def show_graph_dot(engine, args):
    _no_args(args)
    return engine.show("dot")


@command("show node", help="one node: state, counters, next nodes, errors",
         usage="show node <name>")
def show_node(engine, args):
    if len(args) != 1:
        raise UsageError("show node takes one node name (see 'show graph')")
    return engine.show("node", args[0])


def _interface(engine, name: str):
    """(sw_if_index, device) of an interface by name, or a UsageError that
    lists the interfaces (with a did-you-mean)."""
    import difflib
    names = list(engine.interfaces)         # deleted ones left out
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        raise UsageError(f"no interface named {name!r}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else
                            f"; interfaces: {', '.join(names) or 'none'}"))
    i = engine.interfaces.index(name)
    return i, engine.interfaces.devices[i]


@command("show interface", help="interfaces: state and counters", usage="show interface [<name>]")
def show_interface(engine, args):
    if len(args) > 1:
        raise UsageError("show interface takes at most one interface name")
    if args:
        _interface(engine, args[0])
    return engine.show("interface", *args)


@command("show hardware", help="interfaces: kind, MAC, MTU, rx mode, device details",
         usage="show hardware [<name>]")
def show_hardware(engine, args):
    if len(args) > 1:
        raise UsageError("show hardware takes at most one interface name")
    if args:
        _interface(engine, args[0])
    return engine.show("hardware", *args)


@command("clear interfaces", help="zero the interface counters", usage="clear interfaces")
def clear_interfaces(engine, args):
    _no_args(args)
    engine.interfaces.clear_counters()
    return ""


@contextlib.contextmanager
def _device_errors(what: str):
    """A device's refusal (DeviceError, HostError) as a one-line CommandError."""
    try:
        yield
    except RuntimeError as e:
        if type(e).__name__ not in ("DeviceError", "HostError"):
            raise
        raise CommandError(f"{what}: {e}") from None


def _two(args, what: str, choices: tuple) -> tuple:
    if len(args) != 2:
        raise UsageError(f"give an interface name and {what} ({'|'.join(choices)})")
    if args[1] not in choices:
        raise UsageError(f"{args[1]!r}: use {' or '.join(choices)}")
    return args[0], args[1]


@command("set interface state", help="an interface's admin state (down: rx and tx are dropped and counted)",
         usage="set interface state <name> up|down")
def set_interface_state(engine, args):
    name, word = _two(args, "a state", ("up", "down"))
    i, dev = _interface(engine, name)
    if hasattr(dev, "set_admin_up"):
        with _device_errors("set interface state"):
            dev.set_admin_up(word == "up")
    else:
        engine.interfaces.set_admin_up(i, word == "up")
    return ""


@command("set interface rx-mode", help="an interface's rx mode (its input node's state)",
         usage="set interface rx-mode <name> polling|interrupt|adaptive")
def set_interface_rx_mode(engine, args):
    from graphnet.io.device import RX_MODES
    name, mode = _two(args, "an rx mode", RX_MODES)
    _, dev = _interface(engine, name)
    if not hasattr(dev, "set_rx_mode"):
        raise CommandError(f"set interface rx-mode: {name} has no rx mode to set")
    with _device_errors("set interface rx-mode"):
        dev.set_rx_mode(mode)
    return ""


@command("set interface promiscuous", help="accept unicast frames for other MACs (AF_PACKET: on the kernel "
         "interface too)", usage="set interface promiscuous <name> on|off")
def set_interface_promiscuous(engine, args):
    name, word = _two(args, "on or off", ("on", "off"))
    i, dev = _interface(engine, name)
    if hasattr(dev, "set_promiscuous"):
        with _device_errors("set interface promiscuous"):
            dev.set_promiscuous(word == "on")
    else:
        engine.interfaces.set_promiscuous(i, word == "on")
    return ""


def _optional(module: str, what: str):
    """Import a module a command needs, or say plainly that it is missing."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise CommandError(f"{what} is not available in this build ({module}: {e})") from None


@command("show ip fib", help="IPv4 routes and their adjacencies", usage="show ip fib [<prefix>|<address>]")
def show_ip_fib(engine, args):
    if len(args) > 1:
        raise UsageError("show ip fib takes at most one prefix or address")
    return _optional("graphnet.fib.ip4_fib", "show ip fib").show_ip_fib(engine, *args)


def _ip4_host(what: str):
    return _optional("graphnet.nodes.ip4_host", what)


def _value(fn, *args):
    """Run an API call; its ValueError/KeyError becomes a one-line UsageError."""
    try:
        return fn(*args)
    except (ValueError, KeyError) as e:
        raise UsageError(str(e.args[0]) if e.args else str(e)) from None


@command("set interface ip address", help="add (or del) an IPv4 address; installs its local, connected "
         "and broadcast routes", usage="set interface ip address [del] <name> <a.b.c.d/len>")
def set_interface_ip_address(engine, args):
    ip4 = _ip4_host("set interface ip address")
    delete = bool(args) and args[0] == "del"
    if delete:
        args = args[1:]
    if len(args) != 2:
        raise UsageError("give an interface name and an address a.b.c.d/len")
    _interface(engine, args[0])
    _value(ip4.del_interface_address if delete else ip4.set_interface_address, engine, args[0], args[1])
    return ""


@command("show interface address", help="IPv4 addresses of the interfaces", usage="show interface address")
def show_interface_address(engine, args):
    _no_args(args)
    ip4 = _ip4_host("show interface address")
    table = ip4.ip4_addresses(engine).all()
    return "\n".join(f"{name}: {', '.join(addrs)}" for name, addrs in table.items()) or "no IPv4 addresses"


@command("show ip neighbors", help="the IPv4 neighbour (ARP) table", usage="show ip neighbors")
def show_ip_neighbors(engine, args):
    _no_args(args)
    return _ip4_host("show ip neighbors").show_ip_neighbors(engine)


@command("set ip neighbor", help="add a neighbour (static: never probed, aged nor changed by ARP), or delete one",
         usage="set ip neighbor [del] <interface> <a.b.c.d> [<mac>] [static]")
def set_ip_neighbor(engine, args):
    ip4 = _ip4_host("set ip neighbor")
    table = ip4.ip4_neighbors(engine)
    if args and args[0] == "del":
        if len(args) != 3:
            raise UsageError("give an interface and an address")
        _interface(engine, args[1])
        _value(table.delete, args[1], args[2])
        return ""
    static = bool(args) and args[-1] == "static"
    if static:
        args = args[:-1]
    if len(args) != 3:
        raise UsageError("give an interface, an address and a MAC")
    _interface(engine, args[0])
    _value(table.add, args[0], args[1], args[2], static)
    return ""


_NEIGHBOR_CONFIG_WORDS = {"reachable-time": ("reachable_time", float), "probes": ("unicast_probes", int),
                          "probe-interval": ("probe_interval", float), "aging-time": ("aging_time", float),
                          "queue-limit": ("queue_limit", int), "queue-pool-share": ("queue_pool_share", float)}


@command("set ip neighbor-config", help="neighbour timers: reachable time (then stale and probed), unicast "
         "probes before a stale entry is deleted, probe interval, aging time (seconds; 0: never); packets queued "
         "per unresolved neighbour and their share of the pool",
         usage="set ip neighbor-config [reachable-time <s>] [probes <n>] [probe-interval <s>] [aging-time <s>] "
               "[queue-limit <n>] [queue-pool-share <x>]")
def set_ip_neighbor_config(engine, args):
    table = _ip4_host("set ip neighbor-config").ip4_neighbors(engine)
    if not args or len(args) % 2:
        raise UsageError("give one or more of: " + ", ".join(f"{w} <value>" for w in _NEIGHBOR_CONFIG_WORDS))
    kw = {}
    for word, value in zip(args[::2], args[1::2]):
        if word not in _NEIGHBOR_CONFIG_WORDS:
            raise UsageError(f"unexpected argument {word!r}")
        name, kind = _NEIGHBOR_CONFIG_WORDS[word]
        try:
            kw[name] = kind(value)
        except ValueError:
            raise UsageError(f"{word}: {value!r} is not a {'number' if kind is float else 'whole number'}") from None
    _value(lambda: table.configure(**kw))
    return ""


@command("pcap trace", help="capture rx / tx / drop packets to a pcap file (a bare name goes to the private "
         "pcap directory, /run/graphnet/pcap as root; an existing file only with overwrite)",
         usage="pcap trace [rx] [tx] [drop] [max <n>] [file <name>] [overwrite] [intfc <interface>] [snaplen <n>] "
               "[ns] | pcap trace off | pcap trace status")
def pcap_trace(engine, args):
    return _optional("graphnet.io.pcap", "pcap trace").pcap_trace_command(engine, args)


@command("show pcap", help="the pcap capture: its file and the packets written to it so far (flushes it)",
         usage="show pcap")
def show_pcap(engine, args):
    _no_args(args)
    return _optional("graphnet.io.pcap", "show pcap").pcap_trace_command(engine, ["status"])


@json_view("show pcap", "{active, done, path, kinds: [rx|tx|drop], captured, rx, tx, drop, max_packets, snaplen, "
                        "nanosecond, sw_if_index, bytes_written, write_errors, no_memory, last_error}: after a flush, "
                        "so captured packets are in the file")
def show_pcap_json(engine, args):
    _no_args(args)
    st = _optional("graphnet.io.pcap", "show pcap").PcapTrace(engine).status()
    return {**st, "kinds": list(st["kinds"])}


@command("set node state", help="set an input node's state",
         usage="set node state <name> polling|interrupt|adaptive|disabled")
def set_node_state(engine, args):
    if len(args) != 2:
        raise UsageError("set node state takes a node name and a state")
    name, state = args
    if state not in NODE_STATE_WORDS:
        raise UsageError(f"unknown state {state!r}")
    engine.set_node_state(name, state)
    return ""


@command("show version", help="graphnet, Python and engine versions", usage="show version")
def show_version(engine, args):
    _no_args(args)
    import graphnet
    try:
        import Cython
        cy = f", Cython {Cython.__version__}"
    except ImportError:
        cy = ""
    up = time.monotonic() - engine.start_time
    return (f"graphnet {graphnet.__version__}, Python {platform.python_version()}{cy}, "
            f"{platform.system()} {platform.machine()}\n"
            f"engine {engine.name!r}: {len(engine.nodes)} nodes, up {up:.1f} s")


def _help(engine, args):
    return REGISTRY.help_text(REGISTRY._expand(args) if args else ())


command("help", help="list the commands (help <words>: those starting with them)",
        usage="help [<words>]", needs_engine=False)(_help)
command("?", help="same as help", usage="? [<words>]", needs_engine=False, hidden=True)(_help)


@command("show completion-names", help="interface and node names, one per line (the prompt completes them)",
         usage="show completion-names", hidden=True)
def show_completion_names(engine, args):
    _no_args(args)
    return "\n".join(list(engine.interfaces) + [n.name for n in engine.nodes])


# --- the session layer (issue 12) ----------------------------------------------------

def _sessions(engine, what: str):
    """The session layer's show module, or a clear error when the graph lacks it."""
    if engine is not None and "session-input" not in engine.registrations:
        raise CommandError(f"{what}: the session layer is not in this graph (add "
                           f"graphnet.nodes.session_host.NODES, or an [[app]] in the startup file)")
    return _optional("graphnet.session.show", what)


def _start_app(engine, what, kind, args, usage):
    """``<what> uri <uri> [option value]...``: start builtin app `kind`
    (graphnet.apps.KINDS) with its integer options (and ``scope``)."""
    _sessions(engine, what)
    from graphnet.apps import KINDS, start
    from graphnet.session.session import SessionError
    if len(args) < 2 or args[0] != "uri" or len(args) % 2:
        raise UsageError(f"give {usage}")
    allowed = KINDS[kind][2] + ("scope",)
    options = {}
    for key, value in zip(args[2::2], args[3::2]):
        if key not in allowed:
            raise UsageError(f"unknown option {key!r} (options: {', '.join(allowed)})")
        try:
            options[key] = value if key == "scope" else int(value, 0)
        except ValueError:
            raise UsageError(f"{key} {value!r}: give a number") from None
    try:
        return start(engine, kind, args[1], **options)
    except SessionError as e:
        raise CommandError(str(e)) from None
    except ValueError as e:
        raise UsageError(str(e)) from None


@command("test echo server", help="start the builtin echo server app on a URI",
         usage="test echo server uri <proto://a.b.c.d/port> [scope global|local|both]")
def test_echo_server(engine, args):
    app = _start_app(engine, "test echo server", "echo-server", args, "uri <proto://a.b.c.d/port>, e.g. uri udp://0.0.0.0/1234")
    return f"app {app.name!r} listening on {args[1]}"


@command("test echo client", help="start the builtin echo client: sends, checks the echo byte-exact (show app <name>)",
         usage="test echo client uri <proto://a.b.c.d/port> [count <n>] [size <bytes>] [window <n>] [scope <s>]")
def test_echo_client(engine, args):
    app = _start_app(engine, "test echo client", "echo-client", args, "uri <proto://a.b.c.d/port> [count <n>] ...")
    return f"app {app.name!r} connecting to {args[1]} (show app {app.name})"


@command("test echo pair", help="a cut-through echo server and client in this engine (local scope)",
         usage="test echo pair uri <proto://a.b.c.d/port> [count <n>] [size <bytes>] [window <n>]")
def test_echo_pair(engine, args):
    srv, cli = _start_app(engine, "test echo pair", "echo-pair", args, "uri <proto://a.b.c.d/port> [count <n>] ...")
    return f"apps {srv.name!r} and {cli.name!r} (show app {cli.name})"


@command("test throughput", help="start a throughput source (sends bytes) or sink (counts them)",
         usage="test throughput source|sink uri <proto://a.b.c.d/port> [bytes <n>] [size <bytes>] [scope <s>]")
def test_throughput(engine, args):
    if not args or args[0] not in ("source", "sink"):
        raise UsageError("give source or sink, then uri <proto://a.b.c.d/port>")
    app = _start_app(engine, f"test throughput {args[0]}", f"throughput-{args[0]}", args[1:],
                     "uri <proto://a.b.c.d/port> [bytes <n>] [size <bytes>]")
    return f"app {app.name!r} on {args[2]} (show app {app.name})"


@command("show session", help="sessions: state, endpoints, fifo bytes, app", usage="show session [verbose] [thread <n>]")
def show_session(engine, args):
    show = _sessions(engine, "show session")
    verbose = "verbose" in args
    rest = [a for a in args if a != "verbose"]
    thread = None
    if rest:
        if len(rest) != 2 or rest[0] != "thread" or not rest[1].isdigit():
            raise UsageError(f"unexpected argument {rest[0]!r}")
        thread = int(rest[1])
    return show.show_session(engine, verbose, thread)


@command("show app", help="attached apps (or one by name): workers, segments, processes", usage="show app [<name>]")
def show_app(engine, args):
    show = _sessions(engine, "show app")
    from graphnet.session.session import SessionError
    try:
        return show.show_app(engine, " ".join(args) or None)
    except SessionError as e:
        raise UsageError(str(e)) from None


@command("show app workers", help="app workers: process, sessions and event counters", usage="show app workers")
def show_app_workers(engine, args):
    _no_args(args)
    return _sessions(engine, "show app workers").show_app_workers(engine)


@command("show app segments", help="apps' shared-memory segments: size, free bytes, fifos, queues",
         usage="show app segments")
def show_app_segments(engine, args):
    _no_args(args)
    return _sessions(engine, "show app segments").show_app_segments(engine)


@command("show app attach", help="the attach socket: client processes, refusals by reason",
         usage="show app attach")
def show_app_attach(engine, args):
    _no_args(args)
    return _sessions(engine, "show app attach").show_app_attach(engine)


@command("show app mq", help="app workers' message queues", usage="show app mq")
def show_app_mq(engine, args):
    _no_args(args)
    return _sessions(engine, "show app mq").show_app_mq(engine)


@command("show session-input", help="session-input: events delivered, coalesced, queue-full back-offs",
         usage="show session-input")
def show_session_input(engine, args):
    _no_args(args)
    return _sessions(engine, "show session-input").show_session_input(engine)


@command("clear session", help="reset a session (its app is told)", usage="clear session <handle>")
def clear_session(engine, args):
    _sessions(engine, "clear session")
    if len(args) != 1:
        raise UsageError("give a session handle (see show session)")
    try:
        handle = int(args[0], 0)
    except ValueError:
        raise UsageError(f"{args[0]!r} is not a session handle") from None
    from graphnet.session.application import session_manager
    from graphnet.session.session import SessionError
    try:
        session_manager(engine).layer.reset(handle)
    except SessionError as e:
        raise UsageError(str(e)) from None
    return ""
