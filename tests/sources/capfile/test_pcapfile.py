"""The capture-file reader: pcap/pcapng variants, real tool output, corruption, the corpus."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from _helpers import CORPUS, ether, icmp, ipv4, ipv6, tcp, udp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsvc import CaptureFileError, Direction, LinkType, Packet
from capsvc.filter import parse
from capsvc.sinks._pcap import PcapWriter
from capsvc.sinks._pcapng import PcapNgWriter
from capsvc.sources._base import Source, SourceStats
from capsvc.sources.capfile._decode import CaptureDecoder
from capsvc.sources.capfile._source import PcapFileSource, read_capture

TS = 1_700_000_000_123_456_789
NEEDS_TCPDUMP = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
NEEDS_EDITCAP = pytest.mark.skipif(shutil.which("editcap") is None, reason="needs editcap")

# --- builders of files by hand ----------------------------------------------------------------


def frames() -> list[bytes]:
    return [
        ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, b"GET / HTTP/1.1\r\n\r\n", flags="PA"))),
        ether(ipv4("10.0.0.2", "10.0.0.1", udp(53, 41234, b"\0" * 31))),
        ether(ipv4("10.0.0.1", "10.0.0.2", icmp(payload=b"x" * 57))),
        ether(ipv6("fd00::1", "fd00::2", tcp(1234, 443, b"y" * 1201, flags="A"))),
    ]


def pcap_file(
    records: list[tuple[int, int, bytes, int]],
    *,
    order: str = "<",
    nano: bool = False,
    snaplen: int = 65535,
    linktype: int = 1,
) -> bytes:
    """A pcap file; records are (ts_sec, ts_frac, data, orig_len)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for sec, frac, data, orig in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def shb(order: str = "<") -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, snaplen: int = 0, *, name: str = "", tsresol: int = -1) -> bytes:
    opts = b""
    if name:
        opts += option(order, 2, name.encode())
    if tsresol >= 0:
        opts += option(order, 9, bytes([tsresol]))
    if opts:
        opts += option(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def epb(order: str, if_id: int, ts: int, data: bytes, orig: int = -1, flags: int = -1) -> bytes:
    body = struct.pack(
        order + "IIIII",
        if_id,
        ts >> 32,
        ts & 0xFFFFFFFF,
        len(data),
        len(data) if orig < 0 else orig,
    )
    body += data + b"\0" * (-len(data) % 4)
    if flags >= 0:
        body += option(order, 2, struct.pack(order + "I", flags)) + option(order, 0, b"")
    return block(order, 6, body)


def spb(order: str, data: bytes, orig: int = -1) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data) if orig < 0 else orig) + data)


def read_all(source: str | Path | io.BytesIO, **kw: int) -> list[Packet]:
    with read_capture(source, **kw) as cap:
        return [p for batch in cap for p in batch]


