"""The C classic-BPF interpreter (capsvc._speedups.bpf_filter) against libpcap's bpf_filter.

``capsvc read`` filters a pcap file's records in C with the program capsvc compiles (what
tcpdump does with libpcap's). Every verdict that differs from libpcap's interpreter on the same
program and frame is a packet read wrongly, so both run every expression of the filter tests on
generated frames of every link type (truncated ones and their wire lengths included), with
capsvc's programs and with libpcap's own, and hand-written programs reach each edge of the
instruction set (bounds, division by zero, shifts of 32 or more, scratch memory).
"""

from __future__ import annotations

from types import ModuleType

import pytest
from _exprs import EXPRESSIONS
from _oracle import Compiled, OracleError, run_program
from _packets import captured

from capsvc._accel import speedups
from capsvc._bpf import pack_program, reads_metadata
from capsvc._packet import LinkType
from capsvc.filter import FILTER_LINKTYPES, FilterError, compile_bpf

FRAMES = 150
DLT = {LinkType.RAW: 12}  # libpcap's DLT_RAW on Linux


@pytest.fixture(scope="module")
def fast() -> ModuleType:
    module = speedups()
    if module is None:
        pytest.skip("capsvc._speedups is not built")
    return module


def verdicts(fast: ModuleType, program: list[tuple[int, int, int, int]], frames: list[bytes],
             wire: list[int]) -> list[bool]:  # fmt: skip
    packed = pack_program(program)
    return [fast.bpf_filter(packed, data, w) != 0 for data, w in zip(frames, wire, strict=True)]


@pytest.mark.parametrize("linktype", FILTER_LINKTYPES, ids=lambda lt: lt.name)
def test_capsvc_programs_agree_with_libpcaps_interpreter(
    fast: ModuleType, linktype: LinkType
) -> None:
    frames, _cut, wire = captured(linktype, FRAMES)
    compared = 0
    for expr in EXPRESSIONS:
        try:
            program = [tuple(i) for i in compile_bpf(expr, linktype)]
        except FilterError:
            continue
        if reads_metadata(program):
            continue  # a live socket's program: the file reader keeps the Python matcher
        ours = verdicts(fast, program, frames, wire)  # type: ignore[arg-type]
        assert ours == run_program(program, frames, wire), expr  # type: ignore[arg-type]
        compared += 1
    assert compared >= 20


@pytest.mark.parametrize("linktype", [LinkType.ETHERNET, LinkType.RAW, LinkType.LINUX_SLL2])
def test_libpcaps_own_programs_give_libpcaps_verdicts(fast: ModuleType, linktype: LinkType) -> None:
    """libpcap's optimizer emits other instructions (ind loads, X arithmetic, scratch memory)."""
    frames, _cut, wire = captured(linktype, FRAMES, seed=3)
    compared = 0
    for expr in EXPRESSIONS:
        if "protochain" in expr:
            continue  # libpcap's program loops back, which a classic BPF validator refuses
        try:
            compiled = Compiled(expr, DLT.get(linktype, int(linktype)))
        except OracleError:
            continue
        try:
            program = compiled.instructions()
            expected = compiled.verdicts(frames, wire)
        finally:
            compiled.close()
        assert verdicts(fast, program, frames, wire) == expected, expr
        compared += 1
    assert compared > len(EXPRESSIONS) // 2


