"""``capsvc capture``: live capture from an interface, like tcpdump.

Text goes to standard output unless ``-w`` is given; ``-G``/``-C``/``-W`` rotate the ``-w`` file
as tcpdump does. Ctrl-C or SIGTERM stops cleanly: the queue drains, files are flushed, and a
summary line goes to standard error:
``N packets captured, N received by filter, N dropped by kernel, N dropped by queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from .._errors import OptionError
from .._packet import Stats
from .._run import JobEnd, run_async, run_job
from .._session import Session
from ..sinks._base import Sink
from ..sources._base import Source
from ..sources._open import BACKENDS, open_live_source
from ._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    add_output_args,
    end_job,
    filter_expression,
    non_negative,
    output_sinks,
    print_error,
)
from ._textopts import add_text_args

__all__ = ["add_parser", "summary_line"]


def add_parser(subparsers: Any) -> None:
    """Register ``capsvc capture``."""
    parser = subparsers.add_parser(
        "capture",
        help="capture live packets from an interface (like tcpdump -i)",
        description="Capture packets from a live interface. Without -w, print one line per "
        "packet. Ctrl-C stops and prints a summary on standard error.",
    )
    parser.add_argument(
        "-i",
        dest="interface",
        required=True,
        metavar="IFACE",
        help="the interface to capture on ('any' for every interface)",
    )
    add_output_args(parser)
    add_text_args(parser)
    parser.add_argument(
        "-p",
        dest="no_promisc",
        action="store_true",
        help="do not put the interface in promiscuous mode",
    )
    parser.add_argument(
        "-Q",
        dest="direction",
        choices=["in", "out", "inout"],
        default="inout",
        help="capture only this direction (default: inout)",
    )
    parser.add_argument(
        "--duration", type=_positive_float, metavar="S", help="stop after S seconds"
    )
    parser.add_argument(
        "-G",
        dest="rotate_seconds",
        type=non_negative,
        default=0,
        metavar="SECONDS",
        help="start a new -w file every SECONDS (the name is a strftime format)",
    )
    parser.add_argument(
        "-C",
        dest="rotate_mb",
        type=_positive_float,
        default=0,
        metavar="MB",
        help="start a new -w file when one exceeds MB million bytes",
    )
    parser.add_argument(
        "-W",
        dest="max_files",
        type=non_negative,
        default=0,
        metavar="FILES",
        help="with -C: keep a ring of FILES files; with -G: stop after FILES",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="afpacket",
        help="capture backend (default: afpacket, needs only the kernel)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ID[:TYPE]",
        help="share the interface's load: afpacket fanout group (TYPE hash, lb, "
        "cpu, rollover, random, qm, '+defrag'/'+rollover' flags; default hash) "
        "or PF_RING cluster (TYPE a cluster_type name; default per_flow)",
    )
    parser.add_argument(
        "--sampling",
        type=non_negative,
        default=1,
        metavar="N",
        help="PF_RING only: keep one packet in N",
    )
    parser.set_defaults(run=run)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def summary_line(stats: Stats, *, kernel_stats: bool = True) -> str:
    """The closing line, with tcpdump's meanings.

    captured: packets written to the outputs; received by filter: packets the source got
    (after the kernel filter); dropped by kernel: packets the kernel had no room for; dropped by
    queue: packets the session's queue had no room for. With ``kernel_stats`` False (a source
    whose library keeps no counters, such as PF_RING's ``pcap:`` module) the two kernel counts
    read "kernel statistics not available" instead of zeros.
    """
    kernel = (
        f"{stats.received} received by filter, {stats.kernel_dropped} dropped by kernel"
        if kernel_stats
        else "kernel statistics not available"
    )
    return f"{stats.written} packets captured, {kernel}, {stats.dropped} dropped by queue"


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.sampling not in (0, 1) and args.backend != "pfring":
        raise UsageError("--sampling needs --backend pfring")
    if args.backend == "afpacket":
        options["userspace_fallback"] = True
        if args.cluster:
            ident, _, kind = args.cluster.partition(":")
            if not ident.isdigit():
                raise UsageError(f"--cluster wants ID[:TYPE] with a numeric ID: {args.cluster}")
            options["fanout"] = (int(ident), kind or "hash")
    elif args.backend == "pfring":
        if args.cluster:
            options["cluster"] = args.cluster
        options["sampling_rate"] = args.sampling or 1
    elif args.cluster:
        raise UsageError("--cluster needs --backend afpacket or pfring")
    return options


def _check_args(args: argparse.Namespace) -> None:
    rotating = args.rotate_seconds or args.rotate_mb or args.max_files
    if rotating and not args.write:
        raise UsageError("-G, -C and -W need -w FILE")
    if rotating and args.write == "-":
        raise UsageError("-G, -C and -W cannot rotate standard output")
    if args.max_files and not (args.rotate_seconds or args.rotate_mb):
        raise UsageError("-W needs -G or -C")


def _open_source(args: argparse.Namespace, expression: str) -> Source:
    options = _backend_options(args)
    try:
        return open_live_source(
            args.backend,
            args.interface,
            snaplen=args.snaplen,
            promisc=not args.no_promisc,
            filter=expression or None,
            direction=args.direction,
            **options,
        )
    except OptionError as exc:  # a malformed argument; a filter error keeps its caret
        raise UsageError(str(exc)) from exc


async def _capture(args: argparse.Namespace) -> tuple[JobEnd, Session, bool]:
    expression = filter_expression(args)
    source = _open_source(args, expression)
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    sinks: list[Sink] = []
    try:
        sinks = output_sinks(
            args,
            source.linktype,
            args.snaplen or source.snaplen,
            on_finished=lambda: _call_soon(loop, finished.set),
        )
        session = Session(
            source=source,
            sinks=sinks,
            matcher=getattr(source, "userspace_filter", None),
            snaplen=args.snaplen,
            limit=args.count,
        )
    except BaseException:
        await source.aclose()
        for sink in sinks:
            sink.close()
        raise

    async def stop_when_finished() -> None:
        await finished.wait()
        await session.stop()

    watcher = asyncio.ensure_future(stop_when_finished())
    try:
        end = await run_job(session, duration=args.duration)
    finally:
        watcher.cancel()
    # A source may say its library keeps no counters (PfRingSource on the pcap: module).
    return end, session, getattr(source, "kernel_stats", True)


def _call_soon(loop: asyncio.AbstractEventLoop, func: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is gone: the capture is over anyway
        loop.call_soon_threadsafe(func)


def run(args: argparse.Namespace) -> int:
    """Run ``capsvc capture``; returns the exit status."""
    _check_args(args)
    end, session, kernel_stats = run_async(lambda: _capture(args))
    error = session.source_error

    def summary() -> None:
        if not session.abandoned:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
        print(summary_line(end.stats, kernel_stats=kernel_stats), file=sys.stderr)
        if error is not None:
            print_error(f"capture failed: {str(error) or type(error).__name__}")

    status = EXIT_RUNTIME if error is not None else EXIT_OK
    return end_job(end, session, summary, status, signal_ends_normally=True)
