"""The intermediate form both back-ends compile: tests on loads from the raw frame.

Pure. A Formula is a boolean combination of comparisons; a Val is what classic BPF can compute in
its accumulator (absolute and header-length-relative loads, length, constants, 32-bit unsigned
arithmetic). The rule every back-end keeps, as libpcap's interpreter does: a load beyond the end
of the frame rejects the whole packet, whatever the surrounding and/or/not would say. The
rewrites here (``factor``, ``simplify``) keep every verdict on frames long enough for the
expression; which read comes first on a shorter frame may change, as with libpcap's optimizer.

The node classes are values (equal and hashed by their fields) and are never changed once made;
they are not declared frozen because a frozen dataclass is several times slower to construct,
and compiling a large expression makes thousands of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import is_not
from typing import TypeAlias

__all__ = [
    "CHAIN_STEPS",
    "FALSE",
    "TRUE",
    "Alu",
    "Chain",
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
    "Var",
    "absorb",
    "conj",
    "disj",
    "factor",
    "fold",
    "load_at",
    "neg",
    "operands",
    "same",
]

MASK32 = 0xFFFFFFFF


@dataclass(slots=True, unsafe_hash=True)
class Ld:
    """``size`` bytes, big-endian, at absolute offset ``off``."""

    size: int
    off: int


@dataclass(slots=True, unsafe_hash=True)
class LdX:
    """``size`` bytes at ``4 * (frame[xoff] & 15) + off`` (an IPv4 transport header field)."""

    size: int
    off: int
    xoff: int


@dataclass(slots=True, unsafe_hash=True)
class LdI:
    """``size`` bytes at ``index + off`` for a computed ``index``."""

    size: int
    off: int
    index: Val


@dataclass(slots=True, unsafe_hash=True)
class Msh:
    """The value ``4 * (frame[xoff] & 15)`` (an IPv4 header length)."""

    xoff: int


@dataclass(slots=True, unsafe_hash=True)
class Len:
    """The packet's length on the wire (libpcap's ``len``: the original length, which is more
    than the captured bytes of a frame cut by a snapshot length)."""


@dataclass(slots=True, unsafe_hash=True)
class Var:
    """A link-layer offset computed once per frame before any test, as libpcap's variable
    offsets are: ``"hdr"`` the 802.11 header (after a radiotap header of variable length),
    ``"pl"`` the 802.11 payload (after a QoS field and radiotap padding). A frame too short to
    compute it is rejected, whatever the expression."""

    name: str


@dataclass(slots=True, unsafe_hash=True)
class Imm:
    """A 32-bit constant."""

    k: int


@dataclass(slots=True, unsafe_hash=True)
class Alu:
    """``a OP b`` in unsigned 32-bit arithmetic (OP: + - * / % & | ^ << >>)."""

    op: str
    a: Val
    b: Val


@dataclass(slots=True, unsafe_hash=True)
class Chain:
    """The protocol number where libpcap's ``protochain`` walk of the IP headers stops: from the
    IPv4 protocol field (``v6`` False) or the IPv6 next header of the network header at
    ``off``, past IPv6 extension headers
    (hop-by-hop, destination options, routing, fragment) and AH, until ``proto``, no next
    header (59) or another protocol. A walk libpcap would never end (headers leading back to
    each other) stops after ``CHAIN_STEPS`` headers with -1. It needs a loop: the Python matcher
    computes it, a kernel program cannot."""

    v6: bool
    off: int
    proto: int


#: The most headers a ``protochain`` walk follows (libpcap's loop has no bound).
CHAIN_STEPS = 256

Val: TypeAlias = Ld | LdX | LdI | Msh | Len | Imm | Alu | Var | Chain


@dataclass(slots=True, unsafe_hash=True)
class Cmp:
    """``val == k``, ``val > k``, ``val >= k`` or ``val & k != 0`` (op eq, gt, ge, set)."""

    val: Val
    op: str
    k: int


@dataclass(slots=True, unsafe_hash=True)
class Rel:
    """``a OP b`` for two computed values (op eq, gt, ge; unsigned)."""

    a: Val
    op: str
    b: Val


@dataclass(slots=True, unsafe_hash=True)
class Conj:
    a: Formula
    b: Formula


@dataclass(slots=True, unsafe_hash=True)
class Disj:
    a: Formula
    b: Formula


@dataclass(slots=True, unsafe_hash=True)
class Neg:
    a: Formula


@dataclass(slots=True, unsafe_hash=True)
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
        if type(part) is Const:
            if part.value:
                continue
            return FALSE
        out = part if out is TRUE else Conj(out, part)
    return out


def disj(*parts: Formula) -> Formula:
    """OR of ``parts`` left to right, folding constants."""
    out: Formula = FALSE
    for part in parts:
        if type(part) is Const:
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
    kind = type(f)
    if kind is Conj:
        parts = operands(f, Conj)
        done = [p if type(p) is Cmp else factor(p) for p in parts]
        # Unchanged operands: the chain is kept as it is (no copy of a long chain).
        if not any(map(is_not, parts, done)):
            return f
        return conj(*done)
    if kind is Neg:
        assert isinstance(f, Neg)
        inner = factor(f.a)
        return f if inner is f.a else neg(inner)
    if kind is Disj:
        return _factor_alternatives([p if type(p) is Cmp else factor(p) for p in operands(f, Disj)])
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
        if isinstance(x, (Conj, Disj)):
            assert isinstance(y, (Conj, Disj))
            stack += ((x.a, y.a), (x.b, y.b))
        elif isinstance(x, Neg):
            assert isinstance(y, Neg)
            stack.append((x.a, y.a))
        elif x != y:
            return False
    return True


def operands(f: Formula, kind: type[Conj] | type[Disj]) -> list[Formula]:
    """The operands of the ``kind`` (Conj or Disj) chain ``f``, left to right (no recursion)."""
    if type(f) is not kind:
        return [f]
    # Chains built by conj/disj lean left: walk down the left spine, unless a right operand
    # is itself such a chain (then the general walk below).
    out: list[Formula] = []
    keep = out.append
    item: Formula = f
    while type(item) is kind:
        right = item.b
        if type(right) is kind:
            break
        keep(right)
        item = item.a
    else:
        keep(item)
        out.reverse()
        return out
    out = []
    stack: list[Formula] = [f]
    pop, push, keep = stack.pop, stack.append, out.append
    while stack:
        item = pop()
        if type(item) is kind:
            push(item.b)
            push(item.a)
        else:
            keep(item)
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
    if len(items) == 2:  # the usual case (``src or dst``), without the general bookkeeping
        la, lb = _lead(items[0]), _lead(items[1])
        if isinstance(lb, Const) or (
            not (isinstance(la, Cmp) and la == lb) if isinstance(lb, Cmp) else not same(la, lb)
        ):
            return disj(*_shared_tails(items))
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
            # Operand by operand: no chain is built unless the tails are the same.
            if len(prev) == len(here) and all(
                same(x, y) for x, y in zip(prev[1:], here[1:], strict=True)
            ):
                out[-1] = conj(disj(prev[0], here[0]), *here[1:])
                continue
        out.append(alt)
    return out


def load_at(size: int, off: int, index: Val) -> Val:
    """``size`` bytes at ``index + off``: a plain load when the index is a constant (what a
    tunnel over IPv6 computes: the same bytes, read without an index)."""
    if isinstance(index, Imm):
        return Ld(size, off + index.k)
    return LdI(size, off, index)
