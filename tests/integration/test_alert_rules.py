"""backend/alert_rules.yml with the real promtool: `check rules` is clean, `test rules` runs the
synthetic scenarios of backend/alert_rules_test.yml (each alert fires when it should and stays
quiet when it should), every alert has a test case, every metric a rule reads is in the metric
catalogue, and every alert's runbook link lands on a section of docs/RUNBOOK.md. Then live: a real
Prometheus loads the rules (durations shortened), scrapes a real agent, evaluates every rule
without error, fires MicroSentinelFleetDiagnosticShare for the agent pinned to diagnostic and
MicroSentinelAgentDown once the agent is stopped."""
import os
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mstest  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
BACKEND = os.path.join(mstest.SRC, "backend")
RULES = os.path.join(BACKEND, "alert_rules.yml")
RULES_TEST = os.path.join(BACKEND, "alert_rules_test.yml")
CATALOGUE = os.path.join(BACKEND, "prometheus_metrics.yaml")
RUNBOOK = os.path.join(mstest.SRC, "docs", "RUNBOOK.md")
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "sum", "count", "avg", "min", "max", "rate", "increase", "deriv", "irate", "delta",
                "absent", "topk", "bottomk", "quantile", "histogram_quantile", "clamp_min", "clamp_max"}


def promtool(*args):
    r = subprocess.run([PROMTOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                       cwd=BACKEND)
    return r.returncode, r.stdout


def rules():
    with open(RULES) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def metric_names(expr):
    """Metric names an expression reads: identifiers followed by `{`, `[`, an operator or the end,
    minus PromQL keywords, functions and label names inside braces."""
    expr = re.sub(r"\{[^}]*\}", "{}", expr)      # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)     # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]?|e\d*", n)}


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


class AlertRules(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(PROMTOOL):
            self.skipTest("promtool not installed")

    def test_check_rules(self):
        rc, out = promtool("check", "rules", RULES)
        self.assertEqual(rc, 0, out)
        self.assertIn(f"SUCCESS: {len(rules())} rules found", out)

    def test_rule_unit_tests(self):
        rc, out = promtool("test", "rules", RULES_TEST)
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)

    def test_rule_unit_tests_can_fail(self):
        # the scenarios are live: with one expectation changed, promtool reports a failure
        with open(RULES_TEST) as f:
            text = f.read()
        self.assertIn("instance: \"h1:9105\"}", text)
        tmp = tempfile.mkdtemp(prefix="ms-alerts-")
        try:
            shutil.copy(RULES, tmp)
            broken = os.path.join(tmp, "broken_test.yml")
            with open(broken, "w") as f:
                f.write(text.replace("instance: \"h1:9105\"}", "instance: \"h9:9105\"}", 1))
            rc, out = promtool("test", "rules", broken)
            self.assertNotEqual(rc, 0, out)
            self.assertIn("FAILED", out)
        finally:
            shutil.rmtree(tmp)

    def test_every_alert_is_tested(self):
        with open(RULES_TEST) as f:
            cases = yaml.safe_load(f)["tests"]
        tested = {t["alertname"] for c in cases for t in c.get("alert_rule_test", []) if t.get("exp_alerts")}
        for r in rules():
            self.assertIn(r["alert"], tested, f"{r['alert']} has no firing case in alert_rules_test.yml")

    def test_metrics_in_catalogue(self):
        with open(CATALOGUE) as f:
            cat = yaml.safe_load(f)
        known = {e["name"] for c in ("agent", "coordinator") for e in cat[c]} | {"up"}
        for r in rules():
            names = metric_names(r["expr"])
            self.assertTrue(names, r["expr"])
            for n in names:
                self.assertIn(n, known, f"{r['alert']} reads {n}, which backend/prometheus_metrics.yaml does not list")

    def test_labels_and_runbook(self):
        with open(RUNBOOK) as f:
            anchors = {slug(m) for m in re.findall(r"^#+\s+(.*)$", f.read(), re.M)}
        names = [r["alert"] for r in rules()]
        self.assertEqual(len(names), len(set(names)))
        for r in rules():
            self.assertTrue(r["alert"].startswith("MicroSentinel"), r["alert"])
            self.assertIn(r["labels"]["severity"], ("info", "warning", "critical"), r["alert"])
            for k in ("summary", "description", "runbook"):
                self.assertTrue(r["annotations"].get(k), f"{r['alert']}: no {k}")
            path, _, anchor = r["annotations"]["runbook"].partition("#")
            self.assertEqual(path, "docs/RUNBOOK.md")
            self.assertEqual(anchor, r["alert"].lower())
            self.assertIn(anchor, anchors, f"docs/RUNBOOK.md has no section for {r['alert']}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LivePrometheus(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(PROMETHEUS):
            self.skipTest("prometheus not installed")
        self.tmp = tempfile.mkdtemp(prefix="ms-alerts-live-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def api(self, port, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.loads(r.read().decode())["data"]

    def wait_alert(self, port, name, timeout):
        end = time.time() + timeout
        alerts = []
        while time.time() < end:
            alerts = self.api(port, "/api/v1/alerts")["alerts"]
            hit = [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]
            if hit:
                return hit[0]
            time.sleep(0.5)
        raise AssertionError(f"{name} never fired; alerts: {alerts}")

    def test_rules_on_a_real_agent(self):
        with open(RULES) as f:
            rules_text = re.sub(r"^(\s+)for: \S+$", r"\1for: 0s", f.read(), flags=re.M)
        with open(os.path.join(self.tmp, "rules.yml"), "w") as f:
            f.write(rules_text)
        mport, pport = free_port(), free_port()
        with open(os.path.join(self.tmp, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "rule_files: [rules.yml]\n"
                    "scrape_configs:\n  - job_name: micro_sentinel_agent\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{mport}']}}]\n")
        os.makedirs(os.path.join(self.tmp, "agent"))
        agent = mstest.Agent("--perf-mock", "--window-ms=300", "--mode=diagnostic", "--no-anomaly-enabled",
                             f"--metrics-port={mport}", tmp=os.path.join(self.tmp, "agent"))
        try:
            agent.start(timeout=30)
        except BaseException:
            if agent.proc:
                agent.proc.kill()
                agent.proc.wait()
            raise
        log = open(os.path.join(self.tmp, "prom.log"), "w")
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={self.tmp}/prom.yml", f"--storage.tsdb.path={self.tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{pport}"], stdout=log, stderr=log, cwd=self.tmp)
        stopped = False
        try:
            end = time.time() + 60
            groups = []
            while time.time() < end:
                try:
                    groups = self.api(pport, "/api/v1/rules")["groups"]
                    if groups and all(r.get("lastEvaluation", "").startswith("2") and
                                       not r["lastEvaluation"].startswith("0001") for g in groups for r in g["rules"]):
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            self.assertEqual(sorted(g["name"] for g in groups),
                             ["micro_sentinel_agent", "micro_sentinel_coordinator", "micro_sentinel_fleet"])
            self.assertEqual(sum(len(g["rules"]) for g in groups), len(rules()))
            # pinned diagnostic: the whole (one-agent) fleet is in diagnostic mode
            a = self.wait_alert(pport, "MicroSentinelFleetDiagnosticShare", 60)
            self.assertEqual(a["labels"]["severity"], "info")
            for g in self.api(pport, "/api/v1/rules")["groups"]:
                for r in g["rules"]:
                    self.assertEqual(r["health"], "ok", (r["name"], r.get("lastError")))
            self.assertEqual(agent.stop(), 0, agent.log())
            stopped = True
            a = self.wait_alert(pport, "MicroSentinelAgentDown", 60)
            self.assertEqual(a["labels"]["instance"], f"127.0.0.1:{mport}")
            self.assertEqual(a["annotations"]["runbook"], "docs/RUNBOOK.md#microsentinelagentdown")
        finally:
            if not stopped:
                agent.stop()
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(timeout=30)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()


if __name__ == "__main__":
    mstest.main()
