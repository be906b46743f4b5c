"""PF_RING's ``pcap:`` module reading capture files, against the real libpfring and the stand-in.

Every behaviour test runs on both libraries (``any_library``); the first test holds the
stand-in to the real library call by call, byte by byte, so the stand-in cannot drift from it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import re
from pathlib import Path

import pytest
from _pfring_fake import FRAMES, ts_of, write_pcap

from capsvc import FilterError, LinkType, Packet, Session, SourceStats
from capsvc.sources.pfring import (
    CaptureInfo,
    ClusterType,
    Direction,
    Flag,
    NextResult,
    PfRingEndOfFile,
    PfRingError,
    PfRingFilterError,
    PfRingSource,
    Ring,
)
from capsvc.sources.pfring import _ffi as ffi

NOT_SUPPORTED = "is not supported by this PF_RING module (pcap)"


@pytest.fixture
def frames_pcap(tmp_path: Path) -> Path:
    """FRAMES as a nanosecond pcap (libpcap hands out microseconds)."""
    return write_pcap(tmp_path / "frames.pcap", FRAMES)


def us(i: int) -> int:
    """Frame i's timestamp as the pcap: module delivers it (microseconds)."""
    return ts_of(i) // 1000 * 1000


# -- the stand-in answers as the real library does --------------------------------------------


def _answers(library: Path, pcap: Path) -> list[object]:
    """The same calls on ``library``: every return code, errno, header byte and copied byte."""
    so = ffi.lib(library)
    hdr = ctypes.create_string_buffer(ffi.PKTHDR_BUFFER_SIZE)
    buf = ctypes.create_string_buffer(256)
    bufp = ctypes.c_void_p()
    out: list[object] = []

    def recv(ring: int, buffer_len: int) -> None:
        ctypes.memset(hdr, 0xEE, len(hdr))  # shows every byte the library writes
        ctypes.memset(buf, 0xEE, len(buf))
        bufp.value = ctypes.addressof(buf)
        rc = so.pfring_recv(ring, ctypes.byref(bufp), buffer_len, hdr, 0)
        caplen = ffi.PFRING_PKTHDR.unpack_from(hdr.raw)[2]
        data = ctypes.string_at(bufp.value, caplen) if rc == 1 else buf.raw
        out.append(("recv", buffer_len, rc, hdr.raw, data))

    ctypes.set_errno(0)
    missing = so.pfring_open(b"pcap:/nonexistent/none.pcap", 128, 0)
    out.append(("open missing", missing, ctypes.get_errno()))
    for caplen, flags in ((100000, 0), (40, 0), (128, ffi.PF_RING_REENTRANT)):
        ring = so.pfring_open(f"pcap:{pcap}".encode(), caplen, flags)
        assert ring, f"{library} cannot open {pcap}"
        stat = ctypes.create_string_buffer(24)
        out.append(("fd", so.pfring_get_selectable_fd(ring)))
        recv(ring, 0)  # not enabled yet
        out.append(("modes", [so.pfring_set_socket_mode(ring, mode) for mode in (0, 1, 3, 2)]))
        out.append(("direction", so.pfring_set_direction(ring, 1)))
        out.append(("cluster", so.pfring_set_cluster(ring, 3, 0)))
        out.append(("leave", so.pfring_remove_from_cluster(ring)))
        out.append(("name", so.pfring_set_application_name(ring, b"probe")))
        out.append(("stats", so.pfring_stats(ring, stat)))
        out.append(("sampling", so.pfring_set_sampling_rate(ring, 3)))
        out.append(("bad filter", so.pfring_set_bpf_filter(ring, b"port port")))
        out.append(("filter", so.pfring_set_bpf_filter(ring, b"udp")))
        out.append(("send early", so.pfring_send(ring, b"x" * 60, 60, 1)))
        out.append(("enable", so.pfring_enable_ring(ring), so.pfring_enable_ring(ring)))
        out.append(("mode late", so.pfring_set_socket_mode(ring, 2)))
        out.append(("poll", so.pfring_poll(ring, 0), so.pfring_poll(ring, 1)))
        out.append(("send", so.pfring_send(ring, b"x" * 60, 60, 1)))
        for buffer_len in (200, 0, 200, 0, 0, 0, 0, 200, 200):  # 5 udp frames, then the end
            recv(ring, buffer_len)
        out.append(("disable", so.pfring_disable_ring(ring)))
        out.append(("unfilter", so.pfring_remove_bpf_filter(ring)))
        out.append(("stats late", so.pfring_stats(ring, stat)))
        so.pfring_close(ring)
    return out


