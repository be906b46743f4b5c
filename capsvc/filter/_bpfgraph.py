"""The block graph of a classic BPF program and the passes that shrink it.

Pure. A block computes a value into A with a few statements and jumps on one test; every jump
goes forward. Passes, the way libpcap's optimizer does for these shapes: jump threading (a test
that earlier tests on every path decide is skipped, as is one whose outcomes lead to the same
place, looking a few tests ahead) and reload elimination (A or X already hold the value on every
incoming edge). Rule: a block never relies on registers set by another block until the reload
pass proves them equal on all incoming edges; a fact is only ever a test outcome that holds on
every path into an edge.
"""

from __future__ import annotations

from .._bpf import (
    BPF_B,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_MEM,
    BPF_MISC,
    BPF_MSH,
    BPF_ST,
    BPF_STX,
    BPF_TAX,
    bpf_class,
    bpf_mode,
    bpf_op,
)
from ._simplify import decided

__all__ = ["Block", "drop_reloads", "order", "thread"]


class Block:
    __slots__ = ("akey", "jf", "jt", "k", "op", "stmts", "xcmp")

    def __init__(
        self,
        stmts: list[tuple[int, int]],
        op: int,
        k: int,
        jt: Block | None,
        jf: Block | None,
        akey: object,
        xcmp: bool = False,
    ) -> None:
        self.stmts = stmts
        self.op = op  # a jump operation, or -1 for a return block
        self.k = k
        self.jt = jt
        self.jf = jf
        self.akey = akey  # what A holds after stmts (None: nothing reusable)
        self.xcmp = xcmp  # the jump compares A with X


_OP_NAMES = {BPF_JEQ: "eq", BPF_JGT: "gt", BPF_JGE: "ge", BPF_JSET: "set"}
_JEQ_K = BPF_JMP | BPF_JEQ | BPF_K

#: value -> (jump, k, outcome) of the tests on it known on an edge.
_Items = tuple[tuple[int, int, bool], ...]
_Facts = dict[object, _Items]
#: The facts an edge added: (value, what was known of it before, the new fact).
_Touched = list[tuple[object, "_Items | None", tuple[int, int, bool]]]
#: value -> the set of values it is known to be one of (the tests that led here differ per
#: path, for example after ``host a or host b``).
_Values = dict[object, frozenset[int]]
MAX_VALUES = 16  # larger value sets are not tracked
#: Facts kept per value on an edge (positive ones first): bounds the cost of long chains of
#: alternatives on one field, at a small loss of threading.
MAX_FACTS = 8
#: Threading passes at most (each can expose more; the loop stops at one that changes nothing).
BLOCK_PASSES = 4
#: Programs of more blocks than this get one threading pass without look-ahead: it finds most
#: of what there is to find in long chains of alternatives, and compiling stays fast.
BIG = 150
#: In programs of more than BIG blocks, an edge is followed past at most this many tests that
#: the facts decide. A long chain of alternatives guarded by tests of one field (``host a and
#: port 1 or host b and port 2 or ...`` on a frame of another protocol) would otherwise be walked
#: again from every alternative: quadratic in the length of the chain (a 2000-term expression
#: took seconds). The tests left in place are still correct, and the block they stop at
#: continues the walk when its own edges are threaded.
MAX_HOPS = 64


def thread(blocks: list[Block]) -> bool:
    """Skip tests decided by what every path into an edge already established.

    A frame does not change, so a fact about a value holds for the rest of the program. Blocks
    are visited in an order where all predecessors come first; redirected edges only ever point
    further down that order. Each block's incoming facts belong to it alone (what an edge brings
    is a copy, or a merge of copies), and only the values an edge tests are updated: the cost of
    a pass is the number of edges times the tests each decides, not times everything known.

    Args:
        blocks: the blocks from the entry on, each after every block that jumps to it (as
            ``order`` gives them, or the reverse of the order a back-to-front build made them).

    Returns:
        Whether any edge was redirected.
    """
    # How far to look ahead for tests whose outcomes lead to the same place: deep for the usual
    # small programs, shallow for big ones so compiling stays fast.
    depth = 6 if len(blocks) <= 80 else 3 if len(blocks) <= BIG else 0
    hops = len(blocks) if len(blocks) <= BIG else MAX_HOPS
    state: dict[int, tuple[_Facts, _Values]] = {id(blocks[0]): ({}, {})}
    changed = False
    for b in blocks:
        here = state.pop(id(b), None)
        if here is None or b.op < 0:
            continue
        known, values = here
        key = b.akey if not b.xcmp else None
        for taken in (True, False):
            old = b.jt if taken else b.jf
            assert old is not None
            if old.op < 0:
                continue  # a return: nothing to skip, and what holds there is of no use
            # The incoming facts are this block's alone: the second edge takes them as they are.
            facts = dict(known) if taken else known
            touched: _Touched = []
            if key is not None:
                fact = (b.op, b.k, taken)
                touched.append((key, None, fact))
                if key in facts:
                    _add(facts, key, fact)
                else:
                    facts[key] = (fact,)
            target = _resolve(old, facts, values, depth, touched, hops)
            if target is not old:
                changed = True
                if taken:
                    b.jt = target
                else:
                    b.jf = target
            if target.op < 0:
                continue
            if not touched or (
                key is not None
                and len(touched) == 1
                and (bpf_op(b.op) != BPF_JEQ or not (taken or key in values))
            ):
                vals = values  # no test but this block's own, and that narrows nothing
            else:
                vals = _narrowed(values, touched)
            seen = state.get(id(target))
            state[id(target)] = (facts, vals) if seen is None else _merge(seen, (facts, vals))
    return changed


