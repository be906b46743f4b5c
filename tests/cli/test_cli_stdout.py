"""Standard output keeps every byte when its writes are interrupted: a job stopped and continued
(Ctrl-Z, ``fg``) while blocked on a full pipe, under ``python -u`` / PYTHONUNBUFFERED, where the
interpreter's own text layer writes once and drops what the interrupted write(2) left."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import CORPUS, ether, ipv4, udp

from capsvc import Direction, LinkType, Packet
from capsvc.cli._common import whole_writes
from capsvc.sinks import PcapWriter

ROOT = Path(__file__).resolve().parents[2]
CAPSVC = [sys.executable, "-m", "capsvc.cli"]
TABLES = ["conv,ip", "conv,udp", "endpoints,ip", "io,stat,1", "io,stat,3", "io,stat,0"]
#: A capture over half an hour, whose -z io,stat,1 table alone is larger than a pipe holds.
LONG = CORPUS / "dhcp-rfc4388.pcap"


def unbuffered(value: str) -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": value}


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]


def blocked_on_pipe(pid: int, deadline: float) -> bool:
    """Wait until a thread of ``pid`` sleeps in a pipe write (True) or the process has ended
    (False)."""
    while time.monotonic() < deadline:
        try:
            state = state_of(pid)
            tasks = Path(f"/proc/{pid}/task").iterdir()
            wchans = [task.joinpath("wchan").read_text() for task in tasks]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state == "Z":
            return False
        if any("pipe_write" in wchan for wchan in wchans):
            return True
        time.sleep(0.005)
    raise AssertionError(f"process {pid} neither blocked on its pipe nor ended")


def stop_and_continue(pid: int, deadline: float) -> None:
    """SIGSTOP, wait until the process is stopped, SIGCONT (what a shell's Ctrl-Z, fg do)."""
    os.kill(pid, signal.SIGSTOP)
    while (state := state_of(pid)) != "T":
        if state == "Z":  # it had written its last bytes and ended before the signal
            return
        assert time.monotonic() < deadline, "the process did not stop"
        time.sleep(0.005)
    os.kill(pid, signal.SIGCONT)


def interrupted_output(args: list[str], env: dict[str, str]) -> tuple[bytes, int, int]:
    """Run capsvc with its standard output a pipe that is read only after each time the job
    blocked on it and was stopped and continued. Returns the output, the exit status and how
    many times the job was stopped."""
    proc = subprocess.Popen(
        [*CAPSVC, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    chunks, stops = [], 0
    try:
        while blocked_on_pipe(proc.pid, deadline):
            stop_and_continue(proc.pid, deadline)
            stops += 1
            chunks.append(os.read(proc.stdout.fileno(), 1 << 16))
        chunks.append(proc.stdout.read())
        return b"".join(chunks), proc.wait(timeout=60), stops
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def plain_output(args: list[str]) -> bytes:
    done = subprocess.run(
        [*CAPSVC, *args], capture_output=True, env=unbuffered(""), cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("mode", ["1", ""], ids=["unbuffered", "buffered"])
def test_tables_survive_a_stop_while_blocked_on_the_pipe(mode: str) -> None:
    if not LONG.is_file():
        pytest.skip(f"{LONG} is not there")
    args = ["read", "-r", str(LONG), "-w", "/dev/null"]
    for table in TABLES:
        args += ["-z", table]
    expected = plain_output(args)
    assert len(expected) > 1 << 16  # more than the pipe holds: the write blocks
    out, status, stops = interrupted_output(args, unbuffered(mode))
    assert status == 0
    assert stops >= 1
    assert out == expected


def test_text_lines_survive_stops_while_blocked_on_the_pipe(tmp_path: Path) -> None:
    path = tmp_path / "many.pcap"
    frames = [
        ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000 + i % 50, 53, b"q" * 40))) for i in range(20000)
    ]
    packets = [
        Packet(1_700_000_000 * 10**9 + i * 1000, f, len(f), Direction.INBOUND, 0)
        for i, f in enumerate(frames)
    ]
    with open(path, "wb") as f:
        writer = PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=True)
        writer.write_batch(packets)
        writer.flush()
    args = ["read", "-r", str(path)]
    expected = plain_output(args)
    assert expected.count(b"\n") == len(frames)
    out, status, stops = interrupted_output(args, unbuffered("1"))
    assert status == 0
    assert stops >= 2
    assert out == expected


def test_whole_writes_puts_a_buffer_under_a_raw_text_layer(tmp_path: Path) -> None:
    with open(tmp_path / "raw", "wb", buffering=0) as raw:
        unbuffered_text = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)  # as -u
        stream = whole_writes(unbuffered_text)
        assert stream is not unbuffered_text
        assert stream.line_buffering  # -u's promise kept: each line goes out when written
        stream.write("a line")
        assert (tmp_path / "raw").read_bytes() == b""
        stream.write(" ends\n")
        assert (tmp_path / "raw").read_bytes() == b"a line ends\n"
        stream.write("more")
        stream.flush()
        assert (tmp_path / "raw").read_bytes() == b"a line ends\nmore"
        unbuffered_text.detach()
    with open(tmp_path / "buffered", "w", encoding="utf-8") as buffered:
        assert whole_writes(buffered) is buffered
    text = io.StringIO()
    assert whole_writes(text) is text
