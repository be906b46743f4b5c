"""End-to-end ``capsvc read`` against its peers, on generated 1,000,000-packet files.

Both traffic profiles of bench/gen_pcap.py: ``mixed`` (about 10% match ``tcp port 80``, mostly
small frames) and ``heavy`` (a quarter match, TCP payloads of 0/10/200/1400 bytes).

- Filter and write: ``capsvc read -r F -w out.pcap 'tcp port 80'`` against a loop of
  ``dpkt.pcap.Reader`` + dpkt decode + the same test + ``dpkt.pcap.Writer`` (target: >= 10x the
  dpkt loop) and against ``tcpdump -r F -w out.pcap 'tcp port 80'`` (target: >= 0.5x).
- Text: ``capsvc read -r F > /dev/null`` against ``tcpdump -nS -r F > /dev/null`` (target: >= 0.5x
  tcpdump's lines/s).

Each figure is the median of ``--repeat`` runs; all sides run in turn in this process tree, and
the three filtered outputs must hold the same number of packets. capsvc's modules are
byte-compiled first, as an installed package's are (pip compiles them at install; a source tree
under PYTHONDONTWRITEBYTECODE would compile every module at every start).
"""

from __future__ import annotations

import argparse
import compileall
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

from gen_pcap import PROFILES, generate  # noqa: E402

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


def run(count: int, repeat: int, workdir: Path, profile: str) -> dict[str, float | str]:
    src = workdir / f"{profile}.pcap"
    generate(src, count=count, seed=1, profile=profile)
    outs = {name: workdir / f"{name}.pcap" for name in ("ours", "dpkt", "tcpdump")}
    ours, peer, tcpdump_w, text, tcpdump = [], [], [], [], []
    for _ in range(repeat):
        ours.append(
            _timed([*CAPSVC, "read", "-r", str(src), "-w", str(outs["ours"]), "tcp port 80"])
        )
        peer.append(_timed([sys.executable, "-c", DPKT_LOOP, str(src), str(outs["dpkt"])]))
        tcpdump_w.append(
            _timed(["tcpdump", "-r", str(src), "-w", str(outs["tcpdump"]), "tcp port 80"])
        )
        text.append(_timed([*CAPSVC, "read", "-r", str(src)]))
        tcpdump.append(_timed(["tcpdump", "-nS", "-r", str(src)]))
    matched = {name: _count(path) for name, path in outs.items()}
    if len(set(matched.values())) != 1:
        raise SystemExit(f"filtered outputs differ ({profile}): {matched}")
    m = statistics.median
    return {
        "profile": profile,
        "packets": count,
        "matched": matched["ours"],
        "read_write_pps": count / m(ours),
        "dpkt_pps": count / m(peer),
        "read_write_vs_dpkt": m(peer) / m(ours),
        "tcpdump_w_pps": count / m(tcpdump_w),
        "read_write_vs_tcpdump": m(tcpdump_w) / m(ours),
        "text_lps": count / m(text),
        "tcpdump_lps": count / m(tcpdump),
        "text_vs_tcpdump": m(tcpdump) / m(text),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", choices=PROFILES, nargs="*", default=list(PROFILES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not shutil.which("tcpdump"):
        raise SystemExit("needs tcpdump")
    compileall.compile_dir(str(HERE.parent / "capsvc"), quiet=1)
    results = []
    with tempfile.TemporaryDirectory(prefix="capsvc-bench-") as tmp:
        for profile in args.profile:
            results.append(run(args.count, args.repeat, Path(tmp), profile))
            for leftover in Path(tmp).iterdir():  # one profile's files at a time on disk
                leftover.unlink()
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"{args.count:,} packets per file (bench/gen_pcap.py profiles), median of "
        f"{args.repeat} runs, {os.cpu_count()} cores; capsvc byte-compiled as installed\n"
    )
    print("| profile | job | capsvc | peer | ratio | target |")
    print("|---|---|---|---|---|---|")
    for r in results:
        name = f"{r['profile']} ({r['matched']:,} match)"
        print(
            f"| {name} | read -w, 'tcp port 80' | {r['read_write_pps']:,.0f} pkt/s "
            f"| dpkt loop {r['dpkt_pps']:,.0f} pkt/s | {r['read_write_vs_dpkt']:.1f}x | >= 10x |"
        )
        print(
            f"| {name} | read -w, 'tcp port 80' | {r['read_write_pps']:,.0f} pkt/s "
            f"| tcpdump -r -w {r['tcpdump_w_pps']:,.0f} pkt/s "
            f"| {r['read_write_vs_tcpdump']:.2f}x | >= 0.5x |"
        )
        print(
            f"| {name} | read, text to /dev/null | {r['text_lps']:,.0f} lines/s "
            f"| tcpdump -nS {r['tcpdump_lps']:,.0f} lines/s "
            f"| {r['text_vs_tcpdump']:.2f}x | >= 0.5x |"
        )


if __name__ == "__main__":
    main()
