"""The event loop's edge: what capsvc asks of the loop it runs on, on asyncio and on trio.

IO module. capsvc runs under anyio's two backends: asyncio (with or without uvloop) and trio.
Rules it keeps:
- The backend is looked up once, when a session starts or a source starts reading
  (``Loop.current()``), never per packet or per batch.
- On asyncio every call here is asyncio's own (``add_reader``, ``call_soon_threadsafe``,
  ``create_task``, ``sleep``): the path capsvc is measured on pays nothing for the others.
- Any other backend goes through anyio: ``anyio.wait_readable`` for a descriptor, the backend's
  ``run_sync_soon`` for a thread's hand-off, ``anyio.Event`` under ``Flag``, ``anyio.to_thread``
  for a worker thread, ``anyio.sleep``. The one exception is a background task: anyio has
  none outside a task group, and a Session's source outlives the call that starts it, so on
  trio that is a system task (``trio.lowlevel.spawn_system_task``), which the Session always
  joins when it stops.
- A thread never waits for the loop: it schedules a call and goes on. A loop that is already
  gone is not an error (nobody is waiting any more).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from anyio.lowlevel import EventLoopToken

__all__ = ["FdWaiter", "Flag", "Job", "Loop"]

T = TypeVar("T")
_AsyncFn = Callable[..., Coroutine[Any, Any, Any]]


def _in_asyncio_task() -> bool:
    """True inside an asyncio task (not trio, trio's guest mode over asyncio included)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop in this thread
        return False


class Flag:
    """An event with ``asyncio.Event``'s methods that works on asyncio and trio alike.

    It can be made anywhere (a constructor without a loop); ``set``, ``clear`` and ``wait`` are
    called on the loop's thread (a thread hands ``set`` over with
    ``Loop.call_soon_threadsafe``). As with ``asyncio.Event``, a waiter woken by ``set``
    returns even when ``clear`` came before it ran.
    """

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: asyncio.Event | Any = None  # asyncio.Event, or anyio.Event on trio

    def is_set(self) -> bool:
        """True while set."""
        return self._set

    def set(self) -> None:
        """Set it and wake every waiter."""
        self._set = True
        event, self._event = self._event, None
        if event is not None:
            event.set()

    def clear(self) -> None:
        """Unset it (waiters keep waiting for the next ``set``)."""
        self._set = False

    async def wait(self) -> bool:
        """Return once set (at once when it is); always True, as ``asyncio.Event.wait``."""
        if self._set:
            return True
        event = self._event
        if event is None:
            if _in_asyncio_task():
                event = asyncio.Event()
            else:
                import anyio

                event = anyio.Event()
            self._event = event
        await event.wait()
        return True


class Job:
    """A coroutine function running in the background (``Loop.spawn``).

    Attributes:
        error: the Exception it ended with, if any (a cancelled job has none).
        finished: set once it has ended.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.finished = Flag()

    def done(self) -> bool:
        """True once it has ended (returned, raised or was cancelled)."""
        return self.finished.is_set()

    def cancel(self) -> None:
        """Cancel it (it ends at its next wait); nothing once it has ended."""
        raise NotImplementedError

    async def wait(self) -> None:
        """Return once it has ended. Cancelling the caller leaves the job running (as
        ``asyncio.shield`` does)."""
        await self.finished.wait()

    def raise_error(self) -> None:
        """Raise the Exception it ended with, if any."""
        if self.error is not None:
            raise self.error


class _TaskJob(Job):
    """A Job on asyncio: a Task."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        name: str,
    ) -> None:
        super().__init__()
        self._task = loop.create_task(self._run(fn, args), name=name)

    async def _run(self, fn: _AsyncFn, args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            self.error = exc
        finally:
            self.finished.set()

    def cancel(self) -> None:
        self._task.cancel()


class _SystemTaskJob(Job):
    """A Job on trio: a system task inside a cancel scope of its own."""

    def __init__(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...], name: str
    ) -> None:
        import trio

        super().__init__()
        self._scope = trio.CancelScope()
        trio.lowlevel.spawn_system_task(self._run, fn, args, name=name)

    async def _run(self, fn: _AsyncFn, args: tuple[Any, ...]) -> None:
        try:
            with self._scope:
                await fn(*args)
        except Exception as exc:  # a system task must not raise: trio would end the run
            self.error = exc
        finally:
            self.finished.set()

    def cancel(self) -> None:
        self._scope.cancel()


