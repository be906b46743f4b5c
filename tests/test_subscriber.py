"""A session's packets in the application's own task: ``packets()`` and ``batches()``.

Bounded, dropping and counting per iterator when the reader is slow, never slowing the capture,
ending when the session stops; the counters add up (the session's offered = packets + dropped +
filtered, and each iterator's share beside it). Run on asyncio, uvloop and trio.
"""

from __future__ import annotations

import anyio
import pytest
from _helpers import ipv4, tcp, udp

from capsvc import Packet, PacketBatch, Session, Stats, SubscriberStats

pytestmark = pytest.mark.anyio

FRAME = ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 443, b"x" * 20, flags="PA"))
DNS = ipv4("10.0.0.1", "10.0.0.2", udp(5000, 53, b"q"))


class NullSink:
    def write_batch(self, batch: PacketBatch) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def offered(stats: Stats) -> int:
    return stats.packets + stats.dropped + stats.filtered


def frames(count: int) -> list[bytes]:
    return [FRAME + i.to_bytes(4, "big") for i in range(count)]


async def written(session: Session, count: int) -> None:
    """Wait until the writer handed ``count`` packets to the sinks (the iterators among them)."""
    with anyio.fail_after(10):
        while session.stats().written < count:
            await anyio.sleep(0.005)


async def test_packets_sees_every_packet_in_order_and_ends_at_stop() -> None:
    session = Session(sinks=[NullSink()])
    await session.start()
    stream = session.packets()
    got: list[Packet] = []

    async def read() -> None:
        async for packet in stream:
            got.append(packet)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        for data in frames(50):
            session.offer(data)
        await written(session, 50)
        await session.stop()  # the iteration ends once the reader took what was queued
    assert [p.data for p in got] == frames(50)
    assert stream.stats() == SubscriberStats(1, "", 50, 0, 0, 0)
    assert session.subscriber_stats() == []  # ended: detached


async def test_a_slow_reader_drops_its_own_packets_and_the_counters_add_up() -> None:
    # The session's queue holds 10: offering 100 at once drops at the session too.
    session = Session(sinks=[NullSink()], bufsize=10, matcher="tcp")
    slow = session.packets(maxsize=4)
    every = session.packets(maxsize=1000)
    await session.start()
    sent = [*frames(90), *[DNS] * 10]
    for data in sent:
        session.offer(data)
    stats = session.stats()
    assert offered(stats) == 100 and stats.filtered == 10 and stats.dropped > 0
    await written(session, stats.packets)
    # Every packet the session wrote reached each iterator's queue or its drop counter.
    mid = {s.id: s for s in session.subscriber_stats()}
    assert mid[slow.stats().id].queued == 4
    assert mid[slow.stats().id].dropped == stats.packets - 4
    assert mid[every.stats().id].queued == stats.packets
    final = await session.stop()
    taken_slow = [p async for p in slow]
    taken_all = [p async for p in every]
    assert offered(final) == 100  # the session's identity is untouched by the iterators
    assert final.dropped == stats.dropped and final.written == final.packets
    for stream, taken in ((slow, taken_slow), (every, taken_all)):
        s = stream.stats()
        assert s.packets == len(taken) and s.queued == 0
        assert s.packets + s.dropped + s.filtered == final.written
    assert [p.data for p in taken_slow] == [p.data for p in taken_all[:4]]  # the oldest kept
    assert slow.stats().dropped == final.packets - 4 and every.stats().dropped == 0


async def test_a_reader_that_never_reads_does_not_slow_the_capture() -> None:
    session = Session(sinks=[NullSink()], bufsize=64)
    stalled = session.packets(maxsize=1)
    async with session:
        for chunk in range(20):
            for data in frames(32):
                session.offer(data)
            await written(session, (chunk + 1) * 32)
    final = session.stats()
    assert final.dropped == 0 and final.written == 640  # the session queue never filled
    assert stalled.stats().dropped == 639 and stalled.stats().queued == 1


async def test_an_iterator_filter_counts_what_it_rejects() -> None:
    session = Session(sinks=[NullSink()])
    dns = session.packets(filter="udp port 53")
    async with session:
        for data in (FRAME, DNS, FRAME, DNS, DNS):
            session.offer(data)
        await written(session, 5)
    got = [p.data async for p in dns]
    assert got == [DNS] * 3
    s = dns.stats()
    assert (s.filter, s.packets, s.filtered, s.dropped) == ("udp port 53", 3, 2, 0)


