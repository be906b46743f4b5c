"""Opening a session's outputs and sources from its spec, inside the output directory only.

Thin IO module. Every path is joined to the output directory, resolved (symlinks included) and
refused unless it stays inside; files are created 0600 with O_NOFOLLOW, so a symlink planted at the
file name cannot redirect a write either.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import Any

from .._errors import NoSuchInterfaceError, PathOutsideError
from .._files import Directory
from .._packet import LinkType, PacketBatch
from ..sinks._base import Sink
from ..sinks._build import open_sinks
from ..sources._base import Source
from ._config import SessionSpec, SourceSpec

__all__ = [
    "NullSink",
    "build_sinks",
    "inside",
    "interface_exists",
    "open_source",
    "worker_path",
]


class NullSink:
    """A sink that keeps nothing: for sessions that only feed live streams."""

    def write_batch(self, batch: PacketBatch) -> None:
        """Discard the batch."""

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to close."""


def inside(output_dir: str, relative: str, *, origin: str, key: str) -> str:
    """Join ``relative`` to ``output_dir`` and check the result stays inside, symlinks resolved.

    Args:
        output_dir: the configured output directory.
        relative: a path already checked lexically (``_config.relative_path``).
        origin: named in errors.
        key: named in errors.

    Returns:
        The absolute path (its final component unresolved, so O_NOFOLLOW still applies).

    Raises:
        PathOutsideError: the resolved path leaves the directory.
    """
    root = os.path.realpath(output_dir)
    full = os.path.join(root, relative)
    parent = os.path.realpath(os.path.dirname(full))
    if os.path.commonpath([root, parent]) != root:
        raise PathOutsideError(origin, key, f"{relative!r} resolves outside the output directory")
    return os.path.join(parent, os.path.basename(full))


def worker_path(path: str, worker: int | None) -> str:
    """``name.pcap`` -> ``name.workerK.pcap`` for worker K; unchanged for None."""
    if worker is None:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.worker{worker}{ext}"


def interface_exists(name: str) -> bool:
    """True when ``name`` is an interface here (or libpcap's pseudo-device ``any``)."""
    if name == "any":
        return True
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def build_sinks(
    spec: SessionSpec,
    output_dir: str,
    linktype: LinkType,
    snaplen: int,
    *,
    worker: int | None = None,
) -> list[Sink]:
    """Open every output of a session below the output directory.

    Args:
        spec: the session spec.
        output_dir: the configured output directory (created 0700 when missing).
        linktype: link type of the session's frames.
        snaplen: snapshot length written in file headers.
        worker: worker number K: file names get ``.workerK`` before their extension.

    Returns:
        The sinks, a NullSink when the spec has none. On failure everything opened is closed.

    Raises:
        PathOutsideError: a path leaves the output directory, goes through a symbolic link or
            names something that is not a regular file.
        OSError: a file cannot be created.
    """
    specs = [replace(s, path=worker_path(s.path, worker)) if s.path else s for s in spec.sinks]
    with Directory(output_dir, create=True) as directory:
        sinks = open_sinks(specs, directory, linktype, snaplen)
    return sinks or [NullSink()]


def open_source(
    spec: SessionSpec,
    output_dir: str,
    *,
    origin: str = "request",
    fanout: tuple[int, str] | None = None,
) -> Source:
    """Open the source a spec names (the kernel filter is attached by live sources).

    Args:
        spec: the session spec.
        output_dir: where file sources are read from.
        origin: named in errors.
        fanout: (group id, mode) to join an AF_PACKET fanout group (workers).

    Returns:
        The open source; the caller closes it.

    Raises:
        NoSuchInterfaceError: a live source names an unknown interface.
        PathOutsideError: a file source leaves the output directory.
        capsvc.CaptureError, OSError: the source cannot be opened.
    """
    src: SourceSpec = spec.source
    if src.type == "file":
        from ..sources.capfile._source import (
            PcapFileSource,
        )

        path = inside(output_dir, src.path, origin=origin, key="source.path")
        file_source: Source = PcapFileSource(path, **dict(src.options))
        return file_source
    if not interface_exists(src.interface):
        raise NoSuchInterfaceError(src.interface)
    from ..sources._open import open_live_source

    options: dict[str, Any] = dict(src.options)
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
        **options,
    )
    return live
