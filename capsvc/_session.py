"""The capture Session: matcher, snaplen copy, bounded queue, writer fanning out to sinks.

Rules this module keeps:
- ``offer()`` is synchronous and O(1); a full queue is a counted drop, never a wait.
- Every packet ever counted in ``packets`` reaches every healthy sink before ``done`` is set.
- Only the event loop's thread appends to the queue and touches the counters; the sinks run on
  the sink thread (``_sinkthread.py``), so a slow sink never blocks the loop: it only fills
  the queue, which then drops.
- It runs on asyncio (uvloop included) and on trio: what it asks of the loop (a background task
  for the source, the writer's hand-offs, waiting) goes through ``_aio.Loop``, looked up once at
  ``start()``; nothing of it is on the per-packet or per-batch path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from operator import itemgetter
from time import time_ns
from types import TracebackType
from typing import IO, Any, Self

from ._accel import speedups
from ._aio import Flag, Job, Loop
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
from ._subscriber import (
    ITERATOR_QUEUE_DEFAULT,
    BatchStream,
    PacketStream,
    Subscriber,
    SubscriberStats,
)
from .sinks._base import SessionAware, Sink
from .sources._base import Source, SourceStats

__all__ = ["Session"]

log = logging.getLogger("capsvc")

#: Queue capacity of a session fed only by ``offer`` when ``bufsize`` is 0.
OFFER_QUEUE_DEFAULT = 256
#: Queue capacity of a session with a source when ``bufsize`` is 0 (sized for line rate).
SOURCE_QUEUE_DEFAULT = 65536
#: How long ``stop()`` waits at most for a source to close and deliver its last batches.
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
        sinks: further sink objects (see ``capsvc.sinks.Sink``); ``[]`` when the session's
            only readers are ``packets()`` and ``batches()``.
        matcher: an object with ``match(data) -> bool``, a filter expression (parsed for
            ``linktype``), or None to accept everything (or, with a source that carries a
            ``userspace_filter`` expression its kernel could not take, to apply that). With a
            matcher and no source, the first 12 frames offered are also checked against
            ``linktype``: when most are not of it, one warning is logged
            ("12 of the first 12 frames are not raw IP: pass linktype=LinkType.ETHERNET?").
        verbose: text log adds TCP details and IP fields (like ``tcpdump -v``).
        ascii: text log adds the payload in ASCII (like ``tcpdump -A``).
        snaplen: bytes kept of each packet; 0 means 262144. The wire length is always kept.
        bufsize: queue capacity in packets; 0 means 256 without a source and 65536 with one.
        linktype: link type of offered frames; default RAW (bare IPv4/IPv6 packets, what a
            tun device such as WireGuard's carries); an Ethernet frame is LinkType.ETHERNET.
            A source's own link type takes precedence.
        pcapng: write ``output`` as pcapng instead of pcap.
        source: a Source to read from while the session runs; stopped by ``stop()``.
        limit: accept at most this many packets (like ``tcpdump -c``); 0 means no limit. Once
            reached, further frames are ignored and counted nowhere, the source is read no
            more, and ``limit_reached`` and ``ended`` are set. The caller still calls
            ``stop()`` (or ``wait()``, which does). With a source that is not live (a capture
            file), what it delivered past the packet that reached the limit was never looked
            at: ``stats().received`` leaves it out, as tcpdump counts.
        duration: accept packets for this many seconds after ``start()``; 0 means no end.
            Once passed, further frames are ignored as after ``limit`` and ``ended`` is set.
        name: what log lines call the session ("" leaves it out).

    The end of a capture: ``await session.wait()`` returns once it is over by itself (see
    ``wait``) and stops it, the same way for a capture file read to its end as for a live
    source with a ``limit`` or a ``duration``.

    Raises:
        ValueError: no sink at all was given ("at least one output sink required"; an
            explicit ``sinks=[]`` is a session read only through ``packets()``), or a
            negative snaplen, bufsize, limit or duration.
        capsvc.FilterError: ``matcher`` is a filter expression that is malformed or that the
            link type cannot express.
    """

    def __init__(
        self,
        *,
        output: IO[bytes] | str | os.PathLike[str] | None = None,
        text_output: IO[str] | str | os.PathLike[str] | None = None,
        sinks: Iterable[Sink] | None = None,
        matcher: Matcher | str | None = None,
        verbose: bool = False,
        ascii: bool = False,
        snaplen: int = 0,
        bufsize: int = 0,
        linktype: LinkType = LinkType.RAW,
        pcapng: bool = False,
        source: Source | None = None,
        limit: int = 0,
        duration: float = 0.0,
        name: str = "",
    ) -> None:
        extra = list(sinks) if sinks is not None else []
        if output is None and text_output is None and sinks is None:
            raise OptionError(
                "at least one output sink required (sinks=[] for a session read only through "
                "packets() or batches())"
            )
        if snaplen < 0 or bufsize < 0 or limit < 0 or duration < 0:
            raise OptionError("snaplen, bufsize, limit and duration must not be negative")
        self._source = source
        self.linktype = LinkType(source.linktype) if source is not None else LinkType(linktype)
        self.snaplen = snaplen or SNAPLEN_DEFAULT
        if bufsize == 0:
            bufsize = SOURCE_QUEUE_DEFAULT if source is not None else OFFER_QUEUE_DEFAULT
        self.bufsize = bufsize
        self.limit = limit
        self.duration = duration
        self.name = name
        if matcher is None and source is not None:
            # A source whose kernel could not take its filter leaves it for us to apply.
            matcher = getattr(source, "userspace_filter", None)
        self._match = match_function(matcher, self.linktype)
        self._probe: Callable[[], None] | None = None  # the link type check, until done
        if self._match is not None and source is None:
            from .decode._linkguess import probing

            self._match, self._probe = probing(self._match, self.linktype, self._probed)

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
        self._stopping: Job | None = None
        self._loop: Loop | None = None
        self._writer: SinkThread | None = None
        self._space = Flag()
        self._source_task: Job | None = None
        self._timer: Job | None = None
        self._subscribers: list[Subscriber] = []
        self._subscriber_ids = 0
        # Flags have asyncio.Event's methods (is_set, set, clear, await wait()) on any backend.
        #: Set once the writer has drained the queue, flushed and closed the sinks, and exited.
        self.done = Flag()
        #: Set when every sink has failed: nothing more can be written (a closed pipe, say).
        self.sinks_failed = Flag()
        #: Set when ``limit`` packets have been accepted.
        self.limit_reached = Flag()
        #: Set when the capture is over by itself or stopping: the source ended (or failed),
        #: ``limit`` or ``duration`` was reached, every sink failed, or ``stop()`` began.
        self.ended = Flag()
        #: The exception that ended the source early, if any.
        self.source_error: BaseException | None = None
        #: What went wrong closing the source in ``stop()``: the exception its ``aclose()``
        #: raised, or a TimeoutError when it did not end in time; None when it closed.
        self.source_close_error: BaseException | None = None
        #: The sinks ``stop()`` gave up waiting for (what each writes to), counted as failed.
        self.abandoned: list[str] = []

    # -- construction helpers ---------------------------------------------------------------

    def _probed(self, probe: MatchFunction, match: MatchFunction, warning: str | None) -> None:
        """The link type check is done (``decode._linkguess.probing``): the matcher itself
        takes over (``probe`` is the session's matcher until then: ``set_matcher`` ends the
        check before it replaces it), and the warning, if any, is logged once."""
        self._probe = None
        self._match = match
        if warning is not None:
            where = f"session {self.name}: " if self.name else ""
            log.warning("%s%s", where, warning)

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
        self._loop = loop = Loop.current()
        for sink in self._sinks:
            if isinstance(sink, SessionAware):
                sink.bind_session(self.stats, self.linktype)
        self._writer = SinkThread(
            self._queue,
            self._sinks,
            loop,
            on_space=self._space.set,
            on_all_failed=self._all_sinks_failed,
            on_done=self._writer_done,
            name=self.name,
        )
        self._writer.start()
        if self._queue:
            self._writer.wake()  # offers made before start
        if self._source is not None:
            self._source_task = loop.spawn(self._pump, self._source, name="capsvc-source")
        if self.duration > 0:
            self._timer = loop.spawn(self._expire, self.duration, name="capsvc-duration")

    async def _expire(self, seconds: float) -> None:
        assert self._loop is not None
        await self._loop.sleep(seconds)
        self._end_intake()

    def _all_sinks_failed(self) -> None:
        self.sinks_failed.set()
        self.ended.set()

    async def stop(self, timeout: float | None = STOP_TIMEOUT) -> Stats:
        """Stop: close the source, drain the queue to every sink, flush, close owned files.

        Idempotent; concurrent callers all wait for the same stop (the first caller's timeout
        holds). A session that was never started is drained too (started and stopped at once).

        In order: the source's ``aclose()`` starts and the source's last batches are taken until
        its iterator ends, for at most ``min(timeout, 5)`` seconds (5 with ``timeout=None``);
        a source still delivering then is cancelled. From there nothing more is accepted and
        the sinks take what is queued, for at most ``timeout`` seconds, while the source's
        close may go on (within that same first bound). So a source whose ``aclose()`` hangs or
        raises never costs the sinks their time: stop returns within about
        ``timeout + min(timeout, 5)`` seconds with every sink drained and closed unless a sink
        itself was stuck. A close that raised, or did not end within its bound (it goes on in
        the background), is logged and kept in ``source_close_error``.

        Args:
            timeout: seconds the sinks get to take what is queued, from the end of the intake,
                and at most what the source gets to wind down (default 5). A sink still busy
                then (a stalled pipe, a hung disk) is abandoned: it counts in ``sink_errors``,
                is named in ``abandoned`` and a log line, and gets nothing more; stop returns
                anyway. None waits for the sinks for ever (and 5 s for the source).

        Returns:
            The final stats.
        """
        stopping = self._stopping
        if stopping is None:
            self.ended.set()
            stopping = self._stopping = Loop.current().spawn(
                self._stop, timeout, name="capsvc-stop"
            )
        await stopping.wait()  # a caller cancelled meanwhile leaves the stop going on
        stopping.raise_error()
        return self.stats()

    async def wait(self) -> Stats:
        """Wait for the end of the capture, then stop it (as ``stop(timeout=None)``: every
        queued packet reaches the sinks, however slow) and return the final stats.

        The end is the first of: the source was read to its end or failed (a capture file; see
        ``source_error``), ``limit`` packets were accepted, ``duration`` seconds passed since
        ``start()``, every sink failed, or ``stop()`` was called (from another task). A live
        source without ``limit`` or ``duration``, or a session fed only by ``offer()``, ends
        only by ``stop()`` or failing sinks. Starts the session when it was not started.

        Cancelling the call cancels the wait; once the end came, the stop goes on regardless.
        """
        if self._writer is None and self._stopping is None:
            await self.start()
        await self.ended.wait()
        return await self.stop(timeout=None)

    async def _stop(self, timeout: float | None) -> None:
        if self._probe is not None:
            self._probe()  # fewer than 12 frames came: check those
        if self._writer is None:
            self._launch()
        loop = self._loop
        assert loop is not None and self._writer is not None
        if self._timer is not None:
            self._timer.cancel()
        closing: tuple[Source, Job, float, float] | None = None
        source, pump = self._source, self._source_task
        if pump is not None and source is not None:
            wait = SOURCE_STOP_TIMEOUT if timeout is None else min(SOURCE_STOP_TIMEOUT, timeout)
            until = loop.time() + wait
            closing = (source, loop.spawn(source.aclose, name="capsvc-source-close"), until, wait)
            if not await loop.wait_for(pump.finished, wait):
                pump.cancel()  # still delivering (or never told to end): its batch is dropped
                await pump.wait()
        self._closed = True
        self._writer.close()  # the sinks take what is queued while the source finishes closing
        drained = None if timeout is None else loop.time() + timeout
        if closing is not None:
            self.source_close_error = await _closed_error(loop, *closing)
        left = None if drained is None else max(0.0, drained - loop.time())
        if not await loop.wait_for(self.done, left):
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
        self.abandoned = writer.abandon()
        self._space.set()  # a source waiting for room stops waiting (its batch is dropped)
        where = f"session {self.name}: " if self.name else ""
        log.warning("%sstopped without waiting for %s", where, ", ".join(self.abandoned) or "sinks")
        self._writer_done()  # nothing is accepted from here on

    @property
    def sink_failures(self) -> list[BaseException]:
        """The error each failed sink failed with, in the order they failed."""
        return list(self._writer.failures) if self._writer is not None else []

    def _writer_done(self) -> None:
        self._closed = True
        self.ended.set()
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
        # (>= gives the same bytes: a frame of exactly snaplen bytes cut to snaplen is itself.)
        if size > self.snaplen:  # pragma: no mutate
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
        # Nothing happens once the loop is closed: the session is over.
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

        Returns at once without a source. The source's end ends the session's intake (as a
        limit does: nothing more is accepted, the writer drains and closes the sinks) but does
        not wait for that: call ``stop()`` after, or use ``wait()``, the end of a capture of
        any kind (a file, a limit, a duration), which does both.
        """
        if self._source_task is not None:
            await self._source_task.wait()

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
        if self._probe is not None:
            self._probe()
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

    # -- the application's own readers -------------------------------------------------------

    def packets(
        self, maxsize: int = ITERATOR_QUEUE_DEFAULT, filter: Matcher | str | None = None
    ) -> PacketStream:
        """An async iterator of the session's packets, for the caller's own task.

        ``async for packet in session.packets(): ...`` sees every packet the session accepts
        from now on (and what is queued for the sinks already), after the writer thread took
        it, as the sinks do. It never slows the capture: while the reader is behind, up to
        ``maxsize`` packets wait for it and the others are dropped, counted in its
        ``stats().dropped`` (and in ``subscriber_stats()``), for this iterator only; the
        session's own counters are those of the sinks (offered = packets + dropped + filtered
        still holds). The iteration ends once the session has stopped and the reader took
        what was queued; on a stopped session it ends at once. Use it as ``async with
        session.packets() as packets:`` (or call ``aclose()``) to leave early: that detaches it.

        Args:
            maxsize: packets held for a slow reader (at least 1); default 1024.
            filter: a filter of its own (an expression for the session's link type, or a
                Matcher); None passes everything. It runs on the writer thread; what it
                rejects counts in ``stats().filtered``.

        Raises:
            capsvc.FilterError: a malformed expression, or one the link type cannot express.
            RuntimeError: no event loop runs (call it from the task that reads).
        """
        return PacketStream(*self._subscribe(maxsize, filter))

    def batches(
        self, maxsize: int = ITERATOR_QUEUE_DEFAULT, filter: Matcher | str | None = None
    ) -> BatchStream:
        """``packets()``, as lists: each item is every packet that came since the reader last
        took some (a list of its own, in order); ``maxsize`` still counts packets."""
        return BatchStream(*self._subscribe(maxsize, filter))

    def subscriber_stats(self) -> list[SubscriberStats]:
        """The counters of the iterators attached now (``packets()``, ``batches()``)."""
        return [sub.stats() for sub in self._subscribers]

    def _subscribe(
        self, maxsize: int, filter: Matcher | str | None
    ) -> tuple[Subscriber, Callable[[Subscriber], None]]:
        if maxsize < 1:
            raise OptionError(f"maxsize must be at least 1, not {maxsize}")
        match = match_function(filter, self.linktype)
        self._subscriber_ids += 1
        text = filter.strip() if isinstance(filter, str) else "" if filter is None else repr(filter)
        sub = Subscriber(
            self._subscriber_ids,
            match=match,
            filter_text=text,
            capacity=maxsize,
        )
        if self.done.is_set():
            sub.close()  # nothing will ever come
        else:
            self._subscribers.append(sub)
            self.add_sink(sub)
        return sub, self._unsubscribe

    def _unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self.remove_sink(sub)

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
                    break  # pragma: no mutate (as return: only the finally follows)
                if waits:
                    await self._enqueue_waiting(self._matched(batch, source))
                else:
                    self._take(batch, source)
        except Exception as exc:  # a failing source ends the capture, the session drains
            self.source_error = exc
            where = f"session {self.name}: " if self.name else ""
            # A MemoryError has no message: say what it is.
            log.error("%scapture source failed: %s", where, str(exc) or type(exc).__name__)
        finally:
            # The source's end is the capture's, as a limit is: the writer drains what is
            # queued and closes the sinks (iterators end once they took what came).
            self._end_intake()

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
        # (<= gives the same packets: a source's are at most its snaplen, the Source contract.)
        if snaplen < source.snaplen:  # pragma: no mutate
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
        if self._closed:  # a held-back batch whose wait outlived the intake (duration, limit)
            return
        if self.limit:
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
        self._end_intake()
        self.limit_reached.set()

    def _end_intake(self) -> None:
        """Accept nothing more (the limit, the duration): the writer drains what is queued."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        self.ended.set()

    async def _enqueue_waiting(self, batch: PacketBatch | RecordBlock) -> None:
        writer = self._writer
        assert writer is not None
        while batch:
            # A record block waits for room for all of it (when it fits at all): cut, it would
            # be turned into Packets here, for every sink, instead of only for those needing them.
            need = min(len(batch), self.bufsize) if isinstance(batch, RecordBlock) else 1
            while self.bufsize - len(self._queue) < need:
                if writer.abandoned:  # the writer will never make room: these are dropped
                    self._dropped += len(batch)
                    return
                self._space.clear()
                writer.want_space = True
                writer.wake_now()
                if self.bufsize - len(self._queue) < need:  # still full once the writer knows
                    try:
                        await self._space.wait()
                    except BaseException:  # cancelled: stop() gave up on the source
                        self._dropped += len(batch)
                        raise
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
    # (< gives the same packet: one of exactly snaplen bytes cut to snaplen is itself.)
    if len(packet[1]) <= snaplen:  # pragma: no mutate
        return packet
    return packet._replace(data=packet[1][:snaplen])


async def _closed_error(
    loop: Loop, source: Source, closing: Job, until: float, bound: float
) -> BaseException | None:
    """Wait until ``until`` (the loop's time) at most for a source's ``aclose()``
    (``closing``), which had ``bound`` seconds in all; what went wrong with it, logged. A
    close still running then goes on in the background: a TimeoutError."""
    if not await loop.wait_for(closing.finished, max(0.0, until - loop.time())):
        log.error("closing capture source %r took longer than %.1f s", source, bound)
        return TimeoutError(f"closing capture source took longer than {bound:.1f} s")
    if closing.error is not None:
        log.error("closing capture source failed: %s", closing.error)
    return closing.error
