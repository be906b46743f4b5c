#!/usr/bin/env bash
# mypy --strict over tests/ and bench/, one run per folder.
# Test folders are not packages: pytest puts each test file's folder on sys.path, so helper
# modules are imported by their bare names (_helpers, _service) and several folders hold a
# conftest.py. One mypy run over all of them would see duplicate modules; a run per folder,
# with tests/ and the folder itself on MYPYPATH, sees what pytest sees.
set -euo pipefail
cd "$(dirname "$0")/.."
# Folders a conftest or a test module puts on sys.path for its tests (sys.path.insert).
declare -A extra=([tests/security]=tests/service [tests/decode]=tests/format [tests/cli]=tests/format
                 [bench]=tests/format [tests/format]=bench)
status=0
for dir in $(find tests bench -type d -not -name __pycache__ | sort); do
    files=("$dir"/*.py)
    [[ -e ${files[0]} ]] || continue
    path="tests:$dir${extra[$dir]:+:${extra[$dir]}}"
    MYPYPATH=$path .venv/bin/mypy --strict --no-error-summary "${files[@]}" || status=1
done
exit $status
