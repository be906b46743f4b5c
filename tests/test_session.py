"""Session behaviour: counters, queue bounds, draining, stop, sink isolation, threads, sources."""

from __future__ import annotations

import asyncio
import io
import logging
import stat
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from _helpers import ether, ipv4, udp
from _sessions import FRAME, OTHER, GateSink, GateSource, ListSink, ListSource, batches_of, offered

from capsvc import Direction, LinkType, Packet, PacketBatch, Session, Stats
from capsvc.sinks import PcapWriter
from capsvc.sinks._pcap import pcap_header


class Matcher443:
    def match(self, data: bytes) -> bool:
        return len(data) >= 24 and data[9] == 6 and data[22:24] == b"\x01\xbb"


def test_no_sink_is_refused() -> None:
    """Mutations guarded: the message's wording (it says how to make a session without)."""
    with pytest.raises(ValueError) as refused:
        Session()
    assert str(refused.value) == (
        "at least one output sink required (sinks=[] for a session read only through "
        "packets() or batches())"
    )


def test_defaults() -> None:
    """Mutations guarded: the defaults of ``duration`` (no end) and ``name`` (none)."""
    s = Session(sinks=[ListSink()])
    assert s.snaplen == 262144
    assert s.bufsize == 256
    assert s.linktype is LinkType.RAW
    assert (s.limit, s.duration, s.name) == (0, 0.0, "")
    assert (s.source, s.source_error, s.source_close_error, s.abandoned) == (None, None, None, [])


async def test_a_session_without_a_source_has_nothing_to_wait_for() -> None:
    """``wait_source()`` returns at once without a source; a source read to its end leaves
    ``source_error`` None.

    Mutations guarded: the source task's initial value (``""`` is not None: waited for),
    ``source_error``'s (``""``)."""
    s = Session(sinks=[ListSink()])
    await s.start()
    await asyncio.wait_for(s.wait_source(), 1)
    await s.stop()
    ended = Session(sinks=[ListSink()], source=ListSource(batches_of(1, 2), live=False))
    await ended.wait()
    assert ended.source_error is None and ended.stats().packets == 2


async def test_offer_reaches_sink_with_fields() -> None:
    sink = ListSink()
    async with Session(sinks=[sink]) as s:
        s.offer(FRAME, ts_ns=1_700_000_000_123_456_789)
        s.offer(bytearray(OTHER), outbound=True)
    assert len(sink.packets) == 2
    first, second = sink.packets
    assert first == (1_700_000_000_123_456_789, FRAME, len(FRAME), Direction.INBOUND, 0)
    assert second.direction is Direction.OUTBOUND
    assert type(second.data) is bytes and second.data == OTHER
    assert abs(second.ts_ns - time.time_ns()) < 5_000_000_000
    assert sink.closed
    assert s.stats() == Stats(packets=2, bytes=len(FRAME) + len(OTHER), written=2)


async def test_snaplen_truncates_but_keeps_wire_length() -> None:
    sink = ListSink()
    async with Session(sinks=[sink], snaplen=20) as s:
        s.offer(FRAME)
        s.offer(FRAME[:30], wire_len=1500)
    assert [p.data for p in sink.packets] == [FRAME[:20], FRAME[:20]]
    assert [p.wire_len for p in sink.packets] == [len(FRAME), 1500]
    assert s.stats().bytes == len(FRAME) + 1500


@pytest.mark.parametrize("matcher", [Matcher443(), "tcp port 443", "udp"], ids=str)
async def test_matcher_object_and_string(matcher: object) -> None:
    """An object with ``match`` and filter expressions (parsed for the session's link type,
    raw IP here) each keep exactly their frames."""
    keeps = OTHER if matcher == "udp" else FRAME
    sink = ListSink()
    async with Session(sinks=[sink], matcher=matcher) as s:  # type: ignore[arg-type]
        for _ in range(3):
            s.offer(FRAME)
            s.offer(OTHER)
    assert s.stats().filtered == 3 and s.stats().packets == 3
    assert [p.data for p in sink.packets] == [keeps] * 3


