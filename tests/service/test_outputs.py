"""capsvc.service._outputs on its own: worker file names, the paths a spec writes, interfaces,
sinks built below the output directory (closed again when one fails), and file and live
sources opened from a spec."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from _helpers import ether, ipv4, udp

from capsvc import Direction, LinkType, Packet
from capsvc._errors import (
    ConfigError,
    NoSuchInterfaceError,
    NotFoundError,
    PathOutsideError,
)
from capsvc._files import Directory
from capsvc.service._config import parse_session_spec
from capsvc.service._outputs import (
    NullSink,
    build_sinks,
    interface_exists,
    open_source,
    sink_paths,
    worker_path,
)
from capsvc.sinks import PcapWriter


def spec(**extra: Any) -> Any:
    raw: dict[str, Any] = {"name": "s", "source": {"type": "afpacket", "interface": "lo"}}
    raw.update(extra)
    return parse_session_spec(raw, check_filter=False)


@pytest.mark.parametrize(
    ("path", "worker", "expected"),
    [
        ("a.pcap", None, "a.pcap"),
        ("a.pcap", 0, "a.worker0.pcap"),
        ("d/a.b.pcapng", 3, "d/a.b.worker3.pcapng"),
        ("noext", 1, "noext.worker1"),
    ],
)
def test_worker_path(path: str, worker: int | None, expected: str) -> None:
    assert worker_path(path, worker) == expected


def test_sink_paths_name_every_file_and_its_part() -> None:
    sinks = [{"type": "pcap", "path": "a.pcap"}, {"type": "text", "path": "t/l.txt"}]
    assert sink_paths(spec(sinks=sinks)) == [("a.pcap", "sink 0"), ("t/l.txt", "sink 1")]
    assert sink_paths(spec(sinks=sinks, workers=2)) == [
        ("a.worker0.pcap", "sink 0 worker 0"),
        ("a.worker1.pcap", "sink 0 worker 1"),
        ("t/l.worker0.txt", "sink 1 worker 0"),
        ("t/l.worker1.txt", "sink 1 worker 1"),
    ]
    assert sink_paths(spec()) == []


def test_interface_exists() -> None:
    assert interface_exists("lo") and interface_exists("any")
    assert not interface_exists("cstnosuch9")
    assert not interface_exists("lo\0x")  # a NUL byte is no name, not an error
    assert not interface_exists("")


def test_sinks_are_built_below_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = spec(
        sinks=[
            {"type": "pcap", "path": "p/a.pcap"},
            {"type": "pcap", "path": "r.pcap", "rotate_mb": 0.001, "max_files": 2},
        ]
    )
    claims: list[tuple[str, str]] = []
    sinks = build_sinks(
        s, str(out), LinkType.ETHERNET, 128, worker=1, claim=lambda *a: claims.append(a)
    )
    assert len(sinks) == 2
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"x" * 100)))
    for sink in sinks:
        sink.write_batch([Packet(10**9, frame, len(frame), Direction.INBOUND, 0)])
        sink.close()
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    written = out / "p" / "a.worker1.pcap"
    header = written.read_bytes()[:24]
    assert int.from_bytes(header[16:20], "little") == 128
    assert int.from_bytes(header[20:24], "little") == 1
    assert (out / "r.worker1.pcap0").exists()
    # A rotating sink claims each name it formats, with its part, as a full path.
    assert claims == [("sink 1", str(out / "r.worker1.pcap0"))]


def test_no_sink_is_a_null_sink(tmp_path: Path) -> None:
    (sink,) = build_sinks(spec(), str(tmp_path), LinkType.RAW, 0)
    assert isinstance(sink, NullSink)
    sink.write_batch([Packet(1, b"x", 1, Direction.INBOUND, 0)])
    sink.flush()
    sink.close()
    assert list(tmp_path.iterdir()) == []


def test_a_refused_sink_closes_those_opened_before(tmp_path: Path) -> None:
    (tmp_path / "link.pcap").symlink_to(tmp_path / "elsewhere.pcap")
    s = spec(sinks=[{"type": "pcap", "path": "first.pcap"}, {"type": "pcap", "path": "link.pcap"}])
    fds = len(os.listdir("/proc/self/fd"))
    with Directory(tmp_path) as d, pytest.raises(PathOutsideError, match=r"link\.pcap"):
        build_sinks(s, d, LinkType.RAW, 0)
    assert len(os.listdir("/proc/self/fd")) == fds  # first.pcap's file was closed
    assert not (tmp_path / "elsewhere.pcap").exists()


def write_pcap(path: Path, count: int) -> None:
    with path.open("wb") as f:
        PcapWriter(f, 0, LinkType.RAW).write_batch(
            [
                Packet(10**9 + i * 1000, b"\x45" + bytes(19), 20, Direction.INBOUND, 0)
                for i in range(count)
            ]
        )


async def test_a_file_source_is_read_from_the_input_directory(tmp_path: Path) -> None:
    write_pcap(tmp_path / "in.pcap", 3)
    source = open_source(spec(source={"type": "file", "path": "in.pcap"}), str(tmp_path))
    try:
        got = [p async for batch in source for p in batch]
    finally:
        await source.aclose()
    assert [p.ts_ns for p in got] == [10**9, 10**9 + 1000, 10**9 + 2000]
    assert source.linktype == LinkType.RAW and not source.live


def test_file_source_errors_name_the_file_not_its_content(tmp_path: Path) -> None:
    (tmp_path / "bad.pcap").write_bytes(b"root:x:0:0:secret\n" * 4)
    (tmp_path / "link.pcap").symlink_to(tmp_path / "bad.pcap")
    with pytest.raises(NotFoundError) as missing:
        open_source(spec(source={"type": "file", "path": "none.pcap"}), str(tmp_path))
    assert str(missing.value) == "no file 'none.pcap' in the input directory"
    with pytest.raises(ConfigError) as bad:
        open_source(spec(source={"type": "file", "path": "bad.pcap"}), str(tmp_path), origin="o")
    assert (
        str(bad.value) == "o: source.path: 'bad.pcap' is not a pcap or pcapng file capsvc can read"
    )
    assert "root" not in str(bad.value)
    with pytest.raises(PathOutsideError, match="symbolic link"):
        open_source(spec(source={"type": "file", "path": "link.pcap"}), str(tmp_path))


def test_a_live_source_on_an_unknown_interface(tmp_path: Path) -> None:
    with pytest.raises(NoSuchInterfaceError, match="cstnosuch9"):
        open_source(spec(source={"type": "afpacket", "interface": "cstnosuch9"}), str(tmp_path))


async def test_a_live_source_takes_the_spec(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_RAW) to open a capture socket")
    s = spec(
        source={"type": "afpacket", "interface": "lo", "direction": "in", "promisc": False},
        filter="udp port 9",
        snaplen=100,
    )
    source = open_source(s, str(tmp_path), fanout=(4242, "hash"))
    try:
        assert source.snaplen == 100 and source.live
        assert getattr(source, "interface", None) == "lo"
        assert getattr(source, "direction", None) == Direction.INBOUND
    finally:
        await source.aclose()
