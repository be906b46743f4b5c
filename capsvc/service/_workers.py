"""Multi-process sessions: N worker processes sharing one AF_PACKET fanout group.

Thin IO module. The kernel spreads flows over the group's sockets by hash, so each worker sees
whole flows and writes its own files (``name.workerK.pcap``); the cores are used past the GIL.
Each worker reports its Session's counters over a pipe every ``REPORT_INTERVAL`` seconds and its
final ones after draining; the parent sums them. Workers are started with the ``spawn`` method
(a fresh interpreter, no inherited event loop or threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from typing import Any

from .._errors import CaptureError
from .._packet import LinkType, Stats, sum_stats
from .._session import Session
from ._config import SessionSpec
from ._outputs import FilePolicy, build_sinks, open_source

__all__ = ["REPORT_INTERVAL", "WorkerGroup", "worker_main"]

log = logging.getLogger("capsvc.service")

#: Seconds between a worker's stats reports.
REPORT_INTERVAL = 0.2
#: Seconds a worker may take to open its socket and files, or to drain and exit.
WORKER_TIMEOUT = 30.0
_groups = itertools.count(1)
#: Files 0600 in directories 0700, of the worker's own group.
DEFAULT_FILES = FilePolicy()


def _fanout_group() -> int:
    """A fanout group id (16 bits, nonzero) unlikely to collide with other processes' groups."""
    return ((os.getpid() * 31 + next(_groups) * 7919) & 0xFFFF) or 1


class _Worker:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.latest = Stats()
        self.final: Stats | None = None
        self.ready: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.gone = asyncio.Event()


class WorkerGroup:
    """The worker processes of one session.

    Args:
        spec: the session spec (``workers`` > 1, an afpacket source).
        output_dir: the output directory.
        origin: named in errors.
        user: drop root to this user in each worker after opening its socket, or None.
        keep: keep what the workers' files hold (a restart by a reload): appended to.
        files: how the workers create their files (mode, group).

    Attributes:
        linktype: the link type the workers capture (known after ``start``).
        snaplen: their snapshot length (known after ``start``).
    """

    def __init__(
        self,
        spec: SessionSpec,
        output_dir: str,
        *,
        origin: str = "request",
        user: str | None = None,
        keep: bool = False,
        files: FilePolicy = DEFAULT_FILES,
    ) -> None:
        self.spec = spec
        self.files = files
        self.output_dir = output_dir
        self.origin = origin
        self.user = user
        self.keep = keep
        self.linktype = LinkType.ETHERNET
        self.snaplen = spec.snaplen
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        """Start the workers and wait until every one has opened its socket and files.

        Raises:
            capsvc.CapsvcError, OSError: a worker could not start (its own error, re-raised);
                the others are stopped first.
        """
        ctx = multiprocessing.get_context("spawn")
        fanout = (_fanout_group(), "hash")
        loop = asyncio.get_running_loop()
        for k in range(self.spec.workers):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=worker_main,
                args=(
                    child,
                    self.spec,
                    self.output_dir,
                    k,
                    fanout,
                    self.origin,
                    self.user,
                    self.keep,
                    self.files,
                ),
                name=f"capsvc-{self.spec.name}-worker{k}",
                daemon=True,
            )
            process.start()
            child.close()
            worker = _Worker(process, parent)
            self._workers.append(worker)
            loop.add_reader(parent.fileno(), self._on_message, worker)
        try:
            async with asyncio.timeout(WORKER_TIMEOUT):
                results = await asyncio.gather(*(w.ready for w in self._workers))
        except BaseException:
            await self._terminate()
            raise
        self.linktype = LinkType(results[0][0])
        self.snaplen = results[0][1]

    def _on_message(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind == "ready":
                    worker.ready.set_result(payload)
                elif kind == "stats":
                    worker.latest = Stats(*payload)
                elif kind == "final":
                    worker.final = worker.latest = Stats(*payload)
                elif kind == "error" and not worker.ready.done():
                    worker.ready.set_exception(payload)
        except (EOFError, OSError):
            self._gone(worker)

    def _gone(self, worker: _Worker) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())
        if not worker.ready.done():
            worker.ready.set_exception(
                CaptureError(
                    f"worker {worker.process.name} exited before it was ready "
                    f"(exit code {worker.process.exitcode})"
                )
            )
        worker.gone.set()

    def stats(self) -> Stats:
        """The workers' latest counters, summed."""
        return sum_stats(w.latest for w in self._workers)

    async def wait(self) -> None:
        """Wait until any worker has exited (it failed, or the group was stopped)."""
        waits = [asyncio.ensure_future(w.gone.wait()) for w in self._workers]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def stop(self) -> Stats:
        """Ask every worker to stop and drain; wait for their final counters.

        Returns:
            The final counters summed (a worker that died counts with its last report).
        """
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(("stop", None))
        try:
            async with asyncio.timeout(WORKER_TIMEOUT):
                await asyncio.gather(*(w.gone.wait() for w in self._workers))
        except TimeoutError:
            log.error("session %s: workers did not stop in time", self.spec.name)
        await self._terminate()
        return self.stats()

    async def _terminate(self) -> None:
        loop = asyncio.get_running_loop()
        for w in self._workers:
            if w.process.is_alive():
                if not w.gone.is_set():
                    with contextlib.suppress(OSError, ValueError):
                        w.conn.send(("stop", None))
                await loop.run_in_executor(None, w.process.join, 5.0)
            if w.process.is_alive():
                w.process.terminate()
                await loop.run_in_executor(None, w.process.join, 5.0)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(w.conn.fileno())
            w.conn.close()
            w.gone.set()