async def test_a_full_queue_drops_exactly_what_does_not_fit() -> None:
    """With the writer held inside its sink, a queue of 8 takes exactly 8 more offers.

    Mutation guarded: the full-queue test ``queued >= bufsize`` as ``>`` (one frame too many
    accepted, one drop too few)."""
    sink = GateSink()
    s = Session(sinks=[sink], bufsize=8)
    await s.start()
    s.offer(FRAME, ts_ns=0)
    assert await asyncio.to_thread(sink.entered.wait, 10)  # the writer took it and waits
    for i in range(1, 12):
        s.offer(FRAME, ts_ns=i)
    st = s.stats()
    assert (st.packets, st.dropped, st.queued) == (9, 3, 8)
    sink.release.set()
    await s.stop()
    assert [p.ts_ns for p in sink.packets] == list(range(9))


async def test_a_live_batch_is_cut_where_the_queue_is_full() -> None:
    """A live source's batches fill the queue to exactly ``bufsize``: the part that does not
    fit is counted dropped, the part that fits is queued in order.

    Mutations guarded: the room computed one off, a batch that fits exactly counted as a
    drop, a full queue (room 0) taking a packet."""
    sink = GateSink()
    source = GateSource()
    s = Session(sinks=[sink], source=source, bufsize=8)
    await s.start()

    async def deliver(first: int, count: int) -> None:
        source.batches.put_nowait(
            [Packet(first + i, FRAME, len(FRAME), Direction.INBOUND, 0) for i in range(count)]
        )
        while source.delivered < first + count or source.batches.qsize():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # the pump queues what it was given

    await deliver(0, 1)
    assert await asyncio.to_thread(sink.entered.wait, 10)
    await deliver(1, 5)  # room 8: all queued
    await deliver(6, 3)  # room 3: all queued, the queue is now full
    assert (s.stats().packets, s.stats().dropped) == (9, 0)
    await deliver(9, 2)  # room 0: both dropped
    assert (s.stats().packets, s.stats().dropped, s.stats().queued) == (9, 2, 8)
    sink.release.set()
    while s.stats().queued:
        await asyncio.sleep(0.01)
    await deliver(11, 10)  # room 8: 8 queued, 2 dropped
    await s.stop()
    st = s.stats()
    assert (st.packets, st.dropped, st.received) == (17, 4, 21)
    assert [p.ts_ns for p in sink.packets] == [*range(9), *range(11, 19)]


async def test_full_queue_drops_and_counts_exactly() -> None:
    sink = ListSink(delay=0.05)
    s = Session(sinks=[sink], bufsize=8, matcher=Matcher443())
    await s.start()
    n = 5000
    for i in range(n):
        s.offer(FRAME if i % 3 else OTHER)
        if i % 1000 == 0:
            await asyncio.sleep(0)  # let the writer take a batch now and then
    await s.stop()
    st = s.stats()
    assert st.dropped > 0
    assert offered(st) == n
    assert len(sink.packets) == st.packets == st.written
    assert st.queued == 0


async def test_stop_drains_everything_queued() -> None:
    sink = ListSink(delay=0.01)
    s = Session(sinks=[sink], bufsize=100_000)
    await s.start()
    for i in range(20_000):
        s.offer(FRAME, ts_ns=i)
    await s.stop()
    assert s.done.is_set()
    assert [p.ts_ns for p in sink.packets] == list(range(20_000))


async def test_stop_is_idempotent_and_concurrent() -> None:
    sink = ListSink()
    s = Session(sinks=[sink])
    await s.start()
    s.offer(FRAME)
    await asyncio.gather(s.stop(), s.stop(), s.stop())
    await s.stop()
    assert len(sink.packets) == 1 and sink.closed


async def test_offer_after_stop_is_ignored_and_not_counted() -> None:
    sink = ListSink()
    s = Session(sinks=[sink])
    async with s:
        s.offer(FRAME)
    s.offer(FRAME)
    s.offer(FRAME)
    assert s.stats().packets == 1 and offered(s.stats()) == 1
    assert len(sink.packets) == 1


async def test_stop_without_start_drains() -> None:
    sink = ListSink()
    s = Session(sinks=[sink])
    s.offer(FRAME)
    await s.stop()
    assert len(sink.packets) == 1 and s.done.is_set()
    with pytest.raises(RuntimeError):
        await s.start()


