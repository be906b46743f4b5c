"""Counting and sinks under stress: the stats sink in the service, a full disk, a stuck sink, a
sink raising SystemExit, and the kernel's count with two workers.

Each test is one observation (13-15 and 17 of the threat model).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import threading
import time
from pathlib import Path

import pytest
from _helpers import descriptors_of, ether, ipv4, tcp
from _hostile import udp_frames, write_pcap
from _netns import VethPair
from _served import session_toml, start, wait_until, write_config
from _service import Starter, frames

from capsvc import Packet, PacketBatch, Session

# 13 -------------------------------------------------------------------------------------------


async def test_service_stats_sink_counts_protocols_and_reads_the_session(serve: Starter) -> None:
    """The service's stats sink is bound to its Session through the file wrapper: it counts
    7 UDP packets as udp and carries the Session's counters (its wrapper hid it: nothing was
    bound, and the counters were its own)."""
    srv = await serve()
    tcps = [ether(ipv4("10.9.0.1", "10.9.0.2", tcp(1, 2, b"x"))) for _ in range(3)]
    write_pcap(srv.output_dir / "in.pcap", [*udp_frames(7), *tcps])
    spec = {
        "name": "st",
        "source": {"type": "file", "path": "in.pcap"},
        "filter": "udp",
        "sinks": [{"type": "stats", "path": "st.stats", "interval": 0.1}],
    }
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    while srv.service.get("st").running:
        await asyncio.sleep(0.05)
    last = json.loads((srv.output_dir / "st.stats").read_text().splitlines()[-1])
    assert last["final"] is True
    assert last["protocols"]["udp"] == 7 and last["protocols"]["other"] == 0
    assert (last["packets"], last["filtered"]) == (7, 3)  # the Session's, not the sink's


# 14 -------------------------------------------------------------------------------------------


async def test_full_disk_keeps_whole_files_names_the_failure_and_closes(
    serve: Starter, small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Writing onto a full disk: the file ends at its last whole batch (tcpdump reads it to its
    end without complaint), the log line names the session and the file, and once the session
    is deleted no descriptor is left open on it."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_pcap(inputs / "big.pcap", udp_frames(4000, size=200))
    srv = await serve(service={"output_dir": str(small_disk), "input_dir": "in"})
    spec = {
        "name": "full",
        "source": {"type": "file", "path": "big.pcap", "realtime": True},
        "sinks": [{"type": "pcap", "path": "full.pcap"}],
    }
    caplog.set_level(logging.ERROR, logger="capsvc")
    assert (await srv.post("/v1/sessions", spec))[0] == 201
    path = small_disk / "full.pcap"

    async def failed() -> bool:
        return bool(srv.service.get("full").stats().sink_errors)

    deadline = time.monotonic() + 15
    while not await failed():
        assert time.monotonic() < deadline, "the disk never filled"
        await asyncio.sleep(0.05)
    status, body = await srv.delete("/v1/sessions/full")
    assert status == 200 and body["stats"]["sink_errors"] == 1
    assert descriptors_of(path) == []
    line = next(r.getMessage() for r in caplog.records if "failed" in r.getMessage())
    assert "session full" in line and str(path) in line, line
    read = subprocess.run(["tcpdump", "-nr", str(path)], capture_output=True, text=True)
    assert read.returncode == 0 and "truncated" not in read.stderr, read.stderr
    assert read.stdout.count("\n") > 10
    assert path.stat().st_size < 64 * 1024


# 15 -------------------------------------------------------------------------------------------


class StuckSink:
    """A sink whose write never returns until released (a hung disk, a stalled pipe)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = False

    def write_batch(self, batch: PacketBatch) -> None:
        self.release.wait(30)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return "StuckSink('/dev/stuck')"


class ListSink:
    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def write_batch(self, batch: PacketBatch) -> None:
        self.packets.extend(batch)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class ExitingSink(ListSink):
    def write_batch(self, batch: PacketBatch) -> None:
        raise SystemExit(3)


async def test_stop_with_a_stuck_sink_returns_within_its_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``stop(timeout=...)`` gives up on a sink that does not return: it is counted as failed,
    named, and stop returns with the stats (it never returned)."""
    stuck = StuckSink()
    session = Session(sinks=[stuck], name="stuck")
    await session.start()
    for i in range(10):
        session.offer(b"x" * 20, ts_ns=i)
    await asyncio.sleep(0.1)  # the writer is inside the stuck write now
    started = time.monotonic()
    try:
        stats = await session.stop(timeout=0.5)
    finally:
        stuck.release.set()
    assert time.monotonic() - started < 1.5
    assert stats.sink_errors == 1 and stats.packets == 10
    assert session.abandoned == ["StuckSink('/dev/stuck')"]
    assert any("stuck" in r.getMessage() and "abandoned" in r.getMessage() for r in caplog.records)


async def test_a_sink_raising_system_exit_is_isolated() -> None:
    """A sink raising SystemExit (any BaseException) is one failed sink: the other gets
    everything, sink_errors is 1, and later offers are counted (it used to kill the writer)."""
    good, bad = ListSink(), ExitingSink()
    session = Session(sinks=[bad, good])
    await session.start()
    for i in range(5):
        session.offer(b"a" * 20, ts_ns=i)
    await asyncio.sleep(0.3)
    for i in range(5, 10):
        session.offer(b"b" * 20, ts_ns=i)
    await session.stop()
    stats = session.stats()
    assert stats.sink_errors == 1
    assert stats.packets == 10 == len(good.packets) == stats.written


# 17 -------------------------------------------------------------------------------------------


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
def test_kernel_count_adds_up_at_stop(
    tmp_path: Path, veth: VethPair, servers: list[subprocess.Popen[str]], workers: int
) -> None:
    """Stopped while packets arrive, ``received`` (the kernel's count) equals packets +
    dropped + filtered + kernel_dropped, in one process or two workers (up to 2,254 packets
    were missing: the ring's last block was unmapped unread)."""
    write_config(
        tmp_path / "capsvc.toml",
        session_toml("k", veth.host, f'workers = {workers}\nfilter = "udp"\n'),
    )
    srv = start(tmp_path, servers)
    sender = threading.Thread(
        target=veth.send_from_peer,
        args=(frames(veth, 4000, size=200, flows=16),),
        kwargs={"gap": 0.0001},
    )
    sender.start()
    try:
        wait_until(lambda: srv.call("GET", "/v1/sessions/k/stats")[1]["stats"]["packets"] > 500)
        final = srv.stop()[0]["stats"]
    finally:
        sender.join()
    counted = final["packets"] + final["dropped"] + final["filtered"] + final["kernel_dropped"]
    assert final["received"] == counted, final
    assert final["packets"] == final["written"]
