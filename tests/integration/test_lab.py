"""deploy/lab (issue 8): `lab.py up 3` brings up ClickHouse, the coordinator, 3 agents in network
namespaces and Prometheus; every agent target and the coordinator are `up` in Prometheus (its
HTTP API), windows of all 3 agents are in ClickHouse (ms_flow_rollup), `lab.py status` is happy;
`lab.py down` (a separate process, as from another shell) leaves no namespace, link, process or
BPF program of the agents behind, and removes the state directory."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mstest  # noqa: E402

sys.path.insert(0, os.path.join(mstest.SRC, "deploy", "lib"))
import mslab  # noqa: E402

LAB = os.path.join(mstest.SRC, "deploy", "lab", "lab.py")
PREFIX, SUBNET = "mslabt", "10.233.0"


def lab(*args, timeout=240):
    return subprocess.run([mstest.PY, LAB] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def ours_netns():
    return [ln.split()[0] for ln in mstest.run(["ip", "netns", "list"]).stdout.splitlines()
            if ln.startswith(PREFIX)]


def ours_links():
    out = mstest.run(["ip", "-o", "link", "show"]).stdout
    return [ln.split(": ")[1].split("@")[0] for ln in out.splitlines() if ln.split(": ")[1].startswith(PREFIX)]


def procs_mentioning(text):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(p))
        except OSError:
            pass
    return pids


class Lab(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        for b in (mslab.CH_BIN, mslab.PROM_BIN, os.path.join(mstest.BUILD, "coordinator", "msctl")):
            if not os.path.exists(b):
                raise unittest.SkipTest(f"{b} missing")
        if ours_netns() or ours_links():  # a killed earlier run of this test: its names, remove them
            print(f"removing leftovers of an earlier run: {ours_netns()} {ours_links()}")
            for ns in ours_netns():
                mstest.run(["ip", "netns", "del", ns], check=False)
            for ln in ours_links():
                mstest.run(["ip", "link", "del", ln], check=False)
        self.state = tempfile.mkdtemp(prefix="ms-lab-test-")

    def tearDown(self):
        if os.path.exists(os.path.join(self.state, "lab.json")):
            lab("down", "--state-dir", self.state)

    def test_up_three_prometheus_clickhouse_down_clean(self):
        t0 = time.time()
        r = lab("up", "3", "--build", mstest.BUILD, "--state-dir", self.state, "--prefix", PREFIX,
                "--subnet", SUBNET)
        print(f"\n{r.stdout}")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(len(ours_netns()), 3)
        lb = mslab.Lab(self.state)
        ids = [a["id"] for a in lb.s["agents"]]
        self.assertEqual(len(ids), 3)
        self.assertEqual({a["labels"]["role"] for a in lb.s["agents"]}, {"lb", "app", "db"})
        pids = {n: lb.procs.pid(n) for n in lb.procs.names()}
        self.assertTrue(all(pids.values()), pids)
        agent_progs = set()
        for a in lb.s["agents"]:
            agent_progs |= mstest.bpf_objects_of(pids[a["proc"]])[0]
        self.assertTrue(agent_progs, "the agents hold no BPF programs")

        def all_up():
            res = lb.prom_query("up")
            agents = {m.get("agent") for m, v in res if m.get("job") == "ms_agent" and v == 1}
            coord = [v for m, v in res if m.get("job") == "ms_coordinator"]
            return agents == set(ids) and coord == [1.0] and res
        res = mslab.wait_for(all_up, 90, "all targets up in Prometheus", step=1)
        print("Prometheus up:", sorted((m.get("instance"), m.get("agent"), v) for m, v in res))

        def all_hosts():
            hosts = {r[0] for r in lb.ch_rows(f"SELECT DISTINCT host FROM {mslab.DB}.ms_flow_rollup")}
            return hosts if hosts >= set(ids) else None
        hosts = mslab.wait_for(all_hosts, 90, "windows of all 3 agents in ClickHouse", step=1)
        print("hosts in ms_flow_rollup:", sorted(hosts))
        st = lab("status", "--state-dir", self.state)
        self.assertEqual(st.returncode, 0, st.stdout)
        print(f"up to verified in {time.time() - t0:.1f} s")

        d = lab("down", "--state-dir", self.state)
        print(d.stdout)
        self.assertEqual(d.returncode, 0, d.stdout)
        self.assertEqual(ours_netns(), [])
        self.assertEqual(ours_links(), [])
        for n, pid in pids.items():
            st = mslab.proc_stat(pid)
            self.assertTrue(st is None or st[0] in "ZX", f"{n} (pid {pid}) still running")
        self.assertEqual(procs_mentioning(self.state), [])
        left = [p for p in agent_progs if mstest.bpf_prog_exists(p)]
        self.assertEqual(left, [], "BPF programs of the agents still loaded")
        self.assertFalse(os.path.exists(self.state), "state directory not removed")


if __name__ == "__main__":
    mstest.main()
