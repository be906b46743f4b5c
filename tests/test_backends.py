"""The Session and the capture-file source under anyio's backends: asyncio, asyncio on uvloop,
and trio. The same public API, awaited the same way, on each; tcpdump reads what was written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from _helpers import ipv4, tcp, udp

from capsvc import Direction, LinkType, Packet, PacketBatch, Session, SourceStats
from capsvc.sinks._pcap import PcapWriter
from capsvc.sources.capfile._source import PcapFileSource

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000 * 10**9
FRAMES = [
    ipv4("10.0.0.1", "10.0.0.2", tcp(40000 + i, 443, b"x" * (i % 50)))
    if i % 3
    else ipv4("10.0.0.1", "10.0.0.2", udp(5000, 53, b"q" * i))
    for i in range(300)
]


class ListSink:
    def __init__(self, delay: float = 0.0) -> None:
        self.packets: list[Packet] = []
        self.delay = delay
        self.threads: set[str] = set()

    def write_batch(self, batch: PacketBatch) -> None:
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        self.packets.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class StalledSink(ListSink):
    """Blocks in its first write until released (a pipe nobody reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write_batch(self, batch: PacketBatch) -> None:
        self.release.wait(10)


def write_pcap(path: Path, frames: list[bytes], gap_ns: int = 1000) -> Path:
    packets = [
        Packet(T0 + i * gap_ns, f, len(f), Direction.UNKNOWN, 0) for i, f in enumerate(frames)
    ]
    with open(path, "wb") as f:
        writer = PcapWriter(f, 0, LinkType.RAW, nanosecond=True)
        writer.write_batch(packets)
        writer.flush()
    return path


def tcpdump_count(path: Path, expression: str = "") -> int:
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump")
    done = subprocess.run(
        ["tcpdump", "-n", "-r", str(path), *expression.split()],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(done.stdout.splitlines())


async def test_offered_packets_reach_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    async with Session(output=out, linktype=LinkType.RAW, matcher="tcp") as session:
        for frame in FRAMES:
            session.offer(frame)
        await anyio.sleep(0)
    stats = session.stats()
    assert stats.packets + stats.dropped + stats.filtered == 300
    assert stats.filtered == 100 and session.done.is_set()
    assert tcpdump_count(out) == stats.packets == stats.written


async def test_offer_threadsafe_from_another_thread() -> None:
    sink = ListSink()
    async with Session(sinks=[sink], bufsize=1000) as session:

        def offer_all() -> None:
            for f in FRAMES:
                session.offer_threadsafe(f)

        await anyio.to_thread.run_sync(offer_all)
        with anyio.fail_after(10):
            while session.stats().written < 300:
                await anyio.sleep(0.01)
    assert [p.data for p in sink.packets] == FRAMES
    assert sink.threads == {"capsvc-writer"}  # sinks run on the writer thread


async def test_a_file_source_ends_and_wait_returns_the_final_stats(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "in.pcap", FRAMES)
    out = tmp_path / "out.pcap"
    async with Session(source=PcapFileSource(path), output=out, matcher="udp") as session:
        final = await session.wait()
    assert session.ended.is_set() and session.done.is_set()
    assert final.received == 300 and final.packets == 100 and final.filtered == 200
    assert final.dropped == 0 and final.written == 100
    assert tcpdump_count(out) == tcpdump_count(path, "udp") == 100


async def test_a_slow_sink_holds_a_file_source_back_without_dropping(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "in.pcap", FRAMES)
    sink = ListSink(delay=0.002)
    session = Session(source=PcapFileSource(path), sinks=[sink], bufsize=16)
    final = await session.wait()
    assert final.dropped == 0 and final.packets == 300
    assert [p.data for p in sink.packets] == FRAMES


async def test_a_limit_ends_a_file_source_the_same_way(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "in.pcap", FRAMES)
    sink = ListSink()
    async with Session(source=PcapFileSource(path), sinks=[sink], limit=42) as session:
        final = await session.wait()
    assert session.limit_reached.is_set()
    assert final.packets == 42 and len(sink.packets) == 42


async def test_a_duration_ends_a_session(tmp_path: Path) -> None:
    sink = ListSink()
    async with Session(sinks=[sink], duration=0.2) as session:
        session.offer(FRAMES[0])
        with anyio.fail_after(10):
            final = await session.wait()
        session.offer(FRAMES[1])  # after the end: ignored, counted nowhere
    assert final.packets == 1 and session.stats().packets == 1


async def test_a_file_replayed_in_real_time_keeps_its_gaps(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "in.pcap", FRAMES[:5], gap_ns=50_000_000)
    sink = ListSink()
    session = Session(source=PcapFileSource(path, realtime=True), sinks=[sink])
    await session.wait()
    assert [p.data for p in sink.packets] == FRAMES[:5]


async def test_a_pipe_is_read_by_its_own_thread(tmp_path: Path) -> None:
    data = write_pcap(tmp_path / "in.pcap", FRAMES).read_bytes()
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data[:24])
            f.flush()
            time.sleep(0.1)  # the reader waits in its thread meanwhile
            f.write(data[24:])

    writer = threading.Thread(target=feed)
    writer.start()
    sink = ListSink()
    with os.fdopen(r, "rb") as stream:
        source = await anyio.to_thread.run_sync(lambda: PcapFileSource(stream))
        final = await Session(source=source, sinks=[sink]).wait()
    writer.join()
    assert final.packets == 300 and [p.data for p in sink.packets] == FRAMES


async def test_stop_gives_up_on_a_stalled_sink() -> None:
    stalled = StalledSink()
    session = Session(sinks=[stalled])
    await session.start()
    session.offer(FRAMES[0])
    with anyio.fail_after(10):
        while not stalled.release.is_set() and session.stats().queued:
            await anyio.sleep(0.01)
        final = await session.stop(timeout=0.2)
    stalled.release.set()
    assert session.abandoned == ["StalledSink"] and final.sink_errors == 1


class SlowCloseSink(ListSink):
    """A sink whose close takes 0.1 s (a file flushed to a slow disk)."""

    closed = False

    def close(self) -> None:
        time.sleep(0.1)
        self.closed = True


class HangingSource:
    """A live source that delivers one batch, then neither ends nor closes (``aclose`` and
    its iterator hang: a driver stuck in the kernel)."""

    linktype = LinkType.RAW
    snaplen = 262144
    live = True

    def __init__(self) -> None:
        self.delivered = 0

    async def _iterate(self) -> AsyncIterator[PacketBatch]:
        self.delivered = 3
        yield [Packet(T0 + i, FRAMES[i], len(FRAMES[i]), Direction.INBOUND, 0) for i in range(3)]
        await anyio.sleep(60)

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        return self._iterate()

    def stats(self) -> SourceStats:
        return SourceStats(received=self.delivered)

    async def aclose(self) -> None:
        await anyio.sleep(60)


async def test_a_source_that_hangs_in_its_close_costs_the_sinks_nothing() -> None:
    """On each backend, ``stop(timeout=0.3)`` with a source whose close and iterator hang:
    the source gets 0.3 s, its reader is cancelled, the sinks then drain and close within
    their own 0.3 s; the close is reported as timed out.

    Bug fixed: the source's close and its reader took the whole timeout, twice over, and the
    writer, given none, was abandoned before it closed the sinks."""
    sink = SlowCloseSink(delay=0.05)
    session = Session(sinks=[sink], source=HangingSource())
    await session.start()
    with anyio.fail_after(10):
        while session.stats().packets < 3:
            await anyio.sleep(0.01)
        started = anyio.current_time()
        final = await session.stop(timeout=0.3)
    assert anyio.current_time() - started < 1.5
    assert (final.written, final.sink_errors, session.abandoned) == (3, 0, [])
    assert [p.data for p in sink.packets] == FRAMES[:3] and sink.closed
    assert isinstance(session.source_close_error, TimeoutError)


async def test_concurrent_stops_share_one_stop(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "in.pcap", FRAMES)
    sink = ListSink()
    session = Session(source=PcapFileSource(path, realtime=True), sinks=[sink])
    await session.start()
    results = []

    async def stop() -> None:
        results.append(await session.stop())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(stop)
    assert len(results) == 3 and len(set(results)) == 1
    assert not session.running and session.source is not None


async def test_the_backend_is_the_one_asked_for(anyio_backend: object) -> None:
    """The matrix is real: each run is on the loop it names."""
    from capsvc._aio import Loop

    name = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]  # type: ignore[index]
    loop = Loop.current()
    assert loop.backend == name
    if not isinstance(anyio_backend, str):
        assert type(loop.asyncio_loop).__module__.startswith("uvloop")
