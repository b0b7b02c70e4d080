"""IPv4 headers: layout, validation and checksum helpers live in
``ip4.pxd`` (inline, for nodes); this module gives them to Python (tests,
the control plane) and formats headers for trace text, as VPP's
``format_ip4_header``::

    UDP: 10.0.0.1 -> 10.0.0.2
      tos 0x00, ttl 64, length 36, checksum 0x66cc (ok)
      fragment id 0x0001
      UDP: 1234 -> 5678

Formatters never raise: truncated or bad headers are shown as such.
"""
import ipaddress
import struct

from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcpy

VALIDATE_ERRORS = (
    # gn_ip4_validate codes, in order: these are ip4-input's error rows
    ("none", "info", "no error"),
    ("too-short", "error", "ip4 header shorter than 20 bytes"),
    ("bad-version", "error", "ip4 version is not 4"),
    ("bad-ihl", "error", "ip4 IHL below 5"),
    ("bad-length", "error", "ip4 total length below header length"),
    ("truncated", "error", "ip4 total length beyond the frame"),
    ("bad-checksum", "error", "ip4 header checksum wrong"),
    ("ttl-zero", "error", "ip4 TTL 0 on input"),
    ("options", "error", "ip4 options present (not supported: dropped)"),
)
assert len(VALIDATE_ERRORS) == GN_IP4_N_VALIDATE

PROTOCOL_NAMES = {GN_IP4_PROTO_ICMP: "ICMP", GN_IP4_PROTO_TCP: "TCP", GN_IP4_PROTO_UDP: "UDP", 2: "IGMP",
                  47: "GRE", 50: "ESP", 51: "AH", 89: "OSPF", 132: "SCTP"}
HEADER_LEN = GN_IP4_HEADER_LEN


def validate(data, bint verify_checksum=True) -> str:
    """The symbol of gn_ip4_validate's verdict on data (``none`` = valid)."""
    cdef bytes b = bytes(data)
    return VALIDATE_ERRORS[gn_ip4_validate(<const uint8_t*>b, len(b), verify_checksum)][0]


def header_checksum(data) -> int:
    """The checksum the header (first IHL*4 bytes of data) should carry."""
    cdef bytearray b = bytearray(data)
    if len(b) < GN_IP4_HEADER_LEN or gn_ip4_header_bytes(<uint8_t*>b) > <uint32_t>len(b) \
            or gn_ip4_header_bytes(<uint8_t*>b) < GN_IP4_HEADER_LEN:
        raise ValueError("not a complete IPv4 header")
    gn_ip4_set_checksum(<uint8_t*>b)
    return struct.unpack_from("!H", b, 10)[0]


def ttl_decrement(data) -> bytes:
    """The header with TTL - 1 and the checksum updated incrementally
    (RFC 1624), exactly as ip4-rewrite does it."""
    cdef bytearray b = bytearray(data)
    if len(b) < GN_IP4_HEADER_LEN or b[8] == 0:
        raise ValueError("need a header of 20+ bytes with TTL > 0")
    gn_ip4_ttl_decrement(<uint8_t*>b)
    return bytes(b)


def flow_hash(data, uint32_t seed=0) -> int:
    """The ECMP flow hash of a valid header (see gn_ip4_flow_hash)."""
    cdef bytes b = bytes(data)
    if gn_ip4_validate(<const uint8_t*>b, len(b), False) not in (GN_IP4_OK, GN_IP4_OPTIONS):
        raise ValueError("not a valid IPv4 packet")
    return gn_ip4_flow_hash(<const uint8_t*>b, seed)


def format_address(a) -> str:
    """Dotted quad from an int (host order) or 4 bytes."""
    if isinstance(a, int):
        return str(ipaddress.IPv4Address(a))
    return str(ipaddress.IPv4Address(bytes(a)))


OPTION_NAMES = {0: "eol", 1: "nop", 7: "record-route", 68: "timestamp", 130: "security", 131: "loose-source-route",
                136: "stream-id", 137: "strict-source-route", 148: "router-alert"}


