"""The startup file: a TOML description of the engine ``graphnet run`` builds.

Schema (every key optional unless marked; unknown keys are errors)::

    [engine]
    name    = "main"        # str: the engine's name in show output
    buffers = 16384         # int 16..4194304: buffers in the pool (2368 bytes each)
    tick    = 0.001         # float 1e-6..1.0: timer wheel tick, seconds
    busy_poll_us = 50       # int 0..100000: after work, microseconds the loop
                            # keeps looking at its fds before it sleeps in
                            # epoll (no wakeup latency between packets of a
                            # flow; costs CPU only while traffic flows); 0: off

    [startup]
    exec = "setup.cli"      # str: a file of CLI commands run once the engine
                            # has started (relative to this file); the first
                            # failing line stops graphnet run, naming it

    [cli]
    socket  = "/path/cli.sock"  # str: control socket; default: see
                                # graphnet.paths.default_socket_path
    enabled = true          # bool: serve the control socket at all
    group   = "netadm"      # str: members of this group may use it too
                            # (default: only root and the engine's user)
    max_clients  = 16       # int 1..1024: connections served at once
    idle_timeout = 60.0     # float 0.1..86400: seconds before a silent
                            # connection is closed

    [app_socket]            # the attach socket: apps in other processes
                            # (graphnet.app) attach to the engine's session
                            # layer; served when the graph has session nodes
    socket  = "/path/app.sock"  # str: default app.sock beside the control socket
    enabled = true          # bool: serve it at all
    group   = "apps"        # str: members of this group may attach too
    max_clients = 64        # int 1..4096: processes attached at once

    [graph]
    modules = ["pkg.mod"]   # [str]: modules whose NODES tuple is added
    chain   = 2             # int 0..256: pass-through demo nodes demo-0 ->
                            # demo-1 -> ... inserted between pg and pg.next

    [pg]                    # the packet generator (only when streams exist)
    name = "pg-input"       # str: its node name
    next = "null"           # str: the node its packets go to
    mode = "interrupt"      # polling | interrupt | adaptive | disabled

    [[pg.stream]]           # one per stream
    name      = "udp"       # str, required, unique
    # exactly one packet source:
    template   = "udp"      # udp | tcp | icmp (see graphnet.io.templates) with
      src_mac, dst_mac, src, dst  (str), sport, dport, ttl, size (int)
    packet_hex = "0200..."  # str or [str]: raw frames in hex
    pcap       = "x.pcap"   # str: a pcap file (relative to the config file)
    count = 1000            # int 0..2**48: packets to send; omitted: no limit
    rate  = 1000.0          # float 0.001..1e9: packets per second; omitted: flat out
    fix_checksums = true    # bool: recompute IPv4/UDP/TCP checksums after edits

    [[pg.stream.edit]]      # up to 8 per stream, applied per packet in C
    field = "ip4.src"       # a named field (graphnet.io.pg.ETHERNET_IP4_FIELDS),
    # or offset = 26 and size = 1 | 2 | 4
    min   = "10.0.0.1"      # int, or a dotted quad for 4-byte fields
    max   = "10.0.0.254"
    mode  = "inc"           # inc | random

    [[node]]                # set the state of input nodes after building
    name  = "pg-input"
    state = "polling"       # polling | interrupt | adaptive | disabled

    [[interface]]           # one per interface; created in this order
    kind    = "tap"         # required: tap | af-packet | pcap
    name    = "gn0"         # str: the interface's name (required for tap and
                            # pcap; af-packet: "host-<host_if>"); tap: the
                            # kernel's name too (1..15 bytes) unless host_name
    next    = "null"        # str: the node its input feeds; omitted:
                            # ethernet-input if the graph has it, else null
    rx_mode = "interrupt"   # polling | interrupt | adaptive (also "rx-mode");
                            # pcap default: polling with an input, else interrupt
    state   = "up"          # up | down: admin state at start
    mtu     = 1500          # int 68..65535 (af-packet default: the kernel's)
    mac     = "02:00:00:00:00:01"   # graphnet's side (default: derived from the index)
    # tap:
    netns        = "graphnet0"      # move the kernel side into this namespace
                                    # (created if missing, then removed on exit)
    host_address = "10.10.0.1/24"   # an address on the kernel side
    host_mac     = "02:..."         # the kernel side's MAC (default: the kernel's)
    host_name    = "vpp-tap0"       # the kernel side's name (default: name; also
                                    # "host-if-name"): 1..15 bytes, letters, digits, -_.
    offloads     = true             # negotiate checksum/TSO/USO (GSO super-frames)
    queues       = 1                # int 1..16: fds on the TAP, read round-robin
                                    # by one loop; > 1 sets IFF_MULTI_QUEUE (the
                                    # kernel spreads flows by hash; tx: queue 0)
    multi_queue  = false            # IFF_MULTI_QUEUE even with one queue
    # af-packet:
    host_if     = "veth0"           # required: an existing kernel interface
    netns       = "ns1"             # the namespace it lives in (must exist)
    promiscuous = true
    # pcap:
    input  = "in.pcap"      # replayed as received packets (relative to this file)
    output = "out.pcap"     # what is sent to the interface is written here
    repeat = 1              # int 1..2**32-1: times the input is replayed
    # IPv4 (any kind; needs the IPv4 graph, added automatically):
    address   = "10.10.0.2/24"      # graphnet's own address on it, a.b.c.d/len
    addresses = ["10.10.0.2/24", "10.11.0.1/16"]    # or several (not both keys)

    [ip]                    # the IPv4 host and router graph (ip4_host.NODES)
    enabled = true          # bool: add it; default: added when an interface
                            # has an address or a [[route]] / [[neighbor]]
                            # exists (false with any of those is an error)
    udp_echo_port = 7       # int 0..65535: the UDP echo service's port (0: none)

    [ip.icmp_error]         # ICMP error rate limit, as `set ip icmp-error-rate`
    rate  = 1000.0          # float > 0, <= 1e9: errors per second
    burst = 100.0           # float 1..1e9: errors at once

    [ip.neighbor]           # neighbour (ARP) timers, as `set ip neighbor-config`;
                            # omitted keys keep fib.ip4_neighbor_table.DEFAULTS (giving
                            # the table adds the IPv4 graph)
    reachable_time = 30.0   # float 0..1e9: seconds a confirmed entry stays
                            # reachable, then stale and probed (0: never stale)
    unicast_probes = 3      # int 1..255: unanswered unicast probes before a
                            # stale entry is deleted
    probe_interval = 1.0    # float > 0, <= 1e9: seconds between ARP requests and probes
    aging_time     = 300.0  # float 0..1e9: seconds before an unconfirmed dynamic
                            # entry is removed (0: never)
    queue_limit    = 16     # int 0..32: packets held per neighbour while it is
                            # resolved (when full the oldest is dropped)
    queue_pool_share = 0.125  # float, 0 < x <= 1: share of the buffer pool that
                            # packets waiting for ARP may hold, all together

    [ip.reassembly]         # IPv4 reassembly (fragments for this host)
    pool_share = 0.25       # float, 0 < x <= 1: share of the buffer pool held
                            # fragments may take; beyond it the oldest datagram goes
    timeout    = 2.0        # float > 0, <= 1e9: seconds a datagram may stay incomplete
    max_fragments = 64      # int 1..1024: fragments per datagram; one more drops
                            # the datagram (too-many-fragments)
    max_datagrams = 1024    # int 1..4194304: datagrams in progress at once; a new
                            # one evicts the oldest (too-many-datagrams)

    [[route]]               # one per route, added after the addresses
    prefix    = "10.20.0.0/16"  # required, a.b.c.d/len with no host bits set
    via       = "10.10.0.1"     # next hop (resolved with ARP)
    interface = "gn0"           # the next hop's interface; omitted: the
                                # interface whose address covers via.
                                # interface without via: on-link (glean)
    drop      = true            # a blackhole instead (no via / interface)
    # via     = ["10.10.0.1", "10.11.0.1"]  # a list: one ECMP path per next hop
    # type    = "unreachable"   # or "prohibit" (ICMP 3/1, 3/13) or "drop"

    [[neighbor]]            # a neighbour (ARP) entry, as `set ip neighbor`
    interface = "gn0"       # required
    ip        = "10.10.0.1" # required
    mac       = "02:00:00:00:00:09"   # required, unicast
    static    = false       # true: never aged nor changed by ARP

    [[fault_inject]]        # faults on one interface's rx or tx path, as
                            # `set fault-inject` (graphnet.nodes.fault_inject)
    interface = "gn0"       # required: an [[interface]] of this file
    direction = "rx"        # required: rx | tx
    drop      = 5.0         # float 0..100: percent of packets dropped
    duplicate = 1.0         # float 0..100: percent duplicated
    reorder   = 2.0         # float 0..100: percent sent after the next packet
    corrupt   = 0.1         # float 0..100: percent with one bit flipped
    delay     = 0.010       # float 0..10: seconds every packet is held
    seed      = 7           # int 0..2**62: the same seed, the same faults
    pool_share = 0.125      # float, 0 < x <= 1: share of the buffer pool the
                            # delayed packets may hold (beyond it: dropped)

    [[app]]                 # a builtin application on the session layer (adds
                            # the session nodes; needs the IPv4 host)
    type = "echo-server"    # the builtin: echo-server, echo-client, echo-pair (a
                            # cut-through server and client), throughput-source,
                            # throughput-sink (graphnet.apps)
    uri = "udp://0.0.0.0/1234"   # listen on (servers, sink) or connect to (clients, source)
    name = "..."            # optional; default "<type> <uri>"
    scope = "global"        # optional: global, local (cut-through only), both
    rx_fifo_size = 65536    # optional: bytes per session fifo, segment bytes
    tx_fifo_size = 65536
    segment_size = 33554432
    count = 1               # echo-client/pair: messages, of size bytes, window in flight
    size = 64               #   (throughput-source: datagram payload bytes)
    window = 1
    bytes = 1048576         # throughput-source: bytes to send

No value is ever evaluated as code: packets come from templates, hex or
pcap files, and modules are only imported by name.

Devices: ``build_engine`` creates each interface's device (TAP, AF_PACKET
socket, pcap files) after the engine object and before ``engine.build()``
(devices add nodes), in file order; a device that cannot be created
(no privilege, a name that exists, an interface that does not) is a
ConfigError naming ``interface[N]``, and the devices already created are
closed again. ``engine.close()`` runs each device's close hook: TAPs go
away with their fd and a namespace graphnet created is removed.
``build_engine(cfg, create_devices=False)`` (``graphnet graph``,
``graphnet config``) builds the same graph with stand-ins for the
devices: nothing is created in the kernel and no privilege is needed.

IPv4: with the IPv4 graph in, interfaces without ``next`` feed
ethernet-input; ``build_engine`` then sets the neighbour timers and
limits ([ip.neighbor]) and reassembly's ([ip.reassembly]), the addresses (with their local, connected and
broadcast routes), the neighbours and the routes, in that order, as
``set ip neighbor-config``, ``set interface ip address``, ``set ip
neighbor`` and ``ip route add`` would; a value the data plane refuses (an address
overlapping another on the same interface, ...) is a ConfigError naming
the key. Addresses and prefixes are checked when the file is loaded.

Built-in configs (``BUILTIN``): ``default`` (``graphnet run``): TAP gn0,
graphnet's address 10.10.0.2/24, kernel side 10.10.0.1/24 in namespace
graphnet0, the IPv4 graph (answers ping and ARP, UDP echo on port 7);
``pg`` (``graphnet run
--demo pg``): a rated UDP stream through two pass-through nodes into null.

Numbers: every numeric key declares its bounds once, in ``LIMITS``
(``(table, key) -> Limit``, the table dotted without [[array]] indices);
``_Checker.get`` applies them to every int and float it reads (and refuses
to read a numeric key that has none), so a value outside them, NaN or an
infinity is a ConfigError naming the key and line, never an overflow or an
out-of-memory deep inside the engine.

Invariants: ``load``/``loads`` either return a fully checked Config or raise
ConfigError, whose text names the file, the key (``pg.stream[2].rate``)
and, where the source shows it, the line; a TOML syntax error carries
tomllib's line and column. ``build_engine`` raises ConfigError (never
GraphError) for a graph the config cannot build.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from graphnet.io import templates
from graphnet.vlib.main import DEFAULT_BUSY_POLL_US, MAX_BUSY_POLL_US
from graphnet.wire.ethernet import format_mac, parse_mac      # the one MAC syntax

NODE_STATES = ("polling", "interrupt", "adaptive", "disabled")


class ConfigError(ValueError):
    """The startup file is wrong; the text says where and how."""


# --- the checked config ----------------------------------------------------------

@dataclass
class EditConfig:
    offset: int
    size: int
    min: int
    max: int
    mode: str = "inc"
    field: Optional[str] = None


@dataclass
class StreamConfig:
    name: str
    packets: list                 # bytes, one per template frame
    count: Optional[int] = None
    rate: Optional[float] = None
    fix_checksums: bool = True
    edits: list = field(default_factory=list)


@dataclass
class InterfaceConfig:
    kind: str                     # tap | af-packet | pcap
    name: Optional[str]           # None: the device's default (af-packet)
    path: tuple                   # ("interface", i): where errors point
    next: Optional[str] = None    # None: ethernet-input if in the graph, else null
    rx_mode: Optional[str] = None
    admin_up: bool = True
    mtu: Optional[int] = None
    mac: Optional[str] = None
    options: dict = field(default_factory=dict)    # kind-specific keyword arguments
    addresses: list = field(default_factory=list)  # "a.b.c.d/len", graphnet's own

    @property
    def display_name(self) -> str:
        return self.name or f"host-{self.options.get('host_if')}"


@dataclass
class RouteConfig:
    prefix: str                   # "a.b.c.d/len", host bits clear
    path: tuple                   # ("route", i)
    via: Optional[str] = None     # next hop address (the first path's)
    interface: Optional[str] = None
    drop: bool = False
    kind: Optional[str] = None    # "unreachable" | "prohibit" (drop: drop = True)
    more: list = field(default_factory=list)   # further ECMP paths: [(via, interface)]


@dataclass
class NeighborConfig:
    interface: str
    ip: str
    mac: str
    path: tuple                   # ("neighbor", i)
    static: bool = False


@dataclass
class FaultConfig:
    interface: str
    direction: str                # rx | tx
    faults: dict                  # parse_faults form: fractions, delay (s), seed
    pool_share: float
    path: tuple                   # ("fault_inject", i)


@dataclass
class AppConfig:
    kind: str
    uri: str
    name: Optional[str]
    options: dict
    path: tuple


APP_OPTIONS = ("rx_fifo_size", "tx_fifo_size", "segment_size", "max_segments")
APP_EXTRA = ("count", "size", "window", "bytes")      # per kind: graphnet.apps.KINDS


@dataclass
class Config:
    source: str = "<default>"
    name: str = "main"
    buffers: int = 16384
    tick: float = 0.001
    busy_poll_us: int = DEFAULT_BUSY_POLL_US
    cli_socket: Optional[str] = None
    cli_enabled: bool = True
    cli_group: Optional[str] = None
    cli_max_clients: int = 16
    cli_idle_timeout: float = 60.0
    app_socket: Optional[str] = None                    # [app_socket]: graphnet.session.attach
    app_socket_enabled: bool = True
    app_socket_group: Optional[str] = None
    app_socket_max_clients: int = 64
    app_socket_given: bool = False                      # an [app_socket] table: the session layer is added
    startup_exec: Optional[Path] = None                 # [startup] exec: CLI commands run once started
    log_file: Optional[Path] = None                     # [logging] file: log lines appended there
    log_level: Optional[str] = None                     # [logging] level: the graphnet logger's level
    modules: list = field(default_factory=list)
    chain: int = 0
    pg_name: str = "pg-input"
    pg_next: str = "null"
    pg_mode: str = "interrupt"
    streams: list = field(default_factory=list)
    node_states: list = field(default_factory=list)     # (name, state, line)
    interfaces: list = field(default_factory=list)      # InterfaceConfig, in file order
    ip_enabled: bool = False                            # add ip4_host.NODES
    routes: list = field(default_factory=list)          # RouteConfig, in file order
    neighbors: list = field(default_factory=list)       # NeighborConfig, in file order
    neighbor_config: dict = field(default_factory=dict)  # [ip.neighbor]: configure() keyword -> value
    reassembly_config: dict = field(default_factory=dict)  # [ip.reassembly]: configure() keyword -> value
    apps: list = field(default_factory=list)            # AppConfig, in file order
    faults: list = field(default_factory=list)          # FaultConfig, in file order
    icmp_error_config: dict = field(default_factory=dict)  # [ip.icmp_error]: rate, burst
    udp_echo_port: Optional[int] = None                    # [ip] udp_echo_port (0: no echo service)
    builtin: Optional[str] = None                       # name in BUILTIN, or None for a file
    lines: dict = field(default_factory=dict, repr=False)


DEFAULT_TOML = """\
# graphnet startup config (the built-in one: `graphnet config --default`).
# A TAP interface gn0 whose kernel side lives in network namespace graphnet0
# (created if missing; removed on exit if graphnet created it) with address
# 10.10.0.1/24; graphnet is 10.10.0.2/24 on it, an IPv4 host that answers
# ARP and ping (and UDP echo on port 7); and the control socket.
# Needs root (CAP_NET_ADMIN).
#   graphnet run
#   ip netns exec graphnet0 ping 10.10.0.2     # answered by graphnet
#   graphnet ctl show ip neighbors             # 10.10.0.1, learned
#   graphnet ctl show interface
# The packet generator demo, without root: `graphnet run --demo pg`.
# Schema: `python -m pydoc graphnet.config`.

