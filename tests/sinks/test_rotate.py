"""RotatingWriter: tcpdump's -G/-C/-W rules, files read back by tcpdump and dpkt."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import shutil
import struct
import subprocess
import time
from pathlib import Path

import dpkt
import pytest
from _helpers import descriptors_of

from capsvc import Direction, LinkType, Packet
from capsvc._errors import OptionError
from capsvc._files import Directory
from capsvc.sinks._rotate import RotatingWriter, rotated_name, split_template

FRAME = bytes(range(84))  # 84 bytes: a 100-byte pcap record


def packets(count: int, *, start_ns: int | None = None, step_ns: int = 1000) -> list[Packet]:
    base = time.time_ns() if start_ns is None else start_ns
    return [
        Packet(base + i * step_ns, FRAME[:80] + i.to_bytes(4, "big"), 84, Direction.INBOUND, 0)
        for i in range(count)
    ]


def read_pcap(path: Path) -> list[bytes]:
    with path.open("rb") as f:
        return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(f)]


@pytest.mark.parametrize(
    ("template", "start", "counter", "width", "expected"),
    [
        ("out.pcap", None, 0, 0, "out.pcap"),
        ("out.pcap", None, 1, 0, "out.pcap1"),
        ("out.pcap", None, 0, 1, "out.pcap0"),
        ("out.pcap", None, 7, 2, "out.pcap07"),
        ("%Y.pcap", 0.0, 0, 0, time.strftime("%Y.pcap", time.localtime(0))),
        ("cap-%H%M%S", 3600.0, 3, 0, time.strftime("cap-%H%M%S3", time.localtime(3600))),
    ],
)
def test_rotated_name_follows_tcpdump(
    template: str, start: float | None, counter: int, width: int, expected: str
) -> None:
    assert rotated_name(template, start, counter, width) == expected


def test_size_rotation_numbers_files_and_loses_nothing(tmp_path: Path) -> None:
    base = tmp_path / "out.pcap"
    writer = RotatingWriter(base, linktype=LinkType.ETHERNET, rotate_bytes=1000)
    sent = packets(25)
    writer.write_batch(sent[:7])
    writer.write_batch(sent[7:])
    writer.close()
    names = [str(base), f"{base}1", f"{base}2"]
    assert writer.files == names
    contents = [read_pcap(Path(n)) for n in names]
    # 24-byte header + 100-byte records: a file is over 1000 bytes after its 10th packet.
    assert [len(c) for c in contents] == [10, 10, 5]
    assert [d for c in contents for d in c] == [p.data for p in sent]
    for name in names[:2]:
        size = os.path.getsize(name)
        assert size > 1000 and size - 100 <= 1000  # over the limit by at most the last packet


def test_size_rotation_with_file_limit_is_a_ring(tmp_path: Path) -> None:
    base = tmp_path / "ring.pcap"
    writer = RotatingWriter(base, linktype=LinkType.ETHERNET, rotate_bytes=500, max_files=3)
    sent = packets(22)  # 5 packets per file: files 0,1,2,0,1
    writer.write_batch(sent)
    writer.close()
    assert writer.files == [f"{base}{n}" for n in (0, 1, 2, 0, 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ring.pcap0", "ring.pcap1", "ring.pcap2"]
    assert read_pcap(Path(f"{base}0")) == [p.data for p in sent[15:20]]
    assert read_pcap(Path(f"{base}1")) == [p.data for p in sent[20:]]
    assert read_pcap(Path(f"{base}2")) == [p.data for p in sent[10:15]]
    assert not writer.finished


def test_time_rotation_names_files_by_strftime(tmp_path: Path) -> None:
    template = str(tmp_path / "cap-%Y%m%d-%H%M%S.pcap")
    writer = RotatingWriter(template, linktype=LinkType.ETHERNET, rotate_seconds=10)
    first_name = writer.files[0]
    start = int(time.time())
    stamps = [start, start + 5, start + 12, start + 13, start + 40]
    batch = [Packet(s * 10**9, FRAME, 84, Direction.INBOUND, 0) for s in stamps]
    writer.write_batch(batch)
    writer.close()
    expected = [time.strftime(template, time.localtime(s)) for s in (start + 12, start + 40)]
    assert writer.files == [first_name, *expected]
    assert [len(read_pcap(Path(n))) for n in writer.files] == [2, 2, 1]


def test_time_rotation_with_file_limit_stops(tmp_path: Path) -> None:
    """Two one-second periods, then the writer stops: the packets of later periods are not
    written. The packets are placed from the first file's own period start (``%s`` in its
    name), so which period each falls in is known exactly.

    Mutations guarded: ``-W`` counted one period late (``>`` for ``>=``), packets written
    after the writer finished."""
    calls: list[int] = []
    writer = RotatingWriter(
        tmp_path / "t-%s.pcap",
        linktype=LinkType.RAW,
        rotate_seconds=1,
        max_files=2,
        on_finished=lambda: calls.append(1),
    )
    start = int(Path(writer.files[0]).name[2:-5]) * 10**9
    writer.write_batch(packets(3, start_ns=start + 100_000_000, step_ns=500_000_000))  # .1 .6 1.1
    writer.write_batch(packets(2, start_ns=start + 2_500_000_000))  # the third period
    writer.close()
    assert writer.finished and calls == [1]
    assert [Path(n).name for n in writer.files] == [f"t-{start // 10**9 + k}.pcap" for k in (0, 1)]
    assert [len(read_pcap(Path(n))) for n in writer.files] == [2, 1]


def test_pcapng_ring_wraps_and_truncates(tmp_path: Path) -> None:
    """Mutations guarded: a ring of max_files+1 files; a reused file opened without
    truncation (its old blocks would follow the new ones)."""
    base = tmp_path / "r.pcapng"
    writer = RotatingWriter(
        base, linktype=LinkType.ETHERNET, pcapng=True, rotate_bytes=700, max_files=2
    )
    sent = packets(27)  # 6 per file: files 0, 1, 0, 1 and 0 again, with 3
    for p in sent:
        writer.write_batch([p])
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pcapng0", "r.pcapng1"]
    assert writer.files == [f"{base}{k}" for k in (0, 1, 0, 1, 0)]
    got = []
    for k in (0, 1):
        with open(f"{base}{k}", "rb") as f:
            got.append([bytes(buf) for _ts, buf in dpkt.pcapng.Reader(f)])
    assert got == [[p.data for p in sent[24:]], [p.data for p in sent[18:24]]]


def test_time_and_size_together_reset_the_counter(tmp_path: Path) -> None:
    template = str(tmp_path / "b-%s.pcap")
    writer = RotatingWriter(
        template, linktype=LinkType.ETHERNET, rotate_seconds=5, rotate_bytes=300
    )
    start = int(time.time())
    batch = packets(4, start_ns=start * 10**9) + packets(4, start_ns=(start + 6) * 10**9)
    writer.write_batch(batch)
    writer.close()
    later = time.strftime(template, time.localtime(start + 6))
    assert writer.files[-2:] == [later, later + "1"]
    assert sum(len(read_pcap(Path(n))) for n in set(writer.files)) == 8


def test_pcapng_rotation_readable(tmp_path: Path) -> None:
    base = tmp_path / "n.pcapng"
    writer = RotatingWriter(base, linktype=LinkType.ETHERNET, pcapng=True, rotate_bytes=600)
    sent = packets(12)
    for i in range(0, 12, 3):
        writer.write_batch(sent[i : i + 3])
    writer.close()
    assert len(writer.files) >= 2
    got = []
    for name in writer.files:
        size = os.path.getsize(name)
        with open(name, "rb") as f:
            got += [bytes(buf) for _ts, buf in dpkt.pcapng.Reader(f)]
        assert size > 0
    assert got == [p.data for p in sent]


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
def test_every_rotated_file_reads_with_tcpdump(tmp_path: Path) -> None:
    base = tmp_path / "td.pcap"
    writer = RotatingWriter(base, linktype=LinkType.ETHERNET, rotate_bytes=2000, snaplen=64)
    writer.write_batch(packets(50))
    writer.close()
    total = 0
    for name in writer.files:
        out = subprocess.run(
            ["tcpdump", "-nr", name], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        total += sum(1 for line in out.splitlines() if line[:1].isdigit())  # not hex lines
    assert total == 50


def test_negative_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        RotatingWriter(tmp_path / "x", linktype=LinkType.RAW, rotate_bytes=-1)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("x.pcap", (".", "x.pcap")),
        ("a/b/x.pcap", ("a/b", "x.pcap")),
        ("a/b/%Y/c/x.pcap", ("a/b", "%Y/c/x.pcap")),
        ("%Y/x.pcap", (".", "%Y/x.pcap")),
        ("/x.pcap", ("/", "x.pcap")),
        ("/%Y/x.pcap", ("/", "%Y/x.pcap")),
        ("/a/%Y/x.pcap", ("/a", "%Y/x.pcap")),
        ("/a/b/x-%H.pcap", ("/a/b", "x-%H.pcap")),
    ],
)
def test_split_template_keeps_strftime_fields_below(
    template: str, expected: tuple[str, str]
) -> None:
    assert split_template(template) == expected


def pcap_magic(path: Path) -> bytes:
    return path.read_bytes()[:4]


def test_headers_carry_the_settings(tmp_path: Path) -> None:
    """Nanosecond pcap by default, microseconds on request; the snaplen (0: 262144) and the
    link type in every file's header, pcap and pcapng."""
    first = RotatingWriter(tmp_path / "ns.pcap", linktype=LinkType.RAW)
    first.close()
    assert pcap_magic(tmp_path / "ns.pcap") == bytes.fromhex("4d3cb2a1")
    header = (tmp_path / "ns.pcap").read_bytes()
    assert struct.unpack_from("<II", header, 16) == (262144, 101)
    micro = RotatingWriter(
        tmp_path / "us.pcap", linktype=LinkType.ETHERNET, nanosecond=False, snaplen=96
    )
    micro.close()
    header = (tmp_path / "us.pcap").read_bytes()
    assert header[:4] == bytes.fromhex("d4c3b2a1")
    assert struct.unpack_from("<II", header, 16) == (96, 1)
    ng = RotatingWriter(
        tmp_path / "n.pcapng", linktype=LinkType.LINUX_SLL2, pcapng=True, snaplen=80
    )
    ng.write_batch(packets(1))
    ng.close()
    data = (tmp_path / "n.pcapng").read_bytes()
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb = struct.unpack_from("<IIHHI", data, shb_len)
    assert (idb[0], idb[2], idb[4]) == (1, 276, 80)  # an IDB: link type and snaplen


