"""Record blocks: ring blocks as records, and the same packets and pcap bytes as the Packet path.

A Session reads a live AF_PACKET source as RecordBlocks (capsvc/_records.py) and builds Packets
only where something needs them. Every difference from the Packet path is a packet captured
wrongly, so each step is compared with it: the records of a block against ``parse_block_py``,
their pcap encoding against ``encode_records``, the queue's joining and unpacking, and whole
Sessions (pcap sink, a sink without ``write_records``, a filter, a packet limit, a full queue).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator

import pytest
from _blocks import build_block
from _helpers import ether, ipv4, ipv6, tcp, udp
from hypothesis import given, settings
from hypothesis import strategies as st

from capsvc import Direction, LinkType, Packet, PacketBatch, Session
from capsvc._queue import PacketQueue
from capsvc._records import RecordBlock, available
from capsvc.format._line import TextFormatter
from capsvc.sinks import PcapWriter, TextWriter
from capsvc.sinks._pcap import encode_records_py
from capsvc.sources._base import SourceStats
from capsvc.sources.afpacket._tpacket import (
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    block_records,
    parse_block_py,
)

pytestmark = pytest.mark.skipif(not available(), reason="capsvc._speedups is not built")

SAMPLE = [
    {"data": b"\x01" * 60, "sec": 7, "nsec": 999_999_999, "wire": 1514, "ifindex": 3},
    {"data": bytes(range(200)), "pkttype": 4, "ifindex": -5},
    {"data": b"v" * 40, "status": TP_STATUS_VLAN_VALID, "tci": 0x1_2345, "tpid": 0x88A8},
    {"data": b"w" * 40, "status": TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, "tpid": 0x88A8},
    {"data": b"s" * 11, "status": TP_STATUS_VLAN_VALID},  # too short to hold a tag
    {"data": b"", "hatype": 772, "addr": b"\xff" * 8},
]


def records_of(
    block: bytes, base: int = 0, *, cooked: bool = False, restore_vlan: bool = False
) -> RecordBlock:
    data, count, wire = block_records(block, base, cooked=cooked, restore_vlan=restore_vlan)
    return RecordBlock([data] if count else [], count, wire)


def same_as_packets(
    block: bytes, *, cooked: bool = False, restore_vlan: bool = False
) -> RecordBlock:
    """Records of ``block`` must give back exactly what the Packet parser reads from it."""
    reference = parse_block_py(block, cooked=cooked, restore_vlan=restore_vlan)
    records = records_of(block, cooked=cooked, restore_vlan=restore_vlan)
    assert records.count == len(reference)
    assert records.wire == sum(p.wire_len for p in reference)
    assert records.packets() == reference
    assert [type(p.direction) for p in records.packets()] == [Direction] * len(reference)
    for snaplen in (262144, 64, 1):
        for nanosecond in (False, True):
            assert records.pcap(snaplen, nanosecond=nanosecond) == encode_records_py(
                reference, snaplen, nanosecond=nanosecond
            )
    return records


@pytest.mark.parametrize("cooked", [False, True])
@pytest.mark.parametrize("restore_vlan", [False, True])
def test_same_packets_and_pcap_for_every_mode(cooked: bool, restore_vlan: bool) -> None:
    records = same_as_packets(build_block(SAMPLE), cooked=cooked, restore_vlan=restore_vlan)
    assert records.count == len(SAMPLE)


def test_every_truncation_of_a_block() -> None:
    """Mutation guarded: a bounds check of the record walk off by one reads past the end."""
    block = build_block(SAMPLE)
    for cut in range(len(block) + 1):
        for cooked in (False, True):
            same_as_packets(block[:cut], cooked=cooked, restore_vlan=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=120), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=1, max_size=24),
    st.booleans(),
)
def test_random_damage(frames: list[bytes], at: int, noise: bytes, cooked: bool) -> None:
    block = bytearray(build_block([{"data": f, "status": TP_STATUS_VLAN_VALID} for f in frames]))
    at %= len(block)
    block[at : at + len(noise)] = noise[: len(block) - at]
    same_as_packets(bytes(block), cooked=cooked, restore_vlan=True)


def test_joined_blocks_keep_order_and_counts() -> None:
    a = records_of(build_block(SAMPLE[:2]))
    b = records_of(build_block(SAMPLE[2:]))
    joined = RecordBlock.join([a, b, RecordBlock([], 0, 0)])
    assert (joined.count, joined.wire) == (a.count + b.count, a.wire + b.wire)
    assert joined.packets() == a.packets() + b.packets()
    assert joined.pcap(100) == a.pcap(100) + b.pcap(100)
    assert not RecordBlock([], 0, 0) and joined


def test_a_record_cut_short_ends_its_part_only() -> None:
    """A damaged part must not take the next part's records with it, nor read past its end."""
    whole = records_of(build_block(SAMPLE[:2]))
    cut = RecordBlock([whole.parts[0][:-5], *whole.parts], 0, 0)
    assert cut.packets() == whole.packets()[:1] + whole.packets()


