"""PcapWriter: golden bytes, lazy header, batching, and real tcpdump/tshark reading the output."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from _helpers import CountingStream, ether, icmp, ipv4, ipv6, tcp, udp

from capsvc import Direction, LinkType, Packet
from capsvc.sinks._pcap import (
    PCAP_RECORD,
    PcapWriter,
    encode_records,
    encode_records_py,
    pcap_header,
)

TS = 1_700_000_000_123_456_789


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    """Rows of ``tshark -T fields`` for ``fields``, one per packet."""
    cmd = ["tshark", "-r", str(path), "-T", "fields"]
    for field in fields:
        cmd += ["-e", field]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [line.split("\t") for line in run.stdout.splitlines()]


def frames() -> list[bytes]:
    return [
        ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, b"GET / HTTP/1.1\r\n\r\n", flags="PA")),
        ipv4("10.0.0.2", "10.0.0.1", udp(53, 41234, b"\x1a\x2b" + b"\0" * 30)),
        ipv4("10.0.0.1", "10.0.0.2", icmp(payload=b"x" * 56)),
        ipv6("fd00::1", "fd00::2", tcp(1234, 443, b"y" * 1200, flags="A")),
    ]


def batch_of(datas: list[bytes], step_ns: int = 1_000_001) -> list[Packet]:
    return [Packet(TS + i * step_ns, d, len(d), Direction.UNKNOWN, 0) for i, d in enumerate(datas)]


@pytest.mark.parametrize(
    ("nanosecond", "magic"),
    [(False, "d4c3b2a1"), (True, "4d3cb2a1")],
)
def test_header_golden_bytes(nanosecond: bool, magic: str) -> None:
    header = pcap_header(65535, LinkType.ETHERNET, nanosecond=nanosecond)
    rest = "0200" + "0400" + "00000000" + "00000000" + "ffff0000" + "01000000"
    assert header.hex() == magic + rest


def test_snaplen_zero_means_262144_and_linktype_at_20() -> None:
    out = io.BytesIO()
    w = PcapWriter(out, 0, LinkType.LINUX_SLL2)
    w.write_packet(TS, b"\x45" + b"\0" * 19)
    data = out.getvalue()
    assert struct.unpack("<I", data[16:20])[0] == 262144
    assert struct.unpack("<I", data[20:24])[0] == 276


def test_records_keep_wire_length_and_cut_to_snaplen() -> None:
    out = io.BytesIO()
    w = PcapWriter(out, 100, LinkType.RAW, nanosecond=True)
    big = bytes(range(256)) * 2
    w.write_batch(
        [
            Packet(TS, big, 1500, Direction.INBOUND, 0),
            Packet(TS + 1, b"abc", 3, Direction.UNKNOWN, 0),
            Packet(TS + 2, b"abcd", 2, Direction.UNKNOWN, 0),  # wire below captured: fixed up
        ]
    )
    data = out.getvalue()
    pos = 24
    seen = []
    while pos < len(data):
        sec, frac, incl, orig = PCAP_RECORD.unpack_from(data, pos)
        seen.append((sec, frac, incl, orig, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    assert seen == [
        (1_700_000_000, 123_456_789, 100, 1500, big[:100]),
        (1_700_000_000, 123_456_790, 3, 3, b"abc"),
        (1_700_000_000, 123_456_791, 4, 4, b"abcd"),
    ]


def test_microsecond_records_golden() -> None:
    body = encode_records([Packet(TS, b"\x01\x02", 60, Direction.OUTBOUND, 3)], 262144)
    assert body.hex() == "00f15365" + "40e20100" + "02000000" + "3c000000" + "0102"


def test_empty_capture_is_the_header_alone(tmp_path: Path) -> None:
    """A capture that matched nothing is a valid pcap file, as tcpdump writes it (a 0-byte file
    is refused by tcpdump as "truncated dump file")."""
    out = CountingStream()
    w = PcapWriter(out, 0, LinkType.ETHERNET, nanosecond=True)
    w.write_batch([])
    w.flush()
    w.close()
    assert out.getvalue() == pcap_header(0, LinkType.ETHERNET, nanosecond=True)
    assert out.writes == 1
    assert not out.closed
    path = tmp_path / "empty.pcap"
    path.write_bytes(out.getvalue())
    done = subprocess.run(["tcpdump", "-nr", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_header_retried_after_failed_write() -> None:
    out = CountingStream(fail=1)
    w = PcapWriter(out, 0, LinkType.RAW)
    with pytest.raises(OSError):
        w.write_packet(TS, b"\x45" + b"\0" * 19)
    w.write_packet(TS + 1, b"\x45" + b"\1" * 19)
    data = out.getvalue()
    assert data[:24] == pcap_header(0, LinkType.RAW)
    assert len(data) == 24 + 16 + 20  # one header, only the packet that was written


def test_write_header_is_idempotent() -> None:
    out = io.BytesIO()
    w = PcapWriter(out, 0, LinkType.RAW)
    w.write_header()
    w.write_header()
    w.write_packet(TS, b"\x45" + b"\0" * 19)
    assert out.getvalue().count(pcap_header(0, LinkType.RAW)) == 1
    assert len(out.getvalue()) == 24 + 16 + 20


def test_appending_to_a_file_that_has_the_header_adds_records_only(tmp_path: Path) -> None:
    """``header_written=True`` (a file that already holds this header, as a resumed ring file
    or ``-w`` appending): neither a flush nor a batch writes a second header, and the file
    then reads as one capture of every record.

    Mutation guarded: ``self._header_written = None`` for the given value (a header written
    in the middle of the file, which tcpdump reads as a corrupt record)."""
    path = tmp_path / "append.pcap"
    first = frames()[:2]
    with path.open("wb") as f:
        w = PcapWriter(f, 0, LinkType.RAW)
        w.write_batch(batch_of(first))
        w.flush()
    size = path.stat().st_size
    with path.open("ab") as f:
        w = PcapWriter(f, 0, LinkType.RAW, header_written=True)
        w.flush()
        assert path.stat().st_size == size
        w.write_batch(batch_of(frames()[2:4]))
        w.flush()
    data = path.read_bytes()
    assert data.count(pcap_header(0, LinkType.RAW)) == 1
    assert len(data) == size + sum(16 + len(x) for x in frames()[2:4])
    done = subprocess.run(["tcpdump", "-nr", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4


@pytest.mark.parametrize("nanosecond", [False, True])
def test_a_batch_that_is_no_list_is_encoded_alike(nanosecond: bool) -> None:
    """A batch of a list subclass (an application's own batch type) goes to the Python
    encoder, which the C one stands in for only for plain lists: the same records, cut at
    the snapshot length, with the same timestamp precision.

    Mutation guarded: the Python encoder called without the batch, the snapshot length or
    the precision (``encode_records`` 13-18)."""

    class Batch(list[Packet]):
        pass

    batch = batch_of(frames())
    ours = encode_records(Batch(batch), 100, nanosecond=nanosecond)
    assert ours == encode_records_py(batch, 100, nanosecond=nanosecond)
    assert ours == encode_records(batch, 100, nanosecond=nanosecond)
    assert [r[2] for r in records(bytes(24) + ours)] == [min(len(f), 100) for f in frames()]


def test_one_write_per_batch() -> None:
    out = CountingStream()
    w = PcapWriter(out, 0, LinkType.RAW)
    w.write_batch(batch_of(frames() * 50))
    assert out.writes == 1
    w.write_batch(batch_of(frames() * 50))
    assert out.writes == 2


def _write_file(path: Path, *, nanosecond: bool, snaplen: int = 0) -> list[Packet]:
    packets = batch_of([ether(f) for f in frames()] * 3, step_ns=1_234_567)
    with path.open("wb") as f:
        w = PcapWriter(f, snaplen, LinkType.ETHERNET, nanosecond=nanosecond)
        w.write_batch(packets[:5])
        w.write_batch(packets[5:])
        w.close()
    return packets


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
@pytest.mark.parametrize("nanosecond", [False, True])
def test_tcpdump_reads_our_file(tmp_path: Path, nanosecond: bool) -> None:
    path = tmp_path / "out.pcap"
    packets = _write_file(path, nanosecond=nanosecond)
    precision = "nano" if nanosecond else "micro"
    run = subprocess.run(
        ["tcpdump", "-nr", str(path), "-tt", "--time-stamp-precision", precision],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert len(lines) == len(packets)
    for line, p in zip(lines, packets, strict=True):
        sec, frac = divmod(p.ts_ns, 1_000_000_000)
        stamp = f"{sec}.{frac:09d}" if nanosecond else f"{sec}.{frac // 1000:06d}"
        assert line.startswith(stamp + " IP")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_our_file(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    packets = _write_file(path, nanosecond=True, snaplen=200)
    rows = tshark_fields(path, "frame.time_epoch", "frame.len", "frame.cap_len")
    assert len(rows) == len(packets)
    for (stamp, wire, cap), p in zip(rows, packets, strict=True):
        sec, frac = divmod(p.ts_ns, 1_000_000_000)
        assert stamp == f"{sec}.{frac:09d}"
        assert int(wire) == p.wire_len
        assert int(cap) == min(len(p.data), 200)


class _TrickleStream(io.RawIOBase):
    """An unbuffered stream that takes at most 7 bytes per write (like a full raw pipe)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        chunk = bytes(b)[:7]  # type: ignore[call-overload]
        self.data += chunk
        return len(chunk)


def test_short_writes_are_completed() -> None:
    stream = _TrickleStream()
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"z" * 50)))
    w = PcapWriter(stream, 0, LinkType.ETHERNET)  # type: ignore[arg-type]
    w.write_batch([Packet(5_000_000_000, frame, len(frame), Direction.UNKNOWN, 0)] * 3)
    data = bytes(stream.data)
    assert len(data) == 24 + 3 * (16 + len(frame))
    assert data[24 + 16 : 24 + 16 + len(frame)] == frame