def write(tmp_path: Path, data: bytes, name: str = "f.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- pcap -------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_both_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    datas = frames()
    frac = 123_456_789 if nano else 123_456
    recs = [(1_700_000_000 + i, frac, d, len(d) + i) for i, d in enumerate(datas)]
    path = write(tmp_path, pcap_file(recs, order=order, nano=nano, snaplen=9000))
    with read_capture(path) as cap:
        assert (cap.linktype, cap.snaplen, cap.nanosecond) == (LinkType.ETHERNET, 9000, nano)
        got = [p for batch in cap for p in batch]
    mult = 1 if nano else 1000
    assert got == [
        Packet((1_700_000_000 + i) * 10**9 + frac * mult, d, len(d) + i, Direction.UNKNOWN, 0)
        for i, d in enumerate(datas)
    ]


@pytest.mark.parametrize("nano", [False, True])
def test_round_trip_pcap_writer(tmp_path: Path, nano: bool) -> None:
    packets = [
        Packet(TS + i * 999_999_999, d, len(d) + 7, Direction.UNKNOWN, 0)
        for i, d in enumerate(frames() * 600)
    ]
    path = tmp_path / "rt.pcap"
    with path.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=nano).write_batch(packets)
    got = read_all(path, chunk_size=4096, batch_size=100)
    assert len(got) == len(packets)
    for g, p in zip(got, packets, strict=True):
        assert g.ts_ns == (p.ts_ns if nano else p.ts_ns // 1000 * 1000)
        assert (g.data, g.wire_len) == (p.data, p.wire_len)


def test_batches_are_bounded_by_batch_size(tmp_path: Path) -> None:
    recs = [(1, 0, b"\x45" + b"\0" * 19, 20)] * 2500
    path = write(tmp_path, pcap_file(recs, linktype=101))
    with read_capture(path, batch_size=1024) as cap:
        sizes = [len(b) for b in cap]
    assert sizes == [1024, 1024, 452]


def test_record_beyond_header_snaplen_is_cut_like_libpcap(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_file([(1, 2, bytes(300), 1000)], snaplen=100, linktype=101))
    (p,) = read_all(path)
    assert (len(p.data), p.wire_len) == (100, 1000)


@NEEDS_TCPDUMP
@pytest.mark.parametrize("precision", ["micro", "nano"])
def test_files_written_by_tcpdump(tmp_path: Path, precision: str) -> None:
    src = tmp_path / "src.pcap"
    packets = [
        Packet(TS + i * 1_000_003, d, len(d), Direction.UNKNOWN, 0) for i, d in enumerate(frames())
    ]
    with src.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=True).write_batch(packets)
    out = tmp_path / "tcpdump.pcap"
    subprocess.run(
        ["tcpdump", "-r", str(src), "--time-stamp-precision", precision, "-w", str(out)],
        check=True,
        capture_output=True,
    )
    with read_capture(out) as cap:
        assert cap.nanosecond == (precision == "nano")
        got = [p for batch in cap for p in batch]
    step = 1 if precision == "nano" else 1000
    assert [(g.ts_ns, g.data, g.wire_len) for g in got] == [
        (p.ts_ns // step * step, p.data, p.wire_len) for p in packets
    ]


# --- pcapng -----------------------------------------------------------------------------------


def test_round_trip_pcapng_writer(tmp_path: Path) -> None:
    dirs = [Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN]
    packets = [
        Packet(TS + i, d, len(d) + 3, dirs[i % 3], 0 if i % 2 else 987654)
        for i, d in enumerate(frames() * 10)
    ]
    path = tmp_path / "rt.pcapng"
    with path.open("wb") as f:
        PcapNgWriter(f, 0, LinkType.ETHERNET, interface_name="veth0").write_batch(packets)
    with read_capture(path) as cap:
        assert (cap.linktype, cap.snaplen, cap.nanosecond) == (LinkType.ETHERNET, 262144, True)
        assert [i.name for i in cap.interfaces] == ["veth0", "veth0"]
        got = [p for batch in cap for p in batch]
    # Interfaces are numbered in IDB order from 1: ifindex 987654 came first.
    assert got == [p._replace(ifindex=2 if p.ifindex == 0 else 1) for p in packets]


@NEEDS_EDITCAP
def test_pcapng_from_editcap(tmp_path: Path) -> None:
    src = tmp_path / "src.pcap"
    packets = [
        Packet(TS + i * 7_777_777, d, len(d), Direction.UNKNOWN, 0) for i, d in enumerate(frames())
    ]
    with src.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=True).write_batch(packets)
    out = tmp_path / "e.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(src), str(out)], check=True, capture_output=True)
    got = read_all(out)
    assert [(g.ts_ns, g.data, g.wire_len, g.ifindex) for g in got] == [
        (p.ts_ns, p.data, p.wire_len, 1) for p in packets
    ]


