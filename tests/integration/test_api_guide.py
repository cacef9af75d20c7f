"""Every curl example of the operations guide (§4.2 control plane, §8 quick commands) against a
running agent: each answer is checked, and so is its effect, through GET /api/v1/status and
/metrics. The commands run as written; only when 9200/9105 are taken on this machine are the
ports replaced by free ones. The PMU example needs real perf events (root); the rest runs on the
synthetic source."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import mstest  # noqa: E402

SYNTH_PID = 4242
SYNTH_CODE_BASE = 0x7F0000000000


class GuideExamples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        verbatim = agentapi.port_free(9200) and agentapi.port_free(9105)
        cp, mp = (9200, 9105) if verbatim else (None, None)
        cls.agent = agentapi.ApiAgent("--perf-mock", "--mock-rate=4000", "--window-ms=500", "--no-anomaly-enabled",
                                      control_port=cp, metrics_port=mp)
        cls.agent.start()
        cls.verbatim = verbatim

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        assert rc == 0, cls.agent.log()

    def sh(self, cmd):
        """Runs a guide command line, ports adjusted when the defaults were taken."""
        cmd = cmd.replace("localhost:9200", f"localhost:{self.agent.control_port}")
        cmd = cmd.replace("localhost:9105", f"localhost:{self.agent.metrics_port}")
        rc, out, err = agentapi.curl(cmd)
        self.assertEqual(rc, 0, f"{cmd}: {err}")
        return out

    def post(self, path, body):
        """The guide's `curl -X POST localhost:9200<path> -d '<body>'`, answer parsed."""
        out = self.sh(f"curl -s -X POST localhost:9200{path} -d '{body}'")
        return json.loads(out)

    def wait_windows(self, n=2):
        seq = self.agent.status()["top"]["window_seq"]
        self.agent.wait(lambda s: s["top"]["window_seq"] >= seq + n, 20, f"{n} more windows")

    def test_1_check_mode_quick_command(self):
        # §8: curl -s localhost:9105/metrics | grep ms_agent_mode
        out = self.sh("curl -s localhost:9105/metrics | grep ms_agent_mode")
        self.assertIn("# TYPE ms_agent_mode gauge", out)
        self.assertIn("ms_agent_mode 0", out.splitlines())

    def test_2_force_diagnostic(self):
        # §4.2 and §8: curl -X POST localhost:9200/api/v1/mode -d '{"mode":"diagnostic"}'
        r = self.post("/api/v1/mode", '{"mode":"diagnostic"}')
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["mode"], "diagnostic")
        self.assertEqual(r["pin"]["source"], "api")
        self.assertIsNone(r["pin"]["expires"])
        s = self.agent.status()
        self.assertEqual(s["mode"], "diagnostic")
        self.assertEqual(s["pin"]["mode"], "diagnostic")
        self.assertEqual(self.agent.metric("ms_agent_mode"), 1)
        self.assertEqual(self.agent.metric("ms_mode_pinned"), 1)
        out = self.sh("curl -s localhost:9105/metrics | grep ms_agent_mode")
        self.assertIn("ms_agent_mode 1", out.splitlines())
        # the window in progress is not lost: windows keep their sequence without a gap
        self.wait_windows(2)
        windows = self.agent.windows()
        seqs = [w["seq"] for w in windows]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        self.assertEqual(windows[-1]["mode"], "diagnostic")
        # "auto" clears the pin
        r = self.agent.api("POST", "/api/v1/mode", '{"mode":"auto"}')
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["pin"])
        self.assertEqual(self.agent.status()["mode"], "sentinel")

    def test_3_token_bucket(self):
        # §4.2: curl -X POST ... -d '{"sentinel_samples_per_sec":8000,"diagnostic_samples_per_sec":20000,"hard_drop_ns":4000}'
        r = self.post("/api/v1/token-bucket",
                      '{"sentinel_samples_per_sec":8000,"diagnostic_samples_per_sec":20000,"hard_drop_ns":4000}')
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["budgets"], {"sentinel_samples_per_sec": 8000, "diagnostic_samples_per_sec": 20000,
                                        "hard_drop_ns": 4000})
        s = self.agent.status()
        self.assertEqual(s["budgets"]["sentinel_samples_per_sec"], 8000)
        self.assertEqual(s["budgets"]["hard_drop_ns"], 4000)
        self.assertEqual(self.agent.metric("ms_budget_samples_per_second", {"mode": "sentinel"}), 8000)
        self.assertEqual(self.agent.metric("ms_budget_samples_per_second", {"mode": "diagnostic"}), 20000)
        # the next windows carry the new per-CPU budget of the mode in force
        self.wait_windows(2)
        self.assertEqual(self.agent.windows()[-1]["budget_per_cpu"], 8000)

    def test_4_targets(self):
        # §4.2's form: [{"type":"flow","value":"10.1."}]
        r = self.post("/api/v1/targets", '[{"type":"flow","value":"10.1."}]')
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["targets"], 1)
        filtered0 = self.agent.metric("ms_target_filtered_samples_total")
        self.wait_windows(2)
        s = self.agent.status()
        self.assertEqual(s["targets"]["list"], ["flow:10.1.0.0/16"])
        # unattributed samples (10 % of the synthetic stream) no longer reach the windows
        self.assertEqual(s["top"]["unattributed"], 0)
        self.assertTrue(all(f["saddr"].startswith("10.1.") or f["daddr"].startswith("10.1.")
                            for f in s["top"]["flows"]))
        self.assertGreater(self.agent.metric("ms_target_filtered_samples_total"), filtered0)
        self.assertEqual(self.agent.metric("ms_targets"), 1)
        # narrowing shows the filter really selects: port 443 only (odd synthetic flows)
        r = self.agent.api("POST", "/api/v1/targets", '{"targets":[{"type":"port","value":443}]}')
        self.assertEqual(r.status, 200, r)
        self.wait_windows(2)
        flows = self.agent.status()["top"]["flows"]
        self.assertTrue(flows)
        self.assertTrue(all(443 in (f["sport"], f["dport"]) for f in flows), flows)
        # §8 verbatim: curl -X POST localhost:9200/api/v1/targets -d '{"targets":[{"type":"flow","value":"10.1."}]}'
        r = self.post("/api/v1/targets", '{"targets":[{"type":"flow","value":"10.1."}]}')
        self.assertEqual(r["status"], "ok")
        self.wait_windows(2)
        s = self.agent.status()
        self.assertEqual(s["targets"]["list"], ["flow:10.1.0.0/16"])
        self.assertTrue(any(80 in (f["sport"], f["dport"]) for f in s["top"]["flows"]))
        # every series left is a 10.1. flow
        series = [l for l in self.agent.metrics().splitlines() if l.startswith("ms_flow_micromiss_rate{")]
        self.assertTrue(series)
        self.assertTrue(all('tuple="tcp 10.1.' in l or 'tuple="udp 10.1.' in l for l in series), series[:3])
        # an empty list clears the filter
        r = self.agent.api("POST", "/api/v1/targets", '{"targets":[]}')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.agent.status()["targets"]["list"], [])

    def test_5_symbols_jit(self):
        # §4.2: /api/v1/symbols/jit registers JIT regions for symbolization
        before = self.agent.status()["symbols"]["registered_regions"]
        body = json.dumps({"pid": SYNTH_PID, "regions": [
            {"start": hex(SYNTH_CODE_BASE), "size": 256, "name": "jit_hot_loop", "module": "[jit]"}]})
        r = self.post("/api/v1/symbols/jit", body)
        self.assertEqual(r, {"status": "ok", "registered": 1, "pid": SYNTH_PID})
        self.assertGreaterEqual(self.agent.status()["symbols"]["registered_regions"], before)
        # the synthetic code at that address is now named by the registration
        s = self.agent.wait(lambda s: any(f["name"] == "jit_hot_loop" for f in s["top"]["functions"]), 20,
                            "jit_hot_loop among the top functions")
        f = [f for f in s["top"]["functions"] if f["name"] == "jit_hot_loop"][0]
        self.assertEqual(f["module"], "[jit]")

    def test_6_symbols_data(self):
        # §4.2: /api/v1/symbols/data registers data objects / heap regions
        before = self.agent.status()["symbols"]["registered_regions"]
        r = self.post("/api/v1/symbols/data", '{"pid":4242,"start":"0x7e0000000000","size":65536,"name":"conn_table"}')
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["registered"], 1)
        self.assertEqual(self.agent.status()["symbols"]["registered_regions"], before + 1)

    def test_7_pmu_config_synthetic(self):
        # the guide's placeholder "[...]" is not JSON: 400 with the parser's reason
        out = self.sh("curl -s -X POST localhost:9200/api/v1/pmu-config -d '{\"sentinel\":{\"groups\":[...]}}'")
        r = json.loads(out)
        self.assertIn("reason", r)
        # a real group on the synthetic source: refused with the reason (no perf events here)
        r = self.agent.api("POST", "/api/v1/pmu-config", '{"sentinel":{"groups":[{"name":"g","events":["cpu-clock"]}]}}')
        self.assertEqual(r.status, 409, r)
        self.assertIn("synthetic", r.json()["reason"])


