"""Opening a session's outputs and sources from its spec, inside the service's directories only.

Thin IO module. Every file is reached through a ``capsvc._files.Directory`` (the output
directory for sinks, the input directory for file sources): one component at a time from the
directory's descriptor with O_NOFOLLOW, regular files only (a FIFO or device is refused without
blocking), created with the service's ``file_mode`` and ``file_group`` (0600 and the service's
own group unless configured) in directories made with the matching mode (0700 for 0600, 0750
for 0640). An error names the file and what is wrong; it never quotes what the file holds.
"""

from __future__ import annotations

import contextlib
import grp
import io
import logging
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from .._errors import CaptureFileError, ConfigError, NoSuchInterfaceError, NotFoundError
from .._files import Directory
from .._packet import LinkType
from ..sinks._base import Sink
from ..sinks._build import NullSink, open_sinks
from ..sources._base import Source
from ._config import ServiceSettings, SessionSpec, SourceSpec

__all__ = [
    "FilePolicy",
    "NullSink",
    "build_sinks",
    "file_policy",
    "interface_exists",
    "open_output",
    "open_source",
    "sink_paths",
    "worker_path",
]


log = logging.getLogger("capsvc.service")
#: An AF_PACKET session's ring when its source gives neither ring_size nor buffer_kib (bytes);
#: the command line's default is 32 MiB.
SERVICE_RING_SIZE = 64 * 2**20


class FilePolicy(NamedTuple):
    """How the service's files and directories are made.

    Attributes:
        file_mode: permission bits of the files created (0600 by default).
        group: the group id given to them; None keeps the creating process's group.
        dir_mode: permission bits of the directories created (0700 by default).
    """

    file_mode: int = 0o600
    group: int | None = None
    dir_mode: int = 0o700

    def open(self, path: str) -> Directory:
        """``path`` as a Directory creating files by this policy (created when missing)."""
        return Directory(
            path, create=True, file_mode=self.file_mode, group=self.group, dir_mode=self.dir_mode
        )


def file_policy(settings: ServiceSettings, origin: str = "config") -> FilePolicy:
    """The policy ``settings`` ask for, its group looked up.

    Raises:
        ConfigError: ``file_group`` names no group of this system.
    """
    group = None
    name = settings.file_group
    if name:
        try:
            group = grp.getgrgid(int(name)).gr_gid if name.isdigit() else grp.getgrnam(name).gr_gid
        except KeyError:
            raise ConfigError(origin, "service.file_group", f"no group {name!r} here") from None
    return FilePolicy(settings.file_mode, group, settings.dir_mode)


def open_output(path: str, policy: FilePolicy) -> Directory:
    """The output directory, held open: created by ``policy`` when missing; an existing one
    gains the group and the mode bits the policy's readers need to reach its files (none are
    taken away), so that a group given read access to the files can also list them.

    Raises:
        OSError: it cannot be created, opened or changed.
        PathOutsideError: it is no directory.
    """
    directory = policy.open(path)
    try:
        info = os.fstat(directory.fd)
        wanted = stat.S_IMODE(info.st_mode) | policy.dir_mode
        if policy.group is not None and info.st_gid != policy.group:
            os.fchown(directory.fd, -1, policy.group)
        if wanted != stat.S_IMODE(info.st_mode):
            os.fchmod(directory.fd, wanted)
            log.warning(
                "output directory %s: mode set to %04o (file_mode %04o: its readers must "
                "reach the files)",
                path,
                wanted,
                policy.file_mode,
            )
    except BaseException:
        directory.close()
        raise
    return directory


def worker_path(path: str, worker: int | None) -> str:
    """``name.pcap`` -> ``name.workerK.pcap`` for worker K; unchanged for None."""
    if worker is None:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.worker{worker}{ext}"


def sink_paths(spec: SessionSpec) -> list[tuple[str, str]]:
    """``(relative path, part)`` of every file a session's sinks write (worker files for a
    session in workers; a rotating sink's template as written); part is ``sink N``."""
    workers: list[int | None] = [None] if spec.workers <= 1 else list(range(spec.workers))
    return [
        (worker_path(sink.path, k), f"sink {i}" if k is None else f"sink {i} worker {k}")
        for i, sink in enumerate(spec.sinks)
        if sink.path
        for k in workers
    ]


def interface_exists(name: str) -> bool:
    """True when ``name`` is an interface here (or libpcap's pseudo-device ``any``)."""
    if name == "any":
        return True
    try:
        socket.if_nametoindex(name)
    except (OSError, ValueError):  # ValueError: a name with a NUL byte
        return False
    return True


