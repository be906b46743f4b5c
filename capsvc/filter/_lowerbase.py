"""The lowering's state and its helpers, and the primitives beyond hosts, ports and protocols.

Pure. ``LoweringBase`` keeps what earlier primitives changed (``vlan``, ``mpls``, ``pppoes``
offsets) and finds fields at the current offsets; ``_lower`` adds the AST walk and the host,
port, VLAN and arithmetic primitives. Every test is the one libpcap's code generator emits.
"""

from __future__ import annotations

from .._errors import FilterCompileError
from .._packet import LinkType
from ..decode._const import (
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    ETHERTYPE_MPLS,
    ETHERTYPE_REVARP,
    ETHERTYPE_TEB,
    IPPROTO_ICMP,
    IPPROTO_IGMP,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    PORT_GENEVE,
    PORT_VXLAN,
    SKF_AD_IFINDEX,
    SKF_AD_PKTTYPE,
    skf_ad,
)
from ._ast import (
    Byte,
    Cast,
    DecnetHost,
    EtherHost,
    Geneve,
    IfIndex,
    IsoProto,
    Llc,
    Mpls,
    Node,
    Pppoe,
    ProtoChain,
    Vxlan,
    Way,
    WlanDir,
    WlanHost,
    WlanType,
)
from ._ir import (
    MASK32,
    Alu,
    Chain,
    Cmp,
    Formula,
    Imm,
    Ld,
    LdI,
    LdX,
    Msh,
    Val,
    Var,
    conj,
    disj,
    load_at,
    neg,
)
from ._link import (
    FILTER_LINKTYPES,
    LINKS,
    TUNNEL_READS,
    Link,
    link_bytes,
    linktype_is,
    wlan_addr,
    wlan_data,
)
from ._names import LLC_KINDS

__all__ = ["KERNEL_IFINDEX", "KERNEL_PKTTYPE", "LoweringBase", "direction"]

ETH_IP, ETH_IP6, ETH_ARP, ETH_RARP = ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_ARP, ETHERTYPE_REVARP
_IP_PROTOS = {
    "tcp": IPPROTO_TCP,
    "udp": IPPROTO_UDP,
    "sctp": IPPROTO_SCTP,
    "icmp": IPPROTO_ICMP,
    "igmp": IPPROTO_IGMP,
}
#: Loads at these offsets read the socket buffer's metadata in a Linux socket filter
#: (SKF_AD_OFF + ..., linux/filter.h): the packet type (4: sent by this host) and the
#: interface index.
KERNEL_PKTTYPE = skf_ad(SKF_AD_PKTTYPE)
KERNEL_IFINDEX = skf_ad(SKF_AD_IFINDEX)
PACKET_OUTGOING = 4
_BROADCAST = b"\xff" * 6
#: The flags byte of a VXLAN header as libpcap's ``vxlan`` wants it: the I flag (a valid VNI)
#: alone, every other bit clear (RFC 7348).
VXLAN_FLAGS = 0x08
_ETHER_WAYS = ("", "src", "dst", "src and dst")


