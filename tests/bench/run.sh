#!/usr/bin/env bash
# make bench: the benchmark suites of SPEC §9 (docs/BENCHMARKS.md).
#   run.sh BUILD [--quick] [SUITE...]     SUITE: pipeline bpf_cost overhead footprint coordinator ingest
# Each suite writes BUILD/bench-results/SUITE.json; at the end report.py prints the figures next to
# their targets and writes BUILD/bench-results/summary.json. Benchmarks report, they do not judge:
# the exit status is non-zero only when a suite could not run (77 = every requested suite skipped).
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
shift || true
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$BUILD/bench-results"
QUICK=()
SUITES=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=(--quick) ;;
    *) SUITES+=("$a") ;;
  esac
done
[ ${#SUITES[@]} -eq 0 ] && SUITES=(pipeline bpf_cost overhead footprint coordinator ingest)
mkdir -p "$OUT"
export MS_BUILD="$BUILD" MS_SRC="$SRC"
PY=/usr/bin/python3
failed=0
ran=0
for s in "${SUITES[@]}"; do
  echo "== bench: $s"
  case "$s" in
    pipeline|bpf_cost|overhead|footprint|coordinator|ingest)
      "$PY" "$SRC/tests/bench/$s.py" "$OUT" "${QUICK[@]}"
      rc=$? ;;
    *) echo "unknown suite $s"; rc=2 ;;
  esac
  if [ $rc -eq 77 ]; then echo "== bench: $s skipped"
  elif [ $rc -ne 0 ]; then echo "== bench: $s FAILED ($rc)"; failed=1
  else ran=1; fi
done
"$PY" "$SRC/tests/bench/report.py" "$OUT" "$BUILD/accuracy-results"
[ $failed -ne 0 ] && exit 1
[ $ran -eq 0 ] && exit 77
exit 0
