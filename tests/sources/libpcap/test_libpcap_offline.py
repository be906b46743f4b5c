"""libpcap binding without a network: capture files, the filter compiler, link type names, errors.

Files are written by capsvc's PcapWriter and by tcpdump/tshark; libpcap must read back exactly
the packets, bytes and nanosecond time stamps that went in.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import ether, ipv4, sll2, tcp, udp

from capsvc import (
    BackendUnavailableError,
    CaptureError,
    Direction,
    LinkType,
    OptionError,
    Packet,
    Session,
)
from capsvc.sinks._pcap import PcapWriter
from capsvc.sources import libpcap
from capsvc.sources.libpcap import _ffi as _libpcap_ffi
from capsvc.sources.libpcap._source import LibpcapSource

TS = 1_700_000_000_123_456_789
FRAMES = [
    ether(ipv4("10.1.0.1", "10.1.0.2", tcp(40000, 80, flags="S"))),
    ether(ipv4("10.1.0.2", "10.1.0.1", tcp(80, 40000, flags="SA"))),
    ether(ipv4("10.1.0.1", "10.1.0.2", tcp(40000, 80, b"GET / HTTP/1.0\r\n\r\n", flags="PA"))),
    ether(ipv4("10.1.0.1", "10.9.9.9", udp(5353, 53, b"\x12\x34" + b"\0" * 30))),
    ether(ipv4("10.1.0.1", "10.9.9.9", udp(4000, 4001, b"z" * 1200))),
]
STAMPS = [TS + i * 1_000_000_007 for i in range(len(FRAMES))]


def write_pcap(path: Path, frames: list[bytes], *, snaplen: int = 0, linktype: int = 1) -> Path:
    with path.open("wb") as f:
        w = PcapWriter(f, snaplen, linktype, nanosecond=True)
        for ts, frame in zip(STAMPS, frames, strict=False):
            w.write_packet(ts, frame)
    return path


@pytest.fixture
def ours(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "ours.pcap", FRAMES)


def read_all(handle: libpcap.Handle) -> list[tuple[bytes, libpcap.CaptureInfo]]:
    with handle:
        return list(handle)


def test_reads_our_pcap_exactly(ours: Path) -> None:
    got = read_all(libpcap.open_offline(ours))
    assert [d for d, _ in got] == FRAMES
    assert [ci.timestamp_ns for _, ci in got] == STAMPS
    assert [(ci.capture_length, ci.length) for _, ci in got] == [(len(f), len(f)) for f in FRAMES]
    assert all(ci.interface_index == 0 for _, ci in got)


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
def test_reads_tcpdump_written_file_with_nanoseconds(ours: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.pcap"
    subprocess.run(
        ["tcpdump", "-r", str(ours), "-w", str(theirs), "--time-stamp-precision=nano"],
        check=True,
        capture_output=True,
    )
    got = read_all(libpcap.open_offline(theirs))
    assert [d for d, _ in got] == FRAMES
    assert [ci.timestamp_ns for _, ci in got] == STAMPS


@pytest.mark.skipif(not shutil.which("tshark"), reason="needs tshark")
def test_reads_pcapng_written_by_tshark(ours: Path, tmp_path: Path) -> None:
    ng = tmp_path / "theirs.pcapng"
    subprocess.run(
        ["tshark", "-r", str(ours), "-F", "pcapng", "-w", str(ng)], check=True, capture_output=True
    )
    got = read_all(libpcap.open_offline(ng))
    assert [d for d, _ in got] == FRAMES
    assert [ci.timestamp_ns for _, ci in got] == STAMPS


def test_truncated_records_keep_the_wire_length(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "short.pcap", FRAMES, snaplen=60)
    with libpcap.open_offline(path) as handle:
        assert handle.snaplen == 60
        data, ci = handle.read_packet_data()  # 54 bytes: whole
        assert (len(data), ci.length) == (54, 54)
        handle.read_packet_data()
        handle.read_packet_data()
        data, ci = handle.read_packet_data()
        assert data == FRAMES[3][:60]
        assert (ci.capture_length, ci.length) == (60, len(FRAMES[3]))


def test_open_offline_file_from_file_object_and_bytesio(ours: Path) -> None:
    with ours.open("rb") as f:
        got = read_all(libpcap.open_offline_file(f))
        assert not f.closed  # the handle read a duplicate of the descriptor
    assert [d for d, _ in got] == FRAMES
    assert [ci.timestamp_ns for _, ci in got] == STAMPS
    got = read_all(libpcap.open_offline_file(io.BytesIO(ours.read_bytes())))
    assert [ci.timestamp_ns for _, ci in got] == STAMPS


def test_eof_raises_eoferror_and_zero_copy_view(ours: Path) -> None:
    with libpcap.open_offline(ours) as handle:
        for frame in FRAMES:
            view, ci = handle.zero_copy_read_packet_data()
            assert view.readonly
            assert bytes(view) == frame
            assert ci.capture_length == len(frame)
        with pytest.raises(EOFError):
            handle.read_packet_data()
        assert handle.link_type == 1
    with pytest.raises(libpcap.LibpcapError, match="closed"):
        handle.read_packet_data()


def test_new_bpf_matches_syn_only() -> None:
    syn = libpcap.new_bpf(1, 0, "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0")
    results = [syn.matches(libpcap.CaptureInfo(TS, len(f), len(f), 0), f) for f in FRAMES[:4]]
    assert results == [True, False, False, False]


def test_handle_new_bpf_uses_the_handle_link_type(ours: Path) -> None:
    with libpcap.open_offline(ours) as handle:
        udp_only = handle.new_bpf("udp")
        assert [udp_only.matches(ci, d) for d, ci in handle] == [False, False, False, True, True]


def parse_dd(text: str) -> list[tuple[int, int, int, int]]:
    """Parse ``tcpdump -dd`` output: ``{ 0x28, 0, 0, 0x0000000c },`` per line."""
    rows = re.findall(r"\{\s*(0x[0-9a-f]+),\s*(\d+),\s*(\d+),\s*(0x[0-9a-f]+)\s*\}", text)
    return [(int(c, 16), int(jt), int(jf), int(k, 16)) for c, jt, jf, k in rows]


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
def test_instruction_filter_from_tcpdump_dd(ours: Path) -> None:
    out = subprocess.run(
        ["tcpdump", "-dd", "-y", "EN10MB", "udp dst port 53"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    program = parse_dd(out)
    assert len(program) > 3
    assert program == list(libpcap.compile_bpf_filter(1, 262144, "udp dst port 53"))
    with libpcap.open_offline(ours) as handle:
        handle.set_bpf_instruction_filter(program)
        got = list(handle)
    assert [d for d, _ in got] == [FRAMES[3]]


def test_too_many_instructions_are_refused(ours: Path) -> None:
    accept_all = (0x06, 0, 0, 0xFFFF)
    assert libpcap.MAX_BPF_INSTRUCTIONS == 4096
    bpf = libpcap.new_bpf_instruction_filter([accept_all] * libpcap.MAX_BPF_INSTRUCTIONS)
    assert len(bpf.instructions()) == 4096
    with libpcap.open_offline(ours) as handle, pytest.raises(ValueError, match="4096"):
        handle.set_bpf_instruction_filter([accept_all] * (libpcap.MAX_BPF_INSTRUCTIONS + 1))
    with pytest.raises(ValueError):
        libpcap.new_bpf_instruction_filter([])


def test_bad_filter_expression_carries_libpcap_text() -> None:
    with pytest.raises(libpcap.LibpcapError, match="syntax error"):
        libpcap.new_bpf(1, 0, "tcp and ((")


def test_garbage_file_is_unknown_file_format(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture file at all" * 4)
    with pytest.raises(libpcap.LibpcapFileError, match="unknown file format") as info:
        libpcap.open_offline(garbage)
    assert isinstance(info.value, CaptureError)
    with garbage.open("rb") as f, pytest.raises(libpcap.LibpcapFileError, match="unknown file"):
        libpcap.open_offline_file(f)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(libpcap.LibpcapFileError, match="No such file"):
        libpcap.open_offline(tmp_path / "missing.pcap")


@pytest.mark.parametrize(
    ("name", "value", "description"),
    [("EN10MB", 1, "Ethernet"), ("LINUX_SLL2", 276, "Linux cooked v2"), ("RAW", 12, "Raw IP")],
)
def test_datalink_names(name: str, value: int, description: str) -> None:
    assert libpcap.datalink_name_to_val(name.lower()) == value
    assert libpcap.datalink_val_to_name(value) == name
    assert libpcap.datalink_val_to_description(value) == description


def test_unknown_names_raise() -> None:
    with pytest.raises(ValueError):
        libpcap.datalink_name_to_val("NO_SUCH_LINK")
    with pytest.raises(ValueError):
        libpcap.timestamp_source_from_string("no-such-clock")
    assert str(libpcap.timestamp_source_from_string("adapter")) == "adapter"


def test_version_and_devices() -> None:
    assert libpcap.version().startswith("libpcap version 1.")
    devices = {d.name: d for d in libpcap.find_all_devs()}
    lo = devices["lo"]
    assert lo.flags & 1  # PCAP_IF_LOOPBACK
    assert any(str(a.ip) == "127.0.0.1" and str(a.netmask) == "255.0.0.0" for a in lo.addresses)


def test_missing_library_names_the_package() -> None:
    with pytest.raises(BackendUnavailableError, match=r"apt-get install libpcap0\.8"):
        _libpcap_ffi.load(["libcapsvc-no-such-pcap.so.9"])
    # A library without the required symbol is refused the same way.
    with pytest.raises(BackendUnavailableError, match="pcap_open_dead_with_tstamp_precision"):
        _libpcap_ffi.load(["libc.so.6"])


def test_without_libpcap_import_works_and_opening_names_the_package(ours: Path) -> None:
    code = (
        "import sys, capsvc\n"
        "from capsvc.sources import libpcap\n"
        "try:\n"
        f"    libpcap.open_offline({str(ours)!r})\n"
        "except capsvc.BackendUnavailableError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "CAPSVC_LIBPCAP": "libcapsvc-no-such-pcap.so.9"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[3],
    ).stdout
    assert "libpcap is not installed: apt-get install libpcap0.8" in out
    assert "libcapsvc-no-such-pcap.so.9" in out


def test_import_does_not_load_libpcap() -> None:
    code = (
        "import sys, capsvc, capsvc.sources.libpcap;"
        "from capsvc.sources.libpcap import _ffi as f;"
        "assert f.lib.cache_info().currsize == 0, 'loaded at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


async def test_source_reads_a_file_into_a_session(ours: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.pcap"
    source = LibpcapSource(libpcap.open_offline(ours))
    assert (source.live, source.linktype) == (False, LinkType.ETHERNET)
    async with Session(output=out, source=source) as session:
        await session.wait_source()
    assert session.stats().packets == len(FRAMES)
    assert source.stats().received == len(FRAMES)
    got = read_all(libpcap.open_offline(out))
    assert [d for d, _ in got] == FRAMES
    assert [ci.timestamp_ns for _, ci in got] == STAMPS
    await source.aclose()  # idempotent after the session closed it


async def test_source_takes_direction_and_ifindex_from_sll2(tmp_path: Path) -> None:
    payload = ipv4("10.1.0.1", "10.1.0.2", udp(1, 2, b"x"))
    frames = [sll2(payload, pkttype=0, ifindex=7), sll2(payload, pkttype=4, ifindex=9)]
    path = write_pcap(tmp_path / "sll2.pcap", frames, linktype=LinkType.LINUX_SLL2)
    source = LibpcapSource(libpcap.open_offline(path))
    batches = [batch async for batch in source]
    packets: list[Packet] = [p for batch in batches for p in batch]
    assert [(p.direction, p.ifindex) for p in packets] == [
        (Direction.INBOUND, 7),
        (Direction.OUTBOUND, 9),
    ]
    await source.aclose()


def test_source_with_a_bad_filter_closes_the_handle(ours: Path) -> None:
    handle = libpcap.open_offline(ours)
    with pytest.raises(libpcap.LibpcapError, match="syntax error"):
        LibpcapSource(handle, filter="udp and ((")
    assert handle.closed


async def test_source_applies_a_libpcap_filter_to_a_file(ours: Path) -> None:
    source = LibpcapSource(libpcap.open_offline(ours), filter="tcp")
    got = [p.data async for batch in source for p in batch]
    assert got == FRAMES[:3]
    await source.aclose()


async def test_source_takes_a_parsed_filter(ours: Path) -> None:
    from capsvc.filter import parse

    source = LibpcapSource(libpcap.open_offline(ours), filter=parse("tcp"))
    assert [p.data async for batch in source for p in batch] == FRAMES[:3]
    await source.aclose()


# -- gopacket's surface: BPF.String, instruction filters, CaptureInfo, error values -------------


def test_bpf_str_is_its_expression_and_instruction_filters_say_so(ours: Path) -> None:
    bpf = libpcap.new_bpf(1, 0, "tcp port 80")
    assert str(bpf) == bpf.expression == "tcp port 80"
    with libpcap.open_offline(ours) as handle:
        insns = handle.compile_bpf_filter("udp")
        raw = handle.new_bpf_instruction_filter(insns)
    assert raw.expression == ""
    assert str(raw) == f"BPF instruction filter ({len(insns)} instructions)"


def test_handle_instruction_filter_matches_as_the_compiled_one(ours: Path) -> None:
    with libpcap.open_offline(ours) as handle:
        compiled = handle.new_bpf("udp dst port 53")
        rebuilt = handle.new_bpf_instruction_filter(compiled.instructions())
        got = [(compiled.matches(ci, d), rebuilt.matches(ci, d)) for d, ci in handle]
    assert [a for a, _ in got] == [False, False, False, True, False]
    assert all(a == b for a, b in got)


def test_capture_info_defaults_and_wire_length_matching() -> None:
    """``greater``/``len`` see the wire length a CaptureInfo carries, not the captured bytes."""
    frame = FRAMES[2][:60]
    ci = libpcap.CaptureInfo(capture_length=60, length=200)
    assert (ci.timestamp_ns, ci.interface_index) == (0, 0)
    assert libpcap.new_bpf(1, 0, "greater 100").matches(ci, frame)
    assert not libpcap.new_bpf(1, 0, "greater 100").matches(ci._replace(length=60), frame)


def test_next_error_values_and_the_exceptions_they_are(ours: Path) -> None:
    assert [int(v) for v in libpcap.NextError] == [1, 0, -1, -2, -3]
    assert libpcap.TimeoutExpiredError.next_error == libpcap.NextError.TIMEOUT_EXPIRED
    with libpcap.open_offline(ours) as handle:
        for _ in FRAMES:
            handle.read_packet_data()
        with pytest.raises(libpcap.NoMorePacketsError) as info:
            handle.read_packet_data()
    assert isinstance(info.value, EOFError)
    assert info.value.next_error == libpcap.NextError.NO_MORE_PACKETS


def test_error_constants_are_pcaps_status_codes() -> None:
    assert (libpcap.ERR_GENERIC, libpcap.ERR_BREAK, libpcap.ERR_NOT_ACTIVE) == (-1, -2, -3)
    assert (libpcap.ERR_NO_SUCH_DEVICE, libpcap.ERR_PERMISSION_DENIED) == (-5, -8)
    assert libpcap.ERR_TIMESTAMP_PRECISION_NOT_SUPPORTED == -12
    assert (libpcap.WARNING_GENERIC, libpcap.WARNING_PROMISC_NOT_SUPPORTED) == (1, 2)
    assert libpcap.WARNING_TIMESTAMP_TYPE_NOT_SUPPORTED == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="activating a device needs root")
def test_inactive_handle_error_and_no_such_device_code() -> None:
    with libpcap.InactiveHandle("cstnosuchdev1") as inactive:
        assert inactive.error() == ""
        with pytest.raises(libpcap.NoSuchDeviceError) as info:
            inactive.activate()
        assert info.value.code == libpcap.ERR_NO_SUCH_DEVICE
        assert inactive.error() == "No such device exists"  # libpcap's own text


def test_unknown_timestamp_source_name_is_a_clear_error() -> None:
    with libpcap.InactiveHandle("lo") as inactive, pytest.raises(OptionError) as info:
        inactive.set_timestamp_source("foo")
    assert "unknown time stamp source 'foo'" in str(info.value)
    assert "host" in str(info.value)  # the names libpcap knows are listed


@pytest.mark.parametrize("linktype", [LinkType.ETHERNET, LinkType.LINUX_SLL2, LinkType.LINUX_SLL])
async def test_c_collector_and_ctypes_callback_give_the_same_packets(
    tmp_path: Path, linktype: LinkType
) -> None:
    """The C loop over pcap_next_ex stands in for the per-packet ctypes callback: same bytes,
    times, lengths, directions and interface indexes (mutation guarded: the C path taking the
    captured length as the wire length, or losing the SLL2 ifindex)."""
    if linktype == LinkType.ETHERNET:
        frames = FRAMES
    else:
        payload = ipv4("10.1.0.1", "10.1.0.2", udp(1, 2, b"c" * 30))
        frames = [sll2(payload, pkttype=0, ifindex=7), sll2(payload, pkttype=4, ifindex=9)]
    path = write_pcap(tmp_path / "f.pcap", frames, snaplen=40, linktype=linktype)

    async def read(c_path: bool) -> list[Packet]:
        source = LibpcapSource(libpcap.open_offline(path))
        if not c_path:
            source._collect = None
        elif source._collect is None:
            pytest.skip("capsvc._speedups is not built")
        got = [p async for batch in source for p in batch]
        await source.aclose()
        return got

    fast, reference = await read(True), await read(False)
    assert fast == reference
    assert [p.wire_len for p in fast] == [len(f) for f in frames]
    assert all(len(p.data) == min(40, len(f)) for p, f in zip(fast, frames, strict=True))
