"""The text writer against tcpdump, on a generated Ethernet capture (bench/gen_pcap.py).

- The CLI: ``capsvc read -r F > /dev/null`` (the process a user runs, start-up included, as for
  tcpdump) against ``tcpdump -nS -r F > /dev/null``. Target: >= 0.5x tcpdump's lines/s.
- The earlier figure, beside it for one release: a purpose-built script (capture-file reader +
  ``TextWriter`` to /dev/null, no Session, no writer thread). It skipped the CLI's own work, so
  its 0.78x overstated what users get.
- Formatter alone (in this process, CPU time): ``TextFormatter.format`` per packet, plain and
  verbose, for where the time goes; and ``TextWriter.write_batch`` (the default line in C,
  the frames it hands back in Python) over the same packets.

Every figure is the median of ``--repeat`` runs; capsvc and tcpdump run in turn, in the same run.
Wall-clock rates are what a user sees; CPU-time rates (user + system of the child process) are
the steadier comparison on a shared, busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from gen_pcap import generate  # noqa: E402

from capsvc.sources import read_capture  # noqa: E402

#: The CLI, as a user runs it.
CAPSVC_READ = [sys.executable, "-m", "capsvc.cli", "read", "-r"]

#: The earlier, purpose-built capsvc side (kept for one release), run as its own process.
PIPELINE = r"""
import sys
from capsvc.sinks import TextWriter
from capsvc.sources import read_capture

with open(sys.argv[2], "w") as out, read_capture(sys.argv[1]) as capture:
    writer = TextWriter(out, linktype=capture.linktype)
    for batch in capture:
        writer.write_batch(batch)
"""


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` with stdout to /dev/null; return its (wall, CPU user+system) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def formatter_rate(path: Path, verbose: bool, limit: int = 200_000) -> float:
    """Lines per CPU second of ``TextFormatter.format`` alone over the file's first packets."""
    from capsvc.format._line import TextFormatter

    packets: list[Any] = []
    with read_capture(path) as capture:
        linktype = capture.linktype
        for batch in capture:
            packets.extend(batch)
            if len(packets) >= limit:
                break
    fmt = TextFormatter(linktype, verbose=verbose).format
    t0 = time.process_time()
    for p in packets:
        fmt(p[0], p[1], p[2], p[3])
    return len(packets) / (time.process_time() - t0)


def writer_rate(path: Path, limit: int = 200_000) -> float:
    """Lines per CPU second of ``TextWriter.write_batch`` to /dev/null over the file's first
    packets, in batches of 4096: the default line in C where the speed-ups are built
    (``capsvc.format._linefast``), the frames it hands back formatted in Python."""
    from capsvc.sinks._text import TextWriter

    packets: list[Any] = []
    with read_capture(path) as capture:
        linktype = capture.linktype
        for batch in capture:
            packets.extend(batch)
            if len(packets) >= limit:
                break
    with open(os.devnull, "w") as out:
        writer = TextWriter(out, linktype=linktype)
        t0 = time.process_time()
        for i in range(0, len(packets), 4096):
            writer.write_batch(packets[i : i + 4096])
        return len(packets) / (time.process_time() - t0)


def count_packets(path: Path) -> int:
    with read_capture(path) as capture:
        return sum(len(batch) for batch in capture)


def run(count: int, repeat: int, workdir: Path) -> dict[str, float | str]:
    src = workdir / "mixed.pcap"
    generate(src, count, 1)
    packets = count_packets(src)
    ours, script, peer, plain, verbose, writer = [], [], [], [], [], []
    for _ in range(repeat):
        ours.append(_timed([*CAPSVC_READ, str(src)]))
        script.append(_timed([sys.executable, "-c", PIPELINE, str(src), "/dev/null"]))
        peer.append(_timed(["tcpdump", "-nS", "-r", str(src)]))
        plain.append(formatter_rate(src, False))
        verbose.append(formatter_rate(src, True))
        writer.append(writer_rate(src))
    m = statistics.median
    ours_wall, ours_cpu = m(w for w, _ in ours), m(c for _, c in ours)
    peer_wall, peer_cpu = m(w for w, _ in peer), m(c for _, c in peer)
    script_wall, script_cpu = m(w for w, _ in script), m(c for _, c in script)
    return {
        "script_lps": packets / script_wall,
        "script_vs_tcpdump": peer_wall / script_wall,
        "script_cpu_lps": packets / script_cpu,
        "script_vs_tcpdump_cpu": peer_cpu / script_cpu,
        "packets": packets,
        "text_lps": packets / ours_wall,
        "tcpdump_lps": packets / peer_wall,
        "text_vs_tcpdump": peer_wall / ours_wall,
        "text_cpu_lps": packets / ours_cpu,
        "tcpdump_cpu_lps": packets / peer_cpu,
        "text_vs_tcpdump_cpu": peer_cpu / ours_cpu,
        "format_lps": m(plain),
        "format_verbose_lps": m(verbose),
        "writer_lps": m(writer),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not shutil.which("tcpdump"):
        raise SystemExit("needs tcpdump")
    with tempfile.TemporaryDirectory(prefix="capsvc-bench-") as tmp:
        result = run(args.count, args.repeat, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['packets']:,} packets (bench/gen_pcap.py; capsvc's reader), "
        f"median of {args.repeat}"
    )
    print()
    print("| job | capsvc | peer | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| capsvc read -r F > /dev/null | {result['text_lps']:,.0f} lines/s "
        f"| tcpdump -nS -r {result['tcpdump_lps']:,.0f} lines/s "
        f"| {result['text_vs_tcpdump']:.2f}x | >= 0.5x |"
    )
    print(
        f"| same, CPU time (user+system) | {result['text_cpu_lps']:,.0f} lines/s "
        f"| tcpdump -nS -r {result['tcpdump_cpu_lps']:,.0f} lines/s "
        f"| {result['text_vs_tcpdump_cpu']:.2f}x | >= 0.5x |"
    )
    print(
        f"| old figure: reader + TextWriter script | {result['script_lps']:,.0f} lines/s "
        f"| tcpdump -nS -r {result['tcpdump_lps']:,.0f} lines/s "
        f"| {result['script_vs_tcpdump']:.2f}x | |"
    )
    print(
        f"| old figure, CPU time | {result['script_cpu_lps']:,.0f} lines/s "
        f"| tcpdump -nS -r {result['tcpdump_cpu_lps']:,.0f} lines/s "
        f"| {result['script_vs_tcpdump_cpu']:.2f}x | |"
    )
    print(f"| TextFormatter.format alone (CPU) | {result['format_lps']:,.0f} lines/s | | | |")
    print(
        f"| TextFormatter.format, verbose (CPU) | {result['format_verbose_lps']:,.0f} lines/s "
        "| | | |"
    )
    print(f"| TextWriter.write_batch, C lines (CPU) | {result['writer_lps']:,.0f} lines/s | | | |")


if __name__ == "__main__":
    main()
