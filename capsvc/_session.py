"""The capture Session: matcher, snaplen copy, bounded queue, writer fanning out to sinks.

Rules this module keeps:
- ``offer()`` is synchronous and O(1); a full queue is a counted drop, never a wait.
- Every packet ever counted in ``packets`` reaches every healthy sink before ``done`` is set.
- Queue operations happen on the event loop's thread only; sinks run on one writer thread, one
  batch at a time, so a slow sink never blocks the loop (only fills the queue, which then drops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from time import time_ns
from types import TracebackType
from typing import IO, Any, NamedTuple, Self

from ._packet import SNAPLEN_DEFAULT, Direction, LinkType, Matcher, Packet, PacketBatch
from .sinks._base import SessionAware, Sink
from .sources._base import Source, SourceStats

__all__ = ["Matcher", "Session", "Stats"]

log = logging.getLogger("capsvc")

#: Queue capacity of a session fed only by ``offer`` when ``bufsize`` is 0.
OFFER_QUEUE_DEFAULT = 256
#: Queue capacity of a session with a source when ``bufsize`` is 0 (sized for line rate).
SOURCE_QUEUE_DEFAULT = 65536
#: How often an idle writer flushes its sinks (seconds), so files and streams never go stale.
IDLE_FLUSH_INTERVAL = 0.25
#: How long ``stop()`` waits for a source to wind down after ``aclose()`` before cancelling it.
SOURCE_STOP_TIMEOUT = 5.0

_INBOUND = Direction.INBOUND
_OUTBOUND = Direction.OUTBOUND
_new_packet = tuple.__new__


class Stats(NamedTuple):
    """A session's counters (frozen snapshot).

    For every session, offered = packets + dropped + filtered, exactly (offers after ``stop()``
    are ignored and counted nowhere).

    Attributes:
        packets: packets accepted into the queue.
        bytes: wire bytes of the accepted packets.
        dropped: packets refused because the queue was full.
        filtered: packets the matcher rejected.
        kernel_dropped: packets the source's kernel or library dropped (0 without a source).
        sink_errors: sink failures (each failed sink is disabled after its first).
        written: accepted packets handed to at least one sink that took them.
        queued: packets waiting in the queue now.
        received: packets the source reported as received by its kernel or library.
    """

    packets: int = 0
    bytes: int = 0
    dropped: int = 0
    filtered: int = 0
    kernel_dropped: int = 0
    sink_errors: int = 0
    written: int = 0
    queued: int = 0
    received: int = 0


class _SinkSlot:
    """A sink and whether it still works."""

    __slots__ = ("failed", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.failed = False


class Session:
    """A capture session: filters packets, queues them (bounded), writes them to sinks.

    Args:
        output: binary stream or path for a pcap file (pcapng when ``pcapng`` is True).
            A path is created with mode 0600 and closed by the session; a stream is left open.
        text_output: text stream or path for the tcpdump-style log, one line per packet.
        sinks: further sink objects (see ``capsvc.sinks.Sink``).
        matcher: an object with ``match(data) -> bool``, a filter expression (parsed for
            ``linktype``), or None to accept everything (or, with a source that carries a
            ``userspace_filter`` expression its kernel could not take, to apply that).
        verbose: text log adds TCP details and IP fields (like ``tcpdump -v``).
        ascii: text log adds the payload in ASCII (like ``tcpdump -A``).
        snaplen: bytes kept of each packet; 0 means 262144. The wire length is always kept.
        bufsize: queue capacity in packets; 0 means 256 without a source and 65536 with one.
        linktype: link type of offered frames; a source's own link type takes precedence.
        pcapng: write ``output`` as pcapng instead of pcap.
        source: a Source to read from while the session runs; stopped by ``stop()``.
        limit: accept at most this many packets (like ``tcpdump -c``); 0 means no limit. Once
            reached, further frames are ignored and counted nowhere, the source is closed, and
            ``limit_reached`` is set. The caller still calls ``stop()``.

    Raises:
        ValueError: no sink at all was given ("at least one output sink required"), or a
            negative snaplen or bufsize.
        capsvc.filter.FilterSyntaxError: ``matcher`` is a malformed filter expression.
    """

    def __init__(
        self,
        *,
        output: IO[bytes] | str | os.PathLike[str] | None = None,
        text_output: IO[str] | str | os.PathLike[str] | None = None,
        sinks: Iterable[Sink] = (),
        matcher: Matcher | str | None = None,
        verbose: bool = False,
        ascii: bool = False,
        snaplen: int = 0,
        bufsize: int = 0,
        linktype: LinkType = LinkType.RAW,
        pcapng: bool = False,
        source: Source | None = None,
        limit: int = 0,
    ) -> None:
        extra = list(sinks)
        if output is None and text_output is None and not extra:
            raise ValueError("at least one output sink required")
        if snaplen < 0 or bufsize < 0:
            raise ValueError("snaplen and bufsize must not be negative")
        self._source = source
        self.linktype = LinkType(source.linktype) if source is not None else LinkType(linktype)
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        if bufsize == 0:
            bufsize = SOURCE_QUEUE_DEFAULT if source is not None else OFFER_QUEUE_DEFAULT
        self.bufsize = bufsize
        self.limit = limit
        if matcher is None and source is not None:
            # A source whose kernel could not take its filter leaves it for us to apply.
            matcher = getattr(source, "userspace_filter", None)
        self._match = _resolve_matcher(matcher, self.linktype)

        self._owned: list[IO[Any]] = []
        built: list[Sink] = []
        if output is not None:
            built.append(self._binary_sink(output, pcapng))
        if text_output is not None:
            built.append(self._text_sink(text_output, verbose, ascii))
        self._slots = [_SinkSlot(s) for s in (*built, *extra)]

        self._buf: PacketBatch = []
        self._packets = 0
        self._bytes = 0
        self._dropped = 0
        self._filtered = 0
        self._sink_errors = 0
        self._written = 0
        self._closed = False  # offers are ignored from here on
        self._stopping: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._writer_task: asyncio.Task[None] | None = None
        self._source_task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        #: Set once the writer has drained the queue, flushed and closed the sinks, and exited.
        self.done = asyncio.Event()
        #: Set when every sink has failed: nothing more can be written (a closed pipe, say).
        self.sinks_failed = asyncio.Event()
        #: Set when ``limit`` packets have been accepted.
        self.limit_reached = asyncio.Event()
        #: The exception that ended the source early, if any.
        self.source_error: BaseException | None = None

    # -- construction helpers ---------------------------------------------------------------

    def _open_owned(self, path: str | os.PathLike[str], mode: str) -> IO[Any]:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        stream: IO[Any] = (
            os.fdopen(fd, "wb") if mode == "b" else os.fdopen(fd, "w", encoding="utf-8")
        )
        self._owned.append(stream)
        return stream

    def _binary_sink(self, output: IO[bytes] | str | os.PathLike[str], pcapng: bool) -> Sink:
        stream: IO[bytes] = (
            self._open_owned(output, "b") if isinstance(output, str | os.PathLike) else output
        )
        if pcapng:
            from .sinks._pcapng import PcapNgWriter

            return PcapNgWriter(stream, self.snaplen, self.linktype)
        from .sinks._pcap import PcapWriter

        return PcapWriter(stream, self.snaplen, self.linktype, nanosecond=True)

    def _text_sink(
        self, output: IO[str] | str | os.PathLike[str], verbose: bool, ascii: bool
    ) -> Sink:
        from .sinks._text import TextWriter

        stream: IO[str] = (
            self._open_owned(output, "t") if isinstance(output, str | os.PathLike) else output
        )
        return TextWriter(stream, verbose, ascii, linktype=self.linktype)

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the writer (and the source, if one is attached). Starting twice does nothing.

        Raises:
            RuntimeError: the session was already stopped.
        """
        if self._stopping is not None:
            raise RuntimeError("a stopped session cannot be started again")
        if self._writer_task is None:
            self._launch()

    def _launch(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capsvc-writer")
        for slot in self._slots:
            if isinstance(slot.sink, SessionAware):
                slot.sink.bind_session(self.stats, self.linktype)
        self._writer_task = asyncio.create_task(self._write_loop(), name="capsvc-writer")
        if self._source is not None:
            self._source_task = asyncio.create_task(self._pump(self._source), name="capsvc-source")

    async def stop(self) -> None:
        """Stop: close the source, drain the queue to every sink, flush, close owned files.

        Idempotent; concurrent callers all wait for the same stop. A session that was never
        started is drained too (started and stopped at once).
        """
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._writer_task is None:
            self._launch()
        if self._source_task is not None and self._source is not None:
            await _close_source(self._source, self._source_task)
        self._closed = True
        self._wake.set()
        await self.done.wait()

    # -- the hot path -----------------------------------------------------------------------

    def offer(
        self,
        data: bytes | bytearray | memoryview,
        outbound: bool = False,
        *,
        ts_ns: int | None = None,
        wire_len: int | None = None,
    ) -> None:
        """Offer one frame; never blocks, never raises because the queue is full.

        In order: after ``stop()`` the frame is ignored and counted nowhere; a matcher that
        rejects it counts ``filtered``; a full queue counts ``dropped``; otherwise at most
        ``snaplen`` bytes are copied, the wire length (``wire_len`` or ``len(data)``) is kept,
        and ``packets`` and ``bytes`` grow.

        Args:
            data: the frame, of the session's link type. Copied, so the caller may reuse it.
            outbound: direction of the frame (False means inbound).
            ts_ns: capture time in nanoseconds since the epoch; None means now.
            wire_len: length on the wire when ``data`` is already truncated.
        """
        if self._closed:
            return
        match = self._match
        if match is not None and not match(data):
            self._filtered += 1
            return
        buf = self._buf
        if len(buf) >= self.bufsize:
            self._dropped += 1
            return
        size = len(data)
        wl = size if wire_len is None else wire_len
        if size > self.snaplen:
            data = bytes(data[: self.snaplen])
        elif type(data) is not bytes:
            data = bytes(data)
        if not buf:
            self._wake.set()
        buf.append(
            _new_packet(
                Packet,
                (
                    time_ns() if ts_ns is None else ts_ns,
                    data,
                    wl,
                    _OUTBOUND if outbound else _INBOUND,
                    0,
                ),
            )
        )
        self._packets += 1
        self._bytes += wl
        if self._packets == self.limit:
            self._reach_limit()

    def offer_threadsafe(
        self,
        data: bytes | bytearray | memoryview,
        outbound: bool = False,
        *,
        ts_ns: int | None = None,
        wire_len: int | None = None,
    ) -> None:
        """``offer()`` from a thread other than the event loop's.

        The timestamp is taken now, in the calling thread; the frame is copied now, so the
        caller may reuse its buffer. Before ``start()`` the call is the same as ``offer()``.
        """
        loop = self._loop
        if self._closed:
            return
        stamp = time_ns() if ts_ns is None else ts_ns
        frame = bytes(data)
        if loop is None:
            self.offer(frame, outbound, ts_ns=stamp, wire_len=wire_len)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the session is over
            loop.call_soon_threadsafe(self._offer_kw, frame, outbound, stamp, wire_len)

    def _offer_kw(self, data: bytes, outbound: bool, ts_ns: int, wire_len: int | None) -> None:
        self.offer(data, outbound, ts_ns=ts_ns, wire_len=wire_len)

    def stats(self) -> Stats:
        """Return a snapshot of the counters; cheap enough to poll at 10 Hz."""
        src = self._source.stats() if self._source is not None else _NO_SOURCE_STATS
        return Stats(
            self._packets,
            self._bytes,
            self._dropped,
            self._filtered,
            src.kernel_dropped,
            self._sink_errors,
            self._written,
            len(self._buf),
            src.received,
        )

    async def wait_source(self) -> None:
        """Wait until the attached source is exhausted (a capture file read to its end).

        Returns at once without a source. Does not stop the session: call ``stop()`` after.
        """
        if self._source_task is not None:
            await asyncio.shield(self._source_task)

    @property
    def running(self) -> bool:
        """True between ``start()`` and the end of ``stop()``."""
        return self._writer_task is not None and not self.done.is_set()

    @property
    def source(self) -> Source | None:
        """The attached source, if any."""
        return self._source

    def sink_list(self) -> list[Sink]:
        """The sinks this session writes to, built-in ones first."""
        return [slot.sink for slot in self._slots]

    def add_sink(self, sink: Sink) -> None:
        """Attach a further sink to a session (it sees packets queued from now on)."""
        if isinstance(sink, SessionAware):
            sink.bind_session(self.stats, self.linktype)
        self._slots = [*self._slots, _SinkSlot(sink)]

    def remove_sink(self, sink: Sink) -> None:
        """Detach a sink added with ``add_sink``; it is not closed. Unknown sinks are ignored."""
        self._slots = [slot for slot in self._slots if slot.sink is not sink]

    # -- the source pump --------------------------------------------------------------------

    async def _pump(self, source: Source) -> None:
        """Move the source's batches into the queue (backpressure for sources that aren't live)."""
        match = self._match
        snaplen = self.snaplen
        try:
            async for batch in source:
                if self._closed:
                    break
                if match is not None:
                    kept = [p for p in batch if match(p[1])]
                    self._filtered += len(batch) - len(kept)
                    batch = kept
                if snaplen < source.snaplen:
                    batch = [_snap(p, snaplen) for p in batch]
                if not source.live:
                    await self._enqueue_waiting(batch)
                else:
                    self._enqueue(batch)
        except Exception as exc:  # a failing source ends the capture, the session drains
            self.source_error = exc
            log.error("capture source failed: %s", exc)

    def _enqueue(self, batch: PacketBatch) -> None:
        if self.limit:
            if self._closed:
                return
            batch = batch[: self.limit - self._packets]
        buf = self._buf
        room = self.bufsize - len(buf)
        if room <= 0:
            self._dropped += len(batch)
            return
        if len(batch) > room:
            self._dropped += len(batch) - room
            batch = batch[:room]
        if not buf:
            self._wake.set()
        buf.extend(batch)
        self._packets += len(batch)
        self._bytes += sum(p[2] for p in batch)
        if self._packets == self.limit:
            self._reach_limit()

    def _reach_limit(self) -> None:
        """Stop accepting: later frames are ignored; the writer still drains what is queued."""
        self._closed = True
        self._wake.set()
        self.limit_reached.set()

    async def _enqueue_waiting(self, batch: PacketBatch) -> None:
        while batch:
            while len(self._buf) >= self.bufsize:
                self._space.clear()
                await self._space.wait()
            room = self.bufsize - len(self._buf)
            self._enqueue(batch[:room])
            batch = batch[room:]

    # -- the writer -------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        executor = self._executor
        assert executor is not None
        try:
            while True:
                if not self._buf:
                    if self._closed:
                        break
                    self._wake.clear()
                    try:
                        async with asyncio.timeout(IDLE_FLUSH_INTERVAL):
                            await self._wake.wait()
                    except TimeoutError:
                        await loop.run_in_executor(executor, self._deliver, [])
                    continue
                batch = self._buf
                self._buf = []
                self._space.set()
                await loop.run_in_executor(executor, self._deliver, batch)
        finally:
            try:
                await loop.run_in_executor(executor, self._close_sinks)
            finally:
                executor.shutdown(wait=False)
                self._closed = True
                self.done.set()

    def _deliver(self, batch: PacketBatch) -> None:
        """Writer thread: hand one batch to every healthy sink, then flush them."""
        delivered = False
        for slot in self._slots:
            if slot.failed:
                continue
            try:
                if batch:
                    slot.sink.write_batch(batch)
                slot.sink.flush()
                delivered = True
            except Exception as exc:  # isolate any failing sink; the capture goes on
                self._sink_failed(slot, exc)
        if delivered:
            self._written += len(batch)

    def _close_sinks(self) -> None:
        for slot in self._slots:
            if slot.failed:
                continue
            try:
                slot.sink.close()
            except Exception as exc:
                self._sink_failed(slot, exc)
        for stream in self._owned:
            try:
                stream.close()
            except OSError as exc:
                self._sink_errors += 1
                log.error("closing capture output failed: %s", exc)

    def _sink_failed(self, slot: _SinkSlot, exc: Exception) -> None:
        slot.failed = True
        self._sink_errors += 1
        log.error("sink %s failed and is disabled: %s", type(slot.sink).__name__, exc)
        if all(s.failed for s in self._slots) and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing left to tell
                self._loop.call_soon_threadsafe(self.sinks_failed.set)


_NO_SOURCE_STATS = SourceStats()


def _snap(packet: Packet, snaplen: int) -> Packet:
    if len(packet[1]) <= snaplen:
        return packet
    return packet._replace(data=packet[1][:snaplen])


def _resolve_matcher(
    matcher: Matcher | str | None, linktype: LinkType
) -> Callable[[Any], bool] | None:
    if matcher is None:
        return None
    if isinstance(matcher, str):
        from .filter import parse_filter

        parsed = parse_filter(matcher, linktype)
        return None if parsed is None else parsed.match
    return matcher.match


async def _close_source(source: Source, task: asyncio.Task[None]) -> None:
    """Close a source and wait for its pump to end; cancel a pump that does not end in time."""
    try:
        await source.aclose()
    except Exception as exc:
        log.error("closing capture source failed: %s", exc)
    try:
        async with asyncio.timeout(SOURCE_STOP_TIMEOUT):
            await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
