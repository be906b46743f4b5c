"""``-z``: tshark's statistics tables at the end of ``capsvc read`` and ``capsvc capture``, and
on ``capture`` also tcpdump's ``-z postrotate-command``.

Thin IO module: it parses the option, makes the sinks that count (``ConversationSink``,
``SeriesSink``) and prints the tables ``capsvc.sinks._tshark`` formats.

One option, two meanings, decided by the value: a statistics table tshark knows
(``conv,ip``, ``conv,ipv6``, ``conv,tcp``, ``conv,udp``, ``endpoints,ip``, ``endpoints,ipv6``,
``endpoints,tcp``, ``endpoints,udp``, ``io,stat,N``) is a table; on ``capture`` any other value
is the postrotate command (``capsvc.cli._postrotate``), as tcpdump reads ``-z gzip``. A
command named like a table is given with its path (``-z ./conv,ip``).
"""

from __future__ import annotations

import argparse
import sys
from typing import NamedTuple

from .._errors import OptionError
from .._packet import LinkType
from ..sinks._base import Sink
from ._common import UsageError

__all__ = [
    "CONVERSATION_ENTRIES",
    "SERIES_SECONDS",
    "Statistics",
    "ZOptions",
    "add_z_args",
    "parse_z",
]

#: Keys each conversation table holds exactly (about 150 MiB at most, for six full tables;
#: memory grows only with the conversations seen). Past it the figures carry an error bound,
#: and a note says so.
CONVERSATION_ENTRIES = 65536
#: Seconds the I/O series keeps (a day, about 8 MiB); a longer capture's table shows its last day.
SERIES_SECONDS = 86400

_TABLES_HELP = (
    "conv,ip conv,ipv6 conv,tcp conv,udp endpoints,ip endpoints,ipv6 endpoints,tcp "
    "endpoints,udp io,stat,N"
)


class ZOptions(NamedTuple):
    """What the ``-z`` options asked for.

    Attributes:
        tables: ``(table, argument)`` pairs in command-line order (``("conv", "tcp")``,
            ``("io,stat", "5")``), as ``capsvc.sinks.parse_table_name`` returns them.
        postrotate: the postrotate command, or None.
    """

    tables: list[tuple[str, str]]
    postrotate: str | None


def add_z_args(parser: argparse.ArgumentParser, *, postrotate: bool) -> None:
    """Add the repeatable ``-z`` option (with its postrotate meaning when ``postrotate``)."""
    if postrotate:
        help_text = (
            "repeatable. A statistics table printed, in tshark's layout, when the capture ends: "
            f"{_TABLES_HELP} (N whole seconds, 0: the whole capture). Any other value is "
            "tcpdump's postrotate command: with -G or -C, run as 'COMMAND FILE' after each "
            "file is closed (not waited for; its exit status is logged). Name a command that "
            "looks like a table by its path (./conv,ip)"
        )
    else:
        help_text = (
            f"repeatable: print a statistics table in tshark's layout at the end: {_TABLES_HELP} "
            "(N whole seconds, 0: the whole capture)"
        )
    parser.add_argument("-z", dest="z", action="append", default=[], metavar="STAT", help=help_text)


def parse_z(values: list[str], *, postrotate: bool, rotating: bool = False) -> ZOptions:
    """Sort ``-z`` values into tables and a postrotate command.

    Args:
        values: the ``-z`` values, in order.
        postrotate: a value that is no table may be the postrotate command (``capture``).
        rotating: the capture rotates its files (-G or -C), which a postrotate command needs.

    Raises:
        UsageError: a value is no table (where no command may be given, or without rotation),
            or two values are commands.
    """
    from ..sinks._tshark import parse_table_name

    tables: list[tuple[str, str]] = []
    command: str | None = None
    for value in values:
        try:
            tables.append(parse_table_name(value))
            continue
        except OptionError as exc:
            reason = str(exc)
        if value.startswith("io,stat,") or not postrotate:
            raise UsageError(f"-z: {reason}")
        if command is not None:
            raise UsageError(f"-z {value}: one postrotate command only (already -z {command})")
        if not rotating:
            raise UsageError(
                f"-z {value}: not a statistics table ({_TABLES_HELP}); as a postrotate "
                "command it needs -G or -C"
            )
        command = value
    return ZOptions(tables, command)


class Statistics:
    """The sinks that count for the requested tables, and the tables they print.

    Args:
        tables: ``ZOptions.tables``.
        linktype: the frames' link type.
    """

    def __init__(self, tables: list[tuple[str, str]], linktype: LinkType) -> None:
        from ..sinks._conversations import ConversationSink
        from ..sinks._series import SeriesSink

        self.tables = tables
        self.conversations: ConversationSink | None = None
        self.series: SeriesSink | None = None
        if any(table != "io,stat" for table, _ in tables):
            self.conversations = ConversationSink(CONVERSATION_ENTRIES, linktype=linktype)
        if any(table == "io,stat" for table, _ in tables):
            self.series = SeriesSink(SERIES_SECONDS, linktype=linktype)

    @property
    def sinks(self) -> list[Sink]:
        """The counting sinks to add to the Session (none without tables)."""
        return [s for s in (self.conversations, self.series) if s is not None]

    def render(self) -> tuple[str, list[str]]:
        """The tables in command-line order, and notes on how far they can be trusted (a table
        past its exact capacity, a series longer than it keeps)."""
        from ..sinks._tshark import (
            format_conversations,
            format_endpoints,
            format_io_stat,
            format_port_endpoints,
            port_endpoints,
        )

        out: list[str] = []
        notes: list[str] = []
        snap = None
        if self.conversations is not None:
            snap = self.conversations.snapshot(top=0, by="packets")
        for table, arg in self.tables:
            name = f"{table},{arg}"
            if table == "io,stat":
                assert self.series is not None
                series = self.series.snapshot()
                out.append(format_io_stat(series, int(arg)))
                if series.first:
                    notes.append(
                        f"{name}: the capture is longer than the {SERIES_SECONDS} "
                        "seconds kept; the table shows the last of them"
                    )
                if series.late:
                    notes.append(
                        f"{name}: {series.late} packets earlier than the packets "
                        "before them are in no row"
                    )
                continue
            assert snap is not None
            table_of = snap.tcp if arg == "tcp" else snap.udp if arg == "udp" else snap.ip
            evictions, capacity, max_error = (
                (snap.endpoints.evictions, snap.endpoints.capacity, snap.endpoints.max_error)
                if table == "endpoints" and arg in ("ip", "ipv6")
                else (table_of.evictions, table_of.capacity, table_of.max_error)
            )
            if table == "conv":
                out.append(format_conversations(table_of.rows, arg, snap.start_ns))
            elif arg in ("tcp", "udp"):
                out.append(format_port_endpoints(port_endpoints(table_of.rows, arg), arg))
            else:
                out.append(format_endpoints(snap.endpoints.rows, arg))
            if evictions:
                notes.append(
                    f"{name}: more than {capacity} entries seen; counts may be low by up "
                    f"to {max_error} packets each"
                )
        return "".join(out), notes

    def print(self, write: str | None = None) -> None:
        """Print the tables on standard output (on standard error when ``write``, the ``-w``
        argument, is ``-``: standard output carries the capture) and their notes on standard
        error."""
        if not self.tables:
            return
        text, warnings = self.render()
        stream = sys.stderr if write == "-" else sys.stdout
        stream.write(text)
        stream.flush()
        for note in warnings:
            print(f"capsvc: note: {note}", file=sys.stderr)
