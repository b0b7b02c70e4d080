"""TCP headers and options: the layout, validation, option parser and
writer and the checksum live in ``tcp.pxd`` (inline, for nodes and the
transport); this module gives them to Python (tests, the control plane)
and formats headers for trace text, tcpdump-like::

    TCP: 1234 -> 80 flags [S.] seq 1000 ack 2001 win 65535 csum 0x1c46
      options [mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 7]

Formatters never raise: truncated or malformed headers are shown as such.
"""
import struct

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset
from posix.mman cimport mmap, munmap, mprotect, PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FAILED

PARSE_ERRORS = (
    # gn_tcp_validate / gn_tcp_options_parse codes, in order: tcp4-input's
    # wire error rows
    ("none", "info", "no error"),
    ("too-short", "error", "TCP segment shorter than its 20-byte header"),
    ("bad-data-offset", "error", "TCP data offset below 5"),
    ("truncated", "error", "TCP data offset beyond the segment"),
    ("bad-option-length", "error", "TCP option length below 2 or past the header"),
    ("bad-option", "error", "TCP option of a known kind with the wrong length"),
)
assert len(PARSE_ERRORS) == GN_TCP_N_PARSE

HEADER_LEN = GN_TCP_HEADER_LEN
MAX_OPTIONS_LEN = GN_TCP_MAX_OPTIONS_LEN
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = (GN_TCP_FLAG_FIN, GN_TCP_FLAG_SYN, GN_TCP_FLAG_RST, GN_TCP_FLAG_PSH,
                                          GN_TCP_FLAG_ACK, GN_TCP_FLAG_URG, GN_TCP_FLAG_ECE, GN_TCP_FLAG_CWR)


def validate(data) -> str:
    """The symbol of gn_tcp_validate's verdict on a segment's bytes."""
    cdef bytes b = bytes(data)
    return PARSE_ERRORS[gn_tcp_validate(<const uint8_t*>b, len(b))][0]


cdef dict _options_dict(gn_tcp_options_t* o):
    d = {}
    if o.flags & GN_TCP_OPTF_MSS:
        d["mss"] = o.mss
    if o.flags & GN_TCP_OPTF_WSCALE:
        d["wscale"] = o.wscale
    if o.flags & GN_TCP_OPTF_SACK_PERMITTED:
        d["sack_permitted"] = True
    if o.flags & GN_TCP_OPTF_TIMESTAMP:
        d["timestamp"] = (o.tsval, o.tsecr)
    if o.flags & GN_TCP_OPTF_SACK:
        d["sack"] = [(o.sack[i].start, o.sack[i].end) for i in range(o.n_sack)]
    return d


cdef int _options_from_dict(dict d, gn_tcp_options_t* o) except -1:
    memset(o, 0, sizeof(gn_tcp_options_t))
    if "mss" in d:
        o.flags |= GN_TCP_OPTF_MSS
        o.mss = d["mss"]
    if "wscale" in d:
        o.flags |= GN_TCP_OPTF_WSCALE
        o.wscale = d["wscale"]
    if d.get("sack_permitted"):
        o.flags |= GN_TCP_OPTF_SACK_PERMITTED
    if "timestamp" in d:
        o.flags |= GN_TCP_OPTF_TIMESTAMP
        o.tsval, o.tsecr = d["timestamp"]
    if d.get("sack"):
        blocks = d["sack"]
        if len(blocks) > GN_TCP_MAX_SACK_BLOCKS:
            raise ValueError(f"at most {GN_TCP_MAX_SACK_BLOCKS} SACK blocks")
        o.flags |= GN_TCP_OPTF_SACK
        for i, (s, e) in enumerate(blocks):
            o.sack[i].start = s
            o.sack[i].end = e
        o.n_sack = len(blocks)
    return 0


def parse_options(data):
    """(symbol, options) for the option bytes data: symbol is ``none`` when
    they parsed, options a dict with the keys present among ``mss``,
    ``wscale``, ``sack_permitted``, ``timestamp`` (tsval, tsecr) and
    ``sack`` [(start, end), ...]."""
    cdef bytes b = bytes(data)
    cdef gn_tcp_options_t o
    cdef uint32_t r = gn_tcp_options_parse(<const uint8_t*>b, len(b), &o)
    return PARSE_ERRORS[r][0], (_options_dict(&o) if r == GN_TCP_OK else {})


def parse_options_guarded(data):
    """parse_options with the bytes placed at the very end of a readable
    page that is followed by an inaccessible one: a read past the last
    byte is a segmentation fault, not a silent overread (for tests)."""
    cdef bytes b = bytes(data)
    cdef size_t page = 4096, n = len(b)
    cdef gn_tcp_options_t o
    cdef uint32_t r
    if n > page:
        raise ValueError("at most one page of option bytes")
    cdef uint8_t* m = <uint8_t*>mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if <void*>m == MAP_FAILED:
        raise MemoryError("mmap")
    try:
        if mprotect(m + page, page, PROT_NONE) != 0:
            raise OSError("mprotect")
        memcpy(m + page - n, <const uint8_t*>b, n)
        r = gn_tcp_options_parse(m + page - n, <uint32_t>n, &o)
    finally:
        munmap(m, 2 * page)
    return PARSE_ERRORS[r][0], (_options_dict(&o) if r == GN_TCP_OK else {})


def write_options(options, bint syn=False) -> bytes:
    """The option bytes gn_tcp_options_write produces for a dict of the
    parse_options form (a SYN's layout when syn)."""
    cdef gn_tcp_options_t o
    cdef uint8_t out[GN_TCP_MAX_OPTIONS_LEN]
    _options_from_dict(dict(options), &o)
    cdef uint32_t n = gn_tcp_options_write(out, &o, syn)
    return bytes(out[:n])