def format_options(opts) -> str:
    """``nop, record-route (7 bytes), eol`` for the option bytes of a
    header; a length below 2 or past the end is shown as malformed."""
    opts = bytes(opts)
    names, i = [], 0
    while i < len(opts):
        t = opts[i]
        name = OPTION_NAMES.get(t, f"option {t}")
        if t in (0, 1):
            names.append(name)
            i += 1
            if t == 0:
                break
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
            names.append(f"{name} (malformed)")
            break
        names.append(f"{name} ({opts[i + 1]} bytes)")
        i += opts[i + 1]
    return ", ".join(names)


def _format_l4(proto, data, ip, int indent, bint quoted):
    """The L4 lines under an IPv4 header: the protocol's own formatter."""
    if proto == GN_IP4_PROTO_UDP:
        from graphnet.wire.udp import format_udp
        return format_udp(data, indent, ip, quoted)
    if proto == GN_IP4_PROTO_ICMP:
        from graphnet.wire.icmp4 import format_icmp4
        if quoted:
            return format_icmp4(data[:8], indent, total=0x10000)   # a quote: 8 bytes, no checksum check
        return format_icmp4(data, indent, total=max(0, struct.unpack_from("!H", ip, 2)[0] - len(ip)),
                            quoted_header=format_ip4_header)
    if proto == GN_IP4_PROTO_TCP and len(data) >= 4:
        sport, dport = struct.unpack_from("!HH", data)
        extra = ""
        if len(data) >= 14:
            flags = data[13]
            names = "".join(c for bit, c in zip(range(8), "FSRPAUEC") if flags >> bit & 1)
            extra = f" flags [{names or '.'}]"
        return f"{' ' * indent}TCP: {sport} -> {dport}{extra}"
    return None


def format_ip4_header(data, int indent=0, bint quoted=False) -> str:
    """A header, its options and fragment fields, and the L4 header (UDP,
    ICMP through their wire/ formatters; TCP ports and flags) as text; see
    the module doc. ``quoted``: the header an ICMP error quotes (its L4
    part is only 8 bytes, checksums not checked)."""
    data = bytes(data)
    pad = " " * indent
    if len(data) < GN_IP4_HEADER_LEN:
        return f"{pad}ip4 header truncated ({len(data)} bytes): {data.hex()}"
    vihl, tos, length, ident, frag, ttl, proto, csum = struct.unpack_from("!BBHHHBBH", data)
    src, dst = format_address(data[12:16]), format_address(data[16:20])
    pname = PROTOCOL_NAMES.get(proto, f"proto {proto}")
    hlen = (vihl & 0xf) * 4
    out = [f"{pad}{pname}: {src} -> {dst}"]
    if vihl >> 4 != 4 or hlen < 20:
        out.append(f"{pad}  version {vihl >> 4}, header length {hlen} (invalid)")
    csum_state = ""
    if 20 <= hlen <= len(data):
        csum_state = " (ok)" if gn_ip4_checksum_ok(<const uint8_t*>data, hlen) else " (bad)"
    out.append(f"{pad}  tos 0x{tos:02x}, ttl {ttl}, length {length}, checksum 0x{csum:04x}{csum_state}")
    flags = " ".join(n for bit, n in ((0x4000, "DF"), (0x2000, "MF"), (0x8000, "RSV")) if frag & bit)
    off = frag & GN_IP4_FRAG_OFFSET_MASK
    line = f"{pad}  fragment id 0x{ident:04x}"
    if flags or off:
        line += f"{', flags ' + flags if flags else ''}{f' offset {off * 8}' if off else ''}"
    out.append(line)
    if hlen > 20:
        opts = f": {format_options(data[20:hlen])}" if hlen <= len(data) else " (not recorded)"
        out.append(f"{pad}  options {hlen - 20} bytes{opts}")
    if 20 <= hlen <= len(data) and not (frag & GN_IP4_FRAG_OFFSET_MASK):
        l4 = _format_l4(proto, data[hlen:], data[:hlen], indent + 2, quoted)
        if l4:
            out.append(l4)
    return "\n".join(out)
