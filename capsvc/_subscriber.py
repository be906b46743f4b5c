"""Subscribers: a sink per reader with its own filter and bounded queue, and the async
iterators a Session hands out over one (``Session.packets()``, ``Session.batches()``).

The one mechanism behind both the library's iterators and the service's live streams. The rule
it keeps: a subscriber never slows the capture or another subscriber. The Session's writer
thread hands it a batch; the subscriber filters it and appends what fits in its own queue (the
rest is counted as dropped, for this subscriber only) and wakes its reader on the event loop.
The reader (an iterator in the application's task, an HTTP handler) takes whole batches at its
own pace. Nothing here runs on the capture's path: filtering and counting happen on the writer
thread, per batch; the reader's work happens in the reader's task.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple, Self

from ._aio import Flag, Loop
from ._packet import MatchFunction, Packet, PacketBatch

__all__ = [
    "ITERATOR_QUEUE_DEFAULT",
    "SUBSCRIBER_QUEUE_DEFAULT",
    "BatchStream",
    "PacketStream",
    "Subscriber",
    "SubscriberStats",
    "Taken",
]

#: What a reader takes: the first ``n`` packets of a batch, as ``(batch, n)``.
Taken = tuple[PacketBatch, int]

#: Packets a service subscriber may have waiting before it drops (about 4 MB of 1 kB frames).
SUBSCRIBER_QUEUE_DEFAULT = 4096
#: Packets ``Session.packets()`` and ``Session.batches()`` hold for a slow reader by default.
ITERATOR_QUEUE_DEFAULT = 1024


class SubscriberStats(NamedTuple):
    """A subscriber's counters (frozen snapshot).

    For every subscriber, what the session wrote while it was attached = packets + dropped +
    filtered + queued.

    Attributes:
        id: the subscriber's number, unique within its service (or session).
        filter: its own filter expression ("" for none).
        packets: packets its reader took.
        dropped: packets lost because its queue was full (the reader read too slowly).
        filtered: packets its filter rejected.
        queued: packets waiting for the reader now.
    """

    id: int
    filter: str
    packets: int
    dropped: int
    filtered: int
    queued: int


class Subscriber:
    """A Sink feeding one reader through a bounded queue of its own.

    Args:
        ident: the subscriber's number (shown in stats).
        match: its own ``match(data, wire_len) -> bool``, or None for every packet.
        filter_text: the expression ``match`` was built from, for the stats.
        capacity: queue capacity in packets (at least 1); default 4096.
        loop: the loop the reader runs on; default the running one (``Loop.current()``).

    Raises:
        RuntimeError: ``loop`` is None and no event loop runs.
    """

    def __init__(
        self,
        ident: int = 0,
        *,
        match: MatchFunction | None = None,
        filter_text: str = "",
        capacity: int = SUBSCRIBER_QUEUE_DEFAULT,
        loop: Loop | None = None,
    ) -> None:
        self._loop = loop if loop is not None else Loop.current()
        self.id = ident
        self.filter_text = filter_text
        self._match = match
        self.capacity = max(1, capacity)
        self._lock = threading.Lock()
        self._batches: deque[Taken] = deque()
        self._queued = 0
        self._packets = 0
        self._dropped = 0
        self._filtered = 0
        self._closed = False
        self._ready = Flag()

    # -- writer thread ----------------------------------------------------------------------

    def write_batch(self, batch: PacketBatch) -> None:
        """Queue what passes the filter and fits; count the rest. Never blocks on the reader."""
        if not batch or self._closed:
            return
        match = self._match
        if match is not None:
            kept = [p for p in batch if match(p[1], p[2])]
            self._filtered += len(batch) - len(kept)
            batch = kept
            if not batch:
                return
        with self._lock:
            room = self.capacity - self._queued
            if room <= 0:
                self._dropped += len(batch)
                return
            taken = len(batch)
            if taken > room:  # keep the oldest: a prefix of the writer's own list, not a copy
                self._dropped += taken - room
                taken = room
            wake = not self._batches
            self._batches.append((batch, taken))
            self._queued += taken
        if wake:
            self._loop.call_soon_threadsafe(self._ready.set)

    def flush(self) -> None:
        """Nothing to flush: the reader takes batches as they come."""

    def close(self) -> None:
        """End the stream once the queued packets are read (the session stopped); any thread."""
        self._closed = True
        self._loop.call_soon_threadsafe(self._ready.set)

    def discard(self) -> None:
        """End the stream now: what is queued is forgotten (counted as dropped)."""
        with self._lock:
            self._closed = True
            self._dropped += self._queued
            self._queued = 0
            self._batches.clear()
        self._ready.set()

    # -- the reader's loop --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the stream was ended (the session stopped, or ``close``)."""
        return self._closed

    async def get(self, timeout: float | None = None) -> PacketBatch | None:
        """Take every queued packet as one batch (a list of its own).

        Args:
            timeout: seconds to wait for packets; None waits until some come or the stream ends.

        Returns:
            The packets (an empty list when the timeout passed first), or None once the stream
            has ended and everything queued was taken.
        """
        batches = await self.get_batches(timeout)
        if batches is None:
            return None
        if len(batches) == 1:
            batch, taken = batches[0]
            return batch[:taken]
        out: PacketBatch = []
        for batch, taken in batches:
            out.extend(batch[:taken])
        return out

    async def get_batches(self, timeout: float | None = None) -> list[Taken] | None:
        """Take every queued batch, as the Session's writer handed them over.

        Each comes as ``(batch, n)``: the first ``n`` packets of ``batch``. Unless the subscriber
        filters, ``batch`` is the writer's own list object, shared with the session's other
        subscribers: read it, never change it (the service encodes it once for every reader).

        Args:
            timeout: seconds to wait for packets; None waits until some come or the stream ends.

        Returns:
            The ``(batch, n)`` pairs (an empty list when the timeout passed first), or None once
            the stream has ended and everything queued was taken.
        """
        while True:
            with self._lock:
                if self._batches:
                    batches = list(self._batches)
                    self._batches.clear()
                    self._packets += self._queued
                    self._queued = 0
                    self._ready.clear()
                    return batches
                if self._closed:
                    return None
                self._ready.clear()
            if not await self._loop.wait_for(self._ready, timeout):
                return []

    def stats(self) -> SubscriberStats:
        """Return a snapshot of the counters."""
        return SubscriberStats(
            self.id, self.filter_text, self._packets, self._dropped, self._filtered, self._queued
        )


