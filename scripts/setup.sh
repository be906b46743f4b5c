#!/usr/bin/env bash
# Set up a development environment: system packages (as root, with apt) and a virtualenv in .venv
# holding capsvc (editable) and its test tools. Safe to run again, and quick then: apt-get runs
# only when a package is missing, pip only when pyproject.toml, setup.py or the C speed-ups changed since the last install.
# Quiet unless something is installed.
#   bash scripts/setup.sh          what running capsvc needs (libpcap, iproute2, tcpdump)
#   bash scripts/setup.sh --test   and what the tests use as peers and judges: tshark, trafgen,
#                                  a C compiler, chromium and chromedriver, prometheus (promtool),
#                                  bison and flex (to build the real libpfring)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(tcpdump libpcap0.8 iproute2 python3-venv)
if [ "${1:-}" = --test ]; then
    PACKAGES+=(tshark libpcap-dev netsniff-ng gcc libc6-dev make chromium chromium-driver
               prometheus bison flex)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: not root or no apt-get: install ${missing[*]} yourself" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.capsvc-installed
want=$(cat pyproject.toml setup.py capsvc/_speedups.c capsvc/_textline.h | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/capsvc ]; then
    echo "setup: installing capsvc and its test tools into .venv" >&2
    log=$(mktemp)
    # editable_mode=compat: a plain path entry, so type checkers of applications find capsvc.
    if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip &&
           .venv/bin/python -m pip install -q --disable-pip-version-check \
               --config-settings editable_mode=compat -e '.[test]'; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    echo "$want" > "$stamp"
fi
# Byte-compile the package as pip does for a regular install: an editable tree under
# PYTHONDONTWRITEBYTECODE would otherwise compile every module again at each start (~50 ms).
.venv/bin/python -m compileall -q capsvc >/dev/null
