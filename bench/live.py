"""Live capture benchmark: ``capsvc capture`` against ``tcpdump`` on the same veth load.

Builds a veth pair whose two ends live in two private network namespaces (nothing can leave
them), sends bursts of 64-byte UDP frames with trafgen (netsniff-ng) at its top rate from one
end, and captures on the other end, one tool at a time, on the same traffic:

- At the defaults users run, no ring or buffer option to either tool: ``tcpdump -w F`` against
  ``capsvc capture -w F`` (AF_PACKET) and ``capsvc capture --backend libpcap -w F``, and the text
  modes, ``tcpdump > /dev/null`` against ``capsvc capture > /dev/null`` (both backends); bursts of
  1M frames and of 3M (longer than any default ring holds).
- With a 64 MiB ring for both (tcpdump ``-B 65536``; capsvc through the same source and Session
  the CLI builds, with ``ring_size`` or ``buffer_size`` set, as the CLI has no such option):
  the figures earlier versions of this bench reported.
- capsvc's CPU with a kernel filter that keeps 1% of the frames, at two block timeouts.

Captured counts come from each tool's own closing summary; for pcap outputs the file is checked to
hold that many records. CPU is the capture process's (all its threads: the sum of
/proc/PID/task/*/schedstat, exact, not tick-sampled) from ready to the end of the burst, per
million frames sent, for both tools alike.

Run as root: ``python3 bench/live.py`` (about 15 minutes), ``--quick``, or ``--text-only`` (the
text rows alone).
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREFIX = os.environ.get("CAPSVC_TEST_NETNS_PREFIX", "cbn")[:3]  # names of this bench's netns
FILTER = "udp"  # every frame sent is UDP: the kernel filter runs and keeps them all
FILTER_1PCT = "udp dst port 4096"  # destination ports 4096..4195 cycle, so 1 in 100 matches
BIG_RING = 64 * 2**20
#: AfPacketSource's default block timeout, and the shorter one of earlier versions (libpcap's
#: TPACKET_V3 blocks wait tcpdump's 1000 ms read timeout).
BLOCK_TIMEOUTS_MS = (50, 8)
RECORD = 16 + 64  # a pcap record of one 64-byte frame
CAPSVC_CLI = [sys.executable, "-m", "capsvc.cli", "capture"]


# -- the capsvc capture process with a ring size (the CLI has no option for it) ---------------


def worker(
    backend: str, interface: str, output: str, expression: str, ring: int, block_timeout_ms: int
) -> None:
    """What ``capsvc capture -p -w OUTPUT`` does, with a ring or buffer size and block timeout.

    Prints "ready" once capturing, and the CLI's closing summary line when stopped.
    """
    sys.path.insert(0, str(ROOT))
    from capsvc import Session
    from capsvc._run import run_async, run_session
    from capsvc.cli._capture import summary_line
    from capsvc.sources import open_live_source

    options: dict[str, Any] = {}
    if backend == "afpacket":
        options["userspace_fallback"] = True
        if ring:
            options["ring_size"] = ring
        if block_timeout_ms:
            options["block_timeout_ms"] = block_timeout_ms
    elif ring:
        options["buffer_size"] = ring

    async def main() -> str:
        source = open_live_source(
            backend, interface, promisc=False, filter=expression or None, **options
        )
        session = Session(source=source, output=output)
        asyncio.get_running_loop().call_later(0.2, lambda: print("ready", flush=True))
        return summary_line(await run_session(session))

    print(run_async(main), file=sys.stderr, flush=True)


# -- the test network ---------------------------------------------------------------------------


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


@dataclass
class Net:
    cap_ns: str
    send_ns: str
    cap_if: str
    send_if: str
    cap_mac: str
    send_mac: str

    def rx_packets(self) -> int:
        out = run("ip", "-n", self.cap_ns, "-s", "-j", "link", "show", "dev", self.cap_if).stdout
        return int(json.loads(out)[0]["stats64"]["rx"]["packets"])


def build_net() -> Net:
    tag = secrets.token_hex(3)
    cap_ns, send_ns = f"{PREFIX}-{tag}-c", f"{PREFIX}-{tag}-s"
    cap_if, send_if = f"{PREFIX}{tag}c", f"{PREFIX}{tag}s"
    run("ip", "netns", "add", cap_ns)
    run("ip", "netns", "add", send_ns)
    run(
        "ip",
        "link",
        "add",
        cap_if,
        "netns",
        cap_ns,
        "type",
        "veth",
        "peer",
        "name",
        send_if,
        "netns",
        send_ns,
    )
    for ns, name in ((cap_ns, cap_if), (send_ns, send_if)):
        run(
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            check=False,
        )
        run("ip", "-n", ns, "link", "set", name, "up")
    mac = {}
    for ns, name in ((cap_ns, cap_if), (send_ns, send_if)):
        mac[name] = json.loads(run("ip", "-n", ns, "-j", "link", "show", name).stdout)[0]["address"]
    time.sleep(0.5)
    return Net(cap_ns, send_ns, cap_if, send_if, mac[cap_if], mac[send_if])


def remove_net(net: Net) -> None:
    run("ip", "netns", "del", net.cap_ns, check=False)
    run("ip", "netns", "del", net.send_ns, check=False)


def trafgen_config(net: Net, path: Path) -> None:
    """One 64-byte Ethernet/IPv4/UDP frame whose destination port cycles 4096..4195."""

    def hexbytes(data: bytes) -> str:
        return ", ".join(f"0x{b:02x}" for b in data)

    dst = bytes.fromhex(net.cap_mac.replace(":", ""))
    src = bytes.fromhex(net.send_mac.replace(":", ""))
    ip_header = bytes.fromhex("4500003200004000401100000ac900020ac90001")  # 50 bytes total
    checksum = _ip_checksum(ip_header)
    ip_header = ip_header[:10] + checksum.to_bytes(2, "big") + ip_header[12:]
    udp_head = bytes.fromhex("9c40")  # source port 40000
    payload = b"capsvc-bench" + bytes(10)
    head = dst + src + bytes.fromhex("0800") + ip_header + udp_head
    path.write_text(
        "{\n"
        f"  {hexbytes(head)},\n"
        "  0x10, dinc(0, 99, 1),\n"  # destination port 0x1000 + n
        f"  0x00, 0x1e, 0x00, 0x00, {hexbytes(payload)}\n"
        "}\n"
    )


def _ip_checksum(header: bytes) -> int:
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# -- one measurement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One way of capturing: who, which backend, which output, which ring."""

    name: str  # "tcpdump" or "capsvc"
    backend: str = ""  # capsvc: "afpacket" or "libpcap"
    text: bool = False  # text to /dev/null instead of a pcap file
    ring: int = 0  # 0: the tool's default
    block_timeout_ms: int = 0  # capsvc afpacket, 0: the default
    expression: str = FILTER

    @property
    def label(self) -> str:
        if self.name == "tcpdump":
            what = "tcpdump text" if self.text else "tcpdump -w"
            return what + (f" -B {self.ring // 1024}" if self.ring else "")
        what = "capsvc capture" + ("" if self.backend == "afpacket" else " --backend libpcap")
        what += " > /dev/null" if self.text else " -w"
        return what + (f", ring {self.ring >> 20} MiB" if self.ring else "")

    @property
    def peer(self) -> Tool:
        """The tcpdump run this one is compared with (same output kind, same ring)."""
        return Tool("tcpdump", text=self.text, ring=self.ring)


