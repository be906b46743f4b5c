"""IR -> classic BPF (the kernel's socket filter language), and its ``tcpdump -d`` text.

Pure. The formula becomes a graph of blocks (each computes a value into A and jumps on a test)
built back to front, so every jump goes forward; shared sub-graphs are built once. The passes of
``_bpfgraph`` shrink it, then layout places the blocks, with "ja" trampolines for jumps longer
than 255.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

from .._bpf import (
    BPF_A,
    BPF_ABS,
    BPF_ADD,
    BPF_ALU,
    BPF_AND,
    BPF_B,
    BPF_DIV,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_LEN,
    BPF_LSH,
    BPF_MEM,
    BPF_MISC,
    BPF_MOD,
    BPF_MSH,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RET,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_TAX,
    BPF_TXA,
    BPF_W,
    BPF_X,
    BPF_XOR,
    BpfInstruction,
    bpf_class,
    bpf_op,
)
from .._errors import FilterCompileError
from .._packet import SNAPLEN_DEFAULT
from ..decode._const import (
    skf_ad,
)
from ._bpfgraph import BIG, BLOCK_PASSES, Block, drop_reloads, order, thread
from ._ir import (
    Alu,
    Chain,
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
    Var,
    operands,
)

__all__ = ["BpfInstruction", "bpf_dump", "emit"]


#: Scratch words holding the 802.11 offsets (``Var``); arithmetic uses the 14 below them.
VAR_SLOTS = {"pl": 15, "hdr": 14}
_FREE_WORDS = min(VAR_SLOTS.values())
_SIZES = {1: BPF_B, 2: BPF_H, 4: BPF_W}
_ALU_OPS = {
    "+": BPF_ADD,
    "-": BPF_SUB,
    "*": BPF_MUL,
    "/": BPF_DIV,
    "|": BPF_OR,
    "&": BPF_AND,
    "<<": BPF_LSH,
    ">>": BPF_RSH,
    "%": BPF_MOD,
    "^": BPF_XOR,
}
_JUMPS = {"eq": BPF_JEQ, "gt": BPF_JGT, "ge": BPF_JGE, "set": BPF_JSET}


def emit(
    formula: Formula,
    snaplen: int = SNAPLEN_DEFAULT,
    *,
    radiotap: bool = False,
    limit: int = 0,
) -> list[BpfInstruction]:
    """Compile ``formula`` to a classic BPF program accepting with ``ret #snaplen``.

    ``radiotap``: the 802.11 header follows a radiotap header (for the 802.11 offsets).
    ``limit``: when not 0, a program certain to be longer raises before it is laid out.

    Raises:
        FilterCompileError: the arithmetic needs more scratch registers than classic BPF has,
            or the program is longer than ``limit``.
    """
    accept = Block([], -1, snaplen or SNAPLEN_DEFAULT, None, None, None)
    reject = Block([], -1, 0, None, None, None)
    builder = _Builder()
    entry = builder.formula(formula, accept, reject)
    # A handle, so the entry can move.
    root = Block([], BPF_JMP | BPF_JEQ | BPF_K, 0, entry, entry, None)
    # Every block was made after the blocks it jumps to: the reverse is an order for threading.
    blocks = [root, *reversed(builder.made), accept, reject]
    passes = BLOCK_PASSES if len(blocks) <= BIG else 1
    for _ in range(passes):  # each pass can expose more: stop when one changes nothing
        changed = thread(blocks)
        blocks = order(root, accept, reject)
        if not changed:
            break
    assert root.jt is not None
    blocks = blocks[1:] if root.jt.op >= 0 else [root.jt]  # a constant: one return
    drop_reloads(blocks)
    prologue = _prologue(builder.vars, radiotap)
    if limit:
        least = len(prologue) + sum(len(b.stmts) + 1 for b in blocks)
        if least > limit:
            raise FilterCompileError(
                f"program of {least} instructions or more exceeds the kernel's limit of {limit}",
                "",
                0,
            )
    return prologue + _layout(blocks)


class _Jset(NamedTuple):
    """A ``jset #k`` of the prologue, to labels."""

    k: int
    jt: str
    jf: str


