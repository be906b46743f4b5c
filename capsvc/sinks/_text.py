"""The text log sink: one line per packet, in capsvc's layout, tcpdump's or JSON (formatting
lives in ``capsvc.format``; docs/text.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO

from .._packet import Direction, LinkType, PacketBatch
from .._records import RecordBlock
from ..decode._flows import DEFAULT_MAX_FLOWS
from ..format._line import TextFormatter
from ..format._linefast import lines_of_packets, lines_of_records
from ..format._select import LineFormatter, TextOptions, build_formatter

__all__ = ["TextOptions", "TextWriter"]


class TextWriter:
    """Writes one line per packet to a text stream, like ``tcpdump -n`` in local time.

    A line reads ``12:30:45.123456 [IN   TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] length 78: GET /
    HTTP/1.1``; see ``capsvc.format._line`` for every format. Any bytes give a line (``??? len=N``
    when they cannot be read), never an exception from the formatting; only the stream's own
    errors (OSError, ValueError on a closed stream) propagate.

    Args:
        stream: a text stream; never closed by the writer.
        verbose: add TCP relative seq/ack, window and options, and IP ttl/id/length.
        ascii: follow each line with the transport payload as text, non-printables as ``.``, one
            line per payload line, each indented by two spaces.
        linktype: the link type of the frames (a LinkType or a pcap LINKTYPE_ number).
        max_flows: TCP connections remembered for relative sequence numbers in verbose mode
            (least recently seen forgotten first); default 4096.
        interfaces: interface index -> name, printed after the time stamp on link types that
            carry the interface (LINUX_SLL2, as ``-i any`` captures; ``ifN`` when unmapped).
            None (the default) prints no interface. See docs/text.md for the line layout.
        options: the text format and its options (``TextOptions``: ``tcpdump`` for lines as
            ``tcpdump -n`` prints them, ``json`` for one JSON object per packet); when given
            it replaces ``verbose``, ``ascii`` and ``interfaces``. None (the default) writes the
            netbird-style line.
        linktypes: ifindex -> link type of the frames' interfaces, where they have their own
            (a pcapng source's ``linktypes``, which may grow while it is read): each frame is
            decoded as one of its interface's link type, others as ``linktype``.
    """

    def __init__(
        self,
        stream: IO[str],
        verbose: bool = False,
        ascii: bool = False,
        *,
        linktype: LinkType | int = LinkType.RAW,
        max_flows: int = DEFAULT_MAX_FLOWS,
        interfaces: Mapping[int, str] | None = None,
        options: TextOptions | None = None,
        linktypes: Mapping[int, int] | None = None,
    ) -> None:
        self.stream = stream
        self.options = options or TextOptions(
            verbose=int(verbose), ascii=ascii, interfaces=interfaces
        )
        self.formatter: LineFormatter
        if options is None:
            self.formatter = TextFormatter(
                linktype, verbose=verbose, ascii=ascii, max_flows=max_flows, interfaces=interfaces
            )
        else:
            self.formatter = build_formatter(linktype, options)
        self._given = options
        self._options = (verbose, ascii, max_flows, interfaces)
        self._linktype = int(linktype)
        self._linktypes = linktypes
        self._by_linktype: dict[int, LineFormatter] = {self._linktype: self.formatter}

    @property
    def verbose(self) -> bool:
        """Whether lines carry the verbose details."""
        return bool(self.options.verbose)

    @property
    def ascii(self) -> bool:
        """Whether payloads follow each line."""
        return self.options.ascii

    def write_packet(
        self,
        ts_ns: int,
        data: bytes | bytearray | memoryview,
        direction: Direction | int = Direction.UNKNOWN,
        wire_len: int | None = None,
    ) -> None:
        """Write the line of one frame.

        Args:
            ts_ns: capture time in nanoseconds since the epoch.
            data: the captured bytes.
            direction: printed in the tag; default unknown (``---``).
            wire_len: the length on the wire; None means ``len(data)``.
        """
        raw = bytes(data)
        line = self.formatter.format(
            ts_ns, raw, len(raw) if wire_len is None else wire_len, direction
        )
        self.stream.write(line + "\n")

    def _formatter_of(self, linktype: int) -> LineFormatter:
        found = self._by_linktype.get(linktype)
        if found is None:
            if self._given is not None:
                found = build_formatter(linktype, self._given)
            else:
                verbose, ascii, max_flows, interfaces = self._options
                found = TextFormatter(
                    linktype,
                    verbose=verbose,
                    ascii=ascii,
                    max_flows=max_flows,
                    interfaces=interfaces,
                )
            self._by_linktype[linktype] = found
        return found

    def _mixed(self) -> bool:
        """Whether frames come with link types of their own interfaces."""
        linktypes = self._linktypes
        if not linktypes:
            return False
        return any(lt != self._linktype for lt in linktypes.values())

    def write_batch(self, batch: PacketBatch) -> None:
        """Write the lines of a batch with one ``write()``; an empty batch writes nothing.

        The default line is written in C where the speed-ups are built (the same text:
        ``capsvc.format._linefast``)."""
        if not batch:
            return
        if self._mixed():
            default = self._linktype
            linktypes = self._linktypes or {}
            of = self._formatter_of
            lines = [of(linktypes.get(p[4], default)).format(p[0], p[1], p[2], p[3]) for p in batch]
        else:
            done = lines_of_packets(self.formatter, batch)
            if done is not None:
                self.stream.write(done[0])
                return
            fmt = self.formatter.format
            lines = [fmt(p[0], p[1], p[2], p[3]) for p in batch]
        lines.append("")
        self.stream.write("\n".join(lines))

    def write_records(self, block: RecordBlock) -> None:
        """``write_batch`` for a RecordBlock (a live ring's or a capture file's records): the
        default line is written from the records in C, with no Packet built; any other format
        or mode gets the block's packets."""
        if not block:
            return
        done = None if self._mixed() else lines_of_records(self.formatter, block)
        if done is not None:
            self.stream.write(done[0])
        else:
            self.write_batch(block.packets())

    def flush(self) -> None:
        """Flush the stream."""
        self.stream.flush()

    def close(self) -> None:
        """Flush the stream; the stream itself stays open (it belongs to the caller)."""
        self.stream.flush()
