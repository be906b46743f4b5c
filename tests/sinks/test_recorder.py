"""FlightRecorder and its record ring: both bounds with exact eviction counts, bounded memory,
dumps read back by tcpdump (also while packets keep coming), triggers with after and holdoff."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from _helpers import ether, ipv4, tcp, udp
from _netns import veth_pair

from capsvc import Direction, FilterSyntaxError, LinkType, OptionError, Packet, Session
from capsvc._files import Directory
from capsvc.sinks import DumpInfo, FlightRecorder, RecorderState
from capsvc.sinks._recbuf import RECORD, RecordRing
from capsvc.sources.capfile._source import read_capture

S = 10**9
MS = 10**6
T0 = 1_700_000_000 * S
RST = "tcp[tcpflags] & tcp-rst != 0"


def frame(seq: int, size: int = 40, *, flags: str = "PA") -> bytes:
    """An Ethernet TCP frame whose payload starts with its sequence number."""
    payload = seq.to_bytes(4, "big") + b"." * max(0, size - 4)
    return ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, payload, flags=flags)))


def seq_of(data: bytes) -> int:
    return int.from_bytes(data[54:58], "big")


def stream(count: int, *, gap_ns: int = 10 * MS, size: int = 40, start: int = 0) -> list[Packet]:
    """``count`` numbered packets ``gap_ns`` apart (inbound, ifindex 0); sizes vary with the
    number when ``size`` is 0."""
    return [
        Packet(
            T0 + (start + i) * gap_ns,
            f := frame(start + i, size or 4 + (start + i) * 37 % 900),
            len(f),
            Direction.INBOUND,
            0,
        )
        for i in range(count)
    ]


def state_of(recorder: FlightRecorder) -> RecorderState:
    """The recorder's state, read afresh (mypy keeps an attribute narrowed across calls)."""
    return recorder.state


def linktype_of(recorder: FlightRecorder) -> LinkType:
    """The recorder's link type, read afresh (as ``state_of``)."""
    return LinkType(recorder.linktype)


def fed(recorder: FlightRecorder, packets: list[Packet], batch: int) -> None:
    for i in range(0, len(packets), batch):
        recorder.write_batch(packets[i : i + batch])
        recorder.flush()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7, 100_000])
def test_byte_bound_holds_the_longest_suffix_that_fits(batch: int) -> None:
    """Each packet is charged its bytes + 24; the recorder holds exactly the newest packets
    whose charges fit in max_bytes, and counts every other one as evicted for size."""
    packets = stream(3000, size=0)
    max_bytes = 200_000
    charge = [len(p.data) + RECORD.size for p in packets]
    fits, total = 0, 0
    while total + charge[-1 - fits] <= max_bytes:
        total += charge[-1 - fits]
        fits += 1
    recorder = FlightRecorder(seconds=0, max_bytes=max_bytes, linktype=LinkType.ETHERNET)
    fed(recorder, packets, batch)
    st = recorder.stats()
    assert (st.packets, st.memory, st.appended) == (fits, total, 3000)
    assert (st.evicted, st.evicted_size, st.evicted_age) == (3000 - fits, 3000 - fits, 0)
    assert st.bytes == sum(len(p.data) for p in packets[-fits:])
    assert (st.first_ns, st.last_ns) == (packets[-fits].ts_ns, packets[-1].ts_ns)
    held = [p for b in RecordRing.read(recorder._ring.view()) for p in b]
    assert held == packets[-fits:]


@pytest.mark.parametrize("batch", [1, 64, 100_000])
def test_time_bound_holds_the_last_seconds_of_packet_time(batch: int) -> None:
    """60 s held of 100 s at 100 packets a second: the packets no older than 60 s before the
    newest, each older one evicted for age."""
    packets = stream(10_000)  # 10 ms apart: 0 .. 99.99 s
    recorder = FlightRecorder(seconds=60, max_bytes=1 << 30, linktype=LinkType.ETHERNET)
    fed(recorder, packets, batch)
    floor = packets[-1].ts_ns - 60 * S
    expected = [p for p in packets if p.ts_ns >= floor]
    st = recorder.stats()
    assert st.packets == len(expected) == 6001
    assert (st.evicted_age, st.evicted_size) == (10_000 - 6001, 0)
    assert st.first_ns == expected[0].ts_ns


