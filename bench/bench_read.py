"""Capture-file reading throughput: capsvc's reader against dpkt.pcap.Reader, same file, same run.

``python bench/bench_read.py [FILE] [--runs 3]``: FILE defaults to a 1,000,000-packet file made by
bench/gen_pcap.py in a temporary directory. Prints packets/s (median of the runs) of:

- ``capsvc read_capture``: the synchronous reader (what tools and ``capsvc read`` use);
- ``dpkt pcap.Reader``: a loop over ``dpkt.pcap.Reader(f)``, the peer;
- ``PcapFileSource inline``: the async source as shipped (inline reads of a regular file);
- ``PcapFileSource thread``: the same loop with every read handed to a worker thread
  (``anyio.to_thread``), the alternative the source rejects for regular files;

and the ratios capsvc/dpkt and inline/thread. Each reader touches every packet's bytes length.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread
import dpkt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capsvc.sources.capfile._source import PcapFileSource, read_capture


def read_capsvc(path: str) -> int:
    total = 0
    with read_capture(path) as cap:
        for batch in cap:
            for packet in batch:
                total += len(packet[1])
    return total


def read_dpkt(path: str) -> int:
    total = 0
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            total += len(buf)
    return total


async def _source(path: str, threaded: bool) -> int:
    source = PcapFileSource(path)
    total = 0
    if threaded:
        # The rejected variant: the same decoder, every chunk read in a worker thread.
        cap = source._file
        dec = cap.decoder
        while True:
            batch = dec.next_batch()
            if batch:
                for packet in batch:
                    total += len(packet[1])
                await asyncio.sleep(0)
            elif dec.finished:
                break
            else:
                dec.feed(await anyio.to_thread.run_sync(cap.read_chunk))
    else:
        async for batch in source:
            for packet in batch:
                total += len(packet[1])
    await source.aclose()
    return total


def read_source_inline(path: str) -> int:
    return asyncio.run(_source(path, threaded=False))


def read_source_thread(path: str) -> int:
    return asyncio.run(_source(path, threaded=True))


def measure(fn: Callable[[str], int], path: str, packets: int, runs: int) -> float:
    """Median packets/s of ``runs`` calls."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(path)
        rates.append(packets / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", help="pcap file (default: generate 1M packets)")
    parser.add_argument("--runs", type=int, default=3, help="runs per reader (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from gen_pcap import generate

            path = str(Path(tmp) / "bench.pcap")
            generate(path, 1_000_000, seed=1)
        packets = sum(len(b) for b in read_capture(path))
        assert read_capsvc(path) == read_dpkt(path), "readers disagree on the bytes"
        results = {
            "capsvc read_capture": measure(read_capsvc, path, packets, args.runs),
            "dpkt pcap.Reader": measure(read_dpkt, path, packets, args.runs),
            "PcapFileSource inline": measure(read_source_inline, path, packets, args.runs),
            "PcapFileSource thread": measure(read_source_thread, path, packets, args.runs),
        }
    print(f"file: {packets} packets, median of {args.runs} runs")
    for name, rate in results.items():
        print(f"{name:24s} {rate / 1e6:7.2f} M packets/s")
    ratio = results["capsvc read_capture"] / results["dpkt pcap.Reader"]
    print(f"ratio capsvc/dpkt: {ratio:.2f}x")
    ratio = results["PcapFileSource inline"] / results["PcapFileSource thread"]
    print(f"ratio source inline/thread reads: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