def build_header(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window,
                 options=None, bint syn_layout=False, payload=b"", src=None, dst=None) -> bytes:
    """A segment built by the C writers (header, options, payload) and,
    when src and dst (host-order ints) are given, its checksum."""
    cdef uint8_t hdr[GN_TCP_MAX_HEADER_LEN]
    cdef gn_tcp_options_t o
    cdef uint32_t olen = 0
    if options:
        _options_from_dict(dict(options), &o)
        olen = gn_tcp_options_write(hdr + GN_TCP_HEADER_LEN, &o, syn_layout)
    gn_tcp_write_header(hdr, sport, dport, seq, ack, GN_TCP_HEADER_LEN + olen, flags, window)
    cdef bytearray seg = bytearray(hdr[:GN_TCP_HEADER_LEN + olen]) + bytes(payload)
    if src is not None and dst is not None:
        gn_tcp4_set_checksum(src, dst, <uint8_t*>seg, len(seg))
    return bytes(seg)


def checksum(uint32_t src, uint32_t dst, data) -> int:
    """The checksum a segment should carry (its checksum field ignored)."""
    cdef bytearray b = bytearray(data)
    if len(b) < GN_TCP_HEADER_LEN:
        raise ValueError("not a TCP segment")
    gn_tcp4_set_checksum(src, dst, <uint8_t*>b, len(b))
    return gn_tcp_checksum_field(<uint8_t*>b)


def checksum_ok(uint32_t src, uint32_t dst, data) -> bool:
    cdef bytes b = bytes(data)
    return len(b) >= GN_TCP_HEADER_LEN and gn_tcp4_checksum_ok(src, dst, <const uint8_t*>b, len(b))


def seq_lt(uint32_t a, uint32_t b) -> bool:
    return gn_seq_lt(a, b)


def format_flags(int flags) -> str:
    """tcpdump's flag letters: S F R P U E C, '.' for ACK."""
    # tcpdump order: S F P R U E W, then '.' for ACK
    order = [(GN_TCP_FLAG_SYN, "S"), (GN_TCP_FLAG_FIN, "F"), (GN_TCP_FLAG_PSH, "P"), (GN_TCP_FLAG_RST, "R"),
             (GN_TCP_FLAG_URG, "U"), (GN_TCP_FLAG_ECE, "E"), (GN_TCP_FLAG_CWR, "W"), (GN_TCP_FLAG_ACK, ".")]
    s = "".join(c for bit, c in order if flags & bit)
    return s or "none"


def format_options(data) -> str:
    """Option bytes as tcpdump lists them; malformed bytes are named."""
    data = bytes(data)
    out = []
    i = 0
    while i < len(data):
        kind = data[i]
        if kind == GN_TCP_OPT_EOL:
            out.append("eol")
            break
        if kind == GN_TCP_OPT_NOP:
            out.append("nop")
            i += 1
            continue
        if i + 1 >= len(data) or data[i + 1] < 2 or i + data[i + 1] > len(data):
            out.append(f"bad-length({data[i:].hex()})")
            break
        k = data[i + 1]
        body = data[i + 2:i + k]
        if kind == GN_TCP_OPT_MSS and k == 4:
            out.append(f"mss {struct.unpack('!H', body)[0]}")
        elif kind == GN_TCP_OPT_WSCALE and k == 3:
            out.append(f"wscale {body[0]}")
        elif kind == GN_TCP_OPT_SACK_PERMITTED and k == 2:
            out.append("sackOK")
        elif kind == GN_TCP_OPT_TIMESTAMP and k == 10:
            out.append("TS val %d ecr %d" % struct.unpack("!II", body))
        elif kind == GN_TCP_OPT_SACK and k >= 10 and (k - 2) % 8 == 0:
            blocks = struct.unpack(f"!{(k - 2) // 4}I", body)
            out.append("sack %d %s" % (len(blocks) // 2,
                                       " ".join(f"{{{blocks[j]}:{blocks[j + 1]}}}" for j in range(0, len(blocks), 2))))
        else:
            out.append(f"opt-{kind}:{body.hex()}" + ("" if kind not in (2, 3, 4, 5, 8) else " (bad length)"))
        i += k
    return ",".join(out)


def format_tcp_header(data, int indent=0, src=None, dst=None) -> str:
    """A segment's header as text (see the module doc); with src and dst
    (host-order ints) the checksum is checked over all of data."""
    data = bytes(data)
    pad = " " * indent
    if len(data) < GN_TCP_HEADER_LEN:
        return f"{pad}tcp header truncated ({len(data)} bytes): {data.hex()}"
    sport, dport, seq, ack, doff, flags, win, csum, urg = struct.unpack_from("!HHIIBBHHH", data)
    hlen = (doff >> 4) * 4
    line = f"{pad}TCP: {sport} -> {dport} flags [{format_flags(flags)}] seq {seq}"
    if flags & GN_TCP_FLAG_ACK:
        line += f" ack {ack}"
    line += f" win {win} csum 0x{csum:04x}"
    if src is not None and dst is not None:
        line += " (ok)" if checksum_ok(src, dst, data) else " (bad)"
    if flags & GN_TCP_FLAG_URG:
        line += f" urg {urg}"
    out = [line]
    if hlen < GN_TCP_HEADER_LEN or hlen > len(data):
        out.append(f"{pad}  header length {hlen} (invalid)")
    elif hlen > GN_TCP_HEADER_LEN:
        out.append(f"{pad}  options [{format_options(data[GN_TCP_HEADER_LEN:hlen])}]")
    if GN_TCP_HEADER_LEN <= hlen <= len(data) and len(data) > hlen:
        out.append(f"{pad}  payload {len(data) - hlen} bytes")
    return "\n".join(out)