[engine]
name = "main"
buffers = 16384          # buffers in the pool
tick = 0.001             # timer tick, seconds

[cli]
enabled = true
# socket = "/tmp/graphnet.sock"   # default: $GRAPHNET_SOCKET, else
                                  # /run/graphnet/cli.sock as root

[[interface]]
kind = "tap"
name = "gn0"
netns = "graphnet0"              # the kernel side goes here
host_address = "10.10.0.1/24"    # the kernel side's address
rx_mode = "interrupt"            # polling | interrupt | adaptive
address = "10.10.0.2/24"         # graphnet's own address (adds the IPv4 graph;
                                 # the TAP's input feeds ethernet-input)

[ip]
enabled = true                   # ARP, IPv4, ICMP, UDP (graphnet.nodes.ip4_host)
# [[route]]                      # more routes, e.g. beyond the kernel side:
# prefix = "10.20.0.0/16"
# via = "10.10.0.1"
"""

PG_DEMO_TOML = """\
# graphnet startup config: the packet generator demo (`graphnet run --demo pg`,
# `graphnet config --demo pg`; the same as examples/pg-demo.toml).
# A UDP stream at 1000 packets/s through two pass-through nodes into null,
# and the control socket: `graphnet run --demo pg`, then `graphnet ctl show runtime`.
# No interfaces, no root needed. Schema: `python -m pydoc graphnet.config`.

[engine]
name = "main"
buffers = 16384          # buffers in the pool
tick = 0.001             # timer tick, seconds

[cli]
enabled = true
# socket = "/tmp/graphnet.sock"   # default: $GRAPHNET_SOCKET, else /run/graphnet/cli.sock
                                  # as root, else $XDG_RUNTIME_DIR/graphnet/cli.sock

[graph]
chain = 2                # pass-through nodes demo-0, demo-1 after the pg
# modules = ["my.nodes"] # modules whose NODES are added to the graph

