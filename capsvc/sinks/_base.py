"""The Sink protocol: what the Session's writer hands batches to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .._packet import LinkType, PacketBatch, Stats

__all__ = ["SessionAware", "Sink"]


@runtime_checkable
class Sink(Protocol):
    """A consumer of packet batches.

    The Session's writer calls these from its writer thread, one call at a time. A method that
    fails raises OSError (or a CapsvcError); the Session then counts a sink error, logs it once and
    stops using that sink while the others go on.
    """

    def write_batch(self, batch: PacketBatch) -> int | None:
        """Consume a batch (in arrival order); an empty batch is allowed and does nothing.

        Returns None when it took every packet (what almost every sink returns), or how many
        of the batch's first packets it took: a sink that has finished (a rotation whose last
        ``-W`` file is done) takes none of the rest, and the Session does not count those
        as written.
        """
        ...

    def flush(self) -> None:
        """Push buffered output to the underlying stream; called after batches and when idle."""
        ...

    def close(self) -> None:
        """Flush and release the sink's own resources. A stream the sink was given stays open."""
        ...


@runtime_checkable
class SessionAware(Protocol):
    """A sink that reads the Session's counters (the stats sink does, for drop ratios)."""

    def bind_session(self, stats: Callable[[], Stats], linktype: LinkType) -> None:
        """Called once by the Session before the first batch with its ``stats`` method and the
        link type of its frames."""
        ...
