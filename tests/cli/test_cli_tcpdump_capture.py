"""``capsvc capture`` with tcpdump's flags, each compared with tcpdump on the same veth pair."""

from __future__ import annotations

import os
import pwd
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import pytest
from _helpers import ether, ipv4, udp
from _netns import PREFIX, VethPair, ip, need_root, veth_pair

from capsvc import Direction, LinkType, Packet
from capsvc.sinks import PcapWriter
from capsvc.sinks._build import PacketBuffered

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump"),
]

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
IFF_PROMISC = 0x100


def capsvc(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "capsvc.cli", *args],
        stdout=kwargs.pop("stdout", subprocess.PIPE),
        stderr=subprocess.PIPE,
        text=kwargs.pop("text", True),
        env=ENV,
        cwd=ROOT,
        **kwargs,
    )


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


def ours(*args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "capsvc.cli", *args)


def frames(pair: VethPair, count: int) -> list[bytes]:
    return [
        ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, 9000, b"tcpdump" + bytes([i]))),
            src=pair.peer_mac,
            dst=pair.host_mac,
        )
        for i in range(count)
    ]


def wait_promisc(
    pair: VethPair, proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 10.0
) -> None:
    flags = Path(f"/sys/class/net/{pair.host}/flags")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(flags.read_text(), 16) & IFF_PROMISC:
            time.sleep(0.3)
            return
        if proc.poll() is not None:
            raise AssertionError(f"capture exited early: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("capture did not start")


def tcpdump_lines(path: Path) -> list[str]:
    return run("tcpdump", "-nr", str(path)).stdout.splitlines()


def ring_mapping(pid: int) -> int:
    """Bytes of the packet socket's ring mapped into process ``pid``."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("socket:["):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            return end - start
    raise AssertionError(f"no socket mapping in process {pid}")


# -- -D, -L, -i N --------------------------------------------------------------------------------


def test_D_lists_interfaces_as_tcpdump_does() -> None:
    down = f"{PREFIX}{os.getpid():06x}d"  # a veth left down: "[none, Disconnected]"
    with veth_pair() as pair:
        ip("link", "add", down, "type", "veth", "peer", "name", down + "p")
        try:
            for _attempt in range(5):  # other test runs add and remove interfaces meanwhile
                theirs = run("tcpdump", "-D").stdout.splitlines()
                mine = ours("capture", "-D")
                libpcap = ours("capture", "--backend", "libpcap", "-D")
                if run("tcpdump", "-D").stdout.splitlines() == theirs:
                    break
        finally:
            ip("link", "del", down, check=False)
    assert mine.returncode == 0, mine.stderr
    assert libpcap.stdout.splitlines() == theirs  # libpcap's own list, byte for byte
    # capsvc's own list: the network interfaces and "any", in tcpdump's order and words
    # (interfaces other test runs add or remove meanwhile are left out of the comparison).
    lines = mine.stdout.splitlines()
    assert [line.split(".", 1)[0] for line in lines] == [str(n) for n in range(1, len(lines) + 1)]

    def by_name(listing: list[str]) -> dict[str, str]:
        return {line.split(".", 1)[1].split()[0]: line.split(".", 1)[1] for line in listing}

    ours_, tcpdumps = by_name(lines), by_name(theirs)
    common = [name for name in tcpdumps if name in ours_]
    assert {pair.host, "any", "lo", down} <= set(common)
    assert ours_[down] == f"{down} [none, Disconnected]"
    assert [name for name in ours_ if name in tcpdumps] == common  # the same order
    assert [ours_[name] for name in common] == [tcpdumps[name] for name in common]


def test_i_takes_a_number_of_the_D_list(tmp_path: Path) -> None:
    out = tmp_path / "n.pcap"
    with veth_pair() as pair:
        listing = ours("capture", "-D").stdout.splitlines()
        number = next(line.split(".")[0] for line in listing if f".{pair.host} " in line)
        proc = capsvc("capture", "-i", number, "-c", "2", "-w", str(out))
        wait_promisc(pair, proc)
        pair.send_from_peer(frames(pair, 2))
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert len(tcpdump_lines(out)) == 2


def test_L_lists_link_types_as_tcpdump_does() -> None:
    with veth_pair() as pair:
        theirs = run("tcpdump", "-L", "-i", pair.host)
        libpcap = ours("capture", "--backend", "libpcap", "-L", "-i", pair.host)
        mine = ours("capture", "-L", "-i", pair.host)
        anyone = ours("capture", "-L", "-i", "any")
    assert theirs.returncode == libpcap.returncode == mine.returncode == 0
    assert (libpcap.stdout, libpcap.stderr) == (theirs.stdout, theirs.stderr)
    assert mine.stderr.splitlines() == [
        f"Data link types for {pair.host} (use option -y to set):",
        "  EN10MB (Ethernet)",
        "  LINUX_SLL2 (Linux cooked v2)",
    ]
    assert theirs.stderr.splitlines()[:2] == mine.stderr.splitlines()[:2]
    assert anyone.stderr.splitlines()[1:] == ["  LINUX_SLL2 (Linux cooked v2)"]


# -- -y ------------------------------------------------------------------------------------------


def test_y_captures_as_the_link_type_asked_for(tmp_path: Path) -> None:
    cooked, docsis = tmp_path / "sll2.pcap", tmp_path / "docsis.pcap"
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-y", "LINUX_SLL2", "-c", "3", "-w", str(cooked))
        wait_promisc(pair, proc)
        pair.send_from_peer(frames(pair, 3))
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        lib = capsvc(
            "capture",
            "--backend",
            "libpcap",
            "-i",
            pair.host,
            "-y",
            "DOCSIS",
            "-c",
            "1",
            "-w",
            str(docsis),
        )
        wait_promisc(pair, lib)
        pair.send_from_peer(frames(pair, 1))
        _out, err = lib.communicate(timeout=20)
        assert lib.returncode == 0, err
        refused = ours("capture", "-i", pair.host, "-y", "DOCSIS", "-c", "1")
        read = run("tcpdump", "-nr", str(cooked))  # names the interface while it exists
    assert "link-type LINUX_SLL2" in read.stderr
    lines = read.stdout.splitlines()
    assert len(lines) == 3 and all(
        f" {pair.host} In  IP 10.200.0.2.40000 > " in line for line in lines
    )
    assert "link-type DOCSIS" in run("tcpdump", "-nr", str(docsis)).stderr
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"capsvc: {pair.host} cannot be captured as DOCSIS with afpacket "
        "(it offers EN10MB, LINUX_SLL2)"
    )


# -- -B ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kib", [1000, 4096])
@pytest.mark.parametrize("backend", ["afpacket", "libpcap"])
def test_B_sizes_the_ring_as_tcpdump_does(kib: int, backend: str) -> None:
    sizes = {}
    with veth_pair() as pair:
        for who, cmd in (
            ("tcpdump", ["tcpdump", "-i", pair.host, "-B", str(kib), "-w", os.devnull]),
            (
                "capsvc",
                [
                    sys.executable,
                    "-m",
                    "capsvc.cli",
                    "capture",
                    "--backend",
                    backend,
                    "-i",
                    pair.host,
                    "-B",
                    str(kib),
                    "-w",
                    os.devnull,
                ],
            ),
        ):
            proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
            try:
                wait_promisc(pair, proc)
                sizes[who] = ring_mapping(proc.pid)
            finally:
                proc.terminate()
                proc.communicate(timeout=20)
    assert sizes["capsvc"] == sizes["tcpdump"] == -(-kib * 1024 // 262144) * 262144


def test_B_is_refused_for_pfring() -> None:
    done = ours("capture", "-i", "lo", "--backend", "pfring", "-B", "1024", "-c", "1")
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr
    if "not available" not in done.stderr:
        assert done.returncode == 2 and "takes no buffer size" in done.stderr


# -- -d, -dd, -ddd -------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["-d", "-dd", "-ddd"])
@pytest.mark.parametrize(
    ("expr", "same_program"),
    [("udp", True), ("vlan", True), ("ip host 10.200.0.2", True), ("arp", True),
     ("udp port 53", False)],
)  # fmt: skip
def test_d_prints_tcpdumps_program_for_the_interface(
    level: str, expr: str, same_program: bool
) -> None:
    """With --backend libpcap the program is libpcap's: tcpdump's output byte for byte. capsvc's
    own compiler orders some tests differently ("udp port 53" checks IPv4 first), so its
    output is compared where the programs are the same."""
    with veth_pair() as pair:
        theirs = run("tcpdump", level, "-i", pair.host, *expr.split())
        libpcap = ours("capture", "--backend", "libpcap", level, "-i", pair.host, *expr.split())
        mine = ours("capture", level, "-i", pair.host, *expr.split())
    assert theirs.returncode == libpcap.returncode == mine.returncode == 0, mine.stderr
    assert libpcap.stdout == theirs.stdout
    if same_program:
        assert mine.stdout == theirs.stdout
    else:
        assert mine.stdout != theirs.stdout and len(mine.stdout.splitlines()) > 5


# -- -U ------------------------------------------------------------------------------------------


def test_U_writes_each_packet_before_the_capture_ends() -> None:
    """With -U a reader of ``-w -`` has every packet as soon as it was captured."""
    with veth_pair() as pair:
        proc = cast(
            "subprocess.Popen[bytes]",
            capsvc("capture", "-i", pair.host, "-U", "-w", "-", "-Q", "in", text=False),
        )
        wait_promisc(pair, proc)
        assert proc.stdout is not None
        header = proc.stdout.read(24)
        assert header[:4] == struct.pack("<I", 0xA1B23C4D)
        for i, frame in enumerate(frames(pair, 4)):
            pair.send_from_peer([frame])
            record = proc.stdout.read(16)
            length = struct.unpack("<IIII", record)[2]
            assert proc.stdout.read(length) == frame, i  # before the next is even sent
        assert proc.poll() is None  # still capturing
        proc.terminate()
        proc.communicate(timeout=20)


def test_U_flushes_after_every_packet_of_a_batch(tmp_path: Path) -> None:
    """The unit under -U: a batch is written one packet at a time, each flushed."""
    events: list[str] = []

    class Recorder:
        def write(self, data: bytes) -> int:
            events.append(f"write {len(data)}")
            return len(data)

        def flush(self) -> None:
            events.append("flush")

    sink = PacketBuffered(PcapWriter(Recorder(), 0, LinkType.ETHERNET))  # type: ignore[arg-type]
    frame = b"\0" * 60
    sink.write_batch([Packet(i, frame, 60, Direction.UNKNOWN, 0) for i in range(3)])
    assert events == ["write 100", "flush", "write 76", "flush", "write 76", "flush"]  # header+1


# -- -G -W: every counted packet is in a file ----------------------------------------------------


def test_G_W_counts_only_packets_that_are_in_the_files(tmp_path: Path) -> None:
    template = str(tmp_path / "g-%s.pcap")
    with veth_pair() as pair:
        proc = capsvc("capture", "-i", pair.host, "-Q", "in", "-w", template, "-G", "1", "-W", "3")
        wait_promisc(pair, proc)
        pair.send_from_peer(frames(pair, 50), gap=0.1)  # 5 s: more than the three files take
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = err.strip().splitlines()
    assert lines[-2] == "Maximum file limit reached: 3"  # tcpdump's words
    captured = int(lines[-1].split()[0])
    files = sorted(tmp_path.iterdir())
    assert len(files) == 3
    in_files = sum(len(tcpdump_lines(f)) for f in files)
    assert captured == in_files > 0
    received = int(lines[-1].split(", ")[1].split()[0])
    assert received > captured  # the packet that would have opened a fourth file came


# -- -Z ------------------------------------------------------------------------------------------


def test_Z_drops_root_and_creates_the_file_as_that_user(tmp_path: Path) -> None:
    need_root()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    where = Path(tempfile.mkdtemp(prefix="capsvc-Z-", dir="/tmp"))  # reachable by nobody
    where.chmod(0o777)
    mine, theirs = where / "ours.pcap", where / "theirs.pcap"
    with veth_pair() as pair:
        ref = subprocess.Popen(
            ["tcpdump", "-i", pair.host, "-Z", "nobody", "-c", "2", "-w", str(theirs)],
            stderr=subprocess.PIPE,
            text=True,
        )
        proc = capsvc("capture", "-i", pair.host, "-Z", "nobody", "-c", "2", "-w", str(mine))
        wait_promisc(pair, proc)
        # The drop comes after the source opens: wait for it (a loaded machine is slow).
        want = [str(nobody.pw_uid)] * 4
        deadline = time.monotonic() + 15
        while True:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            now = next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1:]
            if now == want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        pair.send_from_peer(frames(pair, 2))
        _out, err = proc.communicate(timeout=20)
        ref.communicate(timeout=20)
    assert proc.returncode == 0, err
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == [str(nobody.pw_uid)] * 4
    try:
        assert mine.stat().st_uid == theirs.stat().st_uid == nobody.pw_uid
        assert len(tcpdump_lines(mine)) == len(tcpdump_lines(theirs)) == 2
    finally:
        shutil.rmtree(where)
    bad = ours("capture", "-i", "lo", "-Z", "no-such-user-here", "-c", "1")
    assert bad.returncode == 2 and "-Z: no user named 'no-such-user-here'" in bad.stderr


# -- --count -------------------------------------------------------------------------------------


def test_count_prints_no_packets_and_tcpdumps_summary(tmp_path: Path) -> None:
    with veth_pair() as pair:
        ref = subprocess.Popen(
            ["tcpdump", "-i", pair.host, "--count", "-c", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        proc = capsvc("capture", "-i", pair.host, "--count", "-c", "3")
        wait_promisc(pair, proc)
        time.sleep(0.5)
        pair.send_from_peer(frames(pair, 3))
        out, err = proc.communicate(timeout=20)
        ref_out, ref_err = ref.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == ref_out == ""
    assert "3 packets captured" in ref_err
    assert err.strip().splitlines()[-1].startswith("3 packets captured, 3 received by filter")
