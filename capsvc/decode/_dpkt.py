"""dpkt in capsvc: a frame's layers as dpkt objects (``Packet.decode``), and what dpkt raises on
bytes it cannot parse (for the decoders that read a rare protocol with it).

Pure module (dpkt parses bytes; nothing else). The rule it keeps: capsvc does not parse the
layers a second time here; it only picks dpkt's class for the link type (and, where one link
type carries two framings, which of them the frame uses), and turns dpkt's complaint about a
frame it cannot unpack into a ``DecodeError``. The cheap fields (addresses, ports, protocol)
come from ``_addresses`` without building any object.

Besides dpkt's own ``dpkt.Error`` family (dpkt is imported on first use, so it is not named in
``DPKT_PARSE_ERRORS``), its parsers leak ``struct.error`` and slicing errors on malformed
input, and an ``AttributeError`` from a header class unpacking bytes too short for it (a BGP
UPDATE whose withdrawn route claims more than 32 bits).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache
from typing import Any

from .._errors import DecodeError
from .._packet import LinkType, Packet

__all__ = ["DPKT_LINKTYPES", "DPKT_PARSE_ERRORS", "layers"]

DPKT_PARSE_ERRORS: tuple[type[Exception], ...] = (
    struct.error,
    IndexError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
)

#: The link types ``layers`` decodes.
DPKT_LINKTYPES = frozenset(
    (
        LinkType.ETHERNET,
        LinkType.RAW,
        LinkType.IPV4,
        LinkType.IPV6,
        LinkType.LINUX_SLL,
        LinkType.LINUX_SLL2,
        LinkType.NULL,
        LinkType.LOOP,
        LinkType.PPP,
        LinkType.PPP_HDLC,
        LinkType.IEEE802_11,
        LinkType.IEEE802_11_RADIO,
    )
)


@cache
def _classes() -> dict[int, Callable[[bytes], Any]]:
    """dpkt's decoder of each link type (dpkt is imported on first use)."""
    import dpkt

    def raw(data: bytes) -> Any:
        version = data[0] >> 4 if data else 0
        if version == 4:
            return dpkt.ip.IP(data)
        if version == 6:
            return dpkt.ip6.IP6(data)
        raise DecodeError(f"IP version {version}: a raw IP frame starts with version 4 or 6")

    def ppp(data: bytes) -> Any:
        # libpcap's LINKTYPE_PPP: HDLC-like framing when it starts ff 03, else the bare header.
        if data[:2] == b"\xff\x03":
            return dpkt.ppp.PPP(data)
        return dpkt.pppoe.PPP(data)

    return {
        LinkType.ETHERNET: dpkt.ethernet.Ethernet,
        LinkType.RAW: raw,
        LinkType.IPV4: dpkt.ip.IP,
        LinkType.IPV6: dpkt.ip6.IP6,
        LinkType.LINUX_SLL: dpkt.sll.SLL,
        LinkType.LINUX_SLL2: dpkt.sll2.SLL2,
        LinkType.NULL: dpkt.loopback.Loopback,
        LinkType.LOOP: dpkt.loopback.Loopback,
        LinkType.PPP: ppp,
        LinkType.PPP_HDLC: dpkt.ppp.PPP,
        LinkType.IEEE802_11: dpkt.ieee80211.IEEE80211,
        LinkType.IEEE802_11_RADIO: dpkt.radiotap.Radiotap,
    }


def layers(frame: Packet | bytes, linktype: LinkType | int) -> Any:
    """Decode a frame with dpkt: its outermost layer, the inner ones as its ``data``.

    ``layers(p, LinkType.ETHERNET).data.data.dport`` is a TCP packet's destination port
    (Ethernet, then ``dpkt.ip.IP``, then ``dpkt.tcp.TCP``). dpkt keeps what it does not decode
    as bytes; a truncated inner layer is bytes too, as dpkt leaves it.

    Args:
        frame: a Packet (its ``data``) or the frame's bytes.
        linktype: the frame's link type (a Session's ``linktype``, a source's, a file's).
            ETHERNET -> ``dpkt.ethernet.Ethernet``; RAW -> ``dpkt.ip.IP`` or ``dpkt.ip6.IP6``
            by the version nibble; IPV4, IPV6 likewise; LINUX_SLL, LINUX_SLL2 -> ``dpkt.sll``,
            ``dpkt.sll2``; NULL, LOOP -> ``dpkt.loopback.Loopback``; PPP, PPP_HDLC ->
            ``dpkt.ppp.PPP`` (or ``dpkt.pppoe.PPP`` without HDLC framing); IEEE802_11 and
            IEEE802_11_RADIO -> ``dpkt.ieee80211.IEEE80211``, ``dpkt.radiotap.Radiotap``.

    Returns:
        dpkt's object of the outermost layer.

    Raises:
        capsvc.DecodeError: the frame is too short or malformed for the outermost decoder
            (dpkt's message says why), or dpkt decodes no frames of ``linktype``.
    """
    data = frame.data if isinstance(frame, Packet) else bytes(frame)
    decoder = _classes().get(int(linktype) & 0x03FFFFFF)
    if decoder is None:
        name = LinkType(int(linktype) & 0x03FFFFFF).name
        raise DecodeError(
            f"dpkt has no decoder for link type {name}: read the frame's bytes (packet.data)"
        )
    import dpkt

    try:
        return decoder(data)
    except (dpkt.Error, *DPKT_PARSE_ERRORS) as exc:
        if isinstance(exc, DecodeError):
            raise
        kind = LinkType(int(linktype) & 0x03FFFFFF).name
        raise DecodeError(f"not a {kind} frame dpkt can unpack: {exc}") from exc