async def test_failing_sink_is_isolated_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    good, bad = ListSink(), ListSink(fail_after=2)
    async with Session(sinks=[bad, good]) as s:
        for _ in range(3):
            s.offer(FRAME)
            await asyncio.sleep(0.02)
        for _ in range(3):
            s.offer(FRAME)
            await asyncio.sleep(0.02)
    assert len(good.packets) == 6
    assert len(bad.packets) == 2
    assert s.stats().sink_errors == 1
    failures = [r for r in caplog.records if "ListSink failed" in r.getMessage()]
    assert len(failures) == 1


async def test_closed_stream_is_a_sink_error_not_a_crash() -> None:
    stream = io.BytesIO()
    stream.close()
    good = ListSink()
    async with Session(output=stream, sinks=[good]) as s:
        s.offer(FRAME)
    assert s.stats().sink_errors == 1
    assert len(good.packets) == 1


async def test_slow_sink_never_blocks_offer() -> None:
    sink = ListSink(delay=0.2)
    s = Session(sinks=[sink], bufsize=16)
    await s.start()
    s.offer(FRAME)
    await asyncio.sleep(0.01)  # the writer is now inside the slow sink
    started = time.perf_counter()
    for _ in range(10_000):
        s.offer(FRAME)
    spent = time.perf_counter() - started
    await s.stop()
    assert s.stats().dropped > 0
    assert spent < 0.2  # offers ran while the sink slept: they did not wait for it


