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


def udp_packets(n: int, **kw) -> list:
    """n distinct UDP packets (payload and IP id carry the packet number),
    e.g. to check that packets arrive unchanged and in order."""
    extra = kw.pop("payload", b"")
    return [udp_packet(payload=b"pkt-%06d" % i + extra, ip_id=i & 0xffff, **kw) for i in range(n)]
