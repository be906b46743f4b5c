"""Sinks and sources for Session tests: they keep what they get, hold the writer or the pump
where a test wants it, and count what they delivered (no mocks: each is a real Sink or Source
as the Session calls it)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from _helpers import ether, ipv4, tcp, udp

from capsvc import Direction, LinkType, Packet, PacketBatch, SourceStats, Stats

FRAME = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443, b"x" * 20, flags="PA"))
OTHER = ipv4("10.0.0.1", "10.0.0.2", udp(5000, 53, b"q"))


def offered(stats: Stats) -> int:
    """What a session was offered (its own offers and its source's packets)."""
    return stats.packets + stats.dropped + stats.filtered


def batches_of(n_batches: int, size: int) -> list[PacketBatch]:
    """``n_batches`` batches of ``size`` Ethernet frames, time-stamped 0, 1, 2, ... in order."""
    frame = ether(FRAME)
    return [
        [Packet(i * size + j, frame, len(frame), Direction.INBOUND, 1) for j in range(size)]
        for i in range(n_batches)
    ]


class ListSink:
    """A sink keeping what it is given (optionally slow, optionally failing)."""

    def __init__(self, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.packets: list[Packet] = []
        self.batches = 0
        self.flushes = 0
        self.closed = False
        self.delay = delay
        self.fail_after = fail_after

    def write_batch(self, batch: PacketBatch) -> None:
        if self.fail_after is not None and len(self.packets) >= self.fail_after:
            raise OSError(28, "No space left on device")
        if self.delay:
            time.sleep(self.delay)
        self.batches += 1
        self.packets.extend(batch)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True


class GateSink(ListSink):
    """A sink whose first write blocks until ``release`` is set (the writer is then busy)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_batch(self, batch: PacketBatch) -> None:
        self.entered.set()
        assert self.release.wait(10)
        super().write_batch(batch)


class GateSource:
    """A live source handing over the batches put in ``batches`` (None ends it)."""

    linktype = LinkType.RAW
    snaplen = 262144
    live = True

    def __init__(self) -> None:
        self.batches: asyncio.Queue[PacketBatch | None] = asyncio.Queue()
        self.delivered = 0

    async def _iterate(self) -> AsyncIterator[PacketBatch]:
        while (batch := await self.batches.get()) is not None:
            self.delivered += len(batch)
            yield batch

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        return self._iterate()

    def stats(self) -> SourceStats:
        return SourceStats(received=self.delivered)

    async def aclose(self) -> None:
        self.batches.put_nowait(None)


class ListSource:
    """A source replaying batches (live or not), counting what it delivered."""

    linktype = LinkType.ETHERNET
    snaplen = 262144

    def __init__(self, batches: list[PacketBatch], live: bool, forever: bool = False) -> None:
        self.batches = batches
        self.live = live
        self.forever = forever
        self.delivered = 0
        self.closed = asyncio.Event()

    async def _iterate(self) -> AsyncIterator[PacketBatch]:
        for batch in self.batches:
            if self.closed.is_set():
                return
            self.delivered += len(batch)
            yield batch
            await asyncio.sleep(0)
        if self.forever:
            await self.closed.wait()

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        return self._iterate()

    def stats(self) -> SourceStats:
        return SourceStats(received=self.delivered, kernel_dropped=7)

    async def aclose(self) -> None:
        self.closed.set()
