"""Our matcher and our BPF programs against libpcap, expression by expression, frame by frame.

For every expression and link type: ``parse_filter(...).match`` must give libpcap's verdict
(``pcap_compile`` on a dead handle + ``pcap_offline_filter``), the program from ``compile_bpf``
run by libpcap's own interpreter (``bpf_filter``) must give it too, the program must be at most
twice as long as libpcap's, and the Linux kernel must accept it (SO_ATTACH_FILTER). libpcap is
given the expression as written (so a difference of grouping or precedence shows); only
capsvc's own extensions of the syntax (two primitives side by side, protocol names after
``proto`` without a backslash, a bare address) are spelled the libpcap way first. Frames include
truncated ones, some cut by a snapshot length: their length on the wire (which ``len`` reads) is
then more than the captured bytes, as in a pcap record. The expressions of libpcap's own test
suite (``_testrun``) are checked on the link type each is written for. ``vxlan``, which libpcap
1.10 does not have, is not compared with it: its expressions must compile wherever ``geneve``
does and our program must give the matcher's verdict on every frame (test_vxlan holds their
meaning to libpcap 1.11's on hand-built frames, and to tshark's reading).

Two kinds of difference are allowed, both described in docs/filter.md: on frames libpcap's
unoptimized program reads past the end of (the optimizers drop different reads there), and, for
the listed expressions only, where libpcap's optimizer miscompiles and we give the answer of its
unoptimized program.
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _bpfvm as bpfvm
from _exprs import EXPRESSIONS, LARGE
from _oracle import Compiled, OracleError, run_program
from _packets import captured
from _testrun import TESTRUN

from capsvc._packet import LinkType
from capsvc.filter import (
    FILTER_LINKTYPES,
    BpfInstruction,
    FilterCompileError,
    FilterError,
    compile_bpf,
    parse_filter,
)


def too_short(text: str, linktype: LinkType, frames: list[bytes], wire: list[int]) -> set[int]:
    """Indexes of the frames libpcap's unoptimized program for the expression reads past."""
    plain = Compiled(text, dlt(linktype), optimize=False)
    try:
        program = plain.instructions()
    finally:
        plain.close()
    return {
        i for i, frame in enumerate(frames) if bpfvm.run(program, frame, wire_len=wire[i]) is None
    }


_PROTO_NAME = re.compile(r"\b(proto|ether proto) (tcp|udp|sctp|icmp6|icmp|igmp|ip6|ip|arp|rarp)\b")
_ETHER_NAMES = {"lldp": "0x88cc", "slow": "0x8809"}
#: A bare address before any qualifier was written (later ones reuse qualifiers, as in libpcap).
_BARE = re.compile(r"^((?:[(!\s]|not\s)*)(\d+\.\d+\.\d+\.\d+|[0-9a-f:]*::[0-9a-f:.]*)(?=$|[ )])")
#: Two primitives side by side (capsvc reads "and" between them).
_SIDE_BY_SIDE = {
    "tcp udp": "tcp and udp",
    "udp port 53 host 10.0.0.1": "udp port 53 and host 10.0.0.1",
}


def libpcap_text(expr: str) -> str:
    """``expr`` with capsvc's extensions of the syntax spelled as libpcap wants them: keywords
    in lower case, a protocol name after ``proto`` escaped, a bare address given ``host``, two
    primitives side by side joined by ``and``. Grouping stays as written."""
    text = _SIDE_BY_SIDE.get(expr, expr.lower())
    text = _PROTO_NAME.sub(lambda m: f"{m.group(1)} \\{m.group(2)}", text)
    text = re.sub(
        r"ether proto (lldp|slow)\b", lambda m: f"ether proto {_ETHER_NAMES[m.group(1)]}", text
    )
    return _BARE.sub(lambda m: f"{m.group(1)}host {m.group(2)}", text)


#: pcap_open_dead wants DLT_ values; they equal the LINKTYPE_ ones except for raw IP.
DLT = {LinkType.RAW: 12}
FRAMES_PER_LINKTYPE = 300
SO_ATTACH_FILTER = 26

