"""Run the benchmark scripts and write docs/benchmarks.md from their output.

Each script prints a markdown table of its own figures, every one measured against its peer in
the same run (ratios and medians, since the machine is shared and noisy). This script adds the
machine's description and pastes each table under its heading.

Usage: ``python bench/report.py [--only NAME ...] [--quick]`` (root is needed for the live ones).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (name, script, arguments, arguments with --quick, heading)
BENCHES: list[tuple[str, str, list[str], list[str], str]] = [
    (
        "offer",
        "bench_offer.py",
        [],
        ["--seconds", "5"],
        "Session.offer() and memory under overload",
    ),
    ("read", "bench_cli_read.py", [], ["--count", "200000"], "capsvc read: filter, write, text"),
    ("reader", "bench_read.py", [], [], "Capture-file reader"),
    ("text", "bench_text.py", [], [], "Text writer"),
    (
        "tcpdump",
        "bench_tcpdump_agreement.py",
        [],
        ["--count", "50000"],
        "tcpdump format: agreement with tcpdump",
    ),
    ("filter", "bench_filter.py", [], [], "Filter matchers and compiler"),
    ("live", "live.py", [], ["--quick"], "Live capture: capsvc capture against tcpdump"),
    (
        "libpcap",
        "live_libpcap.py",
        ["--rates", "0,300000"],
        ["--count", "200000"],
        "Live capture: LibpcapSource against tcpdump",
    ),
    ("service", "bench_service.py", [], ["--quick"], "Service under load"),
    (
        "recorder",
        "bench_recorder.py",
        [],
        ["--count", "100000", "--rounds", "2"],
        "Flight recorder and conversations",
    ),
]


def machine() -> str:
    """A short description of the machine the figures were taken on."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


def run_one(script: str, args: list[str]) -> str:
    path = HERE / script
    if not path.exists():
        return f"_not run: {script} is missing_\n"
    proc = subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, cwd=ROOT, timeout=3600
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return f"_failed (exit {proc.returncode}):_\n\n```\n{tail}\n```\n"
    return proc.stdout.strip() + "\n"


def _previous_sections(path: Path) -> dict[str, str]:
    """Sections of an existing report by heading, kept when ``--only`` skips their bench."""
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        heading = chunk.split("\n", 1)[0]
        found[heading] = "## " + chunk.rstrip() + "\n"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="bench names to run")
    parser.add_argument("--quick", action="store_true", help="smaller runs (not for the record)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    previous = _previous_sections(Path(args.output))
    sections = []
    for name, script, full, quick, heading in BENCHES:
        if args.only and name not in args.only:
            if heading in previous:
                sections.append(previous[heading])
            continue
        print(f"running {name} ...", file=sys.stderr)
        body = run_one(script, quick if args.quick else full)
        sections.append(f"## {heading}\n\n`python bench/{script}` ({machine()})\n\n{body}")
    text = (
        "# Benchmarks\n\n"
        "Written by `bench/report.py` from the scripts' own output. Every figure is measured\n"
        "against its peer in the same run (medians; ratios, since the machine is shared).\n\n"
        "Each section names the machine and day it was measured on. What each change to the\n"
        'live path bought, step by step: docs/architecture.md, "Live capture: where the CPU\n'
        'goes".\n\n' + "\n".join(sections)
    )
    Path(args.output).write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
