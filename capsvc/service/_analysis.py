"""What the service knows of a session beyond its counters: its flight recorder, its
conversations and its I/O series, and the JSON the API answers about them.

Pure module apart from the clock read for a live series. The sinks are the library's
(``capsvc.sinks``): a ``recorder`` sink of the spec, and a ``ConversationSink`` and a
``SeriesSink`` the service adds to every in-process session that does not turn them off (their
sizes from ``[service]``). They run on the session's writer thread after its file sinks;
snapshots are taken from a worker thread, under the sinks' own locks.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from .._errors import ConfigError
from ..sinks._base import Sink
from ..sinks._conversations import RANKINGS, ConversationSink, ConversationSnapshot
from ..sinks._recorder import DumpInfo
from ..sinks._ring import NS_PER_SECOND
from ..sinks._series import SeriesSink, SeriesSnapshot
from ._config import ServiceSettings, SessionSpec

__all__ = [
    "DEFAULT_TOP",
    "MAX_TOP",
    "DumpRecord",
    "analysis_sinks",
    "conversations_body",
    "parse_last",
    "parse_top",
    "series_body",
    "wants",
]

#: Rows per table of ``GET .../conversations`` when ``top`` is not given.
DEFAULT_TOP = 20
#: The most rows per table one answer holds.
MAX_TOP = 1000


class DumpRecord(NamedTuple):
    """One dump a session's recorder wrote, as the API describes it.

    Attributes:
        name: the file, relative to the output directory (``GET /v1/files/NAME``).
        packets: packets written.
        bytes: their captured bytes.
        first_packet: the first packet's time (seconds since the epoch); None when empty.
        last_packet: the last packet's time; None when empty.
        trigger: the trigger packet's time for a trigger dump; None for one asked for.
        written: when it was written (seconds since the epoch).
    """

    name: str
    packets: int
    bytes: int
    first_packet: float | None
    last_packet: float | None
    trigger: float | None
    written: float

    @classmethod
    def of(cls, info: DumpInfo, relative: str) -> DumpRecord:
        """The record of a recorder's ``DumpInfo`` (its file ``relative`` to the directory)."""
        return cls(
            relative,
            info.packets,
            info.bytes,
            _seconds(info.first_ns),
            _seconds(info.last_ns),
            _seconds(info.trigger_ns),
            time.time(),
        )


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / NS_PER_SECOND


def wants(spec: SessionSpec, settings: ServiceSettings, what: str) -> bool:
    """Whether a session counts ``what`` (``"conversations"`` or ``"series"``): its own key,
    else the service's setting; never for a session in worker processes."""
    own = getattr(spec, what)
    if spec.workers > 1:
        return False
    return bool(getattr(settings, what) if own is None else own)


def analysis_sinks(spec: SessionSpec, settings: ServiceSettings) -> list[Sink]:
    """The conversation and series sinks the service adds to a session (maybe none)."""
    sinks: list[Sink] = []
    if wants(spec, settings, "conversations"):
        sinks.append(ConversationSink(settings.conversation_entries))
    if wants(spec, settings, "series"):
        sinks.append(SeriesSink(settings.series_seconds))
    return sinks


def _query_int(text: str, key: str, low: int, high: int) -> int:
    if len(text) > 12 or not text.strip().isdigit():
        raise ConfigError("request", key, f"expected an integer from {low} to {high}, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ConfigError("request", key, f"must be from {low} to {high}, got {value}")
    return value


def parse_top(query: dict[str, str] | Any) -> tuple[int, str]:
    """``top`` (1 to ``MAX_TOP``, default 20) and ``by`` (``bytes`` or ``packets``) of a query.

    Raises:
        ConfigError: either is something else.
    """
    top = _query_int(query.get("top", str(DEFAULT_TOP)), "top", 1, MAX_TOP)
    by = query.get("by", "bytes")
    if by not in RANKINGS:
        raise ConfigError("request", "by", f"expected bytes or packets, got {by[:40]!r}")
    return top, by


def parse_last(query: dict[str, str] | Any, seconds: int) -> int:
    """``last`` of a query: the newest seconds wanted, 1 to ``seconds``; 0 when not given (all).

    Raises:
        ConfigError: not an integer in that range.
    """
    text = query.get("last")
    return 0 if text is None else _query_int(text, "last", 1, seconds)


def conversations_body(name: str, snap: ConversationSnapshot, top: int) -> dict[str, Any]:
    """The answer of ``GET /v1/sessions/NAME/conversations``: the snapshot's tables (``ip``
    address pairs, ``tcp`` and ``udp`` 5-tuples, ``endpoints``), each with its rows (their
    fields, and ``packets`` and ``bytes`` in all) and how far they can be trusted (``held``,
    ``capacity``, ``evictions``, ``max_error``, ``total``)."""
    body: dict[str, Any] = {"session": name, "top": top, **snap.to_dict()}
    for kind in ("ip", "tcp", "udp", "endpoints"):
        table = getattr(snap, kind)
        for row, out in zip(table.rows, body[kind]["rows"], strict=True):
            out["packets"], out["bytes"] = row.packets, row.bytes  # both ways, sent + received
    return body


def series_body(
    name: str, snap: SeriesSnapshot, *, last: int = 0, live: bool, now_ns: int | None = None
) -> dict[str, Any]:
    """The answer of ``GET /v1/sessions/NAME/series``.

    Args:
        name: the session.
        snap: the series held.
        last: only the newest ``last`` seconds; 0 means all held.
        live: the session captures live, so packet times follow the clock: the seconds since
            the last packet, up to now, are listed as zeros (a chart then falls to 0 when
            traffic stops, instead of holding its last value).
        now_ns: the time taken as now (default: the clock).

    Returns:
        ``start`` (seconds since the epoch: when the first listed second began; None before
        any packet), ``interval`` (1.0), ``packets`` and ``bytes`` per second, ``protocols``
        and ``protocol_bytes`` (per transport protocol), ``seconds`` (the most held), ``late``.
    """
    held = len(snap.packets)
    start = snap.start_ns
    end = held  # one past the last second listed, counted from the first one held
    if live and start is not None:
        now = time.time_ns() if now_ns is None else now_ns
        end = max(end, (now - start) // NS_PER_SECOND + 1)
    keep = min(last or snap.seconds, snap.seconds)
    begin = max(0, end - keep)

    def window(column: list[int]) -> list[int]:
        return column[begin:end] + [0] * (end - max(begin, held))

    if start is not None:
        start += begin * NS_PER_SECOND
    packets, bytes_ = window(snap.packets), window(snap.bytes)
    protocols = {k: window(v) for k, v in snap.protocols.items()}
    protocol_bytes = {k: window(v) for k, v in snap.protocol_bytes.items()}
    return {
        "session": name,
        "start": None if start is None else start / NS_PER_SECOND,
        "interval": 1.0,
        "packets": packets,
        "bytes": bytes_,
        "protocols": protocols,
        "protocol_bytes": protocol_bytes,
        "seconds": snap.seconds,
        "late": snap.late,
        "first_packet": _seconds(snap.first_ns),
        "last_packet": _seconds(snap.last_ns),
    }
