"""Protocol tables and the small one-message formatters of the text log: TCP flags and options,
ICMP and ICMPv6 messages, ARP and the other non-IP link payloads.

Pure module. The rule it keeps: each function reads only the bytes it is given bounds for and
prints what it could read; a short or odd message gives a shorter text, never an exception (the
callers check the fixed header sizes first).
"""

from __future__ import annotations

import struct
from socket import AF_INET6, inet_ntoa, inet_ntop

from ..decode._const import (
    ETH_P_802_2,
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    ETHERTYPE_OSI,
    ETHERTYPE_REVARP,
)
from ..decode._icmp import ICMP6_ERRORS, ICMP_ERRORS, quoted_packet
from ._links import osi_text

__all__ = [
    "ETHER_NAMES",
    "ICMP6_TYPES",
    "ICMP_TYPES",
    "TCP_FLAGS",
    "arp_text",
    "icmp6_text",
    "icmp_text",
    "link_text",
    "tcp_options",
]

_U16 = struct.Struct("!H").unpack_from
_U32 = struct.Struct("!I").unpack_from
#: TCP timestamp option body: TSval, TSecr.
TCP_TIMESTAMP = struct.Struct("!II")
#: struct arphdr: hrd, pro, hln, pln, op (the addresses follow, of the sizes hln and pln give).
ARP_HEADER = struct.Struct("!HHBBH")


def _flag_text(bits: int) -> str:
    # tcpdump's order: SYN FIN RST PSH ACK URG ECE CWR.
    letters = "".join(
        ch
        for bit, ch in (
            (2, "S"),
            (1, "F"),
            (4, "R"),
            (8, "P"),
            (16, "."),
            (32, "U"),
            (64, "E"),
            (128, "W"),
        )
        if bits & bit
    )
    return letters or "none"


#: TCP flags byte -> its text (``S``, ``S.``, ``P.``, ``none``, ...).
TCP_FLAGS: tuple[str, ...] = tuple(_flag_text(b) for b in range(256))

ICMP_TYPES = {
    0: "EchoReply",
    3: "DestUnreach",
    4: "SourceQuench",
    5: "Redirect",
    8: "EchoRequest",
    9: "RouterAdvert",
    10: "RouterSolicit",
    11: "TimeExceeded",
    12: "ParamProblem",
    13: "Timestamp",
    14: "TimestampReply",
    15: "InfoRequest",
    16: "InfoReply",
    17: "MaskRequest",
    18: "MaskReply",
}
#: ICMP types whose next four bytes are an identifier and a sequence number.
_ICMP_ID_SEQ = frozenset((0, 8, 13, 14, 15, 16, 17, 18))

ICMP6_TYPES = {
    1: "DestUnreach",
    2: "PacketTooBig",
    3: "TimeExceeded",
    4: "ParamProblem",
    128: "EchoRequest",
    129: "EchoReply",
    130: "MLDQuery",
    131: "MLDReport",
    132: "MLDDone",
    133: "RouterSolicit",
    134: "RouterAdvert",
    135: "NeighborSolicit",
    136: "NeighborAdvert",
    137: "Redirect",
    143: "MLDv2Report",
}
_ICMP6_ID_SEQ = frozenset((128, 129))

#: Names of the non-IP ethertypes that get a line of their own (tag and text).
ETHER_NAMES = {
    ETH_P_802_2: "LLC",
    ETHERTYPE_ARP: "ARP",
    ETHERTYPE_REVARP: "RARP",
    0x809B: "ATALK",
    0x80F3: "AARP",
    0x8137: "IPX",
    0x8809: "SLOW",
    0x8847: "MPLS",
    0x8848: "MPLS",
    0x8863: "PPPD",
    0x8864: "PPPS",
    0x888E: "EAPOL",
    0x88CC: "LLDP",
    0x88F7: "PTP",
    0x9000: "LOOP",
    0x6003: "DNET",
    ETHERTYPE_OSI: "OSI",
}
#: IP protocol -> its name in an ICMP error's quoted packet.
_QUOTED_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "ICMP6", 132: "SCTP"}
#: The LLC SAP of OSI network-layer PDUs.
_LLC_OSI = 0xFE
_ARP_OPS = {1: "Request", 2: "Reply", 3: "ReverseRequest", 4: "ReverseReply"}


