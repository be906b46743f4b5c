"""The real libpfring's ``pcap:`` module on live interfaces: loopback and a private veth pair.

libpcap hands a live capture's packets over in blocks that the kernel closes at the latest a
second after their first packet, and a read on a drained live ``pcap:`` ring blocks inside
``pcap_next_ex``. These tests show the binding never waits there: stopping while idle is
prompt, and a ring that would block is unblocked by sending traffic, so a regression fails the
test rather than hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _helpers import ether, ipv4, udp
from _netns import VethPair, need_root, veth_pair

from capsvc import Direction, LinkType, Packet, PacketBatch, Session
from capsvc.sources.pfring import Flag, PfRingError, PfRingSource, Ring

pytestmark = pytest.mark.netns

FLAGS = pytest.mark.parametrize(
    "flags", [Flag.PROMISC, Flag.PROMISC | Flag.REENTRANT], ids=["zero-copy", "copy"]
)


class ListSink:
    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def write_batch(self, batch: PacketBatch) -> None:
        self.packets.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair() as p:
        yield p


@pytest.fixture
def udp_port() -> Iterator[tuple[socket.socket, int]]:
    """A bound UDP socket on loopback (so nothing answers with ICMP) and its port."""
    need_root()  # pcap_open_live needs CAP_NET_RAW
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock, sock.getsockname()[1]
    sock.close()


def send_udp(port: int, payloads: list[bytes], gap: float = 0.0) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for payload in payloads:
            out.sendto(payload, ("127.0.0.1", port))
            if gap:
                time.sleep(gap)


def frames(pair: VethPair, count: int, dport: int = 9000) -> list[bytes]:
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, dport, i.to_bytes(4, "big"))),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for i in range(count)
    ]


def unblock(burst: Callable[[], None], done: threading.Event | asyncio.Future[Any]) -> None:
    """Send bursts of traffic until ``done`` (for at most a minute): a read stuck in
    pcap_next_ex returns once the kernel hands over a block, full or a second old."""
    deadline = time.monotonic() + 60
    while not (done.is_set() if isinstance(done, threading.Event) else done.done()):
        if time.monotonic() > deadline:
            return
        burst()


def veth_burst(pair: VethPair, dport: int = 9000) -> Callable[[], None]:
    """Frames the capture's filter lets through (to ``dport``)."""
    burst = frames(pair, 600, dport)
    return lambda: pair.send_from_peer(burst)


def udp_burst(port: int) -> Callable[[], None]:
    return lambda: send_udp(port, [b"unblock"] * 600)


async def stop_promptly(session: Session, burst: Callable[[], None]) -> float:
    """Stop ``session``; return how long it took, or ``inf`` when it took over a second. The
    source is then unblocked with ``burst`` traffic, so a test fails rather than hangs."""
    started = time.monotonic()
    stop = asyncio.ensure_future(session.stop())
    done, _ = await asyncio.wait({stop}, timeout=1.0)
    took = time.monotonic() - started if done else float("inf")
    if not done:
        await asyncio.to_thread(unblock, burst, stop)
    await asyncio.wait_for(stop, 30)
    return took


@contextlib.asynccontextmanager
async def running(session: Session, burst: Callable[[], None]) -> AsyncIterator[list[float]]:
    """``async with Session`` that cannot hang: yields a list that gets the stop's duration."""
    await session.start()
    took: list[float] = []
    try:
        yield took
    finally:
        took.append(await stop_promptly(session, burst))


# -- loopback --------------------------------------------------------------------------------


@FLAGS
async def test_loopback_through_a_session(
    real_library: Path, udp_port: tuple[socket.socket, int], flags: Flag
) -> None:
    """pcap:lo with a BPF filter feeds a Session: every datagram, in order, once."""
    _sock, port = udp_port
    source = PfRingSource(
        "pcap:lo", flags=flags, filter=f"udp dst port {port}", library=real_library
    )
    assert source.live and source.linktype == LinkType.ETHERNET and not source.kernel_stats
    sink = ListSink()
    payloads = [b"lo-%03d" % i for i in range(20)]
    session = Session(sinks=[sink], source=source)
    async with running(session, udp_burst(port)):
        await asyncio.to_thread(send_udp, port, payloads, 0.01)
        await wait_for(lambda: len(sink.packets) >= 20)
        await asyncio.sleep(0.2)  # no duplicates follow
        stats = session.stats()
    assert [p.data[-6:] for p in sink.packets] == payloads
    assert {p.ifindex for p in sink.packets} == {socket.if_nametoindex("lo")}
    assert {p.direction for p in sink.packets} == {Direction.UNKNOWN}
    assert all(p.wire_len == len(p.data) == 14 + 20 + 8 + 6 for p in sink.packets)
    assert stats.packets == 20 and stats.received == 0  # the module counts nothing


