#!/usr/bin/env bash
# Set up a development environment: system packages (as root, with apt) and a virtualenv in .venv
# holding capsvc (editable) and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        tcpdump tshark libpcap0.8 libpcap-dev netsniff-ng iproute2 gcc libc6-dev python3-venv \
        bison flex make \
        >/dev/null
else
    echo "setup: not root or no apt-get: install tcpdump tshark libpcap0.8 netsniff-ng iproute2 gcc yourself" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
