"""graphnet.wire.inet's Python face (inet_sum, inet_checksum: the one
internet checksum of templates, benches and the fuzzer) against Scapy's."""
from hypothesis import given, strategies as st
from scapy.utils import checksum

from graphnet.wire.inet import inet_checksum, inet_sum


@given(st.binary(max_size=300))
def test_inet_checksum_equals_scapys(data):
    assert inet_checksum(data) == checksum(data)
    assert inet_checksum(bytearray(data)) == checksum(data)


@given(st.binary(max_size=300))
def test_a_message_with_its_checksum_sums_to_ffff(data):
    data = data + bytes(len(data) % 2)                # the checksum field at an even offset
    c = inet_checksum(data + b"\0\0")
    assert inet_sum(data + c.to_bytes(2, "big")) == 0xffff


def test_initial_partial_sum_is_added():
    assert inet_sum(b"\x00\x01", 0xffff) == inet_sum(b"\x00\x01\xff\xff")
    assert inet_sum(b"") == 0 and inet_checksum(b"") == 0xffff
