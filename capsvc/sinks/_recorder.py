"""The flight recorder: the last seconds of traffic in bounded memory, written out on demand or
when a trigger packet arrives.

A Session sink. Packets go into a ``_recbuf.RecordRing`` (bounded by ``max_bytes`` and by
``seconds`` of packet time, oldest out first, every eviction counted). Nothing is written until:

- ``dump()`` / ``dump_file()`` is called, from any thread: what is held is written while capture
  goes on (the ring is viewed under a lock held only to look; appends continue meanwhile);
- a packet matches ``trigger``: the recorder then holds the ``seconds`` before that packet and
  ``after`` seconds more (packet time), writes them to one file named with the trigger's time
  below ``directory``, and ignores further matches for ``holdoff`` seconds, so a storm makes one
  file. Each dump is counted and logged.

When the after-window ends: at the first packet later than it, which is not held in the dump.
When traffic stops before that, a flush (the Session's writer flushes every 0.25 s when idle)
ends it once the time since the last packet arrived covers the rest of the window, judged by a
monotonic clock from the last packet's time; ``close()`` ends it at once. A trigger dump runs on
the Session's writer thread and a failure to write it is counted and logged (``dump_errors``),
never raised: capture goes on.
"""

from __future__ import annotations

import enum
import io
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import IO, NamedTuple

from .._errors import CapsvcError, OptionError
from .._files import Directory
from .._packet import SNAPLEN_DEFAULT, LinkType, Matcher, PacketBatch, Stats
from ._pcap import PcapWriter
from ._pcapng import PcapNgWriter
from ._recbuf import RECORD, RecordRing, RingView

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SECONDS",
    "DumpInfo",
    "FlightRecorder",
    "RecorderState",
    "RecorderStats",
]

log = logging.getLogger("capsvc")

#: Seconds held when no length is given.
DEFAULT_SECONDS = 60.0
#: Bytes held at most when no size is given (64 MiB).
DEFAULT_MAX_BYTES = 64 * 2**20
#: Seconds kept after a trigger when none is given.
DEFAULT_AFTER = 5.0
#: Bytes charged per held packet besides its captured bytes (the record header).
PACKET_OVERHEAD = RECORD.size
_NS = 1_000_000_000
_UNIQUE_TRIES = 1000


class RecorderState(enum.Enum):
    """Where a flight recorder is in its trigger cycle."""

    #: Holding the last ``seconds``; a trigger match would open a window.
    RECORDING = "recording"
    #: A trigger matched; holding on until ``after`` seconds past it.
    AFTER = "after"
    #: A trigger dump was written; matches are ignored until ``holdoff`` seconds past it.
    HOLDOFF = "holdoff"


class DumpInfo(NamedTuple):
    """What a dump wrote.

    Attributes:
        name: the file written (a path below the directory for ``dump_file`` and trigger
            dumps, the path given to ``dump``); empty for a stream.
        packets: packets written.
        bytes: their captured bytes.
        first_ns: the first packet's time; None when no packet was written.
        last_ns: the last packet's time; None when none.
        trigger_ns: the trigger packet's time for a trigger dump; None otherwise.
    """

    name: str
    packets: int
    bytes: int
    first_ns: int | None
    last_ns: int | None
    trigger_ns: int | None = None


class RecorderStats(NamedTuple):
    """A flight recorder's counters (frozen snapshot, for metrics).

    Attributes:
        packets: packets held now.
        bytes: their captured bytes.
        memory: what they are charged against ``max_bytes`` (bytes + 24 per packet).
        max_bytes: the byte bound.
        seconds: the time bound.
        appended: packets ever given to the recorder.
        evicted: packets pushed out (``appended - packets``, exactly).
        evicted_age: ... because they were older than the time bound.
        evicted_size: ... to stay within ``max_bytes``.
        triggers: trigger matches that opened a window.
        dumps: dumps written (on request and by trigger).
        dump_errors: trigger dumps that failed to write (logged; capture went on).
        first_ns: the oldest packet held; None when empty.
        last_ns: the newest packet held; None when empty.
        state: ``recording``, ``after`` or ``holdoff``.
    """

    packets: int
    bytes: int
    memory: int
    max_bytes: int
    seconds: float
    appended: int
    evicted: int
    evicted_age: int
    evicted_size: int
    triggers: int
    dumps: int
    dump_errors: int
    first_ns: int | None
    last_ns: int | None
    state: str


