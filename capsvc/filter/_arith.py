"""The arithmetic of comparisons (``ip[2:2] - 20 > len``), ``byte`` and the 802.11 words.

Pure; the part of the parser after a primitive's first word. Operators bind as in libpcap's
grammar (``ARITH_PRECEDENCE``; ``%`` and ``^``, which it gives no precedence, take all the
arithmetic after them); each operator and load counts a level of nesting.
"""

from __future__ import annotations

from ._ast import (
    ARITH_PRECEDENCE,
    Arith,
    BinOp,
    Byte,
    Compare,
    Length,
    Load,
    Negate,
    Node,
    Num,
    WlanDir,
    WlanType,
)
from ._cursor import Cursor
from ._names import CONSTANTS, LINK_WORDS, LOAD_PROTOS, WLAN_DIRS, WLAN_SUBTYPES, WLAN_TYPES

__all__ = ["RELOPS", "Arithmetic"]

RELOPS = {">": ">", "<": "<", ">=": ">=", "<=": "<=", "=": "==", "==": "==", "!=": "!="}
_RELOPS = RELOPS
_UINT32 = 0xFFFFFFFF


class Arithmetic(Cursor):
    """Comparisons, arithmetic, ``byte`` and 802.11 frame control."""

    def byte(self) -> Node:
        start = self.advance()
        offset = self.number("a byte offset")
        tok = self.peek()
        op = tok.text if tok.kind == "op" else ""
        if op not in ("=", "==", "<", ">", "&", "|"):
            raise self.error(
                f"expected one of = < > & | after the offset, found {self.describe(tok)}"
            )
        self.advance()
        value = self.number("a byte value")
        if value > 255:
            raise self.error(f"byte value {value} outside 0-255")
        return Byte(offset, "=" if op == "==" else op, value, start.pos)

    def wlan(self, pos: int) -> Node:
        """``type T [subtype S]``, ``subtype S`` and ``dir D`` of 802.11 frames."""
        word = self.advance().text
        if word in ("dir", "direction"):
            tok = self.advance()
            if tok.kind == "num" and tok.value <= 3:
                return WlanDir(tok.value, pos)
            if tok.kind == "word" and tok.text in WLAN_DIRS:
                return WlanDir(WLAN_DIRS[tok.text], pos)
            raise self.error(f"unknown 802.11 direction {tok.text!r}", tok)
        if word == "subtype":
            tok = self.advance()
            for ftype, names in WLAN_SUBTYPES.items():
                if tok.text in names:
                    return WlanType(ftype | names[tok.text], 0xFC, pos)
            raise self.error(f"unknown 802.11 subtype {tok.text!r}", tok)
        tok = self.advance()
        if tok.kind == "num" and tok.value <= 0xFF:
            ftype = tok.value & 0x0C
            if ftype != tok.value:
                raise self.error(f"invalid 802.11 type {tok.text}", tok)
        elif tok.kind == "word" and tok.text in WLAN_TYPES:
            ftype = WLAN_TYPES[tok.text]
        else:
            raise self.error(f"unknown 802.11 type {tok.text!r}", tok)
        if not self.is_word("subtype"):
            return WlanType(ftype, 0x0C, pos)
        self.advance()
        sub = self.advance()
        names = WLAN_SUBTYPES.get(ftype, {})
        if sub.kind == "num" and sub.value <= 0xF0 and not sub.value & 0x0F:
            return WlanType(ftype | sub.value, 0xFC, pos)
        if sub.kind == "word" and sub.text in names:
            return WlanType(ftype | names[sub.text], 0xFC, pos)
        raise self.error(f"unknown 802.11 subtype {sub.text!r} for this type", sub)

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
        left = self.arith_term()
        while True:
            tok = self.peek()
            prec = ARITH_PRECEDENCE.get(tok.text, 0) if tok.kind == "op" else 0
            if prec < min_prec or prec == 0:
                return left
            left = self.arith_binop(tok.text, left, prec + 1)

    def arith_term(self) -> Arith:
        """A primary, or ``PRIMARY % REST`` / ``PRIMARY ^ REST``: libpcap's grammar gives ``%``
        and ``^`` no precedence, so its parser always shifts them (``a + b % c + d`` is
        ``a + (b % (c + d))``) and their right operand is all the arithmetic that follows."""
        left = self.primary()
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("%", "^"):
            return self.arith_binop(tok.text, left, 1)
        return left

    def arith_binop(self, op: str, left: Arith, min_prec: int) -> BinOp:
        """``LEFT OP RIGHT``, the operator next, its right operand binding ``min_prec``."""
        self.advance()
        operand = self.peek()
        self.nest()
        right = self.arith(min_prec)
        self.depth -= 1
        if isinstance(right, Num):
            if op in ("/", "%") and right.value == 0:
                what = "division" if op == "/" else "modulus"
                raise self.error(f"{what} by zero", operand)
            if op in ("<<", ">>") and right.value > 31:
                raise self.error("shift by more than 31 bits", operand)
        return BinOp(op, left, right)

    def primary(self) -> Arith:
        tok = self.peek()
        if tok.kind == "num":
            return Num(self.number("a number"))
        if tok.kind == "op" and tok.text == "-":  # unary minus: 0 - x, with x's checks
            self.advance()
            self.nest()
            operand = self.arith_term()  # "- a % b" is "-(a % b)", as in libpcap
            self.depth -= 1
            if isinstance(operand, Num):
                return Num(-operand.value & _UINT32)
            return Negate(operand)
        if tok.kind == "word":
            if tok.text in ("len", "length"):
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
                proto = "link" if tok.text in LINK_WORDS - {"ether"} else tok.text
                return Load(proto, offset, size, tok.pos)
        if self.is_op("("):
            self.nest()
            self.advance()
            inner = self.arith(1)
            self.expect_op(")", "')'")
            self.depth -= 1
            return inner
        raise self.error(f"expected a number, 'len' or PROTO[OFFSET], found {self.describe(tok)}")
