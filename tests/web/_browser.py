"""Shared pieces of the browser tests: where Debian puts Chromium, its flags, the service."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1800",
)


def need_browser() -> None:
    """Skip unless Debian's chromium and chromium-driver and Selenium are installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(
            f"needs {' and '.join(missing)} (apt-get install chromium chromium-driver; "
            "scripts/setup.sh installs them)"
        )
    pytest.importorskip("selenium", reason="needs selenium (pip install -e '.[test]')")


@dataclass
class Service:
    """A ``capsvc serve`` process."""

    url: str
    token: str
    output_dir: Path
    process: subprocess.Popen[str]