def test_queue_joins_blocks_and_unpacks_them_among_packets() -> None:
    q = PacketQueue()
    a, b = records_of(build_block(SAMPLE[:3])), records_of(build_block(SAMPLE[3:]))
    q.put(a)
    assert q.take() is a  # a lone block crosses as it is
    q.put(a)
    q.put(b)
    joined = q.take()
    assert isinstance(joined, RecordBlock) and joined.packets() == a.packets() + b.packets()
    single = Packet(1, b"x", 1, Direction.INBOUND, 0)
    q.put(a)
    q.put_one(single)
    q.put([single])
    q.put(b)
    mixed = q.take()
    assert mixed == [*a.packets(), single, single, *b.packets()]
    assert q.added == q.taken == 3 * len(a) + 2 * len(b) + 2
    q.put([single])
    assert q.take() == [single]  # no block left: the plain path again


def test_queue_across_threads_with_blocks() -> None:
    """Each packet once, in order, whichever mix of blocks and packets the taker meets."""
    q = PacketQueue()
    block = records_of(build_block([{"data": b"r", "nsec": i} for i in range(3)]))
    got: list[int] = []
    done = threading.Event()

    def taker() -> None:
        while not done.is_set() or q:
            batch = q.take()
            got.extend(p.ts_ns % 10**9 for p in _packets(batch))

    thread = threading.Thread(target=taker)
    thread.start()
    expected: list[int] = []
    for i in range(5000):
        if i % 2:
            q.put(block)
            expected += [0, 1, 2]
        else:
            q.put_one(Packet(7, b"p", 1, Direction.INBOUND, 0))
            expected.append(7)
    done.set()
    thread.join(10)
    assert got == expected and q.added == q.taken


def _packets(batch: PacketBatch | RecordBlock) -> PacketBatch:
    return batch.packets() if isinstance(batch, RecordBlock) else batch


# -- whole Sessions reading records ------------------------------------------------------------


class RecordSource:
    """A live, buffered source handing over RecordBlocks, as AfPacketSource does."""

    linktype = LinkType.ETHERNET
    snaplen = 262144
    live = True
    buffered = True

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks

    def stats(self) -> SourceStats:
        return SourceStats()

    async def aclose(self) -> None:
        pass

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        raise AssertionError("a Session must read this source's records")

    async def record_batches(self) -> AsyncIterator[PacketBatch | RecordBlock]:
        for block in self.blocks:
            await asyncio.sleep(0)
            yield records_of(block)


class Collect:
    """A sink without write_records: it must get Packets."""

    def __init__(self) -> None:
        self.got: PacketBatch = []

    def write_batch(self, batch: PacketBatch) -> None:
        assert type(batch) is list
        self.got.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


FRAMES = [
    {"data": bytes([i]) * (60 + i), "sec": 1_700_000_000 + i, "nsec": i * 1000} for i in range(50)
]
BLOCKS = [build_block(FRAMES[:20]), build_block(FRAMES[20:]), build_block(SAMPLE)]
EVERY = [p for block in BLOCKS for p in parse_block_py(block)]


async def run(session: Session) -> Session:
    await session.start()
    await session.wait_source()
    await session.stop()
    return session