def test_values_a_record_cannot_hold_are_clamped() -> None:
    batch = [
        Packet(-5, b"abc", 3, Direction.UNKNOWN, 0),
        Packet(1 << 70, b"abc", 1 << 40, Direction.UNKNOWN, 0),
    ]
    body = encode_records(batch, 262144, nanosecond=True)
    first = PCAP_RECORD.unpack_from(body, 0)
    second = PCAP_RECORD.unpack_from(body, 16 + 3)
    assert first == (0, 0, 3, 3)
    assert second == (0xFFFFFFFF, 999_999_999, 3, 0xFFFFFFFF)


def test_a_second_link_type_is_refused_before_it_is_written() -> None:
    """``linktypes`` (a pcapng source's interfaces, growing as it is read): once an interface
    of another link type is known, the next batch raises OptionError naming both and writes
    nothing; what was written before stays a valid file of one link type."""
    from capsvc import OptionError

    out = io.BytesIO()
    linktypes = {1: int(LinkType.ETHERNET)}
    writer = PcapWriter(out, 0, LinkType.ETHERNET, linktypes=linktypes)
    writer.write_batch([Packet(1, b"\x00" * 14, 14, Direction.UNKNOWN, 1)])
    size = len(out.getvalue())
    assert size == 24 + 16 + 14
    linktypes[2] = int(LinkType.RAW)
    with pytest.raises(OptionError, match=r"interface 2 .* RAW, the others ETHERNET"):
        writer.write_batch([Packet(2, b"\x00" * 14, 14, Direction.UNKNOWN, 1)])
    assert len(out.getvalue()) == size