class FdWaiter:
    """Waits until a descriptor is readable; ``wake`` ends a wait early. One waiter at a time.

    The descriptor is watched only while waiting (epoll is level-triggered: a reader left
    registered while nobody reads would be called on every turn of the loop).

    Args:
        loop: the asyncio loop, or None on another backend (trio: ``anyio.wait_readable``).
        on_ready: what asyncio's reader calls when the descriptor is readable; it must end
            the wait by calling ``wake`` (default: ``wake`` itself).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None, on_ready: Callable[[], None] | None = None
    ) -> None:
        self._loop = loop
        self._on_ready = on_ready if on_ready is not None else self.wake
        self._waiter: asyncio.Future[None] | None = None
        self._scope: Any = None  # the anyio CancelScope of a wait on trio
        self._fd = -1

    async def wait(self, fd: int) -> None:
        """Return once ``fd`` is readable, or ``wake`` was called during the wait."""
        loop = self._loop
        if loop is None:
            await self._wait_anyio(fd)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter, self._fd = waiter, fd
        loop.add_reader(fd, self._on_ready)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._fd >= 0:  # else release() removed it
                self._fd = -1
                with contextlib.suppress(ValueError, OSError, RuntimeError):
                    loop.remove_reader(fd)

    async def _wait_anyio(self, fd: int) -> None:
        import anyio

        with anyio.CancelScope() as scope:
            self._scope, self._fd = scope, fd
            try:
                await anyio.wait_readable(fd)
            except anyio.ClosedResourceError:  # release() while waiting
                pass
            finally:
                self._scope, self._fd = None, -1

    def wake(self) -> None:
        """End the current wait, if any (called on the loop's thread)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        scope = self._scope
        if scope is not None:
            scope.cancel()

    def release(self) -> None:
        """End the current wait before its descriptor is closed: the descriptor is no longer
        watched when this returns."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            if self._loop is not None:
                with contextlib.suppress(ValueError, OSError, RuntimeError):
                    self._loop.remove_reader(fd)
            else:
                import anyio

                with contextlib.suppress(Exception):
                    anyio.notify_closing(fd)
        self.wake()


class Loop:
    """The loop a session or a source runs on (``Loop.current()``), and what capsvc asks of it.

    Attributes:
        asyncio_loop: the asyncio event loop, or None on another backend (trio).
    """

    __slots__ = ("_token", "asyncio_loop")

    def __init__(
        self, asyncio_loop: asyncio.AbstractEventLoop | None, token: EventLoopToken | None
    ) -> None:
        self.asyncio_loop = asyncio_loop
        self._token = token

    @classmethod
    def current(cls) -> Loop:
        """The loop of the running task.

        Raises:
            RuntimeError: no event loop runs in this thread (``anyio.NoEventLoopError``).
        """
        if _in_asyncio_task():
            return cls(asyncio.get_running_loop(), None)
        import anyio.lowlevel

        token = anyio.lowlevel.current_token()
        native = token.native_token
        if isinstance(native, asyncio.AbstractEventLoop):
            return cls(native, None)
        return cls(None, token)

    @property
    def backend(self) -> str:
        """``"asyncio"`` or the other backend's name (``"trio"``)."""
        if self.asyncio_loop is not None:
            return "asyncio"
        assert self._token is not None
        return self._token.backend_class.__module__.rsplit("_", 1)[-1]

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Have the loop call ``fn(*args)`` soon; from any thread, never waiting. Nothing happens
        once the loop is gone."""
        loop = self.asyncio_loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed: nobody is waiting any more
                loop.call_soon_threadsafe(fn, *args)
            return
        import anyio

        token = self._token
        assert token is not None
        with contextlib.suppress(anyio.RunFinishedError, RuntimeError):
            token.backend_class.run_sync_soon(fn, args, token.native_token)

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str) -> Job:
        """Run ``fn(*args)`` in the background; its Exception is kept in ``Job.error``."""
        loop = self.asyncio_loop
        if loop is not None:
            return _TaskJob(loop, fn, args, name)
        return _SystemTaskJob(fn, args, name)

    async def sleep(self, seconds: float) -> None:
        """Sleep (0: let the other tasks run first)."""
        if self.asyncio_loop is not None:
            await asyncio.sleep(seconds)
        else:
            import anyio

            await anyio.sleep(seconds)

    def time(self) -> float:
        """The loop's monotonic clock (seconds)."""
        loop = self.asyncio_loop
        if loop is not None:
            return loop.time()
        import anyio

        return anyio.current_time()

    async def wait_for(self, flag: Flag, timeout: float | None) -> bool:
        """Wait for ``flag`` at most ``timeout`` seconds (None: for ever); True when it came."""
        if timeout is None:
            await flag.wait()
            return True
        if self.asyncio_loop is not None:
            try:
                async with asyncio.timeout(timeout):
                    await flag.wait()
            except TimeoutError:
                return False
            return True
        import anyio

        with anyio.move_on_after(timeout):
            await flag.wait()
            return True
        return False

    def fd_waiter(self, on_ready: Callable[[], None] | None = None) -> FdWaiter:
        """A waiter for descriptors on this loop (``on_ready``: see ``FdWaiter``)."""
        return FdWaiter(self.asyncio_loop, on_ready)

    async def run_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in a worker thread and return its result."""
        if self.asyncio_loop is not None:
            return await asyncio.to_thread(fn)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(fn)