def test_a_template_without_g_is_not_formatted(tmp_path: Path) -> None:
    """Mutation guarded: strftime applied without ``-G``."""
    writer = RotatingWriter(tmp_path / "cap%d.pcap", linktype=LinkType.RAW, rotate_bytes=300)
    writer.write_batch(packets(5))
    writer.close()
    assert [Path(n).name for n in writer.files] == ["cap%d.pcap", "cap%d.pcap1"]


def test_one_file_ring_has_no_counter(tmp_path: Path) -> None:
    """``-C -W 1``: the counter has no digits to pad (tcpdump's width of W-1 = 0)."""
    writer = RotatingWriter(
        tmp_path / "one.pcap", linktype=LinkType.RAW, rotate_bytes=300, max_files=1
    )
    writer.write_batch(packets(7))
    writer.close()
    assert [Path(n).name for n in writer.files] == ["one.pcap"] * 3
    assert read_pcap(tmp_path / "one.pcap") == [p.data for p in packets(7)[6:]]


def test_an_existing_file_is_replaced_unless_kept(tmp_path: Path) -> None:
    """Mutations guarded: ``keep`` on by default; a kept pcap with capsvc's own header resumed
    without the header written twice; a foreign file overwritten instead of set aside."""
    base = tmp_path / "k.pcap"
    first = RotatingWriter(base, linktype=LinkType.ETHERNET, snaplen=96)
    first.write_batch(packets(3))
    first.close()
    again = RotatingWriter(base, linktype=LinkType.ETHERNET, snaplen=96)
    again.write_batch(packets(2))
    again.close()
    assert len(read_pcap(base)) == 2
    kept = RotatingWriter(base, linktype=LinkType.ETHERNET, snaplen=96, keep=True)
    kept.write_batch(packets(4))
    kept.close()
    assert kept.files == [str(base)] and len(read_pcap(base)) == 6
    assert base.read_bytes().count(bytes.fromhex("4d3cb2a1")) == 1
    foreign = tmp_path / "f.pcap"
    foreign.write_bytes(b"not a capture, keep me")
    other = RotatingWriter(foreign, linktype=LinkType.ETHERNET, keep=True)
    other.write_batch(packets(1))
    other.close()
    assert foreign.read_bytes() == b"not a capture, keep me"
    assert (
        other.files == [str(tmp_path / "f-1.pcap")] and len(read_pcap(tmp_path / "f-1.pcap")) == 1
    )