class FlightRecorder:
    """Holds the most recent packets in bounded memory and writes them out when asked or
    triggered (a Session sink).

    Args:
        seconds: how far back from the newest packet (packet time) packets are held; default
            60. At most 0: no time bound, only ``max_bytes``.
        max_bytes: the memory bound: held packets are charged their captured bytes plus 24
            each, and never more than this in all; default 64 MiB. The buffers holding them
            add at most two megabytes besides (and, during a dump, whatever the dump still
            reads that has been evicted since it began).
        trigger: a filter expression (``tcp[tcpflags] & tcp-rst != 0``) or a matcher; a
            matching packet starts a trigger dump. None: dumps only on request.
        after: seconds of packet time held after a trigger before its dump is written;
            default 5. At most 0 writes the dump with the trigger packet.
        holdoff: seconds after a trigger window ends during which matches are ignored; None
            (the default) means ``seconds``, so consecutive trigger dumps never hold the same
            packet twice.
        directory: where ``dump_file`` and trigger dumps are created (a ``Directory``, kept
            open through a duplicate of its descriptor, or a path, created 0700 if missing).
            Needed with a trigger.
        name: the file name below ``directory``, a strftime(3) format filled with the local
            time of the trigger (or of the request); when that name exists, ``-1``, ``-2``...
            is added before the extension. Default ``recorder-%Y%m%d-%H%M%S.pcap`` (``.pcapng``
            with ``pcapng``).
        pcapng: dumps are pcapng (interfaces and directions kept) instead of pcap (nanosecond
            timestamps).
        linktype: the frames' link type; None means the bound Session's, or RAW when unbound.
        snaplen: the snapshot length written in dump headers; 0 means 262144.
        dump_on_close: ``close()`` writes what is held to ``directory`` (a last ``dump_file``).
        on_dump: called with the ``DumpInfo`` of every dump written to ``directory``, from the
            thread that wrote it.
        clock: monotonic clock in seconds (tests pass a fake one).

    Raises:
        OptionError: a bound is invalid, or a trigger or ``dump_on_close`` without a directory.
        FilterError: the trigger expression is malformed.
        PathOutsideError: ``directory`` is no directory.
    """

    def __init__(
        self,
        seconds: float = DEFAULT_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        trigger: str | Matcher | None = None,
        after: float = DEFAULT_AFTER,
        holdoff: float | None = None,
        directory: Directory | str | os.PathLike[str] | None = None,
        name: str = "",
        pcapng: bool = False,
        linktype: LinkType | int | None = None,
        snaplen: int = 0,
        dump_on_close: bool = False,
        on_dump: Callable[[DumpInfo], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes <= PACKET_OVERHEAD:
            raise OptionError(f"max_bytes must be more than {PACKET_OVERHEAD}, not {max_bytes}")
        if snaplen < 0:
            raise OptionError("snaplen must not be negative")
        if (trigger is not None or dump_on_close) and directory is None:
            raise OptionError("a trigger or dump_on_close needs a directory to write dumps in")
        self.seconds = float(seconds)
        self.max_bytes = max_bytes
        self.after = max(0.0, float(after))
        self.holdoff = max(0.0, float(self.seconds if holdoff is None else holdoff))
        self.pcapng = pcapng
        self.name = name or ("recorder-%Y%m%d-%H%M%S" + (".pcapng" if pcapng else ".pcap"))
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        self.dump_on_close = dump_on_close
        self.on_dump = on_dump
        self._linktype_given = linktype is not None
        self.linktype = LinkType(LinkType.RAW if linktype is None else linktype)
        self._trigger = trigger
        self._match = _matcher(trigger, self.linktype)
        self._clock = clock
        self._lock = threading.Lock()
        self._ring = RecordRing(max_bytes, self.seconds)
        self._state = RecorderState.RECORDING
        self._trigger_ns = 0
        self._deadline_ns = 0
        self._holdoff_until_ns = 0
        self._arrived = clock()
        self.triggers = 0
        self.dumps = 0
        self.dump_errors = 0
        self._closed = False
        self._directory: Directory | None = None
        if isinstance(directory, Directory):
            self._directory = directory.dup()
        elif directory is not None:
            self._directory = Directory(directory, create=True)

    def __repr__(self) -> str:
        where = self._directory.path if self._directory is not None else "memory"
        return f"FlightRecorder({where!r})"

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Take the Session's link type when none was given (and compile the trigger for it).

        Raises:
            FilterError: the trigger cannot be expressed for that link type.
        """
        if not self._linktype_given and linktype != self.linktype:
            self.linktype = LinkType(linktype)
            self._match = _matcher(self._trigger, self.linktype)

    # -- the writer thread ------------------------------------------------------------------

    def write_batch(self, batch: PacketBatch) -> None:
        """Hold a batch, opening and closing trigger windows as its packets say."""
        if not batch or self._closed:
            return
        self._arrived = self._clock()
        n = len(batch)
        i = 0
        while i < n:
            state = self._state
            j = i
            if state is RecorderState.AFTER:
                deadline = self._deadline_ns
                while j < n and batch[j][0] <= deadline:
                    j += 1
                self._hold(batch, i, j)
                if j < n:
                    self._end_window()
            elif state is RecorderState.HOLDOFF:
                until = self._holdoff_until_ns
                while j < n and batch[j][0] < until:
                    j += 1
                self._hold(batch, i, j)
                if j < n:
                    self._state = RecorderState.RECORDING
            else:
                match = self._match
                if match is None:
                    self._hold(batch, i, n)
                    return
                while j < n and not match(batch[j][1]):
                    j += 1
                if j < n:
                    j += 1  # the trigger packet is held, then the window opens
                    self._hold(batch, i, j)
                    self._open_window(batch[j - 1][0])
                else:
                    self._hold(batch, i, j)
            i = j

    def _hold(self, batch: PacketBatch, start: int, end: int) -> None:
        if start < end:
            part = batch if start == 0 and end == len(batch) else batch[start:end]
            with self._lock:
                self._ring.append(part)

    def _open_window(self, ts: int) -> None:
        self.triggers += 1
        self._trigger_ns = ts
        self._deadline_ns = ts + int(self.after * _NS)
        with self._lock:
            self._ring.hold_from_ns = ts - int(self.seconds * _NS) if self.seconds > 0 else None
        self._state = RecorderState.AFTER
        log.info("flight recorder: trigger matched at %s", _stamp(ts))
        if self._deadline_ns == ts:
            self._end_window()

    def _end_window(self) -> None:
        """Write the trigger dump (a failure is counted and logged), then hold off."""
        trigger = self._trigger_ns
        self._state = RecorderState.HOLDOFF
        self._holdoff_until_ns = self._deadline_ns + int(self.holdoff * _NS)
        try:
            self._to_directory(trigger / _NS, trigger)
        except (OSError, CapsvcError) as exc:  # a full disk, a name the directory refuses
            self.dump_errors += 1
            log.error(
                "flight recorder: the dump of the trigger at %s failed: %s", _stamp(trigger), exc
            )
        with self._lock:
            self._ring.hold_from_ns = None
            self._ring.evict_old()

    def flush(self) -> None:
        """End an after-window whose time has passed while no packet came (see the module)."""
        if self._state is RecorderState.AFTER and not self._closed:
            waited = self._clock() - self._arrived
            newest = self._ring.newest_ns
            if newest is not None and newest + int(waited * _NS) >= self._deadline_ns:
                self._end_window()

    def close(self) -> None:
        """End an open trigger window with what is held, write the ``dump_on_close`` dump,
        and close the directory. What is held stays readable (``dump`` to a stream or path
        still works). A second call does nothing."""
        if self._closed:
            return
        try:
            if self._state is RecorderState.AFTER:
                self._end_window()
            if self.dump_on_close:
                self.dump_file()
        finally:
            self._closed = True
            if self._directory is not None:
                self._directory.close()

    # -- any thread -------------------------------------------------------------------------

    def dump(
        self, target: IO[bytes] | str | os.PathLike[str], *, pcapng: bool | None = None
    ) -> DumpInfo:
        """Write what is held now, oldest first, without stopping capture.

        Args:
            target: a binary stream (left open) or a path (created 0600, never through a
                symbolic link, only as a regular file: ``capsvc._files.Directory``).
            pcapng: pcapng instead of pcap; None means the recorder's ``pcapng``.

        Returns:
            What was written. An empty recorder writes a valid empty capture.

        Raises:
            OSError: the file cannot be created or written.
            PathOutsideError: the path names no regular file.
        """
        if isinstance(target, str | os.PathLike):
            where, base = os.path.split(os.path.abspath(os.fspath(target)))
            with Directory(where) as directory:
                return self._write_file(directory, base, exclusive=False, pcapng=pcapng)
        view = self._view()
        try:
            return self._write(view, target, "", pcapng)
        finally:
            self._release(view)

    def dump_file(self, *, when: float | None = None, pcapng: bool | None = None) -> DumpInfo:
        """Write what is held to a new file below ``directory``, named with ``when``.

        Args:
            when: the time the name is formatted with (seconds since the epoch, local time);
                None means now.
            pcapng: pcapng instead of pcap; None means the recorder's ``pcapng``.

        Raises:
            OptionError: the recorder has no directory, or is closed (``dump`` still works).
            OSError: the file cannot be created or written.
        """
        if self._closed:
            raise OptionError("the flight recorder is closed: dump() to a path or stream")
        return self._to_directory(time.time() if when is None else when, None, pcapng)

    def stats(self) -> RecorderStats:
        """The counters now (cheap: no lock, no copy)."""
        ring = self._ring
        return RecorderStats(
            ring.packets,
            ring.bytes,
            ring.charged,
            self.max_bytes,
            self.seconds,
            ring.appended,
            ring.evicted,
            ring.evicted_age,
            ring.evicted_size,
            self.triggers,
            self.dumps,
            self.dump_errors,
            ring.first_ns,
            ring.last_ns,
            self._state.value,
        )

    @property
    def state(self) -> RecorderState:
        """Where the recorder is in its trigger cycle."""
        return self._state

    # -- writing ----------------------------------------------------------------------------

    def _view(self) -> RingView:
        with self._lock:
            return self._ring.view()

    def _release(self, view: RingView) -> None:
        with self._lock:
            self._ring.release(view)

    def _to_directory(
        self, when: float, trigger_ns: int | None, pcapng: bool | None = None
    ) -> DumpInfo:
        directory = self._directory
        if directory is None:
            raise OptionError("this flight recorder has no directory to write dumps in")
        name = time.strftime(self.name, time.localtime(when))
        info = self._write_file(directory, name, exclusive=True, pcapng=pcapng)
        info = info._replace(trigger_ns=trigger_ns)
        log.info(
            "flight recorder: wrote %d packets (%s to %s) to %s",
            info.packets,
            _stamp(info.first_ns),
            _stamp(info.last_ns),
            info.name,
        )
        if self.on_dump is not None:
            self.on_dump(info)
        return info

    def _write_file(
        self, directory: Directory, name: str, *, exclusive: bool, pcapng: bool | None
    ) -> DumpInfo:
        fd, name = _create(directory, name, exclusive)
        view = self._view()
        try:
            with io.FileIO(fd, "wb") as raw, io.BufferedWriter(raw, 1 << 20) as stream:
                return self._write(view, stream, os.path.join(directory.path, name), pcapng)
        finally:
            self._release(view)

    def _write(self, view: RingView, stream: IO[bytes], name: str, pcapng: bool | None) -> DumpInfo:
        use_pcapng = self.pcapng if pcapng is None else pcapng
        writer: PcapWriter | PcapNgWriter
        if use_pcapng:
            writer = PcapNgWriter(stream, self.snaplen, self.linktype)
        else:
            writer = PcapWriter(stream, self.snaplen, self.linktype, nanosecond=True)
        for batch in RecordRing.read(view):
            writer.write_batch(batch)
        writer.flush()
        with self._lock:
            self.dumps += 1
        return DumpInfo(name, view.packets, view.bytes, view.first_ns, view.last_ns)


def _matcher(trigger: str | Matcher | None, linktype: LinkType) -> Callable[[bytes], bool] | None:
    if trigger is None:
        return None
    if isinstance(trigger, str):
        from ..filter import parse_filter

        parsed = parse_filter(trigger, linktype)
        if parsed is None:
            raise OptionError("the trigger expression is empty (it would match every packet)")
        return parsed.match
    return trigger.match


def _create(directory: Directory, name: str, exclusive: bool) -> tuple[int, str]:
    """Create ``name`` below ``directory``; with ``exclusive``, a name that exists gets ``-1``,
    ``-2``... before its extension."""
    if not exclusive:
        return directory.create(name), name
    stem, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:
        stem, dot, ext = name, "", ""
    candidate = name
    for n in range(1, _UNIQUE_TRIES + 1):
        try:
            return directory.create(candidate, exclusive=True), candidate
        except FileExistsError:
            candidate = f"{stem}-{n}{dot}{ext}"
    raise FileExistsError(f"{directory.path}: {name} and {_UNIQUE_TRIES} variants exist")


def _stamp(ns: int | None) -> str:
    """A packet time for the log (UTC, microseconds)."""
    if ns is None:
        return "-"
    secs, frac = divmod(ns, _NS)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)) + f".{frac // 1000:06d}Z"
