"""Scapy packet builders for tests (imported lazily: Scapy is slow to load)."""
from __future__ import annotations


def udp_packet(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 1234, dport: int = 5678,
               payload: bytes = b"graphnet", *, src_mac: str = "02:00:00:00:00:01",
               dst_mac: str = "02:00:00:00:00:02", ttl: int = 64, ip_id: int = 1):
    """An Ethernet / IPv4 / UDP Scapy packet with correct checksums.

    ``bytes(udp_packet(...))`` is what a pg stream sends; the checksums are
    computed by Scapy when the packet is serialized."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    return (Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst, ttl=ttl, id=ip_id)
            / UDP(sport=sport, dport=dport) / Raw(payload))


def inet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of data, by Scapy (an oracle independent of
    graphnet's own ``graphnet.wire.inet``)."""
    from scapy.utils import checksum
    return checksum(bytes(data))


def checksums_ok(p) -> bool:
    """Scapy recomputes the IPv4 header checksum and the ICMP/UDP one (a
    zero UDP checksum means none) of p's IP layer: they must match."""
    from scapy.layers.inet import ICMP, IP, UDP
    raw = bytes(p[IP]) if not isinstance(p, (bytes, bytearray)) else bytes(p)
    q = IP(raw)
    del q.chksum
    if ICMP in q:
        del q[ICMP].chksum
    if UDP in q and q[UDP].chksum != 0:
        del q[UDP].chksum
    return bytes(IP(bytes(q))) == raw


def udp_packets(n: int, **kw) -> list:
    """n distinct Ethernet / IPv4 / UDP packets as bytes: packet i has the
    payload ``b"pkt-%06d" % i`` (+ ``payload``) and IP id ``i``, with
    correct checksums; e.g. to check that packets arrive unchanged and in
    order. Scapy builds one template; the copies are patched in Python
    (Scapy takes milliseconds per packet)."""
    extra = kw.pop("payload", b"")
    kw.pop("ip_id", None)
    base = bytes(udp_packet(payload=b"pkt-000000" + extra, ip_id=0, **kw))
    out = []
    for i in range(n):
        b = bytearray(base)
        b[42:52] = b"pkt-%06d" % i
        b[18:20] = (i & 0xffff).to_bytes(2, "big")
        b[24:26] = b"\0\0"
        b[24:26] = inet_checksum(bytes(b[14:34])).to_bytes(2, "big")
        b[40:42] = b"\0\0"
        udp = bytes(b[34:])
        pseudo = inet_checksum(bytes(b[26:34]) + bytes([0, 17]) + len(udp).to_bytes(2, "big") + udp)
        b[40:42] = (pseudo or 0xffff).to_bytes(2, "big")
        out.append(bytes(b))
    return out
