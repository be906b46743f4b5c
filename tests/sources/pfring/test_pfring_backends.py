"""PfRingSource under anyio's backends (asyncio, uvloop, trio) on the stand-in libpfring, both
ways it waits: the selectable fd (watched by the loop) and the poll thread (anyio's worker
thread on trio)."""

from __future__ import annotations

import anyio
import pytest
from _pfring_fake import FRAMES, FakeRing

from capsvc import Packet, PacketBatch, Session
from capsvc.sources.pfring._source import PfRingSource

pytestmark = pytest.mark.anyio


class NullSink:
    def write_batch(self, batch: PacketBatch) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("selectable", [True, False], ids=["selectable-fd", "poll-thread"])
async def test_pfring_on_each_backend(fake: FakeRing, selectable: bool) -> None:
    if not selectable:
        fake.set("CAPSVC_FAKE_PFRING_NO_FD", "1")
    source = PfRingSource("lo", library=fake.library)
    got: list[Packet] = []
    async with Session(sinks=[NullSink()], source=source) as session:
        stream = session.packets()
        with anyio.fail_after(10):
            async for packet in stream:
                got.append(packet)
                if len(got) == len(FRAMES):
                    break
        await anyio.sleep(0.2)  # idle: it waits (and stop wakes it)
    assert [p.data for p in got] == FRAMES
