"""The stats sink: a JSON line per interval with counters, rates, drop ratio and protocols.

Pure parts first (``ProtocolCounter``, ``stats_record``), the thin sink after. The rule they keep:
per-packet work is one link-layer decode (shared with the text log, ``_link``) and one table
lookup; everything else happens once per interval. Lines are emitted from ``write_batch`` and
``flush`` when the interval has elapsed (a Session flushes at least every 0.25 s even when idle, so
lines keep coming on an idle session) and once more from ``close``.

A line (one JSON object, keys in this order)::

    {"time": 1767270645.123, "interval": 1.0, "packets": 1000, "bytes": 64000, "dropped": 0,
     "filtered": 3, "kernel_dropped": 0, "sink_errors": 0, "seen_packets": 1000,
     "seen_bytes": 64000, "pps": 1000.0, "bps": 512000.0, "drop_ratio": 0.0,
     "protocols": {"tcp": 900, "udp": 90, "icmp": 5, "icmp6": 0, "other": 5}, "final": false}

``packets`` .. ``sink_errors`` are the Session's counters when the sink is bound to one, else its
own ``seen_*`` counts and zeros. ``pps``/``bps`` are over the last interval (``interval`` is its
actual length in seconds), from the Session's accepted packets and bytes when bound. ``drop_ratio``
is dropped / offered since the start (offered = packets + dropped + filtered; 0 before any offer).
``protocols`` counts the frames the sink has seen since the start, by transport protocol.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO, Any

from .._errors import OptionError
from .._packet import LinkType, PacketBatch, Stats
from ..decode._const import (
    ETHERTYPE_IP,
    ETHERTYPE_IPV6,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
)
from ..decode._link import link_decoder, transport_protocol

__all__ = ["PROTOCOL_NAMES", "ProtocolCounter", "StatsSink", "stats_record"]

#: The breakdown's keys, in order.
PROTOCOL_NAMES = ("tcp", "udp", "icmp", "icmp6", "other")
_OTHER = 4
#: IP protocol number -> slot in the breakdown; index -1 (not IP) lands on the last, "other".
_SLOT: tuple[int, ...] = tuple(
    {IPPROTO_TCP: 0, IPPROTO_UDP: 1, IPPROTO_ICMP: 2, IPPROTO_ICMPV6: 3}.get(proto, _OTHER)
    for proto in range(257)
)


class ProtocolCounter:
    """Counts frames of one link type by transport protocol.

    Args:
        linktype: the frames' link type (a LinkType or pcap LINKTYPE_ number); frames of an
            unknown link type all count as ``other``.
    """

    __slots__ = ("_decode", "bytes", "counts", "packets")

    def __init__(self, linktype: int = LinkType.RAW) -> None:
        self._decode = link_decoder(linktype)
        #: Frames per slot of ``PROTOCOL_NAMES``.
        self.counts = [0] * len(PROTOCOL_NAMES)
        #: Frames and wire bytes seen.
        self.packets = 0
        self.bytes = 0

    def add_batch(self, batch: PacketBatch) -> None:
        """Count every frame of a batch (its protocol, and its wire length into ``bytes``)."""
        decode = self._decode
        counts = self.counts
        slot = _SLOT
        total = 0
        for packet in batch:
            data = packet[1]
            total += packet[2]
            ethertype, off = decode(data)
            if ethertype == ETHERTYPE_IP:
                counts[slot[data[off + 9]] if len(data) >= off + 20 else _OTHER] += 1
            elif ethertype == ETHERTYPE_IPV6:
                counts[slot[transport_protocol(data, ethertype, off)]] += 1
            else:
                counts[_OTHER] += 1
        self.packets += len(batch)
        self.bytes += total

    def breakdown(self) -> dict[str, int]:
        """The counts keyed by ``PROTOCOL_NAMES``."""
        return dict(zip(PROTOCOL_NAMES, self.counts, strict=True))


def stats_record(
    *,
    now: float,
    elapsed: float,
    counters: dict[str, int],
    seen_packets: int,
    seen_bytes: int,
    delta_packets: int,
    delta_bytes: int,
    protocols: dict[str, int],
    final: bool,
) -> dict[str, Any]:
    """Build one stats line's object.

    Args:
        now: wall-clock time of the line (seconds since the epoch).
        elapsed: length of the interval the rates cover, in seconds; 0 gives rates of 0.
        counters: packets, bytes, dropped, filtered, kernel_dropped, sink_errors.
        seen_packets: frames the sink itself has seen.
        seen_bytes: their wire bytes.
        delta_packets: packets counted during the interval (for ``pps``).
        delta_bytes: bytes counted during the interval (for ``bps``).
        protocols: the per-protocol breakdown.
        final: True on the line written by ``close``.

    Returns:
        The object, keys in the documented order.
    """
    offered = counters["packets"] + counters["dropped"] + counters["filtered"]
    rate = 1.0 / elapsed if elapsed > 0 else 0.0
    return {
        "time": round(now, 3),
        "interval": round(elapsed, 3),
        **counters,
        "seen_packets": seen_packets,
        "seen_bytes": seen_bytes,
        "pps": round(delta_packets * rate, 3),
        "bps": round(delta_bytes * 8 * rate, 3),
        "drop_ratio": round(counters["dropped"] / offered, 6) if offered else 0.0,
        "protocols": protocols,
        "final": final,
    }


_COUNTER_NAMES = ("packets", "bytes", "dropped", "filtered", "kernel_dropped", "sink_errors")


class StatsSink:
    """Writes a JSON line of capture statistics per interval to a text stream.

    Bound to a Session (the Session calls ``bind_session`` with its ``stats`` method), the
    counters and rates are the Session's; unbound, they are what the sink itself has seen.

    Args:
        stream: a text stream; never closed by the sink.
        interval: seconds between lines (at least this long; a line is written by the first
            ``write_batch``/``flush`` after it elapsed). Default 1.0.
        linktype: the link type of the frames, for the protocol breakdown; None (the default)
            means the bound Session's link type, or RAW when unbound.
        clock: monotonic clock in seconds (tests pass a fake one).

    Raises:
        ValueError: ``interval`` is not positive.
    """

    def __init__(
        self,
        stream: IO[str],
        interval: float = 1.0,
        *,
        linktype: LinkType | int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0:
            raise OptionError(f"interval must be positive, not {interval!r}")
        self.stream = stream
        self.interval = float(interval)
        self._linktype = linktype
        self._clock = clock
        self._stats: Callable[[], Stats] | None = None
        self.counter = ProtocolCounter(LinkType.RAW if linktype is None else linktype)
        self._last = clock()
        self._last_packets = 0
        self._last_bytes = 0
        self._closed = False

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Read counters from ``stats`` (a Session's ``stats`` method) from now on.

        When no link type was given to the constructor, the Session's ``linktype`` is used for
        the protocol breakdown.
        """
        self._stats = stats
        if self._linktype is None:
            self.counter = ProtocolCounter(linktype)
        current = stats()
        self._last_packets, self._last_bytes = current.packets, current.bytes

    def write_batch(self, batch: PacketBatch) -> None:
        """Count a batch; write a line if the interval has elapsed."""
        if batch:
            self.counter.add_batch(batch)
        self._maybe_emit()

    def flush(self) -> None:
        """Write a line if the interval has elapsed, then flush the stream."""
        self._maybe_emit()
        self.stream.flush()

    def close(self) -> None:
        """Write the final line (``"final": true``) and flush; the stream stays open.

        A second call writes nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._emit(self._clock(), final=True)
        self.stream.flush()

    def snapshot(self, *, final: bool = False) -> dict[str, Any]:
        """The object the next line would carry if written now (does not start a new interval)."""
        return self._record(self._clock(), final)

    def _maybe_emit(self) -> None:
        now = self._clock()
        if now - self._last >= self.interval and not self._closed:
            self._emit(now, final=False)

    def _record(self, now: float, final: bool) -> dict[str, Any]:
        counter = self.counter
        if self._stats is not None:
            current = self._stats()
            counters = {name: int(getattr(current, name)) for name in _COUNTER_NAMES}
        else:
            counters = dict.fromkeys(_COUNTER_NAMES, 0)
            counters["packets"] = counter.packets
            counters["bytes"] = counter.bytes
        return stats_record(
            now=time.time(),
            elapsed=now - self._last,
            counters=counters,
            seen_packets=counter.packets,
            seen_bytes=counter.bytes,
            delta_packets=counters["packets"] - self._last_packets,
            delta_bytes=counters["bytes"] - self._last_bytes,
            protocols=counter.breakdown(),
            final=final,
        )

    def _emit(self, now: float, *, final: bool) -> None:
        record = self._record(now, final)
        self._last = now
        self._last_packets = record["packets"]
        self._last_bytes = record["bytes"]
        self.stream.write(json.dumps(record) + "\n")
