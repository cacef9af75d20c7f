"""Attribution accuracy against ground truth (docs/BENCHMARKS.md, "Accuracy").

A C service (acc_service) serves N TCP flows on known threads in network namespace B and logs
every request (thread, flow, start ns, end ns); clients in namespace A drive it over veth. The
real agent samples the host with cpu-clock and page-faults and writes every sample to its sample
log (--sample-log); this script compares each sample of the service with the truth log, for
each (thread_flow_ns, flow_skid_ns) setting in the sweep (one agent run per setting).

  accuracy.py OUT_DIR [--quick] [--seconds S]

Writes OUT_DIR/accuracy.json and prints a table. Exit 0 unless a run failed; never on figures."""
import argparse
import bisect
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import mstest  # noqa: E402
import samplelog  # noqa: E402
from flowid import flow_id  # noqa: E402

KEEP = False
SERVICE = os.path.join(mstest.BUILD, "tests", "acc_service")
PORT, SPORT_BASE, NFLOWS, NTHREADS = 7601, 44000, 4, 2
DEFAULT_THREAD, DEFAULT_SKID, DEFAULT_SEND = 5_000_000, 50_000, 100_000  # agent/config.c defaults
# one knob at a time around the defaults; thread_flow_ns=0 leaves only the packet rule
SWEEP_THREAD = [0, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 20_000_000]
SWEEP_SKID = [0, 10_000, 200_000, 1_000_000]
# validity of a context set by a send (the end of a request); 0 = thread_flow_ns (the rule off)
SWEEP_SEND = [20_000, 100_000, 500_000]
# "pure": the service threads only serve requests. "mixed": every 2 ms a thread also runs 200 us of
# work that belongs to no flow (timers, housekeeping), right after the request it just served —
# the hard case for the per-thread rule, which cannot see where a request ends.
WORKLOADS = {
    "pure": {"work_us": 150, "bg_us": 0, "bg_every_us": 2000, "pf_pages": 4, "think_us": 200},
    "mixed": {"work_us": 150, "bg_us": 200, "bg_every_us": 2000, "pf_pages": 4, "think_us": 200},
}


def nm_functions(binary):
    """{name: (value, size)} of the defined text symbols (nm is a test-side tool)."""
    out = mstest.run(["nm", "-S", "--defined-only", binary]).stdout
    syms = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "Tt":
            syms[p[3]] = (int(p[0], 16), int(p[1], 16))
    return syms


def parse_truth(path):
    t = {"funcs": {}, "objects": {}, "sports": {}, "intervals": {}, "dropped": 0, "requests": 0}
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p or p[0] == "#":
                continue
            if p[0] == "func":
                t["funcs"][p[1]] = int(p[2], 16)
            elif p[0] == "object":
                t["objects"][int(p[1])] = (int(p[2], 16), int(p[3]))
            elif p[0] == "flow":
                t["sports"][int(p[1])] = int(p[2])
            elif p[0] in ("req", "bg"):
                tid, k, s, e = int(p[1]), int(p[2]), int(p[3]), int(p[4])
                t["intervals"].setdefault(tid, []).append((s, e, k))
                t["requests"] += p[0] == "req"
            elif p[0] == "dropped":
                t["dropped"] = int(p[1])
    for tid in t["intervals"]:
        t["intervals"][tid].sort()
    t["starts"] = {tid: [iv[0] for iv in ivs] for tid, ivs in t["intervals"].items()}
    return t


def truth_at(t, tid, ts):
    """Flow k being served by thread tid at ts; -1 background work; None outside any interval."""
    starts = t["starts"].get(tid)
    if not starts:
        return None
    i = bisect.bisect_right(starts, ts) - 1
    if i < 0:
        return None
    s, e, k = t["intervals"][tid][i]
    return k if ts <= e else None


def event_index(windows, name):
    for w in windows:
        names = w.get("events") or []
        for i, ev in enumerate(names):
            if (ev.get("name") if isinstance(ev, dict) else ev) == name:
                return i
    return None


