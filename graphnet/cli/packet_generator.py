"""Packet generator commands, as vppctl has them: ``packet-generator new``,
``enable-stream``, ``disable-stream``, ``delete`` and ``show packet-generator``.

``packet-generator new`` takes one line of ``key value`` words (the same
names as a ``[[pg.stream]]`` table of the startup file, with dashes or
underscores):

    packet-generator new name s1 template udp src 10.0.0.1 dst 10.0.0.2 dport 7
        size 128 limit 1000 rate 10000 interface gn0 edit ip4.src 10.0.0.1-10.0.0.50
    packet-generator new name raw data 02000000000102000000000208004500...

``interface <if>`` makes the packets enter as if received on that
interface (``sw_if_index[rx]``), ``node <pg-node>`` picks the generator when
the graph has several, ``disabled`` creates the stream stopped (start it
with ``packet-generator enable-stream``). Every word is checked before the
stream is made; a bad one is named in a one-line error.
"""
from __future__ import annotations

from graphnet.cli.registry import UsageError, command

_TEMPLATE_KEYS = {"src": "src", "dst": "dst", "sport": "sport", "dport": "dport", "ttl": "ttl",
                  "size": "size", "src-mac": "src_mac", "dst-mac": "dst_mac"}
_INT_FIELDS = ("sport", "dport", "ttl", "size")
MAX_DATA_HEX = 4096           # a packet given as hex: at most this many hex digits


def generators(engine) -> list:
    """(node name, PacketGenerator) for every pg node in the graph."""
    return [(n.name, n.instance) for n in engine.nodes
            if n.instance is not None and hasattr(n.instance, "stats") and hasattr(n.instance, "enable")]


def stream_owner(engine, name: str):
    for _node, pg in generators(engine):
        if name in pg.stats():
            return pg
    known = [s for _, pg in generators(engine) for s in pg.stats()]
    raise UsageError(f"no stream named {name!r}" + (f" (streams: {', '.join(known)})" if known else
                                                     " (there is no packet generator)"))


@command("show packet-generator", help="packet generator streams and packets sent",
         usage="show packet-generator")
def show_pg(engine, args):
    if args:
        raise UsageError("show packet-generator takes no arguments")
    lines = [f"{'Stream':<24}{'Node':<20}{'Sent':>14}"]
    for node, pg in generators(engine):
        for name, sent in pg.stats().items():
            lines.append(f"{name:<24}{node:<20}{sent:>14}")
    return "\n".join(lines) if len(lines) > 1 else "no packet generator streams"


def _one_stream(args, what):
    if len(args) != 1:
        raise UsageError(f"{what} takes one stream name")
    return args[0]


@command("packet-generator enable-stream", help="restart a stream (its count starts again)",
         usage="packet-generator enable-stream <stream>")
def pg_enable(engine, args):
    name = _one_stream(args, "enable-stream")
    stream_owner(engine, name).enable(name)
    return ""


@command("packet-generator disable-stream", help="stop a stream",
         usage="packet-generator disable-stream <stream>")
def pg_disable(engine, args):
    name = _one_stream(args, "disable-stream")
    stream_owner(engine, name).enable(name, False)
    return ""


def _int(word: str, key: str, lo: int, hi: int) -> int:
    try:
        v = int(word, 0)
    except ValueError:
        raise UsageError(f"{key} must be an integer, not {word!r}") from None
    if not lo <= v <= hi:
        raise UsageError(f"{key} must be {lo}..{hi}, not {v}")
    return v


def _edit(field: str, span: str, mode: str):
    from graphnet.io.pg import Edit
    lo, sep, hi = span.partition("-")
    if not sep:
        raise UsageError(f"edit {field}: give a range MIN-MAX, not {span!r}")
    try:
        return Edit.field(field, lo, hi, mode)
    except ValueError as e:
        raise UsageError(f"edit {field}: {e}") from None


