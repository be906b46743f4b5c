"""Live capture through libpcap: LibpcapSource vs tcpdump on a private veth pair.

trafgen (netsniff-ng) sends COUNT 64-byte UDP frames from inside a namespace to the host end of a
veth pair; each capturer writes a pcap file from the host end, one after the other, on the same
traffic. Printed per rate: frames captured and CPU seconds per million frames for both, and the
ratio captured(capsvc) / captured(tcpdump), which must be >= 1.0 wherever tcpdump captures
>= 99.9%. A run with a filter matching 1% of the frames shows the kernel filter's effect.

``capture_with_libpcap`` is the piece bench/live.py can call to add libpcap beside AF_PACKET.

Usage (root): python3 bench/live_libpcap.py [--count N] [--rates 0,200000] [--buffer-mib 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from capsvc import Session  # noqa: E402
from capsvc.sources.libpcap import LibpcapSource  # noqa: E402

IDLE = 0.5  # seconds without a new packet that end a capture once the sender is done


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def capture_with_libpcap(
    iface: str,
    out_path: str | os.PathLike[str],
    count: int,
    filter: str | None = None,
    *,
    send: Sequence[str] = (),
    buffer_size: int = 32 << 20,
) -> tuple[int, float]:
    """Capture from ``iface`` into a pcap file with LibpcapSource until ``count`` packets
    arrived or the traffic stopped (IDLE seconds without a packet after ``send`` exited).

    Args:
        iface: the interface.
        out_path: the pcap file to write.
        count: packets expected; the capture ends early when all arrived.
        filter: a libpcap filter expression, or None.
        send: a command that sends the traffic, started once the capture is open (the
            capture waits for it to end); empty for traffic that is already flowing.
        buffer_size: the kernel buffer in bytes.

    Returns:
        (packets captured, CPU seconds this process spent capturing).
    """

    async def run() -> tuple[int, float]:
        source = LibpcapSource(iface, filter=filter, buffer_size=buffer_size)
        start = _cpu()
        async with Session(output=out_path, source=source) as session:
            sender = None
            if send:
                sender = await asyncio.create_subprocess_exec(
                    *send, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                send_done = asyncio.ensure_future(sender.wait())
            last, last_change = -1, time.monotonic()
            while True:
                await asyncio.sleep(0.05)
                n = session.stats().packets
                if n != last:
                    last, last_change = n, time.monotonic()
                if n >= count:
                    break
                sender_done = sender is None or send_done.done()
                if sender_done and time.monotonic() - last_change > IDLE:
                    break
        if os.environ.get("BENCH_VERBOSE"):
            print("  session:", session.stats(), file=sys.stderr)
        return session.stats().packets, _cpu() - start

    return asyncio.run(run())


def capture_with_tcpdump(
    iface: str, out_path: str, filter: str | None, send_cmd: list[str], buffer_kib: int
) -> tuple[int, float]:
    """Run ``tcpdump -w`` while ``send_cmd`` sends; return (captured, tcpdump's CPU seconds)."""
    cmd = ["tcpdump", "-i", iface, "-w", out_path, "-B", str(buffer_kib), "-s", "262144"]
    proc = subprocess.Popen(cmd + ([filter] if filter else []), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on ..."
    subprocess.run(send_cmd, check=True, capture_output=True)
    time.sleep(IDLE + 1.0)  # tcpdump's 1 s buffer timeout hands over the last block
    proc.send_signal(signal.SIGINT)
    _pid, _status, usage = os.wait4(proc.pid, 0)
    text = proc.stderr.read()
    captured = int(re.search(r"(\d+) packets? captured", text).group(1))  # type: ignore[union-attr]
    return captured, usage.ru_utime + usage.ru_stime


def trafgen_config(pair: object, port: int, hits_every: int) -> str:
    """A trafgen config: 64-byte UDP frames to ``port``, one in ``hits_every`` to port 9 + 1."""
    from _helpers import ether, ipv4, udp

    def frame(dport: int) -> str:
        data = ether(
            ipv4(pair.peer_ip, "10.200.0.1", udp(40000, dport, b"\0" * 22)),  # type: ignore[attr-defined]
            src=pair.peer_mac,  # type: ignore[attr-defined]
            dst=pair.host_mac,  # type: ignore[attr-defined]
        )[:64]
        return "{ " + ", ".join(f"0x{b:02x}" for b in data) + " }"

    if hits_every <= 1:
        return frame(port) + "\n"
    return "\n".join([frame(port + 1)] * (hits_every - 1) + [frame(port)]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--rates", default="0", help="pps list; 0 means as fast as possible")
    parser.add_argument("--buffer-mib", type=int, default=32)
    args = parser.parse_args()

    import _netns as netns

    # Own name prefix: a test run starting meanwhile removes every "cst" network it finds.
    netns.PREFIX = "cbp"
    veth_pair = netns.veth_pair
    with veth_pair() as pair, tempfile.TemporaryDirectory() as tmp:
        print(f"cores: {os.cpu_count()}  frames: {args.count}  buffer: {args.buffer_mib} MiB")
        cases: list[tuple[int, str | None, int]] = [
            (rate, None, 1) for rate in map(int, args.rates.split(","))
        ]
        cases.append((0, "udp dst port 9", 100))
        for rate, flt, every in cases:
            conf = Path(tmp) / "frames.cfg"
            conf.write_text(trafgen_config(pair, 9, every))
            send = ["ip", "netns", "exec", pair.ns, "trafgen", "-o", pair.peer, "-i", str(conf)]
            send += ["-n", str(args.count), "-P", "1", "-q", "-C"]
            if rate:
                send += ["-b", f"{rate}pps"]
            expect = args.count // every
            tcpdump_n, tcpdump_cpu = capture_with_tcpdump(
                pair.host, str(Path(tmp) / "t.pcap"), flt, send, args.buffer_mib * 1024
            )
            ours_n, ours_cpu = capture_with_libpcap(
                pair.host,
                Path(tmp) / "c.pcap",
                expect,
                flt,
                send=send,
                buffer_size=args.buffer_mib << 20,
            )
            per_m = 1e6 / max(args.count, 1)
            print(
                f"rate={rate or 'max'} filter={flt or '-'} expected={expect} "
                f"tcpdump={tcpdump_n} ({tcpdump_cpu * per_m:.2f} cpu-s/Mpkt) "
                f"libpcap-source={ours_n} ({ours_cpu * per_m:.2f} cpu-s/Mpkt) "
                f"ratio={ours_n / max(tcpdump_n, 1):.4f}"
            )


if __name__ == "__main__":
    main()
