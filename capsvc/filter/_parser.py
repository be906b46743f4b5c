"""Recursive-descent parser: tokens -> AST (see the grammar in the package docstring).

Pure. Every failure is a FilterSyntaxError carrying the character offset of the offending token;
nothing else escapes ``parse``. As in libpcap, ``and`` and ``or`` have equal precedence and group
from the left (``tcp or udp and port 53`` is ``(tcp or udp) and port 53``), ``not`` binds
tighter, and a bare identifier right after ``and``/``or``/``not`` reuses the qualifiers of the
previous primitive (``port 80 or 443``). Expressions are bounded: ``MAX_LENGTH`` characters and
``MAX_DEPTH`` levels of nesting (parentheses, ``not``, changes between ``and`` and ``or``,
arithmetic operators), so no back-end ever runs out of recursion.
"""

from __future__ import annotations

from .._errors import FilterSyntaxError
from ._arith import RELOPS as _RELOPS
from ._arith import Arithmetic
from ._ast import (
    ARITH_PRECEDENCE,
    And,
    Arith,
    BinOp,
    Cast,
    Compare,
    EtherProto,
    Geneve,
    IfIndex,
    IpProto,
    IsoProto,
    Length,
    Llc,
    Load,
    Mpls,
    Negate,
    Node,
    Not,
    Num,
    Or,
    Pppoe,
    Proto,
    Vlan,
    Vxlan,
    Way,
)
from ._cursor import MAX_DEPTH
from ._lexer import Token, tokenize
from ._names import (
    CONSTANTS,
    ETHER_WORDS,
    IP_WORDS,
    ISIS_WORDS,
    ISO_PROTOS,
    LINK_WORDS,
    LLC_KINDS,
    LOAD_PROTOS,
    PROTO_WORDS,
)
from ._primitive import KEYWORDS, Quals, primitive

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "nesting", "parse", "read_as"]

_KINDS = ("host", "net", "port", "portrange")
_DIRS = ("src", "dst")
_WLAN_DIRS = ("addr1", "addr2", "addr3", "addr4", "address1", "address2", "address3",
              "address4", "ra", "ta")  # fmt: skip
_UNSUPPORTED = frozenset(
    {"gateway", "ifname", "on", "rnr", "rulenum", "reason",
     "rset", "ruleset", "srnr", "subrulenum", "action", "fisu", "lssu", "msu", "hfisu", "hlssu",
     "hmsu", "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls", "vpi", "vci", "lane",
     "oamf4sc", "oamf4ec", "oamf4", "oam", "metac", "bcc", "sc", "ilmic", "connectmsg",
     "metaconnect"}
)  # fmt: skip
_UINT32 = 0xFFFFFFFF
_DIRS_KINDS = frozenset((*_DIRS, *_KINDS))
_ANY_DIRS = frozenset((*_DIRS, *_WLAN_DIRS))
_QUALIFIERS = frozenset((*_DIRS, *_KINDS, *_WLAN_DIRS))
#: Words most expressions start primitives with, dispatched before the rest.
_COMMON = frozenset({"host", "net", "port", "portrange", "src", "dst", "tcp", "udp", "ip", "ip6"})
#: Characters an expression may have at most (64 KiB); ``parse(..., max_length=)`` overrides.
MAX_LENGTH = 65536


def parse(expr: str, *, max_length: int | None = None) -> Node | None:
    """Parse a filter expression into its AST.

    Args:
        expr: the expression, for example ``"tcp port 443 and not host 10.0.0.1"``.
        max_length: the longest expression accepted, in characters (default ``MAX_LENGTH``,
            64 KiB; 0 means no limit).

    Returns:
        The root node, or None for an empty or blank expression (which matches everything).

    Raises:
        FilterSyntaxError: the expression is malformed, longer than ``max_length`` or nested
            more than ``MAX_DEPTH`` levels deep; ``.offset`` points at the culprit.
    """
    return _parse(expr, max_length)[0]


def read_as(expr: str) -> str | None:
    """The expression with its grouping made explicit, when it mixes ``and`` and ``or``
    without parentheses (``"tcp or udp and port 53"`` -> ``"(tcp or udp) and port 53"``);
    None when there is nothing to explain.

    Raises:
        FilterSyntaxError: as ``parse``.
    """
    node, mixed = _parse(expr, None)
    return str(node) if mixed and node is not None else None


def _parse(expr: str, max_length: int | None) -> tuple[Node | None, bool]:
    if not isinstance(expr, str):
        raise FilterSyntaxError(
            f"a filter expression must be text, not {type(expr).__name__}", "", 0
        )
    limit = MAX_LENGTH if max_length is None else max_length
    if limit and len(expr) > limit:
        raise FilterSyntaxError(
            f"expression of {len(expr)} characters is longer than the limit of {limit}",
            expr,
            limit,
        )
    parser = _Parser(expr)
    node = parser.parse()
    # A bound from what the parser counted: when even it is shallow enough, no walk is needed.
    if node is not None and parser.deepest + parser.levels + 2 > MAX_DEPTH:
        depth, pos = nesting(node)
        if depth > MAX_DEPTH:
            raise FilterSyntaxError(
                f"expression nested too deeply (more than {MAX_DEPTH} levels)", expr, pos
            )
    return node, parser.mixed


