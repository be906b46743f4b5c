"""Changing the filter of an open AF_PACKET source, reading it without async, closing it without
losing what the kernel counted, and cooked captures whose filter needs the Ethernet header."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest
from _afpacket import MARK, collect, frames, source
from _helpers import ether, ipv4, udp
from _netns import VethPair

from capsvc import LinkType, Packet, Session
from capsvc.sources.afpacket._source import AfPacketSource

pytestmark = pytest.mark.netns

OTHER_MAC = "02:00:00:00:00:77"


def numbered(pair: VethPair, count: int, *, host_side: bool = False) -> list[bytes]:
    """Frames numbered 0..count-1, even ones to UDP port 7000, odd ones to 7001."""
    src_mac, dst_mac = (pair.host_mac, pair.peer_mac)
    if not host_side:
        src_mac, dst_mac = dst_mac, src_mac
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, 7000 + i % 2, MARK + i.to_bytes(4, "big"))),
            src=src_mac,
            dst=dst_mac,
        )
        for i in range(count)
    ]


def number(packet: Packet) -> int:
    at = packet.data.index(MARK) + len(MARK)
    return int.from_bytes(packet.data[at : at + 4], "big")


def port(packet: Packet) -> int:
    at = packet.data.index(MARK)
    return int.from_bytes(packet.data[at - 6 : at - 4], "big")


async def test_set_filter_leaks_no_old_packet_and_loses_none(pair: VethPair) -> None:
    """Mutation: attaching the new program without the drop-all / read-out step (or throwing the
    ring's contents away, as libpcap does) fails the contiguity checks below."""
    src = source(pair.host, filter="udp port 7000", direction="out")
    sent = numbered(pair, 3000, host_side=True)
    got: list[Packet] = []
    everything: list[Packet] = []
    half = threading.Event()
    switched = threading.Event()

    def send() -> None:
        import socket

        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((pair.host, 0))
            for i, frame in enumerate(sent):
                s.send(frame)
                if i == len(sent) // 2:
                    half.set()
                    switched.wait(10)  # the second half meets the new filter, however fast
                if i % 16 == 0:
                    time.sleep(0.0002)

    async def read() -> None:
        async for batch in src:
            everything.extend(batch)
            got.extend(p for p in batch if MARK in p.data)

    reader = asyncio.create_task(read())
    sender = threading.Thread(target=send)
    try:
        sender.start()
        while not half.is_set():
            await asyncio.sleep(0.001)
        src.set_filter("udp port 7001")
        switched.set()
        assert src.userspace_filter is None
        await asyncio.to_thread(sender.join)
        await asyncio.sleep(0.1)
    finally:
        await src.aclose()
        await reader
    ports = [port(p) for p in got]
    switch = ports.index(7001)
    assert set(ports[:switch]) == {7000} and set(ports[switch:]) == {7001}  # nothing old after
    old = [number(p) for p in got[:switch]]
    new = [number(p) for p in got[switch:]]
    assert old == list(range(0, old[-1] + 1, 2)), "a packet of the old filter was lost"
    assert new == list(range(new[0], len(sent), 2)), "a packet of the new filter was lost"
    stats = src.stats()
    assert stats.received == len(everything) + stats.kernel_dropped


async def test_close_delivers_everything_the_kernel_counted(pair: VethPair) -> None:
    """Mutation: unmapping the ring at aclose() without reading it out first leaves received >
    delivered + kernel_dropped (the block being filled is lost)."""
    for _ in range(3):
        src = source(pair.host, block_timeout_ms=200)
        got: list[Packet] = []

        async def read(src: AfPacketSource, got: list[Packet]) -> None:
            async for batch in src:
                got.extend(batch)

        reader = asyncio.create_task(read(src, got))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(pair.send_from_peer, frames(pair, 300))
        await src.aclose()  # well inside the 200 ms block timeout
        await reader
        stats = src.stats()
        assert stats.received == len(got) + stats.kernel_dropped
        assert sum(MARK in p.data for p in got) == 300


def test_read_packet_data_without_async(pair: VethPair) -> None:
    src = source(pair.host, filter="udp port 7000")
    try:
        start = time.monotonic()
        assert src.read_packet_data(timeout=0.2) is None
        assert 0.15 < time.monotonic() - start < 2
        pair.send_from_peer(frames(pair, 5))
        got = [src.read_packet_data(timeout=2) for _ in range(5)]
        assert all(p is not None for p in got)
        numbers = [p.data[-4:] for p in got if p is not None]
        assert numbers == [i.to_bytes(4, "big") for i in range(5)]
        assert src.read_packet_data(timeout=0) is None
    finally:
        asyncio.run(src.aclose())


async def test_read_packet_data_refused_while_iterating(pair: VethPair) -> None:
    src = source(pair.host)
    reader = asyncio.create_task(collect(src, 1, timeout=0.3))
    await asyncio.sleep(0.05)
    try:
        with pytest.raises(RuntimeError, match="async for"):
            src.read_packet_data(timeout=0)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await src.aclose()


async def test_cooked_fallback_filters_link_addresses_and_cooks_like_the_kernel(
    pair: VethPair,
) -> None:
    """A cooked source whose filter needs the Ethernet header: the frames the kernel's own
    cooked socket gives, only those of the peer's MAC, and a Session takes the source (it used
    to raise the FilterCompileError the source had promised to leave to it)."""
    theirs = frames(pair, 3)
    strangers = [ether(f[14:], src=OTHER_MAC, dst=pair.host_mac) for f in frames(pair, 6)[3:]]
    plain = source(pair.host, cooked=True)
    fallback = source(
        pair.host, cooked=True, filter=f"ether src {pair.peer_mac}", userspace_fallback=True
    )
    assert fallback.linktype == LinkType.LINUX_SLL2 and fallback.userspace_filter is None
    out = io.BytesIO()
    session = Session(source=fallback, output=out)
    await session.start()
    try:
        reference = asyncio.create_task(collect(plain, 6, settle=0.1))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(pair.send_from_peer, [*theirs, *strangers])
        want = await reference
        await asyncio.sleep(0.2)
    finally:
        stats = await session.stop()
        await plain.aclose()
    from capsvc.sources.capfile import read_capture

    out.seek(0)
    with read_capture(out) as capture:
        kept = [p for batch in capture for p in batch if MARK in p.data]
    assert stats.packets == len(kept) == 3
    by_number = {p.data[-4:]: p for p in want}
    for p in kept:
        twin = by_number[p.data[-4:]]
        assert p.data == twin.data and p.wire_len == twin.wire_len  # the same SLL2 frame