def _add(facts: _Facts, key: object, fact: tuple[int, int, bool]) -> None:
    items = facts.get(key)
    if items is None:
        facts[key] = (fact,)
        return
    first = items[0]
    if first[2] and first[0] == _JEQ_K:
        return  # the value is known exactly: that decides every test of it
    items = (*items, fact)
    if len(items) > MAX_FACTS:
        pos = [i for i in items if i[2]]
        room = MAX_FACTS - len(pos)
        if room <= 0:
            items = tuple(pos[:MAX_FACTS])
        else:
            items = (*pos, *[i for i in items if not i[2]][-room:])
    facts[key] = items


def _narrowed(values: _Values, touched: _Touched) -> _Values:
    """``values`` after the new facts in ``touched`` (a copy if any changes): an equality that
    held pins its value; one that failed takes its constant out of the value's set."""
    out = values
    for key, _, (op, k, was) in touched:
        if bpf_op(op) != BPF_JEQ:
            continue
        if was:
            new = frozenset((k,))
        else:
            current = out.get(key)
            if current is None or k not in current:
                continue
            new = current - {k}
        if out is values:
            out = dict(values)
        out[key] = new
    return out


def _merge(a: tuple[_Facts, _Values], b: tuple[_Facts, _Values]) -> tuple[_Facts, _Values]:
    """What holds on both of two edges into one block."""
    fa, va = a
    fb, vb = b
    facts: _Facts = {}
    for key, items in fa.items():
        other = fb.get(key)
        if other is None:
            continue
        if other is items or other == items:
            facts[key] = items
            continue
        common = tuple([i for i in items if i in other])
        if common:
            facts[key] = common
    if va is vb:  # never changed in place (see _narrowed): one dict serves both
        return facts, va
    values: _Values = {}
    for key, vals in va.items():
        other_vals = vb.get(key)
        if other_vals is not None:
            union = vals if other_vals is vals else vals | other_vals
            if len(union) <= MAX_VALUES:
                values[key] = union
    return facts, values


def _outcome(items: _Items | None, values: _Values, target: Block) -> bool | None:
    """The outcome of ``target``'s test given the facts ``items`` on its value, if decided."""
    key = target.akey
    if items:
        top, k2 = target.op, target.k
        for op, k, was in items:
            if op == top == _JEQ_K:  # the usual case, inline
                if was or k == k2:
                    return was and k == k2
                continue
            outcome = decided(_OP_NAMES[bpf_op(op)], k, was, _OP_NAMES[bpf_op(top)], k2)
            if outcome is not None:
                return outcome
    vals = values.get(key)
    if vals:
        if target.op == _JEQ_K:  # the usual case, without a test per value
            return False if target.k not in vals else (True if len(vals) == 1 else None)
        outcomes = {_test(target.op, v, target.k) for v in vals}
        if len(outcomes) == 1:
            return outcomes.pop()
    return None


def _test(op: int, value: int, k: int) -> bool:
    kind = bpf_op(op)
    if kind == BPF_JEQ:
        return value == k
    if kind == BPF_JGT:
        return value > k
    if kind == BPF_JGE:
        return value >= k
    return value & k != 0


