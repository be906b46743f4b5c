"""Reading a pcap file in C (records, filtered by the compiled BPF program) as the Python path does.

A Session reads a PcapFileSource through ``record_batches``: where the C speed-ups are built, a
pcap file's records are parsed and filtered in C and written without a Packet per record. Each
file of the corpus, unfiltered and under several filters, must give the same pcap bytes as the
Python reader with the Python matcher, and tcpdump's count for the same filter. Damaged files
keep the reader's rules: every complete record first, then the CaptureFileError.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from capsvc import CaptureFileError, LinkType, Session
from capsvc._records import available
from capsvc.sinks import PcapWriter
from capsvc.sources.capfile._source import PcapFileSource

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "pcaps"
FILTERS = [None, "tcp", "udp port 53", "ip6 or arp", "tcp[tcpflags] & tcp-syn != 0", "len > 100"]

pytestmark = pytest.mark.skipif(not available(), reason="capsvc._speedups is not built")


def pcap_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"capture corpus not found at {CORPUS}")
    files = []
    for path in sorted(CORPUS.glob("*.pcap")):
        with path.open("rb") as f:
            if f.read(4) in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1"):
                files.append(path)
    return files


async def written(path: Path, expr: str | None, *, records: bool) -> tuple[bytes, int]:
    """The pcap bytes a Session writes from the file, reading records or Packets."""
    source = PcapFileSource(path, filter=expr)
    if not records:
        source.record_batches = None  # type: ignore[method-assign,assignment]
    out = io.BytesIO()
    session = Session(
        linktype=source.linktype, source=source, sinks=[PcapWriter(out, linktype=source.linktype)]
    )
    await session.start()
    await session.wait_source()
    stats = await session.stop()
    return out.getvalue(), stats.packets


def tcpdump_count(path: Path, expr: str | None) -> int:
    done = subprocess.run(
        ["tcpdump", "-n", "--count", "-r", str(path), *([expr] if expr else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[0])


async def test_every_pcap_file_reads_the_same_in_c_as_in_python() -> None:
    """Mutation guarded: a record header read in the wrong byte order, a snaplen cut missed."""
    files = pcap_files()
    assert len(files) > 100
    for path in files:
        for expr in FILTERS[:2]:
            try:
                fast = await written(path, expr, records=True)
            except Exception as exc:  # the same error both ways (a link type without tcp)
                with pytest.raises(type(exc)):
                    await written(path, expr, records=False)
                continue
            assert fast == await written(path, expr, records=False), (path.name, expr)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
@pytest.mark.parametrize("expr", FILTERS)
async def test_filtered_counts_equal_tcpdumps(expr: str | None) -> None:
    files = [p for p in pcap_files() if p.stat().st_size < 2_000_000][:60]
    for path in files:
        source = PcapFileSource(path)
        if source.linktype not in (LinkType.ETHERNET, LinkType.LINUX_SLL, LinkType.RAW):
            continue
        _data, count = await written(path, expr, records=True)
        assert count == tcpdump_count(path, expr), (path.name, expr)


async def test_a_corrupt_record_comes_after_every_whole_one(tmp_path: Path) -> None:
    files = pcap_files()
    good = next(p for p in files if 20_000 < p.stat().st_size < 200_000)
    data = bytearray(good.read_bytes())
    whole, count = await written(good, None, records=True)
    # Break the 4th record's captured length (it claims far more than any snaplen).
    pos = 24
    for _ in range(3):
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    data[pos + 8 : pos + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(bytes(data))
    out = io.BytesIO()
    source = PcapFileSource(broken)
    session = Session(linktype=source.linktype, source=source, sinks=[PcapWriter(out)])
    await session.start()
    await session.wait_source()
    await session.stop()
    assert isinstance(session.source_error, CaptureFileError)
    assert "exceeds" in str(session.source_error) and "broken.pcap" in str(session.source_error)
    assert out.getvalue()[24:] == whole[24 : len(out.getvalue())]
    assert session.stats().packets == 3 < count
