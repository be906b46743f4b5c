"""What the command-line jobs share: output options, running a session to its end, exit codes.

Thin IO module: argparse options, signal handling and the event loop live here; the capture logic
stays in Session, sources and sinks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import IO, Any, TypeVar

from .._errors import CapsvcError
from .._packet import Stats
from .._session import Session

__all__ = [
    "EXIT_OK",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "UsageError",
    "add_output_args",
    "filter_expression",
    "non_negative",
    "run_async",
    "run_session",
]

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

T = TypeVar("T")


class UsageError(CapsvcError):
    """A mistake in the command line; printed as one line, exit status 2."""


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Add the options every capturing job shares: -w, --pcapng, -v, -A, -c, -s, --stats, FILTER."""
    parser.add_argument(
        "-w",
        dest="write",
        metavar="FILE",
        help="write packets to FILE as pcap ('-' is standard output)",
    )
    parser.add_argument("--pcapng", action="store_true", help="write pcapng instead of pcap")
    parser.add_argument(
        "-v",
        dest="verbose",
        action="store_true",
        help="verbose text: TCP sequence numbers, options, IP fields",
    )
    parser.add_argument(
        "-A", dest="ascii", action="store_true", help="print each packet's payload in ASCII"
    )
    parser.add_argument(
        "-c",
        dest="count",
        type=non_negative,
        default=0,
        metavar="COUNT",
        help="stop after COUNT packets (0: no limit)",
    )
    parser.add_argument(
        "-s",
        dest="snaplen",
        type=non_negative,
        default=0,
        metavar="SNAPLEN",
        help="bytes kept of each packet (0: 262144)",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="print a JSON statistics line every second on standard error",
    )
    parser.add_argument(
        "filter",
        nargs="*",
        metavar="FILTER",
        help="a tcpdump-style filter expression (words are joined)",
    )


def non_negative(text: str) -> int:
    """argparse type: an integer >= 0 (decimal, or 0x.. / 0o.. prefixed)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def filter_expression(args: argparse.Namespace) -> str:
    """The filter words of the command line joined into one expression ('' when none)."""
    return " ".join(args.filter).strip()


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on uvloop when it is importable, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    result: T = uvloop.run(main())
    return result


async def run_session(
    session: Session,
    *,
    duration: float | None = None,
    until_source_ends: bool = True,
) -> Stats:
    """Start ``session`` and stop it when it is done; return the final stats.

    Done means the first of: the source is exhausted (when ``until_source_ends``), the packet
    limit is reached, every sink has failed (a closed pipe), ``duration`` seconds have passed,
    or SIGINT/SIGTERM arrived. Stopping drains
    the queue to every sink and flushes.
    """
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, interrupted.set)
            installed.append(signum)
    try:
        await session.start()
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(interrupted.wait()),
            asyncio.ensure_future(session.limit_reached.wait()),
            asyncio.ensure_future(session.sinks_failed.wait()),
        ]
        if until_source_ends and session.source is not None:
            waits.append(asyncio.ensure_future(session.wait_source()))
        try:
            await asyncio.wait(waits, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        await session.stop()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return session.stats()


def print_error(message: str, stream: IO[str] | None = None) -> None:
    """Print ``capsvc: message`` on standard error."""
    print(f"capsvc: {message}", file=stream or sys.stderr)
