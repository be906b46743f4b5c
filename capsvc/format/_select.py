"""Which text format a text sink writes, with which options: the one place a formatter is made.

Pure module. Three formats, each a ``LineFormatter`` (``format(ts_ns, data, wire_len,
direction) -> str``):

- ``netbird`` (the library's default): capsvc's own line, after the Go design's TextWriter
  (``capsvc.format._line``, docs/text.md);
- ``tcpdump``: each packet as ``tcpdump -n`` prints it (``capsvc.format._tcpdump``);
- ``json``: one JSON object per packet (``capsvc.format._json``, schema in docs/text.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .._errors import OptionError

__all__ = ["TEXT_FORMATS", "LineFormatter", "TextOptions", "build_formatter"]

#: The text formats a text sink can write.
TEXT_FORMATS = ("netbird", "tcpdump", "json")


class LineFormatter(Protocol):
    """Turns one frame into its text (one line, or lines for dumps); never raises."""

    def format(self, ts_ns: int, data: bytes, wire_len: int, direction: int) -> str:
        """The text of a frame, without a final newline."""
        ...


@dataclass(frozen=True)
class TextOptions:
    """A text sink's format and options (tcpdump's flags of the same letters).

    Attributes:
        format: ``netbird`` (default), ``tcpdump`` or ``json``.
        verbose: ``-v`` count; the netbird line has one verbose level.
        ascii: ``-A``: payload as text (netbird: the transport payload, indented; tcpdump:
            the packet after its link header, as tcpdump prints it).
        link: ``-e`` (tcpdump format): the link-level header.
        hex: ``-x`` count (tcpdump format): hex dump, with the link header at 2.
        hex_ascii: ``-X`` count (tcpdump format): hex and ASCII dump, with the link header at 2.
        stamp: ``-t`` count (tcpdump format): the time stamp style (0 default, 1 none, 2 epoch
            seconds, 3 delta from the previous packet, 4 date and time, 5 delta from the first).
        quiet: ``-q`` (tcpdump format): less protocol detail.
        absolute: ``-S`` (tcpdump format): absolute TCP sequence numbers.
        number: ``-#`` (tcpdump format): number the packets.
        utc: time stamps in UTC instead of local time.
        interfaces: interface index -> name, printed for link types that carry the
            interface (Linux cooked v2, as ``-i any`` captures); None prints none (netbird) or
            ``?`` (tcpdump).
    """

    format: str = "netbird"
    verbose: int = 0
    ascii: bool = False
    link: bool = False
    hex: int = 0
    hex_ascii: int = 0
    stamp: int = 0
    quiet: bool = False
    absolute: bool = False
    number: bool = False
    utc: bool = False
    interfaces: Mapping[int, str] | None = None

    def tcpdump_only(self) -> list[str]:
        """The options set that only the tcpdump format has (``-e``, ``-x``, ...)."""
        found = [
            ("-e", self.link),
            ("-x", self.hex),
            ("-X", self.hex_ascii),
            ("-t", self.stamp),
            ("-q", self.quiet),
            ("-S", self.absolute),
            ("-#", self.number),
        ]
        return [flag for flag, value in found if value]


def build_formatter(linktype: int, options: TextOptions | None = None) -> LineFormatter:
    """The formatter of ``options.format`` for frames of ``linktype``.

    Raises:
        OptionError: an unknown format.
    """
    options = options or TextOptions()
    if options.format == "netbird":
        from ._line import TextFormatter

        return TextFormatter(
            linktype,
            verbose=bool(options.verbose),
            ascii=options.ascii,
            interfaces=options.interfaces,
        )
    if options.format == "tcpdump":
        from ._tcpdump import TcpdumpFormatter

        return TcpdumpFormatter(
            linktype,
            verbose=options.verbose,
            quiet=options.quiet,
            link=options.link,
            absolute=options.absolute,
            stamp=options.stamp,
            utc=options.utc,
            hex=options.hex,
            hex_ascii=options.hex_ascii,
            ascii=options.ascii,
            number=options.number,
            interfaces=options.interfaces,
        )
    if options.format == "json":
        from ._json import JsonFormatter

        return JsonFormatter(linktype, interfaces=options.interfaces)
    raise OptionError(f"unknown text format {options.format!r} (one of: {', '.join(TEXT_FORMATS)})")
