"""ServiceSession: one session as the service runs it (in process, or as worker processes).

Holds what the service knows of a session beside the Session itself: its spec and origin, its
live stream subscribers, the shared encoder of their pcap records, its flight recorder (and the
dumps it wrote), its conversation and series sinks, and its final stats.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from typing import TYPE_CHECKING, Any

from .._errors import ConflictError, OptionError
from .._packet import LinkType, Stats
from .._session import Session
from ..sinks._conversations import ConversationSink
from ..sinks._pcap import PcapWriter, encode_records
from ..sinks._recorder import DumpInfo, FlightRecorder
from ..sinks._series import SeriesSink
from ._analysis import DumpRecord
from ._config import SessionSpec
from ._subscribers import BatchEncoder, Subscriber, SubscriberStats

if TYPE_CHECKING:
    from ._workers import WorkerGroup

__all__ = ["DUMPS_KEPT", "ServiceSession"]

#: The recorder dumps a session remembers (the latest), for its description.
DUMPS_KEPT = 16


class ServiceSession:
    """One session the service runs: a Session in this process, or a group of workers.

    Attributes:
        spec: the spec it was started from.
        origin: where the spec came from (the config file path, ``"request"`` or ``"adhoc"``).
        started: wall-clock start time (seconds since the epoch).
        session: the in-process Session, None for a worker group.
        workers: the worker group, None for an in-process session.
        linktype: link type of its frames.
        snaplen: its snapshot length.
        recorder: its flight recorder (a ``recorder`` sink), or None.
        conversations: its conversation counts, or None when it keeps none.
        series: its per-second I/O series, or None when it keeps none.
        dumps: the latest dumps its recorder wrote (at most ``DUMPS_KEPT``), oldest first.
        output_dir: the output directory (dump names are given relative to it).
    """

    def __init__(
        self,
        spec: SessionSpec,
        origin: str,
        session: Session | None,
        workers: WorkerGroup | None = None,
        *,
        output_dir: str = "",
    ) -> None:
        self.spec = spec
        self.origin = origin
        self.started = time.time()
        self.session = session
        self.workers = workers
        self.subscribers: list[Subscriber] = []
        self.final: Stats | None = None
        if session is not None:
            self.linktype, self.snaplen = session.linktype, session.snaplen
        else:
            assert workers is not None, "a session or a worker group"
            self.linktype, self.snaplen = workers.linktype, workers.snaplen
        self.dropped_by_gone_subscribers = 0
        snaplen = self.snaplen
        #: Encodes the pcap records of this session's live streams, once per batch.
        self.pcap_encoder = BatchEncoder(
            lambda b: encode_records(b, snaplen, nanosecond=True),
            lambda p: 16 + min(len(p[1]), snaplen),  # PCAP_RECORD and the captured bytes
        )
        self._monitor: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[Stats] | None = None
        self._pcap_file: PcapWriter | None = None
        self.recorder: FlightRecorder | None = None
        self.conversations: ConversationSink | None = None
        self.series: SeriesSink | None = None
        self.dumps: collections.deque[DumpRecord] = collections.deque(maxlen=DUMPS_KEPT)
        self.output_dir = output_dir
        for sink in session.sink_list() if session is not None else ():
            inner = getattr(sink, "inner", sink)  # a file the sink owns (OwnedStream)
            if isinstance(inner, PcapWriter) and inner.nanosecond and inner.snaplen == snaplen:
                self._pcap_file = self._pcap_file or inner
            elif isinstance(inner, FlightRecorder):
                self.recorder = inner
                inner.on_dump = self._dumped
            elif isinstance(inner, ConversationSink):
                self.conversations = inner
            elif isinstance(inner, SeriesSink):
                self.series = inner

    def _record(self, info: DumpInfo) -> DumpRecord:
        name = info.name
        if self.output_dir:
            name = os.path.relpath(name, self.output_dir)
        return DumpRecord.of(info, name)

    def _dumped(self, info: DumpInfo) -> None:
        """The recorder wrote a dump (called from the thread that wrote it)."""
        self.dumps.append(self._record(info))

    def dump(self) -> DumpRecord:
        """Write what the recorder holds to a new file now (blocking file IO: call it in a
        worker thread); capture goes on meanwhile.

        Raises:
            ConflictError: the session has no recorder sink, or is stopped.
            OSError: the file cannot be created or written.
        """
        recorder = self.recorder
        if recorder is None:
            raise ConflictError(
                f"session {self.name!r} has no flight recorder: give it a sink "
                '{"type": "recorder"} to keep its last seconds in memory'
            )
        if not self.running:
            raise ConflictError(f"session {self.name!r} is stopped: its recorder was closed")
        try:
            info = recorder.dump_file()
        except OptionError:  # closed meanwhile: the session was stopping
            raise ConflictError(f"session {self.name!r} is stopping") from None
        return self._record(info)

    def share_records(self, on: bool) -> None:
        """While live streams are attached, the pcap file hands them its encoded records."""
        if self._pcap_file is not None:
            self._pcap_file.publish = self.pcap_encoder.put if on else None
        if not on:
            self.pcap_encoder.clear()

    @property
    def name(self) -> str:
        """The session's name."""
        return self.spec.name

    @property
    def running(self) -> bool:
        """True until the session has been stopped and drained."""
        return self.final is None

    def stats(self) -> Stats:
        """The session's counters (summed over workers); the final ones once stopped."""
        if self.final is not None:
            return self.final
        if self.session is not None:
            return self.session.stats()
        assert self.workers is not None
        return self.workers.stats()

    def subscriber_stats(self) -> list[SubscriberStats]:
        """Counters of the live stream subscribers attached now."""
        return [s.stats() for s in self.subscribers]

    def info(self) -> dict[str, Any]:
        """A JSON-ready description: name, state, source, filter, stats, subscribers."""
        src = self.spec.source
        return {
            "name": self.name,
            "state": "running" if self.running else "stopped",
            "origin": self.origin,
            "started": self.started,
            "source": {"type": src.type, "interface": src.interface, "path": src.path},
            "filter": self.spec.filter,
            "snaplen": self.snaplen,
            "linktype": LinkType(self.linktype).name.lower(),
            "workers": self.spec.workers,
            "duration": self.spec.duration,
            "sinks": [{"type": s.type, "path": s.path} for s in self.spec.sinks],
            "stats": self.stats()._asdict(),
            "subscribers": [s._asdict() for s in self.subscriber_stats()],
            "recorder": self.recorder_info(),
            "conversations": self.conversations is not None,
            "series": self.series is not None,
        }

    def recorder_info(self) -> dict[str, Any] | None:
        """The recorder's counters (``dumps``: how many it wrote) and ``latest_dumps`` (the
        last ``DUMPS_KEPT``, oldest first); None without a recorder."""
        if self.recorder is None:
            return None
        return {
            **self.recorder.stats()._asdict(),
            "latest_dumps": [d._asdict() for d in self.dumps],
        }