def _prologue(names: set[str], radiotap: bool) -> list[BpfInstruction]:
    """The instructions computing the 802.11 offsets into their scratch words, as libpcap's
    prologue does (same reads, same conditions); they run before the expression's tests."""
    if not names:
        return []
    pl, hdr = VAR_SLOTS["pl"], VAR_SLOTS["hdr"]
    code: list[tuple[int, int] | _Jset | str] = []  # (code, k), a jump, or a label
    if radiotap:
        code += [
            (BPF_LD | BPF_B | BPF_ABS, 3),
            (BPF_ALU | BPF_LSH | BPF_K, 8),
            (BPF_MISC | BPF_TAX, 0),
            (BPF_LD | BPF_B | BPF_ABS, 2),
        ]
        code += [(BPF_ALU | BPF_OR | BPF_X, 0), (BPF_ST, hdr)]
    if "pl" in names:
        code += (
            [(BPF_MISC | BPF_TAX, 0)]
            if radiotap
            else [(BPF_LDX | BPF_IMM, 0), (BPF_MISC | BPF_TXA, 0)]
        )
        code += [(BPF_ALU | BPF_ADD | BPF_K, 24), (BPF_ST, pl), (BPF_LD | BPF_B | BPF_IND, 0)]
        code += [_Jset(0x08, "a", "end"), "a", _Jset(0x04, "end", "b"), "b"]
        code += [_Jset(0x80, "c", "d" if radiotap else "end"), "c"]
        code += [(BPF_LD | BPF_MEM, pl), (BPF_ALU | BPF_ADD | BPF_K, 2), (BPF_ST, pl), "d"]
        if radiotap:
            code += [(BPF_LD | BPF_W | BPF_ABS, 4), _Jset(0x2000000, "e", "end"), "e"]
            code += [_Jset(0x80, "end", "f"), "f", _Jset(0x1000000, "g", "h"), "g"]
            code += [(BPF_LD | BPF_B | BPF_ABS, 16), _Jset(0x20, "pad", "end"), "h"]
            code += [(BPF_LD | BPF_B | BPF_ABS, 8), _Jset(0x20, "pad", "end"), "pad"]
            code += [
                (BPF_LD | BPF_MEM, pl),
                (BPF_ALU | BPF_ADD | BPF_K, 3),
                (BPF_ALU | BPF_AND | BPF_K, 0xFFFFFFFC),
                (BPF_ST, pl),
            ]
    code.append("end")
    labels: dict[str, int] = {}
    items: list[tuple[int, int] | _Jset] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(items)
        else:
            items.append(item)
    program = []
    for n, item in enumerate(items):
        if isinstance(item, _Jset):
            jt, jf = labels[item.jt] - n - 1, labels[item.jf] - n - 1
            program.append(BpfInstruction(BPF_JMP | BPF_JSET | BPF_K, jt, jf, item.k))
        else:
            program.append(BpfInstruction(item[0], 0, 0, item[1]))
    return program


class _Builder:
    """Blocks for a formula, each distinct (test, targets) built once."""

    def __init__(self) -> None:
        self.cache: dict[tuple[object, ...], Block] = {}
        self.made: list[Block] = []  # in the order they were made
        # Each distinct value: a small number (cheap to hash, the key of facts and reloads)
        # and the statements loading it, worked out once.
        self.values: dict[Val, tuple[int, list[tuple[int, int]]]] = {}
        self.vars: set[str] = set()  # the 802.11 offsets used

    def formula(self, f: Formula, t: Block, e: Block) -> Block:
        kind = type(f)
        if kind is Cmp:
            assert isinstance(f, Cmp)
            known = self.values.get(f.val)
            if known is None:
                known = self.values[f.val] = (len(self.values), _value(f.val, 0, self.vars))
            akey, stmts = known
            op = BPF_JMP | _JUMPS[f.op] | BPF_K
            key = (akey, op, f.k, id(t), id(e))
            found = self.cache.get(key)
            if found is None:
                # Blocks loading one value share its statements (never changed in place).
                found = self.cache[key] = Block(stmts, op, f.k, t, e, akey)
                self.made.append(found)
            return found
        if kind is Conj:  # built from the last operand back, so chains need no recursion
            for part in reversed(operands(f, Conj)):
                t = self.formula(part, t, e)
            return t
        if kind is Disj:
            for part in reversed(operands(f, Disj)):
                e = self.formula(part, t, e)
            return e
        if kind is Neg:
            assert isinstance(f, Neg)
            return self.formula(f.a, e, t)
        if kind is Const:
            assert isinstance(f, Const)
            return t if f.value else e
        assert isinstance(f, Rel)
        stmts = [
            *_value(f.b, 0, self.vars),
            (BPF_ST, 0),
            *_value(f.a, 1, self.vars),
            (BPF_LDX | BPF_MEM, 0),
        ]
        op = BPF_JMP | _JUMPS[f.op] | BPF_X
        rkey = (tuple(stmts), op, id(t), id(e))
        found = self.cache.get(rkey)
        if found is None:
            found = self.cache[rkey] = Block(stmts, op, 0, t, e, None, xcmp=True)
            self.made.append(found)
        return found