def test_every_name_is_claimed_before_its_file_is_made(tmp_path: Path) -> None:
    claimed: list[str] = []

    def claim(name: str) -> None:
        assert not (tmp_path / name).exists()
        if name.endswith("2"):
            raise OptionError(f"{name} is taken")
        claimed.append(name)

    writer = RotatingWriter(
        tmp_path / "c.pcap", linktype=LinkType.RAW, rotate_bytes=300, claim=claim
    )
    with pytest.raises(OptionError, match=r"c\.pcap2 is taken"):
        writer.write_batch(packets(10))
    writer.close()
    assert claimed == ["c.pcap", "c.pcap1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pcap", "c.pcap1"]


def test_a_directory_given_is_used_through_a_descriptor_of_its_own(tmp_path: Path) -> None:
    where = Directory(tmp_path)
    writer = RotatingWriter("sub/d.pcap", directory=where, linktype=LinkType.RAW)
    where.close()  # the writer holds its own descriptor
    writer.write_batch(packets(2))
    writer.close()
    assert writer.files == [str(tmp_path / "sub" / "d.pcap")]
    assert len(read_pcap(tmp_path / "sub" / "d.pcap")) == 2


def test_flush_makes_the_file_whole_while_it_is_open(tmp_path: Path) -> None:
    writer = RotatingWriter(tmp_path / "f.pcap", linktype=LinkType.RAW)
    writer.write_batch(packets(3))
    writer.flush()
    assert len(read_pcap(tmp_path / "f.pcap")) == 3  # read while the writer is open
    writer.close()
    writer.flush()  # nothing open: no error
    writer.close()  # idempotent
    assert writer.finished is False


