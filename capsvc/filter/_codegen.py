"""IR -> a specialised Python function ``match(frame) -> bool``, compiled once.

Pure code generation (the one ``exec`` of generated source is the compile step). The generated
function reads bytes at fixed offsets of the raw frame; it never decodes layers or walks a tree.
The rule it keeps: a read past the end of the frame rejects the frame, like classic BPF. Python
raises IndexError (or struct.error) for such a read, and the function turns that into False.
Multi-byte equality tests compare the last byte first, so the bounds check comes for free, and
the field the leftmost test reads (always read first) is read once, up front, into a local.
Compact code (large expressions) also reads repeated fields and makes repeated tests up front,
with a stand-in for what a short frame lacks that fails wherever it is used, as the read would.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NoReturn

from ._ir import (
    CHAIN_STEPS,
    MASK32,
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
from ._simplify import small

__all__ = ["build", "generate"]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


def _ldi(data: bytes, index: int, off: int, size: int) -> int:
    start = index + off
    if start + size > len(data):
        raise IndexError("load beyond the frame")
    return int.from_bytes(data[start : start + size], "big")


class _Short:
    """Stands for a field the frame is too short to hold: every use of it fails, as the read
    would have (with IndexError, which the generated function turns into its "too short")."""

    __slots__ = ()

    def _fail(self, *args: object) -> NoReturn:
        raise IndexError("load beyond the frame")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __hash__ = __bool__ = __index__ = __int__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __truediv__ = __rtruediv__ = _fail
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _fail
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __neg__ = __invert__ = _fail


def _shl(a: int, b: int) -> int:
    return (a << b) & MASK32 if b < 32 else 0


def _protochain(d: bytes, net: int, v6: int, proto: int) -> int:
    """``Chain``: the walk libpcap's protochain program makes, read for read (a read past the
    end of the frame raises, and the frame is rejected, as there)."""
    if v6:
        a, x = d[net + 6], 40
    else:
        a, x = d[net + 9], (d[net] & 15) * 4
    for _ in range(CHAIN_STEPS):
        if a == proto or a == 59:
            return a
        if v6 and a in (0, 60, 43, 44):  # hop-by-hop, destination options, routing, fragment
            a, x = d[net + x], (d[net + x + 1] + 1) * 8 + x
        elif a == 51:  # AH; libpcap takes its length for the offset from the network header
            a, x = d[net + x], (d[net + x + 1] + 2) * 4
        else:
            return a
    return -1


_NAMESPACE: dict[str, object] = {
    "_u16": _U16.unpack_from,
    "_u32": _U32.unpack_from,
    "_ldi": _ldi,
    "_shl": _shl,
    "_protochain": _protochain,
    "_short": _Short(),
    "_errors": (IndexError, struct.error, ZeroDivisionError),
}

# Precedence levels of generated boolean text: an operand whose level is below what its parent
# needs gets parentheses.
_ATOM, _NOT, _AND, _OR = 4, 3, 2, 1
_SIGNS = {"eq": "==", "gt": ">", "ge": ">="}


#: Above this many tests, multi-byte fields are compared with one struct read instead of byte
#: by byte: slightly slower per frame, but much less code for compile() to chew on.
COMPACT_ABOVE = 150
#: Compact code computes a test made at least this many times once, before the expression
#: (its first uses stay as they are).
NAME_TESTS_FROM = 2


#: The 802.11 offsets (``Var``) computed before any test, with the reads libpcap's prologue makes
#: (a frame too short for them is rejected whatever the expression): the radiotap header's
#: length, then the payload after the 802.11 header, its QoS field and radiotap's padding.
_RADIOTAP_HDR = "        hdr = d[3] << 8 | d[2]\n"
_WLAN_PL = """\
        fc = d[hdr]
        pl = hdr + 24
        if fc & 8 and not fc & 4 and fc & 128:
            pl += 2
