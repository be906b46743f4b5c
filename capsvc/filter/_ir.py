"""The intermediate form both back-ends compile: tests on loads from the raw frame.

Pure. A Formula is a boolean combination of comparisons; a Val is what classic BPF can compute in
its accumulator (absolute and header-length-relative loads, length, constants, 32-bit unsigned
arithmetic). The rule every back-end keeps, as libpcap's interpreter does: a load beyond the end
of the frame rejects the whole packet, whatever the surrounding and/or/not would say. The
rewrites here (``factor``, ``simplify``) keep every verdict on frames long enough for the
expression; which read comes first on a shorter frame may change, as with libpcap's optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

__all__ = [
    "FALSE",
    "TRUE",
    "Alu",
    "Cmp",
    "Conj",
    "Const",
    "Disj",
    "Formula",
    "Imm",
    "Ld",
    "LdI",
    "LdX",
    "Len",
    "Msh",
    "Neg",
    "Rel",
    "Val",
    "absorb",
    "conj",
    "decide",
    "decided",
    "disj",
    "factor",
    "fold",
    "neg",
    "operands",
    "same",
    "simplify",
]

MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Ld:
    """``size`` bytes, big-endian, at absolute offset ``off``."""

    size: int
    off: int


@dataclass(frozen=True)
class LdX:
    """``size`` bytes at ``4 * (frame[xoff] & 15) + off`` (an IPv4 transport header field)."""

    size: int
    off: int
    xoff: int


@dataclass(frozen=True)
class LdI:
    """``size`` bytes at ``index + off`` for a computed ``index``."""

    size: int
    off: int
    index: Val


@dataclass(frozen=True)
class Msh:
    """The value ``4 * (frame[xoff] & 15)`` (an IPv4 header length)."""

    xoff: int


@dataclass(frozen=True)
class Len:
    """The frame's length."""


@dataclass(frozen=True)
class Imm:
    """A 32-bit constant."""

    k: int


@dataclass(frozen=True)
class Alu:
    """``a OP b`` in unsigned 32-bit arithmetic (OP: + - * / % & | ^ << >>)."""

    op: str
    a: Val
    b: Val


Val: TypeAlias = Ld | LdX | LdI | Msh | Len | Imm | Alu


@dataclass(frozen=True)
class Cmp:
    """``val == k``, ``val > k``, ``val >= k`` or ``val & k != 0`` (op eq, gt, ge, set)."""

    val: Val
    op: str
    k: int


@dataclass(frozen=True)
class Rel:
    """``a OP b`` for two computed values (op eq, gt, ge; unsigned)."""

    a: Val
    op: str
    b: Val


@dataclass(frozen=True)
class Conj:
    a: Formula
    b: Formula


@dataclass(frozen=True)
class Disj:
    a: Formula
    b: Formula


@dataclass(frozen=True)
class Neg:
    a: Formula


@dataclass(frozen=True)
class Const:
    value: bool


Formula: TypeAlias = Cmp | Rel | Conj | Disj | Neg | Const

TRUE = Const(True)
FALSE = Const(False)


def conj(*parts: Formula | None) -> Formula:
    """AND of ``parts`` left to right (None parts are skipped), folding constants."""
    out: Formula = TRUE
    for part in parts:
        if part is None:
            continue
        if isinstance(part, Const):
            if part.value:
                continue
            return FALSE
        out = part if out is TRUE else Conj(out, part)
    return out


def disj(*parts: Formula) -> Formula:
    """OR of ``parts`` left to right, folding constants."""
    out: Formula = FALSE
    for part in parts:
        if isinstance(part, Const):
            if part.value:
                return TRUE
            continue
        out = part if out is FALSE else Disj(out, part)
    return out


def neg(part: Formula) -> Formula:
    """NOT of ``part``, folding constants and double negation."""
    if isinstance(part, Const):
        return FALSE if part.value else TRUE
    if isinstance(part, Neg):
        return part.a
    return Neg(part)