class GuidePmuConfig(unittest.TestCase):
    """{"sentinel":{"groups":[...]}} with real perf events: validated on this host, applied by the loop."""

    def setUp(self):
        mstest.require_root(self)

    def test_pmu_config(self):
        agent = agentapi.ApiAgent("--events=cpu-clock", "--window-ms=500", "--no-anomaly-enabled", "--mode=sentinel")
        agent.start()
        try:
            before = agent.status()
            self.assertEqual([e["name"] for e in before["events"] if e["live"]], ["cpu-clock"])
            body = '{"sentinel":{"groups":[{"name":"cpu","events":["cpu-clock","page-faults"]}]}}'
            rc, out, err = agentapi.curl(
                f"curl -s -X POST localhost:{agent.control_port}/api/v1/pmu-config -d '{body}'")
            r = json.loads(out)
            self.assertEqual(r.get("status"), "ok", r)
            self.assertGreaterEqual(r["live_events"], 2)
            s = agent.status()
            self.assertEqual(s["pmu"]["reconfigurations"], 1)
            live = {e["name"] for e in s["events"] if e["live"]}
            self.assertIn("page-faults", live, s["events"])
            # an encoding this host cannot count is refused with the reason, nothing changes
            bad = ('{"sentinel":{"groups":[{"name":"x","events":[{"name":"nopmu","type":"no_such_pmu_ms","config":1,'
                   '"period":1009,"fallback":""}]}]}}')
            r = agent.api("POST", "/api/v1/pmu-config", bad)
            self.assertEqual(r.status, 400, r)
            self.assertTrue(r.json()["reason"])
            self.assertEqual(agent.status()["pmu"]["reconfigurations"], 1)
        finally:
            rc = agent.stop()
        self.assertEqual(rc, 0, agent.log())


if __name__ == "__main__":
    mstest.main()
