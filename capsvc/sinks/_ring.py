"""A fixed ring of per-second counters: the last N seconds, in memory allocated once.

Pure module. The rule it keeps: the ring never grows. Seconds are counted from an origin (the
first packet's time, as tshark's ``-z io,stat`` counts its intervals); bucket ``k`` covers
``[origin + k s, origin + (k + 1) s)``. A packet newer than the newest bucket moves the ring
forward, clearing the buckets it passes; a packet older than the oldest bucket held, or before the
origin, has no bucket (``base`` says so, and its caller counts it: nothing disappears uncounted).
"""

from __future__ import annotations

from .._errors import OptionError

__all__ = ["NS_PER_SECOND", "SecondRing"]

NS_PER_SECOND = 1_000_000_000


class SecondRing:
    """``seconds`` buckets of ``fields`` counters each, in one flat list.

    Args:
        seconds: buckets held; at least 1.
        fields: counters per bucket; at least 1.

    Raises:
        OptionError: either is less than 1.

    Attributes:
        values: the counters: bucket ``k``'s field ``f`` is ``values[(k % seconds) * fields + f]``
            while ``k`` is held.
        origin_ns: the start of bucket 0, set by the first ``base()``; None before.
        head: the newest bucket index; -1 before any.
    """

    __slots__ = ("fields", "head", "origin_ns", "seconds", "values")

    def __init__(self, seconds: int, fields: int) -> None:
        if seconds < 1 or fields < 1:
            raise OptionError(f"a ring needs at least 1 second and 1 field ({seconds}, {fields})")
        self.seconds = seconds
        self.fields = fields
        self.values = [0] * (seconds * fields)
        self.origin_ns: int | None = None
        self.head = -1

    def bucket(self, ts_ns: int) -> int:
        """The bucket of a time (the first call sets the origin to it)."""
        if self.origin_ns is None:
            self.origin_ns = ts_ns
        return (ts_ns - self.origin_ns) // NS_PER_SECOND

    def base(self, bucket: int) -> int:
        """Where bucket ``bucket``'s counters start in ``values``, moving the ring forward to it
        if it is newer than the head; -1 when it is older than the oldest bucket held, or
        negative."""
        head = self.head
        if bucket > head:
            fields, seconds, values = self.fields, self.seconds, self.values
            start = max(head + 1, bucket - seconds + 1)
            for k in range(start, bucket + 1):
                at = (k % seconds) * fields
                values[at : at + fields] = [0] * fields
            self.head = bucket
        elif bucket < 0 or bucket <= head - self.seconds:
            return -1
        return (bucket % self.seconds) * self.fields

    @property
    def first(self) -> int:
        """The oldest bucket held (0 until the ring has turned); 0 before any."""
        return max(0, self.head - self.seconds + 1)

    def rows(self, last: int = 0) -> tuple[int, list[list[int]]]:
        """The held buckets, oldest first, each as its list of fields.

        Args:
            last: only the newest ``last`` buckets; 0 means all held.

        Returns:
            ``(first, rows)``: the index of the first bucket returned and the rows.
        """
        if self.head < 0:
            return 0, []
        first = self.first
        if last > 0:
            first = max(first, self.head - last + 1)
        fields, seconds, values = self.fields, self.seconds, self.values
        rows = []
        for k in range(first, self.head + 1):
            at = (k % seconds) * fields
            rows.append(values[at : at + fields])
        return first, rows
