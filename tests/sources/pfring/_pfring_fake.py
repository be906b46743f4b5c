"""The stand-in libpfring's test data: the frames it serves, pcap files, and its call log."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from _helpers import ether, ipv4, tcp, udp

SOURCE = Path(__file__).with_name("fake_pfring.c")
FAKE_ENV = (
    "CAPSVC_FAKE_PFRING_LOG",
    "CAPSVC_FAKE_PFRING_PCAP",
    "CAPSVC_FAKE_PFRING_NO_FD",
    "CAPSVC_FAKE_PFRING_TIMESTAMP_NS",
    "CAPSVC_FAKE_PFRING_IFINDEX",
    "CAPSVC_FAKE_PFRING_DROPS",
    "CAPSVC_PFRING_LIBRARY",
)

#: Ten Ethernet frames, UDP at even and TCP at odd positions; frame i carries 10*i payload bytes.
FRAMES = [
    ether(ipv4("10.0.0.1", "10.0.0.2", udp(5000 + i, 53, b"u" * (10 * i))))
    if i % 2 == 0
    else ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000 + i, 443, b"t" * (10 * i), flags="PA")))
    for i in range(10)
]
#: Capture time of frame i (nanoseconds; sub-microsecond digits set on purpose).
BASE_NS = 1_700_000_000_123_456_789


def ts_of(i: int) -> int:
    return BASE_NS + i * 1_000_001_001


def write_pcap(path: Path, frames: list[bytes], *, linktype: int = 1, wire_extra: int = 0) -> Path:
    """A nanosecond pcap of ``frames`` (each ``wire_extra`` bytes longer on the wire)."""
    parts = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype)]
    for i, frame in enumerate(frames):
        ts = ts_of(i)
        parts.append(
            struct.pack("<IIII", ts // 10**9, ts % 10**9, len(frame), len(frame) + wire_extra)
        )
        parts.append(frame)
    path.write_bytes(b"".join(parts))
    return path


@dataclass
class FakeRing:
    """The stand-in library and the files of one test."""

    library: Path
    pcap: Path
    log: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self) -> list[tuple[str, dict[str, str], str]]:
        """The logged calls: (function, {argument: value}, result text)."""
        out: list[tuple[str, dict[str, str], str]] = []
        if not self.log.exists():
            return out
        for line in self.log.read_text().splitlines():
            head, _, result = line.partition(" -> ")
            name, *args = head.split(" ")
            out.append((name, dict(a.split("=", 1) for a in args if "=" in a), result))
        return out

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls()]

    def set(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)