#: Deliberate differences of the language (docs/filter.md, "Deliberate differences from
#: tcpdump"), each checked below: what we refuse although libpcap compiles it ...
WE_REFUSE = {
    "host localhost": "host names are not resolved when compiling",
}
#: ... and what we accept although libpcap refuses it (on Ethernet unless said otherwise).
WE_ACCEPT = {
    "udp port 53 host 10.0.0.1": "two primitives side by side mean 'and'",
    "proto tcp": "'proto' takes protocol names without a backslash",
    "ip proto udp or ip6 proto tcp": "the same after 'ip proto' / 'ip6 proto'",
    "arp and ip": "an expression that never matches compiles (to 'reject everything')",
    "10.0.0.1": "a bare address means 'host'",
    "portrange ftp-data-ftp": "a range of service names that contain dashes",
    "ether proto lldp": "ethertype names libpcap 1.10 lacks (later versions know them)",
}

#: The one class of verdict difference allowed (docs/filter.md, "Frames too short for the
#: expression"): on a frame where the expression as written reads past the end, libpcap's
#: optimizer and ours may drop different reads whose outcome cannot change the verdict of a
#: frame long enough, so one answers where the other rejects. Never on a frame long enough.
MAX_SHORT_DIFFERENCES = 0.01  # of (expression, frame) pairs

#: libpcap 1.10's optimizer miscompiles these: after a comparison of two header fields (which
#: moves a value into X with "tax") it reuses X as if it still held the IPv4 header length, so
#: the optimized program reads the wrong bytes. There we agree with libpcap's unoptimized program
#: (which must then differ from the optimized one on that frame). docs/filter.md lists this.
LIBPCAP_OPTIMIZER_BUGS = {
    "tcp[0:2] > tcp[2:2] and portrange 10-20",
}
#: Where libpcap 1.10's code generator itself is wrong (docs/filter.md lists these): capsvc
#: compiles them with the meaning libpcap's later versions and test suite give them, so their
#: verdicts are not compared with 1.10's. It loses the load of "byte N & M" / "byte N | M" (and
#: tests 0 instead), and on 802.11 it keeps the radiotap header's length or the payload's
#: offset in a scratch register that a comparison's arithmetic, or "geneve", then overwrites
#: (its geneve program reads the payload's offset from another register than it wrote).
LIBPCAP_CODEGEN_BUGS = re.compile(r"^byte \d+ [&|]")
_WLAN_REGISTER_BUGS = re.compile(r"[<>=]|\bless\b|\bgreater\b|\bgeneve\b")
#: A tunnel in a tunnel: each of the 16 layouts has its tests (libpcap's program computes the
#: offsets in registers and shares what follows), so the program may be longer than twice
#: libpcap's (docs/filter.md, "geneve"); still far below the kernel's limit.
LONGER_PROGRAMS = re.compile(r"\bgeneve\b.*\bgeneve\b")
#: 802.11 subtype names libpcap 1.10 does not know (later versions do).
NEWER_NAMES = re.compile(r"subtype (bar|ba)$")
#: Primitives newer than libpcap 1.10, the reference here (``vxlan`` is libpcap 1.11's):
#: not compared with it, but compiled on every link type where ``geneve`` compiles, with our
#: BPF program giving the matcher's verdict on every frame (``_ours_agree``).
NEWER_THAN_LIBPCAP = re.compile(r"\bvxlan\b")
#: Needs a loop (libpcap's program jumps backwards, which the Linux kernel refuses): the
#: matcher gives libpcap's verdict, ``compile_bpf`` a FilterCompileError saying why.
NO_KERNEL_PROGRAM = re.compile(r"\bprotochain\b")


def dlt(linktype: LinkType) -> int:
    return DLT.get(linktype, int(linktype))


Frames = dict[LinkType, tuple[list[bytes], set[int], list[int]]]


