"""Pipeline throughput (SPEC §9, docs/BENCHMARKS.md): runs pipeline_bench pinned to one CPU for
a few key cardinalities (flows in the synthetic source) and writes OUT_DIR/pipeline.json.

  pipeline.py OUT_DIR [--quick] [--cpu N]"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mstest  # noqa: E402

BENCH = os.path.join(mstest.BUILD, "tests", "pipeline_bench")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cpu", type=int, default=os.cpu_count() - 1)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    if a.quick:
        cases = [(2_000_000, 1024, 1_000_000)]
    else:
        cases = [(20_000_000, 1024, 5_000_000), (20_000_000, 10_000, 5_000_000), (20_000_000, 160_000, 5_000_000)]
    res = []
    for n, flows, win in cases:
        r = subprocess.run(["taskset", "-c", str(a.cpu), BENCH, f"--samples={n}", f"--flows={flows}",
                            f"--window={win}"], stdout=subprocess.PIPE, text=True, timeout=600)
        if r.returncode:
            print(f"pipeline: pipeline_bench failed ({r.returncode}): {r.stdout}")
            return 1
        d = json.loads(r.stdout)
        res.append(d)
        ns = d["ns_per_sample"]
        print(f"pipeline: {flows:>6} flows, {d['rows_per_window_max']:>6} rows/window: "
              f"loop {d['samples_per_sec']['loop'] / 1e6:.2f} M samples/s "
              f"(validate {ns['validate']} + aggregate {ns['aggregate']} + close {ns['close']} ns), "
              f"with symbolize + wire encode {d['samples_per_sec']['single_core'] / 1e6:.2f} M/s "
              f"(symbolize {ns['symbolize']}, wire {ns.get('encode_wire')}, json {ns['encode_json']} ns); "
              f"{d.get('wire_bytes_per_row')} wire bytes/row", flush=True)
    with open(os.path.join(a.out_dir, "pipeline.json"), "w") as f:
        json.dump({"suite": "pipeline", "quick": a.quick, "cpu": a.cpu, "cases": res,
                   "host_load_1m": os.getloadavg()[0]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
