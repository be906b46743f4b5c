"""Link layers for the lowering: where each link type keeps its type field, its network header
and its addresses, and libpcap's test for "the link layer carries protocol P" on each.

Pure. ``LINKS`` is the table of link types filters compile for; the functions here build IR for
one lowering (``_lowerbase.LoweringBase``, seen through the ``_Lowering`` protocol), reading its
current offsets (``vlan``, ``mpls`` and ``pppoes`` move them). Every test is the one libpcap's
code generator makes, in its order: 802.3/802.2 frames by their DSAP and SNAP header on
Ethernet, cooked captures' 802.2 pseudo-protocol, PPP's protocol numbers, the 802.11 data-frame
check, and the rest.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

from .._errors import FilterCompileError
from .._packet import LinkType
from ..decode._const import ETHERTYPE_IP, ETHERTYPE_IPV6, LINUX_AF_INET, LINUX_AF_INET6
from ._ir import FALSE, TRUE, Alu, Cmp, Formula, Imm, Ld, LdI, Val, Var, conj, disj, load_at, neg

__all__ = ["FILTER_LINKTYPES", "LINKS", "TUNNEL_READS", "Link", "linktype_is", "wlan_addr"]

ETHERMTU = 1500
LLCSAP_IP, LLCSAP_ISONS, LLCSAP_NETBEUI, LLCSAP_IPX = 0x06, 0xFE, 0xF0, 0xE0
ETHERTYPE_IPX, ETHERTYPE_ATALK, ETHERTYPE_AARP = 0x8137, 0x809B, 0x80F3
SLL_P_802_2, SLL_P_802_3 = 0x0004, 0x0001
#: libpcap's ethertype_to_ppptype: the PPP protocol number standing for an ethertype.
PPP_TYPES = {
    ETHERTYPE_IP: 0x0021,
    ETHERTYPE_IPV6: 0x0057,
    0x6003: 0x0027,  # DECnet
    ETHERTYPE_ATALK: 0x0029,
    0x0600: 0x0025,  # XNS IDP
    LLCSAP_ISONS: 0x0023,
    0x42: 0x0031,  # 802.1D spanning tree
    ETHERTYPE_IPX: 0x002B,
    LLCSAP_IPX: 0x002B,
    0x8847: 0x0281,  # MPLS unicast
}


@dataclass(frozen=True)
class Link:
    """How one link type lays out a frame.

    Attributes:
        kind: "ether", "sll", "sll2", "af" (BSD loopback), "version" (raw IP: the version
            nibble), "ip"/"ip6" (one protocol only), "ppp", "chdlc", "wlan" (802.11), "nflog",
            "geneve" (what a Geneve packet carries: an EtherType, then the network layer),
            "vxlan" (the Ethernet frame a VXLAN packet carries, read from its EtherType on).
        type_off: offset of the type field (of the 802.11 header for "wlan").
        payload: offset of the network-layer header (for "wlan": from the 802.11 payload).
        radiotap: the 802.11 header follows a radiotap header of variable length.
        index: where the network-layer offsets (``payload`` on) count from when the link
            layer's length varies: ``Var("pl")``, the 802.11 payload (802.11, and PPP in a
            PPPoE session on 802.11), or the value computing the end of a tunnel's header
            (``geneve``, ``vxlan``). None: from the start of the frame.
        type_index: the same for ``type_off``; set for the tunnels (``index`` again after
            ``vxlan``; after ``geneve`` without Ethernet inside, the Geneve header's start).
    """

    kind: str
    type_off: int
    payload: int
    radiotap: bool = False
    index: Val | None = None
    type_index: Val | None = None


LINKS = {
    LinkType.ETHERNET: Link("ether", 12, 14),
    LinkType.LINUX_SLL: Link("sll", 14, 16),
    LinkType.LINUX_SLL2: Link("sll2", 0, 20),
    LinkType.NULL: Link("af", 0, 4),
    LinkType.LOOP: Link("af", 0, 4),
    LinkType.RAW: Link("version", 0, 0),
    LinkType.SLIP: Link("version", 0, 16),
    LinkType.IPV4: Link("ip", 0, 0),
    LinkType.IPV6: Link("ip6", 0, 0),
    LinkType.PPP: Link("ppp", 2, 4),
    LinkType.PPP_HDLC: Link("ppp", 2, 4),
    LinkType.C_HDLC: Link("chdlc", 2, 4),
    LinkType.IEEE802_11: Link("wlan", 0, 8, index=Var("pl")),
    LinkType.IEEE802_11_RADIO: Link("wlan", 0, 8, radiotap=True, index=Var("pl")),
    LinkType.NFLOG: Link("nflog", 0, 0),
}
#: The link types filters compile for.
FILTER_LINKTYPES = frozenset(LINKS)
#: The ``Link.kind`` of what a tunnel primitive carries (its keyword), and what of it the
#: primitives after the tunnel can read (the rest is a FilterCompileError saying so).
TUNNEL_READS = {
    "geneve": "only the EtherType and what follows it are read",
    "vxlan": "only the Ethernet addresses, the EtherType and what follows them are read",
}


class _Lowering(Protocol):
    """What the link-layer tests read of a lowering (``_lowerbase.LoweringBase`` is one)."""

    linktype: LinkType
    link: Link
    mpls: int
    shift: int

    def at(self, size: int, off: int) -> Val: ...
    def fail(self, message: str, pos: int) -> FilterCompileError: ...


def _bytes(low: _Lowering, size: int, off: int) -> Val:
    """``size`` bytes at ``off`` from the start of the link-layer header."""
    if low.link.radiotap:
        return LdI(size, off, Var("hdr"))
    return Ld(size, off)


def _llc(low: _Lowering, size: int, off: int) -> Val:
    """``size`` bytes at ``off`` from the start of the 802.2 LLC header."""
    kind = low.link.kind
    if kind == "wlan":
        return LdI(size, off, Var("pl"))
    base = 14 if kind == "ether" else 16
    return Ld(size, base + low.shift + off)


def _snap(low: _Lowering, org: int, ptype: int) -> Formula:
    """An 802.2 SNAP header (AA AA 03) with organisation code ``org`` and type ``ptype``,
    compared as libpcap does: the last four bytes first."""
    tail = (org & 0xFFFF) << 16 | ptype
    head = 0xAAAA0300 | org >> 16
    return conj(Cmp(_llc(low, 4, 4), "eq", tail), Cmp(_llc(low, 4, 0), "eq", head))


def _ether(low: _Lowering, proto: int) -> Formula:
    """gen_ether_linktype: Ethernet II by its type, 802.3 by its DSAP or SNAP header."""
    type_field = Ld(2, low.link.type_off + low.shift)
    is_8023 = neg(Cmp(type_field, "gt", ETHERMTU))
    if proto in (LLCSAP_ISONS, LLCSAP_IP, LLCSAP_NETBEUI):
        return conj(is_8023, Cmp(_llc(low, 2, 0), "eq", proto << 8 | proto))
    if proto == LLCSAP_IPX:
        llc = disj(
            _snap(low, 0, ETHERTYPE_IPX),
            disj(Cmp(_llc(low, 1, 0), "eq", LLCSAP_IPX), Cmp(_llc(low, 2, 0), "eq", 0xFFFF)),
        )
        return disj(Cmp(type_field, "eq", ETHERTYPE_IPX), conj(is_8023, llc))
    if proto in (ETHERTYPE_ATALK, ETHERTYPE_AARP):
        org = 0x080007 if proto == ETHERTYPE_ATALK else 0
        return disj(Cmp(type_field, "eq", proto), conj(is_8023, _snap(low, org, proto)))
    if proto <= ETHERMTU:
        return conj(is_8023, Cmp(_llc(low, 1, 0), "eq", proto))
    return Cmp(type_field, "eq", proto)


def _sll(low: _Lowering, proto: int) -> Formula:
    """gen_linux_sll_linktype: the cooked header's protocol, with 802.2 frames as protocol 4."""
    type_field = Ld(2, low.link.type_off + low.shift)
    is_8022 = Cmp(type_field, "eq", SLL_P_802_2)
    if proto in (LLCSAP_ISONS, LLCSAP_IP, LLCSAP_NETBEUI):
        return conj(is_8022, Cmp(_llc(low, 2, 0), "eq", proto << 8 | proto))
    if proto == LLCSAP_IPX:
        llc = disj(Cmp(_llc(low, 1, 0), "eq", LLCSAP_IPX), _snap(low, 0, ETHERTYPE_IPX))
        return disj(
            Cmp(type_field, "eq", ETHERTYPE_IPX),
            disj(Cmp(type_field, "eq", SLL_P_802_3), conj(is_8022, llc)),
        )
    if proto in (ETHERTYPE_ATALK, ETHERTYPE_AARP):
        org = 0x080007 if proto == ETHERTYPE_ATALK else 0
        return disj(Cmp(type_field, "eq", proto), conj(is_8022, _snap(low, org, proto)))
    if proto <= ETHERMTU:
        return conj(is_8022, Cmp(_llc(low, 1, 0), "eq", proto))
    return Cmp(type_field, "eq", proto)


def wlan_data(low: _Lowering) -> Formula:
    """An 802.11 data frame, tested as libpcap does (not a control frame, the data bit set)."""
    fc = _bytes(low, 1, 0)
    return conj(neg(Cmp(fc, "set", 0x04)), Cmp(fc, "set", 0x08))


def _wlan(low: _Lowering, proto: int) -> Formula:
    """gen_llc_linktype on an 802.11 data frame's LLC header."""
    test: Formula
    if proto in (LLCSAP_ISONS, LLCSAP_IP, LLCSAP_NETBEUI):
        test = Cmp(_llc(low, 2, 0), "eq", proto << 8 | proto)
    elif proto == ETHERTYPE_ATALK:
        test = _snap(low, 0x080007, proto)
    elif proto <= ETHERMTU:
        test = Cmp(_llc(low, 1, 0), "eq", proto)
    else:
        test = Cmp(_llc(low, 2, 6 + low.shift), "eq", proto)
    return conj(wlan_data(low), test)


def linktype_is(low: _Lowering, proto: int, pos: int) -> Formula:
    """The link layer carries protocol ``proto`` (an ethertype, or an 802.2 SAP up to 1500)."""
    link = low.link
    kind = link.kind
    if low.mpls:
        if proto not in (ETHERTYPE_IP, ETHERTYPE_IPV6):
            raise low.fail("only IPv4 and IPv6 can follow 'mpls'", pos)
        bos = Cmp(Alu("&", low.at(1, -2), Imm(0x01)), "eq", 0x01)
        version = 0x40 if proto == ETHERTYPE_IP else 0x60
        return conj(bos, Cmp(Alu("&", low.at(1, 0), Imm(0xF0)), "eq", version))
    if kind == "ether":
        return _ether(low, proto)
    if kind in ("geneve", "vxlan"):
        if proto <= ETHERMTU or proto in (ETHERTYPE_IPX, ETHERTYPE_ATALK, ETHERTYPE_AARP):
            raise low.fail(
                f"after '{kind}' capsvc tests the EtherType only, not 802.2 protocols", pos
            )
        assert link.type_index is not None
        return Cmp(load_at(2, link.type_off + low.shift, link.type_index), "eq", proto)
    if kind == "sll":
        return _sll(low, proto)
    if kind == "sll2":
        return Cmp(Ld(2, link.type_off), "eq", proto)
    if kind == "ppp":
        field: Val = Ld(2, link.type_off + low.shift)
        if link.index is not None:
            field = load_at(2, link.type_off + low.shift, link.index)
        return Cmp(field, "eq", PPP_TYPES.get(proto, proto))
    if kind == "chdlc":
        value = proto << 8 | proto if proto == LLCSAP_ISONS else proto
        return Cmp(Ld(2, link.type_off), "eq", value)
    if kind == "wlan":
        return _wlan(low, proto)
    if kind == "af":
        family = {ETHERTYPE_IP: LINUX_AF_INET, ETHERTYPE_IPV6: LINUX_AF_INET6}.get(proto)
        if family is None:
            return FALSE
        if low.linktype == LinkType.NULL and sys.byteorder == "little":
            family = int.from_bytes(family.to_bytes(4, "little"), "big")
        return Cmp(Ld(4, link.type_off), "eq", family)
    if kind == "version":
        nibble = {ETHERTYPE_IP: 0x40, ETHERTYPE_IPV6: 0x60}.get(proto)
        if nibble is None:
            return FALSE
        return Cmp(Alu("&", Ld(1, link.type_off), Imm(0xF0)), "eq", nibble)
    if kind == "nflog":
        raise low.fail(
            "NFLOG frames cannot be filtered by protocol (their payload is in a TLV; libpcap "
            "refuses this too)",
            pos,
        )
    wanted = ETHERTYPE_IP if kind == "ip" else ETHERTYPE_IPV6
    return TRUE if proto == wanted else FALSE


def _mac_at(low: _Lowering, off: int, addr: bytes, mask: int = 0) -> Formula:
    """The 6-byte address at ``off`` of the link-layer header equals ``addr`` (the last four
    bytes compared first, as libpcap does); with ``mask`` the group bit of its first byte."""
    if mask:
        return Cmp(_bytes(low, 1, off), "set", mask)
    high = int.from_bytes(addr[:2], "big")
    low_part = int.from_bytes(addr[2:], "big")
    return conj(Cmp(_bytes(low, 4, off + 2), "eq", low_part), Cmp(_bytes(low, 2, off), "eq", high))


def wlan_addr(low: _Lowering, which: str, addr: bytes, mask: int = 0) -> Formula:
    """libpcap's gen_wlanhostop: the 802.11 address ``which`` ("src", "dst", "", "src and
    dst", "addr1".."addr4", "ra", "ta") is ``addr``, by the frame's type and DS bits."""
    fc0, fc1 = _bytes(low, 1, 0), _bytes(low, 1, 1)
    ctl = Cmp(fc0, "set", 0x04)
    data = Cmp(fc0, "set", 0x08)
    from_ds, to_ds = Cmp(fc1, "set", 0x02), Cmp(fc1, "set", 0x01)

    def at(off: int) -> Formula:
        return _mac_at(low, off, addr, mask)

    def src() -> Formula:
        inner = disj(
            conj(neg(from_ds), at(10)),
            conj(from_ds, disj(conj(neg(to_ds), at(16)), conj(to_ds, at(24)))),
        )
        return conj(neg(ctl), disj(conj(neg(data), at(10)), conj(data, inner)))

    def dst() -> Formula:
        inner = disj(conj(neg(to_ds), at(4)), conj(to_ds, at(16)))
        return conj(neg(ctl), disj(conj(neg(data), at(4)), conj(data, inner)))

    type_ctl = Cmp(Alu("&", fc0, Imm(0x0C)), "eq", 0x04)
    subtype = Alu("&", fc0, Imm(0xF0))
    cts_or_ack = conj(type_ctl, disj(Cmp(subtype, "eq", 0xC0), Cmp(subtype, "eq", 0xD0)))
    if which == "src":
        return src()
    if which == "dst":
        return dst()
    if which == "":
        return disj(src(), dst())
    if which == "src and dst":
        return conj(src(), dst())
    if which == "addr1":
        return at(4)
    if which == "addr2":
        return conj(neg(cts_or_ack), at(10))
    if which == "addr3":
        return conj(neg(type_ctl), at(16))
    if which == "addr4":
        return conj(Cmp(Alu("&", fc1, Imm(0x03)), "eq", 0x03), at(24))
    if which == "ra":
        return conj(data, at(4))
    return conj(data, neg(cts_or_ack), at(10))  # "ta"


def link_bytes(low: _Lowering, size: int, off: int) -> Val:
    """``size`` bytes at ``off`` from the start of the link-layer header (``link[]``): inside
    a tunnel, of what it carries (where libpcap's program keeps its link-layer offset: the
    inner Ethernet header after ``vxlan``, the end of the Geneve header after ``geneve``)."""
    if low.link.kind in TUNNEL_READS:
        assert low.link.index is not None
        return load_at(size, off, low.link.index)
    return _bytes(low, size, off)
