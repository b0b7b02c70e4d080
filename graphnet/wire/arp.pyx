"""ARP (RFC 826) for IPv4 over Ethernet: the layout, validation and builder
live in ``arp.pxd``; this module gives them to Python and formats ARP
bodies for trace text as VPP does::

    request, type ethernet/IP4, address size 6/4
    02:00:00:00:00:99/10.0.0.2 -> 00:00:00:00:00:00/10.0.0.1

Formatters never raise: a short or odd body is shown as such.
"""
import ipaddress
import struct

from libc.stdint cimport uint8_t, uint32_t

VALIDATE_ERRORS = (
    ("none", "info", "no error"),
    ("too-short", "error", "ARP body shorter than 28 bytes"),
    ("bad-format", "error", "ARP hardware/protocol type or address sizes not Ethernet/IPv4"),
    ("bad-opcode", "error", "ARP opcode neither request nor reply"),
)
ARP_LEN = GN_ARP_LEN
OP_REQUEST = GN_ARP_OP_REQUEST
OP_REPLY = GN_ARP_OP_REPLY
_OPS = {1: "request", 2: "reply", 3: "rarp-request", 4: "rarp-reply"}


def validate(data) -> str:
    """The symbol of gn_arp_validate's verdict (``none`` = valid)."""
    cdef bytes b = bytes(data)
    return VALIDATE_ERRORS[gn_arp_validate(<const uint8_t*>b, len(b))][0]


def build(op, sha, spa, tha, tpa) -> bytes:
    """A 28-byte ARP body (MACs as 6 bytes, addresses as ints or text)."""
    cdef bytearray b = bytearray(GN_ARP_LEN)
    cdef bytes s = bytes(sha), t = bytes(tha) if tha is not None else bytes(6)
    if len(s) != 6 or len(t) != 6:
        raise ValueError("MAC addresses have 6 bytes")
    gn_arp_write(<uint8_t*>b, op, <const uint8_t*>s, int(ipaddress.IPv4Address(spa)),
                 <const uint8_t*>t, int(ipaddress.IPv4Address(tpa)))
    return bytes(b)


def _mac(b):
    return ":".join(f"{x:02x}" for x in b)


def format_arp(data, int indent=0) -> str:
    data = bytes(data)
    pad = " " * indent
    if len(data) < GN_ARP_LEN:
        return f"{pad}arp truncated ({len(data)} bytes): {data.hex()}"
    hrd, pro, hln, pln, op = struct.unpack_from("!HHBBH", data)
    kind = "ethernet" if hrd == 1 else f"hw-{hrd}"
    proto = "IP4" if pro == 0x0800 else f"0x{pro:04x}"
    line = f"{pad}{_OPS.get(op, f'op {op}')}, type {kind}/{proto}, address size {hln}/{pln}"
    if hln != 6 or pln != 4:
        return line
    spa = ipaddress.IPv4Address(data[14:18])
    tpa = ipaddress.IPv4Address(data[24:28])
    return f"{line}\n{pad}{_mac(data[8:14])}/{spa} -> {_mac(data[18:24])}/{tpa}"