def test_pcapng_sections_interfaces_and_skipped_blocks(tmp_path: Path) -> None:
    a, b, c = b"\x45" + b"\1" * 19, b"\x60" + b"\2" * 39, b"\x45" + b"\3" * 23
    data = (
        shb("<")
        + idb("<", 101, 0, name="tun0")  # default resolution: microseconds
        + idb("<", 1, 1500, name="eth1", tsresol=9)
        + block("<", 4, b"\0" * 8)  # name resolution block
        + epb("<", 0, 1_700_000_000_000_001, a, flags=1)
        + epb("<", 1, TS, b, orig=90, flags=2)
        + block("<", 5, struct.pack("<III", 0, 0, 0))  # interface statistics block
        + block("<", 0x40000BAD, b"custom data")
        + shb(">")  # new section, big-endian, interfaces start over
        + idb(">", 101, 64, name="wg0", tsresol=0x80 | 10)  # 2**-10 s units
        + epb(">", 0, 3 * 1024 + 512, c, flags=3)  # flags 3 is no valid direction
        + spb(">", c + b"\0" * 100, orig=200)  # cut to the IDB snaplen 64
    )
    path = write(tmp_path, data, "multi.pcapng")
    with read_capture(path) as cap:
        assert cap.linktype == LinkType.RAW  # the first IDB's
        assert cap.snaplen == 262144  # largest IDB snaplen (0 -> 262144)
        assert [(i.ifindex, i.name, i.linktype) for i in cap.interfaces] == [
            (1, "tun0", 101),
            (2, "eth1", 1),
            (3, "wg0", 101),
        ]
        got = [p for batch in cap for p in batch]
    assert got == [
        Packet(1_700_000_000_000_001_000, a, 20, Direction.INBOUND, 1),
        Packet(TS, b, 90, Direction.OUTBOUND, 2),
        Packet(3_500_000_000, c, 24, Direction.UNKNOWN, 3),
        Packet(0, (c + b"\0" * 100)[:64], 200, Direction.UNKNOWN, 3),
    ]


@pytest.mark.parametrize(
    ("tsresol", "ts", "expected_ns"),
    [
        (6, 1_700_000_000_123_456, 1_700_000_000_123_456_000),
        (3, 1_700_000_000_123, 1_700_000_000_123_000_000),
        (9, TS, TS),
        (12, 1_500_000_000_000, 1_500_000_000),  # picoseconds: divided down
        (0x80 | 10, 1024 * 5 + 1, 5_000_976_562),  # 2**-10 s: floor(5.0009765625 s)
        (0x80 | 20, 1 << 20, 1_000_000_000),
    ],
)
def test_if_tsresol(tmp_path: Path, tsresol: int, ts: int, expected_ns: int) -> None:
    data = shb() + idb("<", 101, tsresol=tsresol) + epb("<", 0, ts, b"\x45" + b"\0" * 19)
    (p,) = read_all(write(tmp_path, data, "r.pcapng"))
    assert p.ts_ns == expected_ns


def test_if_tsoffset_adds_seconds(tmp_path: Path) -> None:
    opts = option("<", 9, b"\x09") + option("<", 14, struct.pack("<q", 100)) + option("<", 0, b"")
    data = shb() + block("<", 1, struct.pack("<HHI", 101, 0, 0) + opts)
    data += epb("<", 0, 5, b"\x45" + b"\0" * 19)
    (p,) = read_all(write(tmp_path, data, "o.pcapng"))
    assert p.ts_ns == 100_000_000_005


def test_pcapng_blocks_split_across_small_reads(tmp_path: Path) -> None:
    packets = [Packet(TS + i, d, len(d), Direction.INBOUND, 0) for i, d in enumerate(frames() * 5)]
    path = tmp_path / "small.pcapng"
    with path.open("wb") as f:
        PcapNgWriter(f, 0, LinkType.ETHERNET).write_batch(packets)
    got = read_all(path, chunk_size=7, batch_size=3)
    assert [(g.ts_ns, g.data) for g in got] == [(p.ts_ns, p.data) for p in packets]


# --- bad input --------------------------------------------------------------------------------


def test_truncated_last_record_warns_and_keeps_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recs = [(1, i, bytes([i]) * 100, 100) for i in range(5)]
    path = write(tmp_path, pcap_file(recs)[:-30], "cut.pcap")
    with caplog.at_level(logging.WARNING, logger="capsvc"):
        got = read_all(path)
    assert [p.data for p in got] == [bytes([i]) * 100 for i in range(4)]
    (record,) = caplog.records
    assert record.name == "capsvc" and "cut.pcap" in record.getMessage()
    assert "truncated" in record.getMessage() and "4 complete packets" in record.getMessage()


