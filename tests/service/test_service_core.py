"""CaptureService embedded (no HTTP), subscribers and metrics text: the parts without a server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from _helpers import ether, ipv4, tcp, udp
from _netns import VethPair
from _service import frames, read_pcap_numbers, session_spec
from prometheus_client.parser import text_string_to_metric_families

from capsvc import Direction, NoSuchInterfaceError, Packet, Stats
from capsvc.service import (
    CaptureService,
    ConflictError,
    NotFoundError,
    PathOutsideError,
    parse_config,
    parse_session_spec,
)
from capsvc.service._metrics import SessionSample, metrics_text
from capsvc.service._subscribers import BatchEncoder, Subscriber
from capsvc.sinks import PcapWriter


def service_for(tmp_path: Path, *sessions: Mapping[str, Any], **settings: object) -> CaptureService:
    table = {"output_dir": "out", "token_file": "token", **settings}
    return CaptureService(
        parse_config({"service": table, "session": list(sessions)}, cwd=str(tmp_path))
    )


def packet(i: int, data: bytes = b"") -> Packet:
    return Packet(
        i, data or ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"%d" % i)), 40, Direction.INBOUND, 0
    )


# -- subscribers -------------------------------------------------------------------------------


async def test_subscriber_bounds_its_queue_and_counts_its_drops() -> None:
    sub = Subscriber(1, capacity=5)

    def write() -> None:
        for i in range(8):
            sub.write_batch([packet(i)])

    writer = threading.Thread(target=write)
    writer.start()
    writer.join()
    assert sub.stats().queued == 5 and sub.stats().dropped == 3
    got = await sub.get(1.0)
    assert got is not None and [p.ts_ns for p in got] == [0, 1, 2, 3, 4]
    assert await sub.get(0.05) == []  # nothing queued: the timeout passes
    sub.write_batch([packet(9)])
    sub.close()
    last = await sub.get(1.0)
    assert last is not None and [p.ts_ns for p in last] == [9]
    assert await sub.get(1.0) is None
    assert sub.stats().packets == 6


async def test_subscriber_filter_counts_what_it_rejects() -> None:
    keep = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80))
    drop = ipv4("10.0.0.1", "10.0.0.2", udp(1, 53))
    sub = Subscriber(2, match=lambda d, n: d == keep, filter_text="x")
    sub.write_batch([packet(1, keep), packet(2, drop), packet(3, keep)])
    got = await sub.get(1.0)
    assert got is not None and len(got) == 2
    assert sub.stats().filtered == 1 and sub.stats().filter == "x"


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_text_parses_into_labelled_families() -> None:
    samples = [
        SessionSample("a", Stats(packets=10, bytes=1000, dropped=2, kernel_dropped=3), 1, 4, 1),
        SessionSample("b", Stats(packets=7, filtered=5, sink_errors=1), 0, 0, 2),
    ]
    families = {f.name: f for f in text_string_to_metric_families(metrics_text(samples).decode())}

    def value(family: str, session: str, **labels: str) -> float:
        (sample,) = [
            s
            for s in families[family].samples
            if s.labels.get("session") == session
            and labels.items() <= s.labels.items()
            and not s.name.endswith("_created")
        ]
        return sample.value

    assert value("capsvc_accepted_packets", "a") == 10
    assert value("capsvc_accepted_bytes", "a") == 1000
    assert value("capsvc_dropped_packets", "a", reason="queue") == 2
    assert value("capsvc_dropped_packets", "a", reason="kernel") == 3
    assert value("capsvc_dropped_packets", "a", reason="subscriber") == 4
    assert value("capsvc_dropped_packets", "a", reason="sink") == 0
    assert value("capsvc_filtered_packets", "b") == 5
    assert value("capsvc_sink_errors", "b") == 1
    assert value("capsvc_subscribers", "a") == 1
    assert value("capsvc_worker_processes", "b") == 2
    assert families["capsvc_sessions"].samples[0].value == 2
    empty = {f.name: f for f in text_string_to_metric_families(metrics_text([]).decode())}
    assert empty["capsvc_accepted_packets"].samples == []


# -- the service, embedded -----------------------------------------------------------------------


def write_capture(path: Path, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        writer = PcapWriter(f, 0, 1, nanosecond=True)
        batch = []
        for i in range(count):
            port = 9000 if i % 2 == 0 else 53
            data = ether(ipv4("10.0.0.1", "10.0.0.2", udp(5000, port, i.to_bytes(4, "big"))))
            batch.append(Packet(1_000_000_000 + i, data, len(data), Direction.UNKNOWN, 0))
        writer.write_batch(batch)


async def test_file_session_ends_by_itself_and_stays_listed(tmp_path: Path) -> None:
    write_capture(tmp_path / "out" / "in" / "trace.pcap", 100)
    spec = {
        "name": "replay",
        "source": {"type": "file", "path": "in/trace.pcap"},
        "filter": "udp port 9000",
        "sinks": [{"type": "pcap", "path": "replay.pcap"}],
    }
    service = service_for(tmp_path, spec)
    await service.start()
    try:
        managed = service.get("replay")
        for _ in range(100):
            if not managed.running:
                break
            await asyncio.sleep(0.05)
        assert not managed.running and managed.info()["state"] == "stopped"
        assert managed.stats().packets == 50 and managed.stats().filtered == 50
        numbers = read_pcap_numbers((tmp_path / "out" / "replay.pcap").read_bytes())
        assert numbers == list(range(0, 100, 2))
        final = await service.stop_session("replay")
        assert final.packets == 50
        with pytest.raises(NotFoundError):
            service.get("replay")
    finally:
        await service.stop()


@pytest.mark.netns
async def test_start_is_all_or_nothing(tmp_path: Path, veth: VethPair) -> None:
    service = service_for(
        tmp_path, session_spec("first", veth.host), session_spec("second", "cstnosuch0")
    )
    with pytest.raises(NoSuchInterfaceError, match="cstnosuch0"):
        await service.start()
    assert service.sessions()[0].name == "first" and not service.sessions()[0].running
    assert [s for s in service.sessions() if s.running] == []


@pytest.mark.netns
async def test_embedded_start_stop_and_limits(tmp_path: Path, veth: VethPair) -> None:
    service = service_for(tmp_path, max_sessions=1)
    await service.start()
    try:
        # A plain mapping, as in the config's [[session]] table, is validated and started.
        managed = await service.start_session(session_spec("e", veth.host))
        assert managed.session is not None and managed.running
        pcap_file = managed._pcap_file
        assert pcap_file is not None and pcap_file.publish is None
        _, sub = service.subscribe("e")
        assert pcap_file.publish is not None  # the file's records now serve the stream
        service.unsubscribe(managed, sub)
        assert pcap_file.publish is None and service.subscriber_count == 0
        assert [s.name for s in service.sessions()] == ["e"]
        with pytest.raises(ConflictError, match="already running"):
            await service.start_session(parse_session_spec(session_spec("e", veth.host)))
        with pytest.raises(ConflictError, match="limit"):
            await service.start_session(parse_session_spec(session_spec("f", veth.host)))
        await asyncio.to_thread(veth.send_from_peer, frames(veth, 25))
        for _ in range(200):
            if managed.stats().written >= 25:
                break
            await asyncio.sleep(0.02)
        final = await service.stop_session("e")
        assert final.packets == final.written >= 25
        assert sorted(read_pcap_numbers((tmp_path / "out" / "e.pcap").read_bytes())) == list(
            range(25)
        )
        with pytest.raises(NotFoundError):
            await service.stop_session("e")
    finally:
        await service.stop()


@pytest.mark.netns
async def test_symlinked_directory_cannot_lead_outside(tmp_path: Path, veth: VethPair) -> None:
    service = service_for(tmp_path)
    await service.start()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "esc")
    spec = session_spec("s", veth.host, sinks=[{"type": "text", "path": "esc/x.txt"}])
    with pytest.raises(PathOutsideError):
        await service.start_session(parse_session_spec(spec))
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert service.sessions() == []
    await service.stop()


@pytest.mark.netns
async def test_reload_keeps_unchanged_sessions_running(tmp_path: Path, veth: VethPair) -> None:
    a, b = session_spec("a", veth.host), session_spec("b", veth.host)
    service = service_for(tmp_path, a, b)
    await service.start()
    try:
        kept = service.get("a")
        api = await service.start_session(parse_session_spec(session_spec("api", veth.host)))
        changed = {**b, "snaplen": 100}
        new = parse_config(
            {
                "service": {"output_dir": "out"},
                "session": [a, changed, session_spec("c", veth.host)],
            },
            cwd=str(tmp_path),
        )
        started, stopped = await service.reload(new)
        assert sorted(started) == ["b", "c"] and stopped == ["b"]
        assert service.get("a") is kept and kept.running
        assert service.get("b").snaplen == 100
        assert service.get("api") is api and api.running
        started, stopped = await service.reload(
            parse_config({"service": {"output_dir": "out"}}, cwd=str(tmp_path))
        )
        assert started == [] and sorted(stopped) == ["a", "b", "c"]
        assert [s.name for s in service.sessions() if s.running] == ["api"]
    finally:
        await service.stop()


async def test_batches_are_encoded_once_for_every_reader() -> None:
    calls: list[int] = []

    def encode(batch: list[Packet]) -> bytes:
        calls.append(len(batch))
        return b"".join(p.data for p in batch)

    whole = [packet(i, b"%02d" % i) for i in range(3)]
    readers = [Subscriber(n) for n in range(3)]
    cut = Subscriber(9, capacity=2)  # takes the first two packets only
    for sub in (*readers, cut):
        sub.write_batch(whole)
    taken = [await sub.get_batches(1.0) for sub in (*readers, cut)]
    assert taken[-1] == [(whole, 2)] and cut.stats().dropped == 1

    shared = BatchEncoder(encode, lambda p: len(p.data), keep=4)
    outputs = [await shared(items or []) for items in taken]
    assert outputs == [b"000102"] * 3 + [b"0001"]
    assert calls == [3]  # once for all four, the cut reader included

    calls.clear()
    unsized = BatchEncoder(encode)  # record lengths unknown: the cut reader encodes its own
    assert [await unsized(items or []) for items in taken] == outputs
    assert calls == [3, 2]

    calls.clear()
    big = [packet(i, b"%04d" % i) for i in range(2500)]
    sliced = BatchEncoder(encode, slice_size=1000)
    first, second = await asyncio.gather(sliced([(big, 2500)]), sliced([(big, 2500)]))
    assert first == second == b"".join(b"%04d" % i for i in range(2500))
    assert calls == [1000, 1000, 500]  # in slices, and once for both readers

    published = BatchEncoder(encode, lambda p: len(p.data))
    published.put(whole, b"from-the-file")
    assert await published([(whole, 3)]) == b"from-the-file" and calls == [1000, 1000, 500]


async def test_every_sink_type_from_a_spec(tmp_path: Path) -> None:
    """Every output is read back, not only listed: the pcapng's and the ring's packets (the ring
    wrapped once: its oldest file reopened and truncated), the text lines and the stats lines.

    Mutations guarded: a ring of max_files+1 files, ring files reopened without O_TRUNC, a stats
    sink whose last line is not final or miscounts."""
    write_capture(tmp_path / "out" / "trace.pcap", 400)
    spec = {
        "name": "sinks",
        "source": {"type": "file", "path": "trace.pcap"},
        "sinks": [
            {"type": "pcapng", "path": "all.pcapng"},
            {"type": "pcap", "path": "ring/part.pcap", "rotate_mb": 0.005, "max_files": 3},
            {"type": "text", "path": "log/lines.txt"},
            {"type": "stats", "path": "stats.jsonl", "interval": 0.05},
        ],
    }
    service = service_for(tmp_path, spec)
    await service.start()
    managed = service.get("sinks")
    for _ in range(200):
        if not managed.running:
            break
        await asyncio.sleep(0.02)
    await service.stop()
    out = tmp_path / "out"
    assert managed.stats().packets == 400 and managed.stats().sink_errors == 0
    assert stat_mode(out / "ring") == stat_mode(out / "log") == 0o700
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert made == [
        "all.pcapng",
        "log/lines.txt",
        "ring/part.pcap0",
        "ring/part.pcap1",
        "ring/part.pcap2",
        "stats.jsonl",
        "trace.pcap",
    ]
    for name in made[:-1]:
        assert stat_mode(out / name) == 0o600, name
    lines = (out / "log/lines.txt").read_text().splitlines()
    assert len(lines) == 400
    assert "10.0.0.1:5000 > 10.0.0.2:9000" in lines[0] and "10.0.0.2:53" in lines[1]
    assert numbers_in(out / "all.pcapng") == list(range(400))
    # 81 records of 62 bytes pass 5000 bytes: 0-80, 81-161, 162-242, then 0 and 1 again.
    ring = [numbers_in(out / f"ring/part.pcap{k}") for k in range(3)]
    assert ring == [list(range(243, 324)), list(range(324, 400)), list(range(162, 243))]
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert records and [r["final"] for r in records] == [False] * (len(records) - 1) + [True]
    last = records[-1]
    assert (last["packets"], last["seen_packets"], last["dropped"], last["filtered"]) == (
        400,
        400,
        0,
        0,
    )
    assert last["bytes"] == last["seen_bytes"] == 400 * 46
    assert last["protocols"] == {"tcp": 0, "udp": 400, "icmp": 0, "icmp6": 0, "other": 0}
    assert [r["packets"] for r in records] == sorted(r["packets"] for r in records)


def numbers_in(path: Path) -> list[int]:
    """The frame numbers (``write_capture``'s payloads) of a pcap or pcapng file, by tcpdump."""
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump")
    done = subprocess.run(
        ["tcpdump", "-nn", "-x", "-r", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    packets: list[str] = []
    for line in done.stdout.splitlines():
        if not line.startswith("\t"):
            packets.append("")  # a packet's line; its hex dump follows
        else:
            packets[-1] += line.split(":", 1)[1].replace(" ", "")
    # The number follows the 20-byte IPv4 and 8-byte UDP headers (-x starts at the IP header).
    numbers = [int(hexed[56:64], 16) for hexed in packets]
    return numbers


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
