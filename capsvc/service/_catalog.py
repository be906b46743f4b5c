"""What the output directory holds: its regular files, summarised with capsvc's capture reader.

IO module. The rules it keeps: a file is reached only through ``capsvc._files.Directory`` (no
symbolic link followed, no FIFO or device opened, nothing outside the directory); each file is
read once, its summary kept by (device, inode), so that a later look reads only the bytes a
growing capture gained since; one look spends at most ``budget`` seconds reading, and a file it
did not finish says so (``complete`` false) and is read further at the next look. A file open
for writing is read up to its current size and never marked finished, since its last record may
still be on its way.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import stat
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .._errors import CapsvcError, CaptureFileError
from .._files import Directory
from .._packet import LinkType, PacketBatch
from ..sources.capfile._decode import (
    MAGIC_MICRO,
    MAGIC_MICRO_SWAPPED,
    MAGIC_NANO,
    MAGIC_NANO_SWAPPED,
    CaptureDecoder,
)
from ..sources.capfile._pcapng import PCAPNG_SHB_TYPE

__all__ = [
    "SCAN_BUDGET",
    "Catalog",
    "FileSummary",
    "capture_format",
    "open_for_writing",
    "service_pids",
]

#: Seconds one look at the directory spends reading files at most (the rest is read later).
SCAN_BUDGET = 2.0
#: Bytes per read while summarising a file.
CHUNK = 1 << 18

_PCAP_MAGICS = frozenset((MAGIC_MICRO, MAGIC_NANO, MAGIC_MICRO_SWAPPED, MAGIC_NANO_SWAPPED))


def capture_format(head: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"`` or None, from a file's first four bytes."""
    if len(head) < 4:
        return None
    magic = struct.unpack_from("<I", head)[0]
    if magic == PCAPNG_SHB_TYPE:
        return "pcapng"
    return "pcap" if magic in _PCAP_MAGICS else None


class FileSummary(NamedTuple):
    """One regular file below the output directory.

    Attributes:
        name: its name relative to the directory (``/`` between components).
        size: bytes, when it was looked at.
        modified: modification time (seconds since the epoch).
        mode: permission bits (``0o600``).
        uid: owner.
        gid: group.
        device: ``st_dev`` (with ``inode``, what a process holding it open is matched by).
        inode: ``st_ino``.
        format: ``"pcap"`` or ``"pcapng"``; None for anything else (or an empty file).
        linktype: the link type (pcapng: of the first interface); None without a header.
        packets: records read so far.
        first_ns: the earliest packet time (nanoseconds since the epoch), None without packets.
        last_ns: the latest packet time, None without packets.
        complete: True when every byte there was when it was looked at has been read.
        error: why it is not a capture file or where it is corrupt, else None.
    """

    name: str
    size: int
    modified: float
    mode: int
    uid: int
    gid: int
    device: int
    inode: int
    format: str | None
    linktype: LinkType | None
    packets: int
    first_ns: int | None
    last_ns: int | None
    complete: bool
    error: str | None


@dataclass
class _Entry:
    """What has been read of one file (by inode), and the decoder to read the rest with."""

    key: tuple[int, int]
    decoder: CaptureDecoder | None
    offset: int = 0
    format: str | None = None
    linktype: LinkType | None = None
    packets: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    error: str | None = None
    finished: bool = False
    #: (size, mtime_ns) when it was finished: a change means it was rewritten in place.
    finished_as: tuple[int, int] = (-1, -1)

    def take(self, batch: PacketBatch) -> None:
        stamps = [p[0] for p in batch]
        lo, hi = min(stamps), max(stamps)
        self.packets += len(batch)
        self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
        self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)

    def drain(self) -> None:
        """Take every complete packet the decoder holds; a corrupt file ends the reading."""
        decoder = self.decoder
        assert decoder is not None
        try:
            while batch := decoder.next_batch(fill=False):
                self.take(batch)
        except CaptureFileError as exc:
            self.error = exc.reason
            self.finish()
            return
        if decoder.ready and self.format is not None and self.linktype is None:
            self.linktype = LinkType(decoder.linktype)
        if decoder.finished:
            self.finish()

    def finish(self) -> None:
        self.finished = True
        self.decoder = None


