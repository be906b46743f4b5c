"""Reading a pcap file in C (records, filtered by the compiled BPF program) as the Python path does.

A Session reads a PcapFileSource through ``record_batches``: where the C speed-ups are built, a
pcap file's records are parsed and filtered in C and written without a Packet per record. Each
file of the corpus, unfiltered and under several filters, must give the same pcap bytes as the
Python reader with the Python matcher, and tcpdump's count for the same filter. Damaged files
keep the reader's rules: every complete record first, then the CaptureFileError. The decoder's
``next_records`` fed by hand: packets held back by ``next_batch``, an error past whole records
in the same read, the end reached twice.
"""

from __future__ import annotations

import io
import logging
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from test_pcapfile import pcap_file

from capsvc import CaptureFileError, Direction, LinkType, Packet, Session
from capsvc._records import RecordBlock, available
from capsvc.sinks import PcapWriter
from capsvc.sources.capfile._decode import CaptureDecoder
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


# --- the decoder's next_records, fed by hand ----------------------------------------------------

RAW = b"\x45" + b"\0" * 19  # a 20-byte IPv4 header, link type RAW (101)


def records_of(item: list[Packet] | RecordBlock | None) -> list[Packet]:
    """The packets of what ``next_records`` returned (a RecordBlock or a list)."""
    assert item is not None
    return item if isinstance(item, list) else item.packets()


def test_an_error_past_whole_records_names_its_own_length_and_offset() -> None:
    """A corrupt record after a whole one in the same read: the whole record comes first as
    a RecordBlock (its wire total included), then the error names the corrupt record's own
    captured length and its file offset; the counters add up over both reads.

    Mutation guarded: the captured length of the error read from offset 0 of what was fed
    (``parse_records`` 27: that is the whole record's 20), the block's wire total dropped
    (``parse_records`` 36), ``packets =`` for ``+=`` (``next_records`` 29), the offset as
    ``_base - pos`` (``next_records`` 34: 96 for 168)."""
    dec = CaptureDecoder("c.pcap")
    dec.feed(pcap_file([(1, 0, RAW, 20), (2, 0, RAW, 1500), (3, 0, RAW, 20)], linktype=101))
    first = dec.next_records()
    assert isinstance(first, RecordBlock)
    assert (first.count, first.wire, dec.packets, dec.records) == (3, 1540, 3, 3)
    assert dec.next_records() is None
    dec.feed(struct.pack("<IIII", 4, 0, 20, 60) + RAW + struct.pack("<IIII", 5, 0, 300_000, 40))
    second = dec.next_records()
    assert isinstance(second, RecordBlock)
    assert (second.count, second.wire, dec.packets, dec.records) == (1, 60, 4, 4)
    assert second.packets() == [Packet(4_000_000_000, RAW, 60, Direction.UNKNOWN, 0)]
    with pytest.raises(CaptureFileError) as info:
        dec.next_records()
    assert str(info.value) == "c.pcap: record captured length 300000 exceeds 262144 at offset 168"
    assert dec.finished is True


def test_packets_held_back_by_next_batch_come_first_from_next_records() -> None:
    """Packets ``next_batch`` parsed but held back (a batch not full yet) are the first ones
    ``next_records`` returns, in order, before any record read after them.

    Mutation guarded: ``self._pending or self._unmatched`` as ``and`` (``next_records`` 8: the
    C reader would read the later records and the held ones would be lost)."""
    dec = CaptureDecoder("held.pcap", batch_size=4)
    dec.feed(pcap_file([(i, 0, RAW, 20) for i in range(1, 4)], linktype=101))
    assert dec.next_batch() is None  # three packets, held for a batch of four
    dec.feed(b"".join(struct.pack("<IIII", i, 0, 20, 20) + RAW for i in range(4, 7)))
    dec.feed(b"")
    got: list[Packet] = []
    while (item := dec.next_records()) is not None:
        got.extend(records_of(item))
    assert [p.ts_ns // 10**9 for p in got] == [1, 2, 3, 4, 5, 6]
    assert (dec.packets, dec.records, dec.finished) == (6, 6, True)


def test_next_records_after_the_end_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """Once a file cut inside its last record is finished (the warning said so), asking for
    more records gives None again and nothing else: no second warning, no counter moved.

    Mutation guarded: ``self._error is None and not self.finished`` as ``or`` (``next_records``
    17: the finished decoder would parse again and warn again)."""
    data = pcap_file([(1, 0, RAW, 20), (2, 0, RAW, 20)], linktype=101)
    dec = CaptureDecoder("cut.pcap")
    dec.feed(data[:-5])
    dec.feed(b"")
    with caplog.at_level(logging.WARNING, logger="capsvc"):
        assert records_of(dec.next_records()) == [
            Packet(1_000_000_000, RAW, 20, Direction.UNKNOWN, 0)
        ]
        assert dec.next_records() is None
        assert dec.finished is True
        assert dec.next_records() is None
        assert dec.next_records() is None
    assert [r.getMessage() for r in caplog.records] == [
        "cut.pcap: truncated last record at offset 60 (31 bytes); read 1 complete packets"
    ]
    assert (dec.packets, dec.records) == (1, 1)
