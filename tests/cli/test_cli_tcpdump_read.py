"""``capsvc read`` with tcpdump's flags and figures, each compared with tcpdump on the same file."""

from __future__ import annotations

import io
import os
import pwd
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from _helpers import ether, ipv4, udp

from capsvc import Direction, LinkType, Packet
from capsvc.cli._read import progress_line
from capsvc.sinks import PcapWriter

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "sample.pcap"
CAPSVC = [sys.executable, "-m", "capsvc.cli"]
ENV = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")


def capsvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CAPSVC, *args], capture_output=True, text=True, env=ENV, timeout=60, cwd=ROOT
    )


def tcpdump(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tcpdump", *args], capture_output=True, text=True, timeout=60)


def write_udp_file(path: Path, count: int, *, pcapng: bool = False) -> Path:
    """``count`` UDP packets; packet i has source port 1000 + i % 7 (port 1003 at 3, 10, ...)."""
    frames = [
        ether(ipv4("10.0.0.1", "10.0.0.2", udp(1000 + i % 7, 9, b"x" * 20))) for i in range(count)
    ]
    packets = [
        Packet(10**9 + i * 1000, f, len(f), Direction.UNKNOWN, 0) for i, f in enumerate(frames)
    ]
    plain = path.with_suffix(".pcap")
    with plain.open("wb") as f:
        PcapWriter(f, 0, LinkType.ETHERNET, nanosecond=False).write_batch(packets)
    if not pcapng:
        return plain
    subprocess.run(["editcap", "-F", "pcapng", str(plain), str(path)], check=True)
    return path


def summary(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


# -- unknown flags, -n ---------------------------------------------------------------------------


@pytest.mark.parametrize("job", [["read", "-r", str(SAMPLE)], ["capture", "-i", "lo"]])
def test_an_unknown_flag_gets_the_sub_commands_usage_and_status_2(job: list[str]) -> None:
    theirs = tcpdump("-r", str(SAMPLE), "--no-such-flag")
    assert theirs.returncode != 0 and "Usage: tcpdump" in theirs.stderr  # refused there too
    ours = capsvc(*job, "--no-such-flag")
    assert ours.returncode == 2
    assert ours.stderr.startswith(f"usage: capsvc {job[0]} ")
    assert ours.stderr.strip().endswith("capsvc: unrecognized arguments: --no-such-flag")


@pytest.mark.parametrize("flag", ["-n", "-nn"])
def test_n_and_nn_are_accepted_and_change_nothing(flag: str) -> None:
    theirs = tcpdump(flag, "-r", str(SAMPLE))
    assert theirs.returncode == 0
    plain, ours = capsvc("read", "-r", str(SAMPLE)), capsvc("read", flag, "-r", str(SAMPLE))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert len(ours.stdout.splitlines()) == len(theirs.stdout.splitlines())


def test_help_says_names_are_never_resolved() -> None:
    out = capsvc("read", "--help").stdout
    assert "never resolves" in " ".join(out.split())


# -- counts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "libpcap"])
@pytest.mark.parametrize("pcapng", [False, True])
def test_c_counts_only_the_packets_it_used(tmp_path: Path, backend: str, pcapng: bool) -> None:
    """``read -c`` of a large file reports what tcpdump -c reads: the records up to the last
    packet it kept, not the batch read ahead (it said "2048 packets read")."""
    path = write_udp_file(tmp_path / "big.pcapng", 20000, pcapng=pcapng)
    ours = capsvc("read", "--backend", backend, "-r", str(path), "-c", "2")
    assert ours.returncode == 0, ours.stderr
    assert summary(ours.stderr) == "2 packets read, 2 matched, 2 written, 0 dropped"
    assert len(ours.stdout.splitlines()) == len(
        tcpdump("-r", str(path), "-c", "2").stdout.splitlines()
    )

    ours = capsvc("read", "--backend", backend, "-r", str(path), "-c", "2", "udp src port 1003")
    assert summary(ours.stderr) == "11 packets read, 2 matched, 2 written, 0 dropped"
    assert (
        tcpdump("--count", "-r", str(path), "-c", "2", "udp src port 1003").stdout == "2 packets\n"
    )
    # tcpdump agrees the second match is the 11th record: 11 records hold 2, 10 hold 1.
    head = tmp_path / "head.pcap"
    for records, matches in ((11, "2 packets"), (10, "1 packet")):
        tcpdump("-r", str(path), "-c", str(records), "-w", str(head))
        assert tcpdump("--count", "-r", str(head), "udp src port 1003").stdout.strip() == matches


def test_one_packet_is_singular_everywhere(tmp_path: Path) -> None:
    path = write_udp_file(tmp_path / "one.pcap", 1)
    assert tcpdump("--count", "-r", str(path)).stdout == "1 packet\n"
    ours = capsvc("read", "-r", str(path))
    assert summary(ours.stderr) == "1 packet read, 1 matched, 1 written, 0 dropped"
    ours = capsvc("read", "-r", str(path), "-c", "5", "udp port 7")
    assert summary(ours.stderr) == "1 packet read, 0 matched, 0 written, 0 dropped"
    path = write_udp_file(tmp_path / "two.pcap", 2)
    assert summary(capsvc("read", "-r", str(path)).stderr).startswith("2 packets read,")


# -- the progress line ---------------------------------------------------------------------------


def test_progress_line_shows_percent_rate_and_time_left() -> None:
    line = progress_line(3_456_789, 12_345, 400_000_000, 1_200_000_000, 4.0, 200)
    assert line == (
        "read 33% of 1.2 GB, 3,456,789 packets (12,345 matched), 864,197 packets/s, "
        "100.0 MB/s, 0:08 left"
    )
    assert progress_line(10, 1, 0, 0, 2.0, 200) == "read 10 packets (1 matched), 5 packets/s"
    assert progress_line(1, 1, 5, 10, 3600.0, 200).endswith("1:00:00 left")
    assert len(progress_line(3_456_789, 12_345, 4, 12, 4.0, 30)) == 29  # never wraps


def test_progress_line_of_a_file_on_a_terminal(tmp_path: Path) -> None:
    """A read held up by its output (a FIFO nobody reads for 2 s) shows the line with percent."""
    import fcntl
    import pty
    import termios

    path = write_udp_file(tmp_path / "many.pcap", 20000)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    proc = subprocess.Popen(
        [*CAPSVC, "read", "-r", str(path), "-w", str(fifo)],
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=ENV,
        cwd=ROOT,
    )
    os.close(secondary)
    drained = bytearray()

    def drain() -> None:
        with fifo.open("rb") as f:
            time.sleep(2.0)
            while chunk := f.read(65536):
                drained.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    reader.join()
    assert proc.wait(timeout=30) == 0
    os.close(primary)
    text = seen.decode()
    assert re.search(
        r"\rread \d+% of 1\.\d MB, [\d,]+ packets \([\d,]+ matched\), [\d,]+ packets/s, "
        r"[\d.]+ [kM]B/s, \d+:\d\d left",
        text,
    ), text
    assert "20000 packets read, 20000 matched, 20000 written" in text
    assert len(drained) == path.stat().st_size  # the same header and record sizes


# -- -F, -d, --count, --time-stamp-precision, -U, -Z ----------------------------------------------


def test_F_reads_the_expression_from_a_file_and_ignores_the_command_lines(tmp_path: Path) -> None:
    path = write_udp_file(tmp_path / "f.pcap", 100)
    expr = tmp_path / "expr.txt"
    expr.write_text("udp src port 1003  # the fourth of every seven\n  and len > 10\n")
    theirs = tcpdump("--count", "-r", str(path), "-F", str(expr), "tcp")
    assert theirs.stdout == "14 packets\n"  # tcpdump took the file's, not "tcp"
    mine = capsvc("read", "--count", "-r", str(path), "-F", str(expr), "tcp")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout
    assert "ignoring the expression on the command line" in mine.stderr
    missing = capsvc("read", "-r", str(path), "-F", str(tmp_path / "none.txt"))
    assert tcpdump("-r", str(path), "-F", str(tmp_path / "none.txt")).returncode == 1
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == f"capsvc: -F {tmp_path / 'none.txt'}: No such file or directory"
    )


@pytest.mark.parametrize("level", ["-d", "-dd", "-ddd"])
@pytest.mark.parametrize("expr", ["", "udp", "ip host 10.0.0.1", "arp or icmp", "tcp port 80"])
@pytest.mark.parametrize("backend", ["native", "libpcap"])
def test_d_prints_the_program_as_tcpdump_for_the_file(
    tmp_path: Path, level: str, expr: str, backend: str
) -> None:
    """Byte for byte: libpcap's program through --backend libpcap, and capsvc's own where its
    compiler gives the same program ("tcp port 80": libpcap tests IPv6 first, capsvc IPv4)."""
    path = write_udp_file(tmp_path / "d.pcap", 3)  # snapshot length 262144
    theirs = tcpdump(level, "-r", str(path), *expr.split())
    mine = capsvc("read", "--backend", backend, level, "-r", str(path), *expr.split())
    assert mine.returncode == theirs.returncode == 0, mine.stderr
    if backend == "libpcap" or expr != "tcp port 80":
        assert mine.stdout == theirs.stdout
    else:
        assert len(mine.stdout.splitlines()) == len(theirs.stdout.splitlines())
    assert capsvc("filter", level, expr or "ip or not ip").returncode == 0


def test_filter_dd_and_ddd_are_tcpdumps_forms() -> None:
    for level in ("-dd", "-ddd"):
        theirs = tcpdump(level, "-r", str(SAMPLE), "udp")
        mine = capsvc("filter", level, "udp")
        assert mine.stdout == theirs.stdout
    assert capsvc("filter", "-dd", "udp").stdout != capsvc("filter", "-d", "udp").stdout


def test_count_prints_only_the_count_as_tcpdump(tmp_path: Path) -> None:
    for expr in ([], ["port 80"], ["port 1"]):
        theirs = tcpdump("--count", "-r", str(SAMPLE), *expr)
        mine = capsvc("read", "--count", "-r", str(SAMPLE), *expr)
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout == theirs.stdout
    out = tmp_path / "c.pcap"
    mine = capsvc("read", "--count", "-r", str(SAMPLE), "-w", str(out), "port 80")
    assert mine.stdout == tcpdump("--count", "-r", str(SAMPLE), "port 80").stdout
    assert len(tcpdump("-nr", str(out)).stdout.splitlines()) == 6  # -w still writes


@pytest.mark.parametrize(
    ("flags", "magic"), [([], 0xA1B23C4D), (["--time-stamp-precision", "nano"], 0xA1B23C4D),
                         (["--time-stamp-precision", "micro"], 0xA1B2C3D4)],
)  # fmt: skip
def test_time_stamp_precision_of_w(tmp_path: Path, flags: list[str], magic: int) -> None:
    """capsvc writes nanoseconds unless told micro; tcpdump writes micro unless told nano."""
    mine, theirs = tmp_path / "m.pcap", tmp_path / "t.pcap"
    assert capsvc("read", "-r", str(SAMPLE), *flags, "-w", str(mine)).returncode == 0
    tcpdump(
        "-r",
        str(SAMPLE),
        "--time-stamp-precision",
        "nano" if magic == 0xA1B23C4D else "micro",
        "-w",
        str(theirs),
    )
    assert mine.read_bytes()[:4] == struct.pack("<I", magic)
    assert mine.read_bytes() == theirs.read_bytes()[:24] + mine.read_bytes()[24:]
    assert tcpdump("-ttnr", str(mine)).stdout == tcpdump("-ttnr", str(theirs)).stdout
    refused = capsvc(
        "read", "-r", str(SAMPLE), "--pcapng", "--time-stamp-precision", "micro", "-w", str(mine)
    )
    assert refused.returncode == 2 and "pcapng keeps nanoseconds" in refused.stderr


def test_U_hands_each_packet_of_a_pipe_on_at_once(tmp_path: Path) -> None:
    """``read -r - -U -w -``: a record that came in is out before the next one is sent."""
    frames = [ether(ipv4("10.0.0.1", "10.0.0.2", udp(1, 2, bytes([i]) * 30))) for i in range(3)]
    stream = io.BytesIO()
    writer = PcapWriter(stream, 0, LinkType.ETHERNET, nanosecond=True)
    writer.write_batch(
        [Packet(10**9 + i, f, len(f), Direction.UNKNOWN, 0) for i, f in enumerate(frames)]
    )
    data = stream.getvalue()
    proc = subprocess.Popen(
        [*CAPSVC, "read", "-r", "-", "-U", "-w", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(data[:24])
    proc.stdin.flush()
    assert proc.stdout.read(24) == data[:24]
    pos = 24
    for frame in frames:
        size = 16 + len(frame)
        proc.stdin.write(data[pos : pos + size])
        proc.stdin.flush()
        assert proc.stdout.read(size) == data[pos : pos + size]  # before the next is sent
        pos += size
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_Z_reads_as_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to change user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    where = Path(tempfile.mkdtemp(prefix="capsvc-Z-", dir="/tmp"))
    try:
        where.chmod(0o777)
        mine, theirs = where / "m.pcap", where / "t.pcap"
        done = capsvc("read", "-r", str(SAMPLE), "-Z", "nobody", "-w", str(mine))
        assert done.returncode == 0, done.stderr
        tcpdump("-r", str(SAMPLE), "-Z", "nobody", "-w", str(theirs))
        assert mine.stat().st_uid == theirs.stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(where)
