"""Live sources under anyio's backends (asyncio, uvloop, trio): AF_PACKET and libpcap on a veth
pair in a test namespace (PF_RING: pfring/test_pfring_backends.py). Each feeds a Session; the
application reads with ``session.packets()``; the source waits for its descriptor on the loop
it runs on and wakes up when it is closed while waiting.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from _helpers import ether, ipv4, udp
from _netns import VethPair, veth_pair

from capsvc import Packet, PacketBatch, Session

pytestmark = pytest.mark.anyio

MARK = b"capsvc-backend"


class NullSink:
    def write_batch(self, batch: PacketBatch) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def pair() -> Iterator[VethPair]:
    with veth_pair() as p:
        yield p


def frames(pair: VethPair, dport: int, count: int) -> list[bytes]:
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, dport, MARK + i.to_bytes(4, "big"))),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for i in range(count)
    ]


async def capture(session: Session, pair: VethPair, sent: list[bytes]) -> list[Packet]:
    """Send ``sent`` from the peer while reading the session's packets; stop once all came."""
    got: list[Packet] = []
    async with session:
        stream = session.packets(maxsize=len(sent) * 2)
        await anyio.sleep(0.2)  # idle first: the source waits on its descriptor
        await anyio.to_thread.run_sync(pair.send_from_peer, sent)
        with anyio.fail_after(10):
            async for packet in stream:
                if MARK in packet.data:
                    got.append(packet)
                if len(got) == len(sent):
                    break
        await stream.aclose()
        await anyio.sleep(0.1)  # idle again: stop wakes a waiting source
    return got


@pytest.mark.netns
async def test_afpacket_on_each_backend(pair: VethPair) -> None:
    from capsvc.sources.afpacket import AfPacketSource

    sent = frames(pair, 7101, 40)
    source = AfPacketSource(
        pair.host, filter="udp port 7101", ring_size=1 << 21, block_size=1 << 16
    )
    session = Session(source=source, sinks=[NullSink()])
    got = await capture(session, pair, sent)
    assert [p.data for p in got] == sent
    final = session.stats()
    assert final.packets + final.dropped + final.filtered >= 40
    assert final.received == final.packets + final.kernel_dropped and final.dropped == 0


@pytest.mark.netns
async def test_afpacket_limit_ends_wait(pair: VethPair) -> None:
    from capsvc.sources.afpacket import AfPacketSource

    source = AfPacketSource(pair.host, filter="udp port 7102")
    async with Session(source=source, sinks=[NullSink()], limit=10) as session:
        await anyio.to_thread.run_sync(pair.send_from_peer, frames(pair, 7102, 25))
        with anyio.fail_after(10):
            final = await session.wait()
    assert final.packets == 10 and session.limit_reached.is_set()


@pytest.mark.netns
async def test_libpcap_on_each_backend(pair: VethPair) -> None:
    from capsvc.sources.libpcap._source import LibpcapSource

    try:
        source = LibpcapSource(pair.host, filter="udp port 7103", timeout_ms=20)
    except Exception as exc:  # no libpcap here: that is a skip, not a pass
        pytest.skip(f"libpcap cannot open a live capture: {exc}")
    sent = frames(pair, 7103, 30)
    session = Session(source=source, sinks=[NullSink()])
    got = await capture(session, pair, sent)
    assert [p.data for p in got] == sent