"""
_RADIOTAP_PAD = """\
        if fc & 8 and not fc & 4:
            present = _u32(d, 4)[0]
            if present & 0x2000000 and not present & 0x80:
                if (d[16] if present & 0x1000000 else d[8]) & 0x20:
                    pl = (pl + 3) & 0xFFFFFFFC
"""


def generate(formula: Formula, on_short: str = "False", radiotap: bool = False) -> str:
    """Return the Python source of ``def match(d, n=None): ...`` testing ``formula``.

    ``d`` is the captured frame, ``n`` its length on the wire (None: ``len(d)``), which only
    ``len`` (and ``less``/``greater``) read. ``on_short`` is what the function returns when a
    read goes past the end of the frame (the tests use ``"None"`` to find the frames too short
    for an expression). ``radiotap``: the 802.11 header follows a radiotap header.
    """
    first = _first_load(formula)
    writer = _Writer(not small(formula, COMPACT_ABOVE), first)
    body, _ = writer.formula(formula)
    prologue = ""
    if writer.vars:
        prologue += _RADIOTAP_HDR if radiotap else "        hdr = 0\n"
        if "pl" in writer.vars:
            prologue += _WLAN_PL + (_RADIOTAP_PAD if radiotap else "")
    # Every evaluation starts with the leftmost test, so its field can be read up front, once.
    prologue += f"        v = {writer.load(first)}\n" if first is not None else ""
    for xoff in sorted(writer.lengths):
        prologue += f"        h{xoff} = (d[{xoff}]&15)*4 if len(d) > {xoff} else 0\n"
    # Locals of compact code, grouped by the frame length each needs: every one is the
    # stand-in first, then one "if" per length computes those the frame is long enough for.
    tests = "".join(f"{name} = {text}\n" for name, text, _ in writer.test_lines)
    groups: dict[str, list[str]] = {}
    for name, (read, end) in writer.named.items():
        if body.count(name) + tests.count(name) == 1:  # read once: in place, when reached
            body = body.replace(name, read)
            tests = tests.replace(name, read)
        else:
            groups.setdefault(end, []).append(f"{name} = {read}")
    for line, (_, _, end) in zip(tests.splitlines(), writer.test_lines, strict=True):
        if end:
            groups.setdefault(end, []).append(line)
        else:
            prologue += f"        {line}\n"  # a test of "v": nothing more to read
    if groups:
        names = [line.split(" = ", 1)[0] for lines in groups.values() for line in lines]
        prologue += f"        {' = '.join(names)} = _short\n"
    for end, lines in groups.items():
        prologue += f"        if len(d) >= {end}:\n" + "".join(f"            {x}\n" for x in lines)
    return (
        "def match(d, n=None):\n"
        "    try:\n"
        f"{prologue}"
        f"        return {body}\n"
        "    except _errors:\n"
        f"        return {on_short}\n"
    )


def _first_load(f: Formula) -> Ld | None:
    """The absolute load the leftmost test reads (it is evaluated first, always)."""
    while isinstance(f, (Conj, Disj, Neg)):
        f = f.a
    if not isinstance(f, Cmp):
        return None
    val = f.val
    if isinstance(val, Alu) and val.op == "&" and isinstance(val.b, Imm):
        val = val.a
    return val if isinstance(val, Ld) else None


def build(
    formula: Formula, name: str = "<filter>", on_short: str = "False", radiotap: bool = False
) -> tuple[str, Callable[..., bool]]:
    """Generate and compile the matcher of ``formula``; returns (source, function)."""
    source = generate(formula, on_short, radiotap)
    namespace = dict(_NAMESPACE)
    exec(compile(source, name, "exec"), namespace)
    func: Callable[..., bool] = namespace["match"]  # type: ignore[assignment]
    return source, func


def _wrap(text: str, level: int, need: int) -> str:
    return text if level >= need else f"({text})"


class _Writer:
    """Python text for IR nodes; ``compact`` trades a little speed for much shorter code."""

    def __init__(self, compact: bool, hoisted: Ld | None = None) -> None:
        self.compact = compact
        self.hoisted = hoisted  # a load already in the local "v"
        # Compact code computes each IPv4 header length once, up front, in a local "h<xoff>"
        # (0 when the frame ends before its byte: every transport load is at or after that
        # byte, so it still fails as it would have).
        self.lengths: set[int] = set()
        self.texts: dict[Val, str] = {}  # the text of each value, worked out once
        # Compact code reads each multi-byte field up front, once, into a local "n<i>_": its
        # value when the frame holds the field, else a stand-in that fails on any use exactly
        # where the read would have. name -> (the read, the frame length it needs).
        self.named: dict[str, tuple[str, str]] = {}
        # Compact code also computes each test made many times once, up front, into a local
        # "t<i>_" (the stand-in when the frame is too short for it): text -> the uses so far,
        # or the local's name; and the lines computing those locals.
        self.tests: dict[str, int | str] = {}
        self.test_lines: list[tuple[str, str, str]] = []  # (name, text, frame length needed)
        self.length = False  # the wire length is read
        self.vars: set[str] = set()  # the 802.11 offsets read

    def header_length(self, xoff: int) -> str:
        if not self.compact:
            return f"(d[{xoff}]&15)*4"
        self.lengths.add(xoff)
        return f"h{xoff}"

    def load(self, ld: Ld) -> str:
        if ld.size == 1:
            return f"d[{ld.off}]"
        if ld.size == 2:
            return f"(d[{ld.off}]<<8|d[{ld.off + 1}])"
        return f"_u32(d,{ld.off})[0]"

    def formula(self, f: Formula | str) -> tuple[str, int]:
        kind = type(f)
        if kind is Cmp:  # the usual case first
            assert isinstance(f, Cmp)
            return self.cmp(f)
        if kind is str:
            assert isinstance(f, str)
            return f, _ATOM
        if isinstance(f, Const):
            return ("True" if f.value else "False"), _ATOM
        if isinstance(f, (Conj, Disj)):
            parts = operands(f, Conj if kind is Conj else Disj)
            texts: list[str] = []
            if kind is Conj:
                for p in self.ranges(parts):
                    text, level = self.cmp(p) if type(p) is Cmp else self.formula(p)
                    if level < _NOT:
                        text = f"({text})"
                    if not texts or text != texts[-1]:  # "x and x" is x: a test has no effects
                        texts.append(text)
                return (" and ".join(texts), _AND) if len(texts) > 1 else (texts[0], _NOT)
            items = self.alternatives(parts)
            if len(items) == 1:
                return self.formula(items[0])
            for p in items:
                text, level = self.cmp(p) if type(p) is Cmp else self.formula(p)
                texts.append(text if level >= _OR else f"({text})")
            return " or ".join(texts), _OR
        if isinstance(f, Neg):
            inner = f.a
            if isinstance(inner, Cmp) and inner.op == "set" and isinstance(inner.val, (Ld, LdX)):
                return self.cmp(Cmp(Alu("&", inner.val, Imm(inner.k)), "eq", 0))
            if isinstance(inner, Cmp) and inner.op in ("gt", "ge"):
                sign = "<=" if inner.op == "gt" else "<"
                return f"{self.val(inner.val)} {sign} {inner.k}", _ATOM
            text, level = self.formula(f.a)
            return f"not {_wrap(text, level, _NOT)}", _NOT
        if isinstance(f, Rel):
            return f"{self.val(f.a)} {_SIGNS[f.op]} {self.val(f.b)}", _ATOM
        raise TypeError(f"not a formula: {f!r}")

    def ranges(self, parts: list[Formula]) -> list[Formula | str]:
        """``parts``, with each ``x >= a and not x > b`` (a port range) as the text of one
        chained comparison ``a <= x <= b``: the field is read once."""
        out: list[Formula | str] = []
        for part in parts:
            last = out[-1] if out else None
            if (
                isinstance(part, Neg)
                and isinstance(part.a, Cmp)
                and part.a.op == "gt"
                and isinstance(last, Cmp)
                and last.op == "ge"
                and last.val == part.a.val
            ):
                out[-1] = f"{last.k} <= {self.val(last.val)} <= {part.a.k}"
            else:
                out.append(part)
        return out

    def alternatives(self, parts: list[Formula]) -> list[Formula | str]:
        """``parts``, with each run of equality tests of one whole field (``x == a or x == b``)
        replaced by the text of one membership test (``x in {a, b}``): less code to compile,
        and the field is read once."""
        out: list[Formula | str] = []
        run: list[int] = []
        field: Val | None = None
        for part in [*parts, None]:
            val = part.val if type(part) is Cmp and part.op == "eq" else None
            if (
                val is not None
                and (val is field or (type(val) is type(field) and val == field))
                and isinstance(part, Cmp)
            ):
                run.append(part.k)
                continue
            if len(run) > 1 and field is not None:
                keys = ", ".join(str(k) for k in sorted(set(run)))
                text = f"{self.val(field)} in {{{keys}}}"
                out[-1] = self.test(text, field) if self.compact else text
            field, run = val, [part.k] if isinstance(part, Cmp) and val is not None else []
            if part is not None:
                out.append(part)
        return out

    def cmp(self, f: Cmp) -> tuple[str, int]:
        text, level = self._cmp(f)
        if self.compact and level == _ATOM:
            return self.test(text, f.val), _ATOM
        return text, level

    def _cmp(self, f: Cmp) -> tuple[str, int]:
        val, mask = f.val, None
        if isinstance(f.val, Alu) and f.val.op == "&" and isinstance(f.val.b, Imm):
            val, mask = f.val.a, f.val.b.k
        if self.is_hoisted(val):
            text = "v" if mask is None else f"v & {mask}"
            if f.op == "set":
                return f"v & {f.k} != 0" if mask is None else f"v & {mask & f.k} != 0", _ATOM
            return f"{text} {_SIGNS[f.op]} {f.k}", _ATOM
        if (
            f.op in ("eq", "set")
            and isinstance(val, (Ld, LdX))
            and (val.size == 1 or not self.compact)
        ):
            return self.bytewise(
                val, MASK32 >> (32 - 8 * val.size) if mask is None else mask, f.op, f.k
            )
        text = self.val(f.val)
        if f.op == "set":
            return f"{text} & {f.k} != 0", _ATOM
        return f"{text} {_SIGNS[f.op]} {f.k}", _ATOM

    def is_hoisted(self, val: Val) -> bool:
        """Whether ``val`` is the field read up front into "v" (without dataclass equality)."""
        h = self.hoisted
        return h is not None and type(val) is Ld and val.off == h.off and val.size == h.size

    def bytewise(self, load: Ld | LdX, mask: int, op: str, k: int) -> tuple[str, int]:
        """Byte-by-byte test, last byte first (its read proves the whole field is present)."""
        n = load.size
        mask &= (1 << (8 * n)) - 1
        if isinstance(load, Ld):
            first = f"d[{load.off + n - 1}]"

            def at(j: int) -> str:
                return f"d[{load.off + j}]"
        else:
            first = (
                f"d[(x:={self.header_length(load.xoff)}+{load.off})+{n - 1}]"
                if n > 1
                else (f"d[{self.header_length(load.xoff)}+{load.off}]")
            )

            def at(j: int) -> str:
                return f"d[x+{j}]" if j else "d[x]"

        def byte(j: int) -> str:
            return first if j == n - 1 else at(j)

        parts: list[str] = []
        for j in range(n - 1, -1, -1):
            shift = 8 * (n - 1 - j)
            mj, kj = (mask >> shift) & 0xFF, (k >> shift) & 0xFF
            if op == "eq":
                if k & ~mask:
                    return f"{first} < 0", _ATOM  # never equal; the read still checks the bounds
                if mj == 0:
                    if j == n - 1:
                        parts.append(f"{first} >= 0")
                elif mj == 0xFF:
                    parts.append(f"{byte(j)} == {kj}")
                else:
                    parts.append(f"{byte(j)} & {mj} == {kj}")
            else:
                bits = mj & kj
                if bits:
                    parts.append(f"{byte(j)} & {bits} != 0")
                elif j == n - 1:
                    parts.append(f"{first} < 0")
        if not parts:
            return "True", _ATOM
        if len(parts) == 1:
            return parts[0], _ATOM
        return (" and " if op == "eq" else " or ").join(parts), (_AND if op == "eq" else _OR)

    def test(self, text: str, val: Val) -> str:
        """``text``, a test of ``val``; from its NAME_TESTS_FROM-th use on, a local computed up
        front instead (compact code only)."""
        seen = self.tests.get(text)
        if seen is None:
            self.tests[text] = 1
            return text
        if isinstance(seen, str):
            return seen
        if seen + 1 < NAME_TESTS_FROM:
            self.tests[text] = seen + 1
            return text
        if isinstance(val, Alu) and val.op == "&" and isinstance(val.b, Imm):
            val = val.a
        if self.is_hoisted(val):
            end = ""  # read up front already
        elif isinstance(val, Ld):
            end = str(val.off + val.size)
        elif isinstance(val, LdX):
            end = f"{self.header_length(val.xoff)}+{val.off + val.size}"
        else:
            self.tests[text] = text
            return text
        name = self.tests[text] = f"t{len(self.test_lines)}_"
        self.test_lines.append((name, text, end))
        return name

    def name(self, read: str, end: str) -> str:
        name = f"n{len(self.named)}_"  # the "_" ends it: no name is a prefix of another
        self.named[name] = (f"{read}[0]", end)
        return name

    def val(self, v: Val) -> str:
        text = self.texts.get(v)
        if text is None:
            text = self.texts[v] = self._val(v)
        return text

    def _val(self, v: Val) -> str:
        if isinstance(v, Imm):
            return str(v.k)
        if isinstance(v, Len):
            # Where it is read only (an "if" up front would cost every frame a test).
            self.length = True
            return "(len(d) if n is None else n)"
        if isinstance(v, Var):
            self.vars.add(v.name)
            return v.name
        if isinstance(v, Ld):
            if self.is_hoisted(v):
                return "v"
            if v.size == 1:
                return f"d[{v.off}]"
            if v.size == 2 and not self.compact:
                return f"(d[{v.off}]<<8|d[{v.off + 1}])"
            if self.compact:
                return self.name(f"_u{8 * v.size}(d,{v.off})", str(v.off + v.size))
            return f"_u{8 * v.size}(d,{v.off})[0]"
        if isinstance(v, LdX):
            base = f"{self.header_length(v.xoff)}+{v.off}"
            if v.size == 1:
                return f"d[{base}]"
            if self.compact:
                end = f"{self.header_length(v.xoff)}+{v.off + v.size}"
                return self.name(f"_u{8 * v.size}(d,{base})", end)
            return f"_u{8 * v.size}(d,{base})[0]"
        if isinstance(v, Msh):
            return f"((d[{v.xoff}]&15)*4)"
        if isinstance(v, LdI):
            return f"_ldi(d,{self.val(v.index)},{v.off},{v.size})"
        if isinstance(v, Chain):
            return f"_protochain(d,{v.off},{int(v.v6)},{v.proto})"
        a, b, op = self.val(v.a), self.val(v.b), v.op
        if op in ("+", "-", "*"):
            return f"(({a}{op}{b})&{MASK32})"
        if op == "/":
            return f"({a}//{b})"
        if op == "<<":
            if isinstance(v.b, Imm):
                return f"(({a}<<{v.b.k})&{MASK32})"
            return f"_shl({a},{b})"
        return f"({a}{op}{b})"
