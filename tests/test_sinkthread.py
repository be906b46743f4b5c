"""SinkThread on its own: delivery and counting, sinks added and removed, failures (counted once,
logged once with the session's name, closed at once), a reader gone away, the loop told about
room, every sink failed and the end, and a sink stuck for good abandoned."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import threading
import time

import pytest

from capsvc import Direction, Packet, PacketBatch
from capsvc._aio import Loop
from capsvc._queue import PacketQueue
from capsvc._sinkthread import BUSY_POLL_INTERVAL, SinkThread


def pk(i: int) -> Packet:
    return Packet(i, b"x", 1, Direction.INBOUND, 0)


class Sink:
    """Keeps what it is given; ``fail`` (an exception) is raised by write_batch from then on,
    ``fail_close`` by close; ``gate`` (an Event) holds write_batch until it is set."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.got: list[int] = []
        self.batches = 0
        self.flushes = 0
        self.closes = 0
        self.fail: BaseException | None = None
        self.fail_close: BaseException | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def write_batch(self, batch: PacketBatch) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.batches += 1
        self.got.extend(p.ts_ns for p in batch)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closes += 1
        if self.fail_close is not None:
            raise self.fail_close

    def __repr__(self) -> str:
        return f"Sink({self.name!r})"


class Plain:
    """A sink without a repr of its own: logs name its class."""

    def write_batch(self, batch: PacketBatch) -> None:
        raise MemoryError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Harness:
    """A SinkThread on the running loop, recording its notifications."""

    def __init__(self, sinks: list[object], name: str = "") -> None:
        self.queue = PacketQueue()
        self.events: list[str] = []
        self.done = asyncio.Event()
        self.all_failed = asyncio.Event()
        named = {"name": name} if name else {}  # else the default: no name
        self.thread = SinkThread(
            self.queue,
            sinks,  # type: ignore[arg-type]
            Loop.current(),
            on_space=lambda: self.events.append("space"),
            on_all_failed=self.on_all_failed,
            on_done=self.on_done,
            **named,
        )

    def on_all_failed(self) -> None:
        self.events.append("all failed")
        self.all_failed.set()

    def on_done(self) -> None:
        self.events.append("done")
        self.done.set()

    def put(self, *numbers: int) -> None:
        self.queue.put([pk(i) for i in numbers])
        self.thread.wake()

    async def settle(self) -> None:
        for _ in range(500):
            if not self.queue:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)

    async def finish(self) -> None:
        self.thread.close()
        await asyncio.wait_for(self.done.wait(), 5)


async def test_delivery_counts_and_the_thread() -> None:
    a, b = Sink("a"), Sink("b")
    h = Harness([a, b])
    h.thread.start()
    names = {t.name: t.daemon for t in threading.enumerate()}
    assert names.get("capsvc-writer") is True  # a daemon: a stuck sink never holds the exit
    h.put(1, 2)
    h.put(3)
    await h.settle()
    await h.finish()
    assert a.got == b.got == [1, 2, 3]
    assert h.thread.written == 3 and h.thread.sink_errors == 0 and h.thread.failures == []
    assert a.closes == b.closes == 1 and a.flushes >= 1
    assert h.events == ["done"]


async def test_sinks_added_and_removed_between_batches() -> None:
    a, b = Sink("a"), Sink("b")
    h = Harness([a])
    h.thread.start()
    h.put(1)
    await h.settle()
    h.thread.add(b)
    h.put(2)
    await h.settle()
    h.thread.remove(a)
    h.thread.remove(Sink("unknown"))  # ignored
    h.put(3)
    await h.settle()
    await h.finish()
    assert (a.got, b.got) == ([1, 2], [2, 3])
    assert [slot.sink for slot in h.thread.slots] == [b]
    assert a.closes == 0 and b.closes == 1  # a removed sink is not closed
    assert h.thread.written == 3


async def test_room_is_signalled_once_when_asked_for() -> None:
    h = Harness([Sink()])
    h.thread.start()
    h.put(1)
    await h.settle()
    assert h.events == []
    h.thread.want_space = True
    h.put(2)
    await h.settle()
    h.put(3)
    await h.settle()
    await h.finish()
    assert h.events == ["space", "done"] and h.thread.want_space is False


