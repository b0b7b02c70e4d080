"""Ethernet II: the header layout and inline accessors live in
``ethernet.pxd``; this module formats headers for trace and show text.

``format_ethernet_header(data)`` never raises: a short buffer is shown as
truncated. Addresses are ``aa:bb:cc:dd:ee:ff``; the type is named when
known (``IP4``, ``ARP``, ``802.1q``...).
"""
import struct

ETHERTYPE_NAMES = {
    GN_ETHERTYPE_IP4: "IP4", GN_ETHERTYPE_ARP: "ARP", GN_ETHERTYPE_IP6: "IP6",
    GN_ETHERTYPE_VLAN: "802.1q", GN_ETHERTYPE_QINQ: "802.1ad", GN_ETHERTYPE_QINQ_OLD: "qinq-0x9100",
}
HEADER_LEN = GN_ETHERNET_HEADER_LEN
ETHERTYPE_IP4 = GN_ETHERTYPE_IP4
ETHERTYPE_ARP = GN_ETHERTYPE_ARP
ETHERTYPE_VLAN = GN_ETHERTYPE_VLAN
ETHERTYPE_QINQ = GN_ETHERTYPE_QINQ


def format_mac(mac) -> str:
    return ":".join(f"{b:02x}" for b in bytes(mac))


def parse_mac(mac) -> bytes:
    """6 bytes from ``aa:bb:cc:dd:ee:ff`` (or ``-`` separated), or bytes."""
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(mac)}")
        return bytes(mac)
    text = str(mac)
    if len(text) == 17 and text[2] == text[5] == text[8] == text[11] == text[14] and text[2] in ":-":
        try:
            return bytes.fromhex(text.replace(text[2], ""))      # the common, fast form
        except ValueError:
            pass
    parts = text.replace("-", ":").split(":")
    try:
        if len(parts) != 6 or any(not 1 <= len(p) <= 2 for p in parts):
            raise ValueError
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"bad MAC address {mac!r} (expected aa:bb:cc:dd:ee:ff)") from None


def format_ethertype(t: int) -> str:
    if t < GN_ETHERTYPE_MIN:
        return f"802.3 length {t}"
    return ETHERTYPE_NAMES.get(t, f"0x{t:04x}")


def format_ethernet_header(data, int indent=0) -> str:
    """``IP4: 02:00:00:00:00:01 -> 02:00:00:00:00:02`` (+ ``802.1q vlan N``
    lines for tags) as VPP's format_ethernet_header."""
    data = bytes(data)
    pad = " " * indent
    if len(data) < GN_ETHERNET_HEADER_LEN:
        return f"{pad}ethernet header truncated ({len(data)} bytes): {data.hex()}"
    t = struct.unpack_from("!H", data, 12)[0]
    out = [f"{pad}{format_ethertype(t)}: {format_mac(data[6:12])} -> {format_mac(data[0:6])}"]
    off = GN_ETHERNET_HEADER_LEN
    while t in (GN_ETHERTYPE_VLAN, GN_ETHERTYPE_QINQ, GN_ETHERTYPE_QINQ_OLD):
        if len(data) < off + GN_ETHERNET_VLAN_TAG_LEN:
            out.append(f"{pad}  tag truncated")
            break
        tci, t = struct.unpack_from("!HH", data, off)
        out.append(f"{pad}  vlan {tci & GN_VLAN_VID_MASK} pcp {tci >> 13} dei {(tci >> 12) & 1}, "
                   f"inner type {format_ethertype(t)}")
        off += GN_ETHERNET_VLAN_TAG_LEN
    return "\n".join(out)


def format_ethernet_frame(data, int indent=0) -> str:
    """The whole frame: the Ethernet header (and VLAN tags), then what it
    carries through that protocol's wire/ formatter (IPv4, ARP); a hex
    dump of at most 64 bytes for a payload nothing here decodes."""
    data = bytes(data)
    text = format_ethernet_header(data, indent)
    if len(data) < GN_ETHERNET_HEADER_LEN:
        return text
    t = struct.unpack_from("!H", data, 12)[0]
    off = GN_ETHERNET_HEADER_LEN
    while t in (GN_ETHERTYPE_VLAN, GN_ETHERTYPE_QINQ, GN_ETHERTYPE_QINQ_OLD) \
            and len(data) >= off + GN_ETHERNET_VLAN_TAG_LEN:
        t = struct.unpack_from("!H", data, off + 2)[0]
        off += GN_ETHERNET_VLAN_TAG_LEN
    payload = data[off:]
    if t == GN_ETHERTYPE_IP4:
        from graphnet.wire.ip4 import format_ip4_header
        return text + "\n" + format_ip4_header(payload, indent + 2)
    if t == GN_ETHERTYPE_ARP:
        from graphnet.wire.arp import format_arp
        return text + "\n" + format_arp(payload, indent + 2)
    if payload:
        return text + "\n" + format_hex(payload, indent + 2)
    return text


def format_hex(data, int indent=0, int limit=64) -> str:
    """At most the first ``limit`` bytes, 16 a line (``0000: 45 00 ...``),
    for what no formatter decodes."""
    data = bytes(data)
    pad = " " * indent
    lines = [f"{pad}{off:04x}: " + " ".join(f"{b:02x}" for b in data[off:off + 16])
             for off in range(0, min(len(data), limit), 16)]
    if len(data) > limit:
        lines.append(f"{pad}({len(data) - limit} more bytes)")
    return "\n".join(lines)
