"""The identifier of a qualified primitive: ``[proto] [dir] [kind] ID`` -> an AST node.

Pure; called by the parser with the qualifiers it read. Also parses libpcap's parenthesised lists
of identifiers under one set of qualifiers (``host (10.0.0.1 or 10.0.0.2)``).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple, Protocol

from .._errors import FilterSyntaxError
from ._ast import (
    And,
    DecnetHost,
    EtherHost,
    EtherProto,
    Host,
    IpProto,
    IsoProto,
    Net,
    Node,
    Not,
    Or,
    Port,
    PortRange,
    ProtoChain,
    WlanHost,
)
from ._idents import classful, dotted, mac, service
from ._lexer import Token, number
from ._names import (
    CONSTANTS,
    ETHER_PROTO_NAMES,
    ETHER_WORDS,
    IP_PROTO_NAMES,
    IP_WORDS,
    ISIS_WORDS,
    ISO_PROTOS,
    LINK_WORDS,
    PROTO_WORDS,
)
from ._services import PROTOCOLS

__all__ = ["KEYWORDS", "Quals", "primitive"]

#: Words that are never identifiers (write ``\\word`` for the name).
KEYWORDS = frozenset(
    PROTO_WORDS
    | LINK_WORDS
    | set(IP_WORDS)
    | set(ETHER_WORDS)
    | set(ISO_PROTOS)
    | set(ISIS_WORDS)
    | {
        "and", "or", "not", "src", "dst", "host", "net", "mask", "port", "portrange", "proto",
        "protochain", "gateway", "less", "greater", "len", "length", "vlan", "mpls", "pppoed",
        "pppoes", "inbound", "outbound", "ifindex", "llc", "byte", "broadcast", "multicast",
        "geneve", "vxlan", "type", "subtype", "dir", "direction", "addr1", "addr2", "addr3",
        "addr4", "address1", "address2", "address3", "address4", "ra", "ta",
    }
)  # fmt: skip
_HOST_PROTOS = ("", "ip", "ip6", "arp", "rarp")
_PORT_PROTOS = ("", "tcp", "udp", "sctp")
_MASK32 = 0xFFFFFFFF


class Quals(NamedTuple):
    """The qualifiers of a primitive: protocol, direction, kind ("" when not written)."""

    proto: str
    direction: str
    kind: str
    pos: int


class _Parser(Protocol):
    """What a primitive reads and sets of the parser (``_parser._Parser`` is one): the cursor
    over the tokens, and ``last``, the qualifiers a bare identifier after and/or/not reuses."""

    expr: str
    depth: int
    last: Quals | None

    def nest(self) -> None: ...
    def peek(self, ahead: int = 0) -> Token: ...
    def advance(self) -> Token: ...
    def error(self, message: str, tok: Token | None = None) -> FilterSyntaxError: ...
    def describe(self, tok: Token) -> str: ...
    def is_word(self, *words: str, ahead: int = 0) -> bool: ...
    def is_op(self, *ops: str, ahead: int = 0) -> bool: ...
    def number(self, what: str) -> int: ...


def primitive(p: _Parser, q: Quals) -> Node:
    """The node for the identifier at the parser's cursor under qualifiers ``q``."""
    tok = p.peek()
    kind, text = tok.kind, tok.text
    if kind == "op" and text == "(":
        return _id_list(p, q)
    if (kind == "word" and text == "not") or (kind == "op" and text == "!"):
        # libpcap's "decnet src not 1.1": the id negated
        p.nest()
        p.advance()
        node: Node = Not(primitive(p, q))
        p.depth -= 1
        return node
    node = _one(p, q)
    p.last = q
    return node


