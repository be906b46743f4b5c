"""The parser's cursor over the tokens: look-ahead, errors with the offending offset, the
nesting count, numbers. Pure; shared by the boolean, primitive and arithmetic parts."""

from __future__ import annotations

from .._errors import FilterSyntaxError
from ._lexer import Token

__all__ = ["MAX_DEPTH", "Cursor"]

#: Levels of nesting an expression may have at most (see ``_parser``).
MAX_DEPTH = 64
_UINT32 = 0xFFFFFFFF


class Cursor:
    """Tokens of one expression and the position in them."""

    def __init__(self, expr: str, toks: list[Token]) -> None:
        self.expr = expr
        self.toks = toks + [toks[-1]] * 3  # look-ahead past the end sees "end"
        self.i = 0
        self.depth = 0
        # For a bound on the tree's depth: the deepest nesting seen, and the levels (nestings,
        # changes between and/or, arithmetic operators) met anywhere.
        self.deepest = 0
        self.levels = 0

    def nest(self) -> None:
        self.depth += 1
        self.levels += 1
        if self.depth > self.deepest:
            self.deepest = self.depth
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

    def optional_number(self, limit: int, what: str) -> int | None:
        tok = self.peek()
        if tok.kind != "num":
            return None
        self.advance()
        if tok.value > limit:
            raise self.error(f"{what} {tok.value} outside 0-{limit}", tok)
        return tok.value

    def number(self, what: str) -> int:
        tok = self.peek()
        if tok.kind != "num":
            raise self.error(f"expected {what}, found {self.describe(tok)}")
        if tok.value > _UINT32:
            raise self.error(f"number {tok.text} does not fit in 32 bits")
        self.advance()
        return tok.value