@pytest.fixture(scope="module")
def generated() -> Frames:
    return {lt: captured(lt, FRAMES_PER_LINKTYPE) for lt in FILTER_LINKTYPES}


def test_the_corpus_is_big_enough(generated: Frames) -> None:
    packets = {lt: v[0] for lt, v in generated.items()}
    assert len(EXPRESSIONS) >= 300
    assert len(TESTRUN) >= 1000
    assert sum(len(v) for v in packets.values()) >= 2000
    eth = packets[LinkType.ETHERNET]
    assert any(p[12:14] == b"\x81\x00" for p in eth), "no VLAN frames"
    assert any(p[12:14] == b"\x08\x06" for p in eth), "no ARP frames"
    assert any(len(p) >= 14 and int.from_bytes(p[12:14], "big") <= 1500 for p in eth)
    raw = packets[LinkType.RAW]
    assert any(len(p) > 20 and p[0] >> 4 == 4 and p[6] & 0x1F for p in raw), "no later fragments"
    assert any(len(p) > 20 and p[0] > 0x45 and p[0] >> 4 == 4 for p in raw), "no IPv4 options"
    assert any(len(p) > 40 and p[0] >> 4 == 6 and p[6] in (0, 43, 44, 60) for p in raw)
    assert any(len(p) < 20 for p in raw), "no truncated frames"
    cut = [
        (p, w) for lt in generated for p, w in zip(generated[lt][0], generated[lt][2], strict=True)
    ]
    assert sum(w > len(p) for p, w in cut) > 100, "no frames cut by a snapshot length"
    radio = packets[LinkType.IEEE802_11_RADIO]
    assert any(len(p) > 8 and p[4] & 0x02 and p[8] & 0x20 for p in radio), "no radiotap padding"


class Reference(NamedTuple):
    """libpcap's answer for one expression: its verdict on each frame, its program's length."""

    verdicts: list[bool]
    length: int


#: libpcap's answer for (the libpcap text of an expression, link type, frames, wire lengths);
#: raises OracleError where libpcap refuses the expression.
ReferenceOf = Callable[[str, LinkType, list[bytes], list[int]], Reference]
#: Runs a classic BPF program on frames (with their wire lengths): a verdict each.
RunProgram = Callable[[Sequence[BpfInstruction], list[bytes], list[int]], list[bool]]


def live_reference(
    text: str, linktype: LinkType, frames: list[bytes], wire: list[int]
) -> Reference:
    """Ask libpcap itself: pcap_compile (optimized), pcap_offline_filter on each frame."""
    compiled = Compiled(text, dlt(linktype))
    try:
        return Reference(compiled.verdicts(frames, wire), len(compiled.instructions()))
    finally:
        compiled.close()


