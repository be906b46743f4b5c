"""The BPF back-end against libpcap, instruction by instruction and program by program.

- The printer: ``bpf_dump`` is libpcap's ``bpf_image`` on every one of the 256 opcodes (named or
  ``unimp``) with operands that print signed, as ancillary names or wrap, and tcpdump's own
  ``-d``/``-dd``/``-ddd`` text of whole programs.
- The shapes of our programs: each one passes libpcap's ``bpf_validate``, gives libpcap's
  verdicts on frames built for it, and stays within twice libpcap's length; scratch memory,
  the 802.11 prologues, the jump trampolines and the arithmetic checked where libpcap is a
  judge.
"""

from __future__ import annotations

import ctypes
import itertools
import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _helpers import ether, ipv4, tcp, udp
from _oracle import Compiled, _bpf_image, run_program, validate
from _packets import captured

from capsvc._packet import LinkType
from capsvc.filter import (
    BpfInstruction,
    FilterCompileError,
    bpf_dump,
    compile_bpf,
    parse,
    parse_filter,
)
from capsvc.filter._bpf import emit
from capsvc.filter._ir import Formula
from capsvc.filter._shared import lowered
from capsvc.sources.libpcap._ffi import bpf_insn

# k values where the printing differs: small, hex-looking, the sign bit, -1, every offset of
# the Linux ancillary area (named or not), and just below it.
_KS = (0, 7, 0x1234, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFEFFF, *range(0xFFFFF000, 0xFFFFF046))


def _libpcap_image(program: list[tuple[int, int, int, int]]) -> str:
    image = _bpf_image()
    lines = []
    for n, (code, jt, jf, k) in enumerate(program):
        ins = bpf_insn(code, jt, jf, k)
        lines.append(image(ctypes.byref(ins), n).decode())
    return "\n".join(lines)


def test_every_opcode_and_operand_prints_as_bpf_image() -> None:
    """All 256 opcodes (libpcap names 48; the others print ``unimp 0x..``) with each k above,
    at positions past 999 too: ``bpf_dump`` equals libpcap's ``bpf_image`` line for line.
    Includes the cases an earlier printer got wrong: ``ret a`` (libpcap prints no operand),
    decimal operands of 2**31 and more (printed signed, C's ``%d``), a ``ja`` whose target
    wraps past 2**32, and the 16 ancillary names (``[proto]`` .. ``[vlan_tpid]``)."""
    program = [(code, 3 + code % 5, 250 - code % 7, k) for code in range(256) for k in _KS]
    assert len(program) > 1000
    ours, theirs = bpf_dump(program).splitlines(), _libpcap_image(program).splitlines()
    assert len(ours) == len(theirs)
    wrong = [(o, t) for o, t in zip(ours, theirs, strict=True) if o != t]
    assert not wrong, wrong[:10]
    assert sum("unimp" not in t for t in theirs) == 48 * len(_KS)  # the 48 named opcodes


def test_a_single_instruction_prints_as_bpf_image() -> None:
    # A program of one: position 0, the default level.
    for ins in [
        (0x06, 0, 0, 0xFFFFFFFF),
        (0x16, 0, 0, 0),
        (0x05, 0, 0, 0xFFFFFFFF),
        (0x0D, 0, 0, 1),
    ]:
        assert bpf_dump([ins]) == _libpcap_image([ins])
    assert bpf_dump([BpfInstruction(0x15, 1, 2, 0x800)]) == _libpcap_image([(0x15, 1, 2, 0x800)])
    assert bpf_dump([]) == ""


_TCPDUMP = shutil.which("tcpdump")


