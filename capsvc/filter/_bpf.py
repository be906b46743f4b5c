"""IR -> classic BPF (the kernel's socket filter language), and its ``tcpdump -d`` text.

Pure. The formula becomes a graph of blocks (each computes a value into A and jumps on a test)
built back to front, so every jump goes forward. Passes then shrink it the way libpcap's
optimizer does for these shapes: jump threading (a test that earlier tests on every path decide
is skipped, as is one whose outcomes lead to the same place, looking a few tests ahead), reload
elimination (A or X already hold the value on every incoming edge), and layout with "ja"
trampolines for jumps longer than 255. Rule: a block never relies on registers set by another
block until the reload pass proves them equal on all incoming edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .._packet import SNAPLEN_DEFAULT
from ._errors import FilterCompileError
from ._ir import (
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
    Len,
    Msh,
    Neg,
    Rel,
    Val,
    decided,
    operands,
)

__all__ = ["BpfInstruction", "bpf_dump", "emit"]


class BpfInstruction(NamedTuple):
    """One classic BPF instruction, as ``struct sock_filter`` / ``struct bpf_insn``."""

    code: int
    jt: int
    jf: int
    k: int


# Instruction classes, sizes, modes, operations (linux/filter.h).
LD, LDX, ST, ALU, JMP, RET, MISC = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
K, X = 0x00, 0x08
TAX, TXA = 0x00, 0x80
BPF_MEMWORDS = 16
_SIZES = {1: B, 2: H, 4: W}
_ALU_OPS = {
    "+": 0x00,
    "-": 0x10,
    "*": 0x20,
    "/": 0x30,
    "|": 0x40,
    "&": 0x50,
    "<<": 0x60,
    ">>": 0x70,
    "%": 0x90,
    "^": 0xA0,
}
_JUMPS = {"eq": JEQ, "gt": JGT, "ge": JGE, "set": JSET}


class _Block:
    __slots__ = ("akey", "jf", "jt", "k", "op", "stmts", "xcmp")

    def __init__(
        self,
        stmts: list[tuple[int, int]],
        op: int,
        k: int,
        jt: _Block | None,
        jf: _Block | None,
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


def emit(formula: Formula, snaplen: int = SNAPLEN_DEFAULT) -> list[BpfInstruction]:
    """Compile ``formula`` to a classic BPF program accepting with ``ret #snaplen``.

    Raises:
        FilterCompileError: the arithmetic needs more than 16 scratch registers.
    """
    accept = _Block([], -1, snaplen or SNAPLEN_DEFAULT, None, None, None)
    reject = _Block([], -1, 0, None, None, None)
    builder = _Builder()
    entry = builder.formula(formula, accept, reject)
    root = _Block([], JMP | JEQ | K, 0, entry, entry, None)  # a handle so the entry can move
    size = -1
    for _ in range(4):  # each pass can expose more: stop when one removes nothing
        _thread(root, accept, reject)
        assert root.jt is not None
        order = _order(root.jt, accept, reject)
        if len(order) == size:
            break
        size = len(order)
    _drop_reloads(order)
    return _layout(order)


class _Builder:
    def __init__(self) -> None:
        self.cache: dict[tuple[object, ...], _Block] = {}
        self.keys: dict[Val, int] = {}  # each distinct value gets a small number (cheap to hash)

    def block(
        self,
        stmts: list[tuple[int, int]],
        op: int,
        k: int,
        jt: _Block,
        jf: _Block,
        akey: object,
        xcmp: bool = False,
    ) -> _Block:
        key = (tuple(stmts), op, k, id(jt), id(jf), xcmp)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = _Block(stmts, op, k, jt, jf, akey, xcmp)
        return found

    def formula(self, f: Formula, t: _Block, e: _Block) -> _Block:
        if isinstance(f, Const):
            return t if f.value else e
        if isinstance(f, Conj):  # built from the last operand back, so chains need no recursion
            for part in reversed(operands(f, Conj)):
                t = self.formula(part, t, e)
            return t
        if isinstance(f, Disj):
            for part in reversed(operands(f, Disj)):
                e = self.formula(part, t, e)
            return e
        if isinstance(f, Neg):
            return self.formula(f.a, e, t)
        if isinstance(f, Cmp):
            akey = self.keys.setdefault(f.val, len(self.keys))
            return self.block(_value(f.val, 0), JMP | _JUMPS[f.op] | K, f.k, t, e, akey)
        assert isinstance(f, Rel)
        stmts = [*_value(f.b, 0), (ST, 0), *_value(f.a, 1), (LDX | MEM, 0)]
        return self.block(stmts, JMP | _JUMPS[f.op] | X, 0, t, e, None, xcmp=True)


def _value(v: Val, depth: int) -> list[tuple[int, int]]:
    """Statements leaving ``v`` in A (scratch memory from ``depth`` up)."""
    if isinstance(v, Imm):
        return [(LD | IMM, v.k)]
    if isinstance(v, Len):
        return [(LD | W | LEN, 0)]
    if isinstance(v, Ld):
        return [(LD | _SIZES[v.size] | ABS, v.off)]
    if isinstance(v, LdX):
        return [(LDX | B | MSH, v.xoff), (LD | _SIZES[v.size] | IND, v.off)]
    if isinstance(v, LdI):
        return [*_value(v.index, depth), (MISC | TAX, 0), (LD | _SIZES[v.size] | IND, v.off)]
    if isinstance(v, Msh):
        return [(LDX | B | MSH, v.xoff), (MISC | TXA, 0)]
    assert isinstance(v, Alu)
    code = ALU | _ALU_OPS[v.op]
    if isinstance(v.b, Imm):
        return [*_value(v.a, depth), (code | K, v.b.k)]
    if depth + 1 >= BPF_MEMWORDS:
        raise FilterCompileError("arithmetic too deeply nested for classic BPF", "", 0)
    return [
        *_value(v.b, depth),
        (ST, depth),
        *_value(v.a, depth + 1),
        (LDX | MEM, depth),
        (code | X, 0),
    ]


_OP_NAMES = {JEQ: "eq", JGT: "gt", JGE: "ge", JSET: "set"}


def _decided(op: int, k: int, taken: bool, other_op: int, k2: int) -> bool | None:
    """What test ``A other_op k2`` yields, knowing ``A op k`` was ``taken`` (None: unknown)."""
    return decided(_OP_NAMES[op & 0xF0], k, taken, _OP_NAMES[other_op & 0xF0], k2)


#: value -> (jump, k, outcome) of the tests on it known to hold; the pseudo jump _IN carries a
#: set of values in k: the value is one of them (the tests that led here differ per path).
_Facts = dict[object, tuple[tuple[int, "int | frozenset[int]", bool], ...]]
_IN = -1
MAX_VALUES = 16  # larger value sets are not tracked


def _thread(entry: _Block, accept: _Block, reject: _Block) -> None:
    """Skip tests decided by what every path into an edge already established.

    Facts are ``(value, jump, k, outcome)`` of earlier tests; a frame does not change, so a fact
    about a value holds for the rest of the program. Blocks are visited in an order where all
    predecessors come first; redirected edges only ever point further down that order.
    """
    order = _order(entry, accept, reject)
    # How far to look ahead for tests whose outcomes lead to the same place: deep for the usual
    # small programs, shallow for big ones so compiling stays fast.
    depth = 6 if len(order) <= 80 else 3 if len(order) <= 300 else 1
    incoming: dict[int, set[tuple[object, int, int, bool]]] = {id(entry): set()}
    values: dict[int, dict[object, frozenset[int]]] = {id(entry): {}}
    for b in order:
        known = incoming.get(id(b))
        if known is None or b.op < 0:
            continue
        kept = _bounded(known)
        for taken in (True, False):
            facts: _Facts = {}
            for key, op, k, was in kept:
                facts[key] = (*facts.get(key, ()), (op, k, was))
            for key, vals in values.get(id(b), {}).items():
                facts[key] = (*facts.get(key, ()), (_IN, vals, True))
            if b.akey is not None and not b.xcmp:
                facts[b.akey] = (*facts.get(b.akey, ()), (b.op, b.k, taken))
            target = b.jt if taken else b.jf
            assert target is not None
            target = _resolve(target, facts, depth)
            if taken:
                b.jt = target
            else:
                b.jf = target
            edge = {
                (key, op, k, was)
                for key, items in facts.items()
                for op, k, was in items
                if isinstance(k, int)
            }
            seen = incoming.get(id(target))
            incoming[id(target)] = edge if seen is None else seen & edge
            here = _value_sets(facts)
            before = values.get(id(target))
            values[id(target)] = (
                here
                if before is None
                else {
                    key: vals | before[key]
                    for key, vals in here.items()
                    if key in before and len(vals | before[key]) <= MAX_VALUES
                }
            )


def _value_sets(facts: _Facts) -> dict[object, frozenset[int]]:
    """For each value, the set it is known to be in on this edge, where one is known."""
    out: dict[object, frozenset[int]] = {}
    for key, items in facts.items():
        equal = [k for op, k, was in items if op != _IN and op & 0xF0 == JEQ and was]
        if equal:
            assert isinstance(equal[0], int)
            out[key] = frozenset({equal[0]})
            continue
        sets = [k for op, k, _ in items if op == _IN and isinstance(k, frozenset)]
        if not sets:
            continue
        vals = frozenset.intersection(*sets)
        out[key] = vals - {k for op, k, was in items if op != _IN and op & 0xF0 == JEQ}
    return out


#: Facts kept per value on an edge (positive ones first): bounds the cost of long chains of
#: alternatives on one field, at a small loss of threading.
MAX_FACTS = 8


def _bounded(known: set[tuple[object, int, int, bool]]) -> list[tuple[object, int, int, bool]]:
    per_key: dict[object, int] = {}
    out = []
    for fact in sorted(known, key=lambda f: (not f[3], f[1], f[2])):
        count = per_key.get(fact[0], 0)
        if count < MAX_FACTS:
            per_key[fact[0]] = count + 1
            out.append(fact)
    return out


def _outcome(facts: _Facts, target: _Block) -> bool | None:
    for op, k, was in facts.get(target.akey, ()):
        if isinstance(k, frozenset):
            outcomes = {_test(target.op, v, target.k) for v in k}
            outcome = outcomes.pop() if len(outcomes) == 1 else None
        else:
            outcome = _decided(op, k, was, target.op, target.k)
        if outcome is not None:
            return outcome
    return None


def _test(op: int, value: int, k: int) -> bool:
    kind = op & 0xF0
    if kind == JEQ:
        return value == k
    if kind == JGT:
        return value > k
    if kind == JGE:
        return value >= k
    return value & k != 0


def _resolve(target: _Block, facts: _Facts, depth: int) -> _Block:
    """Follow ``target`` past tests the facts decide (adding their outcomes to ``facts``) and
    past tests whose outcomes both lead to the same block (looking ``depth`` tests ahead)."""
    while target.op >= 0:
        if target.jt is target.jf:
            assert target.jt is not None
            target = target.jt
            continue
        if target.akey is None or target.xcmp:
            return target
        outcome = _outcome(facts, target)
        key = target.akey
        if outcome is None:
            if depth <= 0:
                return target
            assert target.jt is not None and target.jf is not None
            before = facts.get(key, ())
            yes = _resolve(
                target.jt, {**facts, key: (*before, (target.op, target.k, True))}, depth - 1
            )
            no = _resolve(
                target.jf, {**facts, key: (*before, (target.op, target.k, False))}, depth - 1
            )
            if yes is not no:
                return target
            target = yes
            continue
        facts[key] = (*facts.get(key, ()), (target.op, target.k, outcome))
        nxt = target.jt if outcome else target.jf
        assert nxt is not None
        target = nxt
    return target


def _order(entry: _Block, accept: _Block, reject: _Block) -> list[_Block]:
    """Blocks in an order where every jump goes forward (returns last)."""
    post: list[_Block] = []
    seen: set[int] = {id(accept), id(reject)}
    stack: list[tuple[_Block, bool]] = [(entry, False)]
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
    x = before
    for code, k in stmts:
        if code == LDX | B | MSH:
            x = ("msh", k)
        elif code in (LDX | MEM, MISC | TAX):
            x = None
    return x


def _drop_reloads(order: list[_Block]) -> None:
    preds: dict[int, list[_Block]] = {}
    for b in order:
        if b.op >= 0:
            assert b.jt is not None and b.jf is not None
            preds.setdefault(id(b.jt), []).append(b)
            preds.setdefault(id(b.jf), []).append(b)
    out_a: dict[int, object] = {}
    out_x: dict[int, object] = {}
    for b in order:
        if b.op < 0:
            continue
        incoming = preds.get(id(b), [])
        a_in = _common([out_a[id(p)] for p in incoming])
        x_in = _common([out_x[id(p)] for p in incoming])
        if b.akey is not None and a_in == b.akey:
            b.stmts = []
        elif b.stmts and b.stmts[0][0] == LDX | B | MSH and x_in == ("msh", b.stmts[0][1]):
            b.stmts = b.stmts[1:]
        out_a[id(b)] = b.akey
        out_x[id(b)] = _x_after(b.stmts, x_in)


def _common(values: list[object]) -> object:
    if not values or any(v is None or v != values[0] for v in values):
        return None
    return values[0]


def _layout(order: list[_Block]) -> list[BpfInstruction]:
    # Items: blocks, or ("ja", target) trampolines placed right after a block whose conditional
    # jump would be longer than 255; rounds repeat while inserting them pushes others too far.
    items: list[_Block | tuple[str, _Block]] = list(order)
    redirect: dict[tuple[int, bool], tuple[str, _Block]] = {}
    while True:
        addr: dict[int, int] = {}
        pos = 0
        for item in items:
            addr[id(item)] = pos
            pos += 1 if isinstance(item, tuple) else len(item.stmts) + 1
        placed: list[_Block | tuple[str, _Block]] = []
        for item in items:
            placed.append(item)
            if isinstance(item, tuple) or item.op < 0:
                continue
            here = addr[id(item)] + len(item.stmts)
            for taken in (True, False):
                if (id(item), taken) in redirect:
                    continue
                target = item.jt if taken else item.jf
                assert target is not None
                if addr[id(target)] - here - 1 > 255:
                    hop = ("ja", target)
                    redirect[(id(item), taken)] = hop
                    placed.append(hop)
        if len(placed) == len(items):
            break
        items = placed
    program: list[BpfInstruction] = []
    for item in items:
        if isinstance(item, tuple):
            here = len(program)
            program.append(BpfInstruction(JMP | JA, 0, 0, addr[id(item[1])] - here - 1))
            continue
        program.extend(BpfInstruction(code, 0, 0, k) for code, k in item.stmts)
        if item.op < 0:
            program.append(BpfInstruction(RET | K, 0, 0, item.k))
            continue
        here = len(program)
        offsets = []
        for taken in (True, False):
            dest: object = redirect.get((id(item), taken)) or (item.jt if taken else item.jf)
            offsets.append(addr[id(dest)] - here - 1)
        program.append(BpfInstruction(item.op, offsets[0], offsets[1], item.k))
    return program


_LOAD_NAMES = {W: "ld", H: "ldh", B: "ldb"}
_ALU_NAMES = {
    v: k
    for k, v in {
        "add": 0x00,
        "sub": 0x10,
        "mul": 0x20,
        "div": 0x30,
        "or": 0x40,
        "and": 0x50,
        "lsh": 0x60,
        "rsh": 0x70,
        "neg": 0x80,
        "mod": 0x90,
        "xor": 0xA0,
    }.items()
}
_JUMP_NAMES = {JA: "ja", JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"}


def _image(n: int, ins: BpfInstruction) -> str:
    code, k = ins.code, ins.k
    cls = code & 0x07
    op, operand = "unimp", f"0x{code:x}"
    if cls in (LD, LDX):
        size, mode = code & 0x18, code & 0xE0
        name = _LOAD_NAMES.get(size, "ld") if cls == LD else "ldx" + ("b" if mode == MSH else "")
        if cls == LDX and mode != MSH:
            name = "ldx"
        op = name
        operand = {
            IMM: f"#0x{k:x}",
            ABS: f"[{k}]",
            IND: f"[x + {k}]",
            MEM: f"M[{k}]",
            LEN: "#pktlen",
            MSH: f"4*([{k}]&0xf)",
        }.get(mode, operand)
    elif cls in (ST, 0x03):
        op, operand = ("st" if cls == ST else "stx"), f"M[{k}]"
    elif cls == RET:
        op, operand = "ret", ("a" if code & 0x18 == 0x10 else f"#{k}")
    elif cls == MISC:
        op, operand = ("txa" if code & 0xF8 == TXA else "tax"), ""
    elif cls == ALU:
        op = _ALU_NAMES.get(code & 0xF0, "unimp")
        if op == "neg":
            operand = ""
        elif code & X:
            operand = "x"
        elif op in ("and", "or", "xor"):
            operand = f"#0x{k:x}"
        else:
            operand = f"#{k}"
    elif cls == JMP:
        op = _JUMP_NAMES.get(code & 0xF0, "unimp")
        if op == "ja":
            return f"({n:03d}) {'ja':<8} {n + 1 + k}"
        operand = "x" if code & X else f"#0x{k:x}"
        return f"({n:03d}) {op:<8} {operand:<16} jt {n + 1 + ins.jt}\tjf {n + 1 + ins.jf}"
    return f"({n:03d}) {op:<8} {operand}"


def bpf_dump(program: Sequence[BpfInstruction | tuple[int, int, int, int]]) -> str:
    """The program as text, one instruction a line, in the form of ``tcpdump -d``."""
    return "\n".join(_image(n, BpfInstruction(*ins)) for n, ins in enumerate(program))