@dataclass
class Result:
    tool: Tool
    sent: int
    arrived: int
    captured: int
    kernel_dropped: int
    queue_dropped: int
    cpu: float
    send_seconds: float
    threads: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def _send(net: Net, config: Path, count: int, rate: str | None = None) -> float:
    """Send ``count`` frames with trafgen, at its top rate or at ``rate`` (trafgen's -b, e.g.
    "200000pps"); returns the seconds it took."""
    cmd = ["ip", "netns", "exec", net.send_ns, "trafgen", "-o", net.send_if]
    cmd += ["-i", str(config), "-n", str(count), "-P", "1", "-C"]
    if rate:
        cmd += ["-b", rate]
    started = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return time.monotonic() - started


def _command(tool: Tool, net: Net, out: Path) -> list[str]:
    ns = ["ip", "netns", "exec", net.cap_ns]
    expr = [tool.expression] if tool.expression else []
    if tool.name == "tcpdump":
        cmd = [*ns, "tcpdump", "-i", net.cap_if, "-p", "-n"]
        if tool.ring:
            cmd += ["-B", str(tool.ring // 1024)]
        return cmd + ([] if tool.text else ["-w", str(out)]) + expr
    if tool.ring or tool.block_timeout_ms:
        assert not tool.text
        return [
            *ns,
            sys.executable,
            __file__,
            "--worker",
            tool.backend,
            net.cap_if,
            str(out),
            tool.expression,
            str(tool.ring),
            str(tool.block_timeout_ms),
        ]
    cmd = [*ns, *CAPSVC_CLI, "-i", net.cap_if, "-p"]
    if tool.backend != "afpacket":
        cmd += ["--backend", tool.backend]
    return cmd + ([] if tool.text else ["-w", str(out)]) + expr


def _packet_socket_open(pid: int) -> bool:
    """True once the process holds a packet socket (its namespace's /proc/net/packet lists it)."""
    try:
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
            for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")
        }
        lines = Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[-1] in inodes for line in lines)