def _tcpdump(expr: str, level: int, tmp: Path) -> str:
    """tcpdump's ``-d`` (x level) text of libpcap's program for ``expr`` on Ethernet."""
    path = tmp / "empty.pcap"
    if not path.exists():
        path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    assert _TCPDUMP is not None
    out = subprocess.run(
        [_TCPDUMP, "-r", str(path), "-" + "d" * level, expr],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return out.rstrip("\n")


@pytest.mark.skipif(_TCPDUMP is None, reason="tcpdump is not installed")
@pytest.mark.parametrize(
    "expr", ["tcp port 443", "ip[2:2] - 20 > 100 or len > 0x7fffffff", "ip6 or vlan 5"]
)
def test_whole_programs_print_as_tcpdump_prints_them(expr: str, tmp_path: Path) -> None:
    compiled = Compiled(expr, 1)
    try:
        program = compiled.instructions()
    finally:
        compiled.close()
    assert bpf_dump(program) == _tcpdump(expr, 1, tmp_path)
    for level in (1, 2, 3, 4):  # -dddd prints as -ddd
        assert bpf_dump(program, level) == _tcpdump(expr, level, tmp_path), level


# -- arithmetic as libpcap groups it --------------------------------------------------------

_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
}
# libpcap's grammar (grammar.y): %left '|'; %left '&'; %left LSH RSH; %left '+' '-';
# %left '*' '/'; %nonassoc UMINUS; '%' and '^' have no precedence, so bison shifts them:
# "a OP b % c" is "a OP (b % c)" and "a % b OP c" is "a % (b OP c)", whatever OP.
_LEVEL = {"|": 1, "&": 2, "<<": 3, ">>": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 0, "^": 0}


def _groups_left(o1: str, o2: str) -> bool:
    """Whether libpcap reads ``a o1 b o2 c`` as ``(a o1 b) o2 c``."""
    if _LEVEL[o1] == 0 or _LEVEL[o2] == 0:
        return False
    return _LEVEL[o1] >= _LEVEL[o2]


def _ip_frames() -> list[bytes]:
    # IPv4 ethertype, then bytes the arithmetic reads (ip[0..3]: 7, 3, 2 and more).
    bodies = [bytes(b) for b in ([7, 3, 2, 5], [200, 9, 4, 1], [13, 6, 5, 3], [100, 7, 3, 2])]
    bodies += [bytes([50, 200, 1, 0]), bytes([1, 1, 1, 1]), bytes([0, 5, 3, 2])]
    return [ether(body + bytes(40), ethertype=0x0800) for body in bodies]


def _apply(op: str, a: int | None, b: int | None) -> int | None:
    """``a op b`` on 32-bit words; None where BPF's answer is not arithmetic (a division by
    0 rejects the packet) or C's is undefined (a shift by 32 or more)."""
    if a is None or b is None or (op in "/%" and b == 0) or (op in ("<<", ">>") and b > 31):
        return None
    return _OPS[op](a, b) & 0xFFFFFFFF


def _hand(o1: str, o2: str, left: bool, a: int, b: int, c: int) -> int | None:
    if left:
        return _apply(o2, _apply(o1, a, b), c)
    return _apply(o1, a, _apply(o2, b, c))


@pytest.mark.parametrize("o1", list(_OPS))
def test_operators_group_as_libpcap_groups_them(o1: str) -> None:
    """``ip[0] o1 ip[1] o2 ip[2] = K`` for every pair: K is the value of libpcap's grouping
    worked out by hand on a frame where the other grouping gives another value, and the
    matcher, our BPF program and libpcap agree on every frame."""
    frames = _ip_frames()
    differ = 0
    for o2 in _OPS:
        left = _groups_left(o1, o2)
        values = [
            (_hand(o1, o2, left, *f[14:17]), _hand(o1, o2, not left, *f[14:17])) for f in frames
        ]
        defined = [i for i, (k, _) in enumerate(values) if k is not None]
        i = next((i for i in defined if values[i][1] not in (None, values[i][0])), defined[0])
        differ += values[i][1] not in (None, values[i][0])
        expr = f"ip[0] {o1} ip[1] {o2} ip[2] = {values[i][0]}"
        compiled = Compiled(expr, 1)
        try:
            theirs = compiled.verdicts(frames)
        finally:
            compiled.close()
        assert theirs[i]
        matcher = parse_filter(expr, LinkType.ETHERNET)
        assert matcher is not None
        assert [matcher.match(f) for f in frames] == theirs, expr
        assert run_program(compile_bpf(expr), frames) == theirs, expr
        # The expression's text (as capsvc prints it) reads back the same.
        node = parse(expr)
        assert parse(str(node)) == node, str(node)
    assert differ >= 7  # the pairs where the grouping matters on these frames