def tcp_options(data: bytes, pos: int, stop: int, sack_base: int | None) -> str:
    """Format the TCP options in ``data[pos:stop]`` as tcpdump does (without the brackets).

    Args:
        data: the buffer.
        pos: where the options start (20 bytes into the TCP header).
        stop: the end of the options (the header length, or the captured end if shorter).
        sack_base: subtracted from SACK block edges (the receiver's sequence base), or None to
            print them as they are.

    Returns:
        The options joined with ``,`` (``mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7``); an option
        whose length is impossible ends the list with ``bad opt``.
    """
    out: list[str] = []
    while pos < stop:
        kind = data[pos]
        if kind == 1:
            out.append("nop")
            pos += 1
            continue
        if kind == 0:
            out.append("eol")
            break
        if pos + 1 >= stop:
            out.append("bad opt")
            break
        size = data[pos + 1]
        if size < 2 or pos + size > stop:
            out.append("bad opt")
            break
        if kind == 2 and size == 4:
            out.append(f"mss {_U16(data, pos + 2)[0]}")
        elif kind == 3 and size == 3:
            out.append(f"wscale {data[pos + 2]}")
        elif kind == 4 and size == 2:
            out.append("sackOK")
        elif kind == 5 and size % 8 == 2:
            blocks = []
            for edge in range(pos + 2, pos + size, 8):
                left, right = TCP_TIMESTAMP.unpack_from(data, edge)
                if sack_base is not None:
                    left, right = (left - sack_base) & 0xFFFFFFFF, (right - sack_base) & 0xFFFFFFFF
                blocks.append(f"{{{left}:{right}}}")
            out.append(f"sack {len(blocks)} " + "".join(blocks))
        elif kind == 8 and size == 10:
            val, ecr = TCP_TIMESTAMP.unpack_from(data, pos + 2)
            out.append(f"TS val {val} ecr {ecr}")
        elif kind == 30:
            out.append("mptcp")
        elif kind == 34:
            out.append("tfo")
        else:
            out.append(f"unknown-{kind}")
        pos += size
    return ",".join(out)


def icmp_text(data: bytes, pos: int, end: int) -> str:
    """The message part of an ICMP line (``EchoRequest, id 1, seq 1``), without the length.

    Args:
        data: the buffer.
        pos: where the ICMP header starts; at least 4 bytes must be captured there.
        end: where the captured message ends.
    """
    if end - pos < 4:
        return "[|icmp]"
    kind, code = data[pos], data[pos + 1]
    name = ICMP_TYPES.get(kind)
    text = name if name is not None else f"type {kind}"
    if code:
        text += f", code {code}"
    if (kind in _ICMP_ID_SEQ or kind == 5 or (kind == 3 and code == 4)) and pos + 8 > end:
        return f"{text} [|icmp]"
    if kind in _ICMP_ID_SEQ:
        ident, seq = _U16(data, pos + 4)[0], _U16(data, pos + 6)[0]
        return f"{text}, id {ident}, seq {seq}"
    if kind == 3 and code == 4 and pos + 8 <= end:
        text += f", mtu {_U16(data, pos + 6)[0]}"
    if kind == 5 and pos + 8 <= end:
        text += f", gateway {inet_ntoa(data[pos + 4 : pos + 8])}"
    if kind in ICMP_ERRORS:
        return text + quoted_text(data, pos + 8, end)
    return text


def icmp6_text(data: bytes, pos: int, end: int) -> str:
    """The message part of an ICMPv6 line (``NeighborSolicit, who has fd00::2``), without the
    length.

    Args:
        data: the buffer.
        pos: where the ICMPv6 header starts; at least 4 bytes must be captured there.
        end: where the captured message ends.
    """
    if end - pos < 4:
        return "[|icmp6]"
    kind, code = data[pos], data[pos + 1]
    name = ICMP6_TYPES.get(kind)
    text = name if name is not None else f"type {kind}"
    if code:
        text += f", code {code}"
    if (kind in _ICMP6_ID_SEQ or kind == 2) and pos + 8 > end:
        return f"{text} [|icmp6]"
    if kind in (135, 136, 137) and pos + 24 > end:
        return f"{text} [|icmp6]"
    if kind in _ICMP6_ID_SEQ:
        ident, seq = _U16(data, pos + 4)[0], _U16(data, pos + 6)[0]
        return f"{text}, id {ident}, seq {seq}"
    if kind == 2 and pos + 8 <= end:
        text += f", mtu {_U32(data, pos + 4)[0]}"
    if kind in ICMP6_ERRORS:
        return text + quoted_text(data, pos + 8, end)
    if kind in (135, 136, 137) and pos + 24 <= end:
        target = inet_ntop(AF_INET6, data[pos + 8 : pos + 24])
        if kind == 135:
            return f"{text}, who has {target}"
        if kind == 136:
            return f"{text}, tgt is {target}"
        return f"{text}, to {target}"
    return text


