"""The main job (issue 8, SPEC §12): deploy/demo.sh with a short load. It exits 0; its summary
shows the fleet (3 agents live), names the flows the demo created — acc_service's 4 flows
lb:47400..47403 -> db:7400 and iperf3 lb:45201 -> db:5201 — each with its top functions (the
service's own work_flow_K among them), and the fleet events; afterwards nothing of the demo is
left: no process, namespace, link, agent BPF program or state directory."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mstest  # noqa: E402

DEMO = os.path.join(mstest.SRC, "deploy", "demo.sh")
PREFIX, SUBNET = "msdemt", "10.234.0"
DURATION = 12


def procs_mentioning(text):
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if text.encode() in cmd:
            out[int(p)] = cmd.split(b"\0")[0].decode(errors="replace")
    return out


def agent_section(text, agent):
    """{load line: [function lines]} of one agent in the summary's section on the demo's load."""
    m = re.search(r"^== the demo's load.*?\n(.*?)^== ", text, re.S | re.M)
    flows, cur, inside = {}, None, False
    for ln in (m.group(1) if m else "").splitlines():
        if re.match(r"^   \S", ln):
            inside = ln.strip() == agent
        elif inside and re.match(r"^     \S", ln):
            cur = ln.strip()
            flows[cur] = []
        elif inside and cur and re.match(r"^         +\d+ ", ln):
            flows[cur].append(ln.split(None, 1)[1])
    return flows


class Demo(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)
        for b in (shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server", "/usr/bin/iperf3",
                  os.path.join(mstest.BUILD, "tests", "acc_service"), os.path.join(mstest.BUILD, "coordinator", "msctl")):
            if not os.path.exists(b):
                raise unittest.SkipTest(f"{b} missing")
        self.state = os.path.join(tempfile.mkdtemp(prefix="ms-demo-test-"), "state")

    def test_demo_summary_and_clean_stop(self):
        out_path = self.state + ".out"
        with open(out_path, "w") as out:
            p = subprocess.Popen(["bash", DEMO, mstest.BUILD, "--duration", str(DURATION), "--state-dir", self.state,
                                  "--prefix", PREFIX, "--subnet", SUBNET], stdout=out, stderr=subprocess.STDOUT)
        seen, agent_progs = {}, set()
        end = time.time() + 240
        try:
            while p.poll() is None and time.time() < end:
                for pid, cmd in procs_mentioning(self.state).items():
                    seen[pid] = cmd
                    if cmd.endswith("micro_sentinel_agent"):
                        try:
                            agent_progs |= mstest.bpf_objects_of(pid)[0]
                        except OSError:
                            pass
                time.sleep(0.5)
        finally:
            if p.poll() is None:
                p.kill()
            rc = p.wait()
        with open(out_path) as f:
            text = f.read()
        print("\n" + text)
        state_left = os.path.exists(self.state)
        if rc == 0:
            shutil.rmtree(os.path.dirname(self.state), ignore_errors=True)
        self.assertEqual(rc, 0, text)
        self.assertNotIn("LEFT BEHIND", text)
        self.assertRegex(text, r"agents_live\s+3")
        self.assertIn("== fleet events", text)
        self.assertIn("agent_connected", text)
        self.assertRegex(text, r"mode_set .*{0}-db mode=diagnostic".format(PREFIX))  # the demo's msctl push

        db = agent_section(text, f"{PREFIX}-db")
        host = agent_section(text, os.uname().nodename)
        self.assertTrue(db and host, "no top flows for the db agent or the host agent")
        for name, section in (("db", db), ("host", host)):
            for k in range(4):
                lines = [ln for ln in section if ln.startswith(f"acc_service flow {k} ")
                         and f":{47400 + k} <-> {SUBNET}.12:7400 " in ln]
                self.assertEqual(len(lines), 1, f"{name}: acc_service flow {k} missing:\n{section}")
                self.assertTrue(section[lines[0]], f"{name}: flow {k} has no functions")
            iperf = [ln for ln in section if ln.startswith("iperf3 lb -> db ") and f"{SUBNET}.12:5201 " in ln]
            self.assertEqual(len(iperf), 1, f"{name}: iperf3 lb -> db missing:\n{section}")
            self.assertTrue(section[iperf[0]])
        self.assertTrue(any(ln.startswith("iperf3 loopback ") for ln in host), "host: iperf3 loopback missing")
        # the service's own per-flow handler is among the top functions of its heavier flows
        for section in (db, host):
            for k in (1, 2, 3):
                line = next(ln for ln in section if ln.startswith(f"acc_service flow {k} "))
                self.assertTrue(any(f.startswith(f"work_flow_{k} ") for f in section[line]), section[line])

        # nothing left
        self.assertTrue(any(c.endswith("micro_sentinel_agent") for c in seen.values()), seen)
        self.assertTrue(agent_progs, "no BPF programs seen held by the agents")
        self.assertEqual(procs_mentioning(self.state), {})
        netns = mstest.run(["ip", "netns", "list"]).stdout
        self.assertNotIn(PREFIX, netns)
        self.assertNotIn(PREFIX, mstest.run(["ip", "-o", "link", "show"]).stdout)
        left = [i for i in agent_progs if mstest.bpf_prog_exists(i)]
        self.assertEqual(left, [], "agent BPF programs still loaded")
        self.assertFalse(state_left, "state directory left")


if __name__ == "__main__":
    mstest.main()
