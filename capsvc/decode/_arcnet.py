"""ARCNET: LINKTYPE_ARCNET (7, BSD's header) and LINKTYPE_ARCNET_LINUX (129, Linux's).

Pure module (no IO). Both headers start with the source and destination station (one byte
each); Linux's then has a 2-byte offset. Next comes the protocol id: after one of RFC 1051's
(``0xf0`` IP, ``0xf1`` ARP, ``0x80`` diagnostics) the payload follows; after any other RFC
1201's split flag and 2-byte sequence number do. BSD hands over frames as they are on the
wire: a split flag of 0xff marks an exception packet (four more bytes: pad, the protocol id
again, the real split flag, the sequence number), an even nonzero flag a middle fragment that
holds no network-layer header. Linux hands over reassembled packets, whose header is 5 or 8
bytes. These layouts are tcpdump's (print-arcnet.c) and libpcap's.

``arcnet_header``/``arcnet_linux_header`` read the header into ``ArcnetHeader`` (None before the
protocol id); ``decode_arcnet``/``decode_arcnet_linux`` are the link decoders. Nothing here
raises.
"""

from __future__ import annotations

from typing import NamedTuple

from ._const import ETHERTYPE_ARP, ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_REVARP, LINK_MESSAGE
from ._ether import LINK_TRUNCATED

__all__ = [
    "ARCNET_ETHERTYPES",
    "ARCNET_IPX",
    "ArcnetHeader",
    "arcnet_header",
    "arcnet_linux_header",
    "decode_arcnet",
    "decode_arcnet_linux",
]

#: Protocol ids (RFC 1051 and RFC 1201) -> the ethertype of what they carry.
ARCNET_ETHERTYPES = {
    0xF0: ETHERTYPE_IP,
    0xF1: ETHERTYPE_ARP,
    0xD4: ETHERTYPE_IP,
    0xD5: ETHERTYPE_ARP,
    0xD6: ETHERTYPE_REVARP,
    0xC4: ETHERTYPE_IPV6,
}
#: RFC 1201's protocol id of IPX (tcpdump prints it; capsvc's own line does not follow it).
ARCNET_IPX = 0xFA
#: Protocol ids whose header has no split flag and sequence number (RFC 1051's, diagnostics).
_RFC1051 = frozenset((0xF0, 0xF1, 0x80))
_EXCEPTION = 0xFF
_BSD_HEADER, _BSD_RFC1201, _BSD_EXCEPTION = 3, 6, 10
_LINUX_HEADER, _LINUX_RFC1201 = 5, 8
_CUT = (LINK_TRUNCATED, 0)
_MSG = (LINK_MESSAGE, 0)


class ArcnetHeader(NamedTuple):
    """An ARCNET header.

    ``payload`` is the header's length, where the payload starts; it may lie past the captured
    bytes (the frame ends inside the header), and then ``flag`` and ``seqid`` are 0. ``flag``
    and ``seqid`` are RFC 1201's split flag and sequence number (an exception packet's real
    ones), on BSD's header only: Linux hands over reassembled packets, they are 0 there.
    ``exception``: a BSD exception packet (split flag 0xff); its ``payload`` is 10.
    """

    source: int
    destination: int
    protocol: int
    payload: int
    flag: int = 0
    seqid: int = 0
    exception: bool = False

    @property
    def middle_fragment(self) -> bool:
        """A fragment after the first of a split packet (it starts no network-layer header)."""
        return self.flag != 0 and not self.flag & 1


def arcnet_header(data: bytes) -> ArcnetHeader | None:
    """Read BSD's ARCNET header (source, destination, protocol id, then RFC 1201's fields);
    None when the frame ends before the protocol id."""
    if len(data) < _BSD_HEADER:
        return None
    src, dst, proto = data[0], data[1], data[2]
    if proto in _RFC1051:
        return ArcnetHeader(src, dst, proto, _BSD_HEADER)
    if len(data) < _BSD_RFC1201:
        return ArcnetHeader(src, dst, proto, _BSD_RFC1201)
    if data[3] != _EXCEPTION:
        return ArcnetHeader(src, dst, proto, _BSD_RFC1201, data[3], data[4] << 8 | data[5])
    if len(data) < _BSD_EXCEPTION:
        return ArcnetHeader(src, dst, proto, _BSD_EXCEPTION, exception=True)
    return ArcnetHeader(src, dst, proto, _BSD_EXCEPTION, data[7], data[8] << 8 | data[9], True)


def arcnet_linux_header(data: bytes) -> ArcnetHeader | None:
    """Read Linux's ARCNET header (source, destination, 2-byte offset, protocol id, and for
    all but RFC 1051's ids three bytes more, as tcpdump reads it); None when the frame ends
    before the protocol id."""
    if len(data) < _LINUX_HEADER:
        return None
    proto = data[4]
    size = _LINUX_HEADER if proto in _RFC1051 else _LINUX_RFC1201
    return ArcnetHeader(data[0], data[1], proto, size)


def _network(header: ArcnetHeader | None, data: bytes) -> tuple[int, int]:
    if header is None or len(data) < header.payload:
        return _CUT
    ethertype = ARCNET_ETHERTYPES.get(header.protocol)
    if ethertype is None or header.middle_fragment:
        return _MSG
    return ethertype, header.payload


def decode_arcnet(data: bytes) -> tuple[int, int]:
    """LINKTYPE_ARCNET: the network layer of IP, ARP, RARP and IPv6 packets (a split packet's
    first fragment included); ``LINK_MESSAGE`` for other protocol ids and middle fragments."""
    return _network(arcnet_header(data), data)


def decode_arcnet_linux(data: bytes) -> tuple[int, int]:
    """LINKTYPE_ARCNET_LINUX: the network layer of IP, ARP, RARP and IPv6 packets;
    ``LINK_MESSAGE`` for other protocol ids."""
    return _network(arcnet_linux_header(data), data)
