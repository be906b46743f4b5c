"""AST + link type -> IR, with libpcap's meaning of every primitive.

Pure. This is the one place (with ``_lowerbase`` and ``_link``) that knows header offsets; both
back-ends (the Python matcher and the BPF compiler) start from its output, so they cannot
disagree. The rule kept: every primitive expands to exactly the tests libpcap's code generator
emits for it, in the same order (which matters for frames too short for a test: those are
rejected as a whole). ``vlan``, ``mpls`` and ``pppoes`` move the offsets of every primitive
written after them, as in libpcap.
"""

from __future__ import annotations

import copy
import ipaddress

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
    Geneve,
    Host,
    IpProto,
    Length,
    Load,
    Negate,
    Net,
    Node,
    Not,
    Num,
    Or,
    Port,
    PortRange,
    Proto,
    ProtoChain,
    Vlan,
    Vxlan,
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
    Len,
    Msh,
    Rel,
    Val,
    Var,
    absorb,
    conj,
    disj,
    factor,
    fold,
    neg,
)
from ._link import FILTER_LINKTYPES, TUNNEL_READS, link_bytes
from ._lowerbase import KERNEL_IFINDEX, KERNEL_PKTTYPE, LoweringBase, direction
from ._simplify import simplify, small

__all__ = ["FILTER_LINKTYPES", "KERNEL_IFINDEX", "KERNEL_PKTTYPE", "lower"]

ETH_IP, ETH_IP6, ETH_ARP, ETH_RARP = ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_ARP, ETHERTYPE_REVARP
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
    "": (IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP),
}
#: Loads at these offsets read the socket buffer's metadata in a Linux socket filter
#: (SKF_AD_OFF + ..., linux/filter.h): whether the kernel took an 802.1Q tag out of the frame
#: and that tag's TCI (the packet type and interface index: ``_lowerbase``).
KERNEL_VLAN_TAG = skf_ad(SKF_AD_VLAN_TAG)
KERNEL_VLAN_PRESENT = skf_ad(SKF_AD_VLAN_TAG_PRESENT)
#: Expressions of more tests than this are only factored, not simplified: in a long chain of
#: alternatives few tests are decided by tests every path has made (the BPF compiler's jump
#: threading finds the ones decided on each path), and compiling stays fast. Every verdict on a
#: frame long enough for the expression is the same.
SIMPLIFY_UP_TO = 150
_BROADCAST = b"\xff" * 6
#: The primitives after which the rest of an ``and`` chain reads the packet a tunnel carries.
_TUNNELS = (Geneve, Vxlan)
_ETHER_WAYS = ("", "src", "dst", "src and dst")


