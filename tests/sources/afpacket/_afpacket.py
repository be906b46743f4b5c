"""What the AF_PACKET tests share: a small-ring source, numbered frames, a collector."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from _helpers import ether, ipv4, udp
from _netns import VethPair

from capsvc import Packet
from capsvc.sources.afpacket._source import AfPacketSource

MARK = b"capsvc-afp"
IFF_PROMISC = 0x100


def source(interface: str, **options: Any) -> AfPacketSource:
    """An AfPacketSource with a small ring (2 MiB in 64 KiB blocks)."""
    return AfPacketSource(interface, ring_size=1 << 21, block_size=1 << 16, **options)


def frames(
    pair: VethPair,
    count: int,
    *,
    dport: int = 7000,
    sport: int = 40000,
    dst_mac: str | None = None,
    vlans: tuple[int, ...] = (),
) -> list[bytes]:
    """Numbered UDP frames from the peer to the host end's MAC (or ``dst_mac``)."""
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(sport, dport, MARK + i.to_bytes(4, "big"))),
            src=pair.peer_mac,
            dst=dst_mac or pair.host_mac,
            vlans=vlans,
        )
        for i in range(count)
    ]


def marked(batch: list[Packet]) -> list[Packet]:
    return [p for p in batch if MARK in p.data]


async def collect(
    src: AfPacketSource,
    count: int,
    *,
    timeout: float = 5.0,
    keep: Callable[[list[Packet]], list[Packet]] = marked,
    settle: float = 0.0,
) -> list[Packet]:
    """Read until ``count`` kept packets arrived, then ``settle`` seconds more; fail on timeout."""
    got: list[Packet] = []

    async def run() -> None:
        async for batch in src:
            got.extend(keep(batch))

    task = asyncio.create_task(run())
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.005)
        if settle:
            await asyncio.sleep(settle)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if len(got) < count:
        raise AssertionError(f"only {len(got)} of {count} packets arrived")
    return got
