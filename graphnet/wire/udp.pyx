"""UDP (RFC 768): the layout lives in ``udp.pxd``; this module decodes a
datagram's header for trace text::

    UDP: 1234 -> 53
      length 18, checksum 0x73cf (ok)

``format_udp(data, indent, ip=None)``: data is the datagram from its
header (as much as the trace record holds), ``ip`` the IPv4 header in
front of it, for the pseudo header: the checksum is checked only when the
whole datagram and its IP header are there; otherwise the state says why
not (``none`` when the sender sent 0, RFC 768; ``quoted`` for the 8 bytes
an ICMP error quotes). Never raises.
"""
import struct

HEADER_LEN = GN_UDP_HEADER_LEN


def decode(data) -> dict:
    """{sport, dport, length, checksum} of a UDP header; {} under 8 bytes."""
    data = bytes(data)
    if len(data) < GN_UDP_HEADER_LEN:
        return {}
    sport, dport, length, csum = struct.unpack_from("!HHHH", data)
    return {"sport": sport, "dport": dport, "length": length, "checksum": csum}


def format_udp(data, int indent=0, ip=None, bint quoted=False) -> str:
    """See the module docstring."""
    from graphnet.wire.inet import checksum_state
    data = bytes(data)
    pad = " " * indent
    f = decode(data)
    if not f:
        return f"{pad}UDP: truncated ({len(data)} bytes): {data.hex()}"
    if f["checksum"] == 0:
        state = "none"
    elif quoted:
        state = "quoted: not checked"
    elif ip is None:
        state = "not checked: no IP header"
    elif f["length"] < GN_UDP_HEADER_LEN:
        state = "not checked: bad length"
    else:
        state = checksum_state(data, f["length"], ip=ip, protocol=17)
    return (f"{pad}UDP: {f['sport']} -> {f['dport']}\n"
            f"{pad}  length {f['length']}, checksum 0x{f['checksum']:04x} ({state})")