class _Stream:
    """What ``PacketStream`` and ``BatchStream`` share: a subscriber and how it is detached."""

    def __init__(self, subscriber: Subscriber, detach: Callable[[Subscriber], None]) -> None:
        self._sub = subscriber
        self._detach: Callable[[Subscriber], None] | None = detach

    def stats(self) -> SubscriberStats:
        """This iterator's counters: packets taken, dropped (its queue was full: the reader
        was slow), filtered (its own filter), queued now."""
        return self._sub.stats()

    @property
    def closed(self) -> bool:
        """True once the stream has ended or was closed (what is still queued is read first)."""
        return self._sub.closed

    def _release(self) -> None:
        detach, self._detach = self._detach, None
        if detach is not None:
            detach(self._sub)

    async def _next_batch(self) -> PacketBatch:
        while True:
            batch = await self._sub.get()
            if batch is None:
                self._release()
                raise StopAsyncIteration
            if batch:
                return batch

    async def aclose(self) -> None:
        """Detach from the session now; iteration ends (what was queued is dropped, counted).
        Idempotent."""
        self._sub.discard()
        self._release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class PacketStream(_Stream):
    """An async iterator of a session's packets, one at a time (``Session.packets()``).

    Bounded: while the reader is behind, packets that do not fit in its queue are dropped and
    counted in ``stats().dropped``, for this iterator only; the capture never waits for it.
    The iteration ends once the session has stopped and everything queued was read. Leave it
    early with ``aclose()`` (or by leaving ``async with``); an iterator merely abandoned stays
    attached, its queue full and counting drops, until the session stops.
    """

    def __init__(self, subscriber: Subscriber, detach: Callable[[Subscriber], None]) -> None:
        super().__init__(subscriber, detach)
        self._pending: PacketBatch = []
        self._next = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Packet:
        pending, i = self._pending, self._next
        if i >= len(pending):
            pending = self._pending = await self._next_batch()
            i = 0
        self._next = i + 1
        return pending[i]


class BatchStream(_Stream):
    """An async iterator of a session's packets as lists (``Session.batches()``): each item is
    everything that arrived since the reader last took some, in order, as a list of its own.

    Bounded, counted and ended as ``PacketStream`` is.
    """

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> PacketBatch:
        return await self._next_batch()