def _differences(
    linktype: LinkType,
    data: tuple[list[bytes], set[int], list[int]],
    exprs: list[str],
    reference: ReferenceOf = live_reference,
    run_bpf: RunProgram = run_program,
) -> tuple[list[str], int, int]:
    """Every difference of our matcher and our BPF program (run by ``run_bpf``) from libpcap's
    answer (``reference``) on the frames, but the allowed ones (see the module's docstring);
    also how many differences were tolerated on frames too short for the expression and how
    many expressions are of syntax capsvc does not support."""
    pk, _, wire = data
    problems: list[str] = []
    tolerated = newer = 0
    for expr in exprs:
        if not expr.strip():
            assert parse_filter(expr, linktype) is None  # accepts everything, as libpcap
            continue
        text = libpcap_text(expr)
        if NEWER_THAN_LIBPCAP.search(expr):
            newer += 1
            problems += _ours_agree(expr, linktype, pk, wire)
            continue
        if NEWER_NAMES.search(expr):
            continue
        if LIBPCAP_CODEGEN_BUGS.search(expr) or (
            linktype in (LinkType.IEEE802_11_RADIO, LinkType.IEEE802_11)
            and _WLAN_REGISTER_BUGS.search(expr)
        ):
            compile_bpf(expr, linktype)  # compiles; the meaning is checked in test_match
            continue
        try:
            ref, ref_len = reference(text, linktype, pk, wire)
        except OracleError as exc:
            ref_error = str(exc)
            try:
                matcher = parse_filter(expr, linktype)
            except FilterCompileError:
                continue  # both refuse this link type
            if "rejects all packets" not in ref_error:
                problems.append(f"{expr!r}: libpcap refuses ({ref_error}), we accept")
                continue
            assert matcher is not None
            if any(matcher.match(p, w) for p, w in zip(pk, wire, strict=True)):
                problems.append(f"{expr!r}: libpcap rejects all packets, we match some")
            continue
        try:
            program: list[BpfInstruction] | None = None
            try:
                program = compile_bpf(expr, linktype)
            except FilterCompileError as exc:
                if not NO_KERNEL_PROGRAM.search(expr) or "a kernel program cannot" not in str(exc):
                    raise
            matcher = parse_filter(expr, linktype)
        except FilterError as exc:
            if "only a live capture" in exc.reason:
                matcher = None  # the kernel's metadata: the program is checked, not the matcher
            else:
                problems.append(f"{expr!r}: libpcap accepts, we refuse: {exc.reason}")
                continue
        ours = [matcher.match(p, w) for p, w in zip(pk, wire, strict=True)] if matcher else None
        theirs_bpf = None if program is None else run_bpf(program, pk, wire)
        short: set[int] | None = None
        unoptimized: list[bool] | None = None
        for name, verdicts in (("match", ours), ("our BPF", theirs_bpf)):
            if verdicts is None:
                continue
            for i, p in enumerate(pk):
                if verdicts[i] == ref[i]:
                    continue
                if short is None:
                    short = too_short(text, linktype, pk, wire)
                if i in short:
                    tolerated += 1
                    continue
                if unoptimized is None:
                    plain = Compiled(text, dlt(linktype), optimize=False)
                    unoptimized = plain.verdicts(pk, wire)
                    plain.close()
                if unoptimized[i] == verdicts[i] and expr in LIBPCAP_OPTIMIZER_BUGS:
                    continue
                problems.append(
                    f"{expr!r}: {name}={verdicts[i]} libpcap={ref[i]} on {p.hex()} "
                    f"(wire length {wire[i]})"
                )
                break
        if program is not None and len(program) > 2 * ref_len and not LONGER_PROGRAMS.search(expr):
            problems.append(f"{expr!r}: {len(program)} instructions, libpcap {ref_len}")
    return problems, tolerated, newer


def _compiles(expr: str, linktype: LinkType) -> bool:
    try:
        parse_filter(expr, linktype)
    except FilterCompileError:
        return False
    return True


def _ours_agree(expr: str, linktype: LinkType, frames: list[bytes], wire: list[int]) -> list[str]:
    """For an expression libpcap 1.10 cannot compile: it compiles (matcher and BPF program)
    wherever ``geneve`` does, and the program gives the matcher's verdict on every frame, as
    libpcap's interpreter and the test interpreter run it (a read past the end: no match)."""
    if not _compiles("geneve", linktype):
        with pytest.raises(FilterCompileError):
            parse_filter(expr, linktype)
        return []
    try:
        matcher = parse_filter(expr, linktype)
        program = compile_bpf(expr, linktype)
    except FilterError as exc:
        return [f"{expr!r}: refused where 'geneve' compiles: {exc.reason}"]
    assert matcher is not None
    ours = [matcher.match(p, w) for p, w in zip(frames, wire, strict=True)]
    run = run_program(program, frames, wire)
    vm = [bool(bpfvm.run(program, p, wire_len=w)) for p, w in zip(frames, wire, strict=True)]
    for name, verdicts in (("libpcap's interpreter", run), ("the test interpreter", vm)):
        for i, p in enumerate(frames):
            if verdicts[i] != ours[i]:
                return [f"{expr!r}: our BPF in {name}={verdicts[i]}, match={ours[i]} on {p.hex()}"]
    if sum(ours) == 0 and linktype == LinkType.ETHERNET:
        return [f"{expr!r}: matches none of the generated frames"]
    return []


