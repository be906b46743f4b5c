"""Tokenizer of the filter language.

Pure: text in, a list of tokens out, each with its character offset. Keywords are not decided
here (the parser does that, case-insensitively); the lexer only separates words, numbers,
addresses and operators. Inside ``[...]`` a colon is an operator (``ip[2:2]``), elsewhere it is
part of an address (``fe80::1``, ``02:00:00:00:00:0a``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .._errors import FilterSyntaxError

__all__ = ["Token", "number", "tokenize"]

# Longest first, so "<<" wins over "<".
_OPERATORS = (
    "&&",
    "||",
    "==",
    "!=",
    "<=",
    ">=",
    "<<",
    ">>",
    "(",
    ")",
    "[",
    "]",
    "!",
    "&",
    "|",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    ":",
)
_HEX = frozenset("0123456789abcdefABCDEF")


class Token(NamedTuple):
    """One token.

    Attributes:
        kind: ``"word"``, ``"num"``, ``"addr"``, ``"op"`` or ``"end"``.
        text: the token as written (``word`` lower-cased, a leading backslash dropped).
        pos: character offset in the expression.
        value: the number for ``num`` tokens; 1 for a ``word`` written with a leading backslash
            (an identifier, never a keyword); else 0.
    """

    kind: str
    text: str
    pos: int
    value: int = 0


def number(text: str) -> int | None:
    """libpcap's number syntax: decimal, 0x hex, or octal with a leading 0."""
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16) if text[2:] else None
        if len(text) > 1 and text[0] == "0":
            return int(text, 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


# One regular expression per context: outside brackets a colon belongs to addresses, inside it
# is the size separator. Groups: 1 space, 2 word-like run, 3 operator; outside, 4 any other
# character (an error), so that one scan covers the text up to the next "[".
_OPS_RE = "|".join(re.escape(op) for op in _OPERATORS)
_TOKEN_OUTSIDE = re.compile(
    r"(\s+)"
    r"|\\?([A-Za-z][A-Za-z0-9_.:]*(?:-[A-Za-z0-9][A-Za-z0-9_.:]*)*"
    r"|[0-9][0-9A-Fa-f]?(?:-[0-9A-Fa-f]{1,2}){5}(?![A-Za-z0-9_.:-])"  # a MAC with dashes
    r"|(?:[0-9]|:(?=[:0-9A-Fa-f]))[A-Za-z0-9_.:]*)"
    rf"|({_OPS_RE})"
    r"|(.)",
    re.DOTALL,
)
_TOKEN_INSIDE = re.compile(
    r"(\s+)"
    r"|\\?([A-Za-z][A-Za-z0-9_.]*(?:-[A-Za-z0-9][A-Za-z0-9_.]*)*|[0-9][A-Za-z0-9_.]*)"
    rf"|({_OPS_RE})"
)


def tokenize(expr: str) -> list[Token]:
    """Split ``expr`` into tokens, ending with an ``end`` token at ``len(expr)``.

    Raises:
        FilterSyntaxError: a character that starts no token, or a malformed number.
    """
    tokens: list[Token] = []
    keep = tokens.append
    i, n = 0, len(expr)
    while i < n:
        # Outside brackets, one scan; it stops at "[" (or at a character that starts no token).
        scan, i = i, n
        for found in _TOKEN_OUTSIDE.finditer(expr, scan):
            start = found.start()
            kind = found.lastindex
            if kind == 2:
                text = found.group(2)
                escaped = int(expr[start] == "\\")
                if text[0].isalpha() and ":" not in text:
                    keep(Token("word", text.lower(), start, escaped))
                else:
                    keep(_classify(text, start, expr))
            elif kind == 3:
                op = found.group(3)
                keep(Token("op", op, start))
                if op == "[":
                    i = found.end()
                    break
            elif kind == 4:
                raise FilterSyntaxError(f"unexpected character {expr[start]!r}", expr, start)
        else:
            break
        i = _inside(expr, i, tokens)
    keep(Token("end", "", n))
    return tokens


def _inside(expr: str, i: int, tokens: list[Token]) -> int:
    """Tokens from just after a "[" to just after its "]" (or the end); returns where it stops."""
    n, depth = len(expr), 1
    while i < n and depth:
        found = _TOKEN_INSIDE.match(expr, i)
        if found is None:
            raise FilterSyntaxError(f"unexpected character {expr[i]!r}", expr, i)
        start, i = i, found.end()
        run, op = found.group(2), found.group(3)
        if op is not None:
            if op == "[":
                depth += 1
            elif op == "]":
                depth -= 1
            tokens.append(Token("op", op, start))
        elif run is not None:
            tokens.append(_classify(run, start, expr))
    return i


def _classify(text: str, start: int, expr: str) -> Token:
    if text[0].isalpha() and ":" not in text:
        return Token("word", text.lower(), start, int(expr[start] == "\\"))
    value = number(text)
    if value is not None:
        return Token("num", text, start, value)
    if text[0].isdigit() and not any(ch in text for ch in ".:-") and not _is_hex(text):
        raise FilterSyntaxError(f"invalid number {text!r}", expr, start)
    return Token("addr", text, start)


def _is_hex(text: str) -> bool:
    return all(ch in _HEX for ch in text)
