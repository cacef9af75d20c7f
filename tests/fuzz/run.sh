#!/bin/bash
# Fuzzes every libFuzzer target for N minutes each (docs/BUILD.md, "Fuzzing").
#   tests/fuzz/run.sh [-m MINUTES] [-b BUILD_DIR] [-j PARALLEL] [TARGET...]
# Builds BUILD_DIR (default build-fuzz) with CC=clang -DMS_FUZZ=ON, then runs each
# <target>_fuzz_libfuzzer over a scratch copy of tests/fuzz/corpus/<target>/ (the checked-in seed
# corpus is never modified), with ASan+UBSan, -max_total_time=MINUTES*60, a 2 GB RSS limit and
# 5 s per input. Crashes, leaks and timeouts land in BUILD_DIR/fuzz-out/<target>/ as crash-*,
# leak-*, timeout-* files; copy a minimised one into the corpus directory once fixed so the
# replay test keeps it. Exit status: 0 when no target found anything, 1 otherwise.
set -u
MINUTES=5
BUILD=build-fuzz
PAR=1
while getopts "m:b:j:h" o; do
	case $o in
	m) MINUTES=$OPTARG ;;
	b) BUILD=$OPTARG ;;
	j) PAR=$OPTARG ;;
	*) sed -n '2,11p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC" || exit 2
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
	for f in common/*_fuzz.c agent/*_fuzz.c coordinator/*_fuzz.c; do
		[ -e "$f" ] && TARGETS+=("$(basename "$f" _fuzz.c)")
	done
fi
CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_FUZZ=ON > /dev/null || exit 2
BINS=()
for t in "${TARGETS[@]}"; do BINS+=("${t}_fuzz_libfuzzer"); done
for b in "${BINS[@]}"; do
	cmake --build "$BUILD" -j2 --target "$b" > "$BUILD/build-$b.log" 2>&1 || { echo "build of $b failed: $BUILD/build-$b.log"; exit 2; }
done

run_one() {
	local t=$1 bin out work
	bin=$(readlink -f "$(find "$BUILD" -name "${t}_fuzz_libfuzzer" -type f -perm -u+x | head -1)")
	out="$BUILD/fuzz-out/$t"
	work="$out/corpus"
	rm -rf "$out" && mkdir -p "$work"
	cp -r "tests/fuzz/corpus/$t/." "$work/" 2>/dev/null
	(cd "$out" && ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time=$((MINUTES * 60)) -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
		"$(basename "$work")" > fuzz.log 2>&1)
	local rc=$?
	local found
	found=$(ls "$out" | grep -cE '^(crash|leak|timeout|oom)-')
	local runs
	runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$out/fuzz.log" | grep -oE '[0-9]+$')
	printf '%-12s rc=%d runs=%s findings=%s corpus=%s (%s)\n' "$t" "$rc" "${runs:-?}" "$found" \
		"$(ls "$work" | wc -l)" "$out/fuzz.log"
	[ "$rc" -eq 0 ] && [ "$found" -eq 0 ]
}

status=0
running=0
for t in "${TARGETS[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$PAR" ]; then
		wait -n || status=1
		running=$((running - 1))
	fi
done
while [ "$running" -gt 0 ]; do
	wait -n || status=1
	running=$((running - 1))
done
exit $status
