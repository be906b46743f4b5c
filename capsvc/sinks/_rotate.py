"""A pcap/pcapng sink that rotates its output files as ``tcpdump -w -G -C -W`` does.

The naming rule is a pure function (``rotated_name``); the writer opens and closes the files.
tcpdump's rules, kept here:

- ``-G SECONDS``: the file name is passed through strftime(3) with the local time the file's
  period started; a packet ``SECONDS`` or more after that start opens a new file (named from the
  packet's time). With ``-W N`` the capture stops after N such files.
- ``-C BYTES``: before a packet is written, a file already larger than BYTES is closed and the
  next one opened, named with a counter appended (``out.pcap1``, ``out.pcap2``, ...). With
  ``-W N`` the counter wraps after N files (a ring: ``out.pcap0`` .. ``out.pcapN-1``, zero padded
  to the width of N-1).
- Both: a new period resets the counter.

Every name is formatted first and then created below the directory the writer was given, by
``capsvc._files.Directory`` (no symbolic link followed, regular files only, 0600): a strftime
field that yields ``/`` makes subdirectories inside it, never a path outside. A file whose write
fails is cut back to its last whole batch (``capsvc._files.Checkpoint``).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Mapping
from typing import IO

from .._errors import OptionError
from .._files import Checkpoint, Directory
from .._packet import SNAPLEN_DEFAULT, LinkType, Packet, PacketBatch
from ._pcap import PCAP_RECORD, PcapWriter
from ._pcapng import PcapNgWriter

__all__ = ["RotatingWriter", "rotated_name", "split_template"]

_BUFFER = 1 << 20
#: The longest period or size a rotation can have: beyond it (about 30 years, or 10**15 bytes)
#: a file simply never rotates, and no deadline computation can overflow.
MAX_ROTATE_SECONDS = 1e9
MAX_ROTATE_BYTES = 10**15
# An upper bound of what a pcapng EPB adds to the captured bytes (header, padding, options).
_PCAPNG_OVERHEAD = 64


def _counter_width(max_files: int) -> int:
    """Digits tcpdump pads the counter to: those of ``max_files - 1`` (0 without a limit)."""
    return len(str(max_files - 1)) if max_files > 1 else 0


def rotated_name(template: str, period_start: float | None, counter: int, width: int) -> str:
    """The file name tcpdump would use.

    Args:
        template: the ``-w`` name.
        period_start: the start of the ``-G`` period (seconds since the epoch) to format the
            template with strftime in local time; None leaves the template as it is.
        counter: the ``-C`` file counter; appended unless both it and ``width`` are 0.
        width: zero padding of the counter (digits of ``-W N`` minus one).

    Returns:
        The name.
    """
    name = template
    if period_start is not None:
        name = time.strftime(template, time.localtime(period_start))
    if counter == 0 and width == 0:
        return name
    return f"{name}{counter:0{width}d}"


def split_template(template: str) -> tuple[str, str]:
    """Split a ``-w`` name into the directory that holds every file and the name below it.

    The directory is the longest leading part without strftime fields (``caps/%Y/x.pcap`` ->
    ``("caps", "%Y/x.pcap")``; ``out.pcap`` -> ``(".", "out.pcap")``).
    """
    head, _, name = template.rpartition("/")
    parts = head.split("/") if head else []
    fixed: list[str] = []
    for part in parts:
        if "%" in part:
            break
        fixed.append(part)
    rest = [*parts[len(fixed) :], name]
    if template.startswith("/") and not fixed[1:]:
        return "/", "/".join(rest)
    return ("/".join(fixed) or "."), "/".join(rest)


class RotatingWriter:
    """Writes pcap or pcapng files, starting new ones by time and size like tcpdump.

    The first file is created at once (named from the current time when ``rotate_seconds`` is
    set); rotations are decided per packet by its timestamp and the file's size.

    Args:
        path_template: the file name; with ``rotate_seconds`` a strftime(3) format. Relative to
            ``directory`` when one is given, else split by ``split_template``.
        directory: where every file is created (None: the template's own directory). The
            writer keeps a descriptor of its own (``Directory.dup``) until it is closed.
        linktype: the link type of every frame.
        snaplen: snapshot length in the headers; 0 means 262144.
        pcapng: write pcapng instead of pcap.
        rotate_seconds: start a new file every this many seconds (``-G``); 0 never.
        rotate_bytes: start a new file once one is larger than this (``-C``, in bytes); 0 never.
        max_files: ``-W``: with ``rotate_bytes`` only, the number of files in the ring; with
            ``rotate_seconds``, the number of files after which writing stops and ``finished``
            is set. 0: no limit.
        nanosecond: pcap with nanosecond timestamps (default True).
        on_finished: called once, from the thread writing, when ``max_files`` ends the writing.
        keep: keep what the first file holds (``capsvc.sinks._build.open_sink``'s ``keep``).
        claim: called with every formatted name before its file is created; raises when the
            name is someone else's (the service's one-owner-per-path rule).
        linktypes: ifindex -> link type of interfaces with their own (``PcapWriter`` and
            ``PcapNgWriter``'s ``linktypes``): pcapng files keep each, pcap refuses a second.

    Attributes:
        files: every file opened so far (full paths), in order (a ring's names repeat).
        finished: True once ``max_files`` periods are done; later packets are ignored.

    Raises:
        OptionError: a negative size, period or file count.
        PathOutsideError: a formatted name leaves the directory or is no regular file.
        OSError: the first file cannot be created.
    """

    def __init__(
        self,
        path_template: str | os.PathLike[str],
        *,
        directory: Directory | None = None,
        linktype: LinkType | int,
        snaplen: int = 0,
        pcapng: bool = False,
        rotate_seconds: float = 0,
        rotate_bytes: int = 0,
        max_files: int = 0,
        nanosecond: bool = True,
        on_finished: Callable[[], None] | None = None,
        keep: bool = False,
        claim: Callable[[str], None] | None = None,
        linktypes: Mapping[int, int] | None = None,
    ) -> None:
        if rotate_seconds < 0 or rotate_bytes < 0 or max_files < 0:
            raise OptionError("rotate_seconds, rotate_bytes and max_files must not be negative")
        if not rotate_seconds <= MAX_ROTATE_SECONDS or not rotate_bytes <= MAX_ROTATE_BYTES:
            raise OptionError(
                f"rotate_seconds must be at most {MAX_ROTATE_SECONDS:g} and rotate_bytes at "
                f"most {MAX_ROTATE_BYTES:g}"
            )
        template = os.fspath(path_template)
        if directory is None:
            where, template = split_template(template)
            directory = Directory(where)
        else:
            directory = directory.dup()
        self.directory = directory
        self.template = template
        self.linktype = LinkType(linktype)
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        self.pcapng = pcapng
        self.rotate_seconds = rotate_seconds
        self.rotate_bytes = rotate_bytes
        self.max_files = max_files
        self.nanosecond = nanosecond
        self.on_finished = on_finished
        self.claim = claim
        self.linktypes = linktypes
        self.files: list[str] = []
        self.finished = False
        self._width = _counter_width(max_files) if rotate_bytes else 0
        self._periods = 0
        self._counter = 0
        self._period_start = float(int(time.time()))
        self._deadline_ns = self._deadline(self._period_start)
        self._stream: IO[bytes] | None = None
        self._writer: PcapWriter | PcapNgWriter | None = None
        self._checkpoint: Checkpoint | None = None
        self._size = 0
        try:
            first = rotated_name(self.template, self._start_or_none(), 0, self._width)
            self._open(first, keep=keep)
        except BaseException:
            directory.close()
            raise

    def _start_or_none(self) -> float | None:
        return self._period_start if self.rotate_seconds else None

    def _deadline(self, start: float) -> int:
        if not self.rotate_seconds:
            return 1 << 126
        return int(start * 1_000_000_000) + int(self.rotate_seconds * 1_000_000_000)

    def _open(self, name: str, *, keep: bool = False) -> None:
        resume = False
        if keep and not self.pcapng:
            from ._build import kept_pcap
            from ._pcap import pcap_header

            header = pcap_header(self.snaplen, self.linktype, nanosecond=self.nanosecond)
            name, resume = kept_pcap(self.directory, name, header)
        if self.claim is not None:
            self.claim(name)
        fd = self.directory.create(name, append=keep)
        stream = io.BufferedWriter(io.FileIO(fd, "ab" if keep else "wb"), _BUFFER)
        self._stream = stream
        self._checkpoint = Checkpoint(fd)
        self.files.append(os.path.join(self.directory.path, name))
        if self.pcapng:
            self._writer = PcapNgWriter(
                stream, self.snaplen, self.linktype, linktypes=self.linktypes
            )
        else:
            writer = PcapWriter(
                stream,
                self.snaplen,
                self.linktype,
                nanosecond=self.nanosecond,
                header_written=resume,
                linktypes=self.linktypes,
            )
            writer.write_header()
            self._writer = writer
        self._size = stream.tell()

    def _close_current(self) -> None:
        stream, self._stream, self._writer = self._stream, None, None
        checkpoint, self._checkpoint = self._checkpoint, None
        if stream is None:
            return
        # Flushed before it is closed: a flush that fails is cut back while the descriptor is
        # still the file's (once closed, its number may already be another file's).
        try:
            stream.flush()
        except BaseException:
            reported = checkpoint is None or checkpoint.abandoned
            if checkpoint is not None:
                checkpoint.abandon()  # cut back, unless it was already (idempotent)
            with contextlib.suppress(OSError):
                stream.close()
            if reported:
                return  # failed before: its error was raised then
            raise
        stream.close()

    def _abandon(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.abandon()

    def _rotate(self, packet: Packet) -> None:
        """Close the current file and open the next one for ``packet`` (or finish)."""
        period_start = self._period_start
        if packet[0] >= self._deadline_ns:
            self._periods += 1
            if self.max_files and self._periods >= self.max_files:
                self._close_current()
                self.finished = True
                if self.on_finished is not None:
                    self.on_finished()
                return
            period_start = float(packet[0] // 1_000_000_000)
            self._period_start = period_start
            self._deadline_ns = self._deadline(period_start)
            self._counter = 0
            name = rotated_name(self.template, self._start_or_none(), 0, 0)
        else:
            self._counter += 1
            if self.max_files and not self.rotate_seconds and self._counter >= self.max_files:
                self._counter = 0
            name = rotated_name(self.template, self._start_or_none(), self._counter, self._width)
        self._close_current()
        self._open(name)

    def _bound(self, packet: Packet) -> int:
        caplen = min(len(packet[1]), self.snaplen)
        if self.pcapng:
            return caplen + _PCAPNG_OVERHEAD
        return PCAP_RECORD.size + caplen

    def write_batch(self, batch: PacketBatch) -> int | None:
        """Write a batch, splitting it where a file must end.

        Returns:
            None when every packet was written; once ``finished``, how many were (the packet
            that would have opened a file past ``max_files``, and those after it, are not).

        Raises:
            OSError: a file cannot be written or the next one created (the file is then cut
                back to its last whole batch).
        """
        try:
            return self._write_batch(batch)
        except BaseException:
            self._abandon()
            raise

    def _write_batch(self, batch: PacketBatch) -> int | None:
        limit = self.rotate_bytes
        i, n = 0, len(batch)
        if self.finished:
            return 0
        while i < n:
            if self.finished:
                return i
            first = batch[i]
            if first[0] >= self._deadline_ns or (limit and self._size > limit):
                self._rotate(first)
                continue
            deadline = self._deadline_ns
            estimate = self._size + self._bound(first)
            j = i + 1
            while j < n:
                packet = batch[j]
                if packet[0] >= deadline or (limit and estimate > limit):
                    break
                estimate += self._bound(packet)
                j += 1
            writer, stream = self._writer, self._stream
            assert writer is not None and stream is not None
            writer.write_batch(batch[i:j] if i or j < n else batch)
            self._size = estimate if not self.pcapng else stream.tell()
            i = j
        return None

    def flush(self) -> None:
        """Flush the current file; what it holds is then whole."""
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except BaseException:
            self._abandon()
            raise
        if self._checkpoint is not None:
            self._checkpoint.mark()

    def close(self) -> None:
        """Flush and close the current file and the writer's directory descriptor. Idempotent."""
        try:
            self._close_current()
        finally:
            self.directory.close()
