"""Link layers in tcpdump's words: Ethernet (VLAN tags, 802.3/LLC), Linux cooked v1/v2, BSD
loopback, raw IP; ``-e``'s link-level header; the ethertype dispatch; the registry of link
printers (ARCNET's are in ``_arcnet``, 802.11's in ``_wlan``, radiotap's in ``_radiotap``).

Pure module. Each link printer sets ``nd.hdrlen`` (what ``-x`` leaves out) and prints the
header only as tcpdump does: nothing without ``-e`` for the common link types, the cooked v2
interface and packet type always. A frame whose ethertype capsvc does not decode prints as
tcpdump prints an unknown one: the MAC addresses, ``ethertype NAME (0x....), length N:`` and a
hex and ASCII dump of the payload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...decode._const import (
    ETHERTYPE_8021AD,
    ETHERTYPE_8021Q,
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    ETHERTYPE_QINQ,
    ETHERTYPE_REVARP,
)
from ...decode._ether import LINK_TRUNCATED
from ...decode._link import LINK_PROTOCOLS, link_decoder
from ._arcnet import arcnet_linux_print, arcnet_print
from ._arp import arp_print
from ._hex import hex_ascii
from ._ip import ip6_print, ip_print
from ._linkhdr import LINK_HEADERS, pktap_print
from ._macsec import macsec_print
from ._nd import PRINTERS, Nd
from ._ptp import ptp_print
from ._radiotap import radiotap_print
from ._wlan import wlan_print

__all__ = ["ETHERTYPE_NAMES", "LINK_PRINTERS", "ethertype_print", "generic_print"]

#: tcpdump's names of ethertypes (``ethertype IPv4 (0x0800)``), print-ether.c's table.
ETHERTYPE_NAMES = {
    0x0800: "IPv4", 0x8847: "MPLS unicast", 0x8848: "MPLS multicast", 0x86DD: "IPv6",
    0x8100: "802.1Q", 0x9100: "802.1Q-9100", 0x88A8: "802.1Q-QinQ", 0x9200: "802.1Q-9200",
    0x0200: "PUP", 0x0806: "ARP", 0x8035: "Reverse ARP", 0x0600: "NS", 0x0500: "Sprite",
    0x1000: "Trail", 0x6001: "MOP DL", 0x6002: "MOP RC", 0x6003: "DN", 0x6004: "LAT",
    0x6007: "SCA", 0x6558: "TEB", 0x8038: "Lanbridge", 0x803C: "DEC DNS", 0x803E: "DEC DTS",
    0x805B: "VEXP", 0x805C: "VPROD", 0x809B: "Appletalk", 0x80F3: "Appletalk ARP",
    0x8137: "IPX", 0x880B: "PPP", 0x8808: "MPCP", 0x8809: "Slow Protocols",
    0x8863: "PPPoE D", 0x8864: "PPPoE S", 0x888E: "EAPOL", 0x8899: "RRCP",
    0x886F: "MS NLB heartbeat", 0x8870: "Jumbo", 0x894F: "NSH", 0x9000: "Loopback",
    0xFEFE: "OSI", 0x00FE: "GRE-OSI", 0xABCD: "CFM (old)", 0x8902: "CFM",
    0x893A: "IEEE1905.1", 0x88CC: "LLDP", 0x88CA: "TIPC", 0x0707: "GeoNet (old)",
    0x8947: "GeoNet", 0x1111: "CALM FAST", 0x88A2: "AoE", 0xDADA: "MEDSA",
    0x88E5: "802.1AE MACsec", 0xD28B: "Arista Vendor Specific Protocol", 0x88F7: "PTP",
}  # fmt: skip
_VLANS = frozenset((ETHERTYPE_8021Q, ETHERTYPE_8021AD, ETHERTYPE_QINQ, 0x9200))
#: Linux packet types as the cooked headers print them.
SLL_PKTTYPES = {0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}
_MAX_LENGTH = 1500


def ethertype_name(ethertype: int, quiet: bool = False) -> str:
    """``ethertype IPv4 (0x0800)``; with ``-q`` the name alone (``IPv4``)."""
    if quiet:
        return ETHERTYPE_NAMES.get(ethertype, f"Unknown Ethertype (0x{ethertype:04x})")
    return f"ethertype {ETHERTYPE_NAMES.get(ethertype, 'Unknown')} (0x{ethertype:04x})"


def ethertype_print(nd: Nd, ethertype: int, pos: int, length: int) -> bool:
    """Print the network layer of ``ethertype`` at ``pos``; False for an ethertype capsvc does
    not decode in tcpdump's words (nothing printed then)."""
    if ethertype == ETHERTYPE_IP:
        ip_print(nd, pos, length)
    elif ethertype == ETHERTYPE_IPV6:
        ip6_print(nd, pos, length)
    elif ethertype in (ETHERTYPE_ARP, ETHERTYPE_REVARP):
        arp_print(nd, pos, length)
    elif ethertype == 0x88F7:
        ptp_print(nd, pos, length)
    else:
        return False
    return True


