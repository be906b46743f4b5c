"""Comparisons, arithmetic and loads ``proto[expr:size]`` against libpcap, operator by operator.

The differential corpus (``_exprs``) holds few expressions of each arithmetic operator, each
relation and each load; here every operator (``+ - * / % & | ^ << >>`` and unary ``-``) has
expressions with a constant and with a load on its right, every relation has a constant on
either side and a load on both, every protocol base is loaded with sizes 1, 2 and 4 at constant
and computed offsets, and a constant 0 on the left of each operator is folded as libpcap's
optimizer folds it. Their verdicts, by our matcher and by our BPF program, are held to
libpcap's (``test_differential._differences``: pcap_compile + pcap_offline_filter on the
generated frames, truncated ones included, with libpcap's answers cached as
test_differential_cached does). Then the compile-time errors of the lowering: what libpcap
refuses and where ours points (``FilterCompileError.offset``). Every expression is
parenthesised, so no test depends on how operators of different precedence group.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _oracle import Compiled, OracleError
from _packets import captured
from test_differential import MAX_SHORT_DIFFERENCES, _differences, dlt
from test_differential_cached import c_run, cached_reference

from capsvc._accel import speedups
from capsvc._packet import LinkType
from capsvc.filter import (
    CompiledFilter,
    FilterCompileError,
    FilterSyntaxError,
    compile_bpf,
    parse,
    parse_filter,
)
from capsvc.filter._ast import BinOp, Compare, Load, Negate, Num, Proto
from capsvc.filter._ir import factor
from capsvc.filter._lower import KERNEL_PKTTYPE, KERNEL_VLAN_PRESENT, SIMPLIFY_UP_TO, lower
from capsvc.filter._simplify import simplify, small

pytestmark = pytest.mark.skipif(speedups() is None, reason="capsvc._speedups is not built")

FRAMES = 300

#: Every operator with a constant on its right, then with a load (whose own protocol check
#: libpcap drops: only the left operand's guards the comparison).
OPERATORS = [
    "(ip[2:2] + 20) > 100",
    "(ip[2:2] - 20) > 40",
    "(ip[8] * 3) > 200",
    "(ip[2:2] / 3) > 20",
    "(ip[2:2] % 7) = 3",
    "(ip[2:2] & 0x3) != 0",
    "(ip[6] | 0x40) = 0x40",
    "(ip[8] ^ 0x40) < 0x20",
    "(ip[2:2] << 3) > 1000",
    "(ip[2:2] >> 3) > 10",
    "(ip[8] + udp[0]) > 100",
    "(ip[2:2] - ip6[4:2]) > 40",
    "(ip[8] * ip[9]) > 1000",
    "(ip[2:2] / ip[9]) > 5",
    "(ip6[4:2] / ip6[6]) > 1",
    "(ip[2:2] % ip[9]) = 1",
    "(ip6[4:2] % ip6[6]) > 3",
    "(ip[8] & ip[9]) != 0",
    "(ip[8] | tcp[13]) > 100",
    "(ip[8] ^ ip[9]) > 60",
    "(ip[2:2] << ip[8]) > 1000",
    "(ip[2:2] >> (ip[8] & 0x3f)) > 3",
    "(ip[0] << (ip[9] & 0x1f)) > 0x1000",
    "(len - ip[2:2]) > 14",
    "(len * 2) > 200",
    "(len / 2) > 50",
    "(len % 3) = 1",
    "(len >> 2) > 20",
    "(len << 2) > 400",
    "(len & 1) = 1",
    "(len | 1) = 61",
    "(len ^ 1) = 60",
    "(len + ip[0]) > 140",
    # Unary minus: the operand's protocol check stays (libpcap's neg); "0 - x" keeps none.
    "-ip[8] > 0xffffff00",
    "(0 - ip[8]) > 0xffffff00",
    "-ip[1] = 0",
    "(0 - ip[1]) = 0",
    "-(ip[2:2] + 1) < 0xffffff00",
    "-len < 0xffffffc0",
    "-tcp[13] = 0xfffffffe",
    "(ip[2:2] - -ip[0]) > 100",
    "ip[0] = -0xffffffbb",
    "(-(3 + 3) + ip[9]) = 0",
    "-(ip[0] & 0) = 0",
    "(ip[2:2] + -(len & 0)) > 50",
    # Constants folded, the loads that give 0 whatever they read dropped, as libpcap's
    # optimizer does (a frame too short for them, or of another protocol, still matches).
    "(0 * ip[8]) = 0",
    "(0 & ip[8]) = 0",
    "(0 / ip[8]) = 0",
    "(0 % ip[8]) = 0",
    "(0 << ip[8]) = 0",
    "(0 >> ip[8]) = 0",
    "(0 * ip[8]) = 1",
    "(0 + ip[8]) = 64",
    "(0 | ip[8]) = 64",
    "(0 ^ ip[8]) = 64",
    "(0 - ip[8]) = 0xffffffc0",
    "(0 + tcp[13]) = 2",
    "(0 | len) > 100",
    "(ip[8] * 0) = 0",
    "(ip[8] & 0) = 0",
    "(1 + ip[8]) = 65",
    "(1 | ip[8]) = 65",
    "(1 ^ ip[8]) = 65",
    "(1 * ip[8]) = 64",
    "(1 & ip[8]) = 0",
    "(1 << (ip[8] & 0x7)) = 1",
    "(0x100 >> (ip[8] & 0x7)) = 0x100",
    "(1 - ip[8]) = 0xffffffc1",
    "(1000 / ip[8]) = 15",
    "(1000 % ip[8]) = 40",
    "((ip[0] & 0) * tcp[0]) = 0",
    "((ip[0] & 0) + tcp[13]) = 2",
    "((ip[0] * 0) | udp[0]) = 0",
    "((ip[0] & 0) / ip6[6]) = 0",
    "(ip6[0] & 0) = (ip[0] & 0)",
    "ip[0 * ip[8]] = 0x45",
    "tcp[0 & ip[8]:2] = 80",
    "(2 + 3) = ip[9]",
    "((7 * 2) - (60 / 6) + (9 % 5) + (6 & 3) + (4 | 1) + (5 ^ 1) + (1 << 4) + (64 >> 2)) = ip[9]",
    "(ip[2:2] >> 0) > 100",
    "(ip[2:2] << 31) > 0",
]
_RELATIONS = ["=", "!=", "<", "<=", ">", ">="]
#: Each relation: a constant right, a constant left (swapped into a right one), two loads, a
#: value against itself, two constants.
RELATIONS = [
    expr
    for op in _RELATIONS
    for expr in (
        f"ip[8] {op} 64",
        f"64 {op} ip[8]",
        f"ip[8] {op} ip[9]",
        f"tcp[0:2] {op} tcp[2:2]",
        f"udp[2:2] {op} 53",
        f"53 {op} udp[0:2]",
        f"len {op} 100",
        f"100 {op} len",
        f"ip[8] {op} ip[8]",
        f"(ip[8] + 1) {op} (ip[8] + 1)",
        f"len {op} len",
        f"ip[9] {op} ip6[6]",
        f"1 {op} 2",
        f"2 {op} 1",
        f"1 {op} 1",
        f"(ip[0] & 0) {op} 1",
        f"1 {op} (ip[0] & 0)",
        f"0x80000000 {op} ip[12:4]",
    )
]
_BASES = ["link", "ether", "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "igmp", "sctp"]
_BASES += ["icmp6", "ppp", "slip"]
#: Loads of 1, 2 and 4 bytes from every protocol base at a constant offset, and at offsets
#: computed from the frame (the load of the index keeps its own protocol check, first).
LOADS = [
    expr
    for base in _BASES
    for expr in (
        f"{base}[0] & 1 = 1",
        f"{base}[1:2] > 0x4000",
        f"{base}[2:4] & 0x10001 != 0",
        f"{base}[5:2] & 0x101 = 0x100",
        f"{base}[(ip[0] & 0xf):2] > 0x8000",
        f"{base}[ip6[6] & 0x7] & 2 = 2",
        f"{base}[(len & 0x7):4] > 0x40000000",
        f"{base}[(link[0] & 0x3) + 1] & 4 = 4",
        f"{base}[ip[0] & 0] > 0x40",
    )
] + [
    "ip[ip[0] & 0xf] > 0",
    "ip[(ip[0] & 0xf) * 4] & 0x80 = 0",
    "tcp[(tcp[12] & 0xf0) >> 2] > 0x40",
    "tcp[tcpflags] & (tcp-syn | tcp-ack) = tcp-syn",
    "icmp[icmptype] = icmp-echo",
    "icmp6[icmp6type] = icmp6-echo",
    "udp[udp[4:2] & 0xf] > 0x20",
    "arp[arp[4]:2] > 0",
    "ether[ether[12] & 0xf] > 0x10",
    "ether[len - 1] > 0x70",
    "ip6[40 + (ip6[6] & 0x3)] > 0",
    "ip[0xfffffff1 - 0xfffffff0] = 0",
    "ether[0xffffffff] = 0",
    "tcp[13] & 0x12 = 0x12 and ip[ip[9] & 0xf] > 3",
]
#: Inside a tunnel: offsets counted from the end of the Geneve header, at constant and computed
#: offsets.
TUNNELS = [
    "geneve and ip[9] = 17",
    "geneve and ip[ip[0] & 0xf] > 0",
    "geneve and ip6[ip6[6] & 0x7] > 0",
    "geneve and tcp[ip[0] & 0x3] > 0",
    "geneve and udp[(ip[0] & 0x3):2] > 0",
    "geneve and tcp[13] & 2 = 2",
    "geneve and (ip[2:2] + ip[0]) > 50",
    "geneve and -ip[8] > 0xffffff00",
    "geneve and icmp6[icmp6[0] & 0x3] > 0",
    "geneve and ip and ip[(ip[0] & 0xf):2] > 0x4000",
    "geneve 7 and ip[8] = 64",
    "geneve and ether[ip[0] & 0x3] & 1 = 1",
    "geneve and ether[len & 0x7] > 0x10",
    "geneve and link[12:2] = 0x800",
    "geneve and ether[(ip[0] & 0x3):2] > 0x100",
]
EXPRESSIONS = OPERATORS + RELATIONS + LOADS + TUNNELS
#: Link types with the network layer at different offsets (0, 4, 16, 20, 14) and link layers
#: of different kinds (the ``link[]`` base, the IP test).
LINKTYPES = (LinkType.ETHERNET, LinkType.RAW, LinkType.LINUX_SLL, LinkType.LINUX_SLL2)
_REST = (LinkType.NULL, LinkType.PPP, LinkType.C_HDLC, LinkType.IPV4, LinkType.IPV6)


@pytest.mark.parametrize("linktype", LINKTYPES + _REST, ids=lambda lt: lt.name)
def test_arithmetic_and_loads_equal_libpcap(linktype: LinkType) -> None:
    frames = captured(linktype, FRAMES)
    exprs = EXPRESSIONS if linktype in LINKTYPES else EXPRESSIONS[_REST.index(linktype) :: 3]
    reference = cached_reference(linktype, exprs, frames[0], frames[2])
    problems, tolerated, _ = _differences(linktype, frames, exprs, reference, c_run)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    assert tolerated <= MAX_SHORT_DIFFERENCES * 2 * len(exprs) * len(frames[0])


#: Divisors and shift counts the lowering finds constant once the operands are folded (the
#: parser refuses a literal one): libpcap refuses each, with the same words. Ours points at
#: the comparison, or at the load whose offset holds the operation (the marked text).
REFUSED = [
    ("ip[1] / (ip[2] & 0) = 0", "division by zero", "ip[1]"),
    ("tcp and ip[1] % (ip[2] * 0) = 0", "modulus by zero", "ip[1] %"),
    ("len = ip[ip[1] / (ip[2] & 0)]", "division by zero", "ip[ip"),
    ("ip[0] / (1 - 1) = 0", "division by zero", "ip[0]"),
    ("tcp and len = ip[1] / (ip[2] & 0)", "division by zero", "len"),
    ("tcp and len = -(ip[1] / (ip[2] & 0))", "division by zero", "len"),
    ("tcp and len = ((ip[1] / (ip[2] & 0)) + 1)", "division by zero", "len"),
    ("tcp and len = (1 + (ip[1] % (ip[2] & 0)))", "modulus by zero", "len"),
    ("tcp and len > (ip[1] << ((ip[2] * 0) + 33))", "shift by more than 31 bits", "len"),
    ("ip and tcp[ip[0] % (len & 0)] > 1", "modulus by zero", "tcp["),
    ("ip[1] << (32 + (ip[2] & 0)) = 0", "shift by more than 31 bits", "ip[1]"),
    ("ip and (ip[1] >> ((ip[2] & 0) | 40)) = 0", "shift by more than 31 bits", "(ip[1]"),
    ("len = ether[len >> ((ip[2] * 0) + 32)]", "shift by more than 31 bits", "ether"),
]


@pytest.mark.parametrize(("expr", "reason", "at"), REFUSED)
def test_constant_divisors_of_zero_and_long_shifts_are_refused(
    expr: str, reason: str, at: str
) -> None:
    with pytest.raises(OracleError) as theirs:
        Compiled(expr, dlt(LinkType.ETHERNET)).close()
    assert str(theirs.value) == reason
    for compile_ in (parse_filter, compile_bpf):
        with pytest.raises(FilterCompileError) as ours:
            compile_(expr, LinkType.ETHERNET)
        assert (ours.value.reason, ours.value.offset) == (reason, expr.index(at))


def test_a_shift_by_31_and_a_divisor_folded_to_one_compile() -> None:
    # The edges of the refusals above: libpcap compiles these, and so do we (31 is the
    # longest shift; (ip[2] & 0) + 1 is the divisor 1).
    for expr in ("ip[1] << ((ip[2] & 0) + 31) = 0", "ip[1] / ((ip[2] & 0) + 1) = 1"):
        Compiled(expr, dlt(LinkType.ETHERNET)).close()
        assert parse_filter(expr, LinkType.ETHERNET) is not None


def test_literal_zero_divisors_are_syntax_errors_at_the_divisor() -> None:
    for expr, reason in (("ip[0] % 0 = 1", "modulus by zero"), ("1 / 0 = 0", "division by zero")):
        with pytest.raises(OracleError, match=reason):
            Compiled(expr, dlt(LinkType.ETHERNET)).close()
        with pytest.raises(FilterSyntaxError) as ours:
            parse_filter(expr, LinkType.ETHERNET)
        assert (ours.value.reason, ours.value.offset) == (reason, expr.index("0 ="))


def _loads_at(program: list[tuple[int, int, int, int]], k: int) -> bool:
    """Whether ``program`` loads a byte or halfword at ``k`` (absolute or x + k)."""
    return any(code in (0x30, 0x50, 0x28, 0x48) and kk == k for code, _, _, kk in program)


@pytest.mark.parametrize(("linktype", "pl"), [(LinkType.ETHERNET, 14), (LinkType.LINUX_SLL2, 20)])
@pytest.mark.parametrize(
    ("expr", "base"), [("len = ip[%d]", 0), ("len = tcp[%d]", 0), ("len = icmp6[%d:2]", 40)]
)
def test_offsets_past_32_bits_are_refused_where_libpcap_wraps_them(
    linktype: LinkType, pl: int, expr: str, base: int
) -> None:
    """A deliberate difference (docs/filter.md): libpcap adds the network layer's offset to
    the one written in 32 bits and wraps around (on Ethernet ip[0xffffffff] reads byte
    14 + 0xffffffff - 2**32 = 13); capsvc refuses an offset that does not fit, pointing at the
    load. Up to 2**32 - 1 in all, both read the same bytes."""
    last = 0xFFFFFFFF - pl - base  # the largest offset that fits
    theirs = Compiled(expr % last, dlt(linktype))
    try:
        assert _loads_at(theirs.instructions(), 0xFFFFFFFF)
    finally:
        theirs.close()
    ours = [(i.code, i.jt, i.jf, i.k) for i in compile_bpf(expr % last, linktype)]
    assert _loads_at(ours, 0xFFFFFFFF)
    wrapped = Compiled(expr % (last + 1), dlt(linktype))
    try:
        assert _loads_at(wrapped.instructions(), 0)
    finally:
        wrapped.close()
    for compile_ in (parse_filter, compile_bpf):
        with pytest.raises(FilterCompileError) as refused:
            compile_(expr % (last + 1), linktype)
        assert (refused.value.reason, refused.value.offset) == (
            "offset does not fit in 32 bits",
            6,
        )


#: libpcap 1.10 refuses a divisor or shift count whose code starts with the load of a constant
#: 0 or one above 31, as a load's index is (gen_arth looks at the first instruction only): it
#: refuses "x / ip[0]" and "x << ip[32]". capsvc compiles them; their meaning is that of
#: libpcap's program for the same load at an index it does not see as constant ("len & 0" is
#: 0, "(len & 0) + 32" is 32), which it compiles.
LIBPCAP_REFUSES = [
    ("(ip[2:2] / ip[0]) > 0", "(ip[2:2] / ip[len & 0]) > 0", "division by zero"),
    ("(ip[2:2] % tcp[0]) > 10", "(ip[2:2] % tcp[len & 0]) > 10", "modulus by zero"),
    ("(ip[0] << ip[32]) > 0x100", "(ip[0] << ip[(len & 0) + 32]) > 0x100", "shift by more"),
    ("(ip[2:2] >> ip6[40]) > 3", "(ip[2:2] >> ip6[(len & 0) + 40]) > 3", "shift by more"),
]


@pytest.mark.parametrize(("expr", "same", "reason"), LIBPCAP_REFUSES)
def test_what_libpcap_refuses_for_the_first_instruction_of_a_divisor(
    expr: str, same: str, reason: str
) -> None:
    with pytest.raises(OracleError, match=reason):
        Compiled(expr, dlt(LinkType.ETHERNET)).close()
    frames, _, wire = captured(LinkType.ETHERNET, FRAMES)
    theirs = Compiled(same, dlt(LinkType.ETHERNET))
    try:
        verdicts = theirs.verdicts(frames, wire)
    finally:
        theirs.close()
    matcher = parse_filter(expr, LinkType.ETHERNET)
    assert matcher is not None
    ours = [matcher.match(f, w) for f, w in zip(frames, wire, strict=True)]
    assert ours == verdicts
    assert c_run(compile_bpf(expr, LinkType.ETHERNET), frames, wire) == verdicts
    assert any(verdicts) and not all(verdicts)


#: Where the lowering refuses a primitive: (link type, expression, the start of the reason,
#: the text the error points at, whether libpcap refuses it too). libpcap refuses a VLAN on a
#: link type without one and a protocol over MPLS other than IPv4/IPv6; what follows a tunnel
#: outside its "and" chain is a deliberate difference (docs/filter.md).
POSITIONS = [
    (LinkType.RAW, "ip and vlan 5", "'vlan' needs Ethernet frames, not RAW", "vlan", True),
    (LinkType.RAW, "tcp or vlan", "'vlan' needs Ethernet frames, not RAW", "vlan", True),
    (
        LinkType.LINUX_SLL,
        "ip and vlan 5",
        "'vlan' needs Ethernet frames, not LINUX_SLL",
        "vlan",
        True,
    ),
    (LinkType.ETHERNET, "mpls and arp[0] = 1", "only IPv4 and IPv6 can follow 'mpls'", "arp", True),
    (LinkType.ETHERNET, "mpls 5 and len = rarp[2]", "only IPv4 and IPv6", "rarp", True),
    (LinkType.ETHERNET, "mpls and rarp", "only IPv4 and IPv6 can follow 'mpls'", "rarp", True),
    (LinkType.ETHERNET, "mpls 5 and ether proto 0x806", "only IPv4 and IPv6", "ether", True),
    (
        LinkType.ETHERNET,
        "geneve and ether proto 0x42",
        "after 'geneve' capsvc tests",
        "ether",
        False,
    ),
    (LinkType.ETHERNET, "geneve and vlan", "'vlan' is not supported after 'geneve'", "vlan", False),
    (
        LinkType.ETHERNET,
        "(geneve and ip) or ip[0] = 1",
        "a primitive after 'geneve' must be in its 'and' chain (what comes after it there is"
        " inside the tunnel)",
        "ip[0]",
        False,
    ),
    (LinkType.ETHERNET, "ip and (geneve or vlan)", "a primitive after 'geneve'", "vlan", False),
    (LinkType.ETHERNET, "tcp and not (geneve and ip) and udp", "a primitive after", "udp", False),
    (LinkType.ETHERNET, "not geneve and vlan", "a primitive after 'geneve'", "vlan", False),
    # The same refusals after vxlan name vxlan (libpcap 1.10 has no vxlan: it refuses all).
    (LinkType.ETHERNET, "vxlan and vlan", "'vlan' is not supported after 'vxlan'", "vlan", True),
    (LinkType.ETHERNET, "(vxlan and ip) or ip[0] = 1", "a primitive after 'vxlan'", "ip[0]", True),
    # NFLOG: the refusal points at the host, net or port test, not at the expression's start
    # (each of these gave offset 0 while host and port asked for the link type without it).
    (LinkType.NFLOG, "not host 10.0.0.1", "NFLOG frames cannot be filtered", "host", True),
    (LinkType.NFLOG, "len > 1 and host ::1", "NFLOG frames cannot be filtered", "host", True),
    (LinkType.NFLOG, "len > 1 or arp net 10", "NFLOG frames cannot be filtered", "arp", True),
    (LinkType.NFLOG, "len > 1 and port 80", "NFLOG frames cannot be filtered", "port", True),
    (LinkType.NFLOG, "len > 1 and portrange 1-9", "NFLOG frames cannot", "portrange", True),
    (LinkType.NFLOG, "len > 1 and tcp[0] = 1", "NFLOG frames cannot be filtered", "tcp", True),
    (LinkType.NFLOG, "len > 1 and icmp6[0] = 1", "NFLOG frames cannot", "icmp6", True),
]


@pytest.mark.parametrize(("linktype", "expr", "reason", "at", "refused"), POSITIONS)
def test_errors_of_the_lowering_point_at_the_primitive(
    linktype: LinkType, expr: str, reason: str, at: str, refused: bool
) -> None:
    try:
        Compiled(expr, dlt(linktype)).close()
    except OracleError:
        assert refused
    else:
        assert not refused
    for compile_ in (parse_filter, compile_bpf):
        with pytest.raises(FilterCompileError) as ours:
            compile_(expr, linktype)
        assert ours.value.reason.startswith(reason)
        assert ours.value.offset == expr.index(at, 1)


def test_unary_minus_is_its_own_node_and_prints_back() -> None:
    # "-x" and "0 - x" differ in their protocol check (see OPERATORS), so the tree keeps them
    # apart; each prints as an expression that parses back to the same tree.
    minus = parse("-ip[1] = 0")
    assert minus == Compare(Negate(Load("ip", Num(1))), "==", Num(0))
    assert parse("0 - ip[1] = 0") == Compare(BinOp("-", Num(0), Load("ip", Num(1))), "==", Num(0))
    for expr in ("-ip[1] = 0", "-(ip[1] + 2) = -len", "ip[0] - -tcp[1:2] > 1", "-5 = ip[0]"):
        tree = parse(expr)
        assert parse(str(tree)) == tree
    assert parse("-5 = ip[0]") == Compare(Num(0xFFFFFFFB), "==", Load("ip", Num(0)))


#: Expressions libpcap's optimizer shortens by folding a constant 0 (an operand or the result
#: of an operation on one): ours is no longer than its program.
FOLDED = [
    "(0 + ip[8]) = 64",
    "(0 | ip[8]) = 64",
    "(0 ^ ip[8]) = 64",
    "(ip[8] + 0) = 64",
    "(ip[8] - 0) = 64",
    "(ip[8] | 0) = 64",
    "(ip[8] ^ 0) = 64",
    "(ip[8] << 0) = 64",
    "(ip[8] >> 0) = 64",
    "(ip[2:2] + -(len & 0)) > 50",
    "(ip[2:2] - (len * 0)) > 50",
    "((len & 0) | ip[2:2]) > 50",
    "(0 * ip[8]) = 0",
    "(0 & ip[8]) = 0",
    "(0 / ip[8]) = 0",
    "(0 % ip[8]) = 0",
    "(0 << ip[8]) = 0",
    "(0 >> ip[8]) = 0",
    "(ip[8] * 0) = 0",
    "(ip[8] & 0) = 0",
]


@pytest.mark.parametrize("expr", FOLDED)
def test_folded_operations_give_programs_as_short_as_libpcaps(expr: str) -> None:
    theirs = Compiled(expr, dlt(LinkType.ETHERNET))
    try:
        length = len(theirs.instructions())
    finally:
        theirs.close()
    assert len(compile_bpf(expr, LinkType.ETHERNET)) <= length


def test_a_node_that_is_no_arithmetic_is_a_type_error() -> None:
    # Only the parser makes the tree, and it never puts a primitive in arithmetic; if a
    # caller does, the lowering says what it found rather than guessing.
    with pytest.raises(TypeError, match=r"^not an arithmetic node: Proto\("):
        lower(Compare(Proto("tcp"), "==", Num(1)), LinkType.ETHERNET)  # type: ignore[arg-type]


#: Loads on 802.11, where the link-layer header follows a radiotap header of variable length
#: and the network layer an 802.11 header of variable length (offsets computed per frame).
#: Each is one comparison: libpcap 1.10's reuse of the register that holds those offsets
#: (test_differential's _WLAN_REGISTER_BUGS) only spoils 802.11 tests after a comparison.
WLAN = [
    "link[len & 0x3] & 1 = 1",
    "wlan[(len & 0x7):2] > 0x100",
    "link[link[0] & 0x3] > 0",
    "link[4:4] & 0x10001 != 0",
    "ether[(len & 0x3):4] > 0x40000000",
    "ip[ip[0] & 0x3] > 0x40",
    "ip[(len & 0x3):2] > 0x4000",
    "ip6[ip6[6] & 0x3] > 0",
    "tcp[ip[0] & 0x3] > 0x40",
    "udp[(ip[0] & 0x3):2] > 0x100",
    "icmp[(len & 0x1):2] > 0",
    "arp[(len & 0x3):2] > 0",
    "ip[8] = 64",
    "tcp[13] & 2 = 2",
    "(ip[2:2] - ip[0]) > 40",
]


@pytest.mark.parametrize(
    "linktype", [LinkType.IEEE802_11, LinkType.IEEE802_11_RADIO], ids=lambda lt: lt.name
)
def test_loads_on_802_11_equal_libpcap(linktype: LinkType) -> None:
    frames, _, wire = captured(linktype, FRAMES)
    problems = []
    for expr in WLAN:
        theirs = Compiled(expr, dlt(linktype))
        try:
            verdicts = theirs.verdicts(frames, wire)
        finally:
            theirs.close()
        matcher = parse_filter(expr, linktype)
        assert matcher is not None
        ours = [matcher.match(f, w) for f, w in zip(frames, wire, strict=True)]
        bpf = c_run(compile_bpf(expr, linktype), frames, wire)
        if ours != verdicts or bpf != verdicts or not any(verdicts):
            problems.append(expr)
    assert not problems


def test_lower_without_the_text_names_no_expression() -> None:
    # The text is for error messages only; without it an error still says what and where.
    with pytest.raises(FilterCompileError) as refused:
        lower(parse("ip and vlan"), LinkType.RAW)  # type: ignore[arg-type]
    assert (refused.value.expr, refused.value.offset) == ("", 0)
    assert refused.value.reason == "'vlan' needs Ethernet frames, not RAW"


def test_a_parsed_tree_compiles_as_its_text() -> None:
    # compile_bpf and CompiledFilter also take a tree parse() made; they lower it with the same
    # defaults as the text (no tag in the metadata for the matcher, the packet metadata for
    # a kernel program): the same program, and libpcap's verdicts on tagged frames.
    for expr in ("vlan 100 and ip", "vlan and (ip[8] + 1) > 60", "inbound and tcp"):
        parsed = parse(expr)
        assert parsed is not None
        assert compile_bpf(parsed, LinkType.ETHERNET) == compile_bpf(expr, LinkType.ETHERNET)
    frames, _, wire = captured(LinkType.ETHERNET, FRAMES)
    for expr in ("vlan 100", "vlan and (ip[8] + 1) > 60"):
        theirs = Compiled(expr, dlt(LinkType.ETHERNET))
        try:
            verdicts = theirs.verdicts(frames, wire)
        finally:
            theirs.close()
        tree = parse(expr)
        assert tree is not None
        matcher = CompiledFilter(tree, LinkType.ETHERNET)
        assert [matcher.match(f, w) for f, w in zip(frames, wire, strict=True)] == verdicts
        assert any(verdicts)


def test_a_kernel_program_with_a_tag_in_the_metadata_keeps_the_packet_metadata() -> None:
    # Both readings of "vlan 100 and inbound" for a live socket (the tag in the frame, the tag
    # in the metadata) read the packet type from the metadata, as libpcap's program for a live
    # Linux socket does; neither refuses "inbound" as the matcher must.
    program = compile_bpf("vlan 100 and inbound", LinkType.ETHERNET, kernel_vlan=True)
    loads = [ins.k for ins in program if ins.code in (0x30, 0x28)]  # ldb [k], ldh [k]
    assert KERNEL_VLAN_PRESENT in loads
    assert loads.count(KERNEL_PKTTYPE) >= 1
    with pytest.raises(FilterCompileError, match="inbound"):
        parse_filter("vlan 100 and inbound", LinkType.ETHERNET)


def test_only_expressions_of_up_to_simplify_up_to_tests_are_simplified() -> None:
    """A lowered expression is factored, then simplified when it holds at most
    ``SIMPLIFY_UP_TO`` tests; a larger one is left factored (simplifying a long chain costs
    more than it saves; docs/benchmarks.md's 50-term expression compiles in milliseconds).
    The two sizes here straddle the bound, and simplifying would change both.

    Mutation guarded: the bound ignored (every formula simplified) or miscounted
    (``small(SIMPLIFY_UP_TO)``, ``small(None, ...)``)."""
    for terms, simplified in ((16, True), (17, False)):
        expr = " or ".join(f"(tcp port {p} and ip)" for p in range(1, terms + 1))
        node = parse(expr)
        assert node is not None
        factored = factor(lower(node, LinkType.ETHERNET, expr, simplified=False))
        assert small(factored, SIMPLIFY_UP_TO) is simplified
        assert simplify(factored) != factored
        got = lower(node, LinkType.ETHERNET, expr)
        assert got == (simplify(factored) if simplified else factored), terms
