"""Opening a session's outputs and sources from its spec, inside the service's directories only.

Thin IO module. Every file is reached through a ``capsvc._files.Directory`` (the output
directory for sinks, the input directory for file sources): one component at a time from the
directory's descriptor with O_NOFOLLOW, regular files only (a FIFO or device is refused without
blocking), created 0600 in directories made 0700. An error names the file and what is wrong; it
never quotes what the file holds.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .._errors import CaptureFileError, ConfigError, NoSuchInterfaceError, NotFoundError
from .._files import Directory
from .._packet import LinkType
from ..sinks._base import Sink
from ..sinks._build import NullSink, open_sinks
from ..sources._base import Source
from ._config import SessionSpec, SourceSpec

__all__ = [
    "NullSink",
    "build_sinks",
    "interface_exists",
    "open_source",
    "sink_paths",
    "worker_path",
]


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
        with Directory(directory, create=True) as opened:
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
