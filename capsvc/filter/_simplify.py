"""Simplification of the intermediate form: tests that earlier tests decide become constants.

Pure. Facts are the outcomes of tests already made on the path to a test, keyed by the value
tested; a fact only ever comes from a test every path to the current one has made, so a test it
decides reads bytes already read: every verdict on a frame long enough for the expression is
kept (as with libpcap's optimizer, which read comes first on a shorter frame may change).
"""

from __future__ import annotations

from typing import TypeGuard

from ._ir import (
    FALSE,
    MASK32,
    TRUE,
    Alu,
    Cmp,
    Conj,
    Const,
    Disj,
    Formula,
    Imm,
    Ld,
    LdI,
    LdX,
    Neg,
    Rel,
    Val,
    conj,
    disj,
    neg,
    operands,
)

__all__ = ["decide", "decided", "simplify", "small"]


#: What earlier tests established: tested value -> (mask, op, k, outcome) of each test on it;
#: a comparison of two values, or a small conjunction, is its own key: (0, "rel", 0, outcome).
Facts = dict["Val | Rel | Conj", tuple[tuple[int, str, int, bool], ...]]


def simplify(f: Formula, facts: Facts | None = None, *, trim: bool = True) -> Formula:
    """Replace tests that earlier tests on the same bytes already decide by constants.

    Exact on every frame long enough for the expression: a decided test reads bytes that an
    earlier test on every path to it has read already. Long and/or chains are walked in a loop,
    so their length is not limited by Python's recursion limit. ``trim`` also cuts alternatives
    whose later tests cannot change the verdict (a look-ahead that costs a few simplifications
    of the next alternative each; large expressions skip it to compile fast).
    """
    if facts is None:
        facts = {}
    if isinstance(f, Cmp):
        outcome = decide(f, facts)
        return f if outcome is None else (TRUE if outcome else FALSE)
    if isinstance(f, Rel):
        known = facts.get(f)
        return f if not known else (TRUE if known[-1][3] else FALSE)
    if isinstance(f, Conj):
        # The same conjunction may have been tested before ("x or not x"): looked up as written
        # and once simplified.
        whole = facts.get(f) if _keyed(f) else None
        if whole:
            return TRUE if whole[-1][3] else FALSE
        facts_in = facts
        done: list[Formula] = []
        for part in operands(f, Conj):
            part = simplify(part, facts, trim=trim)
            if part is FALSE:
                return FALSE
            done.append(part)
            facts = _with(facts, part, True)
        result = conj(*done)
        whole = facts_in.get(result) if _keyed(result) else None
        return result if not whole else (TRUE if whole[-1][3] else FALSE)
    if isinstance(f, Disj):
        alternatives: list[Formula] = []
        before: Facts = facts  # what held before the previous alternative was tested
        for part in operands(f, Disj):
            part = simplify(part, facts, trim=trim)
            if part is TRUE:
                return TRUE
            if alternatives and trim:
                alternatives[-1] = _trim(alternatives[-1], part, before)
            alternatives.append(part)
            before = facts
            facts = _with(facts, part, False)
        return disj(*alternatives)
    if isinstance(f, Neg):
        return neg(simplify(f.a, facts, trim=trim))
    return f


def _trim(a: Formula, b: Formula, facts: Facts) -> Formula:
    """``a`` in ``a or b``, cut to its first tests when ``b`` holds whenever those do: a's later
    tests cannot change the verdict (libpcap's optimizer drops them too)."""
    if not isinstance(a, Conj) or isinstance(b, Const) or not small(b):
        return a
    parts = operands(a, Conj)
    tested = {
        _base(test)[0]
        for part in parts[:3]
        for test, _ in _implied(part, True)
        if isinstance(test, Cmp)
    }
    if not any(_base(test)[0] in tested for test in _tests(b)):
        return a  # no test of b reads a field a's first tests read: nothing can be decided
    for size in range(1, min(len(parts), 4)):
        facts = _with(facts, parts[size - 1], True)
        if simplify(b, facts) is TRUE:
            return conj(*parts[:size])
    return a


def _keyed(f: Formula) -> TypeGuard[Conj]:
    """Whether the outcome of ``f`` as a whole is kept as a fact: small conjunctions ending in a
    comparison of two fields (no fact about one field follows from those when they fail)."""
    return isinstance(f, Conj) and isinstance(f.b, Rel) and small(f, 8)


def _tests(f: Formula) -> list[Cmp]:
    """Every comparison with a constant in ``f``."""
    out: list[Cmp] = []
    stack = [f]
    while stack:
        item = stack.pop()
        if isinstance(item, (Conj, Disj)):
            stack += (item.a, item.b)
        elif isinstance(item, Neg):
            stack.append(item.a)
        elif isinstance(item, Cmp):
            out.append(item)
    return out


