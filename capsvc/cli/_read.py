"""``capsvc read``: filter, convert and print capture files (like ``tcpdump -r``).

Text goes to standard output unless ``-w`` is given (``-w -`` writes pcap to standard output, so
``capsvc read -r F -w - | tcpdump -r -`` works). A summary goes to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from typing import IO, Any

from .._packet import SNAPLEN_DEFAULT, LinkType, Stats
from .._run import JobEnd, run_async, run_job
from .._session import Session
from ..sinks._base import Sink
from ..sources._base import Source
from ._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    add_output_args,
    counted,
    end_job,
    filter_expression,
    output_sinks,
    print_error,
)
from ._flags import add_tcpdump_args, check_tcpdump_args, drop_privileges, program_text
from ._textopts import add_text_args
from ._zstats import Statistics, add_z_args, parse_z

__all__ = ["add_parser", "progress_line"]

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
    add_z_args(parser, postrotate=False)
    add_tcpdump_args(parser)
    add_text_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``capsvc read``; returns the exit status."""
    check_tcpdump_args(args)
    expression = filter_expression(args)
    z = parse_z(args.z, postrotate=False)
    if args.write == "-" and sys.stdout.isatty():
        raise UsageError("refusing to write binary pcap to a terminal; redirect standard output")
    # The native reader skips rejected records before building packets (as a kernel filter
    # would); through libpcap the Session filters.
    native = args.backend == "native" and not args.dump_program
    source = _open_source(args.read, args.backend, expression if native else "", args.count)
    if args.dump_program:  # -d: the program for the file's link type and snapshot length
        try:
            text = program_text(
                expression, source.linktype, source.snaplen, args.dump_program, backend=args.backend
            )
        finally:
            run_async(source.aclose)
        print(text)
        return EXIT_OK
    try:
        statistics = Statistics(z.tables, source.linktype)
        drop_privileges(args)  # -Z: the file is open, the outputs are not yet
        session = _build_session(args, source, "" if native else expression, statistics.sinks)
    except BaseException:
        run_async(source.aclose)
        raise
    end = run_async(lambda: _read(session, source))
    failed = session.source_error is not None or end.stats.sink_errors

    def summary() -> None:
        statistics.print(args.write)
        _summary(end.stats, sys.stderr)
        if args.count_only:  # tcpdump --count: the one line on standard output
            print(counted(end.stats.written, "packet"))

    return end_job(end, session, summary, EXIT_RUNTIME if failed else EXIT_OK)


def _open_source(path: str, backend: str, expression: str, count: int) -> Source:
    """The file's source; the native reader stops right after the ``count``-th match (the
    Session does it for libpcap), so "packets read" counts what -c used, as tcpdump reads."""
    if backend == "libpcap":
        from ..sources.libpcap._handle import open_offline
        from ..sources.libpcap._source import LibpcapSource

        return LibpcapSource(open_offline(path))
    from ..sources.capfile._source import PcapFileSource

    stream = sys.stdin.buffer if path == "-" else path
    return PcapFileSource(stream, filter=expression or None, limit=count)


def _build_session(
    args: argparse.Namespace, source: Source, expression: str, extra: list[Sink]
) -> Session:
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
    sinks = (
        output_sinks(args, source.linktype, min(keep, source.snaplen), linktypes=linktypes) + extra
    )
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
        progress = asyncio.ensure_future(_progress(session, source, sys.stderr))
    try:
        return await run_job(session)
    finally:
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            sys.stderr.write("\r\033[K")


# Hand-written rather than tqdm or rich: the line is three figures redrawn twice a second on
# one terminal row, which a dependency (and its import time on every run) would not improve.
async def _progress(session: Session, source: Source, stream: IO[str]) -> None:
    """Redraw the progress line every half second once the read has taken PROGRESS_AFTER."""
    where = getattr(source, "progress", None)  # capsvc's own reader knows its file offset
    start = time.monotonic()
    await asyncio.sleep(PROGRESS_AFTER)
    while True:
        stats = session.stats()
        done, total = where() if where is not None else (0, 0)
        try:  # the terminal standard error is on (standard output may be a file)
            width = os.get_terminal_size(stream.fileno()).columns or 80
        except (OSError, ValueError):
            width = 80
        line = progress_line(
            stats.received, stats.packets, done, total, time.monotonic() - start, width
        )
        stream.write(f"\r{line}\033[K")
        stream.flush()
        await asyncio.sleep(0.5)


def progress_line(
    packets: int, matched: int, done: int, total: int, elapsed: float, width: int = 80
) -> str:
    """The progress line of a long read: ``read 42% of 1.2 GB, 3,456,789 packets (12,345
    matched), 812,345 packets/s, 95.3 MB/s, 0:07 left``.

    Args:
        packets: records read so far; matched: those the filter kept.
        done: bytes of the file read so far; total: its size (0 when unknown: a pipe, whose
            line then has neither percent nor time left).
        elapsed: seconds since the read began (> 0).
        width: the terminal's columns; the line is cut to one less so it never wraps.
    """
    elapsed = max(elapsed, 1e-9)
    parts = [f"{packets:,} packets ({matched:,} matched)", f"{packets / elapsed:,.0f} packets/s"]
    if total > 0:
        done = min(done, total)
        byte_rate = done / elapsed
        left = (total - done) / byte_rate if byte_rate > 0 else 0.0
        head = f"read {100 * done // total}% of {_size(total)}, "
        parts += [f"{_size(byte_rate)}/s", f"{_duration(left)} left"]
    else:
        head = "read "
    return (head + ", ".join(parts))[: max(width - 1, 0)]


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _summary(stats: Stats, stream: IO[str]) -> None:
    stream.write(
        f"{counted(stats.received, 'packet')} read, {stats.packets} matched, "
        f"{stats.written} written, {stats.dropped} dropped\n"
    )
    if stats.sink_errors:
        stream.write(f"{counted(stats.sink_errors, 'output error')} (see above)\n")
    with contextlib.suppress(OSError):
        stream.flush()
