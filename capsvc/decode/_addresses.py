"""Who sent a frame to whom: its IP addresses and, for TCP and UDP, its ports.

Pure module (no IO), used by the conversation and series sinks. The rule it keeps: one function
reads the addresses of a frame of any link type capsvc decodes, through ``_link``'s decoders, and
never raises: a frame that is not IP, or whose IP header is cut short, has no addresses (None).
A header is read as tshark's IP dissectors accept it: version 4 with a header length of at least
20 bytes, or version 6 with its 40 bytes captured. Ports come from the first bytes of a TCP or
UDP header, in a packet that is not a later fragment (a first fragment carries the ports, later
ones do not) and whose transport header is whole as tshark's dissectors want it: a TCP header's
20 bytes captured and a header length of at least 20, a UDP header's 8 bytes captured and a
length of at least 8, an IPv6 packet with a payload length (0 is a jumbogram only behind a
hop-by-hop header). A packet whose transport header fails these still has its addresses.

``addresses`` is the same reading for applications (``Packet.addresses``), as an ``Endpoints``.
"""

from __future__ import annotations

from .._packet import Endpoints, LinkType, Packet
from ._const import ETHERTYPE_IP, ETHERTYPE_IPV6, IPPROTO_TCP, IPPROTO_UDP
from ._link import LinkDecoder, ipv6_transport, link_decoder

__all__ = ["NO_PORT", "Addresses", "Endpoints", "addresses", "frame_addresses"]

#: The port of a packet without a TCP or UDP header.
NO_PORT = -1

#: IPv6's hop-by-hop options header, which carries a jumbogram's length.
_HOP_BY_HOP = 0

#: ``(src, dst, protocol, sport, dport)``: the addresses as 4 or 16 bytes, the IP protocol
#: number of the transport, and the ports (``NO_PORT`` unless TCP or UDP).
Addresses = tuple[bytes, bytes, int, int, int]


def _ports(data: bytes, proto: int, l4: int) -> tuple[int, int] | None:
    """The ports of a whole TCP or UDP header at ``l4``, else None."""
    n = len(data)
    if proto == IPPROTO_TCP:
        if n < l4 + 20 or data[l4 + 12] < 0x50:
            return None
    elif proto == IPPROTO_UDP:
        if n < l4 + 8 or (data[l4 + 4] << 8 | data[l4 + 5]) < 8:
            return None
    else:
        return None
    return data[l4] << 8 | data[l4 + 1], data[l4 + 2] << 8 | data[l4 + 3]


def frame_addresses(data: bytes, decode: LinkDecoder) -> Addresses | None:
    """The addresses of one frame.

    Args:
        data: the frame, of the link type ``decode`` reads.
        decode: the link type's decoder (``capsvc.decode._link.link_decoder``).

    Returns:
        ``(src, dst, protocol, sport, dport)``, or None when the frame carries no IP header
        capsvc can read (another protocol, a bogus version or header length, too few bytes).
    """
    ethertype, off = decode(data)
    n = len(data)
    if ethertype == ETHERTYPE_IP:
        if n < off + 20:
            return None
        first = data[off]
        ihl = (first & 0x0F) * 4
        if first >> 4 != 4 or ihl < 20:
            return None
        proto = data[off + 9]
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        later_fragment = (data[off + 6] & 0x1F) | data[off + 7]
        ports = None if later_fragment else _ports(data, proto, off + ihl)
        if ports is None:
            return src, dst, proto, NO_PORT, NO_PORT
        return src, dst, proto, ports[0], ports[1]
    if ethertype == ETHERTYPE_IPV6:
        if n < off + 40 or data[off] >> 4 != 6:
            return None
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        proto, l4, fragment = ipv6_transport(data, off)
        empty = data[off + 4] == 0 and data[off + 5] == 0 and data[off + 6] != _HOP_BY_HOP
        ports = None if fragment == 2 or empty else _ports(data, proto, l4)
        if ports is None:
            return src, dst, proto, NO_PORT, NO_PORT
        return src, dst, proto, ports[0], ports[1]
    return None


_new_endpoints = tuple.__new__


def addresses(frame: Packet | bytes, linktype: LinkType | int) -> Endpoints | None:
    """The addresses, protocol and ports of a frame, read in place (no object per layer).

    The same reading the conversation and series sinks use (see the module's rules): any link
    type capsvc decodes, IPv4 and IPv6 (the transport found past extension headers), ports for
    TCP and UDP. Never raises.

    Args:
        frame: a Packet (its ``data``) or the frame's bytes.
        linktype: the frame's link type.

    Returns:
        The ``Endpoints``, or None when the frame carries no IP header capsvc can read.
    """
    data = frame[1] if isinstance(frame, Packet) else frame
    found = frame_addresses(data, link_decoder(int(linktype)))
    return None if found is None else _new_endpoints(Endpoints, found)
