"""SeriesSink and its ring: packets and bytes per second, the ring's bounds, and tshark's
``-z io,stat,N`` table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _helpers import ETH_ARP, MAC_A, arp, ether, icmp, ipv4, ipv6, tcp, udp
from _tsharkrun import (
    T0,
    need_tshark,
    packet,
    read_file,
    tshark_on_files,
    tshark_tables,
    write_pcap,
)

from capsvc import LinkType, OptionError, Packet, Session
from capsvc.sinks import SeriesSink, format_io_stat
from capsvc.sinks._ring import SecondRing

S = 10**9
TCP = ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1, 80, b"t" * 100, flags="PA")))
UDP = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 53, b"u" * 20)))
ICMP = ether(ipv4("10.0.0.1", "10.0.0.2", icmp()))
UDP6 = ether(ipv6("fd00::1", "fd00::2", udp(1, 53)))
ARP = ether(arp(1, MAC_A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2"), ethertype=ETH_ARP)


def feed(sink: SeriesSink, timed: list[tuple[float, bytes]], batch: int = 3) -> None:
    packets = [packet(T0 + int(t * S), f) for t, f in timed]
    for i in range(0, len(packets), batch):
        sink.write_batch(packets[i : i + batch])


def test_counts_per_second_and_protocol() -> None:
    sink = SeriesSink(linktype=LinkType.ETHERNET)
    feed(sink, [(0, TCP), (0.5, UDP), (0.99, ICMP), (2.0, UDP6), (2.3, ARP), (2.999, TCP)])
    snap = sink.snapshot()
    assert (snap.origin_ns, snap.first, snap.start_ns) == (T0, 0, T0)
    assert snap.packets == [3, 0, 3]
    assert snap.bytes == [len(TCP) + len(UDP) + len(ICMP), 0, len(UDP6) + len(ARP) + len(TCP)]
    assert snap.protocols == {
        "tcp": [1, 0, 1],
        "udp": [1, 0, 1],
        "icmp": [1, 0, 0],
        "icmp6": [0, 0, 0],
        "other": [0, 0, 1],
    }
    assert snap.protocol_bytes["udp"] == [len(UDP), 0, len(UDP6)]
    assert (snap.first_ns, snap.last_ns, snap.late) == (T0, T0 + int(2.999 * S), 0)


def test_the_ring_turns_and_late_packets_are_counted() -> None:
    """Ten seconds held: after 30 s of traffic the series starts at second 20; a packet older
    than that, or before the first packet, has no second and counts as late."""
    sink = SeriesSink(10, linktype=LinkType.ETHERNET)
    feed(sink, [(t, UDP) for t in range(30)] + [(5, UDP), (29.5, UDP), (-1, UDP)])
    snap = sink.snapshot()
    assert snap.first == 20 and snap.packets == [1] * 9 + [2]
    assert snap.start_ns == T0 + 20 * S and snap.late == 2
    assert sink.snapshot(last=3).packets == [1, 1, 2] and sink.snapshot(last=3).first == 27
    # A jump far ahead clears the whole ring once, not once per second skipped.
    feed(sink, [(10**6, UDP)])
    assert sink.snapshot().packets == [0] * 9 + [1]
    with pytest.raises(OptionError):
        sink.snapshot(last=-1)
    with pytest.raises(OptionError):
        SeriesSink(0)


def test_ring_rows_and_bounds() -> None:
    ring = SecondRing(3, 2)
    assert ring.rows() == (0, [])
    assert ring.bucket(T0 + 5) == 0 and ring.bucket(T0 + 4 * S) == 3
    base = ring.base(3)
    ring.values[base] = 7
    assert ring.base(0) == -1 and ring.base(-1) == -1 and ring.base(1) == 2
    assert ring.rows() == (1, [[0, 0], [0, 0], [7, 0]])
    with pytest.raises(OptionError):
        SecondRing(1, 0)


def test_snapshot_json() -> None:
    sink = SeriesSink(linktype=LinkType.ETHERNET)
    assert sink.snapshot().to_dict()["start"] is None
    feed(sink, [(0, TCP), (1.5, UDP)])
    data = json.loads(json.dumps(sink.snapshot().to_dict()))
    assert data["start"] == T0 / S and data["interval"] == 1.0
    assert data["packets"] == [1, 1] and data["protocols"]["udp"] == [0, 1]


async def test_a_session_binds_its_link_type() -> None:
    sink = SeriesSink()
    async with Session(sinks=[sink], linktype=LinkType.ETHERNET) as session:
        session.offer(TCP, ts_ns=T0)
        session.offer(UDP, ts_ns=T0 + 2 * S)
    snap = sink.snapshot()
    assert snap.packets == [1, 0, 1] and snap.protocols["tcp"] == [1, 0, 0]


# -- tshark's io,stat -------------------------------------------------------------------------


def timed_file(path: Path, timed: list[tuple[float, int, int]]) -> list[Packet]:
    """(second, count, payload size) groups of UDP packets, written to ``path``."""
    packets = []
    for t, count, size in timed:
        frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000, 2000, b"x" * size)))
        packets += [packet(T0 + int(t * S) + i, frame) for i in range(count)]
    packets.sort(key=lambda p: p.ts_ns)
    write_pcap(path, packets, LinkType.ETHERNET)
    return packets


def our_io_stat(batches: list[list[Packet]], linktype: LinkType) -> str:
    sink = SeriesSink(3600, linktype=linktype)
    for batch in batches:
        sink.write_batch(batch)
    return format_io_stat(sink.snapshot())


SHAPES = {
    "short": [(0, 1, 10), (0.5, 2, 10), (3.2, 1, 10)],
    "two digits": [(0, 1, 10), (4.4, 30, 600), (12.3, 1, 10)],
    "three digits": [(0, 5, 10), (77.7, 1, 10), (123.4, 1, 10)],
    "wide bytes": [(0, 8000, 1400), (2.5, 1, 10)],
    "under a second": [(0, 2, 10), (0.3, 1, 10)],
    "one wide second": [(0, 1200, 1400), (0.2, 1, 10)],
    "just over a second": [(0, 1, 10), (1.4, 1, 10)],
}


@pytest.mark.parametrize("shape", SHAPES)
def test_io_stat_equals_tsharks(tmp_path: Path, shape: str) -> None:
    """Character for character tshark's table, for durations of one to three digits, wider
    columns, and captures shorter than the interval."""
    need_tshark()
    path = tmp_path / "timed.pcap"
    packets = timed_file(path, SHAPES[shape])
    ours = our_io_stat([packets], LinkType.ETHERNET)
    assert ours == tshark_tables(path, "io,stat,1")
    assert sum(frames for _, frames, _ in rows_of(ours)) == len(packets)


INTERVAL_SHAPES = {
    **SHAPES,
    "four digits": [(0, 5, 10), (777.7, 1, 10), (1234.5, 1, 10)],
    "a half to round": [(0, 1, 10), (55.55, 1, 10)],
    "seconds off the second": [(0.7, 1200, 1400), (1.5, 12000, 10)],
}


@pytest.mark.parametrize("interval", [0, 2, 5, 60])
@pytest.mark.parametrize("shape", INTERVAL_SHAPES)
def test_io_stat_of_n_seconds_equals_tsharks(tmp_path: Path, shape: str, interval: int) -> None:
    """``-z io,stat,N``: rows of N seconds, or one row when N is 0 or covers the capture
    (milliseconds under ten seconds, tenths from there, with tshark's filler column and its
    rounding of an exact half down), character for character."""
    need_tshark()
    path = tmp_path / "timed.pcap"
    packets = timed_file(path, INTERVAL_SHAPES[shape])
    sink = SeriesSink(3600, linktype=LinkType.ETHERNET)
    sink.write_batch(packets)
    ours = format_io_stat(sink.snapshot(), interval)
    assert ours == tshark_tables(path, f"io,stat,{interval}")
    assert sum(frames for _, frames, _ in rows_of(ours)) == len(packets)


def test_io_stat_sums_seconds_into_intervals() -> None:
    sink = SeriesSink(60, linktype=LinkType.ETHERNET)
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"")))
    sink.write_batch([packet(T0 + int(t * S), frame) for t in (0, 0.5, 2.9, 3.0, 7.2, 7.9)])
    rows = rows_of(format_io_stat(sink.snapshot(), 3))
    assert rows == [("0", 3, 126), ("3", 1, 42), ("6", 2, 84)]
    with pytest.raises(OptionError):
        format_io_stat(sink.snapshot(), -1)


ROW = re.compile(r"^\| *([\d.]+) <> *([\d.]+|Dur) *\| *(\d+) \| *(\d+) \|( *\|)?$")


def rows_of(table: str) -> list[tuple[str, int, int]]:
    return [(m[1], int(m[3]), int(m[4])) for m in map(ROW.match, table.splitlines()) if m]


def test_whole_second_durations_keep_their_last_packets(tmp_path: Path) -> None:
    """tshark 4.0 leaves the packets at exactly a whole number of seconds after the first out
    of every row (and misprints the duration); here they are in the last row."""
    path = tmp_path / "whole.pcap"
    timed_file(path, [(0, 1, 10), (10.0, 2, 10)])
    _, batches = read_file(path)
    rows = rows_of(our_io_stat(batches, LinkType.ETHERNET))
    assert len(rows) == 11 and rows[-1] == ("10", 2, 104) and rows[0] == ("0", 1, 52)
    assert "| Duration: 10.000000 secs" in our_io_stat(batches, LinkType.ETHERNET)


@pytest.mark.slow
def test_io_stat_agrees_with_tshark_on_the_corpus(corpus: Path) -> None:
    """On every corpus file tshark tabulates whose times run forward within the ring's hour:
    the same rows, frames and bytes, adding up to every packet; and mostly the same text.
    Where tshark 4.0 prints no row (a zero duration) ours is one row of every packet; where it
    misprints (microseconds space-padded, a header wider than its rows) only the rows compare."""
    need_tshark()
    compared = exact = zero = 0
    kept = {}
    for path in sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng")):
        linktype, batches = read_file(path)
        sink = SeriesSink(3600, linktype=linktype)
        for batch in batches:
            sink.write_batch(batch)
        snap = sink.snapshot()
        if not (snap.late or snap.first):  # times going backwards, or longer than the ring
            kept[path] = batches, snap
    tables = tshark_on_files(kept, "io,stat,1")
    for path, (batches, snap) in kept.items():
        theirs = tables[path]
        if "IO Statistics" not in theirs:
            continue  # tshark refused the file
        ours = format_io_stat(snap)
        mine, tshark_rows = rows_of(ours), rows_of(theirs)
        count = sum(len(b) for b in batches)
        assert sum(f for _, f, _ in mine) == count, path.name
        compared += 1
        if not tshark_rows and count:
            assert len(mine) == 1, path.name
            zero += 1
            continue
        assert [r[1:] for r in mine] == [r[1:] for r in tshark_rows], path.name
        exact += ours == theirs
    assert compared > 150 and zero > 50 and exact > 50
