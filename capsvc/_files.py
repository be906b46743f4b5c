"""Creating and opening capture files: the one place capsvc touches a path.

IO module. The rule it keeps: a file capsvc creates or reads *inside a directory* (the service's
output and input directories, the names rotation formats, a Session's output path) is reached
from an open descriptor of that directory one component at a time, each with ``O_NOFOLLOW``, so
no symbolic link, ``..`` or rename race can lead outside it; only a regular file with a single
link is opened (a FIFO or a device is refused without blocking, a hard link to a file elsewhere
is refused before it is truncated); files are created 0600 and directories 0700 unless the
caller says otherwise. A path a user names on the command line (``-w FILE``, ``-r FILE``) is
opened as given by ``open_named``, as tcpdump does (``/dev/null``, a FIFO a reader waits on), but
still never through a symbolic link when it creates.

Errors never quote a file's content: a refusal is a ``PathOutsideError`` naming the directory,
the relative name and what is wrong with it.

A file that cannot be written to its end (a full disk) is cut back to what was last flushed
whole (``Checkpoint``): a capture file is never left with half a record at its end.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from types import TracebackType
from typing import Self

from ._errors import PathOutsideError

__all__ = ["DIR_MODE", "FILE_MODE", "Checkpoint", "Directory", "open_named", "split_relative"]

#: Mode of the files capsvc creates (owner read/write only: captures hold secrets).
FILE_MODE = 0o600
#: Mode of the directories capsvc creates.
DIR_MODE = 0o700

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW_DIR = _DIR_FLAGS | os.O_NOFOLLOW


def split_relative(relative: str | os.PathLike[str], *, where: str = "") -> list[str]:
    """The components of a relative name, checked lexically.

    Args:
        relative: a name below a directory (``"day1/a.pcap"``).
        where: the directory, named in errors.

    Returns:
        Its components, none of them empty, ``.`` or ``..``.

    Raises:
        PathOutsideError: the name is empty, absolute, holds ``..`` or a NUL byte, or ends in
            ``/``.
    """
    text = os.fspath(relative)
    problem = ""
    if not text:
        problem = "is empty"
    elif "\0" in text:
        problem = "holds a NUL byte"
    elif text.startswith("/"):
        problem = "is absolute (give a name inside the directory)"
    elif text.endswith("/"):
        problem = "names a directory, not a file"
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not problem and ".." in parts:
        problem = "leaves the directory (..)"
    if not problem and not parts:
        problem = "names no file"
    if problem:
        raise PathOutsideError(where or "path", repr(text), problem)
    return parts


class Directory:
    """A directory held open by its descriptor, in which files are created and read.

    Args:
        path: the directory. Symbolic links in this path itself are followed once, here: the
            operator chose it; nothing below it is ever reached through a link.
        create: create it (mode 0700; missing parents with the default mode, as
            ``os.makedirs`` does) when missing.
        file_mode: mode of the files created in it (default 0600).
        group: group id given to the files and directories created in it (None keeps the
            process's group).
        dir_mode: mode of the directories created in it (and of ``path`` itself when it is
            created here); default 0700.

    Raises:
        PathOutsideError: the path is no directory.
        OSError: it cannot be created or opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        file_mode: int = FILE_MODE,
        group: int | None = None,
        dir_mode: int = DIR_MODE,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.file_mode = file_mode
        self.group = group
        self.dir_mode = dir_mode
        if create:
            os.makedirs(self.path, mode=dir_mode, exist_ok=True)
        try:
            self._fd: int | None = os.open(self.path, _DIR_FLAGS)
        except NotADirectoryError:
            raise PathOutsideError(self.path, "", "is not a directory") from None

    # -- lifetime ---------------------------------------------------------------------------

    def dup(self) -> Directory:
        """Another Directory on the same descriptor's directory (its own descriptor, closed on
        its own): for a sink that creates files for longer than its creator keeps this one."""
        twin = object.__new__(Directory)
        twin.path, twin.file_mode, twin.group = self.path, self.file_mode, self.group
        twin.dir_mode = self.dir_mode
        twin._fd = os.dup(self.fd)
        return twin

    def close(self) -> None:
        """Close the directory's descriptor; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def fd(self) -> int:
        """The directory's descriptor.

        Raises:
            ValueError: the directory was closed.
        """
        if self._fd is None:
            raise ValueError(f"directory {self.path} is closed")
        return self._fd

    # -- resolving --------------------------------------------------------------------------

    def _refuse(self, relative: str, problem: str) -> PathOutsideError:
        return PathOutsideError(self.path, repr(relative), problem)

    def _parent(self, relative: str, parts: list[str], *, create: bool) -> int:
        """Open the directory holding the last component; the caller closes the result."""
        fd = os.dup(self.fd)
        try:
            for part in parts[:-1]:
                try:
                    nxt = os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    made = True
                    try:
                        os.mkdir(part, self.dir_mode, dir_fd=fd)
                    except FileExistsError:
                        made = False
                    nxt = os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise self._refuse(relative, f"{part!r} is not a directory") from None
                    raise
                else:
                    made = False
                os.close(fd)
                fd = nxt
                if made:  # the umask may have taken bits the caller asked for
                    if self.group is not None:
                        os.fchown(fd, -1, self.group)
                    os.fchmod(fd, self.dir_mode)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _checked(self, fd: int, relative: str, *, allow_links: bool = False) -> os.stat_result:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise self._refuse(relative, "is not a regular file (a FIFO, device or socket)")
        if info.st_nlink > 1 and not allow_links:
            os.close(fd)
            raise self._refuse(relative, "has other hard links; refusing to write through them")
        return info

    def _open_final(self, parent: int, relative: str, name: str, flags: int, mode: int) -> int:
        try:
            return os.open(
                name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=parent
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._refuse(relative, "is a symbolic link") from None
            if exc.errno in (errno.ENXIO, errno.EISDIR, errno.ENOTDIR):
                raise self._refuse(relative, "is not a regular file") from None
            raise

    # -- opening ----------------------------------------------------------------------------

    def create(
        self, relative: str | os.PathLike[str], *, append: bool = False, exclusive: bool = False
    ) -> int:
        """Create (or truncate) a regular file below the directory; return its descriptor.

        Missing directories on the way are created (mode 0700). The descriptor is blocking,
        close-on-exec and write-only (appending with ``append``).

        Args:
            relative: the file's name below the directory (checked by ``split_relative``).
            append: keep what the file holds and write at its end (default: truncate it).
            exclusive: fail with FileExistsError when the file exists.

        Raises:
            PathOutsideError: the name leaves the directory, goes through a symbolic link, or
                names something that is not a regular file of one link.
            OSError: the file cannot be created.
        """
        text = os.fspath(relative)
        parts = split_relative(text, where=self.path)
        parent = self._parent(text, parts, create=True)
        try:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
            fd = self._open_final(parent, text, parts[-1], flags, self.file_mode)
        finally:
            os.close(parent)
        try:
            self._checked(fd, text)
            if append:
                os.lseek(fd, 0, os.SEEK_END)
                fcntl.fcntl(fd, fcntl.F_SETFL, os.O_WRONLY | os.O_APPEND)
            else:
                os.ftruncate(fd, 0)
                fcntl.fcntl(fd, fcntl.F_SETFL, os.O_WRONLY)
            if self.group is not None:
                os.fchown(fd, -1, self.group)
            os.fchmod(fd, self.file_mode)
        except PathOutsideError:
            raise  # _checked closed it
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_read(self, relative: str | os.PathLike[str]) -> int:
        """Open a regular file below the directory for reading; return its descriptor.

        Raises:
            PathOutsideError: the name leaves the directory, goes through a symbolic link, or
                names something that is not a regular file.
            FileNotFoundError: there is no such file.
        """
        text = os.fspath(relative)
        parts = split_relative(text, where=self.path)
        parent = self._parent(text, parts, create=False)
        try:
            fd = self._open_final(parent, text, parts[-1], os.O_RDONLY, 0)
        finally:
            os.close(parent)
        self._checked(fd, text, allow_links=True)
        fcntl.fcntl(fd, fcntl.F_SETFL, os.O_RDONLY)
        return fd

    def stat(self, relative: str | os.PathLike[str]) -> os.stat_result:
        """``lstat`` of a name below the directory (a link is reported, never followed).

        Raises:
            PathOutsideError: the name leaves the directory.
            FileNotFoundError: there is no such file.
        """
        text = os.fspath(relative)
        parts = split_relative(text, where=self.path)
        parent = self._parent(text, parts, create=False)
        try:
            return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)

    def unlink(self, relative: str | os.PathLike[str]) -> None:
        """Remove a regular file below the directory (never a link's target, never a directory).

        Raises:
            PathOutsideError: the name leaves the directory or is not a regular file.
            FileNotFoundError: there is no such file.
        """
        text = os.fspath(relative)
        parts = split_relative(text, where=self.path)
        parent = self._parent(text, parts, create=False)
        try:
            info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                raise self._refuse(text, "is not a regular file")
            os.unlink(parts[-1], dir_fd=parent)
        finally:
            os.close(parent)

    def walk(self) -> list[str]:
        """The relative names of every regular file below the directory, sorted; links and
        special files are left out, and no link is followed into another directory."""
        found: list[str] = []
        self._walk(os.dup(self.fd), "", found)
        return sorted(found)

    def _walk(self, fd: int, prefix: str, found: list[str]) -> None:
        try:
            for entry in os.scandir(fd):
                if entry.is_symlink():
                    continue
                if entry.is_file(follow_symlinks=False):
                    found.append(prefix + entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        sub = os.open(entry.name, _NOFOLLOW_DIR, dir_fd=fd)
                        self._walk(sub, f"{prefix}{entry.name}/", found)
        finally:
            os.close(fd)

    def contains(self, path: str | os.PathLike[str]) -> str | None:
        """The name of ``path`` relative to this directory, or None when it lies outside (the
        comparison is lexical, after making both absolute)."""
        full = os.path.abspath(os.fspath(path))
        if os.path.commonpath([self.path, full]) != self.path or full == self.path:
            return None
        return os.path.relpath(full, self.path)


class Checkpoint:
    """Remembers where a file written through a buffer last ended whole, to cut it back there.

    A sink calls ``mark`` after each flush that succeeded (its records are then complete in the
    file) and ``abandon`` when a write failed: the file is truncated to the last mark and the
    descriptor is pointed at /dev/null, so whatever the buffer still holds is flushed into
    nothing when the stream is closed, never half a record into the file.

    Args:
        fd: the file's descriptor (the raw file under the buffered stream).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        # A FIFO or a device (``-w /dev/stdout``) has no position and is never cut back.
        self._seekable = stat.S_ISREG(os.fstat(fd).st_mode)
        self.good = os.lseek(fd, 0, os.SEEK_CUR) if self._seekable else 0
        self.abandoned = False

    def mark(self) -> None:
        """The bytes written so far are complete (call after a successful flush)."""
        if not self.abandoned and self._seekable:
            self.good = os.lseek(self.fd, 0, os.SEEK_CUR)

    def abandon(self) -> None:
        """Cut the file back to the last mark and send further writes to /dev/null.

        Idempotent; errors are swallowed (the file is failing already)."""
        if self.abandoned:
            return
        self.abandoned = True
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.fstat(self.fd).st_mode):
                os.ftruncate(self.fd, self.good)
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.dup2(null, self.fd, inheritable=False)
            finally:
                os.close(null)


def open_named(path: str | os.PathLike[str], *, write: bool, mode: int = FILE_MODE) -> int:
    """Open a path a user named on the command line; return a blocking descriptor.

    As tcpdump: a FIFO or a device (``/dev/null``) may be named, and opening a FIFO waits for
    its other end. A file created or truncated is never reached through a symbolic link, and a
    regular file is truncated only after it is known to be one.

    Args:
        path: the path as given.
        write: create/truncate for writing (mode ``mode``, default 0600); else open to read.

    Raises:
        PathOutsideError: writing through a symbolic link.
        OSError: the path cannot be opened.
    """
    text = os.fspath(path)
    if not write:
        return os.open(text, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = os.open(text, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathOutsideError(text, "", "is a symbolic link; name its target") from None
        raise
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd
