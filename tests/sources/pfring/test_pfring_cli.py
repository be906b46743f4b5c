"""``capsvc capture --backend pfring`` as a subprocess, on the real libpfring's ``pcap:`` module:
capture files to their end (tcpdump judges the output), errors, and a live loopback capture
stopped by a signal."""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _netns import veth_pair

from capsvc.sources.capfile import read_capture

ROOT = Path(__file__).resolve().parents[3]
NO_STATS = "kernel statistics are not supported by this PF_RING module (pcap)"

needs_tcpdump = pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump")


def env(library: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CAPSVC_PFRING_LIBRARY": str(library)}


def capture(library: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capsvc.cli", "capture", "--backend", "pfring", *args],
        capture_output=True,
        text=True,
        env=env(library),
        cwd=ROOT,
        timeout=60,
    )


def tcpdump(path: Path, *args: str) -> list[str]:
    out = subprocess.run(
        ["tcpdump", "-r", str(path), *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@needs_tcpdump
@pytest.mark.parametrize(
    "name",
    [
        "DECnet_Phone.pcap",  # Ethernet
        "resp_1_benchmark.pcap",  # Linux cooked
        "babel_rtt.pcap",  # raw IP
        "ipv6_mobility_1.pcap",  # IPv6
        "ikev2four.pcap",  # BSD loopback (NULL)
        "bgp-role.pcapng",  # pcapng, Linux cooked
        "empty.pcap",  # no packet at all: the end comes first
    ],
)
def test_a_file_captured_reads_as_the_file(
    real_library: Path, corpus: Path, tmp_path: Path, name: str
) -> None:
    """pcap:FILE to -w: the file ends the capture with status 0 (mutation: take the module's -2
    at the end of the file as an error and the exit status is 1, "capture failed"), and tcpdump
    prints the output exactly as it prints the input, every byte in hex."""
    source, out = corpus / name, tmp_path / "out.pcap"
    done = capture(real_library, "-i", f"pcap:{source}", "-w", str(out))
    assert done.returncode == 0, done.stderr
    want = tcpdump(source, "-nn", "-tt", "-v", "-xx")
    assert tcpdump(out, "-nn", "-tt", "-v", "-xx") == want
    lines = done.stderr.splitlines()
    assert lines[-1] == f"{len(tcpdump(source))} packets captured, kernel statistics not " + (
        "available, 0 dropped by queue"
    )
    assert sum(NO_STATS in line for line in lines) == 1 and "failed" not in done.stderr


@needs_tcpdump
def test_a_count_ends_a_file_capture_cleanly(
    real_library: Path, corpus: Path, tmp_path: Path
) -> None:
    """``-c 10`` on a file: the limit and the end of the file may race; either way status 0."""
    out = tmp_path / "ten.pcap"
    for _ in range(3):
        done = capture(real_library, "-i", f"pcap:{corpus / 'DECnet_Phone.pcap'}", "-c", "10")
        assert done.returncode == 0, done.stderr
        assert "10 packets captured, kernel statistics not available" in done.stderr
    done = capture(
        real_library, "-i", f"pcap:{corpus / 'DECnet_Phone.pcap'}", "-c", "10", "-w", str(out)
    )
    assert done.returncode == 0 and len(tcpdump(out)) == 10


def test_sampling_and_snaplen_on_a_file(real_library: Path, corpus: Path, tmp_path: Path) -> None:
    """``--sampling 3 -s 40``: the pcap: module ignores both; capsvc keeps one in three, cut."""
    source, out = corpus / "DECnet_Phone.pcap", tmp_path / "sampled.pcap"
    done = capture(
        real_library, "-i", f"pcap:{source}", "--sampling", "3", "-s", "40", "-w", str(out)
    )
    assert done.returncode == 0, done.stderr
    original = [p for batch in read_capture(source) for p in batch]
    kept = [p for batch in read_capture(out) for p in batch]
    assert len(kept) == math.ceil(len(original) / 3)
    assert [p.data for p in kept] == [p.data[:40] for p in original[::3]]
    assert [p.wire_len for p in kept] == [p.wire_len for p in original[::3]]


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["-Q", "in"], "choosing a direction is not supported by this PF_RING module (pcap)", 1),
        (["--cluster", "3"], "joining a cluster is not supported by this PF_RING module (pcap)", 1),
        (["port", "port"], "PF_RING cannot compile this filter", 2),
    ],
)
def test_what_the_module_cannot_do_is_one_line(
    real_library: Path, corpus: Path, tmp_path: Path, args: list[str], message: str, status: int
) -> None:
    out = tmp_path / "none.pcap"
    done = capture(
        real_library, "-i", f"pcap:{corpus / 'DECnet_Phone.pcap'}", "-w", str(out), *args
    )
    assert done.returncode == status, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_missing_file_is_named(real_library: Path, tmp_path: Path) -> None:
    done = capture(real_library, "-i", f"pcap:{tmp_path}/missing.pcap", "-w", str(tmp_path / "o"))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"capsvc: pfring_open failed: GENERIC (-1): pcap:{tmp_path}/missing.pcap: "
        "no such capture file"
    )


SENDER = """
import socket, sys, time
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", 9999))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(60):
    out.sendto(b"tick %d" % i, ("127.0.0.1", 9999))
    time.sleep(1)
"""


@needs_tcpdump
@pytest.mark.netns
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_loopback_capture_stops_within_a_second_of_a_signal(
    real_library: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    """pcap:lo with one packet a second: the capture ends within a second of the signal, with
    status 0 and the packets it took in the file (mutation: drop the ``pfring_poll(ring, 0)``
    guard in ``_read_batch`` and the worker sits in pcap_next_ex between packets)."""
    out = tmp_path / "lo.pcap"
    with veth_pair() as pair:  # its namespace has a loopback of its own, quiet but for us
        sender = pair.popen(sys.executable, "-c", SENDER)
        proc = pair.popen(
            sys.executable,
            "-m",
            "capsvc.cli",
            "capture",
            "--backend",
            "pfring",
            "-i",
            "pcap:lo",
            "-w",
            str(out),
            "udp",
            stderr=subprocess.PIPE,
            env=env(real_library),
            cwd=ROOT,
        )
        try:
            assert proc.stderr is not None
            ready, _, _ = select.select([proc.stderr], [], [], 20)
            assert ready, "the capture did not start"
            first = proc.stderr.readline().decode()
            assert NO_STATS in first, first  # said once the ring is open
            time.sleep(2.5)
            started = time.monotonic()
            proc.send_signal(signum)
            proc.wait(timeout=10)
            took = time.monotonic() - started
            rest = proc.stderr.read().decode()
        finally:
            for child in (proc, sender):
                if child.poll() is None:
                    child.kill()
                    child.wait()
    assert proc.returncode == 0, rest
    assert took < 1.0, f"the capture took {took:.2f} s to stop"
    captured = int(rest.splitlines()[-1].split()[0])
    assert rest.splitlines()[-1].endswith("kernel statistics not available, 0 dropped by queue")
    assert NO_STATS not in rest  # said once, when the ring opened
    assert captured >= 1 and len(tcpdump(out)) == captured