def _value(v: Val, depth: int, used: set[str]) -> list[tuple[int, int]]:
    """Statements leaving ``v`` in A (scratch memory from ``depth`` up; the 802.11 offsets
    read are added to ``used``)."""
    if isinstance(v, Var):
        used.add(v.name)
        return [(BPF_LD | BPF_MEM, VAR_SLOTS[v.name])]
    if isinstance(v, Chain):
        raise FilterCompileError(
            "'protochain' walks the IP headers in a loop, which a kernel program cannot have "
            "(libpcap's jumps backwards and the kernel refuses it): filter in userspace",
            "",
            0,
        )
    if isinstance(v, LdI) and isinstance(v.index, Var):
        used.add(v.index.name)
        return [
            (BPF_LDX | BPF_MEM, VAR_SLOTS[v.index.name]),
            (BPF_LD | _SIZES[v.size] | BPF_IND, v.off),
        ]
    if isinstance(v, Imm):
        return [(BPF_LD | BPF_IMM, v.k)]
    if isinstance(v, Len):
        return [(BPF_LD | BPF_W | BPF_LEN, 0)]
    if isinstance(v, Ld):
        return [(BPF_LD | _SIZES[v.size] | BPF_ABS, v.off)]
    if isinstance(v, LdX):
        return [(BPF_LDX | BPF_B | BPF_MSH, v.xoff), (BPF_LD | _SIZES[v.size] | BPF_IND, v.off)]
    if isinstance(v, LdI):
        return [
            *_value(v.index, depth, used),
            (BPF_MISC | BPF_TAX, 0),
            (BPF_LD | _SIZES[v.size] | BPF_IND, v.off),
        ]
    if isinstance(v, Msh):
        return [(BPF_LDX | BPF_B | BPF_MSH, v.xoff), (BPF_MISC | BPF_TXA, 0)]
    assert isinstance(v, Alu)
    code = BPF_ALU | _ALU_OPS[v.op]
    if isinstance(v.b, Imm):
        return [*_value(v.a, depth, used), (code | BPF_K, v.b.k)]
    if _index_of(v.a) == v.b:  # computing a leaves b in X: "ihl + base" as libpcap does it
        return [*_value(v.a, depth, used), (code | BPF_X, 0)]
    # b first, kept in M[depth] while a is computed (one instruction shorter), unless that
    # needs more scratch words than there are and a first does not ("(a - b) - c - ..." nested
    # to the left, as libpcap compiles it to any depth).
    na, nb = _slots(v.a), _slots(v.b)
    if depth + max(nb, 1 + na) <= _FREE_WORDS:
        return [
            *_value(v.b, depth, used),
            (BPF_ST, depth),
            *_value(v.a, depth + 1, used),
            (BPF_LDX | BPF_MEM, depth),
            (code | BPF_X, 0),
        ]
    if depth + max(na, 1 + nb) <= _FREE_WORDS:
        return [
            *_value(v.a, depth, used),
            (BPF_ST, depth),
            *_value(v.b, depth + 1, used),
            (BPF_MISC | BPF_TAX, 0),
            (BPF_LD | BPF_MEM, depth),
            (code | BPF_X, 0),
        ]
    raise FilterCompileError("arithmetic too deeply nested for classic BPF", "", 0)


