"""Link-layer decoding: where the network layer starts in a frame, and which transport it carries.

Pure module (no IO), shared by the text formatter and the stats sink so a frame's layers are found
one way only. The rule it keeps: a decoder never raises and never copies. It returns
``(ethertype, offset)`` of the network layer, with ``ethertype`` -1 when the frame is too short or
of a kind the link type cannot carry. IEEE 802.3 frames with an LLC header (a length where the
ethertype would be) report ``ETH_P_802_2`` (4), the value Linux cooked headers use for them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .._packet import Direction, LinkType
from ._const import ETH_P_802_2, ETHERTYPE_IP, ETHERTYPE_IPV6, VLAN_TPIDS

__all__ = [
    "LinkDecoder",
    "cooked_direction",
    "decode_ethernet",
    "decode_null",
    "decode_raw",
    "ipv6_transport",
    "link_decoder",
    "transport_protocol",
]

_VLAN_TPIDS = frozenset(VLAN_TPIDS)
#: struct ether_header: dst, src, type.
ETHER_HEADER = struct.Struct("!6s6sH")
#: struct sll_header: pkttype, hatype, halen, addr[8], protocol.
SLL_HEADER = struct.Struct("!HHH8sH")
#: struct sll2_header: protocol, reserved, ifindex, hatype, pkttype, halen, addr[8].
SLL2_HEADER = struct.Struct("!HHIHBB8s")
#: IPv6 extension headers walked to find the transport: hop-by-hop, routing, dstopts, AH.
_IPV6_EXT = frozenset((0, 43, 60, 51))
_IPV6_FRAG = 44
#: At most this many IPv6 extension headers are walked (a crafted chain cannot loop long).
_IPV6_EXT_LIMIT = 8
#: BSD address families of IPv6 in DLT_NULL headers (Linux 10, BSDs 24/28/30).
_AF_INET6 = frozenset((10, 24, 28, 30))
#: Linux PACKET_OUTGOING in a cooked header's packet type.
_PACKET_OUTGOING = 4

_NONE = (-1, 0)
_IP4 = (ETHERTYPE_IP, 0)
_IP6 = (ETHERTYPE_IPV6, 0)

LinkDecoder = Callable[[bytes], tuple[int, int]]


def decode_ethernet(data: bytes) -> tuple[int, int]:
    """Decode an Ethernet II / 802.3 frame, skipping any 802.1Q/802.1ad tags.

    Args:
        data: the frame from the destination MAC on.

    Returns:
        ``(ethertype, offset)``; an LLC/SNAP frame with a zero OUI reports the ethertype inside the
        SNAP header, any other LLC frame ``ETH_P_802_2``; ``(-1, 0)`` when truncated.
    """
    n = len(data)
    if n < 14:
        return _NONE
    et = data[12] << 8 | data[13]
    off = 14
    while et in _VLAN_TPIDS:
        if n < off + 4:
            return _NONE
        et = data[off + 2] << 8 | data[off + 3]
        off += 4
    if et < 0x0600:
        if (
            n >= off + 8
            and data[off] == 0xAA
            and data[off + 1] == 0xAA
            and data[off + 2] == 3
            and data[off + 3] == data[off + 4] == data[off + 5] == 0
        ):
            return data[off + 6] << 8 | data[off + 7], off + 8
        return ETH_P_802_2, off
    return et, off


def decode_sll(data: bytes) -> tuple[int, int]:
    """Decode a Linux cooked v1 header (16 bytes, protocol at 14)."""
    if len(data) < 16:
        return _NONE
    return data[14] << 8 | data[15], 16


def decode_sll2(data: bytes) -> tuple[int, int]:
    """Decode a Linux cooked v2 header (20 bytes, protocol first)."""
    if len(data) < 20:
        return _NONE
    return data[0] << 8 | data[1], 20


def decode_raw(data: bytes) -> tuple[int, int]:
    """Decode a bare IP packet (LINKTYPE_RAW): the version nibble says IPv4 or IPv6."""
    if not data:
        return _NONE
    version = data[0] >> 4
    if version == 4:
        return _IP4
    if version == 6:
        return _IP6
    return _NONE


def decode_ipv4(data: bytes) -> tuple[int, int]:
    """Decode LINKTYPE_IPV4: an IPv4 packet, nothing else."""
    return _IP4 if data and data[0] >> 4 == 4 else _NONE


def decode_ipv6(data: bytes) -> tuple[int, int]:
    """Decode LINKTYPE_IPV6: an IPv6 packet, nothing else."""
    return _IP6 if data and data[0] >> 4 == 6 else _NONE


def decode_null(data: bytes) -> tuple[int, int]:
    """Decode a BSD loopback header (LINKTYPE_NULL): a 4-byte address family in the capturing
    host's byte order, told apart by which half of the word is zero."""
    if len(data) < 4:
        return _NONE
    family = data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24
    if family > 0xFFFF:
        family = data[3] | data[2] << 8 | data[1] << 16 | data[0] << 24
    return _family(family)