def default_print(nd: Nd, pos: int) -> None:
    """tcpdump's dump of what it cannot decode: hex and ASCII of the captured rest (not with
    ``-x``, ``-X`` or ``-q``)."""
    if not nd.opts.silent_default:
        hex_ascii(nd, pos, nd.end - pos)


def ether_print(nd: Nd, pos: int, length: int) -> None:
    """An Ethernet frame at ``pos`` of wire length ``length``."""
    nd.proto = "ether"
    caplen = nd.end - pos
    if caplen < 14 or length < 14:
        nd.trunc()
        nd.hdrlen = pos + min(caplen, length)
        return
    link = nd.opts.link
    if link:
        _ether_header(nd, pos, length)
    start = pos
    ethertype = nd.u16(pos + 12)
    length -= 14
    pos += 14
    while True:
        if ethertype <= _MAX_LENGTH:
            nd.hdrlen = pos
            _llc_print(nd, start, pos, length, ethertype)
            return
        if ethertype in _VLANS:
            if nd.end - pos < 4 or length < 4:
                nd.proto = "vlan"
                nd.trunc()
                nd.hdrlen = pos + min(nd.end - pos, length)
                return
            tci = nd.u16(pos)
            ethertype = nd.u16(pos + 2)
            if link:
                nd.put(f"vlan {tci & 0xFFF}, p {tci >> 13}{', DEI' if tci & 0x1000 else ''}, ")
                if ethertype > _MAX_LENGTH:
                    nd.put(f"{ethertype_name(ethertype, nd.opts.quiet)}, ")
            pos += 4
            length -= 4
            continue
        if ethertype == _MACSEC:
            inner = macsec_print(nd, start, pos, length)
            if inner is None:
                return
            ethertype, pos, length = inner
            if link and ethertype > _MAX_LENGTH:
                nd.put(f"{ethertype_name(ethertype, nd.opts.quiet)}, ")
            nd.proto = "ether"
            continue
        nd.hdrlen = pos
        if not ethertype_print(nd, ethertype, pos, length):
            if not link:
                _ether_header(nd, start, length + (pos - start))
            default_print(nd, pos)
        return


_MACSEC = 0x88E5


def _ether_header(nd: Nd, pos: int, length: int) -> None:
    ethertype = nd.u16(pos + 12)
    text = f"{nd.mac(pos + 6)} > {nd.mac(pos)}"
    if ethertype <= _MAX_LENGTH:
        nd.put(f"{text}, 802.3, length {ethertype}: ")
    elif nd.opts.quiet:
        nd.put(f"{text}, {ethertype_name(ethertype, True)}, length {length}: ")
    else:
        nd.put(f"{text}, {ethertype_name(ethertype)}, length {length}: ")