@pytest.mark.parametrize("op", list(_OPS))
def test_unary_minus_takes_a_following_modulo_or_xor(op: str) -> None:
    # "- a % b" is "-(a % b)" (UMINUS then an operator bison shifts); "- a * b" is "(-a) * b".
    frames = _ip_frames()
    a, b = frames[0][14:16]
    m = 0xFFFFFFFF
    k = (-_OPS[op](a, b)) & m if _LEVEL[op] == 0 else _OPS[op](-a & m, b) & m
    expr = f"- ip[0] {op} ip[1] = {k}"
    compiled = Compiled(expr, 1)
    try:
        theirs = compiled.verdicts(frames)
    finally:
        compiled.close()
    assert theirs[0]
    matcher = parse_filter(expr, LinkType.ETHERNET)
    assert matcher is not None
    assert [matcher.match(f) for f in frames] == theirs
    assert run_program(compile_bpf(expr), frames) == theirs


def test_modulo_and_xor_take_all_that_follows() -> None:
    # The examples of docs/filter.md, and longer chains, against libpcap's own grouping.
    frames = _ip_frames()
    for expr, grouped in [
        ("ip[0] % 4 + 1 = 2", "ip[0] % (4 + 1) = 2"),
        ("ip[0] | ip[1] ^ 1 = 7", "ip[0] | (ip[1] ^ 1) = 7"),
        ("ip[0] + ip[1] % ip[2] * 3 - 1 = 8", "ip[0] + (ip[1] % ((ip[2] * 3) - 1)) = 8"),
        ("ip[0] ^ ip[1] % 5 | 2 = 5", "ip[0] ^ (ip[1] % (5 | 2)) = 5"),
        ("ip[0] * 2 ^ 1 + ip[1] = 15", "ip[0] * (2 ^ (1 + ip[1])) = 15"),
    ]:
        assert parse(expr) == parse(grouped), expr
        compiled = Compiled(expr, 1)
        try:
            theirs = compiled.verdicts(frames)
        finally:
            compiled.close()
        assert run_program(compile_bpf(expr), frames) == theirs, expr
        assert run_program(compile_bpf(grouped), frames) == theirs, expr


# -- shapes of our programs, judged by libpcap ---------------------------------------------


def _libpcap(expr: str, dlt: int, frames: list[bytes]) -> tuple[list[bool], int]:
    compiled = Compiled(expr, dlt)
    try:
        return compiled.verdicts(frames), len(compiled.instructions())
    finally:
        compiled.close()


def _judged(
    expr: str, frames: list[bytes], linktype: LinkType = LinkType.ETHERNET
) -> list[BpfInstruction]:
    """Our program for ``expr``: bpf_validate accepts it, it gives libpcap's verdict on every
    frame and is at most twice as long as libpcap's."""
    program = compile_bpf(expr, linktype)
    assert validate(program), expr
    theirs, length = _libpcap(expr, int(linktype) if linktype != LinkType.ETHERNET else 1, frames)
    assert run_program(program, frames) == theirs, expr
    assert len(program) <= 2 * length, (expr, len(program), length)
    return program


def _left_chain(terms: int, op: str = "-") -> str:
    text = "ip[0]"
    for i in range(1, terms):
        text = f"({text} {op} ip[{i % 20}])"
    return text


