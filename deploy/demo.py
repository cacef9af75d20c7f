#!/usr/bin/python3
"""The main job (make demo): the whole product on this machine for about half a minute.

  demo.py [--build DIR] [--duration S] [--state-dir DIR] [--prefix msdemo] [--subnet 10.232.0] [--keep]

Starts ClickHouse on loopback (data in the state directory, default var/demo), the coordinator
(it creates the schema), the real agent sampling this host, and two agents in network namespaces
standing in for two more hosts: <prefix>-lb (role=lb) and <prefix>-db (role=db), joined by a
bridge. Each namespaced agent keeps only the flows of its own address (targets=flow:IP); the host
agent keeps everything. Load, all real programs:
  - acc_service (a C service whose request handlers are work_flow_0..3) serving 4 TCP flows
    lb -> db:7400 from source ports 47400..47403, CPU-heavy;
  - iperf3 lb -> db:5201 (data from source port 45201), 200 Mbit/s, starting a third of the way
    in (a throughput spike on both namespaces' eth0: the coordinator's correlator may trigger);
  - iperf3 over loopback on this host, 100 Mbit/s.
When iperf3 starts, an operator command goes through the coordinator's gRPC API: msctl puts the
role=db agents in diagnostic mode for 60 s (a fleet event, and a pin in the agents' table).
Then it prints the summary (fleet status, top flows with their 5-tuples and top functions from
ClickHouse, fleet events) and stops everything, checking that no process, namespace, link or BPF
program of the demo is left. Ctrl-C stops it cleanly at any point. Exit 0 when clean."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "lib"))
import mslab  # noqa: E402

ACC_PORT, ACC_SPORT, ACC_FLOWS = 7400, 47400, 4
IPERF_PORT, IPERF_CPORT = 5201, 45201
PROTO = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
T0 = time.time()


def out(*args, **kw):
    """print that never raises: with the output closed (demo | head) the demo still stops
    everything it started."""
    try:
        print(*args, flush=True, **kw)
    except OSError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass


def say(msg):
    out(f"[{time.time() - T0:5.1f}s] {msg}")


def stop_signal(signum, frame):
    raise KeyboardInterrupt


def addr(hexstr):
    b = bytes.fromhex(hexstr)
    if b[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, b[12:])
    return "[" + socket.inet_ntop(socket.AF_INET6, b) + "]"


def coord_metric(lab, name):
    try:
        text = mslab.http(lab.coord_metrics_url(), timeout=3)
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def bpf_prog_ids():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    try:
        return {p["id"] for p in json.loads(out or "[]")}
    except ValueError:
        return set()


def held_prog_ids(pid):
    """BPF program ids held open by pid (its fdinfo)."""
    ids = set()
    d = f"/proc/{pid}/fdinfo"
    try:
        fds = os.listdir(d)
    except OSError:
        return ids
    for fd in fds:
        try:
            with open(os.path.join(d, fd)) as f:
                ids.update(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
        except OSError:
            pass
    return ids


# ---------------------------------------------------------------------------- bring-up
def bring_up(lab, a):
    p = a.prefix
    hosts = [(f"{p}-lb", {"role": "lb", "site": "demo"}), (f"{p}-db", {"role": "db", "site": "demo"})]
    stale = lab.remove_stale(hosts)
    if stale:
        say("removed what an earlier demo left behind: " + ", ".join(stale))
    lab.net_up(hosts)
    lb, db = lab.s["hosts"]
    say(f"network: bridge {lab.s['bridge']} {lab.gw}/24; namespaces {lb['netns']} {lb['ip']} (role=lb), "
        f"{db['netns']} {db['ip']} (role=db)")
    lab.start_clickhouse()
    version = lab.ch_rows("SELECT version()")[0][0]
    say(f"ClickHouse {version} on {lab.ch_endpoint} (data in {lab.dir}/ch)")
    # lb and db share site=demo: the correlator groups them, so a spike on both is a fleet trigger
    lab.start_coordinator("--correlator-group-label=site", "--correlator-min-hosts=2",
                          "--correlator-max-diag-fraction=1", "--correlator-diag-ttl-ms=20000",
                          "--correlator-span-ms=10000", "--correlator-min-interval-ms=10000")
    tables = lab.ch_rows(f"SELECT count() FROM system.tables WHERE database = '{mslab.DB}'")[0][0]
    say(f"coordinator: windows on {lab.coord_url}, gRPC {lab.grpc}; schema in ClickHouse ({tables} tables)")
    common = ["--window-ms=1000", "--sample-freq=499", "--anomaly-interval-ms=500"]
    lab.start_agent(socket.gethostname(), {"role": "host", "site": "local"}, extra=common)
    for h in (lb, db):
        lab.start_agent(h["netns"], h["labels"], netns=h["netns"], ip=h["ip"],
                        extra=common + [f"--targets=flow:{h['ip']}"])
    log = lab.procs.log("agent-" + socket.gethostname())
    live = [ln.split("EVENT-LIVE ", 1)[1].split(" live")[0] for ln in log.splitlines() if "EVENT-LIVE " in ln]
    fell = [ln.split("EVENT-FALLBACK ", 1)[1].split(" (")[0] for ln in log.splitlines() if "EVENT-FALLBACK " in ln]
    say("agents ready: " + ", ".join(ag["id"] for ag in lab.s["agents"]) + "; sampling " + ", ".join(live)
        + (f" ({', '.join(fell)}: no hardware PMU here, software events instead)" if fell else ""))
    return lb, db


def start_load(lab, a, lb, db):
    svc = lab.bin("tests", "acc_service")
    d = a.duration
    lab.procs.spawn("load-acc-server", [svc, "server", db["ip"], str(ACC_PORT), str(ACC_FLOWS), "2",
                                        os.path.join(lab.dir, "acc_truth.txt"), "--work-us=200", "--bg-us=100",
                                        "--bg-every-us=5000", "--pf-pages=0", f"--sport-base={ACC_SPORT}"],
                    netns=db["netns"])
    lab.procs.wait_log("load-acc-server", "READY", 20)
    lab.procs.spawn("load-acc-client", [svc, "client", db["ip"], str(ACC_PORT), str(ACC_FLOWS), str(ACC_SPORT),
                                        str(d), "--think-us=200"], netns=lb["netns"])
    lab.procs.spawn("load-iperf3-server", ["iperf3", "-s", "-1", "-B", db["ip"], "-p", str(IPERF_PORT)],
                    netns=db["netns"])
    lo_port, lo_cport = mslab.free_ports(2)
    lab.s["lo_port"] = lo_port
    lab.save()
    lab.procs.spawn("load-iperf3-lo-server", ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(lo_port)])
    time.sleep(0.5)
    lab.procs.spawn("load-iperf3-lo-client", ["iperf3", "-c", "127.0.0.1", "-p", str(lo_port), "-t", str(d),
                                              "-b", "100M", "--cport", str(lo_cport), "-i", "0"])
    say(f"load for {d} s: acc_service {lb['ip']}:{ACC_SPORT}..{ACC_SPORT + ACC_FLOWS - 1} -> {db['ip']}:{ACC_PORT} "
        f"(4 flows, CPU-heavy handlers); iperf3 127.0.0.1:{lo_cport} -> 127.0.0.1:{lo_port} 100 Mbit/s; "
        f"iperf3 {lb['ip']}:{IPERF_CPORT} -> {db['ip']}:{IPERF_PORT} 200 Mbit/s from t+{d // 3} s")
    return lo_port


def run_load(lab, a, lb, db):
    d = a.duration
    end = time.time() + d
    iperf_at = time.time() + d // 3
    iperf_started = False
    next_tick = time.time() + 5
    while time.time() < end:
        if not iperf_started and time.time() >= iperf_at:
            lab.procs.spawn("load-iperf3-client", ["iperf3", "-c", db["ip"], "-p", str(IPERF_PORT), "-t",
                                                   str(max(1, int(end - time.time()))), "-b", "200M",
                                                   "--cport", str(IPERF_CPORT), "-i", "0"], netns=lb["netns"])
            iperf_started = True
            say(f"iperf3 {lb['netns']} -> {db['netns']} started")
            # an operator's fleet command through the coordinator's gRPC API: db to diagnostic
            rc, text = lab.msctl("mode", "diagnostic", "--label=role=db", "--ttl=60s",
                                 "--reason=demo: iperf3 burst on db")
            say(f"msctl mode diagnostic --label=role=db --ttl=60s: {text.strip() or 'exit %d' % rc}")
        if time.time() >= next_tick:
            next_tick += 5
            say(f"windows accepted {coord_metric(lab, 'ms_coord_windows_accepted_total'):.0f}, rollup rows in "
                f"ClickHouse {coord_metric(lab, 'ms_coord_ch_rows_inserted_total'):.0f}, fleet triggers "
                f"{coord_metric(lab, 'ms_coord_fleet_triggers_total'):.0f}")
        time.sleep(0.2)
    # let the clients finish, then one more window and one flush reach ClickHouse
    for n in ("load-acc-client", "load-iperf3-client", "load-iperf3-lo-client"):
        mslab.wait_for(lambda: lab.procs.pid(n) is None, 30, n + " to finish")
    time.sleep(2.5)


# ---------------------------------------------------------------------------- summary
def section(title):
    out(f"\n== {title}")


def indent(text):
    return "\n".join("   " + ln for ln in text.rstrip().splitlines())


def what(t, lo_port, lab_ports=None):
    """Which demo load (or demo component) a flow tuple (proto, saddr, daddr, sport, dport,
    has_tuple, ...) is."""
    if not t or t[5] != "1":
        return ""
    ports = {int(t[3]), int(t[4])}
    lp = lab_ports or {}
    if lp.get("ch_http") in ports:
        return "coordinator -> ClickHouse"
    if lp.get("nng") in ports:
        return "agent -> coordinator"
    if lp.get("grpc") in ports:
        return "agent -> coordinator gRPC"
    if ACC_PORT in ports:
        k = (ports - {ACC_PORT} or {ACC_SPORT}).pop() - ACC_SPORT
        return f"acc_service flow {k}" if 0 <= k < ACC_FLOWS else "acc_service"
    if IPERF_PORT in ports and addr(t[1]) != "127.0.0.1":
        return "iperf3 lb -> db"
    if lo_port in ports:
        return "iperf3 loopback"
    return ""


def tuple_text(t, arrow="->"):
    return f"{PROTO.get(int(t[0]), t[0])} {addr(t[1])}:{t[3]} {arrow} {addr(t[2])}:{t[4]}"


class Funcs:
    """Top functions of (host, flow ids) from ms_flow_rollup, names from ms_functions."""

    def __init__(self, lab, ids):
        db = mslab.DB
        self.rows = {}
        if not ids:
            return
        idlist = ",".join(sorted(ids))
        for h, fid, func, s in lab.ch_rows(
                f"SELECT host, flow_id, func_id, sum(samples) AS s FROM {db}.ms_flow_rollup FINAL "
                f"WHERE flow_id IN ({idlist}) GROUP BY host, flow_id, func_id"):
            self.rows.setdefault((h, fid), {})[func] = int(s)
        fids = sorted({f for v in self.rows.values() for f in v})
        self.names = {}
        for h, func, name, module in lab.ch_rows(f"SELECT host, func_id, name, module FROM {db}.ms_functions FINAL "
                                                 f"WHERE func_id IN ({','.join(fids)})"):
            self.names[(h, func)] = f"{name} ({os.path.basename(module)})" if module else name

    def top(self, host, fids, n=3):
        total = {}
        for fid in fids:
            for func, s in self.rows.get((host, fid), {}).items():
                total[func] = total.get(func, 0) + s
        best = sorted(total.items(), key=lambda kv: -kv[1])[:n]
        return [(s, self.names.get((host, f), "[unknown]" if f == "0" else "func " + f)) for f, s in best]


def summary(lab):
    section("fleet status (msctl status; msctl agents)")
    for cmd in (["status"], ["agents"]):
        rc, text = lab.msctl(*cmd)
        out(indent(text) if text.strip() else f"   msctl {cmd[0]}: exit {rc}")
    db = mslab.DB
    lo_port = lab.s.get("lo_port") or 0
    section("samples per agent (ClickHouse ms_windows, ms_flow_rollup FINAL)")
    wins = {h: n for h, n in lab.ch_rows(f"SELECT host, count() FROM {db}.ms_windows FINAL GROUP BY host")}
    for h, s, on in lab.ch_rows(f"SELECT host, sum(samples), sumIf(samples, flow_id != 0) FROM {db}.ms_flow_rollup "
                                "FINAL GROUP BY host ORDER BY host"):
        share = 100.0 * int(on) / int(s) if int(s) else 0.0
        out(f"   {h:<20} {wins.get(h, '0'):>4} windows {s:>8} samples, {share:5.1f}% of them on a network flow")

    section("top flows per agent, with their top functions (ClickHouse ms_flow_rollup, ms_flows, ms_functions)")
    top = lab.ch_rows(f"SELECT host, flow_id, sum(samples) AS s FROM {db}.ms_flow_rollup FINAL WHERE flow_id != 0 "
                      "GROUP BY host, flow_id ORDER BY host, s DESC LIMIT 5 BY host")
    # the demo's own flows, found by their ports (both directions of each connection)
    mine = lab.ch_rows(f"SELECT host, flow_id, proto, hex(saddr), hex(daddr), sport, dport, has_tuple, direction "
                       f"FROM {db}.ms_flows FINAL WHERE has_tuple AND (sport IN ({ACC_PORT}, {IPERF_PORT}, {lo_port}) "
                       f"OR dport IN ({ACC_PORT}, {IPERF_PORT}, {lo_port}))")
    ids = {r[1] for r in top} | {r[1] for r in mine}
    flows = {}
    if ids:
        flows = {(r[0], r[1]): r[2:] for r in lab.ch_rows(
            f"SELECT host, flow_id, proto, hex(saddr), hex(daddr), sport, dport, has_tuple, direction "
            f"FROM {db}.ms_flows FINAL WHERE flow_id IN ({','.join(sorted(ids))})")}
    funcs = Funcs(lab, ids)
    host = None
    for h, fid, s in top:
        if h != host:
            host = h
            out(f"   {h}")
        t = flows.get((h, fid))
        tup = tuple_text(t) + " " + t[6] if t and t[5] == "1" else f"flow {fid} (no tuple)"
        out(f"     {tup:<49} {s:>7} samples  {what(t, lo_port, lab.s['ports'])}")
        for fs, name in funcs.top(h, [fid]):
            out(f"         {fs:>7}  {name}")
    if not top:
        out("   no flow-attributed samples")

    section("the demo's load as each agent measured it (flows found by port, both directions)")
    groups = {}
    for r in mine:
        label = what(r[2:], lo_port)
        if label:
            g = groups.setdefault((r[0], label), {"ids": set(), "tuple": None})
            g["ids"].add(r[1])
            t = r[2:]
            # name the connection client -> server
            if int(t[4]) in (ACC_PORT, IPERF_PORT, lo_port):
                g["tuple"] = tuple_text(t, "<->")
            elif g["tuple"] is None:
                g["tuple"] = tuple_text((t[0], t[2], t[1], t[4], t[3]), "<->")
    sums = {}
    if mine:
        for h, fid, s in lab.ch_rows(f"SELECT host, flow_id, sum(samples) FROM {db}.ms_flow_rollup FINAL WHERE flow_id IN "
                                     f"({','.join(sorted({r[1] for r in mine}))}) GROUP BY host, flow_id"):
            sums[(h, fid)] = int(s)
    host = None
    order = ["acc_service flow %d" % k for k in range(ACC_FLOWS)] + ["iperf3 lb -> db", "iperf3 loopback"]
    for (h, label), g in sorted(groups.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1])
                                                                 if kv[0][1] in order else 99)):
        s = sum(sums.get((h, fid), 0) for fid in g["ids"])
        if not s:
            continue
        if h != host:
            host = h
            out(f"   {h}")
        out(f"     {label:<18} {g['tuple']:<46} {s:>7} samples")
        for fs, name in funcs.top(h, g["ids"]):
            out(f"         {fs:>7}  {name}")
    if not groups:
        out("   none of the demo's flows were measured")

    section("fleet events (msctl events; ClickHouse ms_fleet_events)")
    rc, text = lab.msctl("events", "--limit=10")
    kinds = lab.ch_rows(f"SELECT kind, count() FROM {db}.ms_fleet_events FINAL GROUP BY kind ORDER BY kind")
    out(indent(text) if text.strip() else "   none")
    out("   in ClickHouse ms_fleet_events: " + (", ".join(f"{n} {k}" for k, n in kinds) if kinds else "none"))


# ---------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("MS_BUILD", "build"))
    ap.add_argument("--duration", type=int, default=30, help="seconds of load (default 30)")
    ap.add_argument("--state-dir", default=os.path.join(SRC, "var", "demo"))
    ap.add_argument("--prefix", default="msdemo", help="namespace/link name prefix (<= 8 chars)")
    ap.add_argument("--subnet", default="10.232.0", help="first three octets of the demo /24")
    ap.add_argument("--keep", action="store_true", help="keep the state directory (ClickHouse data, logs)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        out("demo: needs root (BPF programs, perf events, network namespaces)", file=sys.stderr)
        return 1
    build = a.build if os.path.isabs(a.build) else os.path.join(SRC, a.build)
    state = os.path.abspath(a.state_dir)
    if os.path.exists(os.path.join(state, "lab.json")):
        out(f"demo: tearing down what a previous run left in {state}")
        mslab.Lab(state).down()
    signal.signal(signal.SIGTERM, stop_signal)
    signal.signal(signal.SIGINT, stop_signal)  # also when started with SIGINT ignored (a background job)
    lab = mslab.Lab(state, build=build, prefix=a.prefix, subnet=a.subnet, src=SRC)
    rc = 0
    agent_progs = set()
    out(f"== MicroSentinel demo: coordinator, ClickHouse, 3 agents, {a.duration} s of load; state in {state}")
    try:
        lab.check_binaries()
        if not os.access(lab.bin("tests", "acc_service"), os.X_OK):
            raise mslab.LabError(f"{lab.bin('tests', 'acc_service')} not built (make build)")
        lab.save()
        lb, db = bring_up(lab, a)
        for ag in lab.s["agents"]:
            agent_progs |= held_prog_ids(lab.procs.pid(ag["proc"]))
        start_load(lab, a, lb, db)
        run_load(lab, a, lb, db)
        summary(lab)
    except KeyboardInterrupt:
        out("\ndemo: interrupted, stopping")
        rc = 130
    except (mslab.LabError, OSError, urllib.request.URLError) as e:
        out(f"\ndemo: failed: {e}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        names = lab.procs.names()
        section("stopping: load, agents, coordinator, ClickHouse; removing namespaces and links")
        left = lab.down(keep=a.keep or rc == 1)
        progs_left = agent_progs & bpf_prog_ids()
        if progs_left:
            left.append(f"{len(progs_left)} BPF programs")
        if left:
            out("   LEFT BEHIND: " + ", ".join(left))
            rc = rc or 1
        else:
            out(f"   stopped {len(names)} processes; removed "
                  f"{len(lab.s['netns'])} namespaces and {len(lab.s['links'])} links; the agents' "
                  f"{len(agent_progs)} BPF programs are unloaded" + (f"; kept {state}" if a.keep else ""))
        if rc == 1 and not a.keep:
            out(f"   logs kept in {state}/logs", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
