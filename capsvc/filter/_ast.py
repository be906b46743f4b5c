"""The filter AST: frozen dataclasses, one per primitive, plus and/or/not and arithmetic.

Rule: ``str(node)`` is the normalized expression and parses back to an equal node. Source
positions (``pos``) are kept for error messages only and take no part in equality. Numbers are
stored as plain ints (named constants such as ``tcp-syn`` are resolved by the parser), addresses as
``ipaddress`` objects, MAC addresses as 6 bytes. An empty direction means "src or dst".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "And",
    "Arith",
    "BinOp",
    "Byte",
    "Cast",
    "Compare",
    "EtherHost",
    "EtherProto",
    "Geneve",
    "Host",
    "IfIndex",
    "IpProto",
    "Length",
    "Llc",
    "Load",
    "Mpls",
    "Negate",
    "Net",
    "Node",
    "Not",
    "Num",
    "Or",
    "Port",
    "PortRange",
    "Pppoe",
    "Proto",
    "ProtoChain",
    "Vlan",
    "Vxlan",
    "Way",
    "WlanDir",
    "WlanHost",
    "WlanType",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Binding strength of the arithmetic operators, as in libpcap's grammar (higher binds tighter).
#: ``%`` and ``^`` have none there (0): its parser always shifts them, so each applies to the
#: operand just before it and to all the arithmetic after it (``a % b + c`` is ``a % (b + c)``,
#: ``a + b ^ c | d`` is ``a + (b ^ (c | d))``, ``- a % b`` is ``-(a % b)``).
ARITH_PRECEDENCE = {
    "|": 1,
    "&": 2,
    "<<": 3,
    ">>": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 0,
    "^": 0,
}


class Node:
    """Base class of the boolean filter nodes."""

    __slots__ = ()


class Arith:
    """Base class of the arithmetic nodes used in comparisons."""

    __slots__ = ()


def _addr(addr: IPAddress) -> str:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return f"::ffff:{addr.ipv4_mapped}"
    return str(addr)


def _dir(direction: str) -> str:
    return f"{direction} " if direction else ""


def _qual(proto: str, direction: str) -> str:
    return (f"{proto} " if proto else "") + _dir(direction)


@dataclass(frozen=True)
class And(Node):
    """Both operands match (evaluated left to right, short-circuit)."""

    left: Node
    right: Node

    def __str__(self) -> str:
        return _chain(self, And, "and")

    def __eq__(self, other: object) -> bool:
        return _same(self, other)


@dataclass(frozen=True)
class Or(Node):
    """Either operand matches (evaluated left to right, short-circuit)."""

    left: Node
    right: Node

    def __str__(self) -> str:
        return _chain(self, Or, "or")

    def __eq__(self, other: object) -> bool:
        return _same(self, other)


def _same(a: object, b: object) -> bool:
    """Equality of two trees without recursion on and/or/not (chains can be thousands long)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, And | Or):
            assert isinstance(y, And | Or)
            stack += ((x.left, y.left), (x.right, y.right))
        elif isinstance(x, Not):
            assert isinstance(y, Not)
            stack.append((x.operand, y.operand))
        elif x != y:
            return False
    return True


def _chain(node: And | Or, kind: type, word: str) -> str:
    """Text of a left-nested chain, built in a loop (chains can be thousands long)."""
    rights: list[Node] = []
    item: Node = node
    while isinstance(item, kind) and isinstance(item, And | Or):
        rights.append(item.right)
        item = item.left
    texts = [_wrap(item, kind, False)] + [_wrap(r, kind, True) for r in reversed(rights)]
    return f" {word} ".join(texts)


@dataclass(frozen=True)
class Not(Node):
    """The operand does not match."""

    operand: Node

    def __str__(self) -> str:
        inner = self.operand
        text = str(inner)
        if isinstance(inner, And | Or | Compare):
            text = f"({text})"
        return f"not {text}"


def _wrap(child: Node, parent: type, right: bool) -> str:
    text = str(child)
    if isinstance(child, And | Or) and (type(child) is not parent or right):
        return f"({text})"
    return text


@dataclass(frozen=True)
class Host(Node):
    """``[ip|ip6|arp|rarp] [src|dst|src and dst] host ADDR``."""

    addr: IPAddress
    direction: str = ""
    proto: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{_qual(self.proto, self.direction)}host {_addr(self.addr)}"