def test_period_boundaries_are_exact(tmp_path: Path) -> None:
    """A packet at exactly start + G opens the next file, one nanosecond before stays; a new
    period starts at its first packet's whole second. Mutations guarded: ``>`` for ``>=``, the
    period's nanoseconds miscounted, a period starting at the packet's fraction of a second."""
    writer = RotatingWriter(tmp_path / "p-%s.pcap", linktype=LinkType.RAW, rotate_seconds=1000)
    start = int(Path(writer.files[0]).name[2:-5]) * 10**9
    g = 1000 * 10**9
    stamps = [
        start,
        start + g - 1,
        start + g,
        start + 2 * g + 500_000_000,
        start + 3 * g + 200_000_000,
    ]
    writer.write_batch([Packet(t, FRAME, 84, Direction.INBOUND, 0) for t in stamps])
    writer.close()
    s = start // 10**9
    assert [Path(n).name for n in writer.files] == [
        f"p-{s + k}.pcap" for k in (0, 1000, 2000, 3000)
    ]
    assert [len(read_pcap(Path(n))) for n in writer.files] == [2, 1, 1, 1]


def test_pcapng_files_end_near_the_limit(tmp_path: Path) -> None:
    """One big batch is split where a file passes the limit, by the bound of an EPB: no file
    passes it by more than one block. Mutation guarded: the bound's overhead subtracted."""
    writer = RotatingWriter(
        tmp_path / "b.pcapng", linktype=LinkType.ETHERNET, pcapng=True, rotate_bytes=2000
    )
    writer.write_batch(packets(100))
    writer.close()
    sizes = [os.path.getsize(n) for n in writer.files]
    assert len(sizes) > 5
    assert all(size <= 2000 + 200 for size in sizes), sizes
    assert all(size > 2000 - 200 for size in sizes[:-1]), sizes


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rotate_seconds": -1}, "rotate_seconds, rotate_bytes and max_files must not be negative"),
        ({"max_files": -1}, "rotate_seconds, rotate_bytes and max_files must not be negative"),
        (
            {"rotate_seconds": 1e9 + 1},
            "rotate_seconds must be at most 1e+09 and rotate_bytes at most 1e+15",
        ),
        (
            {"rotate_bytes": 10**15 + 1},
            "rotate_seconds must be at most 1e+09 and rotate_bytes at most 1e+15",
        ),
        (
            {"rotate_seconds": float("nan")},
            "rotate_seconds must be at most 1e+09 and rotate_bytes at most 1e+15",
        ),
    ],
)
def test_settings_out_of_range_are_refused(
    tmp_path: Path, options: dict[str, float], message: str
) -> None:
    with pytest.raises(OptionError, match=f"^{re.escape(message)}"):
        RotatingWriter(tmp_path / "x", linktype=LinkType.RAW, **options)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_the_largest_settings_are_accepted(tmp_path: Path) -> None:
    writer = RotatingWriter(
        tmp_path / "m.pcap", linktype=LinkType.RAW, rotate_seconds=1e9, rotate_bytes=10**15
    )
    writer.write_batch(packets(3))
    writer.close()
    assert writer.files == [str(tmp_path / "m.pcap")]


