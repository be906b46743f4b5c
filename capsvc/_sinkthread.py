"""The writer thread of a Session: drains the queue in batches and fans them out to the sinks.

Rules this module keeps:
- The queue (``_queue.PacketQueue``) is shared with the event loop's thread: the loop only
  puts, this thread only takes, neither takes a lock, and ``offer()`` stays O(1). Everything
  queued at a wake-up leaves as one batch.
- One sink failing disables that sink only; it is counted, logged once (naming the session and
  what the sink writes to) and closed at once, so a failed file gives its descriptor back.
- A sink that does not return (a stalled pipe, a hung disk) can be abandoned by the loop
  (``abandon``): it is counted as failed, the loop stops waiting, and whatever the thread does
  once the sink returns is never seen again.
- Whatever the thread must tell the loop (room in the queue, every sink failed, finished) goes
  through ``Loop.call_soon_threadsafe`` (asyncio's, or the anyio backend's): the thread never
  waits for the loop, and a loop that is already gone is not an error.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from collections.abc import Callable

from ._aio import Loop
from ._packet import PacketBatch
from ._queue import PacketQueue
from ._records import RecordBlock
from .sinks._base import Sink

__all__ = ["IDLE_FLUSH_INTERVAL", "SinkThread"]

log = logging.getLogger("capsvc")

#: How often an idle writer flushes its sinks (seconds), so files and streams never go stale.
IDLE_FLUSH_INTERVAL = 0.25
#: How soon a busy writer (one that delivered a batch) looks at the queue again by itself, so a
#: burst does not wake it once per batch (seconds). Each wake-up of a thread costs tens to
#: hundreds of microseconds of CPU (docs/architecture.md, "Live capture"); this bounds them to
#: 1 / BUSY_POLL_INTERVAL a second, and adds at most as much to a packet's way to the sinks.
BUSY_POLL_INTERVAL = 0.02


class _SinkSlot:
    """A sink and whether it still works."""

    __slots__ = ("closed", "failed", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.failed = False
        self.closed = False


class SinkThread:
    """Owns the sinks and the thread that writes to them.

    Args:
        queue: the Session's queue (the loop appends, the writer pops).
        sinks: the sinks, in the order they are written.
        loop: the Session's event loop, for the notifications below.
        on_space: called on the loop after the writer took packets, when ``want_space`` is set.
        on_all_failed: called on the loop once every sink has failed.
        on_done: called on the loop once the writer has drained, closed the sinks and ended.
        name: the session's name, for log lines ("" leaves it out).
    """

    def __init__(
        self,
        queue: PacketQueue,
        sinks: list[Sink],
        loop: Loop,
        *,
        on_space: Callable[[], None],
        on_all_failed: Callable[[], None],
        on_done: Callable[[], None],
        name: str = "",
    ) -> None:
        self.queue = queue
        self.name = name
        self.slots = [_SinkSlot(s) for s in sinks]
        self.written = 0
        self.sink_errors = 0
        #: The error of each sink that failed, in order.
        self.failures: list[BaseException] = []
        #: Set by the loop when it waits for room (a source that is not live); cleared here.
        self.want_space = False
        #: True while the thread looks at the queue by itself (within BUSY_POLL_INTERVAL):
        #: ``wake`` has nothing to do then. Written by the thread only. (Its first value is
        #: never read as it is: the thread's first idle look sets it False, then looks again.)
        self.polling = False  # pragma: no mutate
        self._loop = loop
        self._on_space = on_space
        self._on_all_failed = on_all_failed
        self._on_done = on_done
        self._wake = threading.Event()
        self._closing = False
        #: Set by ``abandon``: the loop no longer waits for this thread.
        self.abandoned = False
        self._current: _SinkSlot | None = None  # the slot being called now
        self._thread = threading.Thread(target=self._run, name="capsvc-writer", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Tell the thread the queue has packets (called when it goes from empty to not);
        nothing to do while it is ``polling``."""
        if not self.polling:
            self._wake.set()

    def wake_now(self) -> None:
        """Have the thread look at the queue now, polling or not (the queue is filling up)."""
        self._wake.set()

    def close(self) -> None:
        """Drain what is queued, close the sinks and end; ``on_done`` follows. Call it after the
        last append: nothing appended later is written."""
        self._closing = True
        self._wake.set()

    def abandon(self) -> list[str]:
        """Give up on a thread stuck in a sink (called on the loop when ``stop`` timed out).

        The sink being called now (written, flushed or closed) is counted as failed; nothing
        the thread does afterwards is delivered or reported (``on_done`` is not called again).

        Returns:
            What the stuck sink writes to (empty when no sink was being called).
        """
        self.abandoned = True
        slot = self._current
        if slot is None or slot.failed:
            return []
        slot.failed = True
        self.sink_errors += 1
        return [_describe(slot.sink)]

    def add(self, sink: Sink) -> None:
        """Write to ``sink`` too, from the next batch on."""
        self.slots = [*self.slots, _SinkSlot(sink)]

    def remove(self, sink: Sink) -> None:
        """Stop writing to ``sink`` (it is not closed); unknown sinks are ignored."""
        self.slots = [slot for slot in self.slots if slot.sink is not sink]

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        queue, wake = self.queue, self._wake
        try:
            while True:
                wake.clear()  # before looking: an append after this look sets it again
                if queue:
                    batch = queue.take()
                    if self.want_space:
                        self.want_space = False
                        self._notify(self._on_space)
                    self._deliver(batch)
                    # Busy: more is likely on its way; look again soon without being woken
                    # (at once when more came meanwhile).
                    self.polling = True
                    if not queue and not self._closing:
                        wake.wait(BUSY_POLL_INTERVAL)
                elif self._closing or self.abandoned:
                    if not queue or self.abandoned:  # the last appends came before closing
                        break  # pragma: no mutate (as return: the finally runs either way)
                elif self.polling:
                    # Idle again: from now on a put wakes the thread. Look once more first: a
                    # put made while ``polling`` was still true did not.
                    self.polling = False
                elif not wake.wait(IDLE_FLUSH_INTERVAL):
                    self._deliver([])
        finally:
            self._close_sinks()
            if not self.abandoned:
                self._notify(self._on_done)

    def _deliver(self, batch: PacketBatch | RecordBlock) -> None:
        """Hand one batch to every healthy sink, then flush them. A RecordBlock goes as it is
        to sinks with ``write_records``; the others get its packets (built once). ``written``
        counts the packets at least one sink took (a sink may say it took only the first few)."""
        delivered = 0
        for slot in self.slots:
            if slot.failed or self.abandoned:
                continue
            self._current = slot
            try:
                taken: int | None = None
                if not batch:
                    pass
                elif isinstance(batch, RecordBlock):
                    write_records = getattr(slot.sink, "write_records", None)
                    if write_records is not None:
                        taken = write_records(batch)
                    else:
                        taken = slot.sink.write_batch(batch.packets())
                else:
                    taken = slot.sink.write_batch(batch)
                slot.sink.flush()
                if not slot.failed:  # else abandoned while it was being called
                    delivered = max(delivered, len(batch) if taken is None else taken)
            except BaseException as exc:  # even SystemExit: one sink's failure is its own
                self._failed(slot, exc)
            finally:
                self._current = None
        if not self.abandoned:
            self.written += delivered

    def _close_sinks(self) -> None:
        """Close every sink not closed yet (a failed one was closed when it failed), counting a
        failure to close as the sink's error unless it had failed already."""
        for slot in self.slots:
            if slot.closed:
                continue
            slot.closed = True
            self._current = slot  # a close that hangs is abandoned as a write that hangs is
            try:
                slot.sink.close()
            except BaseException as exc:
                if not self.abandoned:
                    self._failed(slot, exc)
            finally:
                self._current = None

    def _failed(self, slot: _SinkSlot, exc: BaseException) -> None:
        if slot.failed:  # abandoned meanwhile: counted then
            return
        slot.failed = True
        self.sink_errors += 1
        self.failures.append(exc)
        where = f"session {self.name}: " if self.name else ""
        if isinstance(exc, BrokenPipeError) or getattr(exc, "errno", None) == errno.EPIPE:
            # The reader went away (``capsvc read ... | head``): the end of that output, not
            # an error worth a line of its own.
            log.info("%ssink %s: its reader went away", where, _describe(slot.sink))
        else:
            log.error(
                "%ssink %s failed and is disabled: %s", where, _describe(slot.sink), _text(exc)
            )
        if not slot.closed:
            # Give its file back now: a failed sink is never written again.
            slot.closed = True
            with contextlib.suppress(BaseException):
                slot.sink.close()
        if all(s.failed for s in self.slots):
            self._notify(self._on_all_failed)

    def _notify(self, callback: Callable[[], None]) -> None:
        self._loop.call_soon_threadsafe(callback)  # nothing when the loop is gone


def _text(exc: BaseException) -> str:
    """An exception as a log line shows it: its message, or its type when it has none
    (``MemoryError()``)."""
    return str(exc) or type(exc).__name__


def _describe(sink: Sink) -> str:
    """A sink's class name, with what it writes to when it says (``PcapWriter('out/a.pcap')``)."""
    return type(sink).__name__ if type(sink).__repr__ is object.__repr__ else repr(sink)
