#!/usr/bin/env bash
# Set up, then run the main job on the bundled default configuration:
#   bash scripts/run.sh          the capture service (config/capsvc.toml: captures the loopback
#                                interface into ./captures, HTTP API on 127.0.0.1:8321; needs
#                                root or CAP_NET_RAW; Ctrl-C drains and stops it)
#   bash scripts/run.sh read     read the bundled capture config/sample.pcap as text, then write
#                                its TCP packets to captures/sample-tcp.pcap (no privileges)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p captures
if [ "${1:-serve}" = read ]; then
    .venv/bin/capsvc read -r config/sample.pcap
    .venv/bin/capsvc read -r config/sample.pcap -w captures/sample-tcp.pcap tcp
    exit 0
fi
cat >&2 <<'TXT'
capsvc serve: API on http://127.0.0.1:8321 (token in config/token, created on first start)
  curl -s -H "Authorization: Bearer $(cat config/token)" http://127.0.0.1:8321/v1/sessions
  curl -sN -H "Authorization: Bearer $(cat config/token)" \
      http://127.0.0.1:8321/v1/sessions/loopback/pcap | tcpdump -nr -
TXT
exec .venv/bin/capsvc serve --config config/capsvc.toml
