"""Classic BPF: the instruction type and the opcode fields, one home for every user.

Pure module of constants. The filter's code generator and its ``tcpdump -d`` printer, the
AF_PACKET source (which prefixes and rewrites programs for the kernel) and the libpcap binding
(``bpf_insn``) all speak in ``BpfInstruction`` and take their opcodes from here. Opcode fields
follow linux/bpf_common.h; the composed names are those of linux/filter.h; the field getters
are its ``BPF_CLASS()``, ``BPF_SIZE()``... macros.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "BPF_A",
    "BPF_ABS",
    "BPF_ADD",
    "BPF_ALU",
    "BPF_AND",
    "BPF_B",
    "BPF_DIV",
    "BPF_H",
    "BPF_IMM",
    "BPF_IND",
    "BPF_JA",
    "BPF_JEQ",
    "BPF_JGE",
    "BPF_JGT",
    "BPF_JMP",
    "BPF_JSET",
    "BPF_K",
    "BPF_LD",
    "BPF_LDX",
    "BPF_LEN",
    "BPF_LSH",
    "BPF_MAXINSNS",
    "BPF_MEM",
    "BPF_MEMWORDS",
    "BPF_MISC",
    "BPF_MOD",
    "BPF_MSH",
    "BPF_MUL",
    "BPF_NEG",
    "BPF_OR",
    "BPF_RET",
    "BPF_RSH",
    "BPF_ST",
    "BPF_STX",
    "BPF_SUB",
    "BPF_TAX",
    "BPF_TXA",
    "BPF_W",
    "BPF_X",
    "BPF_XOR",
    "SOCK_FILTER",
    "BpfInstruction",
    "bpf_class",
    "bpf_mode",
    "bpf_op",
    "bpf_size",
    "bpf_src",
    "pack_program",
    "reads_metadata",
]


class BpfInstruction(NamedTuple):
    """One classic BPF instruction, as ``struct sock_filter`` / ``struct bpf_insn`` (and as
    ``tcpdump -dd`` prints it)."""

    code: int
    jt: int
    jf: int
    k: int


# Instruction classes.
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
# Load sizes.
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
# Load modes.
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
# ALU operations.
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = range(0x00, 0x80, 0x10)
BPF_NEG, BPF_MOD, BPF_XOR = 0x80, 0x90, 0xA0
# Jumps.
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
# Operand sources; what ``ret`` returns.
BPF_K, BPF_X, BPF_A = 0x00, 0x08, 0x10
# Miscellaneous operations.
BPF_TAX, BPF_TXA = 0x00, 0x80

#: The most instructions a program may have (the kernel's and libpcap's limit).
BPF_MAXINSNS = 4096
#: Scratch memory words.
BPF_MEMWORDS = 16


def bpf_class(code: int) -> int:
    """The instruction class of an opcode (``BPF_LD`` ... ``BPF_MISC``)."""
    return code & 0x07


def bpf_size(code: int) -> int:
    """The load size of an opcode (``BPF_W``, ``BPF_H``, ``BPF_B``)."""
    return code & 0x18


def bpf_mode(code: int) -> int:
    """The load mode of an opcode (``BPF_IMM`` ... ``BPF_MSH``)."""
    return code & 0xE0


def bpf_op(code: int) -> int:
    """The ALU operation or jump of an opcode (``BPF_ADD`` ..., ``BPF_JA`` ...)."""
    return code & 0xF0


def bpf_src(code: int) -> int:
    """The operand source of an opcode (``BPF_K`` or ``BPF_X``)."""
    return code & 0x08


#: struct sock_filter (and libpcap's struct bpf_insn): code, jt, jf, k, in native order.
SOCK_FILTER = struct.Struct("HBBI")
#: The lowest ``k`` of a load of the kernel's packet metadata (SKF_AD_OFF, -0x1000, as u32).
_ANCILLARY = 2**32 - 0x1000


def pack_program(program: Iterable[Sequence[int]]) -> bytes:
    """A program (instructions as ``(code, jt, jf, k)``) as ``struct sock_filter`` records."""
    return b"".join(SOCK_FILTER.pack(*instruction) for instruction in program)


def reads_metadata(program: Iterable[Sequence[int]]) -> bool:
    """True when the program loads the kernel's packet metadata (``SKF_AD_*``): it means what
    it says only on a live Linux socket."""
    loads = {BPF_LD | size | BPF_ABS for size in (BPF_W, BPF_H, BPF_B)}
    return any(ins[0] in loads and ins[3] >= _ANCILLARY for ins in program)