async def test_a_failing_sink_is_counted_logged_closed_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad, good = Sink("bad"), Sink("good")
    bad.fail = OSError(28, "No space left on device")
    h = Harness([bad, good], name="s1")
    with caplog.at_level(logging.INFO, logger="capsvc"):
        h.thread.start()
        h.put(1)
        await h.settle()
        assert bad.closes == 1  # closed when it failed, not at the end
        h.put(2)
        await h.settle()
        await h.finish()
    assert good.got == [1, 2] and bad.got == []
    assert h.thread.sink_errors == 1 and h.thread.failures == [bad.fail]
    assert h.thread.written == 2  # the good sink took them
    assert bad.closes == 1 and good.closes == 1  # closed when it failed, not again
    assert [r.getMessage() for r in caplog.records] == [
        "session s1: sink Sink('bad') failed and is disabled: [Errno 28] No space left on device"
    ]
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert h.events == ["done"]


async def test_every_sink_failed_is_told_and_nothing_counts_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness([Plain(), Plain()])
    with caplog.at_level(logging.INFO, logger="capsvc"):
        h.thread.start()
        h.put(1)
        await asyncio.wait_for(h.all_failed.wait(), 5)
        await h.finish()
    assert h.thread.written == 0 and h.thread.sink_errors == 2
    assert h.events == ["all failed", "done"]
    assert [r.getMessage() for r in caplog.records] == [
        "sink Plain failed and is disabled: MemoryError"
    ] * 2  # no session name: no prefix; no message: the type's name


@pytest.mark.parametrize(
    "error",
    [
        BrokenPipeError(errno.EPIPE, "Broken pipe"),
        OSError(errno.EPIPE, "Broken pipe"),
        BrokenPipeError(),  # no errno: its type says it
        ssl.SSLError(errno.EPIPE, "Broken pipe"),  # no BrokenPipeError: its errno says it
    ],
    ids=["BrokenPipeError", "OSError", "bare", "SSLError"],
)
async def test_a_reader_gone_away_is_one_info_line(
    error: OSError, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink("stdout")
    sink.fail = error
    h = Harness([sink], name="r")
    with caplog.at_level(logging.INFO, logger="capsvc"):
        h.thread.start()
        h.put(1)
        await asyncio.wait_for(h.all_failed.wait(), 5)
        await h.finish()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "session r: sink Sink('stdout'): its reader went away")
    ]
    assert h.thread.sink_errors == 1


async def test_a_steady_trickle_is_taken_in_few_batches() -> None:
    """A packet every millisecond: once busy, the thread looks at the queue by itself every
    ``BUSY_POLL_INTERVAL`` instead of being woken for each packet, so the sink gets at most
    one batch per interval, with every packet in order.

    Mutations guarded: ``polling`` not set after a batch (None, False), the busy wait skipped
    (``queue and not closing``, ``not queue and closing``), ``polling`` left True when idle
    (the thread then spins)."""
    sink = Sink()
    h = Harness([sink])
    h.thread.start()
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 0.3:
        h.put(n)
        n += 1
        time.sleep(0.001)  # the loop is blocked meanwhile: the thread needs nothing of it
    elapsed = time.monotonic() - started
    await h.settle()
    await h.finish()
    assert sink.got == list(range(n))
    assert sink.batches <= elapsed / BUSY_POLL_INTERVAL + 3 < n


async def test_an_idle_thread_costs_no_cpu() -> None:
    """Mutation guarded: ``polling`` set True when idle (the thread then spins)."""
    h = Harness([Sink()])
    h.thread.start()
    h.put(1)
    await h.settle()
    before = time.process_time()
    await asyncio.sleep(0.5)
    spent = time.process_time() - before
    await h.finish()
    assert spent < 0.15


class Partial:
    """A sink that says it took only the first ``keep`` packets of each batch."""

    def __init__(self, keep: int) -> None:
        self.keep = keep

    def write_batch(self, batch: PacketBatch) -> int:
        return self.keep

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_written_counts_what_the_sink_that_took_most_took() -> None:
    """Mutation guarded: a sink's count of what it took ignored (the batch's length taken)."""
    h = Harness([Partial(1), Partial(2)])
    h.thread.start()
    h.put(1, 2, 3)
    await h.settle()
    await h.finish()
    assert h.thread.written == 2