def _id_list(p: _Parser, q: Quals) -> Node:
    """``( ID { and|or [not] ID } )`` under one set of qualifiers, grouped from the left."""
    p.nest()
    opening = p.advance()
    node: Node | None = None
    joiner = ""
    while True:
        negate = p.is_word("not") or p.is_op("!")
        if negate:
            p.advance()
        item = _one(p, q)
        item = Not(item) if negate else item
        node = item if node is None else (And(node, item) if joiner == "and" else Or(node, item))
        if p.is_word("and", "or") or p.is_op("&&", "||"):
            joiner = "and" if p.advance().text in ("and", "&&") else "or"
            continue
        if p.is_op(")"):
            p.advance()
            break
        tok = p.peek()
        if tok.kind == "end":
            raise p.error("unclosed '(' (missing ')')", opening)
        raise p.error(f"expected ')' or and/or, found {p.describe(tok)}", tok)
    p.depth -= 1
    p.last = q
    return node


def _one(p: _Parser, q: Quals) -> Node:
    tok = p.peek()
    if tok.kind == "end":
        what = {
            "port": "port number",
            "portrange": "port range",
            "proto": "protocol",
            "protochain": "protocol",
        }
        raise p.error(f"missing {what.get(q.kind, 'address')}")
    if q.kind in ("proto", "protochain"):
        return _proto(p, q)
    if q.kind in ("port", "portrange"):
        if q.proto not in _PORT_PROTOS:
            raise FilterSyntaxError(f"{q.proto!r} cannot qualify {q.kind!r}", p.expr, q.pos)
        return _port(p, q)
    return _address(p, q)


def _proto(p: _Parser, q: Quals) -> Node:
    tok = p.peek()
    link = q.proto in LINK_WORDS
    if q.proto in ("iso", "isis"):
        if tok.kind == "num" and tok.value <= 0xFF:
            number = tok.value
        elif tok.kind == "word" and q.proto == "iso" and tok.text in ISO_PROTOS:
            number = ISO_PROTOS[tok.text]
        else:
            raise p.error(f"expected an {q.proto.upper()} protocol number, found {p.describe(tok)}")
        p.advance()
        return IsoProto(number, q.proto, q.pos)
    if q.proto not in ("", "ip", "ip6") and not link:
        raise FilterSyntaxError(f"{q.proto!r} cannot qualify 'proto'", p.expr, q.pos)
    limit = 0xFFFF if link else 0xFF
    if tok.kind == "num":
        if tok.value > limit:
            raise p.error(f"protocol number {tok.text} outside 0-{limit}")
        p.advance()
        number = tok.value
    elif tok.kind == "word":
        name = tok.text
        found = ETHER_PROTO_NAMES.get(name) if link else IP_PROTO_NAMES.get(name)
        if found is None and not link:
            found = PROTOCOLS.get(name)
        if found is None:
            what = "link-layer protocol" if link else "protocol"
            raise p.error(f"unknown {what} {name!r} (expected a protocol number or name)")
        p.advance()
        number = found
    else:
        raise p.error(f"expected a protocol number or name, found {p.describe(tok)}")
    if link:
        return EtherProto(number, q.pos)
    if q.kind == "protochain":
        return ProtoChain(number, q.proto, q.pos)
    return IpProto(number, q.proto, q.pos)


def _port_of(p: _Parser, text: str, tok: Token, proto: str) -> tuple[int, str]:
    """A port number or service name and the protocol it then means."""
    value = number(text)
    if value is not None:
        if value > 65535:
            raise p.error(f"port {text} outside 0-65535", tok)
        return value, proto
    found = service(text, proto)
    if isinstance(found, str):
        raise p.error(found, tok)
    return found


def _port(p: _Parser, q: Quals) -> Node:
    tok = p.peek()
    if tok.kind not in ("num", "word"):
        raise p.error(f"expected a port number or service name, found {p.describe(tok)}")
    p.advance()
    if q.kind == "port":
        port, proto = _port_of(p, tok.text, tok, q.proto)
        return Port(port, q.direction, proto, q.pos)
    if tok.kind == "num" and p.is_op("-"):
        p.advance()
        high_tok = p.advance()
        if high_tok.kind not in ("num", "word"):
            raise p.error(
                f"expected the end of the port range, found {p.describe(high_tok)}", high_tok
            )
        low, lproto = _port_of(p, tok.text, tok, q.proto)
        high, hproto = _port_of(p, high_tok.text, high_tok, q.proto)
        proto = lproto if lproto == hproto else q.proto  # as libpcap: both ends must agree
    elif tok.kind == "num":
        low, proto = _port_of(p, tok.text, tok, q.proto)
        high = low
    else:
        low, high, proto = _name_range(p, tok, q.proto)
    return PortRange(min(low, high), max(low, high), q.direction, proto, q.pos)


