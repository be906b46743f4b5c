"""StatsSink: JSON lines with counters, rates, drop ratio and protocol breakdown."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from _helpers import ETH_ARP, MAC_A, arp, ether, icmp, icmp6, ipv4, ipv6, sll2, tcp, udp

from capsvc import Direction, LinkType, Packet, Session, Stats
from capsvc.sinks._base import SessionAware, Sink
from capsvc.sinks._stats import PROTOCOL_NAMES, ProtocolCounter, StatsSink, stats_record

TCP4 = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80, b"x" * 10, flags="PA"))
UDP4 = ipv4("10.0.0.1", "10.0.0.2", udp(1, 53, b"y" * 20))
ICMP4 = ipv4("10.0.0.1", "10.0.0.2", icmp())
TCP6 = ipv6("fd00::1", "fd00::2", tcp(1, 443), ext=((0, b"\x01\x00"),))
ICMP6 = ipv6("fd00::1", "fd00::2", icmp6())
GRE = ipv4("10.0.0.1", "10.0.0.2", b"\0" * 8, proto=47)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stream.getvalue().splitlines()]


def batch(*frames: bytes) -> list[Packet]:
    return [Packet(0, f, len(f), Direction.INBOUND, 0) for f in frames]


def test_protocol_counter_breakdown() -> None:
    counter = ProtocolCounter(LinkType.RAW)
    counter.add_batch(batch(TCP4, TCP4, UDP4, ICMP4, TCP6, ICMP6, GRE, b"", b"\x45\x00"))
    assert counter.breakdown() == {"tcp": 3, "udp": 1, "icmp": 1, "icmp6": 1, "other": 3}
    assert counter.packets == 9
    assert counter.bytes == sum(map(len, (TCP4, TCP4, UDP4, ICMP4, TCP6, ICMP6, GRE))) + 2


def test_protocol_counter_link_types() -> None:
    eth = ProtocolCounter(LinkType.ETHERNET)
    request = ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP)
    eth.add_batch(batch(ether(TCP4, vlans=(7,)), ether(ICMP6), request))
    assert eth.breakdown() == {"tcp": 1, "udp": 0, "icmp": 0, "icmp6": 1, "other": 1}
    cooked = ProtocolCounter(LinkType.LINUX_SLL2)
    cooked.add_batch(batch(sll2(UDP4), sll2(UDP4)[:10]))
    assert cooked.breakdown()["udp"] == 1 and cooked.breakdown()["other"] == 1


def test_stats_record_rates_and_ratio() -> None:
    counters = {
        "packets": 90,
        "bytes": 9000,
        "dropped": 10,
        "filtered": 0,
        "kernel_dropped": 0,
        "sink_errors": 0,
    }
    record = stats_record(
        now=1.0,
        elapsed=2.0,
        counters=counters,
        seen_packets=90,
        seen_bytes=9000,
        delta_packets=40,
        delta_bytes=4000,
        protocols=dict.fromkeys(PROTOCOL_NAMES, 0),
        final=False,
    )
    assert record["pps"] == 20.0
    assert record["bps"] == 16000.0
    assert record["drop_ratio"] == 0.1
    assert list(record)[:3] == ["time", "interval", "packets"]
    idle = stats_record(
        now=1.0,
        elapsed=0.0,
        counters=dict.fromkeys(counters, 0),
        seen_packets=0,
        seen_bytes=0,
        delta_packets=0,
        delta_bytes=0,
        protocols={},
        final=True,
    )
    assert idle["pps"] == 0.0 and idle["drop_ratio"] == 0.0


def test_unbound_sink_counts_itself_per_interval() -> None:
    clock = FakeClock()
    out = io.StringIO()
    sink = StatsSink(out, interval=1.0, clock=clock)
    assert isinstance(sink, Sink) and isinstance(sink, SessionAware)
    sink.write_batch(batch(TCP4, UDP4))
    sink.flush()
    assert out.getvalue() == ""  # the interval has not elapsed
    clock.now += 1.0
    sink.write_batch(batch(ICMP4))
    clock.now += 0.5
    sink.flush()  # only 0.5 s since the last line
    clock.now += 0.5
    sink.flush()
    sink.close()
    sink.close()
    first, second, final = lines(out)
    assert first["packets"] == 3 and first["seen_packets"] == 3
    assert first["bytes"] == len(TCP4) + len(UDP4) + len(ICMP4)
    assert first["pps"] == 3.0 and first["bps"] == first["bytes"] * 8.0
    assert first["protocols"] == {"tcp": 1, "udp": 1, "icmp": 1, "icmp6": 0, "other": 0}
    assert first["dropped"] == 0 and first["final"] is False
    assert second["pps"] == 0.0 and second["interval"] == 1.0
    assert final["final"] is True and final["packets"] == 3
    assert not out.closed


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        StatsSink(io.StringIO(), interval=0)


async def test_with_a_real_session_counters_drops_and_breakdown() -> None:
    clock = FakeClock()
    out = io.StringIO()
    sink = StatsSink(out, interval=1.0, clock=clock)
    text = io.StringIO()
    session = Session(
        text_output=text, sinks=[sink], bufsize=4, matcher=_NoGre(), linktype=LinkType.ETHERNET
    )
    async with session:
        for frame in (TCP4, TCP4, UDP4, ICMP6, GRE, TCP4, TCP4):
            session.offer(ether(frame))  # 7 offers: 1 filtered, 4 accepted, 2 dropped
        await asyncio.sleep(0.05)
        clock.now += 1.5
        for _ in range(100):  # the idle writer flushes every 0.25 s; allow a busy machine
            if out.getvalue():
                break
            await asyncio.sleep(0.05)
        assert len(lines(out)) == 1
    records = lines(out)
    first, final = records[0], records[-1]
    stats: Stats = session.stats()
    assert (stats.packets, stats.dropped, stats.filtered) == (4, 2, 1)
    assert first["packets"] == 4 and first["dropped"] == 2 and first["filtered"] == 1
    assert first["drop_ratio"] == pytest.approx(2 / 7, abs=1e-6)
    assert first["seen_packets"] == 4
    assert first["protocols"] == {"tcp": 2, "udp": 1, "icmp": 0, "icmp6": 1, "other": 0}
    assert first["pps"] == pytest.approx(4 / 1.5, abs=1e-3)
    assert first["bytes"] == stats.bytes
    assert final["final"] is True and final["packets"] == 4 and final["pps"] == 0.0
    assert len(text.getvalue().splitlines()) == 4


class _NoGre:
    def match(self, data: bytes) -> bool:
        return data[14 + 9] != 47
