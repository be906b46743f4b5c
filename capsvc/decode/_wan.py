"""Serial and WAN link types: PPP, PPP in HDLC framing, Cisco HDLC, SLIP, Frame Relay.

Pure module (no IO). Link decoders (``decode_*``) return ``(ethertype, offset)`` of the network
layer and never raise: the protocol numbers of PPP, Cisco HDLC and Frame Relay's NLPIDs are mapped
onto ethertypes (IP, IPv6, IPX, MPLS, ``ETHERTYPE_OSI`` for IS-IS and CLNP), the link layers' own
messages (PPP's control protocols, SLARP, CDP, Q.933) return ``LINK_MESSAGE`` and a frame that
ends inside its link header ``LINK_TRUNCATED``. Field readers (``ppp_header``, ``ppp_control``,
``slarp``, ``chdlc_header``, ``frelay_header``) return NamedTuples, or None when the bytes are not
all there, for the text formats.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ._const import (
    CHDLC_BCAST,
    CHDLC_CDP,
    CHDLC_SLARP,
    CHDLC_UNICAST,
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    ETHERTYPE_IPX,
    ETHERTYPE_MPLS,
    ETHERTYPE_OSI,
    LINK_MESSAGE,
    NLPID_CLNP,
    NLPID_ESIS,
    NLPID_IP,
    NLPID_IPV6,
    NLPID_ISIS,
    NLPID_SNAP,
    PPP_IP,
    PPP_IPV6,
    PPP_IPX,
    PPP_MPLS,
    PPP_OSI,
)
from ._ether import LINK_TRUNCATED

__all__ = [
    "SLIP_HEADER_LEN",
    "ChdlcHeader",
    "FrelayHeader",
    "PppControl",
    "PppHeader",
    "Slarp",
    "chdlc_header",
    "decode_chdlc",
    "decode_frelay",
    "decode_ppp",
    "decode_ppp_hdlc",
    "decode_slip",
    "frelay_header",
    "ppp_control",
    "ppp_header",
    "slarp",
    "slip_direction",
]

_CUT = (LINK_TRUNCATED, 0)
_MSG = (LINK_MESSAGE, 0)
_NONE = (-1, 0)
_U32 = struct.Struct("!I").unpack_from

#: PPP protocol -> the ethertype of what it carries (the rest are PPP's own messages).
_PPP_ETHERTYPES = {
    PPP_IP: ETHERTYPE_IP,
    PPP_IPV6: ETHERTYPE_IPV6,
    PPP_IPX: ETHERTYPE_IPX,
    PPP_MPLS: ETHERTYPE_MPLS,
    PPP_OSI: ETHERTYPE_OSI,
}
#: Cisco HDLC protocols that are the link layer's own messages.
_CHDLC_MESSAGES = frozenset((CHDLC_SLARP, CHDLC_CDP))
#: LINKTYPE_SLIP's pseudo-header: a direction byte and the 15 bytes of a CSLIP header.
SLIP_HEADER_LEN = 16


class PppHeader(NamedTuple):
    """A PPP frame's header: ``protocol`` and where its information field starts."""

    protocol: int
    payload: int


class PppControl(NamedTuple):
    """The header of a PPP control protocol packet (LCP, IPCP, PAP, CHAP, ...)."""

    code: int
    ident: int
    length: int


class ChdlcHeader(NamedTuple):
    """A Cisco HDLC header: address (0x0f unicast, 0x8f broadcast), protocol, payload offset."""

    address: int
    protocol: int
    payload: int


class Slarp(NamedTuple):
    """A Cisco SLARP message: ``code`` 0 request, 1 reply (``address``/``mask`` set), 2 keepalive
    (``mine``, ``yours``, ``reliability`` set; ``uptime_ms`` when the message carries it)."""

    code: int
    address: bytes
    mask: bytes
    mine: int
    yours: int
    reliability: int
    uptime_ms: int | None


class FrelayHeader(NamedTuple):
    """A Frame Relay (Q.922) header: the DLCI, the FECN/BECN/DE bits, and what follows: an
    NLPID after the UI control byte (``nlpid`` set, ``ethertype`` None) or Cisco's ethertype."""

    dlci: int
    fecn: bool
    becn: bool
    de: bool
    nlpid: int | None
    ethertype: int | None
    payload: int


def ppp_header(data: bytes, off: int = 0) -> PppHeader | None:
    """Read a PPP header at ``off``: optional address/control ``ff 03``, then a 1-byte
    (compressed, odd) or 2-byte protocol. None when the frame ends inside it."""
    n = len(data)
    if n == off + 1 and data[off] == 0xFF:
        return None  # the address byte, its control byte cut
    if n >= off + 2 and data[off] == 0xFF and data[off + 1] == 0x03:
        off += 2
    if n < off + 1:
        return None
    if data[off] & 1:
        return PppHeader(data[off], off + 1)
    if n < off + 2:
        return None
    return PppHeader(data[off] << 8 | data[off + 1], off + 2)


def ppp_control(data: bytes, off: int) -> PppControl | None:
    """Read the code/identifier/length header of a PPP control packet at ``off``."""
    if len(data) < off + 4:
        return None
    return PppControl(data[off], data[off + 1], data[off + 2] << 8 | data[off + 3])


def _ppp_payload(header: PppHeader | None) -> tuple[int, int]:
    if header is None:
        return _CUT
    ethertype = _PPP_ETHERTYPES.get(header.protocol)
    if ethertype is None:
        return _MSG
    return ethertype, header.payload


def decode_ppp(data: bytes) -> tuple[int, int]:
    """LINKTYPE_PPP: a PPP frame, with or without the ``ff 03`` address and control bytes."""
    return _ppp_payload(ppp_header(data))