# Hand-written programs: (program, frame, wire length, what libpcap returns).
LD_W, LD_H, LD_B, LD_IND_B, LDX_MSH = 0x20, 0x28, 0x30, 0x50, 0xB1
RET_K, RET_A, LD_IMM, LDX_IMM, LD_LEN, TAX, TXA = 0x06, 0x16, 0x00, 0x01, 0x80, 0x07, 0x87
EDGES: list[tuple[list[tuple[int, int, int, int]], bytes, int]] = [
    ([(LD_W, 0, 0, 0), (RET_A, 0, 0, 0)], b"\x00\x00\x01\x02", 4),  # a word at the end
    ([(LD_W, 0, 0, 1), (RET_A, 0, 0, 0)], b"\x00\x00\x01\x02", 4),  # one past: 0
    ([(LD_H, 0, 0, 3), (RET_A, 0, 0, 0)], b"\x00\x00\x01\x02", 4),
    ([(LD_B, 0, 0, 3), (RET_A, 0, 0, 0)], b"\x00\x00\x01\x07", 4),
    ([(LD_B, 0, 0, 0xFFFFFFFF), (RET_K, 0, 0, 1)], b"\x01", 1),  # k wraps: out of bounds
    ([(LDX_IMM, 0, 0, 0xFFFFFFFF), (LD_IND_B, 0, 0, 2), (RET_A, 0, 0, 0)], b"\x05\x06", 2),
    ([(LDX_MSH, 0, 0, 0), (TXA, 0, 0, 0), (RET_A, 0, 0, 0)], b"\x45", 1),
    ([(LD_LEN, 0, 0, 0), (RET_A, 0, 0, 0)], b"ab", 1500),  # len is the wire length
    ([(LD_IMM, 0, 0, 7), (LDX_IMM, 0, 0, 0), (0x3C, 0, 0, 0), (RET_K, 0, 0, 9)], b"", 0),
    ([(LD_IMM, 0, 0, 7), (LDX_IMM, 0, 0, 0), (0x9C, 0, 0, 0), (RET_K, 0, 0, 9)], b"", 0),
    ([(LD_IMM, 0, 0, 7), (LDX_IMM, 0, 0, 3), (0x9C, 0, 0, 0), (RET_A, 0, 0, 0)], b"", 0),
    ([(LD_IMM, 0, 0, 1), (LDX_IMM, 0, 0, 31), (0x6C, 0, 0, 0), (RET_A, 0, 0, 0)], b"", 0),
    ([(LD_IMM, 0, 0, 0x80000000), (LDX_IMM, 0, 0, 31), (0x7C, 0, 0, 0), (RET_A, 0, 0, 0)], b"", 0),
    ([(LD_IMM, 0, 0, 5), (0x84, 0, 0, 0), (RET_A, 0, 0, 0)], b"", 0),  # neg
    (
        [
            (LD_IMM, 0, 0, 6),
            (0x02, 0, 0, 15),
            (LD_IMM, 0, 0, 0),
            (0x60, 0, 0, 15),
            (RET_A, 0, 0, 0),
        ],
        b"",
        0,
    ),
    (
        [(LD_IMM, 0, 0, 6), (TAX, 0, 0, 0), (0x1D, 1, 0, 0), (RET_K, 0, 0, 1), (RET_K, 0, 0, 2)],
        b"",
        0,
    ),
    ([(LD_IMM, 0, 0, 6), (0x45, 0, 1, 4), (RET_K, 0, 0, 1), (RET_K, 0, 0, 2)], b"", 0),
    ([(0x05, 0, 0, 1), (RET_K, 0, 0, 1), (RET_K, 0, 0, 2)], b"", 0),  # ja
]


@pytest.mark.parametrize("case", range(len(EDGES)))
def test_instruction_edges_return_what_libpcap_returns(fast: ModuleType, case: int) -> None:
    program, data, wire = EDGES[case]
    from capsvc.sources.libpcap._ffi import bpf_insn, lib

    arr = (bpf_insn * len(program))(*[bpf_insn(*i) for i in program])
    expected = lib().bpf_filter(arr, data, wire, len(data))
    assert fast.bpf_filter(pack_program(program), data, wire) == expected


@pytest.mark.parametrize(
    "program",
    [
        [],  # empty
        [(LD_IMM, 0, 0, 1)],  # falls off the end
        [(0x05, 0, 0, 5), (RET_K, 0, 0, 1)],  # ja past the end
        [(0x15, 3, 0, 0), (RET_K, 0, 0, 1)],  # jt past the end
        [(0x02, 0, 0, 16), (RET_K, 0, 0, 1)],  # M[16]
        [(0x34, 0, 0, 0), (RET_K, 0, 0, 1)],  # division by constant 0
    ],
)
def test_invalid_programs_are_refused(fast: ModuleType, program: list[tuple[int, ...]]) -> None:
    with pytest.raises(ValueError, match="not a valid classic BPF program"):
        fast.bpf_filter(pack_program(program), b"x", 1)
