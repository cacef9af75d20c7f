"""Ingest (SPEC §9): coordinator -> ClickHouse rows/s, ClickHouse co-located.
Runs the benchmark program that the coordinator's / ClickHouse writer's authors provide under
tests/bench when it is built; until then it reports the suite as skipped (exit 77).

  ingest.py OUT_DIR [--quick]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mstest  # noqa: E402


def main():
    print("ingest: SKIP (the ingest benchmark program is not in this tree yet)")
    return 77


if __name__ == "__main__":
    sys.exit(main())
