"""The BPF back-end: program shape, dump format (checked against libpcap's own bpf_image),
long programs, and run by libpcap's interpreter."""

from __future__ import annotations

import ctypes

import pytest
from _bpfvm import run
from _helpers import ether, ipv4, tcp, udp
from _oracle import Compiled, _bpf_image, libpcap_dump, run_program

from capsvc._packet import LinkType
from capsvc.filter import BpfInstruction, FilterCompileError, bpf_dump, compile_bpf, parse
from capsvc.sources.libpcap._ffi import bpf_insn


@pytest.mark.parametrize(
    "expr",
    [
        "tcp port 443",
        "ip[0] + tcp[0] = 5",
        "ether host 02:00:00:00:00:0a",
        "less 100",
        "net fe80::/10",
        "udp[ip[0]] = 1",
        "vlan 100 and ip",
        "ip[2:2] % 7 ^ 3 = 1",
        "tcp[13] & 0x12 != 0",
        "len - 14 > ip[2:2] * 2 >> 1",
    ],
)
def test_dump_is_tcpdump_d(expr: str) -> None:
    # Our printer on libpcap's program must reproduce libpcap's own text exactly.
    compiled = Compiled(expr, 1, optimize=False)
    try:
        theirs = compiled.instructions()
    finally:
        compiled.close()
    assert bpf_dump(theirs) == libpcap_dump(expr, 1, optimize=False)


def test_program_for_tcp_port_443() -> None:
    program = compile_bpf("tcp port 443")
    assert all(isinstance(ins, BpfInstruction) for ins in program)
    assert program[0] == BpfInstruction(0x28, 0, 0, 12)  # ldh [12]
    assert program[-2:] == [BpfInstruction(0x06, 0, 0, 262144), BpfInstruction(0x06, 0, 0, 0)]
    text = bpf_dump(program)
    assert "(000) ldh      [12]" in text
    assert "ldxb     4*([14]&0xf)" in text
    assert "jset     #0x1fff" in text
    assert len(program) <= 20


def test_accepts_a_node_and_a_snaplen() -> None:
    node = parse("udp")
    assert node is not None
    program = compile_bpf(node, LinkType.RAW, snaplen=96)
    assert BpfInstruction(0x06, 0, 0, 96) in program
    frame = ipv4("10.0.0.1", "10.0.0.2", udp(1, 2))
    assert run_program(program, [frame, frame[:5]]) == [True, False]


def test_empty_and_constant_programs() -> None:
    assert compile_bpf("") == [BpfInstruction(0x06, 0, 0, 262144)]
    assert compile_bpf("ip", LinkType.IPV4) == [BpfInstruction(0x06, 0, 0, 262144)]
    assert compile_bpf("arp", LinkType.RAW) == [BpfInstruction(0x06, 0, 0, 0)]


def test_link_type_limits_raise() -> None:
    with pytest.raises(FilterCompileError):
        compile_bpf("vlan", LinkType.LINUX_SLL2)


def test_long_jumps_go_through_trampolines() -> None:
    # Alternatives spread over more than 255 instructions need "ja" hops.
    expr = " or ".join(f"(tcp port {p} and host 10.0.{p % 250}.1)" for p in range(1, 60))
    program = compile_bpf(expr)
    assert len(program) > 300
    assert any(ins.code == 0x05 for ins in program)  # ja
    assert all(ins.jt <= 255 and ins.jf <= 255 for ins in program)
    frames = [ether(ipv4(f"10.0.{p % 250}.1", "10.9.9.9", tcp(p, 9))) for p in (1, 30, 59, 60)]
    assert run_program(program, frames) == [True, True, True, False]


KERNEL_VLAN_EXPRESSIONS = [
    "vlan",
    "vlan 100",
    "not vlan",
    "vlan 100 and udp port 53",
    "vlan and ip host 10.0.0.2",
    "vlan 100 and vlan 300 and udp",
    "vlan 100 or vlan 300",
    "not vlan 100 and ip",
    "vlan and (udp port 53 or tcp port 80)",
]


