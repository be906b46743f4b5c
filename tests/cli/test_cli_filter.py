"""``capsvc filter``: normalized text, -d dumps, link types, and errors with exit status 2."""

from __future__ import annotations

import argparse

import pytest

from capsvc.cli._filter import add_parser


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="capsvc")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["filter", *argv])
    code: int = args.run(args)
    return code


def test_prints_the_normalized_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["TCP", "PORT", "443", "&&", "!", "host", "10.0.0.1"]) == 0
    assert capsys.readouterr().out == "tcp port 443 and not host 10.0.0.1\n"


@pytest.mark.parametrize(
    ("argv", "grouping"),
    [
        (["tcp or udp and port 53"], "(tcp or udp) and port 53"),
        (["-d", "not tcp or udp and host 10.0.0.1"], "(not tcp or udp) and host 10.0.0.1"),
        (["tcp and port 80 or udp"], "(tcp and port 80) or udp"),
    ],
)
def test_says_how_and_or_are_grouped(
    argv: list[str], grouping: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """libpcap's equal precedence, said on stderr. Mutation: and binding tighter than or."""
    assert run(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == f"read as: {grouping}\n"
    if "-d" not in argv:
        assert captured.out == grouping + "\n"


@pytest.mark.parametrize("expr", ["tcp or udp", "(tcp or udp) and port 53", "tcp port 80 and ip"])
def test_no_grouping_note_without_a_mix(expr: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([expr]) == 0
    assert capsys.readouterr().err == ""


def test_nesting_is_an_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """Observed: 500 added terms ended in a RecursionError traceback."""
    assert run(["ip[0]" + " + 1" * 500 + " = 1"]) == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_dump(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-d", "ip"]) == 0
    assert capsys.readouterr().out == (
        "(000) ldh      [12]\n"
        "(001) jeq      #0x800           jt 2\tjf 3\n"
        "(002) ret      #262144\n"
        "(003) ret      #0\n"
    )


def test_dump_of_vxlan(capsys: pytest.CaptureFixture[str]) -> None:
    """libpcap 1.11's primitive, which libpcap 1.10 (and so tcpdump here) does not compile."""
    assert run(["-d", "vxlan 12345"]) == 0
    out = capsys.readouterr().out
    assert "jeq      #0x12b5" in out  # UDP to port 4789
    assert "jeq      #0x303900" in out  # VNI 12345, above the reserved byte
    assert out.endswith("ret      #262144\n(025) ret      #0\n")


def test_dump_for_a_link_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--linktype", "raw", "-d", "-s", "128", "ip6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("(000) ldb      [0]\n(001) and      #0xf0\n")
    assert "ret      #128" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["tcp", "port", "65536"], "port 65536 outside 0-65535"),
        (["-d", "(tcp"], "unclosed '('"),
        (["--linktype", "raw", "vlan"], "'vlan' needs Ethernet frames"),
        (["--linktype", "token-ring", "ip"], "unknown link type"),
    ],
)
def test_errors_exit_2_with_a_caret(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert words in captured.err
    if "link type" not in words:
        assert captured.err.rstrip().endswith("^")