def _wait_ready(proc: subprocess.Popen[str], tool: Tool) -> None:
    if tool.name == "tcpdump":
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "verbose output suppressed" in line:  # the text mode says this first
            line = proc.stderr.readline()
        ok = "listening" in line
    elif tool.ring or tool.block_timeout_ms:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ok = "ready" in line
    else:  # the CLI says nothing when it starts: wait for its packet socket
        deadline = time.monotonic() + 30
        line = ""
        while not (ok := _packet_socket_open(proc.pid)) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    if not ok:
        proc.kill()
        raise RuntimeError(f"{tool.label} did not start: {line}{proc.communicate()}")
    time.sleep(0.5)  # the ring, the filter, the session and the loop's reader


def cpu_ns(pid: int) -> tuple[int, int]:
    """(CPU ns of all the process's threads, thread count), from /proc/PID/task/*/schedstat."""
    total = threads = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
            threads += 1
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
    return total, threads


def _wait_quiet(pid: int, quiet: float = 1.0, limit: float = 120.0) -> None:
    """Wait until the process has used no CPU for ``quiet`` seconds (the burst is handled)."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = cpu_ns(pid)[0]
        if now - last > 5_000_000:  # more than 5 ms of CPU since the last look: still busy
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


def measure(tool: Tool, net: Net, config: Path, count: int, workdir: Path) -> Result:
    out = workdir / "out.pcap"
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(
        _command(tool, net, out),
        stdout=subprocess.DEVNULL if tool.text else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_ready(proc, tool)
        cpu_start, _ = cpu_ns(proc.pid)
        before = net.rx_packets()
        seconds = _send(net, config, count)
        arrived = net.rx_packets() - before
        _wait_quiet(proc.pid)
        cpu_end, threads = cpu_ns(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=120)
    if tool.name == "tcpdump":
        captured = _count(r"(\d+) packets? captured", stderr)
        kernel, queue = _count(r"(\d+) packets? dropped by kernel", stderr), 0
    else:
        captured = _count(r"(\d+) packets captured", stderr)
        kernel = _count(r"(\d+) dropped by kernel", stderr)
        queue = _count(r"(\d+) dropped by queue", stderr)
    if not tool.text:
        records = (out.stat().st_size - 24) // RECORD
        if records != captured:
            raise RuntimeError(f"{tool.label}: says {captured} captured, the file has {records}")
    cpu = (cpu_end - cpu_start) / 1e9
    return Result(tool, count, arrived, captured, kernel, queue, cpu, seconds, threads)


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in: {text}")
    return int(found.group(1))


def per_million(cpu: float, count: int) -> float:
    return cpu / (count / 1e6)


# -- the plan and the report --------------------------------------------------------------------

DEFAULTS = [
    Tool("tcpdump"),
    Tool("capsvc", "afpacket"),
    Tool("capsvc", "libpcap"),
    Tool("tcpdump", text=True),
    Tool("capsvc", "afpacket", text=True),
    Tool("capsvc", "libpcap", text=True),
]
BIG = [
    Tool("tcpdump", ring=BIG_RING),
    Tool("capsvc", "afpacket", ring=BIG_RING),
    Tool("capsvc", "libpcap", ring=BIG_RING),
]


def run_plan(
    net: Net, config: Path, workdir: Path, tools: list[Tool], count: int, repeat: int
) -> dict[Tool, list[Result]]:
    """Every tool ``repeat`` times, in turn (so a noisy minute hits them all alike)."""
    results: dict[Tool, list[Result]] = {tool: [] for tool in tools}
    for _ in range(repeat):
        for tool in tools:
            result = measure(tool, net, config, count, workdir)
            print(
                f"{count:>9,} {tool.label:<48} captured {result.captured:>9,} "
                f"cpu {result.cpu:6.2f} s",
                file=sys.stderr,
            )
            results[tool].append(result)
    return results


def _median(results: list[Result], name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in results))


def table(results: dict[Tool, list[Result]], count: int) -> list[str]:
    lines = [
        "| frames | capture | sent pps | arrived | captured | kernel drops | queue drops "
        "| captured / tcpdump's | % of arrived | CPU s/Mpkt | CPU / tcpdump's |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, runs in results.items():
        peer = results.get(tool.peer, runs)
        cap, peer_cap = _median(runs, "captured"), _median(peer, "captured")
        arrived = _median(runs, "arrived")
        cpu = per_million(_median(runs, "cpu"), count)
        peer_cpu = per_million(_median(peer, "cpu"), count)
        lines.append(
            f"| {count:,} | {tool.label} | {count / _median(runs, 'send_seconds'):,.0f} "
            f"| {arrived:,.0f} | {cap:,.0f} | {_median(runs, 'kernel_dropped'):,.0f} "
            f"| {_median(runs, 'queue_dropped'):,.0f} | {cap / peer_cap:.4f} "
            f"| {100 * cap / arrived:.2f}% | {cpu:.3f} | {cpu / peer_cpu:.2f}x |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200k/600k frames, 1 repeat")
    parser.add_argument("--packets", type=int, default=0, help="frames of the short burst")
    parser.add_argument("--repeat", type=int, default=0, help="runs per cell (median reported)")
    parser.add_argument(
        "--defaults-only", action="store_true", help="only the defaults table (no 64 MiB rows)"
    )
    parser.add_argument(
        "--text-only",
        action="store_true",
        help="only the text-to-/dev/null rows of the defaults table (tcpdump and both backends)",
    )
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        backend, interface, output, expression, ring, tov = args.worker
        worker(backend, interface, output, expression, int(ring), int(tov))
        return 0
    if os.geteuid() != 0:
        print("bench/live.py needs root (namespaces, packet sockets)", file=sys.stderr)
        return 1
    for tool in ("trafgen", "tcpdump", "ip"):
        if not shutil.which(tool):
            print(f"bench/live.py needs {tool}", file=sys.stderr)
            return 1
    short = args.packets or (200_000 if args.quick else 1_000_000)
    counts = (short, 3 * short)
    repeat = args.repeat or (1 if args.quick else 3)
    net = build_net()
    out: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="capsvc-bench-") as tmp:
            workdir = Path(tmp)
            config = workdir / "frame.cfg"
            trafgen_config(net, config)
            plan = [t for t in DEFAULTS if t.text] if args.text_only else DEFAULTS
            defaults = {n: run_plan(net, config, workdir, plan, n, repeat) for n in counts}
            if args.defaults_only or args.text_only:
                for n, results in defaults.items():
                    out.extend(table(results, n))
                print("\n".join(out))
                return 0
            big = {n: run_plan(net, config, workdir, BIG, n, repeat) for n in counts}
            filtered: dict[int, tuple[list[Result], list[Result]]] = {}
            for tov in BLOCK_TIMEOUTS_MS:
                plain = Tool("capsvc", "afpacket", block_timeout_ms=tov)
                one = Tool("capsvc", "afpacket", block_timeout_ms=tov, expression=FILTER_1PCT)
                runs = run_plan(net, config, workdir, [plain, one], short, repeat)
                filtered[tov] = (runs[plain], runs[one])
    finally:
        remove_net(net)
    cores = os.cpu_count()
    out.append(
        f"Bursts of 64-byte UDP frames at trafgen's top rate (one CPU), veth between two "
        f"namespaces, {cores} cores, filter `{FILTER}` (keeps every frame); medians of "
        f"{repeat} run(s); every ratio is against tcpdump in the same run with the same kind "
        "of output.\n"
    )
    out.append("Defaults: no ring or buffer option to either tool.\n")
    for n in counts:
        out += table(defaults[n], n)[0 if n == counts[0] else 2 :]
    out.append(
        "\n64 MiB ring for both (the earlier setting of this bench; tcpdump -B 65536, capsvc's "
        "source opened with ring_size / buffer_size of 64 MiB):\n"
    )
    for n in counts:
        out += table(big[n], n)[0 if n == counts[0] else 2 :]
    out.append(
        f"\nKernel filter `{FILTER_1PCT}` (1% of the frames), capsvc AF_PACKET at the default "
        f"ring, {short:,} frames (medians of {repeat}):\n"
    )
    out.append("| block timeout | captured | CPU s/Mpkt, `udp` | CPU s/Mpkt, 1% filter | less |")
    out.append("|---|---|---|---|---|")
    for tov, (plain_runs, one_runs) in filtered.items():
        p_cpu, f_cpu = _median(plain_runs, "cpu"), _median(one_runs, "cpu")
        note = " (default)" if tov == BLOCK_TIMEOUTS_MS[0] else ""
        out.append(
            f"| {tov} ms{note} | {_median(one_runs, 'captured'):,.0f} | "
            f"{per_million(p_cpu, short):.3f} | {per_million(f_cpu, short):.3f} | "
            f"{p_cpu / f_cpu if f_cpu else float('inf'):.1f}x |"
        )
    out.append(
        "\nCPU: the capture process's threads (/proc/PID/task/*/schedstat) from ready until "
        "the burst is handled, per million frames sent; start-up is excluded for both tools. "
        "Captured: each tool's closing summary, checked against the records in its pcap file. "
        "With a 1% filter capsvc's CPU is mostly one wake-up per block timeout, not packets."
    )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
