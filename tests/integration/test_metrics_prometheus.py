"""/metrics against the real tools: `promtool check metrics` reports nothing for the agent's
exposition (synthetic source, and real BPF sampling when root), a real Prometheus started here
scrapes it (target up, a query returns ms_agent_mode), every name SPEC §13 and the guide rely on
is there, and the per-flow series are a bounded top-K per window whose members leave when they
leave it."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentapi  # noqa: E402
import mstest  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

NAMES = [
    "ms_agent_mode", "ms_samples_per_second", "ms_flow_micromiss_rate", "ms_sampling_throttled",
    "ms_samples_total", "ms_unattributed_samples_total", "ms_samples_processed_total", "ms_windows_closed_total",
    "ms_events_live", "ms_uplink_windows_sent_total", "ms_uplink_windows_acked_total",
    "ms_uplink_windows_dropped_total", "ms_uplink_spool_windows", "ms_uplink_connected",
    "ms_agent_cpu_seconds_total", "ms_agent_rss_bytes", "ms_window_encode_seconds", "ms_budget_samples_per_second",
    "ms_mode_pinned", "ms_target_filtered_samples_total", "ms_anomaly_bytes_per_second", "ms_anomaly_active",
]


def promtool_check(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def series(text, name):
    return [l for l in text.splitlines() if l.startswith(name + "{") or l.startswith(name + " ")]


class Exposition(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PROMTOOL):
            raise unittest.SkipTest("promtool not installed")
        cls.agent = agentapi.ApiAgent("--perf-mock", "--mock-rate=20000", "--mock-flows=200", "--window-ms=500",
                                      "--metrics-top-k=5", "--mode-hold-ms=500")
        cls.agent.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        assert rc == 0, cls.agent.log()

    def test_promtool_clean(self):
        # exercise every family: a pin with TTL, targets, shedding (synthetic demand 2x budget)
        self.assertEqual(self.agent.api("POST", "/api/v1/mode", '{"mode":"diagnostic","ttl_s":60}').status, 200)
        self.assertEqual(self.agent.api("POST", "/api/v1/targets", '[{"type":"flow","value":"10.1."}]').status, 200)
        self.agent.wait(lambda s: s["top"]["unattributed"] == 0 and s["counters"]["windows"] >= 3, 20, "windows")
        text = self.agent.metrics()
        rc, out = promtool_check(text)
        self.assertEqual((rc, out), (0, ""), out)
        for n in NAMES:
            self.assertTrue(series(text, n) or series(text, n + "_sum"), f"{n} missing")
        for outcome in ("emitted", "budget", "gap", "ringfull", "lost"):
            self.assertIn(f'ms_samples_total{{outcome="{outcome}"}}', text)
        # every family has HELP and TYPE
        fams = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")}
        helps = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP")}
        self.assertEqual(fams, helps)
        for l in text.splitlines():
            if l and not l.startswith("#"):
                name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", l).group(0)
                base = re.sub(r"_(sum|count|bucket)$", "", name)
                self.assertTrue(name in fams or base in fams, l)
        # the guide's spelling is opt-in because promtool's linter flags it
        self.assertNotIn("ms_samples_per_sec ", text)
        self.agent.api("POST", "/api/v1/mode", '{"mode":"auto"}')
        self.agent.api("POST", "/api/v1/targets", "[]")

    def test_top_k_bounded_and_series_leave(self):
        def micro():
            return series(self.agent.metrics(), "ms_flow_micromiss_rate")
        seen = set()
        for _ in range(6):
            s = micro()
            self.assertLessEqual(len(s), 5, s)
            seen.update(re.search(r'flow="([0-9a-f]+)"', l).group(1) for l in s)
            time.sleep(0.5)
        self.assertGreater(len(seen), 0)
        # flows of port 80 leave the exposition once a filter keeps only port 443
        self.assertEqual(self.agent.api("POST", "/api/v1/targets", '[{"type":"port","value":443}]').status, 200)
        seq = self.agent.status()["top"]["window_seq"]
        self.agent.wait(lambda st: st["top"]["window_seq"] >= seq + 2, 20, "two windows")
        s = micro()
        self.assertTrue(s)
        self.assertFalse([l for l in s if ":80 " in l], s)
        self.assertEqual(self.agent.api("POST", "/api/v1/targets", "[]").status, 200)
        seq = self.agent.status()["top"]["window_seq"]
        self.agent.wait(lambda st: st["top"]["window_seq"] >= seq + 2, 20, "two windows")
        self.assertTrue([l for l in micro() if ":80 " in l])

    def test_guide_names_opt_in(self):
        a = agentapi.ApiAgent("--perf-mock", "--window-ms=500", "--metrics-guide-names", "--no-anomaly-enabled")
        a.start()
        try:
            text = a.metrics()
            self.assertTrue(series(text, "ms_samples_per_sec"))
            rc, out = promtool_check(text)
            # the only finding is the guide's abbreviation
            self.assertTrue(all("ms_samples_per_sec " in l for l in out.splitlines()), out)
        finally:
            a.stop()


class RealPrometheus(unittest.TestCase):
    def test_scrape(self):
        if not os.path.exists(PROMETHEUS):
            self.skipTest("prometheus not installed")
        agent = agentapi.ApiAgent("--perf-mock", "--window-ms=500", "--no-anomaly-enabled")
        agent.start()
        tmp = tempfile.mkdtemp(prefix="ms-prom-")
        port = agentapi.free_port()
        cfg = os.path.join(tmp, "prom.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n  - job_name: agent\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{agent.metrics_port}']}}]\n")
        log = open(os.path.join(tmp, "prom.log"), "w")
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"

        def get(path):
            with urllib.request.urlopen(base + path, timeout=5) as r:
                return r.read().decode()
        try:
            end = time.time() + 60
            while time.time() < end:
                try:
                    get("/-/ready")
                    break
                except OSError:
                    time.sleep(0.2)
            health = None
            while time.time() < end:
                t = json.loads(get("/api/v1/targets"))
                act = t["data"]["activeTargets"]
                if act and act[0]["health"] == "up":
                    health = act[0]
                    break
                time.sleep(0.5)
            self.assertIsNotNone(health, "target never up")
            self.assertEqual(health["lastError"], "")
            result = []
            while time.time() < end and not result:
                q = json.loads(get("/api/v1/query?" + urllib.parse.urlencode({"query": "ms_agent_mode"})))
                result = q["data"]["result"]
                time.sleep(0.5)
            self.assertTrue(result, "ms_agent_mode not queryable")
            self.assertEqual(result[0]["value"][1], "0")
            # a mode change shows up in Prometheus too
            self.assertEqual(agent.api("POST", "/api/v1/mode", '{"mode":"diagnostic"}').status, 200)
            v = None
            while time.time() < end and v != "1":
                q = json.loads(get("/api/v1/query?" + urllib.parse.urlencode({"query": "ms_agent_mode"})))
                v = q["data"]["result"][0]["value"][1]
                time.sleep(0.5)
            self.assertEqual(v, "1")
        finally:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()
            agent.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class BpfExposition(unittest.TestCase):
    """The same checks with real sampling (events live or fallen back, BPF counters)."""

    def setUp(self):
        mstest.require_root(self)
        if not os.path.exists(PROMTOOL):
            self.skipTest("promtool not installed")

    def test_promtool_bpf(self):
        agent = agentapi.ApiAgent("--window-ms=500")
        agent.start()
        try:
            agent.wait(lambda s: s["counters"]["windows"] >= 2, 20, "windows")
            text = agent.metrics()
            rc, out = promtool_check(text)
            self.assertEqual((rc, out), (0, ""), out)
            self.assertTrue(series(text, "ms_events_live"))
        finally:
            self.assertEqual(agent.stop(), 0, agent.log())


if __name__ == "__main__":
    mstest.main()