@pytest.mark.parametrize("terms", [14, 15, 16, 24, 40])
@pytest.mark.parametrize("op", ["-", "+"])
def test_arithmetic_nested_to_the_left_compiles_as_libpcap_compiles_it(terms: int, op: str) -> None:
    """``((ip[0] - ip[1]) - ip[2]) - ...``: libpcap compiles it to any depth (two scratch words
    at a time); ours took a word per level and refused 15 terms, though M[13] was free. Each
    program is valid, gives libpcap's verdicts and uses no scratch word but M[0]..M[13]."""
    frames = [ether(bytes(range(i, i + 40)), ethertype=0x0800) for i in (0, 3, 9)]
    data = frames[1][14:]
    value = data[0]
    for i in range(1, terms):
        value = (value - data[i % 20] if op == "-" else value + data[i % 20]) & 0xFFFFFFFF
    expr = f"{_left_chain(terms, op)} = {value}"
    program = _judged(expr, frames)
    assert run_program(program, frames)[1]  # the value worked out by hand
    words = {ins.k for ins in program if ins.code in (0x02, 0x03, 0x60, 0x61)}
    assert words <= set(range(14))
    if terms >= 15:
        assert 13 in words  # every word the 802.11 offsets leave free is used


def _libpcap_prologue(expr: str, dlt: int) -> list[tuple[int, int, int, int]]:
    """libpcap's unoptimized program for ``expr`` with its 802.11 offsets in our scratch words
    (the one stored after ``add #24``, the payload's offset, in M[15]; the one stored after
    ``or x``, the radiotap header's length, in M[14]) and without the ``txa`` right after
    ``tax`` in its radiotap prologue (A already equals X there)."""
    compiled = Compiled(expr, dlt, optimize=False)
    try:
        program = compiled.instructions()
    finally:
        compiled.close()
    slots: dict[int, int] = {}
    for before, ins in itertools.pairwise(program):
        if ins[0] == 0x02 and before[0] in (0x04, 0x4C) and ins[3] not in slots:  # st after add/or
            slots[ins[3]] = 15 if before[0] == 0x04 and before[3] == 24 else 14
    out = []
    for n, ins in enumerate(program):
        if ins[0] == 0x87 and n and program[n - 1][0] == 0x07 and n < 8:  # txa after tax
            continue
        code, jt, jf, k = ins
        if code in (0x02, 0x60, 0x61) and k in slots:
            k = slots[k]
        out.append((code, jt, jf, k))
    return out


@pytest.mark.parametrize(
    ("expr", "linktype"),
    [
        ("ip", LinkType.IEEE802_11_RADIO),
        ("wlan[0] = 8", LinkType.IEEE802_11_RADIO),
        ("type data", LinkType.IEEE802_11_RADIO),
        ("ip and wlan[1] = 0", LinkType.IEEE802_11_RADIO),
        ("udp port 53 or arp", LinkType.IEEE802_11_RADIO),
        ("ip", LinkType.IEEE802_11),
        ("ip6 and wlan[1] = 0", LinkType.IEEE802_11),
        ("len > 5", LinkType.IEEE802_11_RADIO),
    ],
)
def test_802_11_prologue_is_libpcaps(expr: str, linktype: LinkType) -> None:
    """The instructions computing the radiotap header's length and the 802.11 payload's offset
    (QoS data frames 2 bytes more, and 4-byte alignment when radiotap's flags say the frame is
    padded: with or without TSFT, not with an extended bitmap) are libpcap's own, instruction
    for instruction, up to where both programs' prologue jumps land."""
    ours = [tuple(ins) for ins in compile_bpf(expr, linktype)]
    theirs = _libpcap_prologue(expr, int(linktype))
    stores = [n for n, ins in enumerate(ours) if ins[0] == 0x02 and ins[3] in (14, 15)]
    end = stores[-1] + 1 if stores else 0
    assert ours[:end] == theirs[:end]
    for program in (ours, theirs):
        targets = [
            n + 1 + ins[j] for n, ins in enumerate(program[:end]) if ins[0] == 0x45 for j in (1, 2)
        ]
        assert all(t <= end for t in targets)
        if targets:
            assert end in targets  # the prologue ends where its tests go on
    # libpcap has a prologue exactly when we have one.
    assert bool(end) == any(ins[0] == 0x02 and ins[3] in (14, 15) for ins in theirs)