def quoted_text(data: bytes, pos: int, end: int) -> str:
    """``, inner UDP 10.0.0.1:40000 > 10.0.0.2:53``: the packet an ICMP error quotes at
    ``pos``; ``, inner [|ip]`` when not even its addresses are captured."""
    quoted = quoted_packet(data, pos, end)
    if quoted is None:
        return ", inner [|ip]"
    name = _QUOTED_NAMES.get(quoted.proto, f"P{quoted.proto}")
    src, dst = quoted.src, quoted.dst
    if quoted.sport is None:
        marker = f" [|{name.lower()}]" if quoted.truncated else ""
        return f", inner {name} {src} > {dst}{marker}"
    if quoted.version == 6:
        src, dst = f"[{src}]", f"[{dst}]"
    return f", inner {name} {src}:{quoted.sport} > {dst}:{quoted.dport}"


def arp_text(data: bytes, pos: int, length: int) -> str:
    """The text of an ARP line (``ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28``).

    Any hardware address size is read (IPoIB's 20 bytes, ARCNET's one); the target hardware
    address of a request prints in parentheses when it is not all zeros, as tcpdump does.

    Args:
        data: the buffer.
        pos: where the ARP header starts.
        length: the length printed (the frame after its link header).
    """
    if len(data) < pos + 8:
        return f"ARP, length {length} [|arp]"
    _hrd, pro, hln, pln, op = ARP_HEADER.unpack_from(data, pos)
    opname = _ARP_OPS.get(op, f"op {op}")
    if pro != ETHERTYPE_IP or pln != 4:
        return f"ARP, {opname}, length {length}"
    sha = pos + 8
    spa = sha + hln
    tha = spa + 4
    tpa = tha + hln
    if len(data) < tpa + 4:
        return f"ARP, {opname}, length {length} [|arp]"
    if op == 1:
        target = data[tha:tpa]
        shown = f" ({target.hex(':')})" if any(target) else ""
        return (
            f"ARP, Request who-has {inet_ntoa(data[tpa : tpa + 4])}{shown} "
            f"tell {inet_ntoa(data[spa:tha])}, length {length}"
        )
    if op == 2:
        return (
            f"ARP, Reply {inet_ntoa(data[spa:tha])} is-at {data[sha:spa].hex(':')}, length {length}"
        )
    return f"ARP, {opname}, length {length}"


def link_text(data: bytes, ethertype: int, pos: int, length: int) -> tuple[str, str]:
    """The tag name and text of a frame that carries no IP.

    Args:
        data: the buffer.
        ethertype: the link layer's protocol (``ETH_P_802_2`` for LLC).
        pos: where the link payload starts.
        length: the length printed (the frame after its link header).

    Returns:
        ``(tag name, text)``, e.g. ``("ARP", "ARP, Request who-has ...")`` or
        ``("LLDP", "LLDP, ethertype 0x88cc, length 60")``.
    """
    if ethertype in (ETHERTYPE_ARP, ETHERTYPE_REVARP):
        text = arp_text(data, pos, length)
        return ("ARP", text) if ethertype == ETHERTYPE_ARP else ("RARP", "R" + text)
    if ethertype == ETHERTYPE_OSI:
        return osi_text(data, pos, length)
    if ethertype == ETH_P_802_2:
        if len(data) < pos + 3:
            return "LLC", f"LLC, length {length} [|llc]"
        if data[pos] == data[pos + 1] == _LLC_OSI:
            return osi_text(data, pos + 3, length - 3)
        if len(data) >= pos + 2:
            return (
                "LLC",
                f"LLC, dsap 0x{data[pos]:02x}, ssap 0x{data[pos + 1]:02x}, length {length}",
            )
        return "LLC", f"LLC, length {length}"
    name = ETHER_NAMES.get(ethertype, "ETH")
    return name, f"{name}, ethertype 0x{ethertype:04x}, length {length}"
