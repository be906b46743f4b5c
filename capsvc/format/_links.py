"""Text of the link layers' own messages (SLARP, CDP, PPP control protocols, Q.933, NFLOG without
a packet, CSLIP), of OSI PDUs (IS-IS) and of link types capsvc does not decode.

Pure module. ``link_message(linktype)`` gives the function that describes a frame its link
decoder returned ``LINK_MESSAGE`` for: ``(data, wire_len, verbose) -> (tag name, text)``. Words
follow tcpdump's where it has them (``SLARP (length: 20), keepalive: mineseen=0x00000005, ...``,
``LCP, Conf-Request (0x01), id 1, length 14``, ``IS-IS, p2p IIH, src-id 1111.1111.1111, length
1499``). Nothing here raises; a message cut short ends with ``[|proto]``.
"""

from __future__ import annotations

from collections.abc import Callable
from socket import inet_ntoa

from .._packet import LinkType
from ..decode._arcnet import ArcnetHeader, arcnet_header, arcnet_linux_header
from ..decode._const import CHDLC_CDP, CHDLC_SLARP, NLPID_ISIS, NLPID_Q933
from ..decode._nflog import nflog_fields
from ..decode._osi import ISIS_PDU_NAMES, NLPID_NAMES, isis_pdu, system_id
from ..decode._wan import (
    SLIP_HEADER_LEN,
    chdlc_header,
    frelay_header,
    ppp_control,
    ppp_header,
    slarp,
)
from ._wlan import wlan_message, wlan_radio_message

__all__ = ["LinkMessage", "link_message", "osi_text", "unknown_link_text"]

LinkMessage = Callable[[bytes, int, bool], tuple[str, str]]

#: PPP control protocols: number -> (name, whether its codes are LCP-style).
_PPP_CONTROL = {
    0xC021: "LCP",
    0x8021: "IPCP",
    0x8057: "IP6CP",
    0x80FD: "CCP",
    0x8029: "ATCP",
    0x802B: "IPXCP",
    0x8281: "MPLSCP",
    0xC023: "PAP",
    0xC223: "CHAP",
    0xC025: "LQR",
    0xC029: "CBCP",
    0xC227: "EAP",
    0x8207: "CDPCP",
    0x0201: "802.1d Hello",
}
_LCP_CODES = {
    1: "Conf-Request",
    2: "Conf-Ack",
    3: "Conf-Nak",
    4: "Conf-Reject",
    5: "Term-Request",
    6: "Term-Ack",
    7: "Code-Reject",
    8: "Prot-Reject",
    9: "Echo-Request",
    10: "Echo-Reply",
    11: "Discard-Request",
    12: "Ident",
    13: "Time-Remain",
    14: "Reset-Req",
    15: "Reset-Ack",
}
_PAP_CODES = {1: "Auth-Req", 2: "Auth-ACK", 3: "Auth-NACK"}
_CHAP_CODES = {1: "Challenge", 2: "Response", 3: "Success", 4: "Failure"}
_SLARP_CODES = {0: "request", 1: "reply", 2: "keepalive"}


def unknown_link_text(linktype: int, length: int) -> str:
    """The text of a frame of a link type capsvc does not decode: ``NAME (description),
    length N``, with libpcap's name and description (``LINKTYPE_147`` when it has none)."""
    kind = LinkType(linktype & 0x03FFFFFF)
    if kind.description != kind.name:
        return f"{kind.name} ({kind.description}), length {length}"
    return f"{kind.name}, length {length}"


