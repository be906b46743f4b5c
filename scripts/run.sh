#!/usr/bin/env bash
# Set up, then run the main job on the bundled default: read config/sample.pcap and print it
# as tcpdump-style text, then write the TCP packets of it to captures/sample-tcp.pcap.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p captures
.venv/bin/capsvc read -r config/sample.pcap
.venv/bin/capsvc read -r config/sample.pcap -w captures/sample-tcp.pcap tcp
