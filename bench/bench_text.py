"""The text writer against tcpdump, on a generated Ethernet capture.

- Pipeline: read the file with capsvc's capture-file reader, format every packet with
  ``TextWriter`` and write the lines to /dev/null, in a fresh Python process (start-up included,
  as for tcpdump), against ``tcpdump -nS -r F > /dev/null``. Target: >= 0.5x tcpdump's lines/s.
- Formatter alone (in this process, CPU time): ``TextFormatter.format`` per packet, plain and
  verbose, for where the time goes.

Should capsvc's capture-file reader fail to import, the pipeline falls back to a minimal pcap
reader (and says so), so the writer's figure is still measured.

Every figure is the median of ``--repeat`` runs; capsvc and tcpdump run in turn, in the same run.
Wall-clock rates are what a user sees; CPU-time rates (user + system of the child process) are
the steadier comparison on a shared, busy machine.
The file comes from ``bench/gen_pcap.py`` (``generate(path, count, seed)``) when it is there, else
from a small built-in generator of the same mix (TCP/UDP/ICMP, IPv4 and some IPv6, 60-1500 bytes).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import socket
import statistics
import struct
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

PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")

#: A minimal pcap reader, used only when capsvc's capture-file reader cannot be imported.
SIMPLE_READER = r"""
import struct
from capsvc import Direction, Packet

def simple_batches(path, size=1024):
    with open(path, "rb") as f:
        data = f.read()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    scale = 1 if magic == 0xA1B23C4D else 1000
    record = struct.Struct("<IIII").unpack_from
    pos, batch, unknown = 24, [], Direction.UNKNOWN
    while pos + 16 <= len(data):
        sec, frac, incl, orig = record(data, pos)
        pos += 16
        batch.append(Packet(sec * 1_000_000_000 + frac * scale, data[pos : pos + incl], orig,
                            unknown, 0))
        pos += incl
        if len(batch) >= size:
            yield linktype, batch
            batch = []
    if batch:
        yield linktype, batch
"""

#: The capsvc side of the pipeline, run as its own process.
PIPELINE = (
    SIMPLE_READER
    + r"""
import sys
from capsvc.sinks._text import TextWriter

try:
    from capsvc.sources._pcapfile import read_capture
except Exception:  # the reader is unavailable: time the writer on the simple reader
    read_capture = None

with open(sys.argv[2], "w") as out:
    if read_capture is not None:
        with read_capture(sys.argv[1]) as capture:
            writer = TextWriter(out, linktype=capture.linktype)
            for batch in capture:
                writer.write_batch(batch)
    else:
        writer = None
        for linktype, batch in simple_batches(sys.argv[1]):
            writer = writer or TextWriter(out, linktype=linktype)
            writer.write_batch(batch)