def lower(
    node: Node,
    linktype: LinkType,
    expr: str = "",
    *,
    simplified: bool = True,
    kernel_vlan: bool = False,
    metadata: bool = True,
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
        metadata: ``inbound``/``outbound``/``ifindex`` on link types whose frames do not carry
            them may read the kernel's packet metadata (``KERNEL_PKTTYPE``, ``KERNEL_IFINDEX``:
            a program for a live Linux socket, as libpcap compiles on Linux). False (the Python
            matcher, capture files) makes them a FilterCompileError.

    Raises:
        FilterCompileError: the link type cannot express a primitive (for example ``vlan`` on
            raw IP); ``offset`` points at that primitive.
    """
    lowering = _Lowering(linktype, expr, metadata=metadata)
    formula = lowering.node(node)
    if kernel_vlan and lowering.vlans:
        # Two readings of one expression: the tag in the metadata (the frame as the kernel
        # shows it has none there) or, when there is none, everything in the frame.
        tagged = _Lowering(linktype, expr, tag_in_metadata=True, metadata=metadata).node(node)
        present = Cmp(Ld(1, KERNEL_VLAN_PRESENT), "eq", 1)
        formula = disj(conj(present, tagged), conj(neg(present), formula))
    if not simplified:
        return formula
    formula = factor(formula)
    return simplify(formula) if small(formula, SIMPLIFY_UP_TO) else formula


class _Lowering(LoweringBase):
    def node(self, node: Node) -> Formula:
        if isinstance(node, (And, Or)):
            # A long chain ("host a or host b or ...") is walked in a loop, left to right: the
            # order matters for "vlan" and the recursion depth must not grow with its length.
            kind = type(node)
            spine: list[Node] = []
            while isinstance(node, kind):
                spine.append(node.right)
                node = node.left
            parts = [node, *reversed(spine)]
            if kind is And and any(isinstance(part, _TUNNELS) for part in parts):
                return self.tunnelled(parts)
            out = self.node(parts[0])
            for right in parts[1:]:
                nxt = self.node(right)
                out = absorb(out, nxt, both=kind is And)
            return out
        if isinstance(node, Not):
            return neg(self.node(node.operand))
        if self.after_tunnel:
            raise self.fail(
                f"a primitive after '{self.after_tunnel}' must be in its 'and' chain (what "
                "comes after it there is inside the tunnel)",
                getattr(node, "pos", 0),
            )
        if isinstance(node, _TUNNELS):
            alternatives = disj(*(test for test, _ in self.tunnel(node)))
            self.after_tunnel = _keyword(node)
            return alternatives
        if isinstance(node, Proto):
            return self.proto_abbrev(node.name, node.pos)
        if isinstance(node, IpProto):
            if node.family == "ip":
                return self.ip_proto(node.number, node.pos)
            if node.family == "ip6":
                return self.ip6_proto(node.number, node.pos)
            return disj(self.ip_proto(node.number, node.pos), self.ip6_proto(node.number, node.pos))
        if isinstance(node, EtherProto):
            return self.linktype_is(node.number, node.pos)
        if isinstance(node, ProtoChain):
            return self.protochain(node)
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
        return self.other(node)

    def tunnelled(self, parts: list[Node]) -> Formula:
        """An ``and`` chain with a ``geneve`` or ``vxlan``: what follows it is lowered once for
        each layout of the tunnel (libpcap computes the offsets in registers at run time; here
        each layout has its own tests, so both back-ends keep their forward-only form)."""
        out: Formula | None = None
        for i, part in enumerate(parts):
            if isinstance(part, _TUNNELS) and not self.after_tunnel:
                rest = parts[i + 1 :]
                branches = []
                for test, link in self.tunnel(part):
                    inside = copy.copy(self)
                    inside.link, inside.shift, inside.extra, inside.mpls = link, 0, 0, 0
                    inside.tag_in_metadata = False
                    inner = inside.tunnelled(rest) if rest else None
                    branches.append(conj(test, inner))
                self.after_tunnel = _keyword(part)
                found = disj(*branches)
                return found if out is None else absorb(out, found, both=True)
            nxt = self.node(part)
            out = nxt if out is None else absorb(out, nxt, both=True)
        assert out is not None
        return out

    def host(self, node: Host | Net) -> Formula:
        plen: int
        if isinstance(node, Host):
            addr, plen = node.addr, node.addr.max_prefixlen
        else:
            addr, plen = node.net.network_address, node.net.prefixlen
        if isinstance(addr, ipaddress.IPv6Address):
            mask = (1 << 128) - (1 << (128 - plen))
            value = int(addr)
            return conj(
                self.linktype_is(ETH_IP6, node.pos),
                direction(
                    node.direction,
                    self.words(8, value, mask, 4),
                    self.words(24, value, mask, 4),
                ),
            )
        mask = (MASK32 << (32 - plen)) & MASK32
        value = int(addr)
        parts = []
        if node.proto in ("", "ip"):
            parts.append(
                conj(
                    self.linktype_is(ETH_IP, node.pos),
                    direction(
                        node.direction,
                        self.words(12, value, mask, 1),
                        self.words(16, value, mask, 1),
                    ),
                )
            )
        for name, ethertype in (("arp", ETH_ARP), ("rarp", ETH_RARP)):
            if node.proto in ("", name) and not self.mpls:
                parts.append(
                    conj(
                        self.linktype_is(ethertype, node.pos),
                        direction(
                            node.direction,
                            self.words(14, value, mask, 1),
                            self.words(24, value, mask, 1),
                        ),
                    )
                )
        return disj(*parts)

    def words(self, off: int, value: int, mask: int, count: int) -> Formula:
        """Masked compare of ``count`` 32-bit words at network offset ``off``."""
        parts = []
        for i in range(count):
            shift = 32 * (count - 1 - i)
            m, v = (mask >> shift) & MASK32, (value >> shift) & MASK32
            if m == 0:
                continue
            val: Val = self.at(4, off + 4 * i)
            if m != MASK32:
                val = Alu("&", val, Imm(m))
            parts.append(Cmp(val, "eq", v & m))
        return conj(*parts)

    def port(self, node: Port | PortRange) -> Formula:
        protos = _PORT_PROTOS[node.proto]

        def test(val: Val) -> Formula:
            if isinstance(node, Port):
                return Cmp(val, "eq", node.port)
            return conj(Cmp(val, "ge", node.low), neg(Cmp(val, "gt", node.high)))

        v4 = conj(
            self.linktype_is(ETH_IP, node.pos),
            disj(*(Cmp(self.at(1, 9), "eq", p) for p in protos)),
            self.not_fragment(),
            direction(node.direction, test(self.transport(2, 0)), test(self.transport(2, 2))),
        )
        v6 = conj(
            self.linktype_is(ETH_IP6, node.pos),
            disj(*(Cmp(self.at(1, 6), "eq", p) for p in protos)),
            direction(node.direction, test(self.at(2, 40)), test(self.at(2, 42))),
        )
        # IPv4 first (libpcap tests IPv6 first): the usual frame is decided a test sooner, and
        # the verdict is the same, as each branch first tests the type field already read.
        return disj(v4, v6)

    def vlan(self, node: Vlan) -> Formula:
        if self.mpls:
            raise self.fail("'vlan' cannot follow 'mpls' (libpcap refuses this too)", node.pos)
        if self.link.kind == "wlan":
            # The tag follows the 802.2 SNAP header of a data frame, as libpcap reads it.
            tagged = disj(*(self.linktype_is(t, node.pos) for t in VLAN_TPIDS))
            vid = None
            if node.vid is not None:
                vid = Cmp(Alu("&", self.at(2, 0), Imm(0x0FFF)), "eq", node.vid)
            self.shift += 4
            return conj(tagged, vid)
        self.outside_tunnel("'vlan'", node.pos)
        if self.link.kind != "ether":
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
        if isinstance(node, Negate):
            b, guard = self.arith(node.operand, pos)  # libpcap's neg keeps the operand's checks
            if isinstance(b, Imm):
                return Imm(fold("-", 0, b.k)), guard
            return Alu("-", Imm(0), b), guard
        if isinstance(node, BinOp):
            op = node.op
            a, guard = self.arith(node.left, pos)
            # libpcap keeps only the left operand's protocol checks for arithmetic.
            b, _ = self.arith(node.right, pos)
            if isinstance(b, Imm) and b.k == 0 and op in ("/", "%"):
                raise self.fail("division by zero" if op == "/" else "modulus by zero", pos)
            if isinstance(b, Imm) and b.k > 31 and op in ("<<", ">>"):
                raise self.fail("shift by more than 31 bits", pos)
            if isinstance(a, Imm) and isinstance(b, Imm):
                return Imm(fold(op, a.k, b.k)), guard
            # As libpcap's optimizer: an operation with a constant 0 that gives 0 whatever the
            # other operand is folded, and its loads go away (so a frame too short for them
            # still matches); 0 + x, 0 | x and 0 ^ x are x (0 - x stays a subtraction), and
            # so are x + 0, x - 0, x | 0, x ^ 0, x << 0 and x >> 0.
            if isinstance(b, Imm) and b.k == 0 and op in ("&", "*"):
                return Imm(0), guard
            if isinstance(b, Imm) and b.k == 0:
                return a, guard
            if isinstance(a, Imm) and a.k == 0 and op in ("&", "*", "/", "%", "<<", ">>"):
                return Imm(0), guard
            if isinstance(a, Imm) and a.k == 0 and op in ("+", "|", "^"):
                return b, guard
            return Alu(op, a, b), guard
        if isinstance(node, Load):
            return self.load(node)
        raise TypeError(f"not an arithmetic node: {node!r}")

    def load(self, node: Load) -> tuple[Val, Formula | None]:
        index, iguard = self.arith(node.offset, node.pos)
        size, proto = node.size, node.proto
        if proto in ("ether", "link"):
            if isinstance(index, Imm):  # a constant fits in 32 bits, as the offset does
                return link_bytes(self, size, index.k), iguard
            return self.indexed(size, 0, index, network=False), iguard
        if proto in ("ip", "ip6", "arp", "rarp"):
            return self.net_at(size, 0, index, node.pos), conj(
                iguard, self.proto_abbrev(proto, node.pos)
            )
        if proto == "icmp6":
            guard = conj(
                iguard,
                self.linktype_is(ETH_IP6, node.pos),
                Cmp(self.at(1, 6), "eq", IPPROTO_ICMPV6),
            )
            return self.net_at(size, 40, index, node.pos), guard
        guard = conj(
            self.linktype_is(ETH_IP, node.pos),
            iguard,
            self.proto_abbrev(proto, node.pos),
            self.not_fragment(),
        )
        if isinstance(index, Imm):
            _offset(self.pl + index.k, node.pos, self)
            return self.transport(size, index.k), guard
        if self.link.index is not None:
            base = Alu("+", index, self.link.index)
            return LdI(size, self.pl, Alu("+", base, self.header_length())), guard
        return LdI(size, self.pl, Alu("+", index, Msh(self.pl))), guard

    def net_at(self, size: int, base: int, index: Val, pos: int) -> Val:
        """``size`` bytes at ``base + index`` of the network-layer header."""
        if isinstance(index, Imm):
            _offset(self.pl + base + index.k, pos, self)
            return self.at(size, base + index.k)
        return self.indexed(size, base, index, network=True)

    def indexed(self, size: int, base: int, index: Val, *, network: bool) -> Val:
        if self.link.index is not None and network:
            return LdI(size, self.pl + base, Alu("+", index, self.link.index))
        if self.link.radiotap and not network:
            return LdI(size, base, Alu("+", index, Var("hdr")))
        if self.link.kind in TUNNEL_READS and not network:
            assert self.link.index is not None  # the link-layer header inside the tunnel
            return LdI(size, base, Alu("+", index, self.link.index))
        return LdI(size, (self.pl if network else 0) + base, index)


def _keyword(node: Geneve | Vxlan) -> str:
    return "geneve" if isinstance(node, Geneve) else "vxlan"


def _offset(off: int, pos: int, owner: _Lowering) -> int:
    if off > MASK32:
        raise owner.fail("offset does not fit in 32 bits", pos)
    return off
