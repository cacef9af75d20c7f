"""BPF cost: ns per run of the sample handler and of each context-injection hook, from
kernel.bpf_stats_enabled, under a fixed packet and sample load (loopback request/response flows
plus cpu-clock sampling). Prints one JSON line. Usage: bpf_cost.py [seconds] [sample_freq]"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mstest  # noqa: E402

LOAD = os.path.join(mstest.SRC, "tests", "integration", "flowload.py")


def prog_stats(ids):
    out = {}
    for pid in ids:
        r = mstest.run(["bpftool", "-j", "prog", "show", "id", str(pid)], check=False)
        if r.returncode:
            continue
        p = json.loads(r.stdout)
        out[p["name"]] = (p.get("run_time_ns", 0), p.get("run_cnt", 0))
    return out


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    freq = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
    old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    agent = mstest.Agent(f"--sample-freq={freq}", "--sentinel-budget=1000000", "--diagnostic-budget=1000000",
                         "--mode=sentinel", "--events=cpu-clock")
    agent.start()
    procs = []
    try:
        ids, _ = mstest.bpf_objects_of(agent.proc.pid)
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        before = prog_stats(ids)
        procs.append(subprocess.Popen([mstest.PY, LOAD, "server", "tcp", "127.0.0.1", "7401", "--linger-s", "0",
                                       "--burn-ms", "0.2", "--post-ms", "0"], stdout=subprocess.PIPE))
        procs.append(subprocess.Popen([mstest.PY, LOAD, "server", "udp", "::1", "7402", "--linger-s", "0",
                                       "--burn-ms", "0.2", "--post-ms", "0", "--connected"], stdout=subprocess.PIPE))
        time.sleep(0.5)
        cl = [subprocess.Popen([mstest.PY, LOAD, "client", "tcp", "127.0.0.1", "7401", "47401", "--burn-ms", "0.1",
                                "--duration-s", str(secs)], stdout=subprocess.PIPE),
              subprocess.Popen([mstest.PY, LOAD, "client", "udp", "::1", "7402", "47402", "--burn-ms", "0.1",
                                "--duration-s", str(secs)], stdout=subprocess.PIPE)]
        for c in cl:
            c.wait(timeout=secs + 30)
        after = prog_stats(ids)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
        for p in procs:
            p.kill()
        agent.stop()
    res = {"bench": "bpf_cost", "seconds": secs, "sample_freq": freq, "programs": {}}
    for name, (t1, c1) in after.items():
        t0, c0 = before.get(name, (0, 0))
        n = c1 - c0
        res["programs"][name] = {"runs": n, "ns_per_run": round((t1 - t0) / n, 1) if n else None}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