def decode_loop(data: bytes) -> tuple[int, int]:
    """Decode an OpenBSD loopback header (LINKTYPE_LOOP): the family in network byte order."""
    if len(data) < 4:
        return _NONE
    return _family(data[3] | data[2] << 8 | data[1] << 16 | data[0] << 24)


def _family(family: int) -> tuple[int, int]:
    if family == 2:
        return ETHERTYPE_IP, 4
    if family in _AF_INET6:
        return ETHERTYPE_IPV6, 4
    return _NONE


def decode_unknown(data: bytes) -> tuple[int, int]:
    """The decoder of a link type capsvc does not decode: every frame is unknown."""
    return _NONE


_DECODERS: dict[int, LinkDecoder] = {
    LinkType.NULL: decode_null,
    LinkType.ETHERNET: decode_ethernet,
    LinkType.RAW: decode_raw,
    LinkType.LOOP: decode_loop,
    LinkType.LINUX_SLL: decode_sll,
    LinkType.IPV4: decode_ipv4,
    LinkType.IPV6: decode_ipv6,
    LinkType.LINUX_SLL2: decode_sll2,
}


def link_decoder(linktype: int) -> LinkDecoder:
    """Return the decoder of ``linktype``.

    Args:
        linktype: a LinkType or a pcap LINKTYPE_ number; the upper bits of a pcap header's link
            type field (FCS length) are ignored.

    Returns:
        A function ``data -> (ethertype, offset)``; for an unknown link type one that always
        returns ``(-1, 0)``.
    """
    return _DECODERS.get(linktype & 0x03FFFFFF, decode_unknown)


def cooked_direction(linktype: int, data: bytes) -> Direction | None:
    """The direction a Linux cooked header records, or None for other link types.

    Args:
        linktype: the frame's link type.
        data: the frame.

    Returns:
        OUTBOUND for PACKET_OUTGOING, INBOUND for the other packet types, None when the link type
        has no cooked header or the frame is too short.
    """
    if linktype == LinkType.LINUX_SLL and len(data) >= 2:
        kind = data[0] << 8 | data[1]
    elif linktype == LinkType.LINUX_SLL2 and len(data) >= 11:
        kind = data[10]
    else:
        return None
    return Direction.OUTBOUND if kind == _PACKET_OUTGOING else Direction.INBOUND


def ipv6_transport(data: bytes, off: int) -> tuple[int, int, int]:
    """Walk an IPv6 header's extension chain to the transport header.

    Args:
        data: the frame.
        off: where the IPv6 header starts (at least 40 bytes must be there).

    Returns:
        ``(next_header, transport_offset, fragment)`` where ``fragment`` is 0 for an unfragmented
        packet, 1 for a first fragment and 2 for a later one (no transport header in it). A chain
        that runs past the captured bytes or is longer than 8 headers stops at the header that
        could not be read, whose type is returned.
    """
    nh = data[off + 6]
    pos = off + 40
    n = len(data)
    fragment = 0
    for _ in range(_IPV6_EXT_LIMIT):
        if nh in _IPV6_EXT:
            if pos + 2 > n:
                break
            # AH counts its length in 4-byte units minus 2, the others in 8-byte units minus 1.
            size = (data[pos + 1] + 2) * 4 if nh == 51 else (data[pos + 1] + 1) * 8
            nh = data[pos]
            pos += size
        elif nh == _IPV6_FRAG:
            if pos + 8 > n:
                break
            offset = (data[pos + 2] << 8 | data[pos + 3]) & 0xFFF8
            fragment = 2 if offset else 1
            nh = data[pos]
            pos += 8
            if fragment == 2:
                break
        else:
            break
    return nh, pos, fragment


def transport_protocol(data: bytes, ethertype: int, off: int) -> int:
    """The IP protocol number a frame carries, or -1 when it is no IP packet or too short.

    Args:
        data: the frame.
        ethertype: what the link decoder returned.
        off: where the network layer starts.
    """
    if ethertype == ETHERTYPE_IP:
        if len(data) >= off + 20:
            return data[off + 9]
        return -1
    if ethertype == ETHERTYPE_IPV6:
        if len(data) >= off + 40:
            return ipv6_transport(data, off)[0]
        return -1
    return -1
