"""The I/O series sink: packets and bytes per second, in total and per protocol, for graphs.

Keeps the last ``seconds`` seconds in a fixed ring (``_ring.SecondRing``): memory is allocated
once and never grows. Seconds count from the first packet's time, as tshark's ``-z io,stat,1``
counts its intervals, so ``format_io_stat`` (``_tshark``) prints the same rows. Per packet the
sink finds its second and its transport protocol (one link-layer decode, shared with the stats
sink's breakdown) and adds to that second's counters. ``snapshot`` runs on any thread: the
counters are updated under a lock, once per batch.

A packet older than the oldest second held, or earlier than the first packet, has no second: it
is counted in ``late`` and nowhere else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from .._errors import OptionError
from .._packet import LinkType, PacketBatch, Stats
from ..decode._link import link_decoder, transport_protocol
from ._ring import NS_PER_SECOND, SecondRing
from ._stats import _SLOT as PROTOCOL_SLOT
from ._stats import PROTOCOL_NAMES

__all__ = ["DEFAULT_SERIES_SECONDS", "SeriesSink", "SeriesSnapshot"]

#: Seconds kept when no length is given (ten minutes).
DEFAULT_SERIES_SECONDS = 600

_PROTOCOLS = len(PROTOCOL_NAMES)
# A bucket: packets, bytes, then packets and bytes of each protocol of PROTOCOL_NAMES.
_FIELDS = 2 + 2 * _PROTOCOLS


class SeriesSnapshot(NamedTuple):
    """Per-second counters, oldest second first.

    Attributes:
        origin_ns: the start of second 0 (the first packet's time); None before any packet.
        first: the index of the first second listed (0 until the ring has turned).
        packets: packets per second.
        bytes: wire bytes per second.
        protocols: protocol name (``PROTOCOL_NAMES``: tcp, udp, icmp, icmp6, other) -> packets
            per second.
        protocol_bytes: protocol name -> wire bytes per second.
        first_ns: the first packet's time; None before any.
        last_ns: the latest packet's time; None before any.
        late: packets that had no second (older than the ring, or before the first packet).
        seconds: seconds the ring holds at most.
    """

    origin_ns: int | None
    first: int
    packets: list[int]
    bytes: list[int]
    protocols: dict[str, list[int]]
    protocol_bytes: dict[str, list[int]]
    first_ns: int | None
    last_ns: int | None
    late: int
    seconds: int

    @property
    def start_ns(self) -> int | None:
        """The start of the first second listed; None before any packet."""
        if self.origin_ns is None:
            return None
        return self.origin_ns + self.first * NS_PER_SECOND

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON-ready values; ``start`` (seconds since the epoch) is when
        the first listed second began, ``interval`` the length of each (1.0)."""
        start = self.start_ns
        return {
            "start": None if start is None else start / NS_PER_SECOND,
            "interval": 1.0,
            "first": self.first,
            "packets": self.packets,
            "bytes": self.bytes,
            "protocols": self.protocols,
            "protocol_bytes": self.protocol_bytes,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "late": self.late,
            "seconds": self.seconds,
        }


class SeriesSink:
    """Counts packets and bytes per second for the last ``seconds`` seconds (a Session sink).

    Args:
        seconds: seconds kept; default 600 (ten minutes). Memory is about 100 bytes a second.
        linktype: the frames' link type, for the protocol breakdown; None (the default) means
            the bound Session's, or RAW when unbound.

    Raises:
        OptionError: ``seconds`` is less than 1.
    """

    def __init__(
        self, seconds: int = DEFAULT_SERIES_SECONDS, *, linktype: LinkType | int | None = None
    ) -> None:
        if seconds < 1:
            raise OptionError(f"seconds must be at least 1, not {seconds}")
        self._ring = SecondRing(seconds, _FIELDS)
        self._linktype = linktype
        self._decode = link_decoder(LinkType.RAW if linktype is None else linktype)
        self._lock = threading.Lock()
        self.late = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Take the Session's link type when none was given."""
        if self._linktype is None:
            self._decode = link_decoder(linktype)

    def write_batch(self, batch: PacketBatch) -> None:
        """Count a batch into its seconds."""
        if not batch:
            return
        decode = self._decode
        slot_of = PROTOCOL_SLOT
        ring = self._ring
        with self._lock:
            if self.first_ns is None:
                self.first_ns = batch[0][0]
                ring.bucket(self.first_ns)
            origin = ring.origin_ns
            assert origin is not None
            values = ring.values
            late = 0
            newest = self.last_ns if self.last_ns is not None else batch[0][0]
            current = -(2**62)
            base = -1
            for ts, data, wire, _direction, _ifindex in batch:
                if ts > newest:
                    newest = ts
                bucket = (ts - origin) // NS_PER_SECOND
                if bucket != current:
                    current = bucket
                    base = ring.base(bucket)
                if base < 0:
                    late += 1
                    continue
                ethertype, off = decode(data)
                proto = 2 + 2 * slot_of[transport_protocol(data, ethertype, off)]
                values[base] += 1
                values[base + 1] += wire
                values[base + proto] += 1
                values[base + proto + 1] += wire
            self.late += late
            self.last_ns = newest

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release; the series stays readable."""

    def snapshot(self, last: int = 0) -> SeriesSnapshot:
        """The seconds held now, oldest first.

        Args:
            last: only the newest ``last`` seconds; 0 (the default) means all held.

        Raises:
            OptionError: ``last`` is negative.
        """
        if last < 0:
            raise OptionError(f"last must not be negative, not {last}")
        with self._lock:
            first, rows = self._ring.rows(last)
            return SeriesSnapshot(
                origin_ns=self._ring.origin_ns,
                first=first,
                packets=[r[0] for r in rows],
                bytes=[r[1] for r in rows],
                protocols={
                    name: [r[2 + 2 * i] for r in rows] for i, name in enumerate(PROTOCOL_NAMES)
                },
                protocol_bytes={
                    name: [r[3 + 2 * i] for r in rows] for i, name in enumerate(PROTOCOL_NAMES)
                },
                first_ns=self.first_ns,
                last_ns=self.last_ns,
                late=self.late,
                seconds=self._ring.seconds,
            )