def _slots(v: Val) -> int:
    """The fewest scratch words ``_value(v)`` needs (from its ``depth`` up)."""
    if isinstance(v, LdI) and not isinstance(v.index, Var):
        return _slots(v.index)
    if not isinstance(v, Alu):
        return 0
    if isinstance(v.b, Imm) or _index_of(v.a) == v.b:
        return _slots(v.a)
    na, nb = _slots(v.a), _slots(v.b)
    return min(max(nb, 1 + na), max(na, 1 + nb))


def _index_of(v: Val) -> Val | None:
    """The value X holds once ``_value(v)`` ran, where it is known: the index of the indexed
    load ``v`` is, or starts from with constants applied to it (None otherwise)."""
    while isinstance(v, Alu) and isinstance(v.b, Imm):
        v = v.a
    return v.index if isinstance(v, LdI) else None


def _layout(blocks: list[Block]) -> list[BpfInstruction]:
    # A conditional jump longer than 255 goes through a "ja" trampoline placed right after its
    # block (the newest first); rounds repeat while inserting them pushes other jumps too far.
    index = {id(b): i for i, b in enumerate(blocks)}
    jumps = [
        (i, len(b.stmts), index[id(b.jt)], index[id(b.jf)])
        for i, b in enumerate(blocks)
        if b.op >= 0
    ]
    sizes = [len(b.stmts) + 1 for b in blocks]
    hops: dict[int, list[tuple[bool, int]]] = {}  # block -> its trampolines (taken, target)
    while True:
        addr = [0, *accumulate(sizes)]
        added = False
        for i, n, jt, jf in jumps:
            limit = addr[i] + n + 256  # the farthest a conditional jump reaches
            if addr[jt] <= limit and addr[jf] <= limit:
                continue
            mine = hops.get(i, [])
            new = [
                (taken, target)
                for taken, target in ((True, jt), (False, jf))
                if addr[target] > limit and (taken, target) not in mine
            ]
            if new:
                hops[i] = [*new, *mine]
                sizes[i] += len(new)
                added = True
        if not added:
            break
    program: list[BpfInstruction] = []
    append = program.append
    loads: dict[int, list[BpfInstruction]] = {}  # statements shared by blocks, made once
    for i, b in enumerate(blocks):
        if b.stmts:
            made = loads.get(id(b.stmts))
            if made is None:
                made = loads[id(b.stmts)] = [BpfInstruction(c, 0, 0, k) for c, k in b.stmts]
            program += made
        if b.op < 0:
            append(BpfInstruction(BPF_RET | BPF_K, 0, 0, b.k))
            continue
        here = len(program)
        mine = hops.get(i, [])
        jt, jf = index[id(b.jt)], index[id(b.jf)]
        offsets = [addr[jt] - here - 1, addr[jf] - here - 1]
        for j, (taken, _) in enumerate(mine):
            offsets[0 if taken else 1] = j  # the trampoline's distance from the jump
        append(BpfInstruction(b.op, offsets[0], offsets[1], b.k))
        for j, (_, target) in enumerate(mine):
            append(BpfInstruction(BPF_JMP | BPF_JA, 0, 0, addr[target] - (here + 1 + j) - 1))
    return program


#: Names of the Linux ancillary loads (an absolute load of ``SKF_AD_OFF + field``), as
#: libpcap's bpf_image prints them.
_ANCILLARY = {
    skf_ad(4 * i): name
    for i, name in enumerate(
        (
            "proto", "type", "ifidx", "nla", "nlan", "mark", "queue", "hatype",
            "rxhash", "cpu", "xor_x", "vlan_tci", "vlanp", "poff", "random", "vlan_tpid",
        )
    )
}  # fmt: skip
_LOADS = {BPF_W: "ld", BPF_H: "ldh", BPF_B: "ldb"}
_ALU_NAMES = {
    BPF_ADD: "add",
    BPF_SUB: "sub",
    BPF_MUL: "mul",
    BPF_DIV: "div",
    BPF_MOD: "mod",
    BPF_AND: "and",
    BPF_OR: "or",
    BPF_XOR: "xor",
    BPF_LSH: "lsh",
    BPF_RSH: "rsh",
}
_JUMP_NAMES = {BPF_JEQ: "jeq", BPF_JGT: "jgt", BPF_JGE: "jge", BPF_JSET: "jset"}


