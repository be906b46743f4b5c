"""tshark's statistics tables: ``-z conv,TYPE``, ``-z endpoints,TYPE`` and ``-z io,stat,1``.

Pure module: snapshots in, text out, in the layout tshark 4 prints (column widths, the sizes of
``format_size``, the sort order), so scripts written for tshark's tables read ours.

- Conversations and endpoints are listed by total frames, most first; ties keep the order in
  which they were first seen, as tshark's do.
- A conversation's ``<-`` columns are what B sent to A, its ``->`` columns what A sent to B; A
  is the source of the first packet. ``Rel Start`` counts from the first packet of the capture.
- ``io,stat``: one row per second counted from the first packet, the last row ending at the
  capture's duration (``Dur``); a capture no longer than a second is one row of its duration.
  Where tshark 4.0 misprints (a duration with a zero microseconds part, a duration of a whole
  number of seconds, whose last packets it leaves out of every row), the rows here still add up
  to every packet.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import OptionError
from ._conversations import Conversation, Endpoint
from ._ring import NS_PER_SECOND
from ._series import SeriesSnapshot

__all__ = [
    "CONVERSATION_KINDS",
    "ENDPOINT_KINDS",
    "format_conversations",
    "format_endpoints",
    "format_io_stat",
    "format_size",
    "parse_table_name",
]

#: ``-z conv,KIND`` kinds and their titles.
CONVERSATION_KINDS = {"ip": "IPv4", "ipv6": "IPv6", "tcp": "TCP", "udp": "UDP"}
#: ``-z endpoints,KIND`` kinds and their titles.
ENDPOINT_KINDS = {"ip": "IPv4", "ipv6": "IPv6"}

_RULE = "=" * 80
_NO_FILTER = "Filter:<No Filter>"
_PROTOCOL = {"tcp": 6, "udp": 17}


def format_size(size: int) -> str:
    """A byte count as tshark's tables print it: ``689 bytes``, ``1035 bytes``, ``80 kB``.

    Decimal prefixes; a prefix is used once the count has at least two digits in it
    (10000 bytes is ``10 kB``), and the figure is truncated, not rounded.
    """
    for power, prefix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if size // power >= 10:
            return f"{size // power} {prefix}B"
    return f"{size} bytes"


def _seconds(ns: int) -> float:
    """Nanoseconds as tshark turns an ``nstime`` into a double (seconds plus a fraction)."""
    secs, frac = divmod(ns, NS_PER_SECOND)
    return secs + frac / 1e9


def _by_frames(rows: Iterable[Conversation | Endpoint]) -> list[Conversation | Endpoint]:
    return sorted((r for r in rows if r.packets), key=lambda r: (-r.packets, r.order))


def format_conversations(
    rows: Iterable[Conversation], kind: str, start_ns: int | None, *, title: str = ""
) -> str:
    """tshark's ``-z conv,KIND`` table.

    Args:
        rows: conversations (``ConversationSnapshot.ip`` rows for ``ip``/``ipv6``, ``.tcp`` or
            ``.udp`` rows); those not of ``kind`` are left out.
        kind: ``ip`` (IPv4 address pairs), ``ipv6``, ``tcp`` or ``udp``.
        start_ns: the first packet's time, from which ``Rel Start`` counts; None before any.
        title: a filter to name in the ``Filter:`` line (empty: ``<No Filter>``).

    Returns:
        The table, ending in a newline.

    Raises:
        OptionError: an unknown kind.
    """
    name = CONVERSATION_KINDS.get(kind)
    if name is None:
        raise OptionError(f"unknown conversation kind {kind!r} (ip, ipv6, tcp or udp)")
    ported = kind in _PROTOCOL
    if ported:
        wanted = [r for r in rows if r.protocol == _PROTOCOL[kind]]
    else:
        version = 6 if kind == "ipv6" else 4
        wanted = [r for r in rows if r.protocol == 0 and r.version == version]
    pad = " " * 12 if ported else ""
    lines = [
        _RULE,
        f"{name} Conversations",
        f"Filter:{title}" if title else _NO_FILTER,
        f"{pad}{' ' * 47}|       <-      | |       ->      | |     Total     |"
        "    Relative    |   Duration   |",
        f"{pad}{' ' * 47}| Frames  Bytes | | Frames  Bytes | | Frames  Bytes |"
        "      Start     |              |",
    ]
    start = start_ns or 0
    width = 26 if ported else 20
    for row in _by_frames(wanted):
        assert isinstance(row, Conversation)
        a = f"{row.a}:{row.a_port}" if ported else row.a
        b = f"{row.b}:{row.b_port}" if ported else row.b
        relative = _seconds(row.first_ns - start)
        duration = _seconds(row.last_ns - start) - relative
        lines.append(
            f"{a:<{width}} <-> {b:<{width}}  "
            f"{row.packets_ba:6d} {format_size(row.bytes_ba):<9}  "
            f"{row.packets_ab:6d} {format_size(row.bytes_ab):<9}  "
            f"{row.packets:6d} {format_size(row.bytes):<9}  "
            f"{relative:14.9f}   {duration:12.4f}"
        )
    lines.append(_RULE)
    return "\n".join(lines) + "\n"


def format_endpoints(rows: Iterable[Endpoint], kind: str, *, title: str = "") -> str:
    """tshark's ``-z endpoints,KIND`` table.

    Args:
        rows: endpoints (``ConversationSnapshot.endpoints`` rows); those of the other IP
            version are left out.
        kind: ``ip`` (IPv4) or ``ipv6``.
        title: a filter to name in the ``Filter:`` line (empty: ``<No Filter>``).

    Raises:
        OptionError: an unknown kind.
    """
    name = ENDPOINT_KINDS.get(kind)
    if name is None:
        raise OptionError(f"unknown endpoint kind {kind!r} (ip or ipv6)")
    version = 6 if kind == "ipv6" else 4
    lines = [
        _RULE,
        f"{name} Endpoints",
        f"Filter:{title}" if title else _NO_FILTER,
        f"{' ' * 23}|  Packets  | |  Bytes  | | Tx Packets | | Tx Bytes | | Rx Packets |"
        " | Rx Bytes |",
    ]
    for row in _by_frames(r for r in rows if r.version == version):
        assert isinstance(row, Endpoint)
        lines.append(
            f"{row.address:<20}      {row.packets:6d}     {row.bytes:9d}     "
            f"{row.tx_packets:6d}       {row.tx_bytes:9d}      "
            f"{row.rx_packets:6d}       {row.rx_bytes:9d}   "
        )
    lines.append(_RULE)
    return "\n".join(lines) + "\n"


def _center(label: str, width: int) -> str:
    """``label`` centred in ``width`` columns, an odd space going to the left (tshark's)."""
    margin = max(0, width - len(label))
    left = (margin + 1) // 2
    return " " * left + label + " " * (margin - left)


def _box(text: str, width: int) -> str:
    return f"{text:<{width - 1}}|"


def format_io_stat(series: SeriesSnapshot) -> str:
    """tshark's ``-z io,stat,1`` table of a series (frames and bytes per second).

    Args:
        series: a ``SeriesSink`` snapshot. When its ring has turned, the table lists the seconds
            still held (its first row is not second 0).

    Returns:
        The table, starting with an empty line and ending in a newline, as tshark's.
    """
    if series.first_ns is None or series.last_ns is None:
        duration_us = 0
        rows: list[tuple[int, int]] = []
    else:
        duration_us = (series.last_ns - series.first_ns + 500) // 1000
        rows = list(zip(series.packets, series.bytes, strict=True))
    frames_w = max(6, *(len(str(f)) for f, _ in rows)) if rows else 6
    bytes_w = max(5, *(len(str(b)) for _, b in rows)) if rows else 5
    if duration_us <= 1_000_000:
        # One interval as long as the capture: times in milliseconds.
        ms = (duration_us + 500) // 1000
        span = f"{ms // 1000}.{ms % 1000:03d}"
        label_w = 18
        head = [f"| Duration: {span} secs", f"| Interval: {span} secs"]
        total = (sum(f for f, _ in rows), sum(b for _, b in rows))
        labels = [f"| 0.000 <> {span} |"] if rows else []
        counts = [total] if rows else []
    else:
        last = series.first + len(rows) - 1
        digits = len(str(duration_us // 1_000_000))
        wide = max(digits, 2)
        label_w = 2 * wide + 8
        secs, micros = divmod(duration_us, 1_000_000)
        head = [f"| Duration: {secs}.{micros:06d} secs", f"| Interval: {1:>{digits}} secs"]
        labels = [
            f"| {k:>{wide}} <> {f'{k + 1:>{digits}}':<{wide}} |" for k in range(series.first, last)
        ]
        labels.append(f"| {last:>{wide}} <> {'Dur':<{wide + 1}}|")
        counts = rows
    width = label_w + frames_w + 3 + bytes_w + 3
    blank = "|" + " " * (width - 2) + "|"
    dashes = "|" + "-" * (width - 2) + "|"
    out = [
        "",
        "=" * width,
        _box("| IO Statistics", width),
        blank,
        *(_box(text, width) for text in head),
        blank,
        _box("| Col 1: Frames and bytes", width),
        dashes,
        "|" + " " * (label_w - 2) + "|" + f"{'1':<{frames_w + bytes_w + 5}}|",
        _box("| Interval", label_w)
        + f" {_center('Frames', frames_w)} | {_center('Bytes', bytes_w)} |",
        dashes,
    ]
    out.extend(
        f"{label} {frames:>{frames_w}} | {size:>{bytes_w}} |"
        for label, (frames, size) in zip(labels, counts, strict=True)
    )
    out.append("=" * width)
    return "\n".join(out) + "\n"


def parse_table_name(table: str) -> tuple[str, str]:
    """Split a ``-z`` argument's table name (``conv,tcp``) into its parts.

    Returns:
        ``("conv", "tcp")``, ``("endpoints", "ip")`` or ``("io,stat", "1")``.

    Raises:
        OptionError: a table this module does not print.
    """
    parts = table.split(",")
    if len(parts) == 2 and parts[0] == "conv" and parts[1] in CONVERSATION_KINDS:
        return parts[0], parts[1]
    if len(parts) == 2 and parts[0] == "endpoints" and parts[1] in ENDPOINT_KINDS:
        return parts[0], parts[1]
    if parts == ["io", "stat", "1"]:
        return "io,stat", "1"
    raise OptionError(
        f"unknown statistics table {table!r} (conv,ip conv,ipv6 conv,tcp conv,udp "
        "endpoints,ip endpoints,ipv6 io,stat,1)"
    )