async def test_session_writes_records_as_the_packet_path_does() -> None:
    out, collect = io.BytesIO(), Collect()
    writer = PcapWriter(out, linktype=LinkType.ETHERNET)
    session = await run(
        Session(linktype=LinkType.ETHERNET, source=RecordSource(BLOCKS), sinks=[writer, collect])
    )
    reference = io.BytesIO()
    PcapWriter(reference, linktype=LinkType.ETHERNET).write_batch(EVERY)
    assert out.getvalue() == reference.getvalue()
    assert collect.got == EVERY
    stats = session.stats()
    assert (stats.packets, stats.bytes) == (len(EVERY), sum(p.wire_len for p in EVERY))


class Odd:
    """A matcher keeping frames whose first byte is odd."""

    def match(self, data: bytes, wire_len: int = 0) -> bool:
        return bool(data) and data[0] % 2 == 1


async def test_session_filter_and_limit_apply_to_records() -> None:
    collect = Collect()
    session = await run(
        Session(
            linktype=LinkType.ETHERNET,
            source=RecordSource(BLOCKS),
            sinks=[collect],
            matcher=Odd(),
            limit=15,
        )
    )
    odd = [p for p in EVERY if p.data and p.data[0] % 2 == 1]
    assert collect.got == odd[:15]
    assert session.stats().packets == 15


async def test_session_snaplen_cuts_records() -> None:
    collect = Collect()
    await run(
        Session(linktype=LinkType.ETHERNET, source=RecordSource(BLOCKS), sinks=[collect], snaplen=8)
    )
    assert [p.data for p in collect.got] == [p.data[:8] for p in EVERY]
    assert [p.wire_len for p in collect.got] == [p.wire_len for p in EVERY]


async def test_full_queue_holds_a_buffered_record_source_back() -> None:
    """A queue smaller than a block: nothing dropped, every packet written, in order."""
    collect = Collect()
    session = await run(
        Session(linktype=LinkType.ETHERNET, source=RecordSource(BLOCKS), sinks=[collect], bufsize=7)
    )
    assert collect.got == EVERY
    assert session.stats().dropped == 0


async def test_text_writer_writes_records_as_the_packet_path_does() -> None:
    """The sink thread hands the text writer RecordBlocks; its lines (written in C from the
    records) are the Python formatter's lines of the same packets, which a sink without
    ``write_records`` gets."""
    frames = [
        {
            "data": ether(ipv4("10.0.0.1", "10.0.0.2", udp(5000, 4096 + i, b"x" * i))),
            "pkttype": i % 5,
        }
        for i in range(30)
    ] + [
        {"data": ether(ipv4("10.0.0.1", "10.0.0.2", udp(40000, 53, bytes(12))))},
        {"data": ether(ipv6("fd00::1", "fd00::2", tcp(1, 2, b"GET / HTTP/1.1\r\n", flags="PA")))},
    ]
    out, collect = io.StringIO(), Collect()
    writer = TextWriter(out, linktype=LinkType.ETHERNET)
    await run(
        Session(
            linktype=LinkType.ETHERNET,
            source=RecordSource([build_block(frames[:16]), build_block(frames[16:])]),
            sinks=[writer, collect],
        )
    )
    fmt = TextFormatter(LinkType.ETHERNET)
    expected = [fmt.format(p[0], p[1], p[2], p[3]) for p in collect.got]
    assert len(expected) == len(frames) and out.getvalue().splitlines() == expected
    assert "[OUT  UDP]" in expected[4] and ": GET / HTTP/1.1" in expected[-1]