[pg]
next = "null"            # where the last demo node (or the pg) sends packets
mode = "interrupt"       # polling | interrupt | adaptive | disabled

[[pg.stream]]
name = "udp-demo"
template = "udp"         # udp | tcp | icmp; or packet_hex = "..." or pcap = "file"
src = "10.0.0.1"
dst = "10.0.0.2"
sport = 1024
dport = 9
size = 64                # frame bytes without FCS
rate = 1000.0            # packets/s; leave out to send flat out
# count = 10000          # leave out for no limit

[[pg.stream.edit]]
field = "udp.sport"      # or offset = 34 and size = 2
min = 1024
max = 2047
mode = "inc"             # inc | random
"""

# name -> (TOML text, what it is); `graphnet run --demo NAME`
BUILTIN = {
    "default": (DEFAULT_TOML, "TAP gn0 with its kernel side in namespace graphnet0, graphnet 10.10.0.2/24 "
                              "answering ping (needs root)"),
    "pg": (PG_DEMO_TOML, "a rated UDP stream from the packet generator through two nodes into null"),
}


# --- where keys are ----------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+)\s*=")


def _locate(text: str) -> dict:
    """{(table path, key): line} for the usual layout: one key per line under
    [table] / [[array]] headers. Paths look like ("pg", "stream", 0, "edit", 1);
    a header's own line is stored under key None. Unusual layouts (inline
    tables, dotted keys) are simply not located."""
    where: dict = {}
    counts: dict = {}
    current: tuple = ()
    in_multiline = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.count('"""') % 2 or line.count("'''") % 2:
            in_multiline = not in_multiline
            continue
        if in_multiline:
            continue
        m = _HEADER.match(line)
        if m and not _KEY.match(line):
            names = [p.strip().strip('"\'') for p in m.group(2).split(".")]
            path: list = []
            for k, name in enumerate(names):
                path.append(name)
                prefix = tuple(path)
                last = k == len(names) - 1
                if last and m.group(1) == "[[":
                    counts[prefix] = counts.get(prefix, -1) + 1
                    for other in list(counts):           # sub-arrays restart per element
                        if len(other) > len(prefix) and other[:len(prefix)] == prefix:
                            del counts[other]
                    path.append(counts[prefix])
                elif prefix in counts:
                    path.append(counts[prefix])
            current = tuple(path)
            where.setdefault((current, None), lineno)
            continue
        m = _KEY.match(line)
        if m:
            where.setdefault((current, m.group(1).strip('"\'')), lineno)
    return where


# --- numeric bounds: one place per key -------------------------------------------

@dataclass(frozen=True)
class Limit:
    """Bounds of a numeric key: lo..hi (lo excluded when lo_open); a
    float key's bounds are floats, an int key's ints."""
    lo: float
    hi: float
    lo_open: bool = False

    def problem(self, v) -> Optional[str]:
        """Why v is refused, or None."""
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return f"must be a finite number, not {v}"
        if (v <= self.lo if self.lo_open else v < self.lo) or v > self.hi:
            if self.lo_open:
                return f"must be > {self.lo:g} and <= {self.hi:g}, not {v}"
            return f"must be {self.lo:g}..{self.hi:g}, not {v}"
        return None


MAX_BUFFERS = 1 << 22              # 4 Mi buffers: about 10 GB of arena
TAP_MAX_QUEUES = 16                # graphnet.io.tap's MAX_QUEUES

# (table, key) -> Limit. The table is dotted without [[array]] indices
# ("pg.stream.edit"). Every int or float key read by _Checker.get needs an
# entry here (a missing one is a programming error, caught by the tests).
LIMITS: dict = {
    ("engine", "buffers"): Limit(16, MAX_BUFFERS),
    ("engine", "tick"): Limit(1e-6, 1.0),
    ("engine", "busy_poll_us"): Limit(0, MAX_BUSY_POLL_US),
    ("graph", "chain"): Limit(0, 256),
    ("cli", "max_clients"): Limit(1, 1024),
    ("cli", "idle_timeout"): Limit(0.1, 86400.0),
    ("app_socket", "max_clients"): Limit(1, 4096),
    ("pg.stream", "count"): Limit(0, 1 << 48),
    ("pg.stream", "rate"): Limit(0.001, 1e9),
    ("pg.stream", "sport"): Limit(0, 0xffff),
    ("pg.stream", "dport"): Limit(0, 0xffff),
    ("pg.stream", "ttl"): Limit(0, 255),
    ("pg.stream", "size"): Limit(14, templates.MAX_SIZE),
    ("pg.stream.edit", "offset"): Limit(0, templates.MAX_SIZE - 1),
    ("pg.stream.edit", "size"): Limit(1, 4),
    ("pg.stream.edit", "min"): Limit(0, 0xffffffff),
    ("pg.stream.edit", "max"): Limit(0, 0xffffffff),
    ("interface", "mtu"): Limit(68, 65535),
    ("interface", "queues"): Limit(1, TAP_MAX_QUEUES),
    ("interface", "repeat"): Limit(1, 0xffffffff),
    # [ip.neighbor]: from _NEIGHBOR_TIMERS (limits_from), below
    ("app", "rx_fifo_size"): Limit(64, 1 << 30),          # graphnet.session.application.AppOptions
    ("app", "tx_fifo_size"): Limit(64, 1 << 30),
    ("app", "segment_size"): Limit(1 << 16, (1 << 32) - 64),
    ("app", "max_segments"): Limit(1, 64),
    ("fault_inject", "drop"): Limit(0.0, 100.0),               # percent
    ("fault_inject", "duplicate"): Limit(0.0, 100.0),
    ("fault_inject", "reorder"): Limit(0.0, 100.0),
    ("fault_inject", "corrupt"): Limit(0.0, 100.0),
    ("fault_inject", "delay"): Limit(0.0, 10.0),               # seconds: fault_inject.MAX_DELAY
    ("fault_inject", "seed"): Limit(0, 1 << 62),
    ("fault_inject", "pool_share"): Limit(0.0, 1.0, True),
    ("app", "count"): Limit(1, 1 << 40),                  # graphnet.apps.echo / throughput
    ("app", "size"): Limit(1, 1 << 24),
    ("app", "window"): Limit(1, 1 << 20),
    ("app", "bytes"): Limit(1, 1 << 50),
}


def limits_from(table: str, spec: dict) -> dict:
    """LIMITS entries for a table described as {key: (type, minimum,
    minimum_excluded, maximum)} (as [ip.neighbor]'s keys are):
    ``LIMITS.update(limits_from("ip.neighbor", _NEIGHBOR_TIMERS))``."""
    return {(table, key): Limit(kind(lo), kind(hi), lo_open) for key, (kind, lo, lo_open, hi) in spec.items()}


def limit_of(path: tuple, key: str) -> Limit:
    """The declared bounds of a numeric key (KeyError: none declared)."""
    return LIMITS[(".".join(p for p in path if isinstance(p, str)), key)]


# --- checking ----------------------------------------------------------------------

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a table"}


def _type_name(v: Any) -> str:
    for t in (bool, int, float, str, list, dict):
        if isinstance(v, t):
            return _TYPE_NAMES[t]
    return type(v).__name__


