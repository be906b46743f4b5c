"""Collect test modules each on its own, fast: ``python tests/_alone.py FILE...``.

The parent imports the third-party libraries the tests use (never capsvc nor a test module),
then forks one child per file that runs ``pytest --collect-only FILE``: each child starts with
none of capsvc's or the tests' modules imported, as ``pytest FILE`` would, without paying for
a new interpreter. Prints one line per file that fails: its path, the exit status and
pytest's error lines.
"""

from __future__ import annotations

import os
import sys
import tempfile

import _hypothesis_pytestplugin  # noqa: F401
import aiohttp  # noqa: F401
import anyio._backends._asyncio
import anyio.pytest_plugin  # noqa: F401
import dpkt  # noqa: F401
import hypothesis  # noqa: F401
import pytest
import pytest_asyncio.plugin  # noqa: F401


def collect(path: str) -> tuple[int, str]:
    """Exit status and output of ``pytest --collect-only -q path`` in a forked child."""
    with tempfile.TemporaryFile() as out:
        pid = os.fork()
        if pid == 0:  # the child: collect, then leave without running the parent's cleanups
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            code = 3
            try:
                code = int(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", path]))
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        return os.waitstatus_to_exitcode(status), out.read().decode(errors="replace")


def main(paths: list[str]) -> int:
    leaked = [m for m in sys.modules if m == "capsvc" or m.startswith("capsvc.")]
    if leaked:
        print(f"the parent imported {leaked}")
        return 1
    failed = 0
    for path in paths:
        code, output = collect(path)
        if code != 0:
            failed += 1
            errors = [line for line in output.splitlines() if line.startswith("E ")]
            print(f"{path}: exit {code}: {' | '.join(errors) or output[-1500:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
