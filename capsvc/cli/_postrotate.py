"""tcpdump's ``-z postrotate-command``: run a program on each capture file once rotation has
closed it.

Thin IO module. As tcpdump does: the command is a program (looked up in ``PATH``, no shell),
run as ``COMMAND FILE`` with the name of the file just closed, at the lowest priority, after
each rotation by ``-G`` or ``-C`` (and after the last file of ``-G`` with ``-W``, which ends
the capture); the file still open when capture stops is left alone. capsvc does not wait for
it: a thread per command waits and logs how it ended (an exit status 0 at level info, anything
else as a warning). Commands still running when capsvc exits go on on their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from collections.abc import Callable

from .._packet import PacketBatch
from ..sinks._base import Sink
from ..sinks._rotate import RotatingWriter

__all__ = ["PostrotateWriter", "with_postrotate"]

log = logging.getLogger("capsvc")

#: The niceness the command runs at (tcpdump's: the lowest priority).
NICENESS = 19


class PostrotateWriter:
    """A ``RotatingWriter`` that runs ``command`` on every file it has closed by rotating.

    Args:
        inner: the rotating writer.
        command: the program to run with each closed file's name.
        launch: starts one command (tests and the default: ``run_command``).

    Attributes:
        launched: the files a command was started for, in order.
    """

    def __init__(
        self,
        inner: RotatingWriter,
        command: str,
        launch: Callable[[str, str], None] | None = None,
    ) -> None:
        self.inner = inner
        self.command = command
        self.launched: list[str] = []
        self._launch = launch or run_command
        self._done = 0

    def write_batch(self, batch: PacketBatch) -> None:
        """Write through the inner writer, then run the command on the files it closed."""
        try:
            self.inner.write_batch(batch)
        finally:
            self._closed_files()

    def _closed_files(self) -> None:
        files = self.inner.files
        # Every file but the newest was closed by a rotation; the newest too once finished.
        closed = len(files) if self.inner.finished else len(files) - 1
        for path in files[self._done : closed]:
            self.launched.append(path)
            self._launch(self.command, path)
        self._done = max(self._done, closed)

    def flush(self) -> None:
        """Flush the inner writer."""
        self.inner.flush()

    def close(self) -> None:
        """Close the inner writer (the file it has open gets no command, as with tcpdump)."""
        self.inner.close()

    def __repr__(self) -> str:
        return f"PostrotateWriter({self.inner.template!r}, {self.command!r})"


def run_command(command: str, path: str) -> None:
    """Start ``command path`` at the lowest priority, and log its end from a thread.

    A command that cannot be started is logged as a warning; capture goes on.
    """
    try:
        proc = subprocess.Popen([command, path], stdin=subprocess.DEVNULL, close_fds=True)
    except OSError as exc:
        log.warning("postrotate command %s %s could not start: %s", command, path, exc)
        return
    with contextlib.suppress(OSError):  # it may have ended already
        os.setpriority(os.PRIO_PROCESS, proc.pid, NICENESS)
    threading.Thread(
        target=_wait, args=(proc, command, path), name="capsvc-postrotate", daemon=True
    ).start()


def _wait(proc: subprocess.Popen[bytes], command: str, path: str) -> None:
    status = proc.wait()
    if status == 0:
        log.info("postrotate command %s %s exited with status 0", command, path)
    elif status < 0:
        log.warning("postrotate command %s %s was killed by signal %d", command, path, -status)
    else:
        log.warning("postrotate command %s %s exited with status %d", command, path, status)


def with_postrotate(sinks: list[Sink], command: str | None) -> list[Sink]:
    """``sinks`` with each rotating writer wrapped to run ``command`` (unchanged when None)."""
    if command is None:
        return sinks
    return [
        PostrotateWriter(sink, command) if isinstance(sink, RotatingWriter) else sink
        for sink in sinks
    ]
