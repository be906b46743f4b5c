"""``-e``'s link-level header of SLIP and Apple PKTAP, in tcpdump's words.

Pure module. ``LINK_HEADERS`` print a header in front of what the link decoder found (the
generic printer of ``_link`` calls them): SLIP's direction and packet type (``I ip 84: ``,
``Invalid direction 48 ``). ``pktap_print`` is PKTAP's printer: its header with ``-e``
(``DLT EN10MB (1) len 108, length 182: ``), then the frame inside as its own link type prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..._linktypes import LINKTYPE_NAMES
from ._nd import PRINTERS, Nd

__all__ = ["LINK_HEADERS", "pktap_print"]

_SLIP_HEADER = 16
#: sizeof(pktap_header_t): the shortest header PKTAP's length field may give.
_PKTAP_HEADER = 108
_PKTAP_ETHERNET = 1


def _slip_header(nd: Nd, length: int) -> None:
    """SLIP's pseudo-header: the direction, then ``ip LEN: `` for an IP packet, ``utcp N: ``
    (the connection) for an uncompressed TCP one; after an invalid direction nothing more."""
    nd.need(0, _SLIP_HEADER)
    direction = nd.u8(0)
    if direction in (0, 1):
        nd.put("I " if direction == 0 else "O ")
    else:
        nd.put(f"Invalid direction {direction} ")
    kind = nd.u8(1) & 0xF0
    if kind == 0x40:
        nd.put(f"ip {length}: ")
    elif kind == 0x70:
        nd.put(f"utcp {nd.u8(_SLIP_HEADER + 9)}: ")
    elif direction in (0, 1) and not nd.u8(1) & 0x80:
        nd.put(f"slip-{nd.u8(1)}!: ")


#: Link type -> its ``-e`` header printer ``(nd, wire length)``.
LINK_HEADERS: dict[int, Callable[[Nd, int], None]] = {
    8: _slip_header,
}


def _le32(nd: Nd, pos: int) -> int:
    nd.need(pos, 4)
    return int.from_bytes(nd.data[pos : pos + 4], "little")


def pktap_print(
    nd: Nd,
    length: int,
    interfaces: Mapping[int, str] | None,
    fallback: Callable[[Nd, int, Mapping[int, str] | None], None] | None = None,
) -> None:
    """LINKTYPE_PKTAP: with ``-e`` the header (``DLT NAME (N) len HDRLEN, length LEN: ``, with
    ``-q`` the name alone), then the frame inside: an Ethernet one as Ethernet prints, others
    through ``fallback`` (the generic printer), a record without a packet as ``no data``."""
    nd.proto = "pktap"
    nd.hdrlen = nd.end
    if nd.end < _PKTAP_HEADER:
        nd.trunc()
        return
    hdrlen = _le32(nd, 0)
    if hdrlen < _PKTAP_HEADER or nd.end < hdrlen:
        nd.trunc()
        return
    rectype, dlt = _le32(nd, 4), _le32(nd, 8)
    if nd.opts.link:
        name = "RAW" if dlt in (12, 14) else LINKTYPE_NAMES.get(dlt, ("UNKNOWN", ""))[0]
        if nd.opts.quiet:
            nd.put(f"{name}, length {length}: ")
        else:
            nd.put(f"DLT {name} ({dlt}) len {hdrlen}, length {length}: ")
    nd.hdrlen = hdrlen
    if rectype == 0:
        nd.put("no data")
    elif rectype == 1 and (dlt == _PKTAP_ETHERNET or fallback is not None):
        if dlt == _PKTAP_ETHERNET:
            PRINTERS.ether(nd, hdrlen, length - hdrlen)
        elif fallback is not None:
            fallback(nd, length, interfaces)
        # tcpdump counts the inner link header twice in what -x leaves out; so does this.
        nd.hdrlen += max(0, nd.hdrlen - hdrlen)
