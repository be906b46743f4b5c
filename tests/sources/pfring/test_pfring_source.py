"""PfRingSource feeding a Session, on the stand-in libpfring: both ways of waiting, the
configuration sequence, statistics, link types, errors and closing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest
from _pfring_fake import FRAMES, FakeRing, ts_of, write_pcap

from capsvc import Direction as PacketDirection
from capsvc import LinkType, Packet, PacketBatch, Session, Source, SourceStats
from capsvc.sources.pfring import ClusterType, Direction, Flag, PfRingError
from capsvc.sources.pfring._source import PfRingSource


class ListSink:
    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.batches = 0

    def write_batch(self, batch: PacketBatch) -> None:
        if batch:
            self.batches += 1
        self.packets.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("selectable", [True, False], ids=["selectable-fd", "poll-thread"])
async def test_source_feeds_a_session(fake: FakeRing, selectable: bool) -> None:
    if not selectable:
        fake.set("CAPSVC_FAKE_PFRING_NO_FD", "1")
    fake.set("CAPSVC_FAKE_PFRING_DROPS", "3")
    fake.set("CAPSVC_FAKE_PFRING_TIMESTAMP_NS", "1")
    source = PfRingSource("lo", snaplen=100, library=fake.library)
    assert isinstance(source, Source) and source.live and source.snaplen == 100
    sink = ListSink()
    async with Session(sinks=[sink], source=source) as session:
        await wait_for(lambda: len(sink.packets) == len(FRAMES))
        await asyncio.sleep(0.3)  # idle: the source must wait, not spin
        stats = session.stats()
    assert [p.data for p in sink.packets] == [f[:100] for f in FRAMES]
    assert [p.wire_len for p in sink.packets] == [len(f) for f in FRAMES]
    assert [p.ts_ns for p in sink.packets] == [ts_of(i) for i in range(len(FRAMES))]
    inbound, outbound = PacketDirection.INBOUND, PacketDirection.OUTBOUND
    assert [p.direction for p in sink.packets] == [inbound, outbound] * 5  # rx_direction @36
    assert {p.ifindex for p in sink.packets} == {socket.if_nametoindex("lo")}
    assert stats.packets == 10 and stats.kernel_dropped == 3 and stats.received == 10
    names = fake.names()
    assert names.count("pfring_recv") == 11  # ten packets and the empty read ending the drain
    if selectable:
        assert "pfring_poll" not in names
    else:
        assert 1 <= names.count("pfring_poll") <= 20  # 100 ms waits, not a busy loop
        waits = {c[1]["wait"] for c in fake.calls() if c[0] == "pfring_poll"}
        assert waits == {"100"}
    assert names[-1] == "pfring_close" and names.count("pfring_close") == 1
    assert {c[1]["wait"] for c in fake.calls() if c[0] == "pfring_recv"} == {"0"}


async def test_batches_are_capped_and_drained(fake: FakeRing) -> None:
    source = PfRingSource("fake0", batch_size=4, library=fake.library)
    batches = []
    async for batch in source:
        batches.append(batch)
        if sum(map(len, batches)) == len(FRAMES):
            break
    await source.aclose()
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [p.data for b in batches for p in b] == FRAMES


async def test_configuration_sequence(fake: FakeRing) -> None:
    source = PfRingSource(
        "fake0",
        snaplen=1500,
        flags=Flag.PROMISC | Flag.LONG_HEADER,
        filter="tcp",
        cluster=(9, ClusterType.PER_FLOW_5_TUPLE),
        direction=Direction.RECEIVE_ONLY,
        sampling_rate=2,
        library=fake.library,
    )
    await source.aclose()
    await source.aclose()
    calls = fake.calls()
    assert [c[0] for c in calls] == [
        "pfring_open",
        "pfring_set_application_name",
        "pfring_set_socket_mode",
        "pfring_set_direction",
        "pfring_set_cluster",
        "pfring_set_sampling_rate",
        "pfring_set_bpf_filter",
        "pfring_enable_ring",
        "pfring_stats",  # asked at once: does the module count?
        "pfring_stats",
        "pfring_close",
    ]
    assert calls[0][1] == {"device": "fake0", "caplen": "1500", "flags": "12"}
    assert calls[2][1] == {"mode": "2"}
    assert calls[3][1] == {"direction": "1"}
    assert calls[4][1] == {"cluster": "9", "type": "4"}
    assert calls[5][1] == {"rate": "2"} and calls[6][1] == {"filter": "tcp"}


async def test_defaults_leave_module_defaults_alone(fake: FakeRing) -> None:
    source = PfRingSource("fake0", library=fake.library)
    await source.aclose()
    names = fake.names()
    for untouched in (
        "pfring_set_direction",
        "pfring_set_cluster",
        "pfring_set_sampling_rate",
        "pfring_set_bpf_filter",
    ):
        assert untouched not in names
    assert fake.calls()[0][1]["flags"] == str(int(Flag.PROMISC))


async def test_kernel_sampling_is_not_sampled_again(fake: FakeRing) -> None:
    """The kernel module samples itself (mutation: sample in the ring for every module and
    only frames 0 and 9 arrive)."""
    source = PfRingSource("fake0", sampling_rate=3, library=fake.library)
    packets: list[Packet] = []

    async def collect() -> None:
        async for batch in source:
            packets.extend(batch)
            if len(packets) >= 4:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), 2)
    await source.aclose()
    assert [p.data for p in packets] == FRAMES[0::3]
    assert source.kernel_stats


async def test_unsupported_configuration_closes_the_ring(fake: FakeRing) -> None:
    with pytest.raises(PfRingError) as info:
        PfRingSource(
            f"pcap:{fake.pcap}", cluster=(1, ClusterType.ROUND_ROBIN), library=fake.library
        )
    assert info.value.code_name == "NOT_SUPPORTED" and info.value.operation == "pfring_set_cluster"
    assert fake.names()[-1] == "pfring_close"


async def test_stats_survive_close(fake: FakeRing) -> None:
    fake.set("CAPSVC_FAKE_PFRING_DROPS", "7")
    source = PfRingSource("fake0", library=fake.library)
    async for batch in source:
        assert len(batch) == len(FRAMES)
        break
    await source.aclose()
    assert source.stats() == SourceStats(received=10, kernel_dropped=7)
    assert [b async for b in source] == []


@pytest.mark.parametrize("selectable", [True, False])
async def test_aclose_ends_a_waiting_iteration(fake: FakeRing, selectable: bool) -> None:
    if not selectable:
        fake.set("CAPSVC_FAKE_PFRING_NO_FD", "1")
    fake.set("CAPSVC_FAKE_PFRING_PCAP", str(write_pcap(fake.pcap.with_name("e.pcap"), [])))
    source = PfRingSource("fake0", library=fake.library)
    batches: list[PacketBatch] = []

    async def consume() -> None:
        async for batch in source:
            batches.append(batch)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await source.aclose()
    await asyncio.wait_for(task, 2)
    assert batches == [] and time.monotonic() - started < 1
    assert fake.names()[-1] == "pfring_close"


def test_bad_arguments(fake: FakeRing) -> None:
    with pytest.raises(ValueError):
        PfRingSource("fake0", sampling_rate=0, library=fake.library)
    with pytest.raises(ValueError):
        PfRingSource("fake0", batch_size=0, library=fake.library)
    assert fake.names() == []


def test_interface_link_type(fake: FakeRing) -> None:
    source = PfRingSource("lo", library=fake.library)
    assert source.linktype == LinkType.ETHERNET
    assert asyncio.run(source.aclose()) is None
