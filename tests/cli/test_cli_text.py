"""The text flags of ``capsvc read`` and ``capsvc capture`` against tcpdump's on the same
packets: ``--format``/``-T``, ``-e``, ``-x``/``-xx``, ``-X``/``-XX``, ``-t`` styles, ``-q``,
``-S``, ``-#``, ``-v`` counts, ``-A``; ``-T json``; and ``-i any`` naming interfaces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "format"))
from _agreement import tcpdump_blocks
from _helpers import ether, ipv4, udp
from _netns import veth_pair
from _traffic import ethernet_file

ROOT = Path(__file__).resolve().parents[2]
CAPSVC = [sys.executable, "-m", "capsvc.cli"]
ENV = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def everyday(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump (apt-get install tcpdump)")
    return ethernet_file(tmp_path_factory.mktemp("cli-text"))


@pytest.mark.parametrize(
    "flags",
    [
        ["-T", "tcpdump"],
        ["--format", "tcpdump"],
        ["-e"],
        ["-x"],
        ["-xx"],
        ["-X"],
        ["-XX"],
        ["-t"],
        ["-tt"],
        ["-ttt"],
        ["-tttt"],
        ["-ttttt"],
        ["-q"],
        ["-S"],
        ["-#"],
        ["-T", "tcpdump", "-v"],
        ["-T", "tcpdump", "-vv"],
        ["-T", "tcpdump", "-A"],
        ["-evX"],
        ["-eqS"],
    ],
    ids=" ".join,
)
def test_read_prints_what_tcpdump_prints(everyday: Path, flags: list[str]) -> None:
    theirs = run("tcpdump", "-n", *[f for f in flags if f not in ("-T", "--format", "tcpdump")],
                 "-r", str(everyday))  # fmt: skip
    ours = run(*CAPSVC, "read", "-r", str(everyday), *flags)
    assert ours.returncode == 0, ours.stderr
    assert theirs.stdout.count("\n") > 50
    assert ours.stdout == theirs.stdout


def test_tcpdump_filter_words_still_work_with_text_flags(everyday: Path) -> None:
    theirs = run("tcpdump", "-n", "-tt", "-r", str(everyday), "udp", "port", "53")
    ours = run(*CAPSVC, "read", "-tt", "-r", str(everyday), "udp", "port", "53")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout and theirs.stdout.count("\n") == 19


def test_default_format_stays_capsvc_line(everyday: Path) -> None:
    ours = run(*CAPSVC, "read", "-r", str(everyday), "-c", "1")
    assert ours.stdout.startswith("12:00:00.000000 [---  TCP] 10.0.0.1:40000 > 10.0.0.2:80 [S]")


def test_json_gives_one_object_per_packet(everyday: Path) -> None:
    ours = run(*CAPSVC, "read", "-r", str(everyday), "-T", "json")
    assert ours.returncode == 0, ours.stderr
    records = [json.loads(line) for line in ours.stdout.splitlines()]
    theirs = tcpdump_blocks(everyday)
    assert len(records) == len(theirs)
    first = records[0]
    assert first["ts"] == "2024-05-01T12:00:00.000000000Z"
    assert first["ts_ns"] == 1714564800 * 10**9
    assert first["linktype"] == "ETHERNET" and first["len"] == first["caplen"] == 74
    assert first["layers"]["ip"]["src"] == "10.0.0.1"
    assert first["layers"]["tcp"]["flags"] == ["SYN"]
    assert [r["summary"] for r in records] == [line.split(" ", 1)[1] for line in theirs]
    dns = next(r for r in records if r["layers"].get("dns", {}).get("answers"))
    assert dns["layers"]["dns"]["answers"][0] == {
        "name": "example.com.",
        "type": "A",
        "ttl": 300,
        "data": "93.184.216.34",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "--format", "netbird"], "-e: only the tcpdump format has them"),
        (["-x", "-T", "json"], "-x: only the tcpdump format has them"),
        (["-tttttt"], "-t is given at most 5 times"),
        (["--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_usage_errors_exit_2(everyday: Path, args: list[str], message: str) -> None:
    r = run(*CAPSVC, "read", "-r", str(everyday), *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_help_states_the_default_and_no_name_resolution() -> None:
    r = run(*CAPSVC, "read", "--help")
    text = " ".join(r.stdout.split())
    assert "capsvc's own layout by default" in text
    assert "never resolves names" in text
    assert "-ttttt" in text and "-XX" in text


@pytest.mark.netns
def test_capture_any_names_the_interface_in_both_formats() -> None:
    with veth_pair() as pair:
        frames = [
            ether(ipv4(pair.peer_ip, "10.200.0.1", udp(40000, 9321, b"any" + bytes([i]))),
                  src=pair.peer_mac, dst=pair.host_mac)
            for i in range(3)
        ]  # fmt: skip
        words = ["udp", "port", "9321"]
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=ENV, cwd=ROOT)
            for cmd in (
                ["tcpdump", "-n", "-l", "-i", "any", "-c", "3", *words],
                [*CAPSVC, "capture", "-i", "any", "-c", "3", "-T", "tcpdump", *words],
                [*CAPSVC, "capture", "-i", "any", "-c", "3", *words],
            )
        ]  # fmt: skip
        # Each stops after 3 packets; send until all have (they start at different times,
        # and every frame gives the same line but for its time stamp).
        deadline = time.monotonic() + 40
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            pair.send_from_peer(frames[:1])
            time.sleep(0.25)
        outs = [p.communicate(timeout=30)[0].splitlines() for p in procs]
    tcpdump, ours, netbird = outs
    assert len(tcpdump) == len(ours) == len(netbird) == 3, outs
    strip = [line.split(" ", 1)[1] for line in tcpdump]
    assert [line.split(" ", 1)[1] for line in ours] == strip
    assert strip[0].startswith(f"{pair.host:<5} In  IP {pair.peer_ip.split('/')[0]}.40000 > ")
    assert all(line.split(" ")[1] == pair.host for line in netbird)
