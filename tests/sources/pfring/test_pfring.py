"""The PF_RING binding against the ABI-faithful stand-in library: kernel rings, which only the
stand-in can serve here, and the binding's side of the C boundary.

The stand-in logs every call with its arguments, so these tests check what crossed the C
boundary: argument values and types, enum values, the header offsets we read, the return codes
we map, and the order of calls. The ``pcap:`` module runs against both libraries in
test_pfring_pcap_module.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from _pfring_fake import BASE_NS, FRAMES, FakeRing, ts_of, write_pcap

from capsvc import BackendUnavailableError, CaptureError, FilterError
from capsvc.sources.pfring import (
    CaptureInfo,
    ClusterType,
    Direction,
    Flag,
    PfRingError,
    PfRingFilterError,
    Ring,
    SocketMode,
    Stats,
    parse_cluster,
)
from capsvc.sources.pfring import _ffi as ffi

# -- constants and layout ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        (Flag.ZC_SYMMETRIC_RSS, 1),
        (Flag.REENTRANT, 2),
        (Flag.LONG_HEADER, 4),
        (Flag.PROMISC, 8),
        (Flag.TIMESTAMP, 16),
        (Flag.HW_TIMESTAMP, 32),
        (Flag.RX_PACKET_BOUNCE, 64),
        (Flag.ZC_FIXED_RSS_Q_0, 128),
        (Flag.STRIP_HW_TIMESTAMP, 256),
        (Flag.DO_NOT_PARSE, 512),
        (Flag.DO_NOT_TIMESTAMP, 1024),
        (Flag.USERSPACE_BPF, 8192),
        (Flag.TX_BPF, 1 << 22),
        (ClusterType.PER_FLOW, 0),
        (ClusterType.ROUND_ROBIN, 1),
        (ClusterType.PER_FLOW_2_TUPLE, 2),
        (ClusterType.PER_FLOW_4_TUPLE, 3),
        (ClusterType.PER_FLOW_5_TUPLE, 4),
        (ClusterType.PER_FLOW_TCP_5_TUPLE, 5),
        (ClusterType.PER_INNER_FLOW, 6),
        (ClusterType.PER_INNER_FLOW_TCP_5_TUPLE, 10),
        (ClusterType.PER_FLOW_IP_5_TUPLE, 11),
        (ClusterType.PER_INNER_FLOW_IP_5_TUPLE, 12),
        (ClusterType.PER_FLOW_IP_WITH_DUP_TUPLE, 13),
        (Direction.RECEIVE_AND_TRANSMIT, 0),
        (Direction.RECEIVE_ONLY, 1),
        (Direction.TRANSMIT_ONLY, 2),
        (SocketMode.WRITE_AND_READ, 0),
        (SocketMode.WRITE_ONLY, 1),
        (SocketMode.READ_ONLY, 2),
        (SocketMode.MANAGEMENT_ONLY, 3),
    ],
)
def test_enum_values_are_pfring_h(member: int, value: int) -> None:
    assert int(member) == value


def test_pkthdr_fields_sit_at_their_offsets() -> None:
    raw = bytearray(ffi.PKTHDR_BUFFER_SIZE)
    struct.pack_into("<q", raw, 0, 1700000000)
    struct.pack_into("<q", raw, 8, 123456)
    struct.pack_into("<I", raw, 16, 60)
    struct.pack_into("<I", raw, 20, 1514)
    struct.pack_into("<Q", raw, 24, 987654321)
    raw[36] = 1
    struct.pack_into("<i", raw, 40, 7)
    struct.pack_into("<I", raw, 44, 0xDEADBEEF)
    fields = ffi.PFRING_PKTHDR.unpack_from(raw)
    assert fields == (1700000000, 123456, 60, 1514, 987654321, 0, 1, 0, 0, 7, 0xDEADBEEF)
    assert ffi.PFRING_PKTHDR.size == 48 and ffi.PKTHDR_BUFFER_SIZE >= 209
    assert ffi.PFRING_STAT.size == 24


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (-1, "GENERIC"),
        (-2, "INVALID_ARGUMENT"),
        (-3, "NO_PKT_AVAILABLE"),
        (-4, "NO_TX_SLOT"),
        (-7, "NOT_SUPPORTED"),
        (-12, "RING_NOT_ENABLED"),
        (-14, "MOD_NOT_LOADED"),
        (-99, "UNKNOWN"),
    ],
)
def test_error_names(code: int, name: str) -> None:
    exc = PfRingError(code, "pfring_x")
    assert exc.code == code and exc.code_name == name
    assert str(exc) == f"pfring_x failed: {name} ({code})"
    assert isinstance(exc, CaptureError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", (7, ClusterType.PER_FLOW)),
        ("7:round_robin", (7, ClusterType.ROUND_ROBIN)),
        ("0:per-flow-5-tuple", (0, ClusterType.PER_FLOW_5_TUPLE)),
        ("12:cluster_per_flow_tcp_5_tuple", (12, ClusterType.PER_FLOW_TCP_5_TUPLE)),
        ("3:11", (3, ClusterType.PER_FLOW_IP_5_TUPLE)),
    ],
)
def test_parse_cluster(text: str, expected: tuple[int, ClusterType]) -> None:
    assert parse_cluster(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-1", "7:fastest", "7:99"])
def test_parse_cluster_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cluster(text)


# -- loading -------------------------------------------------------------------------------


def test_missing_library_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"cannot load .*packages\.ntop\.org"):
        ffi.lib(tmp_path / "libpfring.so")


def test_library_without_pfring_open_is_refused() -> None:
    pcap = ctypes.util.find_library("pcap")
    assert pcap is not None
    with pytest.raises(BackendUnavailableError, match=r"no pfring_open.*build it from source"):
        ffi.lib(pcap)


def test_no_library_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    if ctypes.util.find_library("pfring") is not None:
        pytest.skip("a libpfring is installed here")
    monkeypatch.delenv(ffi.LIBRARY_ENV, raising=False)
    with pytest.raises(BackendUnavailableError, match="PF_RING is not installed"):
        Ring.open("eth0")


def test_library_from_environment(fake: FakeRing) -> None:
    fake.set(ffi.LIBRARY_ENV, str(fake.library))
    with Ring.open("fake0", 128) as ring:
        assert ring.snaplen == 128
    assert fake.names()[0] == "pfring_open"


def test_libpcap_is_loaded_global_first(fake_library: Path) -> None:
    """The stand-in leaves libpcap's symbols unresolved, like many libpfring builds."""
    plain = subprocess.run(
        [sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(fake_library)!r})"],
        capture_output=True,
        text=True,
    )
    assert plain.returncode != 0 and "undefined symbol: pcap_" in plain.stderr
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from capsvc.sources.pfring._ffi import lib; print(bool(lib({str(fake_library)!r})))",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip() == "True"


