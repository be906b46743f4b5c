"""TextWriter over the real-world corpus: one line per packet, never an exception."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from capsvc import Packet
from capsvc.sinks._text import TextWriter
from capsvc.sources.capfile._source import read_capture

Frames = list[tuple[str, int, list[Packet]]]


def read_corpus_file(path: Path) -> list[tuple[int, list[Packet]]]:
    """The packets of a capture file, grouped by their interface's link type, in file order."""
    groups: dict[int, list[Packet]] = {}
    with read_capture(path) as capture:
        linktypes = {iface.ifindex: iface.linktype for iface in capture.interfaces}
        for batch in capture:
            for packet in batch:
                linktype = linktypes.get(packet.ifindex, capture.linktype)
                groups.setdefault(linktype, []).append(packet)
    return list(groups.items())


@pytest.fixture(scope="module")
def corpus_frames(corpus: Path) -> Frames:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert len(files) > 100
    return [(p.name, lt, packets) for p in files for lt, packets in read_corpus_file(p)]


@pytest.mark.parametrize("ascii", [False, True])
@pytest.mark.parametrize("verbose", [False, True])
def test_one_line_per_packet(corpus_frames: Frames, verbose: bool, ascii: bool) -> None:
    total = 0
    unreadable = 0
    for name, linktype, packets in corpus_frames:
        out = io.StringIO()
        writer = TextWriter(out, verbose, ascii, linktype=linktype)
        writer.write_batch(packets)
        lines = out.getvalue().split("\n")
        assert lines.pop() == "", name
        heads = [x for x in lines if not x.startswith("  ")]
        assert len(heads) == len(packets), name
        assert all(h[15:17] == " [" and h[2] == ":" for h in heads), name
        total += len(packets)
        unreadable += sum(" ??? len=" in h for h in heads)
    assert total > 4000
    # The corpus is full of broken frames, but most frames still decode.
    assert unreadable < total // 20


TCPDUMP_LINE = re.compile(r"^\d+\.\d{6} ")
TCPDUMP_PORTS = re.compile(
    r"^\d+\.\d{6} IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): (?:Flags|UDP)"
)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_endpoints_agree_with_tcpdump(corpus: Path, corpus_frames: Frames) -> None:
    """Where tcpdump prints IPv4 TCP/UDP endpoints, our line for that packet has the same."""
    by_file: dict[str, list[Packet]] = {}
    linktype_of: dict[str, int] = {}
    for name, linktype, packets in corpus_frames:
        by_file.setdefault(name, []).extend(packets)
        linktype_of[name] = linktype
    checked = 0
    for name, packets in by_file.items():
        proc = subprocess.run(
            ["tcpdump", "-nS", "-tt", "-r", str(corpus / name)],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        theirs = [x for x in proc.stdout.splitlines() if TCPDUMP_LINE.match(x)]
        if len(theirs) != len(packets):
            continue  # tcpdump split or dropped a line: no alignment to compare on
        out = io.StringIO()
        TextWriter(out, linktype=linktype_of[name]).write_batch(packets)
        ours = out.getvalue().splitlines()
        for their, our in zip(theirs, ours, strict=True):
            found = TCPDUMP_PORTS.match(their)
            if found is None or our[16:26] == "[---  ETH]":
                continue  # tcpdump also decodes MACsec and other ethertypes we name only
            a, p, b, q = found.groups()
            assert f" {a}:{p} > {b}:{q} " in our, (name, their, our)
            checked += 1
    assert checked > 300
