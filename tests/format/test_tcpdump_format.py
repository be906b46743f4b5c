"""capsvc's tcpdump format against tcpdump itself, flag by flag, on everyday traffic.

Each flag's output for whole capture files (_traffic.py: Ethernet, Linux cooked v2, BSD
loopback) must be tcpdump's to the byte; the time zone is UTC for both.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from _corpora import packets_of, tcpdump_lines
from _traffic import cooked_file, ethernet_file, loopback_file

from capsvc.decode._tcpseq import TcpSeqTable
from capsvc.format._tcpdump import TcpdumpFormatter

#: tcpdump flags -> TcpdumpFormatter keywords.
FLAGS: dict[str, dict[str, object]] = {
    "": {},
    "-v": {"verbose": 1},
    "-vv": {"verbose": 2},
    "-e": {"link": True},
    "-x": {"hex": 1},
    "-xx": {"hex": 2},
    "-X": {"hex_ascii": 1},
    "-XX": {"hex_ascii": 2},
    "-A": {"ascii": True},
    "-t": {"stamp": 1},
    "-tt": {"stamp": 2},
    "-ttt": {"stamp": 3},
    "-tttt": {"stamp": 4},
    "-ttttt": {"stamp": 5},
    "-q": {"quiet": True},
    "-S": {"absolute": True},
    "-#": {"number": True},
    "-evX": {"link": True, "verbose": 1, "hex_ascii": 1},
    "-eqS": {"link": True, "quiet": True, "absolute": True},
}
MAKERS = {"ethernet": ethernet_file, "cooked": cooked_file, "loopback": loopback_file}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("traffic")
    return {name: make(folder) for name, make in MAKERS.items()}


def ours(path: Path, **options: object) -> list[str]:
    interfaces = dict(socket.if_nameindex())
    formatters: dict[int, TcpdumpFormatter] = {}
    lines: list[str] = []
    for linktype, p in packets_of(path):
        formatter = formatters.setdefault(
            linktype,
            TcpdumpFormatter(linktype, utc=True, interfaces=interfaces, **options),  # type: ignore[arg-type]
        )
        lines.extend(formatter.format(p[0], p[1], p[2], p[3]).split("\n"))
    return lines


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("flag", FLAGS)
def test_flag_prints_what_tcpdump_prints(files: dict[str, Path], kind: str, flag: str) -> None:
    path = files[kind]
    theirs = tcpdump_lines(path, *([flag] if flag else []))
    mine = ours(path, **FLAGS[flag])
    assert len(theirs) > 1
    assert mine == theirs


def test_everyday_traffic_covers_the_listed_protocols(files: dict[str, Path]) -> None:
    text = "\n".join(tcpdump_lines(files["ethernet"]))
    for needle in (": HTTP: GET /index.html HTTP/1.1", "2/0/0 A 93.184.216.34, A 93.184.216.35",
                   "NXDomain",
                   "ICMP 10.0.0.2 udp port 9999 unreachable", "ICMP6, neighbor solicitation",
                   "ARP, Request who-has", "[|http]", "[|domain]", "ip-proto-253 24",
                   "sack 1 {101:201}", "ethertype Unknown (0x88b5)"):  # fmt: skip
        assert needle in text, needle


def test_cooked_v2_names_the_interface_as_tcpdump(files: dict[str, Path]) -> None:
    lines = ours(files["cooked"])
    assert lines[0].split(" ", 1)[1].startswith("lo    In  IP 10.0.0.1.40000 > 10.0.0.2.9999")
    assert " ?     In  IP " in lines[2]


def test_relative_sequence_numbers_restart_after_the_table_forgets(files: dict[str, Path]) -> None:
    table = TcpSeqTable(max_flows=1)
    a, b = b"\x0a\0\0\x01", b"\x0a\0\0\x02"
    assert table.relative(a, 40000, b, 80, 100, 500, True)[:2] == (100, 500)
    assert table.relative(a, 40000, b, 80, 110, 501, False)[:2] == (10, 2)
    assert table.relative(a, 40001, b, 80, 7, 9, False)[:2] == (7, 9)  # evicts the first
    assert len(table) == 1
    assert table.relative(a, 40000, b, 80, 120, 502, False)[:2] == (120, 502)  # starts over


def test_reverse_direction_uses_the_other_base() -> None:
    table = TcpSeqTable()
    a, b = b"\x0a\0\0\x01", b"\x0a\0\0\x02"
    table.relative(b, 80, a, 40000, 3000, 1001, True)  # the SYN-ACK opens the entry
    assert table.relative(a, 40000, b, 80, 1001, 3001, False)[:2] == (1, 1)
    assert table.relative(b, 80, a, 40000, 3001, 1101, False)[:2] == (1, 101)


def test_never_raises_on_any_prefix_of_a_frame(files: dict[str, Path]) -> None:
    formatter = TcpdumpFormatter(1, verbose=2, link=True, hex_ascii=1)
    for _lt, p in packets_of(files["ethernet"]):
        for cut in range(0, len(p[1]), 3):
            assert isinstance(formatter.format(p[0], p[1][:cut], p[2], 0), str)
