"""Built-in packet templates for packet generator streams: udp, tcp, icmp.

Each builds one Ethernet + IPv4 (IHL 5, no options) frame as bytes, with
correct IPv4 and L4 checksums, so the field offsets of
``graphnet.io.pg.ETHERNET_IP4_FIELDS`` (``ip4.src`` at 26, ``udp.sport`` at
34, ...) hold for every template. ``size`` is the frame length without the
FCS (as in VPP's pg); the payload is zero bytes up to it. Plain bytes, no
Scapy, so a config can be checked without importing it; benches build
their frames here too (``graphnet.bench.core.frame64``).
"""
from __future__ import annotations

import ipaddress
import struct

from graphnet.wire.inet import inet_checksum as _csum

TEMPLATES = ("udp", "tcp", "icmp")
FIELDS = ("src_mac", "dst_mac", "src", "dst", "sport", "dport", "ttl", "size")
DEFAULTS = {"src_mac": "02:00:00:00:00:01", "dst_mac": "02:00:00:00:00:02",
            "src": "10.0.0.1", "dst": "10.0.0.2", "sport": 1024, "dport": 9, "ttl": 64, "size": 64}
HEADER_BYTES = {"udp": 14 + 20 + 8, "tcp": 14 + 20 + 20, "icmp": 14 + 20 + 8}
MAX_SIZE = 2048


def mac_bytes(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"{text!r} is not a MAC address (like 02:00:00:00:00:01)")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (like 02:00:00:00:00:01)") from None


def ip4_bytes(text: str) -> bytes:
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def build(template: str, **fields) -> bytes:
    """One frame of `template` with `fields` (see FIELDS; missing ones take
    DEFAULTS). Raises ValueError naming the bad field."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; use one of {', '.join(TEMPLATES)}")
    f = dict(DEFAULTS)
    f.update({k: v for k, v in fields.items() if v is not None})
    unknown = set(f) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown template field {sorted(unknown)[0]!r}")
    for k in ("sport", "dport"):
        if not 0 <= f[k] <= 0xffff:
            raise ValueError(f"{k} must be 0..65535, not {f[k]}")
    if not 0 <= f["ttl"] <= 255:
        raise ValueError(f"ttl must be 0..255, not {f['ttl']}")
    size = f["size"]
    if not HEADER_BYTES[template] <= size <= MAX_SIZE:
        raise ValueError(f"size must be {HEADER_BYTES[template]}..{MAX_SIZE} bytes for a {template} "
                         f"frame, not {size}")
    src, dst = ip4_bytes(f["src"]), ip4_bytes(f["dst"])
    eth = mac_bytes(f["dst_mac"]) + mac_bytes(f["src_mac"]) + b"\x08\x00"
    l4_len = size - 14 - 20
    proto = {"udp": 17, "tcp": 6, "icmp": 1}[template]
    pseudo = src + dst + struct.pack("!BBH", 0, proto, l4_len)
    if template == "udp":
        hdr = struct.pack("!HHHH", f["sport"], f["dport"], l4_len, 0)
        l4 = hdr + bytes(l4_len - 8)
        c = _csum(pseudo + l4) or 0xffff
        l4 = l4[:6] + struct.pack("!H", c) + l4[8:]
    elif template == "tcp":               # a SYN, window 65535, no options
        hdr = struct.pack("!HHIIBBHHH", f["sport"], f["dport"], 1, 0, 5 << 4, 0x02, 65535, 0, 0)
        l4 = hdr + bytes(l4_len - 20)
        l4 = l4[:16] + struct.pack("!H", _csum(pseudo + l4)) + l4[18:]
    else:                                 # echo request, id = sport, seq = dport
        hdr = struct.pack("!BBHHH", 8, 0, 0, f["sport"], f["dport"])
        l4 = hdr + bytes(l4_len - 8)
        l4 = l4[:2] + struct.pack("!H", _csum(l4)) + l4[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + l4_len, 0, 0, f["ttl"], proto, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return eth + ip + l4