@pytest.mark.parametrize("linktype", sorted(FILTER_LINKTYPES), ids=lambda lt: lt.name)
def test_matcher_and_bpf_equal_libpcap(linktype: LinkType, generated: Frames) -> None:
    exprs = EXPRESSIONS + [e for lt, e in TESTRUN if lt == linktype]
    problems, tolerated, _ = _differences(linktype, generated[linktype], exprs)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    assert tolerated <= MAX_SHORT_DIFFERENCES * 2 * len(exprs) * len(generated[linktype][0])


def test_libpcaps_own_expressions_are_all_accepted() -> None:
    # Every TESTrun expression for a link type capsvc filters parses and compiles there (the
    # vxlan ones too); for other link types a FilterCompileError names it.
    refused = []
    for linktype, expr in TESTRUN:
        if linktype not in FILTER_LINKTYPES:
            with pytest.raises(FilterCompileError, match=linktype.name):
                parse_filter(expr, linktype)
            continue
        try:
            if NO_KERNEL_PROGRAM.search(expr):
                parse_filter(expr, linktype)  # the matcher only
            else:
                compile_bpf(expr, linktype)
        except FilterError as exc:
            refused.append(f"{linktype.name} {expr!r}: {exc.reason}")
    assert not refused, "\n".join(refused[:30])


@pytest.mark.parametrize(
    "linktype", [LinkType.ETHERNET, LinkType.RAW, LinkType.LINUX_SLL2], ids=lambda lt: lt.name
)
def test_large_expressions_equal_libpcap(linktype: LinkType, generated: Frames) -> None:
    pk, _, wire = generated[linktype]
    for expr in LARGE:
        matcher = parse_filter(expr, linktype)
        assert matcher is not None
        assert "_u16(" in matcher.source or "_u32(" in matcher.source  # the compact style
        ref_prog = Compiled(libpcap_text(expr), dlt(linktype))
        ref = ref_prog.verdicts(pk, wire)
        ref_len = len(ref_prog.instructions())
        ref_prog.close()
        # Large programs get the cheaper compile path; still no longer than twice libpcap's.
        assert len(compile_bpf(expr, linktype)) <= 2 * ref_len, expr
        ours = [matcher.match(p, w) for p, w in zip(pk, wire, strict=True)]
        bpf = run_program(compile_bpf(expr, linktype), pk, wire)
        short = too_short(libpcap_text(expr), linktype, pk, wire)
        for i in range(len(pk)):
            if i not in short:
                assert ours[i] == ref[i], (expr, pk[i].hex())
                assert bpf[i] == ref[i], (expr, pk[i].hex())
        differing = sum(ours[i] != ref[i] for i in range(len(pk)))
        assert differing <= MAX_SHORT_DIFFERENCES * len(pk) * 5


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _attach(sock: socket.socket, program: Sequence[tuple[int, int, int, int]]) -> None:
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))