def test_truncated_pcapng_block_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = shb() + idb("<", 101) + epb("<", 0, 1, b"\x45" * 20) + epb("<", 0, 2, b"\x45" * 40)
    path = write(tmp_path, data[:-10], "cut.pcapng")
    with caplog.at_level(logging.WARNING, logger="capsvc"):
        got = read_all(path)
    assert len(got) == 1
    assert any("cut.pcapng" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("linktype", [147, 127, 104, 65535])
def test_any_link_type_reads_with_its_name(tmp_path: Path, linktype: int) -> None:
    """A link type capsvc does not decode is still read, packet for packet (tcpdump does)."""
    path = write(tmp_path, pcap_file([(1, 5, b"\x01\x02\x03", 9)], linktype=linktype))
    with read_capture(path) as capture:
        assert int(capture.linktype) == linktype
        assert (
            capture.linktype.name
            == {
                147: "LINKTYPE_147",
                127: "IEEE802_11_RADIO",
                104: "C_HDLC",
                65535: "LINKTYPE_65535",
            }[linktype]
        )
    got = read_all(path)
    assert [(p.data, p.wire_len) for p in got] == [(b"\x01\x02\x03", 9)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" * 3, "not a pcap or pcapng file"),
        (b"\x1f\x8b\x08\x00" + bytes(40), "gzip"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
        (b"\xd4\xc3", "too short"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 1, 0, 0, 0, 0, 1), "too old"),
        (pcap_file([(1, 1, bytes(300_000), 300_000)]), "captured length 300000"),
        (shb() + epb("<", 0, 1, b"x" * 20), "no interface description"),
        (shb(), "without an interface description block"),
        (shb()[:8] + b"\0\0\0\0" + shb()[12:], "byte-order magic"),
        (shb() + idb("<", 1) + b"\x06\0\0\0\x0d\0\0\0" + bytes(20), "bad length 13"),
        (shb() + idb("<", 1)[:-4] + b"\x99\0\0\0", "trailer differ"),
    ],
)
def test_bad_files_raise_capture_file_error_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = write(tmp_path, content, "bad-input.cap")
    with pytest.raises(CaptureFileError) as info:
        read_all(path)
    assert "bad-input.cap" in str(info.value)
    assert reason in str(info.value)
    assert info.value.path == str(path)


def test_corruption_after_good_packets_delivers_them_first(tmp_path: Path) -> None:
    good = pcap_file([(1, 0, b"\x45" * 20, 20)] * 3)
    bad = struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 20)
    path = write(tmp_path, good + bad + bytes(100), "mid.pcap")
    seen = []
    with pytest.raises(CaptureFileError, match=r"mid\.pcap.*offset 132"), read_capture(path) as cap:
        for batch in cap:
            seen.extend(batch)
    assert len(seen) == 3


def test_empty_file_is_a_capture_without_packets(tmp_path: Path) -> None:
    path = write(tmp_path, b"", "empty.pcap")
    with read_capture(path) as cap:
        assert (cap.linktype, cap.snaplen) == (LinkType.RAW, 262144)
        assert list(cap) == []


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_capture(tmp_path / "nope.pcap")
    with pytest.raises(FileNotFoundError):
        PcapFileSource(tmp_path / "nope.pcap")


def test_stream_is_read_and_left_open() -> None:
    stream = io.BytesIO(pcap_file([(5, 6, b"\x45" * 20, 20)], linktype=101))
    with read_capture(stream) as cap:
        assert cap.name == "<stream>"
        assert [p.ts_ns for b in cap for p in b] == [5_000_006_000]
    assert not stream.closed


# --- the async source -------------------------------------------------------------------------