def test_the_tighter_bound_wins_and_counts_add_up() -> None:
    packets = stream(10_000, size=400)
    charge = len(packets[0].data) + RECORD.size
    recorder = FlightRecorder(seconds=30, max_bytes=charge * 2500, linktype=LinkType.ETHERNET)
    fed(recorder, packets[:5000], 500)  # 50 s of traffic: the 2500-packet byte bound wins
    st = recorder.stats()
    assert st.packets == 2500 and st.evicted_size == 2500 and st.evicted_age == 0
    slow = [p._replace(ts_ns=T0 + 10**12 + i * S) for i, p in enumerate(packets[5000:5100])]
    fed(recorder, slow, 10)  # then one a second: 30 s hold 31 packets
    st = recorder.stats()
    assert st.packets == 31 and st.appended == 5100
    assert st.evicted == st.evicted_age + st.evicted_size == 5100 - 31


def test_memory_stays_bounded_under_ten_times_overload() -> None:
    """Ten times what fits, in one batch and in many: the memory Python allocates never
    exceeds max_bytes plus the two buffers the module docstring allows for. Mutation: evicting
    for size once per batch instead of per packet (a 43 MiB batch sits whole) fails it."""
    max_bytes = 4 << 20
    packets = stream(30_000, size=1400)  # about 43 MiB: ten times the bound
    recorder = FlightRecorder(seconds=0, max_bytes=max_bytes, linktype=LinkType.ETHERNET)
    chunk = recorder._ring.chunk_size
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        recorder.write_batch(packets)
        for i in range(0, len(packets), 1000):
            recorder.write_batch(packets[i : i + 1000])
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert recorder.stats().memory <= max_bytes
    assert peak <= max_bytes + 2 * chunk + 65536, (peak, max_bytes, chunk)


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(OptionError):
        FlightRecorder(max_bytes=24)
    with pytest.raises(OptionError):
        FlightRecorder(trigger=RST)  # no directory to write to
    with pytest.raises(OptionError):
        FlightRecorder(dump_on_close=True)
    with pytest.raises(OptionError):
        FlightRecorder(trigger="   ", directory=tmp_path)  # would match everything
    with pytest.raises(FilterSyntaxError):
        FlightRecorder(trigger="tcp[tcpflags] &", directory=tmp_path)
    with pytest.raises(OptionError):
        FlightRecorder().dump_file()


# -- dumps ------------------------------------------------------------------------------------


