"""Fixtures for the PF_RING tests: the stand-in libpfring (compiled once) and its environment,
and the real libpfring (built once into a cache, see _pfring_build)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pfring_build import build_real_library
from _pfring_fake import FAKE_ENV, FRAMES, SOURCE, FakeRing, write_pcap


@pytest.fixture(scope="session")
def fake_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libpfring.so built from fake_pfring.c with the system compiler."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build the stand-in libpfring")
    out = tmp_path_factory.mktemp("pfring") / "libpfring.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out), str(SOURCE)], check=True
    )
    return out


@pytest.fixture
def fake(fake_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRing]:
    """A clean stand-in environment serving FRAMES to any non-``pcap:`` device name."""
    for name in FAKE_ENV:
        monkeypatch.delenv(name, raising=False)
    ring = FakeRing(
        fake_library,
        write_pcap(tmp_path / "frames.pcap", FRAMES),
        tmp_path / "calls.log",
        monkeypatch,
    )
    monkeypatch.setenv("CAPSVC_FAKE_PFRING_LOG", str(ring.log))
    monkeypatch.setenv("CAPSVC_FAKE_PFRING_PCAP", str(ring.pcap))
    yield ring


@pytest.fixture(scope="session")
def real_library() -> Path:
    """The real libpfring, built from ../shared/pfring once (cached); skips where it cannot be."""
    library, why = build_real_library()
    if library is None:
        pytest.skip(f"the real libpfring cannot be built here: {why}")
    return library


@pytest.fixture(params=["stand-in", "real"])
def any_library(request: pytest.FixtureRequest, fake_library: Path) -> Path:
    """Each library in turn: the stand-in, then the real one (skipped where it cannot build)."""
    if request.param == "stand-in":
        return fake_library
    library: Path = request.getfixturevalue("real_library")
    return library
