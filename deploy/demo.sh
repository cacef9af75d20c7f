#!/usr/bin/env bash
# The main job (make demo): ClickHouse on loopback, the coordinator, the agent sampling this host
# and two agents in network namespaces, real load (a CPU-heavy C service, iperf3), then a summary
# of the fleet, top flows and their functions, fleet events; everything stopped at the end or on
# Ctrl-C. Needs root. Usage: deploy/demo.sh [BUILD_DIR] [demo.py options, e.g. --duration 30]
set -euo pipefail
BUILD=${1:-build}
[ $# -gt 0 ] && shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec /usr/bin/python3 "$ROOT/deploy/demo.py" --build "$BUILD" "$@"
