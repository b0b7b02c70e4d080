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