class SlowRecords:
    """A sink taking records, slow enough that the queue fills up behind it."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.got: PacketBatch = []

    def write_records(self, block: RecordBlock) -> None:
        self.kinds.append("records")
        self.got.extend(block.packets())
        time.sleep(0.01)

    def write_batch(self, batch: PacketBatch) -> None:
        self.kinds.append("packets")
        self.got.extend(batch)
        time.sleep(0.01)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_full_queue_keeps_record_blocks_whole() -> None:
    """A record block that fits in the queue waits for room for all of it: cut, it would reach
    every sink as Packets (the text and pcap writers' C paths take records). Mutation guarded:
    the block cut at the room left, as a list of packets."""
    blocks = [build_block(FRAMES[i : i + 10]) for i in range(0, 50, 10)]
    sink = SlowRecords()
    session = await run(
        Session(linktype=LinkType.ETHERNET, source=RecordSource(blocks), sinks=[sink], bufsize=15)
    )
    assert sink.got == [p for block in blocks for p in parse_block_py(block)]
    assert set(sink.kinds) == {"records"}
    assert session.stats().dropped == 0


@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_writer_writes_and_publishes_records_as_packets(nanosecond: bool) -> None:
    """``write_records`` gives the same file as ``write_batch`` of the same packets, at the
    writer's resolution, and publishes the packets with the records. Mutations guarded: the
    writer's resolution or snaplen not passed on, publish skipped or given other arguments."""
    block = records_of(build_block(SAMPLE))
    packets = block.packets()
    by_records, by_packets = io.BytesIO(), io.BytesIO()
    writer = PcapWriter(by_records, 64, LinkType.ETHERNET, nanosecond=nanosecond)
    published: list[tuple[PacketBatch, bytes]] = []
    writer.publish = lambda batch, body: published.append((batch, body))
    writer.write_records(block)
    PcapWriter(by_packets, 64, LinkType.ETHERNET, nanosecond=nanosecond).write_batch(packets)
    assert by_records.getvalue() == by_packets.getvalue()
    assert published == [(packets, by_packets.getvalue()[24:])]


class BlockSink(Collect):
    """A sink with ``write_records``: notes whether each batch came as a block or as
    Packets (a pcap writer encodes a block in one C call: a block turned into Packets on the
    way costs a Packet per frame for nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []

    def write_batch(self, batch: PacketBatch) -> None:
        self.kinds.append("packets")
        super().write_batch(batch)

    def write_records(self, block: RecordBlock) -> None:
        self.kinds.append("records")
        self.got.extend(block.packets())


class RecordSourceOf(RecordSource):
    """RecordSource with ``buffered`` as asked (a live source that is not buffered drops)."""

    def __init__(self, blocks: list[bytes], buffered: bool) -> None:
        super().__init__(blocks)
        self.buffered = buffered


async def test_blocks_reach_a_write_records_sink_as_blocks() -> None:
    """With nothing that needs Packets (no filter, no limit cutting, the source's snaplen),
    a sink with ``write_records`` gets every block as a block; with a filter, Packets.

    Mutations guarded: the pass-through test (``snaplen >`` for ``>=``, ``and limited``), the
    ``write_records`` lookup of the sink thread (lost, or of another name)."""
    sink = BlockSink()
    await run(Session(linktype=LinkType.ETHERNET, source=RecordSource(BLOCKS), sinks=[sink]))
    assert sink.got == EVERY and set(sink.kinds) == {"records"}
    filtered = BlockSink()
    await run(
        Session(
            linktype=LinkType.ETHERNET, source=RecordSource(BLOCKS), sinks=[filtered], matcher=Odd()
        )
    )
    assert set(filtered.kinds) == {"packets"} and filtered.got == [
        p for p in EVERY if p.data and p.data[0] % 2 == 1
    ]


@pytest.mark.parametrize("buffered", [False, True])
async def test_a_block_that_just_fits_stays_a_block(buffered: bool) -> None:
    """A block of exactly the packets left to a live source's limit, or of exactly the room
    a buffered source waits for, is queued whole, as a block.

    Mutations guarded: ``len(batch) < count`` in ``_head`` and ``len(batch) < room`` in the
    wait for room (the block is then turned into Packets)."""
    twenty = [build_block(FRAMES[:20]), build_block(FRAMES[20:40])]
    sink = BlockSink()
    options = {"bufsize": 20} if buffered else {"limit": 20}
    session = Session(
        linktype=LinkType.ETHERNET,
        source=RecordSourceOf(twenty, buffered),
        sinks=[sink],
        **options,  # type: ignore[arg-type]
    )
    await run(session)
    want = [p for block in twenty for p in parse_block_py(block)][: 40 if buffered else 20]
    assert sink.got == want and set(sink.kinds) == {"records"}
    assert (session.stats().packets, session.stats().dropped) == (len(want), 0)
