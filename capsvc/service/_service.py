"""CaptureService: named capture sessions started, stopped, listed and streamed.

Usable embedded in any asyncio application; the HTTP API (``_http``) is a thin layer over it.
Rules it keeps: a name is taken by at most one running session; a path by at most one writer
(``_claims``); limits (sessions, subscribers, duration, the memory of flight recorders) are
checked before anything is opened;
a session that fails to start leaves nothing open; nothing that can take long (parsing and
compiling a filter, opening files and sockets) runs on the event loop; a reload never truncates
what a session wrote; ``stop()`` drains every session to its sinks before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from .._errors import CapsvcError, ConflictError, NotFoundError, ServiceError
from .._files import Directory
from .._packet import MatchFunction, Stats
from .._session import Session
from ..sinks._base import Sink
from ..sources._base import Source
from ._analysis import analysis_sinks
from ._claims import PathClaims
from ._config import (
    ServiceConfig,
    SessionSpec,
    SourceSpec,
    check_filter_size,
    parse_session_spec,
)
from ._managed import ServiceSession
from ._outputs import FilePolicy, build_sinks, file_policy, open_output, open_source, sink_paths
from ._subscribers import SUBSCRIBER_QUEUE_DEFAULT, Subscriber

__all__ = ["CaptureService", "ServiceSession"]

log = logging.getLogger("capsvc.service")

#: Stopped sessions remembered (with their final stats) for GET until deleted.
FINISHED_KEPT = 64

T = TypeVar("T")

#: A TCP connection to leave out of a capture: (local address, local port, peer, peer port).
Connection = tuple[str, int, str, int]


class CaptureService:
    """Runs named capture sessions from a ServiceConfig.

    Args:
        config: the validated configuration (``load_config``).
        user: worker processes drop root to this user after opening their sockets (``serve
            --user``); None keeps them as they are.

    Use ``await start()`` to create the output directory and start the autostart sessions, and
    ``await stop()`` to stop and drain everything. The service works without the HTTP API.
    """

    def __init__(self, config: ServiceConfig, *, user: str | None = None) -> None:
        self.config = config
        self.user = user
        self._running: dict[str, ServiceSession] = {}
        self._finished: dict[str, ServiceSession] = {}
        self._starting: set[str] = set()
        self._ids = itertools.count(1)
        self._subscriber_count = 0
        #: The paths the running sessions read and write (one writer per path).
        self.claims = PathClaims()
        self._output: Directory | None = None
        self._input: Directory | None = None
        self._files: FilePolicy | None = None
        #: Bytes the flight recorders of running (and starting) sessions may hold, by name.
        self._recorder_bytes: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def output_dir(self) -> str:
        """The directory every capture file lives in."""
        return self.config.service.output_dir

    @property
    def input_dir(self) -> str:
        """The directory file sources are read from (the output directory unless set)."""
        return self.config.service.input_directory

    @property
    def files(self) -> FilePolicy:
        """How the service creates files: ``file_mode`` and ``file_group``, the group looked
        up at the first use (a ConfigError when there is no such group)."""
        if self._files is None:
            self._files = file_policy(self.config.service, self.config.path or "config")
        return self._files

    def _output_directory(self) -> Directory:
        """The output directory, held open (created when missing, mode 0700 unless
        ``file_mode`` lets others read: ``_outputs.open_output``)."""
        if self._output is None:
            self._output = open_output(self.output_dir, self.files)
        return self._output

    def _input_directory(self) -> Directory:
        """The input directory, held open from its first use.

        Raises:
            NotFoundError: it does not exist.
        """
        if self._input is None:
            try:
                self._input = Directory(self.input_dir)
            except FileNotFoundError:
                raise NotFoundError(
                    f"the input directory {self.input_dir} does not exist"
                ) from None
        return self._input

    def _close_directories(self) -> None:
        for directory in (self._output, self._input):
            if directory is not None:
                directory.close()
        self._output = self._input = None

    async def start(self) -> None:
        """Create the output directory (0700) and start every autostart session.

        Raises:
            ConfigError: ``file_group`` names no group here.
            ConfigError, capsvc.CapsvcError, OSError: a session failed to start; the sessions
                already started are stopped again first, so nothing is left half-started.
        """
        self._output_directory()
        try:
            for spec in self.config.sessions:
                if spec.autostart:
                    await self.start_session(spec, origin=self.config.path or "config")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> dict[str, Stats]:
        """Stop every running session, draining each to its sinks.

        Returns:
            The final stats of each session stopped, by name.
        """
        names = list(self._running)
        results = await asyncio.gather(
            *(self.stop_session(n, forget=False) for n in names), return_exceptions=True
        )
        final: dict[str, Stats] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                log.error("stopping session %s failed: %s", name, result)
            else:
                final[name] = result
        if not self._running and not self._starting:
            self._close_directories()
        return final

    # -- sessions ---------------------------------------------------------------------------

    def sessions(self) -> list[ServiceSession]:
        """Running sessions, then stopped ones still remembered."""
        return [*self._running.values(), *self._finished.values()]

    def get(self, name: str) -> ServiceSession:
        """The session called ``name``, running or stopped.

        Raises:
            NotFoundError: no such session.
        """
        found = self._running.get(name) or self._finished.get(name)
        if found is None:
            raise NotFoundError(f"no session named {name!r}")
        return found

    async def start_session(
        self,
        spec: SessionSpec | Mapping[str, Any],
        *,
        origin: str = "request",
        keep: bool = False,
    ) -> ServiceSession:
        """Open a session's source and sinks and start it.

        Parsing the spec, compiling its filter and opening its files and sockets happen in a
        worker thread: the event loop (and the API) go on meanwhile.

        Args:
            spec: the session spec: a ``SessionSpec``, or a mapping with the keys of a
                ``[[session]]`` table of the configuration (validated here).
            origin: where it comes from: the config path, ``"request"`` (duration capped by
                ``max_duration``) or ``"adhoc"``.
            keep: keep what the sink files hold (a session restarted by a reload): appended
                to, never truncated (see ``capsvc.sinks._build``).

        Returns:
            The running session.

        Raises:
            ConflictError: the name is taken, ``max_sessions`` are running, its recorder would
                take the flight recorders past ``max_recorder_bytes``, or a file the session
                would write is another session's (or the one it reads).
            capsvc.service.ConfigError: a bad spec; PathOutsideError for a path leaving the
                output directory; NoSuchInterfaceError for an unknown interface.
            FilterError: a malformed filter (with its caret).
            capsvc.CapsvcError, OSError: the source or a file could not be opened.
        """
        settings = self.config.service
        if not isinstance(spec, SessionSpec):
            spec = await asyncio.to_thread(
                parse_session_spec,
                spec,
                origin=origin,
                max_filter_bytes=settings.max_filter_bytes,
            )
        if spec.name in self._running or spec.name in self._starting:
            raise ConflictError(f"a session named {spec.name!r} is already running")
        if len(self._running) + len(self._starting) >= settings.max_sessions:
            raise ConflictError(f"session limit reached ({settings.max_sessions} running)")
        if (
            origin in ("request", "adhoc")
            and settings.max_duration
            and (not spec.duration or spec.duration > settings.max_duration)
        ):
            spec = replace(spec, duration=settings.max_duration)
        check_filter_size(spec.filter, settings.max_filter_bytes, origin, "filter")
        output = self._output_directory()
        recorder = sum(s.max_bytes for s in spec.sinks if s.type == "recorder")
        held = sum(self._recorder_bytes.values())
        if recorder and held + recorder > settings.max_recorder_bytes:
            raise ConflictError(
                f"flight recorder memory limit reached: {held} bytes held by others, "
                f"{recorder} asked, max_recorder_bytes {settings.max_recorder_bytes}"
            )
        self._starting.add(spec.name)
        self._recorder_bytes[spec.name] = recorder
        try:
            self._claim(spec, output)
            try:
                if spec.workers > 1:
                    from ._workers import WorkerGroup

                    group = WorkerGroup(
                        spec,
                        self.output_dir,
                        origin=origin,
                        user=self.user,
                        keep=keep,
                        files=self.files,
                    )
                    await group.start()
                    managed = ServiceSession(spec, origin, None, group)
                else:
                    session = await _in_thread(self._open_session, spec, origin, keep)
                    # Before the first packet: a trigger dump is then always remembered.
                    managed = ServiceSession(spec, origin, session, output_dir=output.path)
                    await session.start()
            except BaseException:
                self.claims.release(spec.name)
                raise
        except BaseException:
            self._recorder_bytes.pop(spec.name, None)
            raise
        finally:
            self._starting.discard(spec.name)
        self._finished.pop(spec.name, None)
        self._running[spec.name] = managed
        managed._monitor = asyncio.create_task(self._watch(managed), name=f"capsvc-{spec.name}")
        log.info("session %s started (%s)", spec.name, origin)
        return managed

    def _claim(self, spec: SessionSpec, output: Directory) -> None:
        """Take the paths the session writes and reads (ConflictError naming one taken)."""
        out = os.path.realpath(output.path)
        writes = [(PathClaims.key(out, path), part) for path, part in sink_paths(spec)]
        reads = []
        if spec.source.type == "file":
            where = os.path.realpath(self.input_dir)
            reads.append((PathClaims.key(where, spec.source.path), "source"))
        self.claims.claim(spec.name, writes=writes, reads=reads)

    def _open_session(self, spec: SessionSpec, origin: str, keep: bool) -> Session:
        """Open the source and the sinks and build the Session (run in a worker thread)."""
        input_dir = self._input_directory() if spec.source.type == "file" else self.input_dir
        source = open_source(spec, input_dir, origin=origin)
        sinks: list[Sink] = []
        output = self._output_directory()
        realout = os.path.realpath(output.path)

        def claim(part: str, path: str) -> None:
            self.claims.claim_write(
                spec.name, part, os.path.join(realout, os.path.relpath(path, output.path))
            )

        try:
            snaplen = min(spec.snaplen or source.snaplen, source.snaplen)
            sinks = build_sinks(spec, output, source.linktype, snaplen, keep=keep, claim=claim)
            if origin != "adhoc":
                sinks += analysis_sinks(spec, self.config.service)
            # Live sources filter in the kernel (the Session matches what BPF cannot hold);
            # a file source is filtered by the Session.
            matcher: str | None = getattr(source, "userspace_filter", None)
            if spec.source.type == "file":
                matcher = spec.filter or None
            return Session(
                sinks=sinks,
                source=source,
                snaplen=snaplen,
                bufsize=spec.queue_size,
                matcher=matcher,
                name=spec.name,
            )
        except BaseException:
            for sink in sinks:
                with contextlib.suppress(Exception):
                    sink.close()
            _close_now(source)
            raise

    async def _watch(self, managed: ServiceSession) -> None:
        """Stop a session when its duration passes or its source ends (a file read through)."""
        waits: list[asyncio.Future[Any]] = []
        if managed.session is not None:
            waits.append(asyncio.ensure_future(managed.session.wait_source()))
        elif managed.workers is not None:
            waits.append(asyncio.ensure_future(managed.workers.wait()))
        try:
            await asyncio.wait(waits, timeout=managed.spec.duration or None)
        finally:
            for w in waits:
                w.cancel()
        if managed.running and self._running.get(managed.name) is managed:
            with contextlib.suppress(ServiceError):
                await self.stop_session(managed.name, forget=False)

    async def stop_session(self, name: str, *, forget: bool = True) -> Stats:
        """Stop a session: close its source, drain its queue to every sink, close its files.

        Args:
            name: the session; a stopped one still remembered is forgotten and its final stats
                returned.
            forget: drop it from ``sessions()`` (default); False keeps it listed as stopped,
                with its final stats, until stopped again.

        Returns:
            The final stats.

        Raises:
            NotFoundError: no such session.
        """
        managed = self._running.get(name)
        if managed is None:
            done = self._finished.pop(name, None)
            if done is None or done.final is None:
                raise NotFoundError(f"no session named {name!r}")
            return done.final
        if managed._stopping is None:
            managed._stopping = asyncio.ensure_future(self._stop(managed))
        final = await asyncio.shield(managed._stopping)
        if forget and self._finished.get(name) is managed:
            del self._finished[name]
        return final

    async def _stop(self, managed: ServiceSession) -> Stats:
        if managed.session is not None:
            await managed.session.stop()
            final = managed.session.stats()
        else:
            assert managed.workers is not None
            final = await managed.workers.stop()
        managed.final = final
        self.claims.release(managed.name)
        self._recorder_bytes.pop(managed.name, None)
        for sub in list(managed.subscribers):
            sub.close()
        if self._running.get(managed.name) is managed:
            del self._running[managed.name]
        if managed.origin != "adhoc":
            self._finished[managed.name] = managed
            while len(self._finished) > FINISHED_KEPT:
                self._finished.pop(next(iter(self._finished)))
        current = asyncio.current_task()
        if managed._monitor is not None and managed._monitor is not current:
            managed._monitor.cancel()
        log.info("session %s stopped: %s", managed.name, dict(final._asdict()))
        return final

    # -- live streams -----------------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        filter_text: str = "",
        capacity: int = SUBSCRIBER_QUEUE_DEFAULT,
        *,
        match: MatchFunction | None = None,
    ) -> tuple[ServiceSession, Subscriber]:
        """Attach a live stream subscriber to a running session.

        Args:
            name: the session.
            filter_text: the subscriber's own filter ("" for every packet).
            capacity: its queue capacity in packets.
            match: ``filter_text`` already parsed for the session's link type (by
                ``parse_subscriber_filter``, in a worker thread); None parses it here.

        Returns:
            The session and the subscriber (read it with ``get()``; ``unsubscribe`` after).

        Raises:
            NotFoundError: no running session by that name.
            ConflictError: ``max_subscribers`` reached, or the session runs in workers.
            FilterError: a malformed filter (with its caret message).
        """
        managed = self._running.get(name)
        if managed is None or managed.session is None:
            if managed is None:
                raise NotFoundError(f"no running session named {name!r}")
            raise ConflictError(
                f"session {name!r} runs in worker processes; live streams "
                "need a session with workers = 1"
            )
        limit = self.config.service.max_subscribers
        if self._subscriber_count >= limit:
            raise ConflictError(f"subscriber limit reached ({limit} streams)")
        if match is None and filter_text.strip():
            match = self.parse_subscriber_filter(filter_text, managed)
        sub = Subscriber(
            next(self._ids),
            match=match,
            filter_text=filter_text.strip(),
            capacity=capacity,
        )
        managed.session.add_sink(sub)
        managed.subscribers.append(sub)
        managed.share_records(True)
        self._subscriber_count += 1
        return managed, sub

    def parse_subscriber_filter(
        self, filter_text: str, managed: ServiceSession
    ) -> MatchFunction | None:
        """A subscriber's filter parsed for the session's link type (CPU: call it in a worker
        thread for anything but a short expression).

        Raises:
            ConfigError: longer than ``max_filter_bytes``.
            FilterError: malformed, or the link type cannot express it.
        """
        from ..filter import parse_filter

        check_filter_size(filter_text, self.config.service.max_filter_bytes, "request", "filter")
        parsed = parse_filter(filter_text, managed.linktype)
        return None if parsed is None else parsed.match

    def unsubscribe(self, managed: ServiceSession, sub: Subscriber) -> None:
        """Detach a subscriber (idempotent)."""
        if sub in managed.subscribers:
            managed.subscribers.remove(sub)
            self._subscriber_count -= 1
            managed.dropped_by_gone_subscribers += sub.stats().dropped
            if managed.session is not None:
                managed.session.remove_sink(sub)
            if not managed.subscribers:
                managed.share_records(False)
        sub.close()

    async def adhoc(
        self,
        interface: str,
        filter_text: str,
        duration: float,
        snaplen: int,
        *,
        exclude: Sequence[Connection] = (),
    ) -> tuple[ServiceSession, Subscriber]:
        """Start an ad hoc AF_PACKET capture feeding one subscriber.

        Args:
            interface: the interface.
            filter_text: a filter expression ("" for everything).
            duration: seconds; 0 or more than ``max_duration`` means ``max_duration``.
            snaplen: bytes kept per packet; 0 means 262144.
            exclude: TCP connections left out in the kernel filter (the API connection the
                capture streams to: else it would capture its own stream, growing without end).

        Returns:
            The session and its subscriber; stop the session with ``stop_session`` after.

        Raises:
            Same as ``start_session`` and ``subscribe``.
        """
        limit = self.config.service.max_subscribers
        if self._subscriber_count >= limit:
            raise ConflictError(f"subscriber limit reached ({limit} streams)")
        check_filter_size(filter_text, self.config.service.max_filter_bytes, "request", "filter")
        spec = SessionSpec(
            name=f"capture-{next(self._ids)}",
            source=SourceSpec(type="afpacket", interface=interface),
            filter=without_connections(filter_text.strip(), exclude),
            snaplen=snaplen,
            duration=duration,
        )
        managed = await self.start_session(spec, origin="adhoc")
        try:
            _, sub = self.subscribe(spec.name)
        except BaseException:
            await self.stop_session(spec.name)
            raise
        return managed, sub

    @property
    def subscriber_count(self) -> int:
        """Live stream subscribers attached now, service-wide."""
        return self._subscriber_count

    # -- reload -----------------------------------------------------------------------------

    async def reload(self, config: ServiceConfig) -> tuple[list[str], list[str]]:
        """Apply a new configuration: limits change, added sessions start, removed ones stop,
        unchanged ones (and API-started ones) keep running. A changed session keeps what it
        wrote: when only its filter changed and its source can swap filters (AF_PACKET in this
        process, a capture file), the filter is replaced in place without stopping it; else it
        is stopped and started again with ``keep`` (its files appended to, never truncated).

        Args:
            config: the new validated configuration (same output directory expected).

        Returns:
            (names started, names stopped); a session restarted is in both, one changed in
            place in neither.
        """
        old = {s.name: s for s in self.config.sessions}
        new = {s.name: s for s in config.sessions}
        origin = config.path or "config"
        self.config = config
        stopped: list[str] = []
        started: list[str] = []
        restarted: set[str] = set()
        for name, spec in old.items():
            managed = self._running.get(name)
            if managed is None or managed.origin in ("request", "adhoc"):
                continue
            wanted = new.get(name)
            if wanted == spec and wanted.autostart:
                continue
            if (
                wanted is not None
                and wanted.autostart
                and replace(spec, filter=wanted.filter) == wanted
            ):
                try:
                    if await self._refilter(managed, wanted):
                        log.warning("reload: session %s: filter replaced in place", name)
                        continue
                except (CapsvcError, OSError, RecursionError) as exc:
                    log.error("reload: session %s: the new filter is refused: %s", name, exc)
                    continue  # the session goes on with its old filter
            await self.stop_session(name)
            self._finished.pop(name, None)
            stopped.append(name)
            if wanted is not None and wanted.autostart:
                restarted.add(name)
        for name, spec in new.items():
            if spec.autostart and name not in self._running:
                try:
                    await self.start_session(spec, origin=origin, keep=name in restarted)
                    started.append(name)
                except (CapsvcError, OSError) as exc:
                    log.error("reload: session %s failed to start: %s", name, exc)
        return started, stopped

    async def _refilter(self, managed: ServiceSession, spec: SessionSpec) -> bool:
        """Give a running session a new filter in place; False when its source cannot.

        The expression is parsed and compiled in a worker thread; the swap itself (the
        AF_PACKET quiet point: drop-all, read out, attach) happens on the loop.
        """
        session = managed.session
        source = session.source if session is not None else None
        if session is None or source is None:
            return False
        from ..filter import parse_filter
        from ..sources.afpacket import AfPacketSource
        from ..sources.capfile._source import PcapFileSource

        linktype = session.linktype

        def matcher_of(expr: str | None) -> Callable[[bytes], bool] | None:
            parsed = parse_filter(expr, linktype) if expr else None
            return None if parsed is None else parsed.match

        if isinstance(source, AfPacketSource):
            prepared = await asyncio.to_thread(source._prepare_filter, spec.filter or None)
            match = await asyncio.to_thread(matcher_of, prepared.userspace)
            try:
                drained = source._swap_filter(prepared)
            except CapsvcError:
                return False  # it needs the socket opened another way: restart
            session.set_matcher(_as_matcher(match), before=drained)
        elif isinstance(source, PcapFileSource):
            match = await asyncio.to_thread(matcher_of, spec.filter or None)
            session.set_matcher(_as_matcher(match))
        else:
            return False
        managed.spec = spec
        return True


class _FunctionMatcher:
    """A ``match`` function as the Matcher a Session takes."""

    def __init__(self, match: Callable[[bytes], bool]) -> None:
        self.match = match


def _as_matcher(match: Callable[[bytes], bool] | None) -> _FunctionMatcher | None:
    return None if match is None else _FunctionMatcher(match)


def without_connections(expression: str, connections: Sequence[Connection]) -> str:
    """``expression`` with every packet of the given TCP connections left out.

    Args:
        expression: a filter expression ("" for everything).
        connections: (local address, local port, peer address, peer port) each; an
            IPv4-mapped IPv6 address is written as the IPv4 address it maps.

    Returns:
        ``(expression) and not (...)``, both directions of each connection; the expression
        itself when there is no connection.
    """
    terms = []
    for local, lport, peer, pport in connections:
        a, b = _plain(local), _plain(peer)
        terms.append(
            f"(tcp and src host {a} and src port {lport} and dst host {b} and dst port {pport})"
            f" or (tcp and src host {b} and src port {pport} and dst host {a} and dst port {lport})"
        )
    if not terms:
        return expression
    excluded = f"not ({' or '.join(terms)})"
    return f"({expression}) and {excluded}" if expression else excluded


def _plain(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread; if the caller is cancelled meanwhile, what it opened
    is closed once it is done (a Session is stopped)."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_discard)
        raise


def _discard(future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    if isinstance(result, Session):
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(result.stop())


def _close_now(source: Source) -> None:
    """Close a source that was opened but never ran, from a worker thread (no running loop)."""
    with contextlib.suppress(Exception):
        asyncio.run(source.aclose())
