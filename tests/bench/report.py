"""Prints the benchmark and accuracy figures next to their SPEC §9 targets and writes
RESULTS_DIR/summary.json. Reads whatever suite results exist; missing suites show as "-".

  report.py BENCH_RESULTS_DIR [ACCURACY_RESULTS_DIR]"""
import json
import os
import sys


def load(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def figures(bench_dir, acc_dir):
    rows = []  # (what, value, unit, target, ok)

    def add(what, value, unit, target=None, ok=None):
        rows.append({"what": what, "value": value, "unit": unit, "target": target, "meets": ok})

    p = load(bench_dir, "pipeline.json")
    if p:
        for c in p["cases"]:
            v = c["samples_per_sec"]["loop"]
            add(f"pipeline loop, {c['flows']} flows ({c['rows_per_window_max']} rows/window)", round(v / 1e6, 2),
                "M samples/s/core", ">= 5", v >= 5e6)
            add(f"pipeline loop + symbolize + wire encode, {c['flows']} flows",
                round(c["samples_per_sec"]["single_core"] / 1e6, 2), "M samples/s/core")
            if c.get("wire_bytes_per_row"):
                add(f"wire bytes per rollup row, {c['flows']} flows ({c['rows_after_symbolize'] // c['windows']} rows/window)",
                    c["wire_bytes_per_row"], "bytes", "<= 16", c["wire_bytes_per_row"] <= 16)
    b = load(bench_dir, "bpf_cost.json")
    if b:
        for t in b["tiers"]:
            for name, pr in sorted(t["programs"].items()):
                if not pr["runs"] or not pr["kind"]:
                    continue
                tgt = 1000 if pr["kind"] == "sample" else 500 if pr["kind"] in ("rx_packet", "tx_packet") else None
                add(f"BPF {t['tier']} {name} ({pr['kind']})", pr["ns_per_run"], "ns/run",
                    f"<= {tgt}" if tgt else None, pr["ns_per_run"] <= tgt if tgt else None)
    o = load(bench_dir, "overhead.json")
    if o:
        tg = {"agent_sentinel": 1.0, "agent_diagnostic": 3.0}
        for v, s in o["summary"].items():
            if v == "none":
                add("veth iperf3 throughput, no profiler", s["gbps_median"], "Gbit/s")
                add("veth sockperf p99, no profiler", s["p99_us_median"], "us")
                continue
            t = tg.get(v)
            add(f"throughput loss {v} (range {s['throughput_loss_pct_range']})", s["throughput_loss_pct_median"],
                "%", f"<= {t}" if t else None, s["throughput_loss_pct_median"] <= t if t else None)
            add(f"p99 latency increase {v}", s["p99_increase_pct_median"], "%")
            if "direct_cost_pct_median" in s:
                add(f"direct cost {v}: agent CPU + BPF run time, share of all CPUs (range {s['direct_cost_pct_range']})",
                    s["direct_cost_pct_median"], "%")
    fp = load(bench_dir, "footprint.json")
    if fp:
        for r in fp["agent"]:
            big = r["flows"] >= 100000
            add(f"agent RSS, {r['flows']} flows (peak {r['peak_rss_mib']})", r["steady_rss_mib"], "MiB",
                "<= 64" if big else None, r["peak_rss_mib"] <= 64 if big else None)
            add(f"agent CPU, {r['flows']} flows at {r['rate']} samples/s", r["cpu_pct"], "% of a core")
    co = load(bench_dir, "coordinator.json")
    if co:
        for r in co.get("figures", []):
            add(r["what"], r["value"], r["unit"], r.get("target"), r.get("meets"))
    ing = load(bench_dir, "ingest.json")
    if ing:
        for r in ing.get("figures", []):
            add(r["what"], r["value"], r["unit"], r.get("target"), r.get("meets"))
    a = load(acc_dir, "accuracy.json") if acc_dir else None
    if a:
        d = a["defaults"]
        for r in a["runs"]:
            if r["thread_flow_ns"] == d["thread_flow_ns"] and r["flow_skid_ns"] == d["flow_skid_ns"] and \
                    r.get("thread_send_flow_ns") == d.get("thread_send_flow_ns"):
                add(f"accuracy precision, {r['workload']} workload, default windows", r["precision"], "",
                    ">= 0.95", r["precision"] is not None and r["precision"] >= 0.95)
                add(f"accuracy recall, {r['workload']} workload, default windows", r["recall"], "",
                    ">= 0.90", r["recall"] is not None and r["recall"] >= 0.90)
    return rows


def main():
    bench_dir = sys.argv[1]
    acc_dir = sys.argv[2] if len(sys.argv) > 2 else None
    rows = figures(bench_dir, acc_dir)
    os.makedirs(bench_dir, exist_ok=True)
    with open(os.path.join(bench_dir, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(f"{'figure':<72} {'value':>10} {'unit':<18} {'target':>8}  ")
    for r in rows:
        mark = "" if r["meets"] is None else ("ok" if r["meets"] else "MISSED")
        print(f"{r['what'][:72]:<72} {str(r['value']):>10} {r['unit']:<18} {r['target'] or '':>8}  {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
