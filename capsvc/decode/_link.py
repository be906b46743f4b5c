"""Link-layer decoding: where the network layer starts in a frame, and which transport it carries.

Pure module (no IO), shared by the text formats, the stats sink and the flow tables so a frame's
layers are found one way only. The rule every link decoder keeps: it never raises and never
copies. It returns ``(ethertype, offset)`` of the network layer, where ``ethertype`` may also be

- ``-1``: the frame is of a kind the link type cannot carry (a bad version nibble, an unknown
  address family);
- ``LINK_TRUNCATED`` (-3): the captured bytes end inside the link header;
- ``LINK_MESSAGE`` (-2): a frame of the link layer's own (802.11 management and control, SLARP,
  PPP control protocols), described by the link type's message formatter;
- ``ETH_P_802_2`` (4): an IEEE 802.3 frame with an LLC header (Linux cooked headers use it).

This module holds the registry (``link_decoder``), the Linux cooked, raw-IP, loopback, IPoIB,
PKTAP and Juniper headers, and the IP helpers; Ethernet and LLC are in ``_ether``, switch tags in
``_dsa``, serial links in ``_wan``, ARCNET in ``_arcnet``, 802.11 in ``_wlan``/``_radiotap``,
NFLOG in ``_nflog``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .._packet import Direction, LinkType
from ._arcnet import decode_arcnet, decode_arcnet_linux
from ._const import ETHERTYPE_IP, ETHERTYPE_IPV6
from ._dsa import decode_brcm, decode_brcm_prepend, decode_dsa, decode_edsa
from ._ether import ETHER_HEADER, LINK_TRUNCATED, decode_ethernet
from ._nflog import decode_nflog
from ._wan import (
    decode_chdlc,
    decode_frelay,
    decode_ppp,
    decode_ppp_hdlc,
    decode_slip,
    slip_direction,
)
from ._wlan import decode_ieee80211, decode_radiotap

__all__ = [
    "ETHER_HEADER",
    "IPOIB_HEADER_LEN",
    "IPV6_EXTENSIONS",
    "LINK_PROTOCOLS",
    "LinkDecoder",
    "cooked_direction",
    "decode_ethernet",
    "decode_null",
    "decode_raw",
    "has_decoder",
    "ipv6_fragment",
    "ipv6_transport",
    "link_decoder",
    "link_direction",
    "link_ifindex",
    "pktap_header",
    "transport_protocol",
]

#: struct sll_header: pkttype, hatype, halen, addr[8], protocol.
SLL_HEADER = struct.Struct("!HHH8sH")
#: struct sll2_header: protocol, reserved, ifindex, hatype, pkttype, halen, addr[8].
SLL2_HEADER = struct.Struct("!HHIHBB8s")
#: IPv6 extension headers walked to find the transport: hop-by-hop, routing, dstopts, AH.
_IPV6_EXT = frozenset((0, 43, 60, 51))
_IPV6_FRAG = 44
#: At most this many IPv6 extension headers are walked (a crafted chain cannot loop long).
_IPV6_EXT_LIMIT = 8
#: The IPv6 next-header values ``ipv6_transport`` walks through: when it returns one of them,
#: the chain ran past the captured bytes (or past its 8-header limit).
IPV6_EXTENSIONS = _IPV6_EXT | {_IPV6_FRAG}
#: BSD address families of IPv6 in DLT_NULL headers (Linux 10, BSDs 24/28/30).
_AF_INET6 = frozenset((10, 24, 28, 30))
#: Linux PACKET_OUTGOING in a cooked header's packet type.
_PACKET_OUTGOING = 4
#: LINKTYPE_IPOIB: a 40-byte pseudo-header of hardware addresses, the ethertype, 2 reserved.
IPOIB_HEADER_LEN = 44
#: Juniper's "MGC" magic and the flag saying an extension TLV block follows it.
_JUNIPER_MAGIC = b"MGC"
_JUNIPER_EXT = 0x80
_JUNIPER_NO_L2 = 0x02
#: Apple PKTAP: the link types its pth_dlt may name (DLT values, as macOS writes them).
_PKTAP_DLTS = {0: LinkType.NULL, 1: LinkType.ETHERNET, 12: LinkType.RAW, 14: LinkType.RAW}
_U32LE = struct.Struct("<I").unpack_from
#: Link types decoded here that LinkType has no member for (members are made on first use).
_ARCNET = 7
_ARCNET_LINUX = 129
_JUNIPER_ETHER = 178

_NONE = (-1, 0)
_CUT = (LINK_TRUNCATED, 0)
_IP4 = (ETHERTYPE_IP, 0)
_IP6 = (ETHERTYPE_IPV6, 0)

LinkDecoder = Callable[[bytes], tuple[int, int]]


def decode_sll(data: bytes) -> tuple[int, int]:
    """Decode a Linux cooked v1 header (16 bytes, protocol at 14)."""
    if len(data) < 16:
        return _CUT
    return data[14] << 8 | data[15], 16


def decode_sll2(data: bytes) -> tuple[int, int]:
    """Decode a Linux cooked v2 header (20 bytes, protocol first)."""
    if len(data) < 20:
        return _CUT
    return data[0] << 8 | data[1], 20


def decode_raw(data: bytes) -> tuple[int, int]:
    """Decode a bare IP packet (LINKTYPE_RAW): the version nibble says IPv4 or IPv6."""
    if not data:
        return _CUT
    version = data[0] >> 4
    if version == 4:
        return _IP4
    if version == 6:
        return _IP6
    return _NONE


def decode_ipv4(data: bytes) -> tuple[int, int]:
    """Decode LINKTYPE_IPV4: an IPv4 packet, nothing else."""
    if not data:
        return _CUT
    return _IP4 if data[0] >> 4 == 4 else _NONE


def decode_ipv6(data: bytes) -> tuple[int, int]:
    """Decode LINKTYPE_IPV6: an IPv6 packet, nothing else."""
    if not data:
        return _CUT
    return _IP6 if data[0] >> 4 == 6 else _NONE


def decode_null(data: bytes) -> tuple[int, int]:
    """Decode a BSD loopback header (LINKTYPE_NULL): a 4-byte address family in the capturing
    host's byte order, told apart by which half of the word is zero."""
    if len(data) < 4:
        return _CUT
    family = data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24
    if family > 0xFFFF:
        family = data[3] | data[2] << 8 | data[1] << 16 | data[0] << 24
    return _family(family)


