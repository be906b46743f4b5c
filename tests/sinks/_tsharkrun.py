"""Running tshark's statistics on capture files, and feeding the same files to our sinks."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from capsvc import Direction, LinkType, Packet
from capsvc.sinks._pcap import PcapWriter
from capsvc.sources.capfile._source import read_capture

T0 = 1_700_000_000 * 10**9


def need_tshark() -> None:
    """Skip the calling test unless tshark is installed."""
    if shutil.which("tshark") is None:
        pytest.skip("needs tshark")


def tshark_tables(path: Path, *tables: str) -> str:
    """tshark's output of ``-q -n -z TABLE ...`` for a file (name resolution off)."""
    args = ["tshark", "-q", "-n", "-r", str(path)]
    for table in tables:
        args += ["-z", table]
    done = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=120)
    return done.stdout


def tshark_on_files(paths: Iterable[Path], *tables: str) -> dict[Path, str]:
    """``tshark_tables`` for many files, three tshark processes at a time (most of a run is
    tshark starting up)."""
    files = list(paths)
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(files, pool.map(lambda p: tshark_tables(p, *tables), files), strict=True))


def write_pcap(path: Path, packets: Iterable[Packet], linktype: LinkType) -> None:
    """Write packets as a nanosecond pcap file."""
    with open(path, "wb") as f:
        writer = PcapWriter(f, 0, linktype, nanosecond=True)
        writer.write_batch(list(packets))
        writer.flush()


def packet(ts_ns: int, frame: bytes) -> Packet:
    return Packet(ts_ns, frame, len(frame), Direction.INBOUND, 0)


def read_file(path: Path) -> tuple[LinkType, list[list[Packet]]]:
    """A capture file's link type (its first interface's for pcapng) and its batches."""
    with read_capture(path) as capture:
        linktype = capture.interfaces[0].linktype if capture.interfaces else capture.linktype
        return LinkType(linktype), [list(batch) for batch in capture]
