"""The capture Session: matcher, snaplen copy, bounded queue, writer fanning out to sinks.

Rules this module keeps:
- ``offer()`` is synchronous and O(1); a full queue is a counted drop, never a wait.
- Every packet ever counted in ``packets`` reaches every healthy sink before ``done`` is set.
- Only the event loop's thread appends to the queue and touches the counters; the sinks run on
  the sink thread (``_sinkthread.py``), so a slow sink never blocks the loop: it only fills the
  queue, which then drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from operator import itemgetter
from time import time_ns
from types import TracebackType
from typing import IO, Any, Self

from ._accel import speedups
from ._errors import OptionError
from ._packet import (
    SNAPLEN_DEFAULT,
    Direction,
    LinkType,
    Matcher,
    MatchFunction,
    Packet,
    PacketBatch,
    Stats,
    match_function,
)
from ._queue import PacketQueue
from ._records import RecordBlock
from ._sinkthread import SinkThread
from .sinks._base import SessionAware, Sink
from .sources._base import Source, SourceStats

__all__ = ["Session"]

log = logging.getLogger("capsvc")

#: Queue capacity of a session fed only by ``offer`` when ``bufsize`` is 0.
OFFER_QUEUE_DEFAULT = 256
#: Queue capacity of a session with a source when ``bufsize`` is 0 (sized for line rate).
SOURCE_QUEUE_DEFAULT = 65536
#: How long ``stop()`` waits for a source to wind down after ``aclose()`` before cancelling it.
SOURCE_STOP_TIMEOUT = 5.0
#: How long ``stop()`` waits by default for the sinks to take what is queued (seconds).
STOP_TIMEOUT = 5.0

_INBOUND = Direction.INBOUND
_OUTBOUND = Direction.OUTBOUND
_new_packet = tuple.__new__


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
            ``limit_reached`` is set. The caller still calls ``stop()``. With a source that
            is not live (a capture file), what it delivered past the packet that reached the
            limit was never looked at: ``stats().received`` leaves it out, as tcpdump counts.
        name: what log lines call the session ("" leaves it out).

    Raises:
        ValueError: no sink at all was given ("at least one output sink required"), or a
            negative snaplen or bufsize.
        capsvc.FilterError: ``matcher`` is a filter expression that is malformed or that the
            link type cannot express.
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
        name: str = "",
    ) -> None:
        extra = list(sinks)
        if output is None and text_output is None and not extra:
            raise OptionError("at least one output sink required")
        if snaplen < 0 or bufsize < 0:
            raise OptionError("snaplen and bufsize must not be negative")
        self._source = source
        self.linktype = LinkType(source.linktype) if source is not None else LinkType(linktype)
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        if bufsize == 0:
            bufsize = SOURCE_QUEUE_DEFAULT if source is not None else OFFER_QUEUE_DEFAULT
        self.bufsize = bufsize
        self.limit = limit
        self.name = name
        if matcher is None and source is not None:
            # A source whose kernel could not take its filter leaves it for us to apply.
            matcher = getattr(source, "userspace_filter", None)
        self._match = match_function(matcher, self.linktype)

        built: list[Sink] = []
        if output is not None:
            built.append(self._binary_sink(output, pcapng))
        if text_output is not None:
            built.append(self._text_sink(text_output, verbose, ascii))
        self._sinks: list[Sink] = [*built, *extra]

        self._queue = PacketQueue()
        self._packets = 0
        self._bytes = 0
        self._dropped = 0
        self._filtered = 0
        self._unread = 0  # a capture file's packets delivered past the limit
        self._closed = False  # offers are ignored from here on
        self._stopping: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: SinkThread | None = None
        self._space = asyncio.Event()
        self._source_task: asyncio.Task[None] | None = None
        #: Set once the writer has drained the queue, flushed and closed the sinks, and exited.
        self.done = asyncio.Event()
        #: Set when every sink has failed: nothing more can be written (a closed pipe, say).
        self.sinks_failed = asyncio.Event()
        #: Set when ``limit`` packets have been accepted.
        self.limit_reached = asyncio.Event()
        #: The exception that ended the source early, if any.
        self.source_error: BaseException | None = None
        #: The sinks ``stop()`` gave up waiting for (what each writes to), counted as failed.
        self.abandoned: list[str] = []

    # -- construction helpers ---------------------------------------------------------------

    def _path_sink(self, kind: str, path: str | os.PathLike[str], **options: Any) -> Sink:
        """A sink owning a file it creates at ``path`` (0600; never through a symbolic link,
        never a FIFO or device: ``capsvc._files``)."""
        from ._files import Directory
        from .sinks._build import SinkSpec, open_sink

        where, name = os.path.split(os.path.abspath(os.fspath(path)))
        with Directory(where) as directory:
            return open_sink(
                SinkSpec(kind, name, **options), directory, self.linktype, self.snaplen
            )

    def _binary_sink(self, output: IO[bytes] | str | os.PathLike[str], pcapng: bool) -> Sink:
        kind = "pcapng" if pcapng else "pcap"
        if isinstance(output, str | os.PathLike):
            return self._path_sink(kind, output)
        from .sinks._build import SinkSpec, stream_sink

        return stream_sink(SinkSpec(kind), output, self.linktype, self.snaplen)

    def _text_sink(
        self, output: IO[str] | str | os.PathLike[str], verbose: bool, ascii: bool
    ) -> Sink:
        if isinstance(output, str | os.PathLike):
            return self._path_sink("text", output, verbose=verbose, ascii=ascii)
        from .sinks._build import SinkSpec, stream_sink

        spec = SinkSpec("text", verbose=verbose, ascii=ascii)
        return stream_sink(spec, output, self.linktype, self.snaplen)

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
        if self._writer is None:
            self._launch()

    def _launch(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        for sink in self._sinks:
            if isinstance(sink, SessionAware):
                sink.bind_session(self.stats, self.linktype)
        self._writer = SinkThread(
            self._queue,
            self._sinks,
            loop,
            on_space=self._space.set,
            on_all_failed=self.sinks_failed.set,
            on_done=self._writer_done,
            name=self.name,
        )
        self._writer.start()
        if self._queue:
            self._writer.wake()  # offers made before start
        if self._source is not None:
            self._source_task = asyncio.create_task(self._pump(self._source), name="capsvc-source")

    async def stop(self, timeout: float | None = STOP_TIMEOUT) -> Stats:
        """Stop: close the source, drain the queue to every sink, flush, close owned files.

        Idempotent; concurrent callers all wait for the same stop (the first caller's timeout
        holds). A session that was never started is drained too (started and stopped at once).

        Args:
            timeout: seconds to wait for the source to wind down and the sinks to take what is
                queued (default 5). A sink still busy then (a stalled pipe, a hung disk) is
                abandoned: it counts in ``sink_errors``, is named in ``abandoned`` and a log
                line, and gets nothing more; stop returns anyway. None waits for ever.

        Returns:
            The final stats.
        """
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        await asyncio.shield(self._stopping)
        return self.stats()

    async def _stop(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._writer is None:
            self._launch()
        if self._source_task is not None and self._source is not None:
            wait = SOURCE_STOP_TIMEOUT
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - loop.time()))
            await _close_source(self._source, self._source_task, wait)
        self._closed = True
        assert self._writer is not None
        self._writer.close()
        try:
            async with asyncio.timeout_at(deadline):
                await self.done.wait()
        except TimeoutError:
            self.abandoned = self._writer.abandon()
            self._space.set()
            where = f"session {self.name}: " if self.name else ""
            log.error(
                "%sgave up waiting for %s after %.1f s: abandoned, counted as a sink error",
                where,
                ", ".join(self.abandoned) or "the writer",
                timeout or 0.0,
            )
            self._writer_done()

    def abandon(self) -> None:
        """Stop waiting for the sinks now (a second Ctrl-C, a stalled pipe at the end of a job):
        the sink being written is counted as failed and named in ``abandoned``, nothing more is
        written, and a pending ``stop()`` returns. Does nothing once the writer has finished."""
        writer = self._writer
        if writer is None or self.done.is_set():
            return
        self._closed = True
        self.abandoned = writer.abandon()
        self._space.set()  # a source waiting for room stops waiting (its batch is dropped)
        where = f"session {self.name}: " if self.name else ""
        log.warning("%sstopped without waiting for %s", where, ", ".join(self.abandoned) or "sinks")
        self._writer_done()

    @property
    def sink_failures(self) -> list[BaseException]:
        """The error each failed sink failed with, in the order they failed."""
        return list(self._writer.failures) if self._writer is not None else []

    def _writer_done(self) -> None:
        self._closed = True
        self.done.set()

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
        if match is not None and not match(data, len(data) if wire_len is None else wire_len):
            self._filtered += 1
            return
        queue = self._queue
        queued = len(queue)
        if queued >= self.bufsize:
            self._dropped += 1
            return
        size = len(data)
        wl = size if wire_len is None else wire_len
        if size > self.snaplen:
            data = bytes(data[: self.snaplen])
        elif type(data) is not bytes:
            data = bytes(data)
        queue.put_one(
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
        if queued == 0 and self._writer is not None:
            self._writer.wake()  # the queue was empty: the writer may be asleep
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
        writer = self._writer
        return Stats(
            self._packets,
            self._bytes,
            self._dropped,
            self._filtered,
            src.kernel_dropped,
            writer.sink_errors if writer is not None else 0,
            writer.written if writer is not None else 0,
            len(self._queue),
            src.received - self._unread,
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
        return self._writer is not None and not self.done.is_set()

    @property
    def source(self) -> Source | None:
        """The attached source, if any."""
        return self._source

    def sink_list(self) -> list[Sink]:
        """The sinks this session writes to, built-in ones first."""
        if self._writer is not None:
            return [slot.sink for slot in self._writer.slots]
        return list(self._sinks)

    def set_matcher(
        self, matcher: Matcher | str | None, *, before: PacketBatch | None = None
    ) -> None:
        """Replace the session's matcher (a filter expression is parsed for ``linktype``).

        Frames offered, and batches the source delivers, from now on meet the new one; what is
        queued already stays. Parse the expression beforehand (``capsvc.filter.parse_filter``,
        in a worker thread for a large one) and pass the result to keep the loop free.

        Args:
            matcher: as the constructor's ``matcher``.
            before: packets the source delivered under the old filter (what
                ``AfPacketSource`` read out of its ring while changing its kernel filter):
                taken first, through the old matcher, as the source pump would.

        Raises:
            capsvc.FilterError: a malformed expression, or one the link type cannot express.
        """
        new = match_function(matcher, self.linktype)
        if before and not self._closed and self._source is not None:
            self._take(before, self._source)
        self._match = new

    def add_sink(self, sink: Sink) -> None:
        """Attach a further sink to a session (it sees packets queued from now on)."""
        if isinstance(sink, SessionAware):
            sink.bind_session(self.stats, self.linktype)
        if self._writer is not None:
            self._writer.add(sink)
        else:
            self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        """Detach a sink added with ``add_sink``; it is not closed. Unknown sinks are ignored."""
        if self._writer is not None:
            self._writer.remove(sink)
        else:
            self._sinks = [s for s in self._sinks if s is not sink]

    # -- the source pump --------------------------------------------------------------------

    async def _pump(self, source: Source) -> None:
        """Move the source's batches into the queue (backpressure for sources that aren't live)."""
        waits = not source.live or getattr(source, "buffered", False)
        # A source that can hand over RecordBlocks (capsvc._records) is read that way: the
        # packets are built only where something needs them (see _matched and the sink thread).
        record_batches = getattr(source, "record_batches", None)
        batches: AsyncIterator[PacketBatch | RecordBlock] = (
            record_batches() if record_batches is not None else aiter(source)
        )
        try:
            async for batch in batches:
                if self._closed:
                    if not source.live:
                        self._unread += len(batch)
                    break
                if waits:
                    await self._enqueue_waiting(self._matched(batch, source))
                else:
                    self._take(batch, source)
        except Exception as exc:  # a failing source ends the capture, the session drains
            self.source_error = exc
            where = f"session {self.name}: " if self.name else ""
            # A MemoryError has no message: say what it is.
            log.error("%scapture source failed: %s", where, str(exc) or type(exc).__name__)

    def _matched(
        self, batch: PacketBatch | RecordBlock, source: Source
    ) -> PacketBatch | RecordBlock:
        """The packets of a source's batch the matcher keeps (counting the others), snapped."""
        match = self._match  # read per batch: set_matcher may replace it
        snaplen = self.snaplen
        limited = self.limit and not source.live
        if isinstance(batch, RecordBlock):
            if match is None and snaplen >= source.snaplen and not limited:
                return batch
            batch = batch.packets()
        if limited:
            batch = self._up_to_limit(batch, match)
        elif match is not None:
            kept = [p for p in batch if match(p[1], p[2])]
            self._filtered += len(batch) - len(kept)
            batch = kept
        if snaplen < source.snaplen:
            batch = [_snap(p, snaplen) for p in batch]
        return batch

    def _up_to_limit(self, batch: PacketBatch, match: MatchFunction | None) -> PacketBatch:
        """A capture file's batch, matched, up to the packet that reaches ``limit``; the
        packets after it are counted as unread (neither received nor filtered)."""
        left = self.limit - self._packets
        if match is None:
            kept, examined = batch[:left], min(left, len(batch))
        else:
            kept, examined = [], len(batch)
            for i, p in enumerate(batch):
                if match(p[1], p[2]):
                    kept.append(p)
                    if len(kept) >= left:
                        examined = i + 1
                        break
            self._filtered += examined - len(kept)
        self._unread += len(batch) - examined
        return kept

    def _take(self, batch: PacketBatch | RecordBlock, source: Source) -> None:
        """A live source's batch into the queue (what does not fit is a counted drop)."""
        self._enqueue(self._matched(batch, source))

    def _enqueue(self, batch: PacketBatch | RecordBlock) -> None:
        if self.limit:
            if self._closed:
                return
            batch = _head(batch, self.limit - self._packets)
        queue = self._queue
        room = self.bufsize - len(queue)
        if room <= 0:
            self._dropped += len(batch)
            return
        if len(batch) > room:
            self._dropped += len(batch) - room
            batch = _head(batch, room)
        if not batch:
            return
        was_empty = not queue
        queue.put(batch)
        writer = self._writer
        if writer is not None:
            if was_empty:
                writer.wake()
            elif len(queue) > self.bufsize // 2:
                writer.wake_now()  # filling up: do not wait for the writer's next look
        self._packets += len(batch)
        self._bytes += batch.wire if isinstance(batch, RecordBlock) else _wire_total(batch)
        if self._packets == self.limit:
            self._reach_limit()

    def _reach_limit(self) -> None:
        """Stop accepting: later frames are ignored; the writer still drains what is queued."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        self.limit_reached.set()

    async def _enqueue_waiting(self, batch: PacketBatch | RecordBlock) -> None:
        writer = self._writer
        assert writer is not None
        while batch:
            while len(self._queue) >= self.bufsize:
                if writer.abandoned:  # the writer will never make room: these are dropped
                    self._dropped += len(batch)
                    return
                self._space.clear()
                writer.want_space = True
                writer.wake_now()
                if len(self._queue) >= self.bufsize:  # still full once the writer knows
                    await self._space.wait()
            room = self.bufsize - len(self._queue)
            if len(batch) <= room:
                self._enqueue(batch)
                return
            packets = _packets(batch)
            self._enqueue(packets[:room])
            batch = packets[room:]


_NO_SOURCE_STATS = SourceStats()
_C = speedups()
#: The sum of a batch's wire lengths (in C when the speed-ups are built).
_wire_total: Callable[[PacketBatch], int] = (
    _C.wire_total if _C is not None else lambda batch: sum(map(itemgetter(2), batch))
)


def _packets(batch: PacketBatch | RecordBlock) -> PacketBatch:
    return batch.packets() if isinstance(batch, RecordBlock) else batch


def _head(batch: PacketBatch | RecordBlock, count: int) -> PacketBatch | RecordBlock:
    """The first ``count`` packets of a batch (a RecordBlock kept whole when it fits)."""
    if len(batch) <= count:
        return batch
    return _packets(batch)[:count]


def _snap(packet: Packet, snaplen: int) -> Packet:
    if len(packet[1]) <= snaplen:
        return packet
    return packet._replace(data=packet[1][:snaplen])


async def _close_source(
    source: Source, task: asyncio.Task[None], wait: float = SOURCE_STOP_TIMEOUT
) -> None:
    """Close a source and wait for its pump to end; cancel a pump that does not end in time."""
    try:
        async with asyncio.timeout(wait):
            await asyncio.shield(asyncio.ensure_future(source.aclose()))
    except TimeoutError:
        log.error("closing capture source %r took longer than %.1f s", source, wait)
    except Exception as exc:
        log.error("closing capture source failed: %s", exc)
    try:
        async with asyncio.timeout(wait):
            await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