def tcpdump_read(path: Path) -> list[tuple[int, bytes]]:
    """(time in ns, frame) of every packet tcpdump reads in a file."""
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump")
    out = subprocess.run(
        ["tcpdump", "-r", str(path), "-nn", "-tt", "--time-stamp-precision=nano", "-xx"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packets: list[tuple[int, list[str]]] = []
    for line in out.splitlines():
        if line.startswith("\t0x"):
            packets[-1][1].extend(line.split(":", 1)[1].split())
        else:
            secs, nanos = line.split()[0].split(".")
            packets.append((int(secs) * S + int(nanos), []))
    return [(ts, bytes.fromhex("".join(words))) for ts, words in packets]


@pytest.mark.parametrize("pcapng", [False, True])
def test_dump_equals_the_last_packets_offered(tmp_path: Path, pcapng: bool) -> None:
    """What tcpdump reads in a dump is the packets last offered, times to the nanosecond."""
    packets = stream(2000, size=0)
    recorder = FlightRecorder(seconds=5, max_bytes=1 << 24, linktype=LinkType.ETHERNET)
    fed(recorder, packets, 128)
    path = tmp_path / "dump.cap"
    info = recorder.dump(path, pcapng=pcapng)
    expected = [p for p in packets if p.ts_ns >= packets[-1].ts_ns - 5 * S]
    assert info == DumpInfo(
        str(path),
        len(expected),
        sum(len(p.data) for p in expected),
        expected[0].ts_ns,
        expected[-1].ts_ns,
    )
    assert tcpdump_read(path) == [(p.ts_ns, p.data) for p in expected]
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert recorder.stats().packets == len(expected)  # a dump takes nothing away


def test_dump_to_a_stream_and_an_empty_dump(tmp_path: Path) -> None:
    recorder = FlightRecorder(linktype=LinkType.ETHERNET)
    out = io.BytesIO()
    assert recorder.dump(out) == DumpInfo("", 0, 0, None, None)
    assert len(out.getvalue()) == 24  # a valid empty pcap file
    path = tmp_path / "empty.pcap"
    path.write_bytes(out.getvalue())
    assert tcpdump_read(path) == []
    recorder.write_batch(stream(3))
    out = io.BytesIO()
    assert recorder.dump(out).packets == 3 and not out.closed
    with read_capture(io.BytesIO(out.getvalue())) as capture:
        assert [p.data for b in capture for p in b] == [p.data for p in stream(3)]


def test_dump_while_the_writer_appends() -> None:
    """Dumps taken from another thread while a writer appends (and evicts) without pause:
    each one is a run of consecutive packets, readable, the newest it saw last."""
    recorder = FlightRecorder(seconds=2, max_bytes=1 << 20, linktype=LinkType.ETHERNET)
    recorder._ring.chunk_size = 16 * 1024  # many buffers, emptied and dropped all the time
    done = threading.Event()
    total = 40_000
    packets = stream(total, gap_ns=MS, size=200)

    def write() -> None:
        for i in range(0, total, 50):
            recorder.write_batch(packets[i : i + 50])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    dumps = 0
    try:
        while not done.is_set() or dumps < 3:
            out = io.BytesIO()
            info = recorder.dump(out)
            with read_capture(io.BytesIO(out.getvalue())) as capture:
                seqs = [seq_of(p.data) for b in capture for p in b]
            assert len(seqs) == info.packets
            if seqs:
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            dumps += 1
    finally:
        writer.join()
    assert dumps >= 3 and recorder.stats().appended == total


def test_a_view_survives_appends_and_evictions() -> None:
    """What a view saw stays readable while the ring appends past it and evicts everything
    it held many times over. Mutation: reusing an emptied buffer while a view is open (as the
    spare) overwrites the records the view still reads; this fails."""
    ring = RecordRing(64 * 1024, 0, chunk_size=8192)
    first = stream(300, size=200)
    ring.append(first)
    view = ring.view()
    seen = [p for b in RecordRing.read(view) for p in b]
    for i in range(20):
        ring.append(stream(300, size=200, start=1000 * (i + 1)))
    assert ring.evicted > 20 * 300
    assert [p for b in RecordRing.read(view) for p in b] == seen == first[-len(seen) :]
    ring.release(view)
    ring.append(stream(300, size=200, start=99_000))  # buffers are reused again
    assert ring._spare is not None or len(ring._chunks) > 1


def test_dump_file_names_and_collisions(tmp_path: Path) -> None:
    dumped: list[DumpInfo] = []
    recorder = FlightRecorder(
        directory=tmp_path / "out", name="ring-%Y%m%d-%H%M%S.pcap", on_dump=dumped.append
    )
    recorder.write_batch(stream(5))
    when = time.mktime((2025, 3, 4, 5, 6, 7, 0, 0, -1))
    first = recorder.dump_file(when=when)
    second = recorder.dump_file(when=when)
    assert Path(first.name).name == "ring-20250304-050607.pcap"
    assert Path(second.name).name == "ring-20250304-050607-1.pcap"
    assert dumped == [first, second] and recorder.stats().dumps == 2
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700


# -- triggers ---------------------------------------------------------------------------------


def storm_stream() -> list[Packet]:
    """200 s of packets every 100 ms; resets every 100 ms from 100 s to 110 s (a storm), and
    one more at 150 s."""
    packets = []
    for i in range(2000):
        t = i * 100 * MS
        reset = 1000 <= i < 1100 or i == 1500
        f = frame(i, flags="R" if reset else "PA")
        packets.append(Packet(T0 + t, f, len(f), Direction.INBOUND, 0))
    return packets


@pytest.mark.parametrize("batch", [1, 37, 5000])
def test_a_storm_makes_one_file_and_a_later_reset_another(tmp_path: Path, batch: int) -> None:
    """Trigger on resets with 10 s before and 5 s after, holdoff 10 s (the default, = seconds):
    the storm from 100 s gives one file holding 90 .. 105 s; the reset at 150 s a second one
    holding 140 .. 155 s. Each is named with its trigger's time and read back by tcpdump.
    Mutation: not holding back to the trigger's time during the window (the usual bound, 10 s
    before the newest packet, would start the dump at 95 s) fails it."""
    packets = storm_stream()
    recorder = FlightRecorder(
        seconds=10,
        trigger=RST,
        after=5,
        directory=tmp_path,
        name="storm-%H%M%S.pcap",
        linktype=LinkType.ETHERNET,
    )
    fed(recorder, packets, batch)
    files = sorted(tmp_path.iterdir())
    names = [time.strftime("storm-%H%M%S.pcap", time.localtime(T0 / S + t)) for t in (100, 150)]
    assert [f.name for f in files] == sorted(names)
    for name, trigger in zip(names, (100, 150), strict=True):
        times = [ts for ts, _ in tcpdump_read(tmp_path / name)]
        want = [p.ts_ns for p in packets if (trigger - 10) * S <= p.ts_ns - T0 <= (trigger + 5) * S]
        assert times == want
    st = recorder.stats()
    assert (st.triggers, st.dumps, st.dump_errors) == (2, 2, 0)
    assert st.state == "recording" and st.packets == 101  # back to the last 10 s


def test_holdoff_zero_makes_a_file_per_window(tmp_path: Path) -> None:
    recorder = FlightRecorder(
        seconds=1, trigger=RST, after=0.5, holdoff=0, directory=tmp_path, name="s-%s.pcap",
        linktype=LinkType.ETHERNET,
    )  # fmt: skip
    fed(recorder, storm_stream(), 100)
    # The storm lasts 10 s, a window 0.5 s: triggers at 100.0, 100.6, ... 109.6 (17), and the
    # lone reset at 150 s; names within one second get -1, -2 ...
    assert recorder.stats().dumps == 18 == len(list(tmp_path.iterdir()))


def test_after_window_ends_by_the_clock_when_traffic_stops(tmp_path: Path) -> None:
    """No packet comes after the trigger: the window ends at the first flush once as much
    time has passed since the last packet arrived as the window still had to run. Mutation:
    ending the window by the clock alone (5 s of clock after the last arrival, or the wall
    clock against old packet times) fails one of its checks."""
    clock = FakeClock()
    recorder = FlightRecorder(
        seconds=10, trigger=RST, after=5, directory=tmp_path, linktype=LinkType.ETHERNET,
        clock=clock,
    )  # fmt: skip
    packets = stream(20, gap_ns=100 * MS)
    packets.append(packets[-1]._replace(ts_ns=packets[-1].ts_ns + MS, data=frame(99, flags="R")))
    packets.append(packets[-1]._replace(ts_ns=packets[-1].ts_ns + S, data=frame(100)))
    recorder.write_batch(packets)  # the trigger, then 1 s of the window
    recorder.flush()
    assert recorder.state is RecorderState.AFTER
    clock.now += 3.9
    recorder.flush()
    assert recorder.state is RecorderState.AFTER and not list(tmp_path.iterdir())
    clock.now += 0.2
    recorder.flush()
    assert state_of(recorder) is RecorderState.HOLDOFF
    (path,) = tmp_path.iterdir()
    assert [seq_of(d) for _, d in tcpdump_read(path)] == [*range(20), 99, 100]


def test_close_ends_an_open_window_and_dumps_on_close(tmp_path: Path) -> None:
    recorder = FlightRecorder(
        trigger=RST, directory=tmp_path, name="x-%s.pcap", dump_on_close=True,
        linktype=LinkType.ETHERNET,
    )  # fmt: skip
    recorder.write_batch([*stream(3), stream(1, start=3)[0]._replace(data=frame(3, flags="R"))])
    recorder.close()
    recorder.close()
    assert recorder.stats().dumps == 2 and len(list(tmp_path.iterdir())) == 2
    recorder.write_batch(stream(5, start=10))  # ignored after close
    assert recorder.stats().appended == 4
    with pytest.raises(OptionError):
        recorder.dump_file()
    assert recorder.dump(io.BytesIO()).packets == 4  # what is held stays readable


def test_a_failing_trigger_dump_is_counted_and_capture_goes_on(tmp_path: Path) -> None:
    """The trigger dump cannot be created (its name runs through a file): dump_errors counts
    it, nothing is raised, and the recorder keeps recording."""
    (tmp_path / "blocked").write_text("a file where a directory would be")
    recorder = FlightRecorder(
        seconds=10, trigger=RST, after=1, holdoff=0, directory=tmp_path,
        name="blocked/%s.pcap", linktype=LinkType.ETHERNET,
    )  # fmt: skip
    packets = storm_stream()[990:1030]
    fed(recorder, packets, 5)
    st = recorder.stats()
    assert st.dump_errors == 2 and st.dumps == 0 and st.appended == 40
    assert st.state == "after"  # the second trigger's after-window is open


def test_a_trigger_compiles_for_the_sessions_link_type(tmp_path: Path) -> None:
    """A recorder without a link type takes the Session's, and its trigger with it."""
    recorder = FlightRecorder(trigger=RST, after=0, directory=tmp_path)
    assert recorder.linktype == LinkType.RAW

    async def main() -> None:
        async with Session(sinks=[recorder], linktype=LinkType.ETHERNET) as session:
            session.offer(frame(1), ts_ns=T0)
            session.offer(frame(2, flags="R"), ts_ns=T0 + MS)

    asyncio.run(main())
    assert linktype_of(recorder) == LinkType.ETHERNET
    (path,) = tmp_path.iterdir()
    assert [seq_of(d) for _, d in tcpdump_read(path)] == [1, 2]


# -- live -------------------------------------------------------------------------------------


@pytest.mark.netns
async def test_trigger_on_a_live_capture(tmp_path: Path) -> None:
    """A Session fed by AF_PACKET on a veth: UDP chatter, one TCP reset, more chatter. One file
    appears, named with the reset's time, holding the chatter before it, the reset and the
    after-window; tcpdump reads it."""
    from capsvc.sources.afpacket._source import AfPacketSource

    with veth_pair() as pair:

        def chatter(first: int, count: int) -> list[bytes]:
            return [
                ether(
                    ipv4(pair.peer_ip, "10.200.0.1", udp(40000, 7000, b"rec" + i.to_bytes(4))),
                    src=pair.peer_mac,
                    dst=pair.host_mac,
                )
                for i in range(first, first + count)
            ]

        reset = ether(
            ipv4(pair.peer_ip, "10.200.0.1", tcp(40001, 80, flags="R")),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        recorder = FlightRecorder(
            seconds=30, trigger=RST, after=3, directory=tmp_path, name="live-%H%M%S.pcap"
        )
        source = AfPacketSource(pair.host, ring_size=1 << 21, block_size=1 << 16)
        session = Session(source=source, sinks=[recorder], matcher="udp port 7000 or tcp")
        await session.start()
        try:
            await asyncio.to_thread(pair.send_from_peer, chatter(0, 20), gap=0.01)
            await asyncio.to_thread(pair.send_from_peer, [reset])
            await asyncio.to_thread(pair.send_from_peer, chatter(20, 10), gap=0.01)
            deadline = time.monotonic() + 10
            while recorder.stats().dumps == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await session.stop()
        (path,) = tmp_path.iterdir()
        got = tcpdump_read(path)
        numbered = [int.from_bytes(d[45:49]) for _, d in got if d[23] == 17]
        assert numbered == list(range(30))
        resets = [ts for ts, d in got if d[23] == 6]
        assert len(resets) == 1
        assert path.name == time.strftime("live-%H%M%S.pcap", time.localtime(resets[0] // S))
        assert recorder.stats().triggers == 1 and session.stats().dropped == 0


def test_directory_given_as_an_open_directory(tmp_path: Path) -> None:
    with Directory(tmp_path) as directory:
        recorder = FlightRecorder(directory=directory)
    recorder.write_batch(stream(2))
    info = recorder.dump_file(when=0)
    assert Path(info.name).parent == tmp_path and info.packets == 2
    recorder.close()
