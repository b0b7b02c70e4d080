"""Trace text shared by the device nodes (tap-input/-output,
af-packet-input/-output): the interface's name, the virtio-net header, and
a one-line summary of the frame's first bytes (Scapy's, as pg-input's
record shows it; the nodes after the device decode the headers field by
field). Bytes nothing decodes (Scapy missing, or a frame too short for an
Ethernet header) are shown as hex, at most the first HEX_MAX (64).

Only used when ``show trace`` formats a record (never per packet).
"""
from __future__ import annotations

import struct

from graphnet.vlib.kit import TRACE_BYTES_HEADER, parse_trace_bytes

HEX_MAX = 64

GSO_NAMES = {0: "none", 1: "tcpv4", 3: "udp", 4: "tcpv6", 5: "udp-l4"}
VNET_HDR = struct.Struct("<BBHHHH")          # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset


DEVICE = struct.Struct("<IIHH")               # trace_record.pxd's gn_device_trace_t


def parse_record(record: bytes, own: struct.Struct) -> tuple:
    """A device node's record: (dict of the common part: sw_if_index,
    length, flags, n_buffers, queue and the frame's first bytes, the
    node's ``own`` fields as a tuple)."""
    record = record.ljust(DEVICE.size + own.size + TRACE_BYTES_HEADER, b"\0")
    length, flags, n_buffers, queue = DEVICE.unpack_from(record)
    sw, data = parse_trace_bytes(record, DEVICE.size + own.size)
    return ({"sw_if_index": sw, "length": length, "flags": flags, "n_buffers": n_buffers, "queue": queue,
             "bytes": data}, own.unpack_from(record, DEVICE.size))


def buffers(n: int) -> str:
    return f"{n} buffer{'s' if n != 1 else ''}"


def format_record(kind: str, engine, d: dict, head: str, lines=()) -> str:
    """``  TAP gn0: <head>``, the node's own ``lines``, the frame's summary."""
    return "\n".join([f"  {kind} {interface_name(engine, d['sw_if_index'])}: {head}", *lines,
                      format_frame(d["bytes"], d["length"])])


def interface_name(engine, sw_if_index: int) -> str:
    """``gn0`` (the name, when the engine knows it), else the index."""
    if sw_if_index == 0xffffffff:
        return "-"
    if engine is not None:
        try:
            return engine.interfaces.names[sw_if_index]
        except (AttributeError, IndexError):
            pass
    return str(sw_if_index)


def hex_dump(data: bytes) -> str:
    """At most the first HEX_MAX bytes as hex."""
    return data[:HEX_MAX].hex() + (f" ... ({len(data)} bytes captured)" if len(data) > HEX_MAX else "")


def format_frame(data: bytes, length: int, indent: int = 4) -> str:
    """One line: the summary of a frame of ``length`` bytes whose first
    bytes are ``data`` (``(first N bytes)`` when cut), or their hex."""
    summary = None
    if len(data) >= 14:
        try:
            from scapy.layers.l2 import Ether
            summary = Ether(data).summary()
        except Exception:
            summary = None
    if summary is None:
        summary = hex_dump(data)
    more = "" if len(data) >= length else f" (first {len(data)} bytes)"
    return f"{' ' * indent}{summary}{more}"


def parse_vnet(vnet: bytes) -> dict:
    """A virtio-net header's fields (12 bytes; num_buffers left out)."""
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = VNET_HDR.unpack_from(vnet)
    return {"vnet_flags": flags, "gso_type": gso_type, "hdr_len": hdr_len, "vnet_gso_size": gso_size,
            "csum_start": csum_start, "csum_offset": csum_offset}


def format_vnet(d: dict, gso_size: int) -> str:
    """``needs-csum start 34 offset 16, gso tcpv4 size 1448 hdr_len 66``,
    or ``plain frame``; d as parse_vnet gives it."""
    parts = []
    if d["vnet_flags"] & 1:
        parts.append(f"needs-csum start {d['csum_start']} offset {d['csum_offset']}")
    if d["vnet_flags"] & 2:
        parts.append("data-valid")
    if d["gso_type"]:
        g = d["gso_type"] & 0x7f
        parts.append(f"gso {GSO_NAMES.get(g, g)}{' ecn' if d['gso_type'] & 0x80 else ''} "
                     f"size {gso_size} hdr_len {d['hdr_len']}")
    return ", ".join(parts) if parts else "plain frame"