async def test_threadsafe_offers_are_all_accounted() -> None:
    sink = ListSink()
    s = Session(sinks=[sink], bufsize=1_000_000)
    await s.start()
    per_thread, threads = 2000, 4

    def produce(k: int) -> None:
        for i in range(per_thread):
            s.offer_threadsafe(FRAME, ts_ns=k * per_thread + i)

    workers = [threading.Thread(target=produce, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    await s.stop()
    assert offered(s.stats()) == per_thread * threads
    assert sorted(p.ts_ns for p in sink.packets) == list(range(per_thread * threads))


async def test_threadsafe_offer_racing_stop_is_written_or_uncounted() -> None:
    sink = ListSink()
    s = Session(sinks=[sink], bufsize=1_000_000)
    await s.start()
    running = True

    def produce() -> None:
        while running:
            s.offer_threadsafe(FRAME)

    t = threading.Thread(target=produce)
    t.start()
    await asyncio.sleep(0.05)
    await s.stop()
    running = False
    t.join()
    await asyncio.sleep(0.05)
    assert s.stats().packets == len(sink.packets) > 0


async def test_limit_stops_accepting() -> None:
    sink = ListSink()
    async with Session(sinks=[sink], limit=5) as s:
        for _ in range(10):
            s.offer(FRAME)
        assert s.limit_reached.is_set()
    assert len(sink.packets) == 5 and s.stats().packets == 5


async def test_pcap_output_path_is_private_and_closed(tmp_path: object) -> None:
    import os
    from pathlib import Path

    out = Path(str(tmp_path)) / "out.pcap"
    async with Session(output=out) as s:
        s.offer(FRAME, ts_ns=1_000_000_001)
    data = out.read_bytes()
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert struct.unpack_from("<I", data)[0] == 0xA1B23C4D
    assert struct.unpack_from("<IIII", data, 24) == (1, 1, len(FRAME), len(FRAME))
    assert data[40:] == FRAME


async def test_caller_stream_stays_open() -> None:
    stream = io.BytesIO()
    async with Session(output=stream) as s:
        s.offer(FRAME)
    assert not stream.closed
    assert len(stream.getvalue()) == 24 + 16 + len(FRAME)


async def test_empty_capture_writes_the_header_alone() -> None:
    stream = io.BytesIO()
    async with Session(output=stream, linktype=LinkType.ETHERNET):
        pass
    assert stream.getvalue() == pcap_header(0, LinkType.ETHERNET, nanosecond=True)


async def test_idle_writer_flushes_sinks() -> None:
    sink = ListSink()
    async with Session(sinks=[sink]):
        await asyncio.sleep(0.6)
    assert sink.flushes >= 2


async def test_file_like_source_is_held_back_not_dropped() -> None:
    sink = ListSink(delay=0.005)
    source = ListSource(batches_of(50, 100), live=False)
    s = Session(sinks=[sink], source=source, bufsize=150)
    await s.start()
    await s.wait_source()
    await s.stop()
    assert s.stats().dropped == 0
    assert len(sink.packets) == 5000
    assert [p.ts_ns for p in sink.packets] == list(range(5000))


async def test_live_source_overflow_is_counted() -> None:
    sink = ListSink(delay=0.05)
    source = ListSource(batches_of(50, 100), live=True)
    s = Session(sinks=[sink], source=source, bufsize=150)
    await s.start()
    await s.wait_source()
    await s.stop()
    st = s.stats()
    assert st.dropped > 0
    assert offered(st) == 5000 == st.received
    assert st.kernel_dropped == 7
    assert s.linktype is LinkType.ETHERNET


async def test_stop_closes_a_quiet_source_promptly() -> None:
    source = ListSource(batches_of(1, 3), live=True, forever=True)
    s = Session(sinks=[ListSink()], source=source)
    await s.start()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await s.stop()
    assert time.monotonic() - started < 1.0
    assert source.closed.is_set()
    assert s.stats().packets == 3


async def test_source_snaplen_and_matcher_apply() -> None:
    sink = ListSink()
    source = ListSource(batches_of(2, 4), live=True)

    class Every3rdFrame:
        """Keeps every third frame; it sees the whole frame, before the snaplen cut."""

        def __init__(self) -> None:
            self.seen = 0

        def match(self, data: bytes) -> bool:
            self.seen += 1
            assert len(data) > 14
            return self.seen % 3 == 1

    matcher = Every3rdFrame()
    s = Session(sinks=[sink], source=source, snaplen=14, matcher=matcher)
    await s.start()
    await s.wait_source()
    await s.stop()
    assert all(len(p.data) == 14 and p.wire_len > 14 for p in sink.packets)
    assert [p.ts_ns for p in sink.packets] == [0, 3, 6]
    assert (s.stats().packets, s.stats().filtered, matcher.seen) == (3, 5, 8)


def test_pcap_writer_used_by_session_roundtrips() -> None:
    stream = io.BytesIO()
    w = PcapWriter(stream, 0, LinkType.ETHERNET)
    w.write_packet(2_000_000_500, ether(FRAME))
    assert struct.unpack_from("<IHHiIII", stream.getvalue()) == (0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


async def test_all_sinks_failing_is_signalled() -> None:
    bad = ListSink(fail_after=0)
    async with Session(sinks=[bad]) as s:
        s.offer(FRAME)
        await asyncio.wait_for(s.sinks_failed.wait(), 2)
    st = s.stats()
    assert st.sink_errors == 1 and st.packets == 1 and st.written == 0


async def test_text_output_path_gets_one_line_per_packet(tmp_path: object) -> None:
    import os
    from pathlib import Path

    out = Path(str(tmp_path)) / "log.txt"
    async with Session(text_output=out) as s:
        s.offer(FRAME)
        s.offer(OTHER, outbound=True)
    lines = out.read_text().splitlines()
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert len(lines) == 2
    assert "[IN   TCP] 10.0.0.1:40000 > 10.0.0.2:443" in lines[0]
    assert "[OUT  UDP] 10.0.0.1:5000 > 10.0.0.2:53" in lines[1]


async def test_offered_wire_length_reaches_length_primitives() -> None:
    """``offer(cut, wire_len=N)``: ``greater`` sees N, not the captured bytes; a matcher of
    one's own with a one-argument ``match`` still works beside it."""
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"x" * 200)))
    sink = ListSink()
    async with Session(sinks=[sink], matcher="greater 150", linktype=LinkType.ETHERNET) as s:
        s.offer(frame[:60], wire_len=len(frame))
        s.offer(frame[:60])
    assert [p.wire_len for p in sink.packets] == [len(frame)]
    assert s.stats().filtered == 1

    class Short:
        def match(self, data: bytes) -> bool:
            return len(data) < 100

    sink = ListSink()
    async with Session(sinks=[sink], matcher=Short(), linktype=LinkType.ETHERNET) as s:
        s.offer(frame[:60], wire_len=len(frame))
        s.offer(frame)
    assert [len(p.data) for p in sink.packets] == [60]


