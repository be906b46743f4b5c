"""capsvc's tcpdump format against ``tcpdump -n -r`` on both capture corpora.

Prints, as markdown: the share of packets whose text is byte-identical to tcpdump's, overall
and for each protocol capsvc decodes in tcpdump's words (the target there is 100%, which
tests/format/test_tcpdump_agreement.py enforces); the protocols that make up the rest (those
tcpdump decodes and capsvc prints as an unknown payload); and the formatter's speed beside the
default line's, on a generated capture (bench/gen_pcap.py).

Usage: ``python bench/bench_tcpdump_agreement.py [--count N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "format"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from _agreement import LISTED, measure  # noqa: E402
from _corpora import CORPORA  # noqa: E402
from gen_pcap import generate  # noqa: E402

from capsvc.format._line import TextFormatter  # noqa: E402
from capsvc.format._tcpdump import TcpdumpFormatter  # noqa: E402
from capsvc.sources import read_capture  # noqa: E402


def _family(name: str) -> str:
    """Group names tcpdump prints with versions or details (``app:NTPv4`` -> ``NTP``)."""
    name = name.split(":", 1)[1] if name.startswith(("app:", "TCP:")) else name
    if name[:1].isdigit():
        return "lines that start with an address (DECnet, PGM, ...)"
    for suffix in ("v0", "v1", "v2", "v3", "v4", "v5", "v6"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name.split("-", 1)[0] if name.startswith(("HSRP", "BCM")) else name


def _pct(part: int, whole: int) -> str:
    """A share that reads 100% only when it is (99.97% is not rounded up)."""
    if whole == 0 or part == whole:
        return "100%"
    return f"{int(part / whole * 10000) / 100:.2f}%"


def _rate(formatter: TcpdumpFormatter | TextFormatter, packets: list) -> float:  # type: ignore[type-arg]
    fmt = formatter.format
    start = time.process_time()
    for p in packets:
        fmt(p[0], p[1], p[2], p[3])
    return len(packets) / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200_000, help="packets for the speed run")
    args = parser.parse_args()
    paths = [p for folder in CORPORA if folder.is_dir() for p in sorted(folder.iterdir())
             if p.suffix in (".pcap", ".pcapng")]  # fmt: skip
    result = measure(paths)
    total = sum(result.total.values())
    agree = sum(result.agree.values())
    print(f"{len(paths)} files, {total:,} packets; tcpdump 4.99 as Debian ships it\n")
    print("| protocol | packets | byte-identical | share |")
    print("|---|---:|---:|---:|")
    print(f"| **all** | {total:,} | {agree:,} | **{_pct(agree, total)}** |")
    for name in LISTED:
        share = _pct(result.agree[name], result.total[name])
        print(f"| {name} | {result.total[name]:,} | {result.agree[name]:,} | {share} |")
    rest = Counter(_family(n) for _, _, n, _, _ in result.differ)
    listed = sum(result.total[n] for n in LISTED)
    print(
        f"\nThe listed protocols are {listed:,} packets ({listed / total:.0%}); the other "
        f"{total - agree:,} differ because tcpdump decodes their protocol and capsvc prints it "
        "as tcpdump prints an unknown one (`ip-proto-N LEN`, `UDP, length N`, a hex dump). "
        "Those protocols, most packets first:\n"
    )
    print("| protocol (as tcpdump names it) | packets that differ |")
    print("|---|---:|")
    for name, count in rest.most_common(15):
        print(f"| {name} | {count:,} |")
    others = sum(rest.values()) - sum(c for _, c in rest.most_common(15))
    print(f"| {len(rest) - 15} others | {others:,} |")
    print(
        "\nWith tcpdump's flags (the same files, both printed with the flag; the listed "
        "protocols' packets only):\n"
    )
    print("| flags | listed packets | byte-identical | share |")
    print("|---|---:|---:|---:|")
    for flags in (("-v",), ("-vv",), ("-e",), ("-q",), ("-S",), ("-x",), ("-X",)):
        flagged = measure(paths, *flags)
        count = sum(flagged.total[n] for n in LISTED)
        same = sum(flagged.agree[n] for n in LISTED)
        print(f"| `{' '.join(flags)}` | {count:,} | {same:,} | {_pct(same, count)} |")
    print(
        "\nWhat differs there: `-v`/`-vv` details of ICMPv6 options, RPL and DNS EDNS "
        "options, which tcpdump decodes further."
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mixed.pcap"
        generate(path, args.count)
        packets = [p for batch in read_capture(path) for p in batch]
    default = _rate(TextFormatter(1), packets)
    tcpdump = _rate(TcpdumpFormatter(1), packets)
    print(
        f"\nFormatter speed (CPU time, {len(packets):,} generated packets, mixed profile): "
        f"tcpdump format {tcpdump:,.0f} lines/s, default line {default:,.0f} lines/s "
        f"({tcpdump / default:.2f}x)."
    )


if __name__ == "__main__":
    main()
