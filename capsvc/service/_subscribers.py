"""Live streams: the subscribers (``capsvc._subscriber``, shared with the library's iterators)
and the encoder that turns their batches into pcap records once for every reader.

The rule this module keeps: a subscriber never slows the capture or another subscriber (see
``capsvc._subscriber``); encoding runs on the event loop in slices, so a large batch never holds
up the API for long.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable

from .._packet import Packet, PacketBatch
from .._subscriber import SUBSCRIBER_QUEUE_DEFAULT, Subscriber, SubscriberStats, Taken

__all__ = ["SUBSCRIBER_QUEUE_DEFAULT", "BatchEncoder", "Subscriber", "SubscriberStats", "Taken"]


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
