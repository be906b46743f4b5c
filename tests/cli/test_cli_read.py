"""``capsvc read`` end to end, as a user runs it: a subprocess, real files, real tcpdump."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import ether, ipv4, tcp, udp

from capsvc import Direction, LinkType, Packet
from capsvc.sinks import PcapWriter

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "sample.pcap"
CAPSVC = [sys.executable, "-m", "capsvc.cli"]
ENV = {**os.environ, "TZ": "UTC"}


def capsvc(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CAPSVC, *args], capture_output=True, input=stdin, env=ENV, timeout=60, cwd=ROOT
    )


def tcpdump_count(path: Path) -> int:
    out = subprocess.run(["tcpdump", "-nr", str(path)], capture_output=True, check=True)
    return out.stdout.count(b"\n")


needs_tcpdump = pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")


def test_text_to_stdout_and_summary() -> None:
    r = capsvc("read", "-r", str(SAMPLE))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 13
    assert lines[4] == (
        "22:13:20.005000 [---  TCP] 10.0.0.1:40000 > 10.0.0.2:80 [P.] length 37: GET / HTTP/1.1"
    )
    assert r.stderr.decode().strip().endswith("13 packets read, 13 matched, 13 written, 0 dropped")


@needs_tcpdump
def test_filter_and_write_pcap(tmp_path: Path) -> None:
    out = tmp_path / "web.pcap"
    r = capsvc("read", "-r", str(SAMPLE), "-w", str(out), "tcp", "port", "80")
    assert r.returncode == 0, r.stderr
    assert tcpdump_count(out) == 6
    assert b"6 matched, 6 written" in r.stderr


@needs_tcpdump
def test_pcap_to_stdout_pipes_into_tcpdump() -> None:
    ours = subprocess.Popen(
        [*CAPSVC, "read", "-r", str(SAMPLE), "-w", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
        cwd=ROOT,
    )
    theirs = subprocess.run(
        ["tcpdump", "-nr", "-"], stdin=ours.stdout, capture_output=True, timeout=60
    )
    assert ours.wait(timeout=60) == 0
    assert theirs.returncode == 0
    assert theirs.stdout.count(b"\n") == 13


@needs_tcpdump
def test_pcapng_output_is_read_by_tcpdump(tmp_path: Path) -> None:
    out = tmp_path / "all.pcapng"
    r = capsvc("read", "-r", str(SAMPLE), "-w", str(out), "--pcapng", "-c", "5")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert tcpdump_count(out) == 5


def test_count_and_snaplen(tmp_path: Path) -> None:
    out = tmp_path / "cut.pcap"
    r = capsvc("read", "-r", str(SAMPLE), "-w", str(out), "-c", "3", "-s", "20")
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    import struct

    assert struct.unpack_from("<I", data, 16)[0] == 20
    records, offset = [], 24
    while offset < len(data):
        _s, _f, incl, orig = struct.unpack_from("<IIII", data, offset)
        records.append((incl, orig))
        offset += 16 + incl
    assert len(records) == 3
    assert all(incl == 20 and orig > 20 for incl, orig in records[1:])


def test_stdin_input() -> None:
    r = capsvc("read", "-r", "-", stdin=SAMPLE.read_bytes())
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 13


def test_libpcap_backend_reads_the_same() -> None:
    native = capsvc("read", "-r", str(SAMPLE))
    via_libpcap = capsvc("read", "-r", str(SAMPLE), "--backend", "libpcap")
    assert via_libpcap.returncode == 0, via_libpcap.stderr
    assert via_libpcap.stdout == native.stdout


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["read", "-r", "/nonexistent/x.pcap"], 1, b"No such file"),
        (["read", "-r", "README.md"], 1, b"README.md: not a pcap or pcapng file"),
        (["read", "-r", "config/sample.pcap", "tcp", "port", "99999"], 2, b"^"),
        (["read", "-r", "config/sample.pcap", "("], 2, b"^"),
        (["read"], 2, b"-r"),
        (["read", "-r", "config/sample.pcap", "-c", "-1"], 2, b"negative"),
    ],
)
def test_errors_are_one_clear_message(args: list[str], status: int, message: bytes) -> None:
    r = capsvc(*args)
    assert r.returncode == status
    assert message in r.stderr
    assert b"Traceback" not in r.stderr


def test_truncated_file_keeps_complete_packets(tmp_path: Path) -> None:
    frames = [ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, bytes([i]) * 40))) for i in range(5)]
    path = tmp_path / "cut.pcap"
    with path.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET).write_batch(
            [
                Packet(10**9 * (i + 1), fr, len(fr), Direction.UNKNOWN, 0)
                for i, fr in enumerate(frames)
            ]
        )
    path.write_bytes(path.read_bytes()[:-10])
    r = capsvc("read", "-r", str(path))
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 4
    assert b"truncated" in r.stderr.lower()


def test_verbose_and_ascii() -> None:
    r = capsvc("read", "-r", str(SAMPLE), "-v", "-A", "-c", "6")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "ttl 64" in text
    assert "GET / HTTP/1.1" in text.split("\n", 5)[-1]


@needs_tcpdump
def test_large_read_matches_tcpdump(tmp_path: Path) -> None:
    path = tmp_path / "many.pcap"
    frames = [
        ether(ipv4("10.0.0.1", "10.0.0.2", tcp(1000 + i % 7, 80 if i % 3 else 443)))
        for i in range(3000)
    ]
    with path.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET).write_batch(
            [Packet(10**9 + i, fr, len(fr), Direction.UNKNOWN, 0) for i, fr in enumerate(frames)]
        )
    out = tmp_path / "out.pcap"
    r = capsvc("read", "-r", str(path), "-w", str(out), "tcp port 443")
    assert r.returncode == 0, r.stderr
    assert tcpdump_count(out) == 1000
    assert b"3000 packets read, 1000 matched, 1000 written" in r.stderr


def test_progress_line_on_a_terminal_for_a_long_read() -> None:
    import io
    import pty
    import threading
    import time

    frames = [ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, b"p" * 30))) for _ in range(50)]
    stream = io.BytesIO()
    PcapWriter(stream, 0, LinkType.ETHERNET).write_batch(
        [Packet(10**9 + i, f, len(f), Direction.UNKNOWN, 0) for i, f in enumerate(frames)]
    )
    capture = stream.getvalue()
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*CAPSVC, "read", "-r", "-", "-w", os.devnull],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=ENV,
        cwd=ROOT,
    )
    os.close(secondary)
    assert proc.stdin is not None

    def trickle() -> None:  # the read lasts about 2 s: long enough for the progress line
        assert proc.stdin is not None
        for i in range(0, len(capture), 400):
            proc.stdin.write(capture[i : i + 400])
            proc.stdin.flush()
            time.sleep(2.0 / (len(capture) / 400))
        proc.stdin.close()

    feeder = threading.Thread(target=trickle)
    feeder.start()
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    feeder.join()
    assert proc.wait(timeout=30) == 0
    os.close(primary)
    assert b"\rread " in seen and b"packets/s" in seen
    assert b"50 packets read, 50 matched, 50 written" in seen


@pytest.mark.parametrize("expr", ["greater 100", "less 80", "len >= 118", "tcp and greater 100"])
def test_length_primitives_compare_the_wire_length_of_cut_frames(tmp_path: Path, expr: str) -> None:
    """A frame cut by the snaplen keeps its wire length, and ``len``/``greater``/``less`` see
    that, as tcpdump does (mutation: matching on ``len(data)`` keeps none of the cut frames)."""
    cut = tmp_path / "cut.pcap"
    subprocess.run(["editcap", "-s", "60", str(ROOT / "config" / "sample.pcap"), str(cut)],
                   check=True)  # fmt: skip
    theirs = subprocess.run(
        ["tcpdump", "-n", "--count", "-r", str(cut), expr], capture_output=True, text=True
    )
    expected = int(theirs.stdout.split()[0])
    out = tmp_path / "out.pcap"
    done = capsvc("read", "-r", str(cut), "-w", str(out), expr)
    assert done.returncode == 0, done.stderr
    count = subprocess.run(
        ["tcpdump", "-n", "--count", "-r", str(out)], capture_output=True, text=True
    )
    assert int(count.stdout.split()[0]) == expected
    assert expected > 0 or expr == "less 80"