def nesting(node: Node | Arith) -> tuple[int, int]:
    """How deeply ``node`` nests, without recursion: a chain of one of ``and``/``or`` is one
    level, each change between them, each ``not``, arithmetic operator and load another. Also
    returns the position of the deepest primitive known (for the error)."""
    best, where = 0, 0
    stack: list[tuple[object, int, type | None]] = [(node, 1, None)]
    while stack:
        item, depth, chain = stack.pop()
        if depth > best:
            best = depth
            where = getattr(item, "pos", where)
        if isinstance(item, (And, Or)):
            inner = depth if type(item) is chain else depth + 1
            stack.append((item.left, inner, type(item)))
            stack.append((item.right, depth + 1, type(item)))
        elif isinstance(item, (Not, Negate)):
            stack.append((item.operand, depth + 1, None))
        elif isinstance(item, (Compare, BinOp)):
            stack.append((item.left, depth + 1, None))
            stack.append((item.right, depth + 1, None))
        elif isinstance(item, Load):
            stack.append((item.offset, depth + 1, None))
    return best, where


class _Parser(Arithmetic):
    def __init__(self, expr: str) -> None:
        super().__init__(expr, tokenize(expr))
        self.last: Quals | None = None
        self.mixed = False  # a chain changed between "and" and "or" without parentheses

    # -- boolean structure -------------------------------------------------------------------

    def parse(self) -> Node | None:
        if self.peek().kind == "end":
            return None
        node = self.chain()
        tok = self.peek()
        if tok.kind != "end":
            if tok.text == ")":
                raise self.error("unmatched ')'", tok)
            raise self.error(f"unexpected {self.describe(tok)} (expected and, or, or the end)", tok)
        return node

    def chain(self) -> Node:
        """Terms joined by ``and``/``or`` (or side by side, meaning ``and``), from the left."""
        left = self.unary()
        previous = ""
        while True:
            tok = self.toks[self.i]
            kind, text = tok.kind, tok.text
            if (kind == "word" and text == "and") or (kind == "op" and text == "&&"):
                word = "and"
                self.advance()
            elif (kind == "word" and text == "or") or (kind == "op" and text == "||"):
                word = "or"
                self.advance()
            elif kind == "word" or (kind == "op" and text in ("(", "!")):
                word = "and"  # two primitives side by side
            else:
                return left
            if previous and word != previous:
                self.mixed = True
                self.levels += 1
            previous = word
            right = self.unary()
            left = And(left, right) if word == "and" else Or(left, right)

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
            node = self.chain()
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

    def reuse(self) -> Node:
        """A bare identifier: with the previous primitive's qualifiers, or as ``host``."""
        quals = self.last or Quals("", "", "", self.peek().pos)
        return primitive(self, Quals(quals.proto, quals.direction, quals.kind, self.peek().pos))

    def term(self) -> Node:
        tok = self.peek()
        nxt = self.peek(1)
        arith_next = nxt.kind == "op" and (nxt.text in _RELOPS or nxt.text in ARITH_PRECEDENCE)
        if tok.kind == "num":
            if arith_next:
                return self.comparison()
            if self.last is not None:
                return self.reuse()
            raise self.error(
                f"unexpected number {tok.text} (a keyword such as 'port' or 'host' must come first)"
            )
        if tok.kind == "addr":
            return self.reuse()
        if tok.kind == "end":
            raise self.error("unexpected end of expression")
        if tok.kind == "op":
            if tok.text in ("(", "-"):
                return self.comparison()
            if tok.text == ")":
                raise self.error("unmatched ')'")
            raise self.error(f"unexpected {tok.text!r}")
        word = tok.text
        if tok.value and self.last is not None:  # an escaped word is an identifier
            return self.reuse()
        if word in _COMMON and not self.is_op("[", ahead=1):  # the usual words first
            if word in _DIRS or word in _KINDS:
                return self.qualified("", tok.pos)
            return self.qualified_proto(tok)
        if word not in KEYWORDS and word not in CONSTANTS:
            if self.last is not None or word in _UNSUPPORTED:
                if word in _UNSUPPORTED:
                    raise self.error(f"unsupported keyword {word!r}")
                return self.reuse()
            if "." in word or ":" in word or "-" in word:
                return self.reuse()  # a MAC address or a host name: reported there
            raise self.error(f"unknown keyword {word!r}")
        if word in ("less", "greater"):
            self.advance()
            value = self.number("a length")
            op = "<=" if word == "less" else ">="
            return Compare(Length(), op, Num(value), tok.pos)
        if word in ("len", "length") or word in CONSTANTS:
            return self.comparison()
        if word in LOAD_PROTOS and self.is_op("[", ahead=1):
            return self.comparison()
        if word == "vlan":
            self.advance()
            num = self.optional_number(4095, "VLAN id")
            return Vlan(num, tok.pos)
        if word == "mpls":
            self.advance()
            return Mpls(self.optional_number(0xFFFFF, "MPLS label"), tok.pos)
        if word == "geneve":
            self.advance()
            return Geneve(self.optional_number(0xFFFFFF, "Geneve VNI"), tok.pos)
        if word == "vxlan":
            self.advance()
            return Vxlan(self.optional_number(0xFFFFFF, "VXLAN VNI"), tok.pos)
        if word == "pppoed":
            self.advance()
            return Pppoe(False, None, tok.pos)
        if word == "pppoes":
            self.advance()
            return Pppoe(True, self.optional_number(0xFFFF, "PPPoE session id"), tok.pos)
        if word in ("inbound", "outbound"):
            self.advance()
            return Way(word == "outbound", tok.pos)
        if word == "ifindex":
            self.advance()
            return IfIndex(self.number("an interface index"), tok.pos)
        if word == "llc":
            self.advance()
            kind = ""
            if self.peek().kind == "word" and self.peek().text in LLC_KINDS:
                kind = self.advance().text
            return Llc(kind, tok.pos)
        if word == "byte":
            return self.byte()
        if word in ("broadcast", "multicast"):
            self.advance()
            return Cast(word, "", tok.pos)
        if word in ("type", "subtype", "dir", "direction"):
            return self.wlan(tok.pos)
        if word in ("proto", "protochain"):
            self.advance()
            return primitive(self, Quals("", "", word, tok.pos))
        if word in IP_WORDS:
            self.advance()
            number, family = IP_WORDS[word]
            return IpProto(number, family, tok.pos)
        if word in ETHER_WORDS and not self.is_word("src", "dst", "host", "proto", ahead=1):
            self.advance()
            return EtherProto(ETHER_WORDS[word], tok.pos)
        if word in ISO_PROTOS and not self.is_word("proto", ahead=1):
            self.advance()
            return IsoProto(ISO_PROTOS[word], "iso", tok.pos)
        if word in ISIS_WORDS:
            self.advance()
            node: Node | None = None
            for pdu in ISIS_WORDS[word]:
                item = IsoProto(pdu, "isis", tok.pos)
                node = item if node is None else Or(node, item)
            assert node is not None
            return node
        if word in PROTO_WORDS or word in LINK_WORDS or word in ETHER_WORDS or word == "isis":
            return self.qualified_proto(tok)
        if word in _DIRS_KINDS:
            return self.qualified("", tok.pos)
        if word in ("and", "or", "not"):
            raise self.error(f"expected a primitive before {word!r}")
        raise self.error(f"unsupported keyword {word!r}")

    def qualified_proto(self, tok: Token) -> Node:
        """A protocol word, alone or qualifying what follows."""
        word = tok.text
        self.advance()
        if word in LINK_WORDS:
            word = "ether" if word in ("ether", "fddi", "tr") else word
            if self.is_word("broadcast", "multicast"):
                return Cast(self.advance().text, "ether" if word != "wlan" else "wlan", tok.pos)
            if self.is_word("type", "subtype", "dir", "direction") and word in ("wlan", "link"):
                return self.wlan(tok.pos)
        elif word in ("ip", "ip6") and self.is_word("broadcast", "multicast"):
            kind = self.advance().text
            if word == "ip6" and kind == "broadcast":
                raise self.error("there is no IPv6 broadcast (only ip and link-layer)", tok)
            return Cast(kind, word, tok.pos)
        if self.is_word("proto"):
            self.advance()
            return primitive(self, Quals(word, "", "proto", tok.pos))
        if self.is_word("protochain"):
            if word not in ("ip", "ip6"):
                raise self.error(f"{tok.text!r} cannot qualify 'protochain'", self.peek())
            self.advance()
            return primitive(self, Quals(word, "", "protochain", tok.pos))
        if self.is_word("gateway"):
            raise self.error(f"unsupported keyword {self.peek().text!r}")
        if self.peek().text in _QUALIFIERS and self.peek().kind == "word":
            return self.qualified(word, tok.pos)
        if word in LINK_WORDS:
            if word == "ppp" or word == "slip":
                raise self.error(f"expected '[' after {word!r}")
            raise self.error(f"expected host, src, dst, proto or [ after {tok.text!r}")
        if word in ETHER_WORDS:
            raise self.error(f"{word!r} cannot qualify {self.describe(self.peek())}")
        return Proto(word, tok.pos)

    def direction(self) -> str:
        first = self.advance().text
        if (
            first in _DIRS
            and self.is_word("or", "and")
            and self.is_word(*_DIRS, ahead=1)
            and self.peek(1).text != first
        ):
            joiner = self.advance().text
            self.advance()
            return "" if joiner == "or" else "src and dst"
        return first.replace("address", "addr")

    def qualified(self, proto: str, pos: int) -> Node:
        tok = self.peek()
        word = tok.kind == "word"
        direction = self.direction() if word and tok.text in _ANY_DIRS else ""
        kind = ""
        if self.is_word(*_KINDS):
            kind = self.advance().text
        return primitive(self, Quals(proto, direction, kind, pos))
