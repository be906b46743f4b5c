"""py.typed: an application's type checker sees capsvc's annotations (the package as installed,
found the way an application's mypy finds it), and the small application in app.py passes
``mypy --strict``; a mistake in its use of the API is reported, naming capsvc's types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).with_name("app.py")


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on one file, run outside the repository (no project config, no
    MYPYPATH): capsvc is found as installed."""
    pytest.importorskip("mypy")
    app = tmp_path / "app.py"
    app.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "c"), "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_the_application_passes_mypy_strict(tmp_path: Path) -> None:
    done = mypy(tmp_path, APP.read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout


def test_a_misuse_of_the_api_is_reported(tmp_path: Path) -> None:
    bad = APP.read_text().replace(
        'AfPacketSource(interface, filter="udp port 53")', "AfPacketSource(interface, filter=53)"
    )
    bad = bad.replace(
        "sport, dport = ports(packet, session.linktype)", "sport, dport = packet.ts_ns"
    )
    done = mypy(tmp_path, bad)
    assert done.returncode == 1
    assert 'Argument "filter" to "AfPacketSource" has incompatible type "int"' in done.stdout
    assert '"str | Node | None"' in done.stdout
    assert "int" in done.stdout and "not iterable" in done.stdout