def small(f: Formula, budget: int = 24) -> bool:
    """Whether ``f`` has at most ``budget`` tests; stops counting past ``budget``."""
    stack = [f]
    while stack:
        item = stack.pop()
        if isinstance(item, (Conj, Disj)):
            stack += (item.a, item.b)
        elif isinstance(item, Neg):
            stack.append(item.a)
        else:
            budget -= 1
            if budget < 0:
                return False
    return True


#: At most this many facts are kept per value (the latest): bounds the cost of long chains of
#: alternatives testing one field (``host a or host b or ...``) at a small loss of simplification.
MAX_FACTS = 8


def _with(facts: Facts, f: Formula, value: bool) -> Facts:
    """``facts`` plus what holds whenever ``f`` evaluated to ``value`` (a new dict if any)."""
    found = _implied(f, value)
    whole = f if _keyed(f) else None
    if not found and whole is None:
        return facts
    out = dict(facts)
    if whole is not None:
        out[whole] = ((0, "rel", 0, value),)
    for test, outcome in found:
        if isinstance(test, Rel):
            out[test] = ((0, "rel", 0, outcome),)
            continue
        base, mask = _base(test)
        out[base] = (*out.get(base, ())[-MAX_FACTS + 1 :], (mask, test.op, test.k, outcome))
    return out


def _implied(f: Formula, value: bool) -> list[tuple[Cmp | Rel, bool]]:
    """The tests whose outcome is known whenever ``f`` evaluated to ``value``."""
    found: list[tuple[Cmp | Rel, bool]] = []
    stack = [(f, value)]
    while stack:
        item, want = stack.pop()
        if isinstance(item, (Cmp, Rel)):
            found.append((item, want))
        elif isinstance(item, Neg):
            stack.append((item.a, not want))
        elif (isinstance(item, Conj) and want) or (isinstance(item, Disj) and not want):
            stack.append((item.b, want))
            stack.append((item.a, want))
    return found


def _base(c: Cmp) -> tuple[Val, int]:
    val = c.val
    if isinstance(val, Alu) and val.op == "&" and isinstance(val.b, Imm):
        return val.a, val.b.k
    if isinstance(val, (Ld, LdX, LdI)):
        return val, (1 << (8 * val.size)) - 1
    return val, MASK32


def decide(test: Cmp, facts: Facts) -> bool | None:
    """The outcome of ``test`` given ``facts``, or None when they do not settle it."""
    base, mask = _base(test)
    for fmask, op, k, outcome in facts.get(base, ()):
        if fmask == mask:
            found = decided(op, k, outcome, test.op, test.k)
        elif op == test.op == "eq":
            found = _masked(fmask, k, outcome, mask, test.k)
        else:
            found = None
        if found is not None:
            return found
    return None


def _masked(m1: int, v1: int, outcome: bool, m2: int, v2: int) -> bool | None:
    if outcome:
        if m2 & ~m1 == 0:
            return (v1 & m2) == v2
        if (v1 ^ v2) & m1 & m2:
            return False
        return None
    if m1 & ~m2 == 0 and (v2 & m1) == v1:
        return False
    return None


def decided(op: str, k: int, taken: bool, other: str, k2: int) -> bool | None:
    """What ``A other k2`` yields, knowing ``A op k`` was ``taken`` (None: unknown)."""
    if op == "eq" and taken:
        if other == "eq":
            return k == k2
        if other == "gt":
            return k > k2
        if other == "ge":
            return k >= k2
        return (k & k2) != 0
    if op == "eq":
        return False if other == "eq" and k2 == k else None
    if op == "gt":  # A > k  /  A <= k
        if taken:
            if (other == "gt" and k2 <= k) or (other == "ge" and k2 <= k + 1):
                return True
            return False if other == "eq" and k2 <= k else None
        if (other == "gt" and k2 >= k) or (other in ("ge", "eq") and k2 > k):
            return False
        return None
    if op == "ge":  # A >= k  /  A < k
        if taken:
            if (other == "gt" and k2 < k) or (other == "ge" and k2 <= k):
                return True
            return False if other == "eq" and k2 < k else None
        if (other == "gt" and k2 + 1 >= k) or (other in ("ge", "eq") and k2 >= k):
            return False
        return None
    if other == "set":
        if taken and k & ~k2 == 0:
            return True
        if not taken and k2 & ~k == 0:
            return False
    if other == "eq" and not taken and k2 & k:
        return False
    return None