# -- what mutation testing showed unchecked ----------------------------------------------------


NEGATIVE = r"^snaplen, bufsize, limit and duration must not be negative$"


def test_settings_and_their_errors() -> None:
    for setting in ("snaplen", "bufsize", "limit", "duration"):
        with pytest.raises(ValueError, match=NEGATIVE):
            Session(sinks=[ListSink()], **{setting: -1})  # type: ignore[arg-type]
    with_source = Session(sinks=[ListSink()], source=ListSource([], live=True), name="n1")
    assert (with_source.bufsize, with_source.name, with_source.limit) == (65536, "n1", 0)
    assert Session(sinks=[ListSink()], bufsize=3, snaplen=9).bufsize == 3
    assert with_source.source is not None and with_source.running is False


class FilteringSource(ListSource):
    """A source whose kernel could not take its filter: it leaves it for the Session."""

    userspace_filter = "tcp"


async def test_a_source_left_filter_is_applied_by_the_session() -> None:
    source = FilteringSource(
        [[Packet(i, ether(FRAME if i % 2 else OTHER), 60, Direction.INBOUND, 1) for i in range(6)]],
        live=True,
    )
    sink = ListSink()
    s = Session(sinks=[sink], source=source)
    await s.start()
    await s.wait_source()
    await s.stop()
    assert [p.ts_ns for p in sink.packets] == [1, 3, 5] and s.stats().filtered == 3


async def test_outputs_by_path_and_by_stream(tmp_path: Path) -> None:
    """Mutations guarded: pcapng written as pcap, text options dropped, the file's path."""
    pcapng, text = tmp_path / "o.pcapng", tmp_path / "o.txt"
    stream = io.StringIO()
    s = Session(output=pcapng, pcapng=True, text_output=text, verbose=True)
    s2 = Session(text_output=stream, ascii=True)
    async with s, s2:
        s.offer(FRAME, ts_ns=10**18)
        s2.offer(FRAME, ts_ns=10**18)
    assert pcapng.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    assert stat.S_IMODE(pcapng.stat().st_mode) == stat.S_IMODE(text.stat().st_mode) == 0o600
    line = text.read_text().splitlines()
    assert len(line) == 1 and "ttl 64" in line[0]  # verbose: the IP fields
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].strip() == "x" * 20  # ascii: the payload
    assert not stream.closed  # a caller's stream stays open
    binary = io.BytesIO()
    async with Session(output=binary) as s3:
        s3.offer(FRAME)
    assert binary.getvalue()[:4] == bytes.fromhex("4d3cb2a1")  # a stream gets pcap (ns)


async def test_offer_threadsafe_before_during_and_after() -> None:
    """Mutations guarded: the direction of an offer before start lost."""
    sink = ListSink()
    s = Session(sinks=[sink])
    s.offer_threadsafe(bytearray(FRAME), True, ts_ns=1, wire_len=999)  # before start: an offer
    await s.start()
    thread = threading.Thread(
        target=lambda: s.offer_threadsafe(OTHER, outbound=True, ts_ns=2, wire_len=500)
    )
    thread.start()
    thread.join()
    for _ in range(100):
        if s.stats().packets == 2:
            break
        await asyncio.sleep(0.01)
    await s.stop()
    s.offer_threadsafe(FRAME, ts_ns=3)  # after stop: ignored
    assert [(p.ts_ns, p.wire_len, p.direction) for p in sink.packets] == [
        (1, 999, Direction.OUTBOUND),
        (2, 500, Direction.OUTBOUND),
    ]
    assert s.stats().packets == 2