def _jumps(program: list[BpfInstruction]) -> tuple[list[int], list[int]]:
    """The offsets of the direct conditional jumps, and for each jump through a ``ja`` the
    offset a direct jump to its target would need: the ``ja`` gone, the jump's other
    trampoline, if any, still between them (the layout adds one branch's trampoline at a
    time, judging the other with it in place)."""
    direct, hops = [], []
    for q, ins in enumerate(program):
        if ins.code & 0x07 == 0x05 and ins.code != 0x05:
            for offset in (ins.jt, ins.jf):
                t = q + 1 + offset
                if program[t].code == 0x05:
                    hops.append(t + 1 + program[t].k - q - 2)  # its ja gone
                else:
                    direct.append(offset)
    return direct, hops


@pytest.mark.parametrize(
    ("form", "counts"),
    [("tcp port {p}", (62, 126)), ("(udp port {p} and host 10.1.1.{p})", (25, 90, 123))],
)
def test_trampolines_only_where_a_jump_is_longer_than_255(
    form: str, counts: tuple[int, ...]
) -> None:
    """Alternatives whose jumps cross 255 instructions, for lengths around the limit: every
    program is valid and gives libpcap's verdicts; a conditional jump goes through a ``ja``
    exactly when its target is more than 255 away (jumps of 255 exactly are direct, a true
    branch's with 25 alternatives of the second form, a false branch's with 62 of the first),
    and a ``ja`` is reached by no other way."""
    lengths = set()
    for n in counts:
        expr = " or ".join(form.format(p=p) for p in range(1, n))
        frames = [
            ether(ipv4("10.9.9.9", f"10.1.1.{p}", tcp(40000, p) if "tcp" in form else udp(9, p)))
            for p in (1, n // 2, n - 1, n)
        ]
        program = _judged(expr, frames)
        direct, hops = _jumps(program)
        assert all(o <= 255 for o in direct) and all(h > 255 for h in hops), n
        assert sum(ins.code == 0x05 for ins in program) == len(hops)
        lengths.update(direct + hops)
    assert {255, 256} <= lengths  # both sides of the limit were met


@pytest.mark.parametrize("terms", [253, 254, 255])
def test_the_first_tests_jump_across_255_alternatives(terms: int) -> None:
    """``ip and (len = 1 or ... or len = N)``: the IPv4 test's false branch jumps over every
    alternative, 254 to 256 instructions away (the first block's jumps, measured from
    address 0): a valid program with libpcap's verdicts, whose jumps of more than 255 go
    through a ``ja``.

    Mutation guarded: the first block's address taken as 1 in the layout (``_layout`` 16),
    which let a jump of 256 from it stand as it is (an offset a jump cannot hold)."""
    expr = "ip and (" + " or ".join(f"len = {n}" for n in range(1, terms)) + ")"
    frames = [ether(ipv4("10.0.0.1", "10.0.0.2", udp(9, 9, bytes(n)))) for n in (0, 30, 300)]
    frames.append(ether(bytes(40), ethertype=0x86DD))
    program = _judged(expr, frames)
    direct, hops = _jumps(program)
    assert all(o <= 255 for o in direct) and all(h > 255 for h in hops), terms
    assert run_program(program, frames) == [True, True, False, False]


@pytest.mark.parametrize("linktype", [LinkType.ETHERNET, LinkType.IEEE802_11_RADIO])
def test_statements_have_no_jump_offsets(linktype: LinkType) -> None:
    # BPF_STMT (linux/filter.h, pcap/bpf.h) makes jt = jf = 0; only conditional jumps have them.
    expr = " or ".join(f"(tcp port {p} and ip[{p}] + 2 > len)" for p in range(1, 70)) + " or ip"
    program = compile_bpf(expr, linktype)
    assert any(ins.code == 0x05 for ins in program)
    for ins in program:
        if not (ins.code & 0x07 == 0x05 and ins.code != 0x05):
            assert (ins.jt, ins.jf) == (0, 0), ins


def _formula(expr: str, linktype: LinkType = LinkType.ETHERNET) -> Formula:
    formula = lowered(expr, linktype)[1]
    assert formula is not None
    return formula


def test_the_length_limit_is_exact() -> None:
    """``emit(limit=L)`` refuses a program certain to be longer than L before laying it out,
    and takes one of exactly L (the kernel takes BPF_MAXINSNS instructions, not one fewer);
    without a limit (the default) any length is laid out."""
    formula = _formula("tcp port 443 or udp[8:2] = 53 or ip6")
    full = emit(formula)
    assert not any(ins.code == 0x05 for ins in full)  # no trampolines: the bound is exact
    assert emit(formula, limit=len(full)) == full
    with pytest.raises(FilterCompileError) as info:
        emit(formula, limit=len(full) - 1)
    assert info.value.reason == (
        f"program of {len(full)} instructions or more exceeds the kernel's limit of {len(full) - 1}"
    )
    assert (info.value.expr, info.value.offset) == ("", 0)  # compile_bpf adds the expression
    big = _formula(" or ".join(f"(tcp port {p} and host 10.0.{p % 250}.1)" for p in range(400)))
    assert len(emit(big)) > 4096


def test_a_program_over_the_kernels_limit_names_the_expression() -> None:
    expr = " or ".join(f"(tcp port {p} and host 10.0.{p % 250}.{p // 250})" for p in range(400))
    with pytest.raises(FilterCompileError) as info:
        compile_bpf(expr, max_length=0)
    assert info.value.expr == expr and info.value.offset == 0
    assert "exceeds the kernel's limit of 4096" in info.value.reason


def test_emit_defaults_to_no_radiotap_prologue() -> None:
    # The 802.11 payload's offset without radiotap: libpcap's prologue for IEEE802_11.
    formula = _formula("ip", LinkType.IEEE802_11)
    assert [tuple(i) for i in emit(formula)] == [
        tuple(i) for i in compile_bpf("ip", LinkType.IEEE802_11)
    ]
    assert emit(formula)[:4] == [
        BpfInstruction(0x01, 0, 0, 0),  # ldx #0
        BpfInstruction(0x87, 0, 0, 0),  # txa
        BpfInstruction(0x04, 0, 0, 24),  # add #24
        BpfInstruction(0x02, 0, 0, 15),  # st M[15]
    ]


def _chain(shape: str, terms: int, data: bytes) -> tuple[str, int]:
    """A left-nested chain of ``terms`` subtractions of one of three shapes, and its value on
    IP header bytes ``data`` worked out by hand (32-bit words)."""
    text, value = "ip[0]", data[0]
    for i in range(1, terms):
        j = i % 16
        if shape == "imm":  # each step adds a constant: "((a - b) + 3) - c ..."
            text, value = f"(({text} - ip[{j}]) + 3)", value - data[j] + 3
        elif shape == "sum":  # each right operand an operation itself
            text, value = f"({text} - (ip[{j}] + ip[{j + 1}]))", value - data[j] - data[j + 1]
        else:  # each right operand a load at a computed offset
            k = (data[j] - data[j + 1]) & 0xFFFFFFFF & 7
            text, value = f"({text} - ip[(ip[{j}] - ip[{j + 1}]) & 7])", value - data[k]
        value &= 0xFFFFFFFF
    return text, value


@pytest.mark.parametrize("shape", ["imm", "sum", "index"])
@pytest.mark.parametrize("terms", [13, 16, 30])
def test_nested_arithmetic_of_every_shape_fits_the_scratch_words(shape: str, terms: int) -> None:
    # Left-nested chains whose steps need 0 or 1 word of their own: valid programs giving
    # libpcap's verdicts (and the hand-computed value), using no word above M[13].
    frames = [ether(bytes(range(i, i + 40)), ethertype=0x0800) for i in (0, 3, 9)]
    text, value = _chain(shape, terms, frames[1][14:])
    program = _judged(f"{text} = {value}", frames)
    assert run_program(program, frames)[1]
    words = {ins.k for ins in program if ins.code in (0x02, 0x03, 0x60, 0x61)}
    # The shorter order (right operand first, kept in the step's word) while the words last:
    # one word a step, M[0] to M[11] for 12 steps; longer chains reach M[13] and stop there.
    assert max(words) == min(terms - 2, 13)


def _balanced(depth: int, leaves: list[int]) -> str:
    if depth == 0:
        leaves[0] += 1
        return f"(ip[{leaves[0] % 20}] + 1)"  # adding a constant takes no word of its own
    return f"({_balanced(depth - 1, leaves)} - {_balanced(depth - 1, leaves)})"


def test_arithmetic_needing_more_than_14_words_is_refused() -> None:
    """A balanced tree of depth d keeps d partial results at once (one a level), so it needs d
    scratch words; the left side of ``EXPR = ip[1]`` starts at word 1, word 0 holding the right
    side, and 14 words are free (the 802.11 offsets have M[14] and M[15]). Depth 13 fits (the
    program is then refused only as longer than the kernel takes); depth 14 does not."""
    fits = f"{_balanced(13, [0])} = ip[1]"
    with pytest.raises(FilterCompileError) as info:
        compile_bpf(fits, max_length=0)
    assert "exceeds the kernel's limit of 4096" in info.value.reason
    right = f"ip[1] = {_balanced(14, [0])}"  # the right side starts at word 0: it fits
    with pytest.raises(FilterCompileError) as info:
        compile_bpf(right, max_length=0)
    assert "exceeds the kernel's limit of 4096" in info.value.reason
    deep = f"{_balanced(14, [0])} = ip[1]"
    with pytest.raises(FilterCompileError) as info:
        compile_bpf(deep, max_length=0)
    assert info.value.reason == "arithmetic too deeply nested for classic BPF"
    assert (info.value.expr, info.value.offset) == (deep, 0)


def test_protochain_is_refused_for_the_kernel() -> None:
    expr = "ip protochain 6"
    with pytest.raises(FilterCompileError) as info:
        compile_bpf(expr)
    assert info.value.reason == (
        "'protochain' walks the IP headers in a loop, which a kernel program cannot have "
        "(libpcap's jumps backwards and the kernel refuses it): filter in userspace"
    )
    assert (info.value.expr, info.value.offset) == (expr, 0)


_RELATIONS = [
    "ip[0] = ip[1]",
    "ip[0] != ip[1]",
    "ip[2:2] > ip[0] * 4",
    "ip[0] & 0xf < ip[9] - 3",
    "ip[1] + ip[2] >= ip[3] * 2 - ip[0]",
    "ip[1] - ip[2] <= (ip[3] ^ ip[0]) + 1",
    "ip[0] = ip[1] or ip[2] > ip[3]",
    "ip[0] = ip[1] and ip[2] + 1 > ip[3] or ip[4] + 44 > len",
    "tcp[13] & 0x12 = tcp[12] >> 4 or udp[4:2] > len - ip[2:2]",
]


@pytest.mark.parametrize("expr", _RELATIONS)
def test_comparisons_of_two_computed_sides(expr: str) -> None:
    """``EXPR relop EXPR``: the right side is kept in M[0] while the left is computed, then the
    jump compares A with X. Valid programs giving libpcap's verdicts on frames where the sides
    are equal, one smaller or one greater (and two different comparisons in one program)."""
    rng = random.Random(5)
    frames = [ether(bytes([b, 7, 7, 9]) + bytes(36), ethertype=0x0800) for b in (7, 0x45)]
    frames += [
        ether(bytes(rng.randrange(16) for _ in range(40)), ethertype=0x0800) for _ in range(30)
    ]
    frames += [ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, flags=f))) for f in ("S", "SA", "A")]
    frames += [ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, bytes(n)))) for n in (0, 30)]
    verdicts, _ = _libpcap(expr, 1, frames)
    assert True in verdicts and False in verdicts  # the frames tell the programs apart
    _judged(expr, frames)