def records(data: bytes) -> list[tuple[int, int, int, int, bytes]]:
    """(sec, frac, incl_len, orig_len, bytes) of every record after the 24-byte header."""
    out, pos = [], 24
    while pos < len(data):
        sec, frac, incl, orig = PCAP_RECORD.unpack_from(data, pos)
        pos += PCAP_RECORD.size
        out.append((sec, frac, incl, orig, data[pos : pos + incl]))
        pos += incl
    assert pos == len(data)
    return out


@pytest.mark.parametrize("nanosecond", [False, True])
def test_records_cut_to_snaplen_keep_the_wire_length(nanosecond: bool) -> None:
    """Mutations guarded: the cut skipped, the original length taken from the cut length, a
    wire length shorter than the data written as it is (orig_len < incl_len)."""
    out = io.BytesIO()
    w = PcapWriter(out, 10, LinkType.RAW, nanosecond=nanosecond)
    w.write_batch(
        [
            Packet(TS, bytes(range(50)), 1500, Direction.INBOUND, 0),
            Packet(TS, bytes(range(10)), 10, Direction.INBOUND, 0),
            Packet(TS, bytes(range(8)), 3, Direction.INBOUND, 0),  # wire shorter than data
        ]
    )
    frac = TS % 10**9 if nanosecond else TS % 10**9 // 1000
    assert records(out.getvalue()) == [
        (TS // 10**9, frac, 10, 1500, bytes(range(10))),
        (TS // 10**9, frac, 10, 10, bytes(range(10))),
        (TS // 10**9, frac, 8, 8, bytes(range(8))),
    ]


def test_clamping_keeps_an_empty_frame_at_zero_length() -> None:
    """A wire length below 0 is clamped to 0, then raised to the captured length (0 here)."""
    body = encode_records([Packet(-5, b"", -7, Direction.INBOUND, 0)], 100, nanosecond=True)
    assert PCAP_RECORD.unpack(body) == (0, 0, 0, 0)
    body = encode_records([Packet(2**80, b"ab", 2**40, Direction.INBOUND, 0)], 100)
    assert PCAP_RECORD.unpack(body[:16]) == (2**32 - 1, 999_999, 2, 2**32 - 1)


def test_defaults_and_settings_reach_the_header() -> None:
    assert pcap_header()[16:] == struct.pack("<II", 262144, 101)
    out = io.BytesIO()
    PcapWriter(out).flush()
    assert out.getvalue() == pcap_header(262144, LinkType.RAW)
    out = io.BytesIO()
    w = PcapWriter(out, 96, LinkType.ETHERNET, nanosecond=True)
    w.write_header()
    w.write_header()  # once only
    assert out.getvalue() == pcap_header(96, LinkType.ETHERNET, nanosecond=True)
    assert struct.unpack_from("<II", out.getvalue(), 16) == (96, 1)


def test_write_packet_takes_the_wire_length() -> None:
    out = io.BytesIO()
    w = PcapWriter(out, 0, LinkType.RAW)
    w.write_packet(TS, b"abcd", 1500)
    w.write_packet(TS, b"xy")
    assert [(r[2], r[3], r[4]) for r in records(out.getvalue())] == [
        (4, 1500, b"abcd"),
        (2, 2, b"xy"),
    ]


def test_publish_gets_each_batch_and_its_records() -> None:
    """Live streams take the records a file sink already encoded (no second encoding)."""
    out = io.BytesIO()
    w = PcapWriter(out, 0, LinkType.RAW)
    got: list[tuple[list[Packet], bytes]] = []
    w.publish = lambda batch, body: got.append((batch, body))
    first = [Packet(TS, b"one", 3, Direction.INBOUND, 0)]
    second = [Packet(TS + 1, b"two!", 4, Direction.OUTBOUND, 0)]
    w.write_batch(first)
    w.write_batch([])
    w.write_batch(second)
    assert got == [
        (first, encode_records(first, 262144)),
        (second, encode_records(second, 262144)),
    ]
    assert out.getvalue() == pcap_header(0, LinkType.RAW) + got[0][1] + got[1][1]


def test_the_first_batch_brings_the_writers_header() -> None:
    """Mutation guarded: the header written with the first batch not taking the writer's
    snaplen (a default one instead)."""
    out = io.BytesIO()
    PcapWriter(out, 96, LinkType.ETHERNET).write_batch([Packet(TS, b"ab", 2, Direction.INBOUND, 0)])
    assert out.getvalue()[:24] == pcap_header(96, LinkType.ETHERNET)


def test_the_python_encoder_defaults_to_microseconds() -> None:
    batch = [Packet(TS, b"ab", 2, Direction.INBOUND, 0)]
    assert encode_records_py(batch, 10) == encode_records(batch, 10, nanosecond=False)
    assert PCAP_RECORD.unpack(encode_records_py(batch, 10)[:16])[1] == TS % 10**9 // 1000


def test_the_refusal_of_a_second_link_type_word_for_word() -> None:
    """The refusal names the interface, both link types and the way out, in these words.
    Mutations guarded: the advice "(write pcapng to keep both)" changed (`_check_linktypes` 4,
    5)."""
    from capsvc import OptionError

    writer = PcapWriter(io.BytesIO(), 0, LinkType.ETHERNET, linktypes={3: int(LinkType.RAW)})
    with pytest.raises(OptionError) as raised:
        writer.write_batch([Packet(1, b"\x00" * 14, 14, Direction.UNKNOWN, 3)])
    assert str(raised.value) == (
        "interface 3 of the input has link type RAW, the others ETHERNET: a pcap file holds "
        "one link type (write pcapng to keep both)"
    )


def test_a_single_interface_of_another_link_type_is_refused() -> None:
    """An input whose only interface has another link type than the writer's is refused at
    the first batch, the file left empty. Mutation guarded: the count of interfaces already
    checked starting at 1 (`__init__` 14), which took the first interface as checked."""
    from capsvc import OptionError

    out = io.BytesIO()
    writer = PcapWriter(out, 0, LinkType.ETHERNET, linktypes={1: int(LinkType.RAW)})
    with pytest.raises(OptionError, match=r"interface 1 .* RAW, the others ETHERNET"):
        writer.write_batch([Packet(1, b"\x45" + b"\x00" * 19, 20, Direction.UNKNOWN, 1)])
    assert out.getvalue() == b""


class _CountingLinkTypes(Mapping[int, int]):
    """A source's ``linktypes`` (ifindex -> link type) that counts the lookups of its
    interfaces' link types."""

    def __init__(self, linktypes: dict[int, int]) -> None:
        self.linktypes = linktypes
        self.lookups = 0

    def __getitem__(self, ifindex: int) -> int:
        self.lookups += 1
        return self.linktypes[ifindex]

    def __iter__(self) -> Iterator[int]:
        return iter(self.linktypes)

    def __len__(self) -> int:
        return len(self.linktypes)


def test_known_interfaces_are_not_checked_again_each_batch() -> None:
    """The interfaces' link types are looked up once when the writer first sees them and again
    only when one is added (a check per batch would look up every interface on each one).
    Mutation guarded: the count of checked interfaces kept as None (`_check_linktypes` 6),
    so that every batch looked them all up again."""
    linktypes = _CountingLinkTypes({1: int(LinkType.ETHERNET)})
    out = io.BytesIO()
    writer = PcapWriter(out, 0, LinkType.ETHERNET, linktypes=linktypes)
    frame = Packet(TS, b"\x00" * 14, 14, Direction.UNKNOWN, 1)
    for _ in range(3):
        writer.write_batch([frame])
    assert linktypes.lookups == 1
    linktypes.linktypes[2] = int(LinkType.ETHERNET)
    for _ in range(3):
        writer.write_batch([frame._replace(ifindex=2)])
    assert linktypes.lookups == 3
    assert len(records(out.getvalue())) == 6
