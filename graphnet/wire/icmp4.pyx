"""ICMP for IPv4: the layout and constants live in ``icmp4.pxd``; this
module decodes a message for trace text, as VPP's format_icmp4_header::

    ICMP: echo-request code 0, checksum 0x1614 (ok)
      id 7, seq 3

and for an error, the header it quotes, decoded by the IPv4 formatter::

    ICMP: destination-unreachable port-unreachable, checksum 0x111a (ok)
      quoted: UDP: 10.0.0.2 -> 10.0.0.1
        tos 0x00, ttl 64, length 29, checksum 0x66cd (ok)
        ...

``format_icmp4(data, indent, total)``: data is the ICMP message from its
type byte (as much as the trace record holds); ``total`` the message's
length by its IP header, so the checksum is checked only when the whole
message is there. Never raises: a short message is shown as such.
"""
import struct

TYPE_NAMES = {
    GN_ICMP4_ECHO_REPLY: "echo-reply", GN_ICMP4_DEST_UNREACH: "destination-unreachable",
    GN_ICMP4_SOURCE_QUENCH: "source-quench", GN_ICMP4_REDIRECT: "redirect",
    GN_ICMP4_ECHO_REQUEST: "echo-request", 9: "router-advertisement", 10: "router-solicitation",
    GN_ICMP4_TIME_EXCEEDED: "time-exceeded", GN_ICMP4_PARAM_PROBLEM: "parameter-problem",
    GN_ICMP4_TIMESTAMP: "timestamp-request", GN_ICMP4_TIMESTAMP_REPLY: "timestamp-reply",
}
CODE_NAMES = {
    GN_ICMP4_DEST_UNREACH: {0: "net-unreachable", 1: "host-unreachable", 2: "protocol-unreachable",
                            3: "port-unreachable", 4: "fragmentation-needed-and-dont-fragment-set",
                            5: "source-route-failed", 6: "destination-network-unknown",
                            7: "destination-host-unknown", 9: "network-administratively-prohibited",
                            10: "host-administratively-prohibited", 13: "communication-administratively-prohibited"},
    GN_ICMP4_TIME_EXCEEDED: {0: "ttl-exceeded-in-transit", 1: "fragment-reassembly-time-exceeded"},
    GN_ICMP4_PARAM_PROBLEM: {0: "pointer-indicates-error", 1: "missing-required-option", 2: "bad-length"},
    GN_ICMP4_REDIRECT: {0: "network", 1: "host", 2: "tos-network", 3: "tos-host"},
}
HEADER_LEN = GN_ICMP4_HEADER_LEN


def is_error(int icmp_type) -> bool:
    """An ICMP error message (it quotes the datagram that caused it)."""
    return bool(gn_icmp4_is_error(<uint8_t>icmp_type))


def decode(data) -> dict:
    """The fields of an ICMP message as a dict (tests, formatters):
    type, code, type_name, code_name, checksum, and id/seq (echo,
    timestamp), mtu (fragmentation needed), pointer (parameter problem),
    quoted (bytes of the quoted datagram, errors). {} when under 8 bytes."""
    data = bytes(data)
    if len(data) < GN_ICMP4_HEADER_LEN:
        return {}
    t, c, csum, a, b = struct.unpack_from("!BBHHH", data)
    out = {"type": t, "code": c, "type_name": TYPE_NAMES.get(t, f"type-{t}"),
           "code_name": CODE_NAMES.get(t, {}).get(c, f"code {c}"), "checksum": csum}
    if t in (GN_ICMP4_ECHO_REQUEST, GN_ICMP4_ECHO_REPLY, GN_ICMP4_TIMESTAMP, GN_ICMP4_TIMESTAMP_REPLY):
        out["id"], out["seq"] = a, b
    elif gn_icmp4_is_error(t):
        if t == GN_ICMP4_DEST_UNREACH and c == GN_ICMP4_FRAG_NEEDED:
            out["mtu"] = b
        elif t == GN_ICMP4_PARAM_PROBLEM:
            out["pointer"] = data[4]
        out["quoted"] = data[GN_ICMP4_HEADER_LEN:]
    return out


def format_icmp4(data, int indent=0, total=None, quoted_header=None) -> str:
    """See the module docstring. ``quoted_header``: the formatter of the
    header an error quotes (graphnet.wire.ip4 passes format_ip4_header;
    without it the quote's length is shown)."""
    from graphnet.wire.inet import checksum_state
    data = bytes(data)
    pad = " " * indent
    f = decode(data)
    if not f:
        return f"{pad}ICMP: truncated ({len(data)} bytes): {data.hex()}"
    code = f["code_name"] if f["type"] in CODE_NAMES else f"code {f['code']}"
    state = checksum_state(data, total if total is not None else len(data))
    out = [f"{pad}ICMP: {f['type_name']} {code}, checksum 0x{f['checksum']:04x} ({state})"]
    if "id" in f:
        out.append(f"{pad}  id {f['id']}, seq {f['seq']}")
    if "mtu" in f:
        out.append(f"{pad}  next-hop mtu {f['mtu']}")
    if "pointer" in f:
        out.append(f"{pad}  pointer {f['pointer']}")
    if "quoted" in f:
        q = f["quoted"]
        if len(q) >= 20 and quoted_header is not None:
            inner = quoted_header(q, indent + 2, quoted=True).lstrip()
            out.append(f"{pad}  quoted: {inner}")
        else:
            out.append(f"{pad}  quoted: an IPv4 header ({len(q)} of its bytes recorded)")
    return "\n".join(out)
