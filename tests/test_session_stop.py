"""How a Session ends: ``stop()`` (its timeout, concurrent callers, a source that will not
close, sinks that will not finish), ``abandon()``, ``wait()``, ``duration``, and the tasks it
runs meanwhile. What a caller sees: the final counters, what the sinks got and whether they
were closed, ``abandoned``, ``source_close_error``, the log lines."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import pytest
from _sessions import FRAME, GateSink, ListSink, ListSource, batches_of, offered

from capsvc import PacketBatch, Session


def errors(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


class StuckSource(ListSource):
    """A source whose aclose raises, or hangs."""

    def __init__(self, hang: bool) -> None:
        super().__init__([], live=True, forever=True)
        self.hang = hang

    async def aclose(self) -> None:
        if self.hang:
            await asyncio.sleep(30)
        raise OSError(9, "Bad file descriptor")


class SlowCloseSink(ListSink):
    """A sink whose close takes a while (a file flushed to a slow disk)."""

    def close(self) -> None:
        time.sleep(0.1)
        super().close()


@pytest.mark.parametrize("hang", [False, True], ids=["raises", "hangs"])
async def test_a_source_that_will_not_close_does_not_cost_the_sinks(
    hang: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A source whose ``aclose()`` raises or hangs gets ``min(timeout, 5)`` seconds; the sinks
    still get their own ``timeout`` after it: every queued packet is written, every sink
    closed, nothing abandoned, and what went wrong with the close is kept and logged.

    Bug fixed: the source's close took the whole timeout, the writer got none left and was
    abandoned (``sink_errors`` 1, "gave up waiting for the writer", a sink not closed).
    Mutation guarded: the reader left running when it did not end in time (not cancelled)."""
    source = StuckSource(hang)
    sink = SlowCloseSink(delay=0.05)
    s = Session(sinks=[sink], source=source)
    await s.start()
    for i in range(3):
        s.offer(FRAME, ts_ns=i)
    started = time.monotonic()
    st = await s.stop(timeout=0.3)
    assert time.monotonic() - started < 0.3 + 0.3 + 0.5
    assert sink.closed and [p.ts_ns for p in sink.packets] == [0, 1, 2]
    assert (st.sink_errors, st.written, s.abandoned) == (0, 3, [])
    assert s.done.is_set()
    # The source's reader, which never ended by itself, was cancelled: nothing of it is left.
    await asyncio.wait_for(s.wait_source(), 1)
    assert "capsvc-source" not in {t.get_name() for t in asyncio.all_tasks()}
    messages = errors(caplog)
    error = s.source_close_error
    if hang:
        assert isinstance(error, TimeoutError)
        assert str(error) == "closing capture source took longer than 0.3 s"
        assert len(messages) == 1 and messages[0].startswith("closing capture source <")
        assert messages[0].endswith("took longer than 0.3 s")
    else:
        assert isinstance(error, OSError) and error.errno == 9
        assert messages == ["closing capture source failed: [Errno 9] Bad file descriptor"]


async def test_a_source_that_closes_leaves_no_close_error() -> None:
    """Mutation guarded: ``source_close_error`` set when the close went well."""
    source = ListSource(batches_of(1, 2), live=True, forever=True)
    s = Session(sinks=[ListSink()], source=source)
    await s.start()
    await s.stop(timeout=1)
    assert source.closed.is_set() and s.source_close_error is None


async def test_stop_gives_up_on_a_stuck_sink(caplog: pytest.LogCaptureFixture) -> None:
    """Mutation guarded: the sinks given at least 1 s (``max(1.0, ...)``) whatever the
    timeout."""
    sink = GateSink()
    s = Session(sinks=[sink], name="g")
    await s.start()
    s.offer(FRAME)
    assert await asyncio.to_thread(sink.entered.wait, 10)
    started = time.monotonic()
    st = await s.stop(timeout=0.2)
    assert time.monotonic() - started < 0.8
    sink.release.set()
    assert st.sink_errors == 1 and s.abandoned == ["GateSink"] and s.done.is_set()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "session g: gave up waiting for GateSink after 0.2 s: abandoned, counted as a sink error"
    ]


async def test_abandon_ends_a_pending_stop(caplog: pytest.LogCaptureFixture) -> None:
    sink = GateSink()
    s = Session(sinks=[sink], name="a")
    s.abandon()  # not started: nothing to abandon
    assert s.abandoned == [] and not s.done.is_set()
    await s.start()
    s.offer(FRAME)
    assert await asyncio.to_thread(sink.entered.wait, 10)
    stopping = asyncio.ensure_future(s.stop(timeout=None))
    await asyncio.sleep(0.05)
    assert not stopping.done()
    s.abandon()
    await asyncio.wait_for(stopping, 2)
    sink.release.set()
    s.offer(FRAME)  # ignored: the session is closed
    assert s.abandoned == ["GateSink"] and s.stats().sink_errors == 1
    assert s.stats().packets == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "session a: stopped without waiting for GateSink"
    ]
    s.abandon()  # done: nothing more
    assert s.stats().sink_errors == 1