def worker_main(
    conn: Connection,
    spec: SessionSpec,
    output_dir: str,
    index: int,
    fanout: tuple[int, str],
    origin: str,
    user: str | None,
    keep: bool = False,
    files: FilePolicy = DEFAULT_FILES,
) -> None:
    """A worker process: capture on the fanout group into ``name.workerK`` files until told.

    Args:
        conn: the pipe to the parent (``("stop", None)`` in; ready, stats, final, error out).
        spec: the session spec.
        output_dir: the output directory.
        index: K, this worker's number.
        fanout: (group id, mode) of the fanout group.
        origin: named in errors.
        user: drop root to this user after opening the socket and files, or None.
        keep: keep what the files hold (appended to).
        files: how its files are created (mode, group).
    """
    from .._run import run_async

    # Signals to the process group (Ctrl-C, systemd's stop) are the parent's to handle: it tells
    # each worker to stop and drain; a worker whose parent is gone stops on its own (pipe EOF).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    run_async(lambda: _worker(conn, spec, output_dir, index, fanout, origin, user, keep, files))


async def _worker(
    conn: Connection,
    spec: SessionSpec,
    output_dir: str,
    index: int,
    fanout: tuple[int, str],
    origin: str,
    user: str | None,
    keep: bool,
    files: FilePolicy,
) -> None:
    try:
        source = open_source(spec, output_dir, origin=origin, fanout=fanout)
        try:
            snaplen = min(spec.snaplen or source.snaplen, source.snaplen)
            with files.open(output_dir) as directory:
                sinks = build_sinks(
                    spec, directory, source.linktype, snaplen, worker=index, keep=keep
                )
        except BaseException:
            await source.aclose()
            raise
        session = Session(
            sinks=sinks,
            source=source,
            snaplen=snaplen,
            bufsize=spec.queue_size,
            matcher=getattr(source, "userspace_filter", None),
            name=f"{spec.name} worker {index}",
        )
        await session.start()
        if user is not None:
            from ._privileges import drop_privileges

            drop_privileges(user)
    except Exception as exc:
        try:
            conn.send(("error", exc))
        except Exception:  # the error itself does not pickle: send its message
            conn.send(("error", CaptureError(str(exc))))
        return
    conn.send(("ready", (int(session.linktype), session.snaplen)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_message() -> None:
        try:
            while conn.poll():
                if conn.recv()[0] == "stop":
                    stop.set()
        except (EOFError, OSError):  # the parent is gone: stop and drain
            stop.set()

    loop.add_reader(conn.fileno(), on_message)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPORT_INTERVAL):
                    await stop.wait()
            conn.send(("stats", tuple(session.stats())))
    finally:
        loop.remove_reader(conn.fileno())
        await session.stop()
        with contextlib.suppress(OSError):
            conn.send(("final", tuple(session.stats())))
        conn.close()
