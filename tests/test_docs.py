"""The documents' examples run as written: every Python block of docs/embedding.md, in order in
one directory (a later one reads what an earlier one wrote), each compared with the ``text``
block that follows it where there is one; and the README's embedding example, whose file
tcpdump then reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "embedding.md"
README = ROOT / "README.md"
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def blocks(path: Path) -> list[tuple[str, str | None]]:
    """The Python blocks of a markdown file, each with the ``text`` block right after it."""
    text = path.read_text()
    found = [(m.group(1), m.group(2), m.start(), m.end()) for m in _BLOCK.finditer(text)]
    out: list[tuple[str, str | None]] = []
    for i, (lang, body, _start, end) in enumerate(found):
        if lang != "python":
            continue
        expected = None
        if i + 1 < len(found) and found[i + 1][0] == "text":
            between = text[end : found[i + 1][2]]
            if not between.strip():
                expected = found[i + 1][1]
        out.append((body, expected))
    return out


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = cwd / "example.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def needs_root(code: str) -> bool:
    return "AfPacketSource(" in code or "LibpcapSource(" in code


def test_the_guide_has_its_examples() -> None:
    found = blocks(GUIDE)
    assert len(found) >= 7
    assert sum(expected is not None for _, expected in found) >= 5
    text = GUIDE.read_text()
    for topic in ("writer thread", "may block", "stats()", "trio.run", "await session.wait()"):
        assert topic in text, topic


def test_every_example_of_the_guide_runs(tmp_path: Path) -> None:
    ran = 0
    for n, (code, expected) in enumerate(blocks(GUIDE), 1):
        if needs_root(code) and os.geteuid() != 0:
            continue  # the others still run; test_the_live_example_of_the_guide says why
        done = run(code, tmp_path)
        assert done.returncode == 0, f"example {n}:\n{code}\n{done.stderr}"
        if expected is not None:
            assert done.stdout == expected, f"example {n}"
        ran += 1
    assert ran >= 6


def test_the_live_example_of_the_guide(tmp_path: Path) -> None:
    live = [code for code, _ in blocks(GUIDE) if needs_root(code)]
    assert live, "the guide shows a live capture"
    if os.geteuid() != 0:
        pytest.skip("a live capture needs CAP_NET_RAW (root)")
    for code in live:
        done = run(code, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("captured ")


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    section = README.read_text().split("## Embedding", 1)[1]
    code = _BLOCK.search(section)
    assert code is not None and code.group(1) == "python"
    body = code.group(2)
    assert "linktype=capsvc.LinkType.RAW" in body  # passed explicitly, as the text says
    done = run(body, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("10.0.0.1:40000 > 10.0.0.2:443") == 2  # the text log
    assert "Stats(packets=2, " in done.stdout and "filtered=0" in done.stdout
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump to read the file")
    read = subprocess.run(
        ["tcpdump", "-n", "-r", str(tmp_path / "tunnel.pcap")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.count("IP 10.0.0.1.40000 > 10.0.0.2.443") == 2
