"""The Session's queue: packets between the event loop's thread and the sink thread.

Rules it keeps, without a lock:
- Only the loop's thread puts (``put`` a batch, ``put_one`` a packet) and only it changes
  ``added``, before the item is appended; only the sink thread takes and only it changes
  ``taken``, after the items are popped. ``len()`` is their difference, read from either thread
  (an int read is atomic), and never negative; the taker may see a packet counted a moment
  before it can pop it (``take`` then gives what is there).
- A source's batch crosses as one object (one append, one pop), whatever its size: the cost per
  packet of the hand-over is nothing, the cost per batch a deque operation. ``take`` gives back
  everything queued as one batch, in arrival order: a RecordBlock when only RecordBlocks were
  queued (joined, not copied), else a list of Packets (RecordBlocks among them unpacked).
"""

from __future__ import annotations

from collections import deque
from typing import cast

from ._packet import Packet, PacketBatch
from ._records import RecordBlock

__all__ = ["PacketQueue"]


class PacketQueue:
    """A FIFO of packets held as whole batches (see the module's rules).

    Attributes:
        added: packets put since the start (written by the loop's thread only).
        taken: packets taken since the start (written by the sink thread only).
    """

    __slots__ = ("_blocks_added", "_blocks_taken", "_items", "added", "taken")

    def __init__(self) -> None:
        self._items: deque[Packet | PacketBatch | RecordBlock] = deque()
        # RecordBlocks put and taken, each written by one thread as added and taken are.
        self._blocks_added = 0
        self._blocks_taken = 0
        self.added = 0
        self.taken = 0

    def __len__(self) -> int:
        return self.added - self.taken

    def __bool__(self) -> bool:
        return self.added != self.taken

    def put(self, batch: PacketBatch | RecordBlock) -> None:
        """Queue a non-empty batch (it must not be changed afterwards)."""
        if isinstance(batch, RecordBlock):
            self._blocks_added += 1
        # Counted before it is visible: the taker, which counts after it pops, never sees
        # more taken than added (``len`` is never negative).
        self.added += len(batch)
        self._items.append(batch)

    def put_one(self, packet: Packet) -> None:
        """Queue one packet."""
        self.added += 1
        self._items.append(packet)

    def take(self) -> PacketBatch | RecordBlock:
        """Everything queued, as one batch (empty when nothing is)."""
        count = len(self._items)
        if self._blocks_added != self._blocks_taken:
            return self._take_blocks(count)
        # No RecordBlock among them. (A cast does nothing at run time: no test can see its text.)
        items = cast("deque[Packet | PacketBatch]", self._items)  # pragma: no mutate
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

    def _take_blocks(self, count: int) -> PacketBatch | RecordBlock:
        """``take`` when RecordBlocks may be queued: the first ``count`` items, as one block
        when they are all blocks (the loop's thread may put more meanwhile: left for later)."""
        popleft = self._items.popleft
        taken = [popleft() for _ in range(count)]
        blocks = [item for item in taken if isinstance(item, RecordBlock)]
        self._blocks_taken += len(blocks)
        result: PacketBatch | RecordBlock
        if len(blocks) == count:
            result = blocks[0] if count == 1 else RecordBlock.join(blocks)
        else:
            result = []
            for item in taken:
                if isinstance(item, RecordBlock):
                    result.extend(item.packets())
                elif isinstance(item, list):
                    result.extend(item)
                else:
                    result.append(item)
        self.taken += len(result)
        return result
