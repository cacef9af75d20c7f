"""Least privilege (issue #10): the real agent, started as root, holds after AGENT-READY only the
capabilities its running work needs (common/privdrop.c: bpf, perfmon, sys_ptrace, dac_read_search,
syslog, checkpoint_restore on this kernel), in every thread, with an equal bounding set, nothing
inheritable or ambient, and no_new_privs; mode changes, target pushes and a PMU reconfiguration
(perf_event_open at run time) still work afterwards. A synthetic agent and the coordinator keep
nothing at all, and the coordinator still accepts windows."""
import glob
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import agentapi  # noqa: E402
import msfleet  # noqa: E402
import mstest  # noqa: E402

CAP = {"dac_read_search": 2, "net_bind_service": 10, "sys_ptrace": 19, "sys_admin": 21, "syslog": 34,
       "perfmon": 38, "bpf": 39, "checkpoint_restore": 40}


def read_int(path, default):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default


def agent_mask():
    """The expected runtime set, computed independently of the C code from the same rules."""
    last = read_int("/proc/sys/kernel/cap_last_cap", 40)
    paranoid = read_int("/proc/sys/kernel/perf_event_paranoid", 2)
    keep = {"sys_ptrace", "dac_read_search", "syslog"}
    keep |= {"bpf", "perfmon"} if last >= 39 else {"sys_admin"}
    keep |= {"checkpoint_restore"} if last >= 40 else {"sys_admin"}
    if paranoid >= 3:
        keep.add("sys_admin")
    return sum(1 << CAP[c] for c in keep if CAP[c] <= last)


def caps(pid, task=None):
    path = f"/proc/{pid}/task/{task}/status" if task else f"/proc/{pid}/status"
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                out[k] = int(v.strip(), 16)
            elif k == "NoNewPrivs":
                out[k] = int(v.strip())
    return out


class PrivDropTest(unittest.TestCase):
    def setUp(self):
        mstest.require_root(self)

    def assert_reduced(self, pid, mask, what):
        tasks = [os.path.basename(t) for t in glob.glob(f"/proc/{pid}/task/*")]
        self.assertGreater(len(tasks), 1, "expected a threaded daemon")
        for t in tasks:
            c = caps(pid, t)
            self.assertEqual(c["CapEff"], mask, f"{what} thread {t}: CapEff {c['CapEff']:#x} != {mask:#x}")
            self.assertEqual(c["CapPrm"], mask, f"{what} thread {t}: CapPrm")
            self.assertEqual(c["CapBnd"], mask, f"{what} thread {t}: CapBnd")
            self.assertEqual(c["CapInh"], 0, f"{what} thread {t}: CapInh")
            self.assertEqual(c["CapAmb"], 0, f"{what} thread {t}: CapAmb")
            self.assertEqual(c["NoNewPrivs"], 1, f"{what} thread {t}: NoNewPrivs")

    def test_bpf_agent_keeps_its_runtime_set(self):
        agent = agentapi.ApiAgent("--events=cpu-clock", "--window-ms=300", "--no-anomaly-enabled", "--mode=sentinel")
        agent.start()
        try:
            self.assertIn("PRIVDROP", agent.log())
            self.assert_reduced(agent.proc.pid, agent_mask(), "bpf agent")
            # a mode pin: the loop writes the BPF config map (bpf(2) after the drop)
            r = agent.api("POST", "/api/v1/mode", '{"mode":"diagnostic","ttl_s":60}')
            self.assertEqual(r.status, 200, r)
            agent.wait(lambda s: s["mode"] == "diagnostic", 20, "diagnostic mode")
            # a target push
            r = agent.api("POST", "/api/v1/targets", '[{"type":"port","value":443},{"type":"proto","value":"tcp"}]')
            self.assertEqual(r.status, 200, r)
            agent.wait(lambda s: len(s["targets"]["list"]) == 2, 20, "two targets")
            # a PMU reconfiguration opens new perf events on every CPU (CAP_PERFMON kept)
            r = agent.api("POST", "/api/v1/pmu-config",
                          '{"sentinel":{"groups":[{"name":"cpu","events":["cpu-clock","page-faults"]}]},'
                          '"diagnostic":{"groups":[{"name":"cpu","events":["cpu-clock","page-faults"]}]}}')
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json().get("status"), "ok", r)
            s = agent.wait(lambda s: s["pmu"]["reconfigurations"] >= 1, 20, "a PMU reconfiguration")
            self.assertIsNone(s["pmu"]["last_error"], s["pmu"])
            live = {e["name"] for e in s["events"] if e["live"]}
            self.assertIn("page-faults", live, s["events"])
            r = agent.api("POST", "/api/v1/mode", '{"mode":"auto"}')
            self.assertEqual(r.status, 200, r)
            # still sampling: windows keep closing after all of it
            w0 = agent.status()["counters"]["windows"]
            agent.wait(lambda s: s["counters"]["windows"] >= w0 + 2, 20, "more windows")
            self.assert_reduced(agent.proc.pid, agent_mask(), "bpf agent after the operations")
        finally:
            rc = agent.stop()
        self.assertEqual(rc, 0, agent.log())
        self.assertNotIn("PRIVDROP-FAILED", agent.log())

    def test_synthetic_agent_keeps_nothing(self):
        agent = agentapi.ApiAgent("--perf-mock", "--window-ms=200")
        agent.start()
        try:
            self.assert_reduced(agent.proc.pid, 0, "synthetic agent")
            r = agent.api("POST", "/api/v1/mode", '{"mode":"diagnostic","ttl_s":60}')
            self.assertEqual(r.status, 200, r)
            agent.wait(lambda s: s["mode"] == "diagnostic", 20, "diagnostic mode")
        finally:
            rc = agent.stop()
        self.assertEqual(rc, 0, agent.log())

    def test_coordinator_keeps_nothing(self):
        coord = msfleet.Coordinator()
        self.addCleanup(coord.cleanup)
        coord.start()
        self.assertIn("PRIVDROP", coord.log())
        self.assert_reduced(coord.proc.pid, 0, "coordinator")
        agent = msfleet.fleet_agent(coord.url, "privdrop-agent")
        agent.start()
        try:
            msfleet.wait_until(lambda: len(coord.accepted()) >= 2, 30, what="windows accepted")
        finally:
            self.assertEqual(agent.stop(), 0, agent.log())
        self.assertEqual(coord.stop(), 0, coord.log())


if __name__ == "__main__":
    mstest.main()