def test_the_kernel_accepts_every_program() -> None:
    # A UDP socket takes SO_ATTACH_FILTER without privileges and the kernel runs the same
    # checker (sk_chk_filter) for it as for packet sockets; as root, a packet socket too.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
    if os.geteuid() == 0:
        sockets.append(socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
    refused = []
    try:
        for linktype in sorted(FILTER_LINKTYPES):
            testrun = [e for lt, e in TESTRUN if lt == linktype]
            for expr in EXPRESSIONS + LARGE + testrun:
                try:
                    program = compile_bpf(expr, linktype)
                except FilterError:
                    continue
                for sock in sockets:
                    try:
                        _attach(sock, program)
                    except OSError as exc:
                        refused.append(f"{linktype.name} {expr!r} on {sock.family!r}: {exc}")
    finally:
        for sock in sockets:
            sock.close()
    assert not refused, "\n".join(refused[:20])


def test_the_kernel_refuses_a_broken_program() -> None:
    # Guards the attach helper itself: a jump past the end must be refused.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(OSError):
        _attach(sock, [(0x15, 5, 5, 0), (0x06, 0, 0, 0)])


CORPUS_EXPRESSIONS = [
    "tcp",
    "udp",
    "icmp",
    "ip6",
    "arp",
    "tcp port 80",
    "port 53",
    "not ip",
    "vlan",
    "host 192.168.1.1",
    "net 10.0.0.0/8",
    "portrange 1-1023",
    "tcp[tcpflags] & tcp-syn != 0",
    "icmp[icmptype] == icmp-echo",
    "greater 1000",
    "less 64",
    "ip6 proto 58",
    "sctp",
    "ether proto 0x88cc",
    "ip[6:2] & 0x1fff != 0",
    "vlan and ip",
    "src port 443 or dst port 80",
    "ip[0] & 0xf > 5",
    "igmp",
    "udp port 123 or udp port 161",
]
_SUPPORTED = {int(lt) for lt in FILTER_LINKTYPES}


def _read_pcap(path: Path, wire: list[int] | None = None) -> tuple[int, list[bytes]] | None:
    """The link type and frames of a pcap file (each record's original length appended to
    ``wire`` when given)."""
    data = path.read_bytes()
    if len(data) < 24:
        return None
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        return None
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0xFFFF
    out, pos = [], 24
    while pos + 16 <= len(data):
        incl, orig = struct.unpack(end + "II", data[pos + 8 : pos + 16])
        out.append(data[pos + 16 : pos + 16 + incl])
        if wire is not None:
            wire.append(orig)
        pos += 16 + incl
    return linktype, out


LINKTYPE_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "pcaps-linktypes"
#: For the captures of other link types: the IP-level primitives and the 802.11 ones.
LINKTYPE_EXPRESSIONS = [
    *CORPUS_EXPRESSIONS,
    "ip",
    "host 10.0.0.1 or net 192.168.0.0/16",
    "proto 89 or ip proto ospf",
    "tcp port bgp",
    "len > 100 and ip",
    "ip6 and not icmp6",
    "iso or stp",
    "mpls",
    "wlan type mgt subtype beacon",
    "wlan type data and not wlan subtype qos-data",
    "wlan addr2 00:00:00:00:00:00 or wlan ra ff:ff:ff:ff:ff:ff",
    "broadcast or multicast",
    "wlan dir tods",
    "inbound",
]


def test_real_captures_of_other_link_types_match_libpcap() -> None:
    """The real frames of ../shared/pcaps-linktypes (802.11 with and without radiotap, PPP,
    Cisco HDLC, NFLOG, SLIP; their record's length on the wire): where libpcap compiles an
    expression for the file's link type, the same verdicts; elsewhere a FilterCompileError
    naming the link type."""
    if not LINKTYPE_CORPUS.is_dir():
        pytest.skip(f"{LINKTYPE_CORPUS} is absent")
    checked = 0
    problems = []
    for path in sorted(LINKTYPE_CORPUS.glob("*.pcap")):
        wire: list[int] = []
        read = _read_pcap(path, wire)
        if read is None or not read[1]:
            continue
        linktype, pk = LinkType(read[0]), read[1]
        for expr in LINKTYPE_EXPRESSIONS:
            try:
                ref_prog = Compiled(expr, dlt(linktype))
            except OracleError as exc:
                if "rejects all" in str(exc):
                    ref: list[bool] | None = [False] * len(pk)
                else:
                    ref = None
            else:
                ref = ref_prog.verdicts(pk, wire)
                ref_prog.close()
            if linktype not in FILTER_LINKTYPES:
                with pytest.raises(FilterCompileError, match=linktype.name):
                    parse_filter(expr, linktype)
                continue
            try:
                program = compile_bpf(expr, linktype)
                matcher = parse_filter(expr, linktype)
            except FilterError as exc:
                if ref is not None and "live capture" not in exc.reason:
                    problems.append(f"{path.name} {expr!r}: libpcap accepts, we refuse")
                continue
            if ref is None:
                problems.append(f"{path.name} {expr!r}: libpcap refuses, we accept")
                continue
            assert matcher is not None
            ours = [matcher.match(p, w) for p, w in zip(pk, wire, strict=True)]
            bpf = run_program(program, pk, wire)
            checked += len(pk)
            for name, verdicts in (("match", ours), ("BPF", bpf)):
                if verdicts != ref:
                    i = next(i for i in range(len(pk)) if verdicts[i] != ref[i])
                    problems.append(f"{path.name} {expr!r} frame {i}: {name}={verdicts[i]}")
    assert checked > 1000
    assert not problems, "\n".join(problems[:20])


def test_real_captures_match_libpcap(corpus: Path) -> None:
    checked = 0
    problems = []
    for path in sorted(corpus.iterdir()):
        read = _read_pcap(path)
        if read is None or read[0] not in _SUPPORTED or not read[1]:
            continue
        linktype, pk = LinkType(read[0]), read[1]
        for expr in CORPUS_EXPRESSIONS:
            try:
                matcher = parse_filter(expr, linktype)
            except FilterCompileError:
                continue
            assert matcher is not None
            try:
                ref_prog = Compiled(expr, dlt(linktype))
            except OracleError as exc:
                assert "rejects all" in str(exc)
                ref = [False] * len(pk)
            else:
                ref = ref_prog.verdicts(pk)
                ref_prog.close()
            ours = [matcher.match(p) for p in pk]
            checked += len(pk)
            if ours != ref:
                i = next(i for i in range(len(pk)) if ours[i] != ref[i])
                problems.append(f"{path.name} {expr!r} frame {i}: ours={ours[i]} libpcap={ref[i]}")
    assert checked > 10000
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("linktype", [LinkType.ETHERNET, LinkType.RAW], ids=lambda lt: lt.name)
def test_the_reference_interpreter_agrees_with_libpcap(
    linktype: LinkType, generated: Frames
) -> None:
    # too_short() relies on the test interpreter; it must answer as bpf_filter does.
    pk, _, wire = generated[linktype]
    for expr in EXPRESSIONS[::3]:
        try:
            plain = Compiled(libpcap_text(expr), dlt(linktype), optimize=False)
        except OracleError:
            continue
        program = plain.instructions()
        plain.close()
        theirs = run_program(program, pk, wire)
        assert [
            bool(bpfvm.run(program, p, wire_len=w)) for p, w in zip(pk, wire, strict=True)
        ] == theirs


@pytest.mark.parametrize("expr", sorted(WE_REFUSE))
def test_deliberately_refused(expr: str) -> None:
    compiled = Compiled(expr, 1)  # libpcap accepts it
    compiled.close()
    with pytest.raises(FilterError):
        parse_filter(expr, LinkType.ETHERNET)


@pytest.mark.parametrize("expr", sorted(WE_ACCEPT))
def test_deliberately_accepted(expr: str, generated: Frames) -> None:
    with pytest.raises(OracleError):
        Compiled(expr, 1)
    matcher = parse_filter(expr, LinkType.ETHERNET)
    assert matcher is not None
    # Same meaning as the libpcap spelling of the expression, where it has one.
    spelled = {
        "udp port 53 host 10.0.0.1": "udp port 53 and host 10.0.0.1",
        "proto tcp": "proto \\tcp",
        "ip proto udp or ip6 proto tcp": "ip proto \\udp or ip6 proto \\tcp",
        "10.0.0.1": "host 10.0.0.1",
        "portrange ftp-data-ftp": "tcp portrange 20-21",
        "ether proto lldp": "ether proto 0x88cc",
    }.get(expr)
    pk, _, _ = generated[LinkType.ETHERNET]
    if spelled is None:
        assert not any(matcher.match(p) for p in pk)
        return
    ref = Compiled(spelled, 1)
    assert [matcher.match(p) for p in pk] == ref.verdicts(pk)
    ref.close()