"""
)


def reader_name() -> str:
    """Which reader the pipeline uses: capsvc's, or the simple one when it cannot be imported."""
    try:
        from capsvc.sources._pcapfile import read_capture  # noqa: F401
    except Exception:
        return "simple pcap reader (capsvc's reader did not import)"
    return "capsvc's reader"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(rng: random.Random) -> bytes:
    """One Ethernet frame of the mix: 70% TCP, 20% UDP, 5% ICMP; one in ten over IPv6."""
    size = rng.randrange(0, 1440)
    kind = rng.random()
    sport, dport = rng.randrange(1024, 65535), rng.choice((80, 443, 22, 53, 8080, 5201))
    if kind < 0.7:
        proto = 6
        flags = rng.choice((0x18, 0x10, 0x02, 0x12, 0x11))
        body = struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            rng.getrandbits(32),
            rng.getrandbits(32),
            0x50,
            flags,
            65535,
            0,
            0,
        )
        if dport == 80 and size > 40:
            body += b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n" + b"x" * (size - 48)
        else:
            body += rng.randbytes(size)
    elif kind < 0.95:
        proto = 17
        payload = rng.randbytes(min(size, 512))
        if dport == 53:
            payload = (
                struct.pack("!HHHHHH", rng.getrandbits(16), 0x0100, 1, 0, 0, 0)
                + b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
            )
        body = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    else:
        proto = 1
        body = struct.pack("!BBHHH", 8, 0, 0, rng.getrandbits(16), rng.getrandbits(16))
        body += b"\0" * 56
    if rng.random() < 0.1:
        src, dst = rng.randbytes(16), rng.randbytes(16)
        nh = 58 if proto == 1 else proto
        if proto == 1:
            body = b"\x80" + body[1:]
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(body), nh, 64, src, dst)
        return b"\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a\x86\xdd" + ip + body
    src = socket.inet_aton(f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    dst = socket.inet_aton(f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        rng.getrandbits(16),
        0x4000,
        64,
        proto,
        0,
        src,
        dst,
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return b"\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a\x08\x00" + header + body


def generate_fallback(path: Path, count: int, seed: int) -> None:
    """Write ``count`` packets drawn from a pool of 4096 generated frames (fast, reproducible)."""
    rng = random.Random(seed)
    pool = [_frame(rng) for _ in range(4096)]
    with path.open("wb") as f:
        f.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        parts = []
        for i in range(count):
            frame = pool[rng.randrange(4096)]
            parts.append(
                PCAP_RECORD.pack(
                    1_700_000_000 + i // 100_000, i % 1_000_000 // 10 * 10, len(frame), len(frame)
                )
            )
            parts.append(frame)
            if len(parts) >= 20000:
                f.write(b"".join(parts))
                parts.clear()
        f.write(b"".join(parts))


def make_capture(path: Path, count: int, seed: int) -> str:
    """Create the capture; returns which generator made it."""
    try:
        from gen_pcap import generate
    except ImportError:
        generate_fallback(path, count, seed)
        return "built-in generator"
    generate(path, count, seed)
    return "bench/gen_pcap.py"


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
    from capsvc.sinks._textfmt import TextFormatter

    scope: dict[str, Any] = {}
    exec(SIMPLE_READER, scope)
    linktype = 1
    packets: list[Any] = []
    for batch_linktype, batch in scope["simple_batches"](path):
        linktype = batch_linktype
        packets.extend(batch)
        if len(packets) >= limit:
            break
    fmt = TextFormatter(linktype, verbose=verbose).format
    t0 = time.process_time()
    for p in packets:
        fmt(p[0], p[1], p[2], p[3])
    return len(packets) / (time.process_time() - t0)


def count_packets(path: Path) -> int:
    with path.open("rb") as f:
        f.seek(24)
        n = 0
        while head := f.read(16):
            f.seek(PCAP_RECORD.unpack(head)[2], 1)
            n += 1
    return n


def run(count: int, repeat: int, workdir: Path) -> dict[str, float | str]:
    src = workdir / "mixed.pcap"
    origin = make_capture(src, count, 1)
    packets = count_packets(src)
    ours, peer, plain, verbose = [], [], [], []
    for _ in range(repeat):
        ours.append(_timed([sys.executable, "-c", PIPELINE, str(src), "/dev/null"]))
        peer.append(_timed(["tcpdump", "-nS", "-r", str(src)]))
        plain.append(formatter_rate(src, False))
        verbose.append(formatter_rate(src, True))
    m = statistics.median
    ours_wall, ours_cpu = m(w for w, _ in ours), m(c for _, c in ours)
    peer_wall, peer_cpu = m(w for w, _ in peer), m(c for _, c in peer)
    return {
        "file": origin,
        "reader": reader_name(),
        "packets": packets,
        "text_lps": packets / ours_wall,
        "tcpdump_lps": packets / peer_wall,
        "text_vs_tcpdump": peer_wall / ours_wall,
        "text_cpu_lps": packets / ours_cpu,
        "tcpdump_cpu_lps": packets / peer_cpu,
        "text_vs_tcpdump_cpu": peer_cpu / ours_cpu,
        "format_lps": m(plain),
        "format_verbose_lps": m(verbose),
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
        f"{result['packets']:,} packets ({result['file']}; {result['reader']}), "
        f"median of {args.repeat}"
    )
    print()
    print("| job | capsvc | peer | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| read + TextWriter to /dev/null | {result['text_lps']:,.0f} lines/s "
        f"| tcpdump -nS -r {result['tcpdump_lps']:,.0f} lines/s "
        f"| {result['text_vs_tcpdump']:.2f}x | >= 0.5x |"
    )
    print(
        f"| same, CPU time (user+system) | {result['text_cpu_lps']:,.0f} lines/s "
        f"| tcpdump -nS -r {result['tcpdump_cpu_lps']:,.0f} lines/s "
        f"| {result['text_vs_tcpdump_cpu']:.2f}x | >= 0.5x |"
    )
    print(f"| TextFormatter.format alone (CPU) | {result['format_lps']:,.0f} lines/s | | | |")
    print(
        f"| TextFormatter.format, verbose (CPU) | {result['format_verbose_lps']:,.0f} lines/s "
        "| | | |"
    )


if __name__ == "__main__":
    main()