class ThreadOfMatch:
    """A matcher noting the thread each frame is matched on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def match(self, data: bytes) -> bool:
        self.threads.append(threading.current_thread().name)
        return True


async def test_offer_threadsafe_hands_the_frame_to_the_loops_thread() -> None:
    """A frame offered from another thread is matched and counted on the event loop's thread
    (the matcher never runs beside the loop's own offers); inbound unless said otherwise.

    Mutations guarded: the loop not looked up (the frame offered in the calling thread), the
    default direction OUTBOUND."""
    matcher = ThreadOfMatch()
    sink = ListSink()
    s = Session(sinks=[sink], matcher=matcher)
    await s.start()
    thread = threading.Thread(target=lambda: s.offer_threadsafe(FRAME), name="producer")
    thread.start()
    thread.join()
    await s.stop()
    assert matcher.threads == [threading.current_thread().name]
    assert [p.direction for p in sink.packets] == [Direction.INBOUND]


async def test_offer_threadsafe_stamps_the_frame_when_it_is_offered() -> None:
    """The timestamp is taken in the calling thread when it offers, not when the loop gets to
    the frame (here 0.2 s later: the loop is busy).

    Mutation guarded: no timestamp taken in the thread (the loop's offer() takes one later)."""
    sink = ListSink()
    s = Session(sinks=[sink])
    await s.start()
    called: list[int] = []

    def produce() -> None:
        called.append(time.time_ns())
        s.offer_threadsafe(FRAME)
        called.append(time.time_ns())

    thread = threading.Thread(target=produce)
    thread.start()
    thread.join()
    time.sleep(0.2)  # the loop is busy: the frame waits for it
    await s.stop()
    assert len(sink.packets) == 1
    assert called[0] <= sink.packets[0].ts_ns <= called[1]


async def test_the_snaplen_is_written_in_file_headers(tmp_path: Path) -> None:
    """Mutations guarded: the snapshot length not given to the pcap writer of a path, or of a
    stream."""
    path, stream = tmp_path / "o.pcap", io.BytesIO()
    async with Session(output=path, snaplen=100) as s1, Session(output=stream, snaplen=64) as s2:
        s1.offer(FRAME)
        s2.offer(FRAME)
    assert struct.unpack_from("<I", path.read_bytes(), 16) == (100,)
    assert struct.unpack_from("<I", stream.getvalue(), 16) == (64,)


async def test_text_options_for_a_path_and_for_a_stream(tmp_path: Path) -> None:
    """``ascii`` reaches a text file given by path, ``verbose`` a text stream; by default a
    line has neither the IP fields nor the payload.

    Mutations guarded: either option dropped on its way, ``verbose`` on by default."""
    path = tmp_path / "a.txt"
    verbose, plain = io.StringIO(), io.StringIO()
    async with (
        Session(text_output=path, ascii=True) as s1,
        Session(text_output=verbose, verbose=True) as s2,
        Session(text_output=plain) as s3,
    ):
        for s in (s1, s2, s3):
            s.offer(FRAME, ts_ns=10**18)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1].strip() == "x" * 20 and "ttl" not in lines[0]
    assert len(verbose.getvalue().splitlines()) == 1 and "ttl 64" in verbose.getvalue()
    assert len(plain.getvalue().splitlines()) == 1 and "ttl" not in plain.getvalue()
    assert plain.getvalue().splitlines()[0] == lines[0]


async def test_a_named_sessions_sink_failure_names_it(caplog: pytest.LogCaptureFixture) -> None:
    """Mutations guarded: the session's name not given to its writer (the log line then has
    no "session NAME: " prefix)."""
    async with Session(sinks=[ListSink(fail_after=0), ListSink()], name="w") as s:
        s.offer(FRAME)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "session w: sink ListSink failed and is disabled: [Errno 28] No space left on device"
    ]


async def test_a_limit_reached_before_start_and_after() -> None:
    """Offers before ``start()`` may reach the limit (no error; the session starts and writes
    them); a limit reached while running ends the capture by itself: the writer drains,
    closes the sinks and sets ``done`` before any ``stop()``.

    Mutation guarded: the writer's close at the limit inverted (``writer is None``)."""
    early = ListSink()
    s = Session(sinks=[early], limit=2)
    for i in range(3):
        s.offer(FRAME, ts_ns=i)
    assert s.limit_reached.is_set() and s.ended.is_set()
    await s.start()
    await s.stop()
    assert [p.ts_ns for p in early.packets] == [0, 1]
    sink = ListSink()
    s = Session(sinks=[sink], limit=2)
    await s.start()
    s.offer(FRAME)
    s.offer(FRAME)
    await asyncio.wait_for(s.done.wait(), 5)
    assert sink.closed and len(sink.packets) == 2
    await s.stop()