def fold(op: str, a: int, b: int) -> int:
    """Evaluate ``a OP b`` as classic BPF does (unsigned 32-bit; division by zero gives 0
    here, callers reject constant division by zero before)."""
    if op == "+":
        return (a + b) & MASK32
    if op == "-":
        return (a - b) & MASK32
    if op == "*":
        return (a * b) & MASK32
    if op == "/":
        return a // b if b else 0
    if op == "%":
        return a % b if b else 0
    if op == "&":
        return a & b
    if op == "|":
        return a | b
    if op == "^":
        return a ^ b
    if op == "<<":
        return (a << b) & MASK32 if b < 32 else 0
    return a >> b if b < 32 else 0


def factor(f: Formula) -> Formula:
    """Rewrite ``f`` so alternatives sharing leading tests test them once.

    ``(p and a) or (p and b)`` becomes ``p and (a or b)``; an alternative may move in front of
    earlier ones whose first test contradicts its own on the same value (``ip6 ... or ip ...``
    tests of the same type field); ``(p and r) or (q and r)`` becomes ``(p or q) and r``. These
    keep every verdict, also on frames too short for the expression. One more, like libpcap's
    optimizer, only keeps verdicts on frames long enough: in a run of alternatives that are
    single tests, tests of the same field are put next to each other (``src == a or dst == a or
    src == b`` reads ``src`` once), which may change which read past the end comes first.
    """
    if isinstance(f, Conj):
        return conj(*(factor(p) for p in operands(f, Conj)))
    if isinstance(f, Neg):
        return neg(factor(f.a))
    if isinstance(f, Disj):
        return _factor_alternatives([factor(p) for p in operands(f, Disj)])
    return f


def absorb(a: Formula, b: Formula, *, both: bool = False) -> Formula:
    """``a or b`` (``a and b`` with ``both``), absorbing: ``(p and b) or b`` and
    ``b or (b and p)`` are ``b``; ``(p or b) and b`` and ``b and (b or p)`` are ``b``."""
    inner = Disj if both else Conj
    if any(same(b, part) for part in operands(a, inner)):
        return b
    if any(same(a, part) for part in operands(b, inner)):
        return a
    return conj(a, b) if both else disj(a, b)