def _kernel_vlan_frames() -> list[tuple[bytes, tuple[int, ...]]]:
    dns = ipv4("10.0.0.1", "10.0.0.2", udp(40000, 53, b"q"))
    web = ipv4("10.0.0.1", "10.0.0.3", tcp(40000, 80))
    return [
        (ether(payload, vlans=vlans), vlans)
        for payload in (dns, web)
        for vlans in ((), (100,), (200,), (100, 300), (300, 100))
    ]


@pytest.mark.parametrize("expr", KERNEL_VLAN_EXPRESSIONS)
def test_kernel_vlan_reads_the_tag_the_kernel_took_out(expr: str) -> None:
    # A live socket's filter sees a tagged frame without its outer tag, which is in the packet's
    # metadata: the kernel_vlan program then answers what the plain program answers on the
    # frame as sent; a frame whose tag stays in the data gets the plain program's answer too.
    plain = compile_bpf(expr)
    kernel = compile_bpf(expr, kernel_vlan=True)
    assert any(ins.k == 0xFFFFF000 + 48 for ins in kernel)
    for frame, vlans in _kernel_vlan_frames():
        expected = run(plain, frame)
        assert run(kernel, frame) == expected, (expr, vlans)
        if vlans:
            stripped = frame[:12] + frame[16:]
            assert run(kernel, stripped, vlan_tci=vlans[0]) == expected, (expr, vlans)
    assert any(run(plain, frame) for frame, _ in _kernel_vlan_frames())  # the test has teeth


@pytest.mark.parametrize("expr", ["tcp port 443", "ip6 or arp", "udp[8:2] = 53", ""])
def test_kernel_vlan_changes_nothing_without_vlan(expr: str) -> None:
    assert compile_bpf(expr, kernel_vlan=True) == compile_bpf(expr)


def test_kernel_vlan_dump_names_the_ancillary_loads() -> None:
    text = bpf_dump(compile_bpf("vlan 100", kernel_vlan=True))
    assert "ldb      [vlanp]" in text
    assert "ldh      [vlan_tci]" in text


def _threading_work(terms: int) -> int:
    """Tests the jump threading follows past for ``terms`` (host and port) alternatives."""
    from capsvc.filter import _bpfgraph

    steps = 0
    real = _bpfgraph._outcome

    def counting(*args: object) -> bool | None:
        nonlocal steps
        steps += 1
        return real(*args)  # type: ignore[arg-type]

    expr = " or ".join(
        f"(host 10.0.{i % 250}.{i // 250} and port {1000 + i})" for i in range(terms)
    )
    _bpfgraph._outcome = counting  # type: ignore[assignment]
    try:
        compile_bpf(expr, max_length=0)
    except FilterCompileError:
        pass  # longer than the kernel takes: the work was done
    finally:
        _bpfgraph._outcome = real
    return steps


def test_compile_work_grows_linearly() -> None:
    """A long chain of alternatives costs work proportional to its length. Observed: a
    2000-term expression took 20 s, each alternative re-walking the chain of protocol tests
    that a non-IP frame fails (mutation: no bound on the decided tests an edge is followed
    past, or facts added again on every decided test: four times the work for twice the
    terms)."""
    small, large = _threading_work(300), _threading_work(600)
    assert large < 2.4 * small, (small, large)


def test_dump_of_every_opcode_is_bpf_image() -> None:
    """Each instruction libpcap's bpf_image names, printed as libpcap prints it: kills, in
    ``_image``, every change of an opcode's name, its operand's form (immediate, absolute,
    indexed, scratch memory, packet length, IP header length, ancillary data names), the jump
    targets and the default names. Not compared: opcodes libpcap calls ``unimp`` and ``ret a``,
    which libpcap 1.10 prints without its operand."""
    image = _bpf_image()
    checked = 0
    for code in range(256):
        absolute = code & 0x07 in (0, 1) and code & 0xE0 == 0x20  # ancillary names
        ks = (0, 7, 0x1234, 0xFFFFF004) if absolute else (0, 7, 0x1234)
        for k in ks:
            ins = bpf_insn(code, 2, 5, k)
            theirs = image(ctypes.byref(ins), 3).decode()
            if "unimp" in theirs or code == 0x16:
                continue
            assert bpf_dump([(0x06, 0, 0, 0)] * 3 + [(code, 2, 5, k)]).splitlines()[-1] == theirs
            checked += 1
    assert checked > 130  # the 47 opcodes libpcap names, 3 or 4 operands each
