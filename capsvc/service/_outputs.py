"""Opening a session's outputs and sources from its spec, inside the output directory only.

Thin IO module. Every path is joined to the output directory, resolved (symlinks included) and
refused unless it stays inside; files are created 0600 with O_NOFOLLOW, so a symlink planted at the
file name cannot redirect a write either.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable
from typing import IO, Any

from .._errors import NoSuchInterfaceError, PathOutsideError
from .._packet import LinkType, PacketBatch
from ..sinks._base import Sink
from ..sinks._pcap import encode_records, pcap_header
from ..sources._base import Source
from ._config import SessionSpec, SinkSpec, SourceSpec

__all__ = [
    "NullSink",
    "PcapFile",
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


class PcapFile:
    """A pcap file sink (nanosecond records) that can share each batch's encoded records.

    The records are encoded once per batch with ``capsvc.sinks._pcap.encode_records``; when
    ``publish`` is set it receives ``(batch, records)`` after the write, so the session's live
    streams, which send the same records, need not encode the batch again.

    Args:
        stream: a binary file this sink owns and closes.
        snaplen: snapshot length in the header and the cap on each record.
        linktype: link type in the header.
    """

    def __init__(self, stream: IO[bytes], snaplen: int, linktype: LinkType) -> None:
        self.stream = stream
        self.snaplen = snaplen
        self.linktype = linktype
        self.publish: Callable[[PacketBatch, bytes], None] | None = None
        self._header = False

    def write_batch(self, batch: PacketBatch) -> None:
        """Write the batch's records with one ``write()`` (the header joins the first)."""
        if not batch:
            return
        body = encode_records(batch, self.snaplen, nanosecond=True)
        if not self._header:
            self.stream.write(pcap_header(self.snaplen, self.linktype, nanosecond=True) + body)
            self._header = True
        else:
            self.stream.write(body)
        publish = self.publish
        if publish is not None:
            publish(batch, body)

    def flush(self) -> None:
        """Flush the file."""
        self.stream.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self.stream.close()


class _OwnedFile:
    """A sink writing to a file it opened, and closes."""

    def __init__(self, inner: Sink, stream: IO[Any]) -> None:
        self.inner = inner
        self.stream = stream

    def write_batch(self, batch: PacketBatch) -> None:
        self.inner.write_batch(batch)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.stream.close()


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


def _create(path: str, mode: str) -> IO[Any]:
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if mode == "b":
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", buffering=1)


def build_sinks(
    spec: SessionSpec,
    output_dir: str,
    linktype: LinkType,
    snaplen: int,
    *,
    origin: str = "request",
    worker: int | None = None,
) -> list[Sink]:
    """Open every output of a session.

    Args:
        spec: the session spec.
        output_dir: the configured output directory.
        linktype: link type of the session's frames.
        snaplen: snapshot length written in file headers.
        origin: named in errors.
        worker: worker number K: file names get ``.workerK`` before their extension.

    Returns:
        The sinks, a NullSink when the spec has none. On failure everything opened is closed.

    Raises:
        PathOutsideError: a path leaves the output directory.
        OSError: a file cannot be created.
    """
    sinks: list[Sink] = []
    try:
        for i, sink in enumerate(spec.sinks):
            sinks.append(
                _build_one(sink, output_dir, linktype, snaplen, origin, f"sinks[{i}].path", worker)
            )
    except BaseException:
        for opened in sinks:
            with contextlib.suppress(OSError):
                opened.close()
        raise
    return sinks or [NullSink()]


def _build_one(
    sink: SinkSpec,
    output_dir: str,
    linktype: LinkType,
    snaplen: int,
    origin: str,
    key: str,
    worker: int | None,
) -> Sink:
    path = (
        inside(output_dir, worker_path(sink.path, worker), origin=origin, key=key)
        if sink.path
        else ""
    )
    if sink.type in ("pcap", "pcapng"):
        pcapng = sink.type == "pcapng"
        if sink.rotate_seconds or sink.rotate_mb or sink.max_files:
            from ..sinks._rotate import RotatingWriter

            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            rotating: Sink = RotatingWriter(
                path,
                linktype=linktype,
                snaplen=snaplen,
                pcapng=pcapng,
                rotate_seconds=sink.rotate_seconds,
                rotate_bytes=int(sink.rotate_mb * 1_000_000),
                max_files=sink.max_files,
                nanosecond=True,
            )
            return rotating
        stream = _create(path, "b")
        if not pcapng:
            return PcapFile(stream, snaplen, linktype)
        from ..sinks._pcapng import PcapNgWriter

        return _OwnedFile(PcapNgWriter(stream, snaplen, linktype), stream)
    if sink.type == "text":
        from ..sinks._text import TextWriter

        text = _create(path, "t")
        return _OwnedFile(TextWriter(text, sink.verbose, sink.ascii, linktype=linktype), text)
    from ..sinks._stats import StatsSink

    if not path:
        stats: Sink = StatsSink(sys.stderr, sink.interval)
        return stats
    out = _create(path, "t")
    return _OwnedFile(StatsSink(out, sink.interval), out)


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