def _resolve(
    target: Block,
    facts: _Facts,
    values: _Values,
    depth: int,
    touched: _Touched,
    hops: int = 1 << 30,
) -> Block:
    """Follow ``target`` past tests the facts decide (adding their outcomes to ``facts``, and
    each value with what was known of it before to ``touched``) and past tests whose outcomes
    both lead to the same block (looking ``depth`` tests ahead); at most ``hops`` decided tests."""
    while target.op >= 0:
        if target.jt is target.jf:
            assert target.jt is not None
            target = target.jt
            continue
        key = target.akey
        if key is None or target.xcmp:
            return target
        items = facts.get(key)
        # Nothing known of the value is the usual case: no call for it.
        known = items is not None or key in values
        outcome = _outcome(items, values, target) if known else None
        if outcome is None:
            if depth <= 0:
                return target
            assert target.jt is not None and target.jf is not None
            ends: list[Block] = []
            for way in (True, False):
                nxt = target.jt if way else target.jf
                assert nxt is not None
                if nxt.op < 0:  # a return: nothing to follow
                    ends.append(nxt)
                    continue
                # Look ahead on ``facts`` itself and undo afterwards: no copy per branch.
                fact = (target.op, target.k, way)
                undo: _Touched = [(key, facts.get(key), fact)]
                _add(facts, key, fact)
                ends.append(_resolve(nxt, facts, values, depth - 1, undo))
                for k, items, _ in reversed(undo):
                    if items is None:
                        del facts[k]
                    else:
                        facts[k] = items
            if ends[0] is not ends[1]:
                return target
            target = ends[0]
            continue
        hops -= 1
        if hops < 0:
            return target
        fact = (target.op, target.k, outcome)
        if items is None or fact not in items:  # a fact known already adds nothing
            touched.append((key, items, fact))
            _add(facts, key, fact)
        after = target.jt if outcome else target.jf
        assert after is not None
        target = after
    return target


def order(entry: Block, accept: Block, reject: Block) -> list[Block]:
    """Blocks in an order where every jump goes forward (returns last)."""
    post: list[Block] = []
    seen: set[int] = {id(accept), id(reject)}
    stack: list[tuple[Block, bool]] = [(entry, False)]
    while stack:
        b, done = stack.pop()
        if done:
            post.append(b)
            continue
        if id(b) in seen:
            continue
        seen.add(id(b))
        stack.append((b, True))
        assert b.jt is not None and b.jf is not None
        stack.append((b.jt, False))
        stack.append((b.jf, False))
    post.reverse()
    return [*post, accept, reject] if entry.op >= 0 else [entry]


def _x_after(stmts: list[tuple[int, int]], before: object) -> object:
    """What X holds after a block's own statements (``stmts`` as made, before any was
    dropped: a block's statements never read a register set by another block). An index moved
    into X (``tax``) is known by the statements that computed it, from the block's start."""
    x = before
    for j, (code, k) in enumerate(stmts):
        if code == BPF_LDX | BPF_B | BPF_MSH:
            x = ("msh", k)
        elif code == BPF_MISC | BPF_TAX:
            x = ("tax", tuple(stmts[:j]))
        elif code == BPF_LDX | BPF_MEM:
            x = None
    return x


def _index_known(stmts: list[tuple[int, int]], x: object) -> int:
    """How many leading statements can go because X holds the index they compute (0: none).

    They end with the ``tax`` whose key is ``x``; what follows must load A afresh and read no
    scratch word they wrote (their temporaries)."""
    if not (isinstance(x, tuple) and x[0] == "tax"):
        return 0
    prefix = x[1]
    j = len(prefix)
    if j >= len(stmts) - 1 or tuple(stmts[:j]) != prefix or stmts[j][0] != BPF_MISC | BPF_TAX:
        return 0
    if bpf_class(stmts[j + 1][0]) != BPF_LD:
        return 0
    written = {k for code, k in prefix if bpf_class(code) in (BPF_ST, BPF_STX)}
    read = {k for code, k in stmts[j + 1 :] if bpf_mode(code) == BPF_MEM and bpf_class(code) < 2}
    return 0 if written & read else j + 1


def drop_reloads(order: list[Block]) -> None:
    """Drop the loads of blocks whose A (or X) holds the value already on every incoming edge.

    ``order`` is topological (``order``'s result): every predecessor of a block comes before it,
    so what each edge brings is known when the block is reached.
    """
    # block -> what A / X hold on every edge into it seen so far (None: nothing known).
    a_in: dict[int, object] = {}
    x_in: dict[int, object] = {}
    for b in order:
        if b.op < 0:
            continue
        here = id(b)
        a, x = a_in.get(here), x_in.get(here)
        made = b.stmts
        if b.akey is not None and a == b.akey:
            b.stmts = []
        elif b.stmts and b.stmts[0][0] == BPF_LDX | BPF_B | BPF_MSH and x == ("msh", b.stmts[0][1]):
            b.stmts = b.stmts[1:]
        elif (known := _index_known(b.stmts, x)) > 0:
            b.stmts = b.stmts[known:]
        a = b.akey
        x = _x_after(made, x)
        for target in (b.jt, b.jf):
            key = id(target)
            if key in a_in:
                if a_in[key] != a:
                    a_in[key] = None
                if x_in[key] != x:
                    x_in[key] = None
            else:
                a_in[key] = a
                x_in[key] = x