class Catalog:
    """Summaries of the files below a directory, kept between looks (thread-safe).

    Use ``scan`` from a worker thread: it reads files.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def scan(
        self,
        directory: Directory,
        *,
        writing: set[tuple[int, int]] | None = None,
        budget: float = SCAN_BUDGET,
    ) -> list[FileSummary]:
        """Summarise every regular file below ``directory`` (sorted by name).

        Args:
            directory: the output directory.
            writing: (device, inode) of the files some process is writing now: read up to
                their current size and left unfinished. None: none.
            budget: seconds of reading at most; files not reached keep ``complete`` false.

        Returns:
            One summary per regular file (links, FIFOs and devices are left out). A file that
            vanished between the listing and its ``stat`` is left out too.
        """
        deadline = time.monotonic() + budget
        busy = writing or set()
        with self._lock:
            out: list[FileSummary] = []
            names = directory.walk()
            for name in names:
                try:
                    info = directory.stat(name)
                except (OSError, CapsvcError):
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                out.append(self._summary(directory, name, info, busy, deadline))
            for gone in self._entries.keys() - set(names):
                del self._entries[gone]
            return out

    def forget(self, name: str) -> None:
        """Drop what is known of ``name`` (after it was deleted)."""
        with self._lock:
            self._entries.pop(name, None)

    def _summary(
        self,
        directory: Directory,
        name: str,
        info: os.stat_result,
        busy: set[tuple[int, int]],
        deadline: float,
    ) -> FileSummary:
        key = (info.st_dev, info.st_ino)
        growing = key in busy
        entry = self._entries.get(name)
        stale = entry is None or entry.key != key or info.st_size < entry.offset
        if entry is not None and entry.finished:
            stale = stale or entry.finished_as != (info.st_size, info.st_mtime_ns)
        if stale or entry is None:
            entry = _Entry(key, CaptureDecoder(name, batch_size=4096))
            self._entries[name] = entry
        if not entry.finished and time.monotonic() < deadline:
            self._read(directory, name, entry, info, growing, deadline)
        complete = entry.finished or (growing and entry.offset >= info.st_size)
        return FileSummary(
            name=name,
            size=info.st_size,
            modified=info.st_mtime,
            mode=stat.S_IMODE(info.st_mode),
            uid=info.st_uid,
            gid=info.st_gid,
            device=info.st_dev,
            inode=info.st_ino,
            format=entry.format,
            linktype=entry.linktype,
            packets=entry.packets,
            first_ns=entry.first_ns,
            last_ns=entry.last_ns,
            complete=complete,
            error=entry.error,
        )

    def _read(
        self,
        directory: Directory,
        name: str,
        entry: _Entry,
        info: os.stat_result,
        growing: bool,
        deadline: float,
    ) -> None:
        """Feed the decoder what the file gained, up to its size at ``info``."""
        try:
            fd = directory.open_read(name)
        except (OSError, CapsvcError) as exc:  # replaced by a FIFO or a link meanwhile
            entry.error = str(exc)
            return
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != entry.key:
                return  # replaced since the listing: the next look starts it afresh
            decoder = entry.decoder
            assert decoder is not None
            while entry.offset < info.st_size and not entry.finished:
                chunk = os.pread(fd, min(CHUNK, info.st_size - entry.offset), entry.offset)
                if not chunk:
                    break  # truncated meanwhile
                if entry.offset == 0:
                    entry.format = capture_format(chunk)
                entry.offset += len(chunk)
                decoder.feed(chunk)
                entry.drain()
                if time.monotonic() >= deadline:
                    return
            if not growing and not entry.finished and entry.offset >= info.st_size:
                decoder.feed(b"")  # the end: a header-only file is a capture without packets
                entry.drain()
                entry.finished_as = (info.st_size, info.st_mtime_ns)
            elif entry.finished:
                entry.finished_as = (info.st_size, info.st_mtime_ns)
        finally:
            os.close(fd)


def open_for_writing(pids: Iterable[int]) -> set[tuple[int, int]]:
    """(device, inode) of every regular file the processes ``pids`` hold open for writing.

    Read from ``/proc/PID/fdinfo`` (the open flags) and ``/proc/PID/fd`` (the file): what the
    kernel says is open, whichever sink or worker opened it. A process or descriptor that
    goes away meanwhile is skipped.
    """
    found: set[tuple[int, int]] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
                    flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
                if flags & os.O_ACCMODE == os.O_RDONLY:
                    continue
                info = os.stat(f"/proc/{pid}/fd/{fd}")
            except (OSError, StopIteration, ValueError, IndexError):
                continue
            if stat.S_ISREG(info.st_mode):
                found.add((info.st_dev, info.st_ino))
    return found


def service_pids() -> list[int]:
    """This process and its live child processes (a session's workers among them)."""
    pids = [os.getpid()]
    with contextlib.suppress(OSError):
        pids += [p.pid for p in multiprocessing.active_children() if p.pid is not None]
    return pids