def test_stand_in_answers_like_the_real_library(
    fake_library: Path, real_library: Path, frames_pcap: Path
) -> None:
    """Return codes, errno, the header bytes written (EOF's stale header included), the bytes
    copied, for files, small caplens and REENTRANT rings (mutation: make the stand-in's copy
    read return 1, as it used to, and the first copy read differs)."""
    real = _answers(real_library, frames_pcap)
    stand_in = _answers(fake_library, frames_pcap)
    assert len(real) == len(stand_in)
    for step, (want, got) in enumerate(zip(real, stand_in, strict=True)):
        assert got == want, f"step {step}: real {want!r}, stand-in {got!r}"


# -- reads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [Flag(0), Flag.REENTRANT], ids=["plain", "reentrant"])
def test_copy_reads_to_the_end_of_the_file(
    any_library: Path, frames_pcap: Path, flags: Flag
) -> None:
    """The pcap: module returns 0 for a copied packet (mutation: take 0 as "no packet" in
    ``_wait_one`` and the first read raises) and ends a file with an empty header."""
    with Ring.open(f"pcap:{frames_pcap}", flags=flags, library=any_library) as ring:
        ring.enable()
        got = [ring.read_packet_data() for _ in FRAMES]
        assert not ring.at_end
        with pytest.raises(PfRingEndOfFile) as end:
            ring.read_packet_data()
        assert ring.at_end
        with pytest.raises(PfRingEndOfFile):  # and stays there
            ring.read_packet_data_into(bytearray(64))
    assert [data for data, _ in got] == FRAMES
    assert [info for _, info in got] == [
        CaptureInfo(us(i), len(f), len(f), 0) for i, f in enumerate(FRAMES)
    ]
    assert end.value.code_name == "NO_PKT_AVAILABLE" and isinstance(end.value, EOFError)
    assert str(frames_pcap) in str(end.value)


def test_zero_copy_reads_to_the_end_of_the_file(any_library: Path, frames_pcap: Path) -> None:
    """The end of a file comes back as -2 from a zero-copy read (mutation: treat -2 as an error
    in ``_is_end`` and the eleventh read raises INVALID_ARGUMENT instead)."""
    with Ring.open(f"pcap:{frames_pcap}", library=any_library) as ring:
        ring.enable()
        got = []
        for _ in FRAMES:
            view, info = ring.zero_copy_read_packet_data()
            got.append((bytes(view), info.capture_length, info.length))
        with pytest.raises(PfRingEndOfFile):
            ring.zero_copy_read_packet_data()
    assert got == [(f, len(f), len(f)) for f in FRAMES]


def test_read_into_a_small_buffer(any_library: Path, frames_pcap: Path) -> None:
    with Ring.open(f"pcap:{frames_pcap}", library=any_library) as ring:
        ring.enable()
        small = bytearray(20)
        info = ring.read_packet_data_into(memoryview(small))
    assert small == FRAMES[0][:20]
    assert info == CaptureInfo(us(0), 20, len(FRAMES[0]), 0)


