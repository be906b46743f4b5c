"""Ethernet: the frame header, VLAN tags and LLC/SNAP, shared by every link type carrying it.

Pure module (no IO). The rule it keeps, as every link decoder: never raise, never copy; return
``(ethertype, offset)`` of the network layer, ``(-1, 0)`` when the frame is of a kind the link
type cannot carry and ``(LINK_TRUNCATED, 0)`` when it ends inside the link header.
``decode_ethernet`` is the per-packet hot path of the text log and the stats sink: it stays a
flat function with no calls.
"""

from __future__ import annotations

import struct

from ._const import ETH_P_802_2, VLAN_TPIDS

__all__ = [
    "ETHER_HEADER",
    "LINK_TRUNCATED",
    "decode_ethernet",
    "ethertype_at",
    "llc_snap",
]

_VLAN_TPIDS = frozenset(VLAN_TPIDS)
#: struct ether_header: dst, src, type.
ETHER_HEADER = struct.Struct("!6s6sH")
#: The ethertype a link decoder returns for a frame that ends inside its link header.
LINK_TRUNCATED = -3

_NONE = (-1, 0)
_CUT = (LINK_TRUNCATED, 0)


def decode_ethernet(data: bytes) -> tuple[int, int]:
    """Decode an Ethernet II / 802.3 frame, skipping any 802.1Q/802.1ad tags.

    Args:
        data: the frame from the destination MAC on.

    Returns:
        ``(ethertype, offset)``; an LLC/SNAP frame with a zero OUI reports the ethertype inside the
        SNAP header, any other LLC frame ``ETH_P_802_2``; ``(LINK_TRUNCATED, 0)`` when the frame
        ends inside the header or a tag.
    """
    n = len(data)
    if n < 14:
        return _CUT
    et = data[12] << 8 | data[13]
    off = 14
    while et in _VLAN_TPIDS:
        if n < off + 4:
            return _CUT
        et = data[off + 2] << 8 | data[off + 3]
        off += 4
    if et < 0x0600:
        return llc_snap(data, off)
    return et, off


def ethertype_at(data: bytes, off: int) -> tuple[int, int]:
    """Decode from an Ethernet type/length field at ``off`` on (after MACs and any switch tag):
    VLAN tags, then LLC/SNAP as ``decode_ethernet`` does."""
    n = len(data)
    if n < off + 2:
        return _CUT
    et = data[off] << 8 | data[off + 1]
    off += 2
    while et in _VLAN_TPIDS:
        if n < off + 4:
            return _CUT
        et = data[off + 2] << 8 | data[off + 3]
        off += 4
    if et < 0x0600:
        return llc_snap(data, off)
    return et, off


def llc_snap(data: bytes, off: int) -> tuple[int, int]:
    """Decode an 802.2 LLC header at ``off``: SNAP with a zero OUI (RFC 1042) or Cisco's
    (00:00:f8, 802.1H bridge tunnel) gives the ethertype inside; any other LLC frame
    ``ETH_P_802_2`` at ``off``; a SNAP header (or an LLC header) the capture cuts,
    ``LINK_TRUNCATED``."""
    n = len(data)
    if n < off + 3:
        return _CUT if n == off or data[off] == 0xAA else (ETH_P_802_2, off)
    if data[off] == 0xAA and data[off + 1] == 0xAA and data[off + 2] == 3:
        if n < off + 8:
            return _CUT
        if data[off + 3] == data[off + 4] == 0 and data[off + 5] in (0, 0xF8):
            return data[off + 6] << 8 | data[off + 7], off + 8
    return ETH_P_802_2, off
