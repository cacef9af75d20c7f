"""Coordinator → ClickHouse sustained insert rate (SPEC §9: >= 1,000,000 rows/s with ClickHouse
on the same machine). Starts a throwaway ClickHouse server (tests/lib/clickhouse.py), loads
backend/clickhouse_schema.sql, and runs tests/bench/ch_bench.c (decoded windows → chrows →
chwriter → ClickHouse) once per configuration. Prints one line per run and exits non-zero if
the best sustained rate is below the target.
Usage: MS_BUILD=build /usr/bin/python3 tests/bench/ch_bench.py [total_rows=20000000]"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import clickhouse  # noqa: E402
import mstest  # noqa: E402

TARGET = 1_000_000
BENCH = os.path.join(mstest.BUILD, "tests", "ch_bench")


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000
    if not clickhouse.available():
        print("ch_bench: SKIP (ClickHouse not installed)")
        return 0
    best = 0
    with clickhouse.Server() as ch:
        with open(os.path.join(mstest.SRC, "backend", "clickhouse_schema.sql")) as f:
            ch.run_script(f.read())
        # (rows per window, batch rows, parallel INSERTs)
        for per, batch, par in ((10000, 100000, 1), (10000, 100000, 2), (10000, 200000, 2)):
            out = subprocess.run([BENCH, ch.endpoint, "microsentinel", str(total), str(per), str(batch), "1",
                                  str(par)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            line = out.stdout.strip()
            print(line, flush=True)
            m = re.search(r"rollup_rows_per_s=(\d+)", line)
            if out.returncode == 0 and m:
                best = max(best, int(m.group(1)))
        stored = ch.scalar("SELECT count() FROM microsentinel.ms_flow_rollup")
        print(f"ms_flow_rollup holds {stored} rows; best sustained rate {best} rows/s (target {TARGET})")
    return 0 if best >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
