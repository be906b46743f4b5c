"""The real libpfring for the tests: built once from ../shared/pfring into a cache directory.

``../shared/pfring/build.sh OUTDIR`` compiles PF_RING's userland library from its source
tarball (gcc, make, bison, flex, libpcap-dev). The output goes to
``$XDG_CACHE_HOME/capsvc/pfring/<tarball name>`` (``~/.cache`` by default), so later runs, and
other checkouts on the machine, reuse it; a lock file keeps two runs from building into the
same directory at once. ``$CAPSVC_PFRING_REAL_LIBRARY`` names an already built library instead.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: The PF_RING source and its build script, beside the project.
SHARED = ROOT.parent / "shared" / "pfring"
#: Names a built libpfring to use instead of building one.
REAL_ENV = "CAPSVC_PFRING_REAL_LIBRARY"
#: The longest a build may take (it takes seconds; a minute on two busy cores).
BUILD_TIMEOUT = 600


def cache_root() -> Path:
    """Where built libraries are kept: ``$XDG_CACHE_HOME/capsvc/pfring``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "capsvc" / "pfring"


def build_real_library() -> tuple[Path | None, str]:
    """Return ``(path, "")`` of a real libpfring, building it if needed, or ``(None, why)``."""
    named = os.environ.get(REAL_ENV)
    if named:
        return (Path(named), "") if Path(named).exists() else (None, f"{REAL_ENV}={named}: no file")
    script = SHARED / "build.sh"
    tarballs = sorted(SHARED.glob("pf_ring-userland-*.tar.gz"))
    if not script.is_file() or not tarballs:
        return None, f"no PF_RING source at {SHARED} (build.sh and pf_ring-userland-*.tar.gz)"
    name = tarballs[-1].name.removesuffix(".tar.gz")
    try:
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable cache: build for this run only
        root = Path(tempfile.mkdtemp(prefix="capsvc-pfring-"))
    out = root / name
    library = out / "libpfring.so"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it right now
        if library.exists():
            return library, ""
        try:
            done = subprocess.run(
                ["bash", str(script), str(out)],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return None, f"build.sh took more than {BUILD_TIMEOUT} s"
        if done.returncode != 0 or not library.exists():
            why = (done.stderr or done.stdout).strip().splitlines()[-5:]
            return None, f"build.sh failed ({done.returncode}): " + " | ".join(why)
    return library, ""
