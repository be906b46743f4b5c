"""What the adversarial tests share: capture files to feed, trees to compare, raw HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import stat
from pathlib import Path

from _helpers import ether, ipv4, udp

from capsvc import Direction, LinkType, Packet
from capsvc.sinks import PcapWriter


def udp_frames(count: int, *, size: int = 100, port: int = 9000) -> list[bytes]:
    """Ethernet UDP frames numbered 0..count-1 in their first payload bytes."""
    return [
        ether(ipv4("10.9.0.1", "10.9.0.2", udp(40000, port, i.to_bytes(4, "big") + b"x" * size)))
        for i in range(count)
    ]


def write_pcap(path: Path, frames: list[bytes], *, start_ns: int = 1_700_000_000 * 10**9) -> Path:
    """A pcap file of ``frames``, one millisecond apart."""
    with open(path, "wb") as f:
        writer = PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=True)
        writer.write_batch(
            [
                Packet(start_ns + i * 1_000_000, frame, len(frame), Direction.INBOUND, 0)
                for i, frame in enumerate(frames)
            ]
        )
        writer.flush()
    return path


def tree(root: Path, *, skip: Path | None = None) -> dict[str, tuple[int, str]]:
    """Every entry below ``root`` (links not followed, ``skip`` left out): relative name ->
    (mode, content digest or link target), to compare a tree before and after."""
    found: dict[str, tuple[int, str]] = {}
    for top, dirs, files in os.walk(root, followlinks=False):
        here = Path(top)
        if skip is not None and (here == skip or skip in here.parents):
            dirs[:] = []
            continue
        for name in [*dirs, *files]:
            path = here / name
            if skip is not None and path == skip:
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                what = "-> " + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = ""
            found[str(path.relative_to(root))] = (info.st_mode, what)
    return found


async def raw_request(url: str, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send bytes as they are to the server of ``url`` (http://host:port) and read the answer
    until the server closes or ``timeout`` passes."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        chunks = []
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 for none)."""
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0


def connect(url: str) -> socket.socket:
    """A plain TCP connection to the server of ``url``."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)
