"""Flight recorder, conversations and I/O series: cost per packet, and memory under overload.

Measures, each against its peer in the same run:
- ``FlightRecorder.write_batch`` per packet (64 MiB, 60 s) against ``PcapWriter`` writing the
  same batches to /dev/null (what capturing everything to disk costs in Python) and against the
  obvious recorder, a ``deque`` of packets trimmed to the same byte bound;
- RSS of a 64 MiB recorder while ten times that is offered (sampled at each 64 MiB), each in a
  fresh process, against the deque recorder holding the same bytes;
- ``dump()`` of a full recorder to /dev/null (MB/s);
- ``ConversationSink`` and ``SeriesSink`` reading a generated file, against ``tshark -q -z
  conv,...`` and ``-z io,stat,1`` on the same file;
- ``ConversationSink`` under a flood of one-packet flows: packets/s and memory, against an
  unbounded dict of conversations.

Prints a markdown table; ``--json`` prints the figures as JSON for bench/report.py.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gen_pcap import generate  # noqa: E402

from capsvc import Direction, LinkType, Packet  # noqa: E402
from capsvc.sinks import ConversationSink, FlightRecorder, PcapWriter, SeriesSink  # noqa: E402
from capsvc.sources.capfile._source import read_capture  # noqa: E402

MIB = 2**20
RING = 64 * MIB


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _batches(path: Path) -> list[list[Packet]]:
    with read_capture(path) as capture:
        return [list(b) for b in capture]


def _rate(run: object, batches: list[list[Packet]], rounds: int) -> float:
    """Median packets/s of ``run()`` over ``rounds`` (``run`` builds a fresh sink each time)."""
    count = sum(len(b) for b in batches)
    samples = []
    for _ in range(rounds):
        sink = run()  # type: ignore[operator]
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        for batch in batches:
            sink.write_batch(batch)
        samples.append(time.perf_counter() - t0)
        gc.enable()
    return count / statistics.median(samples)


class DequeRecorder:
    """The obvious recorder: packets in a deque, the oldest dropped past a byte bound."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held: collections.deque[Packet] = collections.deque()
        self.bytes = 0
        self.evicted = 0

    def write_batch(self, batch: list[Packet]) -> None:
        held = self.held
        for p in batch:
            held.append(p)
            self.bytes += len(p[1])
            while self.bytes > self.max_bytes:
                self.bytes -= len(held.popleft()[1])
                self.evicted += 1


def append_rates(batches: list[list[Packet]], rounds: int) -> dict[str, float]:
    devnull = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    try:
        return {
            "recorder": _rate(
                lambda: FlightRecorder(60, RING, linktype=LinkType.ETHERNET), batches, rounds
            ),
            "pcap": _rate(lambda: PcapWriter(devnull, 0, LinkType.ETHERNET), batches, rounds),
            "deque": _rate(lambda: DequeRecorder(RING), batches, rounds),
        }
    finally:
        devnull.close()


def child_overload(kind: str, frame_len: int, factor: int) -> dict[str, object]:
    """In a fresh process: offer ``factor`` times the ring in new frames of ``frame_len``
    bytes, sampling RSS at each ring's worth."""
    template = bytearray(random.Random(1).randbytes(frame_len))
    sink: FlightRecorder | DequeRecorder
    sink = FlightRecorder(0, RING) if kind == "recorder" else DequeRecorder(RING)
    start = _rss()
    per_ring = RING // frame_len
    samples = []
    ts = 1_700_000_000 * 10**9
    inbound = Direction.INBOUND
    for _ in range(factor):
        left = per_ring
        while left > 0:
            n = min(1024, left)
            # Fresh bytes per packet, as a capture delivers them.
            batch = [Packet(ts + i, bytes(template), frame_len, inbound, 0) for i in range(n)]
            sink.write_batch(batch)
            ts += n
            left -= n
        samples.append(round((_rss() - start) / MIB, 1))
    held = sink.stats().packets if isinstance(sink, FlightRecorder) else len(sink.held)
    return {"kind": kind, "rss_growth_mib": samples, "held": held}


def overload(frame_len: int, factor: int) -> dict[str, dict[str, object]]:
    out = {}
    for kind in ("recorder", "deque"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(frame_len), str(factor)],
            capture_output=True,
            text=True,
            check=True,
        )
        out[kind] = json.loads(done.stdout)
    return out


def dump_rate(batches: list[list[Packet]]) -> float:
    """MB/s of dump() of a full 64 MiB recorder to /dev/null."""
    recorder = FlightRecorder(0, RING, linktype=LinkType.ETHERNET)
    while recorder.stats().evicted == 0:
        for batch in batches:
            recorder.write_batch(batch)
    samples = []
    with open(os.devnull, "wb") as devnull:
        for _ in range(3):
            t0 = time.perf_counter()
            info = recorder.dump(devnull)
            samples.append(time.perf_counter() - t0)
    return info.bytes / statistics.median(samples) / 1e6