async def test_source_protocol_batches_stats_and_aclose(tmp_path: Path) -> None:
    recs = [(1, i, b"\x45" + b"\0" * 19, 20) for i in range(3000)]
    src = PcapFileSource(write(tmp_path, pcap_file(recs, linktype=101, snaplen=1500)))
    assert isinstance(src, Source)
    assert (src.linktype, src.snaplen, src.live) == (LinkType.RAW, 1500, False)
    total = 0
    async for batch in src:
        total += len(batch)
    assert total == 3000
    assert src.stats() == SourceStats(received=3000)
    await src.aclose()
    await src.aclose()


async def test_aclose_ends_iteration(tmp_path: Path) -> None:
    recs = [(1, i, b"\x45" + b"\0" * 19, 20) for i in range(5000)]
    src = PcapFileSource(write(tmp_path, pcap_file(recs, linktype=101)))
    batches = 0
    async for _ in src:
        batches += 1
        await src.aclose()
    assert batches == 1


async def test_realtime_replays_the_gaps(tmp_path: Path) -> None:
    recs = [(100, 0, b"\x45" * 20, 20), (100, 60_000, b"\x45" * 20, 20)]
    recs.append((100, 120_000, b"\x45" * 20, 20))
    src = PcapFileSource(write(tmp_path, pcap_file(recs, linktype=101)), realtime=True)
    assert src.live
    arrivals = []
    start = time.monotonic()
    async for batch in src:
        arrivals += [time.monotonic() - start] * len(batch)
    assert len(arrivals) == 3
    assert arrivals[1] >= 0.055 and arrivals[2] >= 0.115
    assert arrivals[2] < 1.0


