"""``capsvc read`` over every file of both capture corpora, judged by tcpdump.

For each file of ../shared/pcaps and ../shared/pcaps-linktypes: ``capsvc read -r F -w OUT``
succeeds, its summary counts what ``tcpdump -n --count -r F`` counts, and tcpdump prints OUT
exactly as it prints F (every packet, byte for byte with ``-xx``, the timestamps to the
nanosecond, the same link type). The jobs run in this process through ``capsvc.cli.main``, the
entry point the ``capsvc`` command calls, so the 200 files take seconds, not minutes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "format"))
from _corpora import CORPORA, corpus_files, packets_of, tcpdump_count

from capsvc.cli import main

#: Files whose copy tcpdump cannot print the same, and why; their packets are compared as
#: capsvc's reader sees them instead.
REPAIRED = {
    # A record says it had 0 bytes on the wire but 4 were captured; the copy says 4 (a
    # packet is never shorter on the wire than captured), which tcpdump prints as a packet
    # where it printed "[Invalid header: len==0]" for the original.
    "pim_header_asan-2.pcap",
}


def _tcpdump(path: Path) -> tuple[list[str], list[str]]:
    """tcpdump's packet lines of ``path`` (hex included, nanosecond times) and link types."""
    proc = subprocess.run(
        ["tcpdump", "-n", "-tt", "-xx", "--time-stamp-precision=nano", "-r", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        env={"TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    return proc.stdout.splitlines(), re.findall(r"link-type (\S+)", proc.stderr)


@pytest.mark.parametrize("folder", CORPORA, ids=lambda p: p.name)
def test_read_counts_as_tcpdump_and_write_copies_every_packet(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = corpus_files(folder)
    assert len(files) > 20
    for path in files:
        out = tmp_path / path.name  # pcapng stays pcapng (its interfaces are kept)
        status = main(["read", "-r", str(path), "-w", str(out)])
        err = capsys.readouterr().err
        assert status == 0, (path.name, err)
        assert "Traceback" not in err, path.name
        expected = tcpdump_count(path)
        summary = err.strip().splitlines()[-1]
        assert summary.startswith(f"{expected} packets read, {expected} matched, "), path.name
        assert f", {expected} written, 0 dropped" in summary, path.name
        assert tcpdump_count(out) == expected, path.name
        if path.name in REPAIRED:
            theirs = [
                (lt, p.ts_ns, p.data, max(p.wire_len, len(p.data))) for lt, p in packets_of(path)
            ]
            ours = [(lt, p.ts_ns, p.data, p.wire_len) for lt, p in packets_of(out)]
            assert ours == theirs, path.name
            continue
        assert _tcpdump(out) == _tcpdump(path), path.name
