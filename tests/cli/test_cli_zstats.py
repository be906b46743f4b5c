"""``-z`` on the command line: tshark's tables from ``capsvc read`` compared with tshark's own on a
generated file and on real files of the corpus, and the option's usage errors."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import CORPUS, ETH_ARP, MAC_A, arp, ether, icmp, ipv4, ipv6, tcp, udp

from capsvc import Direction, LinkType, Packet
from capsvc.sinks import PcapWriter

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
T0 = 1_700_000_000 * 10**9

#: Every table a capsvc -z prints the text of; io,stat intervals compared by their rows.
TABLES = [
    "conv,ip",
    "conv,ipv6",
    "conv,tcp",
    "conv,udp",
    "endpoints,ip",
    "endpoints,ipv6",
    "endpoints,tcp",
    "endpoints,udp",
]
INTERVALS = ["io,stat,1", "io,stat,3", "io,stat,0"]


def capsvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capsvc.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        cwd=ROOT,
    )


def need_tshark() -> None:
    if shutil.which("tshark") is None:
        pytest.skip("needs tshark")


def tshark(path: Path, *tables: str) -> str:
    args = ["tshark", "-q", "-n", "-r", str(path)]
    for table in tables:
        args += ["-z", table]
    return subprocess.run(args, capture_output=True, text=True, timeout=120).stdout


def split_tables(text: str) -> list[str]:
    """The tables of a -z output, in the order printed (each from its first rule)."""
    starts = [m.start() for m in re.finditer(r"^(?:\n=+\n\| IO Statistics|={80}\n\w)", text, re.M)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


ROW = re.compile(r"^\| *([\d.]+) <> *([\d.]+|Dur) *\| *(\d+) \| *(\d+) \|( *\|)?$", re.M)


def io_rows(table: str) -> list[tuple[int, int]]:
    return [(int(m[3]), int(m[4])) for m in ROW.finditer(table)]


def mixed_traffic(path: Path) -> int:
    """A generated capture over 20 seconds: IPv4 and IPv6 TCP and UDP conversations of many
    sizes, ports either way round, ICMP, ARP, a VLAN tag; written as pcap. Returns its
    packet count."""
    rng = random.Random(15)
    flows: list[list[bytes]] = []
    for i in range(30):
        a, b = f"192.168.{i % 4}.{10 + i}", f"10.1.{i % 3}.{1 + i % 5}"
        sport, dport = 20000 + 13 * i, (80, 443, 53, 5353, 123)[i % 5]
        size = rng.randrange(0, 1200)
        l4 = tcp if i % 2 else udp
        flow = []
        for k in range(2 + (i * 7) % 23):
            if k % 3 == 1:
                flow.append(ether(ipv4(b, a, l4(dport, sport, b"r" * 20))))
            else:
                flow.append(ether(ipv4(a, b, l4(sport, dport, b"s" * size))))
        flows.append(flow)
    for i in range(6):
        src, dst = f"fd00::{i + 1}", f"2001:db8::{i % 2 + 1}"
        flows.append([ether(ipv6(src, dst, tcp(40000 + i, 22, b"6" * (i * 90))))] * (i + 2))
        flows.append([ether(ipv6(dst, src, udp(547, 546 + i, b"u" * 10)))] * 2)
    flows.append([ether(ipv4("10.0.0.1", "10.0.0.2", icmp()), vlans=(7,))] * 5)
    flows.append(
        [ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP)] * 2
    )
    frames = []
    while any(flows):
        frames.append(rng.choice([f for f in flows if f]).pop(0))
    step = 20 * 10**9 // len(frames)
    packets = [
        Packet(T0 + i * step + rng.randrange(step), f, len(f), Direction.INBOUND, 0)
        for i, f in enumerate(frames)
    ]
    with open(path, "wb") as f:
        writer = PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=True)
        writer.write_batch(packets)
        writer.flush()
    return len(packets)


def compare_with_tshark(path: Path) -> None:
    """Every table capsvc read -z prints is tshark's (text for conv/endpoints, rows of frames
    and bytes for io,stat, whose misprints tshark 4.0 has its own of), and in command-line
    order."""
    zs = [arg for table in [*TABLES, *INTERVALS] for arg in ("-z", table)]
    done = capsvc("read", "-r", str(path), "-w", "/dev/null", *zs)
    assert done.returncode == 0, done.stderr
    ours = split_tables(done.stdout)
    assert len(ours) == len(TABLES) + len(INTERVALS)
    theirs = tshark(path, *TABLES)
    for name, table in zip(TABLES, ours, strict=False):
        assert table in theirs, (path.name, name)
    for name, table in zip(INTERVALS, ours[len(TABLES) :], strict=True):
        their = tshark(path, name)
        if table != their:  # a tshark 4.0 misprint: the rows still agree
            assert io_rows(table) == io_rows(their), (path.name, name)


def test_read_tables_equal_tsharks_on_a_generated_file(tmp_path: Path) -> None:
    need_tshark()
    path = tmp_path / "mixed.pcap"
    count = mixed_traffic(path)
    compare_with_tshark(path)
    done = capsvc("read", "-r", str(path), "-w", "/dev/null", "-z", "io,stat,5", "-z", "conv,tcp")
    tables = split_tables(done.stdout)
    assert "IO Statistics" in tables[0] and "TCP Conversations" in tables[1]
    rows = io_rows(tables[0])
    assert len(rows) == 4 and sum(frames for frames, _ in rows) == count
    assert tables[0] == tshark(path, "io,stat,5")
    assert tables[1].count("<->") == 15 + 6


#: Real files with the most TCP and UDP conversations of the corpus, IPv4 and IPv6.
CORPUS_FILES = [
    "resp_1_benchmark.pcap",
    "eapon1.pcap",
    "ntp-control.pcap",
    "ikev2four.pcap",
    "bgp-4byte-asn.pcap",
    "bfd-multihop.pcap",
    "of10_s4810.pcap",
    "dhcp-rfc4388.pcap",
    "ssh.pcap",
    "mptcp-v1.pcap",
    "sflow-print-v6.pcap",
    "quic_retry.pcap",
]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_read_tables_equal_tsharks_on_corpus_files(name: str) -> None:
    need_tshark()
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    compare_with_tshark(path)


def test_tables_go_to_standard_error_when_the_capture_goes_to_standard_output(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.pcap"
    count = mixed_traffic(path)
    done = subprocess.run(
        [sys.executable, "-m", "capsvc.cli", "read", "-r", str(path), "-w", "-", "-z", "conv,ip"],
        capture_output=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == path.read_bytes()  # the same pcap, nothing after it
    assert b"IPv4 Conversations" in done.stderr and f"{count} packets read".encode() in done.stderr


def test_a_capture_longer_than_the_series_shows_its_last_day() -> None:
    """A file spanning eleven days: the io,stat rows are tshark's last 86400, and a note says
    the table is not the whole capture."""
    need_tshark()
    path = CORPUS / "dhcpv4v6-rfc5970-rfc8572.pcap"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    done = capsvc("read", "-r", str(path), "-w", "/dev/null", "-z", "io,stat,1")
    assert "longer than the 86400 seconds kept" in done.stderr
    ours, theirs = io_rows(done.stdout), io_rows(tshark(path, "io,stat,1"))
    assert len(ours) == 86400 < len(theirs) and ours == theirs[-86400:]
    assert sum(frames for frames, _ in ours) > 0


def test_tables_count_only_what_the_filter_and_count_let_through(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    mixed_traffic(path)
    done = capsvc(
        "read", "-r", str(path), "-w", "/dev/null", "-c", "10", "-z", "conv,ip", "ip", "and", "tcp"
    )
    assert done.returncode == 0, done.stderr
    frames = [int(line.split()[-5]) for line in done.stdout.splitlines() if "<->" in line]
    assert sum(frames) == 10


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("conv,eth", "unknown statistics table 'conv,eth'"),
        ("io,stat,0.5", "the interval must be a whole number of seconds"),
        ("gzip", "unknown statistics table 'gzip'"),
    ],
)
def test_read_refuses_what_is_not_a_table(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "mixed.pcap"
    mixed_traffic(path)
    done = capsvc("read", "-r", str(path), "-z", value)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-z", "gzip"], "as a postrotate command it needs -G or -C"),
        (["-w", "x.pcap", "-G", "5", "-z", "gzip", "-z", "bzip2"], "one postrotate command only"),
        (["-z", "io,stat,x"], "the interval must be a whole number of seconds"),
    ],
)
def test_capture_z_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = capsvc("capture", "-i", "lo", *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_help_tells_both_meanings_of_z() -> None:
    done = capsvc("capture", "--help")
    text = " ".join(done.stdout.split())
    assert "postrotate command" in text and "conv,tcp" in text and "--ring" in text
