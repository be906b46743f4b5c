"""A live source overflowing: a burst into a small kernel buffer, a small session queue and a
slow sink, on a real veth, for AF_PACKET and libpcap. Every packet the kernel counted is either
written or counted as dropped somewhere: received = packets + dropped + kernel_dropped, exactly.

Both sources are ``buffered`` (their kernel buffer holds packets while the queue is full), so the
session holds back instead of dropping: the drops are the kernel's, and ``dropped`` stays 0;
marked otherwise, the session's queue drops and counts.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dpkt
import pytest
from _helpers import ether, ipv4, udp
from _netns import VethPair

from capsvc import PacketBatch, Session, Source
from capsvc.sinks import PcapWriter
from capsvc.sources import AfPacketSource
from capsvc.sources.libpcap import LibpcapSource

pytestmark = pytest.mark.netns

COUNT = 3000
PORT = 9123


class SlowPcap(PcapWriter):
    """A pcap file sink that takes 20 ms per batch (a slow disk)."""

    def write_batch(self, batch: PacketBatch) -> None:
        time.sleep(0.02)
        super().write_batch(batch)


def burst(pair: VethPair) -> list[bytes]:
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, PORT, i.to_bytes(4, "big") + bytes(900))),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for i in range(COUNT)
    ]


def open_source(backend: str, pair: VethPair) -> Source:
    if backend == "afpacket":  # two 64 KiB blocks: about 130 of these frames
        return AfPacketSource(
            pair.host, filter=f"udp port {PORT}", ring_size=2 * 2**16, block_size=2**16
        )
    return LibpcapSource(pair.host, filter=f"udp port {PORT}", buffer_size=2**17, timeout_ms=10)


@pytest.mark.parametrize("held", [True, False], ids=["held-back", "queue-drops"])
@pytest.mark.parametrize("backend", ["afpacket", "libpcap"])
async def test_overflow_is_counted_exactly(
    backend: str, held: bool, pair: VethPair, tmp_path: Path
) -> None:
    """``held-back``: the sources as they are (buffered), the kernel drops. ``queue-drops``: the
    same sources marked not buffered, so the session's full queue drops what they deliver
    (both counts then grow).

    Mutations guarded: a packet lost between the ring and the queue (the hold-back dropping
    without counting, a last batch not read out at close), a batch cut at the queue's room
    counted one off, drops counted twice."""
    out = tmp_path / "slow.pcap"
    source = open_source(backend, pair)
    if not held:
        source.buffered = False  # type: ignore[attr-defined]
    with out.open("wb") as f:
        sink = SlowPcap(f, 0, source.linktype)
        session = Session(sinks=[sink], source=source, bufsize=16)
        await session.start()
        await asyncio.to_thread(pair.send_from_peer, burst(pair))
        async with asyncio.timeout(30):  # until every packet sent is read or dropped
            while (st := session.stats()).packets + st.dropped + st.kernel_dropped < COUNT:
                await asyncio.sleep(0.05)
        await session.stop()
    st = session.stats()
    assert st.received == COUNT, st
    assert st.packets + st.dropped + st.kernel_dropped == st.received, st
    if held:
        assert st.kernel_dropped > 0 and st.dropped == 0, st  # it overflowed, in the kernel
    else:
        assert st.dropped > 0, st  # the queue overflowed
    assert st.written == st.packets and st.filtered == 0, st
    with out.open("rb") as f:
        numbers = [int.from_bytes(bytes(buf)[42:46], "big") for _ts, buf in dpkt.pcap.Reader(f)]
    assert len(numbers) == st.packets
    assert numbers == sorted(set(numbers)) and numbers[0] == 0  # in order, none twice