@NEEDS_TCPDUMP
async def test_source_reads_a_pipe_from_tcpdump(tmp_path: Path) -> None:
    src_file = tmp_path / "in.pcap"
    packets = [
        Packet(TS + i, d, len(d), Direction.UNKNOWN, 0) for i, d in enumerate(frames() * 100)
    ]
    with src_file.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET).write_batch(packets)
    proc = subprocess.Popen(
        ["tcpdump", "-r", str(src_file), "-w", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        source = await asyncio.to_thread(PcapFileSource, proc.stdout)
        got = [p async for batch in source for p in batch]
        await source.aclose()
    finally:
        proc.stdout.close()
        proc.wait()
    assert [p.data for p in got] == [p.data for p in packets]


async def test_pipe_packets_flow_before_the_writer_is_done() -> None:
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb")
    first = pcap_file([(1, 0, b"\x45" + b"\0" * 19, 20)], linktype=101)
    os.write(write_fd, first)
    try:
        source = PcapFileSource(reader)
        assert source.name == "<stream>"
        batches = aiter(source)
        batch = await asyncio.wait_for(anext(batches), 5)  # the writer has not closed yet
        assert [p.ts_ns for p in batch] == [1_000_000_000]
        os.write(write_fd, struct.pack("<IIII", 2, 0, 20, 20) + b"\x45" + b"\0" * 19)
        batch = await asyncio.wait_for(anext(batches), 5)
        assert [p.ts_ns for p in batch] == [2_000_000_000]
        os.close(write_fd)
        write_fd = -1
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(batches), 5)
        await source.aclose()
        assert not reader.closed  # a given stream stays open
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        reader.close()


# --- the corpus and fuzzing -------------------------------------------------------------------


def _tcpdump_count(path: Path) -> tuple[int, bool]:
    run = subprocess.run(["tcpdump", "--count", "-r", str(path)], capture_output=True, text=True)
    count = int(run.stdout.split()[0]) if run.stdout.strip() else -1
    return count, run.returncode == 0


def _count_or_error(path: Path) -> tuple[int, CaptureFileError | None]:
    try:
        return len(read_all(path)), None
    except CaptureFileError as exc:
        return -1, exc


@NEEDS_TCPDUMP
def test_corpus_counts_match_tcpdump(corpus: Path) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert len(files) > 100
    mismatches = []
    for path in files:
        expected, clean = _tcpdump_count(path)
        got, err = _count_or_error(path)
        # Where tcpdump reads the file we give its count; where it stops with an error, we
        # either raise CaptureFileError too or (truncated file) give the packets it gave.
        if (clean and got != expected) or (not clean and err is None and got != expected):
            mismatches.append((path.name, expected, got, err))
    assert mismatches == []


@NEEDS_TCPDUMP
def test_truncated_corpus_files_match_tcpdump(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(3)
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    checked = 0
    for path in rng.sample(files, 25):
        data = path.read_bytes()
        cut = tmp_path / f"cut-{path.name}"
        cut.write_bytes(data[: rng.randrange(40, len(data))])
        expected, clean = _tcpdump_count(cut)
        got, err = _count_or_error(cut)
        assert err is None, err
        assert got == expected, cut.name
        checked += not clean
    assert checked > 10  # most cuts fall inside a record, where tcpdump reports an error


def _decode_all(data: bytes, split: int) -> int:
    dec = CaptureDecoder("fuzz.pcap", batch_size=16)
    pos = 0
    n = 0
    while True:
        batch = dec.next_batch()
        if batch:
            n += len(batch)
            continue
        if dec.finished:
            return n
        chunk = data[pos : pos + max(split, dec.wanted)]
        pos += len(chunk)
        dec.feed(chunk)


HEADS = [
    b"",
    bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"),
    bytes.fromhex("a1b23c4d000200040000000000000000000000650000ffff"),
    shb() + idb("<", 1, tsresol=0x8A),
    shb(">") + idb(">", 101, 64),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(HEADS), st.binary(max_size=600), st.integers(1, 64))
def test_arbitrary_bytes_raise_only_capture_file_error(
    head: bytes, tail: bytes, split: int
) -> None:
    try:
        _decode_all(head + tail, split)
    except CaptureFileError as exc:
        assert exc.path == "fuzz.pcap"


def _corpus_samples() -> list[bytes]:
    root = CORPUS
    if not root.is_dir():
        return [pcap_file([(1, 2, f, len(f)) for f in frames()])]
    files = sorted(p for p in root.iterdir() if p.suffix in (".pcap", ".pcapng"))
    rng = random.Random(7)
    picks = [p for p in files if p.suffix == ".pcapng"][:6] + rng.sample(files, 10)
    return [p.read_bytes()[:20_000] for p in picks]


SAMPLES = _corpus_samples()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SAMPLES))),
    st.lists(st.tuples(st.integers(0, 19_999), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 20_000),
)
def test_mutated_real_files_raise_only_capture_file_error(
    index: int, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(SAMPLES[index])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    with contextlib.suppress(CaptureFileError):
        _decode_all(bytes(data[: max(cut, 24)]), 4096)


def test_every_corpus_prefix_is_handled(corpus: Path) -> None:
    data = (corpus / "DECnet_Phone.pcap").read_bytes()
    for cut in range(0, min(len(data), 600)):
        try:
            _decode_all(data[:cut], 64)
        except CaptureFileError as exc:
            assert cut < 24 and "fuzz.pcap" in str(exc)


async def _drain(source: PcapFileSource) -> list[Packet]:
    got: list[Packet] = []
    async for batch in source:
        got.extend(batch)
    await source.aclose()
    return got


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
async def test_source_filter_skips_records_but_counts_them(tmp_path: Path, kind: str) -> None:
    many = [
        ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1000 + i, 443 if i % 4 == 0 else 80)))
        for i in range(3000)
    ]
    if kind == "pcap":
        data = pcap_file([(i, 0, f, len(f)) for i, f in enumerate(many)])
    else:
        data = shb() + idb("<", 1) + b"".join(epb("<", 0, i, f) for i, f in enumerate(many))
    source = PcapFileSource(write(tmp_path, data), filter="tcp dst port 443")
    got = await _drain(source)
    parsed = PcapFileSource(write(tmp_path, data), filter=parse("tcp dst port 443"))
    assert [p.data for p in await _drain(parsed)] == [p.data for p in got]
    assert len(got) == 750
    assert all(p.data[36:38] == b"\x01\xbb" for p in got)
    assert source.stats().received == 3000
