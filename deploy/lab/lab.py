#!/usr/bin/python3
"""An N-host MicroSentinel lab on this machine, in network namespaces (root).

  lab.py up N [--load] [--state-dir DIR] [--build DIR] [--prefix mslab] [--subnet 10.231.0]
  lab.py status [--state-dir DIR]
  lab.py down [--state-dir DIR] [--keep]

up: ClickHouse on 127.0.0.1, the coordinator on the lab bridge (SUBNET.1), N agents in namespaces
<prefix>1..N (SUBNET.11.., labels role=lb|app|db in turn and rack=r1|r2), Prometheus on
127.0.0.1 scraping every agent and the coordinator; with --load, iperf3 at 20 Mbit/s from each
host to the next. Everything is recorded in the state directory (default: var/lab in the source
tree), so status and down work from any shell. down stops the processes (load, agents,
coordinator, Prometheus, ClickHouse), removes namespaces and links, checks that nothing is left
and removes the state directory (--keep keeps the data). Exit 0 on success, 1 on failure."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mslab  # noqa: E402

ROLES = ("lb", "app", "db")


def up(a):
    if os.path.exists(os.path.join(a.state_dir, "lab.json")):
        print(f"lab: {a.state_dir} holds a lab already; run 'lab.py down' first", file=sys.stderr)
        return 1
    build = a.build or os.environ.get("MS_BUILD") or os.path.join(SRC, "build")
    if not os.path.isabs(build):
        build = os.path.join(SRC, build)
    lab = mslab.Lab(a.state_dir, build=build, prefix=a.prefix, subnet=a.subnet, src=SRC)
    try:
        lab.check_binaries()
        t0 = time.time()
        hosts = [(f"{a.prefix}{i}", {"role": ROLES[(i - 1) % len(ROLES)], "rack": f"r{1 + (i - 1) % 2}"})
                 for i in range(1, a.n + 1)]
        taken = lab.existing(hosts)
        if taken:
            print(f"lab: {', '.join(taken)} exist already (another lab with prefix {a.prefix}?): use another "
                  "--prefix, or 'lab.py down --state-dir' of that lab", file=sys.stderr)
            return 1
        lab.save()
        lab.net_up(hosts)
        lab.start_clickhouse()
        lab.start_coordinator()
        for h in lab.s["hosts"]:
            lab.start_agent(h["netns"], h["labels"], netns=h["netns"], ip=h["ip"],
                            extra=["--sample-freq=199", "--window-ms=1000"])
        lab.start_prometheus()
        if a.load and len(lab.s["hosts"]) > 1:
            hs = lab.s["hosts"]
            for i, h in enumerate(hs):
                lab.procs.spawn(f"load-iperf3-s-{h['netns']}", ["iperf3", "-s", "-B", h["ip"], "-p", "5201"],
                                netns=h["netns"])
            time.sleep(0.5)
            for i, h in enumerate(hs):
                dst = hs[(i + 1) % len(hs)]
                lab.procs.spawn(f"load-iperf3-c-{h['netns']}", ["iperf3", "-c", dst["ip"], "-p", "5201", "-t", "0",
                                                                "-b", "20M", "-i", "0"], netns=h["netns"])
        print(f"lab up in {time.time() - t0:.1f} s ({a.n} agents); state in {lab.dir}")
        print_endpoints(lab)
        return 0
    except (mslab.LabError, OSError) as e:
        print(f"lab: up failed: {e}", file=sys.stderr)
        left = lab.down(keep=True)
        if left:
            print("lab: left behind: " + ", ".join(left), file=sys.stderr)
        print(f"lab: everything started is stopped; logs in {lab.dir}/logs; 'lab.py down --state-dir "
              f"{lab.dir}' removes them", file=sys.stderr)
        return 1


def print_endpoints(lab):
    p = lab.s["ports"]
    print(f"  ClickHouse   {lab.ch_endpoint}  (database {mslab.DB})")
    print(f"  coordinator  nng {lab.coord_url}  gRPC {lab.grpc}  metrics {lab.coord_metrics_url()}")
    if "prometheus" in p:
        print(f"  Prometheus   http://127.0.0.1:{p['prometheus']}")
    for ag in lab.s["agents"]:
        labels = ",".join(f"{k}={v}" for k, v in ag["labels"].items())
        print(f"  agent {ag['id']:<10} netns {ag['netns'] or '-':<9} metrics http://{ag['metrics']}/metrics  {labels}")
    print(f"  msctl: {lab.msctl_bin} --coordinator={lab.grpc} --token-file={lab.dir}/token status")


def status(a):
    if not os.path.exists(os.path.join(a.state_dir, "lab.json")):
        print(f"lab: no lab in {a.state_dir}")
        return 1
    lab = mslab.Lab(a.state_dir)
    print_endpoints(lab)
    bad = 0
    print("processes:")
    for n in lab.procs.names():
        pid = lab.procs.pid(n)
        bad += pid is None
        print(f"  {n:<28} {'pid ' + str(pid) if pid else 'NOT RUNNING'}")
    try:
        print("coordinator registry:")
        for ag in lab.coord_agents():
            print(f"  {ag.get('agent_id', ag.get('id', '?')):<12} {ag.get('state', '?'):<6} windows "
                  f"{ag.get('windows', '?')} last_seq {ag.get('last_seq', '?')}")
    except OSError as e:
        bad += 1
        print(f"  coordinator unreachable: {e}")
    if "prometheus" in lab.s["ports"]:
        try:
            print("Prometheus up:")
            for m, v in sorted(lab.prom_query("up"), key=lambda r: r[0].get("instance", "")):
                print(f"  {m.get('job'):<15} {m.get('instance'):<22} {m.get('agent', ''):<10} up={int(v)}")
        except OSError as e:
            bad += 1
            print(f"  Prometheus unreachable: {e}")
    try:
        rows = lab.ch_rows(f"SELECT host, count(), sum(samples) FROM {mslab.DB}.ms_windows FINAL GROUP BY host ORDER BY host")
        print("ClickHouse windows per host:")
        for h, n, s in rows:
            print(f"  {h:<12} {n} windows, {s} samples")
    except (OSError, mslab.LabError) as e:
        bad += 1
        print(f"  ClickHouse: {e}")
    return 1 if bad else 0


def down(a):
    if not os.path.exists(os.path.join(a.state_dir, "lab.json")):
        print(f"lab: no lab in {a.state_dir}")
        return 0
    lab = mslab.Lab(a.state_dir)
    left = lab.down(keep=a.keep)
    if left:
        print("lab: left behind: " + ", ".join(left), file=sys.stderr)
        return 1
    print("lab down: processes stopped, namespaces and links removed" + ("" if a.keep else ", state removed"))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("up", "status", "down"):
        p = sub.add_parser(name)
        p.add_argument("--state-dir", default=os.environ.get("MS_LAB_DIR", os.path.join(SRC, "var", "lab")))
        if name == "up":
            p.add_argument("n", type=int)
            p.add_argument("--build", default=None, help="build directory (default $MS_BUILD or build)")
            p.add_argument("--prefix", default="mslab", help="netns/link name prefix (<= 8 chars)")
            p.add_argument("--subnet", default="10.231.0", help="first three octets of the lab /24")
            p.add_argument("--load", action="store_true", help="iperf3 between the hosts")
        if name == "down":
            p.add_argument("--keep", action="store_true", help="keep the state directory (data, logs)")
    a = ap.parse_args()
    a.state_dir = os.path.abspath(a.state_dir)
    if os.geteuid() != 0:
        print("lab: needs root (network namespaces, BPF)", file=sys.stderr)
        return 1
    if a.cmd == "up":
        if not 1 <= a.n <= 200 or len(a.prefix) > 8:
            print("lab: N must be 1..200 and the prefix at most 8 characters", file=sys.stderr)
            return 1
        return up(a)
    return status(a) if a.cmd == "status" else down(a)


if __name__ == "__main__":
    sys.exit(main())