def _name_range(p: _Parser, tok: Token, proto: str) -> tuple[int, int, str]:
    """``ftp-data-ftp``, ``smtp-25``, ``bootps-bootpc``: split at the dash that leaves a port
    or a known service name on either side (names may contain dashes themselves)."""
    text = tok.text
    cuts = [i for i, ch in enumerate(text) if ch == "-"]
    for cut in cuts:
        try:
            low, lproto = _port_of(p, text[:cut], tok, proto)
            high, hproto = _port_of(p, text[cut + 1 :], tok, proto)
        except FilterSyntaxError:
            continue
        return low, high, lproto if lproto == hproto else proto
    if not cuts:
        port, proto = _port_of(p, text, tok, proto)
        return port, port, proto
    raise p.error(
        f"unknown port range {text!r} (expected LOW-HIGH of numbers or service names)", tok
    )


def _address(p: _Parser, q: Quals) -> Node:
    tok = p.peek()
    text = tok.text
    link = q.proto in LINK_WORDS
    if (
        not link
        and tok.kind == "addr"
        and q.proto in _HOST_PROTOS
        and not q.direction.startswith(("addr", "r", "t"))
        and ":" not in text
    ):
        found = dotted(text)  # the usual case, a dotted IPv4 address: no MAC reading to try
        if found is not None:
            p.advance()
            return _v4(p, q, found[0], found[1], tok, q.kind or "host")
    hw = mac(text) if tok.kind in ("addr", "word") else None
    if tok.kind == "num" and len(text) == 12 and all(c in "0123456789abcdefABCDEF" for c in text):
        hw = mac(text)  # twelve digits are a MAC address, as in libpcap
    if link or hw is not None:
        if hw is None:
            if tok.kind == "word":
                raise p.error(f"invalid MAC address {text!r} (host names are not resolved)")
            raise p.error(f"invalid MAC address {text!r}")
        if not link:
            raise p.error("a MAC address needs 'ether', 'link' or 'wlan' before it")
        if q.kind not in ("", "host"):
            raise FilterSyntaxError(f"{q.proto!r} cannot qualify {q.kind!r}", p.expr, q.pos)
        p.advance()
        if q.proto == "wlan":
            return WlanHost(hw, q.direction, q.pos)
        if q.direction.startswith("addr") or q.direction in ("ra", "ta"):
            raise FilterSyntaxError(f"{q.direction!r} needs 'wlan'", p.expr, q.pos)
        return EtherHost(hw, q.direction, q.pos)
    if q.direction.startswith("addr") or q.direction in ("ra", "ta"):
        raise FilterSyntaxError(f"{q.direction!r} takes a MAC address", p.expr, q.pos)
    if q.proto == "decnet":
        return _decnet(p, q)
    if q.proto not in _HOST_PROTOS:
        raise FilterSyntaxError(f"{q.proto!r} cannot qualify {q.kind or 'host'!r}", p.expr, q.pos)
    kind = q.kind or "host"
    if tok.kind == "num":
        if tok.value > _MASK32:
            raise p.error(f"number {text} does not fit in 32 bits")
        p.advance()
        value, bits = classful(tok.value) if kind == "net" else (tok.value, 32)
        return _v4(p, q, value, bits, tok, kind)
    if tok.kind == "word" and text not in CONSTANTS:
        raise p.error(f"invalid address {text!r} (host names are not resolved)")
    if tok.kind != "addr":
        raise p.error(f"expected an address, found {p.describe(tok)}")
    found = dotted(text)
    if found is not None:
        p.advance()
        return _v4(p, q, found[0], found[1], tok, kind)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise p.error(f"invalid address {text!r}", tok) from None
    p.advance()
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4(p, q, int(addr), 32, tok, kind)
    if q.proto not in ("", "ip6"):
        raise p.error(f"IPv6 address used with {q.proto!r}", tok)
    plen = 128
    if p.is_op("/"):
        p.advance()
        plen_tok = p.peek()
        plen = p.number("a prefix length")
        if plen > 128:
            raise p.error(f"invalid prefix length {plen} for IPv6", plen_tok)
    elif p.is_word("mask"):
        raise p.error("'mask' needs an IPv4 address and an IPv4 mask")
    try:
        net = ipaddress.IPv6Network(f"{addr}/{plen}")
    except ValueError:
        raise p.error(f"non-network bits set in {addr}/{plen}", tok) from None
    if plen == 128 and kind == "host":
        return Host(addr, q.direction, q.proto, q.pos)
    return Net(net, q.direction, q.proto, q.pos)


