"""A heavy-hitter table: exact counts up to a capacity, Space-Saving beyond it.

Pure module. The rule it keeps: the table never holds more than ``capacity`` keys, whatever the
stream. Until that many distinct keys have been seen every count is exact. After that, a key not
in the table takes the place of the one with the smallest count and inherits that count as its
error (Metwally, Agrawal and El Abbadi's Space-Saving, with weights). For every key held, with
``N`` the total weight seen:

- ``count - error <= true weight <= count``;
- ``error <= error_bound() <= N / capacity``;
- every key whose true weight exceeds ``error_bound()`` is held, so the top keys by true weight
  above ``N / capacity`` are never lost, whatever came between them (a scan, a flood of
  one-packet flows).

Entries are lists of ints: ``[count, error, order, *fields]``; ``order`` numbers keys in the
order they entered the table, the fields are the caller's (counters kept beside the count).
The smallest count is found through a heap of ``(count, order, key)`` holding one record per key;
counts only grow, so a record may be stale (lower than the count) and is refreshed when it
surfaces: an update is one dict lookup, an eviction O(log capacity) amortized.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from .._errors import OptionError

__all__ = ["COUNT", "ERROR", "FIELDS", "ORDER", "SpaceSaving"]

K = TypeVar("K", bound=Hashable)

#: Positions in an entry.
COUNT = 0
ERROR = 1
ORDER = 2
#: Where the caller's fields start.
FIELDS = 3


class SpaceSaving(Generic[K]):
    """At most ``capacity`` keys with their counts, errors and the caller's fields.

    Args:
        capacity: keys held at most; at least 1.
        fields: how many caller fields (0 in a new entry) follow ``[count, error, order]``.

    Raises:
        OptionError: ``capacity`` is less than 1 or ``fields`` negative.
    """

    __slots__ = ("_heap", "_template", "capacity", "entries", "evictions", "orders", "total")

    def __init__(self, capacity: int, fields: int = 0) -> None:
        if capacity < 1:
            raise OptionError(f"capacity must be at least 1, not {capacity}")
        if fields < 0:
            raise OptionError(f"fields must not be negative, not {fields}")
        self.capacity = capacity
        #: key -> ``[count, error, order, *fields]``.
        self.entries: dict[K, list[int]] = {}
        #: Keys that were pushed out of the table (each time one was).
        self.evictions = 0
        #: Keys that ever entered the table (the next entry's ``order``).
        self.orders = 0
        #: The weight of every update (``N``).
        self.total = 0
        self._template = [0] * (FIELDS + fields)
        self._heap: list[tuple[int, int, K]] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    @property
    def exact(self) -> bool:
        """True while no key was ever evicted: every count is then the true weight."""
        return self.evictions == 0

    def error_bound(self) -> int:
        """The largest error any entry can have: 0 while no key was ever evicted (every count
        is exact), else the smallest count held (at most ``total / capacity``)."""
        if not self.evictions:
            return 0
        return self._fresh_min()[0]

    def add(self, key: K, weight: int) -> list[int]:
        """Count ``weight`` for ``key`` and return its entry (the caller updates its fields).

        A key not held enters the table; when the table is full it replaces the key with the
        smallest count, starting from that count (its error) plus ``weight``, with its fields
        at 0.

        Args:
            key: the key.
            weight: a non-negative weight (a packet's bytes, or 1).
        """
        self.total += weight
        entry = self.entries.get(key)
        if entry is not None:
            entry[COUNT] += weight
            return entry
        entry = self._template.copy()
        order = self.orders
        self.orders = order + 1
        entry[ORDER] = order
        if len(self.entries) < self.capacity:
            entry[COUNT] = weight
            self.entries[key] = entry
            heapq.heappush(self._heap, (weight, order, key))
            return entry
        smallest, old = self._fresh_min()
        del self.entries[old]
        self.evictions += 1
        entry[COUNT] = smallest + weight
        entry[ERROR] = smallest
        self.entries[key] = entry
        heapq.heapreplace(self._heap, (entry[COUNT], order, key))
        return entry

    def _fresh_min(self) -> tuple[int, K]:
        """The smallest count and its key, refreshing stale heap records on the way."""
        heap = self._heap
        entries = self.entries
        while True:
            count, order, key = heap[0]
            current = entries[key][COUNT]
            if current == count:
                return count, key
            heapq.heapreplace(heap, (current, order, key))

    def top(self, n: int = 0) -> list[tuple[K, list[int]]]:
        """The ``n`` entries with the largest counts, largest first (ties: the earlier entry
        first); 0 means all of them."""
        items = self.entries.items()
        if n <= 0 or n >= len(self.entries):
            return sorted(items, key=_rank)
        return heapq.nsmallest(n, items, key=_rank)

    def __iter__(self) -> Iterator[K]:
        return iter(self.entries)


def _rank(item: tuple[object, list[int]]) -> tuple[int, int]:
    entry = item[1]
    return -entry[COUNT], entry[ORDER]