def test_zero_copy_on_a_reentrant_ring_is_no_end_of_file(
    any_library: Path, frames_pcap: Path
) -> None:
    """libpfring refuses zero copy with REENTRANT by -2, the code that also ends a file: it
    must stay an error (mutation: drop the ``refused`` test in ``_is_end``)."""
    with Ring.open(f"pcap:{frames_pcap}", flags=Flag.REENTRANT, library=any_library) as ring:
        ring.enable()
        with pytest.raises(PfRingError) as info:
            ring.zero_copy_read_packet_data()
        data, _ = ring.read_packet_data()
    assert not isinstance(info.value, PfRingEndOfFile)
    assert info.value.code_name == "INVALID_ARGUMENT" and data == FRAMES[0]


def test_reads_before_enable(any_library: Path, frames_pcap: Path) -> None:
    with Ring.open(f"pcap:{frames_pcap}", library=any_library) as ring:
        with pytest.raises(PfRingError, match=r"RING_NOT_ENABLED \(-12\)"):
            ring.read_packet_data()
        with pytest.raises(PfRingError, match="RING_NOT_ENABLED"):
            ring._read_batch(4)


def test_next_results_are_gopackets_and_name_what_capsvc_raises(
    any_library: Path, frames_pcap: Path
) -> None:
    """gopacket's NextResult values, and the codes the documented exceptions carry: -7 is
    pfring.h's NOT_SUPPORTED (gopacket calls it NotEnabled), a ring not enabled says -12."""
    assert {r.name: int(r) for r in NextResult} == {
        "NO_PACKET_NONBLOCKING": 0,
        "ERROR": -1,
        "OK": 1,
        "NOT_ENABLED": -7,
    }
    with Ring.open(f"pcap:{frames_pcap}", library=any_library) as ring:
        with pytest.raises(PfRingError) as not_supported:
            ring.disable()
        assert not_supported.value.code == NextResult.NOT_ENABLED
        assert not_supported.value.code_name == "NOT_SUPPORTED"
        with pytest.raises(PfRingError) as not_enabled:
            ring.read_packet_data()
        assert not_enabled.value.code == -12


@pytest.mark.parametrize("flags", [Flag(0), Flag.REENTRANT], ids=["zero-copy", "copy"])
def test_batches_end_at_the_end_of_the_file(
    any_library: Path, frames_pcap: Path, flags: Flag
) -> None:
    with Ring.open(f"pcap:{frames_pcap}", flags=flags, library=any_library) as ring:
        ring.enable()
        batches = []
        while not ring.at_end:
            batches.append(ring._read_batch(4))
            assert len(batches) < 10
        assert ring._drained and ring._read_batch(4) == []
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [p.data for b in batches for p in b] == FRAMES
    assert [p.ts_ns for b in batches for p in b] == [us(i) for i in range(len(FRAMES))]


@pytest.mark.parametrize("flags", [Flag(0), Flag.REENTRANT], ids=["zero-copy", "copy"])
def test_snaplen_is_applied_to_file_reads(any_library: Path, tmp_path: Path, flags: Flag) -> None:
    """The pcap: module hands out a file's records whole (mutation: drop the snaplen cut in
    ``_read_batch`` and the zero-copy packets keep every byte)."""
    path = write_pcap(tmp_path / "w.pcap", FRAMES, wire_extra=7)
    with Ring.open(f"pcap:{path}", 40, flags, library=any_library) as ring:
        ring.enable()
        data, info = ring.read_packet_data()
        if not flags & Flag.REENTRANT:
            view, zero_copied = ring.zero_copy_read_packet_data()
            assert bytes(view) == FRAMES[1][:40] and zero_copied.capture_length == 40
        batch = ring._read_batch(100)
    assert data == FRAMES[0][:40]
    assert (info.capture_length, info.length) == (40, len(FRAMES[0]) + 7)
    rest = FRAMES[len(FRAMES) - len(batch) :]
    assert [p.data for p in batch] == [f[:40] for f in rest]
    assert [p.wire_len for p in batch] == [len(f) + 7 for f in rest]


