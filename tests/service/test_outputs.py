"""capsvc.service._outputs on its own: worker file names, the paths a spec writes, interfaces,
sinks built below the output directory (closed again when one fails), and file and live
sources opened from a spec."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from _helpers import ether, ipv4, udp
from _netns import VethPair

from capsvc import Direction, LinkType, Packet
from capsvc._errors import (
    ConfigError,
    FilterCompileError,
    NoSuchInterfaceError,
    NotFoundError,
    PathOutsideError,
)
from capsvc._files import Directory
from capsvc.service import parse_config
from capsvc.service._config import parse_session_spec
from capsvc.service._outputs import (
    FilePolicy,
    NullSink,
    build_sinks,
    file_policy,
    interface_exists,
    open_output,
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


def promiscuous(interface: str) -> bool:
    return bool(int(Path(f"/sys/class/net/{interface}/flags").read_text(), 16) & 0x100)


async def test_a_live_source_takes_the_spec(tmp_path: Path, veth: VethPair) -> None:
    """Snaplen, direction, promiscuity and the filter of the spec reach the socket: only the
    datagram to port 9 comes back."""
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
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.sendto(b"no" * 100, ("127.0.0.1", 10))
            out.sendto(b"yes" * 100, ("127.0.0.1", 9))
        async with asyncio.timeout(5):
            batch = await anext(aiter(source))
        assert batch and all(len(p.data) == 100 and p.wire_len > 300 for p in batch)
        assert all(p.data[23] == 17 and p.data[36:38] == b"\x00\x09" for p in batch), batch
    finally:
        await source.aclose()
    plain = {"type": "afpacket", "interface": veth.host, "promisc": False}
    quiet = open_source(spec(source=plain), str(tmp_path))
    try:
        assert not promiscuous(veth.host)
    finally:
        await quiet.aclose()
    loud = open_source(spec(source={"type": "afpacket", "interface": veth.host}), str(tmp_path))
    try:
        assert promiscuous(veth.host)  # promisc is the default
    finally:
        await loud.aclose()
    assert not promiscuous(veth.host)


def test_the_default_origin_is_request(tmp_path: Path) -> None:
    (tmp_path / "bad.pcap").write_bytes(b"nonsense" * 8)
    with pytest.raises(ConfigError, match=r"^request: source\.path: "):
        open_source(spec(source={"type": "file", "path": "bad.pcap"}), str(tmp_path))


async def test_a_file_source_owns_its_file_and_takes_its_options(tmp_path: Path) -> None:
    write_pcap(tmp_path / "own.pcap", 2)
    fds = len(os.listdir("/proc/self/fd"))
    s = spec(source={"type": "file", "path": "own.pcap", "realtime": True})
    source = open_source(s, str(tmp_path))
    assert getattr(source, "name", None) == "own.pcap"
    assert getattr(source, "realtime", None) is True
    await source.aclose()
    assert len(os.listdir("/proc/self/fd")) == fds  # closed with the source


def test_kept_outputs_are_appended_to(tmp_path: Path) -> None:
    """``keep`` (a reload): a pcap with the same header is appended to, else replaced."""
    s = spec(sinks=[{"type": "pcap", "path": "k.pcap"}, {"type": "text", "path": "k.txt"}])
    frame = b"\x45" + bytes(19)

    def run(keep: bool | None = None) -> None:
        where = str(tmp_path)
        sinks = (  # None: the default
            build_sinks(s, where, LinkType.RAW, 0)
            if keep is None
            else build_sinks(s, where, LinkType.RAW, 0, keep=keep)
        )
        for sink in sinks:
            sink.write_batch([Packet(10**9, frame, 20, Direction.INBOUND, 0)])
            sink.close()

    run()
    run(keep=True)
    assert (tmp_path / "k.txt").read_text().count("\n") == 2
    assert len((tmp_path / "k.pcap").read_bytes()) == 24 + 2 * 36
    run()
    assert (tmp_path / "k.txt").read_text().count("\n") == 1
    assert len((tmp_path / "k.pcap").read_bytes()) == 24 + 36


def test_a_rotating_sink_without_claims(tmp_path: Path) -> None:
    s = spec(sinks=[{"type": "pcap", "path": "r.pcap", "rotate_mb": 0.001, "max_files": 2}])
    (sink,) = build_sinks(s, str(tmp_path), LinkType.RAW, 0)
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pcap0"]


def settings(**table: Any) -> Any:
    return parse_config({"service": table}, origin="c.toml", cwd="/").service


def test_the_file_policy_from_the_settings() -> None:
    assert file_policy(settings()) == FilePolicy(0o600, None, 0o700)
    gid = os.getgid()
    name = grp.getgrgid(gid).gr_name
    assert file_policy(settings(file_group=name)).group == gid
    assert file_policy(settings(file_group=str(gid))).group == gid
    with pytest.raises(ConfigError) as info:
        file_policy(settings(file_group="cstnosuchgroup"), origin="o.toml")
    assert str(info.value) == "o.toml: service.file_group: no group 'cstnosuchgroup' here"
    with pytest.raises(ConfigError, match=r"^config: service\.file_group: "):
        file_policy(settings(file_group="cstnosuchgroup"))
    shared = settings(file_mode=0o640)  # group-readable files: a group-listable directory
    assert shared.dir_mode != 0o700
    assert file_policy(shared) == FilePolicy(0o640, None, shared.dir_mode)


def test_a_policy_makes_its_directories_and_files(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give files another group")
    policy = FilePolicy(0o640, 4243, 0o750)
    with policy.open(str(tmp_path / "new")) as d:
        os.close(d.create("f.pcap"))
    info = (tmp_path / "new" / "f.pcap").stat()
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, 4243)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o750


def test_an_existing_output_directory_gains_group_and_bits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bits are added, never taken away; the change is logged with the modes in octal."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory another group")
    out = tmp_path / "out"
    out.mkdir(mode=0o701)
    out.chmod(0o701)
    policy = FilePolicy(0o640, 4243, 0o750)
    with caplog.at_level(logging.WARNING, logger="capsvc"), open_output(str(out), policy):
        pass
    info = out.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_gid, info.st_uid) == (0o751, 4243, os.geteuid())
    assert [r.getMessage() for r in caplog.records] == [
        f"output directory {out}: mode set to 0751 (file_mode 0640: its readers must reach "
        "the files)"
    ]
    caplog.clear()
    with open_output(str(out), FilePolicy(0o600, 4243, 0o700)):
        pass  # nothing to add: nothing changed, nothing logged
    assert stat.S_IMODE(out.stat().st_mode) == 0o751 and caplog.records == []


def ring_sizes() -> list[int]:
    """The sizes of this process's packet rings, as the kernel mapped them (the socket
    mappings of /proc/self/maps)."""
    sizes = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.rstrip().endswith("]") and "socket:[" in line:
            start, end = line.split()[0].split("-")
            sizes.append(int(end, 16) - int(start, 16))
    return sizes


MIB = 2**20


@pytest.mark.parametrize(
    ("options", "ring"),
    [
        ({}, 64 * MIB),  # the service's own ring, longer than the command line's 32 MiB
        ({"ring_size": 8 * MIB}, 8 * MIB),
        ({"buffer_kib": 16384}, 16 * MIB),  # tcpdump -B: KiB
    ],
)
async def test_a_live_source_sizes_its_ring(
    tmp_path: Path, options: dict[str, int], ring: int
) -> None:
    """The AF_PACKET ring the kernel maps: 64 MiB unless the spec gives ``ring_size`` or
    ``buffer_kib`` (in KiB, as tcpdump's -B). Mutations guarded (`open_source` 19-28, 33-35,
    43-47, 65, 66): ``buffer_kib`` read as bytes/1024 or KiB of 1025 bytes, under another
    key, or defaulting to 1; the service's ring size not chosen for afpacket, chosen when a
    size was given, or the sizes not passed on."""
    before = ring_sizes()  # any other ring of this process
    source = open_source(
        spec(source={"type": "afpacket", "interface": "lo", **options}), str(tmp_path)
    )
    try:
        assert sorted(ring_sizes()) == sorted([*before, ring])
    finally:
        await source.aclose()
    assert ring_sizes() == before


SOL_PACKET, PACKET_FANOUT = 263, 18  # linux/socket.h, linux/if_packet.h
FANOUT_CPU = 2
GROUP = 48611


def join_fanout(group: int) -> None:
    """Join AF_PACKET fanout group ``group`` (mode cpu) with a socket of our own."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_FANOUT, group | FANOUT_CPU << 16)
    finally:
        sock.close()


