"""The Internet checksum (RFC 1071), as tcpdump's ``-v`` checks and reports it.

Pure module: ``checksum`` of a byte string (0 when a header holding its checksum is right) and
``should_be``, the value the checksum field should have held (tcpdump's in_cksum_shouldbe).
"""

from __future__ import annotations

__all__ = ["checksum", "should_be"]


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def should_be(value: int, sum_: int) -> int:
    """tcpdump's in_cksum_shouldbe: the checksum the header should have held."""
    total = (~value & 0xFFFF) + (~sum_ & 0xFFFF)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