def test_a_full_disk_leaves_the_file_at_its_last_flush(small_disk: Path) -> None:
    """On a 64 KiB tmpfs: the write or flush that fails leaves the file cut back to its last
    successful flush, whole records only, and nothing written after. Mutations guarded: no
    checkpoint kept, the flush not marking it, the cut skipped when closing fails."""
    writer = RotatingWriter(small_disk / "full.pcap", linktype=LinkType.ETHERNET)
    flushed = 0
    sent = 0
    with pytest.raises(OSError) as info:
        for k in range(200):
            batch = [
                Packet(10**18 + k * 100 + i, bytes(1000), 1000, Direction.INBOUND, 0)
                for i in range(10)
            ]
            writer.write_batch(batch)
            sent += len(batch)
            writer.flush()
            flushed = sent
    assert info.value.errno == errno.ENOSPC
    with contextlib.suppress(OSError):
        writer.close()
    got = read_pcap(small_disk / "full.pcap")
    assert 0 < len(got) == flushed
    assert os.path.getsize(small_disk / "full.pcap") == 24 + flushed * (16 + 1000)


def test_a_finished_writer_writes_none_of_a_later_batch(tmp_path: Path) -> None:
    """Once ``max_files`` periods are done, ``write_batch`` returns how many of the batch it
    wrote: none, for the batch that finished it and for every one after. Mutation guarded:
    a batch given to a finished writer counted as one packet written (`_write_batch` 4)."""
    writer = RotatingWriter(
        tmp_path / "f-%s.pcap", linktype=LinkType.RAW, rotate_seconds=1, max_files=1
    )
    start = int(Path(writer.files[0]).name[2:-5]) * 10**9
    assert writer.write_batch(packets(2, start_ns=start)) is None
    assert writer.write_batch(packets(3, start_ns=start + 1_500_000_000)) == 0
    assert writer.finished
    assert writer.write_batch(packets(3, start_ns=start + 1_600_000_000)) == 0
    writer.close()
    assert [len(read_pcap(Path(n))) for n in writer.files] == [2]


def _interfaces_read_back(path: str) -> list[tuple[bytes, int]]:
    """(frame, link type of its interface) of every packet of a capture file, read by
    capsvc's own reader."""
    from capsvc.sources.capfile import read_capture

    got = []
    with read_capture(path) as cap:
        for batch in cap:
            got += [(p.data, cap.linktypes[p.ifindex]) for p in batch]
    return got


def test_a_pcapng_ring_keeps_each_interfaces_link_type(tmp_path: Path) -> None:
    """A capture of two link types (``linktypes``: ifindex 2 is raw IP, the rest Ethernet)
    rotated by size into a ring: every file describes each interface with its own link type,
    read back by capsvc's reader. Mutations guarded: ``linktypes`` not kept by the writer
    (`__init__` 46) or not given to the pcapng writer of each file (`_open` 54, 58)."""
    base = tmp_path / "two.pcapng"
    writer = RotatingWriter(
        base,
        linktype=LinkType.ETHERNET,
        pcapng=True,
        rotate_bytes=800,
        max_files=3,
        linktypes={2: int(LinkType.RAW)},
    )
    base_ns = time.time_ns()
    sent = [
        Packet(base_ns + i, FRAME[:60] + i.to_bytes(4, "big"), 64, Direction.INBOUND, 1 + i % 2)
        for i in range(24)
    ]
    for i in range(0, len(sent), 2):
        writer.write_batch(sent[i : i + 2])
    writer.close()
    assert len(writer.files) > 3  # the ring went round
    names = sorted(set(writer.files))
    assert names == [f"{base}{k}" for k in range(3)]
    last = writer.files[-3:]
    got = [packet for name in last for packet in _interfaces_read_back(name)]
    linktype = {1: int(LinkType.ETHERNET), 2: int(LinkType.RAW)}
    expected = [(p.data, linktype[p.ifindex]) for p in sent]
    assert got == expected[len(expected) - len(got) :]
    assert all(_interfaces_read_back(name) for name in names)
    assert {lt for name in names for _data, lt in _interfaces_read_back(name)} == {1, 101}


