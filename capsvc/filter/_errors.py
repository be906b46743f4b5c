"""The filter language's errors: where in the expression, and what is wrong there."""

from __future__ import annotations

__all__ = ["FilterCompileError", "FilterSyntaxError"]


class FilterSyntaxError(ValueError):
    """A filter expression is malformed.

    ``str()`` shows the message, the expression, and a caret under the offending character.

    Attributes:
        expr: the whole expression as given.
        offset: the character offset (0-based) of the offending token in ``expr``; ``len(expr)``
            when the expression ended too early.
        reason: the message without the expression and caret.
    """

    def __init__(self, reason: str, expr: str, offset: int) -> None:
        self.reason = reason
        self.expr = expr
        self.offset = max(0, min(offset, len(expr)))
        super().__init__(reason)

    def __str__(self) -> str:
        line = self.expr.replace("\n", " ").replace("\t", " ")
        return f"{self.reason}\n  {line}\n  {' ' * self.offset}^"


class FilterCompileError(FilterSyntaxError):
    """A well-formed expression asks for something the link type cannot express.

    For example ``ether host ...`` on raw IP, or ``vlan`` on Linux cooked captures. It is a
    FilterSyntaxError too (with the offset of the primitive), so one ``except`` covers both.
    """
