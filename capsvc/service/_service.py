"""CaptureService: named capture sessions started, stopped, listed and streamed.

Usable embedded in any asyncio application; the HTTP API (``_http``) is a thin layer over it.
Rules it keeps: a name is taken by at most one running session; limits (sessions, subscribers,
duration) are checked before anything is opened; a session that fails to start leaves nothing
open; ``stop()`` drains every session to its sinks before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._errors import CapsvcError, ConflictError, NotFoundError, ServiceError
from .._packet import Stats
from .._session import Session
from ..sinks._base import Sink
from ._config import ServiceConfig, SessionSpec, SourceSpec, parse_session_spec
from ._managed import ServiceSession
from ._outputs import build_sinks, open_source
from ._subscribers import SUBSCRIBER_QUEUE_DEFAULT, Subscriber

__all__ = ["CaptureService", "ServiceSession"]

log = logging.getLogger("capsvc.service")

#: Stopped sessions remembered (with their final stats) for GET until deleted.
FINISHED_KEPT = 64


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

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def output_dir(self) -> str:
        """The directory every capture file lives in."""
        return self.config.service.output_dir

    async def start(self) -> None:
        """Create the output directory (0700) and start every autostart session.

        Raises:
            ConfigError, capsvc.CapsvcError, OSError: a session failed to start; the sessions
                already started are stopped again first, so nothing is left half-started.
        """
        os.makedirs(self.output_dir, mode=0o700, exist_ok=True)
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
        self, spec: SessionSpec | Mapping[str, Any], *, origin: str = "request"
    ) -> ServiceSession:
        """Open a session's source and sinks and start it.

        Args:
            spec: the session spec: a ``SessionSpec``, or a mapping with the keys of a
                ``[[session]]`` table of the configuration (validated here).
            origin: where it comes from: the config path, ``"request"`` (duration capped by
                ``max_duration``) or ``"adhoc"``.

        Returns:
            The running session.

        Raises:
            ConflictError: the name is taken or ``max_sessions`` are running.
            capsvc.service.ConfigError: a bad spec; PathOutsideError for a path leaving the
                output directory; NoSuchInterfaceError for an unknown interface.
            FilterError: a malformed filter (with its caret).
            capsvc.CapsvcError, OSError: the source or a file could not be opened.
        """
        if not isinstance(spec, SessionSpec):
            spec = parse_session_spec(spec, origin=origin)
        settings = self.config.service
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
        os.makedirs(self.output_dir, mode=0o700, exist_ok=True)
        self._starting.add(spec.name)
        try:
            if spec.workers > 1:
                from ._workers import WorkerGroup

                group = WorkerGroup(spec, self.output_dir, origin=origin, user=self.user)
                await group.start()
                managed = ServiceSession(spec, origin, None, group)
            else:
                session = self._open_session(spec, origin)
                await session.start()
                managed = ServiceSession(spec, origin, session)
        finally:
            self._starting.discard(spec.name)
        self._finished.pop(spec.name, None)
        self._running[spec.name] = managed
        managed._monitor = asyncio.create_task(self._watch(managed), name=f"capsvc-{spec.name}")
        log.info("session %s started (%s)", spec.name, origin)
        return managed

    def _open_session(self, spec: SessionSpec, origin: str) -> Session:
        source = open_source(spec, self.output_dir, origin=origin)
        sinks: list[Sink] = []
        try:
            snaplen = min(spec.snaplen or source.snaplen, source.snaplen)
            sinks = build_sinks(spec, self.output_dir, source.linktype, snaplen)
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
            )
        except BaseException:
            for sink in sinks:
                with contextlib.suppress(Exception):
                    sink.close()
            _close_soon(source)
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
        self, name: str, filter_text: str = "", capacity: int = SUBSCRIBER_QUEUE_DEFAULT
    ) -> tuple[ServiceSession, Subscriber]:
        """Attach a live stream subscriber to a running session.

        Args:
            name: the session.
            filter_text: the subscriber's own filter ("" for every packet).
            capacity: its queue capacity in packets.

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
        match = None
        if filter_text.strip():
            from ..filter import parse_filter

            parsed = parse_filter(filter_text, managed.linktype)
            match = None if parsed is None else parsed.match
        sub = Subscriber(
            asyncio.get_running_loop(),
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
    ) -> tuple[ServiceSession, Subscriber]:
        """Start an ad hoc AF_PACKET capture feeding one subscriber.

        Args:
            interface: the interface.
            filter_text: a filter expression ("" for everything).
            duration: seconds; 0 or more than ``max_duration`` means ``max_duration``.
            snaplen: bytes kept per packet; 0 means 262144.

        Returns:
            The session and its subscriber; stop the session with ``stop_session`` after.

        Raises:
            Same as ``start_session`` and ``subscribe``.
        """
        limit = self.config.service.max_subscribers
        if self._subscriber_count >= limit:
            raise ConflictError(f"subscriber limit reached ({limit} streams)")
        spec = SessionSpec(
            name=f"capture-{next(self._ids)}",
            source=SourceSpec(type="afpacket", interface=interface),
            filter=filter_text.strip(),
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
        changed ones restart, unchanged ones (and API-started ones) keep running.

        Args:
            config: the new validated configuration (same output directory expected).

        Returns:
            (names started, names stopped).
        """
        old = {s.name: s for s in self.config.sessions}
        new = {s.name: s for s in config.sessions}
        origin = config.path or "config"
        self.config = config
        stopped: list[str] = []
        started: list[str] = []
        for name, spec in old.items():
            managed = self._running.get(name)
            if managed is None or managed.origin in ("request", "adhoc"):
                continue
            if new.get(name) != spec or not new[name].autostart:
                await self.stop_session(name)
                self._finished.pop(name, None)
                stopped.append(name)
        for name, spec in new.items():
            if spec.autostart and name not in self._running:
                try:
                    await self.start_session(spec, origin=origin)
                    started.append(name)
                except (CapsvcError, OSError) as exc:
                    log.error("reload: session %s failed to start: %s", name, exc)
        return started, stopped


def _close_soon(source: Any) -> None:
    """Close a source that was opened but never ran (from sync code on the loop)."""
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop().create_task(source.aclose())
