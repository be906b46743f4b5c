"""The packet an ICMP or ICMPv6 error quotes: its addresses, protocol and ports.

Pure module (no IO); nothing here raises. An error message (destination unreachable, time
exceeded, parameter problem, source quench, redirect; ICMPv6's 1-4) carries the start of the
packet that caused it after its 8-byte header: the IP header and at least 8 bytes of what
follows, which is where a transport's ports are.
"""

from __future__ import annotations

from socket import AF_INET6, inet_ntoa, inet_ntop
from typing import NamedTuple

from ._const import IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP

__all__ = ["ICMP6_ERRORS", "ICMP_ERRORS", "Quoted", "quoted_packet"]

#: ICMP types that quote the offending packet.
ICMP_ERRORS = frozenset((3, 4, 5, 11, 12))
#: ICMPv6 types that quote the offending packet.
ICMP6_ERRORS = frozenset((1, 2, 3, 4))
_PORTED = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP))


class Quoted(NamedTuple):
    """The quoted packet: IP ``version``, transport ``proto``, addresses as text, and the
    ports (None when the transport has none or they are not quoted). ``truncated``: the quote
    ends inside the IP header or the ports."""

    version: int
    proto: int
    src: str
    dst: str
    sport: int | None
    dport: int | None
    truncated: bool


def quoted_packet(data: bytes, pos: int, end: int) -> Quoted | None:
    """Read the packet quoted at ``pos`` (the ICMP header's end); None when not even its
    addresses are there or it is no IP packet."""
    if end - pos < 1:
        return None
    version = data[pos] >> 4
    if version == 4:
        if end - pos < 20:
            return None
        ihl = (data[pos] & 15) * 4
        proto = data[pos + 9]
        src, dst = inet_ntoa(data[pos + 12 : pos + 16]), inet_ntoa(data[pos + 16 : pos + 20])
        l4 = pos + max(ihl, 20)
    elif version == 6:
        if end - pos < 40:
            return None
        proto = data[pos + 6]
        src = inet_ntop(AF_INET6, data[pos + 8 : pos + 24])
        dst = inet_ntop(AF_INET6, data[pos + 24 : pos + 40])
        l4 = pos + 40
    else:
        return None
    if proto not in _PORTED:
        return Quoted(version, proto, src, dst, None, None, False)
    if l4 + 4 > end:
        return Quoted(version, proto, src, dst, None, None, True)
    sport, dport = data[l4] << 8 | data[l4 + 1], data[l4 + 2] << 8 | data[l4 + 3]
    return Quoted(version, proto, src, dst, sport, dport, False)
