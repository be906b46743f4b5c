"""Test-wide fixtures: the shared pcaps corpus, cleanup of test networks, and the event loop
backends of the tests marked ``anyio``.

Tests marked ``pytest.mark.anyio`` run once per backend of ``ANYIO_BACKENDS`` (asyncio, asyncio
on uvloop, trio) through anyio's pytest plugin; every other async test runs on asyncio through
pytest-asyncio, whose auto mode would otherwise take the anyio ones too (the hook below gives
them back to anyio's plugin).
"""

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

#: The backends an anyio-marked test runs on: asyncio, asyncio with uvloop, trio.
ANYIO_BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param("trio", id="trio"),
]


@pytest.fixture(params=ANYIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """The backend of an anyio-marked test (anyio's plugin runs it)."""
    return request.param


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give the anyio-marked tests that pytest-asyncio's auto mode took back to anyio's plugin
    (as plain test functions: anyio's ``pytest_pyfunc_call`` then runs them on their backend)."""
    for i, item in enumerate(items):
        if not isinstance(item, pytest.Function) or type(item) is pytest.Function:
            continue
        if item.get_closest_marker("anyio") is None:
            continue
        plain = pytest.Function.from_parent(
            item.parent,
            name=item.name,
            callspec=getattr(item, "callspec", None),
            callobj=item.obj,
            fixtureinfo=item._fixtureinfo,
            keywords=item.keywords,
            originalname=item.originalname,
        )
        plain.own_markers = [m for m in item.own_markers if m.name != "asyncio"]
        items[i] = plain


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