@dataclass(frozen=True)
class Net(Node):
    """``[ip|ip6|arp|rarp] [src|dst] net PREFIX``."""

    net: IPNetwork
    direction: str = ""
    proto: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        prefix = f"{_addr(self.net.network_address)}/{self.net.prefixlen}"
        return f"{_qual(self.proto, self.direction)}net {prefix}"


@dataclass(frozen=True)
class EtherHost(Node):
    """``ether [src|dst] host MAC``; ``addr`` is 6 bytes."""

    addr: bytes
    direction: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"ether {_dir(self.direction)}host {self.addr.hex(':')}"


@dataclass(frozen=True)
class Port(Node):
    """``[tcp|udp|sctp] [src|dst] port N``."""

    port: int
    direction: str = ""
    proto: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{_qual(self.proto, self.direction)}port {self.port}"


@dataclass(frozen=True)
class PortRange(Node):
    """``[tcp|udp|sctp] [src|dst] portrange LOW-HIGH`` (inclusive, LOW <= HIGH)."""

    low: int
    high: int
    direction: str = ""
    proto: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{_qual(self.proto, self.direction)}portrange {self.low}-{self.high}"


@dataclass(frozen=True)
class Proto(Node):
    """A protocol abbreviation: ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp."""

    name: str
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class IpProto(Node):
    """``[ip|ip6] proto N``: the IP protocol / IPv6 next header (one fragment header skipped)."""

    number: int
    family: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.family + ' ' if self.family else ''}proto {self.number}"


@dataclass(frozen=True)
class ProtoChain(Node):
    """``[ip|ip6] protochain N``: protocol N anywhere in the chain of IP headers (IPv6
    extension headers and AH skipped, as libpcap walks them)."""

    number: int
    family: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.family + ' ' if self.family else ''}protochain {self.number}"


@dataclass(frozen=True)
class EtherProto(Node):
    """``ether proto N``: the link layer's protocol type field."""

    number: int
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"ether proto {self.number:#06x}"


@dataclass(frozen=True)
class Vlan(Node):
    """``vlan [ID]``: an 802.1Q/802.1ad tag; later primitives look past it (as in libpcap)."""

    vid: int | None = None
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return "vlan" if self.vid is None else f"vlan {self.vid}"


@dataclass(frozen=True)
class Compare(Node):
    """``ARITH OP ARITH`` with OP one of == != < <= > >= (unsigned 32-bit)."""

    left: Arith
    op: str
    right: Arith
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class Num(Arith):
    """A constant."""

    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Length(Arith):
    """``len``: the packet's length."""

    def __str__(self) -> str:
        return "len"


@dataclass(frozen=True)
class Load(Arith):
    """``PROTO[OFFSET:SIZE]``: SIZE (1, 2 or 4) bytes, big-endian, at OFFSET in PROTO's header."""

    proto: str
    offset: Arith
    size: int = 1
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        size = "" if self.size == 1 else f":{self.size}"
        return f"{self.proto}[{self.offset}{size}]"


@dataclass(frozen=True)
class BinOp(Arith):
    """``LEFT OP RIGHT`` with OP one of + - * / % & | ^ << >> (unsigned 32-bit)."""

    op: str
    left: Arith
    right: Arith

    def __str__(self) -> str:
        mine = ARITH_PRECEDENCE[self.op]
        left, right = str(self.left), str(self.right)
        # A "%" or "^" (0) takes all that follows it: its left operand is grouped whenever it
        # is an operation or a negation ("-a % b" reads as "-(a % b)"), and it is grouped
        # itself inside another operator's operands.
        if mine == 0:
            grouped = isinstance(self.left, (BinOp, Negate))
        else:
            grouped = isinstance(self.left, BinOp) and ARITH_PRECEDENCE[self.left.op] < mine
        if grouped:
            left = f"({left})"
        if isinstance(self.right, BinOp) and mine and ARITH_PRECEDENCE[self.right.op] <= mine:
            right = f"({right})"
        return f"{left} {self.op} {right}"


