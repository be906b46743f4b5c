"""Test-wide fixtures: the shared pcaps corpus and cleanup of test networks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from _helpers import CORPUS
from _netns import remove_leftovers

# scripts/mutation.sh: the same examples on every run (a mutant is killed or not, not by chance),
# no deadline (a mutant may be slow without being wrong).
settings.register_profile("mutation", derandomize=True, deadline=None, print_blob=False)


@pytest.fixture(scope="session", autouse=True)
def _clean_networks() -> Iterator[None]:
    remove_leftovers()
    yield
    remove_leftovers()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real-world capture corpus (../shared/pcaps); skips when absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"capture corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test (root only)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs")
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
