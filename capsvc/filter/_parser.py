"""Recursive-descent parser: tokens -> AST (see the grammar in the package docstring).

Pure. Every failure is a FilterSyntaxError carrying the character offset of the offending token;
nothing else escapes ``parse``. A bare address or number right after ``and``/``or``/``not`` reuses
the qualifiers of the previous primitive, as in libpcap (``port 80 or 443``).
"""

from __future__ import annotations

import ipaddress

from .._errors import FilterSyntaxError
from ._ast import (
    ARITH_PRECEDENCE,
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
from ._lexer import Token, tokenize
from ._names import CONSTANTS, ETHER_PROTO_NAMES, IP_PROTO_NAMES, LOAD_PROTOS, PROTO_WORDS

__all__ = ["parse"]

_RELOPS = {">": ">", "<": "<", ">=": ">=", "<=": "<=", "=": "==", "==": "==", "!=": "!="}
_KINDS = ("host", "net", "port", "portrange")
_HOST_PROTOS = ("", "ip", "ip6", "arp", "rarp")
_PORT_PROTOS = ("", "tcp", "udp", "sctp")
_UNSUPPORTED = frozenset(
    {
        "gateway",
        "broadcast",
        "multicast",
        "protochain",
        "mpls",
        "pppoes",
        "geneve",
        "inbound",
        "outbound",
        "ifname",
        "on",
        "atalk",
        "decnet",
        "iso",
        "stp",
        "ipx",
        "netbeui",
        "llc",
        "wlan",
        "type",
        "subtype",
    }
)
_UINT32 = 0xFFFFFFFF
MAX_DEPTH = 40  # nesting of parentheses and "not"; keeps every back-end's recursion bounded


def parse(expr: str) -> Node | None:
    """Parse a filter expression into its AST.

    Args:
        expr: the expression, for example ``"tcp port 443 and not host 10.0.0.1"``.

    Returns:
        The root node, or None for an empty or blank expression (which matches everything).

    Raises:
        FilterSyntaxError: the expression is malformed; ``.offset`` points at the culprit.
    """
    if not isinstance(expr, str):
        raise FilterSyntaxError(
            f"a filter expression must be text, not {type(expr).__name__}", "", 0
        )
    parser = _Parser(expr)
    return parser.parse()


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.toks = tokenize(expr)
        self.toks += [self.toks[-1]] * 3  # look-ahead past the end sees "end"
        self.i = 0
        self.last: tuple[str, str, str] | None = None
        self.depth = 0

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)")

    # -- helpers -----------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.toks[self.i + ahead]

    def advance(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> FilterSyntaxError:
        tok = tok or self.peek()
        return FilterSyntaxError(message, self.expr, tok.pos)

    def describe(self, tok: Token) -> str:
        return "end of expression" if tok.kind == "end" else repr(tok.text)

    def is_word(self, *words: str, ahead: int = 0) -> bool:
        tok = self.toks[self.i + ahead]
        return tok.kind == "word" and tok.text in words

    def is_op(self, *ops: str, ahead: int = 0) -> bool:
        tok = self.toks[self.i + ahead]
        return tok.kind == "op" and tok.text in ops

    def expect_op(self, op: str, what: str) -> Token:
        if not self.is_op(op):
            raise self.error(f"expected {what}, found {self.describe(self.peek())}")
        return self.advance()

    # -- boolean structure -------------------------------------------------------------------

    def parse(self) -> Node | None:
        if self.peek().kind == "end":
            return None
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            if tok.text == ")":
                raise self.error("unmatched ')'", tok)
            raise self.error(f"unexpected {self.describe(tok)} (expected and, or, or the end)", tok)
        return node

    def or_expr(self) -> Node:
        left = self.and_expr()
        while True:
            tok = self.toks[self.i]
            if not (
                (tok.kind == "word" and tok.text == "or") or (tok.kind == "op" and tok.text == "||")
            ):
                return left
            self.advance()
            left = Or(left, self.and_expr())

    def and_expr(self) -> Node:
        left = self.unary()
        while True:
            tok = self.toks[self.i]
            kind, text = tok.kind, tok.text
            if (kind == "word" and text == "and") or (kind == "op" and text == "&&"):
                self.advance()
            elif not (kind == "word" and text != "or") and not (
                kind == "op" and text in ("(", "!")
            ):
                return left
            left = And(left, self.unary())

    def unary(self) -> Node:
        tok = self.toks[self.i]
        if (tok.kind == "word" and tok.text == "not") or (tok.kind == "op" and tok.text == "!"):
            self.nest()
            self.advance()
            node: Node = Not(self.unary())
            self.depth -= 1
            return node
        if self.is_op("(") and not self.paren_is_arith():
            self.nest()
            opening = self.advance()
            node = self.or_expr()
            if not self.is_op(")"):
                tok = self.peek()
                if tok.kind == "end":
                    raise self.error("unclosed '(' (missing ')')", opening)
                raise self.error(f"expected ')' or and/or, found {self.describe(tok)}", tok)
            self.advance()
            self.depth -= 1
            return node
        return self.term()

    def paren_is_arith(self) -> bool:
        """Whether the '(' at the cursor opens arithmetic (its ')' is followed by an operator)."""
        depth, j = 0, self.i
        while j < len(self.toks):
            tok = self.toks[j]
            if tok.kind == "end":
                return False
            if tok.kind == "op" and tok.text == "(":
                depth += 1
            elif tok.kind == "op" and tok.text == ")":
                depth -= 1
                if depth == 0:
                    nxt = self.toks[j + 1]
                    return nxt.kind == "op" and (
                        nxt.text in _RELOPS or nxt.text in ARITH_PRECEDENCE
                    )
            j += 1
        return False

    # -- primitives --------------------------------------------------------------------------

    def term(self) -> Node:
        tok = self.peek()
        nxt = self.peek(1)
        arith_next = nxt.kind == "op" and (nxt.text in _RELOPS or nxt.text in ARITH_PRECEDENCE)
        if tok.kind == "num":
            if arith_next:
                return self.comparison()
            if self.last is not None:
                return self.primitive(*self.last, tok.pos)
            raise self.error(
                f"unexpected number {tok.text} (a keyword such as 'port' or 'host' must come first)"
            )
        if tok.kind == "addr":
            if self.last is not None:
                return self.primitive(*self.last, tok.pos)
            return self.primitive("", "", "", tok.pos)
        if tok.kind == "end":
            raise self.error("unexpected end of expression")
        if tok.kind == "op":
            if tok.text == "(":
                return self.comparison()
            if tok.text == ")":
                raise self.error("unmatched ')'")
            raise self.error(f"unexpected {tok.text!r}")
        word = tok.text
        if word in ("less", "greater"):
            self.advance()
            value = self.number("a length")
            op = "<=" if word == "less" else ">="
            return Compare(Length(), op, Num(value), tok.pos)
        if word == "len" or word in CONSTANTS or (word in LOAD_PROTOS and self.is_op("[", ahead=1)):
            return self.comparison()
        if word == "vlan":
            self.advance()
            if self.peek().kind != "num":
                return Vlan(None, tok.pos)
            num = self.advance()
            if num.value > 4095:
                raise self.error(f"VLAN id {num.value} outside 0-4095", num)
            return Vlan(num.value, tok.pos)
        if word == "ether":
            return self.ether()
        if word == "proto":
            self.advance()
            return IpProto(self.proto_number(IP_PROTO_NAMES, 255), "", tok.pos)
        if word in PROTO_WORDS:
            self.advance()
            if word in ("ip", "ip6") and self.is_word("proto"):
                self.advance()
                return IpProto(self.proto_number(IP_PROTO_NAMES, 255), word, tok.pos)
            if self.is_word("src", "dst", *_KINDS):
                return self.qualified(word, tok.pos)
            return Proto(word, tok.pos)
        if word in ("src", "dst", *_KINDS):
            return self.qualified("", tok.pos)
        if word in ("and", "or", "not"):
            raise self.error(f"expected a primitive before {word!r}")
        if word in _UNSUPPORTED:
            raise self.error(f"unsupported keyword {word!r}")
        raise self.error(f"unknown keyword {word!r}")

    def direction(self) -> str:
        first = self.advance().text
        if (
            self.is_word("or", "and")
            and self.is_word("src", "dst", ahead=1)
            and self.peek(1).text != first
        ):
            joiner = self.advance().text
            self.advance()
            return "" if joiner == "or" else "src and dst"
        return first

    def qualified(self, proto: str, pos: int) -> Node:
        direction = self.direction() if self.is_word("src", "dst") else ""
        kind = ""
        if self.is_word(*_KINDS):
            kind = self.advance().text
        return self.primitive(proto, direction, kind, pos)

    def primitive(self, proto: str, direction: str, kind: str, pos: int) -> Node:
        tok = self.peek()
        if not kind:
            if tok.kind != "addr":
                raise self.error(
                    f"expected host, net, port, portrange or an address, found {self.describe(tok)}"
                )
            kind = "net" if self.is_op("/", ahead=1) or self.is_word("mask", ahead=1) else "host"
        allowed = _HOST_PROTOS if kind in ("host", "net") else _PORT_PROTOS
        if proto not in allowed:
            raise FilterSyntaxError(f"{proto!r} cannot qualify {kind!r}", self.expr, pos)
        self.last = (proto, direction, kind)
        if kind == "host":
            addr = self.address()
            self.check_family(proto, addr.version, tok)
            return Host(addr, direction, proto, pos)
        if kind == "net":
            net = self.network()
            self.check_family(proto, net.version, tok)
            return Net(net, direction, proto, pos)
        if kind == "port":
            return Port(self.port(), direction, proto, pos)
        low = self.port()
        self.expect_op("-", "'-' between the ports of a range (LOW-HIGH)")
        high = self.port()
        low, high = min(low, high), max(low, high)
        return PortRange(low, high, direction, proto, pos)

    def check_family(self, proto: str, version: int, tok: Token) -> None:
        if (proto == "ip6" and version == 4) or (proto in ("ip", "arp", "rarp") and version == 6):
            raise self.error(f"IPv{version} address used with {proto!r}", tok)

    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        tok = self.peek()
        if tok.kind == "end":
            raise self.error("missing address")
        if tok.kind not in ("addr", "num", "word"):
            raise self.error(f"expected an address, found {self.describe(tok)}")
        try:
            addr = ipaddress.ip_address(tok.text)
        except ValueError:
            hint = " (host names are not resolved)" if tok.kind == "word" else ""
            raise self.error(f"invalid address {tok.text!r}{hint}", tok) from None
        self.advance()
        return addr

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        tok = self.peek()
        addr = self.address()
        if self.is_op("/"):
            self.advance()
            plen_tok = self.peek()
            plen = self.number("a prefix length")
            if plen > addr.max_prefixlen:
                raise self.error(f"invalid prefix length {plen} for IPv{addr.version}", plen_tok)
        elif self.is_word("mask"):
            self.advance()
            mask_tok = self.peek()
            mask = self.address()
            try:
                plen = ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen
            except ValueError:
                raise self.error(f"invalid netmask {mask}", mask_tok) from None
            if addr.version != mask.version or addr.version != 4:
                raise self.error("'mask' needs an IPv4 address and an IPv4 mask", mask_tok)
        else:
            plen = addr.max_prefixlen
        try:
            return ipaddress.ip_network(f"{addr}/{plen}")
        except ValueError:
            raise self.error(f"non-network bits set in {addr}/{plen}", tok) from None

    def port(self) -> int:
        tok = self.peek()
        if tok.kind == "end":
            raise self.error("missing port number")
        if tok.kind != "num":
            raise self.error(f"expected a port number, found {self.describe(tok)}")
        self.advance()
        if not 1 <= tok.value <= 65535:
            raise self.error(f"port {tok.text} outside 1-65535", tok)
        return tok.value

    def number(self, what: str) -> int:
        tok = self.peek()
        if tok.kind != "num":
            raise self.error(f"expected {what}, found {self.describe(tok)}")
        if tok.value > _UINT32:
            raise self.error(f"number {tok.text} does not fit in 32 bits")
        self.advance()
        return tok.value

    def proto_number(self, names: dict[str, int], limit: int) -> int:
        tok = self.peek()
        if tok.kind == "word" and tok.text in names:
            self.advance()
            return names[tok.text]
        if tok.kind != "num":
            raise self.error(f"expected a protocol number or name, found {self.describe(tok)}")
        if tok.value > limit:
            raise self.error(f"protocol number {tok.text} outside 0-{limit}")
        self.advance()
        return tok.value

    def ether(self) -> Node:
        start = self.advance()
        if self.is_word("proto"):
            self.advance()
            return EtherProto(self.proto_number(ETHER_PROTO_NAMES, 0xFFFF), start.pos)
        if self.is_word("host"):
            self.advance()
            return EtherHost(self.mac(), "", start.pos)
        if self.is_word("src", "dst"):
            direction = self.direction()
            if self.is_word("host"):
                self.advance()
            return EtherHost(self.mac(), direction, start.pos)
        raise self.error("expected host, src, dst, proto or [ after 'ether'")

    def mac(self) -> bytes:
        tok = self.peek()
        if tok.kind == "end":
            raise self.error("missing MAC address")
        parts = tok.text.split(":")
        if len(parts) != 6 or not all(
            1 <= len(p) <= 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
        ):
            raise self.error(f"invalid MAC address {tok.text!r}", tok)
        self.advance()
        return bytes(int(p, 16) for p in parts)

    # -- arithmetic --------------------------------------------------------------------------

    def comparison(self) -> Compare:
        pos = self.peek().pos
        left = self.arith(1)
        tok = self.peek()
        if tok.kind != "op" or tok.text not in _RELOPS:
            raise self.error(f"expected a comparison (== != < <= > >=), found {self.describe(tok)}")
        self.advance()
        right = self.arith(1)
        return Compare(left, _RELOPS[tok.text], right, pos)

    def arith(self, min_prec: int) -> Arith:
        left = self.primary()
        while True:
            tok = self.peek()
            prec = ARITH_PRECEDENCE.get(tok.text, 0) if tok.kind == "op" else 0
            if prec < min_prec or prec == 0:
                return left
            self.advance()
            operand = self.peek()
            right = self.arith(prec + 1)
            if isinstance(right, Num):
                if tok.text in ("/", "%") and right.value == 0:
                    raise self.error("division by zero", operand)
                if tok.text in ("<<", ">>") and right.value > 31:
                    raise self.error("shift by more than 31 bits", operand)
            left = BinOp(tok.text, left, right)

    def primary(self) -> Arith:
        tok = self.peek()
        if tok.kind == "num":
            return Num(self.number("a number"))
        if tok.kind == "word":
            if tok.text == "len":
                self.advance()
                return Length()
            if tok.text in CONSTANTS:
                self.advance()
                return Num(CONSTANTS[tok.text])
            if tok.text in LOAD_PROTOS and self.is_op("[", ahead=1):
                self.nest()
                self.advance()
                self.advance()
                offset = self.arith(1)
                size = 1
                if self.is_op(":"):
                    self.advance()
                    size_tok = self.peek()
                    size = self.number("a size")
                    if size not in (1, 2, 4):
                        raise self.error("size must be 1, 2 or 4", size_tok)
                self.expect_op("]", "']'")
                self.depth -= 1
                return Load(tok.text, offset, size, tok.pos)
        if self.is_op("("):
            self.nest()
            self.advance()
            inner = self.arith(1)
            self.expect_op(")", "')'")
            self.depth -= 1
            return inner
        raise self.error(f"expected a number, 'len' or PROTO[OFFSET], found {self.describe(tok)}")
