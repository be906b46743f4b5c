"""Writing to streams the way every sink needs: whole buffers, even through unbuffered pipes."""

from __future__ import annotations

from typing import IO

__all__ = ["write_all"]


def write_all(stream: IO[bytes], data: bytes) -> None:
    """One ``write()``, and more only if an unbuffered stream took part of it (a raw pipe).

    Raises:
        BlockingIOError: a non-blocking stream took nothing more.
        OSError: whatever the stream raises.
    """
    done = stream.write(data)
    if done is None or done >= len(data):
        return
    view = memoryview(data)
    while done < len(data):
        more = stream.write(view[done:])
        if not more:
            raise BlockingIOError(11, "the stream took no more bytes")
        done += more
