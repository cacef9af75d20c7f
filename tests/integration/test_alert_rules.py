"""backend/alert_rules.yml with the real promtool: `check rules` is clean, `test rules` runs the
synthetic scenarios of backend/alert_rules_test.yml (each alert fires when it should and stays
quiet when it should), every alert has a test case, every metric a rule reads is in the metric
catalogue, and every alert's runbook link lands on a section of docs/RUNBOOK.md."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mstest  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
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


if __name__ == "__main__":
    mstest.main()
