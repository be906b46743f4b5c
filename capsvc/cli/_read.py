"""``capsvc read``: filter, convert and print capture files (like ``tcpdump -r``).

Text goes to standard output unless ``-w`` is given (``-w -`` writes pcap to standard output, so
``capsvc read -r F -w - | tcpdump -r -`` works). A summary goes to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import IO, Any

from .._packet import SNAPLEN_DEFAULT, LinkType, Stats
from .._run import JobEnd, run_async, run_job
from .._session import Session
from ..sources._base import Source
from ._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    add_output_args,
    end_job,
    filter_expression,
    output_sinks,
    print_error,
)

__all__ = ["add_parser"]

#: A read this long (seconds) shows a progress line when standard error is a terminal.
PROGRESS_AFTER = 1.0


def add_parser(subparsers: Any) -> None:
    """Register ``capsvc read``."""
    parser = subparsers.add_parser(
        "read",
        help="read a capture file: print, filter, convert",
        description="Read a pcap or pcapng file, print it as text or write the matching packets.",
    )
    parser.add_argument(
        "-r",
        dest="read",
        required=True,
        metavar="FILE",
        help="capture file to read ('-' is standard input)",
    )
    parser.add_argument(
        "--backend",
        choices=["native", "libpcap"],
        default="native",
        help="read with capsvc's own reader (default) or through libpcap",
    )
    add_output_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``capsvc read``; returns the exit status."""
    expression = filter_expression(args)
    if args.write == "-" and sys.stdout.isatty():
        raise UsageError("refusing to write binary pcap to a terminal; redirect standard output")
    # The native reader skips rejected records before building packets (as a kernel filter
    # would); through libpcap the Session filters.
    native = args.backend == "native"
    source = _open_source(args.read, args.backend, expression if native else "")
    try:
        session = _build_session(args, source, "" if native else expression)
    except BaseException:
        run_async(source.aclose)
        raise
    end = run_async(lambda: _read(session, source))
    failed = session.source_error is not None or end.stats.sink_errors
    return end_job(
        end,
        session,
        lambda: _summary(end.stats, sys.stderr),
        EXIT_RUNTIME if failed else EXIT_OK,
    )


def _open_source(path: str, backend: str, expression: str) -> Source:
    if backend == "libpcap":
        from ..sources.libpcap._handle import open_offline
        from ..sources.libpcap._source import LibpcapSource

        return LibpcapSource(open_offline(path))
    from ..sources.capfile._source import PcapFileSource

    return PcapFileSource(sys.stdin.buffer if path == "-" else path, filter=expression or None)


def _build_session(args: argparse.Namespace, source: Source, expression: str) -> Session:
    keep = args.snaplen or SNAPLEN_DEFAULT
    if source.snaplen > keep:
        # Packets are cut to the snapshot length as they are read (memory stays bounded).
        print_error(
            f"warning: {args.read}: records of up to {source.snaplen} bytes; keeping the first "
            f"{keep} of each (-s)"
        )
    linktypes: dict[int, int] | None = getattr(source, "linktypes", None)
    several = sorted({LinkType(lt).name for lt in (linktypes or {}).values()})
    if len(several) > 1 and args.write and not args.pcapng:
        raise UsageError(
            f"{args.read} has interfaces of several link types ({', '.join(several)}); a pcap "
            "file holds one: write pcapng (--pcapng)"
        )
    sinks = output_sinks(args, source.linktype, min(keep, source.snaplen), linktypes=linktypes)
    try:
        return Session(
            sinks=sinks,
            matcher=expression or None,
            snaplen=args.snaplen,
            source=source,
            limit=args.count,
        )
    except BaseException:
        for sink in sinks:
            sink.close()
        raise


async def _read(session: Session, source: Source) -> JobEnd:
    progress = None
    if sys.stderr.isatty():
        progress = asyncio.ensure_future(_progress(session, sys.stderr))
    try:
        return await run_job(session)
    finally:
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            sys.stderr.write("\r\033[K")


async def _progress(session: Session, stream: IO[str]) -> None:
    """Show packets read and the rate once the read has taken PROGRESS_AFTER seconds."""
    start = time.monotonic()
    await asyncio.sleep(PROGRESS_AFTER)
    while True:
        stats = session.stats()
        elapsed = time.monotonic() - start
        stream.write(
            f"\rread {stats.received:,} packets, matched {stats.packets:,} "
            f"({stats.received / elapsed:,.0f} packets/s)"
        )
        stream.flush()
        await asyncio.sleep(0.5)


def _summary(stats: Stats, stream: IO[str]) -> None:
    stream.write(
        f"{stats.received} packets read, {stats.packets} matched, "
        f"{stats.written} written, {stats.dropped} dropped\n"
    )
    if stats.sink_errors:
        stream.write(f"{stats.sink_errors} output errors (see above)\n")
    with contextlib.suppress(OSError):
        stream.flush()
