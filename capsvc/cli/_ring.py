"""``capsvc capture --ring``: the flight recorder on the command line.

Thin IO module: options, signals and messages; the recorder is ``capsvc.sinks.FlightRecorder``.

With ``--ring 60s[,64MiB]`` the capture keeps the last seconds (and at most that many bytes) in
memory and writes nothing until it is asked: SIGUSR1 writes what is held now, a ``--trigger``
packet writes the seconds before it and ``--after`` seconds more, and the end of the capture
(SIGINT, SIGTERM, ``-c``, ``--duration``) writes what is held unless ``--no-dump-on-exit``.
Every file is created below the ``-w`` name's directory (``capsvc._files.Directory`` rules:
no link followed, mode 0600), named by the ``-w`` name as a strftime(3) format with the dump's
time (a trigger's packet time, else the time of the request); a name already taken gets ``-1``,
``-2``... before its extension. Each dump is one line on standard error with its counts.

The recorder is closed by this module after the Session has stopped, not by the Session: a
last dump as large as the ring must not be cut short by the time a stop after a signal gives
its sinks.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from .._errors import CapsvcError
from .._packet import LinkType, PacketBatch, Stats
from ..sinks._base import Sink
from ..sinks._recorder import DEFAULT_AFTER, DEFAULT_SECONDS, PACKET_OVERHEAD, DumpInfo
from ..sinks._recorder import FlightRecorder as _FlightRecorder
from ._common import UsageError, print_error

__all__ = ["Ring", "add_ring_args", "check_ring_args", "parse_ring"]

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(_NUMBER + r"(ms|s|sec|m|min|h)?", re.IGNORECASE)
_SIZE = re.compile(_NUMBER + r"(b|kb|kib|mb|mib|gb|gib)", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_BYTES = {
    "b": 1,
    "kb": 10**3,
    "kib": 2**10,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}
#: The default byte bound of ``--ring`` (64 MiB).
DEFAULT_RING_BYTES = 64 * 2**20


def parse_ring(text: str) -> tuple[float, int]:
    """argparse type of ``--ring``: ``DURATION[,SIZE]`` (either order, either alone) ->
    ``(seconds, bytes)``.

    A duration is a number with ``ms``, ``s`` (the default), ``m``/``min`` or ``h``; a size a
    number with ``B``, ``kB``, ``KiB``, ``MB``, ``MiB``, ``GB`` or ``GiB``. The one not given is
    60 seconds or 64 MiB.

    Raises:
        argparse.ArgumentTypeError: anything else, a duration that is not positive, a size of
            24 bytes or less.
    """
    seconds: float | None = None
    size: int | None = None
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"{text!r}: want DURATION[,SIZE], such as 60s,64MiB")
    for part in parts:
        word = part.strip()
        if (match := _SIZE.fullmatch(word)) and size is None:
            size = int(float(match[1]) * _BYTES[match[2].lower()])
            if size <= PACKET_OVERHEAD:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: the size must be more than {PACKET_OVERHEAD} bytes"
                )
        elif (match := _DURATION.fullmatch(word)) and seconds is None:
            seconds = float(match[1]) * _SECONDS[(match[2] or "").lower()]
            if not 0 < seconds < 10**9:
                raise argparse.ArgumentTypeError(f"{text!r}: the duration must be positive")
        else:
            raise argparse.ArgumentTypeError(
                f"{text!r}: want DURATION[,SIZE], such as 60s,64MiB (units: ms s m h; "
                "B kB KiB MB MiB GB GiB)"
            )
    return (DEFAULT_SECONDS if seconds is None else seconds), (size or DEFAULT_RING_BYTES)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < 10**9:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text}")
    return value


def add_ring_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--ring``, ``--trigger``, ``--after``, ``--holdoff`` and ``--no-dump-on-exit``."""
    group = parser.add_argument_group(
        "flight recorder",
        "keep the last seconds in memory and write them to -w only when asked: SIGUSR1, a "
        "trigger packet, or the end of the capture. -w names the files (a strftime(3) format: "
        "'dump-%Y%m%d-%H%M%S.pcap'), all in its directory",
    )
    group.add_argument(
        "--ring",
        type=parse_ring,
        metavar="DURATION[,SIZE]",
        help="hold the last DURATION (default unit s) and at most SIZE (default 64MiB) of "
        "packets, such as 60s,64MiB",
    )
    group.add_argument(
        "--trigger",
        metavar="EXPR",
        help="a filter expression: a matching packet writes the DURATION before it and "
        "--after seconds more to a new file",
    )
    group.add_argument(
        "--after",
        type=_seconds,
        metavar="S",
        help=f"seconds kept after a trigger packet (default {DEFAULT_AFTER:g})",
    )
    group.add_argument(
        "--holdoff",
        type=_seconds,
        metavar="S",
        help="seconds after a trigger's dump during which matches are ignored, so a storm "
        "makes one file (default: the ring's DURATION)",
    )
    group.add_argument(
        "--no-dump-on-exit",
        dest="dump_on_exit",
        action="store_false",
        help="do not write what is held when the capture ends",
    )


def check_ring_args(args: argparse.Namespace) -> None:
    """Refuse the recorder options that do not go together.

    Raises:
        UsageError: a recorder option without ``--ring``, ``--after`` without ``--trigger``,
            ``--ring`` without ``-w NAME`` or with ``-w -``, ``-G``, ``-C`` or ``-W``.
    """
    if args.ring is None:
        given = [
            name
            for name, value in (
                ("--trigger", args.trigger),
                ("--after", args.after),
                ("--holdoff", args.holdoff),
                ("--no-dump-on-exit", not args.dump_on_exit),
            )
            if value not in (None, False)
        ]
        if given:
            raise UsageError(f"{given[0]} needs --ring")
        return
    if args.trigger is None and (args.after is not None or args.holdoff is not None):
        raise UsageError("--after and --holdoff need --trigger")
    if not args.write or args.write == "-":
        raise UsageError("--ring needs -w NAME: the files dumps are written to")
    if args.rotate_seconds or args.rotate_mb or args.max_files:
        raise UsageError("--ring writes a file per dump: it takes no -G, -C or -W")


