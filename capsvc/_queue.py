"""The Session's queue: packets between the event loop's thread and the sink thread.

Rules it keeps, without a lock:
- Only the loop's thread puts (``put`` a batch, ``put_one`` a packet) and only it changes
  ``added``, before the item is appended; only the sink thread takes and only it changes
  ``taken``, after the items are popped. ``len()`` is their difference, read from either thread
  (an int read is atomic), and never negative; the taker may see a packet counted a moment
  before it can pop it (``take`` then gives what is there).
- A source's batch crosses as one object (one append, one pop), whatever its size: the cost per
  packet of the hand-over is nothing, the cost per batch a deque operation. ``take`` gives back
  everything queued as one batch, in arrival order.
"""

from __future__ import annotations

from collections import deque

from ._packet import Packet, PacketBatch

__all__ = ["PacketQueue"]


class PacketQueue:
    """A FIFO of packets held as whole batches (see the module's rules).

    Attributes:
        added: packets put since the start (written by the loop's thread only).
        taken: packets taken since the start (written by the sink thread only).
    """

    __slots__ = ("_items", "added", "taken")

    def __init__(self) -> None:
        self._items: deque[Packet | PacketBatch] = deque()
        self.added = 0
        self.taken = 0

    def __len__(self) -> int:
        return self.added - self.taken

    def __bool__(self) -> bool:
        return self.added != self.taken

    def put(self, batch: PacketBatch) -> None:
        """Queue a non-empty batch (it must not be changed afterwards)."""
        # Counted before it is visible: the taker, which counts after it pops, never sees
        # more taken than added (``len`` is never negative).
        self.added += len(batch)
        self._items.append(batch)

    def put_one(self, packet: Packet) -> None:
        """Queue one packet."""
        self.added += 1
        self._items.append(packet)

    def take(self) -> PacketBatch:
        """Everything queued, as one batch (empty when nothing is)."""
        items = self._items
        count = len(items)
        batch: PacketBatch
        if count == 1:
            first = items.popleft()
            batch = first if isinstance(first, list) else [first]
        else:
            popleft = items.popleft
            batch = []
            extend, append = batch.extend, batch.append
            for _ in range(count):
                item = popleft()
                if isinstance(item, list):
                    extend(item)
                else:
                    append(item)
        self.taken += len(batch)
        return batch
