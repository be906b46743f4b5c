"""What the command-line jobs share: output options and the sinks they ask for, exit codes.

Thin IO module: argparse options, signal handling and the event loop live here; the capture logic
stays in Session, sources and sinks.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import sys
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, TextIO

from .._errors import CapsvcError
from .._packet import LinkType

if TYPE_CHECKING:
    from .._run import JobEnd
    from .._session import Session
    from ..sinks._base import Sink

__all__ = [
    "EXIT_OK",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "UsageError",
    "add_output_args",
    "counted",
    "end_job",
    "filter_expression",
    "non_negative",
    "output_sinks",
]

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2


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
        action="count",
        default=0,
        help="verbose text: TCP sequence numbers, options, IP fields (-vv, -vvv: more, in "
        "the tcpdump format)",
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


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, singular for exactly one, as tcpdump words it: "1 packet",
    "0 packets", "2 packets"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def filter_expression(args: argparse.Namespace) -> str:
    """The job's filter expression ('' when none): the words of the command line joined, or
    the ``-F`` file's expression (the words are then ignored, as tcpdump does)."""
    if getattr(args, "filter_file", None):
        from ._flags import filter_of

        return filter_of(args)
    return " ".join(args.filter).strip()


def output_sinks(
    args: argparse.Namespace,
    linktype: LinkType,
    snaplen: int,
    *,
    on_finished: Callable[[], None] | None = None,
    linktypes: Mapping[int, int] | None = None,
) -> list[Sink]:
    """The sinks a job's ``-w``/``--pcapng``/``-G``/``-C``/``-W``/``-v``/``-A``/``--stats`` ask
    for (built by ``capsvc.sinks._build``, the one place sinks are made from options).
    ``linktypes``: a pcapng input's interfaces' link types (``stream_sink``'s ``linktypes``).

    ``-w -`` writes to standard output; a ``-w`` file is opened as tcpdump does (a FIFO or
    ``/dev/null`` may be named, never through a symbolic link); the names rotation makes are
    created below the ``-w`` name's directory and checked to stay there. Without ``-w`` the
    text log goes to standard output.
    """
    from .._files import Directory, open_named
    from ..sinks._build import (
        NullSink,
        OwnedStream,
        PacketBuffered,
        SinkSpec,
        open_sink,
        stream_sink,
    )
    from ..sinks._rotate import split_template

    kind = "pcapng" if args.pcapng else "pcap"
    nanosecond = getattr(args, "precision", "nano") != "micro"
    rotate_seconds = float(getattr(args, "rotate_seconds", 0) or 0)
    rotate_mb = float(getattr(args, "rotate_mb", 0) or 0)
    max_files = int(getattr(args, "max_files", 0) or 0)
    sinks: list[Sink] = []
    try:
        if args.write == "-":
            spec = SinkSpec(kind, nanosecond=nanosecond)
            sinks.append(
                stream_sink(spec, sys.stdout.buffer, linktype, snaplen, linktypes=linktypes)
            )
        elif args.write and (rotate_seconds or rotate_mb):
            where, name = split_template(args.write)
            with Directory(where) as directory:
                spec = SinkSpec(
                    kind, name, rotate_seconds, rotate_mb, max_files, nanosecond=nanosecond
                )
                sinks.append(
                    open_sink(
                        spec,
                        directory,
                        linktype,
                        snaplen,
                        on_finished=on_finished,
                        linktypes=linktypes,
                    )
                )
        elif args.write:
            stream = os.fdopen(open_named(args.write, write=True), "wb")
            try:
                spec = SinkSpec(kind, nanosecond=nanosecond)
                inner = stream_sink(spec, stream, linktype, snaplen, linktypes=linktypes)
            except BaseException:
                stream.close()
                raise
            sinks.append(OwnedStream(inner, stream, args.write))
        elif getattr(args, "count_only", False):
            sinks.append(NullSink())  # --count: the packets are counted, not printed
        else:
            from ._textopts import text_options

            text = text_options(args, live=hasattr(args, "interface"))
            spec = SinkSpec("text", verbose=bool(args.verbose), ascii=args.ascii)
            sinks.append(
                stream_sink(spec, sys.stdout, linktype, snaplen, text=text, linktypes=linktypes)
            )
        if getattr(args, "packet_buffered", False):  # -U
            sinks = [PacketBuffered(sink) for sink in sinks]
        if args.stats:
            sinks.append(stream_sink(SinkSpec("stats"), sys.stderr, linktype, snaplen))
    except BaseException:
        for sink in sinks:
            with contextlib.suppress(OSError):
                sink.close()
        raise
    return sinks


def _broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or getattr(exc, "errno", None) == errno.EPIPE


def whole_writes(stream: TextIO) -> TextIO:
    """``stream`` itself, or a text stream on the same descriptor that writes all it is given.

    Under ``python -u`` (or PYTHONUNBUFFERED) standard output and error are text layers straight
    on the raw file: a text write is one write(2), and what a pipe did not take (a write
    interrupted by a signal after part of it) is lost without an error. The stream returned has
    a buffered binary layer in between, which writes the rest; it is line-buffered, so each line
    still goes out at once, as unbuffered output would. Streams with a buffered layer already,
    and streams without a descriptor, are returned as they are.
    """
    if not isinstance(getattr(stream, "buffer", None), io.RawIOBase):
        return stream
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return stream
    stream.flush()
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(
        io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors, line_buffering=True
    )


def silence_stdout() -> None:
    """Point standard output at /dev/null: its reader is gone (``| head``), and what Python
    still holds for it must not end in a "Broken pipe" message at exit."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def end_job(
    end: JobEnd,
    session: Session,
    summary: Callable[[], None],
    status: int,
    *,
    signal_ends_normally: bool = False,
) -> int:
    """The exit status of a job that ran, after its summary.

    Standard output closed by its reader (``capsvc read -r F | head -1``) ends the job quietly,
    as tcpdump does: no error, no summary, status 0. A signal gives 128 + its number (130 for
    SIGINT, 143 for SIGTERM), after the summary: the job did not finish its work. Where a signal
    is how the job is meant to end (``capture`` without -c or --duration, as tcpdump), it gives
    the job's own status, unless output had to be abandoned. A sink abandoned while stopping (a
    pipe that took nothing more) may still hold standard output, so the process then ends at
    once.
    """
    failures = session.sink_failures
    if failures and all(_broken_pipe(exc) for exc in failures):
        silence_stdout()
        status = EXIT_OK
    else:
        summary()
    if end.signal is not None and (session.abandoned or not signal_ends_normally):
        status = 128 + end.signal
    if session.abandoned:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(status)  # the writer thread is stuck in a write holding stdout's lock
    return status


def print_error(message: str, stream: IO[str] | None = None) -> None:
    """Print ``capsvc: message`` on standard error."""
    print(f"capsvc: {message}", file=stream or sys.stderr)