@pytest.mark.parametrize("flags", [Flag(0), Flag.REENTRANT], ids=["zero-copy", "copy"])
def test_sampling_is_done_by_the_ring(any_library: Path, frames_pcap: Path, flags: Flag) -> None:
    """The pcap: module accepts a sampling rate and ignores it (mutation: trust its 0 in
    ``set_sampling_rate`` and all ten frames come through)."""
    with Ring.open(f"pcap:{frames_pcap}", flags=flags, library=any_library) as ring:
        ring.set_sampling_rate(3)
        ring.enable()
        first = ring.read_packet_data()[0]
        rest = ring._read_batch(100)
        with pytest.raises(ValueError, match="at least 1"):
            ring.set_sampling_rate(0)
    assert [first, *(p.data for p in rest)] == [FRAMES[0], FRAMES[3], FRAMES[6], FRAMES[9]]


def test_bpf_filter_and_a_bad_one(any_library: Path, frames_pcap: Path) -> None:
    """A bad expression is -2 from the real library, a FilterError here (mutation: check only
    for -1 in ``set_bpf_filter`` and a plain PfRingError comes out)."""
    with Ring.open(f"pcap:{frames_pcap}", library=any_library) as ring:
        with pytest.raises(PfRingFilterError) as bad:
            ring.set_bpf_filter("port port")
        ring.set_bpf_filter("tcp")
        ring.enable()
        batch = ring._read_batch(100)
    assert [p.data for p in batch] == FRAMES[1::2]
    assert isinstance(bad.value, FilterError) and bad.value.code == -2
    assert "PF_RING cannot compile this filter" in str(bad.value) and "port port" in str(bad.value)


@pytest.mark.parametrize("flags", [Flag(0), Flag.REENTRANT], ids=["zero-copy", "copy"])
@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("ether host 02:00:00:00:00:01", "ethernet addresses supported only on"),
        ("vlan", "no VLAN support for Raw IP"),
    ],
)
def test_a_filter_for_another_link_type_is_refused(
    any_library: Path, tmp_path: Path, flags: Flag, expr: str, reason: str
) -> None:
    """Where the pcap: module cannot compile a filter, the real libpfring falls back to one
    compiled for Ethernet, applied to zero-copy reads only: on raw IP, ``ether host`` matched
    nothing and ``vlan`` everything read by copy. The ring refuses such an expression with
    libpcap's reason (mutation: drop ``_check_filter`` from ``set_bpf_filter`` and the real
    library accepts it)."""
    path = write_pcap(tmp_path / "raw.pcap", [f[14:] for f in FRAMES], linktype=101)
    with Ring.open(f"pcap:{path}", flags=flags, library=any_library) as ring:
        assert ring.linktype == LinkType.RAW
        with pytest.raises(PfRingFilterError) as bad:
            ring.set_bpf_filter(expr)
        ring.set_bpf_filter("udp")  # fits raw IP
        ring.enable()
        batch = ring._read_batch(100)
    assert reason in bad.value.detail and "(RAW frames)" in str(bad.value)
    assert [p.data for p in batch] == [f[14:] for f in FRAMES[0::2]]


@pytest.mark.parametrize(
    ("call", "feature"),
    [
        (lambda r: r.stats(), "reading kernel statistics"),
        (lambda r: r.set_direction(Direction.RECEIVE_ONLY), "choosing a direction"),
        (lambda r: r.set_cluster(1, ClusterType.ROUND_ROBIN), "joining a cluster"),
        (lambda r: r.remove_from_cluster(), "leaving a cluster"),
        (lambda r: r.disable(), "disabling the ring"),
        (lambda r: r.remove_bpf_filter(), "removing a filter"),
        (lambda r: r.set_application_name("x"), "naming the ring"),
        (lambda r: r.write_packet_data(b"x" * 60), "sending"),
    ],
)
def test_not_supported_names_the_feature_and_the_module(
    any_library: Path, frames_pcap: Path, call: object, feature: str
) -> None:
    with Ring.open(f"pcap:{frames_pcap}", library=any_library) as ring:
        ring.enable()
        with pytest.raises(PfRingError) as info:
            call(ring)  # type: ignore[operator]
    assert info.value.code == -7 and info.value.code_name == "NOT_SUPPORTED"
    assert str(info.value).endswith(f"{feature} {NOT_SUPPORTED}")


