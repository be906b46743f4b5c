"""The command line under stress (observation 16 of the threat model): signals while a pipe
stalls, a reader that goes away, filters nested past any parser's stack, records of 16 MiB."""

from __future__ import annotations

import os
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _hostile import udp_frames, write_pcap

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "sample.pcap"
CAPSVC = [sys.executable, "-m", "capsvc.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"}
SUMMARY = b"packets read"

DEEP = "ip[0] " + "+ 1 " * 3000 + "= 1"


def ended_within(proc: subprocess.Popen[bytes], seconds: float) -> int:
    """Wait for the process; fail (killing it) when it takes longer than ``seconds``."""
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"still running {seconds} s after the signal") from None


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_a_read_whose_output_pipe_stalls(
    tmp_path: Path, signum: int, status: int
) -> None:
    """stdout is a pipe nobody reads: the writer blocks in write(). A signal still ends the job
    at once with the summary and 128 + the signal."""
    big = write_pcap(tmp_path / "big.pcap", udp_frames(200_000, size=20))
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [*CAPSVC, "read", "-r", str(big)], stdout=write_fd, stderr=subprocess.PIPE, env=ENV
    )
    os.close(write_fd)
    try:
        time.sleep(1.5)  # the 64 KiB pipe is full long before
        proc.send_signal(signum)
        assert ended_within(proc, 4) == status
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert SUMMARY in err and b"Traceback" not in err, err
    finally:
        os.close(read_fd)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_a_read_whose_input_pipe_stalls(signum: int, status: int) -> None:
    """``(head -c 200 sample.pcap; sleep 20) | capsvc read -r -``: the read waits on a pipe
    that sends nothing more; a signal ends it at once (it waited for the writer)."""
    proc = subprocess.Popen(
        [*CAPSVC, "read", "-r", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(SAMPLE.read_bytes()[:200])
        proc.stdin.flush()
        time.sleep(1.0)
        proc.send_signal(signum)
        assert ended_within(proc, 3) == status
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert SUMMARY in err and b"Traceback" not in err, err
    finally:
        proc.stdin.close()


def test_reader_going_away_ends_quietly(tmp_path: Path) -> None:
    """``capsvc read -r F | head -1``: as tcpdump, no "Broken pipe" message, status 0."""
    big = write_pcap(tmp_path / "big.pcap", udp_frames(50_000, size=20))
    proc = subprocess.Popen(
        [*CAPSVC, "read", "-r", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away
    assert proc.wait(timeout=30) == 0
    err = proc.stderr.read()
    assert err == b"", err


@pytest.mark.parametrize(
    "args",
    [
        ["filter", DEEP],
        ["filter", "-d", DEEP],
        ["read", "-r", str(SAMPLE), DEEP],
        pytest.param(
            ["capture", "-i", "lo", "--duration", "1", DEEP],
            marks=pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
        ),
    ],
)
def test_deeply_nested_filter_is_one_line(args: list[str]) -> None:
    """500 nested terms used to end in a RecursionError traceback (read and the API coped)."""
    done = subprocess.run([*CAPSVC, *args], capture_output=True, env=ENV, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert b"Traceback" not in done.stderr and "RecursionError" not in done.stderr.decode()
    assert lines and lines[0].startswith("capsvc")


def huge_records(path: Path, count: int, size: int = 16 << 20) -> Path:
    """A pcap with a 16 MiB snapshot length and ``count`` records of ``size`` bytes each,
    written sparse (the record data are holes: little disk, all zeros when read)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 16 << 20, 1))
        for i in range(count):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, size, size))
            f.seek(size, os.SEEK_CUR)
        f.truncate()
    return path


def run_measured(args: list[str], limit: int | None = None) -> tuple[int, bytes, int]:
    """Run capsvc; return its status, its stderr and its peak RSS in bytes."""

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen(
        [*CAPSVC, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
        preexec_fn=cap,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss * 1024


def test_huge_records_keep_memory_bounded(tmp_path: Path) -> None:
    """300 records of 16 MiB made ``read -w /dev/null`` reach 5.2 GB: memory grew with the
    file. Now a batch holds a few of them, each cut to the snapshot length with a warning, and
    twice the records take no more memory (20 and 40 records here: 320 and 640 MiB read)."""
    peaks = []
    for count in (20, 40):
        path = huge_records(tmp_path / f"huge{count}.pcap", count)
        status, err, peak = run_measured(["read", "-r", str(path), "-w", "/dev/null"])
        assert status == 0, err
        assert b"%d packets read" % count in err and b"keeping the first 262144" in err
        peaks.append(peak)
        path.unlink()
    assert peaks[1] < 300 << 20, f"peak RSS {peaks[1] >> 20} MiB for 640 MiB of records"
    assert peaks[1] - peaks[0] < 48 << 20, f"peaks {[p >> 20 for p in peaks]} MiB"


def test_out_of_memory_says_so(tmp_path: Path) -> None:
    """Under a 400 MiB memory limit the read goes through (it ran out after 17 records); with
    8 MiB more than reading a small file needs, too little for one 16 MiB record, the line
    names the MemoryError (it printed "capture source failed: " and nothing after). The small
    file sets the mark: a fixed limit close to what one batch needs passed or failed by the
    way the allocator happened to reserve its arenas."""
    path = huge_records(tmp_path / "huge.pcap", 40)
    status, err, _peak = run_measured(["read", "-r", str(path), "-w", "/dev/null"], limit=400 << 20)
    assert status == 0 and b"40 packets read" in err, err
    small = ["read", "-r", str(SAMPLE), "-w", "/dev/null"]
    enough = next(mib for mib in range(48, 400, 8) if run_measured(small, mib << 20)[0] == 0)
    args = ["read", "-r", str(path), "-w", "/dev/null"]
    status, err, _peak = run_measured(args, limit=(enough + 8) << 20)
    assert status == 1
    assert b"capture source failed: MemoryError" in err, err