async def test_set_matcher_takes_the_old_filters_batch_first() -> None:
    source = ListSource([], live=True, forever=True)
    sink = ListSink()
    s = Session(sinks=[sink], source=source, matcher="udp")
    await s.start()
    old = [Packet(i, ether(p), 60, Direction.INBOUND, 1) for i, p in enumerate([FRAME, OTHER])]
    s.set_matcher("tcp", before=old)  # the old filter (udp) judges these
    s.offer(ether(FRAME), ts_ns=10)
    s.offer(ether(OTHER), ts_ns=11)
    await s.stop()
    assert [p.ts_ns for p in sink.packets] == [1, 10]
    assert s.stats().filtered == 2


class FailingSource(ListSource):
    def __init__(self, error: Exception) -> None:
        super().__init__(batches_of(1, 2), live=True)
        self.error = error

    async def _iterate(self) -> AsyncIterator[PacketBatch]:
        yield self.batches[0]
        raise self.error


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (OSError(100, "Network is down"), "[Errno 100] Network is down"),
        (MemoryError(), "MemoryError"),
    ],
)
async def test_a_failing_source_ends_the_capture_and_says_why(
    error: Exception, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListSink()
    s = Session(sinks=[sink], source=FailingSource(error), name="f")
    await s.start()
    await s.wait_source()
    await s.stop()
    assert s.source_error is error and len(sink.packets) == 2
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"session f: capture source failed: {text}"
    ]


async def test_sinks_added_and_removed_before_and_after_start() -> None:
    first, later, bound = ListSink(), ListSink(), StatsAware()
    s = Session(sinks=[first])
    s.add_sink(bound)
    assert s.sink_list() == [first, bound] and bound.linktype is LinkType.RAW
    s.remove_sink(bound)
    assert s.sink_list() == [first]
    await s.start()
    s.add_sink(later)
    assert s.sink_list() == [first, later]
    s.offer(FRAME, ts_ns=1)
    await asyncio.sleep(0.1)
    s.remove_sink(first)
    s.offer(FRAME, ts_ns=2)
    await s.stop()
    assert [p.ts_ns for p in first.packets] == [1]
    assert [p.ts_ns for p in later.packets] == [1, 2]
    assert bound.stats is not None and bound.stats().packets == 2


async def test_a_sink_given_at_construction_is_bound_at_start() -> None:
    """A sink that asks for the session's counters (``bind_session``) and is given in
    ``sinks=`` gets them, and the link type, when the session starts.

    Mutations guarded: either argument of ``bind_session`` lost at start."""
    bound = StatsAware()
    s = Session(sinks=[bound], linktype=LinkType.ETHERNET)
    await s.start()
    s.offer(ether(FRAME))
    await s.stop()
    assert bound.linktype is LinkType.ETHERNET
    assert bound.stats is not None and bound.stats().packets == 1


class StatsAware(ListSink):
    """A sink that asks for the Session's counters."""

    def __init__(self) -> None:
        super().__init__()
        self.stats: Callable[[], Stats] | None = None
        self.linktype: LinkType | None = None

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        self.stats, self.linktype = stats, linktype


async def test_a_limit_cuts_a_source_batch() -> None:
    sink = ListSink()
    source = ListSource(batches_of(3, 4), live=True)
    s = Session(sinks=[sink], source=source, limit=6)
    await s.start()
    await asyncio.wait_for(s.limit_reached.wait(), 5)
    await s.stop()
    assert [p.ts_ns for p in sink.packets] == list(range(6))
    assert s.stats().packets == 6 and s.stats().dropped == 0


async def test_stats_before_start_and_the_started_twice_rule() -> None:
    s = Session(sinks=[ListSink()], bufsize=4)
    s.offer(FRAME)
    assert s.stats() == Stats(packets=1, bytes=len(FRAME), queued=1)
    await s.start()
    await s.start()  # does nothing
    await s.stop()
    assert s.stats() == Stats(packets=1, bytes=len(FRAME), written=1)
    with pytest.raises(RuntimeError, match=r"^a stopped session cannot be started again$"):
        await s.start()