def same(a: Formula, b: Formula) -> bool:
    """Structural equality of two formulas, without recursion (chains can be long)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if type(x) is not type(y):
            return False
        if isinstance(x, Conj | Disj):
            assert isinstance(y, Conj | Disj)
            stack += ((x.a, y.a), (x.b, y.b))
        elif isinstance(x, Neg):
            assert isinstance(y, Neg)
            stack.append((x.a, y.a))
        elif x != y:
            return False
    return True


def operands(f: Formula, kind: type) -> list[Formula]:
    """The operands of the ``kind`` (Conj or Disj) chain ``f``, left to right (no recursion)."""
    out: list[Formula] = []
    stack = [f]
    while stack:
        item = stack.pop()
        if isinstance(item, kind) and isinstance(item, Conj | Disj):
            stack.append(item.b)
            stack.append(item.a)
        else:
            out.append(item)
    return out


def _lead(f: Formula) -> Formula:
    while isinstance(f, Conj):
        f = f.a
    return f


def _by_field(items: list[Formula]) -> list[Formula]:
    """Within each run of single-test alternatives, tests of the same field side by side."""
    out: list[Formula] = []
    run: dict[Val, list[Formula]] = {}
    for item in items:
        if isinstance(item, Cmp):
            run.setdefault(item.val, []).append(item)
            continue
        for tests in run.values():
            out.extend(tests)
        run = {}
        out.append(item)
    for tests in run.values():
        out.extend(tests)
    return out


def _factor_alternatives(items: list[Formula]) -> Formula:
    items = _by_field(items)
    groups: list[tuple[Formula, list[Formula]]] = []  # (shared first test, alternatives)
    newest: dict[Cmp, int] = {}  # a first test -> the newest group starting with it
    # The trailing groups whose first tests are all "field == constant" on one field: an
    # alternative testing that field for another constant may move in front of them.
    run_val: Val | None = None
    run_start = 0
    for item in items:
        lead = _lead(item)
        if isinstance(lead, Const):
            target = None
        elif isinstance(lead, Cmp):
            target = newest.get(lead)
            if target is not None and target < len(groups) - 1:
                movable = lead.op == "eq" and lead.val == run_val and target + 1 >= run_start
                target = target if movable else None
        else:
            target = len(groups) - 1 if groups and same(groups[-1][0], lead) else None
        if target is not None:
            groups[target][1].append(item)
            continue
        groups.append((lead, [item]))
        if isinstance(lead, Cmp):
            newest[lead] = len(groups) - 1
        if isinstance(lead, Cmp) and lead.op == "eq":
            if lead.val != run_val:
                run_val, run_start = lead.val, len(groups) - 1
        else:
            run_val, run_start = None, len(groups)
    out: list[Formula] = []
    for _, group in groups:
        if len(group) == 1:
            out.append(group[0])
            continue
        lists = [operands(g, Conj) for g in group]
        size = 0
        while all(len(lst) > size for lst in lists) and all(
            same(lst[size], lists[0][size]) for lst in lists
        ):
            size += 1
        rests: list[Formula] = []
        for lst in lists:
            rests.extend(operands(conj(*lst[size:]), Disj))
        out.append(conj(*lists[0][:size], _factor_alternatives(rests)))
    return disj(*_shared_tails(out))


def _shared_tails(alternatives: list[Formula]) -> list[Formula]:
    """``(p and r) or (q and r)`` -> ``(p or q) and r`` for neighbouring alternatives."""
    out: list[Formula] = []
    for alt in alternatives:
        if out and isinstance(alt, Conj) and isinstance(out[-1], Conj):
            prev, here = operands(out[-1], Conj), operands(alt, Conj)
            rest = conj(*here[1:])
            if same(conj(*prev[1:]), rest):
                out[-1] = conj(disj(prev[0], here[0]), rest)
                continue
        out.append(alt)
    return out


#: What earlier tests established: tested value -> (mask, op, k, outcome) of each test on it;
#: a comparison of two values, or a small conjunction, is its own key: (0, "rel", 0, outcome).
Facts = dict["Val | Rel | Conj", tuple[tuple[int, str, int, bool], ...]]


def simplify(f: Formula, facts: Facts | None = None) -> Formula:
    """Replace tests that earlier tests on the same bytes already decide by constants.

    Exact on every frame long enough for the expression: a decided test reads bytes that an
    earlier test on every path to it has read already. Long and/or chains are walked in a loop,
    so their length is not limited by Python's recursion limit.
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
            part = simplify(part, facts)
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
            part = simplify(part, facts)
            if part is TRUE:
                return TRUE
            if alternatives:
                alternatives[-1] = _trim(alternatives[-1], part, before)
            alternatives.append(part)
            before = facts
            facts = _with(facts, part, False)
        return disj(*alternatives)
    if isinstance(f, Neg):
        return neg(simplify(f.a, facts))
    return f


def _trim(a: Formula, b: Formula, facts: Facts) -> Formula:
    """``a`` in ``a or b``, cut to its first tests when ``b`` holds whenever those do: a's later
    tests cannot change the verdict (libpcap's optimizer drops them too)."""
    if not isinstance(a, Conj) or isinstance(b, Const) or not _small(b):
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
    return isinstance(f, Conj) and isinstance(f.b, Rel) and _small(f, 8)


def _tests(f: Formula) -> list[Cmp]:
    """Every comparison with a constant in ``f``."""
    out: list[Cmp] = []
    stack = [f]
    while stack:
        item = stack.pop()
        if isinstance(item, Conj | Disj):
            stack += (item.a, item.b)
        elif isinstance(item, Neg):
            stack.append(item.a)
        elif isinstance(item, Cmp):
            out.append(item)
    return out


def _small(f: Formula, budget: int = 24) -> bool:
    """Whether ``f`` has at most ``budget`` tests (bounds the cost of the look-ahead above)."""
    stack = [f]
    while stack:
        item = stack.pop()
        if isinstance(item, Conj | Disj):
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
        if isinstance(item, Cmp | Rel):
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
    if isinstance(val, Ld | LdX | LdI):
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