def decode_loop(data: bytes) -> tuple[int, int]:
    """Decode an OpenBSD loopback header (LINKTYPE_LOOP): the family in network byte order."""
    if len(data) < 4:
        return _CUT
    return _family(data[3] | data[2] << 8 | data[1] << 16 | data[0] << 24)


def _family(family: int) -> tuple[int, int]:
    if family == 2:
        return ETHERTYPE_IP, 4
    if family in _AF_INET6:
        return ETHERTYPE_IPV6, 4
    return _NONE


def decode_ipoib(data: bytes) -> tuple[int, int]:
    """LINKTYPE_IPOIB (RFC 4391): the 44-byte pseudo-header, its ethertype at offset 40."""
    if len(data) < IPOIB_HEADER_LEN:
        return _CUT
    return data[40] << 8 | data[41], IPOIB_HEADER_LEN


def decode_juniper_ether(data: bytes) -> tuple[int, int]:
    """LINKTYPE_JUNIPER_ETHER: Juniper's ``MGC`` + flags header (and extension TLVs when flagged),
    then an Ethernet frame, or bare IP when the no-L2 flag is set."""
    if len(data) < 4:
        return _CUT
    if data[:3] != _JUNIPER_MAGIC:
        return _NONE
    flags = data[3]
    pos = 4
    if flags & _JUNIPER_EXT:
        if len(data) < 6:
            return _CUT
        pos = 6 + (data[4] << 8 | data[5])
    return _shifted(decode_raw if flags & _JUNIPER_NO_L2 else decode_ethernet, data, pos)


def pktap_header(data: bytes) -> tuple[int, int, str] | None:
    """Apple PKTAP: ``(header length, inner DLT, interface name)`` (little-endian, as macOS
    writes it); None when the header is not all there."""
    if len(data) < 36:
        return None
    length = _U32LE(data, 0)[0]
    if length < 36 or len(data) < length:
        return None
    name = data[12:36].split(b"\0", 1)[0].decode("ascii", "replace")
    return length, _U32LE(data, 8)[0], name


def decode_pktap(data: bytes) -> tuple[int, int]:
    """LINKTYPE_PKTAP: Apple's packet-tap header, then a frame of the link type it names."""
    header = pktap_header(data)
    if header is None:
        return _CUT
    inner = _PKTAP_DLTS.get(header[1])
    if inner is None:
        return _NONE
    return _shifted(_DECODERS[inner], data, header[0])


def _shifted(decode: LinkDecoder, data: bytes, pos: int) -> tuple[int, int]:
    """Run ``decode`` on the frame inside ``data`` at ``pos`` and give its offset in ``data``.

    Copies the inner frame: only link types with a header in front of another link type
    (Juniper, PKTAP) come here, never the common ones."""
    ethertype, off = decode(data[pos:])
    return (ethertype, off + pos) if ethertype >= 0 else (ethertype, 0)


def decode_unknown(data: bytes) -> tuple[int, int]:
    """The decoder of a link type capsvc does not decode: every frame is unknown."""
    return _NONE