class CloseGateSink(ListSink):
    """A sink whose close blocks until ``release`` is set (a file closed on a hung disk);
    with ``fail``, its writes raise first, so the close that blocks is that of a failed sink."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(fail_after=0 if fail else None)
        self.closing = threading.Event()
        self.release = threading.Event()

    def close(self) -> None:
        self.closing.set()
        self.release.wait(10)
        super().close()


async def test_a_sink_stuck_in_its_close_is_abandoned_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sink that does not return from ``close()`` is a sink still busy: it is named in
    ``abandoned`` and counted as a sink error, as one stuck in a write is.

    Bug fixed: the writer was seen as between sinks while it closed them, so stop gave up on
    "the writer", named nothing and counted nothing."""
    sink = CloseGateSink()
    s = Session(sinks=[sink], name="c")
    await s.start()
    s.offer(FRAME)
    st = await s.stop(timeout=0.2)
    assert sink.closing.is_set() and not sink.closed
    sink.release.set()
    assert (st.sink_errors, st.written, s.abandoned) == (1, 1, ["CloseGateSink"])
    assert errors(caplog) == [
        "session c: gave up waiting for CloseGateSink after 0.2 s: abandoned, counted as a "
        "sink error"
    ]


@pytest.mark.parametrize("timeout", [0.0, 0.2])
async def test_stop_gives_up_on_the_writer_stuck_in_a_failed_sinks_close(
    timeout: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink that failed and then hangs in its close was counted when it failed: stop names
    no sink, says it gave up on the writer (with the timeout it was given, 0 included), and
    counts nothing twice.

    Mutations guarded: the unnamed session's log prefix, "the writer" and the timeout shown
    (``timeout or 1.0``)."""
    sink = CloseGateSink(fail=True)
    s = Session(sinks=[sink])
    await s.start()
    s.offer(FRAME)
    assert await asyncio.to_thread(sink.closing.wait, 10)
    st = await s.stop(timeout=timeout)
    sink.release.set()
    assert (st.sink_errors, st.written, s.abandoned) == (1, 0, [])
    assert s.done.is_set()
    assert errors(caplog) == [
        "sink CloseGateSink failed and is disabled: [Errno 28] No space left on device",
        f"gave up waiting for the writer after {timeout:.1f} s: abandoned, counted as a sink error",
    ]


async def test_offers_during_a_stop_are_ignored() -> None:
    """While ``stop()`` waits for a slow sink, offers are ignored and counted nowhere, with a
    source as without one: every packet counted is written.

    Mutation guarded: the intake opened again once the source was closed (``_closed =
    False``: those offers would be counted and never written)."""
    for source in (None, ListSource([], live=True, forever=True)):
        sink = GateSink()
        s = Session(sinks=[sink], source=source)
        await s.start()
        s.offer(FRAME)
        assert await asyncio.to_thread(sink.entered.wait, 10)
        stopping = asyncio.ensure_future(s.stop(timeout=None))
        await asyncio.sleep(0.05)
        s.offer(FRAME)
        assert s.stats().packets == 1
        sink.release.set()
        final = await stopping
        assert (final.packets, final.written, offered(final)) == (1, 1, 1)


async def test_abandon_of_an_idle_writer(caplog: pytest.LogCaptureFixture) -> None:
    """``abandon()`` while the writer is between batches names no sink ("sinks"), counts no
    error, ends the session (``done``) and from then on offers are ignored.

    Mutations guarded: the unnamed session's log prefix and the word "sinks"."""
    sink = ListSink()
    s = Session(sinks=[sink])
    await s.start()
    s.offer(FRAME)
    while s.stats().written < 1:
        await asyncio.sleep(0.005)
    s.abandon()
    assert s.done.is_set() and s.ended.is_set() and s.abandoned == []
    s.offer(FRAME)
    st = await s.stop()
    assert (st.packets, st.sink_errors, st.written) == (1, 0, 1)
    assert errors(caplog, logging.WARNING) == ["stopped without waiting for sinks"]


async def test_concurrent_stops_wait_with_the_first_callers_timeout() -> None:
    """A second ``stop(timeout=0.05)`` while a ``stop(timeout=None)`` waits for a slow sink
    gives up on nothing: it waits for the same stop.

    Mutation guarded: each call starting a stop of its own (the pending one not looked up)."""
    sink = GateSink()
    s = Session(sinks=[sink])
    await s.start()
    s.offer(FRAME)
    assert await asyncio.to_thread(sink.entered.wait, 10)
    first = asyncio.ensure_future(s.stop(timeout=None))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(s.stop(timeout=0.05))
    await asyncio.sleep(0.3)
    assert not first.done() and not second.done()
    sink.release.set()
    final, again = await asyncio.gather(first, second)
    assert final == again and (final.sink_errors, final.written) == (0, 1)
    assert s.abandoned == [] and sink.closed


async def test_wait_while_another_task_stops_a_session_never_started() -> None:
    """``wait()`` called while another task's ``stop()`` is under way (before it started the
    writer) returns the final counters; it does not try to start the session again.

    Mutation guarded: ``writer is None or stopping is None`` (start() then raises "a stopped
    session cannot be started again")."""
    sink = ListSink()
    s = Session(sinks=[sink])
    s.offer(FRAME)
    stopping = asyncio.ensure_future(s.stop())
    await asyncio.sleep(0)  # stop() began: its task is spawned, not run yet
    final = await s.wait()  # awaited here, not in a task of its own: before that task runs
    assert final == await stopping and final.written == 1 and sink.closed


@pytest.mark.parametrize("limit", [0, 5])
async def test_wait_starts_a_session_and_returns_at_the_end(limit: int) -> None:
    """``wait()`` on a session not started starts it and returns once a capture file was read
    (or its limit reached), stopped: sinks closed, every packet written.

    Mutations guarded: either half of "not started" inverted (the session never starts, the
    wait never ends)."""
    sink = ListSink(delay=0.01)
    s = Session(sinks=[sink], source=ListSource(batches_of(3, 4), live=False), limit=limit)
    final = await asyncio.wait_for(s.wait(), 5)
    want = limit or 12
    assert (final.packets, final.written, final.queued) == (want, want, 0)
    assert [p.ts_ns for p in sink.packets] == list(range(want)) and sink.closed
    assert s.done.is_set() and s.limit_reached.is_set() == bool(limit)
    assert s.source_error is None and s.source_close_error is None


async def test_a_duration_ends_the_intake_by_itself() -> None:
    """``duration=0.2``: the capture ends (``ended``) about 0.2 s after ``start()``, not
    before; what was offered before is written, later offers are ignored and counted nowhere.

    Mutations guarded: no timer (``duration > 1``, the timer not spawned, its function or
    its seconds lost)."""
    sink = ListSink()
    s = Session(sinks=[sink], duration=0.2)
    await s.start()
    started = time.monotonic()
    s.offer(FRAME, ts_ns=1)
    await asyncio.wait_for(s.ended.wait(), 5)
    assert time.monotonic() - started >= 0.15
    s.offer(FRAME, ts_ns=2)
    final = await s.stop()
    assert (final.packets, offered(final)) == (1, 1)
    assert [p.ts_ns for p in sink.packets] == [1] and not s.limit_reached.is_set()


async def test_a_duration_stops_a_held_back_capture_file_at_once() -> None:
    """A capture file held back by a slow sink when the duration passes: nothing more is
    accepted from that moment, not even the batch that was waiting for room; what was
    accepted is written.

    Bug fixed: the batch waiting for room went into the queue after the intake had ended
    (``packets`` grew after ``ended``)."""
    sink = ListSink(delay=0.02)
    source = ListSource(batches_of(200, 4), live=False)
    s = Session(sinks=[sink], source=source, bufsize=4, duration=0.2)
    await s.start()
    await asyncio.wait_for(s.ended.wait(), 5)
    at_end = s.stats().packets
    await asyncio.sleep(0.1)  # the writer makes room meanwhile
    assert s.stats().packets == at_end
    final = await s.stop()
    assert final.packets == final.written == len(sink.packets) == at_end > 0
    assert [p.ts_ns for p in sink.packets] == list(range(at_end))


class NamedSource(ListSource):
    """A live source noting the name of the task that reads it and of the one closing it."""

    def __init__(self) -> None:
        super().__init__(batches_of(1, 1), live=True, forever=True)
        self.reader = self.closer = ""

    async def _iterate(self) -> AsyncIterator[PacketBatch]:
        task = asyncio.current_task()
        self.reader = task.get_name() if task is not None else ""
        async for batch in super()._iterate():
            yield batch

    async def aclose(self) -> None:
        task = asyncio.current_task()
        self.closer = task.get_name() if task is not None else ""
        await super().aclose()


async def test_the_background_tasks_are_named() -> None:
    """A task dump (``asyncio.all_tasks()``, a debugger) says what each task of a session is:
    capsvc-source reads the source, capsvc-duration ends the capture, capsvc-stop stops,
    capsvc-source-close closes the source.

    Mutations guarded: each name lost or changed."""
    sink = GateSink()
    source = NamedSource()
    s = Session(sinks=[sink], source=source, duration=60)
    await s.start()
    assert await asyncio.to_thread(sink.entered.wait, 10)
    running = {t.get_name() for t in asyncio.all_tasks()}
    assert {"capsvc-source", "capsvc-duration"} <= running
    stopping = asyncio.ensure_future(s.stop())
    await asyncio.sleep(0.05)
    assert "capsvc-stop" in {t.get_name() for t in asyncio.all_tasks()}
    sink.release.set()
    await stopping
    assert (source.reader, source.closer) == ("capsvc-source", "capsvc-source-close")
