"""Building sinks from a description: the one place outputs are made from options.

IO module (it creates files, through ``capsvc._files``). ``SinkSpec`` is what the service's
``[[session.sinks]]`` tables, the command line's ``-w``/``-G``/``-C``/``-W``/``--stats`` and
``Session(output=..., text_output=...)`` all describe; ``open_sink`` turns one into a sink that
owns the file it opened (closing the sink closes the file), and ``stream_sink`` wraps a stream
the caller keeps. A ``recorder`` spec makes a ``FlightRecorder`` that writes its dumps below the
directory, its path the strftime(3) template of their names.

Two rules for the files: a write that fails (a full disk) cuts the file back to the end of the
last batch flushed whole (``capsvc._files.Checkpoint``), so it stays readable to its end; and
``keep=True`` (a session restarted by a reload) never truncates what a file holds: text, stats
and pcapng files are appended to (pcapng as a new section), a pcap file whose header is the one
the sink would write is appended to after its last complete record, and any other file is left
alone for a new one named ``NAME-1.EXT`` (the first such name free).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from .._errors import OptionError
from .._files import Checkpoint, Directory
from .._packet import LinkType, PacketBatch, Stats
from .._records import RecordBlock
from ..format._select import TextOptions
from ._base import Sink

__all__ = [
    "SINK_TYPES",
    "NullSink",
    "OwnedStream",
    "PacketBuffered",
    "SinkSpec",
    "open_sink",
    "open_sinks",
    "recorder_sink",
    "stream_sink",
]

#: The kinds of sink a spec can name.
SINK_TYPES = ("pcap", "pcapng", "text", "stats", "recorder")
#: Write buffer of the capture files capsvc opens.
_BUFFER = 1 << 20


@dataclass(frozen=True)
class SinkSpec:
    """One output of a session.

    Attributes:
        type: ``pcap``, ``pcapng``, ``text``, ``stats`` or ``recorder``.
        path: the file, relative to the directory it is opened in (a stats sink without one
            logs to standard error). With rotation by time it may hold strftime(3) fields (as
            tcpdump -G); every formatted name is checked to stay inside the directory. For a
            recorder, the template of its dumps' names (strftime(3), filled with the time of
            the trigger or request; ``.pcapng`` at the end makes pcapng dumps); "" means
            ``recorder-%Y%m%d-%H%M%S.pcap``.
        rotate_seconds: start a new file every this many seconds; 0 means never.
        rotate_mb: start a new file past this many megabytes (10**6 bytes); 0 means never.
        max_files: keep at most this many files (as tcpdump -W); 0 means no limit.
        verbose: text sinks: tcpdump -v style lines.
        ascii: text sinks: payload in ASCII.
        interval: stats sinks: seconds between lines (default 1.0).
        seconds: recorders: seconds of traffic held (packet time); default 60.
        max_bytes: recorders: bytes held at most (captured bytes plus 24 a packet); default
            64 MiB.
        trigger: recorders: a filter expression whose first match writes a dump ("": dumps
            only on request).
        after: recorders: seconds held after a trigger before its dump is written; default 5.
        holdoff: recorders: seconds after a trigger's dump during which matches are ignored;
            None means ``seconds``.
        dump_on_stop: recorders: write what is held when the sink is closed (its session
            stops).
        nanosecond: pcap sinks: nanosecond timestamps (the default; magic 0xa1b23c4d), or
            microseconds (False; tcpdump's default, ``--time-stamp-precision=micro``).
            pcapng sinks always keep nanoseconds (if_tsresol 9).
    """

    type: str
    path: str = ""
    rotate_seconds: float = 0.0
    rotate_mb: float = 0.0
    max_files: int = 0
    verbose: bool = False
    ascii: bool = False
    interval: float = 1.0
    seconds: float = 60.0
    max_bytes: int = 64 * 2**20
    trigger: str = ""
    after: float = 5.0
    holdoff: float | None = None
    dump_on_stop: bool = False
    nanosecond: bool = True

    @property
    def rotating(self) -> bool:
        """True for a pcap/pcapng sink that starts new files by time or size."""
        return bool(self.rotate_seconds or self.rotate_mb)


class NullSink:
    """A sink that keeps nothing (a session that only feeds live streams, or only counts)."""

    def write_batch(self, batch: PacketBatch) -> None:
        """Discard the batch."""

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to close."""


class PacketBuffered:
    """Writes a batch one packet at a time, flushing after each (``tcpdump -U``): a reader of
    the file or pipe has every packet as soon as it was written, not a batch later.

    Args:
        inner: the sink; closing this closes it.

    Attributes:
        inner: the wrapped sink (``bind_session`` reaches it, as ``OwnedStream``'s does).
    """

    def __init__(self, inner: Sink) -> None:
        self.inner = inner

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Pass the Session's counters on to the inner sink, when it reads them."""
        bind = getattr(self.inner, "bind_session", None)
        if bind is not None:
            bind(stats, linktype)

    def write_batch(self, batch: PacketBatch) -> int | None:
        """Write and flush each packet in turn; returns what the inner sink took."""
        for i in range(len(batch)):
            took = self.inner.write_batch(batch[i : i + 1])
            self.inner.flush()
            if took == 0:  # finished: the packets from this one on were not taken
                return i
        return None

    def flush(self) -> None:
        """Flush the inner sink."""
        self.inner.flush()

    def close(self) -> None:
        """Close the inner sink."""
        self.inner.close()

    def __repr__(self) -> str:
        return f"PacketBuffered({self.inner!r})"


class OwnedStream:
    """A sink writing to a stream it owns: closing the sink closes the stream too.

    A write or flush that fails cuts the file back to where the last successful flush left it
    (whole records) and sends whatever is still buffered to /dev/null; the error is raised on.
    The wrapper is transparent to the Session: ``bind_session`` reaches the inner sink (a
    stats sink reads the Session's counters through it).

    Attributes:
        inner: the sink doing the work.
        stream: the stream, closed after ``inner``.
        name: what the stream is (a path), for messages.
    """

    def __init__(self, inner: Sink, stream: IO[Any], name: str = "") -> None:
        self.inner = inner
        self.stream = stream
        self.name = name
        fd = _raw_fd(stream)
        self._checkpoint = Checkpoint(fd) if fd is not None else None

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Pass the Session's counters on to the inner sink, when it reads them."""
        bind = getattr(self.inner, "bind_session", None)
        if bind is not None:
            bind(stats, linktype)

    def write_batch(self, batch: PacketBatch) -> int | None:
        """Hand the batch to the inner sink; returns what it says it took."""
        try:
            return self.inner.write_batch(batch)
        except BaseException:
            self._abandon()
            raise

    def write_records(self, block: RecordBlock) -> None:
        """Hand a RecordBlock to the inner sink (as packets when it takes no records)."""
        try:
            write_records = getattr(self.inner, "write_records", None)
            if write_records is not None:
                write_records(block)
            else:
                self.inner.write_batch(block.packets())
        except BaseException:
            self._abandon()
            raise

    def flush(self) -> None:
        """Flush the inner sink; what is in the file is then whole."""
        try:
            self.inner.flush()
        except BaseException:
            self._abandon()
            raise
        if self._checkpoint is not None:
            self._checkpoint.mark()

    def _abandon(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.abandon()

    def close(self) -> None:
        """Close the inner sink, then the stream (even when the first fails)."""
        failed = self._checkpoint is not None and self._checkpoint.abandoned
        try:
            self.inner.close()
        except BaseException:
            self._abandon()
            if not failed:
                raise
        finally:
            try:
                self.stream.close()
            except OSError:
                if not failed:
                    raise

    def __repr__(self) -> str:
        return f"{type(self.inner).__name__}({self.name!r})"


def stream_sink(
    spec: SinkSpec,
    stream: IO[Any],
    linktype: LinkType,
    snaplen: int,
    *,
    text: TextOptions | None = None,
    linktypes: Mapping[int, int] | None = None,
) -> Sink:
    """A sink writing ``spec``'s kind of output to a stream the caller keeps open.

    Args:
        spec: the output (its path and rotation are ignored).
        stream: a binary stream for pcap/pcapng, a text stream for text and stats.
        linktype: the link type of the frames.
        snaplen: the snapshot length written in file headers.
        text: text sinks: the format and its options (``capsvc.format._select.TextOptions``:
            tcpdump's lines, JSON, tcpdump's flags); None writes the netbird-style line with
            ``spec.verbose`` and ``spec.ascii``.
        linktypes: ifindex -> link type of interfaces with their own (a pcapng source's
            ``linktypes``): pcapng and text keep each, pcap refuses a second (OptionError from
            its write); stats count every frame as one of ``linktype``.

    Raises:
        OptionError: an unknown sink type.
    """
    kind = spec.type
    if kind == "pcap":
        from ._pcap import PcapWriter

        return PcapWriter(
            stream, snaplen, linktype, nanosecond=spec.nanosecond, linktypes=linktypes
        )
    if kind == "pcapng":
        from ._pcapng import PcapNgWriter

        return PcapNgWriter(stream, snaplen, linktype, linktypes=linktypes)
    if kind == "text":
        from ._text import TextWriter

        return TextWriter(
            stream,
            spec.verbose,
            spec.ascii,
            linktype=linktype,
            options=text,
            linktypes=linktypes,
        )
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
    keep: bool = False,
    claim: Callable[[str], None] | None = None,
    linktypes: Mapping[int, int] | None = None,
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
        keep: keep what the file holds (see the module docstring) instead of truncating it.
        claim: a rotating sink calls it with each name it formats before creating the file;
            it raises (a ConflictError) when the name belongs to someone else.
        linktypes: as for ``stream_sink``.

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
            nanosecond=spec.nanosecond,
            on_finished=on_finished,
            keep=keep,
            claim=claim,
            linktypes=linktypes,
        )
    if spec.type == "stats" and not spec.path:
        return stream_sink(spec, sys.stderr, linktype, snaplen)
    if spec.type == "recorder":
        return recorder_sink(spec, directory, linktype, snaplen)
    if spec.type not in SINK_TYPES:
        raise OptionError(f"unknown sink type {spec.type!r} (one of: {', '.join(SINK_TYPES)})")
    text = spec.type in ("text", "stats")
    name, resume = spec.path, False
    if keep and spec.type == "pcap":
        header = pcap_header_of(snaplen, linktype, nanosecond=spec.nanosecond)
        name, resume = kept_pcap(directory, spec.path, header)
    stream = open_stream(directory, name, text=text, append=keep)
    try:
        if resume:
            from ._pcap import PcapWriter

            sink: Sink = PcapWriter(
                stream,
                snaplen,
                linktype,
                nanosecond=spec.nanosecond,
                header_written=True,
                linktypes=linktypes,
            )
        else:
            sink = stream_sink(spec, stream, linktype, snaplen, linktypes=linktypes)
        return OwnedStream(sink, stream, os.path.join(directory.path, name))
    except BaseException:
        stream.close()
        raise


def recorder_sink(spec: SinkSpec, directory: Directory, linktype: LinkType, snaplen: int) -> Sink:
    """The ``FlightRecorder`` a ``recorder`` spec describes, dumping below ``directory`` (whose
    file mode and group its dumps get).

    Raises:
        OptionError: a bound is invalid.
        FilterError: the trigger is malformed or cannot be expressed for ``linktype``.
    """
    from ._recorder import FlightRecorder

    return FlightRecorder(
        spec.seconds,
        spec.max_bytes,
        trigger=spec.trigger or None,
        after=spec.after,
        holdoff=spec.holdoff,
        directory=directory,
        name=spec.path,
        pcapng=spec.path.endswith(".pcapng"),
        linktype=linktype,
        snaplen=snaplen,
        dump_on_close=spec.dump_on_stop,
    )


def pcap_header_of(snaplen: int, linktype: LinkType, *, nanosecond: bool = True) -> bytes:
    """The header the pcap sinks write (nanosecond timestamps unless told otherwise)."""
    from ._pcap import pcap_header

    return pcap_header(snaplen, linktype, nanosecond=nanosecond)


def kept_pcap(directory: Directory, name: str, header: bytes) -> tuple[str, bool]:
    """Where a pcap sink that keeps what is there writes: ``(name, resume)``.

    A missing or empty file is written from its start (``resume`` False). A file with this very
    header is cut back to its last complete record and appended to (``resume`` True: the header
    is there). Anything else is left alone, and the first free ``STEM-N.EXT`` is used instead.
    """
    try:
        fd = directory.open_read(name)
    except FileNotFoundError:
        return name, False
    try:
        end = _last_record_end(fd, header)
    finally:
        os.close(fd)
    if end == 0:
        return name, False
    if end > 0:
        fd = directory.create(name, append=True)
        try:
            os.ftruncate(fd, end)
        finally:
            os.close(fd)
        return name, True
    stem, ext = os.path.splitext(name)
    for n in itertools.count(1):
        other = f"{stem}-{n}{ext}"
        try:
            directory.stat(other)
        except FileNotFoundError:
            return other, False
    raise AssertionError("unreachable")


def _last_record_end(fd: int, header: bytes) -> int:
    """0 for an empty file, -1 for one without ``header``, else the offset after its last
    complete record (records are walked by their headers, reading in large chunks)."""
    from ._pcap import PCAP_RECORD

    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    if os.pread(fd, len(header), 0) != header:
        return -1
    pos = len(header)
    record = PCAP_RECORD.size
    while pos + record <= size:
        incl = PCAP_RECORD.unpack(os.pread(fd, record, pos))[2]
        if pos + record + incl > size:
            break
        pos += record + incl
    return pos


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
    *,
    keep: bool = False,
    claim: Callable[[str], None] | None = None,
) -> list[Sink]:
    """Open several sinks (``keep`` and ``claim`` as for ``open_sink``); when one fails, the
    ones already opened are closed.

    Raises:
        what ``open_sink`` raises.
    """
    sinks: list[Sink] = []
    try:
        for spec in specs:
            sinks.append(open_sink(spec, directory, linktype, snaplen, keep=keep, claim=claim))
    except BaseException:
        for opened in sinks:
            with contextlib.suppress(OSError):
                opened.close()
        raise
    return sinks


def _raw_fd(stream: IO[Any]) -> int | None:
    """The descriptor under a buffered (and maybe text) stream, None for one without."""
    inner: Any = getattr(stream, "buffer", stream)
    raw = getattr(inner, "raw", inner)
    try:
        fd: int = raw.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd
