"""``capsvc capture --ring`` (the flight recorder), ``-z`` tables at the end of a live capture and
``-z`` as the postrotate command, as subprocesses on a private veth pair; dumps read back with
tcpdump."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _helpers import ether, ipv4, udp
from _netns import VethPair, veth_pair

from capsvc.cli._ring import parse_ring

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
IFF_PROMISC = 0x100
MIB = 2**20

needs_tcpdump = pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
netns = pytest.mark.netns


class Capture:
    """``capsvc capture ...`` running, its standard error read line by line as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "capsvc.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out.append(self.proc.stdout.read())

    def wait_line(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {self.lines}")

    def wait_capturing(self, pair: VethPair, timeout: float = 10.0) -> None:
        flags = Path(f"/sys/class/net/{pair.host}/flags")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if int(flags.read_text(), 16) & IFF_PROMISC:
                time.sleep(0.3)  # the filter and the recorder come right after the membership
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"capture exited early: {self.finish()}")
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError("capture did not start")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout)
        finally:
            self.proc.kill()
        self._reader.join(timeout)
        self._out_reader.join(timeout)
        return self.proc.returncode, "".join(self.out), "\n".join(self.lines)


def frames(pair: VethPair, seqs: range | list[int], dport: int = 9000) -> list[bytes]:
    """UDP frames from the peer, numbered by their source port (20000 + seq)."""
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(20000 + seq, dport, b"ring")),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for seq in seqs
    ]


def read_back(path: Path) -> list[tuple[int, int]]:
    """(seq, destination port) of each packet of a capture file, as tcpdump reads it."""
    out = subprocess.run(
        ["tcpdump", "-nr", str(path)], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    found = re.findall(r"\.(\d+) > [\d.]+\.(\d+): UDP", out)
    assert len(found) == len(out.splitlines()), out
    return [(int(sport) - 20000, int(dport)) for sport, dport in found]


def dumps(where: Path) -> list[Path]:
    return sorted(where.iterdir())


# -- --ring values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60s", (60.0, 64 * MIB)),
        ("60s,64MiB", (60.0, 64 * MIB)),
        ("90", (90.0, 64 * MIB)),
        ("5m,1GiB", (300.0, 2**30)),
        ("1h,500MB", (3600.0, 500 * 10**6)),
        ("250ms,4KiB", (0.25, 4096)),
        ("32MiB", (60.0, 32 * MIB)),
        ("10kB,2min", (120.0, 10_000)),
    ],
)
def test_ring_values(text: str, expected: tuple[float, int]) -> None:
    assert parse_ring(text) == expected


@pytest.mark.parametrize(
    "text", ["0s", "abc", "60s,10", "60s,1KiB,5s", "-5s", "60x", "10B", "60s,60s", "", "1MiB,2MiB"]
)
def test_bad_ring_values(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_ring(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ring", "0s", "-w", "d.pcap"], "--ring: '0s': the duration must be positive"),
        (["--ring", "60s,10", "-w", "d.pcap"], "--ring: '60s,10': want DURATION[,SIZE]"),
        (["--ring", "5 minutes", "-w", "d.pcap"], "--ring: '5 minutes': want DURATION[,SIZE]"),
        (["--ring", "60s,8B", "-w", "d.pcap"], "the size must be more than 24 bytes"),
        (["--ring", "60s"], "--ring needs -w NAME"),
        (["--ring", "60s", "-w", "-"], "--ring needs -w NAME"),
        (["--ring", "60s", "-w", "d-%s.pcap", "-G", "5"], "takes no -G, -C or -W"),
        (["--trigger", "tcp", "-w", "d.pcap"], "--trigger needs --ring"),
        (["--no-dump-on-exit"], "--no-dump-on-exit needs --ring"),
        (["--ring", "60s", "-w", "d.pcap", "--after", "3"], "--after and --holdoff need --trigger"),
        (["--ring", "60s", "-w", "d.pcap", "--trigger", "tcp", "--after", "x"], "--after"),
    ],
)
def test_ring_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "capsvc.cli", "capture", "-i", "lo", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


# -- dumps --------------------------------------------------------------------------------------


@netns
@needs_tcpdump
def test_sigusr1_dumps_the_last_packets_sent(tmp_path: Path) -> None:
    """A 4 KiB ring after 200 packets holds exactly the newest that fit (each charged its
    captured bytes + 24); SIGUSR1 writes them, in order, and capture goes on."""
    out = tmp_path / "dumps"
    out.mkdir()
    with veth_pair() as pair:
        sent = frames(pair, range(200))
        cap = Capture(
            "capture", "-i", pair.host, "-Q", "in", "--ring", "60s,4KiB", "--no-dump-on-exit",
            "-w", str(out / "d-%Y%m%d-%H%M%S.pcap"), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(sent)
        time.sleep(0.5)
        assert dumps(out) == []  # nothing is written until asked
        cap.signal(signal.SIGUSR1)
        line = cap.wait_line(r"dump \(SIGUSR1\)")
        pair.send_from_peer(frames(pair, range(200, 210)))  # capture went on
        time.sleep(0.3)
        cap.signal(signal.SIGINT)
        status, _, stderr = cap.finish()
    assert status == 0, stderr
    (dump,) = dumps(out)
    assert re.fullmatch(r"d-\d{8}-\d{6}\.pcap", dump.name)
    held = 4096 // (len(sent[0]) + 24)
    assert read_back(dump) == [(seq, 9000) for seq in range(200 - held, 200)]
    assert f": {held} packets, {held * len(sent[0])} bytes" in line and str(dump) in line
    assert "210 packets captured" in stderr.splitlines()[-1]
    assert "1 dumps" in stderr


@netns
@needs_tcpdump
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_dumps_what_is_held_and_exits(tmp_path: Path, signum: int) -> None:
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "-Q", "in", "--ring", "10s",
            "-w", str(tmp_path / "exit.pcap"), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, range(7)))
        time.sleep(0.3)
        cap.signal(signum)
        status, _, stderr = cap.finish()
    assert status == 0, stderr
    assert [p.name for p in dumps(tmp_path)] == ["exit.pcap"]
    assert read_back(tmp_path / "exit.pcap") == [(seq, 9000) for seq in range(7)]
    assert re.search(r"dump \(end of capture\): 7 packets", stderr), stderr
    assert stderr.splitlines()[-1].startswith("7 packets captured")


@netns
def test_no_dump_on_exit_writes_nothing(tmp_path: Path) -> None:
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "--ring", "10s", "--no-dump-on-exit",
            "-w", str(tmp_path / "exit.pcap"), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, range(7)))
        time.sleep(0.3)
        cap.signal(signal.SIGINT)
        status, _, stderr = cap.finish()
    assert status == 0, stderr
    assert dumps(tmp_path) == [] and "dump" not in stderr.replace("dumps", "")
    assert "7 packets held" in stderr


@netns
@needs_tcpdump
def test_a_trigger_storm_makes_one_file(tmp_path: Path) -> None:
    """20 packets, then a storm of 30 trigger packets and 5 more within --after: one file holds
    them all; the storm's second wave, inside the hold-off, makes no other file."""
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "-Q", "in", "--ring", "60s",
            "--trigger", "udp dst port 9999", "--after", "1.5", "--no-dump-on-exit",
            "-w", str(tmp_path / "storm-%H%M%S.pcap"), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, range(20)))
        time.sleep(0.3)
        pair.send_from_peer(frames(pair, range(20, 50), dport=9999) + frames(pair, range(50, 55)))
        line = cap.wait_line(r"dump \(trigger at")  # written once --after has passed
        pair.send_from_peer(frames(pair, range(55, 65), dport=9999))  # held off
        time.sleep(2.5)
        cap.signal(signal.SIGINT)
        status, _, stderr = cap.finish()
    assert status == 0, stderr
    (dump,) = dumps(tmp_path)
    assert read_back(dump) == (
        [(s, 9000) for s in range(20)]
        + [(s, 9999) for s in range(20, 50)]
        + [(s, 9000) for s in range(50, 55)]
    )
    assert ": 55 packets" in line and str(dump) in line
    assert "1 triggers, 1 dumps" in stderr


@netns
@needs_tcpdump
def test_a_trigger_after_the_holdoff_makes_a_second_file(tmp_path: Path) -> None:
    """--after 0.3 --holdoff 3: a second trigger 0.5 s after the first is held off; one 4.5 s
    later makes a second file, holding the ring's seconds before it."""
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "-Q", "in", "--ring", "60s",
            "--trigger", "udp dst port 9999", "--after", "0.3", "--holdoff", "3",
            "--no-dump-on-exit", "-w", str(tmp_path / "t-%H%M%S.pcap"), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, [0, 1], dport=9999))
        time.sleep(0.5)
        pair.send_from_peer(frames(pair, [2], dport=9999))
        time.sleep(4.5)
        pair.send_from_peer(frames(pair, [3], dport=9999))
        time.sleep(1.5)
        cap.signal(signal.SIGINT)
        status, _, stderr = cap.finish()
    assert status == 0, stderr
    first, second = dumps(tmp_path)
    assert read_back(first) == [(0, 9999), (1, 9999)]  # the window ended before 2 came
    assert read_back(second) == [(s, 9999) for s in range(4)]
    assert "2 triggers, 2 dumps" in stderr


@netns
def test_a_dump_that_cannot_be_written_is_said_and_exits_1(tmp_path: Path) -> None:
    """The -w name's directory part is a file: SIGUSR1's and the last dump fail, each one line,
    capture went on between them, and the exit status says data was lost."""
    (tmp_path / time.strftime("%Y")).write_text("in the way")
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "--ring", "10s", "-w", str(tmp_path / "%Y" / "d.pcap"),
            "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, range(3)))
        cap.signal(signal.SIGUSR1)
        cap.wait_line(r"^capsvc: dump failed: ")
        pair.send_from_peer(frames(pair, range(3, 5)))
        time.sleep(0.3)
        cap.signal(signal.SIGINT)
        status, _, stderr = cap.finish()
    assert status == 1, stderr
    assert stderr.count("capsvc: dump failed: ") == 2 and "Traceback" not in stderr
    assert "5 packets held" in stderr and "0 dumps, 2 failed" in stderr
    assert [p.name for p in dumps(tmp_path)] == [time.strftime("%Y")]


@netns
def test_a_bad_trigger_exits_2(tmp_path: Path) -> None:
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "--ring", "5s", "--trigger", "udp port and (",
            "-w", str(tmp_path / "x.pcap"),
        )  # fmt: skip
        status, _, stderr = cap.finish()
    assert status == 2 and "Traceback" not in stderr and stderr.startswith("capsvc: ")
    assert dumps(tmp_path) == []


# -- -z on a live capture ---------------------------------------------------------------------


@netns
def test_capture_prints_its_tables_at_the_end(tmp_path: Path) -> None:
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "-Q", "in", "-w", str(tmp_path / "c.pcap"),
            "-z", "conv,udp", "-z", "io,stat,0", "-z", "endpoints,ip", "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, [1] * 6 + [2] * 3))
        time.sleep(0.3)
        cap.signal(signal.SIGINT)
        status, stdout, stderr = cap.finish()
    assert status == 0, stderr
    conv = stdout.index("UDP Conversations")
    io = stdout.index("| IO Statistics")
    ends = stdout.index("IPv4 Endpoints")
    assert conv < io < ends
    rows = [line.split() for line in stdout.splitlines() if "<->" in line]
    size = len(frames(pair, [1])[0])
    assert [(r[0], r[2], r[-5]) for r in rows] == [
        (f"{pair.peer_ip}:20001", "10.200.0.1:9000", "6"),
        (f"{pair.peer_ip}:20002", "10.200.0.1:9000", "3"),
    ]
    assert re.search(rf"\| +9 \| +{9 * size} \|", stdout)
    endpoints = stdout[ends:].splitlines()
    endpoint = next(line for line in endpoints if line.startswith(pair.peer_ip))
    assert endpoint.split()[1:3] == ["9", str(9 * size)]


# -- -z as the postrotate command ---------------------------------------------------------------


def recorder_script(tmp_path: Path, status: int = 0) -> tuple[Path, Path]:
    log = tmp_path / "names.log"
    script = tmp_path / "post.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexit {status}\n')
    script.chmod(0o755)
    return script, log


def wait_lines(path: Path, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{count} names expected, got {lines}")


@netns
def test_postrotate_runs_on_each_file_rotation_closes(tmp_path: Path) -> None:
    """-G 1 -W 3: the command runs with the name of each file as it is closed, the third
    (which ends the capture) too; exit statuses are logged."""
    script, log = recorder_script(tmp_path)
    out = tmp_path / "caps"
    out.mkdir()
    with veth_pair() as pair:
        cap = Capture(
            "--log-level", "info", "capture", "-i", pair.host, "-Q", "in",
            "-w", str(out / "g-%s.pcap"), "-G", "1", "-W", "3", "-z", str(script), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, range(45)), gap=0.1)  # 4.5 seconds of traffic
        status, _, stderr = cap.finish()  # ends by itself after 3 files
    assert status == 0, stderr
    files = [str(p) for p in dumps(out)]
    assert len(files) == 3
    assert wait_lines(log, 3) == files
    assert f"postrotate command {script} {files[0]} exited with status 0" in stderr


@netns
def test_postrotate_on_size_rotation_and_a_failing_command(tmp_path: Path) -> None:
    """-C: every file closed by a size rotation gets the command, the one still open at the
    end does not (as with tcpdump); a failing command is a warning, not the capture's end."""
    script, log = recorder_script(tmp_path, status=3)
    out = tmp_path / "caps"
    out.mkdir()
    with veth_pair() as pair:
        cap = Capture(
            "capture", "-i", pair.host, "-Q", "in", "-w", str(out / "r.pcap"), "-C", "0.001",
            "-z", str(script), "udp",
        )  # fmt: skip
        cap.wait_capturing(pair)
        pair.send_from_peer(frames(pair, range(40)))
        time.sleep(1.0)
        cap.signal(signal.SIGINT)
        status, _, stderr = cap.finish()
    assert status == 0, stderr
    files = sorted(dumps(out), key=lambda p: int(p.name[6:] or 0))
    assert len(files) > 2
    assert sorted(wait_lines(log, len(files) - 1)) == sorted(str(p) for p in files[:-1])
    assert f"postrotate command {script} {files[0]} exited with status 3" in stderr