async def test_batches_are_lists_of_everything_that_came() -> None:
    session = Session(sinks=[NullSink()])
    await session.start()
    stream = session.batches(maxsize=100)
    for data in frames(30):
        session.offer(data)
    await written(session, 30)
    first = await stream.__anext__()
    assert isinstance(first, list) and [p.data for p in first] == frames(30)
    first.clear()  # its own list: changing it changes nothing elsewhere
    session.offer(DNS)
    await session.stop()
    rest = [batch async for batch in stream]
    assert [[p.data for p in b] for b in rest] == [[DNS]]
    assert stream.stats().packets == 31


async def test_leaving_early_detaches_and_the_session_goes_on() -> None:
    session = Session(sinks=[NullSink()])
    async with session:
        async with session.packets() as stream:
            session.offer(FRAME)
            async for packet in stream:
                assert packet.data == FRAME
                break
            assert len(session.subscriber_stats()) == 1
        assert session.subscriber_stats() == [] and stream.closed
        assert [p async for p in stream] == []  # closed: ends at once
        session.offer(DNS)
        await written(session, 2)
    assert session.stats().packets == 2


async def test_an_iterator_of_a_stopped_session_ends_at_once() -> None:
    session = Session(sinks=[NullSink()])
    async with session:
        session.offer(FRAME)
    assert [p async for p in session.packets()] == []
    assert [b async for b in session.batches()] == []


async def test_an_iterator_made_before_start_sees_the_first_packets() -> None:
    session = Session(sinks=[NullSink()])
    stream = session.packets()
    session.offer(FRAME)  # before start: queued for the writer
    async with session:
        session.offer(DNS)
    assert [p.data async for p in stream] == [FRAME, DNS]


async def test_a_bad_maxsize_or_filter_is_refused() -> None:
    from capsvc import FilterError, OptionError

    session = Session(sinks=[NullSink()])
    with pytest.raises(OptionError, match="maxsize"):
        session.packets(maxsize=0)
    with pytest.raises(FilterError):
        session.packets(filter="tcp port")
    assert session.subscriber_stats() == []


class TcpOnly:
    """A Matcher object of the application's own (one-argument ``match``)."""

    def match(self, data: bytes) -> bool:
        return data[9] == 6

    def __repr__(self) -> str:
        return "TcpOnly()"


async def test_each_iterator_says_its_number_and_filter() -> None:
    """Iterators are numbered 1, 2, 3 in the order they were made; ``stats().filter`` is an
    expression as given without its surrounding blanks, a Matcher's repr, or "" for none;
    ``maxsize=1`` is allowed; ``batches()`` takes a filter too.

    Mutations guarded: the numbering (``= 1``, ``-= 1``, ``+= 2``), the filter's text (None,
    an expression's or a Matcher's taken for the other, "XXXX" for none), the smallest
    ``maxsize`` (``<= 1``, ``< 2``), the filter of ``batches()`` and of ``packets()`` lost."""
    session = Session(sinks=[NullSink()])
    await session.start()
    plain = session.packets(maxsize=1)
    udp_only = session.batches(filter="  udp port 53 ")
    tcp_only = session.packets(filter=TcpOnly())
    for data in (FRAME, DNS):
        session.offer(data)
    await written(session, 2)
    await session.stop()
    assert [s[:2] for s in session.subscriber_stats()] == [
        (1, ""),
        (2, "udp port 53"),
        (3, "TcpOnly()"),
    ]
    assert [p.data async for p in plain] == [FRAME]  # one held, one dropped
    assert [[p.data for p in b] async for b in udp_only] == [[DNS]]
    assert [p.data async for p in tcp_only] == [FRAME]
    assert (plain.stats().dropped, udp_only.stats().filtered, tcp_only.stats().filtered) == (
        1,
        1,
        1,
    )


async def test_leaving_early_takes_the_iterator_off_the_sinks() -> None:
    """Mutation guarded: the subscriber left among the session's sinks once detached."""
    sink = NullSink()
    session = Session(sinks=[sink])
    async with session:
        async with session.packets():
            assert len(session.sink_list()) == 2
        assert session.sink_list() == [sink]
