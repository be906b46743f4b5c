"""Capture files as sources: ``read_capture`` (synchronous, for tools) and ``PcapFileSource``.

Thin IO over ``_capfile.CaptureDecoder``: open the file or take the stream, read large chunks,
hand them to the decoder, pass its batches on. Two rules: a batch holds at most about
``BATCH_BYTES`` of packet data whatever the file's snapshot length (so memory is bounded by the
snapshot length, not by the file), and a pipe is read by a thread of its own that the event
loop never waits for (so a signal ends ``capsvc read -r -`` at once, however long the writer
takes). The loop is asyncio's or trio's (``capsvc._aio``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import IO, TYPE_CHECKING

from ..._aio import Flag, Loop
from ..._bpf import pack_program, reads_metadata
from ..._errors import CaptureFileError, FilterError
from ..._packet import LinkType, Matcher, MatchFunction, PacketBatch, match_function
from ..._records import RecordBlock, packets_only
from ..._records import available as records_available
from .._base import SourceStats
from ._decode import CaptureDecoder, Interface

if TYPE_CHECKING:
    from ...filter import Node

__all__ = ["CaptureFile", "PcapFileSource", "read_capture"]

#: Bytes per read. A read releases the GIL, and while the Session's writer thread formats text
#: every release can cost the reader a wait for its turn: 256 KiB reads made ``capsvc read``'s
#: text output about 10% faster than 64 KiB ones, with no loss on the filter path (1 MiB reads
#: parse slower: the records are sliced out after the chunk has left the CPU cache).
CHUNK_SIZE = 1 << 18
#: Packets per batch.
BATCH_SIZE = 1024
#: Packet data per batch, at most (by the snapshot length): a file of 16 MiB records is read
#: a few records at a time, not 1024 (16 GiB) at once.
BATCH_BYTES = 64 << 20

PathOrStream = str | os.PathLike[str] | IO[bytes]


class CaptureFile:
    """An open pcap or pcapng file, iterated as packet batches (see ``read_capture``).

    Args:
        source: a path, or a binary stream, read blocking (a non-blocking stream whose read
            finds nothing yet reads as the end of the input).
        chunk_size: bytes per read.
        batch_size: most packets per batch (fewer for a large snapshot length: BATCH_BYTES).
        owned: close a given stream with the file (a path is always closed).
        name: what errors call it (default: the path, or the stream's name).

    Attributes:
        name: the path, or ``"<stream>"`` (the stream's ``name`` when it has a str one).
        linktype: the link type (pcapng: that of the first interface).
        snaplen: the header's snapshot length (pcapng: the largest IDB snaplen); 262144 when
            the file gives none.
        nanosecond: True when the file's timestamps have nanosecond resolution.
        interfaces: the file's interfaces (one for pcap).
        packets: packets decoded so far.
        regular: True for a regular file (reads return at once); False for a pipe or terminal.
    """

    def __init__(
        self,
        source: PathOrStream,
        *,
        chunk_size: int = CHUNK_SIZE,
        batch_size: int = BATCH_SIZE,
        owned: bool = False,
        name: str | None = None,
    ) -> None:
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            self._stream: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            stream_name = getattr(source, "name", None)
            self.name = stream_name if isinstance(stream_name, str) else "<stream>"
            self._stream = source
            self._owned = owned
        if name is not None:
            self.name = name
        self.chunk_size = chunk_size
        self._decoder = CaptureDecoder(self.name, batch_size)
        self._lock = threading.Lock()
        self._reading = False  # a thread is inside read_chunk
        self._close_after_read = False
        try:
            self.regular = _is_regular(self._stream)
            self.read_header()
        except BaseException:
            self.close()
            raise
        # As many packets per batch as BATCH_BYTES holds at the largest record the file allows.
        dec = self._decoder
        dec.batch_size = max(1, min(batch_size, BATCH_BYTES // max(1, dec.snaplen)))

    def read_chunk_unlocked(self) -> bytes:
        """``read_chunk`` for a thread that may stay blocked while the process exits (a pipe
        whose writer never writes again): the descriptor is read directly, so no lock of the
        buffered stream is held meanwhile (the interpreter takes that lock when it exits).
        Reads of more than the buffer's size, as every read here is, leave the buffer empty,
        so nothing is skipped; a stream without a descriptor is read as ``read_chunk`` does.

        Raises:
            CaptureFileError: the read failed.
        """
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self.read_chunk()
        size = max(self.chunk_size, self._decoder.wanted)
        with self._lock:
            if self._close_after_read:
                return b""
            self._reading = True
        try:
            return os.read(fd, size)
        except OSError as exc:
            raise CaptureFileError(self.name, f"read failed: {exc.strerror or exc}") from exc
        finally:
            with self._lock:
                self._reading = False
                late_close = self._close_after_read
            if late_close:
                self._close_now()

    def read_chunk(self) -> bytes:
        """Read one chunk (or what the decoder needs to finish a record, if more); b"" at the end.

        For a reader that schedules its own reads and feeds ``decoder``; iterating the
        ``CaptureFile`` does this itself.

        ``read1`` where the stream has it: on a pipe it returns what is there instead of waiting
        for a whole chunk, so packets from a slow writer (``tcpdump -w - | ...``) flow at once.

        Raises:
            CaptureFileError: the read failed (an I/O error of the disk or the pipe).
        """
        size = max(self.chunk_size, self._decoder.wanted)
        read1 = getattr(self._stream, "read1", None)
        with self._lock:
            if self._close_after_read:
                return b""
            self._reading = True
        try:
            data = read1(size) if read1 is not None else self._stream.read(size)
        except ValueError:  # closed meanwhile: the reader stops
            return b""
        except OSError as exc:
            raise CaptureFileError(self.name, f"read failed: {exc.strerror or exc}") from exc
        finally:
            with self._lock:
                self._reading = False
                late_close = self._close_after_read
            if late_close:
                self._close_now()
        return bytes(data) if data else b""

    def read_header(self) -> None:
        """Read until the file's properties are known (blocking; called by the constructor).

        Raises:
            CaptureFileError: the file is no capture file or cannot be read.
        """
        dec = self._decoder
        while not dec.start() and not dec.finished:
            dec.feed(self.read_chunk())

    @property
    def linktype(self) -> LinkType:
        return self._decoder.linktype

    @property
    def snaplen(self) -> int:
        return self._decoder.snaplen

    @property
    def nanosecond(self) -> bool:
        return self._decoder.nanosecond

    @property
    def interfaces(self) -> list[Interface]:
        return self._decoder.interfaces

    @property
    def linktypes(self) -> dict[int, int]:
        """ifindex -> link type of each pcapng interface described so far (empty for pcap)."""
        return self._decoder.linktypes

    @property
    def packets(self) -> int:
        return self._decoder.packets

    @property
    def records(self) -> int:
        """Records read so far, kept or not (equal to ``packets`` without a filter)."""
        return self._decoder.records

    @property
    def size(self) -> int:
        """The file's size in bytes; 0 for a pipe, a terminal or an in-memory stream."""
        if not self.regular:
            return 0
        try:
            return os.fstat(self._stream.fileno()).st_size
        except (OSError, AttributeError, ValueError):
            return 0

    @property
    def decoder(self) -> CaptureDecoder:
        """The decoder (for a reader that schedules its own reads, like ``PcapFileSource``)."""
        return self._decoder

    def __iter__(self) -> Iterator[PacketBatch]:
        """Yield batches until the end of the file.

        Raises:
            CaptureFileError: the file is corrupt, or a read failed (after every complete
                packet before the problem was yielded). A truncated last record is a
                warning, not an error.
        """
        dec = self._decoder
        while True:
            batch = dec.next_batch()
            if batch:
                yield batch
            elif dec.finished:
                return
            else:
                try:
                    chunk = self.read_chunk()
                except CaptureFileError:  # what was read before the failure is delivered
                    while rest := dec.next_batch(fill=False):
                        yield rest
                    raise
                dec.feed(chunk)

    def close(self) -> None:
        """Close the file if it was opened here or is owned (a given stream stays open);
        idempotent. While a thread is blocked reading it (a pipe), the file is closed by that
        thread once its read returns: closing it under the read would wait for the read."""
        with self._lock:
            self._close_after_read = True
            if self._reading:
                return
        self._close_now()

    def _close_now(self) -> None:
        if self._owned:
            with contextlib.suppress(OSError):
                self._stream.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_capture(
    source: PathOrStream, *, chunk_size: int = CHUNK_SIZE, batch_size: int = BATCH_SIZE
) -> CaptureFile:
    """Open a pcap or pcapng file for synchronous reading.

    Args:
        source: a path, or a binary stream (e.g. ``sys.stdin.buffer``), which stays open.
        chunk_size: bytes per read (default 256 KiB).
        batch_size: packets per batch (default 1024).

    Returns:
        A ``CaptureFile``: iterate it for batches; use it as a context manager to close it.
        An empty file is a capture without packets (link type RAW).

    Raises:
        FileNotFoundError: the path does not exist (other OSErrors of ``open`` likewise).
        CaptureFileError: the file is no capture file; the message names it and says why.
    """
    return CaptureFile(source, chunk_size=chunk_size, batch_size=batch_size)


def _is_regular(stream: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):
        return True  # an in-memory stream (BytesIO) never blocks


class PcapFileSource:
    """A Source reading a pcap or pcapng file (or stream) for a Session.

    The file is opened and its header read by the constructor, so a bad path or a file that is
    no capture fails there (for a pipe the constructor waits until the writer sends the header).
    Reads of a regular file are done inline, 256 KiB at a time: such a read from the page cache
    takes tens of microseconds, far less than parsing what it returns, while handing each read
    to a worker thread halved the throughput (bench/bench_read.py). A pipe or terminal
    (``-r -``) can block for as long as its writer likes, so those reads go to a worker thread.

    Args:
        path: a path, or a binary stream (which stays open unless ``owned``).
        realtime: replay with the original gaps between packets (``live`` is then True, so a
            Session drops rather than waits, as for a live capture).
        owned: close a given stream when the source closes.
        name: what errors call the file (default: the path, or the stream's name).
        filter: a filter expression, a parsed one (``capsvc.filter.Node``) or a Matcher;
            records it rejects are skipped while reading, before any packet is built, the way
            a kernel filter spares a live capture. ``stats().received`` still counts every
            record. An expression is compiled for the link type of each interface of a pcapng
            file whose interfaces differ in link type; a Matcher is given every frame as one
            of ``linktype``.
        limit: yield at most this many packets (those the filter keeps), as ``tcpdump -c``;
            the file is read no further than the last of them, so ``stats().received`` counts
            the records up to it. 0 (the default) reads to the end.

    Attributes:
        linktype, snaplen: from the file header (pcapng: the first IDB's link type, the
            largest IDB snaplen or 262144).
        linktypes: ifindex -> link type of every pcapng interface described so far (it grows
            while the file is read; empty for pcap, whose packets all have ``linktype``).
            A packet's ``ifindex`` names its interface.
        live: equal to ``realtime``.

    Raises:
        FileNotFoundError: the path does not exist.
        CaptureFileError: the file is no capture file (the message names it and says why).
        capsvc.FilterError: ``filter`` is malformed or the link type of one of the file's
            interfaces cannot express it.
    """

    def __init__(
        self,
        path: PathOrStream,
        *,
        realtime: bool = False,
        filter: str | Node | Matcher | None = None,
        owned: bool = False,
        name: str | None = None,
        limit: int = 0,
    ) -> None:
        self._file = CaptureFile(path, owned=owned, name=name)
        self._file.decoder.limit = max(0, limit)
        self.name = self._file.name
        self.linktype: LinkType = self._file.linktype
        self.linktypes: dict[int, int] = self._file.linktypes
        if filter is not None:
            try:
                spec = filter if isinstance(filter, str) or hasattr(filter, "match") else None
                self._set_filter(spec if spec is not None else str(filter))
            except BaseException:
                self._file.close()
                raise
        self.snaplen: int = self._file.snaplen
        self.live: bool = realtime
        self.realtime = realtime
        self._closed = False
        self._reader: _ChunkReader | None = None
        self._size = self._file.size

    def _set_filter(self, filter: str | Matcher) -> None:
        decoder = self._file.decoder
        if isinstance(filter, str):
            expression = filter
            compiled: dict[int, MatchFunction | None] = {}

            def match_for(linktype: int) -> MatchFunction | None:
                if linktype not in compiled:
                    compiled[linktype] = match_function(expression, LinkType(linktype))
                return compiled[linktype]

            for linktype in set(self.linktypes.values()) - {self.linktype}:
                match_for(linktype)  # a link type that cannot express it fails here, at once
            decoder.match_for = match_for
        decoder.match = match_function(filter, self.linktype)
        if isinstance(filter, str):
            decoder.program = _program(filter, self.linktype)

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        """Yield batches until the end of the file or ``aclose()``."""
        return packets_only(self._batches(records=False))

    def record_batches(self) -> AsyncIterator[PacketBatch | RecordBlock]:
        """As ``async for``, but a pcap file's records come as RecordBlocks, read and
        filtered in C where the speed-ups are built (``capsvc._records``; a Session reads a
        file this way). A realtime replay gives Packets."""
        return self._batches(records=not self.realtime)

    async def _batches(self, *, records: bool) -> AsyncIterator[PacketBatch | RecordBlock]:
        dec = self._file.decoder
        threaded = not self._file.regular
        loop = Loop.current()
        pace = _Pacer(loop) if self.realtime else None
        while not self._closed:
            batch = (
                dec.next_records(fill=not threaded)
                if records
                else dec.next_batch(fill=not threaded)
            )
            if batch:
                if pace is not None:
                    assert isinstance(batch, list)  # no records while pacing
                    async for part in pace.replay(batch):
                        if self._closed:
                            return
                        yield part
                else:
                    yield batch
                    await loop.sleep(0)  # let the loop run between batches of a fast file
            elif dec.finished:
                return
            elif threaded:
                if self._reader is None:
                    self._reader = _ChunkReader(self._file, loop)
                chunk = await self._reader.next_chunk()
                if not self._closed:
                    dec.feed(chunk)
            else:
                dec.feed(self._file.read_chunk())

    def progress(self) -> tuple[int, int]:
        """``(bytes read, size of the file)``; the size is 0 for a pipe or another stream
        whose length is not known."""
        return self._file.decoder.offset, self._size

    def stats(self) -> SourceStats:
        """Records read so far, whether the filter kept them or not (``received``)."""
        return SourceStats(received=self._file.records)

    async def aclose(self) -> None:
        """Stop the iteration and close the file if it was opened here; idempotent. A read
        blocked on a pipe is not waited for: the iteration ends at once."""
        if not self._closed:
            self._closed = True
            if self._reader is not None:
                self._reader.stop()
            self._file.close()


def _program(filter: str | Matcher, linktype: LinkType) -> bytes | None:
    """The filter as a packed classic BPF program for the C record reader, or None where there
    is no such reader or program: no C speed-ups, a Matcher object (its own code decides), an
    expression the compiler refuses, or one reading a live socket's metadata."""
    if not records_available() or not isinstance(filter, str) or not filter.strip():
        return None
    from ...filter import compile_bpf

    try:
        program = compile_bpf(filter, linktype)
    except FilterError:
        return None
    return None if reads_metadata(program) else pack_program(program)


class _ChunkReader:
    """Reads a pipe's chunks in a daemon thread of its own, one chunk per request.

    The loop waits on a Flag the thread sets through ``Loop.call_soon_threadsafe``, never on
    the thread: ``stop`` ends the wait at once, and a thread still blocked in its read is left
    to finish (a daemon thread does not hold up the process's exit, unlike a worker of an
    executor the loop joins when it closes). A request whose caller was cancelled stays asked
    for: its chunk is the next call's, so nothing read is lost.
    """

    def __init__(self, file: CaptureFile, loop: Loop) -> None:
        self._file = file
        self._loop = loop
        self._wanted = threading.Event()
        self._stopped = False
        self._asked = False
        self._ready = Flag()
        self._result: tuple[bytes, BaseException | None] = (b"", None)
        self._thread = threading.Thread(target=self._run, name="capsvc-pipe-reader", daemon=True)
        self._thread.start()

    async def next_chunk(self) -> bytes:
        """The next chunk; b"" at the end of the input or once stopped.

        Raises:
            CaptureFileError: the read failed.
        """
        if self._stopped:
            return b""
        if not self._asked:
            self._asked = True
            self._ready.clear()
            self._wanted.set()
        await self._ready.wait()
        self._asked = False
        if self._stopped:
            return b""
        (data, exc), self._result = self._result, (b"", None)
        if exc is not None:
            raise exc
        return data

    def stop(self) -> None:
        """End a pending ``next_chunk`` with b"" and let the thread go."""
        self._stopped = True
        self._wanted.set()
        self._ready.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopped:
                return
            try:
                data = self._file.read_chunk_unlocked()
            except BaseException as exc:  # handed to the reader, raised there
                self._deliver(None, exc)
                return
            self._deliver(data, None)
            if not data:
                return

    def _deliver(self, data: bytes | None, exc: BaseException | None) -> None:
        def settle() -> None:
            if not self._stopped:
                self._result = (data or b"", exc)
                self._ready.set()

        self._loop.call_soon_threadsafe(settle)  # nothing when the loop is gone


class _Pacer:
    """Replays packets at their original spacing: packet i is due at start + (ts_i - ts_0)."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self._first_ts: int | None = None
        self._start = 0

    async def replay(self, batch: PacketBatch) -> AsyncIterator[PacketBatch]:
        """Yield runs of ``batch`` whose time has come, sleeping until each is due."""
        if self._first_ts is None:
            self._first_ts = batch[0][0]
            self._start = time.monotonic_ns()
        i = 0
        n = len(batch)
        while i < n:
            now = time.monotonic_ns() - self._start
            j = i
            while j < n and batch[j][0] - self._first_ts <= now:
                j += 1
            if j > i:
                yield batch[i:j]
                i = j
            else:
                await self._loop.sleep((batch[i][0] - self._first_ts - now) / 1e9)
