#!/usr/bin/env bash
# make accuracy: the attribution accuracy suite (docs/BENCHMARKS.md). Usage: run.sh BUILD [--quick]
# Results: BUILD/accuracy-results/accuracy.json and a table on stdout. Exit 77 = skipped (not root).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
shift || true
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$BUILD/accuracy-results"
mkdir -p "$OUT"
export MS_BUILD="$BUILD" MS_SRC="$SRC"
exec /usr/bin/python3 "$SRC/tests/accuracy/accuracy.py" "$OUT" "$@"