@pytest.mark.parametrize(
    "expr",
    [
        "ip and tcp or ip6 and udp",
        "not (tcp and port 80) and ip",
        "tcp && port 80",
        "(not (not (src host 10.0.0.1))) and ((portrange 1-1024) or not ip6 proto 44)",
        "((not (portrange 15-15)) && rarp) and ((host fe80::1) or (ether[0] & 1 = 1) or "
        "(not (ip[2:2] * 2 > 100)))",
        "geneve and ip",
        "geneve 5 and ip6 and udp port 53",
    ],
)
def test_programs_as_short_as_libpcaps(expr: str) -> None:
    """Expressions whose program is no longer than libpcap's once the passes over the blocks
    have run to the end (a single pass leaves tests both of whose outcomes lead to the same
    place); each block is built for its own targets (tests shared across different targets
    give other verdicts); an offset added to the IP header's length already in X is added
    there, as libpcap does ("ihl + base"), not reloaded through scratch memory."""
    frames = captured(LinkType.ETHERNET, 300, seed=3)[0]
    program = _judged(expr, frames)
    assert len(program) <= _libpcap(expr, 1, frames)[1]


def test_comparisons_of_two_computed_sides_on_802_11() -> None:
    # On 802.11 the IP header's bytes are read at the payload's offset (M[15]) on both sides.
    expr = "ip[0] = ip[1] or ip[2] + 1 > ip[3]"
    llc = b"\xaa\xaa\x03\0\0\0\x08\x00"
    frames = [
        bytes([0x08, 0x02]) + bytes(22) + llc + bytes([a, b, c, d]) + bytes(36)
        for a, b, c, d in ((1, 1, 0, 9), (1, 2, 9, 3), (4, 5, 1, 9), (4, 5, 9, 9))
    ]
    # By hand: 1 = 1; 9 + 1 > 3; 1 + 1 <= 9 and 4 != 5; 9 + 1 > 9.
    program = compile_bpf(expr, LinkType.IEEE802_11)
    assert validate(program)
    assert run_program(program, frames) == [True, True, False, True]