async def test_a_live_source_joins_its_fanout_group(tmp_path: Path) -> None:
    """``fanout`` (the workers' group) reaches the socket: while the source is open the group
    exists, in mode hash on lo, and the kernel refuses another socket joining it otherwise
    (EINVAL); once it is closed the group is gone. Mutations guarded (`open_source` 29-32):
    the group not passed on, or under another key."""
    join_fanout(GROUP)  # no such group yet: this socket makes one, gone with it
    source = open_source(spec(), str(tmp_path), fanout=(GROUP, "hash"))
    try:
        with pytest.raises(OSError) as info:
            join_fanout(GROUP)
        assert info.value.errno == errno.EINVAL
    finally:
        await source.aclose()
    join_fanout(GROUP)


async def test_userspace_fallback_is_on_by_default(tmp_path: Path) -> None:
    """A filter a cooked socket's kernel program cannot express (``ether src``) is taken by
    the fallback unless the spec turns it off: the socket then reads the frames raw and
    they are cooked here. Mutations guarded (`open_source` 36-42): the fallback's default
    False or None, or set under another key."""
    cooked = {"type": "afpacket", "interface": "lo", "cooked": True}
    s = spec(source=cooked, filter="ether src 02:00:00:00:00:01")
    source = open_source(s, str(tmp_path))
    try:
        assert source.linktype == LinkType.LINUX_SLL2
        assert getattr(source, "userspace_filter", "") is None  # the kernel applies it
    finally:
        await source.aclose()
    off = spec(source={**cooked, "userspace_fallback": False}, filter="ether src 02:00:00:00:00:01")
    before = ring_sizes()
    with pytest.raises(FilterCompileError, match="not LINUX_SLL2"):
        open_source(off, str(tmp_path))
    assert ring_sizes() == before  # the refused socket's ring released


def test_a_sink_that_fails_to_close_after_a_refusal_leaves_the_refusal(
    small_disk: Path,
) -> None:
    """When a later sink is refused, those opened before are closed; one whose close fails
    (its header cannot be written to a full disk) does not hide the refusal. Mutation
    guarded: that OSError not suppressed (`build_sinks` 51: a TypeError instead)."""
    filler = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    with contextlib.suppress(OSError):
        while True:
            os.write(filler, b"\0" * 4096)
    os.close(filler)
    (small_disk / "link.pcap").symlink_to(small_disk / "elsewhere.pcap")
    s = spec(sinks=[{"type": "pcap", "path": "first.pcap"}, {"type": "pcap", "path": "link.pcap"}])
    fds = len(os.listdir("/proc/self/fd"))
    with Directory(small_disk) as d, pytest.raises(PathOutsideError, match=r"link\.pcap"):
        build_sinks(s, d, LinkType.RAW, 0)
    assert len(os.listdir("/proc/self/fd")) == fds
    assert (small_disk / "first.pcap").stat().st_size == 0  # its header never fitted