def _llc_print(nd: Nd, start: int, pos: int, length: int, size: int) -> None:
    """An 802.3 frame: SNAP-encapsulated IP and ARP are printed, other LLC frames as an
    unknown payload."""
    if size < length:
        length = size
    nd.push(pos + size)
    try:
        if nd.has(pos, 8) and nd.data[pos : pos + 3] == b"\xaa\xaa\x03":
            oui = nd.data[pos + 3 : pos + 6]
            ethertype = nd.u16(pos + 6)
            if oui == b"\0\0\0" and ethertype in (ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_ARP):
                nd.hdrlen = pos + 8
                ethertype_print(nd, ethertype, pos + 8, length - 8)
                return
        dsap = nd.u8(pos)
        ssap = nd.u8(pos + 1)
        nd.put(f"LLC, dsap 0x{dsap:02x}, ssap 0x{ssap:02x}, length {length}")
    finally:
        nd.pop()


def sll_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """A Linux cooked v1 frame: the packet type and address with ``-e`` only."""
    nd.proto = "sll"
    if nd.end < 16:
        nd.trunc()
        nd.hdrlen = nd.end
        return
    pkttype = nd.u16(0)
    halen = nd.u16(4)
    ethertype = nd.u16(14)
    if nd.opts.link:
        kind = SLL_PKTTYPES.get(pkttype, f"pkttype {pkttype}")
        addr = nd.mac(6, min(halen, 8)) if halen else ""
        if nd.opts.quiet:
            nd.put(f"{kind:>3} {addr} ")
        else:
            nd.put(f"{kind:>3} {addr} {ethertype_name(ethertype)}, length {length}: ")
    nd.hdrlen = 16
    _cooked_payload(nd, ethertype, 16, length - 16)


def sll2_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """A Linux cooked v2 frame: the interface name and packet type, as tcpdump prints them
    (``eth0  In  IP ...``); ``?`` for an interface the mapping lacks."""
    nd.proto = "sll2"
    if nd.end < 20:
        nd.trunc()
        nd.hdrlen = nd.end
        return
    ethertype = nd.u16(0)
    ifindex = nd.u32(4)
    pkttype = nd.u8(10)
    halen = nd.u8(11)
    name = (interfaces or {}).get(ifindex, "?")
    nd.put(f"{name:<5} {SLL_PKTTYPES.get(pkttype, '?'):<3} ")
    if nd.opts.link:
        addr = nd.mac(12, min(halen, 8)) if halen else ""
        if nd.opts.quiet:
            nd.put(f"ifindex {ifindex} {addr} ")
        else:
            nd.put(f"ifindex {ifindex} {addr} {ethertype_name(ethertype)}, length {length}: ")
    nd.hdrlen = 20
    _cooked_payload(nd, ethertype, 20, length - 20)


def _cooked_payload(nd: Nd, ethertype: int, pos: int, length: int) -> None:
    if not ethertype_print(nd, ethertype, pos, length):
        if not nd.opts.link:
            nd.put(f"{ethertype_name(ethertype)}, length {length + pos}: ")
        default_print(nd, pos)


_AF_NAMES = {2: "IPv4", 10: "IPv6", 24: "IPv6", 28: "IPv6", 30: "IPv6"}


