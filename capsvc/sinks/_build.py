"""Building sinks from a description: the one place outputs are made from options.

IO module (it creates files, through ``capsvc._files``). ``SinkSpec`` is what the service's
``[[session.sinks]]`` tables, the command line's ``-w``/``-G``/``-C``/``-W``/``--stats`` and
``Session(output=..., text_output=...)`` all describe; ``open_sink`` turns one into a sink that
owns the file it opened (closing the sink closes the file), and ``stream_sink`` wraps a stream
the caller keeps.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from .._errors import OptionError
from .._files import Directory
from .._packet import LinkType, PacketBatch
from ._base import Sink

__all__ = ["SINK_TYPES", "OwnedStream", "SinkSpec", "open_sink", "open_sinks", "stream_sink"]

#: The kinds of sink a spec can name.
SINK_TYPES = ("pcap", "pcapng", "text", "stats")
#: Write buffer of the capture files capsvc opens.
_BUFFER = 1 << 20


@dataclass(frozen=True)
class SinkSpec:
    """One output of a session.

    Attributes:
        type: ``pcap``, ``pcapng``, ``text`` or ``stats``.
        path: the file, relative to the directory it is opened in (a stats sink without one
            logs to standard error). With rotation by time it may hold strftime(3) fields (as
            tcpdump -G); every formatted name is checked to stay inside the directory.
        rotate_seconds: start a new file every this many seconds; 0 means never.
        rotate_mb: start a new file past this many megabytes (10**6 bytes); 0 means never.
        max_files: keep at most this many files (as tcpdump -W); 0 means no limit.
        verbose: text sinks: tcpdump -v style lines.
        ascii: text sinks: payload in ASCII.
        interval: stats sinks: seconds between lines (default 1.0).
    """

    type: str
    path: str = ""
    rotate_seconds: float = 0.0
    rotate_mb: float = 0.0
    max_files: int = 0
    verbose: bool = False
    ascii: bool = False
    interval: float = 1.0

    @property
    def rotating(self) -> bool:
        """True for a pcap/pcapng sink that starts new files by time or size."""
        return bool(self.rotate_seconds or self.rotate_mb)


class OwnedStream:
    """A sink writing to a stream it owns: closing the sink closes the stream too.

    Attributes:
        inner: the sink doing the work.
        stream: the stream, closed after ``inner``.
        name: what the stream is (a path), for messages.
    """

    def __init__(self, inner: Sink, stream: IO[Any], name: str = "") -> None:
        self.inner = inner
        self.stream = stream
        self.name = name

    def write_batch(self, batch: PacketBatch) -> None:
        """Hand the batch to the inner sink."""
        self.inner.write_batch(batch)

    def flush(self) -> None:
        """Flush the inner sink."""
        self.inner.flush()

    def close(self) -> None:
        """Close the inner sink, then the stream (even when the first fails)."""
        try:
            self.inner.close()
        finally:
            self.stream.close()

    def __repr__(self) -> str:
        return f"{type(self.inner).__name__}({self.name!r})"


def stream_sink(
    spec: SinkSpec,
    stream: IO[Any],
    linktype: LinkType,
    snaplen: int,
) -> Sink:
    """A sink writing ``spec``'s kind of output to a stream the caller keeps open.

    Args:
        spec: the output (its path and rotation are ignored).
        stream: a binary stream for pcap/pcapng, a text stream for text and stats.
        linktype: the link type of the frames.
        snaplen: the snapshot length written in file headers.

    Raises:
        OptionError: an unknown sink type.
    """
    kind = spec.type
    if kind == "pcap":
        from ._pcap import PcapWriter

        return PcapWriter(stream, snaplen, linktype, nanosecond=True)
    if kind == "pcapng":
        from ._pcapng import PcapNgWriter

        return PcapNgWriter(stream, snaplen, linktype)
    if kind == "text":
        from ._text import TextWriter

        return TextWriter(stream, spec.verbose, spec.ascii, linktype=linktype)
    if kind == "stats":
        from ._stats import StatsSink

        return StatsSink(stream, spec.interval, linktype=linktype)
    raise OptionError(f"unknown sink type {kind!r} (one of: {', '.join(SINK_TYPES)})")


def open_sink(
    spec: SinkSpec,
    directory: Directory,
    linktype: LinkType,
    snaplen: int,
    *,
    on_finished: Callable[[], None] | None = None,
) -> Sink:
    """Open the file ``spec`` names below ``directory`` and return the sink writing it.

    A stats sink without a path writes to standard error (which it does not close).

    Args:
        spec: the output.
        directory: where its path is created (``capsvc._files.Directory`` rules: no link
            followed, regular files only, mode 0600 unless the directory says otherwise).
        linktype: the link type of the frames.
        snaplen: the snapshot length written in file headers.
        on_finished: a rotating sink with ``max_files`` and ``rotate_seconds`` calls it (from
            the writer thread) once its last file is done.

    Raises:
        PathOutsideError: the path leaves the directory or is no regular file.
        OptionError: an unknown sink type, or a rotation option on a text or stats sink.
        OSError: the file cannot be created.
    """
    if spec.rotating or spec.max_files:
        if spec.type not in ("pcap", "pcapng"):
            raise OptionError(f"a {spec.type} sink cannot rotate; only pcap and pcapng do")
        from ._rotate import RotatingWriter

        return RotatingWriter(
            spec.path,
            directory=directory,
            linktype=linktype,
            snaplen=snaplen,
            pcapng=spec.type == "pcapng",
            rotate_seconds=spec.rotate_seconds,
            rotate_bytes=int(spec.rotate_mb * 1_000_000),
            max_files=spec.max_files,
            on_finished=on_finished,
        )
    if spec.type == "stats" and not spec.path:
        return stream_sink(spec, sys.stderr, linktype, snaplen)
    if spec.type not in SINK_TYPES:
        raise OptionError(f"unknown sink type {spec.type!r} (one of: {', '.join(SINK_TYPES)})")
    stream = open_stream(directory, spec.path, text=spec.type in ("text", "stats"))
    try:
        return OwnedStream(
            stream_sink(spec, stream, linktype, snaplen),
            stream,
            os.path.join(directory.path, spec.path),
        )
    except BaseException:
        stream.close()
        raise


def open_stream(
    directory: Directory, relative: str, *, text: bool, append: bool = False
) -> IO[Any]:
    """Create a file below ``directory`` and return it as a buffered binary or text stream
    (UTF-8, line buffered)."""
    fd = directory.create(relative, append=append)
    raw = io.FileIO(fd, "ab" if append else "wb")
    if text:
        return io.TextIOWrapper(
            io.BufferedWriter(raw, _BUFFER), encoding="utf-8", line_buffering=True
        )
    return io.BufferedWriter(raw, _BUFFER)


def open_sinks(
    specs: Iterable[SinkSpec],
    directory: Directory,
    linktype: LinkType,
    snaplen: int,
) -> list[Sink]:
    """Open several sinks; when one fails, the ones already opened are closed.

    Raises:
        what ``open_sink`` raises.
    """
    sinks: list[Sink] = []
    try:
        for spec in specs:
            sinks.append(open_sink(spec, directory, linktype, snaplen))
    except BaseException:
        for opened in sinks:
            with contextlib.suppress(OSError):
                opened.close()
        raise
    return sinks