@dataclass(frozen=True)
class Negate(Arith):
    """``-OPERAND``: ``0 - OPERAND`` in unsigned 32-bit arithmetic, with the operand's protocol
    check (libpcap's ``neg``; ``0 - OPERAND`` written out keeps none, as the left operand of
    an operator is a constant)."""

    operand: Arith

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"-({inner})" if isinstance(self.operand, BinOp) else f"-{inner}"


@dataclass(frozen=True)
class Cast(Node):
    """``[ether|ip|ip6] broadcast|multicast`` (``kind``); ``proto`` "" means the link layer."""

    kind: str
    proto: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.proto + ' ' if self.proto else ''}{self.kind}"


@dataclass(frozen=True)
class Way(Node):
    """``inbound`` or ``outbound``: the direction the capture recorded for the packet."""

    outbound: bool
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return "outbound" if self.outbound else "inbound"


@dataclass(frozen=True)
class IfIndex(Node):
    """``ifindex N``: the interface index of the packet (Linux cooked v2 and live sockets)."""

    index: int
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"ifindex {self.index}"


@dataclass(frozen=True)
class Mpls(Node):
    """``mpls [LABEL]``: an MPLS label (that label); later primitives look past it."""

    label: int | None = None
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return "mpls" if self.label is None else f"mpls {self.label}"


@dataclass(frozen=True)
class Geneve(Node):
    """``geneve [VNI]``: a Geneve packet (UDP port 6081), of that VNI; the primitives after it
    in its ``and`` chain look at the packet it carries."""

    vni: int | None = None
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return "geneve" if self.vni is None else f"geneve {self.vni}"


@dataclass(frozen=True)
class Vxlan(Node):
    """``vxlan [VNI]``: a VXLAN packet (UDP to port 4789, flags 0x08), of that VNI; the
    primitives after it in its ``and`` chain look at the Ethernet frame it carries."""

    vni: int | None = None
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return "vxlan" if self.vni is None else f"vxlan {self.vni}"


@dataclass(frozen=True)
class Pppoe(Node):
    """``pppoed`` (discovery) or ``pppoes [ID]`` (session); a session moves later offsets."""

    session: bool
    sid: int | None = None
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        if not self.session:
            return "pppoed"
        return "pppoes" if self.sid is None else f"pppoes {self.sid}"


@dataclass(frozen=True)
class Llc(Node):
    """``llc [KIND]``: an 802.2 LLC frame (of that frame kind: i, s, u, rr, ui, ...)."""

    kind: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"llc {self.kind}" if self.kind else "llc"


@dataclass(frozen=True)
class Byte(Node):
    """``byte OFFSET OP VALUE``: the frame's byte at OFFSET against VALUE (OP = < > & |)."""

    offset: int
    op: str
    value: int
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"byte {self.offset} {self.op} {self.value}"


@dataclass(frozen=True)
class WlanHost(Node):
    """``wlan [src|dst|addr1..4|ra|ta] [host] MAC`` on 802.11 frames (``which`` "" = src or dst)."""

    addr: bytes
    which: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"wlan {self.which + ' ' if self.which else ''}host {self.addr.hex(':')}"


@dataclass(frozen=True)
class WlanType(Node):
    """``wlan type T [subtype S]``: frame control bits ``value`` under ``mask`` (0x0c type,
    0xfc type and subtype)."""

    value: int
    mask: int
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        text = f"wlan type {self.value & 0x0C}"
        return text if self.mask == 0x0C else f"{text} subtype {self.value & 0xF0:#04x}"


@dataclass(frozen=True)
class WlanDir(Node):
    """``wlan dir D``: the To DS / From DS bits (0 nods, 1 tods, 2 fromds, 3 dstods)."""

    value: int
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"wlan dir {self.value}"


@dataclass(frozen=True)
class IsoProto(Node):
    """``iso proto N`` (the NLPID of an OSI packet: clnp, esis, isis) or ``isis proto N`` (an
    IS-IS PDU type; ``family`` "isis")."""

    number: int
    family: str = "iso"
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.family} proto {self.number:#04x}"


@dataclass(frozen=True)
class DecnetHost(Node):
    """``decnet [src|dst] host AREA.NODE``; ``addr`` is AREA << 10 | NODE."""

    addr: int
    direction: str = ""
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"decnet {_dir(self.direction)}host {self.addr >> 10}.{self.addr & 0x3FF}"