def osi_text(data: bytes, pos: int, length: int) -> tuple[str, str]:
    """The tag name and text of an OSI PDU at ``pos``: IS-IS summarised, others named by NLPID."""
    end = len(data)
    if pos >= end:
        return "OSI", f"OSI, length {length} [|osi]"
    nlpid = data[pos]
    if nlpid != NLPID_ISIS:
        name = NLPID_NAMES.get(nlpid)
        if name is None:
            return "OSI", f"OSI NLPID 0x{nlpid:02x}, length {length}"
        return "OSI", f"{name}, length {length}"
    pdu = isis_pdu(data, pos, end)
    if pdu is None or pdu.pdu_type < 0:
        return "ISIS", f"IS-IS, length {length} [|isis]"
    text = "IS-IS, " + ISIS_PDU_NAMES.get(pdu.pdu_type, f"PDU type {pdu.pdu_type}")
    if pdu.lsp_id is not None:
        text += f", lsp-id {system_id(pdu.lsp_id)}, seq 0x{pdu.seq:08x}, lifetime {pdu.lifetime:5}s"
    elif pdu.source is not None:
        text += f", src-id {system_id(pdu.source)}"
        if pdu.lan_id is not None:
            text += f", lan-id {system_id(pdu.lan_id)}, prio {pdu.priority}"
    text += f", length {length}"
    if pdu.truncated:
        text += " [|isis]"
    return "ISIS", text


def _ppp_control_text(name: str, protocol: int, data: bytes, pos: int) -> str:
    header = ppp_control(data, pos)
    if header is None:
        return f"{name} [|ppp]"
    codes = _PAP_CODES if protocol == 0xC023 else _CHAP_CODES if protocol == 0xC223 else _LCP_CODES
    code = codes.get(header.code, "unknown")
    return f"{name}, {code} (0x{header.code:02x}), id {header.ident}, length {header.length}"


def ppp_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """A PPP frame that carries no network layer: a control protocol, or an unknown protocol."""
    header = ppp_header(data)
    if header is None:
        return "PPP", "[|ppp]"
    name = _PPP_CONTROL.get(header.protocol)
    length = max(wire_len, len(data)) - header.payload
    if name is None:
        return "PPP", f"PPP, proto 0x{header.protocol:04x}, length {length}"
    return name, _ppp_control_text(name, header.protocol, data, header.payload)


def ppp_hdlc_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """PPP_HDLC (PPP_SERIAL) frames: PPP's or Cisco HDLC's messages, as the address byte says."""
    if data and data[0] != 0xFF:
        return chdlc_message(data, wire_len, verbose)
    return ppp_message(data, wire_len, verbose)


def _uptime(ms: int) -> str:
    sec = ms // 1000
    return f"{sec // 86400}d{sec // 3600 % 24}h{sec // 60 % 60}m{sec % 60}s"


def chdlc_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """A Cisco HDLC frame of its own protocols: SLARP, CDP."""
    header = chdlc_header(data)
    if header is None:
        return "HDLC", "[|chdlc]"
    pos = header.payload
    length = max(wire_len, len(data)) - pos
    if header.protocol == CHDLC_SLARP:
        msg = slarp(data, pos)
        if msg is None:
            return "SLARP", f"SLARP (length: {length}) [|slarp]"
        text = f"SLARP (length: {length}), "
        if msg.code == 2:
            text += (
                f"keepalive: mineseen=0x{msg.mine:08x}, yourseen=0x{msg.yours:08x}, "
                f"reliability=0x{msg.reliability:04x}"
            )
            if msg.uptime_ms is not None:
                text += f", link uptime={_uptime(msg.uptime_ms)}"
            elif length >= 18:
                text += " [|slarp]"
        elif msg.code in (0, 1):
            text += _SLARP_CODES[msg.code]
            if msg.code == 1:
                text += f" {inet_ntoa(msg.address)}/{inet_ntoa(msg.mask)}"
        else:
            text += f"unknown code 0x{msg.code:x}"
        return "SLARP", text
    if header.protocol == CHDLC_CDP:
        if len(data) < pos + 2:
            return "CDP", f"CDP, length {length} [|cdp]"
        return "CDP", f"CDPv{data[pos]}, ttl: {data[pos + 1]}s, length {length}"
    return "HDLC", f"CHDLC, proto 0x{header.protocol:04x}, length {length}"