def parse_new(engine, args) -> tuple:
    """(Stream, pg node name or None, start enabled) from the words of
    ``packet-generator new``; UsageError naming the first bad word."""
    from graphnet.io import templates
    from graphnet.io.pg import Stream
    name = template = data = node = None
    fields: dict = {}
    count = rate = None
    sw_if_index = 0
    edits: list = []
    enabled = True
    words = list(args)
    while words:
        key = words.pop(0)
        if key == "disabled":
            enabled = False
            continue
        if not words:
            raise UsageError(f"{key!r} needs a value")
        value = words.pop(0)
        k = key.replace("_", "-")
        if k == "name":
            name = value
        elif k == "template":
            if value not in templates.TEMPLATES:
                raise UsageError(f"template must be one of {', '.join(templates.TEMPLATES)}, not {value!r}")
            template = value
        elif k in _TEMPLATE_KEYS:
            fields[_TEMPLATE_KEYS[k]] = _int(value, k, 0, 65535) if k in _INT_FIELDS else value
        elif k == "data":
            if len(value) > MAX_DATA_HEX:
                raise UsageError(f"data: at most {MAX_DATA_HEX} hex digits")
            try:
                data = bytes.fromhex(value.replace(":", ""))
            except ValueError:
                raise UsageError(f"data must be hex bytes, not {value[:40]!r}") from None
        elif k in ("limit", "count"):
            count = _int(value, k, 0, 1 << 62)
        elif k == "rate":
            try:
                rate = float(value)
            except ValueError:
                raise UsageError(f"rate must be packets per second, not {value!r}") from None
            if not 0 < rate <= 1e9:
                raise UsageError(f"rate must be > 0 and <= 1e9 packets/s, not {value}")
        elif k == "interface":
            from graphnet.cli.commands import _interface
            sw_if_index, _dev = _interface(engine, value)
        elif k == "node":
            node = value
        elif k == "edit":
            if not words:
                raise UsageError(f"edit {value}: give a range MIN-MAX")
            span = words.pop(0)
            mode = "inc"
            if words and words[0] in ("inc", "random"):
                mode = words.pop(0)
            edits.append(_edit(value, span, mode))
        else:
            raise UsageError(f"unknown word {key!r}")
    if not name:
        raise UsageError("a stream needs a name (name <stream>)")
    if (template is None) == (data is None):
        raise UsageError("give exactly one of template <udp|tcp|icmp> or data <hex>")
    if fields and template is None:
        raise UsageError(f"{next(iter(fields))} needs a template")
    try:
        packet = templates.build(template, **fields) if template else data
        stream = Stream(name, [packet], count=count, rate=rate, edits=edits, sw_if_index=sw_if_index)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return stream, node, enabled


@command("packet-generator new", help="make a stream (started at once unless 'disabled'); keys as in a "
         "[[pg.stream]] table of the startup file",
         usage="packet-generator new name <stream> (template udp|tcp|icmp [src <a>] [dst <a>] [sport <n>] "
               "[dport <n>] [ttl <n>] [size <n>] [src-mac <m>] [dst-mac <m>] | data <hex>) [limit <n>] "
               "[rate <pps>] [interface <if>] [node <pg-node>] [edit <field> <min>-<max> [inc|random]]... "
               "[disabled]")
def pg_new(engine, args):
    stream, node, enabled = parse_new(engine, args)
    pgs = generators(engine)
    if node is not None:
        pgs = [(n, pg) for n, pg in pgs if n == node]
        if not pgs:
            raise UsageError(f"no packet generator node named {node!r}")
    if not pgs:
        raise UsageError("this graph has no packet generator (add [pg] to the startup file)")
    if len(pgs) > 1:
        raise UsageError("several packet generators: pick one with node " + " | node ".join(n for n, _ in pgs))
    if any(stream.name in pg.stats() for _, pg in generators(engine)):
        raise UsageError(f"a stream named {stream.name!r} exists")
    pg = pgs[0][1]
    # on the loop's thread: added and (if asked) stopped before the loop runs again
    pg._add_stream(stream)
    if not enabled:
        pg._enable(stream.name, False)
    return f"stream {stream.name!r} on {pgs[0][0]}: {'sending' if enabled else 'disabled'}"
