"""Service under load: capture loss with live stream subscribers, stats latency, workers.

Runs ``capsvc serve`` inside a private network namespace on one end of a veth pair (the network
of bench/live.py: two namespaces, trafgen sending 64-byte UDP frames over 100 flows) and drives it
through its unix-socket API from this process:

1. the session alone at the top rate: the capture's own loss (the reference figure);
2. the same with 4 live stream subscribers (processes of their own, niced), one of them
   deliberately slow (a 4 kB receive buffer, reading 4 kB every 50 ms), while
   ``GET /v1/sessions/NAME/stats`` is polled every 20 ms: the capture's loss, the slow
   subscriber's counted drops, the fast ones' drops, stats p50/p99;
3. ``workers = 1`` and ``workers = 2`` at falling rates: the highest rate captured without loss.

Run as root: ``python3 bench/bench_service.py`` (a few minutes) or ``--quick``. Prints markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import live  # noqa: E402  (the test network and trafgen helpers of the live benchmark)

#: Stats requests made before the timed ones.
WARMUP = 5


@dataclass
class Run:
    label: str
    rate: str
    workers: int
    arrived: int = 0
    captured: int = 0
    kernel_dropped: int = 0
    queue_dropped: int = 0
    slow_dropped: int = 0
    fast_dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        return 1 - self.captured / self.arrived if self.arrived else 0.0

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[int(q * 100) - 1] * 1000


def write_config(net: live.Net, work: Path, workers: int) -> Path:
    path = work / "capsvc.toml"
    path.write_text(
        f'[service]\nlisten = "unix:{work}/api.sock"\ntoken_file = "{work}/token"\n'
        f'output_dir = "{work}/out"\nmax_subscribers = 8\n\n'
        f'[[session]]\nname = "bench"\nworkers = {workers}\n'
        f'source = {{ type = "afpacket", interface = "{net.cap_if}", promisc = false }}\n'
        f'[[session.sinks]]\ntype = "pcap"\npath = "bench.pcap"\n'
    )
    return path


class Service:
    """``capsvc serve`` in the capture namespace."""

    def __init__(self, net: live.Net, work: Path, workers: int) -> None:
        config = write_config(net, work, workers)
        cmd = [
            "ip",
            "netns",
            "exec",
            net.cap_ns,
            sys.executable,
            "-m",
            "capsvc.cli",
            "serve",
            "--config",
            str(config),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=work)
        assert self.proc.stderr is not None
        while True:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"capsvc serve did not start (exit {self.proc.wait()})")
            if "listening on" in line:
                break
        self.sock = str(work / "api.sock")
        self.token = (work / "token").read_text().strip()

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out = self.proc.communicate(timeout=120)[1]
        finals = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return finals[0]["stats"] if finals else {}


def reader_main(sock_path: str, token: str, slow: bool) -> None:
    """A separate, niced process: one live stream client reading raw bytes until the end.

    The fast ones read as fast as they can; the slow one has a 4 kB receive buffer and reads
    4 kB every 50 ms. Niced, so the clients (remote machines in real use) do not take the
    service's CPU on a small machine.
    """
    os.nice(10)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(sock_path)
    request = (
        "GET /v1/sessions/bench/pcap HTTP/1.1\r\nHost: svc\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    sock.sendall(request.encode())
    total = 0
    while data := sock.recv(4096 if slow else 1 << 20):
        total += len(data)
        if slow:
            time.sleep(0.05)
    print(total, flush=True)


def start_reader(svc: Service, slow: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--read", svc.sock, svc.token, "slow" if slow else "fast"],
        stdout=subprocess.PIPE,
        text=True,
    )


def poll_main(sock_path: str, token: str) -> None:
    """A separate process: GET the stats every 20 ms until stdin closes; print the latencies."""
    import http.client

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(sock_path)

    stop = threading.Event()

    def wait_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    conn = UnixConnection("svc")
    latencies = []
    for _ in range(WARMUP):  # the first requests set up the connection and warm code paths
        conn.request(
            "GET", "/v1/sessions/bench/stats", headers={"Authorization": f"Bearer {token}"}
        )
        conn.getresponse().read()
    while not stop.is_set():
        started = time.perf_counter()
        conn.request(
            "GET", "/v1/sessions/bench/stats", headers={"Authorization": f"Bearer {token}"}
        )
        conn.getresponse().read()
        latencies.append(time.perf_counter() - started)
        time.sleep(0.02)
    print(json.dumps(latencies), flush=True)


def start_poller(svc: Service) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--poll", svc.sock, svc.token],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def stop_poller(proc: subprocess.Popen[str]) -> list[float]:
    out = proc.communicate(input="", timeout=30)[0]
    result: list[float] = json.loads(out)
    return result


async def _info(client: aiohttp.ClientSession, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with client.get("http://svc/v1/sessions/bench/stats", headers=headers) as resp:
        result: dict[str, Any] = await resp.json()
        return result


async def _scenario(
    net: live.Net, frame_cfg: Path, work: Path, run: Run, count: int, subscribers: bool
) -> Run:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    svc = Service(net, work, run.workers)
    client = aiohttp.ClientSession(connector=aiohttp.UnixConnector(svc.sock))
    readers: list[subprocess.Popen[str]] = []
    poller: subprocess.Popen[str] | None = None
    try:
        if subscribers:
            for k, slow in enumerate((False, False, False, True)):  # the slow one attaches last
                readers.append(start_reader(svc, slow))
                while len((await _info(client, svc.token))["subscribers"]) <= k:
                    await asyncio.sleep(0.05)
        poller = start_poller(svc)
        await asyncio.sleep(0.3)
        before = net.rx_packets()
        rate = None if run.rate == "max" else run.rate
        run.seconds = await asyncio.to_thread(live._send, net, frame_cfg, count, rate)
        run.arrived = net.rx_packets() - before
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 1.0:  # the writer has settled
            written = (await _info(client, svc.token))["stats"]["written"]
            if written != last:
                last, since = written, time.monotonic()
            await asyncio.sleep(0.1)
        info = await _info(client, svc.token)
        subs = info["subscribers"]
        if subs:
            run.slow_dropped = subs[-1]["dropped"]
            run.fast_dropped = sum(s["dropped"] for s in subs[:-1])
        if poller is not None:
            run.latencies = await asyncio.to_thread(stop_poller, poller)
            if os.environ.get("BENCH_DEBUG"):
                worst = sorted(range(len(run.latencies)), key=lambda i: -run.latencies[i])[:5]
                print(
                    len(run.latencies),
                    [(i, round(run.latencies[i] * 1000, 1)) for i in worst],
                    file=sys.stderr,
                )
    finally:
        final = await asyncio.to_thread(svc.stop)
        for reader in readers:
            try:
                reader.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                reader.kill()
                reader.communicate()
        await client.close()
    run.captured = final.get("written", 0)
    run.kernel_dropped = final.get("kernel_dropped", 0)
    run.queue_dropped = final.get("dropped", 0)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300k packets, fewer rates")
    parser.add_argument("--packets", type=int, default=0, help="packets per run")
    parser.add_argument(
        "--rate", default="max", help="trafgen rate of the subscriber runs (default: max)"
    )
    parser.add_argument("--poll", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--read", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll:
        poll_main(*args.poll)
        return 0
    if args.read:
        reader_main(args.read[0], args.read[1], args.read[2] == "slow")
        return 0
    if os.geteuid() != 0:
        print("bench/bench_service.py needs root (namespaces, packet sockets)", file=sys.stderr)
        return 1
    for tool in ("trafgen", "ip"):
        if not shutil.which(tool):
            print(f"bench/bench_service.py needs {tool}", file=sys.stderr)
            return 1
    count = args.packets or (300_000 if args.quick else 2_000_000)
    rates = (
        ["max", "200000pps", "100000pps"]
        if args.quick
        else ["max", "400000pps", "300000pps", "200000pps", "150000pps", "100000pps", "50000pps"]
    )
    net = live.build_net()
    runs: list[Run] = []
    lossless: dict[int, tuple[str, list[Run]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="capsvc-bench-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o755)
            frame_cfg = work / "frame.cfg"
            live.trafgen_config(net, frame_cfg)

            def go(run: Run, subscribers: bool) -> Run:
                return asyncio.run(_scenario(net, frame_cfg, work, run, count, subscribers))

            runs.append(go(Run("session alone + stats polling", args.rate, 1), False))
            runs.append(go(Run("4 subscribers (1 slow) + stats polling", args.rate, 1), True))
            for workers in (1, 2):
                tried: list[Run] = []
                best = "none"
                for rate in rates:
                    result = go(Run(f"workers = {workers}", rate, workers), False)
                    tried.append(result)
                    if result.captured >= result.arrived:
                        best = rate
                        break
                lossless[workers] = (best, tried)
    finally:
        live.remove_net(net)
    report(runs, lossless, count)
    return 0


def report(runs: list[Run], lossless: dict[int, tuple[str, list[Run]]], count: int) -> None:
    print(
        f"\n`capsvc serve`, {count:,} frames of 64 bytes per run over 100 flows, veth between "
        f"two namespaces, trafgen on 1 CPU, {os.cpu_count()} cores, the service's defaults "
        "(its 64 MiB AF_PACKET ring, the series on, no conversations); each stream client "
        "and the stats poller are processes of their own (the clients niced).\n"
    )
    print(
        "| scenario | rate | sent pps | arrived | captured | capture loss | kernel drops "
        "| queue drops | slow subscriber drops | fast subscribers' drops "
        "| stats p50 ms | stats p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r.label} | {r.rate} | {r.arrived / r.seconds:,.0f} | {r.arrived:,} | "
            f"{r.captured:,} | {100 * r.loss:.2f}% | "
            f"{r.kernel_dropped:,} | {r.queue_dropped:,} | {r.slow_dropped:,} | "
            f"{r.fast_dropped:,} | {r.quantile(0.5):.1f} | {r.quantile(0.99):.1f} |"
        )
    print("\n| workers | highest lossless rate tried | runs (rate: captured / arrived) |")
    print("|---|---|---|")
    for workers, (best, tried) in sorted(lossless.items()):
        cells = "; ".join(f"{r.rate}: {r.captured:,} / {r.arrived:,}" for r in tried)
        print(f"| {workers} | {best} | {cells} |")


if __name__ == "__main__":
    raise SystemExit(main())
