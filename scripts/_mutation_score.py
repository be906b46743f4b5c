"""Per-module mutation scores from ``mutmut results --all true`` (used by scripts/mutation.sh).

``python scripts/_mutation_score.py RESULTS SECONDS TOTALS``: prints one line per module and
the surviving mutants, and writes ``killed all`` to TOTALS. Killed: mutmut's killed, timeout
and segfault; every other status (survived, no tests, suspicious, ...) is not killed.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

KILLED = {"killed", "timeout", "segfault"}
LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")
MODULE = re.compile(r"^(?P<module>.*?)\.x[_\u01c1]")


def main(results: Path, seconds: str, totals: Path) -> None:
    by_module: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in results.read_text().splitlines():
        found = LINE.match(line)
        if found is None:
            continue
        name, status = found["name"], found["status"]
        module = MODULE.match(name)
        by_module[module["module"] if module else "?"].append((name, status))
    killed = every = 0
    for module, mutants in sorted(by_module.items()):
        k = sum(status in KILLED for _name, status in mutants)
        n = len(mutants)
        killed, every = killed + k, every + n
        print(f"{module}: {100 * k / n:.1f}% (killed {k} of {n})")
        for name, status in mutants:
            if status not in KILLED:
                print(f"    {status}: {name}")
    print(f"  ({seconds} s)")
    totals.write_text(f"{killed} {every}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