def _formats() -> dict[int, tuple[str, str]]:
    """Each opcode libpcap's bpf_image names: its name and its operand, a format of ``k``
    (``d``: signed decimal, ``x``: hexadecimal, ``abs``: an absolute load's offset)."""
    table = {
        BPF_RET | BPF_K: ("ret", "#{d}"),
        BPF_RET | BPF_A: ("ret", ""),
        BPF_LD | BPF_W | BPF_LEN: ("ld", "#pktlen"),
        BPF_LD | BPF_IMM: ("ld", "#0x{x}"),
        BPF_LDX | BPF_IMM: ("ldx", "#0x{x}"),
        BPF_LDX | BPF_MSH | BPF_B: ("ldxb", "4*([{d}]&0xf)"),
        BPF_LD | BPF_MEM: ("ld", "M[{d}]"),
        BPF_LDX | BPF_MEM: ("ldx", "M[{d}]"),
        BPF_ST: ("st", "M[{d}]"),
        BPF_STX: ("stx", "M[{d}]"),
        BPF_JMP | BPF_JA: ("ja", "{ja}"),
        BPF_ALU | BPF_NEG: ("neg", ""),
        BPF_MISC | BPF_TAX: ("tax", ""),
        BPF_MISC | BPF_TXA: ("txa", ""),
    }
    for size, name in _LOADS.items():
        table[BPF_LD | size | BPF_ABS] = (name, "[{abs}]")
        table[BPF_LD | size | BPF_IND] = (name, "[x + {d}]")
    for op, name in _JUMP_NAMES.items():
        table[BPF_JMP | op | BPF_K] = (name, "#0x{x}")
        table[BPF_JMP | op | BPF_X] = (name, "x")
    for op, name in _ALU_NAMES.items():
        table[BPF_ALU | op | BPF_K] = (
            name,
            "#0x{x}" if op in (BPF_AND, BPF_OR, BPF_XOR) else "#{d}",
        )
        table[BPF_ALU | op | BPF_X] = (name, "x")
    return table


def _image(n: int, ins: BpfInstruction, formats: dict[int, tuple[str, str]]) -> str:
    """One line of ``tcpdump -d``: libpcap's bpf_image of instruction ``ins`` at ``n``
    (``formats``: the table of ``_formats``)."""
    code, k = ins.code, ins.k
    found = formats.get(code)
    if found is None:
        op, operand = "unimp", f"0x{code:x}"
    else:
        op, form = found
        signed = k - (1 << 32) if k & 0x80000000 else k  # C's %d of the 32-bit word
        ja = (n + 1 + k) & 0xFFFFFFFF
        operand = form.format(
            d=signed,
            x=f"{k:x}",
            abs=_ANCILLARY.get(k, signed),
            ja=ja - (1 << 32) if ja & 0x80000000 else ja,
        )
    if bpf_class(code) == BPF_JMP and bpf_op(code) != BPF_JA:
        return f"({n:03d}) {op:<8} {operand:<16} jt {n + 1 + ins.jt}\tjf {n + 1 + ins.jf}"
    return f"({n:03d}) {op:<8} {operand}"


def bpf_dump(program: Sequence[BpfInstruction | tuple[int, int, int, int]], level: int = 1) -> str:
    """The program as text, in the form tcpdump prints it (without a final newline).

    Args:
        program: the instructions.
        level: 1 (``-d``) one readable instruction a line; 2 (``-dd``) a C array initializer,
            ``{ 0x28, 0, 0, 0x0000000c },`` a line; 3 or more (``-ddd``) the instruction count,
            then ``code jt jf k`` in decimal a line.
    """
    if level >= 3:
        lines = [str(len(program))]
        lines += [f"{c} {jt} {jf} {k}" for c, jt, jf, k in program]
        return "\n".join(lines)
    if level == 2:
        return "\n".join(f"{{ 0x{c:x}, {jt}, {jf}, 0x{k:08x} }}," for c, jt, jf, k in program)
    formats = _formats()  # made per call: a few microseconds
    return "\n".join(_image(n, BpfInstruction(*ins), formats) for n, ins in enumerate(program))