def _carried(packets: list[bytes], linktype: LinkType) -> list[bytes]:
    """The IP packets in frames of ``linktype``: Ethernet, or 802.11 data frames (QoS data for
    every other one, 2 bytes longer) with LLC/SNAP, behind a radiotap header of 8 bytes on
    IEEE802_11_RADIO."""
    out = []
    for n, packet in enumerate(packets):
        ethertype = struct.pack("!H", 0x86DD if packet[0] >> 4 == 6 else 0x0800)
        if linktype == LinkType.ETHERNET:
            out.append(ether(packet, ethertype=int.from_bytes(ethertype, "big")))
            continue
        head = bytes([0x88 if n % 2 else 0x08, 0x02]) + bytes(22) + bytes(2 * (n % 2))
        frame = head + b"\xaa\xaa\x03\0\0\0" + ethertype + packet
        if linktype == LinkType.IEEE802_11_RADIO:
            frame = struct.pack("<BBHI", 0, 0, 8, 0) + frame
        out.append(frame)
    return out


@pytest.mark.parametrize(
    "linktype", [LinkType.ETHERNET, LinkType.IEEE802_11, LinkType.IEEE802_11_RADIO]
)
@pytest.mark.parametrize(
    "expr",
    ["tcp[tcp[12] >> 4] > 1", "udp[ip[0]] > 1", "ip[0] + tcp[0] > 72", "geneve and ip"],
)
def test_loads_at_computed_offsets(expr: str, linktype: LinkType) -> None:
    """Offsets computed from the packet: the IP header's length (``4*([14]&0xf)`` into X, read
    as a value or added to an offset kept in X), a byte of the packet, and on 802.11 the
    payload's offset from the prologue. The verdicts are libpcap's on the same IP packets in
    Ethernet frames (libpcap 1.10's own 802.11 programs for comparisons and geneve reuse the
    scratch words of its prologue, docs/filter.md)."""
    packets = captured(LinkType.RAW, 300, seed=3)[0]
    theirs = _libpcap(expr, 1, _carried(packets, LinkType.ETHERNET))[0]
    assert any(theirs)
    frames = _carried(packets, linktype)
    program = compile_bpf(expr, linktype)
    assert validate(program)
    assert run_program(program, frames) == theirs