def test_a_pcap_ring_refuses_a_second_link_type_in_every_file(tmp_path: Path) -> None:
    """pcap holds one link type: an interface of another one, known from the start or added
    after a rotation, is refused with OptionError and none of its batch is written.
    Mutations guarded: ``linktypes`` not given to the pcap writer of each file (`_open` 65,
    71)."""
    base = tmp_path / "one.pcap"
    writer = RotatingWriter(base, linktype=LinkType.ETHERNET, linktypes={2: int(LinkType.RAW)})
    writer.flush()
    with pytest.raises(OptionError, match="interface 2 of the input has link type RAW"):
        writer.write_batch(packets(1))
    writer.close()
    assert read_pcap(base) == []
    linktypes = {1: int(LinkType.ETHERNET)}
    writer = RotatingWriter(base, linktype=LinkType.ETHERNET, rotate_bytes=250, linktypes=linktypes)
    sent = packets(4)
    writer.write_batch(sent)
    writer.flush()
    assert len(writer.files) == 2
    linktypes[2] = int(LinkType.RAW)
    with pytest.raises(OptionError, match="interface 2 of the input has link type RAW"):
        writer.write_batch(packets(1))
    writer.close()
    assert [len(read_pcap(Path(n))) for n in writer.files] == [3, 1]


def test_a_file_that_fails_when_closed_is_cut_back_and_the_error_raised(
    small_disk: Path,
) -> None:
    """On a 64 KiB tmpfs: a batch held in the writer's buffer until ``close`` does not fit;
    ``close`` raises the ENOSPC and leaves the file at its last flush (the header). Mutation
    guarded: a failure at the close taken for one raised before and swallowed
    (`_close_current` 5)."""
    path = small_disk / "late.pcap"
    writer = RotatingWriter(path, linktype=LinkType.ETHERNET)
    writer.flush()
    writer.write_batch(
        [Packet(10**18 + i, bytes(1000), 1000, Direction.INBOUND, 0) for i in range(100)]
    )
    assert os.path.getsize(path) == 24  # all of it still in the buffer
    with pytest.raises(OSError) as info:
        writer.close()
    assert info.value.errno == errno.ENOSPC
    assert os.path.getsize(path) == 24
    assert read_pcap(path) == []
    writer.close()  # idempotent: nothing left to fail


def test_a_failure_reported_once_is_not_raised_again_by_close(small_disk: Path) -> None:
    """On a 64 KiB tmpfs with no descriptor left for /dev/null: the flush that fails raises
    ENOSPC and cannot send the buffer elsewhere, so ``close`` fails to write it once more;
    that failure was reported already and ``close`` returns, with the file's descriptor
    closed. Mutation guarded: a close failing after a failure already raised taken for a new
    one and raised (`_close_current` 4)."""
    path = small_disk / "twice.pcap"
    writer = RotatingWriter(path, linktype=LinkType.ETHERNET)
    writer.flush()
    assert len(descriptors_of(path)) == 1
    fd = os.open(os.devnull, os.O_RDONLY)  # the lowest descriptor free
    os.close(fd)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd, hard))
    try:
        with pytest.raises(OSError) as info:
            writer.write_batch(  # 200 kB: more than twice what the disk holds
                [Packet(10**18 + i, bytes(1000), 1000, Direction.INBOUND, 0) for i in range(200)]
            )
            writer.flush()
        assert info.value.errno == errno.ENOSPC
        with pytest.raises(OSError) as opened:
            os.open(os.devnull, os.O_RDONLY)
        assert opened.value.errno == errno.EMFILE
        writer.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert descriptors_of(path) == []
