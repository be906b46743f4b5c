"""A small application of capsvc's public API, type-checked by ``mypy --strict`` against the
installed package (tests/typing/test_typed.py): py.typed must make every name below known."""

from __future__ import annotations

import sys

import anyio

import capsvc
from capsvc import LinkType, Packet, PacketBatch, Session, Stats, SubscriberStats
from capsvc.decode import NO_PORT, Endpoints, layers
from capsvc.filter import Node, parse
from capsvc.sources import AfPacketSource, LibpcapSource, PcapFileSource, Source


class CountingSink:
    """A custom sink: the Session's writer thread calls it."""

    def __init__(self) -> None:
        self.packets = 0

    def write_batch(self, batch: PacketBatch) -> None:
        self.packets += len(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def ports(packet: Packet, linktype: LinkType) -> tuple[int, int]:
    ends: Endpoints | None = packet.addresses(linktype)
    if ends is None or ends.sport == NO_PORT:
        return (0, 0)
    return ends.sport, ends.dport


def live_sources(interface: str) -> list[Source]:
    https: Node | None = parse("tcp port 443")
    return [
        AfPacketSource(interface, filter=https),
        AfPacketSource(interface, filter="udp port 53"),
        LibpcapSource(interface, filter=https),
    ]


async def read(path: str) -> Stats:
    sink = CountingSink()
    source = PcapFileSource(path, filter=parse("tcp"))
    async with Session(source=source, sinks=[sink], linktype=LinkType.ETHERNET) as session:
        async with session.packets(maxsize=256, filter="tcp port 443") as packets:
            async for packet in packets:
                sport, dport = ports(packet, session.linktype)
                top = packet.decode(session.linktype)
                print(sport, dport, type(top).__name__, layers(packet.data, LinkType.ETHERNET))
        streams: list[SubscriberStats] = session.subscriber_stats()
        print(len(streams))
        async for batch in session.batches():
            print(len(batch), sink.packets)
        final: Stats = await session.wait()
    stats: capsvc.Stats = session.stats()
    return final if stats.packets == final.packets else stats


def main() -> None:
    final = anyio.run(read, sys.argv[1], backend="trio")
    print(final.packets + final.dropped + final.filtered, final.written)


if __name__ == "__main__":
    main()