async def test_abandon_between_batches_names_nothing() -> None:
    """After a batch, or once the thread closed the sinks and ended, it is in no sink:
    ``abandon()`` names none and counts nothing.

    Mutations guarded: the sink being called not reset after a write or after a close
    (``""``: abandon then fails)."""
    sink = Sink()
    h = Harness([sink])
    h.thread.start()
    h.put(1)
    await h.settle()
    assert h.thread.abandon() == [] and h.thread.sink_errors == 0
    assert sink.got == [1] and h.thread.written == 1
    ended = Harness([Sink(), Sink()])
    ended.thread.start()
    await ended.finish()
    assert ended.thread.abandon() == [] and ended.thread.sink_errors == 0


async def test_a_sink_stuck_in_its_close_is_abandoned() -> None:
    """A sink that does not return from ``close()`` is abandoned as one stuck in a write is:
    named, counted once; its close failing later counts nothing more."""
    stuck = Sink("stuck")
    stuck.gate = threading.Event()
    stuck.fail_close = OSError(5, "Input/output error")
    original_close = stuck.close

    def close() -> None:
        stuck.entered.set()
        assert stuck.gate is not None and stuck.gate.wait(10)
        original_close()

    stuck.close = close  # type: ignore[method-assign]
    h = Harness([stuck])
    h.thread.start()
    h.thread.close()
    assert await asyncio.to_thread(stuck.entered.wait, 5)
    assert h.thread.abandon() == ["Sink('stuck')"] and h.thread.sink_errors == 1
    stuck.gate.set()
    await asyncio.sleep(0.1)
    assert stuck.closes == 1 and h.thread.sink_errors == 1 and h.thread.failures == []
    assert not h.done.is_set()


async def test_a_failing_close_is_the_sinks_error_once(caplog: pytest.LogCaptureFixture) -> None:
    closing, both = Sink("closing"), Sink("both")
    closing.fail_close = OSError(5, "Input/output error")
    both.fail = ValueError("bad write")
    both.fail_close = OSError(5, "and a bad close")
    h = Harness([closing, both])
    with caplog.at_level(logging.INFO, logger="capsvc"):
        h.thread.start()
        h.put(1)
        await h.settle()
        await h.finish()
    assert closing.got == [1] and closing.closes == 1 and both.closes == 1
    assert h.thread.sink_errors == 2
    assert h.thread.failures == [both.fail, closing.fail_close]
    assert [r.getMessage() for r in caplog.records] == [
        "sink Sink('both') failed and is disabled: bad write",
        "sink Sink('closing') failed and is disabled: [Errno 5] Input/output error",
    ]


async def test_a_stuck_sink_is_abandoned() -> None:
    """The loop gives up on a sink that does not return: it counts as failed once, ``done`` is
    not reported, and what the thread does once the sink returns is never counted."""
    failing, stuck, other = Sink("failing"), Sink("stuck"), Sink("other")
    failing.fail = OSError(5, "Input/output error")
    stuck.gate = threading.Event()
    other.fail_close = OSError(5, "close after the abandon: not counted")
    h = Harness([failing, stuck, other])
    assert h.thread.abandon() == []  # not started: no sink being called
    assert h.thread.sink_errors == 0 and h.thread.abandoned is True
    h.thread.abandoned = False
    h.thread.start()
    h.put(1)
    assert await asyncio.to_thread(stuck.entered.wait, 5)
    assert h.thread.abandon() == ["Sink('stuck')"]
    assert h.thread.abandon() == []  # once
    assert h.thread.sink_errors == 2 and h.thread.abandoned  # the failing one, the stuck one
    stuck.gate.set()
    await asyncio.sleep(0.3)
    assert other.got == [] and h.thread.written == 0
    assert "done" not in h.events and not h.done.is_set()
    assert stuck.closes == 1 and other.closes == 1  # the thread still gives its files back
    assert h.thread.sink_errors == 2


def test_a_closed_loop_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread tells a loop that is already gone nothing, and does not die of it."""
    crashes: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    loop = asyncio.new_event_loop()
    loop.close()
    sink = Sink()
    thread = SinkThread(
        PacketQueue(), [sink], Loop(loop, None), on_space=print, on_all_failed=print, on_done=print
    )
    thread.start()
    thread.close()
    for _ in range(200):
        if sink.closes:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.05)
    assert sink.closes == 1 and crashes == []
