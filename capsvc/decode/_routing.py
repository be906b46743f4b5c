"""Routing protocols: OSPF (v2 and v3) headers and BGP message summaries.

Pure module (no IO); nothing here raises. ``ospf_header`` reads the common OSPF header by hand
(a fixed 16 bytes: one slice). ``bgp_messages`` splits a TCP payload into BGP messages by their
own length fields and reads each message's body with dpkt's BGP parser (OPEN parameters, UPDATE
withdrawn routes, path attributes and NLRI, NOTIFICATION codes), which knows more of BGP's
corners than is worth writing again; a message cut short by the capture, or one dpkt cannot
parse, gives its type and ``truncated``/``malformed`` instead of a body.
"""

from __future__ import annotations

import struct
from socket import inet_ntoa
from typing import NamedTuple

from ._dpkt import DPKT_PARSE_ERRORS

__all__ = [
    "BGP_TYPES",
    "OSPF_TYPES",
    "BgpMessage",
    "OspfHeader",
    "bgp_messages",
    "ospf_header",
]

OSPF_TYPES = {1: "Hello", 2: "Database Description", 3: "LS-Request", 4: "LS-Update", 5: "LS-Ack"}
BGP_TYPES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}
_BGP_MARKER = b"\xff" * 16
_BGP_HEADER = 19
#: At most this many BGP messages of one segment are read.
_BGP_MAX_MESSAGES = 16


class OspfHeader(NamedTuple):
    """The common OSPF header: ``version`` 2 or 3, packet ``type``, ``length``, router and area
    IDs as dotted quads."""

    version: int
    type: int
    length: int
    router: str
    area: str


class BgpMessage(NamedTuple):
    """One BGP message. OPEN fills ``version``, ``asn``, ``hold`` and ``identifier``; UPDATE
    ``withdrawn`` and ``announced`` (IPv4 prefixes as ``a.b.c.d/n``) and ``attributes`` (their
    type codes); NOTIFICATION ``code`` and ``subcode``. ``truncated``: the capture ends inside
    the message; ``malformed``: its bytes are not a valid body."""

    type: int
    length: int
    version: int | None = None
    asn: int | None = None
    hold: int | None = None
    identifier: str | None = None
    withdrawn: tuple[str, ...] = ()
    announced: tuple[str, ...] = ()
    attributes: tuple[int, ...] = ()
    code: int | None = None
    subcode: int | None = None
    truncated: bool = False
    malformed: bool = False


def ospf_header(data: bytes, pos: int, end: int) -> OspfHeader | None:
    """Read the OSPF header at ``pos``; None when its 12 identifying bytes are not all there."""
    if end - pos < 12:
        return None
    return OspfHeader(
        version=data[pos],
        type=data[pos + 1],
        length=data[pos + 2] << 8 | data[pos + 3],
        router=inet_ntoa(data[pos + 4 : pos + 8]),
        area=inet_ntoa(data[pos + 8 : pos + 12]),
    )


def _prefix(route: object) -> str:
    length = int(getattr(route, "len", 0))
    raw = bytes(getattr(route, "prefix", b""))[:4].ljust(4, b"\0")
    return f"{inet_ntoa(raw)}/{length}"


def _body(kind: int, length: int, raw: bytes) -> BgpMessage:
    """Parse one complete message (header included) with dpkt."""
    import dpkt.bgp  # imported on first use: BGP is rare and dpkt is slow to import

    try:
        msg = dpkt.bgp.BGP(raw)
        if kind == 1:
            body = msg.open
            return BgpMessage(kind, length, version=body.v, asn=body.asn, hold=body.holdtime,
                              identifier=inet_ntoa(struct.pack("!I", body.identifier)))  # fmt: skip
        if kind == 2:
            body = msg.update
            return BgpMessage(
                kind,
                length,
                withdrawn=tuple(_prefix(r) for r in body.withdrawn),
                announced=tuple(_prefix(r) for r in body.announced),
                attributes=tuple(int(a.type) for a in body.attributes),
            )
        if kind == 3:
            body = msg.notification
            return BgpMessage(kind, length, code=body.code, subcode=body.subcode)
    except (dpkt.Error, *DPKT_PARSE_ERRORS):
        return BgpMessage(kind, length, malformed=True)
    return BgpMessage(kind, length)


def bgp_messages(data: bytes, pos: int, end: int) -> tuple[list[BgpMessage], bool] | None:
    """The BGP messages in ``data[pos:end]`` and whether the capture cut the segment inside a
    message header; None when the payload does not start with a BGP marker (a segment
    continuing an earlier message)."""
    if end - pos < 16 or data[pos : pos + 16] != _BGP_MARKER:
        return None
    found: list[BgpMessage] = []
    for _ in range(_BGP_MAX_MESSAGES):
        if pos >= end:
            return found, False
        if end - pos < _BGP_HEADER:
            return found, True
        if data[pos : pos + 16] != _BGP_MARKER:
            return found, False
        length = data[pos + 16] << 8 | data[pos + 17]
        kind = data[pos + 18]
        if length < _BGP_HEADER:
            found.append(BgpMessage(kind, length, malformed=True))
            return found, False
        if pos + length > end:
            found.append(BgpMessage(kind, length, truncated=True))
            return found, False
        if kind in (1, 2, 3):
            found.append(_body(kind, length, data[pos : pos + length]))
        else:
            found.append(BgpMessage(kind, length))
        pos += length
    return found, False
