"""The startup file: a TOML description of the engine ``graphnet run`` builds.

Schema (every key optional unless marked; unknown keys are errors)::

    [engine]
    name    = "main"        # str: the engine's name in show output
    buffers = 16384         # int > 0: buffers in the pool
    tick    = 0.001         # float > 0: timer wheel tick, seconds

    [cli]
    socket  = "/path/cli.sock"  # str: control socket; default: see
                                # graphnet.cli.control.default_socket_path
    enabled = true          # bool: serve the control socket at all

    [graph]
    modules = ["pkg.mod"]   # [str]: modules whose NODES tuple is added
    chain   = 2             # int >= 0: pass-through demo nodes demo-0 ->
                            # demo-1 -> ... inserted between pg and pg.next

    [pg]                    # the packet generator (only when streams exist)
    name = "pg-input"       # str: its node name
    next = "null"           # str: the node its packets go to
    mode = "interrupt"      # polling | interrupt | adaptive | disabled

    [[pg.stream]]           # one per stream
    name      = "udp"       # str, required, unique
    # exactly one packet source:
    template   = "udp"      # udp | tcp | icmp (see graphnet.cli.templates) with
      src_mac, dst_mac, src, dst  (str), sport, dport, ttl, size (int)
    packet_hex = "0200..."  # str or [str]: raw frames in hex
    pcap       = "x.pcap"   # str: a pcap file (relative to the config file)
    count = 1000            # int >= 0: packets to send; omitted: no limit
    rate  = 1000.0          # float > 0: packets per second; omitted: flat out
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

No value is ever evaluated as code: packets come from templates, hex or
pcap files, and modules are only imported by name.

Invariants: ``load``/``loads`` either return a fully checked Config or raise
ConfigError, whose text names the file, the key (``pg.stream[2].rate``)
and, where the source shows it, the line; a TOML syntax error carries
tomllib's line and column. ``build_engine`` raises ConfigError (never
GraphError) for a graph the config cannot build.
"""
from __future__ import annotations

import difflib
import importlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from graphnet.cli import templates

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
class Config:
    source: str = "<default>"
    name: str = "main"
    buffers: int = 16384
    tick: float = 0.001
    cli_socket: Optional[str] = None
    cli_enabled: bool = True
    modules: list = field(default_factory=list)
    chain: int = 0
    pg_name: str = "pg-input"
    pg_next: str = "null"
    pg_mode: str = "interrupt"
    streams: list = field(default_factory=list)
    node_states: list = field(default_factory=list)     # (name, state, line)
    lines: dict = field(default_factory=dict, repr=False)