def null_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """A BSD loopback frame (host byte order family)."""
    nd.proto = "null"
    if nd.end < 4:
        nd.trunc()
        nd.hdrlen = nd.end
        return
    family = int.from_bytes(nd.data[:4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(nd.data[:4], "big")
    _family_payload(nd, family, length)


def loop_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """An OpenBSD loopback frame (network byte order family)."""
    nd.proto = "loop"
    if nd.end < 4:
        nd.trunc()
        nd.hdrlen = nd.end
        return
    _family_payload(nd, nd.u32(0), length)


def _family_payload(nd: Nd, family: int, length: int) -> None:
    if nd.opts.link:
        name = _AF_NAMES.get(family, "Unknown")
        if nd.opts.quiet:
            nd.put(f"{name}, length {length}: ")
        else:
            nd.put(f"AF {name} ({family}), length {length}: ")
    nd.hdrlen = 4
    if family == 2:
        ip_print(nd, 4, length - 4)
    elif family in (10, 24, 28, 30):
        ip6_print(nd, 4, length - 4)
    else:
        default_print(nd, 4)


def raw_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """A bare IP packet: the version nibble says which."""
    nd.proto = "ipn"
    if nd.opts.link:
        nd.put("ip: ")
    if length < 1:
        nd.put(f"truncated-ip {length}")
        return
    version = nd.u8(0) >> 4
    if version == 4:
        ip_print(nd, 0, length)
    elif version == 6:
        ip6_print(nd, 0, length)
    else:
        nd.put(f"unknown ip {version}")


def ipv4_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_IPV4: an IPv4 packet."""
    ip_print(nd, 0, length)


def ipv6_print(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_IPV6: an IPv6 packet."""
    ip6_print(nd, 0, length)


def ethernet_link(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_ETHERNET."""
    ether_print(nd, 0, length)


def generic_print(linktype: int) -> Callable[[Nd, int, Mapping[int, str] | None], None]:
    """The printer of a link type without one of its own here: capsvc's link decoder finds the
    network layer, which is printed as tcpdump prints it; the link header itself is not (a
    frame whose network layer is not found prints as an unknown payload)."""
    decode = link_decoder(linktype)
    header = _LINK_HEADERS.get(linktype)
    proto = LINK_PROTOCOLS.get(linktype, "link")

    def printer(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
        ethertype, off = decode(nd.data)
        if header is not None and nd.opts.link and ethertype >= LINK_TRUNCATED:
            nd.proto = proto
            header(nd, length)
        if ethertype < 0:
            nd.proto = proto
            if ethertype == -3:
                nd.trunc()
            else:
                default_print(nd, 0)
            return
        nd.hdrlen = off
        if not ethertype_print(nd, ethertype, off, length - off):
            nd.put(f"{ethertype_name(ethertype)}, length {length}: ")
            default_print(nd, off)

    return printer


def _chdlc_header(nd: Nd, length: int) -> None:
    """``-e`` on Cisco HDLC: ``unicast, ethertype IPv4 (0x0800), length 104: ``."""
    cast = {0x0F: "unicast", 0x8F: "bcast"}.get(nd.u8(0), f"0x{nd.u8(0):02x}")
    nd.put(f"{cast}, {ethertype_name(nd.u16(2))}, length {length}: ")


def _ipoib_header(nd: Nd, length: int) -> None:
    """``-e`` on IP over InfiniBand: ``IPOIB, ethertype IPv4 (0x0800), length 128: ``."""
    nd.put(f"IPOIB, {ethertype_name(nd.u16(40))}, length {length}: ")


def _nflog_header(nd: Nd, length: int) -> None:
    """``-e`` on NFLOG: ``version 0, resource ID 20, family IPv4 (2), length 180: ``."""
    family = nd.u8(0)
    name = {2: "IPv4", 10: "IPv6"}.get(family, "Unknown")
    nd.put(
        f"version {nd.u8(1)}, resource ID {nd.u16(2)}, family {name} ({family}), length {length}: "
    )


#: Link types whose ``-e`` header the generic printer prints, by link type.
_LINK_HEADERS: dict[int, Callable[[Nd, int], None]] = {
    104: _chdlc_header,
    239: _nflog_header,
    242: _ipoib_header,
    **LINK_HEADERS,
}
_PKTAP = 258
_PKTAP_INNER = generic_print(_PKTAP)


def pktap_link(nd: Nd, length: int, interfaces: Mapping[int, str] | None) -> None:
    """LINKTYPE_PKTAP: the PKTAP header (with ``-e``), then its frame; frames of link types
    other than Ethernet through the generic printer."""
    pktap_print(nd, length, interfaces, _PKTAP_INNER)


#: Link type -> its printer ``(nd, wire length, interfaces)``.
LINK_PRINTERS: dict[int, Callable[[Nd, int, Mapping[int, str] | None], None]] = {
    0: null_print,
    1: ethernet_link,
    7: arcnet_print,
    12: raw_print,
    14: raw_print,
    101: raw_print,
    105: wlan_print,
    108: loop_print,
    113: sll_print,
    127: radiotap_print,
    129: arcnet_linux_print,
    228: raw_print,
    229: raw_print,
    _PKTAP: pktap_link,
    276: sll2_print,
}


PRINTERS.ether = ether_print
PRINTERS.ethertype = ethertype_print
PRINTERS.ethertype_names = ETHERTYPE_NAMES
