"""The flight recorder's memory: packets as records in a few large buffers, oldest out first.

Pure module (no IO, no threads: its owner locks around it). The rules it keeps:

- Memory is bounded by bytes. Each packet is stored as one record, a 24-byte header
  (``RECORD``) followed by its captured bytes, and charged exactly that; after every append the
  charge of the records held is at most ``max_bytes``. Records live in buffers of
  ``chunk_size`` bytes (1 MiB unless ``max_bytes`` is small); a record never straddles two, so
  a buffer's unused tail is less than one record, and the buffers held add at most two more
  (the one being filled, the one being emptied). No Python object is kept per packet.
- Memory is bounded by time: a record more than ``seconds`` older than the newest packet (by
  packet time) is evicted; ``hold_from_ns``, when set, holds records back to that time instead.
- Oldest out first, and every eviction is counted: by age or by size, exactly.
- Readers see what was held when they looked without stopping appends: ``view()`` records
  each buffer's filled span; appends only write past it, evictions only move a buffer's start,
  and while a view is open no emptied buffer is reused (it is dropped instead, and freed when
  the view is released).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .._accel import speedups
from .._errors import OptionError
from .._packet import Direction, Packet, PacketBatch

__all__ = ["CHUNK_SIZE", "RECORD", "RecordRing", "RingView"]

#: A record's header: ts_ns, captured length, wire length, direction, 3 pad bytes, ifindex.
RECORD = struct.Struct("<qIIBxxxI")
#: The head of a record's header: what eviction reads (time and captured length).
_HEAD = struct.Struct("<qI")
#: The size of the buffers records are stored in (smaller when ``max_bytes`` is small).
CHUNK_SIZE = 1 << 20
_MIN_CHUNK = 4096
_TOP32 = 0xFFFFFFFF
_DIRECTIONS = tuple(Direction)
_C = speedups()
_RingAppend = Callable[..., tuple[int, int, int, int, int, int, int, int, int | None]]
_ring_append: _RingAppend | None = None if _C is None else _C.ring_append


class _Chunk:
    """One buffer: records from ``start`` to ``end``."""

    __slots__ = ("buf", "end", "start")

    def __init__(self, size: int) -> None:
        self.buf = bytearray(size)
        self.start = 0
        self.end = 0


class RingView(NamedTuple):
    """What a ring held when ``view()`` was called.

    Attributes:
        spans: ``(buffer, start, end)`` of each buffer's records, oldest first.
        packets: how many records the spans hold.
        bytes: their captured bytes.
        first_ns: the oldest record's time; None when empty.
        last_ns: the newest record's time (the last appended); None when empty.
    """

    spans: list[tuple[bytearray, int, int]]
    packets: int
    bytes: int
    first_ns: int | None
    last_ns: int | None


class RecordRing:
    """The most recent packets within a byte and a time bound.

    Args:
        max_bytes: the most the records held may be charged (captured bytes plus 24 per
            packet); at least ``RECORD.size + 1``.
        seconds: how far back from the newest packet records are held; at most 0 means no
            time bound.
        chunk_size: the buffer size; 0 means 1 MiB, or ``max_bytes // 4`` when that is
            smaller (at least 4 KiB).

    Raises:
        OptionError: ``max_bytes`` is too small to hold a packet.
    """

    def __init__(self, max_bytes: int, seconds: float, chunk_size: int = 0) -> None:
        if max_bytes <= RECORD.size:
            raise OptionError(f"max_bytes must be more than {RECORD.size}, not {max_bytes}")
        self.max_bytes = max_bytes
        self.window_ns = int(seconds * 1e9) if seconds > 0 else 0
        self.chunk_size = chunk_size or max(_MIN_CHUNK, min(CHUNK_SIZE, max_bytes // 4))
        #: When set, records are held back to this time (the flight recorder's trigger window)
        #: rather than ``seconds`` before the newest.
        self.hold_from_ns: int | None = None
        self._chunks: deque[_Chunk] = deque()
        self._spare: _Chunk | None = None
        self._readers = 0
        #: Records held, their captured bytes, and their charge (bytes plus headers).
        self.packets = 0
        self.bytes = 0
        self.charged = 0
        #: Packets ever appended, and those evicted for age and for size.
        self.appended = 0
        self.evicted_age = 0
        self.evicted_size = 0
        #: The newest packet time seen (the time bound counts back from it).
        self.newest_ns: int | None = None
        self._last_ns: int | None = None

    @property
    def evicted(self) -> int:
        """Records evicted, for age and size together (always ``appended - packets``)."""
        return self.evicted_age + self.evicted_size

    @property
    def first_ns(self) -> int | None:
        """The oldest record's time; None when empty."""
        if not self.packets:
            return None
        for chunk in self._chunks:
            if chunk.start < chunk.end:
                return int(_HEAD.unpack_from(chunk.buf, chunk.start)[0])
        return None  # pragma: no cover - packets > 0 means some chunk holds a record

    @property
    def last_ns(self) -> int | None:
        """The newest record's time (the last one appended); None when empty."""
        return self._last_ns if self.packets else None

    # -- appending --------------------------------------------------------------------------

    def append(self, batch: PacketBatch) -> None:
        """Append a batch, evicting the oldest records as the bounds require.

        The byte bound is kept per packet (one batch never holds more than ``max_bytes``);
        the time bound once per batch.
        """
        if not batch:
            return
        if _ring_append is not None and type(batch) is list:
            self._append_fast(batch, _ring_append)
        else:
            self._append_each(batch)
        self.appended += len(batch)
        self._last_ns = batch[-1][0]
        self.evict_old()

    def _append_fast(self, batch: list[Packet], ring_append: _RingAppend) -> None:
        """``append`` through the C loop, which stops where only the Python code goes on: a
        new buffer, a field it leaves to ``_append_each``, an emptied oldest buffer."""
        chunks = self._chunks
        n = len(batch)
        i = 0
        while i < n:
            if not chunks:
                chunks.append(self._new_chunk(0))
            tail, head = chunks[-1], chunks[0]
            i, tail.end, head.start, added, added_bytes, dropped, dropped_bytes, charged, newest = (
                ring_append(
                    batch,
                    i,
                    tail.buf,
                    tail.end,
                    head.buf,
                    head.start,
                    head.end,
                    self.charged,
                    self.max_bytes,
                    self.newest_ns,
                )
            )
            self.packets += added - dropped
            self.bytes += added_bytes - dropped_bytes
            self.charged = charged
            self.newest_ns = newest
            self.evicted_size += dropped
            if charged > self.max_bytes:  # the oldest buffer ran out: go on past it
                while self.charged > self.max_bytes:
                    self._pop()
                    self.evicted_size += 1
            elif i < n:
                self._append_each(batch[i : i + 1])
                i += 1

    def _append_each(self, batch: PacketBatch) -> None:
        """``append`` a packet at a time (the reference the C loop gives the same ring as);
        the caller counts the batch and applies the time bound."""
        chunks = self._chunks
        if not chunks:
            chunks.append(self._new_chunk(0))
        tail = chunks[-1]
        pack = RECORD.pack_into
        head_of = _HEAD.unpack_from
        header = RECORD.size
        max_bytes = self.max_bytes
        newest = self.newest_ns
        packets, held, charged, evicted = self.packets, self.bytes, self.charged, 0
        buf, at = tail.buf, tail.end
        room = len(buf)
        for ts, data, wire, direction, ifindex in batch:
            n = len(data)
            need = header + n
            if at + need > room:
                tail.end = at
                tail = self._new_chunk(need)
                chunks.append(tail)
                buf, at = tail.buf, 0
                room = len(buf)
            try:
                pack(buf, at, ts, n, wire, direction, ifindex)
            except struct.error:
                pack(buf, at, ts, n, min(max(wire, n), _TOP32), direction, ifindex & _TOP32)
            at += need
            buf[at - n : at] = data
            tail.end = at
            packets += 1
            held += n
            charged += need
            if newest is None or ts > newest:
                newest = ts
            while charged > max_bytes:  # evict the oldest (inlined: this runs per packet)
                head = chunks[0]
                if head.start == head.end:
                    self._drop_empty_head()
                    continue
                size = head_of(head.buf, head.start)[1]
                head.start += header + size
                packets -= 1
                held -= size
                charged -= header + size
                evicted += 1
                if head.start == head.end:
                    self._drop_empty_head()  # may reset the tail, when it is the head
                    tail = chunks[-1]
                    buf, at, room = tail.buf, tail.end, len(tail.buf)
        self.packets, self.bytes, self.charged = packets, held, charged
        self.evicted_size += evicted
        self.newest_ns = newest

    def _new_chunk(self, need: int) -> _Chunk:
        spare = self._spare
        if spare is not None and need <= len(spare.buf):
            self._spare = None
            spare.start = spare.end = 0
            return spare
        return _Chunk(max(self.chunk_size, need))

    def evict_old(self) -> None:
        """Evict the records older than the time bound (after an append, or when
        ``hold_from_ns`` was lifted)."""
        if not self.window_ns or self.newest_ns is None:
            return
        floor = self.newest_ns - self.window_ns
        if self.hold_from_ns is not None:
            floor = min(floor, self.hold_from_ns)
        chunks = self._chunks
        while self.packets:
            head = chunks[0]
            if head.start == head.end:
                self._drop_empty_head()
                continue
            if _HEAD.unpack_from(head.buf, head.start)[0] >= floor:
                return
            self._pop()
            self.evicted_age += 1

    def _pop(self) -> None:
        """Remove the oldest record."""
        chunks = self._chunks
        head = chunks[0]
        while head.start == head.end:
            self._drop_empty_head()
            head = chunks[0]
        n = _HEAD.unpack_from(head.buf, head.start)[1]
        size = RECORD.size + n
        head.start += size
        self.packets -= 1
        self.bytes -= n
        self.charged -= size
        if head.start == head.end:
            self._drop_empty_head()

    def _drop_empty_head(self) -> None:
        """Free the emptied oldest buffer, keeping it as the spare when nobody reads it."""
        chunks = self._chunks
        if len(chunks) == 1:
            if not self._readers:
                chunks[0].start = chunks[0].end = 0
            return
        old = chunks.popleft()
        if not self._readers and (self._spare is None or len(old.buf) > len(self._spare.buf)):
            self._spare = old

    # -- reading ----------------------------------------------------------------------------

    def view(self) -> RingView:
        """Take a view of what is held; ``release`` it when done reading."""
        self._readers += 1
        spans = [(c.buf, c.start, c.end) for c in self._chunks if c.start < c.end]
        return RingView(spans, self.packets, self.bytes, self.first_ns, self.last_ns)

    def release(self, view: RingView) -> None:
        """Done with a view: emptied buffers may be reused again once no view is open."""
        self._readers -= 1

    @staticmethod
    def read(view: RingView, batch_size: int = 4096) -> Iterator[PacketBatch]:
        """The packets of a view, oldest first, in batches of at most ``batch_size``."""
        unpack = RECORD.unpack_from
        size = RECORD.size
        directions = _DIRECTIONS
        batch: PacketBatch = []
        for buf, start, end in view.spans:
            at = start
            while at < end:
                ts, n, wire, direction, ifindex = unpack(buf, at)
                body = at + size
                batch.append(
                    Packet(ts, bytes(buf[body : body + n]), wire, directions[direction], ifindex)
                )
                at = body + n
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