def slip_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """A SLIP frame whose packet is no plain IP: a CSLIP-compressed or -uncompressed TCP/IP
    header (Van Jacobson compression), or something else."""
    first = data[SLIP_HEADER_LEN] if len(data) > SLIP_HEADER_LEN else 0
    length = max(wire_len, len(data)) - SLIP_HEADER_LEN
    if first & 0x80:
        return "SLIP", f"SLIP, compressed TCP, length {length}"
    if first >> 4 == 7:
        return "SLIP", f"SLIP, uncompressed TCP, length {length}"
    return "SLIP", f"SLIP, ip v{first >> 4}, length {length}"


def frelay_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """A Frame Relay frame of signalling (Q.933) or an NLPID capsvc does not follow."""
    header = frelay_header(data)
    if header is None:
        return "FR", "[|fr]"
    length = max(wire_len, len(data)) - header.payload
    nlpid = header.nlpid if header.nlpid is not None else -1
    if nlpid == NLPID_Q933:
        return "Q933", f"Q.933, DLCI {header.dlci}, length {length}"
    return "FR", f"FR, DLCI {header.dlci}, NLPID 0x{nlpid & 0xFF:02x}, length {length}"


def nflog_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """An NFLOG message without an IP packet (or of another address family)."""
    fields = nflog_fields(data)
    if fields is None:
        return "NFLOG", "[|nflog]"
    text = f"NFLOG, family {fields.family}, resource {fields.resource_id}"
    if fields.prefix:
        text += f", prefix {fields.prefix!r}"
    text += f", length {max(wire_len, len(data))}"
    if fields.truncated or len(data) < wire_len:
        text += " [|nflog]"
    return "NFLOG", text


def _arcnet_text(header: ArcnetHeader | None, data: bytes, wire_len: int) -> tuple[str, str]:
    """An ARCNET frame capsvc does not follow: ``ARCNET 01 > 02, proto 0x42, length 25``, a
    middle fragment's sequence number and place (``seqid 0x0010, fragment 2``) before the
    length (the payload's, after the header)."""
    if header is None or len(data) < header.payload:
        return "ARC", "[|arcnet]"
    text = f"ARCNET {header.source:02x} > {header.destination:02x}, proto 0x{header.protocol:02x}"
    if header.middle_fragment:
        text += f", seqid 0x{header.seqid:04x}, fragment {header.flag // 2 + 1}"
    return "ARC", f"{text}, length {max(wire_len, len(data)) - header.payload}"


def arcnet_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """A BSD ARCNET frame of a protocol capsvc does not follow, or a middle fragment."""
    return _arcnet_text(arcnet_header(data), data, wire_len)


def arcnet_linux_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    """A Linux ARCNET frame of a protocol capsvc does not follow."""
    return _arcnet_text(arcnet_linux_header(data), data, wire_len)


_MESSAGES: dict[int, LinkMessage] = {
    LinkType.SLIP: slip_message,
    LinkType.PPP: ppp_message,
    LinkType.PPP_HDLC: ppp_hdlc_message,
    LinkType.C_HDLC: chdlc_message,
    LinkType.IEEE802_11: wlan_message,
    LinkType.FRELAY: frelay_message,
    LinkType.IEEE802_11_RADIO: wlan_radio_message,
    7: arcnet_message,  # ARCNET
    129: arcnet_linux_message,  # ARCNET_LINUX
    LinkType.NFLOG: nflog_message,
}


def _no_message(data: bytes, wire_len: int, verbose: bool) -> tuple[str, str]:
    return "?", f"??? len={wire_len}"


def link_message(linktype: int) -> LinkMessage:
    """The message formatter of ``linktype`` (one printing ``??? len=N`` for link types whose
    decoder never returns ``LINK_MESSAGE``)."""
    return _MESSAGES.get(linktype & 0x03FFFFFF, _no_message)
