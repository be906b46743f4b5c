"""Record blocks: a live source's packets as a few buffers instead of one Packet per frame.

Where nothing in userspace looks at single packets (no Python filter, no packet limit cutting a
batch, only sinks that copy bytes), building a Packet tuple, a bytes object and an int for every
frame is most of a live capture's CPU. A source that can (AfPacketSource, with the C speed-ups
built) then hands the Session a ``RecordBlock``: the frames of its ring blocks copied into one
bytes object per ring block, with their count and wire total. It travels through the Session's
queue like a batch; the sink thread gives it to sinks with a ``write_records`` method (the pcap
writer, which encodes it in one C call) and turns it into Packets, once, for every other sink.

Pure data and functions; the per-record loops are C only (``capsvc._speedups``): without the
speed-ups no source makes record blocks, and every packet is a Packet as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from ._accel import speedups
from ._packet import Direction, Packet, PacketBatch

__all__ = ["RecordBlock", "available", "packets_only"]

_C = speedups()


def available() -> bool:
    """True when record blocks can be made and read (the C speed-ups are built and enabled)."""
    return _C is not None


class RecordBlock:
    """Frames held as records in bytes parts (see capsvc/_speedups.c for the record layout).

    Attributes:
        parts: the bytes objects holding the records, in order.
        count: how many packets the parts hold.
        wire: the sum of their wire lengths.
    """

    __slots__ = ("_packets", "count", "parts", "wire")

    def __init__(self, parts: list[bytes], count: int, wire: int) -> None:
        self.parts = parts
        self.count = count
        self.wire = wire
        self._packets: PacketBatch | None = None

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __repr__(self) -> str:
        return f"RecordBlock({self.count} packets in {len(self.parts)} parts)"

    def packets(self) -> PacketBatch:
        """The packets as Packet tuples (built on the first call, then kept: call it from one
        thread). Their direction is as the source gave it (a ring's INBOUND or OUTBOUND, a pcap
        file's UNKNOWN)."""
        packets = self._packets
        if packets is None:
            assert _C is not None
            packets = _C.records_packets(
                self.parts, Packet, Direction.INBOUND, Direction.OUTBOUND, Direction.UNKNOWN, []
            )
            self._packets = packets
        return packets

    def pcap(self, snaplen: int, *, nanosecond: bool = False) -> bytes:
        """The packets as pcap records, as ``capsvc.sinks._pcap.encode_records`` encodes them."""
        assert _C is not None
        records: bytes = _C.records_pcap(self.parts, snaplen, nanosecond)
        return records

    @classmethod
    def join(cls, blocks: Iterable[RecordBlock]) -> RecordBlock:
        """One block holding the packets of ``blocks`` in order (the parts are shared)."""
        parts: list[bytes] = []
        count = wire = 0
        for block in blocks:
            parts += block.parts
            count += block.count
            wire += block.wire
        return cls(parts, count, wire)


async def packets_only(
    batches: AsyncIterator[PacketBatch | RecordBlock],
) -> AsyncIterator[PacketBatch]:
    """A source's batches read without record blocks (a source's ``async for``): each must
    be a list of Packets."""
    async for batch in batches:
        assert isinstance(batch, list)  # the source was asked for Packets only
        yield batch