DEFAULT_TOML = """\
# graphnet startup config (the built-in one: `graphnet config --default`).
# A UDP stream at 1000 packets/s through two pass-through nodes into null,
# and the control socket: `graphnet run`, then `graphnet ctl show runtime`.
# Schema: `python -m pydoc graphnet.config`.

[engine]
name = "main"
buffers = 16384          # buffers in the pool
tick = 0.001             # timer tick, seconds

[cli]
enabled = true
# socket = "/tmp/graphnet.sock"   # default: /run/graphnet/cli.sock as root,
                                  # else $XDG_RUNTIME_DIR/graphnet/cli.sock

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

    def error(self, path: tuple, key: Optional[str], msg: str) -> ConfigError:
        line = self.lines.get((path, key)) or self.lines.get((path, None))
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
        if choices is not None and v not in choices:
            raise self.error(path, key, f"{v!r} is not one of {', '.join(map(str, choices))}")
        if minimum is not None and (v <= minimum if exclusive else v < minimum):
            raise self.error(path, key, f"must be {'>' if exclusive else '>='} {minimum}, not {v}")
        return v

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
    ck.table(doc, (), ("engine", "cli", "graph", "pg", "node"))
    cfg = Config(source=source, lines=ck.lines)

    eng = ck.table(doc.get("engine", {}), ("engine",), ("name", "buffers", "tick"))
    cfg.name = ck.get(eng, ("engine",), "name", str, cfg.name)
    cfg.buffers = ck.get(eng, ("engine",), "buffers", int, cfg.buffers, minimum=1)
    cfg.tick = ck.get(eng, ("engine",), "tick", float, cfg.tick, minimum=0, exclusive=True)

    cli = ck.table(doc.get("cli", {}), ("cli",), ("socket", "enabled"))
    cfg.cli_socket = ck.get(cli, ("cli",), "socket", str)
    cfg.cli_enabled = ck.get(cli, ("cli",), "enabled", bool, True)

    graph = ck.table(doc.get("graph", {}), ("graph",), ("modules", "chain"))
    cfg.modules = ck.get(graph, ("graph",), "modules", list, [])
    cfg.chain = ck.get(graph, ("graph",), "chain", int, 0, minimum=0)

    pg = ck.table(doc.get("pg", {}), ("pg",), ("name", "next", "mode", "stream"))
    cfg.pg_name = ck.get(pg, ("pg",), "name", str, cfg.pg_name)
    cfg.pg_next = ck.get(pg, ("pg",), "next", str, cfg.pg_next)
    cfg.pg_mode = ck.get(pg, ("pg",), "mode", str, cfg.pg_mode, choices=NODE_STATES)
    names = set()
    for i, st in enumerate(ck.array_of_tables(pg, ("pg",), "stream")):
        s = _stream(ck, st, ("pg", "stream", i), base_dir)
        if s.name in names:
            raise ck.error(("pg", "stream", i), "name", f"a stream named {s.name!r} already exists")
        names.add(s.name)
        cfg.streams.append(s)

    for i, nd in enumerate(ck.array_of_tables(doc, (), "node")):
        path = ("node", i)
        ck.table(nd, path, ("name", "state"))
        if "name" not in nd or "state" not in nd:
            raise ck.error(path, None, "needs both name and state")
        cfg.node_states.append((ck.get(nd, path, "name", str),
                                ck.get(nd, path, "state", str, choices=NODE_STATES), path))
    return cfg


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
                     count=ck.get(st, path, "count", int, None, minimum=0),
                     rate=ck.get(st, path, "rate", float, None, minimum=0, exclusive=True),
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
        offset = ck.get(ed, path, "offset", int, minimum=0)
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
    return loads(DEFAULT_TOML, "<default config>")


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


def build_engine(cfg: Config):
    """An Engine built (not running) from cfg, with its pg streams added and
    the node states set. Raises ConfigError for a graph that cannot be built."""
    from graphnet import Engine, GraphError
    ck = _Checker(cfg.source, cfg.lines)
    engine = Engine(buffers=cfg.buffers, tick=cfg.tick, name=cfg.name)
    try:
        for mod in cfg.modules:
            try:
                m = importlib.import_module(mod)
            except Exception as e:
                raise ck.error(("graph",), "modules", f"cannot import {mod!r}: {e}") from None
            if not hasattr(m, "NODES"):
                raise ck.error(("graph",), "modules", f"module {mod!r} has no NODES")
            engine.add(m.NODES)
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
        try:
            engine.build()
        except GraphError as e:
            key = ("pg",), "next"
            if cfg.pg_next not in engine.registrations and pg is not None:
                hint = difflib.get_close_matches(cfg.pg_next, list(engine.registrations), n=1)
                raise ck.error(*key, f"no node named {cfg.pg_next!r} in the graph"
                                     + (f" (did you mean {hint[0]!r}?)" if hint else "")) from None
            raise ConfigError(f"{cfg.source}: cannot build the graph: {e}") from None
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


def socket_path(cfg: Config, override: Optional[str] = None) -> str:
    """The control socket path: the command line's, the config's, or the default."""
    from graphnet.cli.control import default_socket_path
    return override or cfg.cli_socket or default_socket_path()