@FLAGS
def test_loopback_blocking_reads(
    real_library: Path, udp_port: tuple[socket.socket, int], flags: Flag
) -> None:
    """A waiting read on a live pcap: ring returns a packet, or NO_PKT_AVAILABLE after the
    module's one-second wait."""
    _sock, port = udp_port
    with Ring.open("pcap:lo", 64, flags, library=real_library) as ring:
        ring.set_bpf_filter(f"udp dst port {port}")
        ring.enable()
        send_udp(port, [b"one", b"two"])
        first, info = ring.read_packet_data()
        second = bytes(ring.zero_copy_read_packet_data()[0]) if not flags & Flag.REENTRANT else b""
        started = time.monotonic()
        with pytest.raises(PfRingError) as none:
            while True:  # drain what else came, then wait on a quiet ring
                ring.read_packet_data()
                started = time.monotonic()
        waited = time.monotonic() - started
    assert first.endswith(b"one") and info.capture_length == len(first) == 45
    assert second.endswith(b"two") or flags & Flag.REENTRANT
    assert none.value.code_name == "NO_PKT_AVAILABLE" and 0.5 < waited < 3


# -- a private veth pair ---------------------------------------------------------------------


@FLAGS
async def test_quiet_then_busy_interface(real_library: Path, pair: VethPair, flags: Flag) -> None:
    """Idle, the source waits without spinning; busy, it takes every frame in order."""
    source = PfRingSource(f"pcap:{pair.host}", flags=flags, library=real_library)
    assert source.linktype == LinkType.ETHERNET
    sink = ListSink()
    sent = frames(pair, 3000)
    session = Session(sinks=[sink], source=source)
    async with running(session, veth_burst(pair)):
        cpu = time.process_time()
        await asyncio.sleep(1.5)
        idle_cpu = time.process_time() - cpu
        assert sink.packets == []
        await asyncio.to_thread(pair.send_from_peer, sent)
        await wait_for(lambda: len(sink.packets) >= len(sent))
        stats = session.stats()
    assert idle_cpu < 0.3
    assert [p.data for p in sink.packets] == sent
    assert {p.ifindex for p in sink.packets} == {pair.host_index}
    assert stats.packets == len(sent) and stats.dropped == 0


async def test_bpf_filter_on_a_live_interface(real_library: Path, pair: VethPair) -> None:
    source = PfRingSource(f"pcap:{pair.host}", filter="udp dst port 9001", library=real_library)
    sink = ListSink()
    mixed = [f for both in zip(frames(pair, 10), frames(pair, 10, 9001), strict=True) for f in both]
    async with running(Session(sinks=[sink], source=source), veth_burst(pair, 9001)):
        await asyncio.to_thread(pair.send_from_peer, mixed)
        await wait_for(lambda: len(sink.packets) >= 10)
        await asyncio.sleep(0.2)
    assert [p.data for p in sink.packets] == mixed[1::2]


@FLAGS
async def test_stop_while_idle_is_prompt(real_library: Path, pair: VethPair, flags: Flag) -> None:
    """Stopping a source that waits on a quiet interface takes well under a second (mutation:
    drop the ``pfring_poll(ring, 0)`` guard in ``_read_batch`` and the worker sits in
    ``pcap_next_ex`` until traffic comes: the packets stay in it and the stop takes seconds)."""
    source = PfRingSource(f"pcap:{pair.host}", flags=flags, library=real_library)
    sink = ListSink()
    async with running(Session(sinks=[sink], source=source), veth_burst(pair)) as took:
        await asyncio.to_thread(pair.send_from_peer, frames(pair, 5))
        deadline = time.monotonic() + 5
        while len(sink.packets) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.2)  # drained and idle
    assert len(sink.packets) == 5
    assert took[0] < 1.0, f"stop took {took[0]:.2f} s"


@FLAGS
def test_a_drained_live_ring_reads_nothing_without_blocking(
    real_library: Path, pair: VethPair, flags: Flag
) -> None:
    """The non-blocking read the source's worker makes returns at once on a quiet interface
    (mutation: drop the guard and it blocks inside pcap_next_ex)."""
    with Ring.open(f"pcap:{pair.host}", 0, flags, library=real_library) as ring:
        ring.enable()
        result: list[PacketBatch] = []
        done = threading.Event()

        def read() -> None:
            result.append(ring._read_batch(64))
            done.set()

        started = time.monotonic()
        reader = threading.Thread(target=read)
        reader.start()
        returned = done.wait(1.0)
        took = time.monotonic() - started
        if not returned:
            unblock(veth_burst(pair), done)
        reader.join(10)
    assert returned and took < 0.5, f"the read took {took:.2f} s"
    assert result == [[]] and ring._drained
