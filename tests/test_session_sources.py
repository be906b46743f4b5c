"""A Session reading a source: a capture file's limit (what was looked at, kept, filtered and
left unread), a file held back by a full queue (waiting without spinning, given up by
``abandon()`` or ``stop()``, every packet counted once), the filter of a source's batches, a
batch given to ``set_matcher``, and how soon an idle writer takes a live source's packet."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from _helpers import ether, ipv4, udp
from _sessions import FRAME, GateSink, GateSource, ListSink, ListSource, batches_of, offered

from capsvc import Direction, LinkType, Packet, PacketBatch, Session


class EvenNumbers:
    """A matcher keeping the frames of ``numbered`` whose number (their last byte) is even."""

    def match(self, data: bytes) -> bool:
        return data[-1] % 2 == 0


def numbered(n_batches: int, size: int, *, live: bool = False) -> ListSource:
    """A source of ``n_batches`` batches of ``size`` frames whose last byte is their number."""
    frames = [ether(FRAME) + bytes([n]) for n in range(n_batches * size)]
    batches = [
        [Packet(n, frames[n], len(frames[n]), Direction.INBOUND, 1) for n in range(i, i + size)]
        for i in range(0, n_batches * size, size)
    ]
    return ListSource(batches, live=live)


async def run(session: Session) -> Session:
    await session.start()
    await session.wait_source()
    await session.stop()
    return session


async def test_a_capture_files_limit_counts_what_was_not_looked_at() -> None:
    """Without a filter, a file with a limit of 6 in batches of 4: the first 6 packets are
    kept, and what the file delivered past them (2 of the second batch, the whole third) is
    unread: ``received`` leaves it out, as tcpdump counts.

    Mutations guarded: the count left to the limit, the examined count, the unread count
    (assigned, subtracted, added), ``received`` with the unread added."""
    sink = ListSink()
    source = numbered(3, 4)
    s = await run(Session(sinks=[sink], source=source, limit=6))
    st = s.stats()
    assert [p.ts_ns for p in sink.packets] == list(range(6))
    assert (st.packets, st.filtered, st.dropped, st.received) == (6, 0, 0, 6)
    assert source.delivered == 12 and s.limit_reached.is_set()


@pytest.mark.parametrize(("limit", "kept", "filtered"), [(4, [0, 2, 4, 6], 3), (3, [0, 2, 4], 2)])
async def test_a_capture_files_limit_with_a_filter(
    limit: int, kept: list[int], filtered: int
) -> None:
    """A filter keeping even numbers and a limit: the packets are matched up to the one that
    reaches the limit; those rejected before it are filtered, the rest of its batch and the
    next batch are unread. received = packets + filtered, exactly.

    Mutations guarded: the matcher not applied (or given the wrong fields), the limit test
    ``>`` for ``>=``, the index after the packet that reached it (``i - 1``, ``i + 2``), the
    filtered count (assigned, subtracted, ``examined + kept``)."""
    sink = ListSink()
    s = await run(Session(sinks=[sink], source=numbered(3, 4), limit=limit, matcher=EvenNumbers()))
    st = s.stats()
    assert [p.ts_ns for p in sink.packets] == kept
    assert (st.packets, st.filtered, st.received) == (limit, filtered, limit + filtered)


async def test_a_capture_files_limit_with_a_length_filter() -> None:
    """A length filter and a limit on a capture file's truncated frames: each is judged by
    its wire length (1500 or 900), not the 60 bytes captured.

    Mutations guarded: the matcher given None or the direction for the wire length."""
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"x" * 1400)))[:60]
    batch = [Packet(i, frame, 900 if i % 2 else 1500, Direction.INBOUND, 1) for i in range(6)]
    sink = ListSink()
    source = ListSource([batch], live=False)
    s = await run(Session(sinks=[sink], source=source, matcher="greater 1000", limit=2))
    assert [p.ts_ns for p in sink.packets] == [0, 2]
    assert (s.stats().filtered, s.stats().received) == (1, 3)


async def test_a_live_sources_limit_counts_everything_it_delivered() -> None:
    """A live source with a limit: what it delivers past the limit was received by the kernel
    and counts in ``received`` (nothing is unread for a live source).

    Mutations guarded: the unread count kept for a live source (``source.live`` inverted,
    ``limit and source.live``)."""
    sink = ListSink()
    source = numbered(3, 4, live=True)
    s = Session(sinks=[sink], source=source, limit=6)
    await s.start()
    await asyncio.wait_for(s.limit_reached.wait(), 5)
    await s.stop()
    assert [p.ts_ns for p in sink.packets] == list(range(6))
    assert (s.stats().packets, s.stats().received) == (6, source.delivered)


async def test_a_source_batchs_filter_sees_the_wire_length() -> None:
    """A length filter on a source's truncated frames judges their wire length (1500), not
    what was captured (60 bytes).

    Mutations guarded: the matcher given None or the direction for the wire length."""
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"x" * 1400)))[:60]
    batch = [Packet(i, frame, 1500 - i * 600, Direction.INBOUND, 1) for i in range(3)]
    sink = ListSink()
    s = await run(
        Session(sinks=[sink], source=ListSource([batch], live=True), matcher="greater 1000")
    )
    assert [p.wire_len for p in sink.packets] == [1500]
    assert s.stats().filtered == 2


async def test_a_held_back_file_waits_without_spinning() -> None:
    """A capture file whose queue is exactly full while the writer is stuck in a sink: the
    source waits, the event loop stays free (this test's own sleep returns), nothing drops;
    once the sink returns, every packet is written in order.

    Mutations guarded: ``len(queue) > bufsize`` for ``>=`` in either test of the wait (the
    pump then loops without ever awaiting, and the loop hangs)."""
    sink = GateSink()
    source = ListSource(batches_of(4, 4), live=False)
    s = Session(sinks=[sink], source=source, bufsize=4)
    await s.start()
    assert await asyncio.to_thread(sink.entered.wait, 10)  # the writer holds the first batch
    await asyncio.sleep(0.1)
    st = s.stats()
    assert (st.queued, st.dropped, source.delivered) == (4, 0, 12)
    sink.release.set()
    await s.wait_source()
    final = await s.stop()
    assert [p.ts_ns for p in sink.packets] == list(range(16))
    assert (final.dropped, final.received, final.written) == (0, 16, 16)


async def test_abandon_drops_and_counts_the_batch_waiting_for_room() -> None:
    """``abandon()`` while a capture file waits for room: that batch is dropped and counted
    (after the drops already counted), the next one is left unread; the counters still add
    up: received + offers = packets + dropped.

    Mutations guarded: the held-back batch's drop assigned or subtracted."""
    sink = GateSink()
    source = ListSource(batches_of(4, 4), live=False)
    s = Session(sinks=[sink], source=source, bufsize=4)
    await s.start()
    assert await asyncio.to_thread(sink.entered.wait, 10)
    await asyncio.sleep(0.05)  # the second batch fills the queue, the third waits
    s.offer(FRAME)
    s.offer(FRAME)  # the queue is full: two drops
    s.abandon()
    await s.wait_source()
    sink.release.set()
    final = await s.stop()
    assert (final.packets, final.dropped) == (8, 6)
    assert final.received + 2 == offered(final)


async def test_stop_counts_the_batch_a_file_was_still_holding_back() -> None:
    """``stop(timeout)`` with a stuck sink cancels a capture file still waiting for room: the
    batch it held is counted as dropped (after the drops counted before), so received +
    offers = packets + dropped still holds.

    Bug fixed: that batch was counted nowhere. Mutation guarded: its drop assigned."""
    sink = GateSink()
    source = ListSource(batches_of(4, 4), live=False)
    s = Session(sinks=[sink], source=source, bufsize=4)
    await s.start()
    assert await asyncio.to_thread(sink.entered.wait, 10)
    await asyncio.sleep(0.05)  # the second batch fills the queue, the third waits
    s.offer(FRAME)  # the queue is full: a drop before the held batch's
    final = await s.stop(timeout=0.2)
    sink.release.set()
    assert (final.packets, final.dropped, final.received) == (8, 5, 12)
    assert offered(final) == final.received + 1 and s.abandoned == ["GateSink"]


async def test_an_idle_writer_takes_a_live_packet_at_once() -> None:
    """A live source's packet reaches the sinks of an idle writer at once, not at the
    writer's next idle flush (``IDLE_FLUSH_INTERVAL``, 0.25 s).

    Mutations guarded: the writer not woken when the queue was empty (``was_empty`` lost,
    the writer not looked up or looked up inverted)."""
    sink = ListSink()
    source = GateSource()
    s = Session(sinks=[sink], source=source)
    await s.start()
    for n in range(2):
        flushes = sink.flushes
        while sink.flushes == flushes:  # just after an idle flush: a whole idle wait ahead
            await asyncio.sleep(0.001)
        started = time.monotonic()
        source.batches.put_nowait([Packet(n, FRAME, len(FRAME), Direction.INBOUND, 0)])
        while len(sink.packets) == n:
            await asyncio.sleep(0.001)
        assert time.monotonic() - started < 0.15
    await s.stop()
    assert [p.ts_ns for p in sink.packets] == [0, 1]


async def test_set_matcher_with_and_without_a_batch_and_a_source() -> None:
    """``set_matcher`` without ``before`` on a session with a source just replaces the
    filter; a ``before`` batch is taken only while the session runs with a source (a session
    without one, or a stopped one, ignores it).

    Mutations guarded: ``and`` for ``or`` in either place of the condition."""
    old = [Packet(i, ether(FRAME), 60, Direction.INBOUND, 1) for i in range(2)]
    sink = ListSink()
    source = ListSource([], live=True, forever=True)
    s = Session(sinks=[sink], source=source, matcher="udp")
    await s.start()
    s.set_matcher("tcp")
    s.offer(ether(FRAME), ts_ns=10)
    await s.stop()
    s.set_matcher("udp", before=old)  # stopped: ignored
    assert [p.ts_ns for p in sink.packets] == [10] and s.stats().packets == 1
    alone = ListSink()
    async with Session(sinks=[alone], linktype=LinkType.ETHERNET) as s2:
        s2.set_matcher("tcp", before=old)  # no source: ignored
    assert alone.packets == [] and s2.stats().packets == 0


class FailingSource(ListSource):
    def __init__(self) -> None:
        super().__init__(batches_of(1, 2), live=True)

    async def _iterate(self) -> AsyncIterator[PacketBatch]:
        yield self.batches[0]
        raise OSError(100, "Network is down")


async def test_an_unnamed_sessions_failing_source_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mutations guarded: the "session NAME: " prefix given to a session without a name."""
    s = await run(Session(sinks=[ListSink()], source=FailingSource()))
    assert isinstance(s.source_error, OSError)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "capture source failed: [Errno 100] Network is down"
    ]
