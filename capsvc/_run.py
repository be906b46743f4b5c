"""Running a capture to its end: an event loop (uvloop when installed) and a Session's lifetime.

IO module (event loop, signals). The command line and the service's worker processes both run
their captures through these, so a job ends the same way everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._packet import Stats
from ._session import Session

__all__ = ["run_async", "run_session"]

T = TypeVar("T")


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on uvloop when it is importable, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    result: T = uvloop.run(main())
    return result


async def run_session(
    session: Session,
    *,
    duration: float | None = None,
    until_source_ends: bool = True,
) -> Stats:
    """Start ``session`` and stop it when it is done; return the final stats.

    Done means the first of: the source is exhausted (when ``until_source_ends``), the packet
    limit is reached, every sink has failed (a closed pipe), ``duration`` seconds have passed,
    or SIGINT/SIGTERM arrived. Stopping drains
    the queue to every sink and flushes.
    """
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, interrupted.set)
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
        await session.stop()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return session.stats()
