#!/usr/bin/env bash
# The main job (make demo): runs the agent on this host for real, drives loopback traffic from a
# CPU-burning request/response workload, and prints the flows and functions it measured, then
# stops everything cleanly. Needs root (BPF, perf events).
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENT="$ROOT/$BUILD/agent/micro_sentinel_agent"
LOAD="$ROOT/tests/integration/flowload.py"
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/ms-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (BPF programs and perf events)" >&2
  exit 1
fi

echo "== MicroSentinel demo: agent sampling this host with eBPF (cpu-clock on hosts without a PMU)"
"$AGENT" --mode=sentinel --window-ms=1000 --sample-freq=999 --sentinel-budget=5000 \
  --metrics-address=127.0.0.1 --metrics-port=0 --control-port=0 --state-dir="$WORK" \
  --window-log="$WORK/windows.jsonl" --summary > "$WORK/summary.txt" 2> "$WORK/agent.log" &
apid=$!
for _ in $(seq 100); do grep -q AGENT-READY "$WORK/agent.log" && break; sleep 0.1; done
grep -E "BPF-LOADED|EVENT-" "$WORK/agent.log" | sed 's/^/   /'

echo "== traffic: TCP 127.0.0.1:7301 and UDP [::1]:7302, servers burn CPU per request, 6 s"
$PY "$LOAD" server tcp 127.0.0.1 7301 --linger-s 0 > /dev/null & pids+=($!)
$PY "$LOAD" server udp ::1 7302 --linger-s 0 --connected > /dev/null & pids+=($!)
sleep 0.5
$PY "$LOAD" client tcp 127.0.0.1 7301 47301 --duration-s 6 > /dev/null & c1=$!
$PY "$LOAD" client udp ::1 7302 47302 --duration-s 6 > /dev/null & c2=$!
wait $c1 $c2
sleep 1
kill -TERM $apid
wait $apid
echo "== agent stopped cleanly; what it measured:"
cat "$WORK/summary.txt"
echo "== windows: $(wc -l < "$WORK/windows.jsonl") closed; agent log: $(grep -c . "$WORK/agent.log") lines"
