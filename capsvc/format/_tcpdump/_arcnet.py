"""ARCNET in tcpdump's words: BSD's header (LINKTYPE_ARCNET, 7) and Linux's (ARCNET_LINUX, 129).

Pure module; the headers are read by ``decode._arcnet``. With ``-e`` the header comes first:
``01 02 ip seqid 1234 42: `` on BSD (source, destination, the protocol id by tcpdump's name,
RFC 1201's sequence number, ``(first of 2 fragments)`` or ``(fragment 2)`` for a split
packet, the wire length), ``be 50 ab 89: `` on Linux (tcpdump reads the byte after the
addresses as the type, which there is the offset's first byte, and prints no sequence
number); with ``-q`` the addresses and the length only. Then the packet: IP, IPv6, ARP and
RARP, IPX as tcpdump prints them, nothing for a middle fragment, a hex and ASCII dump of
anything else (even with ``-x`` or ``-q``, as tcpdump's ARCNET printer always dumps). A frame
that ends inside its header ends with `` [|arcnet]`` (`` [|arcnet_linux]``); a BSD one cut
inside RFC 1201's fields prints the header first, even without ``-e``, then `` phds`` (``
phds extended`` inside an exception packet's); ``-x`` dumps such a frame whole.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...decode._arcnet import (
    ARCNET_ETHERTYPES,
    ARCNET_IPX,
    ArcnetHeader,
    arcnet_header,
    arcnet_linux_header,
)
from ._hex import hex_ascii
from ._ipx import ipx_print
from ._nd import PRINTERS, Nd

__all__ = ["arcnet_linux_print", "arcnet_print"]

#: Protocol ids tcpdump names (arctypemap); others print in hex.
_NAMES = {
    0xF0: "oldip", 0xF1: "oldarp", 0xD4: "ip", 0xD5: "arp", 0xD6: "rarp", 0xDD: "atalk",
    0xF7: "banyan", 0xFA: "ipx", 0xC4: "ipv6", 0x80: "diag",
}  # fmt: skip
_RFC1051_HEADER = 3


def _header(nd: Nd, header: ArcnetHeader, kind: int, length: int, fields: bool) -> None:
    """tcpdump's arcnet_print: ``src dst type[ seqid N[ (fragment ...)]] length: ``."""
    src, dst = header.source, header.destination
    if nd.opts.quiet:
        nd.put(f"{src:02x} {dst:02x} {length}: ")
        return
    text = f"{src:02x} {dst:02x} {_NAMES.get(kind, f'{kind:02x}')}"
    flag = header.flag
    if fields:
        text += f" seqid {header.seqid:04x}"
        if flag & 1:
            text += f" (first of {(flag + 3) // 2} fragments)"
        elif flag:
            text += f" (fragment {flag // 2 + 1})"
    nd.put(f"{text} {length}: ")


def _payload(nd: Nd, protocol: int, pos: int, length: int) -> None:
    """tcpdump's arcnet_encap_print, then its dump of a protocol it does not follow."""
    ethertype = ARCNET_ETHERTYPES.get(protocol)
    if ethertype is not None:
        PRINTERS.ethertype(nd, ethertype, pos, length)
    elif protocol == ARCNET_IPX:
        ipx_print(nd, pos, length)
    else:
        hex_ascii(nd, pos, nd.end - pos)


def arcnet_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_ARCNET: BSD's header (RFC 1051 or RFC 1201, exception packets, fragments)."""
    nd.proto = "arcnet"
    header = arcnet_header(nd.data)
    if header is None:
        nd.trunc()
        return
    fields = header.payload > _RFC1051_HEADER
    if nd.end < header.payload:
        _header(nd, header, header.protocol, length, False)
        nd.put(" phds extended" if header.exception else " phds")
        nd.trunc()
        return
    if nd.opts.link:
        _header(nd, header, header.protocol, length, fields)
    nd.hdrlen = header.payload
    if not header.middle_fragment:
        _payload(nd, header.protocol, header.payload, length - header.payload)


def arcnet_linux_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_ARCNET_LINUX: Linux's header, 5 bytes for RFC 1051's ids, 8 for the others."""
    nd.proto = "arcnet_linux"
    header = arcnet_linux_header(nd.data)
    if header is None or nd.end < header.payload:
        nd.trunc()
        return
    if nd.opts.link:
        _header(nd, header, nd.u8(2), length, False)
    nd.hdrlen = header.payload
    _payload(nd, header.protocol, header.payload, length - header.payload)
