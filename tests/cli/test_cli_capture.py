"""``capsvc capture`` and ``capsvc interfaces`` as subprocesses on a private veth pair."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import ether, icmp, ipv4, tcp, udp
from _netns import VethPair, need_root, veth_pair

from capsvc import Direction, LinkType
from capsvc.format._line import TextFormatter

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
IFF_PROMISC = 0x100


def capsvc(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "capsvc.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )


def frames(pair: VethPair, count: int, dport: int = 9000) -> list[bytes]:
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, dport, b"cli" + bytes([i]))),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for i in range(count)
    ]


def wait_capturing(pair: VethPair, proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """Wait until the capture holds the interface (its promiscuous membership shows)."""
    flags = Path(f"/sys/class/net/{pair.host}/flags")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(flags.read_text(), 16) & IFF_PROMISC:
            time.sleep(0.2)  # the filter is attached right after the membership
            return
        if proc.poll() is not None:
            raise AssertionError(f"capture exited early: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("capture did not start")


def tcpdump_count(path: Path) -> int:
    out = subprocess.run(
        ["tcpdump", "-nr", str(path)], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return len(out.splitlines())


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
@pytest.mark.parametrize("backend", ["afpacket", "libpcap"])
def test_capture_count_writes_a_pcap_tcpdump_reads(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "c.pcap"
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-w", str(out), "-c", "10", "--backend", backend)
        wait_capturing(pair, proc)
        pair.send_from_peer(frames(pair, 15))
        _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "10 packets captured, " in stderr
    assert "dropped by kernel" in stderr and "dropped by queue" in stderr
    assert tcpdump_count(out) == 10


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_capture_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "s.pcap"
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-w", str(out), "-Q", "in")
        wait_capturing(pair, proc)
        pair.send_from_peer(frames(pair, 7))
        time.sleep(0.3)
        proc.send_signal(signum)
        _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(
        "7 packets captured, 7 received by filter, 0 dropped by kernel, 0 dropped by queue"
    ), stderr
    assert tcpdump_count(out) == 7


@pytest.mark.parametrize("backend", ["afpacket", "libpcap"])
def test_capture_prints_text_without_w(backend: str) -> None:
    """The lines a live capture prints (from the ring's records or libpcap's packets, in C
    where the speed-ups are built) are the Python formatter's for the frames sent, plain ones
    and annotated ones alike."""
    with veth_pair() as pair:
        sent = frames(pair, 3, dport=9001) + [
            ether(
                ipv4(pair.peer_ip, "10.200.0.1", payload),
                src=pair.peer_mac,
                dst=pair.host_mac,
            )
            for payload in (
                udp(40000, 53, bytes.fromhex("1f4301000001000000000000") + b"\1a\4test\0\0\1\0\1"),
                tcp(40000, 80, b"GET / HTTP/1.1\r\n", flags="PA"),
                tcp(40001, 443, flags="S"),
                icmp(8, 0, 7, 1, b"ping"),
            )
        ]
        proc = capsvc("capture", "-i", pair.host, "-c", str(len(sent)), "--backend", backend, "ip")
        wait_capturing(pair, proc)
        pair.send_from_peer(sent)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    fmt = TextFormatter(LinkType.ETHERNET)
    way = Direction.INBOUND if backend == "afpacket" else Direction.UNKNOWN  # libpcap: no -Q
    expected = [fmt.format(0, f, len(f), way)[16:] for f in sent]
    lines = stdout.splitlines()
    assert [line[16:] for line in lines] == expected
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{6} $", line[:16]) for line in lines)
    assert "9001 length 4" in lines[0] and "A? a.test." in lines[3] and ": GET /" in lines[4]


def numbered(path: Path) -> list[tuple[float, int]]:
    """(time, number) of every packet tcpdump reads in ``path`` (``frames``' numbers)."""
    out = subprocess.run(
        ["tcpdump", "-nn", "-tt", "-x", "-r", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    packets: list[tuple[float, str]] = []
    for line in out.splitlines():
        if line.startswith("\t"):
            ts, hexed = packets[-1]
            packets[-1] = (ts, hexed + line.split(":", 1)[1].replace(" ", ""))
        else:
            packets.append((float(line.split()[0]), ""))
    # -x starts at the IP header: 20 bytes of IPv4, 8 of UDP, then b"cli" and the number.
    return [(ts, int(hexed[62:64], 16)) for ts, hexed in packets]


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
def test_capture_rotates_by_size(tmp_path: Path) -> None:
    """Every file is read back: 62-byte records pass 1000 bytes after the 16th."""
    base = tmp_path / "r.pcap"
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-w", str(base), "-C", "0.001", "-c", "40", "udp")
        wait_capturing(pair, proc)
        pair.send_from_peer(frames(pair, 40))
        _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.pcap", "r.pcap1", "r.pcap2"]
    got = [[n for _ts, n in numbered(tmp_path / name)] for name in names]
    assert got == [list(range(16)), list(range(16, 32)), list(range(32, 40))]


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
def test_capture_size_ring_keeps_the_newest_files(tmp_path: Path) -> None:
    """``-C 0.001 -W 3``: three files, reused in turn, each truncated when reused.

    Mutations guarded: a ring of max_files+1 files (``r.pcap3`` appears), ring files reopened
    without O_TRUNC (``r.pcap0``, reused last with 4 packets, would keep 12 old ones)."""
    base = tmp_path / "r.pcap"
    with veth_pair() as pair:
        proc = capsvc(
            "capture",
            "-i",
            pair.host,
            "-w",
            str(base),
            "-C",
            "0.001",
            "-W",
            "3",
            "-c",
            "100",
            "udp",
        )
        wait_capturing(pair, proc)
        pair.send_from_peer(frames(pair, 100))
        _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.pcap0", "r.pcap1", "r.pcap2"]
    got = [[n for _ts, n in numbered(tmp_path / name)] for name in names]
    # 16 a file: 0 1 2 0 1 2 0; the last, r.pcap0, holds the last 4.
    assert got == [list(range(96, 100)), list(range(64, 80)), list(range(80, 96))]


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")
def test_capture_rotates_by_time_and_stops_after_w_files(tmp_path: Path) -> None:
    """Each file holds the packets of its own second (named by ``%s``), the two files hold
    the first packets sent without a gap, and nothing is written after them.

    The first file is opened when the capture starts, as tcpdump's is: it is empty only when the
    first packet came after its second had passed (a loaded machine), never otherwise."""
    template = str(tmp_path / "g-%s.pcap")
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-w", template, "-G", "1", "-W", "2", "udp")
        wait_capturing(pair, proc)
        pair.send_from_peer(frames(pair, 30), gap=0.1)  # 3 seconds of traffic
        _stdout, stderr = proc.communicate(timeout=20)  # ends by itself after 2 files
    assert proc.returncode == 0, stderr
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2 and all(re.fullmatch(r"g-\d+\.pcap", f.name) for f in files)
    stamps = [int(f.name[2:-5]) for f in files]
    assert stamps[1] - stamps[0] >= 1
    got = [numbered(f) for f in files]
    assert got[1], "traffic runs on through the second file's second"
    if not got[0]:
        assert got[1][0][0] >= stamps[0] + 1, ("an empty first file beside traffic", got)
    for stamp, packets in zip(stamps, got, strict=True):
        assert all(stamp <= ts < stamp + 1 for ts, _n in packets), (stamp, packets)
    numbers = [n for packets in got for _ts, n in packets]
    assert numbers == list(range(len(numbers))) and 0 < len(numbers) < 30


def test_no_such_interface_exits_1_with_one_line() -> None:
    need_root()
    proc = capsvc("capture", "-i", "cstmissing9", "-c", "1")
    _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert stderr.strip() == "capsvc: no such interface: cstmissing9"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-G", "10"], "-G, -C and -W need -w FILE"),
        (["-w", "-", "-C", "1"], "cannot rotate standard output"),
        (["-w", "x.pcap", "-W", "3"], "-W needs -G or -C"),
        (["--sampling", "4"], "--sampling needs --backend pfring"),
        (["--cluster", "x:hash"], "numeric ID"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = capsvc("capture", "-i", "lo", *args)
    _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


def test_bad_filter_exits_2_with_the_caret_message() -> None:
    need_root()
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-c", "1", "udp", "port", "and", "(")
        _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert stderr.startswith("capsvc: ") and "Traceback" not in stderr
    assert lines[-2].strip() == "udp port and (" and lines[-1].strip() == "^"


def _listed(stdout: str, name: str) -> tuple[int, set[str], str]:
    """(index, flags, the rest) of interface ``name``'s line of ``capsvc interfaces``."""
    for line in stdout.splitlines():
        m = re.fullmatch(r"(\d+)\.(\S+) \[([^]]*)\] (.*)", line)
        if m and m[2] == name:
            return int(m[1]), set(filter(None, m[3].split(", "))), m[4]
    raise AssertionError(f"{name} not listed in {stdout!r}")


def test_interfaces_lists_index_flags_and_addresses() -> None:
    """Each interface with its index, flags and addresses. The veth is this test's own, so its
    flags are exact (promiscuous on purpose); lo is shared with every capture running on the
    machine, and any of them may have made it promiscuous meanwhile."""
    with veth_pair() as pair:
        subprocess.run(["ip", "link", "set", pair.host, "promisc", "on"], check=True)
        proc = capsvc("interfaces")
        stdout, stderr = proc.communicate(timeout=20)
        index = pair.host_index
    assert proc.returncode == 0, stderr
    assert _listed(stdout, pair.host)[:2] == (index, {"Up", "Running", "Promisc"})
    lo_index, lo_flags, lo_rest = _listed(stdout, "lo")
    assert lo_index == 1
    assert lo_flags - {"Promisc"} == {"Up", "Running", "Loopback"}
    assert lo_rest.startswith("ETHERNET ") and "127.0.0.1/8" in lo_rest.split()
    assert stdout.splitlines()[-1].startswith("0.any ")
