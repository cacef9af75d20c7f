"""Ingest (SPEC §9): coordinator -> ClickHouse rows/s with ClickHouse co-located. Runs the
ClickHouse writer's own benchmark (tests/bench/ch_bench.py driving ch_bench.c: decoded windows →
chrows → chwriter → a throwaway ClickHouse server) and records its figures; its verdict on the
target is not ours to enforce (benchmarks report). Skips (exit 77) while that driver or binary
is not in the tree, or ClickHouse is not installed.

  ingest.py OUT_DIR [--quick]"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mstest  # noqa: E402

DRIVER = os.path.join(HERE, "ch_bench.py")
BENCH = os.path.join(mstest.BUILD, "tests", "ch_bench")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if not (os.path.exists(DRIVER) and os.path.exists(BENCH)):
        print("ingest: SKIP (tests/bench/ch_bench.py / ch_bench not in this tree yet)")
        return 77
    total = 1_000_000 if a.quick else 20_000_000
    r = subprocess.run([mstest.PY, DRIVER, str(total)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=1800)
    print(r.stdout, end="")
    if "SKIP" in r.stdout:
        return 77
    runs = [{k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
            for line in r.stdout.splitlines() if "rollup_rows_per_s=" in line]
    rates = [x["rollup_rows_per_s"] for x in runs]
    if not rates:
        print(f"ingest: no figures from ch_bench.py (exit {r.returncode})")
        return 1
    best = max(rates)
    out = {"suite": "ingest", "quick": a.quick, "total_rows": total, "runs": runs,
           "figures": [{"what": f"coordinator -> ClickHouse rollup rows/s (best of {len(rates)})",
                        "value": best, "unit": "rows/s", "target": ">= 1000000", "meets": best >= 1_000_000}],
           "host_load_1m": os.getloadavg()[0]}
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "ingest.json"), "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
