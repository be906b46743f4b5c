"""End-to-end ``capsvc read`` against its peers, on a generated 1,000,000-packet file.

- Filter and write: ``capsvc read -r F -w out.pcap 'tcp port 80'`` against a loop of
  ``dpkt.pcap.Reader`` + dpkt decode + the same test + ``dpkt.pcap.Writer`` (target: >= 1,000,000
  packets/s and >= 10x the dpkt loop).
- Text: ``capsvc read -r F > /dev/null`` against ``tcpdump -nS -r F > /dev/null`` (target: >= 0.5x
  tcpdump's lines/s).

Each figure is the median of ``--repeat`` runs; both sides run in turn in this process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_pcap import generate  # noqa: E402

CAPSVC = [sys.executable, "-m", "capsvc.cli"]

DPKT_LOOP = r"""
import sys, dpkt
src, dst = sys.argv[1], sys.argv[2]
with open(src, 'rb') as f, open(dst, 'wb') as g:
    w = dpkt.pcap.Writer(g, linktype=1)
    n = 0
    for ts, buf in dpkt.pcap.Reader(f):
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            tcp = ip.data
            if isinstance(tcp, dpkt.tcp.TCP) and (tcp.sport == 80 or tcp.dport == 80):
                w.writepkt(buf, ts)
                n += 1
print(n)
"""


def _timed(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=stdout, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _count(path: Path) -> int:
    out = subprocess.run(
        ["tcpdump", "-nr", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return out.count("\n")


def run(count: int, repeat: int, workdir: Path) -> dict[str, float]:
    src = workdir / "mixed.pcap"
    generate(src, count=count, seed=1)
    ours_out, dpkt_out = workdir / "ours.pcap", workdir / "dpkt.pcap"
    ours, peer, text, tcpdump = [], [], [], []
    for _ in range(repeat):
        ours.append(_timed([*CAPSVC, "read", "-r", str(src), "-w", str(ours_out), "tcp port 80"]))
        peer.append(_timed([sys.executable, "-c", DPKT_LOOP, str(src), str(dpkt_out)]))
        text.append(_timed([*CAPSVC, "read", "-r", str(src)]))
        tcpdump.append(_timed(["tcpdump", "-nS", "-r", str(src)]))
    matched_ours, matched_dpkt = _count(ours_out), _count(dpkt_out)
    if matched_ours != matched_dpkt:
        raise SystemExit(f"outputs differ: capsvc {matched_ours} packets, dpkt {matched_dpkt}")
    m = statistics.median
    return {
        "packets": count,
        "matched": matched_ours,
        "read_write_pps": count / m(ours),
        "dpkt_pps": count / m(peer),
        "read_write_vs_dpkt": m(peer) / m(ours),
        "text_lps": count / m(text),
        "tcpdump_lps": count / m(tcpdump),
        "text_vs_tcpdump": m(tcpdump) / m(text),
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
        f"{result['packets']:,} packets, {result['matched']:,} match 'tcp port 80', "
        f"{os.cpu_count()} cores"
    )
    print("| job | capsvc | peer | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| read -w, 'tcp port 80' | {result['read_write_pps']:,.0f} pkt/s "
        f"| dpkt loop {result['dpkt_pps']:,.0f} pkt/s | {result['read_write_vs_dpkt']:.1f}x "
        f"| >= 1,000,000 pkt/s and >= 10x |"
    )
    print(
        f"| read, text to /dev/null | {result['text_lps']:,.0f} lines/s "
        f"| tcpdump -nS {result['tcpdump_lps']:,.0f} lines/s "
        f"| {result['text_vs_tcpdump']:.2f}x | >= 0.5x |"
    )


if __name__ == "__main__":
    main()