def run_one(ns, out_dir, wl, thread_ns, skid_ns, send_ns, seconds, tag):
    tmp = os.path.join(out_dir, f"run-{tag}")
    os.makedirs(tmp, exist_ok=True)
    slog = os.path.join(tmp, "samples.bin")
    truth_path = os.path.join(tmp, "truth.txt")
    agent = mstest.Agent("--events=cpu-clock,page-faults", "--sample-freq=2999", "--page-fault-period=8",
                         "--sentinel-budget=200000", "--diagnostic-budget=200000", "--mode=sentinel",
                         "--window-ms=500", f"--thread-flow-ns={thread_ns}", f"--flow-skid-ns={skid_ns}",
                         f"--thread-send-flow-ns={send_ns}", f"--sample-log={slog}", tmp=tmp)
    agent.start()
    srv = cl = None
    try:
        w = WORKLOADS[wl]
        srv = ns.exec(ns.b, [SERVICE, "server", ns.b4, str(PORT), str(NFLOWS), str(NTHREADS), truth_path,
                             f"--work-us={w['work_us']}", f"--bg-us={w['bg_us']}",
                             f"--bg-every-us={w['bg_every_us']}", f"--pf-pages={w['pf_pages']}",
                             f"--sport-base={SPORT_BASE}"], stdout=subprocess.PIPE, text=True)
        if srv.stdout.readline().strip() != "READY":
            raise RuntimeError("acc_service server did not start")
        cl = ns.exec(ns.a, [SERVICE, "client", ns.b4, str(PORT), str(NFLOWS), str(SPORT_BASE), str(seconds),
                            f"--think-us={w['think_us']}"], stdout=subprocess.PIPE, text=True)
        cout, _ = cl.communicate(timeout=seconds + 60)
        sout, _ = srv.communicate(timeout=60)
        if cl.returncode or srv.returncode:
            raise RuntimeError(f"service failed: client {cl.returncode} {cout!r} server {srv.returncode} {sout!r}")
    finally:
        for p in (srv, cl):
            if p and p.poll() is None:
                p.kill()
        rc = agent.stop()
    if rc:
        raise RuntimeError(f"agent exited {rc}:\n{agent.log()}")
    res = analyse(ns, srv.pid, truth_path, slog, agent.windows(), thread_ns, skid_ns, send_ns)
    res["workload"] = wl
    if not KEEP:
        os.unlink(slog)
    return res


def analyse(ns, spid, truth_path, slog_path, windows, thread_ns, skid_ns, send_ns):
    t = parse_truth(truth_path)
    recs = samplelog.read(slog_path)
    ib = ns.inode(ns.b)
    ids = {}
    for k, sport in t["sports"].items():
        ids[flow_id("tcp", ns.a4, sport, ns.b4, PORT, "rx", ib)] = k
        ids[flow_id("tcp", ns.b4, PORT, ns.a4, sport, "tx", ib)] = k
    syms = nm_functions(SERVICE)
    slide = t["funcs"]["0"] - syms["work_flow_0"][0]
    franges = [(syms[f"work_flow_{k}"][0] + slide, syms[f"work_flow_{k}"][1], k) for k in t["sports"]]
    ev_cpu = event_index(windows, "cpu-clock")
    ev_pf = event_index(windows, "page-faults")

    c = dict(samples=len(recs), service=0, inside=0, inside_charged=0, correct=0, wrong_flow=0,
             charged=0, outside=0, outside_charged=0, bg=0, bg_charged=0, other_pid_charged=0,
             by_rule={"thread": [0, 0], "packet": [0, 0]}, func_samples=0, func_correct=0,
             func_inside=0, pf=0, pf_in_object=0, pf_object_flow=0, pf_charged=0)
    for ts, fid, ip, addr, age, period, cpu, pid, tid, ev, rule, user in recs:
        if pid != spid:
            if fid in ids:
                c["other_pid_charged"] += 1
            continue
        k_true = truth_at(t, tid, ts)
        if ev == ev_pf:
            c["pf"] += 1
            obj = next((k for k, (a, n) in t["objects"].items() if a <= addr < a + n), None)
            if obj is not None:
                c["pf_in_object"] += 1
                c["pf_object_flow"] += ids.get(fid) == obj
            c["pf_charged"] += fid != 0
            continue
        if ev != ev_cpu:
            continue
        c["service"] += 1
        k_got = ids.get(fid) if fid else None
        charged = fid != 0
        c["charged"] += charged
        if charged:
            r = "thread" if rule == samplelog.ATTR_THREAD else "packet"
            c["by_rule"][r][0] += 1
            c["by_rule"][r][1] += k_true is not None and k_true >= 0 and k_got == k_true
        if k_true is not None and k_true >= 0:
            c["inside"] += 1
            c["inside_charged"] += charged
            if k_got == k_true:
                c["correct"] += 1
            elif charged:
                c["wrong_flow"] += 1
        elif k_true == -1:
            c["bg"] += 1
            c["bg_charged"] += charged
        else:
            c["outside"] += 1
            c["outside_charged"] += charged
        fk = next((k for a, n, k in franges if a <= ip < a + n), None)
        if fk is not None:
            c["func_samples"] += 1
            c["func_correct"] += k_got == fk
            c["func_inside"] += k_true == fk

    def ratio(a, b):
        return round(a / b, 4) if b else None

    res = {
        "thread_flow_ns": thread_ns, "flow_skid_ns": skid_ns, "thread_send_flow_ns": send_ns, "requests": t["requests"],
        "truth_dropped": t["dropped"],
        "precision": ratio(c["correct"], c["charged"]),
        "recall": ratio(c["correct"], c["inside"]),
        "coverage": ratio(c["inside_charged"], c["inside"]),
        "bg_false_charge": ratio(c["bg_charged"], c["bg"]),
        "gap_false_charge": ratio(c["outside_charged"], c["outside"]),
        "func_precision": ratio(c["func_correct"], c["func_samples"]),
        "func_truth_consistency": ratio(c["func_inside"], c["func_samples"]),
        "precision_thread_rule": ratio(c["by_rule"]["thread"][1], c["by_rule"]["thread"][0]),
        "precision_packet_rule": ratio(c["by_rule"]["packet"][1], c["by_rule"]["packet"][0]),
        "pf_object_coverage": ratio(c["pf_in_object"], c["pf"]),
        "pf_object_flow_precision": ratio(c["pf_object_flow"], c["pf_in_object"]),
        "counts": c,
    }
    res["window_functions"] = window_functions(windows, spid, ids)
    return res