def build_sinks(
    spec: SessionSpec,
    directory: Directory | str,
    linktype: LinkType,
    snaplen: int,
    *,
    worker: int | None = None,
    keep: bool = False,
    claim: Callable[[str, str], None] | None = None,
) -> list[Sink]:
    """Open every output of a session below the output directory.

    Args:
        spec: the session spec.
        directory: the output directory (a path is opened, and created 0700 when missing).
        linktype: link type of the session's frames.
        snaplen: snapshot length written in file headers.
        worker: worker number K: file names get ``.workerK`` before their extension.
        keep: keep what the files hold (a session restarted by a reload; see
            ``capsvc.sinks._build``).
        claim: called as ``claim(part, path)`` with the full path of every name a rotating
            sink formats, before it creates the file.

    Returns:
        The sinks, a NullSink when the spec has none. On failure everything opened is closed.

    Raises:
        PathOutsideError: a path leaves the output directory, goes through a symbolic link or
            names something that is not a regular file of one link.
        ConflictError: a rotating sink's first name is another session's.
        OSError: a file cannot be created.
    """
    if isinstance(directory, str):
        with FilePolicy().open(directory) as opened:
            return build_sinks(
                spec, opened, linktype, snaplen, worker=worker, keep=keep, claim=claim
            )
    sinks: list[Sink] = []
    try:
        for i, sink_spec in enumerate(spec.sinks):
            one = replace(sink_spec, path=worker_path(sink_spec.path, worker))
            bound = None
            if claim is not None:
                bound = _bind_claim(claim, f"sink {i}", directory.path)
            sinks += open_sinks([one], directory, linktype, snaplen, keep=keep, claim=bound)
    except BaseException:
        for opened_sink in sinks:
            with contextlib.suppress(OSError):
                opened_sink.close()
        raise
    return sinks or [NullSink()]


def _bind_claim(claim: Callable[[str, str], None], part: str, where: str) -> Callable[[str], None]:
    def bound(name: str) -> None:
        claim(part, os.path.normpath(os.path.join(where, name)))

    return bound


def open_source(
    spec: SessionSpec,
    input_dir: Directory | str,
    *,
    origin: str = "request",
    fanout: tuple[int, str] | None = None,
) -> Source:
    """Open the source a spec names (the kernel filter is attached by live sources).

    Args:
        spec: the session spec.
        input_dir: where file sources are read from.
        origin: named in errors.
        fanout: (group id, mode) to join an AF_PACKET fanout group (workers).

    Returns:
        The open source; the caller closes it.

    Raises:
        NoSuchInterfaceError: a live source names an unknown interface.
        PathOutsideError: a file source leaves the input directory, goes through a symbolic
            link or is no regular file.
        NotFoundError: there is no such file.
        ConfigError: the file is no capture file capsvc can read.
        capsvc.CaptureError, OSError: the source cannot be opened.
    """
    src: SourceSpec = spec.source
    if src.type == "file":
        return _open_file_source(src, input_dir, origin)
    if not interface_exists(src.interface):
        raise NoSuchInterfaceError(src.interface)
    from ..sources._open import open_live_source

    options: dict[str, Any] = dict(src.options)
    buffer_size = int(options.pop("buffer_kib", 0)) * 1024  # tcpdump -B's unit
    if fanout is not None:
        options["fanout"] = fanout
    if src.type == "afpacket":
        # An expression classic BPF cannot hold is matched by the Session instead.
        options.setdefault("userspace_fallback", True)
        if not buffer_size and "ring_size" not in options:
            # A service session's writer does more per packet than the command line's (live
            # streams, the series): a longer ring bridges its bursts (docs/benchmarks.md).
            options["ring_size"] = SERVICE_RING_SIZE
    live: Source = open_live_source(
        src.type,
        src.interface,
        snaplen=spec.snaplen,
        promisc=src.promisc,
        filter=spec.filter or None,
        direction=src.direction,
        buffer_size=buffer_size,
        **options,
    )
    return live


def _open_file_source(src: SourceSpec, input_dir: Directory | str, origin: str) -> Source:
    from ..sources.capfile._source import PcapFileSource

    if isinstance(input_dir, str):
        with Directory(input_dir) as opened:
            return _open_file_source(src, opened, origin)
    try:
        fd = input_dir.open_read(src.path)
    except FileNotFoundError:
        raise NotFoundError(f"no file {src.path!r} in the input directory") from None
    stream = io.FileIO(fd, "rb")
    try:
        file_source: Source = PcapFileSource(
            io.BufferedReader(stream), owned=True, name=src.path, **dict(src.options)
        )
    except CaptureFileError:
        stream.close()
        # Not the decoder's reason: it may quote the file's first bytes.
        raise ConfigError(
            origin,
            "source.path",
            f"{src.path!r} is not a pcap or pcapng file capsvc can read",
        ) from None
    except BaseException:
        stream.close()
        raise
    return file_source