class _Held:
    """The recorder as the Session sees it: everything but ``close``, which ``Ring.close``
    does once the Session has stopped."""

    def __init__(self, recorder: _FlightRecorder) -> None:
        self.recorder = recorder

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        self.recorder.bind_session(stats, linktype)

    def write_batch(self, batch: PacketBatch) -> None:
        self.recorder.write_batch(batch)

    def flush(self) -> None:
        self.recorder.flush()

    def close(self) -> None:
        """Left to ``Ring.close``."""

    def __repr__(self) -> str:
        return repr(self.recorder)


class Ring:
    """The flight recorder of a ``capsvc capture --ring`` job.

    Made before the source is opened (``install`` then makes SIGUSR1 harmless from the
    start); ``open`` makes the recorder once the link type is known.

    Args:
        args: the parsed command line (``check_ring_args`` passed).
        stream: where the dump lines go (standard error).
    """

    def __init__(self, args: argparse.Namespace, stream: IO[str] | None = None) -> None:
        self.args = args
        self.stream = stream or sys.stderr
        self.recorder: _FlightRecorder | None = None
        #: Dumps asked for (SIGUSR1, the end) that could not be written.
        self.failed = 0
        self._exiting = False
        self._pending: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, linktype: LinkType, snaplen: int) -> list[Sink]:
        """Make the recorder; returns the sinks to give the Session (the recorder, and the
        ``--stats`` lines when asked for).

        Args:
            linktype: the source's link type (the trigger is compiled for it).
            snaplen: the snapshot length written in the dumps' headers.

        Raises:
            FilterError: the trigger expression is malformed.
            OptionError: the trigger expression is empty.
            OSError: the ``-w`` directory cannot be opened.
        """
        from ..sinks._rotate import split_template

        args = self.args
        seconds, max_bytes = args.ring
        where, name = split_template(args.write)
        self.recorder = _FlightRecorder(
            seconds,
            max_bytes,
            trigger=args.trigger,
            after=DEFAULT_AFTER if args.after is None else args.after,
            holdoff=args.holdoff,
            directory=where,
            name=name,
            pcapng=args.pcapng,
            linktype=linktype,
            snaplen=snaplen,
            dump_on_close=args.dump_on_exit,
            on_dump=self._report,
        )
        sinks: list[Sink] = [_Held(self.recorder)]
        if args.stats:
            from ..sinks._build import SinkSpec, stream_sink

            sinks.append(stream_sink(SinkSpec("stats"), sys.stderr, linktype, snaplen))
        return sinks

    def _report(self, info: DumpInfo) -> None:
        if info.trigger_ns is not None:
            why = f"trigger at {_clock(info.trigger_ns)}"
        else:
            why = "end of capture" if self._exiting else "SIGUSR1"
        span = (
            f", {_clock(info.first_ns)} to {_clock(info.last_ns)}"
            if info.first_ns is not None and info.last_ns is not None
            else ""
        )
        print(
            f"capsvc: dump ({why}): {info.packets} packets, {info.bytes} bytes{span} -> "
            f"{info.name}",
            file=self.stream,
            flush=True,
        )

    def install(self) -> None:
        """Make SIGUSR1 write a dump (in a thread, while capture goes on)."""
        self._loop = loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self._on_signal)

    def _on_signal(self) -> None:
        if self.recorder is None:
            print_error("SIGUSR1: not capturing yet, nothing to dump", self.stream)
            return
        assert self._loop is not None
        future = self._loop.run_in_executor(None, self._dump_now, self.recorder)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _dump_now(self, recorder: _FlightRecorder) -> None:
        try:
            recorder.dump_file()
        except (OSError, CapsvcError) as exc:  # a full disk: said, and capture goes on
            self.failed += 1
            print_error(f"dump failed: {exc}", self.stream)

    async def finish(self) -> None:
        """Stop answering SIGUSR1 (it is ignored from here on) and wait for its dumps."""
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGUSR1)
            signal.signal(signal.SIGUSR1, _ignored)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def close(self) -> None:
        """Write an open trigger window's dump and, unless ``--no-dump-on-exit``, what is held.

        A failure to write is one line on standard error and counts in ``failed``.
        """
        self._exiting = True
        if self.recorder is None:
            return
        try:
            self.recorder.close()
        except (OSError, CapsvcError) as exc:
            self.failed += 1
            print_error(f"dump failed: {exc}", self.stream)

    def summary(self) -> str:
        """A line of what the recorder did: held, evicted, triggers and dumps."""
        if self.recorder is None:
            return "flight recorder: not started"
        s = self.recorder.stats()
        return (
            f"flight recorder: {s.packets} packets held ({s.bytes} bytes), {s.evicted} evicted, "
            f"{s.triggers} triggers, {s.dumps} dumps"
            + (f", {s.dump_errors + self.failed} failed" if s.dump_errors + self.failed else "")
        )


def _ignored(signum: int, frame: object) -> None:
    """SIGUSR1 once the capture is over: nothing more to dump (and no reason to die)."""


def _clock(ns: int) -> str:
    """A packet time for the dump line: local time of day with microseconds."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(secs)) + f".{frac // 1000:06d}"
