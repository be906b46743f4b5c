"""``capsvc read`` over every file of both capture corpora, judged by tcpdump; and over a
pcapng file whose interfaces have different link types, judged by tshark.

For each file of ../shared/pcaps and ../shared/pcaps-linktypes: ``capsvc read -r F -w OUT``
(pcapng for a pcapng input) succeeds, its summary counts what ``tcpdump -n --count -r F``
counts, and tcpdump prints OUT exactly as it prints F (every packet, byte for byte with
``-xx``, the timestamps to the nanosecond, the same link type). The jobs run in this process
through ``capsvc.cli.main``, the entry point the ``capsvc`` command calls, so the 200 files take
seconds, not minutes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "format"))
from _corpora import CORPORA, corpus_files, packets_of, tcpdump_count
from _helpers import ETH_ARP, MAC_A, MAC_B, arp, ether, icmp, ipv4, udp

from capsvc import LinkType
from capsvc.cli import main
from capsvc.sinks import PcapWriter

#: Files whose copy tcpdump cannot print the same, and why; their packets are compared as
#: capsvc's reader sees them instead.
REPAIRED = {
    # A record says it had 0 bytes on the wire but 4 were captured; the copy says 4 (a
    # packet is never shorter on the wire than captured), which tcpdump prints as a packet
    # where it printed "[Invalid header: len==0]" for the original.
    "pim_header_asan-2.pcap",
}


def _tcpdump(path: Path) -> tuple[list[str], list[str]]:
    """tcpdump's packet lines of ``path`` (hex included, nanosecond times) and link types."""
    proc = subprocess.run(
        ["tcpdump", "-n", "-tt", "-xx", "--time-stamp-precision=nano", "-r", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        env={"TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    return proc.stdout.splitlines(), re.findall(r"link-type (\S+)", proc.stderr)


@pytest.mark.parametrize("folder", CORPORA, ids=lambda p: p.name)
def test_read_counts_as_tcpdump_and_write_copies_every_packet(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = corpus_files(folder)
    assert len(files) > 20
    for path in files:
        out = tmp_path / path.name
        pcapng = ["--pcapng"] if path.suffix == ".pcapng" else []  # its interfaces are kept
        status = main(["read", "-r", str(path), *pcapng, "-w", str(out)])
        err = capsys.readouterr().err
        assert status == 0, (path.name, err)
        assert "Traceback" not in err, path.name
        expected = tcpdump_count(path)
        summary = err.strip().splitlines()[-1]
        packets = f"{expected} packet{'' if expected == 1 else 's'}"
        assert summary.startswith(f"{packets} read, {expected} matched, "), path.name
        assert f", {expected} written, 0 dropped" in summary, path.name
        assert tcpdump_count(out) == expected, path.name
        if path.name in REPAIRED:
            theirs = [
                (lt, p.ts_ns, p.data, max(p.wire_len, len(p.data))) for lt, p in packets_of(path)
            ]
            ours = [(lt, p.ts_ns, p.data, p.wire_len) for lt, p in packets_of(out)]
            assert ours == theirs, path.name
            continue
        assert _tcpdump(out) == _tcpdump(path), path.name


def _mixed_pcapng(tmp_path: Path) -> Path:
    """A pcapng file of two interfaces, Ethernet (2 ARP, 1 UDP) and raw IP (2 UDP, 1 ICMP),
    merged by Wireshark's mergecap from two pcap files written by capsvc."""
    if shutil.which("mergecap") is None:
        pytest.skip("needs mergecap (apt-get install wireshark-common)")
    eth, raw = tmp_path / "eth.pcap", tmp_path / "raw.pcap"
    frames = {
        (eth, LinkType.ETHERNET): [
            ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP),
            ether(arp(2, MAC_B, "10.0.0.2", MAC_A, "10.0.0.1"), ethertype=ETH_ARP),
            ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000, 53))),
        ],
        (raw, LinkType.RAW): [
            ipv4("10.9.0.1", "10.9.0.2", udp(2000, 53)),
            ipv4("10.9.0.1", "10.9.0.2", icmp()),
            ipv4("10.9.0.2", "10.9.0.1", udp(53, 2000)),
        ],
    }
    start = 1_700_000_000_000_000_000
    for (path, linktype), packets in frames.items():  # the raw IP ones a second later
        with path.open("wb") as f:
            writer = PcapWriter(f, 0, linktype, nanosecond=True)
            for i, data in enumerate(packets):
                writer.write_packet(start + (linktype == LinkType.RAW) * 10**9 + i * 1001, data)
            writer.close()
    merged = tmp_path / "mixed.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(merged), str(eth), str(raw)], check=True)
    return merged


def _tshark_fields(path: Path) -> list[str]:
    """Per packet: its link type (as tshark names it), time and length, in file order."""
    if shutil.which("tshark") is None:
        pytest.skip("needs tshark")
    fields = ["frame.encap_type", "frame.time_epoch", "frame.len", "frame.cap_len"]
    proc = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", *(a for f in fields for a in ("-e", f))],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.splitlines()


def test_several_link_types_are_kept_in_pcapng_and_refused_for_pcap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pcapng file whose interfaces differ in link type: the text decodes each packet as its
    interface's link type, a pcapng copy keeps every packet with its link type and time (as
    tshark reads both), a filter is compiled for each link type, and a pcap copy, which can
    hold one link type, is refused up front naming both."""
    mixed = _mixed_pcapng(tmp_path)
    assert main(["read", "-r", str(mixed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert [line.split("] ", 1)[1].split(",")[0] for line in lines[:2]] == ["ARP"] * 2
    assert "10.9.0.1:2000 > 10.9.0.2:53" in lines[3] and "ICMP" in lines[4]

    copy = tmp_path / "copy.pcapng"
    assert main(["read", "-r", str(mixed), "--pcapng", "-w", str(copy)]) == 0
    capsys.readouterr()
    assert _tshark_fields(copy) == _tshark_fields(mixed)
    assert {line.split("\t")[0] for line in _tshark_fields(copy)} == {"1", "7"}

    udp_only = tmp_path / "udp.pcapng"
    assert main(["read", "-r", str(mixed), "--pcapng", "-w", str(udp_only), "udp"]) == 0
    assert capsys.readouterr().err.startswith("6 packets read, 3 matched, 3 written")
    assert [f.split("\t")[0] for f in _tshark_fields(udp_only)] == ["1", "7", "7"]

    refused = tmp_path / "copy.pcap"
    assert main(["read", "-r", str(mixed), "-w", str(refused)]) == 2
    err = capsys.readouterr().err
    assert "several link types (ETHERNET, RAW)" in err and "--pcapng" in err
    assert "Traceback" not in err


def test_a_read_matching_nothing_writes_a_valid_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``capsvc read -r F -w OUT 'port 9'`` matching nothing writes the 24-byte header, which
    tcpdump reads as a capture of no packet (a 0-byte file it refuses as truncated)."""
    out = tmp_path / "none.pcap"
    sample = Path(__file__).resolve().parents[2] / "config" / "sample.pcap"
    assert main(["read", "-r", str(sample), "-w", str(out), "port 9"]) == 0
    assert capsys.readouterr().err.endswith(" 0 matched, 0 written, 0 dropped\n")
    assert out.stat().st_size == 24
    done = subprocess.run(["tcpdump", "-nr", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stderr
