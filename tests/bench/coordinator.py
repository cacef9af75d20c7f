"""Coordinator footprint (SPEC §9): one coordinator holding 100 and 1,000 simulated agents at one
window/s each. The simulated agents are tests/bench/fleet_bench (real nng REQ sockets, one per
agent, windows built with the agent's own codec); the coordinator is the real binary with its
accept journal as the durable sink (no ClickHouse: that path is the ingest suite's).

Reports per fleet size: windows/s acked, send->ack latency p50/p99/max, each agent's lag (age of
its newest ack at the end: max_ack_age_ms, and the fewest windows any agent got acked), the
coordinator's steady and peak RSS and its CPU share. Benchmarks report, they do not judge.

  coordinator.py OUT_DIR [--quick] [--seconds S] [--rows R]

Writes OUT_DIR/coordinator.json."""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import msfleet  # noqa: E402
import mstest  # noqa: E402
from footprint import cpu_s, status_kib  # noqa: E402

BENCH = os.path.join(mstest.BUILD, "tests", "fleet_bench")


def raise_nofile(n):
    """Both the coordinator and the bench hold one connection per agent."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(n, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def measure(agents, seconds, rows):
    tmp = tempfile.mkdtemp(prefix="ms-coordbench-")
    coord = msfleet.Coordinator(tmp=tmp)
    coord.start()
    rss = []
    try:
        bench = subprocess.Popen([BENCH, coord.url, f"--agents={agents}", f"--seconds={seconds}", "--rate=1",
                                  f"--rows={rows}", "--contexts=2", f"--id-prefix=cb{agents}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        c0 = t0 = None
        while bench.poll() is None:
            time.sleep(0.1)
            try:
                rss.append(status_kib(coord.proc.pid, "VmRSS"))
                if c0 is None and rss and len(rss) > 30:  # after the hellos and the first windows
                    c0, t0 = cpu_s(coord.proc.pid), time.time()
            except OSError:
                break
        c1, t1 = cpu_s(coord.proc.pid), time.time()
        hwm = status_kib(coord.proc.pid, "VmHWM")
        out = bench.stdout.read()
    finally:
        coord.stop()
        coord.cleanup()
    figs = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", out)}
    if "windows_per_s" not in figs:
        raise RuntimeError(f"fleet_bench gave no figures (exit {bench.returncode}):\n{out}")
    steady = rss[len(rss) // 2:] or [0]
    return {"agents": agents, "seconds": seconds, "rows_per_window": rows, "bench_exit": bench.returncode,
            "windows_per_s": figs["windows_per_s"], "not_acked": figs.get("not_acked"),
            "errors": figs.get("errors"), "ack_latency_ms_p50": figs.get("ack_latency_ms_p50"),
            "ack_latency_ms_p99": figs.get("ack_latency_ms_p99"),
            "ack_latency_ms_max": figs.get("ack_latency_ms_max"), "max_ack_age_ms": figs.get("max_ack_age_ms"),
            "min_acked_per_agent": figs.get("min_acked_per_agent"),
            "coord_steady_rss_mib": round(statistics.median(steady) / 1024, 1),
            "coord_peak_rss_mib": round(hwm / 1024, 1),
            "coord_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1) if c0 is not None and t1 > t0 else None,
            "bench_output": out.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=int, default=None)
    ap.add_argument("--rows", type=int, default=500)
    a = ap.parse_args()
    if not os.path.exists(BENCH) or not os.path.exists(msfleet.COORD):
        print("coordinator: SKIP (fleet_bench or the coordinator is not built)")
        return 77
    secs = a.seconds or (8 if a.quick else 30)
    raise_nofile(8192)
    runs = []
    for n in (100, 1000):
        r = measure(n, secs, a.rows)
        runs.append(r)
        print(f"coordinator: {n} agents x 1 window/s ({a.rows} rows): {r['windows_per_s']:.0f} windows/s acked, "
              f"ack p50/p99/max {r['ack_latency_ms_p50']}/{r['ack_latency_ms_p99']}/{r['ack_latency_ms_max']} ms, "
              f"max agent lag {r['max_ack_age_ms']:.0f} ms, fewest acks per agent {r['min_acked_per_agent']:.0f}, "
              f"coordinator RSS {r['coord_steady_rss_mib']} MiB (peak {r['coord_peak_rss_mib']}), "
              f"CPU {r['coord_cpu_pct']} %")
    big = runs[-1]
    # held = every agent acked at about its rate and none starved (lag below 3 windows)
    held = big["min_acked_per_agent"] >= 0.8 * (secs - 1) and big["max_ack_age_ms"] < 3000
    out = {"suite": "coordinator", "quick": a.quick, "runs": runs,
           "figures": [{"what": "simulated agents held at 1 window/s (every agent acked, lag < 3 s)",
                        "value": big["agents"] if held else 0, "unit": "agents", "target": ">= 1000",
                        "meets": held},
                       {"what": "send->ack p99 with 1,000 agents", "value": big["ack_latency_ms_p99"],
                        "unit": "ms", "target": "report", "meets": None},
                       {"what": "coordinator RSS with 1,000 agents (peak)", "value": big["coord_peak_rss_mib"],
                        "unit": "MiB", "target": "report", "meets": None}],
           "host_load_1m": os.getloadavg()[0]}
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "coordinator.json"), "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