class LoweringBase:
    def __init__(
        self,
        linktype: LinkType,
        expr: str,
        *,
        tag_in_metadata: bool = False,
        metadata: bool = True,
    ) -> None:
        self.linktype = LinkType(linktype)
        self.expr = expr
        link = LINKS.get(self.linktype)
        if link is None:
            raise FilterCompileError(
                f"filters are not supported on link type {self.linktype.name} "
                f"({self.linktype:d}); they compile for "
                + ", ".join(sorted(lt.name for lt in FILTER_LINKTYPES)),
                expr,
                0,
            )
        self.link: Link = link
        self.metadata = metadata
        self.tag_in_metadata = tag_in_metadata  # the first "vlan" reads the kernel's metadata
        self.vlans = 0  # "vlan" primitives lowered so far
        self.shift = 0  # bytes of VLAN tags skipped by earlier ``vlan`` primitives
        self.extra = 0  # bytes of MPLS labels / a PPPoE header skipped before the network layer
        self.mpls = 0  # MPLS labels seen so far
        # The keyword of a tunnel ("geneve", "vxlan") lowered outside an "and" chain, or whose
        # chain ended: a primitive after it could not be given libpcap's meaning. "" if none.
        self.after_tunnel = ""

    def fail(self, message: str, pos: int) -> FilterCompileError:
        tunnel = self.link.kind
        if tunnel in TUNNEL_READS and tunnel not in message:
            message += f" (after '{tunnel}' {TUNNEL_READS[tunnel]})"
        return FilterCompileError(message, self.expr, pos)

    def outside_tunnel(self, what: str, pos: int) -> None:
        """Raise a FilterCompileError for ``what`` after a tunnel primitive (capsvc reads only
        some of what the tunnel carries: ``TUNNEL_READS``)."""
        tunnel = self.link.kind
        if tunnel in TUNNEL_READS:
            raise FilterCompileError(
                f"{what} is not supported after '{tunnel}': {TUNNEL_READS[tunnel]}",
                self.expr,
                pos,
            )

    @property
    def pl(self) -> int:
        """Offset of the network-layer header (from the 802.11 payload on 802.11)."""
        return self.link.payload + self.shift + self.extra

    def at(self, size: int, off: int) -> Val:
        """``size`` bytes at ``off`` from the start of the network-layer header."""
        index = self.link.index
        if index is not None:
            return load_at(size, self.pl + off, index)
        return Ld(size, self.pl + off)

    def transport(self, size: int, off: int) -> Val:
        """``size`` bytes at ``off`` from the start of an IPv4 packet's transport header."""
        index = self.link.index
        if index is not None:
            return LdI(size, self.pl + off, Alu("+", self.header_length(), index))
        return LdX(size, self.pl + off, self.pl)

    def header_length(self) -> Val:
        """An IPv4 header's length, where the link layer's length varies (``Link.index``)."""
        assert self.link.index is not None
        return Alu("<<", Alu("&", load_at(1, self.pl, self.link.index), Imm(15)), Imm(2))

    def linktype_is(self, ethertype: int, pos: int) -> Formula:
        return linktype_is(self, ethertype, pos)

    # -- IP protocols ------------------------------------------------------------------------

    def ip_proto(self, number: int, pos: int) -> Formula:
        return conj(self.linktype_is(ETH_IP, pos), Cmp(self.at(1, 9), "eq", number))

    def ip6_proto(self, number: int, pos: int) -> Formula:
        nh = self.at(1, 6)
        return conj(
            self.linktype_is(ETH_IP6, pos),
            disj(Cmp(nh, "eq", number), conj(Cmp(nh, "eq", 44), Cmp(self.at(1, 40), "eq", number))),
        )

    def proto_abbrev(self, name: str, pos: int) -> Formula:
        if name in ("ip", "ip6", "arp", "rarp"):
            return self.linktype_is(
                {"ip": ETH_IP, "ip6": ETH_IP6, "arp": ETH_ARP, "rarp": ETH_RARP}[name], pos
            )
        if name == "icmp6":
            return self.ip6_proto(58, pos)
        if name in ("icmp", "igmp"):
            return self.ip_proto(_IP_PROTOS[name], pos)
        number = _IP_PROTOS[name]
        return disj(self.ip_proto(number, pos), self.ip6_proto(number, pos))

    def protochain(self, node: ProtoChain) -> Formula:
        """libpcap's ``protochain``: the walk of the IP headers (``Chain``) reaches the protocol.
        Like libpcap, not where the link layer's length varies (802.11)."""
        if self.link.index is not None:
            raise self.fail(
                f"'protochain' is not supported with variable length headers "
                f"({self.linktype.name})",
                node.pos,
            )

        def walk(v6: bool) -> Formula:
            family = self.linktype_is(ETH_IP6 if v6 else ETH_IP, node.pos)
            return conj(family, Cmp(Chain(v6, self.pl, node.number), "eq", node.number))

        if node.family:
            return walk(node.family == "ip6")
        return disj(walk(False), walk(True))

    def tunnel(self, node: Geneve | Vxlan) -> list[tuple[Formula, Link]]:
        """The layouts of a tunnel primitive: (the test, the link layer of what is inside)."""
        return self.geneve(node) if isinstance(node, Geneve) else self.vxlan(node)

    def udp_to(self, port: int, pos: int) -> tuple[list[Formula], list[Formula], Val, Val]:
        """libpcap's ``gen_port`` / ``gen_port6`` for a UDP destination port, as a tunnel
        tests it: over IPv4 (not a later fragment) and over IPv6 (UDP as the first next
        header). Returns the IPv4 tests, the IPv6 tests, and where the UDP header starts in
        each (a value computed from the frame)."""
        index = self.link.index
        udp = Cmp(self.at(1, 9), "eq", IPPROTO_UDP)
        v4 = [self.linktype_is(ETH_IP, pos), udp, self.not_fragment()]
        v4 += [Cmp(self.transport(2, 2), "eq", port)]
        v6 = [self.linktype_is(ETH_IP6, pos), Cmp(self.at(1, 6), "eq", IPPROTO_UDP)]
        v6 += [Cmp(self.at(2, 42), "eq", port)]
        if index is None:
            at4: Val = Alu("+", Msh(self.pl), Imm(self.pl))
            at6: Val = Imm(self.pl + 40)
        else:
            at4 = Alu("+", Alu("+", self.header_length(), index), Imm(self.pl))
            at6 = Alu("+", index, Imm(self.pl + 40))
        return v4, v6, at4, at6

    def geneve(self, node: Geneve) -> list[tuple[Formula, Link]]:
        """libpcap's gen_geneve, one layout at a time: Geneve over IPv4 or over IPv6 (UDP to
        port 6081, version 0, the VNI when given), each carrying an Ethernet frame (protocol
        type 0x6558, Transparent Ethernet Bridging) or a network-layer packet whose EtherType
        is the protocol type. Returns (the test, the link layer of what is inside) for each."""
        v4, v6, udp4, udp6 = self.udp_to(PORT_GENEVE, node.pos)
        v4 += [Cmp(Alu("&", self.transport(1, 8), Imm(0xC0)), "eq", 0)]
        v6 += [Cmp(Alu("&", self.at(1, 48), Imm(0xC0)), "eq", 0)]
        if node.vni is not None:
            v4.append(Cmp(Alu("&", self.transport(4, 12), Imm(0xFFFFFF00)), "eq", node.vni << 8))
            v6.append(Cmp(Alu("&", self.at(4, 52), Imm(0xFFFFFF00)), "eq", node.vni << 8))
        out: list[tuple[Formula, Link]] = []
        for tests, udp in ((v4, udp4), (v6, udp6)):
            header = _plus(udp, 8)
            options = Alu("*", Alu("&", load_at(1, 0, header), Imm(0x3F)), Imm(4))
            inner = Alu("+", Alu("+", options, Imm(8)), header)
            bridged = Cmp(load_at(2, 2, header), "eq", ETHERTYPE_TEB)
            out.append((conj(*tests, bridged), Link("geneve", 12, 14, False, inner, inner)))
            out.append((conj(*tests, neg(bridged)), Link("geneve", 2, 0, False, inner, header)))
        return out

    def vxlan(self, node: Vxlan) -> list[tuple[Formula, Link]]:
        """libpcap's gen_vxlan (1.11), one layout at a time: VXLAN over IPv4 or over IPv6 (UDP
        to port 4789; the source port is not read), its flags byte exactly 0x08 (the I flag
        alone), the 24-bit VNI when given (the reserved byte after it is not compared). What it
        carries is always an Ethernet frame, 8 bytes past the UDP header's end: its EtherType
        at 12, its network layer at 14. Returns (the test, the link layer inside) for each."""
        v4, v6, udp4, udp6 = self.udp_to(PORT_VXLAN, node.pos)
        v4 += [Cmp(self.transport(1, 8), "eq", VXLAN_FLAGS)]
        v6 += [Cmp(self.at(1, 48), "eq", VXLAN_FLAGS)]
        if node.vni is not None:
            v4.append(Cmp(Alu("&", self.transport(4, 12), Imm(0xFFFFFF00)), "eq", node.vni << 8))
            v6.append(Cmp(Alu("&", self.at(4, 52), Imm(0xFFFFFF00)), "eq", node.vni << 8))
        out: list[tuple[Formula, Link]] = []
        for tests, udp in ((v4, udp4), (v6, udp6)):
            inner = _plus(udp, 16)
            out.append((conj(*tests), Link("vxlan", 12, 14, False, inner, inner)))
        return out

    def not_fragment(self) -> Formula:
        return neg(Cmp(self.at(2, 6), "set", 0x1FFF))

    # -- nodes -------------------------------------------------------------------------------

    def other(self, node: Node) -> Formula:
        kind = self.link.kind
        if isinstance(node, Cast):
            return self.cast(node)
        if isinstance(node, Way):
            return self.way(node)
        if isinstance(node, IfIndex):
            if kind == "sll2":
                return Cmp(Ld(4, 4), "eq", node.index)
            return Cmp(Ld(4, self.kernel(KERNEL_IFINDEX, "ifindex", node.pos)), "eq", node.index)
        if isinstance(node, Mpls):
            return self.mpls_label(node)
        if isinstance(node, Pppoe):
            return self.pppoe(node)
        if isinstance(node, Llc):
            return self.llc(node)
        if isinstance(node, IsoProto):
            return self.iso(node)
        if isinstance(node, DecnetHost):
            return self.decnet(node)
        if isinstance(node, Byte):
            # libpcap reads the byte from the link-layer header: after a radiotap header, and
            # inside a tunnel in what it carries.
            val = link_bytes(self, 1, node.offset)
            if node.op in ("&", "|"):
                return neg(Cmp(Alu(node.op, val, Imm(node.value)), "eq", 0))
            if node.op == "<":
                return neg(Cmp(val, "ge", node.value))
            return Cmp(val, "gt" if node.op == ">" else "eq", node.value)
        if isinstance(node, WlanHost) and kind in ("ether", "vxlan") and node.which in _ETHER_WAYS:
            # "wlan" is another name of the link layer: on Ethernet, the Ethernet address.
            return self.ether_host(EtherHost(node.addr, node.which, node.pos))
        if kind != "wlan":
            where = getattr(node, "pos", 0)
            raise self.fail(
                f"802.11 primitives need 802.11 frames, not {self.linktype.name}", where
            )
        if isinstance(node, WlanHost):
            return wlan_addr(self, node.which, node.addr)
        if isinstance(node, WlanType):
            return Cmp(Alu("&", link_bytes(self, 1, 0), Imm(node.mask)), "eq", node.value)
        if isinstance(node, WlanDir):
            return Cmp(Alu("&", link_bytes(self, 1, 1), Imm(0x03)), "eq", node.value)
        raise TypeError(f"not a filter node: {node!r}")

    def iso(self, node: IsoProto) -> Formula:
        """OSI: the NLPID after the 802.2 header (where libpcap reads it on each link type:
        on Cisco HDLC one byte further, past a pad byte); for ``isis proto``, the whole PDU
        type byte, 4 bytes after the 802.2 header (libpcap adds no pad byte there, and
        compares the reserved high bits too)."""
        nosnap = {"ether": 3, "wlan": -5}.get(self.link.kind, 0)
        nlpid = nosnap + 1 if self.link.kind == "chdlc" else nosnap
        if node.family == "iso":
            return conj(self.linktype_is(0xFE, node.pos), Cmp(self.at(1, nlpid), "eq", node.number))
        isis = conj(self.linktype_is(0xFE, node.pos), Cmp(self.at(1, nlpid), "eq", 0x83))
        return conj(isis, Cmp(self.at(1, nosnap + 4), "eq", node.number))

    def decnet(self, node: DecnetHost) -> Formula:
        """libpcap's gen_dnhostop: the address in the short or long data header, with or
        without a pad byte (the address is little-endian on the wire)."""
        addr = (node.addr & 0xFF) << 8 | node.addr >> 8

        def one(short: int, long: int) -> Formula:
            flags = self.at(1, 2)
            parts = (
                (Alu("&", flags, Imm(0x07)), 0x02, 2 + short),
                (Alu("&", self.at(2, 2), Imm(0xFF07)), 0x8102, 3 + short),
                (Alu("&", flags, Imm(0x07)), 0x06, 2 + long),
                (Alu("&", self.at(2, 2), Imm(0xFF07)), 0x8106, 3 + long),
            )
            return disj(
                *(
                    conj(Cmp(val, "eq", k), Cmp(self.at(2, off), "eq", addr))
                    for val, k, off in parts
                )
            )

        src, dst = one(3, 15), one(1, 7)
        return conj(self.linktype_is(0x6003, node.pos), direction(node.direction, src, dst))

    def kernel(self, offset: int, what: str, pos: int) -> int:
        if not self.metadata:
            raise self.fail(
                f"{what} is not in {self.linktype.name} frames: only a live capture's kernel "
                "filter can test it (or a Linux cooked capture)",
                pos,
            )
        return offset

    def way(self, node: Way) -> Formula:
        kind = self.link.kind
        if kind == "sll":
            out: Formula = Cmp(Ld(2, 0), "eq", PACKET_OUTGOING)
        elif kind == "sll2":
            out = Cmp(Ld(1, 10), "eq", PACKET_OUTGOING)
        elif self.linktype == LinkType.SLIP:
            # libpcap: inbound is a direction byte of 0, outbound any other value.
            inbound = Cmp(Ld(1, 0), "eq", 0)
            return neg(inbound) if node.outbound else inbound
        else:
            where = self.kernel(KERNEL_PKTTYPE, str(node), node.pos)
            out = Cmp(Ld(2, where), "eq", PACKET_OUTGOING)
        return out if node.outbound else neg(out)

    def cast(self, node: Cast) -> Formula:
        kind = self.link.kind
        if node.proto in ("ip", "ip6"):
            if node.proto == "ip6":
                return conj(self.linktype_is(ETH_IP6, node.pos), Cmp(self.at(1, 24), "eq", 0xFF))
            ip = self.linktype_is(ETH_IP, node.pos)
            if node.kind == "multicast":
                return conj(ip, Cmp(self.at(1, 16), "ge", 224))
            # tcpdump reads files with a netmask of 0: "ip broadcast" is 0.0.0.0 or all-ones.
            dst = self.at(4, 16)
            return conj(ip, disj(Cmp(dst, "eq", 0), Cmp(dst, "eq", MASK32)))
        mask = 0x01 if node.kind == "multicast" else 0
        if kind == "wlan":
            return wlan_addr(self, "dst", _BROADCAST, mask)
        if kind != "vxlan":
            self.outside_tunnel(f"link-layer {node.kind}", node.pos)
        if kind not in ("ether", "vxlan"):
            raise self.fail(f"{self.linktype.name} has no link-layer {node.kind}", node.pos)
        # On Ethernet, or the Ethernet frame a VXLAN packet carries.
        if mask:
            return Cmp(link_bytes(self, 1, 0), "set", mask)
        return conj(
            Cmp(link_bytes(self, 4, 2), "eq", MASK32), Cmp(link_bytes(self, 2, 0), "eq", 0xFFFF)
        )

    def mpls_label(self, node: Mpls) -> Formula:
        self.outside_tunnel("'mpls'", node.pos)
        if self.mpls:
            head: Formula = Cmp(Alu("&", self.at(1, -2), Imm(0x01)), "eq", 0)
        elif self.link.kind in ("ether", "chdlc") or (
            self.link.kind == "ppp" and self.linktype != LinkType.PPP_HDLC
        ):
            head = self.linktype_is(ETHERTYPE_MPLS, node.pos)
        else:
            raise self.fail(f"'mpls' is not supported on {self.linktype.name}", node.pos)
        label = None
        if node.label is not None:
            label = Cmp(Alu("&", self.at(4, 0), Imm(0xFFFFF000)), "eq", node.label << 12)
        self.extra += 4
        self.mpls += 1
        return conj(head, label)

    def pppoe(self, node: Pppoe) -> Formula:
        if self.link.kind == "nflog":
            raise self.fail(f"'{node}' is not supported on {self.linktype.name}", node.pos)
        if not node.session:
            return self.linktype_is(0x8863, node.pos)
        test = self.linktype_is(0x8864, node.pos)
        sid = None
        if node.sid is not None:
            sid = Cmp(Alu("&", self.at(4, 0), Imm(0xFFFF)), "eq", node.sid)
        # What follows is PPP inside the session: its protocol field, then the network layer.
        here = self.pl - self.shift
        self.link = Link("ppp", here + 6, here + 8, self.link.radiotap, self.link.index)
        self.extra = 0
        return conj(test, sid)

    def llc(self, node: Llc) -> Formula:
        self.outside_tunnel("'llc'", node.pos)
        kind = self.link.kind
        if kind == "wlan":
            test = wlan_data(self)
            control: Val = LdI(1, 2, Var("pl"))
        elif kind == "ether":
            off = self.link.type_off + self.shift
            test = conj(neg(Cmp(Ld(2, off), "gt", 1500)), neg(Cmp(Ld(2, off + 2), "eq", 0xFFFF)))
            control = Ld(1, off + 4)
        else:
            raise self.fail(f"'llc' is not supported on {self.linktype.name}", node.pos)
        if not node.kind:
            return test
        mask, value = LLC_KINDS[node.kind]
        return conj(test, Cmp(Alu("&", control, Imm(mask)), "eq", value))

    def ether_host(self, node: EtherHost) -> Formula:
        if self.link.kind == "wlan":
            return wlan_addr(self, node.direction, node.addr)
        if self.link.kind != "vxlan":
            self.outside_tunnel("'ether host'", node.pos)
        if self.link.kind not in ("ether", "vxlan"):
            raise self.fail(
                f"Ethernet addresses need Ethernet or 802.11 frames, not {self.linktype.name}",
                node.pos,
            )
        high = int.from_bytes(node.addr[:2], "big")
        low = int.from_bytes(node.addr[2:], "big")

        def at(off: int) -> Formula:
            return conj(
                Cmp(link_bytes(self, 4, off + 2), "eq", low),
                Cmp(link_bytes(self, 2, off), "eq", high),
            )

        return direction(node.direction, at(6), at(0))


def direction(direction: str, src: Formula, dst: Formula) -> Formula:
    if direction == "src":
        return src
    if direction == "dst":
        return dst
    if direction == "src and dst":
        return conj(src, dst)
    return disj(src, dst)


def _plus(val: Val, k: int) -> Val:
    """``val + k``, folded into a constant or into a sum that ends with one."""
    if isinstance(val, Imm):
        return Imm(val.k + k)
    if isinstance(val, Alu) and val.op == "+" and isinstance(val.b, Imm):
        return Alu("+", val.a, Imm(val.b.k + k))
    return Alu("+", val, Imm(k))