def window_functions(windows, spid, ids):
    """The agent's own view after symbolization: for each flow, the share of the service's
    samples charged to it whose function the agent named work_flow_<that flow>, and samples
    charged to flow k in another flow's function (must be ~0)."""
    own = {}
    total = {}
    cross = 0
    for w in windows:
        names = {f["id"]: f["name"] for f in w.get("funcs", [])}
        for flow, func, ev, d, pid, n, cost in w["rows"]:
            if pid != spid or flow not in ids:
                continue
            k = ids[flow]
            total[k] = total.get(k, 0) + n
            name = names.get(func, "")
            if name == f"work_flow_{k}":
                own[k] = own.get(k, 0) + n
            elif name.startswith("work_flow_"):
                cross += n
    return {"own_function_share": {str(k): round(own.get(k, 0) / total[k], 4) for k in sorted(total)},
            "samples_in_other_flow_function": cross}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--workload", choices=["pure", "mixed", "both"], default="both")
    ap.add_argument("--keep", action="store_true", help="keep the sample logs")
    ap.add_argument("--send-ns", type=lambda v: [int(x) for x in v.split(",")], default=None,
                    help="only sweep thread_send_flow_ns over this comma list (defaults for the rest)")
    a = ap.parse_args()
    global KEEP
    KEEP = a.keep
    if os.geteuid() != 0:
        print("accuracy: SKIP (needs root: BPF, perf events, network namespaces)")
        return 77
    os.makedirs(a.out_dir, exist_ok=True)
    seconds = a.seconds or (3 if a.quick else 8)
    if a.quick:
        sweep = [(DEFAULT_THREAD, DEFAULT_SKID, DEFAULT_SEND)]
    else:
        sweep = ([(tn, DEFAULT_SKID, DEFAULT_SEND) for tn in SWEEP_THREAD] +
                 [(DEFAULT_THREAD, sk, DEFAULT_SEND) for sk in SWEEP_SKID] +
                 [(DEFAULT_THREAD, DEFAULT_SKID, sn) for sn in SWEEP_SEND])
    if a.send_ns is not None:
        sweep = [(DEFAULT_THREAD, DEFAULT_SKID, sn) for sn in a.send_ns]
    results = []
    wls = ["pure", "mixed"] if a.workload == "both" else [a.workload]
    with mstest.Netns("acc", subnet=91) as ns:
        for wl in wls:
            for i, (tn, sk, sn) in enumerate(sweep):
                r = run_one(ns, a.out_dir, wl, tn, sk, sn, seconds, f"{wl}-{i}")
                results.append(r)
                print(f"accuracy: {wl} thread_flow_ns={tn} flow_skid_ns={sk} thread_send_flow_ns={sn}: precision={r['precision']} "
                      f"recall={r['recall']} coverage={r['coverage']}", flush=True)
    out = {"suite": "accuracy", "quick": a.quick, "seconds_per_run": seconds, "workloads": WORKLOADS,
           "flows": NFLOWS, "threads": NTHREADS, "defaults": {"thread_flow_ns": DEFAULT_THREAD,
                                                              "flow_skid_ns": DEFAULT_SKID,
                                                              "thread_send_flow_ns": DEFAULT_SEND},
           "runs": results, "host_load_1m": os.getloadavg()[0]}
    with open(os.path.join(a.out_dir, "accuracy.json"), "w") as f:
        json.dump(out, f, indent=1)
    print_table(results)
    return 0


def print_table(results):
    cols = ["workload", "thread_flow_ns", "flow_skid_ns", "thread_send_flow_ns", "precision", "recall", "coverage", "bg_false_charge",
            "func_precision", "pf_object_flow_precision"]
    print(" ".join(f"{c[:14]:>14}" for c in cols))
    for r in results:
        print(" ".join(f"{str(r[c]):>14}" for c in cols))


if __name__ == "__main__":
    sys.exit(main())
