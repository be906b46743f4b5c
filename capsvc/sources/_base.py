"""The Source protocol every backend implements, and its statistics snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol, runtime_checkable

from .._packet import LinkType, PacketBatch

__all__ = ["Source", "SourceStats"]


class SourceStats(NamedTuple):
    """Counters of a source since it was opened (frozen snapshot).

    Attributes:
        received: packets the source delivered or saw (the kernel's count for live sources).
        kernel_dropped: packets the kernel or library dropped before capsvc could read them.
        if_dropped: packets the interface or driver dropped, where the backend reports it.
        freezes: times the kernel ring was full and froze (AF_PACKET TPACKET_V3).
    """

    received: int = 0
    kernel_dropped: int = 0
    if_dropped: int = 0
    freezes: int = 0


@runtime_checkable
class Source(Protocol):
    """A producer of packet batches for a Session.

    Attributes:
        linktype: the link type of every frame the source yields.
        snaplen: the largest captured length it yields.
        live: True when packets arrive whether or not they are read (a queue that is full must
            drop); False when the source waits for its reader (a capture file), so the Session
            holds it back instead of dropping.
        buffered: (optional; False when absent) a live source whose packets wait in a kernel
            buffer while they are not read, which drops and counts (``kernel_dropped``) only
            what overflows it: the Session holds it back too when its queue is full, so the
            kernel's buffer and the queue make one, and no packet the kernel still holds is
            dropped in userspace.
    """

    linktype: LinkType
    snaplen: int
    live: bool

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        """Yield batches until the source is exhausted or closed. A yielded batch belongs to
        its reader from then on: the source never changes it again."""
        ...

    def stats(self) -> SourceStats:
        """Return the counters since the source was opened."""
        ...

    async def aclose(self) -> None:
        """Close the source; idempotent, and closes even when something fails on the way."""
        ...