class _Checker:
    """Reads one TOML table against a spec, naming keys and lines in errors."""

    def __init__(self, source: str, lines: dict):
        self.source = source
        self.lines = lines
        self.errors: list = []          # ConfigErrors collected by unit(), in file order

    @contextlib.contextmanager
    def unit(self):
        """One independent part of the file (a section, an [[array]] entry):
        its first error is collected and checking goes on with the next part,
        so that one run reports every broken part, as a compiler does."""
        try:
            yield
        except ConfigError as e:
            self.errors.append(e)

    def raise_collected(self) -> None:
        """One ConfigError listing every collected error, if there are any."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigError(f"{len(self.errors)} errors:\n" + "\n".join(str(e) for e in self.errors))

    def error(self, path: tuple, key: Optional[str], msg: str) -> ConfigError:
        line = self.lines.get((path, key)) or self.lines.get((path, None))
        if not line and path and isinstance(path[-1], str):    # an inline table: its key's line
            line = self.lines.get((path[:-1], path[-1]))
        where = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{where}: {self.label(path, key)}: {msg}")

    @staticmethod
    def label(path: tuple, key: Optional[str]) -> str:
        """pg.stream[2].rate: dotted, with 1-based indices into [[arrays]]."""
        text = ""
        for p in path:
            text += f"[{p + 1}]" if isinstance(p, int) else ("." if text else "") + p
        if key:
            text += ("." if text else "") + key
        return text or "top level"

    def table(self, value: Any, path: tuple, allowed: tuple) -> dict:
        if not isinstance(value, dict):
            raise self.error(path, None, f"expected a table, got {_type_name(value)}")
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                raise self.error(path, key, f"unknown key {key!r}"
                                 + (f" (did you mean {hint[0]!r}?)" if hint else
                                    f"; known keys: {', '.join(allowed)}"))
        return value

    def get(self, table: dict, path: tuple, key: str, kind, default=None, *, choices=None,
            minimum=None, exclusive=False):
        """table[key] checked: its type, its choices, and for int and float
        the key's LIMITS (``minimum``/``exclusive``: a further lower bound);
        default when absent."""
        if key not in table:
            return default
        v = table[key]
        ok = (isinstance(v, kind) and not isinstance(v, bool)) if kind in (int, float) else isinstance(v, kind)
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if kind is list and ok:
            if not all(isinstance(x, str) for x in v):
                raise self.error(path, key, "expected a list of strings")
        if not ok:
            raise self.error(path, key, f"expected {_TYPE_NAMES[kind]}, got {_type_name(v)} ({v!r})")
        if kind in (int, float):
            self.check_limit(path, key, v)
        if choices is not None and v not in choices:
            raise self.error(path, key, f"{v!r} is not one of {', '.join(map(str, choices))}")
        if minimum is not None and (v <= minimum if exclusive else v < minimum):
            raise self.error(path, key, f"must be {'>' if exclusive else '>='} {minimum}, not {v}")
        return v

    def check_limit(self, path: tuple, key: str, v) -> None:
        problem = limit_of(path, key).problem(v)
        if problem:
            raise self.error(path, key, problem)

    def array_of_tables(self, parent: dict, path: tuple, key: str) -> list:
        v = parent.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise self.error(path, key, f"expected [[{'.'.join(p for p in path + (key,) if isinstance(p, str))}]] "
                                        f"tables, got {_type_name(v)}")
        return v


def loads(text: str, source: str = "<string>", base_dir: Optional[Path] = None) -> Config:
    """Parse and check a startup config given as text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: TOML syntax error: {e}") from None
    ck = _Checker(source, _locate(text))
    base_dir = base_dir or Path.cwd()
    ck.table(doc, (), ("engine", "cli", "app_socket", "startup", "logging", "graph", "pg", "node", "interface", "ip",
                       "route", "neighbor", "app", "fault_inject"))
    cfg = Config(source=source, lines=ck.lines)

    with ck.unit():
        eng = ck.table(doc.get("engine", {}), ("engine",), ("name", "buffers", "tick", "busy_poll_us"))
        cfg.name = ck.get(eng, ("engine",), "name", str, cfg.name)
        cfg.buffers = ck.get(eng, ("engine",), "buffers", int, cfg.buffers)
        cfg.tick = ck.get(eng, ("engine",), "tick", float, cfg.tick)
        cfg.busy_poll_us = ck.get(eng, ("engine",), "busy_poll_us", int, cfg.busy_poll_us)

    with ck.unit():
        _cli(ck, doc, cfg)

    with ck.unit():
        _app_socket(ck, doc, cfg)

    with ck.unit():
        st = ck.table(doc.get("startup", {}), ("startup",), ("exec",))
        if "exec" in st:
            p = Path(ck.get(st, ("startup",), "exec", str))
            p = p if p.is_absolute() else base_dir / p
            if not p.is_file():
                raise ck.error(("startup",), "exec", f"no such file: {p}")
            cfg.startup_exec = p

    with ck.unit():
        from graphnet.vlib.logring import LEVELS
        lg = ck.table(doc.get("logging", {}), ("logging",), ("file", "level"))
        cfg.log_level = ck.get(lg, ("logging",), "level", str, None, choices=LEVELS)
        if "file" in lg:
            p = Path(ck.get(lg, ("logging",), "file", str))
            p = p if p.is_absolute() else base_dir / p
            if not p.parent.is_dir():
                raise ck.error(("logging",), "file", f"no such directory: {p.parent}")
            cfg.log_file = p

    with ck.unit():
        graph = ck.table(doc.get("graph", {}), ("graph",), ("modules", "chain"))
        cfg.modules = ck.get(graph, ("graph",), "modules", list, [])
        cfg.chain = ck.get(graph, ("graph",), "chain", int, 0)

    pg = {}
    with ck.unit():
        pg = ck.table(doc.get("pg", {}), ("pg",), ("name", "next", "mode", "stream"))
        cfg.pg_name = ck.get(pg, ("pg",), "name", str, cfg.pg_name)
        cfg.pg_next = ck.get(pg, ("pg",), "next", str, cfg.pg_next)
        cfg.pg_mode = ck.get(pg, ("pg",), "mode", str, cfg.pg_mode, choices=NODE_STATES)
    names = set()
    streams = []
    with ck.unit():
        streams = ck.array_of_tables(pg, ("pg",), "stream")
    for i, st in enumerate(streams):
        with ck.unit():
            s = _stream(ck, st, ("pg", "stream", i), base_dir)
            if s.name in names:
                raise ck.error(("pg", "stream", i), "name", f"a stream named {s.name!r} already exists")
            names.add(s.name)
            cfg.streams.append(s)

    for i, nd in enumerate(_entries(ck, doc, "node")):
        path = ("node", i)
        with ck.unit():
            ck.table(nd, path, ("name", "state"))
            if "name" not in nd or "state" not in nd:
                raise ck.error(path, None, "needs both name and state")
            cfg.node_states.append((ck.get(nd, path, "name", str),
                                    ck.get(nd, path, "state", str, choices=NODE_STATES), path))

    seen: dict = {}
    for i, it in enumerate(_entries(ck, doc, "interface")):
        with ck.unit():
            ic = _interface(ck, it, ("interface", i), base_dir)
            key = ic.display_name
            if key in seen:
                raise ck.error(ic.path, "name" if "name" in it else "host_if",
                               f"an interface named {key!r} already exists (interface[{seen[key] + 1}])")
            seen[key] = i
            cfg.interfaces.append(ic)
    if not ck.errors:               # [ip] refers to the interfaces: only once they are sound
        with ck.unit():
            _ip(ck, doc, cfg)
    if not ck.errors:               # [[app]] needs to know whether the IPv4 host is there
        with ck.unit():
            _apps(ck, doc, cfg)
    if not ck.errors:               # [[fault_inject]] names the interfaces
        _faults(ck, doc, cfg)
    ck.raise_collected()
    return cfg


def _entries(ck: _Checker, doc: dict, key: str) -> list:
    """The [[key]] tables of doc; a malformed array is collected, giving none."""
    with ck.unit():
        return ck.array_of_tables(doc, (), key)
    return []


_FAULT_PERCENT = ("drop", "duplicate", "reorder", "corrupt")
_FAULT_KEYS = ("interface", "direction") + _FAULT_PERCENT + ("delay", "seed", "pool_share")


