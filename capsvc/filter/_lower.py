"""AST + link type -> IR, with libpcap's meaning of every primitive.

Pure. This is the one place that knows header offsets and link layers; both back-ends (the Python
matcher and the BPF compiler) start from its output, so they cannot disagree. The rule kept:
every primitive expands to exactly the tests libpcap's code generator emits for it, in the same
order (which matters for frames too short for a test: those are rejected as a whole). ``vlan``
moves the offsets of every primitive written after it, as in libpcap.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass

from .._errors import FilterCompileError
from .._packet import LinkType
from ..decode._const import (
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    ETHERTYPE_REVARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IGMP,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINUX_AF_INET,
    LINUX_AF_INET6,
    SKF_AD_VLAN_TAG,
    SKF_AD_VLAN_TAG_PRESENT,
    VLAN_TPIDS,
    skf_ad,
)
from ._ast import (
    And,
    Arith,
    BinOp,
    Compare,
    EtherHost,
    EtherProto,
    Host,
    IpProto,
    Length,
    Load,
    Net,
    Node,
    Not,
    Num,
    Or,
    Port,
    PortRange,
    Proto,
    Vlan,
)
from ._ir import (
    FALSE,
    MASK32,
    TRUE,
    Alu,
    Cmp,
    Formula,
    Imm,
    Ld,
    LdI,
    LdX,
    Len,
    Msh,
    Rel,
    Val,
    absorb,
    conj,
    disj,
    factor,
    fold,
    neg,
)
from ._simplify import simplify, small

__all__ = ["FILTER_LINKTYPES", "lower"]

ETH_IP, ETH_IP6, ETH_ARP, ETH_RARP = ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_ARP, ETHERTYPE_REVARP
# Linux values: libpcap compares the compiling host's AF_ numbers.
_AF_INET, _AF_INET6 = LINUX_AF_INET, LINUX_AF_INET6
_IP_PROTOS = {
    "tcp": IPPROTO_TCP,
    "udp": IPPROTO_UDP,
    "sctp": IPPROTO_SCTP,
    "icmp": IPPROTO_ICMP,
    "igmp": IPPROTO_IGMP,
}
_PORT_PROTOS = {
    "tcp": (IPPROTO_TCP,),
    "udp": (IPPROTO_UDP,),
    "sctp": (IPPROTO_SCTP,),
    "": (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP),
}
_LLC_SAPS = (0x06, 0xF0, 0xFE)  # libpcap checks DSAP and SSAP for these
#: Loads at these offsets read the socket buffer's metadata in a Linux socket filter
#: (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT / SKF_AD_VLAN_TAG, linux/filter.h): whether the kernel
#: took an 802.1Q tag out of the frame, and that tag's TCI.
KERNEL_VLAN_TAG = skf_ad(SKF_AD_VLAN_TAG)
KERNEL_VLAN_PRESENT = skf_ad(SKF_AD_VLAN_TAG_PRESENT)
#: Expressions of more tests than this are only factored, not simplified: in a long chain of
#: alternatives few tests are decided by tests every path has made (the BPF compiler's jump
#: threading finds the ones decided on each path), and compiling stays fast. Every verdict on a
#: frame long enough for the expression is the same.
SIMPLIFY_UP_TO = 150


@dataclass(frozen=True)
class _Link:
    kind: str  # "type" (a protocol type field), "af" (BSD loopback), "version", "ip", "ip6"
    type_off: int  # offset of the type field / AF word
    payload: int  # offset of the network-layer header


_LINKS = {
    LinkType.ETHERNET: _Link("type", 12, 14),
    LinkType.LINUX_SLL: _Link("type", 14, 16),
    LinkType.LINUX_SLL2: _Link("type", 0, 20),
    LinkType.NULL: _Link("af", 0, 4),
    LinkType.LOOP: _Link("af", 0, 4),
    LinkType.RAW: _Link("version", 0, 0),
    LinkType.IPV4: _Link("ip", 0, 0),
    LinkType.IPV6: _Link("ip6", 0, 0),
}
#: The link types filters compile for.
FILTER_LINKTYPES = frozenset(_LINKS)


def lower(
    node: Node,
    linktype: LinkType,
    expr: str = "",
    *,
    simplified: bool = True,
    kernel_vlan: bool = False,
) -> Formula:
    """Translate ``node`` into IR for frames of ``linktype``.

    Args:
        node: the parsed expression.
        linktype: the link type of the frames the result will test.
        expr: the expression text, used for error messages only.
        simplified: drop tests that earlier ones decide and share common leading tests
            (False gives every test of the expression as written, in order).
        kernel_vlan: for a Linux socket filter, which may see the outermost 802.1Q tag in the
            packet's metadata instead of the frame: the first ``vlan`` also accepts a tag in
            the metadata (loads from ``KERNEL_VLAN_PRESENT`` / ``KERNEL_VLAN_TAG``, which only
            the kernel can run), and then later offsets do not move, as in libpcap.

    Raises:
        FilterCompileError: the link type cannot express a primitive (for example ``vlan`` on
            raw IP); ``offset`` points at that primitive.
    """
    lowering = _Lowering(linktype, expr)
    formula = lowering.node(node)
    if kernel_vlan and lowering.vlans:
        # Two readings of one expression: the tag in the metadata (the frame as the kernel
        # shows it has none there) or, when there is none, everything in the frame.
        tagged = _Lowering(linktype, expr, tag_in_metadata=True).node(node)
        present = Cmp(Ld(1, KERNEL_VLAN_PRESENT), "eq", 1)
        formula = disj(conj(present, tagged), conj(neg(present), formula))
    if not simplified:
        return formula
    formula = factor(formula)
    return simplify(formula) if small(formula, SIMPLIFY_UP_TO) else formula


class _Lowering:
    def __init__(self, linktype: LinkType, expr: str, *, tag_in_metadata: bool = False) -> None:
        self.linktype = LinkType(linktype)
        link = _LINKS.get(self.linktype)
        if link is None:
            raise FilterCompileError(
                f"filters are not supported on link type {self.linktype.name} ({self.linktype:d})",
                expr,
                0,
            )
        self.link = link
        self.expr = expr
        self.tag_in_metadata = tag_in_metadata  # the first "vlan" reads the kernel's metadata
        self.vlans = 0  # "vlan" primitives lowered so far
        self.shift = 0  # bytes of VLAN tags skipped by earlier ``vlan`` primitives

    def fail(self, message: str, pos: int) -> FilterCompileError:
        return FilterCompileError(message, self.expr, pos)

    @property
    def pl(self) -> int:
        return self.link.payload + self.shift

    # -- link layer --------------------------------------------------------------------------

    def linktype_is(self, ethertype: int, pos: int = 0) -> Formula:
        link = self.link
        if link.kind == "type":
            off = link.type_off + self.shift
            if ethertype > 1500 or self.linktype == LinkType.LINUX_SLL2:
                return Cmp(Ld(2, off), "eq", ethertype)
            if self.linktype == LinkType.ETHERNET:
                if ethertype == 0xE0:
                    raise self.fail("ether proto 0xe0 (IPX over 802.2) is not supported", pos)
                if ethertype in _LLC_SAPS:
                    return conj(
                        neg(Cmp(Ld(2, off), "gt", 1500)),
                        Cmp(Ld(2, off + 2), "eq", ethertype << 8 | ethertype),
                    )
                return conj(neg(Cmp(Ld(2, off), "gt", 1500)), Cmp(Ld(1, off + 2), "eq", ethertype))
            if ethertype == 0xE0:
                raise self.fail("ether proto 0xe0 (IPX over 802.2) is not supported", pos)
            if ethertype in _LLC_SAPS:
                return conj(
                    Cmp(Ld(2, off), "eq", 4), Cmp(Ld(2, off + 2), "eq", ethertype << 8 | ethertype)
                )
            return conj(Cmp(Ld(2, off), "eq", 4), Cmp(Ld(1, off + 2), "eq", ethertype))
        if link.kind == "af":
            family = {ETH_IP: _AF_INET, ETH_IP6: _AF_INET6}.get(ethertype)
            if family is None:
                return FALSE
            if self.linktype == LinkType.NULL and sys.byteorder == "little":
                family = int.from_bytes(family.to_bytes(4, "little"), "big")
            return Cmp(Ld(4, link.type_off), "eq", family)
        if link.kind == "version":
            version = {ETH_IP: 0x40, ETH_IP6: 0x60}.get(ethertype)
            if version is None:
                return FALSE
            return Cmp(Alu("&", Ld(1, 0), Imm(0xF0)), "eq", version)
        wanted = ETH_IP if link.kind == "ip" else ETH_IP6
        return TRUE if ethertype == wanted else FALSE

    # -- IP protocols ------------------------------------------------------------------------

    def ip_proto(self, number: int) -> Formula:
        return conj(self.linktype_is(ETH_IP), Cmp(Ld(1, self.pl + 9), "eq", number))

    def ip6_proto(self, number: int) -> Formula:
        pl = self.pl
        nh = Ld(1, pl + 6)
        return conj(
            self.linktype_is(ETH_IP6),
            disj(Cmp(nh, "eq", number), conj(Cmp(nh, "eq", 44), Cmp(Ld(1, pl + 40), "eq", number))),
        )

    def proto_abbrev(self, name: str, pos: int) -> Formula:
        if name in ("ip", "ip6", "arp", "rarp"):
            return self.linktype_is(
                {"ip": ETH_IP, "ip6": ETH_IP6, "arp": ETH_ARP, "rarp": ETH_RARP}[name], pos
            )
        if name == "icmp6":
            return self.ip6_proto(58)
        if name in ("icmp", "igmp"):
            return self.ip_proto(_IP_PROTOS[name])
        number = _IP_PROTOS[name]
        return disj(self.ip_proto(number), self.ip6_proto(number))

    def not_fragment(self) -> Formula:
        return neg(Cmp(Ld(2, self.pl + 6), "set", 0x1FFF))

    # -- nodes -------------------------------------------------------------------------------

    def node(self, node: Node) -> Formula:
        if isinstance(node, (And, Or)):
            # A long chain ("host a or host b or ...") is walked in a loop, left to right: the
            # order matters for "vlan" and the recursion depth must not grow with its length.
            kind = type(node)
            spine: list[Node] = []
            while isinstance(node, kind):
                spine.append(node.right)
                node = node.left
            out = self.node(node)
            for right in reversed(spine):
                nxt = self.node(right)
                out = absorb(out, nxt, both=kind is And)
            return out
        if isinstance(node, Not):
            return neg(self.node(node.operand))
        if isinstance(node, Proto):
            return self.proto_abbrev(node.name, node.pos)
        if isinstance(node, IpProto):
            if node.family == "ip":
                return self.ip_proto(node.number)
            if node.family == "ip6":
                return self.ip6_proto(node.number)
            return disj(self.ip_proto(node.number), self.ip6_proto(node.number))
        if isinstance(node, EtherProto):
            return self.linktype_is(node.number, node.pos)
        if isinstance(node, (Host, Net)):
            return self.host(node)
        if isinstance(node, EtherHost):
            return self.ether_host(node)
        if isinstance(node, (Port, PortRange)):
            return self.port(node)
        if isinstance(node, Vlan):
            return self.vlan(node)
        if isinstance(node, Compare):
            return self.compare(node)
        raise TypeError(f"not a filter node: {node!r}")

    def host(self, node: Host | Net) -> Formula:
        plen: int
        if isinstance(node, Host):
            addr, plen = node.addr, node.addr.max_prefixlen
        else:
            addr, plen = node.net.network_address, node.net.prefixlen
        pl = self.pl
        if isinstance(addr, ipaddress.IPv6Address):
            mask = (1 << 128) - (1 << (128 - plen))
            value = int(addr)
            return conj(
                self.linktype_is(ETH_IP6),
                _direction(
                    node.direction, _words(pl + 8, value, mask, 4), _words(pl + 24, value, mask, 4)
                ),
            )
        mask = (MASK32 << (32 - plen)) & MASK32
        value = int(addr)
        parts = []
        if node.proto in ("", "ip"):
            parts.append(
                conj(
                    self.linktype_is(ETH_IP),
                    _direction(
                        node.direction,
                        _words(pl + 12, value, mask, 1),
                        _words(pl + 16, value, mask, 1),
                    ),
                )
            )
        for name, ethertype in (("arp", ETH_ARP), ("rarp", ETH_RARP)):
            if node.proto in ("", name):
                parts.append(
                    conj(
                        self.linktype_is(ethertype),
                        _direction(
                            node.direction,
                            _words(pl + 14, value, mask, 1),
                            _words(pl + 24, value, mask, 1),
                        ),
                    )
                )
        return disj(*parts)

    def ether_host(self, node: EtherHost) -> Formula:
        if self.linktype != LinkType.ETHERNET:
            raise self.fail(
                f"Ethernet addresses need Ethernet frames, not {self.linktype.name}", node.pos
            )
        high = int.from_bytes(node.addr[:2], "big")
        low = int.from_bytes(node.addr[2:], "big")

        def at(off: int) -> Formula:
            return conj(Cmp(Ld(4, off + 2), "eq", low), Cmp(Ld(2, off), "eq", high))

        return _direction(node.direction, at(6), at(0))

    def port(self, node: Port | PortRange) -> Formula:
        protos = _PORT_PROTOS[node.proto]
        pl = self.pl

        def test(val: Val) -> Formula:
            if isinstance(node, Port):
                return Cmp(val, "eq", node.port)
            return conj(Cmp(val, "ge", node.low), neg(Cmp(val, "gt", node.high)))

        v4 = conj(
            self.linktype_is(ETH_IP),
            disj(*(Cmp(Ld(1, pl + 9), "eq", p) for p in protos)),
            self.not_fragment(),
            _direction(node.direction, test(LdX(2, pl, pl)), test(LdX(2, pl + 2, pl))),
        )
        v6 = conj(
            self.linktype_is(ETH_IP6),
            disj(*(Cmp(Ld(1, pl + 6), "eq", p) for p in protos)),
            _direction(node.direction, test(Ld(2, pl + 40)), test(Ld(2, pl + 42))),
        )
        return disj(v4, v6)

    def vlan(self, node: Vlan) -> Formula:
        if self.linktype != LinkType.ETHERNET:
            raise self.fail(f"'vlan' needs Ethernet frames, not {self.linktype.name}", node.pos)
        self.vlans += 1
        if self.tag_in_metadata and self.vlans == 1:
            # libpcap's reading on Linux: the outermost tag is in the metadata, the frame
            # starts with the inner type field, and the offsets stay where they are.
            if node.vid is None:
                return TRUE
            return Cmp(Alu("&", Ld(2, KERNEL_VLAN_TAG), Imm(0x0FFF)), "eq", node.vid)
        off = self.link.type_off + self.shift
        tagged = disj(*(Cmp(Ld(2, off), "eq", t) for t in VLAN_TPIDS))
        vid = None
        if node.vid is not None:
            vid = Cmp(Alu("&", Ld(2, self.pl), Imm(0x0FFF)), "eq", node.vid)
        self.shift += 4
        return conj(tagged, vid)

    # -- arithmetic --------------------------------------------------------------------------

    def compare(self, node: Compare) -> Formula:
        left, lguard = self.arith(node.left, node.pos)
        right, rguard = self.arith(node.right, node.pos)
        op = node.op
        if isinstance(left, Imm) and not isinstance(right, Imm):
            left, right = right, left
            op = {">": "<", "<": ">", ">=": "<=", "<=": ">="}.get(op, op)
        base, negate = {
            "==": ("eq", False),
            "!=": ("eq", True),
            ">": ("gt", False),
            ">=": ("ge", False),
            "<": ("ge", True),
            "<=": ("gt", True),
        }[op]
        test: Formula
        if isinstance(left, Imm) and isinstance(right, Imm):
            a, b = left.k, right.k
            test = (
                TRUE if (a == b if base == "eq" else a > b if base == "gt" else a >= b) else FALSE
            )
        elif isinstance(right, Imm):
            test = Cmp(left, base, right.k)
        elif left == right:  # a value against itself: decided, as libpcap's optimizer sees
            test = FALSE if base == "gt" else TRUE
        else:
            test = Rel(left, base, right)
        return conj(lguard, rguard, neg(test) if negate else test)

    def arith(self, node: Arith, pos: int) -> tuple[Val, Formula | None]:
        if isinstance(node, Num):
            return Imm(node.value & MASK32), None
        if isinstance(node, Length):
            return Len(), None
        if isinstance(node, BinOp):
            a, guard = self.arith(node.left, pos)
            # libpcap keeps only the left operand's protocol checks for arithmetic.
            b, _ = self.arith(node.right, pos)
            if isinstance(b, Imm) and b.k == 0 and node.op in ("/", "%"):
                raise self.fail("division by zero", pos)
            if isinstance(b, Imm) and b.k > 31 and node.op in ("<<", ">>"):
                raise self.fail("shift by more than 31 bits", pos)
            if isinstance(a, Imm) and isinstance(b, Imm):
                return Imm(fold(node.op, a.k, b.k)), guard
            if isinstance(b, Imm) and b.k == 0 and node.op in ("&", "*"):
                return Imm(0), guard  # as libpcap's optimizer: the load goes away
            return Alu(node.op, a, b), guard
        if isinstance(node, Load):
            return self.load(node)
        raise TypeError(f"not an arithmetic node: {node!r}")

    def load(self, node: Load) -> tuple[Val, Formula | None]:
        index, iguard = self.arith(node.offset, node.pos)
        size, proto, pl = node.size, node.proto, self.pl
        if proto in ("ether", "link"):
            return _at(size, 0, index, node.pos, self), iguard
        if proto in ("ip", "ip6", "arp", "rarp"):
            return _at(size, pl, index, node.pos, self), conj(
                iguard, self.proto_abbrev(proto, node.pos)
            )
        if proto == "icmp6":
            guard = conj(
                iguard, self.linktype_is(ETH_IP6), Cmp(Ld(1, pl + 6), "eq", IPPROTO_ICMPV6)
            )
            return _at(size, pl + 40, index, node.pos, self), guard
        guard = conj(
            self.linktype_is(ETH_IP),
            iguard,
            self.proto_abbrev(proto, node.pos),
            self.not_fragment(),
        )
        if isinstance(index, Imm):
            return LdX(size, _offset(pl + index.k, node.pos, self), pl), guard
        return LdI(size, pl, Alu("+", index, Msh(pl))), guard


def _at(size: int, base: int, index: Val, pos: int, owner: _Lowering) -> Val:
    if isinstance(index, Imm):
        return Ld(size, _offset(base + index.k, pos, owner))
    return LdI(size, base, index)


def _offset(off: int, pos: int, owner: _Lowering) -> int:
    if off > MASK32:
        raise owner.fail("offset does not fit in 32 bits", pos)
    return off


def _words(off: int, value: int, mask: int, count: int) -> Formula:
    """Masked compare of ``count`` 32-bit words at ``off`` (words with an empty mask skipped)."""
    parts = []
    for i in range(count):
        shift = 32 * (count - 1 - i)
        m, v = (mask >> shift) & MASK32, (value >> shift) & MASK32
        if m == 0:
            continue
        val: Val = Ld(4, off + 4 * i)
        if m != MASK32:
            val = Alu("&", val, Imm(m))
        parts.append(Cmp(val, "eq", v & m))
    return conj(*parts)


def _direction(direction: str, src: Formula, dst: Formula) -> Formula:
    if direction == "src":
        return src
    if direction == "dst":
        return dst
    if direction == "src and dst":
        return conj(src, dst)
    return disj(src, dst)
