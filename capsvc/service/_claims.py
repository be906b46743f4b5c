"""One owner per path: which session reads and which writes each file of the service.

Pure module (no IO; a lock, because rotation claims its names from a session's writer thread).
The rule it keeps: a path written by a session is neither written nor read by any other, nor
read by that session itself (a file source equal to one of its sinks would truncate what it
reads); paths only read may be read by any number of sessions. Paths are compared after making
them absolute in their directory and normalising them: the directories resolve no symbolic link
below themselves (``capsvc._files.Directory``), so two different normal names are two files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from .._errors import ConflictError

__all__ = ["PathClaims"]

READ = "reads"
WRITE = "writes"


#: Who holds a path: a session and which of its parts ("sink 0", "source").
Owner = tuple[str, str]


class PathClaims:
    """The paths the running sessions read and write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: path -> {owner: READ or WRITE}
        self._owners: dict[str, dict[Owner, str]] = {}

    @staticmethod
    def key(directory: str, relative: str) -> str:
        """The path a claim is kept under: ``relative`` in ``directory``, normalised."""
        return os.path.normpath(os.path.join(directory, relative))

    def _conflict(self, owner: Owner, path: str, role: str) -> str | None:
        """Why ``owner`` may not take ``path`` for ``role``, or None when it may."""
        for other, held in self._owners.get(path, {}).items():
            if other == owner or role == held == READ:
                continue  # the same sink opening its own file again (a ring), or two readers
            if other[0] == owner[0]:
                what = "both read and write" if READ in (role, held) else "write twice"
                return f"session {owner[0]!r} would {what} {path}"
            return f"{path} is in use: session {other[0]!r} {held} it"
        return None

    def claim(
        self,
        session: str,
        *,
        writes: Iterable[tuple[str, str]] = (),
        reads: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Take every path of a session that starts, all or none.

        Args:
            session: the session's name.
            writes: ``(path, part)`` for each file it writes (part: "sink 0", ...).
            reads: ``(path, part)`` for each file it reads.

        Raises:
            ConflictError: a path is taken (the message names it and its owner), or the
                session writes one path from two parts, or reads one it writes.
        """
        wanted = [(path, (session, part), WRITE) for path, part in writes]
        wanted += [(path, (session, part), READ) for path, part in reads]
        with self._lock:
            taken: dict[str, dict[Owner, str]] = {}
            for path, owner, role in wanted:
                problem = self._conflict(owner, path, role) or _among(taken, owner, path, role)
                if problem:
                    raise ConflictError(problem)
                taken.setdefault(path, {})[owner] = role
            for path, owners in taken.items():
                self._owners.setdefault(path, {}).update(owners)

    def claim_write(self, session: str, part: str, path: str) -> None:
        """Take one more path for writing (a name a rotating sink formatted), from any thread.

        Raises:
            ConflictError: another session or part holds the path.
        """
        owner = (session, part)
        with self._lock:
            problem = self._conflict(owner, path, WRITE)
            if problem:
                raise ConflictError(problem)
            self._owners.setdefault(path, {})[owner] = WRITE

    def release(self, session: str) -> None:
        """Give back every path of a session (it stopped)."""
        with self._lock:
            for path in list(self._owners):
                holders = self._owners[path]
                for owner in [o for o in holders if o[0] == session]:
                    del holders[owner]
                if not holders:
                    del self._owners[path]

    def held(self, session: str) -> dict[str, str]:
        """The paths a session holds, with what it does with each (for tests and messages)."""
        with self._lock:
            return {
                path: role
                for path, holders in self._owners.items()
                for owner, role in holders.items()
                if owner[0] == session
            }


def _among(taken: dict[str, dict[Owner, str]], owner: Owner, path: str, role: str) -> str | None:
    """A conflict between the paths one ``claim`` call takes."""
    for other, held in taken.get(path, {}).items():
        if other != owner and not role == held == READ:
            what = "both read and write" if READ in (role, held) else "write twice"
            return f"session {owner[0]!r} would {what} {path}"
    return None
