"""Fixtures of the service tests: a real server on 127.0.0.1 and a private test network."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _netns import VethPair, veth_pair
from _service import Starter, serving


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Starter]:
    """``await serve(service={...}, sessions=[...])`` starts a server on 127.0.0.1:0."""
    async for start in serving(tmp_path):
        yield start


@pytest.fixture(scope="module")
def veth() -> Iterator[VethPair]:
    """One private test network for the module's tests."""
    with veth_pair() as pair:
        deadline = time.monotonic() + 5
        while "state UP" not in pair.exec("ip", "link", "show", pair.peer).stdout.decode():
            assert time.monotonic() < deadline, "the test network did not come up"
            time.sleep(0.02)
        yield pair


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[str]]]:
    """Serve processes a test started; any still running at its end is killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