# -- opening -----------------------------------------------------------------------------------


def test_a_missing_file_is_named(any_library: Path, tmp_path: Path) -> None:
    """libpfring says ENODEV for a missing file (mutation: report the errno as it comes and the
    message says "No such device")."""
    with pytest.raises(PfRingError) as missing:
        Ring.open(f"pcap:{tmp_path}/none.pcap", library=any_library)
    assert str(missing.value).endswith("none.pcap: no such capture file")
    assert missing.value.errno == errno.ENOENT and "device" not in str(missing.value)
    with pytest.raises(PfRingError, match="pcap:nosuchif0: no such capture file or interface"):
        Ring.open("pcap:nosuchif0", library=any_library)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is no capture file at all")
    with pytest.raises(PfRingError, match=r"not a capture file libpcap can read \(.*magic"):
        Ring.open(f"pcap:{junk}", library=any_library)


# -- PfRingSource ------------------------------------------------------------------------------


class ListSink:
    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def write_batch(self, batch: list[Packet]) -> None:
        self.packets.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("flags", [Flag.PROMISC, Flag.REENTRANT], ids=["zero-copy", "copy"])
async def test_source_reads_a_file_to_its_end(
    any_library: Path,
    tmp_path: Path,
    flags: Flag,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pcap:FILE source ends at the end of the file, waits for its reader rather than drop,
    and says once that the module keeps no statistics."""
    raw = [f[14:] for f in FRAMES]
    path = write_pcap(tmp_path / "raw.pcap", raw, linktype=int(LinkType.RAW))
    caplog.set_level(logging.WARNING, "capsvc")
    source = PfRingSource(f"pcap:{path}", flags=flags, batch_size=3, library=any_library)
    assert source.linktype == LinkType.RAW and not source.live and not source.kernel_stats
    sink = ListSink()
    async with Session(sinks=[sink], source=source, bufsize=2) as session:
        await session.wait_source()
        stats = session.stats()
    assert [p.data for p in sink.packets] == raw
    assert stats.packets == 10 and stats.dropped == 0
    assert source.stats() == SourceStats()
    warnings = [r.getMessage() for r in caplog.records if "kernel statistics" in r.getMessage()]
    assert warnings == [
        f"pcap:{path}: kernel statistics are not supported by this PF_RING module (pcap): "
        "packets received and dropped before capsvc are not counted"
    ]


async def test_source_refuses_what_the_module_cannot_do(
    any_library: Path, frames_pcap: Path
) -> None:
    """A direction or a cluster the module cannot honour is an error naming it, not a capture
    of something else."""
    with pytest.raises(PfRingError, match=re.escape(f"choosing a direction {NOT_SUPPORTED}")):
        PfRingSource(f"pcap:{frames_pcap}", direction=Direction.RECEIVE_ONLY, library=any_library)
    with pytest.raises(PfRingError, match=re.escape(f"joining a cluster {NOT_SUPPORTED}")):
        PfRingSource(f"pcap:{frames_pcap}", cluster=(3, ClusterType.PER_FLOW), library=any_library)
    with pytest.raises(PfRingFilterError):
        PfRingSource(f"pcap:{frames_pcap}", filter="port port", library=any_library)


async def test_source_samples_and_cuts(any_library: Path, frames_pcap: Path) -> None:
    source = PfRingSource(f"pcap:{frames_pcap}", snaplen=30, sampling_rate=4, library=any_library)
    assert source.snaplen == 30
    packets = [p async for batch in source for p in batch]
    await source.aclose()
    assert [p.data for p in packets] == [FRAMES[i][:30] for i in (0, 4, 8)]
