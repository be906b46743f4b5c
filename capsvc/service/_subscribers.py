"""Live stream subscribers: a sink per client with its own filter and bounded queue.

The rule this module keeps: a subscriber never slows the capture or another subscriber. The
Session's writer thread hands it a batch; the subscriber filters it and appends what fits in its
own queue (the rest is counted as dropped, for this subscriber only) and wakes its reader on the
event loop. The reader (an HTTP handler) takes whole batches and writes them at the client's pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from .._packet import Packet, PacketBatch

__all__ = ["SUBSCRIBER_QUEUE_DEFAULT", "BatchEncoder", "Subscriber", "SubscriberStats", "Taken"]

#: What a reader takes: the first ``n`` packets of a batch, as ``(batch, n)``.
Taken = tuple[PacketBatch, int]

#: Packets a subscriber may have waiting before it drops (about 4 MB of 1 kB frames).
SUBSCRIBER_QUEUE_DEFAULT = 4096


class SubscriberStats(NamedTuple):
    """A subscriber's counters (frozen snapshot).

    Attributes:
        id: the subscriber's number, unique within the service.
        filter: its own filter expression ("" for none).
        packets: packets handed to the client.
        dropped: packets lost because its queue was full (the client read too slowly).
        filtered: packets its filter rejected.
        queued: packets waiting for the client now.
    """

    id: int
    filter: str
    packets: int
    dropped: int
    filtered: int
    queued: int


class Subscriber:
    """A Sink feeding one live stream client.

    Args:
        loop: the event loop the reader runs on.
        ident: the subscriber's number (shown in stats).
        match: the subscriber's own ``match(data) -> bool``, or None for every packet.
        filter_text: the expression ``match`` was built from, for the stats.
        capacity: queue capacity in packets; default 4096.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ident: int,
        *,
        match: Callable[[bytes], bool] | None = None,
        filter_text: str = "",
        capacity: int = SUBSCRIBER_QUEUE_DEFAULT,
    ) -> None:
        self._loop = loop
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
        self._ready = asyncio.Event()

    # -- writer thread ----------------------------------------------------------------------

    def write_batch(self, batch: PacketBatch) -> None:
        """Queue what passes the filter and fits; count the rest. Never blocks on the client."""
        if not batch or self._closed:
            return
        match = self._match
        if match is not None:
            kept = [p for p in batch if match(p[1])]
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
            self._wake()

    def flush(self) -> None:
        """Nothing to flush: the reader takes batches as they come."""

    def close(self) -> None:
        """End the stream once the queued packets are read (the session stopped)."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads any more
            self._loop.call_soon_threadsafe(self._ready.set)

    # -- event loop ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the session ended this stream."""
        return self._closed

    async def get(self, timeout: float | None = None) -> PacketBatch | None:
        """Take every queued packet as one batch.

        Args:
            timeout: seconds to wait for packets; None waits until some come or the stream ends.

        Returns:
            The packets (an empty list when the timeout passed first), or None once the stream
            has ended and everything queued was taken.
        """
        batches = await self.get_batches(timeout)
        if batches is None:
            return None
        out: PacketBatch = []
        for batch, taken in batches:
            out.extend(batch[:taken])
        return out

    async def get_batches(self, timeout: float | None = None) -> list[Taken] | None:
        """Take every queued batch, as the Session's writer handed them over.

        Each comes as ``(batch, n)``: the first ``n`` packets of ``batch``. Unless the subscriber
        filters, ``batch`` is the writer's own list object, so the readers of one session can
        encode it once for all of them (see ``BatchEncoder``).

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
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return []

    def stats(self) -> SubscriberStats:
        """Return a snapshot of the counters."""
        return SubscriberStats(
            self.id, self.filter_text, self._packets, self._dropped, self._filtered, self._queued
        )


class BatchEncoder:
    """Encodes batches for a session's streams, each batch once however many readers take it.

    A reader that took only the first ``n`` packets of a batch (its queue was full) gets the
    first ``n`` records of the shared encoding when ``record_size`` tells their lengths, else
    its own encoding of those packets. Encoding runs on the event loop in slices of
    ``slice_size`` packets with a pause between them, so a large batch never holds up the loop
    (and the API) for long.

    Args:
        encode: turns a batch into bytes (pcap records, text lines).
        record_size: the encoded length of one packet, or None when it is not known up front.
        keep: how many recent batches' encodings are remembered; default 8.
        slice_size: packets encoded between pauses; default 1024.
        max_bytes: at most this many encoded bytes are remembered (besides the newest batch);
            default 8 MiB.
    """

    def __init__(
        self,
        encode: Callable[[PacketBatch], bytes],
        record_size: Callable[[Packet], int] | None = None,
        *,
        keep: int = 8,
        slice_size: int = 1024,
        max_bytes: int = 8 << 20,
    ) -> None:
        self._encode = encode
        self._record_size = record_size
        self._keep = keep
        self._slice = max(1, slice_size)
        self._recent: dict[int, tuple[PacketBatch, bytes | asyncio.Future[bytes]]] = {}
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()  # put() comes from the Session's writer thread

    def _remember(self, batch: PacketBatch, value: bytes | asyncio.Future[bytes]) -> None:
        with self._lock:
            recent = self._recent
            while recent and (len(recent) >= self._keep or self._bytes > self._max_bytes):
                _old, gone = recent.pop(next(iter(recent)))
                if isinstance(gone, bytes):
                    self._bytes -= len(gone)
            recent[id(batch)] = (batch, value)
            if isinstance(value, bytes):
                self._bytes += len(value)

    def clear(self) -> None:
        """Forget every remembered encoding (no reader is left)."""
        with self._lock:
            self._recent.clear()
            self._bytes = 0

    def put(self, batch: PacketBatch, data: bytes) -> None:
        """Remember a batch already encoded elsewhere (the session's pcap file); any thread."""
        self._remember(batch, data)

    async def __call__(self, items: list[Taken]) -> bytes:
        """Encode ``(batch, n)`` pairs in order and join them."""
        parts = []
        size = self._record_size
        for batch, taken in items:
            if taken < len(batch) and size is None:
                parts.append(await self._slices(batch[:taken]))
                continue
            data = await self._whole(batch)
            if taken < len(batch):
                assert size is not None
                data = data[: sum(map(size, itertools.islice(batch, taken)))]
            parts.append(data)
        return b"".join(parts)

    async def _whole(self, batch: PacketBatch) -> bytes:
        with self._lock:
            hit = self._recent.get(id(batch))
        if hit is not None and hit[0] is batch:
            known = hit[1]
            return known if isinstance(known, bytes) else await asyncio.shield(known)
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._remember(batch, done)
        try:
            data = await self._slices(batch)
        except BaseException as exc:
            with self._lock:
                self._recent.pop(id(batch), None)
            done.set_exception(exc)
            done.exception()  # retrieved: only readers waiting on it see it
            raise
        done.set_result(data)
        return data

    async def _slices(self, batch: PacketBatch) -> bytes:
        step = self._slice
        if len(batch) <= step:
            return self._encode(batch)
        parts = []
        for i in range(0, len(batch), step):
            if i:
                await asyncio.sleep(0)
            parts.append(self._encode(batch[i : i + step]))
        return b"".join(parts)