def _faults(ck: _Checker, doc: dict, cfg: Config) -> None:
    """[[fault_inject]]: one table per interface and direction."""
    names = [ic.display_name for ic in cfg.interfaces]
    seen: dict = {}
    for i, t in enumerate(_entries(ck, doc, "fault_inject")):
        path = ("fault_inject", i)
        with ck.unit():
            ck.table(t, path, _FAULT_KEYS)
            for key in ("interface", "direction"):
                if key not in t:
                    raise ck.error(path, None, f"needs {key}")
            itf = ck.get(t, path, "interface", str)
            if itf not in names:
                hint = difflib.get_close_matches(itf, names, n=1)
                raise ck.error(path, "interface", f"no [[interface]] named {itf!r}"
                                                  + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            direction = ck.get(t, path, "direction", str, choices=("rx", "tx"))
            if (itf, direction) in seen:
                raise ck.error(path, "direction", f"{itf} {direction} is already given "
                                                  f"(fault_inject[{seen[(itf, direction)] + 1}])")
            seen[(itf, direction)] = i
            faults = {k: ck.get(t, path, k, float) / 100 for k in _FAULT_PERCENT if k in t}
            if "delay" in t:
                faults["delay"] = ck.get(t, path, "delay", float)
            if "seed" in t:
                faults["seed"] = ck.get(t, path, "seed", int)
            cfg.faults.append(FaultConfig(itf, direction, faults, ck.get(t, path, "pool_share", float, 0.125),
                                          path))


def _cli(ck: _Checker, doc: dict, cfg: Config) -> None:
    cli = ck.table(doc.get("cli", {}), ("cli",), ("socket", "enabled", "group", "max_clients", "idle_timeout"))
    cfg.cli_socket = ck.get(cli, ("cli",), "socket", str)
    cfg.cli_enabled = ck.get(cli, ("cli",), "enabled", bool, True)
    cfg.cli_group = _group(ck, cli, ("cli",))
    cfg.cli_max_clients = ck.get(cli, ("cli",), "max_clients", int, cfg.cli_max_clients)
    cfg.cli_idle_timeout = ck.get(cli, ("cli",), "idle_timeout", float, cfg.cli_idle_timeout)


def _group(ck: _Checker, table: dict, path: tuple) -> Optional[str]:
    """A table's ``group`` key: a group that exists on this machine, or None."""
    group = ck.get(table, path, "group", str)
    if group is not None:
        import grp
        try:
            grp.getgrnam(group)
        except KeyError:
            raise ck.error(path, "group", f"no group named {group!r} on this machine") from None
    return group


def _app_socket(ck: _Checker, doc: dict, cfg: Config) -> None:
    t = ck.table(doc.get("app_socket", {}), ("app_socket",), ("socket", "enabled", "group", "max_clients"))
    cfg.app_socket = ck.get(t, ("app_socket",), "socket", str)
    cfg.app_socket_enabled = ck.get(t, ("app_socket",), "enabled", bool, True)
    cfg.app_socket_group = _group(ck, t, ("app_socket",))
    cfg.app_socket_max_clients = ck.get(t, ("app_socket",), "max_clients", int, cfg.app_socket_max_clients)
    cfg.app_socket_given = "app_socket" in doc


def _apps(ck: _Checker, doc: dict, cfg: Config) -> None:
    """[[app]]: builtin session-layer apps, checked here (type, URI, sizes)."""
    from graphnet.apps import KINDS
    from graphnet.session.application import AppOptions, parse_uri, SCOPES
    names = set()
    for i, at in enumerate(ck.array_of_tables(doc, (), "app")):
        path = ("app", i)
        ck.table(at, path, ("type", "uri", "name", "scope") + APP_OPTIONS + APP_EXTRA)
        for key in ("type", "uri"):
            if key not in at:
                raise ck.error(path, None, f"an app needs type and uri (no {key})")
        kind = ck.get(at, path, "type", str, choices=tuple(KINDS))
        uri = ck.get(at, path, "uri", str)
        try:
            parse_uri(uri)
        except ValueError as e:
            raise ck.error(path, "uri", str(e)) from None
        opts = {k: ck.get(at, path, k, int) for k in APP_OPTIONS + APP_EXTRA if k in at}
        for key in APP_EXTRA:
            if key in at and key not in KINDS[kind][2]:
                raise ck.error(path, key, f"a {kind} app takes no {key} (it takes: "
                                          f"{', '.join(KINDS[kind][2]) or 'none of them'})")
        if "scope" in at:
            opts["scope"] = ck.get(at, path, "scope", str, choices=SCOPES)
        try:
            AppOptions(**{k: v for k, v in opts.items() if k not in APP_EXTRA}).check()
        except ValueError as e:
            key = str(e).split()[0]
            raise ck.error(path, key if key in opts else None, str(e)) from None
        name = ck.get(at, path, "name", str)
        key = name or f"{kind} {uri}"
        if key in names:
            raise ck.error(path, "name" if name else "uri", f"an app named {key!r} already exists")
        names.add(key)
        cfg.apps.append(AppConfig(kind, uri, name, opts, path))
    if cfg.apps and not cfg.ip_enabled:
        raise ck.error(cfg.apps[0].path, None, "apps run on the IPv4 host: give an interface an address "
                                               "or set [ip] enabled = true")
    if cfg.app_socket_given and cfg.app_socket_enabled and not cfg.ip_enabled:
        raise ck.error(("app_socket",), None, "the attach socket serves the session layer, which runs on the "
                                              "IPv4 host: give an interface an address or set [ip] enabled = true")


# --- [[interface]] -----------------------------------------------------------------

INTERFACE_KINDS = ("tap", "af-packet", "pcap")
RX_MODES = ("polling", "interrupt", "adaptive")
_IF_COMMON = ("kind", "name", "next", "rx_mode", "state", "mtu", "mac", "address", "addresses")
_IF_KEYS = {
    "tap": _IF_COMMON + ("netns", "host_address", "host_mac", "host_name", "offloads", "multi_queue", "queues"),
    "af-packet": _IF_COMMON + ("host_if", "netns", "promiscuous"),
    "pcap": _IF_COMMON + ("input", "output", "repeat"),
}
_ALIASES = {"rx-mode": "rx_mode", "host-if": "host_if", "host-address": "host_address",
            "host-mac": "host_mac", "multi-queue": "multi_queue", "host-if-name": "host_name"}


def _mac(ck: _Checker, t: dict, path: tuple, key: str, *, unicast: bool) -> Optional[str]:
    v = ck.get(t, path, key, str)
    if v is None:
        return None
    try:
        mac = parse_mac(v)
    except ValueError:
        raise ck.error(path, key, f"{v!r} is not a MAC address (like 02:00:00:00:00:01)") from None
    if unicast and mac[0] & 1:
        raise ck.error(path, key, f"{v!r} is a multicast address; an interface needs a unicast one")
    return format_mac(mac)


def _ifname(ck: _Checker, t: dict, path: tuple, key: str, kernel: bool, new: bool = False) -> Optional[str]:
    """A name; ``kernel``: a kernel interface's; ``new``: one graphnet
    creates (a TAP's kernel side: graphnet.io.host.ifname_error's rule)."""
    v = ck.get(t, path, key, str)
    if v is None:
        return None
    if not v or any(c.isspace() for c in v):
        raise ck.error(path, key, f"{v!r}: a name needs at least one character and no spaces")
    if kernel and (len(v.encode()) > 15 or "/" in v or v in (".", "..")):
        raise ck.error(path, key, f"{v!r} is not a kernel interface name (1..15 bytes, no '/')")
    if kernel and new:
        from graphnet.io.host import ifname_error
        err = ifname_error(v)
        if err:
            raise ck.error(path, key, f"{v!r} is not a kernel interface name: {err}")
    return v


def _interface(ck: _Checker, it: dict, path: tuple, base_dir: Path) -> InterfaceConfig:
    if not isinstance(it, dict):
        raise ck.error(path, None, f"expected a table, got {_type_name(it)}")
    for alias, key in _ALIASES.items():       # rx-mode is rx_mode (vppctl spelling)
        if alias in it:
            if key in it:
                raise ck.error(path, alias, f"give {key} or {alias}, not both")
            it = {(key if k == alias else k): v for k, v in it.items()}
            if (path, alias) in ck.lines:
                ck.lines.setdefault((path, key), ck.lines[(path, alias)])
    if "kind" not in it:
        raise ck.error(path, None, f"an interface needs kind = one of {', '.join(INTERFACE_KINDS)}")
    kind = ck.get(it, path, "kind", str)
    if kind not in INTERFACE_KINDS:
        hint = difflib.get_close_matches(kind, INTERFACE_KINDS, n=1)
        raise ck.error(path, "kind", f"unknown kind {kind!r}" + (f" (did you mean {hint[0]!r}?)" if hint else
                                                                f"; use one of {', '.join(INTERFACE_KINDS)}"))
    allowed = _IF_KEYS[kind]
    for key in it:
        if key not in allowed:
            other = [k for k, keys in _IF_KEYS.items() if key in keys]
            if other:
                raise ck.error(path, key, f"{key!r} is not an option of a {kind} interface "
                                          f"(it is one of {' and '.join(other)})")
            ck.table(it, path, allowed)           # unknown key: did-you-mean
    name = _ifname(ck, it, path, "name", kernel=(kind == "tap" and "host_name" not in it), new=True)
    if name is None and kind != "af-packet":
        raise ck.error(path, None, f"a {kind} interface needs a name")
    ic = InterfaceConfig(kind, name, path,
                         next=ck.get(it, path, "next", str),
                         rx_mode=ck.get(it, path, "rx_mode", str, choices=RX_MODES),
                         admin_up=ck.get(it, path, "state", str, "up", choices=("up", "down")) == "up",
                         mtu=ck.get(it, path, "mtu", int),
                         mac=_mac(ck, it, path, "mac", unicast=True))
    if ic.next is not None and not ic.next:
        raise ck.error(path, "next", "give a node name")
    ic.addresses = _if_addresses(ck, it, path)
    o = ic.options
    if "netns" in it:
        ns = ck.get(it, path, "netns", str)
        if not ns or "/" in ns or ns in (".", "..") or any(c.isspace() for c in ns) or len(ns) > 200:
            raise ck.error(path, "netns", f"{ns!r} is not a network namespace name")
        o["netns"] = ns
    if kind == "tap":
        if "host_address" in it:
            import ipaddress
            a = ck.get(it, path, "host_address", str)
            try:
                if "/" not in a:
                    raise ValueError("give a prefix length, e.g. 10.10.0.1/24")
                iface = ipaddress.IPv4Interface(a)
            except ValueError as e:
                raise ck.error(path, "host_address", f"{a!r} is not an IPv4 address/length: {e}") from None
            o["host_address"] = str(iface)
        if "host_mac" in it:
            o["host_mac"] = _mac(ck, it, path, "host_mac", unicast=True)
        if "host_name" in it:
            o["host_name"] = _ifname(ck, it, path, "host_name", kernel=True, new=True)
        for key in ("offloads", "multi_queue"):
            if key in it:
                o[key] = ck.get(it, path, key, bool)
        if "queues" in it:
            q = ck.get(it, path, "queues", int)
            if q > 1 and o.get("multi_queue") is False:
                raise ck.error(path, "queues", f"{q} queues need IFF_MULTI_QUEUE: drop multi_queue = false")
            o["queues"] = q
    elif kind == "af-packet":
        if "host_if" not in it:
            raise ck.error(path, None, "an af-packet interface needs host_if = the kernel interface to attach to")
        o["host_if"] = _ifname(ck, it, path, "host_if", kernel=True)
        if "promiscuous" in it:
            o["promiscuous"] = ck.get(it, path, "promiscuous", bool)
    else:
        for key in ("input", "output"):
            v = ck.get(it, path, key, str)
            if v is None:
                continue
            f = Path(v)
            f = f if f.is_absolute() else base_dir / f
            if key == "input" and not f.is_file():
                raise ck.error(path, key, f"no such file: {f}")
            if key == "output" and not f.parent.is_dir():
                raise ck.error(path, key, f"no such directory: {f.parent}")
            o[key + "_path"] = str(f)
        if "repeat" in it:
            o["repeat"] = ck.get(it, path, "repeat", int)
    return ic


# --- IPv4: addresses, [ip], [[route]], [[neighbor]] ---------------------------------

def _ip4_address(ck: _Checker, path: tuple, key: str, v: Any) -> str:
    """A host address (no length), as text."""
    import ipaddress
    if not isinstance(v, str):
        raise ck.error(path, key, f"expected an IPv4 address a.b.c.d, got {_type_name(v)} ({v!r})")
    try:
        a = ipaddress.IPv4Address(v.strip())
    except ValueError as e:
        hint = " (give the address without a prefix length)" if "/" in v else ""
        raise ck.error(path, key, f"{v!r} is not an IPv4 address: {e}{hint}") from None
    if a.is_multicast or a.is_unspecified or a.is_loopback or int(a) == 0xffffffff:
        raise ck.error(path, key, f"{v!r} is not a usable unicast address")
    return str(a)


def _ip4_cidr(ck: _Checker, path: tuple, key: str, v: Any) -> str:
    """An interface address a.b.c.d/len (as ip4_address checks it), as text."""
    import ipaddress
    if not isinstance(v, str):
        raise ck.error(path, key, f"expected an address a.b.c.d/len, got {_type_name(v)} ({v!r})")
    if "/" not in v:
        raise ck.error(path, key, f"{v!r}: give the prefix length too, e.g. {v.strip()}/24")
    try:
        iface = ipaddress.IPv4Interface(v.strip())
    except ValueError as e:
        raise ck.error(path, key, f"{v!r} is not an IPv4 address/length: {e}") from None
    a, net = iface.ip, iface.network
    if a.is_multicast or a.is_unspecified or a.is_loopback or int(a) == 0xffffffff:
        raise ck.error(path, key, f"{v!r} is not a usable host address")
    if net.prefixlen <= 30 and a in (net.network_address, net.broadcast_address):
        raise ck.error(path, key, f"{v!r} is the {'network' if a == net.network_address else 'broadcast'} "
                                  f"address of {net}; give a host address")
    return str(iface)


def _ip4_prefix(ck: _Checker, path: tuple, key: str, v: Any) -> str:
    import ipaddress
    if not isinstance(v, str):
        raise ck.error(path, key, f"expected a prefix a.b.c.d/len, got {_type_name(v)} ({v!r})")
    if "/" not in v:
        raise ck.error(path, key, f"{v!r}: give the prefix length too (e.g. {v.strip()}/32)")
    try:
        net = ipaddress.IPv4Network(v.strip(), strict=False)
    except ValueError as e:
        raise ck.error(path, key, f"{v!r} is not an IPv4 prefix: {e}") from None
    if str(net) != v.strip():
        raise ck.error(path, key, f"{v!r} has host bits set (did you mean {str(net)!r}?)")
    return str(net)


def _if_addresses(ck: _Checker, it: dict, path: tuple) -> list:
    if "address" in it and "addresses" in it:
        raise ck.error(path, "addresses", "give address or addresses, not both")
    if "address" in it:
        return [_ip4_cidr(ck, path, "address", it["address"])]
    v = it.get("addresses", [])
    if not isinstance(v, list):
        raise ck.error(path, "addresses", f"expected a list of a.b.c.d/len, got {_type_name(v)} ({v!r})")
    out: list = []
    for x in v:
        c = _ip4_cidr(ck, path, "addresses", x)
        if c in out:
            raise ck.error(path, "addresses", f"{c} is given twice")
        out.append(c)
    return out


def _interface_ref(ck: _Checker, cfg: Config, t: dict, path: tuple, key: str) -> str:
    name = ck.get(t, path, key, str)
    names = [ic.display_name for ic in cfg.interfaces]
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        raise ck.error(path, key, f"no interface named {name!r}"
                       + (f" (did you mean {hint[0]!r}?)" if hint else
                          (f"; interfaces: {', '.join(names)}" if names else "; no [[interface]] is configured")))
    return name


def _ip(ck: _Checker, doc: dict, cfg: Config) -> None:
    import ipaddress
    ip = ck.table(doc.get("ip", {}), ("ip",), ("enabled", "neighbor", "reassembly", "icmp_error", "udp_echo_port"))
    enabled = ck.get(ip, ("ip",), "enabled", bool)
    if "icmp_error" in ip:
        cfg.icmp_error_config.update(_table_keys(ck, ip["icmp_error"], ("ip", "icmp_error"), _ICMP_ERROR_KEYS))
    cfg.udp_echo_port = ck.get(ip, ("ip",), "udp_echo_port", int)
    if "neighbor" in ip:
        _neighbor_timers(ck, ip["neighbor"], cfg)
    if "reassembly" in ip:
        cfg.reassembly_config.update(_table_keys(ck, ip["reassembly"], ("ip", "reassembly"), _REASSEMBLY_KEYS))
    owner: dict = {}                       # address -> interface, across interfaces
    for ic in cfg.interfaces:
        for c in ic.addresses:
            a = c.split("/")[0]
            if a in owner:
                raise ck.error(ic.path, "address" if len(ic.addresses) == 1 else "addresses",
                               f"{a} is already an address of {owner[a]}")
            owner[a] = ic.display_name

    for i, nb in enumerate(_entries(ck, doc, "neighbor")):
        with ck.unit():
            path = ("neighbor", i)
            ck.table(nb, path, ("interface", "ip", "mac", "static"))
            for key in ("interface", "ip", "mac"):
                if key not in nb:
                    raise ck.error(path, None, f"a neighbor needs interface, ip and mac (no {key})")
            n = NeighborConfig(_interface_ref(ck, cfg, nb, path, "interface"),
                               _ip4_address(ck, path, "ip", nb["ip"]), _mac(ck, nb, path, "mac", unicast=True),
                               path, static=ck.get(nb, path, "static", bool, False))
            for other in cfg.neighbors:
                if (other.interface, other.ip) == (n.interface, n.ip):
                    raise ck.error(path, "ip", f"neighbor {n.ip} on {n.interface} is already given "
                                               f"(neighbor[{other.path[1] + 1}])")
            cfg.neighbors.append(n)

    for i, rt in enumerate(_entries(ck, doc, "route")):
        with ck.unit():
            path = ("route", i)
            ck.table(rt, path, ("prefix", "via", "interface", "drop", "type"))
            if "prefix" not in rt:
                raise ck.error(path, None, "a route needs prefix = a.b.c.d/len")
            r = RouteConfig(_ip4_prefix(ck, path, "prefix", rt["prefix"]), path,
                            drop=ck.get(rt, path, "drop", bool, False))
            if "type" in rt:
                kind = ck.get(rt, path, "type", str, None, choices=("drop", "unreachable", "prohibit"))
                if "drop" in rt:
                    raise ck.error(path, "drop", "give type = ... or drop = true, not both")
                r.drop = kind == "drop"
                r.kind = None if r.drop else kind
            if r.drop or r.kind:
                for key in ("via", "interface"):
                    if key in rt:
                        raise ck.error(path, key, f"a {r.kind or 'drop'} route has no {key}")
            elif "drop" in rt and "via" not in rt and "interface" not in rt:
                raise ck.error(path, "drop", "drop = false needs via and/or interface")
            else:
                if "via" not in rt and "interface" not in rt:
                    raise ck.error(path, None, "a route needs via = next hop, interface = on-link, or drop = true")
                if "interface" in rt:
                    r.interface = _interface_ref(ck, cfg, rt, path, "interface")
                if "via" in rt:
                    vias = rt["via"] if isinstance(rt["via"], list) else [rt["via"]]
                    if not vias:
                        raise ck.error(path, "via", "via = [] names no next hop")
                    given = r.interface
                    for k, v in enumerate(vias):
                        hop_text = _ip4_address(ck, path, "via", v)
                        itf = given
                        if itf is None:           # the interface whose connected prefix covers via
                            hop = ipaddress.IPv4Address(hop_text)
                            for ic in cfg.interfaces:
                                if any(hop in ipaddress.IPv4Interface(c).network for c in ic.addresses):
                                    itf = ic.display_name
                                    break
                            else:
                                raise ck.error(path, "via", f"next hop {hop_text} is on no interface's address "
                                                            f"prefix: give interface = ...")
                        if hop_text in owner:
                            raise ck.error(path, "via", f"next hop {hop_text} is graphnet's own address "
                                                        f"({owner[hop_text]})")
                        if k == 0:
                            r.via, r.interface = hop_text, itf
                        else:
                            r.more.append((hop_text, itf))
            for other in cfg.routes:
                if other.prefix == r.prefix:
                    raise ck.error(path, "prefix", f"a route for {r.prefix} is already given "
                                                   f"(route[{other.path[1] + 1}])")
            cfg.routes.append(r)

    needed = [what for what, present in (("an interface address", bool(owner)), ("[[route]]", bool(cfg.routes)),
                                         ("[[neighbor]]", bool(cfg.neighbors)),
                                         ("[ip.neighbor]", "neighbor" in ip),
                                         ("[ip.reassembly]", "reassembly" in ip),
                                         ("[ip.icmp_error]", "icmp_error" in ip),
                                         ("udp_echo_port", "udp_echo_port" in ip)) if present]
    if enabled is False and needed:
        raise ck.error(("ip",), "enabled", f"the IPv4 graph is needed by {' and '.join(needed)}; "
                                           f"remove enabled = false")
    cfg.ip_enabled = bool(enabled) or bool(needed)


# [ip.neighbor] key -> (type, minimum, exclusive, maximum): the limits of
# Ip4Neighbors.configure(), checked here so that the line can be named
_NEIGHBOR_TIMERS = {"reachable_time": (float, 0, False, 1e9), "unicast_probes": (int, 1, False, 255),
                    "probe_interval": (float, 0, True, 1e9), "aging_time": (float, 0, False, 1e9),
                    "queue_limit": (int, 0, False, 32), "queue_pool_share": (float, 0, True, 1)}
# 1e9 s: fib.ip4_neighbor_table.MAX_TIMER_SECONDS (its nanoseconds still fit a uint64)
LIMITS.update(limits_from("ip.neighbor", _NEIGHBOR_TIMERS))
# [ip.reassembly], as Reassembly.configure() takes them
_REASSEMBLY_KEYS = {"pool_share": (float, 0, True, 1), "timeout": (float, 0, True, 1e9),
                    "max_fragments": (int, 1, False, 1024), "max_datagrams": (int, 1, False, 1 << 22)}
LIMITS.update(limits_from("ip.reassembly", _REASSEMBLY_KEYS))
# [ip.icmp_error], as configure_icmp_errors() takes them (errors per second, burst)
_ICMP_ERROR_KEYS = {"rate": (float, 0, True, 1e9), "burst": (float, 1, False, 1e9)}
LIMITS.update(limits_from("ip.icmp_error", _ICMP_ERROR_KEYS))
LIMITS[("ip", "udp_echo_port")] = Limit(0, 0xffff)           # 0: no UDP echo service


def _neighbor_timers(ck: _Checker, t: Any, cfg: Config) -> None:
    cfg.neighbor_config.update(_table_keys(ck, t, ("ip", "neighbor"), _NEIGHBOR_TIMERS))


def _table_keys(ck: _Checker, t: Any, path: tuple, spec: dict) -> dict:
    """The keys of table t that spec ({key: (type, ...)}) names, each read
    with its type; LIMITS bound them (an error names the key and line)."""
    ck.table(t, path, tuple(spec))
    out = {}
    for key, (kind, _, _, _) in spec.items():
        v = ck.get(t, path, key, kind)
        if v is not None:
            out[key] = v
    return out


_STREAM_KEYS = ("name", "template", "packet_hex", "pcap", "count", "rate", "fix_checksums", "edit") + templates.FIELDS


def _stream(ck: _Checker, st: dict, path: tuple, base_dir: Path) -> StreamConfig:
    ck.table(st, path, _STREAM_KEYS)
    name = ck.get(st, path, "name", str)
    if not name:
        raise ck.error(path, None, "a stream needs a name")
    sources = [k for k in ("template", "packet_hex", "pcap") if k in st]
    if len(sources) != 1:
        raise ck.error(path, sources[1] if len(sources) > 1 else None,
                       "give exactly one of template, packet_hex or pcap")
    src = sources[0]
    tfields = {k: st[k] for k in templates.FIELDS if k in st}
    if tfields and src != "template":
        raise ck.error(path, next(iter(tfields)), f"template fields need template = ..., not {src}")
    if src == "template":
        tname = ck.get(st, path, "template", str, choices=templates.TEMPLATES)
        for k, v in tfields.items():
            ck.get(st, path, k, str if isinstance(templates.DEFAULTS[k], str) else int)
        try:
            packets = [templates.build(tname, **tfields)]
        except ValueError as e:
            bad = next((k for k in tfields if str(e).startswith(k) or repr(tfields[k]) in str(e)), "template")
            raise ck.error(path, bad, str(e)) from None
    elif src == "packet_hex":
        v = st["packet_hex"]
        hexes = [v] if isinstance(v, str) else v
        if not isinstance(hexes, list) or not hexes or not all(isinstance(h, str) for h in hexes):
            raise ck.error(path, "packet_hex", "expected a hex string or a list of them")
        packets = []
        for h in hexes:
            try:
                packets.append(bytes.fromhex(h.replace(":", "").replace(" ", "")))
            except ValueError as e:
                raise ck.error(path, "packet_hex", f"not hex: {e}") from None
    else:
        p = Path(ck.get(st, path, "pcap", str))
        p = p if p.is_absolute() else base_dir / p
        packets = _read_pcap(ck, path, p)
    for pk in packets:
        if not 1 <= len(pk) <= templates.MAX_SIZE:
            raise ck.error(path, src, f"a packet of {len(pk)} bytes does not fit one buffer "
                                      f"(1..{templates.MAX_SIZE})")
    s = StreamConfig(name, packets,
                     count=ck.get(st, path, "count", int, None),
                     rate=ck.get(st, path, "rate", float, None),
                     fix_checksums=ck.get(st, path, "fix_checksums", bool, True))
    edits = ck.array_of_tables(st, path, "edit")
    if len(edits) > 8:
        raise ck.error(path + ("edit", 8), None, "at most 8 edits per stream")
    for j, ed in enumerate(edits):
        s.edits.append(_edit(ck, ed, path + ("edit", j), packets))
    return s


def _read_pcap(ck: _Checker, path: tuple, p: Path) -> list:
    if not p.is_file():
        raise ck.error(path, "pcap", f"no such file: {p}")
    try:
        from scapy.utils import rdpcap
        packets = [bytes(x) for x in rdpcap(str(p))]
    except Exception as e:
        raise ck.error(path, "pcap", f"cannot read {p}: {e}") from None
    if not packets:
        raise ck.error(path, "pcap", f"{p} holds no packets")
    return packets


def _int_or_ip(ck: _Checker, ed: dict, path: tuple, key: str, default: int) -> int:
    if key not in ed:
        return default
    v = ed[key]
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ck.error(path, key, f"expected an integer or a dotted quad, got {_type_name(v)} ({v!r})")
    if isinstance(v, str):
        try:
            return int.from_bytes(templates.ip4_bytes(v), "big")
        except ValueError as e:
            raise ck.error(path, key, str(e)) from None
    ck.check_limit(path, key, v)
    return v


def _edit(ck: _Checker, ed: dict, path: tuple, packets: list) -> EditConfig:
    from graphnet.io.pg import ETHERNET_IP4_FIELDS
    ck.table(ed, path, ("field", "offset", "size", "min", "max", "mode"))
    fname = ck.get(ed, path, "field", str)
    if fname is not None:
        if "offset" in ed or "size" in ed:
            raise ck.error(path, "offset" if "offset" in ed else "size", "give field or offset/size, not both")
        if fname not in ETHERNET_IP4_FIELDS:
            hint = difflib.get_close_matches(fname, list(ETHERNET_IP4_FIELDS), n=1)
            raise ck.error(path, "field", f"unknown field {fname!r}"
                           + (f" (did you mean {hint[0]!r}?)" if hint else
                              f"; known: {', '.join(sorted(ETHERNET_IP4_FIELDS))}"))
        offset, size = ETHERNET_IP4_FIELDS[fname]
        if fname.startswith(("ip4.", "udp.", "tcp.")):
            for pk in packets:
                if len(pk) < 34 or pk[12:14] != b"\x08\x00" or pk[14] != 0x45:
                    raise ck.error(path, "field", f"{fname} needs Ethernet + IPv4 packets without "
                                                  f"IP options; use offset/size for other packets")
    else:
        if "offset" not in ed or "size" not in ed:
            raise ck.error(path, None, "an edit needs field, or offset and size")
        offset = ck.get(ed, path, "offset", int)
        size = ck.get(ed, path, "size", int, choices=(1, 2, 4))
    top = (1 << (8 * size)) - 1
    lo = _int_or_ip(ck, ed, path, "min", 0)
    hi = _int_or_ip(ck, ed, path, "max", top)
    for key, v in (("min", lo), ("max", hi)):
        if not 0 <= v <= top:
            raise ck.error(path, key, f"{v} does not fit {size} byte{'s' if size > 1 else ''} (0..{top})")
    if lo > hi:
        raise ck.error(path, "max", f"max ({hi}) is below min ({lo})")
    mode = ck.get(ed, path, "mode", str, "inc", choices=("inc", "random"))
    return EditConfig(offset, size, lo, hi, mode, fname)


def load(path) -> Config:
    """Parse and check a startup file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read: {e}") from None
    return loads(text, str(p), p.parent)


def default_config() -> Config:
    """The built-in config (DEFAULT_TOML), used when no file is given."""
    return builtin_config("default")


def builtin_config(name: str) -> Config:
    """One of the built-in configs (BUILTIN) by name."""
    if name not in BUILTIN:
        hint = difflib.get_close_matches(name, list(BUILTIN), n=1)
        raise ConfigError(f"no built-in config named {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; built-in: {', '.join(BUILTIN)}")
    cfg = loads(BUILTIN[name][0], f"<{name} config>" if name != "default" else "<default config>")
    cfg.builtin = name
    return cfg


# --- building ------------------------------------------------------------------------

def _demo_chain(n: int, last: str) -> tuple:
    """n pass-through nodes demo-0 -> ... -> demo-(n-1) -> last."""
    try:
        from graphnet.nodes.passthrough import passthrough
    except ImportError:                      # plain Python stand-in, same behaviour
        from graphnet.vlib.node import python_node

        def passthrough(name, nxt):
            return python_node(name, next_nodes=[nxt])(lambda frame: 0)
    return tuple(passthrough(f"demo-{i}", f"demo-{i + 1}" if i + 1 < n else last) for i in range(n))


class PlannedDevice:
    """A stand-in for a device in a graph that is only checked or drawn
    (``build_engine(cfg, create_devices=False)``): the same interface table
    entry and node names as the real device, nothing created in the kernel,
    and its input node disabled."""

    def __init__(self, engine, ic: InterfaceConfig):
        from graphnet.io.device import Device
        self.kind = ic.kind
        self.engine = engine
        self.name = ic.display_name
        self.rx_mode = ic.rx_mode or ("polling" if ic.kind == "pcap" and "input_path" in ic.options
                                      else "interrupt")
        self.mtu = ic.mtu or (9000 if ic.kind == "pcap" else 1500)
        self.next_node = ic.next
        self.options = dict(ic.options)
        self.input_node = f"{ic.kind}-input-{self.name}"
        self.output_node = f"{ic.kind}-output-{self.name}"
        mac = ic.mac or Device.default_mac(self)
        self.sw_if_index = engine.interfaces.add(self.name, ic.kind, self, mac, self.mtu)
        if ic.admin_up:
            engine.interfaces.set_admin_up(self.sw_if_index, True)

    def nodes(self):
        from graphnet.vlib.drop import NODES as builtin
        from graphnet.io.device import DefaultNext
        from graphnet.vlib.node import Node
        null_fn = next(n.fn for n in builtin if n.name == "null")
        nexts = (self.next_node,) if self.next_node else DefaultNext(self.engine)
        nodes = [Node(self.input_node, type="input", state="disabled", fn=null_fn, next_nodes=nexts,
                      doc=f"(not created: a stand-in for {self.kind} interface {self.name})"),
                 Node(self.output_node, fn=null_fn, attach_to=(("interface-output", self.sw_if_index),),
                      doc=f"(not created: a stand-in for {self.kind} interface {self.name})")]
        if self.kind == "tap":
            def monitor(engine):
                return
                yield
            nodes.append(Node(f"tap-monitor-{self.name}", type="process", process=monitor))
        return tuple(nodes)

    def hardware_info(self) -> dict:
        return {"device": "not created (graph check only)",
                **{k.replace("_path", ""): v for k, v in self.options.items()}}


def _make_device(engine, ic: InterfaceConfig):
    """Create the device an [[interface]] table describes (before build)."""
    kw: dict = {"next_node": ic.next, "admin_up": ic.admin_up}
    if ic.mac is not None:
        kw["mac"] = ic.mac
    if ic.mtu is not None:
        kw["mtu"] = ic.mtu
    if ic.rx_mode is not None:
        kw["rx_mode"] = ic.rx_mode
    kw.update(ic.options)
    if ic.kind == "tap":
        from graphnet.io.tap import TapDevice
        return TapDevice(engine, ic.name, **kw)
    if ic.kind == "af-packet":
        from graphnet.io.af_packet import AfPacketDevice
        host_if = kw.pop("host_if")
        return AfPacketDevice(engine, host_if, name=ic.name, **kw)
    from graphnet.io.pcap import PcapDevice
    return PcapDevice(engine, ic.name, **kw)


def build_engine(cfg: Config, *, create_devices: bool = True):
    """An Engine built (not running) from cfg: its pg streams and its
    interfaces' devices added, the node states set. Raises ConfigError for
    a graph that cannot be built or a device that cannot be created (and
    then closes what was created). ``create_devices=False``: stand-ins
    (PlannedDevice) instead of devices, for checking and drawing."""
    from graphnet import Engine, GraphError
    ck = _Checker(cfg.source, cfg.lines)
    engine = Engine(buffers=cfg.buffers, tick=cfg.tick, name=cfg.name, busy_poll_us=cfg.busy_poll_us)
    try:
        for mod in cfg.modules:
            from graphnet.nodes import registry
            try:
                m = registry.add_module(mod)         # registered as the built-in and entry-point ones are
            except Exception as e:                   # RegistryError, or the module failing to import
                raise ck.error(("graph",), "modules", str(e)) from None
            engine.add(m.NODES)
        if cfg.ip_enabled:
            from graphnet.nodes import ip4_host
            # a [graph] module may have brought some of them (ip4.NODES) already
            engine.add(tuple(n for n in ip4_host.NODES if n.name not in engine.registrations))
        if cfg.apps or (cfg.app_socket_given and cfg.app_socket_enabled):
            from graphnet.nodes import session_host
            engine.add(tuple(n for n in session_host.NODES if n.name not in engine.registrations))
        pg = None
        if cfg.streams:
            from graphnet.io.pg import Edit, PacketGenerator, Stream
            first = "demo-0" if cfg.chain else cfg.pg_next
            state = "interrupt" if cfg.pg_mode == "adaptive" else cfg.pg_mode
            pg = PacketGenerator(name=cfg.pg_name, next_node=first, state=state)
            for s in cfg.streams:
                pg.add_stream(Stream(s.name, s.packets, count=s.count, rate=s.rate,
                                     fix_checksums=s.fix_checksums,
                                     edits=[Edit(e.offset, e.size, e.min, e.max, e.mode) for e in s.edits]))
            engine.add(pg.nodes())
        if cfg.chain:
            engine.add(_demo_chain(cfg.chain, cfg.pg_next))
        for ic in cfg.interfaces:
            from graphnet.io.device import DeviceError
            from graphnet.io.host import HostError
            try:
                dev = _make_device(engine, ic) if create_devices else PlannedDevice(engine, ic)
                engine.add(dev)
            except (DeviceError, HostError, ValueError, OSError, GraphError) as e:
                raise ck.error(ic.path, None, _device_message(e)) from None
        try:
            engine.build()
        except MemoryError as e:
            raise ck.error(("engine",), "buffers", f"{cfg.buffers} buffers do not fit in memory ({e}); "
                                                   f"give fewer") from None
        except GraphError as e:
            if cfg.pg_next not in engine.registrations and pg is not None:
                hint = difflib.get_close_matches(cfg.pg_next, list(engine.registrations), n=1)
                raise ck.error(("pg",), "next", f"no node named {cfg.pg_next!r} in the graph"
                                                + (f" (did you mean {hint[0]!r}?)" if hint else "")) from None
            for ic in cfg.interfaces:
                if ic.next is not None and ic.next not in engine.registrations:
                    hint = difflib.get_close_matches(ic.next, list(engine.registrations), n=1)
                    raise ck.error(ic.path, "next", f"no node named {ic.next!r} in the graph"
                                                    + (f" (did you mean {hint[0]!r}?)" if hint else "")) from None
            raise ConfigError(f"{cfg.source}: cannot build the graph: {e}") from None
        if cfg.ip_enabled:
            _apply_ip(ck, cfg, engine)
        for ac in cfg.apps:
            from graphnet.apps import start as start_app
            from graphnet.session.session import SessionError
            try:
                start_app(engine, ac.kind, ac.uri, ac.name, **ac.options)
            except (SessionError, ValueError) as e:
                raise ck.error(ac.path, "uri", str(e)) from None
        for fc in cfg.faults:
            from graphnet.nodes.fault_inject import attach
            faults = dict(fc.faults)
            seed = faults.pop("seed", None)
            try:
                attach(engine, fc.interface, fc.direction, fc.pool_share).set(
                    engine.interfaces.index(fc.interface), seed=seed, **faults)
            except (ValueError, KeyError, GraphError) as e:
                raise ck.error(fc.path, None, _device_message(e)) from None
        if pg is not None and cfg.pg_mode == "adaptive":
            engine.set_node_state(cfg.pg_name, "adaptive")
        for name, state, path in cfg.node_states:
            try:
                engine.set_node_state(name, state)
            except (KeyError, ValueError) as e:
                text = e.args[0] if isinstance(e, KeyError) else str(e)
                raise ck.error(path, "name", text) from None
    except BaseException:
        engine.close()
        raise
    return engine


def _apply_ip(ck: _Checker, cfg: Config, engine) -> None:
    """Neighbour timers, addresses, neighbours, then routes, into the built engine."""
    from graphnet.nodes import ip4_host

    def do(path, key, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except (ValueError, KeyError) as e:
            raise ck.error(path, key, str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)) from None

    for key, v in cfg.neighbor_config.items():       # one at a time: an error names its key
        do(("ip", "neighbor"), key, ip4_host.ip4_neighbors(engine).configure, **{key: v})
    if cfg.reassembly_config:
        from graphnet.nodes.ip4_reassembly import reassembly
        for key, v in cfg.reassembly_config.items():
            do(("ip", "reassembly"), key, reassembly(engine).configure, **{key: v})
    if cfg.icmp_error_config:
        do(("ip", "icmp_error"), "rate", ip4_host.configure_icmp_errors, engine, **cfg.icmp_error_config)
    if cfg.udp_echo_port is not None:
        do(("ip",), "udp_echo_port", ip4_host.set_udp_echo_port, engine, cfg.udp_echo_port or None)
    for ic in cfg.interfaces:
        for c in ic.addresses:
            key = "addresses" if (ic.path, "addresses") in cfg.lines else "address"
            do(ic.path, key, ip4_host.set_interface_address, engine, ic.display_name, c)
    table = ip4_host.ip4_neighbors(engine) if cfg.neighbors else None
    for n in cfg.neighbors:
        do(n.path, "ip", table.add, n.interface, n.ip, n.mac, n.static)
    fib = ip4_host.fib(engine)
    for r in cfg.routes:
        if r.drop:
            do(r.path, "prefix", fib.add_route, r.prefix, drop=True)
        elif r.kind:
            do(r.path, "type", fib.add_route, r.prefix, kind=r.kind)
        elif r.via is None:
            do(r.path, "interface", fib.add_route, r.prefix, sw_if_index=r.interface)
        else:
            do(r.path, "via", fib.add_route, r.prefix, sw_if_index=r.interface, next_hop=r.via)
            for via, itf in r.more:
                do(r.path, "via", fib.add_path, r.prefix, itf, via)


def _device_message(e: Exception) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(e, PermissionError) or "needs root" in text:
        if "needs root" not in text:
            text += " (needs root / CAP_NET_ADMIN)"
    return text


def reach_hints(engine) -> list:
    """Lines telling a user how to reach the engine's interfaces from the
    kernel side (printed by ``graphnet run``)."""
    import ipaddress
    lines = []
    for name, dev in zip(engine.interfaces.names, engine.interfaces.devices):
        kind = getattr(dev, "kind", "")
        if kind == "tap":
            ns = getattr(dev, "netns", None)
            exec_ = f"ip netns exec {ns} " if ns else ""
            where = f" in network namespace {ns}" if ns else ""
            addr = getattr(dev, "host_address", None)
            own = _own_addresses(engine, name)
            kname = getattr(dev, "host_name", name)
            lines.append(f"TAP {name}: kernel side {kname}{where}" + (f", address {addr}" if addr else "")
                         + (f"; graphnet {', '.join(own)}" if own else ""))
            if addr:
                iface = ipaddress.IPv4Interface(addr)
                mine = [ipaddress.IPv4Interface(a).ip for a in own]
                answered = next((a for a in mine if a in iface.network), None)
                if answered is not None:
                    lines.append(f"  {exec_}ping -c 3 {answered}        # answered by graphnet")
                    lines.append(f"  graphnet ctl show ip neighbors    # {iface.ip}, learned from its ARP")
                else:
                    peer = next((h for h in iface.network.hosts() if h != iface.ip), None)
                    if peer is not None:
                        lines.append(f"  {exec_}ping -c 3 {peer}        # the kernel's ARP requests reach "
                                     f"{dev.input_node}" + ("" if mine else " (graphnet has no address on it)"))
            lines.append(f"  {exec_}tcpdump -ni {kname}")
        elif kind == "af-packet":
            lines.append(f"AF_PACKET {name}: attached to kernel interface {dev.host_if}"
                         + (f" in network namespace {dev.netns}" if getattr(dev, "netns", None) else ""))
        elif kind == "pcap":
            lines.append(f"pcap {name}: input {dev.input_path or 'none'}, output {dev.output_path or 'none'}")
    return lines


def _own_addresses(engine, name) -> list:
    """graphnet's IPv4 addresses on an interface (none without the IPv4 graph)."""
    if "ip4-input" not in engine.registrations:
        return []
    try:
        from graphnet.fib.ip4_address import ip4_addresses
        return ip4_addresses(engine).get(name)
    except (ImportError, KeyError, ValueError):
        return []


def socket_path(cfg: Config, override: Optional[str] = None) -> str:
    """The control socket path: the command line's, the config's, or the default."""
    from graphnet.paths import default_socket_path
    return override or cfg.cli_socket or default_socket_path()