# -- the ring ------------------------------------------------------------------------------


def test_open_read_stats_close_sequence(fake: FakeRing) -> None:
    fake.set("CAPSVC_FAKE_PFRING_DROPS", "5")
    ring = Ring.open("fake0", 65535, Flag.PROMISC | Flag.TIMESTAMP, library=fake.library)
    ring.enable()
    got = [ring.read_packet_data() for _ in FRAMES]
    stats = ring.stats()
    ring.close()
    ring.close()
    assert [data for data, _ in got] == FRAMES
    assert stats == Stats(received=10, dropped=5)
    calls = fake.calls()
    assert calls[0] == ("pfring_open", {"device": "fake0", "caplen": "65535", "flags": "24"}, "ok")
    assert calls[1] == ("pfring_set_application_name", {"name": sys.argv[0]}, "0")
    assert [c[0] for c in calls[2:]] == (
        ["pfring_enable_ring"] + ["pfring_recv"] * 10 + ["pfring_stats", "pfring_close"]
    )
    recv = calls[3]
    assert recv[1] == {"buffer_len": "65535", "wait": "1"} and recv[2].startswith("1 ")


def test_recv_before_enable_is_ring_not_enabled(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring, pytest.raises(PfRingError) as info:
        ring.read_packet_data()
    assert info.value.code == -12 and info.value.code_name == "RING_NOT_ENABLED"
    assert info.value.operation == "pfring_recv"


def test_disable_stops_reads(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring:
        ring.enable()
        first, _ = ring.read_packet_data()
        ring.disable()
        with pytest.raises(PfRingError, match=r"RING_NOT_ENABLED \(-12\)"):
            ring.read_packet_data()
        ring.enable()
        second, _ = ring.read_packet_data()
    assert (first, second) == (FRAMES[0], FRAMES[1])
    assert "pfring_disable_ring" in fake.names()


def test_zero_copy_with_reentrant_is_invalid_argument(fake: FakeRing) -> None:
    with Ring.open("fake0", flags=Flag.REENTRANT, library=fake.library) as ring:
        ring.enable()
        with pytest.raises(PfRingError) as info:
            ring.zero_copy_read_packet_data()
        data, _ = ring.read_packet_data()  # copying still works
    assert info.value.code == -2 and info.value.code_name == "INVALID_ARGUMENT"
    assert data == FRAMES[0]
    # snaplen 0 means 262144, which the library lowers to MAX_CAPLEN; the ring does the same
    assert fake.calls()[-2][1]["buffer_len"] == str(ffi.MAX_CAPLEN) == "65600"
    assert ring.snaplen == 65600


def test_socket_mode_only_before_enable(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring:
        ring.set_socket_mode(SocketMode.READ_ONLY)
        ring.enable()
        with pytest.raises(PfRingError) as info:
            ring.set_socket_mode(SocketMode.WRITE_AND_READ)
    assert info.value.code == -1 and info.value.code_name == "GENERIC"
    modes = [c[1]["mode"] for c in fake.calls() if c[0] == "pfring_set_socket_mode"]
    assert modes == ["2", "0"]


def test_zero_copy_and_copy_reads(fake: FakeRing) -> None:
    """A copy read into a small buffer: the kernel module cuts the copy to the buffer but not
    the header's caplen, so the ring must (mutation: drop the ``buffer_len`` cut in
    ``_wait_one`` and ``capture_length`` reads 62, past the 20-byte buffer)."""
    with Ring.open("fake0", library=fake.library) as ring:
        ring.enable()
        view, info0 = ring.zero_copy_read_packet_data()
        first = bytes(view)
        buffer = bytearray(2048)
        info1 = ring.read_packet_data_into(buffer)
        small = bytearray(20)
        info2 = ring.read_packet_data_into(memoryview(small))
        with pytest.raises(ValueError, match="non-empty"):
            ring.read_packet_data_into(bytearray())
    assert view.readonly
    assert first == FRAMES[0] and info0.capture_length == len(FRAMES[0])
    assert buffer[: info1.capture_length] == FRAMES[1] and info1.length == len(FRAMES[1])
    assert small == FRAMES[2][:20]
    assert info2 == CaptureInfo(ts_of(2) // 1000 * 1000, 20, len(FRAMES[2]), 0)
    lens = [c[1]["buffer_len"] for c in fake.calls() if c[0] == "pfring_recv"]
    assert lens == ["0", "2048", "20"]


def test_snaplen_truncates_but_keeps_wire_length(fake: FakeRing, tmp_path: Path) -> None:
    fake.set("CAPSVC_FAKE_PFRING_PCAP", str(write_pcap(tmp_path / "w.pcap", FRAMES, wire_extra=9)))
    with Ring.open("fake0", 40, library=fake.library) as ring:
        ring.enable()
        data, info = ring.read_packet_data()
    assert data == FRAMES[0][:40]
    assert (info.capture_length, info.length) == (40, len(FRAMES[0]) + 9)


@pytest.mark.parametrize(("ns_field", "expected"), [("0", BASE_NS // 1000 * 1000), ("1", BASE_NS)])
def test_timestamp_from_either_field(fake: FakeRing, ns_field: str, expected: int) -> None:
    fake.set("CAPSVC_FAKE_PFRING_TIMESTAMP_NS", ns_field)
    with Ring.open("fake0", library=fake.library) as ring:
        ring.enable()
        _, info = ring.read_packet_data()
        batch = ring._read_batch(1)
    assert info.timestamp_ns == expected
    assert batch[0].ts_ns == (ts_of(1) if ns_field == "1" else ts_of(1) // 1000 * 1000)


@pytest.mark.parametrize(
    ("device", "flags", "expected"),
    [
        ("lo", Flag(0), socket.if_nametoindex("lo")),
        ("lo", Flag.LONG_HEADER, 42),
        ("nosuchif0", Flag(0), 0),
        ("nosuchif0", Flag.LONG_HEADER, 42),
    ],
)
def test_interface_index(fake: FakeRing, device: str, flags: Flag, expected: int) -> None:
    with Ring.open(device, flags=flags, library=fake.library) as ring:
        ring.enable()
        _, info = ring.read_packet_data()
        header = bytes(ring._hdr)
    assert info.interface_index == expected
    if flags & Flag.LONG_HEADER:  # the library wrote 209 bytes; the buffer has room for them
        assert header[48:209] == b"\xa5" * 161 and header[209:] == bytes(47)
    else:
        assert header[48:] == bytes(208)


def test_long_header_if_index_read_as_signed(fake: FakeRing) -> None:
    fake.set("CAPSVC_FAKE_PFRING_IFINDEX", "-1")
    with Ring.open("fake0", flags=Flag.LONG_HEADER, library=fake.library) as ring:
        ring.enable()
        _, info = ring.read_packet_data()
    assert info.interface_index == -1


def test_bpf_filter_set_and_removed(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring:
        ring.set_bpf_filter("udp")
        ring.enable()
        udp_frames = [ring.read_packet_data()[0] for _ in range(5)]
        with pytest.raises(PfRingError, match="NO_PKT_AVAILABLE"):
            ring.read_packet_data()
        with pytest.raises(PfRingFilterError) as bad:
            ring.set_bpf_filter("port port")
    assert udp_frames == FRAMES[0::2]
    assert bad.value.code_name == "INVALID_ARGUMENT" and isinstance(bad.value, FilterError)
    assert bad.value.expr == "port port"
    with Ring.open("fake0", library=fake.library) as ring:
        ring.set_bpf_filter("tcp")
        ring.remove_bpf_filter()
        ring.enable()
        assert [ring.read_packet_data()[0] for _ in FRAMES] == FRAMES
    filters = [c[1]["filter"] for c in fake.calls() if c[0] == "pfring_set_bpf_filter"]
    assert filters == ["udp", "port", "tcp"]  # the log splits at spaces
    assert fake.names().count("pfring_remove_bpf_filter") == 1


def test_cluster_direction_sampling_calls(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring:
        for kind in ClusterType:
            ring.set_cluster(4_000_000_000, kind)
        ring.remove_from_cluster()
        for direction in Direction:
            ring.set_direction(direction)
        ring.set_sampling_rate(3)
        ring.enable()
        sampled = ring._read_batch(100)
    calls = fake.calls()
    clusters = [(c[1]["cluster"], c[1]["type"]) for c in calls if c[0] == "pfring_set_cluster"]
    assert clusters == [("4000000000", str(int(k))) for k in ClusterType]
    assert [c[1]["direction"] for c in calls if c[0] == "pfring_set_direction"] == ["0", "1", "2"]
    assert ("pfring_set_sampling_rate", {"rate": "3"}, "0") in calls
    assert "pfring_remove_from_cluster" in fake.names()
    assert [p.data for p in sampled] == [FRAMES[0], FRAMES[3], FRAMES[6], FRAMES[9]]


def test_write_packet_data(fake: FakeRing) -> None:
    frame = bytes(range(40))
    with Ring.open("fake0", library=fake.library) as ring:
        with pytest.raises(PfRingError, match="RING_NOT_ENABLED"):
            ring.write_packet_data(frame)
        ring.enable()
        ring.write_packet_data(bytearray(frame))
    sent = [c for c in fake.calls() if c[0] == "pfring_send"]
    assert sent[1] == ("pfring_send", {"len": "40", "flush": "1", "head": frame[:16].hex()}, "40")
    with Ring.open("fake0", library=fake.library) as ring:
        ring.set_socket_mode(SocketMode.READ_ONLY)
        ring.enable()
        with pytest.raises(PfRingError, match=r"sending is not supported by this PF_RING module"):
            ring.write_packet_data(frame)


def test_open_failure_names_errno_and_hint(fake: FakeRing) -> None:
    fake.monkeypatch.delenv("CAPSVC_FAKE_PFRING_PCAP")
    with pytest.raises(PfRingError, match="modprobe pf_ring") as info:
        Ring.open("eth0", library=fake.library)
    assert info.value.errno == errno.EAFNOSUPPORT and info.value.operation == "pfring_open"


def test_closed_ring_refuses_calls(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring:
        pass
    assert ring.closed
    for call in (ring.enable, ring.stats, ring.read_packet_data, lambda: ring.set_sampling_rate(2)):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert fake.names().count("pfring_close") == 1


def test_application_name_and_version_of_real_signature(fake: FakeRing) -> None:
    with Ring.open("fake0", library=fake.library) as ring:
        ring.set_application_name("probe-1")
        version = ctypes.c_uint32()
        assert ring._lib.pfring_version(ring._handle(), ctypes.byref(version)) == 0
    assert version.value >> 16 == 8
    names = [c[1]["name"] for c in fake.calls() if c[0] == "pfring_set_application_name"]
    assert names == [sys.argv[0], "probe-1"]