def _v4(p: _Parser, q: Quals, value: int, bits: int, tok: Token, kind: str) -> Node:
    if q.proto == "ip6":
        raise p.error("IPv4 address used with 'ip6'", tok)
    nxt = p.peek()
    if (
        bits == 32
        and kind == "host"
        and not (nxt.kind == "op" and nxt.text == "/")
        and not (nxt.kind == "word" and nxt.text == "mask")
    ):  # the usual case: one address
        return Host(ipaddress.IPv4Address(value), q.direction, q.proto, q.pos)
    mask = (_MASK32 << (32 - bits)) & _MASK32
    if p.is_op("/"):
        if kind == "host":
            raise p.error("mask syntax for networks only (write 'net')")
        p.advance()
        plen_tok = p.peek()
        bits = p.number("a prefix length")
        if bits > 32:
            raise p.error(f"invalid prefix length {bits} for IPv4", plen_tok)
        mask = (_MASK32 << (32 - bits)) & _MASK32
    elif p.is_word("mask"):
        if kind == "host":
            raise p.error("mask syntax for networks only (write 'net')")
        p.advance()
        mask_tok = p.peek()
        found = dotted(mask_tok.text) if mask_tok.kind == "addr" else None
        if found is None:
            raise p.error(f"expected a dotted netmask, found {p.describe(mask_tok)}")
        p.advance()
        mask = found[0]
        bits = 32 - (~mask & _MASK32).bit_length()
        if (_MASK32 << (32 - bits)) & _MASK32 != mask:
            raise p.error(f"invalid netmask {mask_tok.text} (not contiguous)", mask_tok)
    if value & ~mask & _MASK32:
        raise p.error(f"non-network bits set in {ipaddress.IPv4Address(value)}/{bits}", tok)
    addr = ipaddress.IPv4Address(value)
    if bits == 32 and kind == "host":
        return Host(addr, q.direction, q.proto, q.pos)
    return Net(ipaddress.IPv4Network(f"{addr}/{bits}"), q.direction, q.proto, q.pos)


def _decnet(p: _Parser, q: Quals) -> Node:
    """A DECnet address AREA.NODE (area 1-63, node 0-1023)."""
    tok = p.peek()
    if q.kind not in ("", "host"):
        raise FilterSyntaxError(f"'decnet' cannot qualify {q.kind!r}", p.expr, q.pos)
    parts = tok.text.split(".") if tok.kind in ("addr", "num") else []
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise p.error(f"expected a DECnet address AREA.NODE, found {p.describe(tok)}")
    area, node = int(parts[0]), int(parts[1])
    if area > 63 or node > 1023:
        raise p.error(f"invalid DECnet address {tok.text!r} (area 0-63, node 0-1023)")
    p.advance()
    return DecnetHost(area << 10 | node, q.direction, q.pos)