def chdlc_header(data: bytes, off: int = 0) -> ChdlcHeader | None:
    """Read a Cisco HDLC header at ``off``; None when the frame ends inside it."""
    if len(data) < off + 4:
        return None
    return ChdlcHeader(data[off], data[off + 2] << 8 | data[off + 3], off + 4)


def _chdlc_payload(data: bytes, off: int) -> tuple[int, int]:
    header = chdlc_header(data, off)
    if header is None:
        return _CUT
    protocol, pos = header.protocol, header.payload
    if protocol in _CHDLC_MESSAGES:
        return _MSG
    if protocol == ETHERTYPE_OSI:
        # Cisco puts a padding byte before the OSI PDU unless the NLPID comes first.
        if len(data) <= pos + 1:
            return _CUT
        if data[pos] not in (NLPID_CLNP, NLPID_ESIS, NLPID_ISIS):
            pos += 1
        return ETHERTYPE_OSI, pos
    return protocol, pos


def decode_chdlc(data: bytes) -> tuple[int, int]:
    """LINKTYPE_C_HDLC: address, control, then an ethertype or a Cisco protocol number."""
    return _chdlc_payload(data, 0)


def decode_ppp_hdlc(data: bytes) -> tuple[int, int]:
    """LINKTYPE_PPP_HDLC (PPP_SERIAL): PPP in HDLC-like framing (``ff 03``) or, as on Cisco
    serial links, a Cisco HDLC frame (address 0x0f/0x8f)."""
    if not data:
        return _CUT
    if data[0] == 0xFF:
        if len(data) < 4:
            return _CUT
        return _ppp_payload(PppHeader(data[2] << 8 | data[3], 4))
    if data[0] in (CHDLC_UNICAST, CHDLC_BCAST):
        return _chdlc_payload(data, 0)
    return _NONE


def slarp(data: bytes, off: int) -> Slarp | None:
    """Read a SLARP message at ``off`` (14 bytes, 18 with the keepalive's uptime)."""
    n = len(data)
    if n < off + 14:
        return None
    code = _U32(data, off)[0]
    a, b = data[off + 4 : off + 8], data[off + 8 : off + 12]
    uptime = _U32(data, off + 14)[0] if n >= off + 18 else None
    return Slarp(
        code=code,
        address=a,
        mask=b,
        mine=_U32(a)[0],
        yours=_U32(b)[0],
        reliability=data[off + 12] << 8 | data[off + 13],
        uptime_ms=uptime,
    )


def decode_slip(data: bytes) -> tuple[int, int]:
    """LINKTYPE_SLIP: the 16-byte pseudo-header, then an IP packet (its version nibble says
    which; a CSLIP-compressed TCP/IP header is the link layer's own message)."""
    if len(data) <= SLIP_HEADER_LEN:
        return _CUT
    version = data[SLIP_HEADER_LEN] >> 4
    if version == 4:
        return ETHERTYPE_IP, SLIP_HEADER_LEN
    if version == 6:
        return ETHERTYPE_IPV6, SLIP_HEADER_LEN
    return _MSG


def slip_direction(data: bytes) -> int:
    """The direction in a SLIP pseudo-header: 1 (inbound) for byte 0, 2 (outbound) for byte 1,
    0 (unknown) otherwise."""
    if not data:
        return 0
    return {0: 1, 1: 2}.get(data[0], 0)


def frelay_header(data: bytes, off: int = 0) -> FrelayHeader | None:
    """Read a Frame Relay header at ``off``: a 2- to 4-byte Q.922 address (its EA bits say how
    long), then the UI byte and an NLPID (a zero padding byte skipped), or Cisco's 2-byte
    ethertype. None when the frame ends inside it or the address never ends."""
    n = len(data)
    pos = off
    for size in (2, 3, 4):
        if n < off + size:
            return None
        if data[off + size - 1] & 1:
            pos = off + size
            break
    else:
        return None
    b0, b1 = data[off], data[off + 1]
    dlci = (b0 >> 2) << 4 | b1 >> 4
    if pos - off == 3:
        dlci = dlci << 6 | data[off + 2] >> 2
    elif pos - off == 4:
        dlci = (dlci << 7 | data[off + 2] >> 1) << 6 | data[off + 3] >> 2
    fecn, becn, de = bool(b1 & 8), bool(b1 & 4), bool(b1 & 2)
    if n < pos + 2:
        return None
    if data[pos] == 0x03:
        pos += 1
        if data[pos] == 0 and n > pos + 1:
            pos += 1
        return FrelayHeader(dlci, fecn, becn, de, data[pos], None, pos + 1)
    return FrelayHeader(dlci, fecn, becn, de, None, data[pos] << 8 | data[pos + 1], pos + 2)


def decode_frelay(data: bytes) -> tuple[int, int]:
    """LINKTYPE_FRELAY: Q.922 address, then NLPID-identified (RFC 2427) or Cisco-encapsulated
    payload. SNAP with a zero OUI gives the ethertype inside; Q.933 signalling is a message."""
    header = frelay_header(data)
    if header is None:
        return _CUT
    if header.ethertype is not None:
        return header.ethertype, header.payload
    nlpid, pos = header.nlpid, header.payload
    if nlpid == NLPID_IP:
        return ETHERTYPE_IP, pos
    if nlpid == NLPID_IPV6:
        return ETHERTYPE_IPV6, pos
    if nlpid in (NLPID_CLNP, NLPID_ESIS, NLPID_ISIS):
        return ETHERTYPE_OSI, pos - 1
    if nlpid == NLPID_SNAP:
        if len(data) < pos + 5:
            return _CUT
        if data[pos] == data[pos + 1] == data[pos + 2] == 0:
            return data[pos + 3] << 8 | data[pos + 4], pos + 5
        return _MSG
    return _MSG
