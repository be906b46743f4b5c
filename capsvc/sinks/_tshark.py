"""tshark's statistics tables: ``-z conv,TYPE``, ``-z endpoints,TYPE`` and ``-z io,stat,N``.

Pure module: snapshots in, text out, in the layout tshark 4 prints (column widths, the sizes of
``format_size``, the sort order), so scripts written for tshark's tables read ours.

- Conversations and endpoints are listed by total frames, most first; ties keep the order in
  which they were first seen, as tshark's do.
- A conversation's ``<-`` columns are what B sent to A, its ``->`` columns what A sent to B; A
  is the source of the first packet. ``Rel Start`` counts from the first packet of the capture.
- ``io,stat,N``: one row per N seconds counted from the first packet, the last row ending at
  the capture's duration (``Dur``); a capture no longer than N seconds (or N = 0) is one row of
  its duration.
- ``endpoints,tcp``/``udp`` are summed from the 5-tuple conversations.
  Where tshark 4.0 misprints (a duration with a zero microseconds part, a duration of a whole
  number of seconds, whose last packets it leaves out of every row), the rows here still add up
  to every packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol, TypeVar

from .._errors import OptionError
from ._conversations import Conversation, Endpoint
from ._ring import NS_PER_SECOND
from ._series import SeriesSnapshot

__all__ = [
    "CONVERSATION_KINDS",
    "ENDPOINT_KINDS",
    "PORT_ENDPOINT_KINDS",
    "PortEndpoint",
    "format_conversations",
    "format_endpoints",
    "format_io_stat",
    "format_port_endpoints",
    "format_size",
    "parse_table_name",
    "port_endpoints",
]

#: ``-z conv,KIND`` kinds and their titles.
CONVERSATION_KINDS = {"ip": "IPv4", "ipv6": "IPv6", "tcp": "TCP", "udp": "UDP"}
#: ``-z endpoints,KIND`` kinds of address endpoints and their titles.
ENDPOINT_KINDS = {"ip": "IPv4", "ipv6": "IPv6"}
#: ``-z endpoints,KIND`` kinds of address and port endpoints and their titles.
PORT_ENDPOINT_KINDS = {"tcp": "TCP", "udp": "UDP"}

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


class _Counted(Protocol):
    @property
    def packets(self) -> int: ...
    @property
    def order(self) -> int: ...


_Row = TypeVar("_Row", bound=_Counted)


def _by_frames(rows: Iterable[_Row]) -> list[_Row]:
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
        lines.append(
            f"{row.address:<20}      {row.packets:6d}     {row.bytes:9d}     "
            f"{row.tx_packets:6d}       {row.tx_bytes:9d}      "
            f"{row.rx_packets:6d}       {row.rx_bytes:9d}   "
        )
    lines.append(_RULE)
    return "\n".join(lines) + "\n"


class PortEndpoint(NamedTuple):
    """One TCP or UDP endpoint (an address and a port), summed from its conversations.

    Attributes:
        version: 4 or 6.
        address: the address (text form).
        port: the port.
        tx_packets: packets it sent.
        tx_bytes: their wire bytes.
        rx_packets: packets sent to it.
        rx_bytes: their wire bytes.
        error: the sum of its conversations' errors (0: exact).
        order: the order in which it was first seen.
    """

    version: int
    address: str
    port: int
    tx_packets: int
    tx_bytes: int
    rx_packets: int
    rx_bytes: int
    error: int
    order: int

    @property
    def packets(self) -> int:
        """Packets sent and received."""
        return self.tx_packets + self.rx_packets

    @property
    def bytes(self) -> int:
        """Wire bytes sent and received."""
        return self.tx_bytes + self.rx_bytes


def port_endpoints(rows: Iterable[Conversation], kind: str) -> list[PortEndpoint]:
    """The ``tcp`` or ``udp`` endpoints of a set of 5-tuple conversations, in first-seen order.

    An endpoint's first packet is the first packet of the earliest conversation it is in, whose
    side A (that packet's source) is seen before side B: so conversations taken in the order
    they were first seen, A then B, give the order tshark lists endpoints in. Exact when every
    conversation of the endpoint is held and exact.

    Raises:
        OptionError: a kind other than ``tcp`` or ``udp``.
    """
    if kind not in PORT_ENDPOINT_KINDS:
        raise OptionError(f"unknown endpoint kind {kind!r} (ip, ipv6, tcp or udp)")
    proto = _PROTOCOL[kind]
    ends: dict[tuple[str, int], list[int]] = {}
    versions: dict[tuple[str, int], int] = {}
    for row in sorted((r for r in rows if r.protocol == proto), key=lambda r: r.order):
        sides = (
            ((row.a, row.a_port), row.packets_ab, row.bytes_ab, row.packets_ba, row.bytes_ba),
            ((row.b, row.b_port), row.packets_ba, row.bytes_ba, row.packets_ab, row.bytes_ab),
        )
        for key, tx_p, tx_b, rx_p, rx_b in sides:
            entry = ends.get(key)
            if entry is None:
                ends[key] = entry = [0, 0, 0, 0, 0, len(ends)]
                versions[key] = row.version
            entry[0] += tx_p
            entry[1] += tx_b
            entry[2] += rx_p
            entry[3] += rx_b
            entry[4] += row.error
    return [PortEndpoint(versions[key], key[0], key[1], *entry) for key, entry in ends.items()]


def format_port_endpoints(rows: Iterable[PortEndpoint], kind: str, *, title: str = "") -> str:
    """tshark's ``-z endpoints,tcp`` or ``-z endpoints,udp`` table (IPv4 and IPv6 together).

    Args:
        rows: endpoints (``port_endpoints`` of the snapshot's ``tcp`` or ``udp`` rows).
        kind: ``tcp`` or ``udp``.
        title: a filter to name in the ``Filter:`` line (empty: ``<No Filter>``).

    Raises:
        OptionError: an unknown kind.
    """
    name = PORT_ENDPOINT_KINDS.get(kind)
    if name is None:
        raise OptionError(f"unknown endpoint kind {kind!r} (tcp or udp)")
    lines = [
        _RULE,
        f"{name} Endpoints",
        f"Filter:{title}" if title else _NO_FILTER,
        f"{' ' * 23}|  Port  ||  Packets  | |  Bytes  | | Tx Packets | | Tx Bytes |"
        " | Rx Packets | | Rx Bytes |",
    ]
    for row in _by_frames(rows):
        lines.append(
            f"{row.address:<20}      {row.port:5d}     {row.packets:6d}     {row.bytes:9d}     "
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


def format_io_stat(series: SeriesSnapshot, interval: int = 1) -> str:
    """tshark's ``-z io,stat,N`` table of a series (frames and bytes per interval).

    Args:
        series: a ``SeriesSink`` snapshot. When its ring has turned, the table lists the seconds
            still held (its first row is not second 0, and may be part of an interval).
        interval: seconds per row, a whole number; 0 means one row for the whole capture.
            An interval at least as long as the capture is one row too, with times in
            milliseconds (a capture under ten seconds) or tenths of a second, as tshark's.

    Returns:
        The table, starting with an empty line and ending in a newline, as tshark's.

    Raises:
        OptionError: a negative interval.
    """
    if interval < 0:
        raise OptionError(f"the io,stat interval must not be negative, not {interval}")
    if series.first_ns is None or series.last_ns is None:
        duration_us = 0
        seconds: list[tuple[int, int]] = []
    else:
        duration_us = (series.last_ns - series.first_ns + 500) // 1000
        seconds = list(zip(series.packets, series.bytes, strict=True))
    if interval == 0 or duration_us <= interval * 1_000_000:
        return _io_stat_whole(duration_us, seconds)
    return _io_stat_rows(duration_us, seconds, series.first, interval)


def _io_stat_rows(
    duration_us: int, seconds: list[tuple[int, int]], first: int, interval: int
) -> str:
    """Rows of ``interval`` whole seconds, the last ending at ``Dur``."""
    groups: dict[int, list[int]] = {}
    for k, (frames, size) in enumerate(seconds, start=first):
        group = groups.setdefault(k // interval, [0, 0])
        group[0] += frames
        group[1] += size
    start, last = min(groups), max(groups)
    counts = [tuple(groups.get(g, (0, 0))) for g in range(start, last + 1)]
    digits = len(str(duration_us // 1_000_000))
    wide = max(digits, 2)
    label_w = 2 * wide + 8
    secs, micros = divmod(duration_us, 1_000_000)
    head = [f"| Duration: {secs}.{micros:06d} secs", f"| Interval: {interval:>{digits}} secs"]
    labels = [
        f"| {g * interval:>{wide}} <> {f'{(g + 1) * interval:>{digits}}':<{wide}} |"
        for g in range(start, last)
    ]
    labels.append(f"| {last * interval:>{wide}} <> {'Dur':<{wide + 1}}|")
    return _io_stat_table(head, labels, counts, label_w, 0)  # type: ignore[arg-type]


def _io_stat_whole(duration_us: int, seconds: list[tuple[int, int]]) -> str:
    """One row as long as the capture: tshark's layout when the interval is 0 or at least the
    capture's duration (milliseconds below ten seconds, tenths from there)."""
    magnitude = len(str(duration_us // 1_000_000))
    places = 3 if magnitude == 1 else 1
    unit = 10 ** (6 - places)
    # Rounded to the places shown, an exact half down (tshark rounds only past it).
    rounded = duration_us // unit + (duration_us % unit > unit // 2)
    whole, part = divmod(rounded, 10**places)
    span = f"{whole}.{part:0{places}d}"
    head = [f"| Duration: {span} secs", f"| Interval: {span} secs"]
    zero = f"{0:>{magnitude}}.{0:0{places}d}"
    labels = [f"| {zero} <> {span:>{magnitude + places + 1}} |"] if seconds else []
    counts = [(sum(f for f, _ in seconds), sum(b for _, b in seconds))] if seconds else []
    label_w = 2 * magnitude + 2 * places + 10
    return _io_stat_table(head, labels, counts, label_w, 30 + magnitude + places + 1)


def _io_stat_table(
    head: list[str],
    labels: list[str],
    counts: list[tuple[int, int]],
    label_w: int,
    border_min: int,
) -> str:
    """The box around the rows: ``label_w`` is the interval column's width, ``border_min`` the
    least width of the outer border (wider than the rows: they get a filler column, and a
    border one column wider than the rows is widened by one more, as tshark does)."""
    frames_w = max(6, *(len(str(f)) for f, _ in counts)) if counts else 6
    bytes_w = max(5, *(len(str(b)) for _, b in counts)) if counts else 5
    row_w = label_w + frames_w + 3 + bytes_w + 3
    width = max(border_min, row_w)
    if width - row_w == 1:
        width += 1
    filler = f"{'|':>{width - row_w}}" if width > row_w else ""
    blank = "|" + " " * (width - 2) + "|"
    out = [
        "",
        "=" * width,
        _box("| IO Statistics", width),
        blank,
        *(_box(text, width) for text in head),
        blank,
        _box("| Col 1: Frames and bytes", width),
        "|" + "-" * (width - 2) + "|",
        "|" + " " * (label_w - 2) + "|" + f"{'1':<{frames_w + bytes_w + 5}}|" + filler,
        _box("| Interval", label_w)
        + f" {_center('Frames', frames_w)} | {_center('Bytes', bytes_w)} |"
        + filler,
        "|" + "-" * (row_w - 2) + "|" + filler,
    ]
    out.extend(
        f"{label} {frames:>{frames_w}} | {size:>{bytes_w}} |{filler}"
        for label, (frames, size) in zip(labels, counts, strict=True)
    )
    out.append("=" * width)
    return "\n".join(out) + "\n"


def parse_table_name(table: str) -> tuple[str, str]:
    """Split a ``-z`` argument's table name (``conv,tcp``) into its parts.

    Returns:
        ``("conv", "tcp")``, ``("endpoints", "ip")``, ``("endpoints", "tcp")`` or
        ``("io,stat", "N")`` (N whole seconds, 0 for the whole capture).

    Raises:
        OptionError: a table this module does not print (an ``io,stat`` interval that is not
            a whole number of seconds among them).
    """
    parts = table.split(",")
    if len(parts) == 2 and parts[0] == "conv" and parts[1] in CONVERSATION_KINDS:
        return parts[0], parts[1]
    if len(parts) == 2 and parts[0] == "endpoints" and parts[1] in ENDPOINT_KINDS:
        return parts[0], parts[1]
    if len(parts) == 2 and parts[0] == "endpoints" and parts[1] in PORT_ENDPOINT_KINDS:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[:2] == ["io", "stat"]:
        interval = parts[2]
        if interval.isascii() and interval.isdigit() and len(interval) <= 9:
            return "io,stat", str(int(interval))
        raise OptionError(
            f"io,stat,{interval}: the interval must be a whole number of seconds "
            "(0 for the whole capture)"
        )
    raise OptionError(
        f"unknown statistics table {table!r} (conv,ip conv,ipv6 conv,tcp conv,udp "
        "endpoints,ip endpoints,ipv6 endpoints,tcp endpoints,udp io,stat,N)"
    )
