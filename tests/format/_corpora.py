"""The two capture corpora beside the project, read as (name, link type, packets) per file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from capsvc import Packet
from capsvc.sources.capfile._source import read_capture

ROOT = Path(__file__).resolve().parents[3] / "shared"
#: ../shared/pcaps (Ethernet, cooked, raw IP, loopback) and ../shared/pcaps-linktypes.
CORPORA = (ROOT / "pcaps", ROOT / "pcaps-linktypes")
LINKTYPES = ROOT / "pcaps-linktypes"


def corpus_files(folder: Path) -> list[Path]:
    """The capture files of a corpus folder; skips the test when it is absent."""
    if not folder.is_dir():
        pytest.skip(f"capture corpus not found at {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix in (".pcap", ".pcapng"))


def packets_of(path: Path) -> list[tuple[int, Packet]]:
    """Every packet of a file with the link type of its interface, in file order."""
    out: list[tuple[int, Packet]] = []
    with read_capture(path) as capture:
        linktypes = {iface.ifindex: iface.linktype for iface in capture.interfaces}
        for batch in capture:
            for packet in batch:
                out.append((linktypes.get(packet.ifindex, capture.linktype), packet))
    return out


def tcpdump_lines(path: Path, *flags: str) -> list[str]:
    """What ``tcpdump -n FLAGS -r path`` prints (UTC), one entry per packet line."""
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is needed (apt-get install tcpdump)")
    proc = subprocess.run(
        ["tcpdump", "-n", *flags, "-r", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        env={"TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    return proc.stdout.splitlines()


def tcpdump_count(path: Path) -> int:
    """``tcpdump -n --count -r path``'s packet count."""
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is needed (apt-get install tcpdump)")
    proc = subprocess.run(
        ["tcpdump", "-n", "--count", "-r", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"^(\d+) packets?$", proc.stdout, re.M)
    assert found is not None, (path, proc.stdout, proc.stderr)
    return int(found.group(1))
