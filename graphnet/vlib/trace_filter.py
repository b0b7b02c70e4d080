"""``trace filter``: which packets ``trace add`` marks, as VPP's classify
filter for the packet trace. The filter is one of

- ``bytes <offset> <hex> [mask <hex>]``: the packet's bytes at ``offset``
  (from where the input node hands it on: the Ethernet header for TAP,
  AF_PACKET and most pg streams), under the mask (all ones when none),
  equal the pattern; at most 64 bytes. ``bytes 12 0806`` keeps ARP.
- ``ip4 [src A[/N]] [dst A[/N]] [proto udp|tcp|icmp|N] [sport N] [dport N]``:
  an IPv4 5-tuple (any part left out matches anything) in an Ethernet
  frame (one 802.1Q tag skipped) or a packet starting at its IPv4 header;
  ports only match a UDP/TCP first fragment.

While a filter is set, ``trace add <input> <n>`` marks the first n packets
that match it (the others pass untraced); ``trace filter off`` removes it;
``trace filter`` alone says what is set and how many packets it looked at
and matched. The match runs in C, in the input node's enqueue, only while
that node has packets left to trace.
"""
from __future__ import annotations

import ipaddress

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
USAGE = ("trace filter bytes <offset> <hex> [mask <hex>] | trace filter ip4 [src <addr>[/<len>]] "
         "[dst <addr>[/<len>]] [proto udp|tcp|icmp|<n>] [sport <n>] [dport <n>] | trace filter off | trace filter")


def _hex(text: str, what: str) -> bytes:
    try:
        b = bytes.fromhex(text.replace(":", "").replace(".", ""))
    except ValueError:
        raise ValueError(f"trace filter: {what} {text!r} is not hex bytes (e.g. 0800 or 08:00)") from None
    if not 1 <= len(b) <= 64:
        raise ValueError(f"trace filter: {what} has {len(b)} bytes; use 1..64")
    return b


def _int(text: str, what: str, hi: int) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise ValueError(f"trace filter: {what} {text!r} is not a number") from None
    if not 0 <= v <= hi:
        raise ValueError(f"trace filter: {what} {v} is outside 0..{hi}")
    return v


def _prefix(text: str, what: str) -> tuple:
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise ValueError(f"trace filter: {what} {text!r} is not an IPv4 address or prefix") from None
    return int(net.network_address), int(net.netmask)


def parse(args) -> dict | None:
    """The filter spec of the words after ``trace filter`` (None for
    ``off``); raises ValueError with a one-line message."""
    args = list(args)
    if args == ["off"]:
        return None
    if not args:
        raise ValueError(f"usage: {USAGE}")
    kind, rest = args[0], args[1:]
    if kind == "bytes":
        if len(rest) not in (2, 4) or (len(rest) == 4 and rest[2] != "mask"):
            raise ValueError("usage: trace filter bytes <offset> <hex> [mask <hex>]")
        offset = _int(rest[0], "offset", 0xffff)
        value = _hex(rest[1], "pattern")
        mask = _hex(rest[3], "mask") if len(rest) == 4 else b"\xff" * len(value)
        if len(mask) != len(value):
            raise ValueError(f"trace filter: the mask has {len(mask)} bytes, the pattern {len(value)}")
        return {"kind": "bytes", "offset": offset, "value": value, "mask": mask}
    if kind == "ip4":
        spec = {"kind": "ip4", "src": (0, 0), "dst": (0, 0), "proto": -1, "sport": -1, "dport": -1}
        if len(rest) % 2:
            raise ValueError(f"trace filter ip4: {rest[-1]!r} needs a value")
        for key, val in zip(rest[::2], rest[1::2]):
            if key in ("src", "dst"):
                spec[key] = _prefix(val, key)
            elif key == "proto":
                spec["proto"] = PROTOCOLS[val] if val in PROTOCOLS else _int(val, "proto", 255)
            elif key in ("sport", "dport"):
                spec[key] = _int(val, key, 65535)
            else:
                raise ValueError(f"trace filter ip4: unknown field {key!r} (src, dst, proto, sport, dport)")
        if (spec["sport"] >= 0 or spec["dport"] >= 0) and spec["proto"] not in (-1, 6, 17):
            raise ValueError("trace filter ip4: ports need proto udp or tcp (or no proto)")
        return spec
    raise ValueError(f"trace filter: unknown filter {kind!r}; usage: {USAGE}")


def describe(spec) -> str:
    """The filter as the words that set it."""
    if spec is None:
        return "off"
    if spec["kind"] == "bytes":
        text = f"bytes {spec['offset']} {spec['value'].hex()}"
        return text if spec["mask"] == b"\xff" * len(spec["mask"]) else text + f" mask {spec['mask'].hex()}"
    words = ["ip4"]
    for key in ("src", "dst"):
        addr, mask = spec[key]
        if mask:
            words += [key, f"{ipaddress.IPv4Address(addr)}/{bin(mask).count('1')}"]
    if spec["proto"] >= 0:
        words += ["proto", {v: k for k, v in PROTOCOLS.items()}.get(spec["proto"], str(spec["proto"]))]
    for key in ("sport", "dport"):
        if spec[key] >= 0:
            words += [key, str(spec[key])]
    return " ".join(words)
