"""Coordinator footprint (SPEC §9): RSS and CPU with 100 and 1,000 simulated agents at one
window/s, and bytes on the wire per rollup row.
Runs the benchmark program that the coordinator's / ClickHouse writer's authors provide under
tests/bench when it is built; until then it reports the suite as skipped (exit 77).

  coordinator.py OUT_DIR [--quick]"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mstest  # noqa: E402


def main():
    print("coordinator: SKIP (the coordinator benchmark program is not in this tree yet)")
    return 77


if __name__ == "__main__":
    sys.exit(main())