def versus_tshark(path: Path, batches: list[list[Packet]]) -> dict[str, float]:
    """Packets/s reading the file: our sink (reading included) against tshark's tables."""
    count = sum(len(b) for b in batches)
    out: dict[str, float] = {}
    for name, make, tables in (
        ("conv", lambda: ConversationSink(linktype=LinkType.ETHERNET),
         ["conv,ip", "conv,tcp", "conv,udp", "endpoints,ip"]),
        ("series", lambda: SeriesSink(linktype=LinkType.ETHERNET), ["io,stat,1"]),
    ):  # fmt: skip
        t0 = time.perf_counter()
        sink = make()
        with read_capture(path) as capture:
            for batch in capture:
                sink.write_batch(batch)
        out[name] = count / (time.perf_counter() - t0)
        if shutil.which("tshark"):
            args = ["tshark", "-q", "-n", "-r", str(path)]
            for table in tables:
                args += ["-z", table]
            t0 = time.perf_counter()
            subprocess.run(args, capture_output=True, check=True)
            out[f"tshark_{name}"] = count / (time.perf_counter() - t0)
    return out


def flood(count: int) -> dict[str, float]:
    """One-packet flows: ConversationSink(4096) against an unbounded dict of 5-tuples."""
    rng = random.Random(5)
    syn = bytes.fromhex(
        "02000000000b02000000000a080045000028000140004006000000000000" "0a000001"
        "0001001600000000000000005002ffff00000000"
    )  # fmt: skip
    frames = [
        syn[:26] + rng.randbytes(4) + syn[30:34] + rng.randbytes(2) + syn[36:] for _ in range(count)
    ]
    batches = [
        [Packet(i, f, len(f), Direction.INBOUND, 0) for i, f in enumerate(frames[j : j + 1024])]
        for j in range(0, count, 1024)
    ]
    out = {}
    for name in ("sink", "dict"):
        for traced in (False, True):  # timed untraced; memory traced in a second run
            gc.collect()
            if traced:
                tracemalloc.start()
            t0 = time.perf_counter()
            if name == "sink":
                sink = ConversationSink(linktype=LinkType.ETHERNET)
                for batch in batches:
                    sink.write_batch(batch)
            else:
                table: dict[tuple[bytes, bytes, bytes], list[int]] = {}
                for batch in batches:
                    for p in batch:
                        d = p[1]
                        key = (d[26:30], d[30:34], d[34:38])
                        entry = table.get(key)
                        if entry is None:
                            table[key] = entry = [0, 0]
                        entry[0] += 1
                        entry[1] += p[2]
            if traced:
                out[f"{name}_mib"] = tracemalloc.get_traced_memory()[1] / MIB
                tracemalloc.stop()
            else:
                out[f"{name}_pps"] = count / (time.perf_counter() - t0)
            sink = table = None  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300_000, help="packets in the file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--factor", type=int, default=10, help="overload: times the ring")
    parser.add_argument("--flood", type=int, default=300_000, help="one-packet flows")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, frame_len, factor = args.child
        print(json.dumps(child_overload(kind, int(frame_len), int(factor))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pcap"
        generate(path, args.count)
        batches = _batches(path)
        rates = append_rates(batches, args.rounds)
        small = overload(200, args.factor)
        dumped = dump_rate(batches)
        tables = versus_tshark(path, batches)
    flooded = flood(args.flood)
    figures = {
        "append": rates,
        "overload_200": small,
        "dump_mb_s": dumped,
        "tables": tables,
        "flood": flooded,
    }
    if args.json:
        print(json.dumps(figures))
        return
    rec, deq = small["recorder"], small["deque"]
    print(f"{args.count:,} packets (bench/gen_pcap.py), median of {args.rounds}; ring 64 MiB\n")
    print("| measure | capsvc | peer | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| FlightRecorder.write_batch | {rates['recorder']:,.0f} pkt/s | PcapWriter to "
        f"/dev/null {rates['pcap']:,.0f} pkt/s | {rates['recorder'] / rates['pcap']:.2f}x | "
        ">= 0.5x |"
    )
    print(
        f"| same | | deque recorder {rates['deque']:,.0f} pkt/s | "
        f"{rates['recorder'] / rates['deque']:.2f}x | |"
    )
    print(
        f"| RSS growth, {args.factor}x overload in 200-byte frames (per 64 MiB offered) | "
        f"{rec['rss_growth_mib']} MiB, {rec['held']:,} held | deque {deq['rss_growth_mib']} MiB, "
        f"{deq['held']:,} held | | flat, <= 66 MiB |"
    )
    print(f"| dump() of a full recorder to /dev/null | {dumped:,.0f} MB/s | | | |")
    for name, label in (("conv", "conv,ip/tcp/udp + endpoints,ip"), ("series", "io,stat,1")):
        if f"tshark_{name}" in tables:
            ratio = tables[name] / tables[f"tshark_{name}"]
            print(
                f"| read + {label} | {tables[name]:,.0f} pkt/s | tshark -q -z "
                f"{tables[f'tshark_{name}']:,.0f} pkt/s | {ratio:.2f}x | >= 1x |"
            )
    print(
        f"| {args.flood:,} one-packet flows | {flooded['sink_pps']:,.0f} pkt/s, peak "
        f"{flooded['sink_mib']:.1f} MiB | dict {flooded['dict_pps']:,.0f} pkt/s, peak "
        f"{flooded['dict_mib']:.1f} MiB | | bounded |"
    )


if __name__ == "__main__":
    main()
