"""Running a capture to its end: an event loop (uvloop when installed) and a Session's lifetime.

IO module (event loop, signals). The command line and the service's worker processes both run
their captures through these, so a job ends the same way everywhere: at the end of its source,
its limit or its duration it drains every packet to its sinks however slow they are (a pipe to
``less``); after SIGINT or SIGTERM it stops at once, giving up on a sink that does not take its
packets within ``SIGNAL_STOP_TIMEOUT`` seconds (a stalled pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple, TypeVar

from ._packet import Stats
from ._session import Session

__all__ = ["SIGNAL_STOP_TIMEOUT", "JobEnd", "run_async", "run_job", "run_session"]

T = TypeVar("T")

#: Seconds a job stopped by a signal waits for its sinks before it gives up on them.
SIGNAL_STOP_TIMEOUT = 1.0


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on uvloop when it is importable, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    result: T = uvloop.run(main())
    return result


class JobEnd(NamedTuple):
    """How a job ended.

    Attributes:
        stats: the session's final counters.
        signal: the signal that stopped it (SIGINT, SIGTERM), or None.
    """

    stats: Stats
    signal: int | None


async def run_job(
    session: Session,
    *,
    duration: float | None = None,
    until_source_ends: bool = True,
) -> JobEnd:
    """Start ``session``, stop it when it is done, and say how it ended.

    Done means the first of: the source is exhausted (when ``until_source_ends``), the packet
    limit is reached, every sink has failed (a closed pipe), ``duration`` seconds have passed,
    or SIGINT/SIGTERM arrived. Stopping drains the queue to every sink and flushes, waiting
    for slow sinks, except after a signal (one before or while stopping): then a sink still
    busy after ``SIGNAL_STOP_TIMEOUT`` seconds is abandoned (``session.abandoned``).
    """
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    received: list[int] = []
    installed: list[signal.Signals] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        interrupted.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        await session.start()
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(interrupted.wait()),
            asyncio.ensure_future(session.limit_reached.wait()),
            asyncio.ensure_future(session.sinks_failed.wait()),
        ]
        if until_source_ends and session.source is not None:
            waits.append(asyncio.ensure_future(session.wait_source()))
        try:
            await asyncio.wait(waits, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        await _stop(session, interrupted)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return JobEnd(session.stats(), received[0] if received else None)


async def _stop(session: Session, interrupted: asyncio.Event) -> None:
    """Stop the session, waiting for its sinks as long as they take until a signal comes;
    after one, at most ``SIGNAL_STOP_TIMEOUT`` seconds more."""
    stopping = asyncio.ensure_future(session.stop(timeout=None))
    signalled = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait([stopping, signalled], return_when=asyncio.FIRST_COMPLETED)
        if not stopping.done():
            done, _ = await asyncio.wait([stopping], timeout=SIGNAL_STOP_TIMEOUT)
            if not done:
                session.abandon()
        await stopping
    finally:
        signalled.cancel()


async def run_session(
    session: Session,
    *,
    duration: float | None = None,
    until_source_ends: bool = True,
) -> Stats:
    """``run_job`` for callers that only want the final stats."""
    return (await run_job(session, duration=duration, until_source_ends=until_source_ends)).stats
