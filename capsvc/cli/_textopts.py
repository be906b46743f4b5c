"""The text output's options on the command line, with tcpdump's letters and meanings.

Thin module: argparse options for ``capsvc read`` and ``capsvc capture``, and the
``TextOptions`` they describe (the formatter itself is made in ``capsvc.format._select``,
the sink in ``capsvc.sinks._build``).

The default format of the command line is capsvc's own line (netbird's layout, the library's
TextWriter default; docs/text.md): it is about three times faster to make than tcpdump's
line, which keeps ``capsvc read`` within reach of tcpdump's speed. ``--format tcpdump`` (or
``-T tcpdump``) prints each packet as ``tcpdump -n`` does; the flags only that format has
(``-e``, ``-x``, ``-X``, ``-t``, ``-q``, ``-S``, ``-#``) choose it by themselves.
"""

from __future__ import annotations

import argparse
import socket

from ..format._select import TEXT_FORMATS, TextOptions
from ._common import UsageError

__all__ = ["TEXT_HELP", "add_text_args", "text_options"]

#: The help text's note on the default format.
TEXT_HELP = (
    "text lines: capsvc's own layout by default (docs/text.md); --format tcpdump prints "
    "tcpdump's lines, and -e, -x, -X, -t, -q, -S, -# choose it by themselves. capsvc never "
    "resolves names: lines read as tcpdump -n prints them."
)


def add_text_args(parser: argparse.ArgumentParser) -> None:
    """Add the text options: --format/-T, -e, -x, -X, -t, -q, -S, -#."""
    group = parser.add_argument_group("text output", TEXT_HELP)
    group.add_argument(
        "--format",
        dest="text_format",
        choices=TEXT_FORMATS,
        default=None,
        help="text format: netbird (capsvc's line, the default), tcpdump (tcpdump -n's "
        "lines) or json (one object per packet; schema in docs/text.md)",
    )
    group.add_argument(
        "-T",
        dest="text_format",
        choices=("tcpdump", "json"),
        help="same as --format tcpdump|json",
    )
    group.add_argument(
        "-e", dest="link_header", action="store_true", help="print the link-level header"
    )
    group.add_argument(
        "-x",
        dest="hex",
        action="count",
        default=0,
        help="hex dump of each packet (-xx: with its link-level header)",
    )
    group.add_argument(
        "-X",
        dest="hex_ascii",
        action="count",
        default=0,
        help="hex and ASCII dump of each packet (-XX: with its link-level header)",
    )
    group.add_argument(
        "-t",
        dest="stamp",
        action="count",
        default=0,
        help="time stamps: -t none, -tt seconds since the epoch, -ttt delta from the "
        "previous packet, -tttt date and time, -ttttt delta from the first packet",
    )
    group.add_argument("-q", dest="quiet", action="store_true", help="quiet: less protocol detail")
    group.add_argument(
        "-S",
        dest="absolute",
        action="store_true",
        help="absolute TCP sequence numbers (relative is the default)",
    )
    group.add_argument(
        "-#",
        dest="number",
        action="store_true",
        help="print each packet's number at the start of its line",
    )


def _interfaces() -> dict[int, str]:
    """This machine's interfaces by index (what tcpdump names a cooked v2 index with)."""
    try:
        return dict(socket.if_nameindex())
    except OSError:
        return {}


def text_options(args: argparse.Namespace, *, live: bool = False) -> TextOptions:
    """The ``TextOptions`` the command line asks for.

    Args:
        args: the parsed arguments (``add_text_args`` and the shared -v/-A).
        live: a live capture: the interface names are this machine's, in both formats (a
            capture file's names are tcpdump's only: the machine's, for the tcpdump format).

    Raises:
        UsageError: a tcpdump-only flag with ``--format netbird`` or ``--format json``.
    """
    chosen = getattr(args, "text_format", None)
    options = TextOptions(
        verbose=int(getattr(args, "verbose", 0) or 0),
        ascii=bool(getattr(args, "ascii", False)),
        link=bool(getattr(args, "link_header", False)),
        hex=getattr(args, "hex", 0),
        hex_ascii=getattr(args, "hex_ascii", 0),
        stamp=getattr(args, "stamp", 0),
        quiet=bool(getattr(args, "quiet", False)),
        absolute=bool(getattr(args, "absolute", False)),
        number=bool(getattr(args, "number", False)),
    )
    only = options.tcpdump_only()
    if chosen is None:
        chosen = "tcpdump" if only else "netbird"
    elif only and chosen != "tcpdump":
        raise UsageError(f"{', '.join(only)}: only the tcpdump format has them (--format tcpdump)")
    if options.stamp > 5:
        raise UsageError("-t is given at most 5 times (-ttttt)")
    interfaces = _interfaces() if live or chosen == "tcpdump" else None
    return TextOptions(
        format=chosen,
        verbose=options.verbose,
        ascii=options.ascii,
        link=options.link,
        hex=options.hex,
        hex_ascii=options.hex_ascii,
        stamp=options.stamp,
        quiet=options.quiet,
        absolute=options.absolute,
        number=options.number,
        interfaces=interfaces,
    )
