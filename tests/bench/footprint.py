"""Agent footprint (SPEC §9, docs/BENCHMARKS.md): RSS and CPU of the real agent binary fed by its
synthetic source (--perf-mock) with 1k, 10k and 100k live flows, at a fixed sample rate and
one-second windows. RSS is sampled every 50 ms from /proc/PID/status from start to stop, so a
start-up spike shows as peak_rss (VmHWM); steady_rss is the median over the second half.
CPU is utime+stime over the measured interval divided by its length. At the end of each run the
json also records where the RSS is (RssAnon = heap and mmapped buffers, RssFile = the binary
and its shared libraries) and each thread's CPU share (the sampling loop is the main thread, the
export worker the first one it starts).

  footprint.py OUT_DIR [--quick] [--seconds S] [--rate R]

Writes OUT_DIR/footprint.json. Never fails on figures."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mstest  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        p = f.read().rsplit(")", 1)[1].split()
    return (int(p[11]) + int(p[12])) / TICK


def thread_cpu(pid):
    """{tid: cpu seconds} of every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                p = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(p[11]) + int(p[12])) / TICK
        except OSError:
            pass
    return out


def measure(flows, rate, seconds):
    tmp = tempfile.mkdtemp(prefix="ms-footprint-")
    args = [mstest.AGENT, "--perf-mock", f"--mock-flows={flows}", f"--mock-rate={rate}", "--mock-period-ms=10",
            "--window-ms=1000", f"--state-dir={tmp}", "--metrics-port=0", "--control-port=0",
            "--log-level=warn"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss = []
    try:
        t_start = time.time()
        c0, t0 = None, None
        while time.time() - t_start < seconds:
            time.sleep(0.05)
            if p.poll() is not None:
                raise RuntimeError(f"agent exited: {p.stderr.read()}")
            rss.append(status_kib(p.pid, "VmRSS"))
            if c0 is None and time.time() - t_start >= 1.0:  # CPU after start-up
                c0, t0, th0 = cpu_s(p.pid), time.time(), thread_cpu(p.pid)
        c1, t1, th1 = cpu_s(p.pid), time.time(), thread_cpu(p.pid)
        hwm = status_kib(p.pid, "VmHWM")
        anon, file_ = status_kib(p.pid, "RssAnon"), status_kib(p.pid, "RssFile")
    finally:
        p.terminate()
        t_stop = time.time()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    steady = rss[len(rss) // 2:]
    return {"flows": flows, "rate": rate, "seconds": seconds, "stop_seconds": round(time.time() - t_stop, 1),
            "steady_rss_mib": round(statistics.median(steady) / 1024, 1),
            "peak_rss_mib": round(hwm / 1024, 1),
            "cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
            "end_rss_anon_mib": round(anon / 1024, 1), "end_rss_file_mib": round(file_ / 1024, 1),
            "thread_cpu_pct": {("main" if tid == p.pid else str(tid)): round(100 * (v - th0.get(tid, 0)) / (t1 - t0), 1)
                               for tid, v in sorted(th1.items())}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--rate", type=int, default=200000)
    a = ap.parse_args()
    secs = a.seconds or (3 if a.quick else 8)
    os.makedirs(a.out_dir, exist_ok=True)
    res = []
    for flows in (1000, 10000, 100000):
        r = measure(flows, a.rate, secs)
        res.append(r)
        print(f"footprint: {flows} flows at {a.rate} samples/s: RSS {r['steady_rss_mib']} MiB "
              f"(peak {r['peak_rss_mib']}), CPU {r['cpu_pct']} %", flush=True)
    with open(os.path.join(a.out_dir, "footprint.json"), "w") as f:
        json.dump({"suite": "footprint", "quick": a.quick, "agent": res,
                   "host_load_1m": os.getloadavg()[0]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