_DECODERS: dict[int, LinkDecoder] = {
    LinkType.NULL: decode_null,
    LinkType.ETHERNET: decode_ethernet,
    _ARCNET: decode_arcnet,
    LinkType.SLIP: decode_slip,
    LinkType.PPP: decode_ppp,
    LinkType.PPP_HDLC: decode_ppp_hdlc,
    LinkType.RAW: decode_raw,
    LinkType.C_HDLC: decode_chdlc,
    LinkType.IEEE802_11: decode_ieee80211,
    LinkType.FRELAY: decode_frelay,
    LinkType.LOOP: decode_loop,
    LinkType.LINUX_SLL: decode_sll,
    LinkType.IEEE802_11_RADIO: decode_radiotap,
    _ARCNET_LINUX: decode_arcnet_linux,
    _JUNIPER_ETHER: decode_juniper_ether,
    LinkType.IPV4: decode_ipv4,
    LinkType.IPV6: decode_ipv6,
    LinkType.NFLOG: decode_nflog,
    LinkType.IPOIB: decode_ipoib,
    LinkType.PKTAP: decode_pktap,
    LinkType.LINUX_SLL2: decode_sll2,
    LinkType.DSA_TAG_BRCM: decode_brcm,
    LinkType.DSA_TAG_BRCM_PREPEND: decode_brcm_prepend,
    LinkType.DSA_TAG_DSA: decode_dsa,
    LinkType.DSA_TAG_EDSA: decode_edsa,
}

#: Link type -> the protocol name of its truncation marker (``[|ether]``), after tcpdump.
LINK_PROTOCOLS: dict[int, str] = {
    LinkType.NULL: "null",
    LinkType.ETHERNET: "ether",
    _ARCNET: "arcnet",
    LinkType.SLIP: "slip",
    LinkType.PPP: "ppp",
    LinkType.PPP_HDLC: "ppp",
    LinkType.RAW: "ip",
    LinkType.C_HDLC: "chdlc",
    LinkType.IEEE802_11: "802.11",
    LinkType.FRELAY: "fr",
    LinkType.LOOP: "loop",
    LinkType.LINUX_SLL: "sll",
    LinkType.IEEE802_11_RADIO: "802.11_radio",
    _ARCNET_LINUX: "arcnet_linux",
    _JUNIPER_ETHER: "juniper",
    LinkType.IPV4: "ip",
    LinkType.IPV6: "ip6",
    LinkType.NFLOG: "nflog",
    LinkType.IPOIB: "ipoib",
    LinkType.PKTAP: "pktap",
    LinkType.LINUX_SLL2: "sll2",
    LinkType.DSA_TAG_BRCM: "brcm-tag",
    LinkType.DSA_TAG_BRCM_PREPEND: "brcm-tag-prepend",
    LinkType.DSA_TAG_DSA: "dsa",
    LinkType.DSA_TAG_EDSA: "edsa",
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


def has_decoder(linktype: int) -> bool:
    """Whether capsvc decodes frames of ``linktype`` (else lines name the link type only)."""
    return (linktype & 0x03FFFFFF) in _DECODERS


def link_direction(linktype: int, data: bytes) -> int:
    """The direction the link header records: Linux cooked headers' packet type, SLIP's
    direction byte; 0 (unknown) for link types that carry none or a frame too short."""
    linktype &= 0x03FFFFFF
    if linktype == LinkType.SLIP:
        return slip_direction(data)
    return cooked_direction(linktype, data) or 0


def link_ifindex(linktype: int, data: bytes) -> int | None:
    """The interface index the link header carries (LINUX_SLL2), or None."""
    if (linktype & 0x03FFFFFF) == LinkType.LINUX_SLL2 and len(data) >= 8:
        return int.from_bytes(data[4:8], "big")
    return None


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


def ipv6_fragment(data: bytes, off: int) -> tuple[int, int, bool] | None:
    """The fragment header of the IPv6 packet at ``off``: ``(identification, offset in bytes,
    more fragments)``, or None when it has none or it is not captured."""
    nh = data[off + 6] if len(data) > off + 6 else -1
    pos = off + 40
    n = len(data)
    for _ in range(_IPV6_EXT_LIMIT):
        if nh == _IPV6_FRAG:
            if pos + 8 > n:
                return None
            word = data[pos + 2] << 8 | data[pos + 3]
            return int.from_bytes(data[pos + 4 : pos + 8], "big"), word & 0xFFF8, bool(word & 1)
        if nh not in _IPV6_EXT or pos + 2 > n:
            return None
        size = (data[pos + 1] + 2) * 4 if nh == 51 else (data[pos + 1] + 1) * 8
        nh = data[pos]
        pos += size
    return None


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
